package main

import (
	"strings"
	"testing"
	"time"
)

// simHungHolderBound is how soon the other box must hold the VIP after the
// holder hangs, with the peer channel (issue 11): FLIP_DEAD_AFTER of
// silence, FLIP_DEAD_AFTER more of heartbeats missing while the holder's
// kernel answers ARP, and a tick; the namespace target is 3 s with the
// service's own start on top.
func simHungHolderBound(t simTiming) time.Duration {
	return 2*t.DeadAfter + 2*t.Tick
}

// TestSimulationHungHolderWithHeartbeats: box a's flip and Asterisk hang
// (SIGSTOP, the kernel still answers ARP for the VIP). With FLIP_PEER, b
// hears no heartbeat and takes over within simHungHolderBound instead of
// FLIP_HOLDER_WAIT; when a wakes (the faults stop) it yields, and every
// promise holds. Without the heartbeat rule (mutant) b waits
// FLIP_HOLDER_WAIT: the test must see that.
func TestSimulationHungHolderWithHeartbeats(t *testing.T) {
	hang := 5 * time.Second
	schedule := []simFault{
		{at: hang, kind: faultHang, box: 0},
		{at: hang, kind: faultServiceHang, box: 0},
	}
	withPeer := func(w *simWorld) { w.peer, w.fence, w.tiebreaker = true, "", false }
	took := func(seed uint64, m mutant) (time.Duration, simResult) {
		r := runSimSchedule(seed, simDefaults, m, schedule, withPeer)
		for _, at := range r.world.boxes[1].added {
			if at >= hang {
				return at - hang, r
			}
		}
		return -1, r
	}
	bound := simHungHolderBound(simDefaults)
	for seed := uint64(1); seed <= 20; seed++ {
		d, r := took(seed, mutantNone)
		if r.violation != "" {
			t.Fatalf("seed %d: %s", seed, r.report())
		}
		if d < 0 || d > bound {
			t.Fatalf("seed %d: b held the VIP %s after a hung (bound %s)\n%s", seed, d, bound, r.report())
		}
	}
	d, _ := took(1, mutantNoHeartbeatRule)
	if d >= 0 && d <= bound {
		t.Fatalf("without the heartbeat rule b still took over in %s: the test cannot tell", d)
	}
	t.Logf("with heartbeats: within %s; without: %s (FLIP_HOLDER_WAIT %s)", bound, d, simDefaults.HolderWait)
}

// TestSimulationFonebridgeFollowsAfterPartition: box a serves; the boxes
// are cut apart, box b (whose Asterisk is broken) takes over out of a's
// view, runs fonulator and lets go again when Asterisk fails to start.
// No conflict check can ever see it; after the partition heals only b's
// heartbeat ("I pointed the foneBRIDGE at me, later than you") tells a to
// point it back. Without the peer channel that stays a known gap; with the
// rule broken (mutant) the simulator must catch the stream left on b.
func TestSimulationFonebridgeFollowsAfterPartition(t *testing.T) {
	schedule := []simFault{
		{at: 5 * time.Second, kind: faultServiceBreak, box: 1},
		{at: 6 * time.Second, kind: faultPartition},
		{at: 12 * time.Second, kind: faultHeal},
		{at: 12 * time.Second, kind: faultServiceMend, box: 1},
	}
	setup := func(peer bool) func(w *simWorld) {
		return func(w *simWorld) {
			w.peer, w.crossover, w.failback, w.fence, w.tiebreaker = peer, false, false, "", false
			if w.hot {
				w.hot = false
				for _, b := range w.boxes {
					b.svc.running = false
				}
			}
		}
	}
	ranOnB := func(r simResult) bool {
		for _, l := range r.world.trace {
			if strings.Contains(l, "b: fonulator points the foneBRIDGE at b") {
				return true
			}
		}
		return false
	}
	for seed := uint64(1); seed <= 20; seed++ {
		r := runSimSchedule(seed, simDefaults, mutantNone, schedule, setup(true))
		switch {
		case r.violation != "":
			t.Fatalf("seed %d: %s", seed, r.report())
		case !ranOnB(r):
			t.Fatalf("seed %d: b never ran fonulator during the partition: the schedule does not test the rule\n%s", seed, r.report())
		case r.world.fonebridge != 0:
			t.Fatalf("seed %d: the foneBRIDGE points at box %d, want a (the holder)\n%s", seed, r.world.fonebridge, r.report())
		}
	}
	if r := runSimSchedule(1, simDefaults, mutantNone, schedule, setup(false)); r.violation != "" || r.knownGaps == 0 {
		t.Fatalf("without the peer channel: violation %q, known gaps %d; want the known gap counted", r.violation, r.knownGaps)
	}
	if r := runSimSchedule(1, simDefaults, mutantKeeperForgetsFonebridge, schedule, setup(true)); r.violation == "" {
		t.Fatal("with the holder ignoring the other box's fonulator run, the simulator saw nothing wrong")
	}
}
