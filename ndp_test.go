package main

import (
	"bytes"
	"encoding/binary"
	"net"
	"net/netip"
	"testing"
	"time"

	"github.com/mdlayher/ethernet"
	"github.com/mdlayher/ndp"
	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"
)

var (
	ndpTestVIP   = netip.MustParseAddr("2001:db8::100")
	ndpTestOurs  = net.HardwareAddr{0x02, 0, 0x5e, 0, 0x53, 0x0a}
	ndpTestOther = net.HardwareAddr{0x02, 0, 0x5e, 0, 0x53, 0x0b}
)

// ndpTestDecoded is a frame taken apart by hand, not by the code under test.
type ndpTestDecoded struct {
	eth      ethernet.Frame
	hopLimit byte
	src, dst netip.Addr
	icmp     []byte
	msg      ndp.Message
}

func ndpTestDecode(t *testing.T, b []byte) ndpTestDecoded {
	t.Helper()
	var d ndpTestDecoded
	if err := d.eth.UnmarshalBinary(b); err != nil {
		t.Fatalf("not an Ethernet frame: %v", err)
	}
	if d.eth.EtherType != ethernet.EtherTypeIPv6 {
		t.Fatalf("EtherType %v, want IPv6", d.eth.EtherType)
	}
	p := d.eth.Payload
	if len(p) < 40 || p[0]>>4 != 6 || p[6] != 58 {
		t.Fatalf("not IPv6 carrying ICMPv6: % x", p[:min(len(p), 40)])
	}
	plen := int(binary.BigEndian.Uint16(p[4:6]))
	if 40+plen > len(p) {
		t.Fatalf("payload length %d beyond the frame (%d)", plen, len(p)-40)
	}
	d.hopLimit = p[7]
	d.src = netip.AddrFrom16([16]byte(p[8:24]))
	d.dst = netip.AddrFrom16([16]byte(p[24:40]))
	d.icmp = p[40 : 40+plen]
	m, err := ndp.ParseMessage(d.icmp)
	if err != nil {
		t.Fatalf("ICMPv6 is not an NDP message: %v", err)
	}
	d.msg = m
	return d
}

// ndpTestChecksumOK verifies the ICMPv6 checksum over the pseudo-header
// (RFC 8200 8.1): the one's complement sum of everything is 0xffff.
func ndpTestChecksumOK(src, dst netip.Addr, icmp []byte) bool {
	var sum uint32
	add := func(b []byte) {
		for i := 0; i+1 < len(b); i += 2 {
			sum += uint32(b[i])<<8 | uint32(b[i+1])
		}
		if len(b)%2 == 1 {
			sum += uint32(b[len(b)-1]) << 8
		}
	}
	s, d := src.As16(), dst.As16()
	add(s[:])
	add(d[:])
	var l [8]byte
	binary.BigEndian.PutUint32(l[:4], uint32(len(icmp)))
	l[7] = 58
	add(l[:])
	add(icmp)
	for sum>>16 != 0 {
		sum = sum&0xffff + sum>>16
	}
	return sum == 0xffff
}

