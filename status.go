package main

import (
	"fmt"
	"net"
	"net/netip"
	"sync"
	"time"
)

// stateTracker follows the agent's events and keeps what an operator asks
// first: which role, since when, why, and how the last takeover went. It is
// what GET /status and `flip status` print. The agent's loop writes it, HTTP
// handlers read it: every method takes the mutex for a few field updates
// only, so it never blocks the agent.
type stateTracker struct {
	mu sync.Mutex

	// busy is the step the agent's loop is in, if any.
	busy *busyStatus
	// drain is the drain under way or the last one; nil: none yet.
	drain *drainStatus
	// sync is the standby sync; nil: not run yet.
	sync *syncStatus
	// hold is maintenance mode; Held false: none.
	hold holdStatus
	// pool is the election (pool mode); nil: a pair.
	pool *poolStatus
	// history is the last statusHistory transitions, oldest first.
	history []*transitionStatus
	// ready: could this box take over now, and if not why (readiness).
	ready *readiness
	// peerPaths reports the peer channel's paths and refusals; nil: none.
	peerPaths   func(now time.Time) []peerPathStatus
	peerRefused func() int

	name          string
	primary       bool
	vips          []string
	probeTarget   string
	serviceTarget string

	started    time.Time
	vipsHeld   int
	role       string // "starting" until Started
	since      time.Time
	stopping   bool
	lastTrans  *transitionStatus
	lastTake   *transitionStatus
	lastRel    *transitionStatus
	takeovers  int
	failedTake int
	releases   int
	pending    []phaseStatus // phases since the last transition

	probes    probeStatus
	lastSent  time.Time
	lastAns   time.Time
	conflicts conflictStatus
	lastConf  time.Time
	fence     fenceStatus
	lastFence time.Time
}

// roleStarting is the role /status shows before the agent has looked at
// the box (the HTTP server may answer before that).
const roleStarting = "starting"

// maxPendingPhases bounds the phases kept for one transition: a takeover
// has one per resource plus the announcement, and an aborted one the stops
// as well. More would be a bug; keep the first ones.
const maxPendingPhases = 64

// statusSnapshot is the state as JSON: the body of GET /status and what
// `flip status` prints. Times are RFC 3339 with nanoseconds, left out while
// unknown; durations are milliseconds. Field names are part of the
// interface (docs/metrics.md): add, never rename.
type statusSnapshot struct {
	Name        string   `json:"name"`
	Role        string   `json:"role"` // active, passive, or starting
	Primary     bool     `json:"primary"`
	VIPs        []string `json:"vips"` // ADDR/PREFIX@IFACE
	ProbeTarget string   `json:"probe_target"`
	// ServiceTarget: where clients reach the service (the first VIP), when
	// the probe goes elsewhere: in a pool each box probes its own service.
	ServiceTarget string `json:"service_target,omitempty"`
	Now           string `json:"now"`
	Started       string `json:"started,omitempty"` // the agent looked at the box
	VIPsHeld      int    `json:"vips_held_at_start"`
	Since         string `json:"since,omitempty"` // the last role change, or start
	Stopping      bool   `json:"stopping"`

	// LastCause and LastReason are those of the last transition (also an
	// aborted takeover); empty before the first.
	LastCause  string `json:"last_cause,omitempty"`
	LastReason string `json:"last_reason,omitempty"`

	LastTransition *transitionStatus `json:"last_transition,omitempty"`
	LastTakeover   *transitionStatus `json:"last_takeover,omitempty"` // also an aborted one
	LastRelease    *transitionStatus `json:"last_release,omitempty"`
	Transitions    transitionCounts  `json:"transitions"`

	Probes    probeStatus    `json:"probes"`
	Conflicts conflictStatus `json:"conflicts"`
	Fence     fenceStatus    `json:"fence"`
	// Busy: the step the agent is in (a service start, fonulator, the
	// fence) and for how long; the status is answered all the same.
	Busy *busyStatus `json:"busy,omitempty"`
	// PeerPaths: each path of the peer channel (FLIP_PEER), when set, and
	// how many datagrams it refused.
	PeerPaths   []peerPathStatus `json:"peer_paths,omitempty"`
	PeerRefused int              `json:"peer_refused,omitempty"`
	// Drain: the drained switchover under way, or the last one.
	Drain *drainStatus `json:"drain,omitempty"`
	// Sync: the standby sync (FLIP_SYNC_CMD), once it has started.
	Sync *syncStatus `json:"sync,omitempty"`
	// Hold: maintenance mode (flip hold), while it is in force.
	Hold *holdStatus `json:"hold,omitempty"`
	// Ready: could this box take over right now, by itself, and if not
	// why; for the active box, whether the other box could (its
	// heartbeat's word), when the peer channel tells.
	Ready *readiness `json:"ready,omitempty"`
	// History: the last transitions (at most 20), oldest first, each with
	// its cause and timeline.
	History []*transitionStatus `json:"history"`
	// Pool: the election, in pool mode (FLIP_ETCD_ENDPOINTS).
	Pool *poolStatus `json:"pool,omitempty"`
}

