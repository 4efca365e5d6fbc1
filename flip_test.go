package main

import (
	"errors"
	"strings"
	"testing"
	"time"
)

// The state machine never reads a clock: every test drives it with times
// derived from ftStart, so nothing here sleeps.

var ftStart = time.Date(2024, 5, 1, 12, 0, 0, 0, time.UTC)

// ftAt is the synthetic time d after the agent started.
func ftAt(d time.Duration) time.Time { return ftStart.Add(d) }

// ftMachine is a machine at ftStart in role r; an active one has just taken
// over (newMachine's active is a restarted agent that found the VIP).
func ftMachine(t timing, r role) *machine {
	m := newMachine(t, ftStart, rolePassive)
	if r == roleActive {
		m.setRole(roleActive, ftStart, causeServiceSilent)
	}
	return m
}

// ftTiming is the default configuration's timing.
func ftTiming(primary bool) timing {
	return timing{
		Primary:      primary,
		DeadAfter:    time.Second,
		InitDead:     30 * time.Second,
		StartTimeout: 60 * time.Second,
		HolderWait:   61 * time.Second,
	}
}

// ftAnswer is a probe sent at sent that got an answer (whenever it arrived).
func ftAnswer(sent time.Duration) probeResult {
	return probeResult{Sent: ftAt(sent), Answered: true, Status: 404, Server: "Asterisk PBX"}
}

// ftUnanswered is a probe sent at sent that timed out.
func ftUnanswered(sent time.Duration) probeResult {
	return probeResult{Sent: ftAt(sent), Err: errors.New("transaction timed out")}
}

// ftAnswersEvery feeds answered probes sent every step in [from, to].
func ftAnswersEvery(m *machine, from, to, step time.Duration) {
	for d := from; d <= to; d += step {
		m.observe(ftAnswer(d))
	}
}

const ftMS = time.Millisecond

