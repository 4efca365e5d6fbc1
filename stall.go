package main

import "time"

// What the machine knows about the times its agent did not run: a stall
// (SIGSTOP, a frozen VM), a restart that found the VIP, and the memory the
// journal carries across a restart of flip.

// alive is called by the agent whenever it runs (each step, each resource
// phase). A gap longer than DeadAfter since the last call means the agent
// did not run: SIGSTOP, a frozen VM. The probes it did not send are no
// evidence of silence, so silence is measured afresh from now; and if it
// held the VIP meanwhile, another box may have taken over past it, so in a
// conflict it yields (conflict).
func (m *machine) alive(now time.Time) {
	if now.Sub(m.lastAlive) > m.t.DeadAfter && m.t.broken != mutantNoStallRule {
		m.woke(now)
		if m.lastTie.Before(now) {
			m.lastTie = now
		}
		m.resumedHolding()
	}
	m.lastAlive = now
}

// woke restarts what this box measures of the world at now, after a time
// it could not look (its agent stalled, its link was down): silence and
// refusals are counted afresh, and so is the wait for a holder, which is
// the time a running agent watched it not release.
func (m *machine) woke(now time.Time) {
	m.wokeAt = now
	m.clearRefusals()
	m.holderSince = time.Time{}
}

// resumedHolding marks an active box whose flip was not running for a
// while as it held the VIP (stalled, or a restart finished a journalled
// takeover): in a conflict it yields.
func (m *machine) resumedHolding() {
	if m.role == roleActive && m.t.broken != mutantNoStallRule {
		m.stalled = true
	}
}

// latest is the later of two times.
func latest(a, b time.Time) time.Time {
	if a.After(b) {
		return a
	}
	return b
}

// memory is what the journal keeps of the machine across a restart of
// flip: the end of a hold-down still running, whether failback is off, a
// conflict this box has not won, and when it last pointed the foneBRIDGE
// at itself.
func (m *machine) memory(now time.Time, e *journalEntry) {
	if now.Before(m.holdDownEnd) {
		e.HoldDownUntil = m.holdDownEnd
	}
	e.FailbackOff = m.fb.failed
	e.ConflictOpen = m.role == roleActive && m.conflicts > 0 && !m.keptConflict
	e.PointedAt = m.pointedAt
	if m.heldNow(now) {
		e.HoldUntil, e.HoldBy = m.hold.until, m.hold.by
	}
	if m.pool.leader {
		e.Lease = m.pool.leaseID
	}
}

// restore takes back what memory kept, after a restart.
func (m *machine) restore(e journalEntry) {
	if e.HoldDownUntil.After(m.holdDownEnd) {
		m.holdDownEnd = e.HoldDownUntil
	}
	m.fb.failed = m.fb.failed || e.FailbackOff
	if !e.HoldUntil.IsZero() {
		m.hold = holdState{until: e.HoldUntil, by: e.HoldBy}
	}
	if e.PointedAt.After(m.pointedAt) {
		m.pointedAt = e.PointedAt
	}
	if e.ConflictOpen && m.role == roleActive && m.t.broken != mutantKeeperForgetsFonebridge {
		m.conflicts = 1
	}
}
