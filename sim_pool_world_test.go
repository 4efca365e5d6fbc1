package main

import (
	"container/heap"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"time"
)

// The pool simulator's etcd (sim_pool_test.go has the boxes and the
// promises): one store whose leases run out on its own clock, an election
// like concurrency.Election's, messages to and from it that are delayed or
// lost, and for each flip process a fake arbiter that talks to it as
// pool_etcd.go's etcdArbiter does and reports leaseEvents to the real
// agent. All of it runs on one goroutine from a queue of timed events.

// simEvent is one thing due at a virtual time; seq orders one instant's.
type simEvent struct {
	at  time.Time
	seq uint64
	f   func()
}

type simQueue struct {
	evs []*simEvent
	seq uint64
}

func (q *simQueue) Len() int { return len(q.evs) }
func (q *simQueue) Less(i, j int) bool {
	a, b := q.evs[i], q.evs[j]
	return a.at.Before(b.at) || a.at.Equal(b.at) && a.seq < b.seq
}
func (q *simQueue) Swap(i, j int) { q.evs[i], q.evs[j] = q.evs[j], q.evs[i] }
func (q *simQueue) Push(x any)    { q.evs = append(q.evs, x.(*simEvent)) }
func (q *simQueue) Pop() any {
	e := q.evs[len(q.evs)-1]
	q.evs = q.evs[:len(q.evs)-1]
	return e
}

func (w *poolWorld) at(t time.Time, f func()) {
	w.queue.seq++
	heap.Push(&w.queue, &simEvent{at: latest(t, w.now), seq: w.queue.seq, f: f})
}

func (w *poolWorld) after(d time.Duration, f func()) { w.at(w.now.Add(d), f) }

// runUntil runs, in time order, every event and every lease expiry due by
// t, each at its own instant; then the clock is t.
func (w *poolWorld) runUntil(t time.Time) {
	for {
		exp, expOK := w.store.nextExpiry()
		evOK := w.queue.Len() > 0
		switch {
		case expOK && !exp.After(t) && (!evOK || !w.queue.evs[0].at.Before(exp)):
			w.now = latest(exp, w.now)
			w.store.expire()
		case evOK && !w.queue.evs[0].at.After(t):
			ev := heap.Pop(&w.queue).(*simEvent)
			w.now = ev.at
			ev.f()
		default:
			w.now = t
			return
		}
	}
}

// delay draws how long one message to or from etcd takes.
func (w *poolWorld) delay() time.Duration {
	return time.Duration(w.rnd.Int64N(int64(w.delayMax/time.Millisecond)+1)) * time.Millisecond
}

// etcdProposalWait is how long an etcd member keeps a write that came in
// without a leader before it answers "request timed out" (5 s, plus twice
// its 1 s election timeout); it is applied if a leader comes back before.
const etcdProposalWait = 7 * time.Second

// arrive runs op at etcd for a request of box b that gets there now, and
// reports whether etcd took it: at once with quorum; without quorum a
// write (grant, txn, delete) waits for a leader up to etcdProposalWait and
// is applied then, even if its sender gave up meanwhile (else dropped
// runs); anything else fails.
func (w *poolWorld) arrive(b *poolBox, write bool, op, dropped func()) bool {
	s := w.store
	switch {
	case !b.etcdPath() || !s.quorum && !write:
		return false
	case s.quorum:
		op()
		return true
	}
	p := &pendingWrite{op: op}
	s.pending = append(s.pending, p)
	w.after(etcdProposalWait, func() {
		if !p.done {
			p.done = true
			dropped()
		}
	})
	return true
}

// toStore sends a request of a call with a timeout: lost, or it arrives.
func (w *poolWorld) toStore(b *poolBox, write bool, op func()) {
	if !w.lost() {
		w.after(w.delay(), func() { w.arrive(b, write, op, func() {}) })
	}
}

// toBox sends an answer: lost, or it arrives if b can hear etcd then.
func (w *poolWorld) toBox(b *poolBox, f func()) {
	if !w.lost() {
		w.after(w.delay(), func() {
			if b.etcdPath() {
				f()
			}
		})
	}
}

