package main

import (
	"context"
	"strings"
	"testing"
	"time"
)

// fakeArbiter records what the agent asks of the pool's arbiter.
type fakeArbiter struct {
	wants     []bool
	handovers []string
	ch        chan leaseEvent
}

func (f *fakeArbiter) want(c bool)               { f.wants = append(f.wants, c) }
func (f *fakeArbiter) events() <-chan leaseEvent { return f.ch }
func (f *fakeArbiter) handover(to string)        { f.handovers = append(f.handovers, to) }

// newPoolFakeAgent is a fake agent in pool mode (hot standby) with a
// fake arbiter.
func newPoolFakeAgent(t *testing.T) (*fakeAgent, *fakeArbiter) {
	f := newFakeAgent(t, false)
	arb := &fakeArbiter{ch: make(chan leaseEvent, 8)}
	f.cfg.Name, f.cfg.EtcdEndpoints, f.cfg.LeaseTTL, f.cfg.RefusedAfter = "box-a", []string{"http://192.0.2.21:2379"}, 5*time.Second, 300*time.Millisecond
	f.arb = arb
	f.m = newMachine(f.timing(), ftStart, rolePassive)
	return f, arb
}

// answer feeds an answered probe of this box's own service sent at now.
func (f *fakeAgent) answer() { f.observe(probeResult{Sent: f.now, Answered: true, Status: 200}) }

// The agent campaigns once its own service answers, takes over when it
// wins, and on its own failure releases first and then resigns.
func TestPoolAgentWinsAndResigns(t *testing.T) {
	f, arb := newPoolFakeAgent(t)
	ctx := context.Background()
	f.step(ctx, nil)
	f.syncLease()
	if len(arb.wants) != 1 || arb.wants[0] {
		t.Fatalf("wants %v before its own service answered; want [false]", arb.wants)
	}
	f.answer()
	f.syncLease()
	if len(arb.wants) != 2 || !arb.wants[1] {
		t.Fatalf("wants %v once its service answers; want it to campaign", arb.wants)
	}
	f.onLease(leaseEvent{Kind: leaseRenewedEv, Sent: f.now})
	f.onLease(leaseEvent{Kind: leaseWonEv, Rev: 12})
	f.step(ctx, nil)
	if f.m.role != roleActive || f.revision.Load() != 12 {
		t.Fatalf("after winning: role %s, revision %d", f.m.role, f.revision.Load())
	}
	f.want(t, "start vip", "start routes", "start fonebridge", "start asterisk")
	f.steps = nil
	f.now = f.now.Add(100 * time.Millisecond)
	f.answer()
	for i := 0; i < refusedMin; i++ {
		f.now = f.now.Add(150 * time.Millisecond)
		f.onLease(leaseEvent{Kind: leaseRenewedEv, Sent: f.now})
		f.observe(probeResult{Sent: f.now, Refused: true})
	}
	f.step(ctx, nil)
	f.syncLease()
	f.want(t, "stop asterisk", "stop fonebridge", "stop routes", "stop vip")
	if f.m.role != rolePassive || arb.wants[len(arb.wants)-1] {
		t.Fatalf("after its own failure: role %s, wants %v; want passive, then a resign", f.m.role, arb.wants)
	}
}

// The operator commands of a pool: takeover is refused (it would make two
// holders), a switchover with nobody waiting too, and --to only to a box
// that campaigns; a good --to is published for the other boxes.
func TestPoolAgentControl(t *testing.T) {
	f, arb := newPoolFakeAgent(t)
	ctx := context.Background()
	if r := f.onControl(ctx, ctlRequest{Cmd: "takeover"}); r.OK || !strings.Contains(r.Error, "switchover --to box-a") {
		t.Errorf("takeover in a pool: %+v; want a refusal naming switchover --to", r)
	}
	f.answer()
	f.onLease(leaseEvent{Kind: leaseRenewedEv, Sent: f.now})
	f.onLease(leaseEvent{Kind: leaseWonEv, Rev: 3})
	f.step(ctx, nil)
	f.onLease(leaseEvent{Kind: leaseLeaderEv, Leader: poolLeader{Name: "box-a", Rev: 3}})
	if r := f.onControl(ctx, ctlRequest{Cmd: "switchover"}); r.OK || !strings.Contains(r.Error, "no other box") {
		t.Errorf("switchover with nobody waiting: %+v; want a refusal", r)
	}
	f.onLease(leaseEvent{Kind: leaseLeaderEv, Leader: poolLeader{Name: "box-a", Rev: 3, Waiting: 2, Candidates: []string{"box-b", "box-d"}}})
	if r := f.onControl(ctx, ctlRequest{Cmd: "switchover", To: "box-x"}); r.OK || !strings.Contains(r.Error, "box-b, box-d") {
		t.Errorf("switchover --to a box that does not campaign: %+v", r)
	}
	if r := f.onControl(ctx, ctlRequest{Cmd: "switchover", To: "box-d"}); !r.OK {
		t.Fatalf("switchover --to box-d: %+v", r)
	}
	if len(arb.handovers) != 1 || arb.handovers[0] != "box-d" {
		t.Errorf("handovers %v; want [box-d] published", arb.handovers)
	}
	if f.m.role != roleActive {
		t.Error("released before box-b stood aside")
	}
}

// A busy loop (a long resource start) must never hold up the keep-alives:
// renewals are offered, dropped when the queue is full, and the newest is
// kept for the agent to read before it decides.
func TestPoolRenewalsNeverBlock(t *testing.T) {
	e := &etcdArbiter{out: make(chan leaseEvent, 1)}
	done := make(chan struct{})
	go func() {
		defer close(done)
		for i := 1; i <= 100; i++ {
			e.renewed(ftAt(time.Duration(i) * time.Second))
		}
	}()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("renewed blocked on a full queue: the keep-alives would stop")
	}
	if got := e.renewedAt(); !got.Equal(ftAt(100 * time.Second)) {
		t.Errorf("renewedAt = %v, want the newest", got)
	}

	f, _ := newPoolFakeAgent(t)
	f.arb = e
	f.answer()
	f.m.leaseWon(4, 0, f.now)
	f.now = ftAt(99 * time.Second)
	f.answer()
	f.step(context.Background(), nil)
	if f.m.role != roleActive {
		t.Errorf("did not take over on a lease the newest keep-alive proves (deadline %v, now %v)", f.m.leaseDeadline(), f.now)
	}
}