// statusHistory is how many transitions the status keeps.
const statusHistory = 20

// readiness is whether a takeover could happen now.
type readiness struct {
	ThisBox  bool   `json:"this_box"`
	Why      string `json:"why,omitempty"`       // when not
	OtherBox *bool  `json:"other_box,omitempty"` // its heartbeat's word; nil: not heard
}

// transitionStatus is one takeover, aborted takeover or release.
type transitionStatus struct {
	From    string        `json:"from"`
	To      string        `json:"to"`
	Cause   string        `json:"cause"`
	Reason  string        `json:"reason"`
	OK      bool          `json:"ok"`
	At      string        `json:"at"`
	TotalMS float64       `json:"total_ms"`
	Phases  []phaseStatus `json:"phases"` // in the order they ran
}

// phaseStatus is one resource start or stop, or the announcement.
type phaseStatus struct {
	Action   string  `json:"action"` // start, stop, announce
	Resource string  `json:"resource"`
	MS       float64 `json:"ms"`
	Error    string  `json:"error,omitempty"`
}

type transitionCounts struct {
	Takeovers       int `json:"takeovers"`
	FailedTakeovers int `json:"failed_takeovers"`
	Releases        int `json:"releases"`
}

// probeStatus counts probe results since start. LastAnswered is when the
// newest answer arrived (its send time plus RTT).
type probeStatus struct {
	Sent              int     `json:"sent"`
	Answered          int     `json:"answered"`
	Missed            int     `json:"missed"`
	ConsecutiveMissed int     `json:"consecutive_missed"`
	LastSent          string  `json:"last_sent,omitempty"`
	LastAnswered      string  `json:"last_answered,omitempty"`
	LastRTTMS         float64 `json:"last_rtt_ms"`
	LastStatus        int     `json:"last_status,omitempty"` // SIP status code
	LastResponder     string  `json:"last_responder,omitempty"`
	LastError         string  `json:"last_error,omitempty"` // of the newest unanswered probe
}

type conflictStatus struct {
	Count      int    `json:"count"`
	LastVIP    string `json:"last_vip,omitempty"`
	LastHolder string `json:"last_holder,omitempty"` // MAC
	LastAt     string `json:"last_at,omitempty"`
}

type fenceStatus struct {
	Runs       int     `json:"runs"`
	Failed     int     `json:"failed"`
	LastResult string  `json:"last_result,omitempty"` // ok or failed
	LastError  string  `json:"last_error,omitempty"`
	LastAt     string  `json:"last_at,omitempty"`
	LastMS     float64 `json:"last_ms"`
}

var _ events = (*stateTracker)(nil)

