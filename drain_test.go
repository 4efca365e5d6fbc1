package main

import (
	"errors"
	"strings"
	"testing"
	"time"
)

// drainMachine is an active box whose service answered, draining with a
// 10 s time-out from 2 s on.
func drainMachine(t *testing.T, force bool) *machine {
	t.Helper()
	m := ftMachine(ftTiming(false), roleActive)
	m.t.RefusedAfter = 300 * ftMS
	m.observe(ftAnswer(time.Second))
	if err := m.startDrain(ftAt(2*time.Second), 10*time.Second, force); err != nil {
		t.Fatal(err)
	}
	return m
}

// TestDrainCounted: the drain waits while calls remain, switches at 0,
// calls itself off at the time-out (or switches, with --force) and after
// drainFailuresMax failed counts in a row (unless --force), and never
// polls past its deadline.
func TestDrainCounted(t *testing.T) {
	type count struct {
		at    time.Duration
		calls int
		err   error
	}
	fail := errors.New("asterisk: connection refused")
	tests := []struct {
		name   string
		force  bool
		counts []count
		want   drainAction
		reason string
	}{
		{"calls fall to 0", false, []count{{3 * time.Second, 4, nil}, {4 * time.Second, 1, nil}, {5 * time.Second, 0, nil}}, drainDone, "no calls left after 3s"},
		{"calls remain at the time-out", false, []count{{3 * time.Second, 4, nil}, {12 * time.Second, 2, nil}}, drainAbort, "2 calls still in progress"},
		{"calls remain at the time-out, --force", true, []count{{3 * time.Second, 4, nil}, {12 * time.Second, 2, nil}}, drainDone, "switching anyway"},
		{"one failed count is not the end", false, []count{{3 * time.Second, 0, fail}, {4 * time.Second, 2, nil}}, drainWait, ""},
		{"three failed counts in a row", false, []count{{3 * time.Second, 0, fail}, {4 * time.Second, 0, fail}, {5 * time.Second, 0, fail}}, drainAbort, "FLIP_CALLS_CMD failed 3 times"},
		{"failures broken by a count start again", false, []count{{3 * time.Second, 0, fail}, {4 * time.Second, 0, fail}, {5 * time.Second, 2, nil}, {6 * time.Second, 0, fail}}, drainWait, ""},
		{"failing counts with --force wait for the time-out", true, []count{{3 * time.Second, 0, fail}, {4 * time.Second, 0, fail}, {5 * time.Second, 0, fail}, {12 * time.Second, 0, fail}}, drainDone, "unknown number of calls"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m := drainMachine(t, tt.force)
			var d drainDecision
			for i, c := range tt.counts {
				d = m.drainCounted(ftAt(c.at), c.calls, c.err, time.Second)
				if i < len(tt.counts)-1 && d.Action != drainWait {
					t.Fatalf("count %d: %+v, want to wait", i+1, d)
				}
			}
			if d.Action != tt.want || !strings.Contains(d.Reason, tt.reason) {
				t.Fatalf("last count: %+v, want action %d with reason containing %q", d, tt.want, tt.reason)
			}
			if d.Action == drainWait {
				if !m.drain.on || d.Next.After(m.drain.deadline) {
					t.Fatalf("waiting, but the drain is off or polls past its deadline: %+v", d)
				}
			} else if m.drain.on {
				t.Fatal("the drain ended but is still on")
			}
		})
	}
}

// TestDrainNextPoll: the next count comes FLIP_DRAIN_POLL later, but never
// after the deadline.
func TestDrainNextPoll(t *testing.T) {
	m := drainMachine(t, false)
	if d := m.drainCounted(ftAt(3*time.Second), 5, nil, time.Second); !d.Next.Equal(ftAt(4 * time.Second)) {
		t.Fatalf("next = %s, want one poll later", d.Next)
	}
	if d := m.drainCounted(ftAt(11500*ftMS), 5, nil, time.Second); !d.Next.Equal(ftAt(12 * time.Second)) {
		t.Fatalf("next = %s, want the deadline (12 s)", d.Next)
	}
}

