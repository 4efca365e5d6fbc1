package main

import (
	"strings"
	"testing"
	"time"
)

// TestMachineHoldDown: a box that released because its own service failed
// does not take over again until FLIP_HOLD_DOWN has passed; a release for
// another cause (split brain, say) starts no hold-down.
func TestMachineHoldDown(t *testing.T) {
	tests := []struct {
		name      string
		cause     string
		wantHold  bool
		releaseAt time.Duration
	}{
		{"own service silent", causeOwnServiceSilent, true, 10 * time.Second},
		{"start timeout", causeStartTimeout, true, 10 * time.Second},
		{"takeover failed", causeTakeoverFailed, true, 10 * time.Second},
		{"split brain", causeSplitBrain, false, 10 * time.Second},
		{"isolated", causeIsolated, false, 10 * time.Second},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tm := ftTiming(true)
			tm.HoldDown = 2 * time.Minute
			m := newMachine(tm, ftStart, roleActive)
			m.setRole(rolePassive, ftAt(tt.releaseAt), tt.cause)
			// Silent ever since: without a hold-down it takes over after DeadAfter.
			d := m.decide(ftAt(tt.releaseAt + 5*time.Second))
			if held := d.Verdict == verdictStay; held != tt.wantHold {
				t.Fatalf("5 s after a release for %s: verdict %d (%s), want held=%v", tt.cause, d.Verdict, d.Reason, tt.wantHold)
			}
			if !tt.wantHold {
				return
			}
			if !strings.Contains(d.Reason, "FLIP_HOLD_DOWN") || !d.Next.Equal(ftAt(tt.releaseAt+2*time.Minute)) {
				t.Errorf("reason %q next %s, want FLIP_HOLD_DOWN until release+2m", d.Reason, d.Next.Sub(ftStart))
			}
			if d := m.decide(ftAt(tt.releaseAt + 2*time.Minute)); d.Verdict != verdictTakeover {
				t.Errorf("after the hold-down: verdict %d (%s), want takeover", d.Verdict, d.Reason)
			}
		})
	}
}

// TestMachineNoPingPong drives two machines whose services never answer
// through ten minutes of synthetic time, handing the VIP over whenever one
// wants it: with the hold-down the number of takeovers stays small.
func TestMachineNoPingPong(t *testing.T) {
	tm := ftTiming(false)
	tm.HoldDown = 2 * time.Minute
	tm.StartTimeout = 10 * time.Second
	a := newMachine(tm, ftStart, rolePassive)
	a.t.Primary = true
	b := newMachine(tm, ftStart, rolePassive)
	b.heardService = true
	takeovers := 0
	for now := time.Duration(0); now < 10*time.Minute; now += 100 * time.Millisecond {
		for _, m := range []*machine{a, b} {
			other := a
			if m == a {
				other = b
			}
			switch d := m.decide(ftAt(now)); d.Verdict {
			case verdictTakeover:
				if other.role == roleActive {
					continue // the holder check would make it wait
				}
				m.setRole(roleActive, ftAt(now), d.Cause)
				takeovers++
			case verdictRelease:
				m.setRole(rolePassive, ftAt(now), d.Cause)
			}
		}
	}
	// 10 min / (10 s start timeout + 2 min hold-down) ≈ 5 per box at most.
	if takeovers > 12 {
		t.Fatalf("%d takeovers in 10 minutes with both services dead: ping-pong", takeovers)
	}
	if takeovers < 2 {
		t.Fatalf("%d takeovers: each box should still try after its hold-down", takeovers)
	}
}

