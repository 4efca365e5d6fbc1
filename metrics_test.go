package main

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	dto "github.com/prometheus/client_model/go"
)

func TestMetricsEvents(t *testing.T) {
	type want struct {
		name string
		got  func(m *metricsEvents) float64
		want float64
	}
	count := func(metric string) func(m *metricsEvents) float64 {
		return func(m *metricsEvents) float64 {
			return float64(testutil.CollectAndCount(m.reg, metric))
		}
	}
	tests := []struct {
		name   string
		events func(e events)
		wants  []want
	}{
		{
			name:   "fresh: roles 0, fence series exist, build info",
			events: func(e events) {},
			wants: []want{
				{"active", func(m *metricsEvents) float64 { return testutil.ToFloat64(m.role.WithLabelValues("active")) }, 0},
				{"passive", func(m *metricsEvents) float64 { return testutil.ToFloat64(m.role.WithLabelValues("passive")) }, 0},
				{"fence series", count("flip_fence_total"), 2},
				{"build info", count("flip_build_info"), 1},
				{"no transitions yet", count("flip_transitions_total"), 0},
			},
		},
		{
			name:   "started active",
			events: func(e events) { e.Started(roleActive, 1) },
			wants: []want{
				{"active", func(m *metricsEvents) float64 { return testutil.ToFloat64(m.role.WithLabelValues("active")) }, 1},
				{"passive", func(m *metricsEvents) float64 { return testutil.ToFloat64(m.role.WithLabelValues("passive")) }, 0},
				{"start time set", func(m *metricsEvents) float64 {
					return obsB2F(testutil.ToFloat64(m.startTime) > float64(time.Now().Add(-time.Minute).Unix()))
				}, 1},
			},
		},
		{
			name: "probes",
			events: func(e events) {
				e.Probed(obsAnswered(0, 300*time.Microsecond, "a"))
				e.Probed(obsAnswered(100*time.Millisecond, 2*time.Millisecond, "a"))
				e.Probed(obsMissed(200 * time.Millisecond))
			},
			wants: []want{
				{"probes", func(m *metricsEvents) float64 { return testutil.ToFloat64(m.probes) }, 3},
				{"misses", func(m *metricsEvents) float64 { return testutil.ToFloat64(m.misses) }, 1},
				{"rtt count", func(m *metricsEvents) float64 { return float64(obsHistCount(t, m.probeRTT)) }, 2},
				{"last answer", func(m *metricsEvents) float64 { return testutil.ToFloat64(m.lastAnswer) },
					float64(obsBase.Add(102*time.Millisecond).UnixNano()) / 1e9},
			},
		},
		{
			name: "takeover, conflict, release",
			events: func(e events) {
				e.Started(rolePassive, 0)
				obsTakeover(e)
				e.Conflict(netip.MustParseAddr("192.0.2.110"), obsHolder)
				e.Conflict(netip.MustParseAddr("192.0.2.110"), obsHolder)
				e.Conflict(netip.MustParseAddr("198.51.100.110"), obsHolder)
				obsRelease(e)
			},
			wants: []want{
				{"takeover", func(m *metricsEvents) float64 {
					return testutil.ToFloat64(m.transitions.WithLabelValues("passive", "active", "service_silent", "true"))
				}, 1},
				{"release", func(m *metricsEvents) float64 {
					return testutil.ToFloat64(m.transitions.WithLabelValues("active", "passive", "split_brain", "true"))
				}, 1},
				{"transition series", count("flip_transitions_total"), 2},
				{"role passive", func(m *metricsEvents) float64 { return testutil.ToFloat64(m.role.WithLabelValues("passive")) }, 1},
				{"role active", func(m *metricsEvents) float64 { return testutil.ToFloat64(m.role.WithLabelValues("active")) }, 0},
				{"last duration", func(m *metricsEvents) float64 { return testutil.ToFloat64(m.lastTransDur) }, 0.202},
				{"last timestamp", func(m *metricsEvents) float64 {
					return obsB2F(testutil.ToFloat64(m.lastTransition) > float64(time.Now().Add(-time.Minute).Unix()))
				}, 1},
				{"conflicts LAN", func(m *metricsEvents) float64 { return testutil.ToFloat64(m.conflicts.WithLabelValues("192.0.2.110")) }, 2},
				{"conflicts WAN", func(m *metricsEvents) float64 {
					return testutil.ToFloat64(m.conflicts.WithLabelValues("198.51.100.110"))
				}, 1},
				// start:vip, start:routes, announce, start:asterisk, stop:asterisk, stop:routes, stop:vip
				{"phase series", count("flip_phase_duration_seconds"), 7},
				{"asterisk starts", func(m *metricsEvents) float64 {
					return float64(obsHistCount(t, m.phaseDuration.WithLabelValues("start", "asterisk")))
				}, 1},
				{"no phase failures", count("flip_phase_failures_total"), 0},
			},
		},
		{
			name:   "aborted takeover",
			events: func(e events) { e.Started(rolePassive, 0); obsAbortedTakeover(e) },
			wants: []want{
				{"counted, ok=false", func(m *metricsEvents) float64 {
					return testutil.ToFloat64(m.transitions.WithLabelValues("passive", "passive", "takeover_failed", "false"))
				}, 1},
				{"asterisk start failed", func(m *metricsEvents) float64 {
					return testutil.ToFloat64(m.phaseFailures.WithLabelValues("start", "asterisk"))
				}, 1},
				{"still passive", func(m *metricsEvents) float64 { return testutil.ToFloat64(m.role.WithLabelValues("passive")) }, 1},
			},
		},
		{
			name: "a free-text cause never becomes a label",
			events: func(e events) {
				e.Transition(rolePassive, roleActive, "service silent for 1.2s", "x", true, time.Second)
				e.Transition(roleActive, rolePassive, "", "x", true, time.Second)
			},
			wants: []want{
				{"other", func(m *metricsEvents) float64 {
					return testutil.ToFloat64(m.transitions.WithLabelValues("passive", "active", "other", "true"))
				}, 1},
				{"unknown", func(m *metricsEvents) float64 {
					return testutil.ToFloat64(m.transitions.WithLabelValues("active", "passive", "unknown", "true"))
				}, 1},
				{"series", count("flip_transitions_total"), 2},
			},
		},
		{
			name: "fence",
			events: func(e events) {
				e.Fenced(nil, time.Second)
				e.Fenced(errors.New("x"), time.Second)
				e.Fenced(errors.New("x"), time.Second)
			},
			wants: []want{
				{"ok", func(m *metricsEvents) float64 { return testutil.ToFloat64(m.fence.WithLabelValues("ok")) }, 1},
				{"failed", func(m *metricsEvents) float64 { return testutil.ToFloat64(m.fence.WithLabelValues("failed")) }, 2},
				{"durations", func(m *metricsEvents) float64 { return float64(obsHistCount(t, m.fenceDuration)) }, 3},
			},
		},
		{
			name:   "stopping",
			events: func(e events) { e.Stopping() },
			wants: []want{
				{"stopping", func(m *metricsEvents) float64 { return testutil.ToFloat64(m.stoppingGauge) }, 1},
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m := newMetricsEvents("v1.2.3")
			tt.events(m)
			for _, w := range tt.wants {
				if got := w.got(m); !obsClose(got, w.want) {
					t.Errorf("%s = %v, want %v", w.name, got, w.want)
				}
			}
			if problems, err := testutil.CollectAndLint(m.reg); err != nil || len(problems) > 0 {
				t.Errorf("lint: %v %+v", err, problems)
			}
		})
	}
}

