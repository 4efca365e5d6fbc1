package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"regexp"
	"runtime/debug"
	"strconv"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// metricsEvents turns the agent's events into Prometheus metrics in a
// registry of its own (nothing registers into the global one by accident).
// Every method only updates counters, gauges and histograms: lock-free or
// nearly, never blocking the agent.
type metricsEvents struct {
	reg *prometheus.Registry

	role           *prometheus.GaugeVec
	startTime      prometheus.Gauge
	probeRTT       prometheus.Histogram
	probes         prometheus.Counter
	misses         prometheus.Counter
	lastAnswer     prometheus.Gauge
	transitions    *prometheus.CounterVec
	lastTransition prometheus.Gauge
	lastTransDur   prometheus.Gauge
	phaseDuration  *prometheus.HistogramVec
	phaseFailures  *prometheus.CounterVec
	conflicts      *prometheus.CounterVec
	fence          *prometheus.CounterVec
	fenceDuration  prometheus.Histogram
	buildInfo      *prometheus.GaugeVec
	stoppingGauge  prometheus.Gauge
	transitionDur  *prometheus.HistogramVec
	drainOn        prometheus.Gauge
	drainCalls     prometheus.Gauge
	drains         *prometheus.CounterVec
	syncLastOK     prometheus.Gauge
	syncRuns       *prometheus.CounterVec
	holdUntil      prometheus.Gauge
	poolLeader     prometheus.Gauge
	poolRevision   prometheus.Gauge
	poolDeadline   prometheus.Gauge
	poolWaiting    prometheus.Gauge
}

var _ events = (*metricsEvents)(nil)

// probeRTTBuckets spans a loopback answer (0.1 ms) to the probe timeout
// region (1 s): a SIP stack that answers slower than that is as good as
// silent here.
var probeRTTBuckets = []float64{
	0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1,
}

// phaseBuckets span a VIP added over netlink (sub-millisecond) to an
// Asterisk or fonulator start (tens of seconds, bounded by
// FLIP_RESOURCE_TIMEOUT and the fonulator retries).
var phaseBuckets = []float64{
	0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120,
}

