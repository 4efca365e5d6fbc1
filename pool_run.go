package main

import (
	"context"
	"fmt"
	"strconv"
	"time"
)

// The pool's side of the agent: it hands etcd's news to the machine and
// tells the arbiter what the machine wants. No rule lives here (pool.go).

// revisionVar is the fencing token as hooks get it: FLIP_REVISION, the
// election revision this box last won with. Every later leader has a
// higher one, so a fence or a storage write guarded by "only if greater
// than the last seen" shuts out a stale leader.
func revisionVar(rev int64) string { return "FLIP_REVISION=" + strconv.FormatInt(rev, 10) }

// onLease feeds one arbiter event to the machine.
func (a *agent) onLease(e leaseEvent) {
	now := a.now()
	switch e.Kind {
	case leaseRenewedEv:
		a.m.leaseRenewed(e.Sent)
		if a.leaseDown {
			a.leaseDown = false
			a.log.Info("etcd reachable again: the lease is renewed")
		}
	case leaseWonEv:
		a.m.leaseWon(e.Rev, now)
		a.revision.Store(e.Rev)
		a.log.Info("won the election", "revision", e.Rev)
	case leaseLostEv:
		wasLeader := a.m.pool.leader
		a.m.leaseLost()
		if wasLeader || e.Err != nil {
			a.log.Warn("not the leader any more", "err", e.Err)
		}
	case leaseLeaderEv:
		a.m.leaseSeen(e.Leader)
	case leaseErrorEv:
		a.leaseDown = true
		if n, due := a.leaseErrors.note(now); due {
			a.log.Warn("etcd", "err", e.Err, "times", n)
		}
	}
	a.notePool()
}

// syncLease tells the arbiter whether the machine wants this box to be a
// candidate, when that changed.
func (a *agent) syncLease() {
	if a.arb == nil {
		return
	}
	w := a.m.wantsLease(a.now())
	if a.leaseWant != nil && *a.leaseWant == w {
		return
	}
	a.leaseWant = &w
	a.arb.want(w)
	if w {
		a.log.Info("campaigning for the VIPs")
	} else if a.m.role == rolePassive {
		_, why := a.m.poolEligible(a.now())
		a.log.Info("not campaigning", "why", why)
	}
	a.notePool()
}

// notePool tells the status what this box knows of the election.
func (a *agent) notePool() {
	if a.tracker == nil {
		return
	}
	p := poolStatus{Leader: a.m.pool.leader, Revision: a.m.pool.rev, Observed: a.m.pool.observed,
		Campaigning: a.leaseWant != nil && *a.leaseWant, EtcdDown: a.leaseDown}
	if a.m.pool.leader {
		p.deadline = a.m.leaseDeadline()
	}
	a.tracker.setPool(p)
}

// runArbiter starts the arbiter beside the loop.
func (a *agent) runArbiter(ctx context.Context) <-chan leaseEvent {
	if a.arb == nil {
		return nil
	}
	if r, ok := a.arb.(interface{ run(context.Context) }); ok {
		go r.run(ctx)
	}
	return a.arb.events()
}

// poolStatus is the election as `flip status` and /status show it.
type poolStatus struct {
	// Leader: this box won the election; Revision is the revision it won
	// with, the fencing token, and LeaseLeftMS how long it can still prove
	// the lease without another keep-alive.
	Leader      bool    `json:"leader"`
	Revision    int64   `json:"revision,omitempty"`
	LeaseLeftMS float64 `json:"lease_left_ms,omitempty"`
	// Campaigning: this box stands for the election (it is eligible).
	Campaigning bool `json:"campaigning"`
	// EtcdDown: an etcd call failed since the last acknowledged keep-alive.
	EtcdDown bool `json:"etcd_down"`
	// Observed: the leader and the waiting candidates as last read.
	Observed poolLeader `json:"observed"`

	deadline time.Time
}

// String is the election in one line for `flip status`.
func (p poolStatus) String() string {
	var out string
	switch {
	case p.Leader:
		out = fmt.Sprintf("pool: this box leads (revision %d, the fencing token), lease provable for %.0f ms more", p.Revision, p.LeaseLeftMS)
	case p.Observed.Name != "":
		out = fmt.Sprintf("pool: %s leads (revision %d)", p.Observed.Name, p.Observed.Rev)
	default:
		out = "pool: no leader seen"
	}
	out += fmt.Sprintf("; %d candidates waiting", p.Observed.Waiting)
	if p.Campaigning && !p.Leader {
		out += "; this box is one"
	} else if !p.Leader {
		out += "; this box is not campaigning"
	}
	if p.EtcdDown {
		out += "; etcd calls failing since the last keep-alive"
	}
	return out
}
