package main

import (
	"errors"
	"fmt"
	"net"
	"os"
	"time"

	"github.com/mdlayher/packet"
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

// awaitClaimant reads frames from c for window and returns the first MAC
// that claim (ARP or NDP) finds claiming the VIP; nil, nil when none did.
func awaitClaimant(c *packet.Conn, iface string, window time.Duration, claim func([]byte) net.HardwareAddr) (net.HardwareAddr, error) {
	deadline := time.Now().Add(window)
	if err := c.SetReadDeadline(deadline); err != nil {
		return nil, fmt.Errorf("packet socket on %s: %w", iface, err)
	}
	buf := make([]byte, 65536)
	for time.Now().Before(deadline) {
		n, _, err := c.ReadFrom(buf)
		if err != nil {
			if errors.Is(err, os.ErrDeadlineExceeded) {
				return nil, nil
			}
			return nil, fmt.Errorf("read from %s: %w", iface, err)
		}
		if mac := claim(buf[:n]); mac != nil {
			return mac, nil
		}
	}
	return nil, nil
}
