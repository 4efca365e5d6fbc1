package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net"
	"net/netip"
	"time"
)

// The simulator's world: two boxes on one LAN with a client, a virtual
// clock and a seeded random source. The agents on the boxes are the real
// agent and machine (agent.go, takeover.go, conflict.go, flip.go) built
// with fakes for what touches the box or the wire: addresses, the
// services, fonulator, the SIP probe, the ARP holder check and the
// journal. Everything runs on one goroutine, in time order: the same seed
// gives the same run.

var simVIP = vipSpec{
	Addr:   netip.MustParseAddr("192.0.2.100"),
	Prefix: netip.MustParsePrefix("192.0.2.100/24"),
	Iface:  "eth0",
}

// simTiming is the pair's configuration in the simulator: the production
// defaults where they do not slow the search down, shorter waits where they
// would (the invariants' bounds are derived from these, not hard-coded).
type simTiming struct {
	Tick, DeadAfter, RefusedAfter, InitDead, StartTimeout, HolderWait time.Duration
	HoldDown, ConflictInterval, ServiceStart, FailbackDelay           time.Duration
}

var simDefaults = simTiming{
	Tick:             100 * time.Millisecond, // FLIP_PROBE_INTERVAL's default
	DeadAfter:        time.Second,
	RefusedAfter:     300 * time.Millisecond,
	InitDead:         5 * time.Second,
	StartTimeout:     8 * time.Second,
	HolderWait:       9 * time.Second, // StartTimeout + DeadAfter, as flip derives it
	HoldDown:         10 * time.Second,
	ConflictInterval: time.Second,
	ServiceStart:     500 * time.Millisecond, // a cold-standby Asterisk answers this long after its start
	FailbackDelay:    5 * time.Second,
}

// simWorld is the whole simulated pair.
type simWorld struct {
	t     simTiming
	rnd   *rand.Rand
	now   time.Time
	boxes [2]*simBox
	// partition: the switch forwards nothing between the two boxes (each
	// still reaches the client).
	partition bool
	lossPct   int // each packet on the wire is lost with this chance
	// clientNeigh is the box the client's neighbour entry points at (-1:
	// none): the last one that announced the VIP.
	clientNeigh int
	// clientStale: since when the client's entry points at a box that does
	// not hold the VIP (zero: it does not).
	clientStale time.Time
	// fonebridge is the box fonulator last pointed the foneBRIDGE at (-1).
	fonebridge int
	// fonebridgeAt: when fonulator last ran; fonebridgeLossy: with loss
	// on the wire, which can make a box act on a wrong view (checkSettled).
	fonebridgeAt    time.Time
	fonebridgeLossy bool
	// fonebridgeForgot: the box that ran fonulator last lost its power
	// since, and with it its journal (in /run): its heartbeats cannot
	// tell the holder any more (checkSettled).
	fonebridgeForgot bool
	// peer: FLIP_PEER on both boxes (heartbeats, hand-over on release);
	// crossover: a second peer path, a cable straight between the boxes,
	// which a LAN partition or a cut-off box does not cut; failback:
	// FLIP_FAILBACK on the primary too (drawn per seed).
	peer, crossover, failback bool
	// hot: hot standby, Asterisk on both boxes outside flip (drawn).
	hot bool
	// tiebreaker: FLIP_TIEBREAKER on both boxes (drawn per seed).
	tiebreaker bool
	// fence: FLIP_FENCE_CMD on both boxes (drawn per seed): "" none,
	// "works" (it powers the other box off), "fails".
	fence string
	// peerMail is what the peer channel carries to each box, read at the
	// receiver's next tick.
	peerMail  [2][]peerMsg
	trace     []string // what happened, for a failure report
	knownGaps int      // runs that ended in a gap flip knows it cannot close yet
	mutant    mutant   // the rule broken on purpose (mutation table)
}

func newSimWorld(seed uint64, t simTiming) *simWorld {
	w := &simWorld{t: t, rnd: rand.New(rand.NewPCG(seed, seed^0x5eed)), clientNeigh: -1, fonebridge: -1,
		now: time.Date(2026, 11, 30, 0, 0, 0, 0, time.UTC)}
	for i := range w.boxes {
		w.boxes[i] = &simBox{w: w, idx: i, name: string(rune('a' + i)), powered: true, link: true,
			mac: net.HardwareAddr{0x02, 0, 0x5e, 0, 0x53, byte(0x11 + i)}}
	}
	return w
}

