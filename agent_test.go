package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"strings"
	"testing"
	"time"
)

// Go tests of the agent with fakes: each builds a real agent whose box and
// wire are fakes (fakeStep resources, a fixed holder on the wire, an
// in-memory journal), drives one handler, and checks what it did to the
// box, in order, and what it logged.

// fakeStep is a resource that records its starts and stops, can fail its
// start, and can report drift.
type fakeStep struct {
	name    string
	steps   *[]string
	failErr error // Start returns it
	drift   error // Check returns it until the next Start
	follows bool  // a holderFollower (the foneBRIDGE)
	runs    bool  // a runner that runs (a service)
	stopErr error // Stop returns it
}

func (s *fakeStep) running(context.Context) bool { return s.runs }

func (s *fakeStep) Name() string { return s.name }
func (s *fakeStep) Start(context.Context) error {
	*s.steps = append(*s.steps, "start "+s.name)
	s.drift = nil
	return s.failErr
}
func (s *fakeStep) Stop(context.Context) error {
	*s.steps = append(*s.steps, "stop "+s.name)
	return s.stopErr
}
func (s *fakeStep) Check(context.Context) error { return s.drift }
func (s *fakeStep) followsHolder() bool         { return s.follows }

// fakeAgent is an agent on a fake box: resources vip, routes (network),
// fonebridge, asterisk; holder is what the wire answers to a holder
// check; the clock stands still at ftStart unless the test moves it.
type fakeAgent struct {
	*agent
	steps     []string
	res       map[string]*fakeStep
	holder    net.HardwareAddr
	announced int
	logs      bytes.Buffer
	journal   memJournal
	sent      []string // peer messages
	now       time.Time
}

func newFakeAgent(t *testing.T, primary bool) *fakeAgent {
	t.Helper()
	f := &fakeAgent{res: map[string]*fakeStep{}, now: ftStart}
	log := slog.New(slog.NewTextHandler(&f.logs, nil))
	var resources []resource
	for _, n := range []string{"vip", "routes", "fonebridge", "asterisk"} {
		s := &fakeStep{name: n, steps: &f.steps, follows: n == "fonebridge"}
		f.res[n] = s
		resources = append(resources, s)
	}
	vip := vipSpec{Addr: netip.MustParseAddr("192.0.2.100"), Prefix: netip.MustParsePrefix("192.0.2.100/24"), Iface: "eth0"}
	f.journal.now = func() time.Time { return f.now }
	f.agent = &agent{
		cfg: &config{VIPs: []vipSpec{vip}, Primary: primary, DeadAfter: time.Second, HoldDown: 2 * time.Minute,
			StartTimeout: time.Minute, HolderWait: 61 * time.Second, ResourceTO: time.Second},
		log: log, ev: nopEvents{}, resources: resources, network: 2,
		clock:           func() time.Time { return f.now },
		links:           func() bool { return true },
		inline:          true,
		journal:         &f.journal,
		resourceTimeout: func(resource) time.Duration { return time.Second },
		findHolder:      func(vipSpec) (net.HardwareAddr, error) { return f.holder, nil },
		announce: &announcer{log: log, count: 1, interval: time.Second, send: func(string, vipSpec) error {
			f.announced++
			return nil
		}},
		peerSend: func(m peerMsg, _ int) error {
			if m.Type != peerHeartbeat {
				f.sent = append(f.sent, m.Type)
			}
			return nil
		},
	}
	f.agent.m = newMachine(f.agent.timing(), ftStart, rolePassive)
	return f
}

func (f *fakeAgent) want(t *testing.T, steps ...string) {
	t.Helper()
	if got, want := strings.Join(f.steps, ", "), strings.Join(steps, ", "); got != want {
		t.Fatalf("steps %q, want %q\nlog:\n%s", got, want, f.logs.String())
	}
}

func TestAgentTakeoverRollsBackRightToLeft(t *testing.T) {
	f := newFakeAgent(t, true)
	f.res["asterisk"].failErr = errors.New("asterisk.service: exit 1")
	f.takeover(context.Background(), causeServiceSilent, "test")
	f.want(t, "start vip", "start routes", "start fonebridge", "start asterisk",
		"stop asterisk", "stop fonebridge", "stop routes", "stop vip")
	if f.m.role != rolePassive || f.journal.e.Op != opPassive {
		t.Fatalf("after an aborted takeover: role %s, journal %q", f.m.role, f.journal.e.Op)
	}
	if f.journal.e.HoldDownUntil.IsZero() {
		t.Error("the hold-down of the failed takeover is not in the journal")
	}
	if !strings.Contains(f.logs.String(), "failed_resource=asterisk") {
		t.Error("the abort does not name the resource")
	}
}

