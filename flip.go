package main

import (
	"fmt"
	"time"
)

// role is what this box does for the service address.
type role int

const (
	rolePassive role = iota // probes the VIP, holds nothing
	roleActive              // holds every resource
)

func (r role) String() string {
	if r == roleActive {
		return "active"
	}
	return "passive"
}

// verdict is what the state machine wants the agent to do now.
type verdict int

const (
	verdictStay     verdict = iota
	verdictTakeover         // passive, service silent: take over (after the holder check)
	verdictRelease          // active, own service silent: release everything
)

// decision is what the state machine wants now, why, and when the answer
// can next change if no probe result arrives first.
type decision struct {
	Verdict verdict
	Cause   string    // short label for metrics and hooks, e.g. "service_silent"
	Reason  string    // the same in words, with numbers, for the log
	Next    time.Time // zero when Verdict is an action
	// Announce (with verdictStay on a conflict): this box keeps the VIP and
	// announces it again, so the network follows it.
	Announce bool
	// Repoint (with Announce): start the resources that follow the holder
	// again (the foneBRIDGE): in a split brain the other box may have
	// pointed them at itself.
	Repoint bool
	// Held (with verdictStay): a takeover or release the rules wanted,
	// kept back by a hold (hold.go); Reason says which.
	Held bool
}

// Causes of transitions, as labels for metrics and the notify hook.
const (
	causeServiceSilent    = "service_silent"     // passive: nobody answered for DeadAfter
	causeOwnServiceSilent = "own_service_silent" // active: own service stopped answering
	causeStartTimeout     = "start_timeout"      // active: services never answered
	causeHolderTimeout    = "holder_timeout"     // passive: a holder did not release in time
	causeTakeoverFailed   = "takeover_failed"    // a resource failed to start
	causeIsolated         = "isolated"           // active: no tiebreaker answers
	causeSplitBrain       = "split_brain"        // active: another box holds a VIP too
	causeOperator         = "operator"           // flip release/switchover/takeover
	causeOperatorForced   = "operator_forced"    // flip takeover --force past a holder
	causeFailback         = "failback"           // the primary asked for the service back
	causePeerReleased     = "peer_released"      // the other box released and said so
	causeHolderDead       = "holder_dead"        // passive: the holder's kernel claims the VIP, its flip sends no heartbeat
)

// timing is the part of the configuration the decisions depend on.
type timing struct {
	Primary      bool
	DeadAfter    time.Duration
	InitDead     time.Duration
	StartTimeout time.Duration
	HolderWait   time.Duration
	// HoldDown keeps a box that released because its own service failed
	// from taking over again for this long: with both Asterisks broken the
	// boxes would otherwise hand the address back and forth.
	HoldDown time.Duration
	// Tiebreaker is true when FLIP_TIEBREAKER is set: a box must reach one
	// of those addresses to take over or to stay active.
	Tiebreaker bool
	// RefusedAfter: the probe target's port refused (ICMP port unreachable)
	// for this long, at least refusedMin times, with no SIP answer since,
	// counts as the service being down before DeadAfter. 0: off.
	RefusedAfter time.Duration
	// Peer: the peer channel (FLIP_PEER) is on: heartbeats come and go.
	Peer bool
	// Failback: FLIP_FAILBACK on this (primary) box, and how long it must
	// be a healthy passive before it asks (FLIP_FAILBACK_DELAY).
	Failback      bool
	FailbackDelay time.Duration
	// Pool: pool mode (FLIP_ETCD_ENDPOINTS): an etcd lease decides who
	// holds the VIPs (pool.go). LeaseTTL is its TTL; PoolHold keeps the
	// VIPs while etcd is unreachable (FLIP_ETCD_LOSS=hold); PoolCold: the
	// service starts on takeover, so a passive box campaigns without its
	// own service answering.
	Pool     bool
	LeaseTTL time.Duration
	PoolHold bool
	PoolCold bool
	// broken is a rule broken on purpose: the simulator's mutation table
	// only (mutation.go).
	broken mutant
}

// refusedMin is how many refusals in a row RefusedAfter needs: one stray
// ICMP error is not evidence.
const refusedMin = 3

