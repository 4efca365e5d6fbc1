package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"time"
)

// peerSet is the peer channel over one or more paths (FLIP_PEER lists the
// other box's addresses: the LAN, a crossover cable, a second VLAN), as
// heartbeat ran its heartbeats over Ethernet and a serial cable: one broken
// cable must not split the pair. Every message goes out on every path;
// each path has its own socket, bound to this box's address on it.
type peerSet struct {
	paths []*peer
}

// peerPathStatus is one path as `flip status` shows it.
type peerPathStatus struct {
	Local     string `json:"local"`
	Remote    string `json:"remote"`
	LastHeard string `json:"last_heard,omitempty"`
	// HeardLastMinute: messages accepted on this path in the last minute
	// (heartbeatsPerDeadAfter per FLIP_DEAD_AFTER are sent: 240 at the
	// defaults).
	HeardLastMinute int  `json:"heard_last_minute"`
	Silent          bool `json:"silent"` // nothing for FLIP_DEAD_AFTER
	// LossPercent: of the heartbeats the other box sent in the last minute
	// (heartbeatsPerDeadAfter per FLIP_DEAD_AFTER), the share not heard;
	// counted once the path has been heard for a minute.
	LossPercent *float64 `json:"loss_percent,omitempty"`
	// RTTMS: the last round trip on the path, from the echo in heartbeats.
	RTTMS float64 `json:"rtt_ms,omitempty"`
}

// newPeerSet opens one path per remote. The first path's local address is
// FLIP_SOURCE; the others' are the ones the kernel would send from.
func newPeerSet(source netip.Addr, remotes []netip.Addr, port int, key, name string, log *slog.Logger) (*peerSet, error) {
	s := &peerSet{}
	for i, r := range remotes {
		local, err := pathLocal(i, source, r)
		if err != nil {
			s.Close()
			return nil, fmt.Errorf("FLIP_PEER: %w", err)
		}
		p, err := newPeer(local, r, port, key, name, log)
		if err != nil {
			s.Close()
			return nil, err
		}
		s.paths = append(s.paths, p)
	}
	return s, nil
}

// pathLocal is this box's address on path i towards remote: FLIP_SOURCE
// on the first (the LAN), the kernel's choice on the others.
func pathLocal(i int, source, remote netip.Addr) (netip.Addr, error) {
	if i == 0 {
		return source, nil
	}
	l, err := localAddrFor(remote)
	if err != nil {
		return netip.Addr{}, fmt.Errorf("no route to %s from this box (check the path's interface and address): %w", remote, err)
	}
	return l, nil
}

// localAddrFor is the address the kernel sends from to reach remote (a UDP
// connect sends nothing).
func localAddrFor(remote netip.Addr) (netip.Addr, error) {
	c, err := net.DialUDP("udp", nil, &net.UDPAddr{IP: remote.AsSlice(), Port: 9})
	if err != nil {
		return netip.Addr{}, err
	}
	defer c.Close()
	a, ok := netip.AddrFromSlice(c.LocalAddr().(*net.UDPAddr).IP)
	if !ok {
		return netip.Addr{}, errors.New("no local address")
	}
	return a.Unmap(), nil
}

// sendMsg sends m on every path; it fails only if every path failed.
func (s *peerSet) sendMsg(m peerMsg, copies int) error {
	var errs []error
	for _, p := range s.paths {
		if err := p.sendMsg(m, copies); err != nil {
			errs = append(errs, err)
		}
	}
	if len(errs) == len(s.paths) {
		return errors.Join(errs...)
	}
	return nil
}

// run receives on every path until ctx ends.
func (s *peerSet) run(ctx context.Context, out chan<- peerMsg) {
	for _, p := range s.paths {
		go p.run(ctx, out)
	}
}

