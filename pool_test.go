package main

import (
	"strings"
	"testing"
	"time"
)

// ftPoolTiming is a pool box's timing: hot standby, a 5 s lease.
func ftPoolTiming() timing {
	t := ftTiming(false)
	t.Pool, t.LeaseTTL, t.RefusedAfter, t.HoldDown = true, 5*time.Second, 300*time.Millisecond, 2*time.Minute
	return t
}

// ftPoolLeader is a passive pool box that won the election at won, with a
// keep-alive acknowledged then and its own service answering.
func ftPoolLeader(t timing, won time.Duration) *machine {
	m := ftMachine(t, rolePassive)
	ftAnswersEvery(m, 0, won, 100*ftMS)
	m.leaseRenewed(ftAt(won))
	m.leaseWon(7, 0, ftAt(won))
	return m
}

func TestPoolPassive(t *testing.T) {
	cold := ftPoolTiming()
	cold.PoolCold = true
	tests := []struct {
		name  string
		t     timing
		setup func(m *machine)
		at    time.Duration
		want  verdict
		why   string // in the reason
		wants bool   // wantsLease
	}{
		{"hot, answering, not the leader: campaigns, stays", ftPoolTiming(), func(m *machine) { ftAnswersEvery(m, 0, time.Second, 100*ftMS) },
			time.Second, verdictStay, "another box leads", true},
		{"hot, own service silent: not a candidate", ftPoolTiming(), func(m *machine) {}, 2 * time.Second, verdictStay, "does not answer", false},
		{"hot, own service refusing: not a candidate at once", ftPoolTiming(), func(m *machine) {
			ftAnswersEvery(m, 0, time.Second, 100*ftMS)
			for _, d := range []time.Duration{1100, 1200, 1300, 1400} {
				m.observeRefused(ftAt(d * ftMS))
			}
		}, 1450 * ftMS, verdictStay, "refuses", false},
		{"cold: a candidate without its own service", cold, func(m *machine) {}, 2 * time.Second, verdictStay, "another box leads", true},
		{"held down after its own failure: not a candidate", ftPoolTiming(), func(m *machine) {
			ftAnswersEvery(m, 0, time.Second, 100*ftMS)
			m.holdOff(ftAt(0), time.Minute)
		}, time.Second, verdictStay, "held down", false},
		{"in maintenance (flip hold): not a candidate", ftPoolTiming(), func(m *machine) {
			ftAnswersEvery(m, 0, time.Second, 100*ftMS)
			if err := m.setHold(ftAt(0), time.Hour, "ops"); err != nil {
				t.Fatal(err)
			}
		}, time.Second, verdictStay, "held", false},
		{"the leader with a lease it can prove takes over", ftPoolTiming(), func(m *machine) {
			ftAnswersEvery(m, 0, time.Second, 100*ftMS)
			m.leaseRenewed(ftAt(time.Second))
			m.leaseWon(9, 0, ftAt(time.Second))
		}, time.Second, verdictTakeover, "revision 9", true},
		{"the leader past its deadline does not", ftPoolTiming(), func(m *machine) {
			ftAnswersEvery(m, 0, 5*time.Second, 100*ftMS)
			m.leaseRenewed(ftAt(0))
			m.leaseWon(9, 0, ftAt(time.Second))
		}, 4 * time.Second, verdictStay, "cannot prove the lease", true},
		{"the leader whose service stopped does not, and resigns", ftPoolTiming(), func(m *machine) {
			ftAnswersEvery(m, 0, time.Second, 100*ftMS)
			m.leaseRenewed(ftAt(2 * time.Second))
			m.leaseWon(9, 0, ftAt(2*time.Second))
		}, 2500 * ftMS, verdictStay, "resigning", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m := ftMachine(tt.t, rolePassive)
			tt.setup(m)
			d := m.decide(ftAt(tt.at))
			if d.Verdict != tt.want || !strings.Contains(d.Reason, tt.why) {
				t.Errorf("decide = %v %q; want %v with %q", d.Verdict, d.Reason, tt.want, tt.why)
			}
			if d.Verdict == verdictStay && !d.Next.After(ftAt(tt.at)) {
				t.Errorf("Next %v is not after now: the loop would spin", d.Next)
			}
			if got := m.wantsLease(ftAt(tt.at)); got != tt.wants {
				t.Errorf("wantsLease = %v, want %v", got, tt.wants)
			}
		})
	}
}