func TestMachineDecide(t *testing.T) {
	tests := []struct {
		name    string
		primary bool
		role    role // at start
		events  func(m *machine)
		now     time.Duration
		want    verdict
		// next is checked for verdictStay only; any other verdict must
		// return the zero time.
		next   time.Duration
		reason string // a substring of the reason
	}{
		// Passive primary: DeadAfter of silence from the start.
		{
			name:    "passive primary silent just under DeadAfter",
			primary: true,
			now:     time.Second - ftMS,
			want:    verdictStay,
			next:    time.Second,
		},
		{
			name:    "passive primary silent DeadAfter",
			primary: true,
			now:     time.Second,
			want:    verdictTakeover,
			reason:  "silent for 1s",
		},
		{
			name:    "passive primary: unanswered probes are silence",
			primary: true,
			events: func(m *machine) {
				m.observe(ftUnanswered(0))
				m.observe(ftUnanswered(500 * ftMS))
			},
			now:    time.Second,
			want:   verdictTakeover,
			reason: "silent",
		},
		{
			name:    "passive primary hearing answers stays",
			primary: true,
			events:  func(m *machine) { ftAnswersEvery(m, 0, 10*time.Second, 100*ftMS) },
			now:     10*time.Second + 500*ftMS,
			want:    verdictStay,
			next:    11 * time.Second,
		},
		{
			name:    "passive primary: silence counts from the last answered send",
			primary: true,
			events:  func(m *machine) { ftAnswersEvery(m, 0, 10*time.Second, 100*ftMS) },
			now:     11 * time.Second,
			want:    verdictTakeover,
		},

		// Passive non-primary that never heard the service waits for InitDead.
		{
			name: "non-primary never heard, DeadAfter passed",
			now:  time.Second,
			want: verdictStay,
			next: 30 * time.Second,
			// The operator must see why nothing happens.
			reason: "FLIP_INIT_DEAD",
		},
		{
			name:   "non-primary never heard, just under InitDead",
			events: func(m *machine) { m.observe(ftUnanswered(29 * time.Second)) },
			now:    30*time.Second - ftMS,
			want:   verdictStay,
			next:   30 * time.Second,
		},
		{
			name: "non-primary never heard, InitDead passed",
			now:  30 * time.Second,
			want: verdictTakeover,
		},

		// Passive non-primary that heard the service once.
		{
			name:   "non-primary heard once, silent just under DeadAfter",
			events: func(m *machine) { m.observe(ftAnswer(5 * time.Second)) },
			now:    6*time.Second - ftMS,
			want:   verdictStay,
			next:   6 * time.Second,
		},
		{
			name:   "non-primary heard once, silent DeadAfter from the send time",
			events: func(m *machine) { m.observe(ftAnswer(5 * time.Second)) },
			now:    6 * time.Second,
			want:   verdictTakeover,
			reason: "silent for 1s",
		},
		{
			// Sent at 5 s, answered at 5.9 s: silence runs from 5 s, so
			// 6.5 s is past DeadAfter (from the arrival it would not be).
			name: "late answer counts from its send time",
			events: func(m *machine) {
				m.observe(ftUnanswered(5*time.Second + 100*ftMS))
				m.observe(ftAnswer(5 * time.Second))
			},
			now:  6*time.Second + 500*ftMS,
			want: verdictTakeover,
		},
		{
			name: "older answer arriving after a newer one does not move silence back",
			events: func(m *machine) {
				m.observe(ftAnswer(5 * time.Second))
				m.observe(ftAnswer(4 * time.Second))
			},
			now:  6*time.Second - ftMS,
			want: verdictStay,
			next: 6 * time.Second,
		},
		{
			// A takeover that was aborted: active at 2 s, passive again at
			// 2.5 s. A retransmitted answer to a probe sent at 1 s arrives
			// afterwards; it must not count as hearing the service.
			name: "probe sent before a role change does not count after it (passive)",
			events: func(m *machine) {
				m.setRole(roleActive, ftAt(2*time.Second), "")
				m.setRole(rolePassive, ftAt(2500*ftMS), "")
				m.observe(ftAnswer(time.Second))
			},
			now:    3600 * ftMS,
			want:   verdictStay,
			next:   30 * time.Second,
			reason: "FLIP_INIT_DEAD",
		},
		{
			name: "released box measures silence from the release",
			role: roleActive,
			events: func(m *machine) {
				ftAnswersEvery(m, 0, 5*time.Second, 100*ftMS)
				m.setRole(rolePassive, ftAt(20*time.Second), "")
			},
			now:  21*time.Second - ftMS,
			want: verdictStay,
			next: 21 * time.Second,
		},

		// Active: StartTimeout for the first answer, then DeadAfter.
		{
			name: "active at start, no answer just under StartTimeout",
			role: roleActive,
			now:  60*time.Second - ftMS,
			want: verdictStay,
			next: 60 * time.Second,
		},
		{
			name:   "active at start, no answer within StartTimeout",
			role:   roleActive,
			now:    60 * time.Second,
			want:   verdictRelease,
			reason: "FLIP_START_TIMEOUT",
		},
		{
			name:   "takeover: StartTimeout counts from the takeover, not the start",
			events: func(m *machine) { m.setRole(roleActive, ftAt(40*time.Second), "") },
			now:    100*time.Second - ftMS,
			want:   verdictStay,
			next:   100 * time.Second,
		},
		{
			name: "takeover: unanswered probes do not end the start wait",
			events: func(m *machine) {
				m.setRole(roleActive, ftAt(40*time.Second), "")
				m.observe(ftUnanswered(41 * time.Second))
			},
			now:    100 * time.Second,
			want:   verdictRelease,
			reason: "FLIP_START_TIMEOUT",
		},
		{
			// A late or retransmitted answer to a probe sent while passive
			// was the old holder's: it must not vouch for our services.
			name: "probe sent before the takeover does not count for active",
			events: func(m *machine) {
				m.setRole(roleActive, ftAt(40*time.Second), "")
				m.observe(ftAnswer(40*time.Second - ftMS))
			},
			now:    42 * time.Second,
			want:   verdictStay,
			next:   100 * time.Second,
			reason: "starting",
		},
		{
			name: "probe sent at the takeover instant counts",
			events: func(m *machine) {
				m.setRole(roleActive, ftAt(40*time.Second), "")
				m.observe(ftAnswer(40 * time.Second))
			},
			now:  41*time.Second - ftMS,
			want: verdictStay,
			next: 41 * time.Second,
		},
		{
			name: "active answered then silent just under DeadAfter",
			events: func(m *machine) {
				m.setRole(roleActive, ftAt(40*time.Second), "")
				m.observe(ftAnswer(45 * time.Second))
			},
			now:  46*time.Second - ftMS,
			want: verdictStay,
			next: 46 * time.Second,
		},
		{
			name: "active answered then silent DeadAfter",
			events: func(m *machine) {
				m.setRole(roleActive, ftAt(40*time.Second), "")
				m.observe(ftAnswer(45 * time.Second))
				m.observe(ftUnanswered(45*time.Second + 100*ftMS))
			},
			now:    46 * time.Second,
			want:   verdictRelease,
			reason: "silent for 1s",
		},
		{
			name: "active answering keeps it beyond StartTimeout",
			events: func(m *machine) {
				m.setRole(roleActive, ftAt(40*time.Second), "")
				ftAnswersEvery(m, 45*time.Second, 200*time.Second, 100*ftMS)
			},
			now:  200*time.Second + 999*ftMS,
			want: verdictStay,
			next: 201 * time.Second,
		},
	}

	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m := ftMachine(ftTiming(tt.primary), tt.role)
			if tt.events != nil {
				tt.events(m)
			}
			d := m.decide(ftAt(tt.now))
			got, reason, next := d.Verdict, d.Reason, d.Next
			if got != tt.want {
				t.Fatalf("decide(start+%s) = verdict %d (%q), want %d", tt.now, got, reason, tt.want)
			}
			if reason == "" {
				t.Error("empty reason")
			}
			if !strings.Contains(reason, tt.reason) {
				t.Errorf("reason %q does not mention %q", reason, tt.reason)
			}
			switch {
			case tt.want == verdictStay && !next.Equal(ftAt(tt.next)):
				t.Errorf("next = start+%s, want start+%s", next.Sub(ftStart), tt.next)
			case tt.want != verdictStay && !next.IsZero():
				t.Errorf("next = %s, want the zero time for an action", next)
			}
			if tt.want == verdictStay {
				// next is when the answer can change: still the same
				// verdict just before it, if nothing else arrives.
				if v := m.decide(next.Add(-time.Nanosecond)).Verdict; v != verdictStay {
					t.Errorf("decide(next-1ns) = %d, want stay", v)
				}
			}
		})
	}
}

