package main

import (
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
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
	Type string `json:"type"` // peerReleased, peerReleaseRequest or peerHeartbeat
	From string `json:"from"` // box name, for the log
	// Src and Dst are the sender's and the recipient's addresses: a
	// datagram reflected back to its sender, or sent to another box, names
	// the wrong recipient and is refused.
	Src   string `json:"src"`
	Dst   string `json:"dst"`
	TS    int64  `json:"ts"` // unix nanoseconds
	Nonce string `json:"nonce"`
	// Heartbeats say what the sender's agent is and does.
	Beat *heartbeat `json:"beat,omitempty"`
	// Hold: peerHold and peerUnhold (maintenance mode, hold_run.go).
	Hold *holdMsg `json:"hold,omitempty"`
	// Echo: a pong's answer to a ping's nonce.
	Echo string `json:"echo,omitempty"`
	// EchoTS and HeldNS: on each path, the TS of the last message the
	// sender got from the recipient, and how long ago it got it; the
	// recipient's round trip is its clock now minus both (no clock sync
	// needed: EchoTS is its own time).
	EchoTS int64  `json:"echo_ts,omitempty"`
	HeldNS int64  `json:"held_ns,omitempty"`
	MAC    string `json:"mac,omitempty"` // hex HMAC-SHA256 of the message without it
	// KeyID: the sender's key id (peercheck.go), so a message signed with
	// another key is told from junk. Config: a ping's and a pong's
	// configuration fingerprint.
	KeyID  string            `json:"kid,omitempty"`
	Config map[string]string `json:"config,omitempty"`
}

const (
	// peerReleased: "I released everything; take over now".
	peerReleased = "released"
	// peerReleaseRequest: "I am the primary and healthy; release for a failback".
	peerReleaseRequest = "release-request"
	// peerHeartbeat: "my agent runs; this is what it is and does".
	peerHeartbeat = "heartbeat"
	// peerPing and peerPong: `flip check` asks each path whether the other
	// box's agent answers; the agent's peer reader answers at once.
	peerPing = "ping"
	peerPong = "pong"
)

// peerMaxSkew bounds the age of an accepted message: the boxes' clocks
// must agree this well (NTP does far better) and a captured message cannot
// be replayed later.
const peerMaxSkew = 5 * time.Second

// peerMaxDatagram bounds a peer datagram: a heartbeat is a few hundred
// bytes, a ping or pong with the configuration fingerprint about 2 KiB.
const peerMaxDatagram = 8192

// peer sends and receives peer messages.
type peer struct {
	conn   *net.UDPConn
	local  netip.Addr
	remote *net.UDPAddr
	key    []byte
	name   string
	log    *slog.Logger
	// refused counts the datagrams refused; they are logged at a bounded
	// rate (a storm of junk must not flood the log).
	refused rateLog

	mu    sync.Mutex
	seen  map[string]time.Time // nonce -> when, for replay protection
	heard []time.Time          // when messages were accepted, the last minute
	// lastTS and lastAt: the other box's last message's TS and when it
	// came (echoed back); rtt: the last round trip measured from an echo.
	lastTS int64
	lastAt time.Time
	rtt    time.Duration
	first  time.Time // the first message accepted on this path
	// kid is this key's id; config this box's fingerprint, sent in pongs;
	// otherKeyPong: when a ping signed with another key was last answered.
	kid          string
	config       map[string]string
	otherKeyPong time.Time
}

// echo is what to echo to the other box: the TS of its last message on
// this path and how long ago it came.
func (p *peer) echo(now time.Time) (ts, held int64) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.lastTS == 0 {
		return 0, 0
	}
	return p.lastTS, now.Sub(p.lastAt).Nanoseconds()
}

// noteEcho keeps the TS of a message just accepted, for the echo, and
// measures the round trip if it echoes one of ours.
func (p *peer) noteEcho(m peerMsg, now time.Time) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.lastTS, p.lastAt = m.TS, now
	if m.EchoTS > 0 {
		if rtt := now.Sub(time.Unix(0, m.EchoTS)) - time.Duration(m.HeldNS); rtt >= 0 && rtt < peerMaxSkew {
			p.rtt = rtt
		}
	}
}

// heardStats is when a message was last accepted on this path and how many
// in the last minute.
func (p *peer) heardStats(now time.Time) (last time.Time, lastMinute int) {
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, t := range p.heard {
		if now.Sub(t) < time.Minute {
			lastMinute++
		}
		last = t
	}
	return last, lastMinute
}

// roundTrip is the last round trip measured on this path (0: none yet).
func (p *peer) roundTrip() time.Duration {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.rtt
}

// firstHeard is when this path first delivered a message (zero: never).
func (p *peer) firstHeard() time.Time {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.first
}