// machine is the decision logic. It never reads a clock or touches the box:
// every method takes the time it is called at, so tests drive it without
// sleeping and the agent owns all side effects.
type machine struct {
	t            timing
	role         role
	started      time.Time // the agent started
	since        time.Time // the last role change
	lastAnswer   time.Time // send time of the newest answered probe sent after since
	heardService bool      // some probe was answered since the agent started
	holderSince  time.Time // a takeover has been held back by another holder since
	holdDownEnd  time.Time // no takeover before this (own service failed)
	lastTie      time.Time // send time of the newest answered tiebreaker probe
	forced       bool      // active by a takeover past a holder that did not release
	linkLost     bool      // active, and a VIP interface lost its link meanwhile
	linkDown     bool      // a VIP interface has no link now
	refusedFrom  time.Time // first port refusal since the last answer
	refusedCount int       // refusals since then
	refusedLast  time.Time // send time of the newest of them
	confirmsSent int       // confirming probes sent for them (fastrefusal.go)
	conflicts    int       // active: checks that found another claimant in this conflict
	cleanChecks  int       // checks in a row, since, that found none: conflictEndChecks end it
	lastAlive    time.Time // the agent last showed it runs (alive)
	wokeAt       time.Time // the agent ran again after a gap (alive): silence before it is no evidence
	stalled      bool      // active, and the agent did not run for a while (stopped, frozen, restarted)
	resumed      bool      // active since the agent started: the services were started long ago
	keptConflict bool      // this box announced as the keeper in the current conflict
	pointedAt    time.Time // this box last pointed the foneBRIDGE at itself
	peerPointed  int64     // the other box's newest fonulator run (Unix ms) already answered
	fb           failbackState
	drain        drainState // a drained switchover under way (drain.go)
	sync         syncState  // the standby sync (sync.go)
	hold         holdState  // maintenance mode: nothing moves by itself (hold.go)
	peer         peerView
	pool         poolState // pool mode: the election (pool.go)
}

func newMachine(t timing, now time.Time, r role) *machine {
	// The tiebreaker gets the same grace as the service at start. A box
	// that starts holding the VIP had no agent for a while: what happened
	// meanwhile (another box took over past it) it cannot know.
	return &machine{t: t, role: r, started: now, since: now, lastTie: now, lastAlive: now,
		stalled: r == roleActive && t.broken != mutantNoStallRule, resumed: r == roleActive}
}

// observe takes one probe result. A probe sent before the last role change
// never counts: a late or retransmitted answer meant for the old role
// (sipgo retransmits at 500 ms) must not vouch for the new one.
func (m *machine) observe(r probeResult) {
	if !r.Answered || r.Sent.Before(m.since) {
		return
	}
	if r.Sent.After(m.lastAnswer) {
		m.lastAnswer = r.Sent
	}
	if m.role == roleActive {
		m.failbackOn()
	}
	m.heardService = true
	if !m.t.Pool {
		// The service answers: the holder a takeover waited for serves
		// after all. In a pool the probe is this box's own service, which
		// says nothing of the holder.
		m.holderSince = time.Time{}
	}
	m.clearRefusals()
}

// observeRefused takes a refusal (ICMP port unreachable) of the probe
// target's port at time at.
func (m *machine) observeRefused(at time.Time) {
	if at.Before(m.since) {
		return
	}
	if m.refusedFrom.IsZero() {
		m.refusedFrom = at
	}
	if at.After(m.refusedLast) {
		m.refusedLast = at
	}
	m.refusedCount++
}

// clearRefusals forgets the refusals: an answer came, or the role changed.
func (m *machine) clearRefusals() {
	m.refusedFrom, m.refusedLast, m.refusedCount, m.confirmsSent = time.Time{}, time.Time{}, 0, 0
}

// portClosed reports whether refusals prove the service down at now:
// refusedMin of them over FLIP_REFUSED_AFTER, or, on the active box with
// the other box ready, refusedMin confirmed at once (fastrefusal.go).
func (m *machine) portClosed(now time.Time) bool {
	if m.t.RefusedAfter <= 0 || m.refusedCount < refusedMin || m.refusedFrom.IsZero() {
		return false
	}
	return now.Sub(m.refusedFrom) >= m.t.RefusedAfter || m.fastRefusal(now)
}

// observeTiebreaker takes the send time of an answered tiebreaker probe.
func (m *machine) observeTiebreaker(sent time.Time) {
	if sent.After(m.lastTie) {
		m.lastTie = sent
	}
}

