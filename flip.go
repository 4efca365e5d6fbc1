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
}

// Causes of transitions, as labels for metrics and the notify hook.
const (
	causeServiceSilent    = "service_silent"     // passive: nobody answered for DeadAfter
	causeOwnServiceSilent = "own_service_silent" // active: own service stopped answering
	causeStartTimeout     = "start_timeout"      // active: services never answered
	causeHolderTimeout    = "holder_timeout"     // passive: a holder did not release in time
	causeTakeoverFailed   = "takeover_failed"    // a resource failed to start
)

// timing is the part of the configuration the decisions depend on.
type timing struct {
	Primary      bool
	DeadAfter    time.Duration
	InitDead     time.Duration
	StartTimeout time.Duration
	HolderWait   time.Duration
}

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
}

func newMachine(t timing, now time.Time, r role) *machine {
	return &machine{t: t, role: r, started: now, since: now}
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
	m.heardService = true
	m.holderSince = time.Time{}
}

// setRole records a role change at now; silence is measured afresh from it.
func (m *machine) setRole(r role, now time.Time) {
	m.role, m.since, m.lastAnswer, m.holderSince = r, now, time.Time{}, time.Time{}
}

// decide is the whole state machine.
//
//	passive: silent for DeadAfter (since the last answered probe's send time,
//	         or since the role change) and allowed to act (primary, or heard
//	         the service once, or InitDead passed)          -> takeover
//	active:  nothing answered within StartTimeout of the takeover, or
//	         silent for DeadAfter after answering            -> release
func (m *machine) decide(now time.Time) decision {
	stay := func(why string, next time.Time) decision {
		return decision{Verdict: verdictStay, Reason: why, Next: next}
	}
	if m.role == roleActive {
		if m.lastAnswer.IsZero() {
			deadline := m.since.Add(m.t.StartTimeout)
			if now.Before(deadline) {
				return stay("services starting", deadline)
			}
			return decision{Verdict: verdictRelease, Cause: causeStartTimeout,
				Reason: fmt.Sprintf("own service did not answer within FLIP_START_TIMEOUT (%s) of the takeover", m.t.StartTimeout)}
		}
		deadline := m.lastAnswer.Add(m.t.DeadAfter)
		if now.Before(deadline) {
			return stay("service answering", deadline)
		}
		return decision{Verdict: verdictRelease, Cause: causeOwnServiceSilent,
			Reason: fmt.Sprintf("own service silent for %s", now.Sub(m.lastAnswer).Round(time.Millisecond))}
	}

	silentFrom := m.since
	if !m.lastAnswer.IsZero() {
		silentFrom = m.lastAnswer
	}
	deadline := silentFrom.Add(m.t.DeadAfter)
	if now.Before(deadline) {
		return stay("service answering", deadline)
	}
	if initEnd := m.started.Add(m.t.InitDead); !m.t.Primary && !m.heardService && now.Before(initEnd) {
		return stay("not primary and never heard the service: waiting for FLIP_INIT_DEAD", initEnd)
	}
	return decision{Verdict: verdictTakeover, Cause: causeServiceSilent,
		Reason: fmt.Sprintf("service silent for %s", now.Sub(silentFrom).Round(time.Millisecond))}
}

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