func (w *simWorld) logf(format string, args ...any) {
	w.trace = append(w.trace, fmt.Sprintf("%8.1fs  ", w.elapsed().Seconds())+fmt.Sprintf(format, args...))
}

func (w *simWorld) elapsed() time.Duration {
	return w.now.Sub(time.Date(2026, 11, 30, 0, 0, 0, 0, time.UTC))
}

func (w *simWorld) other(b *simBox) *simBox { return w.boxes[1-b.idx] }

// lost draws whether one packet is lost.
func (w *simWorld) lost() bool { return w.lossPct > 0 && w.rnd.IntN(100) < w.lossPct }

// wire reports whether a packet from one box gets to the other: both
// powered with their links up and no partition between them.
func (w *simWorld) wire(from, to *simBox) bool {
	return from.onLAN() && to.onLAN() && !w.partition
}

// peerPath reports whether a peer message gets from one box to the other
// on some path: the LAN, or the crossover cable if there is one.
func (w *simWorld) peerPath(from, to *simBox) bool {
	return w.wire(from, to) || w.crossover && from.powered && to.powered
}

// onLAN reports whether box b can send and receive on the LAN: powered,
// its link up, and not cut off by a filter (isolated, link still up).
func (b *simBox) onLAN() bool { return b.powered && b.link && !b.isolated }

// powerOff kills box b: its VIP, services and /run are gone.
func (b *simBox) powerOff() {
	if b.powered {
		if b.w.fonebridge == b.idx {
			b.w.fonebridgeForgot = true
		}
		b.powered, b.agent, b.vip, b.svc, b.journal.e = false, nil, false, simService{}, journalEntry{}
		b.crashAt, b.termAt = "", ""
	}
}

// simBox is one box: its kernel (powered, link, the VIP), its services,
// its journal (in /run: lost with the power) and its flip, if running.
type simBox struct {
	w       *simWorld
	idx     int
	name    string
	mac     net.HardwareAddr
	powered bool
	link    bool
	// isolated: every packet in and out of its LAN port is dropped, the
	// link still up (the namespace tests' nft_isolate): only a tiebreaker
	// tells it.
	isolated bool
	vip      bool
	agent    *agent
	hung     bool // flip is stopped (SIGSTOP): it neither probes nor acts
	svc      simService
	journal  memJournal
	probe    simProbe
	// seenLink is the link state the agent was last told about (netlink).
	seenLink bool
	// crashAt: flip is killed (-9) right after this resource's start or
	// stop (the FLIP_DEBUG_CRASH_AFTER of the namespace tests); "" none.
	crashAt string
	// termAt: SIGTERM reaches flip while this step runs; "" none.
	termAt string
	// stop is SIGTERM for the running agent: it cancels the agent's context.
	stop context.CancelFunc
	ctx  context.Context
	// holdDownUntil: the box failed on its own; it must not take the VIP
	// before this (checked by the no-ping-pong invariant).
	holdDownUntil time.Time
	takeovers     int // role changes to active, for the ping-pong bound
	releases      int
	// conflictAt: when this box, active, last saw the other claim the VIP.
	conflictAt time.Time
	added      []time.Duration // when it added the VIP (since the start)
}

// simService is Asterisk on a box, as the SIP probe sees it.
type simService struct {
	running   bool
	startedAt time.Time
	hung      bool      // running, answers nothing (deadlocked)
	broken    bool      // every start fails
	deaf      bool      // starts, never answers, and stays so after the faults stop (a broken install)
	downSince time.Time // hot standby: not running since (systemd restarts it)
}

// answers reports whether the service answers SIP at now.
// systemd is a hot standby's unit at now (Restart=always): an Asterisk
// down for simHotRestart on a powered box starts again, unless every
// start fails; it reports a restart.
func (s *simService) systemd(now time.Time, powered bool) bool {
	switch {
	case !powered || s.running:
		s.downSince = time.Time{}
	case s.downSince.IsZero():
		s.downSince = now
	case !s.broken && now.Sub(s.downSince) >= simHotRestart:
		s.running, s.startedAt, s.hung, s.downSince = true, now, false, time.Time{}
		return true
	}
	return false
}

func (s *simService) answers(now time.Time, startDelay time.Duration) bool {
	return s.running && !s.hung && !s.deaf && !now.Before(s.startedAt.Add(startDelay))
}

// memJournal is the journal in memory (FLIP_STATE_FILE in /run).
type memJournal struct {
	e   journalEntry
	now func() time.Time
}

func (j *memJournal) load() (journalEntry, error) { return j.e, nil }
func (j *memJournal) save(e journalEntry) error {
	e.At = j.now()
	e.Done = append([]string(nil), e.Done...)
	j.e = e
	return nil
}