// setRole records a role change at now; silence is measured afresh from it.
// A release for an own failure (cause) starts the hold-down.
func (m *machine) setRole(r role, now time.Time, cause string) {
	m.failbackTransition(r, cause)
	m.role, m.since, m.lastAnswer, m.holderSince = r, now, time.Time{}, time.Time{}
	m.clearRefusals()
	m.forced = r == roleActive && (cause == causeHolderTimeout || cause == causeHolderDead || cause == causeOperatorForced)
	m.linkLost, m.conflicts, m.cleanChecks, m.stalled, m.resumed, m.keptConflict = false, 0, 0, false, false, false
	m.drain = drainState{} // a role change ends any drain
	m.pool.lost, m.pool.switchTo = false, ""
	m.syncRoleChange(r)
	if r == rolePassive && ownFailure(cause) && m.t.broken != mutantNoHoldDown {
		m.holdDownEnd = now.Add(m.t.HoldDown)
	}
}

// handsOver reports a release after which the other box is told to take
// over at once (peerReleased): this box's own service failed, so the
// other box should not first wait out its own silence window.
func (d decision) handsOver() bool {
	return d.Verdict == verdictRelease && ownFailure(d.Cause)
}

// ownFailure tells the causes that say this box's own service is broken.
func ownFailure(cause string) bool {
	return cause == causeOwnServiceSilent || cause == causeStartTimeout || cause == causeTakeoverFailed
}

// setLink records whether every VIP interface has its link. Losing it while
// active is remembered: the box may have been cut off while the other took
// over, and must check before it keeps the address. While the link is down
// this box sees nothing, so silence and the wait for a holder are measured
// afresh when it comes back, as after a stall (alive).
func (m *machine) setLink(up bool, now time.Time) {
	if !up && m.role == roleActive {
		m.linkLost = true
	}
	if m.linkDown && up && m.t.broken != mutantNoStallRule {
		m.woke(now)
	}
	m.linkDown = !up
}

// decide is the whole state machine.
//
//	passive: silent for DeadAfter (since the last answered probe's send time,
//	         or since the role change), not held down after an own failure,
//	         reaching a tiebreaker (if set), and allowed to act (primary, or
//	         heard the service once, or InitDead passed)  -> takeover
//	active:  no tiebreaker answer for DeadAfter (if set)   -> release
//	         nothing answered within StartTimeout of the takeover, or
//	         silent for DeadAfter after answering            -> release
func (m *machine) decide(now time.Time) decision {
	return m.poolNext(now, m.held(now, m.drained(m.decideRole(now))))
}