// reliableToStore sends a request of a call without a timeout (the
// campaign's txn and watch, a called-off campaign's clean-up): lost or
// not taken, it is sent again after a call timeout while still() holds;
// one already on its way lands even if its caller gave up.
func (w *poolWorld) reliableToStore(a *simArbiter, write bool, still func() bool, op func()) {
	var try func()
	again := func() { w.after(w.pt.callTimeout(), func() { a.run(try) }) }
	try = func() {
		switch {
		case !a.live() || !still():
		case w.lost():
			again()
		default:
			w.after(w.delay(), func() {
				if !w.arrive(a.b, write, op, again) {
					again()
				}
			})
		}
	}
	try()
}

// reliableToBox is its answer (or a watch's): lost, or while the box
// cannot hear etcd, it comes a call timeout later.
func (w *poolWorld) reliableToBox(a *simArbiter, f func()) {
	var try func()
	try = func() {
		switch {
		case !a.live():
		case !a.b.etcdPath() || w.lost():
			w.after(w.pt.callTimeout(), try)
		default:
			a.run(f)
		}
	}
	w.after(w.delay(), try)
}

// etcdStore is etcd: leases that run out at the time the newest
// keep-alive reached it plus the TTL, and one election key per lease
// (concurrency.Election's PREFIX/<lease>); the key with the lowest create
// revision leads. Without quorum it answers nothing and no lease runs
// out; when quorum comes back every lease gets a full TTL again (the new
// leader's lessor Promote).
type etcdStore struct {
	w       *poolWorld
	quorum  bool
	rev     int64
	nextID  int64
	leases  []*storeLease
	waiters []storeWaiter   // campaigns waiting for the lower keys to go
	pending []*pendingWrite // writes waiting for quorum (arrive)
	leader  string          // the leader key's box, as last logged
	// handover is the published switchover's target (PREFIX/handover,
	// "": none), on a lease of its own that runs out at handoverEnd.
	handover    string
	handoverEnd time.Time
}

type storeLease struct {
	id     int64
	box    int
	expiry time.Time
	key    int64 // create revision of the lease's election key; 0: none
}

type storeWaiter struct {
	a   *simArbiter
	rev int64
}

type pendingWrite struct {
	op   func()
	done bool
}

func (s *etcdStore) find(id int64) *storeLease {
	for _, l := range s.leases {
		if l.id == id {
			return l
		}
	}
	return nil
}

func (s *etcdStore) grant(box int) *storeLease {
	s.nextID++
	l := &storeLease{id: 0x7a00 + s.nextID, box: box, expiry: s.w.now.Add(s.w.pt.TTL)}
	s.leases = append(s.leases, l)
	return l
}

func (s *etcdStore) keepAlive(id int64) bool {
	l := s.find(id)
	if l != nil {
		l.expiry = s.w.now.Add(s.w.pt.TTL)
	}
	return l != nil
}

// campaign is the campaign's txn: the lease's key is put if it has none;
// it returns the key's create revision, false if the lease is gone.
func (s *etcdStore) campaign(id int64) (int64, bool) {
	l := s.find(id)
	if l == nil {
		return 0, false
	}
	if l.key == 0 {
		s.rev++
		l.key = s.rev
		s.keysChanged()
	}
	return l.key, true
}

func (s *etcdStore) holds(id, rev int64) bool {
	l := s.find(id)
	return l != nil && rev != 0 && l.key == rev
}

// resign deletes the lease's key if it still has create revision rev.
func (s *etcdStore) resign(id, rev int64) {
	if s.holds(id, rev) {
		s.find(id).key = 0
		s.rev++
		s.keysChanged()
	}
}

// first is the lease whose key leads, nil if none.
func (s *etcdStore) first() *storeLease {
	var f *storeLease
	for _, l := range s.leases {
		if l.key != 0 && (f == nil || l.key < f.key) {
			f = l
		}
	}
	return f
}

func (s *etcdStore) lowerThan(rev int64) bool {
	f := s.first()
	return f != nil && f.key < rev
}

// view is the leader as etcdArbiter.readLeader reads it.
func (s *etcdStore) view() poolLeader {
	f := s.first()
	if f == nil {
		return poolLeader{}
	}
	v := poolLeader{Name: s.w.boxes[f.box].name, Rev: f.key}
	for last := f.key; ; {
		var n *storeLease
		for _, l := range s.leases {
			if l.key > last && (n == nil || l.key < n.key) {
				n = l
			}
		}
		if n == nil {
			break
		}
		v.Candidates, last = append(v.Candidates, s.w.boxes[n.box].name), n.key
	}
	v.Waiting = len(v.Candidates)
	return v
}