// newStateTracker starts with what the configuration says; the role is
// known once the agent calls Started.
func newStateTracker(cfg *config) *stateTracker {
	t := &stateTracker{
		name:          cfg.Name,
		primary:       cfg.Primary,
		probeTarget:   cfg.ProbeTarget,
		serviceTarget: cfg.serviceTarget(),
		role:          roleStarting,
		vips:          []string{},
	}
	for _, v := range cfg.VIPs {
		t.vips = append(t.vips, vipString(v))
	}
	return t
}

func vipString(v vipSpec) string {
	p := v.Prefix
	if !p.IsValid() {
		p = netip.PrefixFrom(v.Addr, v.Addr.BitLen())
	}
	if v.Iface == "" {
		return p.String()
	}
	return p.String() + "@" + v.Iface
}

func (t *stateTracker) Started(r role, vipsHeld int) {
	now := time.Now()
	t.mu.Lock()
	defer t.mu.Unlock()
	t.started, t.since, t.role, t.vipsHeld = now, now, r.String(), vipsHeld
}

func (t *stateTracker) Probed(r probeResult) {
	t.mu.Lock()
	defer t.mu.Unlock()
	p := &t.probes
	p.Sent++
	if r.Sent.After(t.lastSent) {
		t.lastSent = r.Sent
	}
	if !r.Answered {
		p.Missed++
		p.ConsecutiveMissed++
		if r.Err != nil {
			p.LastError = r.Err.Error()
		} else {
			p.LastError = "no answer"
		}
		return
	}
	p.Answered++
	p.ConsecutiveMissed = 0
	if at := r.Sent.Add(r.RTT); at.After(t.lastAns) {
		t.lastAns = at
		p.LastRTTMS = msFloat(r.RTT)
		p.LastStatus = r.Status
		p.LastResponder = r.Server
	}
}

// stepBegins records that the agent's loop is busy with one step (a
// resource start or stop, the fence) from at: `flip status`, answered
// without the loop, says so while it runs.
func (t *stateTracker) stepBegins(action, resource string, at time.Time) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.busy = &busyStatus{Action: action, Resource: resource, Since: timeString(at), since: at}
}

// stepEnds records that the step is over.
func (t *stateTracker) stepEnds() {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.busy = nil
}

func (t *stateTracker) Phase(action, resource string, d time.Duration, err error) {
	ph := phaseStatus{Action: action, Resource: resource, MS: msFloat(d)}
	if err != nil {
		ph.Error = err.Error()
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	t.busy = nil
	if len(t.pending) < maxPendingPhases {
		t.pending = append(t.pending, ph)
	}
}

func (t *stateTracker) Transition(from, to role, cause, reason string, ok bool, total time.Duration) {
	now := time.Now()
	t.mu.Lock()
	defer t.mu.Unlock()
	tr := &transitionStatus{
		From: from.String(), To: to.String(), Cause: cause, Reason: reason, OK: ok,
		At: timeString(now), TotalMS: msFloat(total), Phases: t.pending,
	}
	if tr.Phases == nil {
		tr.Phases = []phaseStatus{}
	}
	t.pending = nil
	t.lastTrans = tr
	t.history = append(t.history, tr)
	if len(t.history) > statusHistory {
		t.history = t.history[len(t.history)-statusHistory:]
	}
	switch {
	case to == roleActive:
		t.lastTake = tr
		t.takeovers++
	case from == rolePassive: // aborted takeover: the role did not change
		t.lastTake = tr
		t.failedTake++
	default:
		t.lastRel = tr
		t.releases++
	}
	t.role = to.String()
	if from != to {
		t.since = now
	}
}

func (t *stateTracker) Conflict(vip netip.Addr, holder net.HardwareAddr) {
	now := time.Now()
	t.mu.Lock()
	defer t.mu.Unlock()
	t.conflicts.Count++
	t.conflicts.LastVIP = vip.String()
	t.conflicts.LastHolder = holder.String()
	t.lastConf = now
}

func (t *stateTracker) Fenced(err error, d time.Duration) {
	now := time.Now()
	t.mu.Lock()
	defer t.mu.Unlock()
	f := &t.fence
	f.Runs++
	f.LastMS = msFloat(d)
	f.LastResult, f.LastError = "ok", ""
	if err != nil {
		f.Failed++
		f.LastResult, f.LastError = "failed", err.Error()
	}
	t.lastFence = now
}

func (t *stateTracker) Stopping() {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.stopping = true
}

func (t *stateTracker) Drained(s drainStatus) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.drain = &s
}

