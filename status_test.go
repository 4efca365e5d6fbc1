package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"strings"
	"sync"
	"testing"
	"time"
)

// Helpers of the status, metrics and notify tests carry the obs prefix.

var obsBase = time.Date(2024, 5, 1, 12, 0, 0, 0, time.UTC)

func obsConfig() *config {
	return &config{
		Name:        "pbx2",
		Primary:     true,
		ProbeTarget: "192.0.2.110:5060",
		VIPs: []vipSpec{
			{Addr: netip.MustParseAddr("192.0.2.110"), Prefix: netip.MustParsePrefix("192.0.2.110/24"), Iface: "eth0"},
			{Addr: netip.MustParseAddr("198.51.100.110"), Prefix: netip.MustParsePrefix("198.51.100.110/24"), Iface: "eth1"},
		},
	}
}

var obsHolder = net.HardwareAddr{0x02, 0, 0, 0, 0, 0x42}

func obsAnswered(sent time.Duration, rtt time.Duration, server string) probeResult {
	return probeResult{Sent: obsBase.Add(sent), Answered: true, Status: 404, Server: server, RTT: rtt}
}

func obsMissed(sent time.Duration) probeResult {
	return probeResult{Sent: obsBase.Add(sent), Err: errors.New("transaction timed out")}
}

// obsTakeover is what the agent reports for a takeover of a VIP, routes
// and asterisk.
func obsTakeover(e events) {
	e.Phase("start", "192.0.2.110/24", 300*time.Microsecond, nil)
	e.Phase("start", "routes", 2*time.Millisecond, nil)
	e.Phase("announce", "gratuitous ARP", 500*time.Microsecond, nil)
	e.Phase("start", "asterisk", 1500*time.Millisecond, nil)
	e.Transition(rolePassive, roleActive, causeServiceSilent, "service silent for 1.002s", true, 1503*time.Millisecond)
}

// obsAbortedTakeover: asterisk fails to start, the VIP is stopped again.
func obsAbortedTakeover(e events) {
	e.Phase("start", "192.0.2.110/24", time.Millisecond, nil)
	e.Phase("announce", "gratuitous ARP", time.Millisecond, nil)
	e.Phase("start", "asterisk", 30*time.Second, errors.New("systemctl start asterisk: exit status 1"))
	e.Phase("stop", "192.0.2.110/24", time.Millisecond, nil)
	e.Transition(rolePassive, rolePassive, causeTakeoverFailed, "takeover aborted: asterisk failed: exit status 1", false, 30*time.Second)
}

func obsRelease(e events) {
	e.Phase("stop", "asterisk", 200*time.Millisecond, nil)
	e.Phase("stop", "routes", time.Millisecond, nil)
	e.Phase("stop", "192.0.2.110/24", time.Millisecond, nil)
	e.Transition(roleActive, rolePassive, causeSplitBrain, "another box holds the VIP too: the primary keeps it, releasing", true, 202*time.Millisecond)
}

func obsParseTime(t *testing.T, field, s string) time.Time {
	t.Helper()
	tm, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		t.Fatalf("%s = %q is not RFC 3339: %v", field, s, err)
	}
	return tm
}

func obsPhases(ps []phaseStatus) string {
	var out []string
	for _, p := range ps {
		s := p.Action + ":" + p.Resource
		if p.Error != "" {
			s += "!"
		}
		out = append(out, s)
	}
	return strings.Join(out, " ")
}

