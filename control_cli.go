package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"net/netip"
	"os"
	"strings"
	"time"
)

// controlUsage explains the operator commands.
const controlUsage = `usage: flip status [--json] [--socket PATH]
       flip release [--json] [--socket PATH]
       flip takeover [--force] [--json] [--socket PATH]
       flip switchover [--json] [--max DURATION] [--socket PATH]

status      the running agent's state
release     on the active box: stop everything, right to left; this box then
            stays out for 3 x FLIP_DEAD_AFTER while the other box takes over
takeover    on a passive box: take over now. Refused while another box holds
            a VIP; --force overrides that (both boxes may then hold it until
            the split-brain rule resolves it) and says what it overrode
switchover  on the active box: release, then measure with SIP OPTIONS (as
            flip watch does) until the other box answers; prints the release
            timeline and the outage

The agent is reached over its control socket (FLIP_CONTROL_SOCKET, default
/run/flip/flip.sock, root only). Exit status: 0 done, 1 refused or failed,
2 bad usage.
`

// runControl is `flip status|release|takeover|switchover`.
func runControl(cmd string, args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet(cmd, flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() { fmt.Fprint(stderr, controlUsage) }
	socket := fs.String("socket", envOr("FLIP_CONTROL_SOCKET", "/run/flip/flip.sock"), "the agent's control socket")
	asJSON := fs.Bool("json", false, "print JSON")
	force := fs.Bool("force", false, "takeover: even while another box holds a VIP")
	maxWait := fs.Duration("max", 2*time.Minute, "switchover: stop measuring after this long")
	if err := fs.Parse(args); err != nil {
		if err == flag.ErrHelp {
			fmt.Fprint(stdout, controlUsage)
			return 0
		}
		return 2
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "flip %s: unexpected argument %q\n%s", cmd, fs.Arg(0), controlUsage)
		return 2
	}
	if *force && cmd != "takeover" {
		fmt.Fprintf(stderr, "flip %s: --force is only for takeover\n", cmd)
		return 2
	}
	if cmd == "switchover" {
		return runSwitchover(*socket, *maxWait, *asJSON, stdout, stderr)
	}
	resp, err := callControl(*socket, ctlRequest{Cmd: cmd, Force: *force})
	if err != nil {
		fmt.Fprintf(stderr, "flip %s: %v\n", cmd, err)
		return 1
	}
	if *asJSON {
		_ = json.NewEncoder(stdout).Encode(resp)
	} else {
		printControl(stdout, cmd, resp)
	}
	if !resp.OK {
		if !*asJSON {
			fmt.Fprintf(stderr, "flip %s: %s\n", cmd, resp.Error)
		}
		return 1
	}
	return 0
}

func envOr(name, def string) string {
	if v := strings.TrimSpace(os.Getenv(name)); v != "" {
		return v
	}
	return def
}

// printControl prints an answer for a person: the note, then the state,
// and for a transition its phase timeline.
func printControl(w io.Writer, cmd string, r ctlResponse) {
	if r.Note != "" {
		fmt.Fprintln(w, r.Note)
	}
	if cmd != "status" && r.OK && r.Status.LastTransition != nil {
		printTimeline(w, r.Status.LastTransition)
	}
	if cmd == "status" {
		fmt.Fprint(w, r.Status.String())
	}
}

func printTimeline(w io.Writer, t *transitionStatus) {
	fmt.Fprintf(w, "%s -> %s (%s) in %.2f ms:\n", t.From, t.To, t.Cause, t.TotalMS)
	for _, p := range t.Phases {
		line := fmt.Sprintf("  %-8s %-24s %8.2f ms", p.Action, p.Resource, p.MS)
		if p.Error != "" {
			line += "  error: " + p.Error
		}
		fmt.Fprintln(w, line)
	}
}

// switchoverResult is what `flip switchover --json` prints.
type switchoverResult struct {
	Release  *transitionStatus `json:"release"`
	Note     string            `json:"note,omitempty"`
	Before   string            `json:"before"`    // Server header before the switchover
	After    string            `json:"after"`     // and after
	OutageMS float64           `json:"outage_ms"` // last answer of Before to first of After, by send time
	Lost     int               `json:"lost"`      // probes unanswered in that window
	Switched bool              `json:"switched"`
}