// decideRole is decide before a drain is taken into account (drain.go).
func (m *machine) decideRole(now time.Time) decision {
	stay := func(why string, next time.Time) decision {
		return decision{Verdict: verdictStay, Reason: why, Next: next}
	}
	if m.t.Pool && m.role == rolePassive {
		return m.decidePassivePool(now)
	}
	if m.t.Pool {
		if d, ok := m.decideActivePool(now); ok {
			return d
		}
	}
	tieDeadline := m.lastTie.Add(m.t.DeadAfter)
	isolated := m.t.Tiebreaker && !now.Before(tieDeadline)
	if m.role == roleActive {
		if isolated {
			return decision{Verdict: verdictRelease, Cause: causeIsolated,
				Reason: fmt.Sprintf("no tiebreaker answered for %s: this box is cut off", now.Sub(m.lastTie).Round(time.Millisecond))}
		}
		next := func(d time.Time) time.Time {
			if m.t.Tiebreaker && tieDeadline.Before(d) {
				return tieDeadline
			}
			return d
		}
		if m.lastAnswer.IsZero() && m.resumed {
			// Resumed holding the VIP: the services are not starting, they
			// run or they do not; the usual silence applies from the start.
			if m.portClosed(now) || !now.Before(m.since.Add(m.t.DeadAfter)) {
				return decision{Verdict: verdictRelease, Cause: causeOwnServiceSilent,
					Reason: fmt.Sprintf("own service did not answer within FLIP_DEAD_AFTER (%s) of flip's start", m.t.DeadAfter)}
			}
			return stay("flip restarted on the active box: checking its service", next(m.refusedDeadline(m.since.Add(m.t.DeadAfter))))
		}
		if m.lastAnswer.IsZero() {
			deadline := latest(m.since.Add(m.t.StartTimeout), m.wokeAt.Add(m.t.DeadAfter))
			if now.Before(deadline) {
				return stay("services starting", next(deadline))
			}
			return decision{Verdict: verdictRelease, Cause: causeStartTimeout,
				Reason: fmt.Sprintf("own service did not answer within FLIP_START_TIMEOUT (%s) of the takeover", m.t.StartTimeout)}
		}
		deadline := latest(m.lastAnswer, m.wokeAt).Add(m.t.DeadAfter)
		if m.portClosed(now) {
			return decision{Verdict: verdictRelease, Cause: causeOwnServiceSilent, Reason: m.closedReason(now)}
		}
		if now.Before(deadline) {
			return stay("service answering", next(m.refusedDeadline(deadline)))
		}
		return decision{Verdict: verdictRelease, Cause: causeOwnServiceSilent,
			Reason: fmt.Sprintf("own service silent for %s", now.Sub(m.lastAnswer).Round(time.Millisecond))}
	}

	silentFrom := latest(latest(m.since, m.lastAnswer), m.wokeAt)
	deadline := silentFrom.Add(m.t.DeadAfter)
	if now.Before(deadline) && !m.portClosed(now) {
		return stay("service answering", m.refusedDeadline(deadline))
	}
	if m.linkDown {
		// Re-evaluated when the link comes back.
		return stay("a VIP interface has no link: not taking over", now.Add(m.t.DeadAfter))
	}
	if serving, until := m.peerServes(now); serving {
		// Re-evaluated when its word runs out, or the next heartbeat.
		return stay("the other box says it holds the VIP and its service answers: this box's path to it is broken, not the service", until)
	}
	if now.Before(m.holdDownEnd) {
		return stay("held down after this box's own service failed (FLIP_HOLD_DOWN)", m.holdDownEnd)
	}
	if isolated {
		// Re-evaluated on the next probe result; no deadline of its own.
		return stay("no tiebreaker answers: this box may be cut off, not taking over", now.Add(m.t.DeadAfter))
	}
	if initEnd := m.started.Add(m.t.InitDead); !m.t.Primary && !m.heardService && now.Before(initEnd) {
		return stay("not primary and never heard the service: waiting for FLIP_INIT_DEAD", initEnd)
	}
	why := fmt.Sprintf("service silent for %s", now.Sub(silentFrom).Round(time.Millisecond))
	if now.Before(deadline) {
		why = fmt.Sprintf("service's port closed (ICMP port unreachable) for %s", now.Sub(m.refusedFrom).Round(time.Millisecond))
	}
	return decision{Verdict: verdictTakeover, Cause: causeServiceSilent, Reason: why}
}

// refusedDeadline is the earlier of d and the moment refusals would prove
// the service down, so the agent wakes up for it.
func (m *machine) refusedDeadline(d time.Time) time.Time {
	if m.t.RefusedAfter > 0 && !m.refusedFrom.IsZero() {
		if r := m.refusedFrom.Add(m.t.RefusedAfter); r.Before(d) {
			return r
		}
	}
	return d
}

// healthyPassive reports a passive box that could serve right now: it
// hears the service, its links are up, it reaches a tiebreaker (if set)
// and it is not held down. Failback waits for this to hold for a while.
func (m *machine) healthyPassive(now time.Time) bool {
	return m.role == rolePassive && !m.lastAnswer.IsZero() && now.Sub(m.lastAnswer) < m.t.DeadAfter &&
		!m.linkDown && !now.Before(m.holdDownEnd) &&
		(!m.t.Tiebreaker || now.Sub(m.lastTie) < m.t.DeadAfter)
}

// holdOff keeps this box from taking over for d: an operator released it
// (flip release, switchover) or the other box asked for the service back,
// and it must not take the service straight back while the other box
// takes over.
func (m *machine) holdOff(now time.Time, d time.Duration) {
	if end := now.Add(d); end.After(m.holdDownEnd) {
		m.holdDownEnd = end
	}
}

// clearHoldDown lets an operator's flip takeover through a hold-down.
func (m *machine) clearHoldDown() { m.holdDownEnd = time.Time{} }

// holderSeen is called when a takeover was wanted but another box still
// answers ARP for a VIP. The passive box waits for it to release, rather than
// add a second copy, for at most HolderWait (by default StartTimeout +
// DeadAfter: the longest an honest holder stays silent before it releases by
// itself). It returns true once that wait is over: the holder is taken to be
// hung, and the takeover goes ahead, announcing until the network follows.
func (m *machine) holderSeen(now time.Time) bool {
	if m.holderSince.IsZero() {
		m.holderSince = now
	}
	return now.Sub(m.holderSince) >= m.t.HolderWait
}