func TestStateTrackerSnapshot(t *testing.T) {
	tests := []struct {
		name   string
		events func(e events)
		check  func(t *testing.T, s statusSnapshot)
	}{
		{
			name:   "before the agent looked at the box",
			events: func(e events) {},
			check: func(t *testing.T, s statusSnapshot) {
				if s.Role != "starting" || s.Started != "" || s.Since != "" {
					t.Errorf("role %q started %q since %q, want starting and no times", s.Role, s.Started, s.Since)
				}
				if s.Name != "pbx2" || !s.Primary || s.ProbeTarget != "192.0.2.110:5060" {
					t.Errorf("config fields: %+v", s)
				}
				if strings.Join(s.VIPs, " ") != "192.0.2.110/24@eth0 198.51.100.110/24@eth1" {
					t.Errorf("vips %q", s.VIPs)
				}
				if s.LastTransition != nil || s.LastTakeover != nil || s.LastRelease != nil {
					t.Errorf("transitions before any: %+v", s)
				}
			},
		},
		{
			name:   "resumed active",
			events: func(e events) { e.Started(roleActive, 2) },
			check: func(t *testing.T, s statusSnapshot) {
				if s.Role != "active" || s.VIPsHeld != 2 {
					t.Errorf("role %q held %d, want active 2", s.Role, s.VIPsHeld)
				}
				if s.Since == "" || s.Since != s.Started {
					t.Errorf("since %q, started %q: want both set and equal", s.Since, s.Started)
				}
			},
		},
		{
			name: "probes: counts, last answer, out-of-order answer",
			events: func(e events) {
				e.Started(rolePassive, 0)
				e.Probed(obsAnswered(0, 2*time.Millisecond, "Asterisk PBX 20.5.0"))
				e.Probed(obsAnswered(100*time.Millisecond, 3*time.Millisecond, "Asterisk PBX 20.6.0"))
				// An older probe's answer arrives late: it must not
				// replace the newest answer.
				e.Probed(obsAnswered(50*time.Millisecond, 1*time.Millisecond, "old"))
				e.Probed(obsMissed(200 * time.Millisecond))
				e.Probed(obsMissed(300 * time.Millisecond))
			},
			check: func(t *testing.T, s statusSnapshot) {
				p := s.Probes
				if p.Sent != 5 || p.Answered != 3 || p.Missed != 2 || p.ConsecutiveMissed != 2 {
					t.Errorf("counts %+v, want sent 5 answered 3 missed 2 (2 in a row)", p)
				}
				if p.LastResponder != "Asterisk PBX 20.6.0" || p.LastStatus != 404 || p.LastRTTMS != 3 {
					t.Errorf("last answer %+v, want the probe sent at +100ms", p)
				}
				if got := obsParseTime(t, "last_answered", p.LastAnswered); !got.Equal(obsBase.Add(103 * time.Millisecond)) {
					t.Errorf("last_answered %s, want sent+rtt %s", got, obsBase.Add(103*time.Millisecond))
				}
				if got := obsParseTime(t, "last_sent", p.LastSent); !got.Equal(obsBase.Add(300 * time.Millisecond)) {
					t.Errorf("last_sent %s", got)
				}
				if p.LastError != "transaction timed out" {
					t.Errorf("last_error %q", p.LastError)
				}
			},
		},
		{
			name: "an answer resets the misses in a row",
			events: func(e events) {
				e.Probed(obsMissed(0))
				e.Probed(obsAnswered(100*time.Millisecond, time.Millisecond, "a"))
			},
			check: func(t *testing.T, s statusSnapshot) {
				if s.Probes.ConsecutiveMissed != 0 || s.Probes.Missed != 1 {
					t.Errorf("%+v", s.Probes)
				}
			},
		},
		{
			name: "takeover ok",
			events: func(e events) {
				e.Started(rolePassive, 0)
				obsTakeover(e)
			},
			check: func(t *testing.T, s statusSnapshot) {
				if s.Role != "active" {
					t.Errorf("role %q", s.Role)
				}
				if !obsParseTime(t, "since", s.Since).After(obsParseTime(t, "started", s.Started)) {
					t.Errorf("since %s not after started %s", s.Since, s.Started)
				}
				tr := s.LastTakeover
				if tr == nil || s.LastTransition == nil {
					t.Fatalf("no last takeover/transition: %+v", s)
				}
				if tr.From != "passive" || tr.To != "active" || tr.Cause != "service_silent" || !tr.OK || tr.TotalMS != 1503 {
					t.Errorf("last takeover %+v", tr)
				}
				if got, want := obsPhases(tr.Phases), "start:192.0.2.110/24 start:routes announce:gratuitous ARP start:asterisk"; got != want {
					t.Errorf("phases %q, want %q", got, want)
				}
				if tr.Phases[0].MS != 0.3 || tr.Phases[3].MS != 1500 {
					t.Errorf("phase ms %v %v", tr.Phases[0].MS, tr.Phases[3].MS)
				}
				if s.LastCause != "service_silent" || !strings.Contains(s.LastReason, "silent for") {
					t.Errorf("last cause %q reason %q", s.LastCause, s.LastReason)
				}
				if s.Transitions != (transitionCounts{Takeovers: 1}) {
					t.Errorf("counts %+v", s.Transitions)
				}
				if s.LastRelease != nil {
					t.Errorf("release before any: %+v", s.LastRelease)
				}
			},
		},
		{
			name: "aborted takeover is not a role change",
			events: func(e events) {
				e.Started(rolePassive, 0)
				obsAbortedTakeover(e)
			},
			check: func(t *testing.T, s statusSnapshot) {
				if s.Role != "passive" || s.Since != s.Started {
					t.Errorf("role %q since %q started %q: want passive, since unchanged", s.Role, s.Since, s.Started)
				}
				tr := s.LastTakeover
				if tr == nil || tr.OK || tr.Cause != "takeover_failed" || tr.To != "passive" {
					t.Fatalf("last takeover %+v", tr)
				}
				if got, want := obsPhases(tr.Phases), "start:192.0.2.110/24 announce:gratuitous ARP start:asterisk! stop:192.0.2.110/24"; got != want {
					t.Errorf("phases %q, want %q", got, want)
				}
				if !strings.Contains(tr.Phases[2].Error, "exit status 1") {
					t.Errorf("phase error %q", tr.Phases[2].Error)
				}
				if s.Transitions != (transitionCounts{FailedTakeovers: 1}) {
					t.Errorf("counts %+v", s.Transitions)
				}
			},
		},
		{
			name: "takeover, probes, conflict, fence, release",
			events: func(e events) {
				e.Started(rolePassive, 0)
				e.Probed(obsMissed(0))
				e.Conflict(netip.MustParseAddr("192.0.2.110"), obsHolder)
				e.Fenced(errors.New("fence: exit status 1"), 2*time.Second)
				e.Fenced(nil, 500*time.Millisecond)
				obsTakeover(e)
				e.Probed(obsAnswered(2*time.Second, 4*time.Millisecond, "Asterisk PBX 20.6.0"))
				e.Conflict(netip.MustParseAddr("198.51.100.110"), obsHolder)
				obsRelease(e)
			},
			check: func(t *testing.T, s statusSnapshot) {
				if s.Role != "passive" || s.LastCause != "split_brain" {
					t.Errorf("role %q cause %q", s.Role, s.LastCause)
				}
				if s.LastTransition == nil || s.LastTransition.From != "active" || s.LastTransition.TotalMS != 202 {
					t.Errorf("last transition %+v", s.LastTransition)
				}
				if got, want := obsPhases(s.LastRelease.Phases), "stop:asterisk stop:routes stop:192.0.2.110/24"; got != want {
					t.Errorf("release phases %q, want %q", got, want)
				}
				// The takeover keeps its own phases after the release.
				if got := len(s.LastTakeover.Phases); got != 4 {
					t.Errorf("takeover phases after release: %d, want 4", got)
				}
				if s.Transitions != (transitionCounts{Takeovers: 1, Releases: 1}) {
					t.Errorf("counts %+v", s.Transitions)
				}
				c := s.Conflicts
				if c.Count != 2 || c.LastVIP != "198.51.100.110" || c.LastHolder != "02:00:00:00:00:42" || c.LastAt == "" {
					t.Errorf("conflicts %+v", c)
				}
				f := s.Fence
				if f.Runs != 2 || f.Failed != 1 || f.LastResult != "ok" || f.LastError != "" || f.LastMS != 500 || f.LastAt == "" {
					t.Errorf("fence %+v", f)
				}
				if s.Probes.Sent != 2 || s.Probes.Answered != 1 || s.Probes.LastResponder != "Asterisk PBX 20.6.0" {
					t.Errorf("probes %+v", s.Probes)
				}
			},
		},
		{
			name: "failed fence",
			events: func(e events) {
				e.Fenced(errors.New("ipmitool: timed out"), time.Second)
			},
			check: func(t *testing.T, s statusSnapshot) {
				if s.Fence.LastResult != "failed" || s.Fence.LastError != "ipmitool: timed out" || s.Fence.Failed != 1 {
					t.Errorf("fence %+v", s.Fence)
				}
			},
		},
		{
			name:   "stopping",
			events: func(e events) { e.Started(roleActive, 1); e.Stopping() },
			check: func(t *testing.T, s statusSnapshot) {
				if !s.Stopping || s.Role != "active" {
					t.Errorf("stopping %v role %q", s.Stopping, s.Role)
				}
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			st := newStateTracker(obsConfig())
			tt.events(st)
			tt.check(t, st.Snapshot())
		})
	}
}

