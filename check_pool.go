package main

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
)

// checkPoolTimeout bounds each etcd call of `flip check`.
const checkPoolTimeout = 3 * time.Second

// etcdView is what `flip check` reads from etcd in pool mode; a seam so
// tests check the rows without a cluster.
type etcdView interface {
	status(ctx context.Context, endpoint string) (version string, member, raftLeader uint64, err error)
	members(ctx context.Context) ([]string, error)
	election(ctx context.Context, prefix string) (leader string, rev int64, leaseTTL, leaseLeft time.Duration, waiting int, err error)
}

// checkPoolRows reaches every endpoint, lists the members and reads the
// election: who leads, with which revision, and how much of its lease is
// left. An endpoint that does not answer is a warning; fewer than a
// majority of them answering with a leader is a failure:
// no box could win, and a leader would drop the VIPs (or hold them, with
// FLIP_ETCD_LOSS=hold).
func checkPoolRows(ctx context.Context, cfg *config, v etcdView) []checkRow {
	var rows []checkRow
	reached := 0
	for _, ep := range cfg.EtcdEndpoints {
		cctx, cancel := context.WithTimeout(ctx, checkPoolTimeout)
		version, member, leader, err := v.status(cctx, ep)
		cancel()
		row := checkRow{Name: "etcd " + ep, Status: checkOK}
		switch {
		case err != nil:
			// A warning: the pool runs on a majority; the quorum row
			// below fails when there is none.
			row.Status, row.Detail = checkWarn, fmt.Sprintf("unreachable: %v", err)
			row.Fix = "check the URL in FLIP_ETCD_ENDPOINTS, that etcd listens there (--listen-client-urls), the firewall (TCP 2379) and TLS (FLIP_ETCD_CA/CERT/KEY)"
		case leader == 0:
			row.Status, row.Detail = checkWarn, fmt.Sprintf("etcd %s answers but has no Raft leader: the cluster has lost its quorum", version)
			row.Fix = "bring back a majority of the etcd members"
		default:
			reached++
			row.Detail = fmt.Sprintf("etcd %s, member %x", version, member)
			if member == leader {
				row.Detail += ", the cluster's Raft leader"
			}
		}
		rows = append(rows, row)
	}
	if need := len(cfg.EtcdEndpoints)/2 + 1; reached < need {
		rows = append(rows, checkRow{Name: "etcd quorum", Status: checkFail,
			Detail: fmt.Sprintf("%d of %d endpoints reached with a leader; a majority (%d) is needed for any box to win the election", reached, len(cfg.EtcdEndpoints), need),
			Fix:    "list every member in FLIP_ETCD_ENDPOINTS and bring a majority of them up"})
		return rows
	}
	cctx, cancel := context.WithTimeout(ctx, checkPoolTimeout)
	defer cancel()
	if ms, err := v.members(cctx); err != nil {
		rows = append(rows, checkRow{Name: "etcd members", Status: checkWarn, Detail: fmt.Sprintf("cannot list them: %v", err)})
	} else {
		row := checkRow{Name: "etcd members", Status: checkOK, Detail: strings.Join(ms, "; ")}
		if len(ms) < 3 {
			row.Status = checkWarn
			row.Detail += fmt.Sprintf(" (%d member(s): one failure stops the pool; three or five are the norm)", len(ms))
		}
		rows = append(rows, row)
	}
	leader, rev, ttl, left, waiting, err := v.election(cctx, cfg.EtcdPrefix+"election/")
	row := checkRow{Name: "pool election " + cfg.EtcdPrefix + "election/", Status: checkOK}
	switch {
	case err != nil:
		row.Status, row.Detail = checkFail, fmt.Sprintf("cannot read it: %v", err)
		row.Fix = "check that this box's etcd user may read FLIP_ETCD_PREFIX"
	case leader == "":
		row.Status, row.Detail = checkWarn, "no box campaigns: nobody holds the VIPs through this pool now"
		row.Fix = "start flip on the pool's boxes; every box needs the same FLIP_ETCD_PREFIX"
	default:
		row.Detail = fmt.Sprintf("%s leads (revision %d), its lease has %s of %s left; %d candidate(s) waiting",
			leader, rev, left.Round(time.Second), ttl, waiting)
		if ttl != cfg.LeaseTTL {
			row.Status = checkWarn
			row.Detail += fmt.Sprintf("; its lease TTL is %s but FLIP_ETCD_TTL here is %s", ttl, cfg.LeaseTTL)
			row.Fix = "set the same FLIP_ETCD_TTL on every box of the pool"
		}
	}
	return append(rows, row)
}

// etcdClientView is etcdView over the real client.
type etcdClientView struct{ cli *clientv3.Client }

func (e etcdClientView) status(ctx context.Context, ep string) (string, uint64, uint64, error) {
	s, err := e.cli.Status(ctx, ep)
	if err != nil {
		return "", 0, 0, err
	}
	return s.Version, s.Header.MemberId, s.Leader, nil
}

func (e etcdClientView) members(ctx context.Context) ([]string, error) {
	resp, err := e.cli.MemberList(ctx)
	if err != nil {
		return nil, err
	}
	var out []string
	for _, m := range resp.Members {
		out = append(out, fmt.Sprintf("%s %s", m.Name, strings.Join(m.ClientURLs, ",")))
	}
	slices.Sort(out) // etcd lists them in no set order
	return out, nil
}

func (e etcdClientView) election(ctx context.Context, prefix string) (string, int64, time.Duration, time.Duration, int, error) {
	first, err := e.cli.Get(ctx, prefix, clientv3.WithFirstCreate()...)
	if err != nil || len(first.Kvs) == 0 {
		return "", 0, 0, 0, 0, err
	}
	all, err := e.cli.Get(ctx, prefix, clientv3.WithPrefix(), clientv3.WithCountOnly())
	if err != nil {
		return "", 0, 0, 0, 0, err
	}
	kv := first.Kvs[0]
	ttl, err := e.cli.TimeToLive(ctx, clientv3.LeaseID(kv.Lease))
	if err != nil {
		return "", 0, 0, 0, 0, err
	}
	return string(kv.Value), kv.CreateRevision, time.Duration(ttl.GrantedTTL) * time.Second,
		time.Duration(ttl.TTL) * time.Second, max(int(all.Count)-1, 0), nil
}

// checkPoolEtcd is the checker's pool step against the real cluster.
func checkPoolEtcd(ctx context.Context, cfg *config) []checkRow {
	if !cfg.pool() {
		return nil
	}
	cli, err := newEtcdClient(cfg)
	if err != nil {
		return []checkRow{{Name: "etcd client", Status: checkFail, Detail: err.Error()}}
	}
	defer cli.Close()
	return checkPoolRows(ctx, cfg, etcdClientView{cli})
}
