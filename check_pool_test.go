package main

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"
)

// ftEtcd is an etcdView: endpoints that do not answer, and one election.
type ftEtcd struct {
	down      map[string]bool
	noLeader  bool
	leader    string
	leaseTTL  time.Duration
	electErr  error
	memberCnt int
}

func (f ftEtcd) status(_ context.Context, ep string) (string, uint64, uint64, error) {
	if f.down[ep] {
		return "", 0, 0, errors.New("context deadline exceeded")
	}
	if f.noLeader {
		return "3.4.23", 1, 0, nil
	}
	return "3.4.23", 1, 1, nil
}

func (f ftEtcd) members(context.Context) ([]string, error) {
	out := []string{}
	for i := 0; i < f.memberCnt; i++ {
		out = append(out, "e http://192.0.2.21:2379")
	}
	return out, nil
}

func (f ftEtcd) election(context.Context, string) (string, int64, time.Duration, time.Duration, int, error) {
	return f.leader, 12, f.leaseTTL, 4 * time.Second, 2, f.electErr
}

func TestCheckPoolRows(t *testing.T) {
	cfg := &config{EtcdEndpoints: []string{"http://192.0.2.21:2379", "http://192.0.2.22:2379", "http://192.0.2.23:2379"},
		EtcdPrefix: "/flip/", LeaseTTL: 5 * time.Second}
	healthy := ftEtcd{leader: "box-a", leaseTTL: 5 * time.Second, memberCnt: 3}
	oneDown := healthy
	oneDown.down = map[string]bool{"http://192.0.2.22:2379": true}
	twoDown := healthy
	twoDown.down = map[string]bool{"http://192.0.2.22:2379": true, "http://192.0.2.23:2379": true}
	noQuorum := healthy
	noQuorum.noLeader = true
	otherTTL := healthy
	otherTTL.leaseTTL = 10 * time.Second
	nobody := healthy
	nobody.leader = ""
	tests := []struct {
		name   string
		view   ftEtcd
		worst  checkStatus
		detail string // in some row
	}{
		{"healthy", healthy, checkOK, "box-a leads (revision 12)"},
		{"one member down: a warning", oneDown, checkWarn, "unreachable"},
		{"two of three down: no quorum", twoDown, checkFail, "a majority (2) is needed"},
		{"members answer without a Raft leader", noQuorum, checkFail, "lost its quorum"},
		{"another box's TTL differs", otherTTL, checkWarn, "FLIP_ETCD_TTL here is 5s"},
		{"nobody campaigns", nobody, checkWarn, "no box campaigns"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rows := checkPoolRows(context.Background(), cfg, tt.view)
			worst, all := checkOK, ""
			for _, r := range rows {
				all += r.Name + ": " + string(r.Status) + " " + r.Detail + "\n"
				if r.Status == checkFail || (r.Status == checkWarn && worst == checkOK) {
					worst = r.Status
				}
			}
			if worst != tt.worst || !strings.Contains(all, tt.detail) {
				t.Errorf("worst %s, want %s with %q; rows:\n%s", worst, tt.worst, tt.detail, all)
			}
		})
	}
}