// newMetricsEvents registers every flip_ metric, plus the Go runtime and
// process collectors, in a new registry. version is the flip_build_info
// label; "" takes the module version from the build info.
func newMetricsEvents(version string) *metricsEvents {
	if version == "" {
		version = buildVersion()
	}
	reg := prometheus.NewRegistry()
	m := &metricsEvents{
		reg: reg,
		role: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "flip_role",
			Help: "1 for the role this box has now (active or passive), 0 for the other; both 0 before the agent has looked at the box.",
		}, []string{"role"}),
		startTime: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "flip_start_time_seconds",
			Help: "Unix time the agent looked at the box and took up its role.",
		}),
		probeRTT: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "flip_probe_rtt_seconds",
			Help:    "Round-trip time of answered SIP OPTIONS probes to the service address.",
			Buckets: probeRTTBuckets,
		}),
		probes: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "flip_probes_total",
			Help: "SIP OPTIONS probes sent whose outcome is known (answered or not).",
		}),
		misses: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "flip_probe_misses_total",
			Help: "SIP OPTIONS probes that got no answer within the probe timeout.",
		}),
		lastAnswer: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "flip_probe_last_answer_timestamp_seconds",
			Help: "Unix time the newest probe answer arrived; 0 before the first.",
		}),
		transitions: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "flip_transitions_total",
			Help: "Takeovers (passive to active), releases (active to passive) and aborted takeovers (passive to passive, ok=false), by cause.",
		}, []string{"from", "to", "cause", "ok"}),
		lastTransition: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "flip_last_transition_timestamp_seconds",
			Help: "Unix time of the last takeover, release or aborted takeover; 0 before the first.",
		}),
		lastTransDur: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "flip_last_transition_duration_seconds",
			Help: "How long the last takeover, release or aborted takeover took, from the decision to the last resource.",
		}),
		transitionDur: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "flip_transition_duration_seconds",
			Help:    "How long takeovers, releases and aborted takeovers took, from the decision to the last resource.",
			Buckets: phaseBuckets,
		}, []string{"from", "to", "ok"}),
		phaseDuration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "flip_phase_duration_seconds",
			Help:    "Duration of one resource start or stop, or of sending the announcement, by action (start, stop, announce) and resource.",
			Buckets: phaseBuckets,
		}, []string{"action", "resource"}),
		phaseFailures: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "flip_phase_failures_total",
			Help: "Resource starts and stops that failed, by action and resource.",
		}, []string{"action", "resource"}),
		conflicts: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "flip_vip_conflicts_total",
			Help: "Times another MAC was seen claiming a VIP this box wants or holds.",
		}, []string{"vip"}),
		fence: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "flip_fence_total",
			Help: "Runs of FLIP_FENCE_CMD by result (ok, failed).",
		}, []string{"result"}),
		fenceDuration: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "flip_fence_duration_seconds",
			Help:    "Duration of FLIP_FENCE_CMD runs.",
			Buckets: phaseBuckets,
		}),
		buildInfo: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "flip_build_info",
			Help: "Always 1; the labels tell the flip version and the Go version it was built with.",
		}, []string{"version", "goversion"}),
		stoppingGauge: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "flip_stopping",
			Help: "1 once the agent is exiting (it leaves the box as it is).",
		}),
		drainOn: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "flip_drain_in_progress",
			Help: "1 while a drained switchover waits for the calls in progress to end.",
		}),
		drainCalls: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "flip_drain_calls",
			Help: "Calls in progress at the last count of the drain under way or the last one (-1: not counted).",
		}),
		drains: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "flip_drains_total",
			Help: "Drained switchovers by outcome: switched, called-off, interrupted.",
		}, []string{"outcome"}),
		syncLastOK: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "flip_sync_last_success_timestamp_seconds",
			Help: "When FLIP_SYNC_CMD last succeeded (0: never on this agent). Alert when it is old on the active box.",
		}),
		poolLeader: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "flip_pool_leader",
			Help: "Pool mode: 1 while this box leads the election (holds the lease), else 0.",
		}),
		poolRevision: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "flip_pool_revision",
			Help: "Pool mode: the election revision this box last won with (the fencing token); 0 before.",
		}),
		poolDeadline: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "flip_pool_lease_deadline_timestamp_seconds",
			Help: "Pool mode, on the leader: until when it can prove its lease without another keep-alive; 0 on other boxes.",
		}),
		poolWaiting: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "flip_pool_candidates_waiting",
			Help: "Pool mode: candidates waiting behind the leader, as this box last read them.",
		}),
		holdUntil: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "flip_hold_until_timestamp_seconds",
			Help: "While the pair is held (flip hold: nothing moves by itself), when the hold ends; 0: not held.",
		}),
		syncRuns: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "flip_sync_runs_total",
			Help: "Runs of FLIP_SYNC_CMD by result: ok, failed.",
		}, []string{"result"}),
	}
	reg.MustRegister(
		m.role, m.startTime, m.probeRTT, m.probes, m.misses, m.lastAnswer,
		m.transitions, m.lastTransition, m.lastTransDur, m.transitionDur,
		m.phaseDuration, m.phaseFailures, m.conflicts, m.fence, m.fenceDuration,
		m.buildInfo, m.stoppingGauge, m.drainOn, m.drainCalls, m.drains, m.syncLastOK, m.syncRuns, m.holdUntil,
		m.poolLeader, m.poolRevision, m.poolDeadline, m.poolWaiting,
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
	)
	// Series that exist from the start, so rate() and absence alerts see
	// a 0 rather than nothing.
	m.role.WithLabelValues(roleActive.String()).Set(0)
	m.role.WithLabelValues(rolePassive.String()).Set(0)
	m.fence.WithLabelValues("ok")
	m.fence.WithLabelValues("failed")
	for _, o := range []string{drainSwitched, drainCalledOff, drainInterrupted} {
		m.drains.WithLabelValues(o)
	}
	m.syncRuns.WithLabelValues("ok")
	m.syncRuns.WithLabelValues("failed")
	m.buildInfo.WithLabelValues(version, buildGoVersion()).Set(1)
	return m
}

