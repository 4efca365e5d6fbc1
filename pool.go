package main

import (
	"fmt"
	"slices"
	"strings"
	"time"
)

// Pool mode (issue 14): three or more boxes, and an etcd lease instead of
// ARP rules decides which one holds the VIPs. The rules are here, pure like
// the rest of the machine; pool_etcd.go only campaigns, resigns and keeps
// the lease alive as these rules ask, and reports what etcd said.
//
//   - A box campaigns only while it is eligible: passive, links up,
//     tiebreaker reached (if set), not held down after its own failure, not
//     held by an operator, and in hot standby its own service answering on
//     its own address. An active box campaigns on (it stays the leader).
//   - The leader takes over; a box that is not the leader never does.
//   - The leader releases when its own service fails (the usual active
//     rules), and then resigns: the next eligible box wins in milliseconds.
//   - The leader drops the VIPs by itself when it cannot prove that it still
//     holds the lease: at the send time of its last acknowledged keep-alive
//     plus the TTL minus a margin. etcd cannot expire the lease before the
//     TTL has passed since that keep-alive reached it, so no other box can
//     win before this box has let go.
//   - On a lease found gone (etcd said so) the leader releases at once.
//     When etcd cannot be reached (FLIP_ETCD_LOSS): release drops the VIPs
//     at the deadline; hold keeps them while its own service answers, and
//     yields to any other box seen holding a VIP (the split-brain rule).

// leaseMarginDivisor: the margin kept before the lease's end is TTL /
// leaseMarginDivisor (1 s of a 5 s TTL): room for the clock rates of this
// box and etcd's leader to differ, and for the VIPs' removal to finish.
const leaseMarginDivisor = 5

// causeLeaseLost and causeLeaseExpired are the pool's own release causes;
// causeLeaseWon its takeover cause.
const (
	causeLeaseWon     = "lease_won"     // passive: this box won the election
	causeLeaseLost    = "lease_lost"    // active: etcd says the lease or the leader key is gone
	causeLeaseExpired = "lease_expired" // active: no keep-alive acknowledged in time (etcd unreachable)
)

// poolState is what this box knows of the election.
type poolState struct {
	leader   bool      // this box won the election and has not lost it since
	leaseID  int64     // the etcd lease it won on (kept in the journal)
	rev      int64     // the revision it last won with: the fencing token
	renewed  time.Time // send time of the newest acknowledged keep-alive
	lost     bool      // active: etcd said the lease is gone; release at once
	observed poolLeader
	// switchTo: the leader hands over to this box (flip switchover --to)
	// once every other candidate stood aside, until switchUntil.
	switchTo    string
	switchUntil time.Time
	// yieldUntil: a switchover to another box is under way; this box stands
	// aside (does not campaign) until then or until it is over.
	yieldUntil time.Time
	// resumeUntil: flip restarted on a box that holds the VIPs and led on
	// a lease the journal names; the arbiter tries to take that lease up,
	// and this box waits for its word until then (leaseResumeWait).
	resumeUntil time.Time
}

// leaseResumeWait bounds how long a restarted leader keeps the VIPs while
// its arbiter takes its lease up again: the take-up's calls are bounded by
// one keep-alive round (TTL/4), and half as much again is left for the
// answer to reach the loop. A flip restart on the leader (an upgrade, a
// configuration change) then moves nothing; without it the VIPs would
// move, and the calls with them. The price: a leader that is cut off from
// etcd when its flip restarts keeps the VIPs this long without proof.
func leaseResumeWait(ttl time.Duration) time.Duration { return 3 * ttl / (2 * leaseRenewDivisor) }

// poolLeader is the leader as last read from etcd, for the status.
type poolLeader struct {
	Name    string `json:"name,omitempty"`
	Rev     int64  `json:"revision,omitempty"`
	Waiting int    `json:"waiting"` // other candidates
	// Candidates: the names of the waiting candidates, next in line first.
	Candidates []string `json:"candidates,omitempty"`
}

// leaseRenewed takes the send time of a keep-alive etcd acknowledged.
func (m *machine) leaseRenewed(sent time.Time) {
	if sent.After(m.pool.renewed) {
		m.pool.renewed = sent
	}
}