func TestUnsolicitedNAFrame(t *testing.T) {
	b, err := unsolicitedNAFrame(ndpTestOurs, ndpTestVIP)
	if err != nil {
		t.Fatal(err)
	}
	d := ndpTestDecode(t, b)
	if want := (net.HardwareAddr{0x33, 0x33, 0, 0, 0, 1}); !bytes.Equal(d.eth.Destination, want) {
		t.Errorf("Ethernet destination %s, want %s (all nodes)", d.eth.Destination, want)
	}
	if !bytes.Equal(d.eth.Source, ndpTestOurs) {
		t.Errorf("Ethernet source %s, want ours", d.eth.Source)
	}
	if d.hopLimit != 255 {
		t.Errorf("hop limit %d, want 255 (receivers drop anything else)", d.hopLimit)
	}
	if d.src != ndpTestVIP || d.dst != netip.MustParseAddr("ff02::1") {
		t.Errorf("IPv6 %s -> %s, want the VIP -> ff02::1", d.src, d.dst)
	}
	if !ndpTestChecksumOK(d.src, d.dst, d.icmp) {
		t.Error("ICMPv6 checksum is wrong")
	}
	na, ok := d.msg.(*ndp.NeighborAdvertisement)
	if !ok {
		t.Fatalf("message %T, want a Neighbor Advertisement", d.msg)
	}
	if !na.Override || na.Solicited || na.Router {
		t.Errorf("flags O=%v S=%v R=%v, want O only", na.Override, na.Solicited, na.Router)
	}
	if na.TargetAddress != ndpTestVIP {
		t.Errorf("target %s, want the VIP", na.TargetAddress)
	}
	if got := linkLayerOption(na.Options, ndp.Target); !bytes.Equal(got, ndpTestOurs) {
		t.Errorf("target link-layer address %s, want our MAC", got)
	}
}

func TestSolicitationFrame(t *testing.T) {
	ll := netip.MustParseAddr("fe80::1")
	b, err := solicitationFrame(ndpTestOurs, ll, ndpTestVIP)
	if err != nil {
		t.Fatal(err)
	}
	d := ndpTestDecode(t, b)
	snm := netip.MustParseAddr("ff02::1:ff00:100")
	if d.src != ll || d.dst != snm {
		t.Errorf("IPv6 %s -> %s, want %s -> %s (solicited-node)", d.src, d.dst, ll, snm)
	}
	if want := (net.HardwareAddr{0x33, 0x33, 0xff, 0, 0x01, 0}); !bytes.Equal(d.eth.Destination, want) {
		t.Errorf("Ethernet destination %s, want %s", d.eth.Destination, want)
	}
	if d.hopLimit != 255 || !ndpTestChecksumOK(d.src, d.dst, d.icmp) {
		t.Errorf("hop limit %d, checksum ok %v", d.hopLimit, ndpTestChecksumOK(d.src, d.dst, d.icmp))
	}
	ns, ok := d.msg.(*ndp.NeighborSolicitation)
	if !ok || ns.TargetAddress != ndpTestVIP {
		t.Fatalf("message %#v, want a solicitation for the VIP", d.msg)
	}
	if got := linkLayerOption(ns.Options, ndp.Source); !bytes.Equal(got, ndpTestOurs) {
		t.Errorf("source link-layer address %s, want our MAC", got)
	}

	// Without a link-local address: a DAD-style probe, which must not
	// carry a source link-layer address (RFC 4861 7.2.2).
	b, err = solicitationFrame(ndpTestOurs, netip.IPv6Unspecified(), ndpTestVIP)
	if err != nil {
		t.Fatal(err)
	}
	d = ndpTestDecode(t, b)
	if !d.src.IsUnspecified() || !ndpTestChecksumOK(d.src, d.dst, d.icmp) {
		t.Errorf("source %s, checksum ok %v", d.src, ndpTestChecksumOK(d.src, d.dst, d.icmp))
	}
	if ns := d.msg.(*ndp.NeighborSolicitation); len(ns.Options) != 0 {
		t.Errorf("DAD-style probe has options %v", ns.Options)
	}
}

func TestIPv6MulticastMAC(t *testing.T) {
	got := ipv6MulticastMAC(netip.MustParseAddr("ff02::1:ff12:3456"))
	if want := (net.HardwareAddr{0x33, 0x33, 0xff, 0x12, 0x34, 0x56}); !bytes.Equal(got, want) {
		t.Errorf("got %s, want %s", got, want)
	}
}

