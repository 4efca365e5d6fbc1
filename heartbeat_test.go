package main

import (
	"testing"
	"time"
)

func hbMachine(r role) *machine {
	t := ftTiming(false)
	t.Peer = true
	m := newMachine(t, ftStart, rolePassive)
	if r == roleActive {
		m.setRole(roleActive, ftStart, causeServiceSilent)
	}
	return m
}

// TestHolderGone: the holder's flip is gone only after FLIP_DEAD_AFTER
// without a heartbeat while its ARP answers, and not while it said it was
// releasing; a busy heartbeat's promise lasts until the next heartbeat.
func TestHolderGone(t *testing.T) {
	tests := []struct {
		name  string
		setup func(m *machine)
		at    time.Duration // the holder check that finds the holder first is at 2 s
		gone  bool
	}{
		{"heartbeats flowing", func(m *machine) { m.heardPeer(ftAt(2900*ftMS), heartbeat{Holds: true}) }, 3 * time.Second, false},
		{"silent 1 s, but the wire seen for only 0.5 s (a partition just healed)", func(m *machine) {
			m.heardPeer(ftAt(time.Second), heartbeat{Holds: true})
		}, 2500 * ftMS, false},
		{"silent 2 s, wire seen 1 s", func(m *machine) { m.heardPeer(ftAt(time.Second), heartbeat{Holds: true}) }, 3 * time.Second, true},
		{"a busy release announced for 10 s", func(m *machine) {
			m.heardPeer(ftAt(time.Second), heartbeat{Holds: true, Doing: doingRelease, BusyMS: 10000})
		}, 5 * time.Second, false},
		{"a busy takeover's promise replaced by the next heartbeat", func(m *machine) {
			m.heardPeer(ftAt(100*ftMS), heartbeat{Doing: doingTakeover, BusyMS: 200000})
			m.heardPeer(ftAt(time.Second), heartbeat{Holds: true})
		}, 3 * time.Second, true},
		{"never heard: counted from the start", func(*machine) {}, 3 * time.Second, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m := hbMachine(rolePassive)
			tt.setup(m)
			m.holderGone(ftAt(2 * time.Second)) // the first holder check
			if gone, why := m.holderGone(ftAt(tt.at)); gone != tt.gone {
				t.Fatalf("holderGone at %s = %v (%s), want %v", tt.at, gone, why, tt.gone)
			}
		})
	}
	m := hbMachine(rolePassive)
	m.t.Peer = false
	m.holderGone(ftAt(2 * time.Second))
	if gone, _ := m.holderGone(ftAt(10 * time.Second)); gone {
		t.Fatal("without the peer channel silence of heartbeats means nothing")
	}
}

// TestHeartbeatEndsForcedAndStall: hearing the other box hold the VIP
// makes a stalled holder yield at once, and a box that went past a "hung"
// holder a plain one again.
func TestHeartbeatEndsForcedAndStall(t *testing.T) {
	stalled := hbMachine(roleActive)
	stalled.alive(ftAt(100 * ftMS))
	stalled.alive(ftAt(30 * time.Second))
	if d := stalled.heardPeer(ftAt(30*time.Second), heartbeat{Holds: true}); d.Verdict != verdictRelease {
		t.Fatalf("stalled holder hearing the other hold: %+v, want release", d)
	}
	forced := hbMachine(rolePassive)
	forced.setRole(roleActive, ftAt(time.Second), causeHolderDead)
	if !forced.forced {
		t.Fatal("a takeover past a dead holder is forced")
	}
	if d := forced.heardPeer(ftAt(2*time.Second), heartbeat{Holds: true}); d.Verdict != verdictStay || forced.forced {
		t.Fatalf("forced box hearing the other hold: %+v, forced %v; want stay, no longer forced", d, forced.forced)
	}
}

// TestPointedBack: an active box points the foneBRIDGE back once for each
// fonulator run the other box reports later than its own, and only while
// that box holds nothing and is idle; the memory survives a restart.
func TestPointedBack(t *testing.T) {
	own := ftAt(time.Second)
	later, earlier := ftAt(5*time.Second).UnixMilli(), ftAt(500*ftMS).UnixMilli()
	tests := []struct {
		name    string
		role    role
		hb      heartbeat
		repoint bool
	}{
		{"a later run by an idle passive box", roleActive, heartbeat{Role: "passive", Pointed: later}, true},
		{"an earlier run (before this box took over)", roleActive, heartbeat{Role: "passive", Pointed: earlier}, false},
		{"a run in the same millisecond (both took over at once)", roleActive, heartbeat{Role: "passive", Pointed: own.UnixMilli()}, true},
		{"the other box holds: the split-brain rule decides", roleActive, heartbeat{Role: "active", Holds: true, Pointed: later}, false},
		{"the other box is mid-takeover", roleActive, heartbeat{Role: "passive", Doing: doingTakeover, BusyMS: 5000, Pointed: later}, false},
		{"never pointed", roleActive, heartbeat{Role: "passive"}, false},
		{"this box is passive", rolePassive, heartbeat{Role: "passive", Pointed: later}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m := hbMachine(tt.role)
			m.pointedHere(own)
			d := m.heardPeer(ftAt(6*time.Second), tt.hb)
			if d.Repoint != tt.repoint {
				t.Fatalf("heardPeer = %+v, want Repoint %v", d, tt.repoint)
			}
			if d2 := m.heardPeer(ftAt(6250*ftMS), tt.hb); d2.Repoint {
				t.Fatalf("the same run reported again repoints again: %+v", d2)
			}
		})
	}
	m := hbMachine(roleActive)
	m.pointedHere(ftAt(7 * time.Second))
	var e journalEntry
	m.memory(ftAt(8*time.Second), &e)
	r := hbMachine(roleActive)
	r.restore(e)
	if d := r.heardPeer(ftAt(9*time.Second), heartbeat{Role: "passive", Pointed: later}); d.Repoint {
		t.Fatalf("after a restart the holder took the other box's older run for news: %+v", d)
	}
	if hb := r.beat(ftAt(9 * time.Second)); hb.Pointed != ftAt(7*time.Second).UnixMilli() {
		t.Fatalf("heartbeat Pointed = %d, want the restored %d", hb.Pointed, ftAt(7*time.Second).UnixMilli())
	}
}