func TestAgentSIGTERMDuringTakeoverLeavesTheBox(t *testing.T) {
	f := newFakeAgent(t, true)
	ctx, cancel := context.WithCancel(context.Background())
	f.res["fonebridge"].failErr = nil
	// SIGTERM arrives while fonulator runs.
	orig := f.resources[2]
	f.resources[2] = &hookStep{resource: orig, after: cancel}
	f.takeover(ctx, causeServiceSilent, "test")
	f.want(t, "start vip", "start routes", "start fonebridge")
	if f.journal.e.Op != opTakeover || !f.journal.e.done("fonebridge") {
		t.Fatalf("journal %+v, want a takeover in progress with fonebridge done", f.journal.e)
	}
}

// hookStep runs after once its resource started.
type hookStep struct {
	resource
	after func()
}

func (h *hookStep) Start(ctx context.Context) error {
	err := h.resource.Start(ctx)
	h.after()
	return err
}

func TestAgentResumeAsksTheWireFirst(t *testing.T) {
	for _, tt := range []struct {
		name   string
		holder net.HardwareAddr
		want   []string
		role   role
	}{
		{"nobody holds: finishes, fonulator not again", nil,
			[]string{"start vip", "start routes", "start asterisk"}, roleActive},
		{"another box holds: abandons, stopping everything", arpTestOther,
			[]string{"stop asterisk", "stop fonebridge", "stop routes", "stop vip"}, rolePassive},
	} {
		t.Run(tt.name, func(t *testing.T) {
			f := newFakeAgent(t, true)
			f.holder = tt.holder
			f.journal.e = journalEntry{Op: opTakeover, Cause: causeServiceSilent, Done: []string{"vip", "routes", "fonebridge"}}
			if err := f.resume(context.Background(), ftStart); err != nil {
				t.Fatal(err)
			}
			f.want(t, tt.want...)
			if f.m.role != tt.role {
				t.Fatalf("role %s, want %s", f.m.role, tt.role)
			}
		})
	}
}

func TestAgentHolderCheckWaitsThenForces(t *testing.T) {
	f := newFakeAgent(t, true)
	f.holder = arpTestOther
	wait, h := f.holderCheck(nil)
	if !wait || h.mac != nil {
		t.Fatalf("first holder check: wait %v, holder %v; want wait", wait, h.mac)
	}
	f.now = ftStart.Add(f.cfg.HolderWait)
	wait, h = f.holderCheck(nil)
	if wait || h.mac.String() != arpTestOther.String() {
		t.Fatalf("after FLIP_HOLDER_WAIT: wait %v, holder %v; want the holder reported", wait, h.mac)
	}
}

func TestAgentControl(t *testing.T) {
	t.Run("takeover refused while another box holds, forced past it", func(t *testing.T) {
		f := newFakeAgent(t, false)
		f.holder = arpTestOther
		if r := f.onControl(context.Background(), ctlRequest{Cmd: "takeover"}); r.OK || !strings.Contains(r.Error, "flip switchover") {
			t.Fatalf("unforced takeover: %+v", r)
		}
		r := f.onControl(context.Background(), ctlRequest{Cmd: "takeover", Force: true})
		if !r.OK || f.m.role != roleActive || !f.m.forced {
			t.Fatalf("forced takeover: %+v, role %s, forced %v", r, f.m.role, f.m.forced)
		}
	})
	t.Run("release holds the box off and tells the peer", func(t *testing.T) {
		f := newFakeAgent(t, true)
		f.takeover(context.Background(), causeServiceSilent, "test")
		f.steps = nil
		if r := f.onControl(context.Background(), ctlRequest{Cmd: "release"}); !r.OK {
			t.Fatalf("release: %+v", r)
		}
		f.want(t, "stop asterisk", "stop fonebridge", "stop routes", "stop vip")
		if !f.now.Before(f.m.holdDownEnd) || len(f.sent) != 1 || f.sent[0] != peerReleased {
			t.Fatalf("hold-off until %s, peer messages %v", f.m.holdDownEnd, f.sent)
		}
		if r := f.onControl(context.Background(), ctlRequest{Cmd: "release"}); r.OK {
			t.Fatal("release on a passive box accepted")
		}
	})
}