// The JSON is the interface of /status and `flip status`: snake_case
// names, zero times left out, durations in ms.
func TestStatusSnapshotJSON(t *testing.T) {
	tests := []struct {
		name    string
		events  func(e events)
		present []string
		absent  []string
	}{
		{
			name:    "starting",
			events:  func(e events) {},
			present: []string{"name", "role", "primary", "vips", "probe_target", "now", "stopping", "transitions", "probes", "conflicts", "fence"},
			absent:  []string{"started", "since", "last_transition", "last_takeover", "last_release", "last_cause", "last_reason"},
		},
		{
			name:    "after a takeover",
			events:  func(e events) { e.Started(rolePassive, 0); obsTakeover(e) },
			present: []string{"started", "since", "last_transition", "last_takeover", "last_cause", "last_reason"},
			absent:  []string{"last_release"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			st := newStateTracker(obsConfig())
			tt.events(st)
			b, err := json.Marshal(st.Snapshot())
			if err != nil {
				t.Fatal(err)
			}
			var m map[string]any
			if err := json.Unmarshal(b, &m); err != nil {
				t.Fatal(err)
			}
			for _, k := range tt.present {
				if _, ok := m[k]; !ok {
					t.Errorf("%q missing from %s", k, b)
				}
			}
			for _, k := range tt.absent {
				if _, ok := m[k]; ok {
					t.Errorf("%q present in %s", k, b)
				}
			}
		})
	}

	st := newStateTracker(obsConfig())
	st.Started(rolePassive, 0)
	obsTakeover(st)
	b, _ := json.Marshal(st.Snapshot())
	for _, want := range []string{`"role":"active"`, `"total_ms":1503`, `"action":"announce"`, `"resource":"gratuitous ARP"`, `"ms":0.3`, `"last_rtt_ms":0`} {
		if !strings.Contains(string(b), want) {
			t.Errorf("%s missing from %s", want, b)
		}
	}
}

