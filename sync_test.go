package main

import (
	"testing"
	"time"
)

// TestSyncDue: the active box syncs once right after a takeover and then
// every interval; never while passive, while a run is under way or during
// a drain; a role change ends the run and a release forgets the pending
// one.
func TestSyncDue(t *testing.T) {
	const every = time.Minute
	m := ftMachine(ftTiming(false), rolePassive)
	if due, _ := m.syncDue(ftAt(time.Second), every); due {
		t.Fatal("a passive box syncs")
	}
	m.setRole(roleActive, ftAt(time.Second), causeServiceSilent)
	if due, _ := m.syncDue(ftAt(2*time.Second), every); !due {
		t.Fatal("no sync right after the takeover")
	}
	m.syncStarted(ftAt(2 * time.Second))
	if due, _ := m.syncDue(ftAt(5*time.Minute), every); due {
		t.Fatal("a second sync while one runs")
	}
	m.syncEnded(ftAt(10*time.Second), true)
	due, next := m.syncDue(ftAt(20*time.Second), every)
	if due || !next.Equal(ftAt(62*time.Second)) {
		t.Fatalf("after a run: due %v, next %s; want the next one an interval after the last start", due, next)
	}
	if due, _ := m.syncDue(ftAt(62*time.Second), every); !due {
		t.Fatal("no sync an interval later")
	}
	if due, next := m.syncDue(ftAt(62*time.Second), 0); due || !next.IsZero() {
		t.Fatal("FLIP_SYNC_INTERVAL=0 syncs periodically")
	}
	if err := m.startDrain(ftAt(62*time.Second), time.Minute, false); err != nil {
		t.Fatal(err)
	}
	if due, _ := m.syncDue(ftAt(63*time.Second), every); due {
		t.Fatal("a sync during a drain")
	}
	m.syncStarted(ftAt(63 * time.Second))
	m.setRole(rolePassive, ftAt(64*time.Second), causeOperator)
	if m.sync.running {
		t.Fatal("a release left the sync running")
	}
	if due, _ := m.syncDue(ftAt(10*time.Minute), every); due {
		t.Fatal("a passive box syncs after a release")
	}
	m.setRole(roleActive, ftAt(11*time.Minute), causeServiceSilent)
	m.setRole(rolePassive, ftAt(11*time.Minute), causeTakeoverFailed)
	if due, _ := m.syncDue(ftAt(11*time.Minute), every); due {
		t.Fatal("an aborted takeover left a sync pending")
	}
}

// TestSyncEnded counts failures in a row and remembers the last success.
func TestSyncEnded(t *testing.T) {
	m := ftMachine(ftTiming(false), roleActive)
	m.syncStarted(ftAt(time.Second))
	m.syncEnded(ftAt(2*time.Second), false)
	m.syncStarted(ftAt(3 * time.Second))
	m.syncEnded(ftAt(4*time.Second), false)
	if m.sync.failsInRow != 2 || !m.sync.lastOK.IsZero() {
		t.Fatalf("after two failures: %+v", m.sync)
	}
	m.syncStarted(ftAt(5 * time.Second))
	m.syncEnded(ftAt(6*time.Second), true)
	if m.sync.failsInRow != 0 || !m.sync.lastOK.Equal(ftAt(6*time.Second)) {
		t.Fatalf("after a success: %+v", m.sync)
	}
}