func (s *etcdStore) nextExpiry() (t time.Time, ok bool) {
	for _, l := range s.leases {
		if s.quorum && (!ok || l.expiry.Before(t)) {
			t, ok = l.expiry, true
		}
	}
	if s.quorum && s.handover != "" && (!ok || s.handoverEnd.Before(t)) {
		t, ok = s.handoverEnd, true
	}
	return t, ok
}

// expire deletes the leases that have run out by now, and their keys.
func (s *etcdStore) expire() {
	keep := s.leases[:0]
	for _, l := range s.leases {
		if l.expiry.After(s.w.now) {
			keep = append(keep, l)
			continue
		}
		s.w.logf("etcd: lease %x of %s runs out", l.id, s.w.boxes[l.box].name)
		if l.key != 0 {
			s.rev++
		}
	}
	s.leases = keep
	if s.handover != "" && !s.handoverEnd.After(s.w.now) {
		s.setHandover("")
	}
	s.keysChanged()
}

// setHandover publishes a switchover to box to ("": withdraws it), and
// every flip watching hears of it.
func (s *etcdStore) setHandover(to string) {
	if to == s.handover && to == "" {
		return
	}
	s.handover, s.handoverEnd = to, s.w.now.Add(s.w.pt.TTL)
	s.w.logf("etcd: switchover published to %q", to)
	s.broadcast(func(a *simArbiter) { a.heardHandover(to) })
}

// broadcast is a watch event for every flip that hears etcd, in order.
func (s *etcdStore) broadcast(f func(a *simArbiter)) {
	for _, b := range s.w.boxes {
		if a := b.arb; a != nil && a.live() && b.etcdPath() {
			a.watchAt = latest(s.w.now.Add(s.w.delay()), a.watchAt)
			s.w.at(a.watchAt, func() { a.run(func() { f(a) }) })
		}
	}
}

// setQuorum loses or regains quorum; regained, every lease gets a full
// TTL and the writes that waited for it are applied.
func (s *etcdStore) setQuorum(ok bool) {
	if ok && !s.quorum {
		for _, l := range s.leases {
			l.expiry = s.w.now.Add(s.w.pt.TTL)
		}
		s.handoverEnd = s.w.now.Add(s.w.pt.TTL)
	}
	s.quorum = ok
	if ok {
		p := s.pending
		s.pending = nil
		for _, pw := range p {
			if !pw.done {
				pw.done = true
				pw.op()
			}
		}
	}
	s.changed()
}

// changed logs a new leader, checks fencing and answers the campaigns
// that lead now.
func (s *etcdStore) changed() {
	if v := s.view(); v.Name != s.leader {
		s.leader = v.Name
		s.w.logf("etcd: leader key now %q (revision %d)", v.Name, v.Rev)
	}
	s.w.checkFenced()
	s.notifyWaiters()
}

// keysChanged is a change of the election's keys: every watching flip
// reads the candidates again.
func (s *etcdStore) keysChanged() {
	s.changed()
	s.broadcast(func(a *simArbiter) { a.readLeader(func() {}) })
}

// notifyWaiters answers each waiting campaign that no lower key precedes
// any more (its watch fires); a watch whose box cannot hear etcd resumes
// when it can; a campaign that is over has closed its watch.
func (s *etcdStore) notifyWaiters() {
	if !s.quorum {
		return
	}
	keep := s.waiters[:0]
	for _, wt := range s.waiters {
		a, rev := wt.a, wt.rev
		switch {
		case !a.live() || a.camp != campWait || a.key != rev:
		case s.lowerThan(rev) || !a.b.etcdPath():
			keep = append(keep, wt)
		default:
			s.w.reliableToBox(a, func() {
				if a.camp == campWait && a.key == rev {
					a.campaignReturned()
				}
			})
		}
	}
	s.waiters = keep
}

// campState is where a simArbiter's campaign is.
type campState int

const (
	campNone   campState = iota
	campPut              // its txn is out
	campWait             // waiting for the lower keys to go
	campVerify           // won: reading the key back (etcdArbiter.verify)
	campClean            // called off while waiting: deleting its key
)

