package main

import (
	"fmt"
	"time"
)

// Maintenance mode (issue 15). Restarting Asterisk on the active box for an
// upgrade costs a failover and a hold-down; stopping flip there makes the
// other box fence it as a hung holder. `flip hold` on either box holds the
// pair (both boxes, over the peer channel): nothing moves by itself — no
// takeover, no release, no failback — while an operator's explicit
// switchover, release or takeover still works. A hold ends by itself at
// its deadline, so a forgotten one cannot disable failover for ever.
//
// The split-brain rule is not held: two holders are resolved as always,
// since never-two is the pair's first promise.

// holdDefault is the length of a hold without --for; holdMax bounds any.
const (
	holdDefault = time.Hour
	holdMax     = 24 * time.Hour
)

// holdState is a hold of the pair (zero: none).
type holdState struct {
	until time.Time
	by    string // who set it: the box where `flip hold` ran
}

// setHold holds this box until now+d, on the word of by.
func (m *machine) setHold(now time.Time, d time.Duration, by string) error {
	if d <= 0 || d > holdMax {
		return fmt.Errorf("a hold lasts more than 0 and at most %s; got %s", holdMax, d)
	}
	m.hold = holdState{until: now.Add(d), by: by}
	return nil
}

// clearHold ends the hold now.
func (m *machine) clearHold() { m.hold = holdState{} }

// heldNow reports a hold in force at now.
func (m *machine) heldNow(now time.Time) bool {
	return !m.hold.until.IsZero() && now.Before(m.hold.until)
}

// holdExpired reports, once, that a hold ran out by itself at now.
func (m *machine) holdExpired(now time.Time) bool {
	if m.hold.until.IsZero() || now.Before(m.hold.until) {
		return false
	}
	m.hold = holdState{}
	return true
}

// held keeps the pair still while a hold is in force: a takeover or a
// release the rules want becomes a stay until the hold ends. The end of an
// operator's drain (causeDrained) is not held: the operator asked for it;
// nor is a pool leader's release for its lease (never two comes first).
func (m *machine) held(now time.Time, d decision) decision {
	if !m.heldNow(now) || d.Verdict == verdictStay || d.Cause == causeDrained || d.Cause == causeLeaseLost || d.Cause == causeLeaseExpired {
		return d
	}
	what := "take over"
	if d.Verdict == verdictRelease {
		what = "release"
	}
	return decision{Verdict: verdictStay, Next: m.hold.until, Held: true,
		Reason: fmt.Sprintf("held by %s until %s: would %s (%s), but nothing moves by itself", m.hold.by, m.hold.until.UTC().Format(time.RFC3339), what, d.Reason)}
}
