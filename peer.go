package main

import (
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"sync"
	"time"
)

// The peer channel lets the two agents hand the service over without a
// gap of FLIP_DEAD_AFTER: a box that releases for a switchover tells the
// other at once, and a primary with FLIP_FAILBACK asks the active box to
// release before it takes over. Release on one side always finishes before
// the takeover on the other starts. Messages are UDP datagrams between the
// boxes' own addresses, authenticated with HMAC-SHA256 under FLIP_PEER_KEY,
// fresh within peerMaxSkew, and never accepted twice.

// peerMsg is one message.
type peerMsg struct {
	Type  string `json:"type"` // peerReleased or peerReleaseRequest
	From  string `json:"from"` // box name, for the log
	TS    int64  `json:"ts"`   // unix nanoseconds
	Nonce string `json:"nonce"`
	MAC   string `json:"mac,omitempty"` // hex HMAC-SHA256 of the message without it
}

const (
	// peerReleased: "I released everything; take over now".
	peerReleased = "released"
	// peerReleaseRequest: "I am the primary and healthy; release for a failback".
	peerReleaseRequest = "release-request"
)

// peerMaxSkew bounds the age of an accepted message: the boxes' clocks
// must agree this well (NTP does far better) and a captured message cannot
// be replayed later.
const peerMaxSkew = 5 * time.Second

// peer sends and receives peer messages.
type peer struct {
	conn   *net.UDPConn
	remote *net.UDPAddr
	key    []byte
	name   string
	log    *slog.Logger

	mu   sync.Mutex
	seen map[string]time.Time // nonce -> when, for replay protection
}

func newPeer(source, remote netip.Addr, port int, key, name string, log *slog.Logger) (*peer, error) {
	c, err := net.ListenUDP("udp", &net.UDPAddr{IP: source.AsSlice(), Port: port})
	if err != nil {
		return nil, fmt.Errorf("FLIP_PEER: listen on %s port %d: %w", source, port, err)
	}
	return &peer{
		conn:   c,
		remote: &net.UDPAddr{IP: remote.AsSlice(), Port: port},
		key:    []byte(key),
		name:   name,
		log:    log,
		seen:   map[string]time.Time{},
	}, nil
}

func (p *peer) sign(m peerMsg) string {
	m.MAC = ""
	b, _ := json.Marshal(m)
	h := hmac.New(sha256.New, p.key)
	h.Write(b)
	return hex.EncodeToString(h.Sum(nil))
}

// send sends one message to the other box (best effort: UDP; it is sent
// twice, a few ms apart, against a lost datagram — the receiver drops the
// duplicate by its nonce).
func (p *peer) send(typ string) error {
	nonce := make([]byte, 12)
	if _, err := rand.Read(nonce); err != nil {
		return err
	}
	m := peerMsg{Type: typ, From: p.name, TS: time.Now().UnixNano(), Nonce: hex.EncodeToString(nonce)}
	m.MAC = p.sign(m)
	b, _ := json.Marshal(m)
	var err error
	for i := 0; i < 2; i++ {
		if _, e := p.conn.WriteToUDP(b, p.remote); e != nil {
			err = fmt.Errorf("send %s to peer %s: %w", typ, p.remote, e)
		}
		time.Sleep(2 * time.Millisecond)
	}
	return err
}