// simArbiter is etcdArbiter on the simulated wire, for one flip process
// (it dies with it, and stops with it: SIGSTOP). As etcdArbiter.run it
// grants a lease and keeps it alive every TTL/leaseRenewDivisor with calls
// bounded by as much, reporting a keep-alive's send time when its answer
// comes; campaigns while the agent wants it, verifies a won campaign and
// reports it; resigns when the agent stops wanting it; drops a lease etcd
// says is gone, or whose session ran out (no answer for the TTL) unless
// it leads; reports a win again when told to campaign while it leads (the
// agent forgot it when it stood down); drops the lease of a campaign called
// off (its txn may still land).
type simArbiter struct {
	b          *poolBox
	ag         *agent
	wanted     bool
	lease      int64
	ack        time.Time // the newest keep-alive answer: the session ends at ack + TTL
	kaGen      int       // the keep-alive loop of the current lease
	busy       bool      // the run loop waits on a grant, a verify or a resign
	camp       campState
	key        int64 // the campaign's key's create revision, once put
	leader     bool
	retry      time.Time
	held       []func()  // what came in while flip was stopped
	stoodDown  bool      // told to stand down while it led, and not won since
	watchAt    time.Time // the watch's newest event arrives then (events keep their order)
	handoverTo string    // the switchover last reported to the agent
	resumeID   int64     // a restarted leader's lease to take up first (resumeLease)
}

// resumeLease is etcdArbiter.resumeLease: take lease id up before anything.
func (a *simArbiter) resumeLease(id int64) { a.resumeID = id; a.later() }

// takeUp is etcdArbiter.takeUp: a keep-alive of the journal's lease and a
// read of the election; the lease alive and its key first, this box leads
// on it again, else the agent hears it does not.
func (a *simArbiter) takeUp() {
	w, s := a.b.pw, a.b.pw.store
	id := a.resumeID
	a.resumeID, a.busy = 0, true
	sent := w.now
	a.rpc(false, func() func() {
		alive := s.keepAlive(id)
		f := s.first()
		leads := alive && f != nil && f.id == id
		rev := int64(0)
		if leads {
			rev = f.key
		}
		return func() {
			a.busy = false
			if !leads {
				a.report(leaseEvent{Kind: leaseLostEv, Err: fmt.Errorf("cannot take lease %x up again after the restart", id)})
				a.later()
				return
			}
			a.lease, a.ack, a.key, a.leader, a.wanted = id, w.now, rev, true, true
			a.kaGen++
			a.keepAlive(a.kaGen, id)
			a.wake(a.ack.Add(w.pt.TTL))
			a.report(leaseEvent{Kind: leaseRenewedEv, Sent: sent})
			a.report(leaseEvent{Kind: leaseWonEv, Rev: rev, Lease: id})
			a.later()
		}
	}, func() {
		a.busy = false
		a.report(leaseEvent{Kind: leaseLostEv, Err: fmt.Errorf("cannot take lease %x up again after the restart: timed out", id)})
		a.later()
	})
}

// heardHandover reports the switchover published in etcd when it changed
// (the watch; a broken watch reads it again when it is made again).
func (a *simArbiter) heardHandover(to string) {
	if to != a.handoverTo {
		a.handoverTo = to
		a.report(leaseEvent{Kind: leaseHandoverEv, To: to})
	}
}

// handover is etcdArbiter.handover: the switchover to box to is published
// on a lease of its own ("": withdrawn), within two call timeouts.
func (a *simArbiter) handover(to string) {
	w := a.b.pw
	done := false
	w.toStore(a.b, true, func() {
		w.store.setHandover(to)
		w.toBox(a.b, func() { done = true })
	})
	w.after(2*w.pt.callTimeout(), func() {
		if !done {
			a.run(func() {
				a.report(leaseEvent{Kind: leaseErrorEv, Err: fmt.Errorf("publish the switchover to %q: timed out", to)})
			})
		}
	})
}

// readLeader is etcdArbiter.readLeader (the order of the candidates, and
// the handover key as the watch sees it), then next.
func (a *simArbiter) readLeader(next func()) {
	s := a.b.pw.store
	a.rpc(false, func() func() {
		v, h := s.view(), s.handover
		return func() {
			a.report(leaseEvent{Kind: leaseLeaderEv, Leader: v})
			a.heardHandover(h)
			next()
		}
	}, next)
}

func (a *simArbiter) want(c bool) {
	w := a.b.pw
	if c != a.wanted {
		w.logf("%s: arbiter told to %s", a.b.name, map[bool]string{true: "campaign", false: "stand down"}[c])
	}
	a.wanted = c
	a.stoodDown = a.stoodDown || !c && a.leader
	if c && a.leader && !a.busy {
		a.report(leaseEvent{Kind: leaseWonEv, Rev: a.key, Lease: a.lease}) // still the leader: says so again
	}
	a.later()
}

