package main

import (
	"net"
	"time"
)

// announceVIP tells the network that v now lives at this box's MAC:
// gratuitous ARP for an IPv4 VIP, an unsolicited Neighbour Advertisement
// (Override set, to all nodes) for an IPv6 one.
func announceVIP(v vipSpec) error {
	if v.Addr.Is6() {
		return sendUnsolicitedNA(v.Iface, v.Addr)
	}
	return sendGARP(v.Iface, v.Addr)
}

// findVIPHolder asks the wire whether another box answers for v: ARP for an
// IPv4 VIP, a Neighbour Solicitation for an IPv6 one. A nil MAC and nil
// error mean nobody answered within window.
func findVIPHolder(v vipSpec, window time.Duration) (net.HardwareAddr, error) {
	if v.Addr.Is6() {
		return findV6Holder(v.Iface, v.Addr, window)
	}
	return findHolder(v.Iface, v.Own.Addr(), v.Addr, window)
}