// Snapshot hands out copies: changing one changes neither the tracker nor
// the next snapshot.
func TestStatusSnapshotIsACopy(t *testing.T) {
	st := newStateTracker(obsConfig())
	st.Started(rolePassive, 0)
	obsTakeover(st)
	s := st.Snapshot()
	s.LastTakeover.Phases[0].Resource = "changed"
	s.LastTransition.Cause = "changed"
	s.VIPs[0] = "changed"
	s2 := st.Snapshot()
	if s2.LastTakeover.Phases[0].Resource == "changed" || s2.LastTransition.Cause == "changed" || s2.VIPs[0] == "changed" {
		t.Fatalf("snapshot shares memory with the tracker: %+v", s2)
	}
}

// Events come from the agent's loop while HTTP handlers read: run under
// -race, this fails if a field is touched without the mutex.
func TestStateTrackerConcurrent(t *testing.T) {
	st := newStateTracker(obsConfig())
	var wg sync.WaitGroup
	stop := make(chan struct{})
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			select {
			case <-stop:
				return
			default:
				_ = st.Snapshot().String()
			}
		}
	}()
	st.Started(rolePassive, 0)
	for i := 0; i < 200; i++ {
		st.Probed(obsAnswered(time.Duration(i)*time.Millisecond, time.Millisecond, "a"))
		if i%50 == 0 {
			obsTakeover(st)
			st.Conflict(netip.MustParseAddr("192.0.2.110"), obsHolder)
			st.Fenced(nil, time.Millisecond)
			obsRelease(st)
		}
	}
	close(stop)
	wg.Wait()
	if s := st.Snapshot(); s.Probes.Sent != 200 || s.Transitions.Takeovers != 4 || s.Transitions.Releases != 4 {
		t.Fatalf("counts %+v %+v", s.Probes, s.Transitions)
	}
}