// TestMachineStayUntilNext walks the clock along the `next` times the
// machine returns, the way the agent's timer does: the verdict must change
// exactly at the deadline, never earlier, and never need a busy loop.
func TestMachineStayUntilNext(t *testing.T) {
	tests := []struct {
		name    string
		primary bool
		events  func(m *machine)
		want    verdict
		at      time.Duration
	}{
		{name: "primary", primary: true, want: verdictTakeover, at: time.Second},
		{name: "non-primary", want: verdictTakeover, at: 30 * time.Second},
		{
			name:   "non-primary heard once",
			events: func(m *machine) { m.observe(ftAnswer(3 * time.Second)) },
			want:   verdictTakeover,
			at:     4 * time.Second,
		},
		{
			name: "active",
			events: func(m *machine) {
				m.setRole(roleActive, ftAt(2*time.Second), "")
			},
			want: verdictRelease,
			at:   62 * time.Second,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m := newMachine(ftTiming(tt.primary), ftStart, rolePassive)
			if tt.events != nil {
				tt.events(m)
			}
			now := ftStart
			for i := 0; ; i++ {
				if i > 10 {
					t.Fatal("no decision after 10 wake-ups")
				}
				d := m.decide(now)
				v, reason, next := d.Verdict, d.Reason, d.Next
				if v != verdictStay {
					if v != tt.want || !now.Equal(ftAt(tt.at)) {
						t.Fatalf("verdict %d (%q) at start+%s, want %d at start+%s", v, reason, now.Sub(ftStart), tt.want, tt.at)
					}
					return
				}
				if !next.After(now) {
					t.Fatalf("stay at start+%s with next start+%s: not in the future", now.Sub(ftStart), next.Sub(ftStart))
				}
				now = next
			}
		})
	}
}

func TestMachineHolderSeen(t *testing.T) {
	const wait = 61 * time.Second
	type op struct {
		at   time.Duration
		do   string // "seen", "answer", "unanswered", "passive"
		sent time.Duration
		want bool // for "seen"
	}
	tests := []struct {
		name string
		ops  []op
	}{
		{
			name: "false until HolderWait since the first sighting",
			ops: []op{
				{at: 10 * time.Second, do: "seen", want: false},
				{at: 10*time.Second + wait/2, do: "seen", want: false},
				{at: 10*time.Second + wait - ftMS, do: "seen", want: false},
				{at: 10*time.Second + wait, do: "seen", want: true},
				{at: 10*time.Second + wait + time.Second, do: "seen", want: true},
			},
		},
		{
			name: "answered probe resets the holder clock",
			ops: []op{
				{at: 10 * time.Second, do: "seen", want: false},
				{at: 20 * time.Second, do: "answer", sent: 19 * time.Second},
				{at: 10*time.Second + wait, do: "seen", want: false},
				{at: 10*time.Second + 2*wait - ftMS, do: "seen", want: false},
				{at: 10*time.Second + 2*wait, do: "seen", want: true},
			},
		},
		{
			name: "unanswered probe does not reset the holder clock",
			ops: []op{
				{at: 10 * time.Second, do: "seen", want: false},
				{at: 20 * time.Second, do: "unanswered", sent: 19 * time.Second},
				{at: 10*time.Second + wait, do: "seen", want: true},
			},
		},
		{
			name: "role change resets the holder clock",
			ops: []op{
				{at: 10 * time.Second, do: "seen", want: false},
				{at: 20 * time.Second, do: "passive"},
				{at: 10*time.Second + wait, do: "seen", want: false},
				{at: 10*time.Second + 2*wait, do: "seen", want: true},
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m := newMachine(ftTiming(true), ftStart, rolePassive)
			for i, o := range tt.ops {
				switch o.do {
				case "seen":
					if got := m.holderSeen(ftAt(o.at)); got != o.want {
						t.Fatalf("op %d: holderSeen(start+%s) = %v, want %v", i, o.at, got, o.want)
					}
				case "answer":
					m.observe(ftAnswer(o.sent))
				case "unanswered":
					m.observe(ftUnanswered(o.sent))
				case "passive":
					m.setRole(rolePassive, ftAt(o.at), "")
				default:
					t.Fatalf("bad op %q", o.do)
				}
			}
		})
	}
}

func TestRoleString(t *testing.T) {
	for r, want := range map[role]string{rolePassive: "passive", roleActive: "active"} {
		if got := r.String(); got != want {
			t.Errorf("role(%d).String() = %q, want %q", r, got, want)
		}
	}
}