func TestPoolLeaderReleases(t *testing.T) {
	hold := ftPoolTiming()
	hold.PoolHold = true
	tests := []struct {
		name  string
		t     timing
		setup func(m *machine)
		at    time.Duration
		want  verdict
		cause string
	}{
		{"keep-alives acknowledged: stays, wakes at the deadline", ftPoolTiming(), func(m *machine) {}, 3 * time.Second, verdictStay, ""},
		{"no keep-alive for TTL − margin: drops the VIPs", ftPoolTiming(), func(m *machine) {}, 5 * time.Second, verdictRelease, causeLeaseExpired},
		{"FLIP_ETCD_LOSS=hold: keeps them while its service answers", hold, func(m *machine) {}, 5 * time.Second, verdictStay, ""},
		{"FLIP_ETCD_LOSS=hold: not once the service is silent", hold, func(m *machine) {}, 7 * time.Second, verdictRelease, causeOwnServiceSilent},
		{"etcd says the lease is gone: at once, also with hold", hold, func(m *machine) { m.leaseLost() }, 2 * time.Second, verdictRelease, causeLeaseLost},
		{"a maintenance hold does not keep a lost lease", ftPoolTiming(), func(m *machine) {
			if err := m.setHold(ftAt(time.Second), time.Hour, "ops"); err != nil {
				t.Fatal(err)
			}
		}, 5 * time.Second, verdictRelease, causeLeaseExpired},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m := ftPoolLeader(tt.t, time.Second)
			m.setRole(roleActive, ftAt(time.Second), causeLeaseWon)
			ftAnswersEvery(m, 1100*ftMS, 6*time.Second, 100*ftMS)
			tt.setup(m)
			d := m.decide(ftAt(tt.at))
			if d.Verdict != tt.want || d.Cause != tt.cause {
				t.Fatalf("decide = %v %s (%s); want %v %s", d.Verdict, d.Cause, d.Reason, tt.want, tt.cause)
			}
			if d.Verdict == verdictStay && !tt.t.PoolHold {
				if dl := ftAt(time.Second + 4*time.Second); d.Next.After(dl) {
					t.Errorf("Next %v is after the lease deadline %v", d.Next, dl)
				}
			}
		})
	}
}

// A leader that released for its own failure stops campaigning (the
// arbiter resigns) and stays out for the hold-down: no ping-pong.
func TestPoolOwnFailureResigns(t *testing.T) {
	m := ftPoolLeader(ftPoolTiming(), time.Second)
	m.setRole(roleActive, ftAt(time.Second), causeLeaseWon)
	if !m.wantsLease(ftAt(time.Second)) {
		t.Fatal("the leader does not want its lease")
	}
	m.setRole(rolePassive, ftAt(3*time.Second), causeOwnServiceSilent)
	m.leaseLost()
	ftAnswersEvery(m, 3100*ftMS, 5*time.Second, 100*ftMS)
	if m.wantsLease(ftAt(5 * time.Second)) {
		t.Error("campaigns again within the hold-down")
	}
	if d := m.decide(ftAt(5 * time.Second)); d.Verdict != verdictStay {
		t.Errorf("decide = %v (%s)", d.Verdict, d.Reason)
	}
	ftAnswersEvery(m, 5*time.Second, 124*time.Second, time.Second)
	if !m.wantsLease(ftAt(124 * time.Second)) {
		t.Error("does not campaign after the hold-down")
	}
}

// In a pool the split-brain rule follows the lease: its holder keeps and
// announces, any other claimant yields at its second check.
func TestPoolConflict(t *testing.T) {
	keeper := ftPoolLeader(ftPoolTiming(), time.Second)
	keeper.setRole(roleActive, ftAt(time.Second), causeLeaseWon)
	if d := keeper.conflict(ftAt(2 * time.Second)); !d.Announce || !d.Repoint || d.Verdict != verdictStay {
		t.Errorf("the lease holder: %+v; want it to keep, announce and repoint", d)
	}
	stale := ftPoolLeader(ftPoolTiming(), time.Second)
	stale.setRole(roleActive, ftAt(time.Second), causeLeaseWon)
	stale.t.PoolHold = true
	if d := stale.conflict(ftAt(6 * time.Second)); d.Verdict != verdictStay || d.Announce {
		t.Errorf("first check of a stale holder: %+v; want it to wait for the keeper's announcement", d)
	}
	if d := stale.conflict(ftAt(7 * time.Second)); d.Verdict != verdictRelease || d.Cause != causeSplitBrain {
		t.Errorf("second check of a stale holder: %+v; want a release", d)
	}
}

