package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/netip"
	"os"
	"sync"
	"time"
)

// switchoverResult is what `flip switchover --json` prints.
type switchoverResult struct {
	Drain    *drainStatus      `json:"drain,omitempty"` // with --drain: how it ended
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

// drainShowEvery is how often a drained switchover asks the agent how the
// drain goes; drainPrintEvery is how often it prints an unchanged count
// when its output is not a terminal (a log, a script).
const (
	drainShowEvery  = 500 * time.Millisecond
	drainPrintEvery = 10 * time.Second
)

// drainFlag is --drain or --drain=TIMEOUT.
type drainFlag struct {
	set     bool
	timeout time.Duration // 0: the agent's FLIP_DRAIN_TIMEOUT
}

func (f *drainFlag) String() string {
	if f == nil || !f.set {
		return ""
	}
	if f.timeout == 0 {
		return "true"
	}
	return f.timeout.String()
}

// Set takes "true" (bare --drain) or a duration.
func (f *drainFlag) Set(s string) error {
	f.set = true
	if s == "true" {
		return nil
	}
	d, err := time.ParseDuration(s)
	if err != nil || d <= 0 {
		return fmt.Errorf("want a time-out such as 5m, got %q", s)
	}
	f.timeout = d
	return nil
}

// IsBoolFlag lets --drain stand alone.
func (f *drainFlag) IsBoolFlag() bool { return true }

type switchoverOptions struct {
	socket         string
	maxWait        time.Duration
	drain          drainFlag
	to             string // a pool's switchover --to: the target box
	force, asJSON  bool
	stdout, stderr io.Writer
}

// runSwitchover releases this (active) box and measures the outage until
// the other box answers: it probes the service address from this box's own
// address every 10 ms on an unconnected socket, so the local Asterisk's
// answers (which leave from the box's own address while it holds the VIP)
// count as well as the other box's. With --drain the agent first drains
// the calls; the measurement runs all along.
func runSwitchover(o switchoverOptions) int {
	fail := func(format string, args ...any) int {
		fmt.Fprintf(o.stderr, "flip switchover: "+format+"\n", args...)
		return 1
	}
	st, err := callControl(o.socket, ctlRequest{Cmd: "status"})
	if err != nil {
		return fail("%v", err)
	}
	if st.Status.Role != roleActive.String() {
		return fail("this box is %s; run it on the active box", st.Status.Role)
	}
	source, err := netip.ParseAddr(st.Source)
	if err != nil {
		return fail("the agent reported no source address (%q)", st.Source)
	}
	target := st.Status.ProbeTarget
	if st.Status.ServiceTarget != "" {
		target = st.Status.ServiceTarget // a pool: measure the VIP, not this box's own service
	}
	probe, err := newTickProbe(source, target, 500*time.Millisecond)
	if err != nil {
		return fail("%v", err)
	}
	defer probe.Close()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	meas := &switchMeasure{}
	done := make(chan struct{})
	go func() { defer close(done); meas.run(ctx, probe) }()
	defer func() { cancel(); <-done }()

	if !meas.waitBefore(time.Second) {
		return fail("the service does not answer on this box now; not switching")
	}
	req := ctlRequest{Cmd: "switchover", To: o.to}
	if o.drain.set {
		req.Drain, req.DrainNS, req.Force = true, int64(o.drain.timeout), o.force
	}
	resp, err := callControl(o.socket, req)
	if err == nil && !resp.OK {
		err = fmt.Errorf("%s", resp.Error)
	}
	if err != nil {
		return fail("%v", err)
	}
	res := switchoverResult{Note: resp.Note, Before: meas.beforeServer()}
	if o.drain.set {
		if !o.asJSON {
			fmt.Fprintln(o.stdout, resp.Note)
		}
		d, err := followDrain(o, resp.Status.Drain)
		res.Drain = d
		if err != nil {
			return fail("%v", err)
		}
		if d.Outcome != drainSwitched {
			if o.asJSON {
				_ = json.NewEncoder(o.stdout).Encode(res)
				return fail("drain %s: %s", d.Outcome, d.Reason)
			}
			return fail("drain %s: this box stays active (see above)", d.Outcome)
		}
		st, err := callControl(o.socket, ctlRequest{Cmd: "status"})
		if err != nil {
			return fail("%v", err)
		}
		res.Release, res.Note = st.Status.LastRelease, ""
	} else if o.to != "" {
		if !o.asJSON {
			fmt.Fprintln(o.stdout, resp.Note)
		}
		rel, err := followSwitchTo(o, resp.Status.LastRelease)
		if err != nil {
			return fail("%v", err)
		}
		res.Release, res.Note = rel, ""
	} else {
		res.Release = resp.Status.LastTransition
	}
	if res.Release != nil {
		// Two boxes may send the same Server header (two Asterisks of one
		// version, stock Kamailio): then an answer sent after the release
		// was complete is the other box's.
		if at, err := time.Parse(time.RFC3339Nano, res.Release.At); err == nil {
			meas.setReleased(at)
		}
	}
	first, ok := meas.waitAfter(o.maxWait)
	if ok {
		res.Switched, res.After = true, first.Server
		res.OutageMS, res.Lost = meas.outage(first)
	}
	if o.asJSON {
		_ = json.NewEncoder(o.stdout).Encode(res)
	} else {
		if res.Release != nil {
			printTimeline(o.stdout, res.Release)
		}
		if res.Note != "" {
			fmt.Fprintln(o.stdout, res.Note)
		}
		fmt.Fprintf(o.stdout, "before: %q\nafter:  %q\n", res.Before, res.After)
		if res.Switched {
			fmt.Fprintf(o.stdout, "outage: %.1f ms, %d probes lost in it (SIP OPTIONS every %s from %s)\n", res.OutageMS, res.Lost, switchoverInterval, source)
		}
	}
	if !res.Switched {
		return fail("no other box answered within %s", o.maxWait)
	}
	return 0
}

// followDrain asks the agent how the drain goes until it is over, printing
// a live line on a terminal and plain lines otherwise, and returns how it
// ended. Bounded by the drain's own time-out (the agent ends it) and a
// margin for its last count.
func followDrain(o switchoverOptions, first *drainStatus) (*drainStatus, error) {
	tty := isTerminal(o.stdout) && !o.asJSON
	lastCalls, printed := -2, false
	var lastPrint time.Time
	show := func(d *drainStatus) {
		if o.asJSON {
			return
		}
		switch {
		case tty:
			fmt.Fprintf(o.stdout, "\r\033[K%s", d)
		case !printed || d.Calls != lastCalls || time.Since(lastPrint) >= drainPrintEvery || !d.InProgress:
			fmt.Fprintln(o.stdout, d)
			lastPrint, printed = time.Now(), true
		}
		lastCalls = d.Calls
	}
	d := first
	limit := time.Now().Add(24*time.Hour + time.Minute) // FLIP_DRAIN_TIMEOUT's range, and a margin
	misses := 0
	for time.Now().Before(limit) {
		if d != nil {
			show(d)
			if !d.InProgress {
				if tty {
					fmt.Fprintln(o.stdout)
				}
				return d, nil
			}
		}
		time.Sleep(drainShowEvery)
		st, err := callControl(o.socket, ctlRequest{Cmd: "status"})
		if err != nil {
			if misses++; misses >= 10 {
				return d, fmt.Errorf("lost the agent while it drained: %v; see `flip status`", err)
			}
			continue
		}
		misses, d = 0, st.Status.Drain
	}
	return d, fmt.Errorf("the drain did not end; see `flip status`")
}

// isTerminal reports whether w is a terminal (a live line is drawn there).
func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	if !ok {
		return false
	}
	fi, err := f.Stat()
	return err == nil && fi.Mode()&os.ModeCharDevice != 0
}

