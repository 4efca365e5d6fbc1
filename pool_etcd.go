package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync/atomic"
	"time"

	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	clientv3 "go.etcd.io/etcd/client/v3"
	"go.etcd.io/etcd/client/v3/concurrency"
	"go.uber.org/zap"
)

// etcdArbiter is the pool's effects on etcd: it campaigns and resigns as
// the loop asks (want), keeps the lease alive with keep-alives of its own
// (their send times are what the core's lease deadline is built on), and
// reports everything to the loop as leaseEvents. It decides nothing: the
// rules are in pool.go. Every etcd call is bounded by callTimeout and runs
// off the loop, so an etcd outage never stalls the probes.
type etcdArbiter struct {
	cli    *clientv3.Client
	root   string // FLIP_ETCD_PREFIX: the election and the handover key live under it
	prefix string // the election's key prefix
	name   string // this box's campaign value: FLIP_NAME
	ttl    time.Duration
	log    *slog.Logger
	wantCh chan bool
	out    chan leaseEvent
	newest atomic.Int64 // renewed: Unix ns of the newest acknowledged keep-alive's send
	// resumeID: the lease a restarted leader won on (its journal); run
	// takes it up before anything else (takeUp). 0: none.
	resumeID int64
}

// resumeLease asks the arbiter to take up the lease a restarted leader won
// on; called before run.
func (e *etcdArbiter) resumeLease(id int64) { e.resumeID = id }

// takeUp takes up lease id and its leader key after a restart of flip:
// the lease must still be alive (a keep-alive is acknowledged), its key
// must still lead the election. It returns the session and the election,
// as a won campaign would.
func (e *etcdArbiter) takeUp(ctx context.Context, id clientv3.LeaseID) (*concurrency.Session, *concurrency.Election, error) {
	cctx, cancel := context.WithTimeout(ctx, e.callTimeout())
	defer cancel()
	sent := time.Now()
	resp, err := e.cli.KeepAliveOnce(cctx, id)
	if err != nil {
		return nil, nil, fmt.Errorf("keep-alive: %w", err)
	}
	if resp.TTL <= 0 {
		return nil, nil, rpctypes.ErrLeaseNotFound
	}
	key := fmt.Sprintf("%s/%x", e.prefix, int64(id))
	first, err := e.cli.Get(cctx, e.prefix+"/", clientv3.WithFirstCreate()...)
	if err != nil {
		return nil, nil, fmt.Errorf("read the election: %w", err)
	}
	if len(first.Kvs) == 0 || string(first.Kvs[0].Key) != key {
		return nil, nil, fmt.Errorf("its key %s no longer leads the election", key)
	}
	sess, err := concurrency.NewSession(e.cli, concurrency.WithLease(id), concurrency.WithContext(ctx))
	if err != nil {
		return nil, nil, err
	}
	e.renewed(sent)
	return sess, concurrency.ResumeElection(sess, e.prefix, key, first.Kvs[0].CreateRevision), nil
}

// leaseEventKind says what a leaseEvent reports.
type leaseEventKind int

const (
	leaseRenewedEv  leaseEventKind = iota // a keep-alive was acknowledged (Sent)
	leaseWonEv                            // the campaign won (Rev)
	leaseLostEv                           // not the leader (any more): resigned, or the lease or key is gone (Err)
	leaseLeaderEv                         // the leader and the candidates as read from etcd (Leader)
	leaseErrorEv                          // an etcd call failed (Err); the lease deadline decides what it means
	leaseHandoverEv                       // a switchover to the box named To is published ("": none)
)

// leaseEvent is one report of the arbiter to the loop.
type leaseEvent struct {
	Kind   leaseEventKind
	Sent   time.Time
	Rev    int64
	Lease  int64 // leaseWonEv: the lease the election was won on
	Leader poolLeader
	To     string
	Err    error
}

// leaseArbiter is the pool's arbiter as the agent uses it; the simulator
// has its own.
type leaseArbiter interface {
	want(campaign bool)
	events() <-chan leaseEvent
}