// noteHeard records an accepted message at now, keeping the last minute.
func (p *peer) noteHeard(now time.Time) {
	p.mu.Lock()
	defer p.mu.Unlock()
	i := 0
	for i < len(p.heard) && now.Sub(p.heard[i]) >= time.Minute {
		i++
	}
	p.heard = append(p.heard[i:], now)
	if p.first.IsZero() {
		p.first = now
	}
}

func newPeer(source, remote netip.Addr, port int, key, name string, log *slog.Logger) (*peer, error) {
	c, err := net.ListenUDP("udp", &net.UDPAddr{IP: source.AsSlice(), Port: port})
	if err != nil {
		return nil, fmt.Errorf("FLIP_PEER: listen on %s port %d: %w", source, port, err)
	}
	return &peer{
		conn:   c,
		local:  source,
		remote: &net.UDPAddr{IP: remote.AsSlice(), Port: port},
		key:    []byte(key),
		kid:    keyID([]byte(key)),
		name:   name,
		log:    log,
		seen:   map[string]time.Time{},
	}, nil
}

// keyID is this path's key id (computed once by newPeer).
func (p *peer) keyID() string {
	if p.kid != "" {
		return p.kid
	}
	return keyID(p.key)
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
	return p.sendMsg(peerMsg{Type: typ}, 2)
}

// beat sends one heartbeat (once: the next one follows within a tick).
func (p *peer) beat(hb heartbeat) error {
	return p.sendMsg(peerMsg{Type: peerHeartbeat, Beat: &hb}, 1)
}

// seal addresses m from this path's local address to its remote one,
// stamps it with now, a fresh nonce and the echo of the other box's last
// message, and signs it: every message of the peer channel goes through
// here.
func (p *peer) seal(m peerMsg, now time.Time) (peerMsg, []byte, error) {
	nonce := make([]byte, 12)
	if _, err := rand.Read(nonce); err != nil {
		return m, nil, err
	}
	m.From, m.Src, m.Dst = p.name, p.local.String(), p.remote.IP.String()
	m.TS, m.Nonce = now.UnixNano(), hex.EncodeToString(nonce)
	m.EchoTS, m.HeldNS = p.echo(now)
	m.KeyID = p.keyID()
	m.MAC = p.sign(m)
	b, err := json.Marshal(m)
	return m, b, err
}

// sendTo seals m and sends it once to to (a pong goes to the ping's
// source port).
func (p *peer) sendTo(m peerMsg, to *net.UDPAddr) error {
	_, b, err := p.seal(m, time.Now())
	if err != nil {
		return err
	}
	_, err = p.conn.WriteToUDP(b, to)
	return err
}