// flip switchover --to: the leader releases only once its target is the
// one candidate left, and calls it off at the TTL; a box that sees another
// box's switchover stands aside for at most a TTL.
func TestPoolSwitchTo(t *testing.T) {
	m := ftPoolLeader(ftPoolTiming(), time.Second)
	m.setRole(roleActive, ftAt(time.Second), causeLeaseWon)
	ftAnswersEvery(m, 1100*ftMS, 4*time.Second, 100*ftMS)
	m.leaseSeen(poolLeader{Name: "box-a", Rev: 7, Candidates: []string{"box-b", "box-d"}})
	if err := m.poolSwitchTo("box-x", ftAt(2*time.Second)); err == nil || !strings.Contains(err.Error(), "box-b, box-d") {
		t.Errorf("switch to a box that does not campaign: %v; want an error listing the candidates", err)
	}
	if err := m.poolSwitchTo("box-d", ftAt(2*time.Second)); err != nil {
		t.Fatal(err)
	}
	m.leaseRenewed(ftAt(2 * time.Second))
	if d := m.decide(ftAt(2100 * ftMS)); d.Verdict != verdictStay {
		t.Errorf("box-b still waits in front: %v (%s); want a stay", d.Verdict, d.Reason)
	}
	m.leaseSeen(poolLeader{Name: "box-a", Rev: 7, Candidates: []string{"box-d"}})
	if d := m.decide(ftAt(2200 * ftMS)); d.Verdict != verdictRelease || d.Cause != causeOperator {
		t.Errorf("box-d alone in line: %v %s (%s); want an operator release", d.Verdict, d.Cause, d.Reason)
	}
	if _, ok := m.switchExpired(ftAt(3 * time.Second)); ok {
		t.Error("called off before its time")
	}
	m.leaseSeen(poolLeader{Name: "box-a", Rev: 7, Candidates: []string{"box-b", "box-d"}})
	if to, ok := m.switchExpired(ftAt(7 * time.Second)); !ok || to != "box-d" {
		t.Errorf("switchExpired = %q %v; want box-d called off", to, ok)
	}
	if d := m.decide(ftAt(7 * time.Second)); d.Verdict == verdictRelease && d.Cause == causeOperator {
		t.Error("released for a switchover that was called off")
	}

	b := ftMachine(ftPoolTiming(), rolePassive)
	ftAnswersEvery(b, 0, time.Second, 100*ftMS)
	b.leaseHandover(true, ftAt(time.Second))
	if b.wantsLease(ftAt(time.Second)) {
		t.Error("campaigns during another box's switchover")
	}
	ftAnswersEvery(b, time.Second, 6*time.Second, 100*ftMS)
	if !b.wantsLease(ftAt(6 * time.Second)) {
		t.Error("still stands aside after the TTL")
	}
	b.leaseHandover(true, ftAt(6*time.Second))
	b.leaseHandover(false, ftAt(6100*ftMS))
	if !b.wantsLease(ftAt(6100 * ftMS)) {
		t.Error("still stands aside after the switchover ended")
	}
}

// A holder still on the wire when this box won can only be hung (its lease
// ran out, and its flip drops the VIPs before that): after FLIP_DEAD_AFTER
// it is taken over past, even while this box's own service answers; with
// FLIP_ETCD_LOSS=hold it is waited for (FLIP_HOLDER_WAIT).
func TestPoolHungHolder(t *testing.T) {
	m := ftPoolLeader(ftPoolTiming(), time.Second)
	if gone, _ := m.holderGone(ftAt(time.Second)); gone {
		t.Fatal("taken for hung at first sight")
	}
	ftAnswersEvery(m, 1100*ftMS, 2*time.Second, 100*ftMS) // its own service answers meanwhile
	if gone, why := m.holderGone(ftAt(2 * time.Second)); !gone || !strings.Contains(why, "hung") {
		t.Errorf("after FLIP_DEAD_AFTER: %v %q; want it taken for hung", gone, why)
	}
	hold := ftPoolTiming()
	hold.PoolHold = true
	h := ftPoolLeader(hold, time.Second)
	h.holderGone(ftAt(time.Second))
	if gone, _ := h.holderGone(ftAt(3 * time.Second)); gone {
		t.Error("FLIP_ETCD_LOSS=hold: a leader cut off from etcd keeps the VIP on purpose; want FLIP_HOLDER_WAIT")
	}
}

// flip restarted on the leader: it keeps the VIPs while its arbiter takes
// the journal's lease up (leaseResumeWait), and releases if that fails or
// does not come in time.
func TestPoolLeaderResumes(t *testing.T) {
	resumed := func() *machine {
		m := newMachine(ftPoolTiming(), ftStart, roleActive)
		m.restore(journalEntry{Op: opActive, Lease: 0x1234})
		m.leaseResume(ftStart)
		return m
	}
	m := resumed()
	if d := m.decide(ftAt(500 * ftMS)); d.Verdict != verdictStay || !strings.Contains(d.Reason, "taking its lease up") {
		t.Errorf("while the lease is taken up: %v (%s); want a stay", d.Verdict, d.Reason)
	}
	m.leaseRenewed(ftAt(600 * ftMS))
	m.leaseWon(5, 0x1234, ftAt(600*ftMS))
	ftAnswersEvery(m, 100*ftMS, 900*ftMS, 100*ftMS)
	if d := m.decide(ftAt(time.Second)); d.Verdict != verdictStay {
		t.Errorf("lease taken up: %v (%s); want a stay", d.Verdict, d.Reason)
	}
	var e journalEntry
	m.memory(ftAt(time.Second), &e)
	if e.Lease != 0x1234 {
		t.Errorf("journal lease %x, want 1234", e.Lease)
	}
	m = resumed()
	m.leaseLost()
	if d := m.decide(ftAt(500 * ftMS)); d.Verdict != verdictRelease || d.Cause != causeLeaseLost {
		t.Errorf("the lease could not be taken up: %v %s; want a release", d.Verdict, d.Cause)
	}
	m = resumed()
	if d := m.decide(ftAt(leaseResumeWait(5 * time.Second))); d.Verdict != verdictRelease {
		t.Errorf("no word within leaseResumeWait: %v (%s); want a release", d.Verdict, d.Reason)
	}
}
