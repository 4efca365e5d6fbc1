package main

import (
	"net/netip"
	"os"
	"strings"
	"testing"
	"time"

	"golang.org/x/net/icmp"
	"golang.org/x/net/ipv4"
	"golang.org/x/net/ipv6"
	"golang.org/x/sys/unix"
)

// TestTiebreakerLoopback pings the loopback address of each IP version as
// the agent does (raw socket: root only; nothing leaves the box): the echo
// comes back through collect with its send time, once.
func TestTiebreakerLoopback(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("raw ICMP sockets need root (CAP_NET_RAW)")
	}
	for _, addr := range []string{"127.0.0.1", "::1"} {
		t.Run(addr, func(t *testing.T) {
			a := netip.MustParseAddr(addr)
			tb, err := newTiebreaker(a, []netip.Addr{a})
			if err != nil {
				if a.Is6() {
					t.Skipf("no IPv6 here: %v", err)
				}
				t.Fatal(err)
			}
			defer tb.Close()
			sent := time.Now()
			tb.ping(sent)
			var got []time.Time
			for deadline := time.Now().Add(2 * time.Second); len(got) == 0 && time.Now().Before(deadline); time.Sleep(5 * time.Millisecond) {
				got = tb.collect()
			}
			if len(got) != 1 || !got[0].Equal(sent) {
				t.Fatalf("collected %v, want the send time %v once", got, sent)
			}
			time.Sleep(20 * time.Millisecond)
			if more := tb.collect(); len(more) != 0 {
				t.Errorf("collected again: %v", more)
			}
		})
	}
}

// TestTiebreakerAnswer: only an echo reply of ours, from a target, to an
// echo still in the table counts.
func TestTiebreakerAnswer(t *testing.T) {
	target := netip.MustParseAddr("192.0.2.1")
	tb := &tiebreaker{targets: []netip.Addr{target}, id: 4242, sent: map[int]time.Time{}}
	at := time.Unix(1700000000, 0)
	tb.sent[7] = at
	v4 := func(typ icmp.Type, id, seq int) []byte {
		b, err := (&icmp.Message{Type: typ, Body: &icmp.Echo{ID: id, Seq: seq, Data: []byte("flip")}}).Marshal(nil)
		if err != nil {
			t.Fatal(err)
		}
		hdr := make([]byte, 20)
		hdr[0] = 0x45
		return append(hdr, b...)
	}
	from := func(s string) unix.Sockaddr { return &unix.SockaddrInet4{Addr: netip.MustParseAddr(s).As4()} }
	tests := []struct {
		name string
		b    []byte
		from unix.Sockaddr
		ok   bool
	}{
		{"our reply from the target", v4(ipv4.ICMPTypeEchoReply, 4242, 7), from("192.0.2.1"), true},
		{"another process's reply", v4(ipv4.ICMPTypeEchoReply, 1, 7), from("192.0.2.1"), false},
		{"a reply from someone else", v4(ipv4.ICMPTypeEchoReply, 4242, 7), from("192.0.2.9"), false},
		{"an unknown sequence", v4(ipv4.ICMPTypeEchoReply, 4242, 8), from("192.0.2.1"), false},
		{"an echo request", v4(ipv4.ICMPTypeEcho, 4242, 7), from("192.0.2.1"), false},
		{"an IPv6 reply on the IPv4 path", v4(ipv6.ICMPTypeEchoReply, 4242, 7)[20:], from("192.0.2.1"), false},
		{"truncated", v4(ipv4.ICMPTypeEchoReply, 4242, 7)[:10], from("192.0.2.1"), false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			sent, ok := tb.answer(tt.b, tt.from)
			if ok != tt.ok || (ok && !sent.Equal(at)) {
				t.Errorf("answer: %v %v, want %v", sent, ok, tt.ok)
			}
			tb.sent[7] = at // the matching case takes it out
		})
	}
}

func TestNewTiebreakerFamilies(t *testing.T) {
	_, err := newTiebreaker(netip.MustParseAddr("::1"), []netip.Addr{netip.MustParseAddr("192.0.2.1")})
	if err == nil || !strings.Contains(err.Error(), "same IP version") {
		t.Errorf("IPv4 target, IPv6 source: %v", err)
	}
}