// leaseWon records that this box's campaign won with revision rev on lease.
func (m *machine) leaseWon(rev, lease int64, now time.Time) {
	m.pool.leader, m.pool.rev, m.pool.leaseID, m.pool.lost = true, rev, lease, false
	m.pool.resumeUntil = time.Time{}
}

// leaseResume starts the wait for a restarted leader's lease (resume).
func (m *machine) leaseResume(now time.Time) {
	if m.t.Pool && m.role == roleActive {
		m.pool.resumeUntil = now.Add(leaseResumeWait(m.t.LeaseTTL))
	}
}

// leaseLost records that this box is not the leader any more: it resigned,
// or etcd said its lease or its key is gone. An active box then releases.
func (m *machine) leaseLost() {
	m.pool.lost = m.pool.leader || m.role == roleActive
	m.pool.leader = false // rev stays: the revision it last won with
	m.pool.resumeUntil = time.Time{}
}

// leaseSeen records the leader and the candidates as read from etcd.
func (m *machine) leaseSeen(l poolLeader) { m.pool.observed = l }

// leaseDeadline is the last moment this box can prove that it holds the
// lease; zero before any keep-alive was acknowledged.
func (m *machine) leaseDeadline() time.Time {
	if m.pool.renewed.IsZero() {
		return time.Time{}
	}
	return m.pool.renewed.Add(m.t.LeaseTTL - m.t.LeaseTTL/leaseMarginDivisor)
}

// leaseValid reports whether this box is the leader and can prove it at now.
func (m *machine) leaseValid(now time.Time) bool {
	return m.pool.leader && now.Before(m.leaseDeadline())
}

// poolEligible reports whether this passive box may campaign now, and if
// not, why.
func (m *machine) poolEligible(now time.Time) (bool, string) {
	if ok, why := m.couldTakeOver(now); !ok {
		return false, why
	}
	if m.heldNow(now) {
		return false, "held (maintenance)"
	}
	if now.Before(m.pool.yieldUntil) {
		return false, "standing aside: a switchover to another box is under way"
	}
	if m.t.PoolCold {
		return true, ""
	}
	switch {
	case m.portClosed(now):
		return false, "its own service refuses the probe"
	case m.lastAnswer.IsZero() || now.Sub(m.lastAnswer) >= m.t.DeadAfter:
		return false, "its own service does not answer (hot standby: it must, to campaign)"
	}
	return true, ""
}

// wantsLease reports whether this box should be a candidate now: the
// arbiter campaigns while it is true, and resigns (or gives up the
// campaign) when it turns false.
func (m *machine) wantsLease(now time.Time) bool {
	if m.role == roleActive {
		return !m.pool.lost
	}
	ok, _ := m.poolEligible(now)
	return ok && m.t.broken != mutantPoolNeverCampaigns
}

// decidePassivePool is the passive box's rule in pool mode: it takes over
// when it leads with a lease it can prove, and is eligible.
func (m *machine) decidePassivePool(now time.Time) decision {
	wait := now.Add(m.t.DeadAfter) // a lease event wakes the loop sooner
	stay := func(why string) decision { return decision{Verdict: verdictStay, Reason: why, Next: wait} }
	if !m.pool.leader {
		if ok, why := m.poolEligible(now); !ok {
			return stay("not campaigning: " + why)
		}
		return stay("campaigning: another box leads")
	}
	if !m.leaseValid(now) && m.t.broken != mutantPoolIgnoresDeadline {
		return stay("won the election but cannot prove the lease: waiting for a keep-alive")
	}
	if ok, why := m.poolEligible(now); !ok {
		return stay("won the election but not eligible (" + why + "): resigning")
	}
	return decision{Verdict: verdictTakeover, Cause: causeLeaseWon,
		Reason: fmt.Sprintf("won the election (revision %d)", m.pool.rev)}
}