// status is every path's state now; deadAfter is FLIP_DEAD_AFTER.
func (s *peerSet) status(now time.Time, deadAfter time.Duration) []peerPathStatus {
	out := make([]peerPathStatus, 0, len(s.paths))
	for _, p := range s.paths {
		last, n := p.heardStats(now)
		ps := peerPathStatus{Local: p.local.String(), Remote: p.remote.IP.String(), HeardLastMinute: n,
			Silent: last.IsZero() || now.Sub(last) >= deadAfter, RTTMS: msFloat(p.roundTrip())}
		if loss, ok := p.lossPercent(now, deadAfter); ok {
			ps.LossPercent = &loss
		}
		if !last.IsZero() {
			ps.LastHeard = timeString(last)
		}
		out = append(out, ps)
	}
	return out
}

// lossPercent is the share of the heartbeats the other box sent on this
// path in the last minute that did not arrive; known once the path has
// delivered for a minute (before that a fresh start would read as loss).
func (p *peer) lossPercent(now time.Time, deadAfter time.Duration) (float64, bool) {
	first := p.firstHeard()
	if first.IsZero() || now.Sub(first) < time.Minute {
		return 0, false
	}
	_, n := p.heardStats(now)
	expected := float64(time.Minute) / float64(deadAfter/heartbeatsPerDeadAfter)
	return max(0, 100*(1-float64(n)/expected)), true
}

// Close closes every path's socket.
func (s *peerSet) Close() {
	for _, p := range s.paths {
		p.conn.Close()
	}
}

// refusedTotal is how many datagrams the peer channel refused on all
// paths (junk, a wrong key, reflections, replays).
func (s *peerSet) refusedTotal() int {
	n := 0
	for _, p := range s.paths {
		n += p.refused.Total()
	}
	return n
}

// pingPaths is `flip check`'s question to the other box's agent on every
// path: one signed ping from a socket of its own (the agent holds the peer
// port) and the signed pong, or nothing, within wait. It returns one result
// per path, in FLIP_PEER's order: the round trip, or why not.
func pingPaths(source netip.Addr, remotes []netip.Addr, port int, key, name string, wait time.Duration) []pingResult {
	out := make([]pingResult, len(remotes))
	for i, r := range remotes {
		out[i].Remote = r
		local, err := pathLocal(i, source, r)
		if err != nil {
			out[i].Err = err
			continue
		}
		out[i].Local = local
		p, err := newPeer(local, r, 0, key, name, slog.New(slog.DiscardHandler))
		if err != nil {
			out[i].Err = err
			continue
		}
		p.remote.Port = port
		p.config = configFingerprint(key)
		out[i].RTT, out[i].Config, out[i].Err = p.ping(wait)
		p.conn.Close()
	}
	return out
}

// pingResult is one path's answer to pingPaths.
type pingResult struct {
	Local, Remote netip.Addr
	RTT           time.Duration
	Config        map[string]string // the other box's configuration fingerprint
	Err           error
}

// ping sends one ping (with this box's configuration fingerprint) and
// waits for its pong; it returns the round trip and the other box's
// fingerprint. A pong signed with another key is reported as that.
func (p *peer) ping(wait time.Duration) (time.Duration, map[string]string, error) {
	start := time.Now()
	m, b, err := p.seal(peerMsg{Type: peerPing, Config: p.config}, start)
	if err != nil {
		return 0, nil, err
	}
	if _, err := p.conn.WriteToUDP(b, p.remote); err != nil {
		return 0, nil, err
	}
	buf := make([]byte, peerMaxDatagram)
	_ = p.conn.SetReadDeadline(start.Add(wait))
	for {
		n, from, err := p.conn.ReadFromUDP(buf)
		if err != nil {
			return 0, nil, fmt.Errorf("no answer within %s: the other box's flip is not running, or the path or its UDP port %d is blocked", wait, p.remote.Port)
		}
		got, err := p.verify(buf[:n], from, time.Now())
		if errors.Is(err, errPeerOtherKey) && got.Type == peerPong && got.Echo == m.Nonce {
			return 0, nil, fmt.Errorf("the other box's flip answered, but %w (key id %s there, %s here): give both boxes the same key", errPeerOtherKey, got.KeyID, p.keyID())
		}
		if err == nil && got.Type == peerPong && got.Echo == m.Nonce {
			return time.Since(start), got.Config, nil
		}
	}
}
