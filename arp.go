package main

import (
	"bytes"
	"fmt"
	"net"
	"net/netip"
	"time"

	"github.com/mdlayher/arp"
	"github.com/mdlayher/ethernet"
	"github.com/mdlayher/packet"
)

// garpFrames builds both forms of a gratuitous ARP for vip: a request with
// a zero target MAC and a reply with target MAC = own MAC, each broadcast,
// sender IP = target IP = vip. Some switches and hosts honour only one form.
func garpFrames(mac net.HardwareAddr, vip netip.Addr) ([][]byte, error) {
	var frames [][]byte
	for _, f := range []struct {
		op  arp.Operation
		tha net.HardwareAddr
	}{
		{arp.OperationRequest, make(net.HardwareAddr, 6)},
		{arp.OperationReply, mac},
	} {
		p, err := arp.NewPacket(f.op, mac, vip, f.tha, vip)
		if err != nil {
			return nil, fmt.Errorf("build gratuitous ARP for %s: %w", vip, err)
		}
		b, err := frame(mac, ethernet.Broadcast, p)
		if err != nil {
			return nil, err
		}
		frames = append(frames, b)
	}
	return frames, nil
}

func frame(src, dst net.HardwareAddr, p *arp.Packet) ([]byte, error) {
	pb, err := p.MarshalBinary()
	if err != nil {
		return nil, fmt.Errorf("marshal ARP: %w", err)
	}
	f := &ethernet.Frame{Destination: dst, Source: src, EtherType: ethernet.EtherTypeARP, Payload: pb}
	return f.MarshalBinary()
}

// arpSocket opens a raw socket for ARP on one interface. A fresh socket per
// use: frames queued before a check must not count for it.
func arpSocket(iface string) (*packet.Conn, *net.Interface, error) {
	ifi, err := net.InterfaceByName(iface)
	if err != nil {
		return nil, nil, fmt.Errorf("interface %s: %w", iface, err)
	}
	c, err := packet.Listen(ifi, packet.Raw, int(ethernet.EtherTypeARP), nil)
	if err != nil {
		return nil, nil, fmt.Errorf("open ARP socket on %s (needs CAP_NET_RAW): %w", iface, err)
	}
	return c, ifi, nil
}

// closeInBackground closes a packet socket off the caller's path: the
// kernel's packet_release waits for an RCU grace period, 10–15 ms measured
// here, which would otherwise sit between the decision and the first
// gratuitous ARP.
func closeInBackground(c *packet.Conn) { go c.Close() }

// sendGARP sends one round of gratuitous ARP (both forms) for vip on iface.
func sendGARP(iface string, vip netip.Addr) error {
	c, ifi, err := arpSocket(iface)
	if err != nil {
		return err
	}
	defer closeInBackground(c)
	frames, err := garpFrames(ifi.HardwareAddr, vip)
	if err != nil {
		return err
	}
	dst := &packet.Addr{HardwareAddr: ethernet.Broadcast}
	for _, f := range frames {
		if _, err := c.WriteTo(f, dst); err != nil {
			return fmt.Errorf("send gratuitous ARP for %s on %s: %w", vip, iface, err)
		}
	}
	return nil
}

// findHolder asks the wire who holds vip: it broadcasts an ARP request from
// the box's own address and listens for window for any ARP frame whose
// sender is vip and whose MAC is not ours (a reply, or another box's
// gratuitous ARP). It reads the wire, not the neighbour cache, which may be
// stale. A nil MAC and nil error mean nobody answered.
func findHolder(iface string, own, vip netip.Addr, window time.Duration) (net.HardwareAddr, error) {
	c, ifi, err := arpSocket(iface)
	if err != nil {
		return nil, err
	}
	defer closeInBackground(c)
	req, err := arp.NewPacket(arp.OperationRequest, ifi.HardwareAddr, own, make(net.HardwareAddr, 6), vip)
	if err != nil {
		return nil, fmt.Errorf("build ARP request for %s: %w", vip, err)
	}
	b, err := frame(ifi.HardwareAddr, ethernet.Broadcast, req)
	if err != nil {
		return nil, err
	}
	if _, err := c.WriteTo(b, &packet.Addr{HardwareAddr: ethernet.Broadcast}); err != nil {
		return nil, fmt.Errorf("send ARP request for %s on %s: %w", vip, iface, err)
	}
	return awaitClaimant(c, iface, window, func(b []byte) net.HardwareAddr { return claimant(b, ifi.HardwareAddr, vip) })
}

// claimant returns the sender MAC of an ARP frame that claims vip from a MAC
// other than ours, or nil.
func claimant(b []byte, ours net.HardwareAddr, vip netip.Addr) net.HardwareAddr {
	var f ethernet.Frame
	if err := f.UnmarshalBinary(b); err != nil || f.EtherType != ethernet.EtherTypeARP {
		return nil
	}
	var p arp.Packet
	if err := p.UnmarshalBinary(f.Payload); err != nil {
		return nil
	}
	if p.SenderIP != vip || bytes.Equal(p.SenderHardwareAddr, ours) {
		return nil
	}
	return p.SenderHardwareAddr
}