// simKilled is how a resource kills flip mid-step (panic, recovered by the
// world): what it had done stays done, the rest never happens.
type simKilled struct{}

// crashPoint kills flip on box b if it is armed for step, or sends it
// SIGTERM.
func (b *simBox) crashPoint(step string) {
	if b.termAt != "" && b.termAt == step {
		b.termAt = ""
		b.w.logf("%s: SIGTERM while %s runs", b.name, step)
		b.stop()
	}
	if b.crashAt != "" && b.crashAt == step {
		b.crashAt = ""
		panic(simKilled{})
	}
}

// simAddrs is the box's kernel address table for the VIP.
type simAddrs struct{ b *simBox }

func (s simAddrs) Query(vipSpec) (bool, error) { return s.b.vip, nil }
func (s simAddrs) Configure(vipSpec) error {
	if !s.b.vip {
		s.b.vip = true
		s.b.w.vipAdded(s.b)
	}
	return nil
}
func (s simAddrs) Deconfigure(vipSpec) error {
	if s.b.vip {
		s.b.vip = false
		s.b.w.logf("%s: VIP deleted", s.b.name)
	}
	return nil
}

// simStep is a resource of the simulated box that can kill flip after it.
type simStep struct {
	b     *simBox
	name  string
	start func() error
	stop  func()
}

func (r *simStep) Name() string { return r.name }

// Start does the step's work, then fails if its context was cancelled
// meanwhile: a command killed half-way whose effect went on (systemctl
// start carries on inside systemd).
func (r *simStep) Start(ctx context.Context) error {
	err := r.start()
	r.b.crashPoint(r.name)
	if err == nil && ctx.Err() != nil {
		return ctx.Err()
	}
	return err
}

// Stop fails at once, doing nothing, on a cancelled context.
func (r *simStep) Stop(ctx context.Context) error {
	if ctx.Err() != nil {
		return ctx.Err()
	}
	r.stop()
	r.b.crashPoint("stop:" + r.name)
	return nil
}
func (r *simStep) Check(context.Context) error { return nil }

// running: the simulated Asterisk says whether it runs (a runner).
func (r *simStep) running(context.Context) bool { return r.name == "asterisk" && r.b.svc.running }

// followsHolder: the simulated fonulator step, like the real one.
func (r *simStep) followsHolder() bool {
	return r.name == "fonebridge" && r.b.w.mutant != mutantKeeperForgetsFonebridge
}

// simVIPStep wraps the real vipResource so that flip can die after it.
type simVIPStep struct {
	vipResource
	b *simBox
}

func (r *simVIPStep) Start(ctx context.Context) error {
	err := r.vipResource.Start(ctx)
	r.b.crashPoint("vip")
	return err
}

// resources is FLIP_RESOURCES="VIP fonebridge asterisk" on box b.
func (b *simBox) resources() ([]resource, int) {
	w := b.w
	fonebridge := &simStep{b: b, name: "fonebridge",
		start: func() error {
			w.fonebridge, w.fonebridgeAt, w.fonebridgeLossy, w.fonebridgeForgot = b.idx, w.now, w.lossPct > 0, false
			w.logf("%s: fonulator points the foneBRIDGE at %s", b.name, b.name)
			return nil
		},
		stop: func() {}, // never on release: it would steal the stream
	}
	asterisk := &simStep{b: b, name: "asterisk",
		start: func() error {
			if b.svc.broken {
				return errors.New("asterisk: start failed (simulated)")
			}
			if !b.svc.running {
				b.svc.running, b.svc.startedAt, b.svc.hung = true, w.now, false
			}
			return nil
		},
		stop: func() { b.svc.running = false },
	}
	vip := &simVIPStep{vipResource: vipResource{vip: simVIP, addrs: simAddrs{b}}, b: b}
	if w.hot {
		// Hot standby: Asterisk runs on both boxes, started by systemd,
		// and FLIP_RESOURCES does not list it.
		return []resource{vip, fonebridge}, 1
	}
	return []resource{vip, fonebridge, asterisk}, 1
}

// simHotRestart is how long systemd takes to start a crashed Asterisk
// again in hot standby (Restart=always, RestartSec=2).
const simHotRestart = 2 * time.Second

// hotServices runs systemd for hot standby: Asterisk runs on every powered
// box, and one that died starts again after simHotRestart unless it is
// broken.
func (w *simWorld) hotServices() {
	if !w.hot {
		return
	}
	for _, b := range w.boxes {
		if b.svc.systemd(w.now, b.powered) {
			w.logf("%s: systemd starts Asterisk again", b.name)
		}
	}
}