func (a *simArbiter) events() <-chan leaseEvent { return nil } // the world delivers them (report)

// live: its flip process runs (a kill, a crash or the power end it).
func (a *simArbiter) live() bool { return a.b.agent == a.ag && a.b.powered }

// run runs f as the arbiter's goroutines would: never for a dead process,
// later for a stopped one.
func (a *simArbiter) run(f func()) {
	switch {
	case !a.live():
	case a.b.hung:
		a.held = append(a.held, f)
	default:
		f()
	}
}

// thaw runs what came in while flip was stopped, in order (SIGCONT).
func (a *simArbiter) thaw() {
	h := a.held
	a.held = nil
	for _, f := range h {
		a.run(f)
	}
}

func (a *simArbiter) later()           { a.wake(a.b.pw.now) }
func (a *simArbiter) wake(t time.Time) { a.b.pw.at(t, func() { a.run(a.poke) }) }

// report hands an event to the agent's loop, after what runs now.
func (a *simArbiter) report(e leaseEvent) {
	a.b.pw.at(a.b.pw.now, func() { a.run(func() { a.b.pw.deliver(a.b, a.ag, e) }) })
}

func (a *simArbiter) failed(what string) {
	a.report(leaseEvent{Kind: leaseErrorEv, Err: errors.New(what)})
	a.retry = a.b.pw.now.Add(a.b.pw.pt.callTimeout())
	a.wake(a.retry)
}

// rpc is one call bounded by the call timeout: op runs at etcd and
// returns what its answer does on the box; timeout runs if none came.
func (a *simArbiter) rpc(write bool, op func() func(), timeout func()) {
	w := a.b.pw
	done := false
	once := func(f func()) func() {
		return func() {
			a.run(func() {
				if !done {
					done = true
					f()
				}
			})
		}
	}
	w.toStore(a.b, write, func() {
		reply := op()
		w.toBox(a.b, once(reply))
	})
	w.after(w.pt.callTimeout(), once(timeout))
}

func (a *simArbiter) sessionDone() bool {
	return a.lease != 0 && !a.b.pw.now.Before(a.ack.Add(a.b.pw.pt.TTL))
}

// poke is one round of etcdArbiter.run's loop.
func (a *simArbiter) poke() {
	if a.busy {
		return
	}
	if a.resumeID != 0 {
		a.takeUp()
		return
	}
	if a.sessionDone() && !a.leader {
		a.cancelCampaign() // the session's context ends it
		if a.camp == campNone {
			a.dropLease()
		}
	}
	ready := !a.b.pw.now.Before(a.retry)
	switch {
	case a.wanted && a.lease == 0 && ready:
		a.grant()
	case a.wanted && a.lease != 0 && a.camp == campNone && !a.leader && ready:
		a.campaign()
	case !a.wanted && a.leader:
		a.resign()
	case !a.wanted:
		a.cancelCampaign()
	case !ready:
		a.wake(a.retry)
	}
}

func (a *simArbiter) grant() {
	w := a.b.pw
	a.busy = true
	a.rpc(true, func() func() {
		l := w.store.grant(a.b.idx)
		return func() {
			a.busy, a.lease, a.ack = false, l.id, w.now
			a.kaGen++
			a.keepAlive(a.kaGen, l.id)
			a.wake(a.ack.Add(w.pt.TTL))
			a.later()
		}
	}, func() {
		a.busy = false
		a.failed("grant a lease: timed out")
	})
}

// keepAlive is one round of etcdArbiter.keepAlive (loop gen): a
// keep-alive, and after an answer the leader read.
func (a *simArbiter) keepAlive(gen int, lease int64) {
	w, s := a.b.pw, a.b.pw.store
	if a.kaGen != gen {
		return
	}
	sent := w.now
	next := func() {
		if a.kaGen == gen {
			w.at(latest(sent.Add(w.pt.callTimeout()), w.now), func() { a.run(func() { a.keepAlive(gen, lease) }) })
		}
	}
	a.rpc(false, func() func() {
		ok := s.keepAlive(lease)
		return func() {
			switch {
			case a.kaGen != gen:
			case !ok:
				a.gone(lease)
			default:
				a.ack = w.now
				a.wake(a.ack.Add(w.pt.TTL))
				a.report(leaseEvent{Kind: leaseRenewedEv, Sent: sent})
				a.readLeader(next)
			}
		}
	}, func() {
		if a.kaGen == gen {
			a.report(leaseEvent{Kind: leaseErrorEv, Err: fmt.Errorf("keep-alive of lease %x: timed out", lease)})
		}
		next()
	})
}

