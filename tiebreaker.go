package main

import (
	"fmt"
	"math/rand/v2"
	"net/netip"
	"os"
	"time"

	"golang.org/x/net/icmp"
	"golang.org/x/net/ipv4"
	"golang.org/x/net/ipv6"
	"golang.org/x/sys/unix"
)

// tiebreaker pings FLIP_TIEBREAKER (the gateway, say) with ICMP or ICMPv6
// echo from the box's own address. A box that reaches none of them is cut
// off: it must not take over whatever its SIP probes say, and an active box
// in that state releases. Any one answer is enough.
//
// Like the SIP probe (probe_tick.go) it runs on the agent's probe tick and
// never blocks: ping sends, collect reads what came back since the last
// tick from a non-blocking raw socket outside Go's netpoller, so an answer
// wakes nobody. A kernel filter passes only echo replies: a raw ICMP socket
// otherwise sees every ICMP message the box receives.
type tiebreaker struct {
	fd      int
	v6      bool
	targets []netip.Addr
	id      int

	sent map[int]time.Time // echo sequence -> send time
	seq  int
	buf  []byte
}

// tiebreakerKeep bounds the table of outstanding echoes.
const tiebreakerKeep = 256

// newTiebreaker opens the raw socket bound to source (needs CAP_NET_RAW).
// Targets are of source's address family.
func newTiebreaker(source netip.Addr, targets []netip.Addr) (*tiebreaker, error) {
	source = source.Unmap()
	for _, t := range targets {
		if t.Unmap().Is4() != source.Is4() {
			return nil, fmt.Errorf("FLIP_TIEBREAKER: %s and the source %s are not of the same IP version", t, source)
		}
	}
	family, proto := unix.AF_INET6, unix.IPPROTO_ICMPV6
	var bind unix.Sockaddr = &unix.SockaddrInet6{Addr: source.As16()}
	if source.Is4() {
		family, proto = unix.AF_INET, unix.IPPROTO_ICMP
		bind = &unix.SockaddrInet4{Addr: source.As4()}
	}
	fd, err := unix.Socket(family, unix.SOCK_RAW|unix.SOCK_NONBLOCK|unix.SOCK_CLOEXEC, proto)
	if err != nil {
		return nil, fmt.Errorf("FLIP_TIEBREAKER: open ICMP socket on %s (needs CAP_NET_RAW): %w", source, err)
	}
	if err := echoReplyFilter(fd, source.Is6()); err != nil {
		unix.Close(fd)
		return nil, fmt.Errorf("FLIP_TIEBREAKER: ICMP filter on %s: %w", source, err)
	}
	if err := unix.Bind(fd, bind); err != nil {
		unix.Close(fd)
		return nil, fmt.Errorf("FLIP_TIEBREAKER: bind the ICMP socket to %s: %w", source, err)
	}
	return &tiebreaker{
		fd: fd, v6: source.Is6(), targets: targets,
		id:   os.Getpid()&0xffff ^ rand.IntN(0xffff),
		sent: map[int]time.Time{},
		buf:  make([]byte, 1500),
	}, nil
}

// echoReplyFilter makes the kernel drop every ICMP type but echo reply on
// fd (the filters list the types to block).
func echoReplyFilter(fd int, v6 bool) error {
	if v6 {
		var f unix.ICMPv6Filter
		for i := range f.Data {
			f.Data[i] = ^uint32(0)
		}
		reply := uint32(ipv6.ICMPTypeEchoReply)
		f.Data[reply>>5] &^= 1 << (reply & 31)
		return unix.SetsockoptICMPv6Filter(fd, unix.IPPROTO_ICMPV6, unix.ICMPV6_FILTER, &f)
	}
	const icmpFilter = 1 // ICMP_FILTER, linux/icmp.h
	return unix.SetsockoptInt(fd, unix.SOL_RAW, icmpFilter, int(^uint32(1<<uint(ipv4.ICMPTypeEchoReply))))
}

// ping sends one echo to every target. A send error (no route: the box is
// cut off) is silence, as it should be.
func (t *tiebreaker) ping(now time.Time) {
	for _, dst := range t.targets {
		t.seq = (t.seq + 1) & 0xffff
		t.sent[t.seq] = now
		delete(t.sent, (t.seq-tiebreakerKeep)&0xffff)
		// The kernel fills in the ICMPv6 checksum on a raw ICMPv6 socket.
		var typ icmp.Type = ipv6.ICMPTypeEchoRequest
		var to unix.Sockaddr = &unix.SockaddrInet6{Addr: dst.As16()}
		if !t.v6 {
			typ, to = ipv4.ICMPTypeEcho, &unix.SockaddrInet4{Addr: dst.Unmap().As4()}
		}
		msg := icmp.Message{Type: typ, Body: &icmp.Echo{ID: t.id, Seq: t.seq, Data: []byte("flip")}}
		b, err := msg.Marshal(nil)
		if err != nil {
			continue
		}
		_ = unix.Sendto(t.fd, b, 0, to)
	}
}

// collect returns the send times of the echoes answered since the last
// call, without waiting.
func (t *tiebreaker) collect() []time.Time {
	var out []time.Time
	for range tiebreakerKeep { // bounded: at most this many datagrams per tick
		n, from, err := unix.Recvfrom(t.fd, t.buf, unix.MSG_DONTWAIT)
		if err != nil {
			return out // EAGAIN: nothing more
		}
		if sent, ok := t.answer(t.buf[:n], from); ok {
			out = append(out, sent)
		}
	}
	return out
}

// answer matches one datagram to an echo of ours from a target.
func (t *tiebreaker) answer(b []byte, from unix.Sockaddr) (time.Time, bool) {
	var src netip.Addr
	proto, want := 1, icmp.Type(ipv4.ICMPTypeEchoReply)
	switch sa := from.(type) {
	case *unix.SockaddrInet4:
		src = netip.AddrFrom4(sa.Addr)
		// A raw IPv4 socket hands over the IP header too.
		if len(b) < 20 || b[0]>>4 != 4 || len(b) < int(b[0]&0x0f)*4 {
			return time.Time{}, false
		}
		b = b[int(b[0]&0x0f)*4:]
	case *unix.SockaddrInet6:
		src = netip.AddrFrom16(sa.Addr)
		proto, want = 58, ipv6.ICMPTypeEchoReply
	default:
		return time.Time{}, false
	}
	msg, err := icmp.ParseMessage(proto, b)
	if err != nil || msg.Type != want {
		return time.Time{}, false
	}
	echo, ok := msg.Body.(*icmp.Echo)
	if !ok || echo.ID != t.id || !t.isTarget(src) {
		return time.Time{}, false
	}
	sent, ok := t.sent[echo.Seq]
	if ok {
		delete(t.sent, echo.Seq) // a duplicate reply counts once
	}
	return sent, ok
}

func (t *tiebreaker) isTarget(a netip.Addr) bool {
	for _, dst := range t.targets {
		if dst.Unmap() == a.Unmap() {
			return true
		}
	}
	return false
}

// Close releases the socket.
func (t *tiebreaker) Close() error { return unix.Close(t.fd) }
