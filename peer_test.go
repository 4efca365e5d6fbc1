package main

import (
	"context"
	"errors"
	"log/slog"
	"net"
	"net/netip"
	"strings"
	"testing"
	"time"
)

// ptPair makes two peers on loopback that talk to each other.
func ptPair(t *testing.T, keyA, keyB string) (*peer, *peer) {
	t.Helper()
	log := slog.New(slog.DiscardHandler)
	a, err := newPeer(netip.MustParseAddr("127.0.0.1"), netip.MustParseAddr("127.0.0.2"), 0, keyA, "box-a", log)
	if err != nil {
		t.Fatal(err)
	}
	b, err := newPeer(netip.MustParseAddr("127.0.0.2"), netip.MustParseAddr("127.0.0.1"), 0, keyB, "box-b", log)
	if err != nil {
		t.Fatal(err)
	}
	// Port 0 was for binding; point each at the other's real port.
	a.remote.Port = b.conn.LocalAddr().(*net.UDPAddr).Port
	b.remote.Port = a.conn.LocalAddr().(*net.UDPAddr).Port
	t.Cleanup(func() { a.conn.Close(); b.conn.Close() })
	return a, b
}

func ptReceive(t *testing.T, p *peer) ([]byte, *net.UDPAddr) {
	t.Helper()
	buf := make([]byte, 2048)
	_ = p.conn.SetReadDeadline(time.Now().Add(2 * time.Second))
	n, from, err := p.conn.ReadFromUDP(buf)
	if err != nil {
		t.Fatalf("receive: %v", err)
	}
	return buf[:n], from
}

// TestPeerVerify: only signed, fresh, first-seen messages from the peer's
// address are accepted.
func TestPeerVerify(t *testing.T) {
	const key = "0123456789abcdef-shared"
	a, b := ptPair(t, key, key)
	if err := a.send(peerReleased); err != nil {
		t.Fatal(err)
	}
	msg, from := ptReceive(t, b)
	m, err := b.verify(msg, from, time.Now())
	if err != nil || m.Type != peerReleased || m.From != "box-a" {
		t.Fatalf("good message: %+v, %v", m, err)
	}
	// The second copy (sent twice against loss) and any replay are dropped.
	dup, from2 := ptReceive(t, b)
	if _, err := b.verify(dup, from2, time.Now()); err != errPeerDuplicate {
		t.Fatalf("second copy: %v, want the duplicate error", err)
	}
	if _, err := b.verify(msg, from, time.Now().Add(time.Second)); err != errPeerDuplicate {
		t.Fatalf("replay: %v, want the duplicate error", err)
	}

	tests := []struct {
		name string
		msg  []byte
		from *net.UDPAddr
		now  time.Time
		want string
	}{
		{"stale", nil, from, time.Now().Add(10 * time.Second), "stale"},
		{"wrong source", nil, &net.UDPAddr{IP: net.ParseIP("127.0.0.9"), Port: from.Port}, time.Now(), "not from FLIP_PEER"},
		{"tampered", []byte(strings.Replace(string(msg), `"released"`, `"release-request"`, 1)), from, time.Now(), "bad signature"},
		{"garbage", []byte("hello"), from, time.Now(), "not a peer message"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b2 := &peer{local: b.local, remote: b.remote, key: b.key, seen: map[string]time.Time{}}
			in := tt.msg
			if in == nil {
				in = msg
			}
			if _, err := b2.verify(in, tt.from, tt.now); err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("verify = %v, want an error mentioning %q", err, tt.want)
			}
		})
	}
}

