package main

import (
	"fmt"
	"time"
)

// Failback is policy, so it lives in the machine: when a primary that is a
// healthy passive asks the active box for the service back, and when it
// stops asking. Time is passed in, as everywhere in the machine.
//
// A healthy passive only proves that this box hears the other box's
// service, not that its own will start: a primary whose own Asterisk is
// broken would fail back, stay silent for FLIP_START_TIMEOUT, release, and
// after the hold-down and FLIP_FAILBACK_DELAY ask again, for ever. So a box
// that failed on its own service (silent, never answered within
// FLIP_START_TIMEOUT, failed to start) does not ask for the service back
// until it has served again (its service answered while it held the VIP)
// or an operator moved the service: like pacemaker's fail count, which
// keeps a resource off a node until it is cleared.

// failbackState is the machine's memory of failback.
type failbackState struct {
	healthySince time.Time // a healthy passive since (zero: not now)
	nextAsk      time.Time // no request before this
	failed       bool      // this box failed on its own service, and has not served since
	failedNoted  bool      // the agent has logged that failback is off
}

// failbackDue reports whether this box should ask the active box for the
// service back now. note is set once when failback is off after a failed
// one, for the log.
func (m *machine) failbackDue(now time.Time) (ask bool, note string) {
	f := &m.fb
	if !m.t.Failback || m.heldNow(now) {
		return false, ""
	}
	if f.failed {
		if !f.failedNoted {
			f.failedNoted = true
			return false, "failback is off: this box's own service failed; it resumes once this box has served again, or after `flip takeover` or `flip switchover`"
		}
		return false, ""
	}
	if !m.healthyPassive(now) {
		f.healthySince = time.Time{}
		return false, ""
	}
	if f.healthySince.IsZero() {
		f.healthySince = now
	}
	if now.Sub(f.healthySince) < m.t.FailbackDelay || now.Before(f.nextAsk) {
		return false, ""
	}
	f.nextAsk = now.Add(m.t.FailbackDelay)
	return true, fmt.Sprintf("healthy passive for FLIP_FAILBACK_DELAY (%s); asking the active box to release for a failback", m.t.FailbackDelay)
}

// failbackTransition follows a role change for the failback rule: an own
// failure turns failback off.
func (m *machine) failbackTransition(r role, cause string) {
	if r == rolePassive && ownFailure(cause) && m.t.broken != mutantFailbackForever {
		m.fb.failed, m.fb.failedNoted = true, false
	}
	m.fb.healthySince = time.Time{}
}

// failbackOn lets failback resume: this box's service answered while it
// held the VIP (it can serve), or an operator moved the service (flip
// takeover or switchover: the operator has judged the boxes).
func (m *machine) failbackOn() { m.fb.failed = false }
