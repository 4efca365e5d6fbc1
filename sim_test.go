package main

import (
	"context"
	"fmt"
	"os"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// The deterministic simulation of the pair (sim_world_test.go has the
// world). Each seed draws a fault schedule; the world runs it on virtual
// time, then stops the faults and lets the pair settle, checking the
// pair's promises at every tick:
//
//   - never two: while both boxes can hear each other (powered, flip
//     running and not stopped, links up, no partition, no loss), they do
//     not both hold the VIP for longer than simNeverTwoBound
//     (2 × FLIP_CONFLICT_INTERVAL + 1 s);
//   - never blind: a box never adds the VIP while the other, in plain view,
//     holds it and its service answers (unless forced past a hung holder);
//   - no ping-pong: a box whose own service failed does not take the VIP
//     again within FLIP_HOLD_DOWN; after the faults stop, the VIP moves
//     (a box takes it over) at most twice, three times with FLIP_FAILBACK
//     (simMostMoves);
//   - never none: once the faults stop, within simSettleBound, exactly one
//     box holds the VIP, it is active, its service answers and the
//     client's neighbour entry points at it;
//   - the foneBRIDGE follows the holder: fonulator last ran on the holder.
//
// FLIP_SIM_SEED=N replays one seed with its trace; FLIP_SIM_SCHEDULES sets
// how many seeds a run explores (10,000 by default, fewer under -race).

// simFaultKind is one kind of fault the schedule draws from.
type simFaultKind int

const (
	faultPowerOff     simFaultKind = iota // the box dies: VIP, services and /run gone
	faultPowerOn                          // it boots again; flip starts
	faultKill                             // kill -9 of flip (or SIGTERM: both leave the box as it is)
	faultKillMidStep                      // flip dies right after one resource step
	faultRestart                          // flip started again
	faultHang                             // SIGSTOP of flip
	faultResume                           // SIGCONT
	faultServiceCrash                     // Asterisk dies: its port refuses
	faultServiceHang                      // Asterisk deadlocks: silence
	faultServiceBreak                     // every Asterisk start fails
	faultServiceMend                      // Asterisk works again
	faultLinkDown                         // the box's cable is out
	faultLinkUp                           // and back
	faultPartition                        // the switch drops everything between the boxes
	faultHeal                             // and forwards again
	faultLoss                             // 0–20 % loss on every packet
	faultServiceDeaf                      // Asterisk starts but never answers, also after the faults stop
	faultTermMidStep                      // SIGTERM reaches flip while one resource step runs
	faultIsolate                          // every packet of the box dropped, link up
	faultUnisolate                        // and back
	faultSwitchover                       // flip switchover on the box (refused on a passive one)
	faultRelease                          // flip release on the box
	numFaultKinds
)

var faultNames = [...]string{"power off", "power on", "kill flip", "kill flip mid-step", "restart flip",
	"SIGSTOP flip", "SIGCONT flip", "Asterisk crashes", "Asterisk hangs", "Asterisk breaks",
	"Asterisk mended", "link down", "link up", "partition", "heal", "loss", "Asterisk deaf for good", "SIGTERM mid-step", "isolate", "unisolate", "flip switchover", "flip release"}

type simFault struct {
	at   time.Duration
	kind simFaultKind
	box  int
	arg  int // loss percent; mid-step kill: which step
}

func (f simFault) String() string {
	s := fmt.Sprintf("%s on %c", faultNames[f.kind], 'a'+f.box)
	if f.kind == faultLoss {
		s = fmt.Sprintf("loss %d %%", f.arg)
	}
	if f.kind == faultKillMidStep || f.kind == faultTermMidStep {
		s += " during " + simSteps[f.arg]
	}
	return s
}

var simSteps = []string{"vip", "fonebridge", "asterisk", "stop:asterisk", "stop:fonebridge"}

const (
	simFaultPhase = 30 * time.Second // faults are drawn in [simFirstFault, simFaultPhase)
	simFirstFault = 2 * time.Second
	simMaxFaults  = 10
)

// simSettleBound is how long after the faults stop the pair may take to
// have exactly one serving holder: a box held down just before (HoldDown),
// then a non-primary's FLIP_INIT_DEAD, the silence (DeadAfter, three times:
// the holder's release, the service, the own start), the wait for a holder
// that does not release (HolderWait), a start that never answers
// (StartTimeout), two conflict checks and the service's own start.
func simSettleBound(t simTiming) time.Duration {
	return t.HoldDown + t.InitDead + 3*t.DeadAfter + t.HolderWait + t.StartTimeout + 2*t.ConflictInterval + t.ServiceStart
}

// drawSchedule draws the faults of one seed.
func (w *simWorld) drawSchedule() []simFault {
	n := 1 + w.rnd.IntN(simMaxFaults)
	out := make([]simFault, 0, n)
	for range n {
		f := simFault{
			at:   simFirstFault + time.Duration(w.rnd.Int64N(int64(simFaultPhase-simFirstFault)/int64(w.t.Tick)))*w.t.Tick,
			kind: simFaultKind(w.rnd.IntN(int(numFaultKinds))),
			box:  w.rnd.IntN(2),
		}
		switch f.kind {
		case faultLoss:
			f.arg = w.rnd.IntN(21)
		case faultKillMidStep, faultTermMidStep:
			f.arg = w.rnd.IntN(len(simSteps))
		}
		out = append(out, f)
	}
	// In time order; faults at the same tick keep their drawing order.
	for i := 1; i < len(out); i++ {
		for j := i; j > 0 && out[j].at < out[j-1].at; j-- {
			out[j], out[j-1] = out[j-1], out[j]
		}
	}
	return out
}

// apply carries out one fault.
func (w *simWorld) apply(f simFault) {
	b := w.boxes[f.box]
	w.logf("FAULT %s", f)
	switch f.kind {
	case faultPowerOff:
		b.powerOff()
	case faultPowerOn:
		if !b.powered {
			b.powered, b.link = true, true
			b.holdDownUntil = time.Time{}
			b.startAgent()
		}
	case faultKill:
		b.agent, b.termAt = nil, ""
	case faultKillMidStep:
		if b.powered {
			b.crashAt = simSteps[f.arg]
		}
	case faultRestart:
		if b.powered && b.agent == nil {
			b.startAgent() // the hold-down survives in the journal
		}
	case faultHang:
		b.hung = true
	case faultResume:
		b.hung = false
	case faultServiceCrash:
		b.svc.running = false
	case faultServiceHang:
		b.svc.hung = b.svc.running
	case faultServiceBreak:
		b.svc.broken = true
	case faultServiceMend:
		b.svc.broken, b.svc.hung = false, false
	case faultLinkDown:
		b.link = false
	case faultLinkUp:
		b.link = true
	case faultPartition:
		w.partition = true
	case faultHeal:
		w.partition = false
	case faultLoss:
		w.lossPct = f.arg
	case faultServiceDeaf:
		b.svc.deaf = true
	case faultTermMidStep:
		if b.powered {
			b.termAt = simSteps[f.arg]
		}
	case faultIsolate:
		b.isolated = true
	case faultUnisolate:
		b.isolated = false
	case faultSwitchover, faultRelease:
		if b.agent != nil && !b.hung {
			cmd := map[simFaultKind]string{faultSwitchover: "switchover", faultRelease: "release"}[f.kind]
			b.guard(func() {
				r := b.agent.onControl(b.ctx, ctlRequest{Cmd: cmd})
				w.logf("%s: flip %s: ok=%v %s%s", b.name, cmd, r.OK, r.Error, r.Note)
			})
		}
	}
}

// stopFaults ends every fault: the network heals, stopped agents go on,
// services work again, flip runs on every powered box, and a box that is
// off boots again or stays dead (drawn).
func (w *simWorld) stopFaults() {
	w.logf("faults stop")
	w.partition, w.lossPct = false, 0
	for _, b := range w.boxes {
		b.crashAt, b.termAt, b.isolated = "", "", false
		b.svc.broken, b.svc.hung = false, false
		b.hung = false
		if !b.powered {
			if w.rnd.IntN(2) == 0 {
				continue
			}
			b.powered = true
			b.holdDownUntil = time.Time{}
		}
		b.link = true
		if b.agent == nil {
			b.startAgent()
		}
	}
}

// step runs one tick: each running agent, in a drawn order, hears of link
// changes, collects its probes and decides (agent.step), checks for a
// conflict every FLIP_CONFLICT_INTERVAL, and sends its next probe.
func (w *simWorld) step(tick int) {
	perConflict := int(w.t.ConflictInterval / w.t.Tick)
	for _, i := range w.rnd.Perm(2) {
		b := w.boxes[i]
		if b.agent == nil || b.hung || !b.powered {
			continue
		}
		ctx := b.ctx
		b.guard(func() {
			a := b.agent
			mail := w.peerMail[i]
			w.peerMail[i] = nil
			for _, m := range mail {
				a.onPeer(ctx, m)
			}
			conflicts := make(chan conflictReport, 1)
			if b.link != b.seenLink {
				b.seenLink = b.link
				kind := changeLinkDown
				if b.link {
					kind = changeLinkUp
				}
				a.onChange(ctx, boxChange{kind: kind, iface: simVIP.Iface}, conflicts)
				w.drainConflict(a, conflicts)
			}
			a.step(ctx, nil)
			if (tick+i*perConflict/2)%perConflict == 0 {
				a.checkConflicts(conflicts)
				w.drainConflict(a, conflicts)
				a.checkFailback()
			}
			a.beatIfDue(w.now)
			a.probes.send(w.now) // the probe of its own VIP needs no link
			if a.tiebreak != nil {
				a.tiebreak.ping(w.now)
			}
		})
		if b.agent != nil && b.ctx.Err() != nil {
			w.logf("%s: flip stopped (SIGTERM), box left as it is", b.name)
			b.agent = nil
		}
	}
}

// drainConflict hands a finished conflict check to the agent, as its loop
// does.
func (w *simWorld) drainConflict(a *agent, conflicts chan conflictReport) {
	select {
	case c := <-conflicts:
		a.conflictCheckRunning = false
		a.onConflict(context.Background(), c)
	default:
	}
}

// simResult is what one seed did.
type simResult struct {
	seed      uint64
	violation string
	trace     []string
	schedule  []simFault
	knownGaps int
	world     *simWorld // the world at the end, for directed tests
}

// runSim runs one seed to the end, or to its first violation.
func runSim(seed uint64, t simTiming, m mutant) simResult {
	return runSimSchedule(seed, t, m, nil, nil)
}

// runSimSchedule runs one seed with a given fault schedule (nil: drawn
// from the seed); setup, if set, changes the world's drawn settings first.
func runSimSchedule(seed uint64, t simTiming, m mutant, schedule []simFault, setup func(*simWorld)) (res simResult) {
	w := newSimWorld(seed, t)
	w.mutant = m
	res.seed = seed
	defer func() {
		if r := recover(); r != nil {
			v, ok := r.(simViolation)
			if !ok {
				panic(r)
			}
			res.violation = v.msg
			res.trace = w.trace
		}
	}()
	res.schedule = w.drawSchedule()
	if schedule != nil {
		res.schedule = schedule
	}
	w.peer = w.rnd.IntN(3) > 0
	w.crossover = w.peer && w.rnd.IntN(2) == 0
	w.failback = w.peer && w.rnd.IntN(2) == 0
	if w.crossover {
		w.logf("a crossover cable: a second peer path")
	}
	switch {
	case w.failback:
		w.logf("FLIP_PEER on both (heartbeats), FLIP_FAILBACK=true on a")
	case w.peer:
		w.logf("FLIP_PEER on both (heartbeats)")
	}
	if w.tiebreaker = w.rnd.IntN(3) == 0; w.tiebreaker {
		w.logf("FLIP_TIEBREAKER on both")
	}
	if w.fence = [...]string{"", "", "works", "fails"}[w.rnd.IntN(4)]; w.fence != "" {
		w.logf("FLIP_FENCE_CMD on both: it %s", w.fence)
	}
	if w.hot = w.rnd.IntN(3) == 0; w.hot {
		w.logf("hot standby: Asterisk runs on both boxes, outside FLIP_RESOURCES")
		for _, b := range w.boxes {
			b.svc.running, b.svc.startedAt = true, w.now
		}
	}
	if setup != nil {
		setup(w)
	}
	res.world = w
	for _, b := range w.boxes {
		b.startAgent()
	}
	faultsEnd := simFaultPhase
	end := faultsEnd + simSettleBound(t) + simNeighStale
	var overlap time.Duration = -1
	var changesAtStop int
	next := 0
	for tick := 0; w.elapsed() <= end; tick++ {
		for next < len(res.schedule) && res.schedule[next].at <= w.elapsed() {
			w.apply(res.schedule[next])
			next++
		}
		if w.elapsed() == faultsEnd {
			w.stopFaults()
			changesAtStop = w.takeovers()
		}
		if w.elapsed() == faultsEnd+simSettleBound(t) {
			w.checkSettled()
		}
		w.hotServices()
		w.step(tick)
		w.client()
		overlap = w.checkNeverTwo(overlap)
		w.now = w.now.Add(t.Tick)
	}
	w.checkEnd(changesAtStop)
	res.knownGaps = w.knownGaps
	return res
}

// takeovers is how many takeovers the pair has made so far.
func (w *simWorld) takeovers() int { return w.boxes[0].takeovers + w.boxes[1].takeovers }

// simMostMoves is how often the VIP may move after the faults stop: to a
// box that turns out broken (it cannot know before its service starts)
// and back; with FLIP_FAILBACK once more, a failback to a primary whose
// own service turns out broken, after which failback is off.
func simMostMoves(failback bool) int {
	if failback {
		return 3
	}
	return 2
}

// takeoversSince is how many since a count of takeovers.
func (w *simWorld) takeoversSince(before int) int { return w.takeovers() - before }

// hear reports whether the two boxes can hear each other now.
func (w *simWorld) hear() bool {
	a, b := w.boxes[0], w.boxes[1]
	return w.wire(a, b) && w.lossPct == 0 && a.agent != nil && b.agent != nil && !a.hung && !b.hung
}

// simNeverTwoBound: the box that yields confirms the conflict with a second
// check (conflictConfirmChecks), one FLIP_CONFLICT_INTERVAL apart; 1 s more
// for the checks' own phase and the simulator's tick.
func simNeverTwoBound(t simTiming) time.Duration {
	return conflictConfirmChecks*t.ConflictInterval + time.Second
}

// checkNeverTwo tracks how long both boxes have held the VIP while they
// can hear each other (overlap, -1: not now).
func (w *simWorld) checkNeverTwo(overlap time.Duration) time.Duration {
	if !(w.boxes[0].vip && w.boxes[1].vip && w.hear()) {
		return -1
	}
	if overlap < 0 {
		overlap = w.elapsed()
	}
	if bound := simNeverTwoBound(w.t); w.elapsed()-overlap > bound {
		w.violate("never two: both boxes have held the VIP for %s while they hear each other (bound %s)",
			w.elapsed()-overlap, bound)
	}
	return overlap
}

// holder is the one box that holds the VIP, if some box is healthy
// (powered, flip running); nil if none is. More or fewer: a violation.
func (w *simWorld) holder() *simBox {
	var healthy, holders []*simBox
	for _, b := range w.boxes {
		if b.powered && b.agent != nil && !b.svc.deaf {
			healthy = append(healthy, b)
		}
		if b.powered && b.vip {
			holders = append(holders, b)
		}
	}
	if len(healthy) == 0 {
		return nil
	}
	if len(holders) != 1 {
		w.violate("never none: %d holders %s after the faults stopped (bound %s)", len(holders), w.elapsed()-simFaultPhase, simSettleBound(w.t))
	}
	return holders[0]
}

// checkSettled checks, simSettleBound after the faults stopped, that one
// box serves: it holds the VIP, it is active, its service answers and the
// foneBRIDGE points at it.
func (w *simWorld) checkSettled() {
	h := w.holder()
	if h == nil {
		return
	}
	switch {
	case h.agent == nil || h.agent.m.role != roleActive:
		w.violate("never none: %s holds the VIP but its flip is not active", h.name)
	case !h.svc.answers(w.now, w.t.ServiceStart):
		w.violate("never none: %s holds the VIP but its service does not answer", h.name)
	case !w.hot && w.other(h).svc.running && w.other(h).powered && w.other(h).agent != nil:
		w.violate("cold standby: %s is passive but its Asterisk runs", w.other(h).name)
	case w.fonebridge != h.idx && (!w.peer || w.fonebridgeForgot) && (h.conflictAt.Before(w.fonebridgeAt) || w.fonebridgeLossy):
		// Known gap, counted: the other box ran fonulator while this one
		// held the VIP out of its view (a partition), or on a view that
		// loss made wrong (its conflict checks lost ARP replies three
		// times in a row), and let go; without the peer channel nothing
		// tells the holder. With it the heartbeats do (pointedBack),
		// unless that box lost its power since: its memory of the run was
		// in /run.
		w.knownGaps++
	case w.fonebridge != h.idx:
		w.violate("the foneBRIDGE follows the holder: %s holds the VIP, fonulator last pointed it at box %d", h.name, w.fonebridge)
	}
}

// checkEnd checks, at the end, that the same box still serves, that the
// client reached it (by an announcement, or simNeighStale after a loser's
// MAC went stale), and that the VIP moved at most simMostMoves times after
// the faults stopped.
func (w *simWorld) checkEnd(changesAtStop int) {
	w.checkSettled()
	h := w.holder()
	if h == nil {
		return // no healthy box: only the hold-down bounds their attempts
	}
	if w.clientNeigh != h.idx {
		w.violate("never none: %s holds the VIP but the client's neighbour entry points elsewhere", h.name)
	}
	if n, most := w.takeoversSince(changesAtStop), simMostMoves(w.failback); n > most {
		w.violate("no ping-pong: the VIP moved %d times after the faults stopped (at most %d)", n, most)
	}
}

// simSchedules is how many seeds a run of the pair explores.
func simSchedules(t *testing.T) int { return simSchedulesOr(t, 10000, 500) }

// simSchedulesOr is FLIP_SIM_SCHEDULES, else full, or underRace with the
// race detector (it slows the world twentyfold; ./test.sh runs the full
// count without it) or -short.
func simSchedulesOr(t *testing.T, full, underRace int) int {
	if s := os.Getenv("FLIP_SIM_SCHEDULES"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n < 1 {
			t.Fatalf("FLIP_SIM_SCHEDULES=%q: want a positive count", s)
		}
		return n
	}
	if raceEnabled || testing.Short() {
		return underRace
	}
	return full
}

// exploreSim runs seeds first..first+n-1 on every core and returns the
// first failure (lowest seed), if any.
func exploreSim(first uint64, n int, t simTiming, m mutant) (failed *simResult, knownGaps int) {
	var (
		gaps atomic.Int64
		next atomic.Uint64
		mu   sync.Mutex
		wg   sync.WaitGroup
	)
	next.Store(first)
	for range runtime.GOMAXPROCS(0) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				seed := next.Add(1) - 1
				if seed >= first+uint64(n) {
					return
				}
				mu.Lock()
				stop := failed != nil && failed.seed < seed
				mu.Unlock()
				if stop {
					return
				}
				r := runSim(seed, t, m)
				gaps.Add(int64(r.knownGaps))
				if r.violation != "" {
					mu.Lock()
					if failed == nil || r.seed < failed.seed {
						failed = &r
					}
					mu.Unlock()
				}
			}
		}()
	}
	wg.Wait()
	return failed, int(gaps.Load())
}