// TestMachineTiebreaker: with a tiebreaker set, a passive box that reaches
// none does not take over, and an active one releases after DeadAfter.
func TestMachineTiebreaker(t *testing.T) {
	tm := ftTiming(true)
	tm.Tiebreaker = true

	m := newMachine(tm, ftStart, rolePassive)
	m.observeTiebreaker(ftAt(500 * ftMS))
	if d := m.decide(ftAt(3 * time.Second)); d.Verdict != verdictStay || !strings.Contains(d.Reason, "tiebreaker") {
		t.Fatalf("passive, service and tiebreaker silent: verdict %d (%s), want stay (tiebreaker)", d.Verdict, d.Reason)
	}
	m.observeTiebreaker(ftAt(2900 * ftMS))
	if d := m.decide(ftAt(3 * time.Second)); d.Verdict != verdictTakeover {
		t.Fatalf("passive, tiebreaker answering: verdict %d (%s), want takeover", d.Verdict, d.Reason)
	}

	m = newMachine(tm, ftStart, roleActive)
	ftAnswersEvery(m, 0, 10*time.Second, 100*ftMS)
	m.observeTiebreaker(ftAt(9 * time.Second))
	if d := m.decide(ftAt(9900 * ftMS)); d.Verdict != verdictStay || !d.Next.Equal(ftAt(10*time.Second)) {
		t.Fatalf("active, tiebreaker answered 0.9 s ago: verdict %d next %s, want stay until the tiebreaker deadline", d.Verdict, d.Next.Sub(ftStart))
	}
	if d := m.decide(ftAt(10 * time.Second)); d.Verdict != verdictRelease || d.Cause != causeIsolated {
		t.Fatalf("active, no tiebreaker for DeadAfter: verdict %d cause %q, want release isolated", d.Verdict, d.Cause)
	}
}

// TestMachineConflictRule: the split-brain rule gives exactly one keeper
// for every pair of boxes that can meet.
func TestMachineConflictRule(t *testing.T) {
	tests := []struct {
		name             string
		primary, forced  bool
		linkLost         bool
		wantRelease      bool
		wantReasonSubstr string
	}{
		{"primary keeps", true, false, false, false, "keeping"},
		{"secondary releases (at its second check)", false, false, false, true, "primary keeps"},
		{"took over from a hung holder: keeps", false, true, false, false, "keeping"},
		{"primary back from a cut link yields", true, false, true, true, "link came back"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tm := ftTiming(tt.primary)
			m := newMachine(tm, ftStart, rolePassive)
			cause := causeServiceSilent
			if tt.forced {
				cause = causeHolderTimeout
			}
			m.setRole(roleActive, ftAt(time.Second), cause)
			m.observe(ftAnswer(1500 * ftMS)) // its service answers
			if tt.linkLost {
				m.setLink(false, ftStart)
				m.setLink(true, ftStart)
			}
			d := m.conflict(ftStart)
			for i := 1; i < conflictConfirmChecks && d.Verdict == verdictStay && !d.Announce; i++ {
				d = m.conflict(ftStart) // the loser waits for the keeper's announcement
			}
			if (d.Verdict == verdictRelease) != tt.wantRelease || !strings.Contains(d.Reason, tt.wantReasonSubstr) {
				t.Fatalf("conflict() = verdict %d (%s), want release=%v mentioning %q", d.Verdict, d.Reason, tt.wantRelease, tt.wantReasonSubstr)
			}
			if tt.wantRelease && d.Cause != causeSplitBrain {
				t.Errorf("cause %q, want %q", d.Cause, causeSplitBrain)
			}
		})
	}
	// A passive box has nothing to give up.
	if d := newMachine(ftTiming(false), ftStart, rolePassive).conflict(ftStart); d.Verdict != verdictStay {
		t.Fatalf("passive conflict: verdict %d, want stay", d.Verdict)
	}
}