// Registry is what /metrics serves.
func (m *metricsEvents) Registry() *prometheus.Registry { return m.reg }

func buildVersion() string {
	if bi, ok := debug.ReadBuildInfo(); ok && bi.Main.Version != "" {
		return bi.Main.Version
	}
	return "unknown"
}

func buildGoVersion() string {
	if bi, ok := debug.ReadBuildInfo(); ok {
		return bi.GoVersion
	}
	return "unknown"
}

func (m *metricsEvents) setRole(r role) {
	for _, x := range []role{rolePassive, roleActive} {
		v := 0.0
		if x == r {
			v = 1
		}
		m.role.WithLabelValues(x.String()).Set(v)
	}
}

func (m *metricsEvents) Started(r role, _ int) {
	m.setRole(r)
	m.startTime.SetToCurrentTime()
}

func (m *metricsEvents) Probed(r probeResult) {
	m.probes.Inc()
	if !r.Answered {
		m.misses.Inc()
		return
	}
	m.probeRTT.Observe(r.RTT.Seconds())
	m.lastAnswer.Set(float64(r.Sent.Add(r.RTT).UnixNano()) / 1e9)
}

func (m *metricsEvents) Phase(action, resource string, d time.Duration, err error) {
	action, resource = labelValue(action), labelValue(resource)
	m.phaseDuration.WithLabelValues(action, resource).Observe(d.Seconds())
	if err != nil {
		m.phaseFailures.WithLabelValues(action, resource).Inc()
	}
}

func (m *metricsEvents) Transition(from, to role, cause, _ string, ok bool, total time.Duration) {
	okl := strconv.FormatBool(ok)
	m.transitions.WithLabelValues(from.String(), to.String(), causeLabel(cause), okl).Inc()
	m.transitionDur.WithLabelValues(from.String(), to.String(), okl).Observe(total.Seconds())
	m.lastTransition.SetToCurrentTime()
	m.lastTransDur.Set(total.Seconds())
	m.setRole(to)
}

func (m *metricsEvents) Conflict(vip netip.Addr, _ net.HardwareAddr) {
	m.conflicts.WithLabelValues(vip.String()).Inc()
}

func (m *metricsEvents) Fenced(err error, d time.Duration) {
	result := "ok"
	if err != nil {
		result = "failed"
	}
	m.fence.WithLabelValues(result).Inc()
	m.fenceDuration.Observe(d.Seconds())
}

func (m *metricsEvents) Stopping() { m.stoppingGauge.Set(1) }

func (m *metricsEvents) Ready(readiness) {}

func (m *metricsEvents) Pool(p poolStatus) {
	m.poolLeader.Set(0)
	m.poolDeadline.Set(0)
	if p.Leader {
		m.poolLeader.Set(1)
		if !p.deadline.IsZero() {
			m.poolDeadline.Set(float64(p.deadline.UnixNano()) / 1e9)
		}
	}
	m.poolRevision.Set(float64(p.Revision))
	m.poolWaiting.Set(float64(p.Observed.Waiting))
}

func (m *metricsEvents) Held(h holdStatus) {
	if !h.Held {
		m.holdUntil.Set(0)
		return
	}
	m.holdUntil.Set(float64(h.until.UnixNano()) / 1e9)
}

func (m *metricsEvents) Synced(s syncStatus) {
	if s.Running {
		return
	}
	if s.LastError != "" {
		m.syncRuns.WithLabelValues("failed").Inc()
		return
	}
	m.syncRuns.WithLabelValues("ok").Inc()
	m.syncLastOK.SetToCurrentTime()
}

