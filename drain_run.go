package main

import (
	"context"
	"fmt"
	"regexp"
	"strconv"
	"strings"
	"time"
)

// The effects of a drained switchover (drain.go has the rules). The
// commands run on a goroutine of their own, so the agent's loop goes on
// probing, sending heartbeats and checking for conflicts while Asterisk
// finishes its calls; every count comes back to the loop, which asks the
// machine and acts.

// drainEventKind says what a drainEvent reports.
type drainEventKind int

const (
	drainCounted   drainEventKind = iota // FLIP_CALLS_CMD ran (calls, or err)
	drainCmdFailed                       // FLIP_DRAIN_CMD failed: the drain cannot be trusted
	drainUndone                          // FLIP_UNDRAIN_CMD ran (err: it failed)
)

// drainEvent is one result from the drain's goroutine.
type drainEvent struct {
	kind  drainEventKind
	calls int
	err   error
	reply chan<- drainDecision // drainCounted: what to do next
}

// drainStatus is the drain in `flip status` and /status: the one under way
// or the last one, with how it ended.
type drainStatus struct {
	InProgress bool   `json:"in_progress"`
	Started    string `json:"started"`
	Deadline   string `json:"deadline"`
	TimeoutMS  int64  `json:"timeout_ms"`
	Force      bool   `json:"force,omitempty"`
	Calls      int    `json:"calls"` // the last count; -1: not counted yet
	WaitedMS   int64  `json:"waited_ms"`
	LastError  string `json:"last_error,omitempty"` // of the last failed count
	Outcome    string `json:"outcome,omitempty"`    // when over: switched, called-off
	Reason     string `json:"reason,omitempty"`
	Undrain    string `json:"undrain,omitempty"` // FLIP_UNDRAIN_CMD: ok, failed: …, or none
	// ended: this report is the one that ends the drain (counted once;
	// the undrain's later report is not).
	ended bool
}

// String is the drain in one line, as `flip status` and a drained
// switchover print it.
func (d drainStatus) String() string {
	calls := "calls not counted yet"
	switch {
	case d.Calls == 1:
		calls = "1 call left"
	case d.Calls >= 0:
		calls = fmt.Sprintf("%d calls left", d.Calls)
	}
	waited := (time.Duration(d.WaitedMS) * time.Millisecond).Round(100 * time.Millisecond)
	if d.InProgress {
		s := fmt.Sprintf("draining: %s, waited %s of %s", calls, waited, time.Duration(d.TimeoutMS)*time.Millisecond)
		if d.Force {
			s += " (then switching anyway)"
		}
		if d.LastError != "" {
			s += "; last count failed: " + d.LastError
		}
		return s
	}
	s := fmt.Sprintf("last drain (started %s): %s after %s: %s", d.Started, d.Outcome, waited, d.Reason)
	if d.Undrain != "" && d.Undrain != "none" {
		s += "; FLIP_UNDRAIN_CMD: " + d.Undrain
	}
	return s
}

// Outcomes of a drain.
const (
	drainSwitched    = "switched"
	drainCalledOff   = "called-off"
	drainInterrupted = "interrupted" // the box released for another reason
)

// beginDrain starts a drained switchover; it returns at once.
func (a *agent) beginDrain(ctx context.Context, timeout time.Duration, force bool) error {
	if err := a.m.startDrain(a.now(), timeout, force); err != nil {
		return err
	}
	a.stopSync() // the standby's copy waits for the next active box
	a.drainStart = a.now()
	a.drainView = &drainStatus{InProgress: true, Started: timeString(a.now()), Deadline: timeString(a.m.drain.deadline), TimeoutMS: timeout.Milliseconds(), Force: force, Calls: -1}
	a.ev.Drained(*a.drainView)
	a.log.Warn("drain: switching over once no calls are left", "timeout", timeout, "force", force, "drain_cmd", a.cfg.DrainCmd != nil)
	if a.drainEvents == nil {
		a.drainEvents = make(chan drainEvent, 4)
	}
	go a.drainLoop(ctx, a.drainEvents) // never inline: it waits for the loop
	return nil
}

// drainLoop runs FLIP_DRAIN_CMD once, then counts the calls until the loop
// says stop. Bounded: one count per FLIP_DRAIN_POLL up to the time-out,
// and a few failed ones.
func (a *agent) drainLoop(ctx context.Context, out chan<- drainEvent) {
	send := func(e drainEvent) bool {
		select {
		case out <- e:
			return true
		case <-ctx.Done():
			return false
		}
	}
	if a.cfg.DrainCmd != nil {
		if _, err := runCommand(ctx, a.cfg.ResourceTO, a.cfg.DrainCmd); err != nil {
			send(drainEvent{kind: drainCmdFailed, err: fmt.Errorf("FLIP_DRAIN_CMD: %w", err)})
			return
		}
		a.log.Info("drain: FLIP_DRAIN_CMD done", "cmd", commandName(a.cfg.DrainCmd))
	}
	limit := int(a.cfg.DrainTimeout/a.cfg.DrainPoll) + 2*drainFailuresMax + 2
	for range limit {
		calls, err := a.countCalls(ctx)
		reply := make(chan drainDecision, 1)
		if !send(drainEvent{kind: drainCounted, calls: calls, err: err, reply: reply}) {
			return
		}
		var d drainDecision
		select {
		case d = <-reply:
		case <-ctx.Done():
			return
		}
		if d.Action != drainWait {
			return
		}
		t := time.NewTimer(time.Until(d.Next))
		select {
		case <-t.C:
		case <-ctx.Done():
			t.Stop()
			return
		}
	}
}

