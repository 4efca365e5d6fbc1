package main

// IPv6 neighbour discovery for IPv6 VIPs: what gratuitous ARP and the ARP
// holder check (arp.go) are for IPv4.
//
// The frames are built whole (Ethernet, IPv6 header, ICMPv6 message with
// its checksum, the messages themselves from mdlayher/ndp) and go through a
// packet socket, like the ARP frames, instead of an ICMPv6 socket
// (ndp.Listen). An ICMPv6 socket must be bound to a usable address of the
// interface, and addresses are tentative (unusable) while the kernel runs
// duplicate address detection: about a second after the link comes up, or
// for ever on an interface without a link-local address. A failover agent
// must not be blocked by that at the moment it takes over; a packet socket
// needs no address at all, and it also shows the frame's link-layer source.

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"net"
	"net/netip"
	"time"

	"github.com/mdlayher/ethernet"
	"github.com/mdlayher/ndp"
	"github.com/mdlayher/packet"
)

// ipv6AllNodes is ff02::1, where unsolicited Neighbour Advertisements go.
var ipv6AllNodes = netip.MustParseAddr("ff02::1")

const (
	ipv6HeaderLen    = 40
	nextHeaderICMPv6 = 58
)

// ipv6MulticastMAC is the Ethernet address an IPv6 multicast group maps to
// (RFC 2464: 33:33 and the group's last 32 bits).
func ipv6MulticastMAC(group netip.Addr) net.HardwareAddr {
	g := group.As16()
	return net.HardwareAddr{0x33, 0x33, g[12], g[13], g[14], g[15]}
}

// ndpFrame wraps an NDP message in an IPv6 header (hop limit 255, which
// receivers require, RFC 4861) and an Ethernet frame from mac to dstMAC.
func ndpFrame(mac, dstMAC net.HardwareAddr, src, dst netip.Addr, m ndp.Message) ([]byte, error) {
	icmp, err := ndp.MarshalMessageChecksum(m, src, dst)
	if err != nil {
		return nil, fmt.Errorf("marshal %s: %w", m.Type(), err)
	}
	ip := make([]byte, ipv6HeaderLen, ipv6HeaderLen+len(icmp))
	ip[0] = 6 << 4 // version 6, traffic class 0, flow label 0
	binary.BigEndian.PutUint16(ip[4:6], uint16(len(icmp)))
	ip[6] = nextHeaderICMPv6
	ip[7] = ndp.HopLimit
	s, d := src.As16(), dst.As16()
	copy(ip[8:24], s[:])
	copy(ip[24:40], d[:])
	f := &ethernet.Frame{Destination: dstMAC, Source: mac, EtherType: ethernet.EtherTypeIPv6, Payload: append(ip, icmp...)}
	return f.MarshalBinary()
}

// unsolicitedNAFrame builds the IPv6 counterpart of a gratuitous ARP: a
// Neighbour Advertisement for vip with Override set (peers replace the MAC
// they have for vip), Solicited and Router clear, the target link-layer
// address option = mac, from vip to all nodes (ff02::1). The kernel does
// the same for an address of its own (source = the address advertised).
func unsolicitedNAFrame(mac net.HardwareAddr, vip netip.Addr) ([]byte, error) {
	na := &ndp.NeighborAdvertisement{
		Override:      true,
		TargetAddress: vip,
		Options:       []ndp.Option{&ndp.LinkLayerAddress{Direction: ndp.Target, Addr: mac}},
	}
	return ndpFrame(mac, ipv6MulticastMAC(ipv6AllNodes), vip, ipv6AllNodes, na)
}

// solicitationFrame builds a Neighbour Solicitation for vip to its
// solicited-node multicast address, from src. With the unspecified source
// (a box without a link-local address) it is a duplicate address detection
// probe, which carries no source link-layer address and which a holder
// answers to all nodes.
func solicitationFrame(mac net.HardwareAddr, src, vip netip.Addr) ([]byte, error) {
	snm, err := ndp.SolicitedNodeMulticast(vip)
	if err != nil {
		return nil, fmt.Errorf("solicited-node address of %s: %w", vip, err)
	}
	ns := &ndp.NeighborSolicitation{TargetAddress: vip}
	if !src.IsUnspecified() {
		ns.Options = []ndp.Option{&ndp.LinkLayerAddress{Direction: ndp.Source, Addr: mac}}
	}
	return ndpFrame(mac, ipv6MulticastMAC(snm), src, snm, ns)
}

// ndpSocket opens a packet socket for IPv6 frames on one interface: a
// fresh one per use, so frames queued before a check do not count for it.
func ndpSocket(iface string) (*packet.Conn, *net.Interface, error) {
	ifi, err := net.InterfaceByName(iface)
	if err != nil {
		return nil, nil, fmt.Errorf("interface %s: %w", iface, err)
	}
	if len(ifi.HardwareAddr) != 6 {
		return nil, nil, fmt.Errorf("interface %s has no Ethernet address", iface)
	}
	c, err := packet.Listen(ifi, packet.Raw, int(ethernet.EtherTypeIPv6), nil)
	if err != nil {
		return nil, nil, fmt.Errorf("open IPv6 packet socket on %s (needs CAP_NET_RAW): %w", iface, err)
	}
	return c, ifi, nil
}