// TestStartDrainRefused: only an active box drains, one drain at a time.
func TestStartDrainRefused(t *testing.T) {
	p := ftMachine(ftTiming(false), rolePassive)
	if err := p.startDrain(ftAt(time.Second), time.Minute, false); err == nil || !strings.Contains(err.Error(), "passive") {
		t.Fatalf("passive box: %v, want refused", err)
	}
	m := drainMachine(t, false)
	if err := m.startDrain(ftAt(3*time.Second), time.Minute, false); err == nil || !strings.Contains(err.Error(), "already") {
		t.Fatalf("second drain: %v, want refused", err)
	}
}

// TestDrainServiceStops: while draining, the own service going away (the
// drain command stopped Asterisk after its last call) is the end of the
// switchover, not a failure: cause drained, no hold-down. Without a drain
// the same refusals are an own failure with a hold-down.
func TestDrainServiceStops(t *testing.T) {
	for _, draining := range []bool{true, false} {
		m := ftMachine(ftTiming(false), roleActive)
		m.t.RefusedAfter, m.t.HoldDown = 300*ftMS, time.Minute
		m.observe(ftAnswer(time.Second))
		if draining {
			if err := m.startDrain(ftAt(1100*ftMS), time.Minute, false); err != nil {
				t.Fatal(err)
			}
		}
		for _, at := range []time.Duration{1200, 1300, 1400, 1500} {
			m.observeRefused(ftAt(at * ftMS))
		}
		d := m.decide(ftAt(1600 * ftMS))
		want := causeOwnServiceSilent
		if draining {
			want = causeDrained
		}
		if d.Verdict != verdictRelease || d.Cause != want {
			t.Fatalf("draining %v: %+v, want a release with cause %s", draining, d, want)
		}
		m.setRole(rolePassive, ftAt(1600*ftMS), d.Cause)
		if held := ftAt(1700 * ftMS).Before(m.holdDownEnd); held == draining {
			t.Fatalf("draining %v: held down %v after the release", draining, held)
		}
		if m.drain.on {
			t.Fatal("the release did not end the drain")
		}
	}
}

// TestParseCalls reads a bare number or Asterisk's "core show channels
// count" output, and names the output it cannot read.
func TestParseCalls(t *testing.T) {
	tests := []struct {
		out  string
		want int
		err  string
	}{
		{"3\n", 3, ""},
		{"0", 0, ""},
		{"2 active channels\n1 active call\n57 calls processed\n", 1, ""},
		{"10 active channels\n5 active calls\n9000 calls processed", 5, ""},
		{"Unable to connect to remote asterisk (does /var/run/asterisk/asterisk.ctl exist?)", 0, "no call count"},
		{"-1", 0, "no call count"},
		{"", 0, "no call count"},
	}
	for _, tt := range tests {
		n, err := parseCalls(tt.out)
		if tt.err != "" {
			if err == nil || !strings.Contains(err.Error(), tt.err) {
				t.Errorf("parseCalls(%q) = %d, %v; want an error containing %q", tt.out, n, err, tt.err)
			}
			continue
		}
		if err != nil || n != tt.want {
			t.Errorf("parseCalls(%q) = %d, %v; want %d", tt.out, n, err, tt.want)
		}
	}
}

// TestSplitCommand: blanks split, quotes group, no shell.
func TestSplitCommand(t *testing.T) {
	tests := []struct {
		in   string
		want []string
		err  string
	}{
		{"", nil, ""},
		{"   ", nil, ""},
		{"asterisk -rx 'core show channels count'", []string{"asterisk", "-rx", "core show channels count"}, ""},
		{`asterisk -rx "core stop gracefully"`, []string{"asterisk", "-rx", "core stop gracefully"}, ""},
		{`say "a \"quoted\" word" it's`, nil, "not closed"},
		{`say "a \"quoted\" word"`, []string{"say", `a "quoted" word`}, ""},
		{"a''b ''", []string{"ab", ""}, ""},
		{"x $HOME | wc", []string{"x", "$HOME", "|", "wc"}, ""},
		{"two\nlines", nil, "line break"},
	}
	for _, tt := range tests {
		got, err := splitCommand(tt.in)
		if tt.err != "" {
			if err == nil || !strings.Contains(err.Error(), tt.err) {
				t.Errorf("splitCommand(%q) = %q, %v; want an error containing %q", tt.in, got, err, tt.err)
			}
			continue
		}
		if err != nil || strings.Join(got, "|") != strings.Join(tt.want, "|") || len(got) != len(tt.want) {
			t.Errorf("splitCommand(%q) = %q, %v; want %q", tt.in, got, err, tt.want)
		}
	}
}