func (r *simResult) report() string {
	var s strings.Builder
	fmt.Fprintf(&s, "seed %d: %s\nreplay: FLIP_SIM_SEED=%d go test -run 'TestSimulation$' -v .\nschedule:", r.seed, r.violation, r.seed)
	for _, f := range r.schedule {
		fmt.Fprintf(&s, "\n  %6.1fs %s", f.at.Seconds(), f)
	}
	s.WriteString("\ntrace (last 60 lines):")
	tr := r.trace
	if len(tr) > 60 {
		tr = tr[len(tr)-60:]
	}
	for _, l := range tr {
		s.WriteString("\n  " + l)
	}
	return s.String()
}

// TestSimulation explores seeded fault schedules of the pair and fails
// with the first seed that breaks a promise, its schedule and its trace.
func TestSimulation(t *testing.T) {
	if s := os.Getenv("FLIP_SIM_SEED"); s != "" {
		seed, err := strconv.ParseUint(s, 10, 64)
		if err != nil {
			t.Fatalf("FLIP_SIM_SEED=%q: want a number", s)
		}
		r := runSim(seed, simDefaults, mutantNone)
		if r.violation != "" {
			t.Fatal(r.report())
		}
		t.Logf("seed %d keeps every promise", seed)
		return
	}
	n := simSchedules(t)
	start := time.Now()
	r, gaps := exploreSim(1, n, simDefaults, mutantNone)
	if r != nil {
		t.Fatal(r.report())
	}
	t.Logf("%d schedules, every promise kept, in %s; known gap (the foneBRIDGE left on a box that ran fonulator out of the holder's view, or on a view loss made wrong, and let go before the holder saw it) in %d",
		n, time.Since(start).Round(time.Millisecond), gaps)
}