// sendMsg seals m and sends it to the other box, copies times.
func (p *peer) sendMsg(m peerMsg, copies int) error {
	_, b, err := p.seal(m, time.Now())
	if err != nil {
		return err
	}
	for i := 0; i < copies; i++ {
		if i > 0 {
			time.Sleep(2 * time.Millisecond)
		}
		if _, e := p.conn.WriteToUDP(b, p.remote); e != nil {
			err = fmt.Errorf("send %s to peer %s: %w", m.Type, p.remote, e)
		}
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
		if ours := p.keyID(); m.KeyID != "" && m.KeyID != ours {
			return m, fmt.Errorf("message from %s %w (key id %s there, %s here): give both boxes the same key", from, errPeerOtherKey, m.KeyID, ours)
		}
		return m, fmt.Errorf("bad signature from %s: FLIP_PEER_KEY differs between the boxes, or the datagram is junk", from)
	}
	if m.Dst != p.local.String() || m.Src != p.remote.IP.String() {
		return m, fmt.Errorf("message from %s names %s -> %s, not %s -> %s: reflected or misdirected", from, m.Src, m.Dst, p.remote.IP, p.local)
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
	buf := make([]byte, peerMaxDatagram)
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
			if n, ok := p.refused.note(time.Now()); ok {
				p.log.Warn("peer datagrams refused", "count", n, "last_err", err)
			}
			if errors.Is(err, errPeerOtherKey) && m.Type == peerPing && time.Since(p.otherKeyPong) >= time.Second {
				// Tell `flip check` on the other box that its key differs
				// (at most once a second: a forged ping makes no storm).
				p.otherKeyPong = time.Now()
				_ = p.sendTo(peerMsg{Type: peerPong, Echo: m.Nonce}, &net.UDPAddr{IP: from.IP, Port: from.Port})
			}
			continue
		}
		p.noteHeard(time.Now())
		p.noteEcho(m, time.Now())
		if m.Type == peerPing {
			// Answered here, not by the agent's loop: `flip check` asks
			// whether the path and the key work, whatever the loop does.
			_ = p.sendTo(peerMsg{Type: peerPong, Echo: m.Nonce, Config: p.config}, &net.UDPAddr{IP: from.IP, Port: from.Port})
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

// sendPeer sends one message to the other box's agent (twice, against a
// lost datagram).
func (a *agent) sendPeer(typ string) error {
	return a.transmit(peerMsg{Type: typ}, 2)
}

// transmit sends m, copies times, over the peer channel.
func (a *agent) transmit(m peerMsg, copies int) error {
	if a.peerSend != nil {
		return a.peerSend(m, copies)
	}
	return a.peer.sendMsg(m, copies)
}

// beatIfDue sends a heartbeat if the last one is FLIP_DEAD_AFTER /
// heartbeatsPerDeadAfter old.
func (a *agent) beatIfDue(now time.Time) {
	if !a.hasPeer() || now.Sub(a.lastBeat) < a.cfg.DeadAfter/heartbeatsPerDeadAfter {
		return
	}
	a.sendBeat(a.m.beat(now), now, 1)
}

// beatBusy tells the other box, before a takeover or a release, that this
// agent sends no heartbeat for as long as the steps may take (each
// resource's timeout): a long release is not a dead holder.
func (a *agent) beatBusy(doing string) {
	if !a.hasPeer() {
		return
	}
	var bound time.Duration
	for _, r := range a.resources {
		bound += a.resourceTimeout(r)
	}
	hb := a.m.beat(a.now())
	hb.Doing, hb.BusyMS = doing, bound.Milliseconds()
	// Twice before a release (a lost one could make the other box take
	// this one for dead mid-release); once before a takeover, which must
	// not wait the 2 ms between copies.
	copies := 1
	if doing == doingRelease {
		copies = 2
	}
	a.sendBeat(hb, a.now(), copies)
}

// beatDone tells the other box at once that the takeover or release is
// over (a plain heartbeat replaces the busy one's promise): an agent that
// hangs right after it must not count as alive for the whole bound.
func (a *agent) beatDone() {
	if a.hasPeer() {
		a.sendBeat(a.m.beat(a.now()), a.now(), 1) // the next regular one follows within a tick
	}
}

// sendBeat sends one heartbeat, copies times, and counts the next one from
// now; failures are logged at a bounded rate.
func (a *agent) sendBeat(hb heartbeat, now time.Time, copies int) {
	a.lastBeat = now
	if err := a.transmit(peerMsg{Type: peerHeartbeat, Beat: &hb}, copies); err != nil {
		if n, ok := a.beatErrors.note(now); ok {
			a.log.Warn("heartbeats not sent", "count", n, "last_err", err)
		}
	}
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
	case peerHeartbeat:
		if m.Beat == nil {
			return
		}
		a.m.alive(a.now()) // a stall ends here if this is the first event after it
		switch d := a.m.heardPeer(a.now(), *m.Beat); {
		case d.Verdict == verdictRelease:
			a.log.Warn("the other box holds the VIP", "peer", m.From, "decision", d.Reason)
			a.release(ctx, d.Cause, d.Reason)
		case d.Repoint:
			a.log.Warn(d.Reason, "peer", m.From)
			a.repoint(ctx)
		}
	case peerReleased:
		if a.m.role != rolePassive {
			return
		}
		d := a.m.peerReleased(a.now(), m.From)
		if d.Verdict != verdictTakeover {
			a.log.Warn(d.Reason, "peer", m.From)
			return
		}
		for _, v := range a.cfg.VIPs {
			if mac, err := a.findHolder(v); err != nil || mac != nil {
				a.log.Warn("the other box says it released, but the VIP is still held; not taking over", "peer", m.From, "vip", v.Addr, "holder", fmt.Sprint(mac), "err", err)
				return
			}
		}
		a.takeover(ctx, d.Cause, d.Reason)
	case peerHold, peerUnhold:
		a.onPeerHold(m)
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

// checkPaths warns when a path of the peer channel goes silent while
// another still delivers, and says when it is back: one broken cable is a
// warning, not a failure.
func (a *agent) checkPaths() {
	if a.peer == nil || len(a.peer.paths) < 2 {
		return
	}
	paths := a.peer.status(a.now(), a.cfg.DeadAfter)
	if a.silentPaths == nil {
		a.silentPaths = map[string]bool{}
	}
	delivering := 0
	for _, p := range paths {
		if !p.Silent {
			delivering++
		}
	}
	for _, p := range paths {
		switch {
		case p.Silent && !a.silentPaths[p.Remote] && delivering > 0:
			a.log.Warn("peer path silent; the other paths still deliver", "path", p.Local+" -> "+p.Remote, "delivering", delivering, "of", len(paths))
		case !p.Silent && a.silentPaths[p.Remote]:
			a.log.Info("peer path delivers again", "path", p.Local+" -> "+p.Remote)
		}
		a.silentPaths[p.Remote] = p.Silent
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