// gone: etcd says the lease is gone (read by the run loop once it is not
// busy).
func (a *simArbiter) gone(lease int64) {
	if a.busy {
		a.b.pw.after(time.Millisecond, func() { a.run(func() { a.gone(lease) }) })
		return
	}
	if a.lease != lease {
		return
	}
	a.dropLease()
	if a.leader {
		a.leader, a.key = false, 0
		a.report(leaseEvent{Kind: leaseLostEv, Err: fmt.Errorf("etcd says lease %x is gone", lease)})
	}
	a.later()
}

// dropLease orphans the lease: no more keep-alives, and a campaign on it
// ends (its session's context ends).
func (a *simArbiter) dropLease() {
	if a.lease != 0 {
		a.cancelCampaign()
		a.lease, a.ack = 0, time.Time{}
		a.kaGen++
	}
}

func (a *simArbiter) campaign() {
	w, s := a.b.pw, a.b.pw.store
	a.camp = campPut
	lease := a.lease
	putting := func() bool { return a.camp == campPut && a.lease == lease }
	w.reliableToStore(a, true, putting, func() {
		rev, ok := s.campaign(lease)
		w.reliableToBox(a, func() {
			switch {
			case !putting(): // called off: nobody reads the answer
				if ok && s.holds(lease, rev) {
					w.logf("%s: arbiter: a campaign called off while its txn was out left its key (revision %d) in etcd", a.b.name, rev)
				}
			case !ok:
				a.camp = campNone
				a.failed("campaign: lease not found")
			default:
				a.camp, a.key = campWait, rev
				waiting := func() bool { return a.camp == campWait && a.key == rev }
				w.reliableToStore(a, false, waiting, func() {
					s.waiters = append(s.waiters, storeWaiter{a: a, rev: rev})
					s.notifyWaiters()
				})
			}
		})
	})
}

// cancelCampaign calls off a campaign that is out: a txn's answer is no
// longer awaited (Campaign returns ctx's error at once); a waiting one
// first deletes its key (Resign on the client's context: until etcd
// answers).
func (a *simArbiter) cancelCampaign() {
	switch a.camp {
	case campPut:
		a.camp = campNone
		a.campaignEnded()
	case campWait:
		w, s := a.b.pw, a.b.pw.store
		a.camp = campClean
		lease, rev := a.lease, a.key
		cleaning := func() bool { return a.camp == campClean && a.key == rev }
		w.reliableToStore(a, true, cleaning, func() {
			s.resign(lease, rev)
			w.reliableToBox(a, func() {
				if cleaning() {
					a.camp, a.key = campNone, 0
					a.campaignEnded()
				}
			})
		})
	}
}

func (a *simArbiter) campaignEnded() {
	switch {
	case a.wanted:
		a.failed("campaign: called off")
	case a.ag.broken != mutantPoolOrphanKey: // etcdArbiter's rule, broken here in its model
		a.dropLease() // its txn may still put the key: let the lease, and the key, run out
	}
	a.later()
}

// campaignReturned: every lower key is gone. The session must still run;
// a campaign no longer wanted gives the key back; else the key is read
// back (verify) and the win reported.
func (a *simArbiter) campaignReturned() {
	s := a.b.pw.store
	lease, rev := a.lease, a.key
	switch {
	case a.sessionDone():
		a.camp = campNone
		a.campaignEnded()
	case !a.wanted:
		a.camp, a.busy = campNone, true
		a.rpc(true, func() func() {
			s.resign(lease, rev)
			return func() { a.busy, a.key = false, 0; a.later() }
		}, func() { a.busy, a.key = false, 0; a.dropLease(); a.later() })
	default:
		a.camp, a.busy = campVerify, true
		fail := func() {
			a.busy, a.camp, a.key = false, campNone, 0
			a.failed("check the won election: the key is gone")
			a.dropLease()
		}
		a.rpc(false, func() func() {
			if !s.holds(lease, rev) {
				return fail
			}
			return func() {
				a.busy, a.camp, a.leader, a.stoodDown = false, campNone, true, false
				a.report(leaseEvent{Kind: leaseWonEv, Rev: rev, Lease: lease})
				a.readLeader(func() {}) // the status shows the new order at once
				a.later()
			}
		}, fail)
	}
}