// simProbe is the tick probe of box b: the fate of each OPTIONS is known
// when it is sent, and reported at the next collect.
type simProbe struct {
	b       *simBox
	pending []probeResult
}

func (p *simProbe) send(now time.Time) {
	b, w := p.b, p.b.w
	target := b // a box that holds the VIP probes its own service
	if !b.vip {
		o := w.other(b)
		if !o.vip || !w.wire(b, o) || w.lost() || w.lost() {
			return // nobody answers for the VIP: silence
		}
		target = o
	}
	svc := &target.svc
	switch {
	case svc.answers(now, w.t.ServiceStart):
		p.pending = append(p.pending, probeResult{Sent: now, Answered: true, Status: 200})
	case !svc.running || (now.Before(svc.startedAt.Add(w.t.ServiceStart)) && !svc.deaf):
		// Nothing listens on 5060 yet (or any more): ICMP port unreachable.
		p.pending = append(p.pending, probeResult{Sent: now, Refused: true})
	}
}

func (p *simProbe) collect(time.Time) []probeResult {
	out := p.pending
	p.pending = nil
	return out
}

// simTiebreaker is FLIP_TIEBREAKER from box b: an echo is answered if
// the box is on the LAN and neither it nor its answer is lost.
type simTiebreaker struct {
	b       *simBox
	pending []time.Time
}

func (t *simTiebreaker) ping(now time.Time) {
	if t.b.onLAN() && !t.b.w.lost() && !t.b.w.lost() {
		t.pending = append(t.pending, now)
	}
}

func (t *simTiebreaker) collect() []time.Time {
	out := t.pending
	t.pending = nil
	return out
}

// holderSeenBy is the ARP holder check of box b: the other box's kernel
// answers for the VIP if it holds it (also while its flip is hung).
func (w *simWorld) holderSeenBy(b *simBox) (net.HardwareAddr, error) {
	o := w.other(b)
	if o.vip && w.wire(b, o) && !w.lost() && !w.lost() {
		return o.mac, nil
	}
	return nil, nil
}

// vipAdded records that box b added the VIP, and checks that it did not
// do so blind: while the other box, in plain view, held it and served.
func (w *simWorld) vipAdded(b *simBox) {
	w.logf("%s: VIP added", b.name)
	b.added = append(b.added, w.elapsed())
	o := w.other(b)
	if w.lossPct == 0 && o.vip && w.wire(b, o) && o.agent != nil && !o.hung &&
		o.svc.answers(w.now, w.t.ServiceStart) && b.agent != nil && !b.agent.m.forced {
		w.violate("blind takeover: %s added the VIP while %s held it in plain view and its service answered", b.name, o.name)
	}
	if w.now.Before(b.holdDownUntil) {
		w.violate("ping-pong: %s took the VIP %.1fs after its own service failed (FLIP_HOLD_DOWN %s)",
			b.name, w.t.HoldDown.Seconds()-b.holdDownUntil.Sub(w.now).Seconds(), w.t.HoldDown)
	}
}

// simEvents records the agent's transitions on its box.
type simEvents struct {
	nopEvents
	b *simBox
}

func (e simEvents) Transition(from, to role, cause, reason string, ok bool, _ time.Duration) {
	b := e.b
	b.w.logf("%s: %s -> %s (%s) %s", b.name, from, to, cause, reason)
	if from == to {
		if ownFailure(cause) {
			b.holdDownUntil = b.w.now.Add(b.w.t.HoldDown)
		}
		return
	}
	if to == roleActive {
		b.takeovers++
	} else {
		b.releases++
		if ownFailure(cause) {
			b.holdDownUntil = b.w.now.Add(b.w.t.HoldDown)
		}
	}
}

func (e simEvents) Conflict(netip.Addr, net.HardwareAddr) {
	if e.b.agent != nil && e.b.agent.m.role == roleActive {
		e.b.conflictAt = e.b.w.now
	}
}