func TestAgentPeerReleasedTakesOverOnlyIfTheWireIsFree(t *testing.T) {
	f := newFakeAgent(t, false)
	f.holder = arpTestOther
	f.onPeer(context.Background(), peerMsg{Type: peerReleased, From: "box-a"})
	if f.m.role != rolePassive || len(f.steps) != 0 {
		t.Fatalf("took over while the VIP is still held: role %s, steps %v", f.m.role, f.steps)
	}
	f.holder = nil
	f.onPeer(context.Background(), peerMsg{Type: peerReleased, From: "box-a"})
	if f.m.role != roleActive {
		t.Fatalf("did not take over on the other box's word")
	}
}

func TestAgentRepairsDriftAndAnnounces(t *testing.T) {
	f := newFakeAgent(t, true)
	f.takeover(context.Background(), causeServiceSilent, "test")
	f.steps, f.announced = nil, 0
	f.res["vip"].drift = errors.New("VIP 192.0.2.100 is not on eth0")
	f.repairDrift()
	f.want(t, "start vip")
	if f.announced != 1 || !strings.Contains(f.logs.String(), "changed by someone else") {
		t.Fatalf("announced %d times; log:\n%s", f.announced, f.logs.String())
	}
}

func TestAgentConflictKeeperRepointsOnce(t *testing.T) {
	f := newFakeAgent(t, true)
	f.takeover(context.Background(), causeServiceSilent, "test")
	f.m.observe(probeResult{Sent: f.now, Answered: true})
	f.steps = nil
	c := conflictReport{vip: f.cfg.VIPs[0], mac: arpTestOther}
	f.onConflict(context.Background(), c)
	f.onConflict(context.Background(), c)
	f.want(t, "start fonebridge")
	if f.m.role != roleActive {
		t.Fatal("the primary, serving, gave the VIP up")
	}
}

// fenceEvents records the fences the agent reports.
type fenceEvents struct {
	nopEvents
	durations []time.Duration
}

func (e *fenceEvents) Fenced(_ error, d time.Duration) { e.durations = append(e.durations, d) }

// TestAgentForcedTakeoverFencesLikeTheAutomaticOne: issue 12, item 1.
// `flip takeover --force` raises the systemd watchdog for the fence and
// records its real duration, as the automatic takeover does.
func TestAgentForcedTakeoverFencesLikeTheAutomaticOne(t *testing.T) {
	f := newFakeAgent(t, false)
	f.holder = arpTestOther
	f.cfg.FenceTimeout = 30 * time.Second
	ev := &fenceEvents{}
	f.ev = ev
	var raised []time.Duration
	f.busy = func(bound time.Duration) func() { raised = append(raised, bound); return func() {} }
	f.fence = func(context.Context, conflictReport) error {
		f.now = f.now.Add(12 * time.Second) // a slow IPMI fence
		return nil
	}
	if r := f.onControl(context.Background(), ctlRequest{Cmd: "takeover", Force: true}); !r.OK {
		t.Fatalf("forced takeover: %+v", r)
	}
	if len(raised) == 0 || raised[0] != 30*time.Second {
		t.Fatalf("watchdog raised for %v, want FLIP_FENCE_TIMEOUT (30s) first", raised)
	}
	if len(ev.durations) != 1 || ev.durations[0] != 12*time.Second {
		t.Fatalf("fence durations recorded %v, want [12s]", ev.durations)
	}
}

// TestAgentResumeStopsStrayServices: issue 12, item 8. A box that was
// active when flip stopped and finds its VIPs gone stops the services it
// had started; a box that was passive leaves running services alone (hot
// standby starts them outside flip).
func TestAgentResumeStopsStrayServices(t *testing.T) {
	for _, tt := range []struct {
		journal journalOp
		want    []string
	}{
		{opActive, []string{"stop asterisk"}},
		{opPassive, nil},
		{"", nil},
	} {
		f := newFakeAgent(t, true)
		f.res["asterisk"].runs = true
		f.journal.e = journalEntry{Op: tt.journal}
		f.addrs = fakeAddrs{}
		if err := f.resume(context.Background(), ftStart); err != nil {
			t.Fatal(err)
		}
		if strings.Join(f.steps, ",") != strings.Join(tt.want, ",") || f.m.role != rolePassive {
			t.Errorf("journal %q: steps %v, role %s; want %v, passive", tt.journal, f.steps, f.m.role, tt.want)
		}
	}
}

// fakeAddrs is a box without its VIPs.
type fakeAddrs struct{}