// resign gives the election back; on a failure the lease is dropped, to
// run out by itself. Either way the agent hears it is not the leader.
func (a *simArbiter) resign() {
	s := a.b.pw.store
	lease, rev := a.lease, a.key
	a.busy = true
	done := func(ok bool) {
		a.busy, a.leader, a.key = false, false, 0
		if !ok {
			a.failed("resign: timed out (letting the lease run out instead)")
			a.dropLease()
		}
		a.report(leaseEvent{Kind: leaseLostEv})
		a.later()
	}
	a.rpc(true, func() func() {
		s.resign(lease, rev)
		return func() { done(true) }
	}, func() { done(false) })
}

// poolWorld is the simulated pool: the pair's world for the clock, the
// random source, the trace and the foneBRIDGE, three boxes, etcd and the
// event queue.
type poolWorld struct {
	*simWorld
	pt       poolTiming
	boxes    []*poolBox
	store    *etcdStore
	queue    simQueue
	hold     bool          // FLIP_ETCD_LOSS=hold on every box
	cold     bool          // cold standby: Asterisk is started on takeover
	delayMax time.Duration // the most a message to or from etcd takes now
	twoSince time.Time     // two holders that run and see each other, since
	servedAt time.Time     // one box serving since (after the faults stop)
}

// poolBox is a box of the pool: the pair's box and what the pool adds.
type poolBox struct {
	*simBox
	pw    *poolWorld
	arb   *simArbiter
	probe poolProbe
	cut   bool // cut off from etcd, still on the LAN
	fresh bool // flip started or resumed and has not finished a step since
}

func newPoolWorld(seed uint64, t poolTiming) *poolWorld {
	w := &poolWorld{simWorld: newSimWorld(seed, t.simTiming), pt: t}
	w.store = &etcdStore{w: w, quorum: true}
	for i := range 3 {
		b := &poolBox{simBox: &simBox{w: w.simWorld, idx: i, name: string(rune('a' + i)), powered: true, link: true,
			mac: net.HardwareAddr{0x02, 0, 0x5e, 0, 0x53, byte(0x11 + i)}}, pw: w}
		b.probe.b = b
		w.boxes = append(w.boxes, b)
	}
	return w
}

func (b *poolBox) etcdPath() bool { return b.powered && b.link && !b.cut }

// excused: a holder whose flip cannot have let go yet: dead, stopped, or
// not run a step since it started or resumed.
func (b *poolBox) excused() bool {
	return b.agent == nil || b.hung || b.fresh || b.resuming()
}

// resuming: a restarted leader waiting for its arbiter to take its lease
// up (leaseResumeWait): it keeps the VIP that long without proof.
func (b *poolBox) resuming() bool {
	m := b.agent.m
	return m != nil && !m.pool.leader && !m.pool.lost && b.pw.now.Before(m.pool.resumeUntil)
}

// poolProbe is a pool box's tick probe: its own service on its own
// address, never the VIP.
type poolProbe struct {
	b       *poolBox
	pending []probeResult
}

func (p *poolProbe) send(now time.Time) {
	svc, start := &p.b.svc, p.b.pw.t.ServiceStart
	switch {
	case svc.answers(now, start):
		p.pending = append(p.pending, probeResult{Sent: now, Answered: true, Status: 200})
	case !svc.running || (now.Before(svc.startedAt.Add(start)) && !svc.deaf):
		p.pending = append(p.pending, probeResult{Sent: now, Refused: true})
	}
}

func (p *poolProbe) collect(time.Time) []probeResult {
	out := p.pending
	p.pending = nil
	return out
}

// poolAddrs is the box's kernel address table for the VIP.
type poolAddrs struct{ b *poolBox }

func (s poolAddrs) Query(vipSpec) (bool, error) { return s.b.vip, nil }
func (s poolAddrs) Configure(vipSpec) error {
	if !s.b.vip {
		s.b.vip = true
		s.b.pw.vipAdded(s.b)
	}
	return nil
}
func (s poolAddrs) Deconfigure(vipSpec) error {
	if s.b.vip {
		s.b.vip = false
		s.b.pw.logf("%s: VIP deleted", s.b.name)
	}
	return nil
}