// onDrain handles a result from the drain's goroutine, on the loop.
func (a *agent) onDrain(ctx context.Context, e drainEvent) {
	switch e.kind {
	case drainUndone:
		if a.drainView != nil {
			a.drainView.Undrain = "ok"
			if e.err != nil {
				a.drainView.Undrain = "failed: " + e.err.Error()
				a.log.Error("drain: FLIP_UNDRAIN_CMD failed; undo the drain by hand", "err", e.err)
			} else {
				a.log.Info("drain: FLIP_UNDRAIN_CMD done: the service takes new calls again")
			}
			a.ev.Drained(*a.drainView)
		}
		return
	case drainCmdFailed:
		a.endDrain(ctx, a.m.endDrain(drainAbort, e.err.Error()+"; switchover called off"))
		return
	}
	d := a.m.drainCounted(a.now(), e.calls, e.err, a.cfg.DrainPoll)
	e.reply <- d
	if d.Action == drainWait {
		if a.drainView != nil {
			a.drainView.Calls, a.drainView.LastError = a.m.drain.calls, a.m.drain.lastErr
			a.drainView.WaitedMS = a.now().Sub(a.drainStart).Milliseconds()
			a.ev.Drained(*a.drainView)
		}
		if e.err != nil {
			a.log.Warn("drain: cannot count the calls in progress", "err", e.err)
		}
		return
	}
	a.endDrain(ctx, d)
}

// endDrain carries out the end of a drain: the switchover, or calling it
// off and undoing the drain command.
func (a *agent) endDrain(ctx context.Context, d drainDecision) {
	switch d.Action {
	case drainGone:
		a.noteDrainEnd(drainInterrupted, "the box released for another reason before the calls were drained", "")
	case drainDone:
		a.noteDrainEnd(drainSwitched, d.Reason, "")
		a.log.Warn("drain over: switching over", "reason", d.Reason)
		a.switchover(ctx, causeDrained, "drain: "+d.Reason)
	case drainAbort:
		undrain := "none"
		if a.cfg.UndrainCmd != nil {
			undrain = "running"
		}
		a.noteDrainEnd(drainCalledOff, d.Reason, undrain)
		a.log.Error("drain called off: this box stays active", "reason", d.Reason)
		if a.cfg.UndrainCmd != nil {
			go func() {
				_, err := runCommand(ctx, a.cfg.ResourceTO, a.cfg.UndrainCmd)
				select {
				case a.drainEvents <- drainEvent{kind: drainUndone, err: err}:
				case <-ctx.Done():
				}
			}()
		}
	}
}

// noteDrainEnd records in the status how the drain ended, once.
func (a *agent) noteDrainEnd(outcome, reason, undrain string) {
	v := a.drainView
	if v == nil || !v.InProgress {
		return
	}
	v.InProgress, v.Outcome, v.Reason, v.Undrain = false, outcome, reason, undrain
	v.WaitedMS = a.now().Sub(a.drainStart).Milliseconds()
	if a.m.drain.on || a.m.drain.calls >= 0 {
		v.Calls = a.m.drain.calls
	}
	ending := *v
	ending.ended = true
	a.ev.Drained(ending)
}

// countCalls runs FLIP_CALLS_CMD and reads the number of calls from it.
func (a *agent) countCalls(ctx context.Context) (int, error) {
	out, err := runCommand(ctx, a.cfg.ResourceTO, a.cfg.CallsCmd)
	if err != nil {
		return 0, fmt.Errorf("FLIP_CALLS_CMD: %w", err)
	}
	n, err := parseCalls(out)
	if err != nil {
		return 0, fmt.Errorf("FLIP_CALLS_CMD (%s): %w", commandName(a.cfg.CallsCmd), err)
	}
	return n, nil
}

// activeCalls finds "N active call(s)" in the output of Asterisk's
// "core show channels count".
var activeCalls = regexp.MustCompile(`(?m)^\s*(\d+) active calls?\b`)

// parseCalls reads the number of calls in progress: a bare number (a
// script of the operator's), or the "N active calls" line of Asterisk's
// "core show channels count".
func parseCalls(out string) (int, error) {
	s := strings.TrimSpace(out)
	if n, err := strconv.Atoi(s); err == nil && n >= 0 {
		return n, nil
	}
	if m := activeCalls.FindStringSubmatch(s); m != nil {
		if n, err := strconv.Atoi(m[1]); err == nil {
			return n, nil
		}
	}
	shown := s
	if len(shown) > 120 {
		shown = shown[:120] + "…"
	}
	return 0, fmt.Errorf("no call count in its output %q: want a number, or Asterisk's \"N active calls\" line", shown)
}