func (fakeAddrs) Query(vipSpec) (bool, error) { return false, nil }
func (fakeAddrs) Configure(vipSpec) error     { return nil }
func (fakeAddrs) Deconfigure(vipSpec) error   { return nil }

// TestAgentHolderCheckErrorsBackOff: issue 12, item 5. A holder check that
// cannot be made is logged at a bounded rate and retried with back-off.
func TestAgentHolderCheckErrorsBackOff(t *testing.T) {
	f := newFakeAgent(t, false)
	f.cfg.HolderRecheck = 20 * time.Millisecond
	f.findHolder = func(vipSpec) (net.HardwareAddr, error) { return nil, errors.New("no CAP_NET_RAW") }
	var delays []time.Duration
	for range 200 { // 200 failures in 2 s
		f.now = f.now.Add(10 * time.Millisecond)
		if wait, _ := f.holderCheck(nil); !wait {
			t.Fatal("a failed holder check let the takeover through")
		}
		delays = append(delays, f.holderRecheckDelay())
	}
	if n := strings.Count(f.logs.String(), "cannot check who holds the VIP"); n > 1 {
		t.Fatalf("%d log lines for 200 failures in 2 s, want 1 (one per 10 s)", n)
	}
	if delays[0] != 40*time.Millisecond || delays[len(delays)-1] != f.cfg.DeadAfter {
		t.Fatalf("recheck delays from %s to %s, want 40ms doubling up to FLIP_DEAD_AFTER", delays[0], delays[len(delays)-1])
	}
}

// TestVIPIfacesFollowsTheName: issue 12, item 2. A VIP interface deleted
// and created again with a new index is still recognised by its name.
func TestVIPIfacesFollowsTheName(t *testing.T) {
	v := &vipIfaces{names: map[string]bool{"eth0": true}, byIndex: map[int]string{2: "eth0"}}
	if n, ok := v.link(2, "eth0", true); !ok || n != "eth0" {
		t.Fatalf("deletion of eth0: %q %v", n, ok)
	}
	if _, ok := v.name(2); ok {
		t.Fatal("the deleted index still maps to eth0")
	}
	if n, ok := v.link(7, "eth0", false); !ok || n != "eth0" {
		t.Fatalf("eth0 created again as index 7: %q %v", n, ok)
	}
	if n, ok := v.name(7); !ok || n != "eth0" {
		t.Fatalf("address events of index 7: %q %v, want eth0", n, ok)
	}
	if _, ok := v.link(8, "eth9", false); ok {
		t.Fatal("an interface that carries no VIP was taken for one")
	}
}

// fakeClock is virtual time for resubscribe: Sleep moves it.
type fakeClock struct {
	now    time.Time
	sleeps []time.Duration
}

func (c *fakeClock) Now() time.Time { return c.now }
func (c *fakeClock) Sleep(_ context.Context, d time.Duration) bool {
	c.sleeps = append(c.sleeps, d)
	c.now = c.now.Add(d)
	return true
}

// TestResubscribeBacksOffAndLogsBounded: issue 12, item 5. A netlink
// subscription that fails at once, again and again, is retried with a
// pause doubling up to nlResubscribeMax, and logged once per 10 s with a
// count, not twice every 100 ms.
func TestResubscribeBacksOffAndLogsBounded(t *testing.T) {
	var logs bytes.Buffer
	log := slog.New(slog.NewTextHandler(&logs, nil))
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	clk := &fakeClock{now: ftStart}
	attempts := 0
	resubscribe(ctx, func() error {
		if attempts++; attempts == 60 {
			cancel()
		}
		return errors.New("permission denied")
	}, func() {}, clk, log)
	lines := strings.Count(logs.String(), "netlink subscription closed or failed")
	elapsed := clk.now.Sub(ftStart)
	if max := int(elapsed/rateLogEvery) + 1; lines > max {
		t.Fatalf("%d log lines over %s of failures, want at most %d", lines, elapsed, max)
	}
	if clk.sleeps[0] != 2*nlResubscribeDelay || clk.sleeps[len(clk.sleeps)-1] != nlResubscribeMax {
		t.Fatalf("pauses from %s to %s, want doubling from %s up to %s", clk.sleeps[0], clk.sleeps[len(clk.sleeps)-1], 2*nlResubscribeDelay, nlResubscribeMax)
	}
	if !strings.Contains(logs.String(), "permission denied") {
		t.Fatal("the log does not say why")
	}
}