// leaseHandoverer is an arbiter that can publish a switchover (flip
// switchover --to): handover(to) tells every other candidate to stand
// aside while it is published; handover("") ends it.
type leaseHandoverer interface {
	handover(to string)
}

// leaseRenewDivisor: a keep-alive goes out every TTL / leaseRenewDivisor,
// each bounded by as much: with the margin (leaseMarginDivisor) two may be
// lost before the deadline.
const leaseRenewDivisor = 4

// newEtcdArbiter connects to the pool's etcd (lazily: the first call dials).
func newEtcdArbiter(cfg *config, log *slog.Logger) (*etcdArbiter, error) {
	cli, err := newEtcdClient(cfg)
	if err != nil {
		return nil, err
	}
	return &etcdArbiter{cli: cli, root: cfg.EtcdPrefix, prefix: cfg.EtcdPrefix + "election", name: cfg.Name, ttl: cfg.LeaseTTL,
		log: log, wantCh: make(chan bool, 1), out: make(chan leaseEvent, 64)}, nil
}

// want tells the arbiter whether to be a candidate. Only the loop calls it;
// the newest value wins.
func (e *etcdArbiter) want(campaign bool) {
	select {
	case <-e.wantCh:
	default:
	}
	e.wantCh <- campaign
}

func (e *etcdArbiter) events() <-chan leaseEvent { return e.out }

func (e *etcdArbiter) callTimeout() time.Duration { return e.ttl / leaseRenewDivisor }

// report hands an event to the agent's loop, waiting while the loop is
// busy (a long resource start): for the news that must not be lost (won,
// lost, a switchover published).
func (e *etcdArbiter) report(ctx context.Context, ev leaseEvent) {
	select {
	case e.out <- ev:
	case <-ctx.Done():
	}
}

// offer hands an event to the agent's loop if there is room, and drops it
// otherwise: for the news a later round repeats (the leader, an error).
// The keep-alives must never wait for a busy loop: the lease would run out.
func (e *etcdArbiter) offer(ev leaseEvent) {
	select {
	case e.out <- ev:
	default:
	}
}

// renewed records the send time of an acknowledged keep-alive, where the
// agent reads the newest before each decision (renewedAt), and offers it
// as an event to wake the loop.
func (e *etcdArbiter) renewed(sent time.Time) {
	e.newest.Store(sent.UnixNano())
	e.offer(leaseEvent{Kind: leaseRenewedEv, Sent: sent})
}

// renewedAt is the send time of the newest acknowledged keep-alive (zero:
// none yet).
func (e *etcdArbiter) renewedAt() time.Time {
	if n := e.newest.Load(); n != 0 {
		return time.Unix(0, n)
	}
	return time.Time{}
}

// campaignResult is how a campaign goroutine ended.
type campaignResult struct {
	elec *concurrency.Election
	err  error
}

// arbiterState is what run keeps between events.
type arbiterState struct {
	want      bool
	sess      *concurrency.Session // nil: no lease
	leaseStop context.CancelFunc   // ends sess's keep-alive goroutine
	campaign  context.CancelFunc   // non-nil: a campaign goroutine is out
	leader    *concurrency.Election
	retry     time.Time // no grant or campaign before this, after a failure
}