// TestMachineLinkDown: no takeover while a VIP interface has no link; the
// link loss of an active box is remembered until its next role change.
func TestMachineLinkDown(t *testing.T) {
	m := newMachine(ftTiming(true), ftStart, rolePassive)
	m.setLink(false, ftStart)
	if d := m.decide(ftAt(5 * time.Second)); d.Verdict != verdictStay || !strings.Contains(d.Reason, "no link") {
		t.Fatalf("link down: verdict %d (%s), want stay", d.Verdict, d.Reason)
	}
	if m.linkLost {
		t.Fatal("a passive box's link loss must not count as an active box cut off")
	}
	m.setLink(true, ftStart)
	if d := m.decide(ftAt(5 * time.Second)); d.Verdict != verdictTakeover {
		t.Fatalf("link back: verdict %d (%s), want takeover", d.Verdict, d.Reason)
	}
	m.setRole(roleActive, ftAt(5*time.Second), causeServiceSilent)
	m.setLink(false, ftStart)
	m.setLink(true, ftStart)
	if !m.linkLost {
		t.Fatal("active box lost its link: not remembered")
	}
	m.setRole(rolePassive, ftAt(9*time.Second), causeSplitBrain)
	if m.linkLost {
		t.Fatal("link loss survived a role change")
	}
}

// TestMachinePortRefused: ICMP port unreachable from the probe target, kept
// up for RefusedAfter (and at least refusedMin times) with no answer since,
// ends the wait early; not during the start grace after a takeover, when
// Asterisk's port is closed because it is still starting.
func TestMachinePortRefused(t *testing.T) {
	tm := ftTiming(true)
	tm.RefusedAfter = 300 * ftMS
	refuse := func(m *machine, from, to time.Duration) {
		for d := from; d <= to; d += 100 * ftMS {
			m.observeRefused(ftAt(d))
		}
	}
	tests := []struct {
		name  string
		role  role
		setup func(m *machine)
		at    time.Duration
		want  verdict
	}{
		{"active, answered, then refused 300 ms: release", roleActive, func(m *machine) {
			ftAnswersEvery(m, 0, 10*time.Second, 100*ftMS)
			refuse(m, 10100*ftMS, 10400*ftMS)
		}, 10400 * ftMS, verdictRelease},
		{"active, refused only 200 ms: stay", roleActive, func(m *machine) {
			ftAnswersEvery(m, 0, 10*time.Second, 100*ftMS)
			refuse(m, 10100*ftMS, 10300*ftMS)
		}, 10300 * ftMS, verdictStay},
		{"active, two refusals over 300 ms: not enough", roleActive, func(m *machine) {
			ftAnswersEvery(m, 0, 10*time.Second, 100*ftMS)
			m.observeRefused(ftAt(10100 * ftMS))
			m.observeRefused(ftAt(10400 * ftMS))
		}, 10400 * ftMS, verdictStay},
		{"active, still starting (never answered): refusals do not count", roleActive, func(m *machine) {
			refuse(m, 100*ftMS, 5*time.Second)
		}, 5 * time.Second, verdictStay},
		{"active, an answer after the refusals resets them", roleActive, func(m *machine) {
			ftAnswersEvery(m, 0, 10*time.Second, 100*ftMS)
			refuse(m, 10100*ftMS, 10300*ftMS)
			m.observe(ftAnswer(10350 * ftMS))
			m.observeRefused(ftAt(10400 * ftMS))
		}, 10450 * ftMS, verdictStay},
		{"passive, refused 300 ms: takeover before DeadAfter", rolePassive, func(m *machine) {
			ftAnswersEvery(m, 0, 10*time.Second, 100*ftMS)
			refuse(m, 10100*ftMS, 10400*ftMS)
		}, 10400 * ftMS, verdictTakeover},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m := ftMachine(tm, tt.role)
			tt.setup(m)
			d := m.decide(ftAt(tt.at))
			if d.Verdict != tt.want {
				t.Fatalf("verdict %d (%s), want %d", d.Verdict, d.Reason, tt.want)
			}
			if tt.want != verdictStay && !strings.Contains(d.Reason, "port closed") {
				t.Errorf("reason %q does not say the port was closed", d.Reason)
			}
		})
	}
}