// transitionEvents records the transitions the agent reports.
type transitionEvents struct {
	nopEvents
	got []string
}

func (e *transitionEvents) Transition(from, to role, cause, reason string, ok bool, _ time.Duration) {
	e.got = append(e.got, fmt.Sprintf("%s->%s %s ok=%v: %s", from, to, cause, ok, reason))
}

// TestAgentReleaseReportsFailedStops: a stop that fails does not stop the
// release (a half-released box is worse), but the transition says ok=false
// and names the resource and the error, so the notify hook and the status
// tell the operator; an aborted takeover is reported with ok=false too.
func TestAgentReleaseReportsFailedStops(t *testing.T) {
	f := newFakeAgent(t, true)
	ev := &transitionEvents{}
	f.ev = ev
	f.takeover(context.Background(), causeServiceSilent, "test")
	f.res["asterisk"].stopErr = errors.New("asterisk.service: stop timed out")
	f.release(context.Background(), causeOperator, "operator: flip release")
	f.want(t, "start vip", "start routes", "start fonebridge", "start asterisk",
		"stop asterisk", "stop fonebridge", "stop routes", "stop vip")
	if f.m.role != rolePassive {
		t.Fatal("a failed stop left the box active")
	}
	if len(ev.got) != 2 || !strings.Contains(ev.got[1], "active->passive operator ok=false") ||
		!strings.Contains(ev.got[1], "stop failed: asterisk: asterisk.service: stop timed out") {
		t.Fatalf("transitions %q", ev.got)
	}
	f.m.clearHoldDown()
	f.res["asterisk"].stopErr, f.res["asterisk"].failErr = nil, errors.New("asterisk.service: exit 1")
	f.takeover(context.Background(), causeServiceSilent, "test")
	if last := ev.got[len(ev.got)-1]; !strings.Contains(last, "passive->passive takeover_failed ok=false") {
		t.Fatalf("aborted takeover reported as %q", last)
	}
}

// TestAgentOptionalResource: an optional resource ("fonebridge?") that
// fails to start does not abort the takeover: the box serves without it,
// the transition says ok=false and names it, and it is retried while
// active, with a growing delay, until it starts.
func TestAgentOptionalResource(t *testing.T) {
	f := newFakeAgent(t, true)
	ev := &transitionEvents{}
	f.ev = ev
	f.optional = []bool{false, false, true, false}
	f.res["fonebridge"].failErr = errors.New("fonulator: exit 1: device unreachable")
	f.takeover(context.Background(), causeServiceSilent, "test")
	f.want(t, "start vip", "start routes", "start fonebridge", "start asterisk")
	if f.m.role != roleActive {
		t.Fatal("an optional resource's failure aborted the takeover")
	}
	if len(ev.got) != 1 || !strings.Contains(ev.got[0], "passive->active service_silent ok=false") ||
		!strings.Contains(ev.got[0], "optional resource failed (retried): fonebridge: fonulator: exit 1") {
		t.Fatalf("transitions %q", ev.got)
	}
	f.steps = nil
	f.retryOptional(context.Background())
	f.want(t) // not before optionalRetryFirst
	f.now = f.now.Add(optionalRetryFirst)
	f.retryOptional(context.Background())
	f.want(t, "start fonebridge")
	f.now = f.now.Add(optionalRetryFirst) // the second retry waits twice as long
	f.retryOptional(context.Background())
	f.want(t, "start fonebridge")
	f.res["fonebridge"].failErr = nil
	f.now = f.now.Add(optionalRetryFirst)
	f.retryOptional(context.Background())
	f.want(t, "start fonebridge", "start fonebridge")
	f.now = f.now.Add(optionalRetryMax)
	f.retryOptional(context.Background())
	f.want(t, "start fonebridge", "start fonebridge") // started: no more retries
	if !strings.Contains(f.logs.String(), "optional resource started on retry") {
		t.Fatalf("log:\n%s", f.logs.String())
	}
}

// TestOptionalRetryDelay doubles from optionalRetryFirst up to
// optionalRetryMax.
func TestOptionalRetryDelay(t *testing.T) {
	for n, want := range map[int]time.Duration{1: 10 * time.Second, 2: 20 * time.Second, 3: 40 * time.Second, 6: 5 * time.Minute, 50: 5 * time.Minute} {
		if got := optionalRetryDelay(n); got != want {
			t.Errorf("optionalRetryDelay(%d) = %s, want %s", n, got, want)
		}
	}
}
