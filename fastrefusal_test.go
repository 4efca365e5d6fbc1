package main

import (
	"strings"
	"testing"
	"time"
)

// frMachine is an active box with the peer channel whose service answered
// at 1 s; FLIP_REFUSED_AFTER is the default 300 ms.
func frMachine() *machine {
	m := hbMachine(roleActive)
	m.t.RefusedAfter = 300 * ftMS
	m.observe(ftAnswer(time.Second))
	return m
}

// TestFastRefusal: with the other box ready, the active box counts its own
// port closed after refusedMin refusals at once; without a ready peer it
// waits FLIP_REFUSED_AFTER as before.
func TestFastRefusal(t *testing.T) {
	ready := heartbeat{Role: "passive", Ready: true}
	tests := []struct {
		name    string
		setup   func(m *machine)
		refused []time.Duration // send times of the refusals
		at      time.Duration   // when decide is asked
		release bool
	}{
		{"peer ready, three refusals in 20 ms", func(m *machine) { m.heardPeer(ftAt(1100*ftMS), ready) },
			[]time.Duration{1200 * ftMS, 1210 * ftMS, 1220 * ftMS}, 1221 * ftMS, true},
		{"peer ready, two refusals only", func(m *machine) { m.heardPeer(ftAt(1100*ftMS), ready) },
			[]time.Duration{1200 * ftMS, 1210 * ftMS}, 1221 * ftMS, false},
		{"peer not ready (held down)", func(m *machine) { m.heardPeer(ftAt(1100*ftMS), heartbeat{Role: "passive"}) },
			[]time.Duration{1200 * ftMS, 1210 * ftMS, 1220 * ftMS}, 1221 * ftMS, false},
		{"peer ready but its heartbeat is older than FLIP_DEAD_AFTER", func(m *machine) { m.heardPeer(ftAt(100*ftMS), ready) },
			[]time.Duration{1200 * ftMS, 1210 * ftMS, 1220 * ftMS}, 1221 * ftMS, false},
		{"peer taking over (busy)", func(m *machine) {
			m.heardPeer(ftAt(1100*ftMS), heartbeat{Role: "passive", Ready: true, Doing: doingTakeover, BusyMS: 5000})
		}, []time.Duration{1200 * ftMS, 1210 * ftMS, 1220 * ftMS}, 1221 * ftMS, false},
		{"peer says it holds the VIP too", func(m *machine) { m.heardPeer(ftAt(1100*ftMS), heartbeat{Role: "active", Holds: true, Ready: true}) },
			[]time.Duration{1200 * ftMS, 1210 * ftMS, 1220 * ftMS}, 1221 * ftMS, false},
		{"no peer channel", func(m *machine) { m.heardPeer(ftAt(1100*ftMS), ready); m.t.Peer = false },
			[]time.Duration{1200 * ftMS, 1210 * ftMS, 1220 * ftMS}, 1221 * ftMS, false},
		{"peer not ready: FLIP_REFUSED_AFTER still decides", func(m *machine) { m.heardPeer(ftAt(1100*ftMS), heartbeat{Role: "passive"}) },
			[]time.Duration{1200 * ftMS, 1300 * ftMS, 1400 * ftMS}, 1500 * ftMS, true},
		{"refusals off (FLIP_REFUSED_AFTER=0)", func(m *machine) { m.heardPeer(ftAt(1100*ftMS), ready); m.t.RefusedAfter = 0 },
			[]time.Duration{1200 * ftMS, 1210 * ftMS, 1220 * ftMS}, 1221 * ftMS, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m := frMachine()
			tt.setup(m)
			for _, r := range tt.refused {
				m.observeRefused(ftAt(r))
			}
			d := m.decide(ftAt(tt.at))
			if got := d.Verdict == verdictRelease; got != tt.release {
				t.Fatalf("decide at %s = %+v, want release %v", tt.at, d, tt.release)
			}
			if tt.release && (!d.handsOver() || d.Cause != causeOwnServiceSilent) {
				t.Fatalf("release %+v: want cause %s, handed over to the other box", d, causeOwnServiceSilent)
			}
		})
	}
}

// TestFastRefusalAnswerBetween: an answer between two refusals starts the
// count again: refusals must come in a row.
func TestFastRefusalAnswerBetween(t *testing.T) {
	m := frMachine()
	m.heardPeer(ftAt(1100*ftMS), heartbeat{Role: "passive", Ready: true})
	m.observeRefused(ftAt(1200 * ftMS))
	m.observeRefused(ftAt(1210 * ftMS))
	m.observe(ftAnswer(1215 * ftMS))
	m.observeRefused(ftAt(1220 * ftMS))
	if d := m.decide(ftAt(1221 * ftMS)); d.Verdict != verdictStay {
		t.Fatalf("decide = %+v, want stay: an answer came between the refusals", d)
	}
}

