package main

import (
	"strings"
	"testing"
	"time"
)

// The split-brain rules (machine.conflict, noConflict, alive): each pair
// of boxes below must end with exactly one keeper, whatever order their
// conflict checks run in.

// keeps runs conflict checks on m until it releases or announces as the
// keeper (at most conflictConfirmChecks) and reports whether it kept.
func keeps(m *machine) (bool, decision) {
	var d decision
	for range conflictConfirmChecks {
		d = m.conflict(ftStart)
		if d.Verdict == verdictRelease || d.Announce {
			break
		}
	}
	return d.Verdict != verdictRelease, d
}

func TestSplitBrainExactlyOneKeeps(t *testing.T) {
	activeAfter := func(primary bool, cause string) *machine {
		m := newMachine(ftTiming(primary), ftStart, rolePassive)
		m.setRole(roleActive, ftAt(time.Second), cause)
		m.observe(ftAnswer(1500 * ftMS)) // its service answers
		return m
	}
	tests := []struct {
		name      string
		a, b      func() *machine
		wantKeeps string // "a" or "b"
	}{
		{"both took over normally: the primary keeps",
			func() *machine { return activeAfter(true, causeServiceSilent) },
			func() *machine { return activeAfter(false, causeServiceSilent) }, "a"},
		// Issue 10, defect 1: the primary's flip restarted with the VIP
		// while the other box had taken over past it as a hung holder.
		{"restarted primary against a forced takeover: the forced box keeps",
			func() *machine { return newMachine(ftTiming(true), ftAt(time.Minute), roleActive) },
			func() *machine { return activeAfter(false, causeHolderTimeout) }, "b"},
		{"primary woken from SIGSTOP against a forced takeover: the forced box keeps",
			func() *machine {
				m := activeAfter(true, causeServiceSilent)
				m.alive(ftAt(2 * time.Second))
				m.alive(ftAt(70 * time.Second)) // 68 s without running
				return m
			},
			func() *machine { return activeAfter(false, causeHolderTimeout) }, "b"},
		{"a primary whose own service has not answered yields to a forced box",
			func() *machine {
				m := newMachine(ftTiming(true), ftStart, rolePassive)
				m.setRole(roleActive, ftAt(time.Second), causeServiceSilent)
				return m
			},
			func() *machine { return activeAfter(false, causeHolderTimeout) }, "b"},
		{"a forced box whose hung holder stopped claiming is a plain secondary again",
			func() *machine { return activeAfter(true, causeServiceSilent) },
			func() *machine {
				m := activeAfter(false, causeHolderTimeout)
				for range conflictEndChecks {
					m.noConflict()
				}
				return m
			}, "a"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			for _, order := range []string{"a first", "b first"} {
				a, b := tt.a(), tt.b()
				var ka, kb bool
				if order == "a first" {
					ka, _ = keeps(a)
					kb, _ = keeps(b)
				} else {
					kb, _ = keeps(b)
					ka, _ = keeps(a)
				}
				if ka == kb {
					t.Fatalf("%s: a keeps %v, b keeps %v: want exactly one", order, ka, kb)
				}
				if got := map[bool]string{true: "a", false: "b"}[ka]; got != tt.wantKeeps {
					t.Fatalf("%s: %s keeps, want %s", order, got, tt.wantKeeps)
				}
			}
		})
	}
}

// TestSplitBrainNobodyServing: when neither box's service has answered
// since it took over (both starting in cold standby after a partition),
// neither has anything to keep: both release, and the pair starts over
// (the primary takes over after FLIP_DEAD_AFTER of silence).
func TestSplitBrainNobodyServing(t *testing.T) {
	for _, primary := range []bool{true, false} {
		m := newMachine(ftTiming(primary), ftStart, rolePassive)
		m.setRole(roleActive, ftAt(time.Second), causeServiceSilent)
		if kept, d := keeps(m); kept {
			t.Errorf("primary=%v, not serving: %+v, want release", primary, d)
		}
	}
}

// TestSplitBrainFoneBridgeFollowsTheKeeper: the keeper repoints the
// foneBRIDGE once per conflict; a box left active when the other let go
// first repoints when the conflict is over; a lost ARP reply ends nothing.
func TestSplitBrainFoneBridgeFollowsTheKeeper(t *testing.T) {
	keeper := newMachine(ftTiming(true), ftStart, rolePassive)
	keeper.setRole(roleActive, ftAt(time.Second), causeServiceSilent)
	keeper.observe(ftAnswer(1500 * ftMS))
	if d := keeper.conflict(ftStart); !d.Announce || !d.Repoint {
		t.Fatalf("keeper's first check: %+v, want announce and repoint", d)
	}
	if d := keeper.conflict(ftStart); !d.Announce || d.Repoint {
		t.Fatalf("keeper's second check: %+v, want announce, no second fonulator run", d)
	}
	if d := keeper.noConflict(); d.Announce || d.Repoint {
		t.Fatalf("the keeper has nothing to do when the conflict ends: %+v", d)
	}

	// The secondary sees the conflict once, then the primary lets go (its
	// link fails, say) before the secondary's second check.
	second := newMachine(ftTiming(false), ftStart, rolePassive)
	second.setRole(roleActive, ftAt(time.Second), causeServiceSilent)
	if d := second.conflict(ftStart); d.Verdict != verdictStay || d.Announce {
		t.Fatalf("secondary's first check: %+v, want wait without announcing", d)
	}
	for i := 1; i < conflictEndChecks; i++ {
		if d := second.noConflict(); d.Announce {
			t.Fatalf("%d clean checks (lost ARP replies?) already ended the conflict: %+v", i, d)
		}
	}
	d := second.noConflict()
	if !d.Announce || !d.Repoint || !strings.Contains(d.Reason, "let go") {
		t.Fatalf("conflict over with the secondary still active: %+v, want announce and repoint", d)
	}
}

// TestStallMeasuresSilenceAfresh: an agent that did not run for a while
// does not act on the probes it did not send.
func TestStallMeasuresSilenceAfresh(t *testing.T) {
	m := newMachine(ftTiming(true), ftStart, rolePassive)
	m.setRole(roleActive, ftStart, causeServiceSilent)
	m.observe(ftAnswer(500 * ftMS))
	m.alive(ftAt(600 * ftMS))
	woke := ftAt(20 * time.Second)
	m.alive(woke)
	if d := m.decide(woke); d.Verdict != verdictStay {
		t.Fatalf("woken active box: %+v, want stay (its silence is not measured)", d)
	}
	if d := m.decide(woke.Add(m.t.DeadAfter)); d.Verdict != verdictRelease {
		t.Fatalf("still silent DeadAfter after waking: %+v, want release", d)
	}
}

// TestResumedActiveUsesDeadAfter: a restarted flip that finds the VIP does
// not wait FLIP_START_TIMEOUT for services that were started long ago.
func TestResumedActiveUsesDeadAfter(t *testing.T) {
	m := newMachine(ftTiming(true), ftStart, roleActive)
	if d := m.decide(ftAt(500 * ftMS)); d.Verdict != verdictStay {
		t.Fatalf("%+v, want stay within DeadAfter", d)
	}
	d := m.decide(ftAt(time.Second))
	if d.Verdict != verdictRelease || d.Cause != causeOwnServiceSilent {
		t.Fatalf("%+v, want release for own_service_silent at DeadAfter", d)
	}
	m = newMachine(ftTiming(true), ftStart, roleActive)
	m.observe(ftAnswer(200 * ftMS))
	if d := m.decide(ftAt(time.Second)); d.Verdict != verdictStay {
		t.Fatalf("answered after the restart: %+v, want stay", d)
	}
}
