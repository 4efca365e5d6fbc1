package main

import (
	"fmt"
	"time"
)

// The effects of a hold (hold.go has the rules): the request from the
// control socket or the other box, the word to the other box, the log
// lines that say "held", and the status.

// Peer messages that hold and release the pair.
const (
	peerHold   = "hold"
	peerUnhold = "unhold"
)

// holdMsg is what a hold message carries.
type holdMsg struct {
	UntilMS int64  `json:"until_ms"` // Unix ms
	By      string `json:"by"`
}

// holdStatus is the hold in `flip status` and /status.
type holdStatus struct {
	Held  bool      `json:"held"`
	Until string    `json:"until,omitempty"`
	By    string    `json:"by,omitempty"`
	until time.Time // Until as a time, for the status and the metric
}

// String is the hold in one line.
func (h holdStatus) String() string {
	if !h.Held {
		return "not held"
	}
	return fmt.Sprintf("HELD (maintenance) by %s until %s: nothing moves by itself; `flip unhold` ends it", h.By, h.Until)
}

// hold holds the pair for d on this box and, with the peer channel, on the
// other; by names who asked. It returns a note for the operator.
func (a *agent) hold(d time.Duration, by string) (string, error) {
	if err := a.m.setHold(a.now(), d, by); err != nil {
		return "", err
	}
	a.holdChanged("held: nothing moves by itself", "for", d)
	if a.arb != nil {
		return fmt.Sprintf("held until %s on this box only (a pool has no peer channel): it does not campaign, and as the leader it releases for nothing but its lease; run `flip hold` on every box to hold the pool", a.m.hold.until.UTC().Format(time.RFC3339)), nil
	}
	if !a.hasPeer() {
		return fmt.Sprintf("held until %s on this box only (no peer channel): run `flip hold` on the other box too", a.m.hold.until.UTC().Format(time.RFC3339)), nil
	}
	msg := peerMsg{Type: peerHold, Hold: &holdMsg{UntilMS: a.m.hold.until.UnixMilli(), By: by}}
	if err := a.transmit(msg, 2); err != nil {
		return fmt.Sprintf("held until %s on this box; the other box was NOT told (%v): run `flip hold` there too", a.m.hold.until.UTC().Format(time.RFC3339), err), nil
	}
	return fmt.Sprintf("held until %s on both boxes (the other told over the peer channel)", a.m.hold.until.UTC().Format(time.RFC3339)), nil
}

// unhold ends the hold on this box and, with the peer channel, the other.
func (a *agent) unhold(by string) string {
	a.m.clearHold()
	a.holdChanged("hold ended by an operator: the usual rules decide again", "by", by)
	if a.arb != nil {
		return "hold ended on this box only (a pool has no peer channel): run `flip unhold` on the other boxes too"
	}
	if !a.hasPeer() {
		return "hold ended on this box only (no peer channel): run `flip unhold` on the other box too"
	}
	if err := a.transmit(peerMsg{Type: peerUnhold, Hold: &holdMsg{By: by}}, 2); err != nil {
		return fmt.Sprintf("hold ended on this box; the other box was NOT told (%v): run `flip unhold` there too", err)
	}
	return "hold ended on both boxes"
}

// onPeerHold applies a hold or its end sent by the other box.
func (a *agent) onPeerHold(m peerMsg) {
	if m.Hold == nil {
		return
	}
	if m.Type == peerUnhold {
		a.m.clearHold()
		a.holdChanged("hold ended on the other box's word", "peer", m.From)
		return
	}
	d := time.UnixMilli(m.Hold.UntilMS).Sub(a.now())
	if err := a.m.setHold(a.now(), d, m.Hold.By); err != nil {
		a.log.Warn("ignoring the other box's hold", "peer", m.From, "err", err)
		return
	}
	a.holdChanged("held on the other box's word: nothing moves by itself", "peer", m.From)
}

// checkHold ends a hold that ran out, on the loop.
func (a *agent) checkHold() {
	if a.m.holdExpired(a.now()) {
		a.holdChanged("hold ran out: the usual rules decide again")
	}
}

// holdChanged logs the change, makes every later log line of the agent
// say whether it is held, records it in the journal (a hold survives a
// restart of flip) and tells the status.
func (a *agent) holdChanged(msg string, args ...any) {
	if a.baseLog == nil {
		a.baseLog = a.log
	}
	h := holdStatus{}
	if a.m.heldNow(a.now()) {
		h = holdStatus{Held: true, Until: timeString(a.m.hold.until), By: a.m.hold.by, until: a.m.hold.until}
		a.log = a.baseLog.With("held", fmt.Sprintf("by %s until %s", h.By, a.m.hold.until.UTC().Format(time.RFC3339)))
	} else {
		a.log = a.baseLog
	}
	a.log.Warn(msg, args...)
	op := opPassive
	if a.m.role == roleActive {
		op = opActive
	}
	a.record(journalEntry{Op: op})
	a.ev.Held(h)
}