// resources is FLIP_RESOURCES="VIP fonebridge" on box b, and asterisk
// after them in cold standby.
func (b *poolBox) resources() ([]resource, int) {
	w := b.pw
	vip := &simVIPStep{vipResource: vipResource{vip: simVIP, addrs: poolAddrs{b}}, b: b.simBox}
	fonebridge := &simStep{b: b.simBox, name: "fonebridge", stop: func() {}, start: func() error {
		w.fonebridge = b.idx
		w.logf("%s: fonulator points the foneBRIDGE at %s", b.name, b.name)
		return nil
	}}
	if !w.cold {
		return []resource{vip, fonebridge}, 1
	}
	asterisk := &simStep{b: b.simBox, name: "asterisk", stop: func() { b.svc.running = false }, start: func() error {
		if b.svc.broken {
			return errors.New("asterisk: start failed (simulated)")
		}
		if !b.svc.running {
			b.svc.running, b.svc.startedAt, b.svc.hung = true, w.now, false
		}
		return nil
	}}
	return []resource{vip, fonebridge, asterisk}, 1
}

// startAgent starts flip on box b, with an arbiter of its own.
func (b *poolBox) startAgent() {
	w, t := b.pw, b.pw.pt
	cfg := &config{
		VIPs: []vipSpec{simVIP}, Name: b.name,
		ProbeInterval: t.Tick, DeadAfter: t.DeadAfter, RefusedAfter: t.RefusedAfter,
		InitDead: t.InitDead, StartTimeout: t.StartTimeout, HolderWait: t.HolderWait,
		HoldDown: t.HoldDown, ConflictInterval: t.ConflictInterval, HolderRecheck: t.Tick,
		ResourceTO: time.Second, EtcdEndpoints: []string{"http://192.0.2.21:2379"}, EtcdPrefix: "/flip/",
		LeaseTTL: t.TTL, PoolHold: w.hold,
	}
	if w.cold {
		cfg.Resources = []resourceSpec{{Kind: kindService, Token: "asterisk", Name: "asterisk"}}
	}
	log := slog.New(slog.DiscardHandler)
	b.journal.now = w.clock
	b.probe.pending = nil
	a := &agent{
		cfg: cfg, log: log, ev: simEvents{b: b.simBox}, clock: w.clock, inline: true, broken: w.mutant,
		links: func() bool { return b.link }, addrs: poolAddrs{b}, probes: &b.probe, journal: &b.journal,
		announce:        &announcer{log: log, count: 1, interval: time.Second, send: func(string, vipSpec) error { return nil }},
		findHolder:      func(vipSpec) (net.HardwareAddr, error) { return w.holderSeenBy(b), nil },
		resourceTimeout: func(resource) time.Duration { return time.Second },
	}
	a.resources, a.network = b.resources()
	b.arb = &simArbiter{b: b, ag: a}
	a.arb = b.arb
	b.arb.readLeader(func() {}) // the watch starts with a read of the handover key
	b.agent, b.hung, b.seenLink, b.fresh = a, false, b.link, true
	b.ctx, b.stop = context.WithCancel(context.Background())
	w.logf("%s: flip starts (VIP held: %v, journal: %s)", b.name, b.vip, b.journal.e.Op)
	b.guard(func() {
		if err := a.resume(b.ctx, w.now); err != nil {
			w.violate("%s: resume failed: %v", b.name, err)
		}
	})
}

// holderSeenBy is box b's ARP check: the first other box on the LAN whose
// kernel holds the VIP (also while its flip is stopped or dead).
func (w *poolWorld) holderSeenBy(b *poolBox) net.HardwareAddr {
	for _, o := range w.boxes {
		if o != b && o.vip && o.onLAN() && b.onLAN() {
			return o.mac
		}
	}
	return nil
}

// deliver hands one arbiter event to the agent's loop: onLease, then a
// step and syncLease, as agent.run does for each.
func (w *poolWorld) deliver(b *poolBox, a *agent, e leaseEvent) {
	switch {
	case b.agent != a:
		return
	case e.Kind == leaseWonEv:
		w.logf("%s: arbiter: won the election (revision %d)", b.name, e.Rev)
	case e.Kind == leaseLostEv:
		w.logf("%s: arbiter: not the leader any more (%v)", b.name, e.Err)
	}
	b.guard(func() {
		a.onLease(e)
		a.step(b.ctx, nil)
		a.syncLease()
	})
	if b.agent == a {
		b.fresh = false
	}
}
