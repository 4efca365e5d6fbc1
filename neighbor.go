package main

import (
	"net"
	"time"
)

// announceVIP tells the network that v now lives at this box's MAC:
// gratuitous ARP for an IPv4 VIP.
func announceVIP(v vipSpec) error {
	return sendGARP(v.Iface, v.Addr)
}

// findVIPHolder asks the wire whether another box answers for v: ARP for an
// IPv4 VIP. A nil MAC and nil error mean nobody answered within window.
func findVIPHolder(v vipSpec, window time.Duration) (net.HardwareAddr, error) {
	return findHolder(v.Iface, v.Own.Addr(), v.Addr, window)
}