// decideActivePool is the leader's lease rule; ok is false when the lease
// is fine and the usual active rules decide.
func (m *machine) decideActivePool(now time.Time) (d decision, ok bool) {
	switch {
	case !m.pool.lost && !m.pool.leader && now.Before(m.pool.resumeUntil):
		return decision{Verdict: verdictStay, Next: m.pool.resumeUntil,
			Reason: "flip restarted on the leader: taking its lease up again"}, true
	case m.pool.lost || !m.pool.leader:
		return decision{Verdict: verdictRelease, Cause: causeLeaseLost,
			Reason: "etcd says this box no longer holds the lease (resigned, expired or deleted)"}, true
	case m.pool.switchTo != "" && now.Before(m.pool.switchUntil) && len(m.pool.observed.Candidates) == 1 &&
		m.pool.observed.Candidates[0] == m.pool.switchTo && now.Before(m.leaseDeadline()):
		return decision{Verdict: verdictRelease, Cause: causeOperator,
			Reason: fmt.Sprintf("operator: flip switchover --to %s: the other candidates stood aside", m.pool.switchTo)}, true
	case now.Before(m.leaseDeadline()) || m.t.broken == mutantPoolIgnoresDeadline:
		return decision{}, false
	case m.t.PoolHold:
		return decision{}, false // the usual rules: keep while the service answers
	}
	return decision{Verdict: verdictRelease, Cause: causeLeaseExpired,
		Reason: fmt.Sprintf("no keep-alive acknowledged since %s: the lease may run out, dropping the VIPs before another box can win", m.pool.renewed.UTC().Format("15:04:05.000"))}, true
}

// poolHolderStale reports whether a box that still answers ARP for a VIP
// that this leader is about to take can only be hung: this box won, so the
// holder's lease ran out in etcd, and a running flip drops the VIPs at its
// own deadline, a fifth of the TTL before that. It gets FLIP_DEAD_AFTER
// more to finish (a slow netlink), then it is taken over past, like a
// holder whose heartbeats stopped. Not with FLIP_ETCD_LOSS=hold, where a
// leader cut off from etcd keeps the VIPs on purpose: FLIP_HOLDER_WAIT.
func (m *machine) poolHolderStale(now time.Time) (bool, string) {
	if m.t.PoolHold || !m.leaseValid(now) {
		return false, ""
	}
	if m.holderSince.IsZero() {
		m.holderSince = now
	}
	if now.Sub(m.holderSince) < m.t.DeadAfter {
		return false, ""
	}
	return true, fmt.Sprintf("this box holds the lease (revision %d): the holder's ran out, and its flip did not drop the VIP for %s: it is hung",
		m.pool.rev, now.Sub(m.holderSince).Round(time.Millisecond))
}

// poolSwitchTo starts a switchover to the candidate named to: every other
// candidate stands aside (the arbiter publishes it), and once to is the only
// one waiting this box releases and resigns, so that to wins. It is called
// off at now + TTL (switchExpired).
func (m *machine) poolSwitchTo(to string, now time.Time) error {
	switch {
	case m.role != roleActive || !m.pool.leader:
		return fmt.Errorf("this box does not lead the pool; run it on the leader (%s)", m.pool.observed.Name)
	case !slices.Contains(m.pool.observed.Candidates, to):
		list := "none"
		if c := m.pool.observed.Candidates; len(c) > 0 {
			list = strings.Join(c, ", ")
		}
		return fmt.Errorf("%s is not campaigning (down, or not eligible: run flip status there); candidates now: %s", to, list)
	}
	m.pool.switchTo, m.pool.switchUntil = to, now.Add(m.t.LeaseTTL)
	return nil
}

// switchExpired reports, once, a switchover to another box that did not
// happen in time: the other candidates did not stand aside, or it stopped
// campaigning. It returns its target.
func (m *machine) switchExpired(now time.Time) (string, bool) {
	if m.pool.switchTo == "" || now.Before(m.pool.switchUntil) {
		return "", false
	}
	to := m.pool.switchTo
	m.pool.switchTo = ""
	return to, true
}

// leaseHandover records a switchover published in etcd: toOther, another
// box is its target (this one stands aside for at most a TTL); otherwise it
// is over or this box is the target.
func (m *machine) leaseHandover(toOther bool, now time.Time) {
	m.pool.yieldUntil = time.Time{}
	if toOther {
		m.pool.yieldUntil = now.Add(m.t.LeaseTTL)
	}
}

// poolNext caps the active box's next wake-up at its lease deadline.
func (m *machine) poolNext(now time.Time, d decision) decision {
	for _, dl := range []time.Time{m.leaseDeadline(), m.pool.switchUntil} {
		if d.Verdict == verdictStay && m.role == roleActive && now.Before(dl) && (d.Next.IsZero() || dl.Before(d.Next)) {
			d.Next = dl
		}
	}
	return d
}