// run is the arbiter's loop. It returns when ctx ends, leaving the lease
// to run out by itself: stopping flip leaves the box as it is, and the
// other boxes treat a holder whose lease ran out as hung.
func (e *etcdArbiter) run(ctx context.Context) {
	defer e.cli.Close()
	go e.watch(ctx)
	var st arbiterState
	gone := make(chan clientv3.LeaseID, 1)
	campDone := make(chan campaignResult, 1)
	dropLease := func() {
		if st.sess != nil {
			st.leaseStop()
			st.sess.Orphan() // it expires by itself; a revoke could hang on the outage that got us here
			st.sess = nil
		}
	}
	defer dropLease()
	failed := func(what string, err error) {
		e.offer(leaseEvent{Kind: leaseErrorEv, Err: fmt.Errorf("%s: %w", what, err)})
		st.retry = time.Now().Add(e.callTimeout())
	}
	if e.resumeID != 0 {
		id := clientv3.LeaseID(e.resumeID)
		if s, elec, err := e.takeUp(ctx, id); err != nil {
			e.report(ctx, leaseEvent{Kind: leaseLostEv, Err: fmt.Errorf("cannot take lease %x up again after the restart: %w", int64(id), err)})
		} else {
			var lctx context.Context
			st.sess, st.leader, st.want = s, elec, true
			lctx, st.leaseStop = context.WithCancel(ctx)
			go e.keepAlive(lctx, id, gone)
			e.report(ctx, leaseEvent{Kind: leaseWonEv, Rev: elec.Rev(), Lease: int64(id)})
		}
	}
	wake := time.NewTimer(time.Hour)
	defer wake.Stop()
	for {
		if st.want && st.sess == nil && !time.Now().Before(st.retry) {
			if s, err := e.grant(ctx); err != nil {
				failed("grant a lease", err)
			} else {
				var lctx context.Context
				st.sess = s
				lctx, st.leaseStop = context.WithCancel(ctx)
				go e.keepAlive(lctx, s.Lease(), gone)
			}
		}
		if st.want && st.sess != nil && st.campaign == nil && st.leader == nil && !time.Now().Before(st.retry) {
			st.campaign = e.campaign(ctx, st.sess, campDone)
		}
		if !st.want && st.campaign != nil {
			st.campaign() // its result still comes through campDone
		}
		if !st.want && st.leader != nil {
			rctx, cancel := context.WithTimeout(ctx, e.callTimeout())
			err := st.leader.Resign(rctx)
			cancel()
			st.leader = nil
			if err != nil {
				// Still the leader in etcd's eyes: let the lease run out,
				// so that another box wins after the TTL.
				failed("resign (letting the lease run out instead)", err)
				dropLease()
			}
			e.report(ctx, leaseEvent{Kind: leaseLostEv})
		}
		if d := time.Until(st.retry); d > 0 {
			wake.Reset(d)
		}
		var sessDone <-chan struct{}
		if st.sess != nil && st.leader == nil && st.campaign == nil {
			sessDone = st.sess.Done()
		}
		select {
		case <-ctx.Done():
			return
		case st.want = <-e.wantCh:
			if st.want && st.leader != nil {
				// Told to stand down and to campaign again before this loop
				// resigned (the channel keeps the newest word only): the
				// agent forgot the win when it stood down; report it again.
				e.report(ctx, leaseEvent{Kind: leaseWonEv, Rev: st.leader.Rev(), Lease: int64(st.sess.Lease())})
			}
		case <-wake.C:
		case <-sessDone:
			// The client gave up keeping the lease alive (etcd unreachable
			// for the TTL): start again with a new one. A leader keeps its
			// lease: its own keep-alives prove it or find it gone.
			dropLease()
		case id := <-gone:
			if st.sess != nil && st.sess.Lease() == id {
				dropLease()
				if st.leader != nil {
					st.leader = nil
					e.report(ctx, leaseEvent{Kind: leaseLostEv, Err: fmt.Errorf("etcd says lease %x is gone", int64(id))})
				}
			}
		case r := <-campDone:
			st.campaign = nil
			switch {
			case r.err != nil:
				if ctx.Err() == nil && st.want {
					failed("campaign", r.err)
				} else if !st.want {
					// Called off: its txn may still put the key after the
					// call gave up, and a key nobody campaigns for would
					// lead for ever (the pool simulator's orphan key). Let
					// the lease, and any key on it, run out.
					dropLease()
				}
			case !st.want:
				// Won after the loop stopped wanting it: give it back.
				rctx, cancel := context.WithTimeout(ctx, e.callTimeout())
				if err := r.elec.Resign(rctx); err != nil {
					dropLease()
				}
				cancel()
			default:
				if err := e.verify(ctx, r.elec); err != nil {
					failed("check the won election", err)
					dropLease()
					continue
				}
				st.leader = r.elec
				e.report(ctx, leaseEvent{Kind: leaseWonEv, Rev: r.elec.Rev(), Lease: int64(st.sess.Lease())})
				e.readLeader(ctx) // the status shows the new order at once
			}
		}
	}
}

