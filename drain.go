package main

import (
	"errors"
	"fmt"
	"time"
)

// A drained switchover (issue 13): planned maintenance is the most common
// failover, and a plain switchover drops every call in progress. With
// `flip switchover --drain`, the active box first runs FLIP_DRAIN_CMD once
// (for Asterisk: "core stop gracefully", which refuses new calls and stops
// Asterisk when the last one ends), then counts the calls in progress with
// FLIP_CALLS_CMD every FLIP_DRAIN_POLL, and releases only when none is left.
// If calls remain at the time-out the switchover is called off and
// FLIP_UNDRAIN_CMD undoes the drain command ("core abort shutdown"), unless
// the operator said --force. Throughout, the box stays active and its SIP
// answers (a 503 from an Asterisk shutting down included) keep the other
// box passive.
//
// The decisions (when to poll, when to release, when to give up) live here,
// pure, with the time passed in; the agent runs the commands (drain_run.go).

// drainFailuresMax is how many failed counts in a row call the drain off:
// one failure may be a busy Asterisk console, three are a broken command.
const drainFailuresMax = 3

// causeDrained labels the release at the end of a drain: an operator's
// switchover, not a failure, so no hold-down follows it.
const causeDrained = "drained"

// drainState is a drain in progress (zero: none).
type drainState struct {
	on       bool
	started  time.Time
	deadline time.Time
	force    bool
	calls    int // the last count; -1 before the first
	failures int // failed counts in a row
	lastErr  string
}

// drainAction is what the agent does after a count.
type drainAction int

const (
	drainWait  drainAction = iota // count again at Next
	drainDone                     // release now and hand over
	drainAbort                    // call the switchover off: undo the drain command, stay active
	drainGone                     // the drain ended meanwhile (the box released): nothing to do
)

// drainDecision is the machine's answer to a count.
type drainDecision struct {
	Action drainAction
	Reason string
	Next   time.Time // with drainWait
}

// errDrainRefused explains why a drain cannot start.
var errDrainRefused = errors.New("drain refused")

// startDrain begins a drain at now, ending by now+timeout at the latest.
func (m *machine) startDrain(now time.Time, timeout time.Duration, force bool) error {
	switch {
	case m.role != roleActive:
		return fmt.Errorf("%w: this box is passive: nothing to drain; run it on the active box", errDrainRefused)
	case m.drain.on:
		return fmt.Errorf("%w: a drain is already in progress (started %s ago)", errDrainRefused, now.Sub(m.drain.started).Round(time.Second))
	case timeout <= 0:
		return fmt.Errorf("%w: the drain time-out must be above 0", errDrainRefused)
	}
	m.drain = drainState{on: true, started: now, deadline: now.Add(timeout), force: force, calls: -1}
	return nil
}

// drainCounted takes one count of the calls in progress (err: the count
// failed) at now, and says what to do next; poll is FLIP_DRAIN_POLL.
func (m *machine) drainCounted(now time.Time, calls int, err error, poll time.Duration) drainDecision {
	d := &m.drain
	if !d.on {
		return drainDecision{Action: drainGone, Reason: "the drain ended meanwhile"}
	}
	waited := now.Sub(d.started).Round(time.Millisecond)
	if err != nil {
		d.failures++
		d.lastErr = err.Error()
		if d.failures >= drainFailuresMax && !d.force {
			return m.endDrain(drainAbort, fmt.Sprintf("FLIP_CALLS_CMD failed %d times in a row, the calls in progress are unknown: %v", d.failures, err))
		}
	} else {
		d.failures, d.lastErr, d.calls = 0, "", calls
		if calls == 0 {
			return m.endDrain(drainDone, fmt.Sprintf("no calls left after %s", waited))
		}
	}
	if !now.Before(d.deadline) {
		left := "an unknown number of"
		if d.calls >= 0 {
			left = fmt.Sprint(d.calls)
		}
		if d.force {
			return m.endDrain(drainDone, fmt.Sprintf("drain time-out (%s) with %s calls left: switching anyway (--force)", waited, left))
		}
		return m.endDrain(drainAbort, fmt.Sprintf("%s calls still in progress at the drain time-out (%s): switchover called off", left, waited))
	}
	next := now.Add(poll)
	if next.After(d.deadline) {
		next = d.deadline
	}
	return drainDecision{Action: drainWait, Next: next}
}

// endDrain ends the drain with action.
func (m *machine) endDrain(a drainAction, reason string) drainDecision {
	m.drain.on = false
	return drainDecision{Action: a, Reason: reason}
}

// drained rewrites a release the machine decided while a drain is on: the
// service stopping during a drain is what the drain command asked for
// (Asterisk's "core stop gracefully" exits after the last call), so it is
// the end of the operator's switchover, not a failure: no hold-down, and
// the other box is told to take over at once.
func (m *machine) drained(d decision) decision {
	if !m.drain.on || d.Verdict != verdictRelease || !ownFailure(d.Cause) {
		return d
	}
	d.Cause, d.Reason = causeDrained, "drain: the service stopped by itself ("+d.Reason+"), as the drain command asked: switching over"
	return d
}