// ndpTestFrame builds an NDP frame for the claimant tests.
func ndpTestFrame(t *testing.T, ethSrc net.HardwareAddr, src, dst netip.Addr, m ndp.Message) []byte {
	t.Helper()
	b, err := ndpFrame(ethSrc, ipv6MulticastMAC(netip.MustParseAddr("ff02::1")), src, dst, m)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestNDPClaimant(t *testing.T) {
	other := netip.MustParseAddr("2001:db8::12")
	ll := netip.MustParseAddr("fe80::2")
	all := netip.MustParseAddr("ff02::1")
	tlla := func(mac net.HardwareAddr) []ndp.Option {
		return []ndp.Option{&ndp.LinkLayerAddress{Direction: ndp.Target, Addr: mac}}
	}
	slla := func(mac net.HardwareAddr) []ndp.Option {
		return []ndp.Option{&ndp.LinkLayerAddress{Direction: ndp.Source, Addr: mac}}
	}
	hop := func(b []byte, h byte) []byte { b[14+7] = h; return b }
	tests := []struct {
		name  string
		frame []byte
		want  net.HardwareAddr
	}{
		{"the holder's solicited answer", ndpTestFrame(t, ndpTestOther, ndpTestVIP, ll,
			&ndp.NeighborAdvertisement{Solicited: true, Override: true, TargetAddress: ndpTestVIP, Options: tlla(ndpTestOther)}), ndpTestOther},
		{"another box's unsolicited NA", ndpTestFrame(t, ndpTestOther, ndpTestVIP, all,
			&ndp.NeighborAdvertisement{Override: true, TargetAddress: ndpTestVIP, Options: tlla(ndpTestOther)}), ndpTestOther},
		{"NA without a target link-layer option: the frame's source", ndpTestFrame(t, ndpTestOther, ndpTestVIP, ll,
			&ndp.NeighborAdvertisement{Solicited: true, TargetAddress: ndpTestVIP}), ndpTestOther},
		{"our own NA", ndpTestFrame(t, ndpTestOurs, ndpTestVIP, all,
			&ndp.NeighborAdvertisement{Override: true, TargetAddress: ndpTestVIP, Options: tlla(ndpTestOurs)}), nil},
		{"an NA that claims our MAC, relayed", ndpTestFrame(t, ndpTestOther, ndpTestVIP, all,
			&ndp.NeighborAdvertisement{Override: true, TargetAddress: ndpTestVIP, Options: tlla(ndpTestOurs)}), nil},
		{"an NA for another address", ndpTestFrame(t, ndpTestOther, other, all,
			&ndp.NeighborAdvertisement{Override: true, TargetAddress: other, Options: tlla(ndpTestOther)}), nil},
		{"the holder soliciting from the VIP", ndpTestFrame(t, ndpTestOther, ndpTestVIP, all,
			&ndp.NeighborSolicitation{TargetAddress: other, Options: slla(ndpTestOther)}), ndpTestOther},
		{"someone else soliciting the VIP", ndpTestFrame(t, ndpTestOther, other, all,
			&ndp.NeighborSolicitation{TargetAddress: ndpTestVIP, Options: slla(ndpTestOther)}), nil},
		{"a DAD probe for the VIP", ndpTestFrame(t, ndpTestOther, netip.IPv6Unspecified(), all,
			&ndp.NeighborSolicitation{TargetAddress: ndpTestVIP}), nil},
		{"hop limit not 255 (forwarded)", hop(ndpTestFrame(t, ndpTestOther, ndpTestVIP, all,
			&ndp.NeighborAdvertisement{Override: true, TargetAddress: ndpTestVIP, Options: tlla(ndpTestOther)}), 254), nil},
		{"truncated", ndpTestFrame(t, ndpTestOther, ndpTestVIP, all,
			&ndp.NeighborAdvertisement{Override: true, TargetAddress: ndpTestVIP, Options: tlla(ndpTestOther)})[:60], nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := ndpClaimant(tt.frame, ndpTestOurs, ndpTestVIP); !bytes.Equal(got, tt.want) {
				t.Errorf("claimant %s, want %s", got, tt.want)
			}
		})
	}
	garp, err := garpFrames(ndpTestOther, netip.MustParseAddr("192.0.2.100"))
	if err != nil {
		t.Fatal(err)
	}
	if got := ndpClaimant(garp[0], ndpTestOurs, ndpTestVIP); got != nil {
		t.Errorf("an ARP frame claims %s", got)
	}
}