// TestConfirmDue: one confirming probe per refusal seen, refusedConfirmSpacing
// after it, none once refusedMin are in, and none without a ready peer.
func TestConfirmDue(t *testing.T) {
	m := frMachine()
	if at := m.confirmDue(ftAt(1200 * ftMS)); !at.IsZero() {
		t.Fatalf("confirmDue with no refusal = %s, want none", at)
	}
	m.observeRefused(ftAt(1200 * ftMS))
	if at := m.confirmDue(ftAt(1201 * ftMS)); !at.IsZero() {
		t.Fatalf("confirmDue with no peer heard = %s, want none", at)
	}
	m.heardPeer(ftAt(1200*ftMS), heartbeat{Role: "passive", Ready: true})
	for i, sent := range []time.Duration{1200 * ftMS, 1210 * ftMS} {
		if i > 0 {
			m.observeRefused(ftAt(sent))
		}
		want := ftAt(sent + refusedConfirmSpacing)
		if at := m.confirmDue(ftAt(sent + ftMS)); !at.Equal(want) {
			t.Fatalf("refusal %d: confirmDue = %s, want %s", i+1, at, want)
		}
		m.confirmSent()
		if at := m.confirmDue(ftAt(sent + 2*ftMS)); !at.IsZero() {
			t.Fatalf("refusal %d: confirmDue after the confirm was sent = %s, want none until it comes back", i+1, at)
		}
	}
	m.observeRefused(ftAt(1220 * ftMS))
	if at := m.confirmDue(ftAt(1221 * ftMS)); !at.IsZero() {
		t.Fatalf("confirmDue after refusedMin refusals = %s, want none", at)
	}
	m.observe(ftAnswer(1230 * ftMS))
	if m.refusedCount != 0 || m.confirmsSent != 0 {
		t.Fatalf("an answer left refusals %d, confirms %d", m.refusedCount, m.confirmsSent)
	}
}

// TestCouldTakeOver and the heartbeat's Ready say the same, with a reason.
func TestCouldTakeOver(t *testing.T) {
	tests := []struct {
		name  string
		setup func(m *machine)
		want  string // "" when ready
	}{
		{"idle passive", func(*machine) {}, ""},
		{"active", func(m *machine) { m.setRole(roleActive, ftAt(0), causeServiceSilent) }, "active"},
		{"link down", func(m *machine) { m.setLink(false, ftAt(0)) }, "no link"},
		{"held down", func(m *machine) { m.holdOff(ftAt(0), time.Minute) }, "held down"},
		{"tiebreaker silent", func(m *machine) { m.t.Tiebreaker = true }, "tiebreaker"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m := hbMachine(rolePassive)
			tt.setup(m)
			now := ftAt(2 * time.Second)
			ok, why := m.couldTakeOver(now)
			if ok != (tt.want == "") || !strings.Contains(why, tt.want) {
				t.Fatalf("couldTakeOver = %v %q, want reason containing %q", ok, why, tt.want)
			}
			if m.beat(now).Ready != ok {
				t.Fatalf("heartbeat Ready = %v, couldTakeOver = %v", m.beat(now).Ready, ok)
			}
			d := m.peerReleased(now, "b")
			if (d.Verdict == verdictTakeover) != ok || (ok && d.Cause != causePeerReleased) {
				t.Fatalf("peerReleased = %+v, want a takeover only when ready", d)
			}
		})
	}
}

// TestReadiness: the status's "could this box take over now" says why not
// (hold-down, held, never heard the service) and what the other box's
// heartbeat said of itself.
func TestReadiness(t *testing.T) {
	m := hbMachine(rolePassive)
	if r := m.readiness(ftAt(time.Second)); r.ThisBox || !strings.Contains(r.Why, "FLIP_INIT_DEAD") || r.OtherBox != nil {
		t.Fatalf("secondary that never heard the service: %+v", r)
	}
	m.observe(ftAnswer(time.Second))
	if r := m.readiness(ftAt(1100 * ftMS)); !r.ThisBox || r.Why != "" {
		t.Fatalf("healthy passive: %+v", r)
	}
	m.holdOff(ftAt(1100*ftMS), time.Minute)
	if r := m.readiness(ftAt(1200 * ftMS)); r.ThisBox || !strings.Contains(r.Why, "held down until") {
		t.Fatalf("held down: %+v", r)
	}
	m.clearHoldDown()
	if err := m.setHold(ftAt(1200*ftMS), time.Hour, "ops@box-a"); err != nil {
		t.Fatal(err)
	}
	m.heardPeer(ftAt(1300*ftMS), heartbeat{Role: "active", Holds: true})
	r := m.readiness(ftAt(1400 * ftMS))
	if r.ThisBox || !strings.Contains(r.Why, "held (maintenance) by ops@box-a") || r.OtherBox == nil || *r.OtherBox {
		t.Fatalf("held, the active peer heard: %+v", r)
	}
	if s := r.String(); !strings.Contains(s, "could not take over now: held") || !strings.Contains(s, "the other box says it could not") {
		t.Fatalf("readiness line: %q", s)
	}
}

// TestReadinessLine: the active box's line says it is active and what the
// standby's heartbeat says, the 3 a.m. question.
func TestReadinessLine(t *testing.T) {
	yes := true
	if got := (readiness{ThisBox: false, Why: "this box is active", OtherBox: &yes}).String(); got != "this box is active; the other box says it could take over now" {
		t.Fatalf("active box's line: %q", got)
	}
}