// TestPeerRefusesReflection: a's own signed message sent back to a (its
// source address forged as b's) names the wrong recipient; so does a
// message to b replayed at a third box with the same key.
func TestPeerRefusesReflection(t *testing.T) {
	const key = "0123456789abcdef-shared"
	a, b := ptPair(t, key, key)
	if err := a.beat(heartbeat{Role: "active", Holds: true}); err != nil {
		t.Fatal(err)
	}
	msg, from := ptReceive(t, b)
	m, err := b.verify(msg, from, time.Now())
	if err != nil || m.Type != peerHeartbeat || m.Beat == nil || !m.Beat.Holds {
		t.Fatalf("heartbeat: %+v, %v", m, err)
	}
	reflected := &net.UDPAddr{IP: a.remote.IP, Port: from.Port}
	if _, err := a.verify(msg, reflected, time.Now()); err == nil || !strings.Contains(err.Error(), "reflected") {
		t.Fatalf("a's own message back at a: %v, want refused as reflected", err)
	}
	c := &peer{local: netip.MustParseAddr("127.0.0.3"), remote: b.remote, key: []byte(key), seen: map[string]time.Time{}}
	c.remote = &net.UDPAddr{IP: from.IP, Port: from.Port}
	if _, err := c.verify(msg, from, time.Now()); err == nil || !strings.Contains(err.Error(), "misdirected") {
		t.Fatalf("b's message at a third box: %v, want refused", err)
	}
}

// TestPeerWrongKey: a box with another FLIP_PEER_KEY is not believed.
func TestPeerWrongKey(t *testing.T) {
	a, b := ptPair(t, "0123456789abcdef-one", "0123456789abcdef-two")
	if err := a.send(peerReleaseRequest); err != nil {
		t.Fatal(err)
	}
	msg, from := ptReceive(t, b)
	if _, err := b.verify(msg, from, time.Now()); err == nil || !strings.Contains(err.Error(), "FLIP_PEER_KEY") {
		t.Fatalf("verify = %v, want a key mismatch", err)
	}
}

// TestMachineHealthyPassive: failback waits for a passive box that hears
// the service and could serve.
func TestMachineHealthyPassive(t *testing.T) {
	m := newMachine(ftTiming(true), ftStart, rolePassive)
	if m.healthyPassive(ftAt(time.Second)) {
		t.Fatal("healthy before hearing the service")
	}
	ftAnswersEvery(m, 0, 5*time.Second, 100*ftMS)
	if !m.healthyPassive(ftAt(5 * time.Second)) {
		t.Fatal("not healthy while hearing the service")
	}
	if m.healthyPassive(ftAt(7 * time.Second)) {
		t.Fatal("healthy after 2 s of silence")
	}
	m.setLink(false, ftStart)
	if m.healthyPassive(ftAt(5 * time.Second)) {
		t.Fatal("healthy without a link")
	}
}

