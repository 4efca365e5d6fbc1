package main

import "time"

// The split-brain rule of the machine: what an active box does when
// another box claims its VIP (conflict), and when that is over
// (noConflict). Pure, like the rest of the machine.

// conflictConfirmChecks is how many conflict checks the box that yields
// waits for before it releases. One more check than needed to see
// the conflict gives the keeper, checking on its own schedule, the time to
// see it too and announce: a loser that let go first would leave the
// clients' neighbour entries on its MAC until they go stale (up to about
// 50 s on Linux). It also means one stray ARP reply never costs a release.
const conflictConfirmChecks = 2

// conflictEndChecks is how many conflict checks in a row must find no other
// claimant before a conflict is over: a lost ARP reply or two (loss on the
// LAN) is not the other box letting go.
const conflictEndChecks = 3

// conflict decides what an active box does when another MAC claims one of
// its VIPs (split brain). The rule, the same on both boxes so that exactly
// one keeps the address:
//  1. a box that lost its link while active, or whose agent did not run
//     for a while (stopped, frozen, restarted: alive), yields at once: the
//     other box may have taken over past it, announced and be serving;
//  2. a box that took over past a hung holder keeps it and re-announces
//     while that holder's kernel still claims it: the other box's agent is
//     not acting (the claim stopping ends this: noConflict);
//  0. in a pool, the leader with a lease it can prove keeps it (unless 1
//     applies: its link or its agent was away); any other box yields;
//  3. otherwise the primary keeps it and re-announces, if its own service
//     has answered since it took over (a primary that is not serving has
//     nothing to keep: the other box may have gone past it, its agent
//     restarting, as a hung holder); the other releases at its
//     conflictConfirmChecks-th check that sees the conflict.
//
// The keeper also starts the resources that follow the holder again, once
// per conflict: the other box may have run fonulator after this one did,
// and release never runs it, so the TDMoE stream would stay on the loser.
func (m *machine) conflict(now time.Time) decision {
	if m.role != roleActive {
		return decision{Verdict: verdictStay, Reason: "not active"}
	}
	m.conflicts++
	// Clean checks just before this claim: the other box, checking on its
	// own phase, may have counted one more and ended the conflict on its
	// side, pointing the foneBRIDGE at itself (noConflict).
	gap := m.cleanChecks
	m.cleanChecks = 0
	switch {
	case m.t.Pool && m.leaseValid(now) && !m.linkLost && !m.stalled:
		// In a pool the lease decides: the leader keeps the VIP, every
		// other claimant is a stale holder (past its deadline under
		// FLIP_ETCD_LOSS=hold, or hung) and yields.
		first := !m.keptConflict || gap >= conflictEndChecks-1
		m.keptConflict = true
		return decision{Verdict: verdictStay, Announce: true, Repoint: first,
			Reason: "another box claims the VIP: keeping it (this box holds the lease) and announcing"}
	case m.t.Pool && !m.linkLost && !m.stalled && m.conflicts < conflictConfirmChecks:
		return decision{Verdict: verdictStay, Reason: "another box holds the VIP too: the lease holder keeps it; releasing when the next check sees it too"}
	case m.t.Pool:
		return decision{Verdict: verdictRelease, Cause: causeSplitBrain, Reason: "another box holds the VIP, and this box cannot prove it holds the lease: yielding"}
	case m.linkLost:
		return decision{Verdict: verdictRelease, Cause: causeSplitBrain, Reason: "another box holds the VIP after this box's link came back: yielding"}
	case m.stalled:
		return decision{Verdict: verdictRelease, Cause: causeSplitBrain, Reason: "another box holds the VIP, and flip on this box was not running for a while (stopped, frozen or restarted) while it held it: yielding"}
	case m.forced || (m.t.Primary && !m.lastAnswer.IsZero()) || m.t.broken == mutantBothKeep:
		// The first check of this conflict at which this box keeps, or the
		// first claim after a gap the other box may have taken for the end.
		first := !m.keptConflict || gap >= conflictEndChecks-1
		m.keptConflict = true
		return decision{Verdict: verdictStay, Announce: true, Repoint: first,
			Reason: "another box claims the VIP: keeping it (primary or it took over from a hung holder) and announcing"}
	case m.conflicts < conflictConfirmChecks:
		return decision{Verdict: verdictStay, Reason: "another box holds the VIP too: the primary keeps it; releasing when the next check sees it too"}
	default:
		return decision{Verdict: verdictRelease, Cause: causeSplitBrain, Reason: "another box holds the VIP too: the primary keeps it, releasing"}
	}
}

// noConflict records a conflict check that found no other claimant. After
// conflictEndChecks of them in a row the conflict is over. A box that is
// still active then without having kept the VIP as the keeper (the other
// box let go first: it lost its link, was cut off, or its own service
// failed) announces and repoints: the other box may have pointed the
// clients and the foneBRIDGE at itself.
func (m *machine) noConflict() decision {
	if m.cleanChecks++; m.cleanChecks < conflictEndChecks {
		return decision{Verdict: verdictStay}
	}
	// The hung holder a forced takeover went past no longer claims the
	// VIP: from now on this box is like any other, or a hung box that wakes
	// later and a primary that comes back would both keep it.
	if m.t.broken != mutantForcedForever {
		m.forced = false
	}
	if m.conflicts == 0 {
		return decision{Verdict: verdictStay}
	}
	lost := !m.keptConflict
	m.conflicts, m.keptConflict, m.cleanChecks = 0, false, 0
	if m.role != roleActive || !lost || m.t.broken == mutantKeeperForgetsFonebridge {
		return decision{Verdict: verdictStay}
	}
	return decision{Verdict: verdictStay, Announce: true, Repoint: true,
		Reason: "the other box let go of the VIP first: announcing it and pointing the foneBRIDGE here again"}
}
