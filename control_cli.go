package main

import (
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"
	"time"
)

// controlUsage explains the operator commands.
const controlUsage = `usage: flip status [--json] [--socket PATH]
       flip release [--json] [--socket PATH]
       flip takeover [--force] [--json] [--socket PATH]
       flip switchover [--drain[=TIMEOUT] [--force] | --to BOX] [--json] [--max DURATION] [--socket PATH]
       flip hold [--for DURATION] [--json] [--socket PATH]
       flip unhold [--json] [--socket PATH]

status      the running agent's state
release     on the active box: stop everything, right to left; this box then
            stays out for 3 x FLIP_DEAD_AFTER while the other box takes over
takeover    on a passive box: take over now. Refused while another box holds
            a VIP; --force overrides that (both boxes may then hold it until
            the split-brain rule resolves it) and says what it overrode.
            Refused in a pool: run switchover --to BOX on the leader
switchover  on the active box: release, then measure with SIP OPTIONS (as
            flip watch does) until the other box answers; prints the release
            timeline and the outage. --drain first runs FLIP_DRAIN_CMD and
            waits (at most TIMEOUT, default FLIP_DRAIN_TIMEOUT) until
            FLIP_CALLS_CMD counts no calls; calls left at the time-out call
            the switchover off (FLIP_UNDRAIN_CMD undoes the drain), unless
            --force. In a pool (FLIP_ETCD_ENDPOINTS) the next candidate in
            line takes over; --to BOX (its FLIP_NAME) hands over to that
            one: the other candidates stand aside until it has won

hold        maintenance mode for the pair (both boxes, with the peer channel;
            kept across a restart of flip): nothing moves by itself — no
            takeover, no release, no failback — for DURATION (default 1h, at
            most 24h), while switchover, release and takeover still work;
            the split-brain rule still applies
unhold      end the hold now (both boxes)

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
	force := fs.Bool("force", false, "takeover: even while another box holds a VIP; switchover --drain: switch at the time-out even with calls left")
	var drain drainFlag
	fs.Var(&drain, "drain", "switchover: wait for the calls in progress to end first (--drain or --drain=TIMEOUT)")
	maxWait := fs.Duration("max", 2*time.Minute, "switchover: stop measuring after this long")
	holdFor := fs.Duration("for", holdDefault, "hold: how long (at most 24h)")
	to := fs.String("to", "", "switchover in a pool: the box (its FLIP_NAME) to hand over to")
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
	forSet := false
	fs.Visit(func(f *flag.Flag) { forSet = forSet || f.Name == "for" })
	if forSet && cmd != "hold" {
		fmt.Fprintf(stderr, "flip %s: --for is only for hold\n", cmd)
		return 2
	}
	if drain.set && cmd != "switchover" {
		fmt.Fprintf(stderr, "flip %s: --drain is only for switchover\n", cmd)
		return 2
	}
	if *force && cmd != "takeover" && !(cmd == "switchover" && drain.set) {
		fmt.Fprintf(stderr, "flip %s: --force is only for takeover and switchover --drain\n", cmd)
		return 2
	}
	if *to != "" && (cmd != "switchover" || drain.set) {
		fmt.Fprintf(stderr, "flip %s: --to is only for switchover, without --drain\n", cmd)
		return 2
	}
	if cmd == "switchover" {
		return runSwitchover(switchoverOptions{socket: *socket, maxWait: *maxWait, drain: drain, force: *force, to: *to, asJSON: *asJSON, stdout: stdout, stderr: stderr})
	}
	req := ctlRequest{Cmd: cmd, Force: *force}
	if cmd == "hold" {
		req.HoldNS, req.By = int64(*holdFor), operatorName()
	}
	resp, err := callControl(*socket, req)
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

// operatorName is who runs the command, for a hold's "by": the user that
// sudo'ed, else the login name, else "".
func operatorName() string {
	for _, v := range []string{"SUDO_USER", "USER", "LOGNAME"} {
		if u := strings.TrimSpace(os.Getenv(v)); u != "" {
			return u
		}
	}
	return ""
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