func (m *metricsEvents) Drained(s drainStatus) {
	m.drainCalls.Set(float64(s.Calls))
	if s.InProgress {
		m.drainOn.Set(1)
		return
	}
	m.drainOn.Set(0)
	if s.ended {
		m.drains.WithLabelValues(s.Outcome).Inc()
	}
}

// causeRE is what a cause label looks like: the cause* constants are short
// snake_case words. Anything else (a sentence passed by mistake) becomes
// "other", so a label never carries free text and the series stay few.
var causeRE = regexp.MustCompile(`^[a-z][a-z0-9_]{0,39}$`)

func causeLabel(cause string) string {
	switch {
	case cause == "":
		return "unknown"
	case causeRE.MatchString(cause):
		return cause
	default:
		return "other"
	}
}

// labelValue bounds a resource or action name (they come from
// FLIP_RESOURCES, so they are few; the bound is against a runaway name).
func labelValue(s string) string {
	const max = 128
	if len(s) > max {
		return s[:max]
	}
	return s
}

// metricsShutdownTimeout bounds how long serveMetrics waits for scrapes in
// flight when its context ends.
const metricsShutdownTimeout = 2 * time.Second

// serveMetrics serves GET /metrics (Prometheus) and GET /status (the state
// tracker's snapshot as JSON) on addr until ctx ends. It returns once the
// address is bound, with the bound address (addr may have port 0), or the
// error that kept it from listening. m or st may be nil: that endpoint
// then answers 404.
func serveMetrics(ctx context.Context, addr string, m *metricsEvents, st *stateTracker, log *slog.Logger) (net.Addr, error) {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	var lc net.ListenConfig
	ln, err := lc.Listen(ctx, "tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("FLIP_METRICS_ADDR %s: cannot listen: %w", addr, err)
	}
	srv := &http.Server{
		Handler:           metricsHandler(m, st, log),
		ReadHeaderTimeout: 5 * time.Second,
		ReadTimeout:       10 * time.Second,
		WriteTimeout:      30 * time.Second,
		IdleTimeout:       60 * time.Second,
		ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelWarn),
	}
	bound := ln.Addr()
	go func() {
		if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			log.Error("metrics server stopped", "addr", bound.String(), "err", fmt.Errorf("FLIP_METRICS_ADDR %s: %w", addr, err))
		}
	}()
	go func() {
		<-ctx.Done()
		sctx, cancel := context.WithTimeout(context.Background(), metricsShutdownTimeout)
		defer cancel()
		if err := srv.Shutdown(sctx); err != nil {
			srv.Close()
		}
	}()
	return bound, nil
}

// metricsHandler is the HTTP side of serveMetrics.
func metricsHandler(m *metricsEvents, st *stateTracker, log *slog.Logger) http.Handler {
	mux := http.NewServeMux()
	if m != nil {
		mux.Handle("GET /metrics", promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{
			ErrorLog:      slog.NewLogLogger(log.Handler(), slog.LevelWarn),
			ErrorHandling: promhttp.ContinueOnError,
		}))
	}
	if st != nil {
		// "GET" also matches HEAD; any other method gets 405 with Allow.
		mux.HandleFunc("GET /status", func(w http.ResponseWriter, r *http.Request) {
			body, err := json.MarshalIndent(st.Snapshot(), "", "  ")
			if err != nil {
				http.Error(w, err.Error(), http.StatusInternalServerError)
				return
			}
			w.Header().Set("Content-Type", "application/json")
			w.Header().Set("Cache-Control", "no-store")
			w.Write(append(body, '\n'))
		})
	}
	mux.HandleFunc("GET /{$}", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		fmt.Fprint(w, "flip\n/metrics  Prometheus metrics\n/status   state as JSON\n")
	})
	return mux
}