// switchoverInterval is how often the switchover probes, as flip watch does.
const switchoverInterval = 10 * time.Millisecond

// runSwitchover releases this (active) box and measures the outage until
// the other box answers: it probes the service address from this box's own
// address every 10 ms. The probes go through sipgo's unconnected socket, so
// the local Asterisk's answers (which leave from the box's own address while
// it holds the VIP) count as well as the other box's.
func runSwitchover(socket string, maxWait time.Duration, asJSON bool, stdout, stderr io.Writer) int {
	st, err := callControl(socket, ctlRequest{Cmd: "status"})
	if err != nil {
		fmt.Fprintf(stderr, "flip switchover: %v\n", err)
		return 1
	}
	if st.Status.Role != roleActive.String() {
		fmt.Fprintf(stderr, "flip switchover: this box is %s; run it on the active box\n", st.Status.Role)
		return 1
	}
	source, err := netip.ParseAddr(st.Source)
	if err != nil {
		fmt.Fprintf(stderr, "flip switchover: the agent reported no source address (%q)\n", st.Source)
		return 1
	}
	p, err := newProber(source, st.Status.ProbeTarget, 500*time.Millisecond)
	if err != nil {
		fmt.Fprintf(stderr, "flip switchover: %v\n", err)
		return 1
	}
	defer p.Close()
	ctx, cancel := context.WithTimeout(context.Background(), maxWait)
	defer cancel()
	results := make(chan probeResult, 4096)
	go func() {
		t := time.NewTicker(switchoverInterval)
		defer t.Stop()
		for {
			go func() { results <- p.probe(ctx) }()
			select {
			case <-ctx.Done():
				return
			case <-t.C:
			}
		}
	}()
	var all []probeResult
	before := ""
	// Learn who answers now, for at most a second.
	for deadline := time.After(time.Second); before == ""; {
		select {
		case r := <-results:
			all = append(all, r)
			if r.Answered {
				before = r.Server
			}
		case <-deadline:
			fmt.Fprintln(stderr, "flip switchover: the service does not answer on this box now; not switching")
			return 1
		}
	}
	resp, err := callControl(socket, ctlRequest{Cmd: "switchover"})
	if err != nil || !resp.OK {
		if err == nil {
			err = fmt.Errorf("%s", resp.Error)
		}
		fmt.Fprintf(stderr, "flip switchover: %v\n", err)
		return 1
	}
	res := switchoverResult{Release: resp.Status.LastTransition, Note: resp.Note, Before: before}
	var first *probeResult
	for first == nil {
		select {
		case r := <-results:
			all = append(all, r)
			if r.Answered && r.Server != before {
				first = &r
			}
		case <-ctx.Done():
			first = &probeResult{}
		}
	}
	if first.Answered {
		res.Switched, res.After = true, first.Server
		var last time.Time
		for _, r := range all {
			if r.Answered && r.Server == before && r.Sent.After(last) {
				last = r.Sent
			}
		}
		for _, r := range all {
			if !r.Answered && r.Sent.After(last) && r.Sent.Before(first.Sent) {
				res.Lost++
			}
		}
		res.OutageMS = float64(first.Sent.Sub(last).Microseconds()) / 1000
	}
	if asJSON {
		_ = json.NewEncoder(stdout).Encode(res)
	} else {
		if res.Release != nil {
			printTimeline(stdout, res.Release)
		}
		fmt.Fprintln(stdout, res.Note)
		fmt.Fprintf(stdout, "before: %q\nafter:  %q\n", res.Before, res.After)
		if res.Switched {
			fmt.Fprintf(stdout, "outage: %.1f ms, %d probes lost in it (SIP OPTIONS every %s from %s)\n", res.OutageMS, res.Lost, switchoverInterval, source)
		}
	}
	if !res.Switched {
		fmt.Fprintf(stderr, "flip switchover: no other box answered within %s\n", maxWait)
		return 1
	}
	return 0
}
