package main

import (
	"strings"
	"testing"
	"time"
)

// TestHeld: while held, neither a takeover nor a release happens by
// itself, and the reason says who held it; the end of an operator's drain
// and the split-brain rule are not held; a hold ends by itself at its
// deadline, and survives a restart of flip through the journal.
func TestHeld(t *testing.T) {
	p := ftMachine(ftTiming(false), rolePassive)
	p.heardService = true
	if err := p.setHold(ftAt(0), time.Minute, "ops@box-a"); err != nil {
		t.Fatal(err)
	}
	d := p.decide(ftAt(5 * time.Second))
	if d.Verdict != verdictStay || !strings.Contains(d.Reason, "held by ops@box-a") || !strings.Contains(d.Reason, "would take over") || !d.Next.Equal(ftAt(time.Minute)) {
		t.Fatalf("passive, silent, held: %+v; want a stay until the hold ends", d)
	}
	if d := p.decide(ftAt(61 * time.Second)); d.Verdict != verdictTakeover {
		t.Fatalf("after the hold: %+v, want the takeover the rules want", d)
	}

	a := ftMachine(ftTiming(false), roleActive)
	a.observe(ftAnswer(time.Second))
	if err := a.setHold(ftAt(time.Second), time.Minute, "box-b"); err != nil {
		t.Fatal(err)
	}
	if d := a.decide(ftAt(10 * time.Second)); d.Verdict != verdictStay || !strings.Contains(d.Reason, "would release") {
		t.Fatalf("active, own service silent, held: %+v; want a stay", d)
	}
	a.conflicts = conflictConfirmChecks
	if d := a.conflict(ftStart); d.Verdict == verdictStay && !d.Announce {
		// The split-brain rule decides as without a hold: yield or keep.
		t.Fatalf("conflict while held: %+v; the split-brain rule must still act", d)
	}

	dr := ftMachine(ftTiming(false), roleActive)
	dr.t.RefusedAfter = 300 * ftMS
	dr.observe(ftAnswer(time.Second))
	if err := dr.setHold(ftAt(time.Second), time.Minute, "box-a"); err != nil {
		t.Fatal(err)
	}
	if err := dr.startDrain(ftAt(1100*ftMS), time.Minute, false); err != nil {
		t.Fatal(err)
	}
	for _, at := range []time.Duration{1200, 1300, 1400, 1500} {
		dr.observeRefused(ftAt(at * ftMS))
	}
	if d := dr.decide(ftAt(1600 * ftMS)); d.Verdict != verdictRelease || d.Cause != causeDrained {
		t.Fatalf("the end of an operator's drain while held: %+v, want the drained release", d)
	}

	var e journalEntry
	a.memory(ftAt(2*time.Second), &e)
	r := ftMachine(ftTiming(false), roleActive)
	r.restore(e)
	if !r.heldNow(ftAt(3*time.Second)) || r.hold.by != "box-b" {
		t.Fatalf("after a restart: hold %+v, want the journalled one", r.hold)
	}
	if r.holdExpired(ftAt(30 * time.Second)) {
		t.Fatal("the hold ran out early")
	}
	if !r.holdExpired(ftAt(61*time.Second)) || r.heldNow(ftAt(61*time.Second)) || r.holdExpired(ftAt(62*time.Second)) {
		t.Fatal("the hold did not run out once at its deadline")
	}
}

// TestSetHoldBounds: a hold lasts more than 0 and at most holdMax.
func TestSetHoldBounds(t *testing.T) {
	m := ftMachine(ftTiming(false), rolePassive)
	for _, d := range []time.Duration{0, -time.Second, holdMax + time.Second} {
		if err := m.setHold(ftAt(0), d, "x"); err == nil {
			t.Errorf("setHold(%s) accepted", d)
		}
	}
	if err := m.setHold(ftAt(0), holdMax, "x"); err != nil {
		t.Errorf("setHold(holdMax): %v", err)
	}
}

// TestHeldNoFailback: a held primary does not ask for the service back.
func TestHeldNoFailback(t *testing.T) {
	tm := ftTiming(true)
	tm.Failback, tm.FailbackDelay = true, time.Second
	m := ftMachine(tm, rolePassive)
	if err := m.setHold(ftAt(0), time.Hour, "x"); err != nil {
		t.Fatal(err)
	}
	for at := time.Duration(0); at < 10*time.Second; at += 100 * ftMS {
		m.observe(ftAnswer(at))
		if ask, _ := m.failbackDue(ftAt(at)); ask {
			t.Fatalf("a held primary asked for failback at %s", at)
		}
	}
}