func (t *stateTracker) Ready(r readiness) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.ready = &r
}

func (t *stateTracker) Held(h holdStatus) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.hold = h
}

func (t *stateTracker) Pool(p poolStatus) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.pool = &p
}

func (t *stateTracker) Synced(s syncStatus) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.sync = &s
}

// Snapshot copies the state; the result shares nothing with the tracker.
// busyStatus is a step under way.
type busyStatus struct {
	Action   string  `json:"action"` // start, stop, fence
	Resource string  `json:"resource"`
	Since    string  `json:"since"`
	ForMS    float64 `json:"for_ms"`
	since    time.Time
}

// busyNow is a copy of the step under way with its age at now.
func (t *stateTracker) busyNow(now time.Time) *busyStatus {
	if t.busy == nil {
		return nil
	}
	b := *t.busy
	b.ForMS = msFloat(now.Sub(b.since))
	return &b
}

// paths is the peer paths' state, if there is a peer channel.
func (t *stateTracker) paths(now time.Time) []peerPathStatus {
	if t.peerPaths == nil {
		return nil
	}
	return t.peerPaths(now)
}

// refused is how many datagrams the peer channel refused.
func (t *stateTracker) refused() int {
	if t.peerRefused == nil {
		return 0
	}
	return t.peerRefused()
}

func (t *stateTracker) Snapshot() statusSnapshot {
	now := time.Now()
	t.mu.Lock()
	defer t.mu.Unlock()
	s := statusSnapshot{
		Name:          t.name,
		Role:          t.role,
		Primary:       t.primary,
		VIPs:          append([]string{}, t.vips...),
		ProbeTarget:   t.probeTarget,
		ServiceTarget: t.serviceTarget,
		Now:           timeString(now),
		Started:       timeString(t.started),
		VIPsHeld:      t.vipsHeld,
		Since:         timeString(t.since),
		Stopping:      t.stopping,
		Transitions:   transitionCounts{Takeovers: t.takeovers, FailedTakeovers: t.failedTake, Releases: t.releases},
		Probes:        t.probes,
		Conflicts:     t.conflicts,
		Fence:         t.fence,
		LastTakeover:  copyTransition(t.lastTake),
		PeerPaths:     t.paths(now),
		Busy:          t.busyNow(now),
		PeerRefused:   t.refused(),
		LastRelease:   copyTransition(t.lastRel),
	}
	if t.drain != nil {
		d := *t.drain
		s.Drain = &d
	}
	if t.sync != nil {
		y := *t.sync
		s.Sync = &y
	}
	if t.ready != nil {
		r := *t.ready
		s.Ready = &r
	}
	if t.pool != nil {
		p := *t.pool
		if !p.deadline.IsZero() {
			p.LeaseLeftMS = max(msFloat(p.deadline.Sub(now)), 0)
		}
		s.Pool = &p
	}
	s.History = make([]*transitionStatus, 0, len(t.history))
	for _, tr := range t.history {
		s.History = append(s.History, copyTransition(tr))
	}
	if t.hold.Held && now.Before(t.hold.until) {
		h := t.hold
		s.Hold = &h
	}
	s.LastTransition = copyTransition(t.lastTrans)
	if s.LastTransition != nil {
		s.LastCause, s.LastReason = s.LastTransition.Cause, s.LastTransition.Reason
	}
	s.Probes.LastSent = timeString(t.lastSent)
	s.Probes.LastAnswered = timeString(t.lastAns)
	s.Conflicts.LastAt = timeString(t.lastConf)
	s.Fence.LastAt = timeString(t.lastFence)
	return s
}

