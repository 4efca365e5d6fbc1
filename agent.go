package main

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"sync/atomic"
	"time"
)

// agent runs the state machine against the box: it sends the probes, feeds
// their results to the machine, and carries out takeovers and releases.
type agent struct {
	cfg       *config
	log       *slog.Logger
	m         *machine
	probe     func(ctx context.Context) probeResult
	addrs     addressConfigurer
	resources []resource
	// network is how many leading resources are VIPs and routes: the
	// announcement goes out right after them, so the first answers of the
	// services already leave from a VIP the network knows.
	network    int
	announce   *announcer
	findHolder func(v vipSpec) (net.HardwareAddr, error)
	// watchAskers listens for another box's holder check, for a switchover
	// without the peer channel (handover.go); nil: plain release.
	watchAskers func(v vipSpec) (vipAskers, error)
	// resourceTimeout bounds one start or stop of a resource.
	resourceTimeout func(r resource) time.Duration
	// ev hears about everything the agent does (metrics, hooks, systemd).
	ev events
	// tiebreak pings FLIP_TIEBREAKER; nil when none is set.
	tiebreak echoPinger
	// watchBox reports netlink changes of the VIP interfaces; nil in tests.
	watchBox func(ctx context.Context, out chan<- boxChange)
	// peer talks to the other box's agent (FLIP_PEER); nil: no channel.
	peer *peerSet
	// peerSend sends a message to the other box's agent; nil: through
	// peer (the simulator has its own wire).
	peerSend func(m peerMsg, copies int) error
	// holderErrors: holder checks that failed (logged at a bounded rate);
	// holderErrStreak: how many in a row (the recheck backs off).
	holderErrors    rateLog
	holderErrStreak int
	// silentPaths: which peer paths were silent at the last check.
	silentPaths map[string]bool
	// lastBeat: when the last heartbeat went out; beatErrors, the
	// failures to send one (logged at a bounded rate).
	lastBeat   time.Time
	beatErrors rateLog
	// probes is the non-blocking UDP probe (tickProbe): when set, it is
	// used instead of probe, and its results are collected on the loop's
	// own goroutine at each tick and before each decision.
	probes tickProber
	// drainEvents brings the drain's command results to the loop;
	// drainView and drainStart are the drain under way or the last one.
	drainEvents chan drainEvent
	drainView   *drainStatus
	drainStart  time.Time
	// optional: per resource, whether its start may fail (FLIP_RESOURCES
	// "NAME?"); optRetry: the failed ones and their next try (optional.go).
	optional []bool
	optRetry map[int]*optionalRetry
	// lastReady is the readiness the status was last told.
	lastReady *readiness
	// baseLog is the logger without the "held" attribute a hold adds;
	// heldLog bounds the lines about what a hold kept back.
	baseLog *slog.Logger
	heldLog rateLog
	// syncDone brings the end of a FLIP_SYNC_CMD run to the loop;
	// syncCancel kills the run under way; syncView is its status.
	syncDone   chan commandRun
	syncCancel context.CancelFunc
	syncView   syncStatus
	// probeErrors wakes the loop when the tick probe's socket has an error
	// (a refusal) before the next tick; nil: only the tick collects.
	probeErrors <-chan struct{}
	// fence runs FLIP_FENCE_CMD; nil when none is set.
	fence func(ctx context.Context, c conflictReport) error

	// ctl brings operator requests from the control socket; nil: none.
	ctl chan ctlCall
	// tracker keeps the state that `flip status` and /status show.
	tracker *stateTracker

	// busy raises systemd's watchdog timeout for one long step (a resource
	// start, the fence), during which the loop sends no pings; nil: no
	// watchdog.
	busy func(bound time.Duration) (done func())

	journal journalStore // FLIP_STATE_FILE; nil: none
	crash   crashPoint   // FLIP_DEBUG_CRASH_AFTER (tests only)

	conflictCheckRunning bool // a conflict check goroutine is out
	nextFence            time.Time

	// clock is the time the agent decides by; nil: the wall clock. The
	// simulator (sim_test.go) runs real agents on a virtual one.
	clock func() time.Time
	// links reports whether every VIP interface has its link; nil: the
	// kernel's view (netlink). The simulator's boxes have their own.
	links func() bool
	// inline runs the work the loop hands off (a conflict check) on the
	// caller's goroutine, one step after another: the simulator's agents
	// must be deterministic. False: a goroutine of its own.
	inline bool
	// arb is the pool's arbiter (pool mode, pool_etcd.go); nil: a pair.
	// leaseWant is what it was last told (nil: nothing yet); leaseDown:
	// etcd failed since the last acknowledged keep-alive; leaseErrors
	// bounds the log lines about it.
	arb         leaseArbiter
	leaseWant   *bool
	leaseDown   bool
	leaseErrors rateLog
	leaseBack   rateLog // the lines saying etcd answers again
	// handoverTo: the target of the switchover published in etcd ("": none).
	handoverTo string
	// revision is the pool's fencing token for the hooks (revisionVar),
	// read off the loop by the notifier and the fence.
	revision atomic.Int64
	// broken is a rule broken on purpose (the simulator's mutation table).
	broken mutant
}