// TestPeerConfig: the peer channel and failback settings are checked before
// anything runs, each error naming its variable.
func TestPeerConfig(t *testing.T) {
	base := map[string]string{"FLIP_RESOURCES": "192.0.2.110/24 asterisk"}
	tests := []struct {
		name    string
		env     map[string]string
		wantVar string // "" = valid
	}{
		{"peer with key", map[string]string{"FLIP_PEER": "192.0.2.12", "FLIP_PEER_KEY": "0123456789abcdef"}, ""},
		{"peer not an address", map[string]string{"FLIP_PEER": "box-b", "FLIP_PEER_KEY": "0123456789abcdef"}, "FLIP_PEER"},
		{"peer is this box", map[string]string{"FLIP_PEER": "192.0.2.11", "FLIP_PEER_KEY": "0123456789abcdef"}, "FLIP_PEER"},
		{"peer without key", map[string]string{"FLIP_PEER": "192.0.2.12"}, "FLIP_PEER_KEY"},
		{"two paths", map[string]string{"FLIP_PEER": "192.0.2.12, 198.51.100.12", "FLIP_PEER_KEY": "0123456789abcdef"}, ""},
		{"a path listed twice", map[string]string{"FLIP_PEER": "192.0.2.12 192.0.2.12", "FLIP_PEER_KEY": "0123456789abcdef"}, "FLIP_PEER"},
		{"a second path that is this box", map[string]string{"FLIP_PEER": "192.0.2.12,192.0.2.11", "FLIP_PEER_KEY": "0123456789abcdef"}, "FLIP_PEER"},
		{"short key", map[string]string{"FLIP_PEER": "192.0.2.12", "FLIP_PEER_KEY": "short"}, "FLIP_PEER_KEY"},
		{"bad port", map[string]string{"FLIP_PEER_PORT": "70000"}, "FLIP_PEER_PORT"},
		{"failback on the secondary", map[string]string{"FLIP_FAILBACK": "true", "FLIP_PEER": "192.0.2.12", "FLIP_PEER_KEY": "0123456789abcdef"}, "FLIP_FAILBACK"},
		{"failback without a peer", map[string]string{"FLIP_FAILBACK": "true", "FLIP_PRIMARY": "true"}, "FLIP_FAILBACK"},
		{"failback on the primary", map[string]string{"FLIP_FAILBACK": "true", "FLIP_PRIMARY": "true", "FLIP_PEER": "192.0.2.12", "FLIP_PEER_KEY": "0123456789abcdef"}, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			env := map[string]string{}
			for k, v := range base {
				env[k] = v
			}
			for k, v := range tt.env {
				env[k] = v
			}
			ftSetEnv(t, env)
			_, err := loadConfig(ftHost())
			if tt.wantVar == "" {
				if err != nil {
					t.Fatalf("loadConfig: %v", err)
				}
				return
			}
			var ce *configError
			if !errors.As(err, &ce) || ce.Var != tt.wantVar {
				t.Fatalf("loadConfig = %v, want an error for %s", err, tt.wantVar)
			}
		})
	}
}

// TestPeerPing: `flip check`'s ping is answered by the other agent's peer
// reader on its own (a signed pong); with another key, nothing answers.
func TestPeerPing(t *testing.T) {
	const key = "0123456789abcdef-shared"
	for _, tt := range []struct {
		name, key string
		ok        bool
	}{{"same key", key, true}, {"another key", "0123456789abcdef-other", false}} {
		t.Run(tt.name, func(t *testing.T) {
			_, b := ptPair(t, key, key)
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			go b.run(ctx, make(chan peerMsg, 8))
			port := b.conn.LocalAddr().(*net.UDPAddr).Port
			res := pingPaths(netip.MustParseAddr("127.0.0.1"), []netip.Addr{netip.MustParseAddr("127.0.0.2")}, port, tt.key, "check", 500*time.Millisecond)
			if (res[0].Err == nil) != tt.ok {
				t.Fatalf("ping: %+v, want answered %v", res[0], tt.ok)
			}
		})
	}
}

// TestPeerRoundTrip: a heartbeat echoes the last one heard on its path,
// and the box that sent that one measures the round trip from it.
func TestPeerRoundTrip(t *testing.T) {
	const key = "0123456789abcdef-shared"
	a, b := ptPair(t, key, key)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	toA, toB := make(chan peerMsg, 8), make(chan peerMsg, 8)
	go a.run(ctx, toA)
	go b.run(ctx, toB)
	if err := a.beat(heartbeat{Role: "active"}); err != nil {
		t.Fatal(err)
	}
	select {
	case <-toB:
	case <-time.After(2 * time.Second):
		t.Fatal("b heard nothing")
	}
	if err := b.beat(heartbeat{Role: "passive"}); err != nil {
		t.Fatal(err)
	}
	select {
	case m := <-toA:
		if m.EchoTS == 0 {
			t.Fatalf("b's heartbeat echoes nothing: %+v", m)
		}
	case <-time.After(2 * time.Second):
		t.Fatal("a heard nothing")
	}
	if rtt := a.roundTrip(); rtt <= 0 || rtt > time.Second {
		t.Fatalf("round trip %s, want a small positive one", rtt)
	}
}
