package main

import (
	"fmt"
	"time"
)

// A dead Asterisk on the active box, with the peer channel (issue 11).
//
// Without the peer channel the active box must be sure before it gives up
// the service, because nobody may be there to take it: refusedMin port
// refusals spread over FLIP_REFUSED_AFTER (300 ms). With the peer channel
// it knows better: when the other box's last heartbeat says it is passive
// and could take over now (links up, tiebreaker reached, not held down),
// a wrong call costs one quick hand-over, while waiting costs the whole
// window. So the active box confirms its first refusal with probes of its
// own service at once, refusedConfirmSpacing apart, and releases after
// refusedMin refusals in a row with no answer between them; it tells the
// other box, which takes over on that word (peerReleased). The refusals
// come from this box's own kernel over loopback, which never rate-limits
// ICMP there and never loses them.

// refusedConfirmSpacing is the gap between the probes that confirm a
// refusal: refusedMin refusals then span 20 ms, long enough to let a
// socket that Asterisk closes and opens again at once (a transport
// reload) answer in between.
const refusedConfirmSpacing = 10 * time.Millisecond

// couldTakeOver reports whether this box, passive, could take over right
// now, and if not, why. It is what the heartbeat's Ready says.
func (m *machine) couldTakeOver(now time.Time) (bool, string) {
	switch {
	case m.role != rolePassive:
		return false, "this box is active"
	case m.linkDown:
		return false, "a VIP interface has no link"
	case now.Before(m.holdDownEnd):
		return false, fmt.Sprintf("held down until %s (FLIP_HOLD_DOWN, or an operator's release)", m.holdDownEnd.UTC().Format(time.RFC3339))
	case m.t.Tiebreaker && now.Sub(m.lastTie) >= m.t.DeadAfter:
		return false, "no tiebreaker answers"
	}
	return true, ""
}

// readiness is whether this box could take over by itself now, and why
// not; and what the other box's last heartbeat (within FLIP_DEAD_AFTER)
// said of itself: the 3 a.m. question "could the standby take over?".
func (m *machine) readiness(now time.Time) readiness {
	ok, why := m.couldTakeOver(now)
	switch {
	case ok && m.heldNow(now):
		ok, why = false, fmt.Sprintf("held (maintenance) by %s until %s", m.hold.by, m.hold.until.UTC().Format(time.RFC3339))
	case ok && !m.t.Primary && !m.heardService && now.Before(m.started.Add(m.t.InitDead)):
		ok, why = false, "never heard the service since flip started: waiting for FLIP_INIT_DEAD"
	}
	r := readiness{ThisBox: ok, Why: why}
	if m.t.Peer && now.Before(m.peer.aliveUntil) {
		other := m.peer.last.Ready
		r.OtherBox = &other
	}
	return r
}

// peerReady reports that the other box's agent, heard within
// FLIP_DEAD_AFTER, says it is passive, idle and could take over now.
func (m *machine) peerReady(now time.Time) bool {
	if !m.t.Peer || !now.Before(m.peer.aliveUntil) {
		return false
	}
	last := m.peer.last
	return last.Ready && !last.Holds && last.Doing == ""
}

// fastRefusal reports whether the active box may count its own port as
// closed on refusals alone, without FLIP_REFUSED_AFTER: the other box is
// ready to take over.
func (m *machine) fastRefusal(now time.Time) bool {
	return m.role == roleActive && m.peerReady(now)
}

// confirmDue returns when the active box should send a probe that
// confirms a refusal (zero: none is wanted). One confirming probe per
// refusal seen, so they stop at refusedMin and cannot run away.
func (m *machine) confirmDue(now time.Time) time.Time {
	if m.refusedCount == 0 || m.refusedCount >= refusedMin || m.confirmsSent >= m.refusedCount || !m.fastRefusal(now) {
		return time.Time{}
	}
	return m.refusedLast.Add(refusedConfirmSpacing)
}

// confirmSent records that the agent sent the probe confirmDue asked for.
func (m *machine) confirmSent() { m.confirmsSent++ }

// peerReleased decides on the other box's word that it released the
// service and hands it over: take over at once, without this box's own
// silence window, if this box could take over now. The agent still asks
// the wire who holds the VIP first, as before any takeover.
func (m *machine) peerReleased(now time.Time, from string) decision {
	if ok, why := m.couldTakeOver(now); !ok {
		return decision{Verdict: verdictStay, Reason: "the other box released, but " + why + "; the usual rules decide", Next: now}
	}
	return decision{Verdict: verdictTakeover, Cause: causePeerReleased, Reason: from + " released the service and handed it over"}
}

// closedReason says in words why the active box counts its port closed.
func (m *machine) closedReason(now time.Time) string {
	took := now.Sub(m.refusedFrom).Round(time.Millisecond)
	if took < m.t.RefusedAfter {
		return fmt.Sprintf("own service's port closed (ICMP port unreachable): %d refusals in a row within %s, and the other box is ready to take over", m.refusedCount, took)
	}
	return fmt.Sprintf("own service's port closed (ICMP port unreachable) for %s", took)
}