// startAgent starts flip on box b: a fresh agent that resumes from what the
// box holds and what its journal says, as after a restart.
func (b *simBox) startAgent() {
	w := b.w
	t := w.t
	cfg := &config{
		VIPs: []vipSpec{simVIP}, Primary: b.idx == 0,
		ProbeInterval: t.Tick, DeadAfter: t.DeadAfter, RefusedAfter: t.RefusedAfter,
		InitDead: t.InitDead, StartTimeout: t.StartTimeout, HolderWait: t.HolderWait,
		HoldDown: t.HoldDown, ConflictInterval: t.ConflictInterval, HolderRecheck: t.Tick,
		ResourceTO: time.Second, Failback: w.failback && b.idx == 0, FailbackDelay: t.FailbackDelay,
	}
	log := slog.New(slog.DiscardHandler)
	b.journal.now = w.clock
	b.probe = simProbe{b: b}
	a := &agent{
		cfg: cfg, log: log, ev: simEvents{b: b}, clock: w.clock, inline: true, broken: w.mutant,
		links: func() bool { return b.link },
		addrs: simAddrs{b}, probes: &b.probe, journal: &b.journal,
		announce: &announcer{log: log, count: 1, interval: time.Second, send: func(string, vipSpec) error {
			if b.onLAN() && w.clientNeigh != b.idx {
				w.clientNeigh = b.idx
				w.logf("%s: announced; the client's neighbour entry moves to %s", b.name, b.name)
			}
			return nil
		}},
		findHolder:      func(vipSpec) (net.HardwareAddr, error) { return w.holderSeenBy(b) },
		resourceTimeout: func(resource) time.Duration { return time.Second },
	}
	if w.tiebreaker {
		cfg.Tiebreakers = []netip.Addr{netip.MustParseAddr("192.0.2.1")}
		a.tiebreak = &simTiebreaker{b: b}
	}
	switch w.fence {
	case "works":
		a.fence = func(context.Context, conflictReport) error {
			o := w.other(b)
			w.logf("%s: fence powers %s off", b.name, o.name)
			o.powerOff()
			return nil
		}
	case "fails":
		a.fence = func(context.Context, conflictReport) error { return errors.New("no power switch answers (simulated)") }
	}
	if w.peer {
		a.peerSend = func(m peerMsg, copies int) error {
			o := w.other(b)
			m.From = "box-" + b.name
			for range copies {
				if w.peerPath(b, o) && !w.lost() {
					w.peerMail[o.idx] = append(w.peerMail[o.idx], m)
					break // the receiver drops a second copy by its nonce
				}
			}
			return nil
		}
	}
	a.resources, a.network = b.resources()
	b.agent, b.hung, b.seenLink = a, false, b.link
	b.ctx, b.stop = context.WithCancel(context.Background())
	w.logf("%s: flip starts (VIP held: %v, journal: %s)", b.name, b.vip, b.journal.e.Op)
	b.guard(func() {
		if err := a.resume(b.ctx, w.now); err != nil {
			w.violate("%s: resume failed: %v", b.name, err)
		}
	})
}

// guard runs f as flip would, and turns a simulated kill -9 into a dead
// agent.
func (b *simBox) guard(f func()) {
	defer func() {
		if r := recover(); r != nil {
			if _, ok := r.(simKilled); !ok {
				panic(r)
			}
			b.w.logf("%s: flip killed (-9) mid-step", b.name)
			b.agent = nil
		}
	}()
	f()
}

func (w *simWorld) clock() time.Time { return w.now }

// simNeighStale is how long a Linux client keeps using a neighbour entry
// whose box no longer answers: reachable for 15–45 s (base_reachable_time
// 30 s), then 5 s of delay and three unicast probes 1 s apart. Then it asks
// the whole LAN again and the holder answers.
const simNeighStale = 53 * time.Second

// client runs the client's neighbour entry for one tick: an entry for a
// box that does not hold the VIP goes stale and is resolved again.
func (w *simWorld) client() {
	holder := -1
	for _, b := range w.boxes {
		if b.onLAN() && b.vip {
			if holder >= 0 {
				return // two answer: the entry stays as it is
			}
			holder = b.idx
		}
	}
	if w.clientNeigh == holder {
		w.clientStale = time.Time{}
		return
	}
	if w.clientStale.IsZero() && w.clientNeigh >= 0 {
		w.clientStale = w.now
	}
	if w.clientNeigh < 0 || w.now.Sub(w.clientStale) >= simNeighStale {
		if holder >= 0 {
			w.logf("client: neighbour entry resolved again: %s", w.boxes[holder].name)
		}
		w.clientNeigh, w.clientStale = holder, time.Time{}
	}
}

// simViolation is an invariant broken: the world stops at the first.
type simViolation struct{ msg string }

func (w *simWorld) violate(format string, args ...any) {
	msg := fmt.Sprintf(format, args...)
	w.logf("VIOLATION: %s", msg)
	panic(simViolation{msg})
}