// switchMeasure follows the service through a switchover: who answered
// before, the newest answer from it, and the first answer from another
// SIP stack. It keeps the send times of unanswered probes only after the
// newest "before" answer, so a long drain does not grow it.
type switchMeasure struct {
	mu         sync.Mutex
	haveBefore bool
	releasedAt time.Time // the release was complete: answers sent later are the other box's
	before     string
	lastBefore time.Time
	unanswered []time.Time
	first      *probeResult
}

// switchMaxUnanswered bounds the unanswered probes kept (more than a
// minute's worth at 10 ms).
const switchMaxUnanswered = 10000

// run probes every switchoverInterval until ctx ends: collect what came
// back, then send the next, as the agent's loop does.
func (m *switchMeasure) run(ctx context.Context, p *tickProbe) {
	t := time.NewTicker(switchoverInterval)
	defer t.Stop()
	p.send(time.Now())
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		now := time.Now()
		for _, r := range p.collect(now) {
			m.add(r)
		}
		p.send(now)
	}
}

func (m *switchMeasure) add(r probeResult) {
	m.mu.Lock()
	defer m.mu.Unlock()
	switch {
	case !r.Answered:
		if len(m.unanswered) < switchMaxUnanswered {
			m.unanswered = append(m.unanswered, r.Sent)
		}
	case !m.haveBefore:
		m.haveBefore, m.before, m.lastBefore = true, r.Server, r.Sent
	case m.first != nil:
	case r.Server != m.before || (!m.releasedAt.IsZero() && r.Sent.After(m.releasedAt)):
		first := r
		m.first = &first
	default:
		if r.Sent.After(m.lastBefore) {
			m.lastBefore = r.Sent
			keep := m.unanswered[:0]
			for _, u := range m.unanswered {
				if u.After(m.lastBefore) {
					keep = append(keep, u)
				}
			}
			m.unanswered = keep
		}
	}
}

// setReleased records when the release was complete.
func (m *switchMeasure) setReleased(at time.Time) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.releasedAt = at
}

func (m *switchMeasure) beforeServer() string {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.before
}

// waitBefore waits up to d for the first answer.
func (m *switchMeasure) waitBefore(d time.Duration) bool {
	for end := time.Now().Add(d); time.Now().Before(end); time.Sleep(switchoverInterval) {
		m.mu.Lock()
		have := m.haveBefore
		m.mu.Unlock()
		if have {
			return true
		}
	}
	return false
}

// waitAfter waits up to d for the first answer from another SIP stack.
func (m *switchMeasure) waitAfter(d time.Duration) (probeResult, bool) {
	for end := time.Now().Add(d); time.Now().Before(end); time.Sleep(switchoverInterval) {
		m.mu.Lock()
		first := m.first
		m.mu.Unlock()
		if first != nil {
			return *first, true
		}
	}
	return probeResult{}, false
}

// outage is the time from the newest "before" answer's send time to the
// first "after" answer's, and the probes lost between them.
func (m *switchMeasure) outage(first probeResult) (float64, int) {
	m.mu.Lock()
	defer m.mu.Unlock()
	lost := 0
	for _, u := range m.unanswered {
		if u.After(m.lastBefore) && u.Before(first.Sent) {
			lost++
		}
	}
	return float64(first.Sent.Sub(m.lastBefore).Microseconds()) / 1000, lost
}
