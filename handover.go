package main

import (
	"bytes"
	"context"
	"net"
	"net/netip"
	"time"

	"github.com/mdlayher/arp"
	"github.com/mdlayher/ethernet"
	"github.com/mdlayher/ndp"
	"github.com/mdlayher/packet"
)

// A switchover without the peer channel has no way to say "take over now"
// to the other box: all it can show is what the other box's probes see. A
// plain release removes the VIP at once, and the other box then sees
// silence and waits FLIP_DEAD_AFTER (1 s by default). So the hand-over goes
// in two halves instead:
//
//  1. Stop the services (right to left, down to the network resources) but
//     keep the VIP and routes. The other box's probes to the VIP now come
//     back as ICMP port unreachable: after FLIP_REFUSED_AFTER it decides to
//     take over and, as before every takeover, asks on the wire who holds
//     the VIP (a broadcast ARP request, or a multicast Neighbour
//     Solicitation).
//  2. That question is the signal: this box releases the VIP and routes at
//     once. The other box's next holder check finds nobody and it takes
//     over. FLIP_HANDOVER_WAIT bounds the wait when nobody asks (the other
//     box is down, or its refusals are off).
//
// Both boxes never hold the VIP at once: the other box adds it only after a
// holder check that nobody answered.

// vipAskers is what the hand-over needs of an askerWatch; tests fake it.
type vipAskers interface {
	wait(window time.Duration) (net.HardwareAddr, error)
	Close()
}

// askerWatch listens on a VIP's interface for another box asking who holds
// the VIP.
type askerWatch struct {
	c     *packet.Conn
	iface string
	ask   func(frame []byte) net.HardwareAddr
}

// watchVIPAskers opens the listening socket. It is opened before the
// services stop, so a question asked at once is not missed.
func watchVIPAskers(v vipSpec) (*askerWatch, error) {
	if v.Addr.Is6() {
		c, ifi, err := ndpSocket(v.Iface)
		if err != nil {
			return nil, err
		}
		return &askerWatch{c: c, iface: v.Iface, ask: func(b []byte) net.HardwareAddr { return ndpAsker(b, ifi.HardwareAddr, v.Addr) }}, nil
	}
	c, ifi, err := arpSocket(v.Iface)
	if err != nil {
		return nil, err
	}
	return &askerWatch{c: c, iface: v.Iface, ask: func(b []byte) net.HardwareAddr { return arpAsker(b, ifi.HardwareAddr, v.Addr) }}, nil
}

// wait returns the MAC of the first box that asks within window, or nil.
func (w *askerWatch) wait(window time.Duration) (net.HardwareAddr, error) {
	return awaitClaimant(w.c, w.iface, window, w.ask)
}

// Close closes the socket off the caller's path.
func (w *askerWatch) Close() { closeInBackground(w.c) }

// arpAsker returns the sender MAC of a broadcast ARP request for vip from
// another box, or nil. Only broadcast counts: a holder check is broadcast,
// while a client refreshing the VIP's neighbour entry asks this box's MAC
// directly, and must not end the hand-over early.
func arpAsker(b []byte, ours net.HardwareAddr, vip netip.Addr) net.HardwareAddr {
	var f ethernet.Frame
	if err := f.UnmarshalBinary(b); err != nil || f.EtherType != ethernet.EtherTypeARP ||
		!bytes.Equal(f.Destination, ethernet.Broadcast) || bytes.Equal(f.Source, ours) {
		return nil
	}
	var p arp.Packet
	if err := p.UnmarshalBinary(f.Payload); err != nil || p.Operation != arp.OperationRequest || p.TargetIP != vip || p.SenderIP == vip ||
		bytes.Equal(p.SenderHardwareAddr, ours) {
		return nil // not a question, or a gratuitous ARP (a claim, not a question)
	}
	return p.SenderHardwareAddr
}

// ndpAsker returns the source MAC of a multicast Neighbour Solicitation for
// vip from another box, or nil. Multicast only, as for ARP: neighbour
// unreachability probes from clients are unicast. A solicitation from the
// unspecified address is duplicate address detection, not a holder check.
func ndpAsker(b []byte, ours net.HardwareAddr, vip netip.Addr) net.HardwareAddr {
	f, src, m, ok := ndpMessage(b, ours)
	if !ok || len(f.Destination) != 6 || f.Destination[0]&1 == 0 || src.IsUnspecified() || src == vip {
		return nil
	}
	ns, ok := m.(*ndp.NeighborSolicitation)
	if !ok || ns.TargetAddress != vip {
		return nil
	}
	if mac := linkLayerOption(ns.Options, ndp.Source); mac != nil && !bytes.Equal(mac, ours) {
		return mac
	}
	return f.Source
}

// handOver is a switchover without the peer channel (see the top of this
// file). It falls back to a plain release when the question cannot be
// listened for or would never come (refusals off).
func (a *agent) handOver(ctx context.Context, cause, reason string) {
	if a.watchAskers == nil || a.cfg.HandoverWait <= 0 || a.cfg.RefusedAfter <= 0 {
		a.release(ctx, cause, reason)
		return
	}
	w, err := a.watchAskers(a.cfg.VIPs[0])
	if err != nil {
		a.log.Error("cannot listen for the other box's holder check; releasing everything at once", "err", err)
		a.release(ctx, cause, reason)
		return
	}
	defer w.Close()
	a.releaseWith(ctx, cause, reason, func() {
		a.log.Info("services stopped; keeping the VIP until the other box asks for it", "wait_at_most", a.cfg.HandoverWait)
		if a.busy != nil {
			defer a.busy(a.cfg.HandoverWait)()
		}
		start := a.now()
		mac, err := w.wait(a.cfg.HandoverWait)
		a.ev.Phase("wait", "other box asks", a.now().Sub(start), err)
		switch {
		case err != nil:
			a.log.Error("listening for the other box failed; releasing the VIP now", "err", err)
		case mac == nil:
			a.log.Warn("no box asked for the VIP within FLIP_HANDOVER_WAIT; releasing it anyway", "waited", ms(a.now().Sub(start)))
		default:
			a.log.Info("the other box asked who holds the VIP; releasing it", "asker", mac.String(), "after", ms(a.now().Sub(start)))
		}
	})
}