func copyTransition(tr *transitionStatus) *transitionStatus {
	if tr == nil {
		return nil
	}
	c := *tr
	c.Phases = append([]phaseStatus{}, tr.Phases...)
	return &c
}

// timeString is RFC 3339 with nanoseconds in UTC, or "" for the zero time
// (then omitted from the JSON).
func timeString(t time.Time) string {
	if t.IsZero() {
		return ""
	}
	return t.UTC().Format(time.RFC3339Nano)
}

// msFloat is a duration in milliseconds.
func msFloat(d time.Duration) float64 {
	return float64(d) / float64(time.Millisecond)
}

// String is a few lines for a terminal: what `flip status` can print when
// asked for text rather than JSON.
func (s statusSnapshot) String() string {
	out := fmt.Sprintf("%s: %s", s.Name, s.Role)
	if s.Since != "" {
		out += " since " + s.Since
	}
	if s.Primary {
		out += " (primary)"
	}
	out += "\n"
	if h := s.Hold; h != nil {
		out += h.String() + "\n"
	}
	if r := s.Ready; r != nil {
		out += r.String() + "\n"
	}
	if pl := s.Pool; pl != nil {
		out += pl.String() + "\n"
	}
	if tr := s.LastTransition; tr != nil {
		ok := "ok"
		if !tr.OK {
			ok = "FAILED"
		}
		out += fmt.Sprintf("last transition: %s -> %s at %s, %s (%s): %s, %.2f ms\n", tr.From, tr.To, tr.At, tr.Cause, ok, tr.Reason, tr.TotalMS)
		for _, p := range tr.Phases {
			line := fmt.Sprintf("  %-8s %-20s %9.2f ms", p.Action, p.Resource, p.MS)
			if p.Error != "" {
				line += "  error: " + p.Error
			}
			out += line + "\n"
		}
	}
	p := s.Probes
	out += fmt.Sprintf("probes to %s: %d sent, %d answered, %d missed (%d in a row)", s.ProbeTarget, p.Sent, p.Answered, p.Missed, p.ConsecutiveMissed)
	if p.LastAnswered != "" {
		out += fmt.Sprintf("; last answer %s, %.2f ms, %d from %q", p.LastAnswered, p.LastRTTMS, p.LastStatus, p.LastResponder)
	}
	out += "\n"
	if s.Conflicts.Count > 0 {
		out += fmt.Sprintf("VIP conflicts: %d, last %s held by %s at %s\n", s.Conflicts.Count, s.Conflicts.LastVIP, s.Conflicts.LastHolder, s.Conflicts.LastAt)
	}
	if n := len(s.History); n > 1 {
		out += fmt.Sprintf("earlier transitions (%d kept, newest first; --json has their timelines):\n", n-1)
		for i := n - 2; i >= 0; i-- {
			tr := s.History[i]
			ok := "ok"
			if !tr.OK {
				ok = "FAILED"
			}
			out += fmt.Sprintf("  %s %s -> %s %s (%s): %s\n", tr.At, tr.From, tr.To, tr.Cause, ok, tr.Reason)
		}
	}
	if d := s.Drain; d != nil {
		out += d.String() + "\n"
	}
	if y := s.Sync; y != nil {
		out += y.String() + "\n"
	}
	if s.Fence.Runs > 0 {
		out += fmt.Sprintf("fence: %d runs, %d failed, last %s at %s", s.Fence.Runs, s.Fence.Failed, s.Fence.LastResult, s.Fence.LastAt)
		if s.Fence.LastError != "" {
			out += ": " + s.Fence.LastError
		}
		out += "\n"
	}
	return out
}

// String says in one line whether a takeover could happen now.
func (r readiness) String() string {
	out := "this box could take over now"
	switch {
	case r.Why == "this box is active":
		out = "this box is active"
	case !r.ThisBox:
		out = "this box could not take over now: " + r.Why
	}
	if r.OtherBox != nil {
		if *r.OtherBox {
			out += "; the other box says it could take over now"
		} else {
			out += "; the other box says it could not take over now"
		}
	}
	return out
}
