package main

import (
	"testing"
	"time"
)

// fbMachine is a primary with FLIP_FAILBACK, passive, hearing the other
// box's service every 100 ms from `from` on.
func fbMachine(t *testing.T) *machine {
	t.Helper()
	tm := ftTiming(true)
	tm.Failback, tm.FailbackDelay, tm.HoldDown = true, 5*time.Second, 2*time.Minute
	return newMachine(tm, ftStart, rolePassive)
}

func hearUntil(m *machine, from, to time.Duration) {
	for d := from; d <= to; d += 100 * ftMS {
		m.observe(ftAnswer(d))
	}
}

func TestFailbackAsksAfterTheDelay(t *testing.T) {
	m := fbMachine(t)
	var asks []time.Duration
	for d := time.Duration(0); d <= 12*time.Second; d += 100 * ftMS {
		m.observe(ftAnswer(d))
		if ask, _ := m.failbackDue(ftAt(d)); ask {
			asks = append(asks, d)
		}
	}
	// Healthy from 0 s: asks at 5 s (FLIP_FAILBACK_DELAY), then once more
	// a delay later, at 10 s.
	if len(asks) != 2 || asks[0] != 5*time.Second || asks[1] != 10*time.Second {
		t.Fatalf("asked at %v, want [5s 10s]", asks)
	}
}

// TestFailbackOffAfterOwnFailure: issue 10, defect 3. A primary whose own
// service never answered after a takeover does not ask again until it has
// served or an operator moved the service.
func TestFailbackOffAfterOwnFailure(t *testing.T) {
	for _, tt := range []struct {
		name   string
		mend   func(m *machine)
		asksAt bool
	}{
		{"stays off", func(*machine) {}, false},
		{"back on after an operator's takeover or switchover", func(m *machine) { m.failbackOn() }, true},
		{"back on after serving", func(m *machine) {
			m.setRole(roleActive, ftAt(20*time.Second), causeServiceSilent)
			m.observe(ftAnswer(20500 * ftMS))
			m.setRole(rolePassive, ftAt(21*time.Second), causeOperator)
		}, true},
	} {
		t.Run(tt.name, func(t *testing.T) {
			m := fbMachine(t)
			m.setRole(roleActive, ftAt(time.Second), causePeerReleased)
			m.setRole(rolePassive, ftAt(9*time.Second), causeStartTimeout)
			tt.mend(m)
			_, note := m.failbackDue(ftAt(9 * time.Second))
			// Past the hold-down (2 min from 9 s), a healthy passive again.
			hearUntil(m, 130*time.Second, 160*time.Second)
			var asked bool
			for d := 130 * time.Second; d <= 160*time.Second; d += time.Second {
				if ask, _ := m.failbackDue(ftAt(d)); ask {
					asked = true
				}
			}
			if asked != tt.asksAt {
				t.Fatalf("asked for a failback: %v, want %v (note %q)", asked, tt.asksAt, note)
			}
			if !tt.asksAt && note == "" {
				t.Error("failback turned off without a word for the log")
			}
		})
	}
}

// TestMachineMemoryOutlivesARestart: the hold-down, failback off and an
// open conflict go into the journal and come back in a new machine.
func TestMachineMemoryOutlivesARestart(t *testing.T) {
	m := fbMachine(t)
	m.setRole(roleActive, ftAt(time.Second), causeServiceSilent)
	m.setRole(rolePassive, ftAt(2*time.Second), causeOwnServiceSilent)
	var e journalEntry
	m.memory(ftAt(3*time.Second), &e)
	if !e.HoldDownUntil.Equal(ftAt(2*time.Second+m.t.HoldDown)) || !e.FailbackOff {
		t.Fatalf("journal memory %+v, want the hold-down's end and failback off", e)
	}
	r := newMachine(m.t, ftAt(4*time.Second), rolePassive)
	r.restore(e)
	if !r.holdDownEnd.Equal(e.HoldDownUntil) || !r.fb.failed {
		t.Fatalf("restored hold-down %s, failback off %v", r.holdDownEnd, r.fb.failed)
	}

	// An active box in a conflict it has not won, restarted: when the
	// conflict ends it still points the foneBRIDGE back.
	a := newMachine(ftTiming(false), ftStart, rolePassive)
	a.setRole(roleActive, ftAt(time.Second), causeServiceSilent)
	a.conflict(ftStart)
	var c journalEntry
	a.memory(ftAt(2*time.Second), &c)
	if !c.ConflictOpen {
		t.Fatal("open conflict not in the journal")
	}
	b := newMachine(ftTiming(false), ftAt(3*time.Second), roleActive)
	b.restore(c)
	for i := 1; i < conflictEndChecks; i++ {
		b.noConflict()
	}
	if d := b.noConflict(); !d.Repoint {
		t.Fatalf("restarted box, conflict over: %+v, want repoint", d)
	}
}
