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
			// One member timing out and the next answering alternate
			// while a member is down: bounded like the errors.
			a.leaseDown = false
			if n, due := a.leaseBack.note(now); due {
				a.log.Info("etcd reachable again: the lease is renewed", "times", n)
			}
		}
	case leaseWonEv:
		if a.leaseWant != nil && !*a.leaseWant && a.broken != mutantPoolResignRace {
			// Won after this box stood down: the arbiter gives it back
			// (or reports it again if it is told to campaign first).
			break
		}
		a.m.leaseWon(e.Rev, e.Lease, now)
		a.revision.Store(e.Rev)
		if a.handoverTo == a.cfg.Name {
			a.publishHandover("") // the switchover to this box is done: the others campaign again
		}
		a.log.Info("won the election", "revision", e.Rev)
	case leaseLostEv:
		wasLeader := a.m.pool.leader
		a.m.leaseLost()
		if wasLeader || e.Err != nil {
			a.log.Warn("not the leader any more", "err", e.Err)
		}
	case leaseLeaderEv:
		a.m.leaseSeen(e.Leader)
	case leaseHandoverEv:
		a.handoverTo = e.To
		a.m.leaseHandover(e.To != "" && e.To != a.cfg.Name, now)
		if e.To != "" && a.m.pool.leader && e.To == a.cfg.Name {
			a.publishHandover("") // won as its target: the switchover is over
		}
	case leaseErrorEv:
		a.leaseDown = true
		if n, due := a.leaseErrors.note(now); due {
			a.log.Warn("etcd", "err", e.Err, "times", n)
		}
	}
	a.notePool()
}

// resumeLease: flip restarted holding the VIPs, as the leader of a pool
// on the lease its journal names: the arbiter takes that lease up, and the
// machine waits for its word (leaseResumeWait) instead of releasing.
func (a *agent) resumeLease(entry journalEntry, now time.Time) {
	r, ok := a.arb.(interface{ resumeLease(id int64) })
	if !ok || entry.Lease == 0 || a.m.role != roleActive {
		return
	}
	r.resumeLease(entry.Lease)
	a.m.leaseResume(now)
	a.log.Info("flip restarted on the leader: taking its lease up again", "lease", fmt.Sprintf("%x", entry.Lease))
}

// publishHandover publishes (or, with "", ends) a switchover in etcd.
func (a *agent) publishHandover(to string) {
	if h, ok := a.arb.(leaseHandoverer); ok {
		h.handover(to)
	}
}

// checkSwitchTo logs a switchover to another box that did not happen in
// time, and withdraws it from etcd.
func (a *agent) checkSwitchTo() {
	if a.arb == nil {
		return
	}
	if to, ok := a.m.switchExpired(a.now()); ok {
		a.log.Warn("switchover called off: the other candidates did not stand aside in time, or the target stopped campaigning; this box stays active", "to", to)
		a.publishHandover("")
		a.notePool()
	}
}

// pullRenewal takes the newest acknowledged keep-alive straight from the
// arbiter, when it keeps one: its events may have been dropped while the
// loop was busy, and the lease deadline must not be judged on old news.
func (a *agent) pullRenewal() {
	if r, ok := a.arb.(interface{ renewedAt() time.Time }); ok {
		if t := r.renewedAt(); !t.IsZero() {
			a.m.leaseRenewed(t)
		}
	}
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
	if !w && a.m.pool.leader && a.broken != mutantPoolResignRace {
		// The arbiter resigns now, and another box may win from this
		// moment: this box must not take over on that election any more,
		// even if a keep-alive proves the lease again meanwhile (the
		// pool simulator's resign race).
		a.m.leaseLost()
	}
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
	p := poolStatus{Leader: a.m.pool.leader, Revision: a.m.pool.rev, Observed: a.m.pool.observed,
		Campaigning: a.leaseWant != nil && *a.leaseWant, EtcdDown: a.leaseDown, SwitchTo: a.m.pool.switchTo}
	if a.m.pool.leader {
		p.deadline = a.m.leaseDeadline()
	}
	a.ev.Pool(p)
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
	// SwitchTo: a switchover --to this box is under way.
	SwitchTo string `json:"switch_to,omitempty"`

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

// switchTo is `flip switchover --to BOX` on the leader of a pool: the
// switchover is published, and the machine releases once BOX is the only
// candidate left (pool.go).
func (a *agent) switchTo(req ctlRequest) ctlResponse {
	switch {
	case req.Cmd != "switchover":
		return ctlResponse{Error: "--to goes with switchover only"}
	case a.arb == nil:
		return ctlResponse{Error: "--to is for a pool (FLIP_ETCD_ENDPOINTS); a pair has one other box: run flip switchover"}
	case req.Drain:
		return ctlResponse{Error: "--to and --drain do not go together yet: drain with flip switchover --drain, or switch at once with --to"}
	case req.To == a.cfg.Name:
		return ctlResponse{Error: "this box already holds the VIPs"}
	}
	if err := a.m.poolSwitchTo(req.To, a.now()); err != nil {
		return ctlResponse{Error: err.Error()}
	}
	a.publishHandover(req.To)
	a.notePool()
	a.log.Info("switchover to another box: waiting for the other candidates to stand aside", "to", req.To, "within", a.cfg.LeaseTTL)
	return ctlResponse{OK: true, Note: fmt.Sprintf("switching over to %s once the other candidates stand aside (at most %s)", req.To, a.cfg.LeaseTTL)}
}

// switchToPoll is how often `flip switchover --to` asks the agent whether
// it has released.
const switchToPoll = 20 * time.Millisecond

// followSwitchTo waits until the agent has released for a switchover --to
// (its last release is newer than before), and returns that release. It
// fails when the agent called the switchover off (it is still active and
// no switchover is under way) or after o.maxWait.
func followSwitchTo(o switchoverOptions, before *transitionStatus) (*transitionStatus, error) {
	end := time.Now().Add(o.maxWait)
	for time.Now().Before(end) {
		st, err := callControl(o.socket, ctlRequest{Cmd: "status"})
		if err != nil {
			return nil, err
		}
		s := st.Status
		if rel := s.LastRelease; rel != nil && (before == nil || rel.At != before.At) {
			return rel, nil
		}
		if s.Role == roleActive.String() && (s.Pool == nil || s.Pool.SwitchTo == "") {
			return nil, fmt.Errorf("the switchover to %s was called off: the other candidates did not stand aside in time, or it stopped campaigning (see flip's log); this box stays active", o.to)
		}
		time.Sleep(switchToPoll)
	}
	return nil, fmt.Errorf("no release within %s", o.maxWait)
}
