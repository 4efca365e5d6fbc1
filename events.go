package main

import (
	"net"
	"net/netip"
	"time"
)

// events is told what the agent does, so that metrics, the notify hook and
// systemd's status line can follow it without the agent knowing them. Calls
// come from the agent's loop, one at a time: an implementation must return
// quickly and never block (a takeover waits for it).
type events interface {
	// Started: the agent looked at the box and resumes in this role.
	Started(r role, vipsHeld int)
	// Probed: one probe result (RTT is set when it was answered).
	Probed(r probeResult)
	// Phase: one resource started or stopped, or the announcement sent.
	Phase(action, resource string, d time.Duration, err error)
	// Transition: the role changed (from != to), or a takeover was aborted
	// (from == to == passive, ok false). cause is a short label (the cause*
	// constants), reason the same in words an operator can act on; total is
	// the takeover or release time.
	Transition(from, to role, cause, reason string, ok bool, total time.Duration)
	// Conflict: another MAC claims a VIP this box wants or holds.
	Conflict(vip netip.Addr, holder net.HardwareAddr)
	// Fenced: the fence command ran before a takeover (err nil: it worked).
	Fenced(err error, d time.Duration)
	// Stopping: the agent is exiting and leaves the box as it is.
	Stopping()
	// Drained: a drained switchover started, counted its calls, or ended.
	Drained(s drainStatus)
	// Synced: a run of FLIP_SYNC_CMD started or ended.
	Synced(s syncStatus)
	// Held: maintenance mode began or ended.
	Held(h holdStatus)
	// Ready: whether a takeover could happen now changed.
	Ready(r readiness)
	// Pool: what this box knows of the pool's election changed (pool mode).
	Pool(p poolStatus)
}

// nopEvents ignores everything; embed it to implement only some methods.
type nopEvents struct{}

func (nopEvents) Started(role, int)                                          {}
func (nopEvents) Probed(probeResult)                                         {}
func (nopEvents) Phase(string, string, time.Duration, error)                 {}
func (nopEvents) Transition(role, role, string, string, bool, time.Duration) {}
func (nopEvents) Fenced(error, time.Duration)                                {}
func (nopEvents) Conflict(netip.Addr, net.HardwareAddr)                      {}
func (nopEvents) Stopping()                                                  {}
func (nopEvents) Drained(drainStatus)                                        {}
func (nopEvents) Synced(syncStatus)                                          {}
func (nopEvents) Held(holdStatus)                                            {}
func (nopEvents) Ready(readiness)                                            {}
func (nopEvents) Pool(poolStatus)                                            {}

// multiEvents tells every listener, in order.
type multiEvents []events

func (m multiEvents) Started(r role, held int) {
	for _, e := range m {
		e.Started(r, held)
	}
}

func (m multiEvents) Probed(r probeResult) {
	for _, e := range m {
		e.Probed(r)
	}
}

func (m multiEvents) Phase(action, resource string, d time.Duration, err error) {
	for _, e := range m {
		e.Phase(action, resource, d, err)
	}
}

func (m multiEvents) Transition(from, to role, cause, reason string, ok bool, total time.Duration) {
	for _, e := range m {
		e.Transition(from, to, cause, reason, ok, total)
	}
}

func (m multiEvents) Fenced(err error, d time.Duration) {
	for _, e := range m {
		e.Fenced(err, d)
	}
}

func (m multiEvents) Conflict(vip netip.Addr, holder net.HardwareAddr) {
	for _, e := range m {
		e.Conflict(vip, holder)
	}
}

func (m multiEvents) Stopping() {
	for _, e := range m {
		e.Stopping()
	}
}

func (m multiEvents) Drained(s drainStatus) {
	for _, e := range m {
		e.Drained(s)
	}
}

func (m multiEvents) Synced(s syncStatus) {
	for _, e := range m {
		e.Synced(s)
	}
}

func (m multiEvents) Held(h holdStatus) {
	for _, e := range m {
		e.Held(h)
	}
}

func (m multiEvents) Ready(r readiness) {
	for _, e := range m {
		e.Ready(r)
	}
}

func (m multiEvents) Pool(p poolStatus) {
	for _, e := range m {
		e.Pool(p)
	}
}
