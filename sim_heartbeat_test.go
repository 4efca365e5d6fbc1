package main

import (
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