// campaign starts a campaign on sess; its result comes through done. It
// returns the function that calls it off.
func (e *etcdArbiter) campaign(ctx context.Context, sess *concurrency.Session, done chan<- campaignResult) context.CancelFunc {
	cctx, cancel := context.WithCancel(ctx)
	// WithRequireLeader: a campaign waits on a watch, and a watch on a
	// member cut off from the majority would wait in silence for ever
	// (it never sees the old leader's key go); with it the member fails
	// it, and the campaign is made again, through another member.
	cctx = clientv3.WithRequireLeader(cctx)
	elec := concurrency.NewElection(sess, e.prefix) // one per campaign: a called-off one cleans up its own key
	go func() {
		// etcd issue 19597: a Campaign whose lease expired waits for ever.
		// It ends with the session.
		stop := context.AfterFunc(sess.Ctx(), cancel)
		defer stop()
		err := elec.Campaign(cctx, e.name)
		if err == nil && sess.Ctx().Err() != nil {
			err = errors.New("the session ended as the campaign returned")
		}
		done <- campaignResult{elec: elec, err: err}
	}()
	return cancel
}

// grant makes a new lease and a session on it.
func (e *etcdArbiter) grant(ctx context.Context) (*concurrency.Session, error) {
	gctx, cancel := context.WithTimeout(ctx, e.callTimeout())
	defer cancel()
	resp, err := e.cli.Grant(gctx, int64(e.ttl/time.Second))
	if err != nil {
		return nil, err
	}
	return concurrency.NewSession(e.cli, concurrency.WithLease(resp.ID), concurrency.WithContext(ctx))
}

// verify checks that the key a campaign won with still exists, with the
// revision and lease it won with: the campaign may have returned as the
// lease ran out.
func (e *etcdArbiter) verify(ctx context.Context, elec *concurrency.Election) error {
	gctx, cancel := context.WithTimeout(ctx, e.callTimeout())
	defer cancel()
	resp, err := e.cli.Get(gctx, elec.Key())
	if err != nil {
		return fmt.Errorf("read the leader key %s: %w", elec.Key(), err)
	}
	if len(resp.Kvs) != 1 || resp.Kvs[0].CreateRevision != elec.Rev() {
		return fmt.Errorf("the leader key %s is gone or was made again", elec.Key())
	}
	return nil
}

// keepAlive renews lease id every TTL / leaseRenewDivisor and reports the
// send time of each acknowledged renewal, then who leads. It ends when ctx
// ends, or when etcd says the lease is gone (reported through gone).
func (e *etcdArbiter) keepAlive(ctx context.Context, id clientv3.LeaseID, gone chan<- clientv3.LeaseID) {
	tick := time.NewTicker(e.callTimeout())
	defer tick.Stop()
	for {
		sent := time.Now()
		kctx, cancel := context.WithTimeout(ctx, e.callTimeout())
		resp, err := e.cli.KeepAliveOnce(kctx, id)
		cancel()
		switch {
		case ctx.Err() != nil:
			return
		case errors.Is(err, rpctypes.ErrLeaseNotFound) || (err == nil && resp.TTL <= 0):
			select {
			case gone <- id:
			case <-ctx.Done():
			}
			return
		case err != nil:
			e.offer(leaseEvent{Kind: leaseErrorEv, Err: fmt.Errorf("keep-alive of lease %x: %w", int64(id), err)})
		default:
			e.renewed(sent)
			e.readLeader(ctx)
		}
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
	}
}