// TestNDPOnTheWire runs against the kernel, in a private namespace with the
// veth pair d0-d1 (root; skips otherwise): the holder check on d0 finds
// d1's MAC once d1 holds the VIP (the kernel answers the solicitation), and
// nobody while nobody does or only d0 itself does; an unsolicited NA from
// d0 moves d1's neighbour entry for the VIP to d0's MAC. No address needs
// to be usable for either (link-locals are still tentative here).
func TestNDPOnTheWire(t *testing.T) {
	nlTestBox(t)
	d0, err := netlink.LinkByName("d0")
	if err != nil {
		t.Fatal(err)
	}
	d1, err := netlink.LinkByName("d1")
	if err != nil {
		t.Fatal(err)
	}
	vip := &netlink.Addr{IPNet: &net.IPNet{IP: ndpTestVIP.AsSlice(), Mask: net.CIDRMask(64, 128)}, Flags: unix.IFA_F_NODAD}
	window := 300 * time.Millisecond

	if mac, err := findV6Holder("d0", ndpTestVIP, window); err != nil || mac != nil {
		t.Fatalf("nobody holds the VIP: holder %s, err %v", mac, err)
	}
	if err := netlink.AddrAdd(d0, vip); err != nil {
		t.Fatal(err)
	}
	if mac, err := findV6Holder("d0", ndpTestVIP, window); err != nil || mac != nil {
		t.Fatalf("only this side holds the VIP: holder %s, err %v (its own MAC must not count)", mac, err)
	}
	if err := netlink.AddrDel(d0, vip); err != nil {
		t.Fatal(err)
	}
	if err := netlink.AddrAdd(d1, vip); err != nil {
		t.Fatal(err)
	}
	// The first solicitation right after AddrAdd went unanswered once
	// (2026-11-25, full unit run); likely d1's kernel had not yet joined
	// the VIP's solicited-node group, which addrconf does from a work
	// queue. The agent re-checks a holder anyway; so does the test.
	var mac net.HardwareAddr
	for try := 0; try < 5 && mac == nil; try++ {
		if mac, err = findV6Holder("d0", ndpTestVIP, window); err != nil {
			t.Fatal(err)
		}
	}
	if !bytes.Equal(mac, d1.Attrs().HardwareAddr) {
		t.Fatalf("holder %s, want d1's MAC %s", mac, d1.Attrs().HardwareAddr)
	}
	if err := netlink.AddrDel(d1, vip); err != nil {
		t.Fatal(err)
	}

	// d1 knows the VIP at some other MAC; d0's advertisement overrides it.
	stale := &netlink.Neigh{LinkIndex: d1.Attrs().Index, Family: netlink.FAMILY_V6, State: netlink.NUD_STALE,
		IP: ndpTestVIP.AsSlice(), HardwareAddr: ndpTestOther}
	if err := netlink.NeighAdd(stale); err != nil {
		t.Fatalf("neighbour entry on d1: %v", err)
	}
	if err := sendUnsolicitedNA("d0", ndpTestVIP); err != nil {
		t.Fatal(err)
	}
	var got net.HardwareAddr
	for range 50 {
		neighs, err := netlink.NeighList(d1.Attrs().Index, netlink.FAMILY_V6)
		if err != nil {
			t.Fatal(err)
		}
		for _, n := range neighs {
			if n.IP.Equal(ndpTestVIP.AsSlice()) {
				got = n.HardwareAddr
			}
		}
		if bytes.Equal(got, d0.Attrs().HardwareAddr) {
			break
		}
		time.Sleep(10 * time.Millisecond)
	}
	if !bytes.Equal(got, d0.Attrs().HardwareAddr) {
		t.Fatalf("d1's neighbour entry for the VIP is %s after the NA, want d0's MAC %s", got, d0.Attrs().HardwareAddr)
	}
}
