package main

import (
	"fmt"
	"time"
)

// Heartbeats (issue 11): with FLIP_PEER each agent tells the other, a few
// times per FLIP_DEAD_AFTER, that it runs and what it is and does. Their
// silence is what ARP cannot tell: a box whose kernel still answers for the
// VIP but whose flip is gone (frozen, killed, SIGSTOP) is a dead holder,
// taken over at once instead of after FLIP_HOLDER_WAIT.

// heartbeatsPerDeadAfter is how many heartbeats go out per FLIP_DEAD_AFTER:
// three can be lost before the other box's silence counts, and at the
// default (1 s) they cost a datagram every 250 ms.
const heartbeatsPerDeadAfter = 4

// heartbeat is what one agent says about itself.
type heartbeat struct {
	Role    string `json:"role"`            // active or passive
	Holds   bool   `json:"holds"`           // it holds the VIPs
	Serving bool   `json:"serving"`         // its own service answered within FLIP_DEAD_AFTER
	Doing   string `json:"doing,omitempty"` // doingTakeover, doingRelease: a step under way
	// Ready: a passive box that could take over now (links up, tiebreaker
	// reached, not held down). The holder then confirms its own dead
	// service in milliseconds instead of FLIP_REFUSED_AFTER (fastrefusal.go).
	Ready bool `json:"ready,omitempty"`
	// Pointed: when this box last pointed the foneBRIDGE at itself (Unix
	// ms; 0: not since its journal began). A holder that hears a later one
	// from a box that holds nothing points it back (heardPeer).
	Pointed int64 `json:"pointed,omitempty"`
	BusyMS  int64 `json:"busy_ms,omitempty"` // and no heartbeat for at most this long
}

// What a heartbeat says the sender is doing.
const (
	doingTakeover = "taking-over"
	doingRelease  = "releasing"
)

// peerView is what the machine knows of the other box's agent.
type peerView struct {
	aliveUntil time.Time // its agent is known to run until then
	last       heartbeat // what it said last
}

// heardPeer takes a heartbeat received at now. The other agent counts as
// running for FLIP_DEAD_AFTER more, or as long as the step it announced
// (a long release sends no heartbeat). A box that holds the VIP with its
// flip stalled (stopped, frozen, restarted) and hears that the other holds
// it too yields at once, before any conflict check and without announcing.
func (m *machine) heardPeer(now time.Time, hb heartbeat) decision {
	// Each heartbeat replaces the last one's promise: a plain one after a
	// busy one means the step is over.
	m.peer.aliveUntil = now.Add(max(m.t.DeadAfter, time.Duration(hb.BusyMS)*time.Millisecond))
	m.peer.last = hb
	if hb.Holds {
		// The holder this box may have gone past is alive after all: in a
		// conflict, the ordinary rule decides, not "forced".
		m.forced = false
	}
	if m.role == roleActive && m.stalled && hb.Holds {
		return decision{Verdict: verdictRelease, Cause: causeSplitBrain,
			Reason: "the other box says it holds the VIP, and flip on this box was not running for a while: yielding"}
	}
	if m.pointedBack(hb) {
		return decision{Verdict: verdictStay, Repoint: true,
			Reason: "the other box pointed the foneBRIDGE at itself after this box did, and holds nothing now: pointing it back here"}
	}
	return decision{Verdict: verdictStay}
}

// pointedBack reports, once per such run, that the other box ran fonulator
// after this holder did and let go again: out of this box's view (a
// partition) or on a view that loss made wrong, so no conflict check ever
// saw its claim. Without this the TDMoE stream (every PRI/T1 call) stays on
// the box that released. Each of its runs is answered once, so a clock
// skew between the boxes costs at most one needless run, never a loop.
func (m *machine) pointedBack(hb heartbeat) bool {
	if m.role != roleActive || hb.Holds || hb.Doing != "" || hb.Pointed == 0 ||
		hb.Pointed <= m.peerPointed || m.t.broken == mutantKeeperForgetsFonebridge {
		return false
	}
	m.peerPointed = hb.Pointed
	// A run in the same millisecond as this box's (both took over at once
	// during a partition) may have been the later one: point it back then
	// too. Each run is answered once, so a tie costs one run, no loop.
	return m.pointedAt.IsZero() || hb.Pointed >= m.pointedAt.UnixMilli()
}

// pointedHere records that this box pointed the resources that follow the
// holder (the foneBRIDGE) at itself at now.
func (m *machine) pointedHere(now time.Time) { m.pointedAt = now }

// holderGone is called during a holder check that found the holder on the
// wire. It reports, when the peer channel is on, that no heartbeat came for
// FLIP_DEAD_AFTER (since the start, at first) while the wire to the holder
// worked for FLIP_DEAD_AFTER (its ARP answers: a live agent's heartbeats
// would have come that way too, so the end of a partition is no evidence),
// and that the last heartbeat did not announce a release: the holder's flip
// is gone, whatever its kernel says.
func (m *machine) holderGone(now time.Time) (bool, string) {
	if m.t.Pool {
		return m.poolHolderStale(now)
	}
	if !m.t.Peer || m.t.broken == mutantNoHeartbeatRule {
		return false, ""
	}
	if m.holderSince.IsZero() {
		m.holderSince = now
	}
	until := m.peer.aliveUntil
	if until.IsZero() {
		until = m.started.Add(m.t.DeadAfter)
	}
	if now.Before(until) || now.Sub(m.holderSince) < m.t.DeadAfter || m.peer.last.Doing == doingRelease && !m.peer.last.Holds {
		return false, ""
	}
	return true, fmt.Sprintf("no heartbeat from the other box for %s: its flip is gone", now.Sub(until.Add(-m.t.DeadAfter)).Round(time.Millisecond))
}

// peerServes reports that the other box's agent, heard within
// FLIP_DEAD_AFTER, says it holds the VIP and its own service answers: a
// passive box whose probes are silent then has lost its path to the
// service (a cut LAN, a firewall), and taking over would make two holders.
func (m *machine) peerServes(now time.Time) (bool, time.Time) {
	if !m.t.Peer || !now.Before(m.peer.aliveUntil) || m.t.broken == mutantNoHeartbeatRule {
		return false, time.Time{}
	}
	last := m.peer.last
	return last.Holds && last.Serving && last.Doing == "", m.peer.aliveUntil
}

// beat is this box's heartbeat now.
func (m *machine) beat(now time.Time) heartbeat {
	ready, _ := m.couldTakeOver(now)
	hb := heartbeat{Role: m.role.String(), Holds: m.role == roleActive,
		Serving: !m.lastAnswer.IsZero() && now.Sub(m.lastAnswer) < m.t.DeadAfter, Ready: ready}
	if !m.pointedAt.IsZero() {
		hb.Pointed = m.pointedAt.UnixMilli()
	}
	return hb
}