// readLeader reports the leader and the candidates waiting behind it, in
// the order they would win.
func (e *etcdArbiter) readLeader(ctx context.Context) {
	gctx, cancel := context.WithTimeout(ctx, e.callTimeout())
	defer cancel()
	resp, err := e.cli.Get(gctx, e.prefix+"/", clientv3.WithPrefix(),
		clientv3.WithSort(clientv3.SortByCreateRevision, clientv3.SortAscend), clientv3.WithLimit(poolMaxCandidates))
	if err != nil {
		return // the next round tries again
	}
	var l poolLeader
	for i, kv := range resp.Kvs {
		if i == 0 {
			l.Name, l.Rev = string(kv.Value), kv.CreateRevision
			continue
		}
		l.Candidates = append(l.Candidates, string(kv.Value))
	}
	l.Waiting = len(l.Candidates)
	e.offer(leaseEvent{Kind: leaseLeaderEv, Leader: l})
}

// poolMaxCandidates bounds the candidates read: a pool is a few boxes.
const poolMaxCandidates = 64

// handoverKey is the key that publishes a switchover; its value is the
// target box's name, on a lease of its own that runs out after the TTL.
func (e *etcdArbiter) handoverKey() string { return e.root + "handover" }

func (e *etcdArbiter) handover(to string) {
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), 2*e.callTimeout())
		defer cancel()
		var err error
		if to == "" {
			_, err = e.cli.Delete(ctx, e.handoverKey())
		} else {
			var g *clientv3.LeaseGrantResponse
			if g, err = e.cli.Grant(ctx, int64(e.ttl/time.Second)); err == nil {
				_, err = e.cli.Put(ctx, e.handoverKey(), to, clientv3.WithLease(g.ID))
			}
		}
		if err != nil {
			select {
			case e.out <- leaseEvent{Kind: leaseErrorEv, Err: fmt.Errorf("publish the switchover to %q: %w", to, err)}:
			default:
			}
		}
	}()
}

// watch follows the pool's keys: a change of the election reads the
// candidates again at once (a switchover waits for them), and the
// handover key is reported as it comes and goes. A broken watch is made
// again after a pause.
func (e *etcdArbiter) watch(ctx context.Context) {
	for ctx.Err() == nil {
		gctx, cancel := context.WithTimeout(ctx, e.callTimeout())
		resp, err := e.cli.Get(gctx, e.handoverKey())
		cancel()
		if err == nil {
			to := ""
			if len(resp.Kvs) > 0 {
				to = string(resp.Kvs[0].Value)
			}
			e.report(ctx, leaseEvent{Kind: leaseHandoverEv, To: to})
			wctx, stop := context.WithCancel(clientv3.WithRequireLeader(ctx))
			for wr := range e.cli.Watch(wctx, e.root, clientv3.WithPrefix(), clientv3.WithRev(resp.Header.Revision+1)) {
				if wr.Err() != nil {
					break
				}
				election := false
				for _, ev := range wr.Events {
					switch {
					case string(ev.Kv.Key) == e.handoverKey() && ev.Type == clientv3.EventTypePut:
						e.report(ctx, leaseEvent{Kind: leaseHandoverEv, To: string(ev.Kv.Value)})
					case string(ev.Kv.Key) == e.handoverKey():
						e.report(ctx, leaseEvent{Kind: leaseHandoverEv})
					default:
						election = true
					}
				}
				if election {
					e.readLeader(ctx)
				}
			}
			stop()
		}
		select {
		case <-ctx.Done():
		case <-time.After(e.callTimeout()):
		}
	}
}

// newEtcdClient is the client for FLIP_ETCD_*, with TLS when a CA or a
// client certificate is given or an endpoint is https.
func newEtcdClient(cfg *config) (*clientv3.Client, error) {
	cc := clientv3.Config{
		Endpoints:   cfg.EtcdEndpoints,
		DialTimeout: cfg.LeaseTTL / leaseRenewDivisor,
		Logger:      zap.NewNop(), // its errors reach flip's log as leaseEvents
	}
	tlsConf, err := etcdTLS(cfg)
	if err != nil {
		return nil, err
	}
	cc.TLS = tlsConf
	return clientv3.New(cc)
}