// sendUnsolicitedNA sends one unsolicited Neighbour Advertisement for vip
// on iface (one announcement round for an IPv6 VIP). A NA updates the
// neighbour entries peers already have; like a gratuitous ARP it creates
// none (Linux: unless accept_untracked_na).
func sendUnsolicitedNA(iface string, vip netip.Addr) error {
	c, ifi, err := ndpSocket(iface)
	if err != nil {
		return err
	}
	defer closeInBackground(c)
	f, err := unsolicitedNAFrame(ifi.HardwareAddr, vip)
	if err != nil {
		return err
	}
	if _, err := c.WriteTo(f, &packet.Addr{HardwareAddr: ipv6MulticastMAC(ipv6AllNodes)}); err != nil {
		return fmt.Errorf("send neighbour advertisement for %s on %s: %w", vip, iface, err)
	}
	return nil
}

// findV6Holder asks the wire who holds vip: it sends a Neighbour
// Solicitation for vip to its solicited-node address and listens for
// window for a Neighbour Advertisement for vip (the answer, or another
// box's unsolicited one), or any neighbour discovery message sent from vip,
// whose MAC is not ours. The solicitation leaves from the interface's
// link-local address, never from a VIP (an answer to the holder's own
// address would never leave it). A nil MAC and nil error mean nobody
// answered.
func findV6Holder(iface string, vip netip.Addr, window time.Duration) (net.HardwareAddr, error) {
	c, ifi, err := ndpSocket(iface)
	if err != nil {
		return nil, err
	}
	defer closeInBackground(c)
	f, err := solicitationFrame(ifi.HardwareAddr, linkLocalOf(ifi), vip)
	if err != nil {
		return nil, err
	}
	snm, _ := ndp.SolicitedNodeMulticast(vip)
	if _, err := c.WriteTo(f, &packet.Addr{HardwareAddr: ipv6MulticastMAC(snm)}); err != nil {
		return nil, fmt.Errorf("send neighbour solicitation for %s on %s: %w", vip, iface, err)
	}
	return awaitClaimant(c, iface, window, func(b []byte) net.HardwareAddr { return ndpClaimant(b, ifi.HardwareAddr, vip) })
}

// linkLocalOf returns the interface's first link-local IPv6 address, even a
// tentative one (a packet socket can send from it; the answer comes back to
// our MAC either way), or the unspecified address if it has none.
func linkLocalOf(ifi *net.Interface) netip.Addr {
	addrs, err := ifi.Addrs()
	if err == nil {
		for _, a := range addrs {
			if ipn, ok := a.(*net.IPNet); ok {
				if ip, ok := netip.AddrFromSlice(ipn.IP); ok && ip.Is6() && !ip.Is4In6() && ip.IsLinkLocalUnicast() {
					return ip
				}
			}
		}
	}
	return netip.IPv6Unspecified()
}

// ndpClaimant returns the MAC with which an IPv6 frame claims vip, or nil:
// a Neighbour Advertisement whose target is vip (the MAC of its target
// link-layer address option, else the frame's source), or a neighbour
// discovery message sent from vip (its source link-layer address option,
// else the frame's source). Frames from our own MAC, claims for our own
// MAC, and messages that did not come with hop limit 255 (forwarded, so not
// from this link) do not count.
func ndpClaimant(b []byte, ours net.HardwareAddr, vip netip.Addr) net.HardwareAddr {
	f, src, m, ok := ndpMessage(b, ours)
	if !ok {
		return nil
	}
	var mac net.HardwareAddr
	switch m := m.(type) {
	case *ndp.NeighborAdvertisement:
		if m.TargetAddress != vip && src != vip {
			return nil
		}
		mac = linkLayerOption(m.Options, ndp.Target)
	case *ndp.NeighborSolicitation:
		if src != vip {
			return nil
		}
		mac = linkLayerOption(m.Options, ndp.Source)
	default:
		return nil
	}
	if mac == nil {
		mac = f.Source
	}
	if bytes.Equal(mac, ours) {
		return nil
	}
	return mac
}

// ndpMessage parses a frame that carries a neighbour discovery message from
// this link (hop limit 255) and not from our own MAC: the frame, the IPv6
// source and the message.
func ndpMessage(b []byte, ours net.HardwareAddr) (f ethernet.Frame, src netip.Addr, m ndp.Message, ok bool) {
	if err := f.UnmarshalBinary(b); err != nil || f.EtherType != ethernet.EtherTypeIPv6 || bytes.Equal(f.Source, ours) {
		return f, src, nil, false
	}
	p := f.Payload
	if len(p) < ipv6HeaderLen || p[0]>>4 != 6 || p[6] != nextHeaderICMPv6 || p[7] != ndp.HopLimit {
		return f, src, nil, false
	}
	plen := int(binary.BigEndian.Uint16(p[4:6]))
	if ipv6HeaderLen+plen > len(p) {
		return f, src, nil, false
	}
	m, err := ndp.ParseMessage(p[ipv6HeaderLen : ipv6HeaderLen+plen])
	if err != nil {
		return f, src, nil, false
	}
	return f, netip.AddrFrom16([16]byte(p[8:24])), m, true
}

func linkLayerOption(opts []ndp.Option, dir ndp.Direction) net.HardwareAddr {
	for _, o := range opts {
		if lla, ok := o.(*ndp.LinkLayerAddress); ok && lla.Direction == dir {
			return lla.Addr
		}
	}
	return nil
}
