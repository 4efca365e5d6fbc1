package main

import (
	"context"
	"fmt"
	"math/rand/v2"
	"net"
	"net/netip"
	"os"
	"sync"
	"time"

	"golang.org/x/net/icmp"
	"golang.org/x/net/ipv4"
)

// tiebreaker pings FLIP_TIEBREAKER (the gateway, say) with ICMP echo from
// the box's own address. A box that reaches none of them is cut off: it must
// not take over whatever its SIP probes say, and an active box in that state
// releases. Any one answer is enough.
type tiebreaker struct {
	conn    *icmp.PacketConn
	targets []netip.Addr
	id      int

	mu   sync.Mutex
	sent map[int]time.Time // echo sequence -> send time
	seq  int
}

// newTiebreaker opens a raw ICMP socket bound to source (needs CAP_NET_RAW).
func newTiebreaker(source netip.Addr, targets []netip.Addr) (*tiebreaker, error) {
	c, err := icmp.ListenPacket("ip4:icmp", source.String())
	if err != nil {
		return nil, fmt.Errorf("FLIP_TIEBREAKER: open ICMP socket on %s (needs CAP_NET_RAW): %w", source, err)
	}
	return &tiebreaker{conn: c, targets: targets, id: os.Getpid()&0xffff ^ rand.IntN(0xffff), sent: map[int]time.Time{}}, nil
}

// run pings every target each interval and sends the send time of every
// answered echo to out, until ctx ends.
func (t *tiebreaker) run(ctx context.Context, interval time.Duration, out chan<- time.Time) {
	go t.receive(ctx, out)
	tick := time.NewTicker(interval)
	defer tick.Stop()
	for {
		t.ping()
		select {
		case <-ctx.Done():
			t.conn.Close()
			return
		case <-tick.C:
		}
	}
}

// tiebreakerKeep bounds the table of outstanding echoes.
const tiebreakerKeep = 256

func (t *tiebreaker) ping() {
	for _, dst := range t.targets {
		t.mu.Lock()
		t.seq = (t.seq + 1) & 0xffff
		seq := t.seq
		t.sent[seq] = time.Now()
		delete(t.sent, (seq-tiebreakerKeep)&0xffff)
		t.mu.Unlock()
		msg := icmp.Message{Type: ipv4.ICMPTypeEcho, Body: &icmp.Echo{ID: t.id, Seq: seq, Data: []byte("flip")}}
		b, err := msg.Marshal(nil)
		if err != nil {
			continue
		}
		// A send error (no route: the box is cut off) is silence, as it should be.
		_, _ = t.conn.WriteTo(b, &net.IPAddr{IP: dst.AsSlice()})
	}
}

func (t *tiebreaker) receive(ctx context.Context, out chan<- time.Time) {
	buf := make([]byte, 1500)
	for ctx.Err() == nil {
		n, from, err := t.conn.ReadFrom(buf)
		if err != nil {
			return // closed by run
		}
		msg, err := icmp.ParseMessage(1, buf[:n])
		if err != nil || msg.Type != ipv4.ICMPTypeEchoReply {
			continue
		}
		echo, ok := msg.Body.(*icmp.Echo)
		if !ok || echo.ID != t.id || !t.isTarget(from) {
			continue
		}
		t.mu.Lock()
		sent, ok := t.sent[echo.Seq]
		t.mu.Unlock()
		if !ok {
			continue
		}
		select {
		case out <- sent:
		case <-ctx.Done():
		}
	}
}

func (t *tiebreaker) isTarget(a net.Addr) bool {
	ip, ok := a.(*net.IPAddr)
	if !ok {
		return false
	}
	addr, _ := netip.AddrFromSlice(ip.IP)
	for _, dst := range t.targets {
		if dst == addr.Unmap() {
			return true
		}
	}
	return false
}