func TestCauseLabel(t *testing.T) {
	tests := []struct{ in, want string }{
		{causeServiceSilent, "service_silent"},
		{causeOwnServiceSilent, "own_service_silent"},
		{causeStartTimeout, "start_timeout"},
		{causeHolderTimeout, "holder_timeout"},
		{causeTakeoverFailed, "takeover_failed"},
		{causeIsolated, "isolated"},
		{causeSplitBrain, "split_brain"},
		{"switchover", "switchover"},
		{"", "unknown"},
		{"own service silent for 1.2s", "other"},
		{"Service_Silent", "other"},
		{strings.Repeat("a", 41), "other"},
	}
	for _, tt := range tests {
		if got := causeLabel(tt.in); got != tt.want {
			t.Errorf("causeLabel(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}

func TestBuildInfoLabel(t *testing.T) {
	m := newMetricsEvents("v9.9.9")
	if got := testutil.ToFloat64(m.buildInfo.WithLabelValues("v9.9.9", buildGoVersion())); got != 1 {
		t.Fatalf("flip_build_info{version=v9.9.9} = %v", got)
	}
	if v := newMetricsEvents("").buildInfo; testutil.CollectAndCount(v) != 1 {
		t.Fatal("build info without a version has no series")
	}
}

func TestServeMetrics(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	m := newMetricsEvents("test")
	st := newStateTracker(obsConfig())
	ev := multiEvents{m, st}
	ev.Started(rolePassive, 0)
	ev.Probed(obsAnswered(0, 700*time.Microsecond, "Asterisk PBX 20.6.0"))
	obsTakeover(ev)

	addr, err := serveMetrics(ctx, "127.0.0.1:0", m, st, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	base := "http://" + addr.String()
	client := &http.Client{Timeout: 5 * time.Second}

	tests := []struct {
		name        string
		method      string
		path        string
		status      int
		contentType string
		contains    []string
		check       func(t *testing.T, body []byte)
	}{
		{
			name: "metrics", method: "GET", path: "/metrics", status: 200,
			contains: []string{
				`flip_probe_rtt_seconds_bucket{le="0.001"} 1`,
				`flip_transitions_total{cause="service_silent",from="passive",ok="true",to="active"} 1`,
				`flip_role{role="active"} 1`,
				`flip_probes_total 1`,
				`flip_phase_duration_seconds_bucket{action="start",resource="asterisk",le="2.5"} 1`,
				`flip_build_info{`,
				`go_goroutines`,
			},
		},
		{
			name: "status", method: "GET", path: "/status", status: 200, contentType: "application/json",
			check: func(t *testing.T, body []byte) {
				var s statusSnapshot
				if err := json.Unmarshal(body, &s); err != nil {
					t.Fatalf("not JSON: %v\n%s", err, body)
				}
				if s.Role != "active" || s.Name != "pbx2" || s.LastTakeover == nil || len(s.LastTakeover.Phases) != 4 {
					t.Errorf("snapshot %+v", s)
				}
			},
		},
		{name: "HEAD status", method: "HEAD", path: "/status", status: 200, contentType: "application/json"},
		{name: "POST status", method: "POST", path: "/status", status: 405},
		{name: "DELETE status", method: "DELETE", path: "/status", status: 405},
		{name: "index", method: "GET", path: "/", status: 200, contains: []string{"/metrics", "/status"}},
		{name: "unknown path", method: "GET", path: "/nothing", status: 404},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			req, err := http.NewRequest(tt.method, base+tt.path, nil)
			if err != nil {
				t.Fatal(err)
			}
			resp, err := client.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			body, _ := io.ReadAll(resp.Body)
			if resp.StatusCode != tt.status {
				t.Fatalf("status %d, want %d; body %s", resp.StatusCode, tt.status, body)
			}
			if tt.contentType != "" && resp.Header.Get("Content-Type") != tt.contentType {
				t.Errorf("Content-Type %q, want %q", resp.Header.Get("Content-Type"), tt.contentType)
			}
			for _, want := range tt.contains {
				if !strings.Contains(string(body), want) {
					t.Errorf("%q missing from %s %s", want, tt.path, obsTrim(body))
				}
			}
			if tt.check != nil {
				tt.check(t, body)
			}
		})
	}

	// The snapshot is read at request time, not at start.
	obsRelease(ev)
	resp, err := client.Get(base + "/status")
	if err != nil {
		t.Fatal(err)
	}
	var s statusSnapshot
	err = json.NewDecoder(resp.Body).Decode(&s)
	resp.Body.Close()
	if err != nil || s.Role != "passive" || s.LastCause != "split_brain" {
		t.Fatalf("after release: %v %+v", err, s)
	}

	// The server goes away with its context.
	cancel()
	deadline := time.Now().Add(5 * time.Second)
	for {
		c, err := net.DialTimeout("tcp", addr.String(), time.Second)
		if err != nil {
			break
		}
		c.Close()
		if time.Now().After(deadline) {
			t.Fatal("metrics server still listening after its context ended")
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func TestServeMetricsListenError(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	tests := []struct{ name, addr string }{
		{"address in use", ln.Addr().String()},
		{"not an address", "no-such-host.invalid:x"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := serveMetrics(context.Background(), tt.addr, newMetricsEvents("t"), nil, nil)
			if err == nil {
				t.Fatal("no error")
			}
			if !strings.Contains(err.Error(), "FLIP_METRICS_ADDR") || !strings.Contains(err.Error(), tt.addr) {
				t.Fatalf("error %q does not name FLIP_METRICS_ADDR and %s", err, tt.addr)
			}
		})
	}
}

// Without a state tracker /status is 404, /metrics still works.
func TestServeMetricsWithoutTracker(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	addr, err := serveMetrics(ctx, "127.0.0.1:0", newMetricsEvents("t"), nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	for path, want := range map[string]int{"/status": 404, "/metrics": 200} {
		resp, err := http.Get("http://" + addr.String() + path)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != want {
			t.Errorf("%s: %d, want %d", path, resp.StatusCode, want)
		}
	}
}

func obsB2F(b bool) float64 {
	if b {
		return 1
	}
	return 0
}

func obsClose(a, b float64) bool {
	d := a - b
	return d < 1e-9 && d > -1e-9
}

func obsTrim(b []byte) string {
	if len(b) > 2000 {
		return string(b[:2000]) + "…"
	}
	return string(b)
}

// obsHistCount is how many observations a histogram holds.
func obsHistCount(t *testing.T, h prometheus.Observer) uint64 {
	t.Helper()
	var d dto.Metric
	if err := h.(prometheus.Metric).Write(&d); err != nil {
		t.Fatal(err)
	}
	return d.GetHistogram().GetSampleCount()
}

// TestPeerPathMetrics: each path has its series, labelled by its two ends,
// and the loss ratio is what status shows as a percentage: half the
// expected heartbeats in the last minute is 0.5; unknown (0) before the
// path has delivered for a minute.
func TestPeerPathMetrics(t *testing.T) {
	now := time.Now()
	lossy := &peer{local: netip.MustParseAddr("192.0.2.11"), remote: &net.UDPAddr{IP: net.ParseIP("192.0.2.12")}, first: now.Add(-2 * time.Minute)}
	for i := range 120 { // 4 per second expected: 240 a minute
		lossy.heard = append(lossy.heard, now.Add(-time.Duration(i)*500*time.Millisecond))
	}
	fresh := &peer{local: netip.MustParseAddr("198.51.100.11"), remote: &net.UDPAddr{IP: net.ParseIP("198.51.100.12")}, first: now.Add(-10 * time.Second)}
	fresh.heard = []time.Time{now.Add(-10 * time.Second)}
	m := newMetricsEvents("test")
	m.watchPeer(&peerSet{paths: []*peer{lossy, fresh}}, time.Second)
	want := `
# HELP flip_peer_path_loss_ratio Share of the other box's heartbeats lost on this path over the last minute (0 to 1; 0 until the path has delivered for a minute).
# TYPE flip_peer_path_loss_ratio gauge
flip_peer_path_loss_ratio{local="192.0.2.11",remote="192.0.2.12"} 0.5
flip_peer_path_loss_ratio{local="198.51.100.11",remote="198.51.100.12"} 0
`
	if err := testutil.GatherAndCompare(m.reg, strings.NewReader(want), "flip_peer_path_loss_ratio"); err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"flip_peer_path_last_heard_timestamp_seconds", "flip_peer_path_rtt_seconds", "flip_peer_path_messages_last_minute"} {
		if n, err := testutil.GatherAndCount(m.reg, name); err != nil || n != 2 {
			t.Errorf("%s: %d series (%v), want one per path", name, n, err)
		}
	}
	s := (&peerSet{paths: []*peer{lossy}}).status(now, time.Second)
	if s[0].LossPercent == nil || *s[0].LossPercent != 50 {
		t.Errorf("status loss = %v, want 50 %%", s[0].LossPercent)
	}
}

// TestDrainMetrics: a drain is counted once, by how it ended, also when
// the undrain's result is reported after it.
func TestDrainMetrics(t *testing.T) {
	m := newMetricsEvents("test")
	m.Drained(drainStatus{InProgress: true, Calls: 3})
	if v := testutil.ToFloat64(m.drainOn); v != 1 {
		t.Fatalf("flip_drain_in_progress = %v during a drain", v)
	}
	m.Drained(drainStatus{Outcome: drainCalledOff, Calls: 2, Undrain: "running", ended: true})
	m.Drained(drainStatus{Outcome: drainCalledOff, Calls: 2, Undrain: "ok"})
	if v := testutil.ToFloat64(m.drains.WithLabelValues(drainCalledOff)); v != 1 {
		t.Fatalf("flip_drains_total{outcome=called-off} = %v, want 1", v)
	}
	if v := testutil.ToFloat64(m.drainOn); v != 0 {
		t.Fatalf("flip_drain_in_progress = %v after the drain", v)
	}
}

// Pool mode's gauges follow the election: the leader with its deadline,
// then a box that lost it (the revision stays: the token it last held).
func TestMetricsPool(t *testing.T) {
	m := newMetricsEvents("test")
	deadline := time.Date(2026, 11, 30, 12, 0, 4, 0, time.UTC)
	m.Pool(poolStatus{Leader: true, Revision: 17, deadline: deadline, Observed: poolLeader{Name: "pbx-a", Waiting: 2}})
	for name, tt := range map[string]struct {
		got, want float64
	}{
		"leader":   {testutil.ToFloat64(m.poolLeader), 1},
		"revision": {testutil.ToFloat64(m.poolRevision), 17},
		"deadline": {testutil.ToFloat64(m.poolDeadline), float64(deadline.Unix())},
		"waiting":  {testutil.ToFloat64(m.poolWaiting), 2},
	} {
		if tt.got != tt.want {
			t.Errorf("%s = %v, want %v", name, tt.got, tt.want)
		}
	}
	m.Pool(poolStatus{Revision: 17, Observed: poolLeader{Name: "pbx-b", Waiting: 1}})
	if l, d := testutil.ToFloat64(m.poolLeader), testutil.ToFloat64(m.poolDeadline); l != 0 || d != 0 {
		t.Errorf("after losing the lead: leader %v, deadline %v; want 0 and 0", l, d)
	}
}