// verify checks a received datagram: from the peer's address, correctly
// signed, fresh, and not seen before.
func (p *peer) verify(b []byte, from *net.UDPAddr, now time.Time) (peerMsg, error) {
	var m peerMsg
	if !from.IP.Equal(p.remote.IP) {
		return m, fmt.Errorf("datagram from %s, not from FLIP_PEER %s", from.IP, p.remote.IP)
	}
	if err := json.Unmarshal(b, &m); err != nil {
		return m, fmt.Errorf("not a peer message from %s: %v", from, err)
	}
	want, _ := hex.DecodeString(p.sign(m))
	got, err := hex.DecodeString(m.MAC)
	if err != nil || !hmac.Equal(want, got) {
		return m, fmt.Errorf("bad signature from %s: FLIP_PEER_KEY differs between the boxes", from)
	}
	if d := now.Sub(time.Unix(0, m.TS)); d > peerMaxSkew || d < -peerMaxSkew {
		return m, fmt.Errorf("stale message from %s (%s off): are the clocks in sync?", from, d.Round(time.Millisecond))
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	for n, t := range p.seen {
		if now.Sub(t) > 2*peerMaxSkew {
			delete(p.seen, n)
		}
	}
	if _, dup := p.seen[m.Nonce]; dup {
		return m, errPeerDuplicate
	}
	p.seen[m.Nonce] = now
	return m, nil
}

var errPeerDuplicate = fmt.Errorf("duplicate peer message")

// run receives messages and passes the valid ones to out until ctx ends.
func (p *peer) run(ctx context.Context, out chan<- peerMsg) {
	go func() {
		<-ctx.Done()
		p.conn.Close()
	}()
	buf := make([]byte, 2048)
	for {
		n, from, err := p.conn.ReadFromUDP(buf)
		if err != nil {
			return
		}
		m, err := p.verify(buf[:n], from, time.Now())
		if err == errPeerDuplicate {
			continue
		}
		if err != nil {
			p.log.Warn("peer message rejected", "err", err)
			continue
		}
		select {
		case out <- m:
		case <-ctx.Done():
			return
		}
	}
}

// hasPeer reports whether a peer channel is configured.
func (a *agent) hasPeer() bool { return a.peer != nil || a.peerSend != nil }

// sendPeer sends one message to the other box's agent.
func (a *agent) sendPeer(typ string) error {
	if a.peerSend != nil {
		return a.peerSend(typ)
	}
	return a.peer.send(typ)
}

// tellPeerReleased tells the other box that this one has released
// everything, so it takes over now instead of after FLIP_DEAD_AFTER.
func (a *agent) tellPeerReleased() {
	if !a.hasPeer() {
		return
	}
	if err := a.sendPeer(peerReleased); err != nil {
		a.log.Warn("cannot tell the other box; it will take over after FLIP_DEAD_AFTER", "err", err)
	}
}

// onPeer handles a verified message from the other box's agent.
func (a *agent) onPeer(ctx context.Context, m peerMsg) {
	switch m.Type {
	case peerReleased:
		if a.m.role != rolePassive {
			return
		}
		if a.now().Before(a.m.holdDownEnd) {
			a.log.Warn("the other box released, but this box is held down; it takes over when the hold-down ends", "peer", m.From)
			return
		}
		for _, v := range a.cfg.VIPs {
			if mac, err := a.findHolder(v); err != nil || mac != nil {
				a.log.Warn("the other box says it released, but the VIP is still held; not taking over", "peer", m.From, "vip", v.Addr, "holder", fmt.Sprint(mac), "err", err)
				return
			}
		}
		a.takeover(ctx, causePeerReleased, fmt.Sprintf("%s released the service and handed it over", m.From))
	case peerReleaseRequest:
		if a.m.role != roleActive || a.cfg.Primary {
			a.log.Info("ignoring a failback request", "peer", m.From, "role", a.m.role, "primary", a.cfg.Primary)
			return
		}
		a.release(ctx, causeFailback, fmt.Sprintf("failback: the primary %s asked for the service back", m.From))
		a.m.holdOff(a.now(), a.operatorHoldDown())
		a.tellPeerReleased()
	}
}

// checkFailback asks the active box to release once this primary has been
// a healthy passive for FLIP_FAILBACK_DELAY, at most once per delay, and
// not after a failback that failed on this box's own service
// (machine.failbackDue).
func (a *agent) checkFailback() {
	ask, note := a.m.failbackDue(a.now())
	if !ask {
		if note != "" {
			a.log.Warn(note)
		}
		return
	}
	a.log.Info(note, "delay", a.cfg.FailbackDelay)
	if err := a.sendPeer(peerReleaseRequest); err != nil {
		a.log.Warn("failback request not sent", "err", err)
	}
}