func TestStatusSnapshotString(t *testing.T) {
	st := newStateTracker(obsConfig())
	st.Started(rolePassive, 0)
	obsAbortedTakeover(st)
	st.Probed(obsAnswered(0, time.Millisecond, "Asterisk PBX 20.6.0"))
	st.Conflict(netip.MustParseAddr("192.0.2.110"), obsHolder)
	st.Fenced(errors.New("no power switch"), time.Second)
	out := st.Snapshot().String()
	for _, want := range []string{"pbx2: passive since", "(primary)", "takeover_failed (FAILED)", "asterisk", "error: systemctl start asterisk", "1 answered", `"Asterisk PBX 20.6.0"`, "VIP conflicts: 1", "last failed", "no power switch"} {
		if !strings.Contains(out, want) {
			t.Errorf("%q missing from:\n%s", want, out)
		}
	}
}

// TestStatusHistory: the status keeps the last statusHistory transitions,
// oldest first, with their causes (an aborted takeover and a release with a
// failed stop among them), and the text lists the earlier ones.
func TestStatusHistory(t *testing.T) {
	tr := newStateTracker(obsConfig())
	for i := range statusHistory + 5 {
		tr.Transition(rolePassive, roleActive, causeServiceSilent, fmt.Sprintf("takeover %d", i), true, time.Millisecond)
		tr.Transition(roleActive, rolePassive, causeOwnServiceSilent, fmt.Sprintf("release %d; stop failed: asterisk: exit 1", i), false, time.Millisecond)
	}
	tr.Transition(rolePassive, rolePassive, causeTakeoverFailed, "takeover aborted: asterisk failed", false, time.Millisecond)
	s := tr.Snapshot()
	if len(s.History) != statusHistory {
		t.Fatalf("history has %d transitions, want %d", len(s.History), statusHistory)
	}
	if last := s.History[len(s.History)-1]; last.Cause != causeTakeoverFailed || last.OK {
		t.Fatalf("newest = %+v, want the aborted takeover", last)
	}
	if first := s.History[0]; first.Reason != "release 15; stop failed: asterisk: exit 1" {
		t.Fatalf("oldest kept = %q", first.Reason)
	}
	text := s.String()
	if !strings.Contains(text, "earlier transitions (19 kept") || !strings.Contains(text, "own_service_silent (FAILED): release 24; stop failed") {
		t.Fatalf("status text:\n%s", text)
	}
}

// TestStatusHoldEnds: a hold whose end has passed is not shown, also
// within the second it ended in (times compared as times, not as text).
func TestStatusHoldEnds(t *testing.T) {
	tr := newStateTracker(obsConfig())
	past := time.Now().Truncate(time.Second) // "…:05Z", read at …:05.3: as text it sorts after
	if !past.Before(time.Now()) {
		t.Skip("clock at an exact second")
	}
	tr.Held(holdStatus{Held: true, Until: timeString(past), By: "x", until: past})
	if s := tr.Snapshot(); s.Hold != nil {
		t.Fatalf("hold that ended at %s still shown: %+v", past, s.Hold)
	}
	future := time.Now().Add(time.Minute)
	tr.Held(holdStatus{Held: true, Until: timeString(future), By: "x", until: future})
	if s := tr.Snapshot(); s.Hold == nil || s.Hold.By != "x" {
		t.Fatalf("hold in force not shown: %+v", s.Hold)
	}
}