// spawn runs f beside the loop, or inline in the simulator.
func (a *agent) spawn(f func()) {
	if a.inline {
		f()
		return
	}
	go f()
}

// linksUp reports whether every VIP interface carries.
func (a *agent) linksUp() bool {
	if a.links != nil {
		return a.links()
	}
	return linksCarrying(a.cfg.VIPs)
}

// now is the agent's clock.
func (a *agent) now() time.Time {
	if a.clock != nil {
		return a.clock()
	}
	return time.Now()
}

// buildResources turns the parsed FLIP_RESOURCES into resources.
func buildResources(cfg *config, log *slog.Logger, addrs addressConfigurer) ([]resource, int) {
	var out []resource
	network := 0
	for _, s := range cfg.Resources {
		switch s.Kind {
		case kindVIP:
			out = append(out, &vipResource{vip: s.VIP, addrs: addrs})
			network++
		case kindRoutes:
			out = append(out, newRoutesResource(cfg.VIPs))
			network++
		case kindFonebridge:
			out = append(out, newFoneBridgeFromConfig(cfg, log))
		case kindService:
			out = append(out, newServiceResource(cfg.ServiceCmd, s.Name, cfg.ResourceTO))
		case kindExec:
			out = append(out, newExecResource(s.Path, cfg.ResourceTO))
		}
	}
	return out, network
}

// newFoneBridgeFromConfig is the fonebridge resource as configured.
func newFoneBridgeFromConfig(cfg *config, log *slog.Logger) *foneBridge {
	return &foneBridge{
		ConfPath:   cfg.FonebridgeConf,
		Interface:  cfg.FonebridgeInterface,
		Fonulator:  cfg.Fonulator,
		Timeout:    cfg.FonulatorTimeout,
		Retries:    cfg.FonulatorRetries,
		RetryDelay: fonulatorRetryDelay,
		Log:        log,
	}
}

// fonulatorRetryDelay spaces fonulator retries: long enough for a device
// that was mid-reconfiguration to settle, short next to its 10 s timeout.
const fonulatorRetryDelay = time.Second

// resume finds out at start what the box holds, so a restarted agent takes
// up where it left off: with its VIPs it is active (nothing is restarted,
// Asterisk is untouched); without them passive. Either way the connected
// routes are repaired first, since a VIP deleted while flip was down takes
// its connected route with it.
func (a *agent) resume(ctx context.Context, now time.Time) error {
	var entry journalEntry
	var err error
	if a.journal != nil {
		entry, err = a.journal.load()
	}
	if err != nil {
		a.log.Warn("ignoring the state file; inspecting the box instead", "err", err)
	}
	switch entry.Op {
	case opTakeover:
		a.m = newMachine(a.timing(), now, rolePassive)
		a.m.restore(entry)
		a.m.setLink(a.linksUp(), now)
		a.ev.Started(rolePassive, 0)
		a.resumeTakeover(ctx, entry)
		return nil
	case opRelease:
		a.m = newMachine(a.timing(), now, roleActive)
		a.m.restore(entry)
		a.log.Warn("flip stopped during a release; finishing it")
		a.ev.Started(roleActive, len(a.cfg.VIPs))
		a.release(ctx, entry.Cause, "finishing the release interrupted by a restart")
		a.m.setLink(a.linksUp(), now)
		return nil
	}
	held := 0
	for _, v := range a.cfg.VIPs {
		ok, err := a.addrs.Query(v)
		if err != nil {
			return err
		}
		if ok {
			held++
		}
	}
	active := held > 0
	if active && held < len(a.cfg.VIPs) {
		// Half-held: flip died during a takeover or someone removed one VIP.
		// The services were left running, so complete the network part.
		a.log.Warn("some VIPs missing at start; re-adding them", "held", held, "of", len(a.cfg.VIPs))
		for _, v := range a.cfg.VIPs {
			if err := a.addrs.Configure(v); err != nil {
				return err
			}
		}
	}
	if a.cfg.has(kindRoutes) {
		if err := repairConnectedRoutes(a.cfg.VIPs, active); err != nil {
			return fmt.Errorf("repair routes at start: %w", err)
		}
	}
	r := rolePassive
	if active {
		r = roleActive
		a.announce.Start(a.cfg.VIPs)
	} else if entry.Op == opActive {
		// It was active when flip stopped, and its VIPs are gone (deleted
		// while flip was down): what it started still runs.
		a.stopStrayServices(ctx)
	}
	a.m = newMachine(a.timing(), now, r)
	a.m.restore(entry)
	a.resumeLease(entry, now)
	if a.m.heldNow(now) {
		defer a.holdChanged("still held after a restart of flip: nothing moves by itself")
	}
	a.m.setLink(a.linksUp(), now)
	a.ev.Started(r, held)
	a.log.Info("started", "role", r, "vips_held", held, "primary", a.cfg.Primary,
		"probe_target", a.cfg.ProbeTarget, "source", a.cfg.Source)
	return nil
}

func (a *agent) timing() timing {
	return timing{
		Primary:       a.cfg.Primary,
		DeadAfter:     a.cfg.DeadAfter,
		InitDead:      a.cfg.InitDead,
		StartTimeout:  a.cfg.StartTimeout,
		HolderWait:    a.cfg.HolderWait,
		HoldDown:      a.cfg.HoldDown,
		RefusedAfter:  a.cfg.RefusedAfter,
		Tiebreaker:    len(a.cfg.Tiebreakers) > 0,
		Peer:          a.hasPeer(),
		Failback:      a.cfg.Failback && a.hasPeer(),
		FailbackDelay: a.cfg.FailbackDelay,
		Pool:          a.cfg.pool(),
		LeaseTTL:      a.cfg.LeaseTTL,
		PoolHold:      a.cfg.PoolHold,
		PoolCold:      a.cfg.coldStandby(),
		broken:        a.broken,
	}
}

// run is the agent's loop. It returns when ctx ends and leaves the box as
// it is: stopping flip never drops a call by itself. Everything that touches
// the box happens on this goroutine, and so do the UDP probe and the
// tiebreaker (sent and collected on the tick, never blocking); a TCP probe,
// netlink, the peer channel and conflict checks run beside it and report
// through channels.
func (a *agent) run(ctx context.Context) error {
	if err := a.resume(ctx, time.Now()); err != nil {
		return err
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	results := make(chan probeResult, 256)
	changes := make(chan boxChange, 64)
	conflicts := make(chan conflictReport, 1)
	peerMsgs := make(chan peerMsg, 8)
	if a.peer != nil {
		go a.peer.run(ctx, peerMsgs)
	}
	if a.watchBox != nil {
		go a.watchBox(ctx, changes)
	}
	leaseEvents := a.runArbiter(ctx)
	// send starts one round of probes: the tiebreaker's echoes and the SIP
	// probe (sent from here for the tick probe, from a goroutine of its own
	// otherwise). What came back is collected by step.
	send := func() {
		now := time.Now()
		a.beatIfDue(now)
		if a.tiebreak != nil {
			a.tiebreak.ping(now)
		}
		if a.probes != nil {
			a.probes.send(now)
			return
		}
		go func() {
			r := a.probe(ctx)
			select {
			case results <- r:
			case <-ctx.Done():
			}
		}()
	}
	ticker := newFDTicker(a.cfg.ProbeInterval)
	defer ticker.Stop()
	conflictTick := time.NewTicker(a.cfg.ConflictInterval)
	defer conflictTick.Stop()
	timer := time.NewTimer(a.cfg.DeadAfter)
	defer timer.Stop()
	send()
	for {
		tick := false
		select {
		case <-ctx.Done():
			a.announce.Stop()
			a.ev.Stopping()
			a.log.Info("stopping; box left as it is", "role", a.m.role)
			return nil
		case <-ticker.C:
			if a.probes == nil && a.tiebreak == nil && !a.hasPeer() {
				send()
				continue // the probe's goroutine reports on results
			}
			// Collect and decide first (step), then send the next round:
			// one read of each socket per tick.
			tick = true
		case r := <-results:
			a.observe(r)
		case e := <-a.drainEvents:
			a.onDrain(ctx, e)
		case r := <-a.syncDone:
			a.onSyncDone(r)
		case <-a.probeErrors:
			// A refusal: decide on it now, not at the next tick.
		case c := <-changes:
			a.onChange(ctx, c, conflicts)
		case <-conflictTick.C:
			a.checkConflicts(conflicts)
			a.checkFailback()
			a.checkPaths()
			a.retryOptional(ctx)
			continue
		case m := <-peerMsgs:
			a.onPeer(ctx, m)
		case e := <-leaseEvents:
			a.onLease(e)
		case c := <-conflicts:
			a.conflictCheckRunning = false
			a.onConflict(ctx, c)
		case call := <-a.ctl:
			if call.expired(time.Now()) {
				// Its client gave up while a long step ran: an operator
				// who saw a time-out must not get a takeover later.
				a.log.Warn("control request dropped: its client gave up while flip was busy", "cmd", call.req.Cmd)
				call.reply <- ctlResponse{Error: "dropped: the request waited past its client's time-out"}
				continue
			}
			call.reply <- a.withStatus(a.onControl(ctx, call.req))
		case <-timer.C:
		}
		next := a.step(ctx, results)
		a.syncLease()
		timer.Reset(time.Until(next))
		if tick {
			send()
		}
	}
}

// step takes in what the tick probes brought back, asks the machine what
// to do now and does it. It returns when to ask again if nothing else
// happens first.
func (a *agent) step(ctx context.Context, results <-chan probeResult) time.Time {
	a.m.alive(a.now())
	a.checkHold()
	a.checkSwitchTo()
	a.noteReadiness()
	a.collectProbes(a.now())
	a.collectTiebreaker()
	a.pullRenewal()
	d := a.m.decide(a.now())
	switch d.Verdict {
	case verdictRelease:
		if d.Cause == causeOperator { // a pool's switchover --to (pool.go)
			a.switchover(ctx, d.Cause, d.Reason)
			break
		}
		if d.Cause == causeDrained {
			a.noteDrainEnd(drainSwitched, d.Reason, "")
			a.switchover(ctx, d.Cause, d.Reason)
			break
		}
		a.release(ctx, d.Cause, d.Reason)
		if d.handsOver() {
			a.tellPeerReleased()
		}
	case verdictTakeover:
		wait, holder := a.holderCheck(results)
		if wait {
			return a.now().Add(a.holderRecheckDelay())
		}
		if holder.mac != nil {
			if !a.fenced(ctx, holder) {
				return a.nextFence
			}
			d.Cause, d.Reason = holder.cause, d.Reason+"; "+holder.reason
		}
		a.takeover(ctx, d.Cause, d.Reason)
	default:
		if d.Held {
			if n, due := a.heldLog.note(a.now()); due {
				a.log.Warn(d.Reason, "times", n)
			}
		}
		return a.maybeSync(ctx, a.confirmRefusal(d.Next))
	}
	return a.m.decide(a.now()).Next
}

// noteReadiness tells the status when whether a takeover could happen now
// changed.
func (a *agent) noteReadiness() {
	r := a.m.readiness(a.now())
	if l := a.lastReady; l != nil && l.ThisBox == r.ThisBox && l.Why == r.Why &&
		(l.OtherBox == nil) == (r.OtherBox == nil) && (l.OtherBox == nil || *l.OtherBox == *r.OtherBox) {
		return
	}
	a.lastReady = &r
	a.ev.Ready(r)
}

// confirmRefusal sends the probe that confirms a refusal of the active
// box's own service when the machine wants one (fastrefusal.go), and
// returns when to ask again.
func (a *agent) confirmRefusal(next time.Time) time.Time {
	at := a.m.confirmDue(a.now())
	switch {
	case at.IsZero() || a.probes == nil:
		return next
	case a.now().Before(at):
		if at.Before(next) {
			return at
		}
		return next
	}
	a.probes.send(a.now())
	a.m.confirmSent()
	return next
}

// echoPinger is the tiebreaker as the agent uses it (tiebreaker.go; the
// simulator has its own): ping sends one round, collect returns the send
// times of the rounds answered since the last call.
type echoPinger interface {
	ping(now time.Time)
	collect() []time.Time
}

// tickProber is a probe that never blocks (tickProbe): send starts one,
// collect returns those that finished since the last call.
type tickProber interface {
	send(now time.Time)
	collect(now time.Time) []probeResult
}

// collectProbes feeds the tick probe's finished probes to the machine.
func (a *agent) collectProbes(now time.Time) {
	if a.probes == nil {
		return
	}
	for _, r := range a.probes.collect(now) {
		a.observe(r)
	}
}

// collectTiebreaker feeds the answered tiebreaker echoes to the machine.
func (a *agent) collectTiebreaker() {
	if a.tiebreak == nil {
		return
	}
	for _, sent := range a.tiebreak.collect() {
		a.m.observeTiebreaker(sent)
	}
}

// observe feeds one probe result to the machine and the observers.
func (a *agent) observe(r probeResult) {
	a.m.observe(r)
	if r.Refused {
		a.m.observeRefused(r.Sent)
	}
	a.ev.Probed(r)
}

// resumeTakeover decides about a takeover that a restart interrupted. It
// is never finished blind: another box may have taken over meanwhile. The
// wire is asked first, as before any takeover: if another box holds a VIP,
// the takeover is abandoned (every resource is stopped again, right to
// left); if none does, it is finished without doing twice what was done
// (fonulator).
func (a *agent) resumeTakeover(ctx context.Context, prior journalEntry) {
	if a.broken != mutantResumeBlind {
		for _, v := range a.cfg.VIPs {
			mac, err := a.findHolder(v)
			if err == nil && mac == nil {
				continue
			}
			a.log.Warn("flip stopped during a takeover; another box holds the VIP (or the wire cannot be asked): abandoning it",
				"vip", v.Addr, "holder", fmt.Sprint(mac), "err", err, "done_before", prior.Done)
			// Every resource, right to left, also those the journal does
			// not list as done: flip may have died inside a step that took
			// effect (Asterisk started, not yet recorded). A passive box
			// runs none of them.
			a.stopAll(ctx, len(a.resources)-1)
			// fonulator may have run inside the step flip died in: the
			// heartbeats say it ran now, so the holder points the
			// foneBRIDGE back (once; needless if it never ran).
			for _, r := range a.resources[a.network:] {
				a.notePointed(r)
			}
			return
		}
	}
	a.log.Warn("flip stopped during a takeover; no other box holds the VIP: finishing it", "done_before", prior.Done)
	a.takeoverFrom(ctx, prior.Cause, "finishing the takeover interrupted by a restart", prior)
	// The box held a VIP while its flip was not running: the other box may
	// be going past it as a hung holder right now, so in a conflict this
	// box yields, like any box that resumes holding the VIP.
	a.m.resumedHolding()
}

// stopStrayServices stops, right to left, the services of FLIP_RESOURCES
// that still run on a box that was active when flip stopped and starts
// passive (its VIPs were deleted while flip was down): they would answer on
// the box's own address beside the new active box, and in cold standby the
// passive box runs none. A box that was passive keeps what runs: services
// started outside flip (hot standby) are not its business.
func (a *agent) stopStrayServices(ctx context.Context) {
	for i := len(a.resources) - 1; i >= a.network; i-- {
		r, ok := a.resources[i].(runner)
		if !ok || !r.running(ctx) {
			continue
		}
		a.log.Warn("passive box with a managed service running: stopping it", "resource", a.resources[i].Name())
		if _, err := a.phase(ctx, "stop", a.resources[i]); err != nil {
			a.log.Error("cannot stop it", "resource", a.resources[i].Name(), "err", err)
		}
	}
}

// holderRecheckDelay is FLIP_HOLDER_RECHECK, doubled for each holder check
// in a row that could not be made (no raw socket, the interface gone), up
// to FLIP_DEAD_AFTER: a broken check must not spin every 20 ms.
func (a *agent) holderRecheckDelay() time.Duration {
	d := a.cfg.HolderRecheck
	for i := 0; i < a.holderErrStreak && d < a.cfg.DeadAfter; i++ {
		d *= 2
	}
	return min(d, max(a.cfg.DeadAfter, a.cfg.HolderRecheck))
}

// withStatus adds what every control answer carries: this box's own address
// (for the switchover's probes) and its state. Safe off the loop: the
// tracker has its own lock.
func (a *agent) withStatus(resp ctlResponse) ctlResponse {
	resp.Source = a.cfg.Source.String()
	if a.tracker != nil {
		resp.Status = a.tracker.Snapshot()
	}
	return resp
}
