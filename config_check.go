package main

// The configuration's own consistency: timings that could not work, the
// probe target and source against the box, the peer channel.

import (
	"errors"
	"net"
	"net/netip"
	"slices"
	"strconv"
	"strings"
	"time"
)

// checkTimings rejects durations and counts that would make the agent
// flap, spin, or never decide.
func (c *config) checkTimings() error {
	if err := c.checkBounds(); err != nil {
		return err
	}
	positive := []struct {
		name string
		d    time.Duration
	}{
		{"FLIP_PROBE_INTERVAL", c.ProbeInterval},
		{"FLIP_DEAD_AFTER", c.DeadAfter},
		{"FLIP_START_TIMEOUT", c.StartTimeout},
		{"FLIP_RESOURCE_TIMEOUT", c.ResourceTO},
		{"FLIP_FONULATOR_TIMEOUT", c.FonulatorTimeout},
		{"FLIP_GARP_INTERVAL", c.GARPInterval},
		{"FLIP_ARP_CHECK_WINDOW", c.ARPCheckWindow},
		{"FLIP_HOLDER_RECHECK", c.HolderRecheck},
		{"FLIP_NOTIFY_TIMEOUT", c.NotifyTimeout},
		{"FLIP_FENCE_TIMEOUT", c.FenceTimeout},
		{"FLIP_CONFLICT_INTERVAL", c.ConflictInterval},
	}
	for _, p := range positive {
		if p.d <= 0 {
			return badVar(p.name, "must be a positive duration like 100ms or 2s, not %s", p.d)
		}
	}
	if c.HolderWait < 0 {
		return badVar("FLIP_HOLDER_WAIT", "must not be negative (%s); 0 means FLIP_START_TIMEOUT + FLIP_DEAD_AFTER", c.HolderWait)
	}
	if c.HoldDown < 0 {
		return badVar("FLIP_HOLD_DOWN", "must not be negative (%s); 0 turns the hold-down off", c.HoldDown)
	}
	if c.HolderWait == 0 {
		c.HolderWait = c.StartTimeout + c.DeadAfter
	}
	if c.DeadAfter <= c.ProbeInterval {
		return badVar("FLIP_DEAD_AFTER", "(%s) must be above FLIP_PROBE_INTERVAL (%s), or one lost probe is a failover; use at least 3 intervals", c.DeadAfter, c.ProbeInterval)
	}
	if c.InitDead < 2*c.DeadAfter {
		return badVar("FLIP_INIT_DEAD", "(%s) must be at least 2 × FLIP_DEAD_AFTER (%s), so that at a cold start the primary takes over before the other box may", c.InitDead, c.DeadAfter)
	}
	if c.RefusedAfter < 0 || (c.RefusedAfter > 0 && c.RefusedAfter < c.ProbeInterval*refusedMin) {
		return badVar("FLIP_REFUSED_AFTER", "(%s) must be 0 (off) or at least %d × FLIP_PROBE_INTERVAL (%s): one stray ICMP error is not evidence", c.RefusedAfter, refusedMin, c.ProbeInterval*refusedMin)
	}
	if c.HandoverWait < 0 || (c.HandoverWait > 0 && c.RefusedAfter > 0 && c.HandoverWait <= c.RefusedAfter+c.ProbeInterval) {
		return badVar("FLIP_HANDOVER_WAIT", "(%s) must be 0 (off) or above FLIP_REFUSED_AFTER + FLIP_PROBE_INTERVAL (%s): the other box needs that long to see the closed port and ask for the VIP", c.HandoverWait, c.RefusedAfter+c.ProbeInterval)
	}
	if c.GARPCount < 1 {
		return badVar("FLIP_GARP_COUNT", "must be at least 1 (got %d): a moved address must be announced", c.GARPCount)
	}
	if c.FonulatorRetries < 0 {
		return badVar("FLIP_FONULATOR_RETRIES", "must not be negative (got %d)", c.FonulatorRetries)
	}
	return nil
}

// resolveAddresses fills in the probe target and the source address, and
// checks them against the box.
func (c *config) resolveAddresses(spec envSpec, addrs map[string][]netip.Prefix) error {
	first := c.VIPs[0]
	if spec.ProbeTarget == "" {
		c.ProbeTarget = net.JoinHostPort(first.Addr.String(), "5060")
	} else {
		t, err := parseHostPort(spec.ProbeTarget, 5060)
		if err != nil {
			return badVar("FLIP_PROBE_TARGET", "%q: %v; write ADDR or ADDR:PORT, e.g. %s:5060", spec.ProbeTarget, err, first.Addr)
		}
		c.ProbeTarget = t
	}
	if spec.Source == "" {
		c.Source = first.Own.Addr()
	} else {
		a, err := netip.ParseAddr(strings.TrimSpace(spec.Source))
		if err != nil {
			return badVar("FLIP_SOURCE", "%q is not an IP address; give this box's own address, e.g. %s", spec.Source, first.Own.Addr())
		}
		if !hasAddr(addrs, a) {
			return badVar("FLIP_SOURCE", "%s is not an address of this box; give this box's own address, e.g. %s", a, first.Own.Addr())
		}
		c.Source = a
	}
	for _, v := range c.VIPs {
		if v.Addr == c.Source {
			return badVar("FLIP_SOURCE", "%s is a VIP; probes must leave from this box's own address, never from a VIP", c.Source)
		}
	}
	if c.has(kindFonebridge) && c.FonebridgeInterface == "" {
		c.FonebridgeInterface = first.Iface
	}
	return nil
}

func hasAddr(addrs map[string][]netip.Prefix, a netip.Addr) bool {
	for _, ps := range addrs {
		for _, p := range ps {
			if p.Addr() == a {
				return true
			}
		}
	}
	return false
}

// parseHostPort accepts ADDR or ADDR:PORT and returns host:port.
func parseHostPort(s string, defPort int) (string, error) {
	s = strings.TrimSpace(s)
	if a, err := netip.ParseAddr(s); err == nil {
		return net.JoinHostPort(a.String(), strconv.Itoa(defPort)), nil
	}
	ap, err := netip.ParseAddrPort(s)
	if err != nil {
		return "", errors.New("not an address with an optional port")
	}
	if ap.Port() == 0 {
		return "", errors.New("port 0")
	}
	return ap.String(), nil
}

// peerKeyMin is the shortest FLIP_PEER_KEY accepted: the key is all that
// stands between the network and a release order.
const peerKeyMin = 16

// checkPeer validates the peer channel and failback settings.
func (c *config) checkPeer(spec envSpec, addrs map[string][]netip.Prefix) error {
	// One or more of the other box's addresses, one per path (the LAN, a
	// crossover cable...), separated by spaces or commas. The first is on
	// the LAN, reached from FLIP_SOURCE.
	for _, s := range strings.FieldsFunc(spec.Peer, func(r rune) bool { return r == ',' || r == ' ' || r == '\t' }) {
		a, err := netip.ParseAddr(s)
		if err != nil {
			return badVar("FLIP_PEER", "%q is not an IP address; give the other box's own address (one per path)", s)
		}
		if hasAddr(addrs, a) {
			return badVar("FLIP_PEER", "%s is an address of this box; give the other box's own address", a)
		}
		if len(c.Peers) == 0 && a.Is4() != c.Source.Is4() {
			return badVar("FLIP_PEER", "%s and FLIP_SOURCE %s are of different address families: the first address is the other box's on the LAN", a, c.Source)
		}
		if slices.Contains(c.Peers, a) {
			return badVar("FLIP_PEER", "%s is listed twice", a)
		}
		c.Peers = append(c.Peers, a)
	}
	if len(c.Peers) > 0 {
		if len(c.PeerKey) < peerKeyMin {
			return badVar("FLIP_PEER_KEY", "must be set, the same on both boxes, at least %d characters (e.g. from `openssl rand -hex 32`) when FLIP_PEER is set", peerKeyMin)
		}
	}
	if c.PeerPort < 1 || c.PeerPort > 65535 {
		return badVar("FLIP_PEER_PORT", "%d is not a UDP port (1-65535)", c.PeerPort)
	}
	if c.Failback {
		if !c.Primary {
			return badVar("FLIP_FAILBACK", "is for the primary box (FLIP_PRIMARY=true): it asks for the service back; unset it here")
		}
		if len(c.Peers) == 0 {
			return badVar("FLIP_FAILBACK", "needs FLIP_PEER and FLIP_PEER_KEY: the primary asks the active box to release first")
		}
		if c.FailbackDelay <= 0 {
			return badVar("FLIP_FAILBACK_DELAY", "must be a positive duration, e.g. 5m")
		}
	}
	return nil
}

// checkAddressRoles rejects addresses that play two roles that cannot
// mix: a tiebreaker that is a VIP or the other box (the passive box would
// count itself cut off exactly when the active box dies, and never take
// over) or this box itself (it always answers); a peer that is a VIP; a VIP
// whose prefix is not its subnet's (the kernel makes it a primary address,
// which it may pick as a source).
func (c *config) checkAddressRoles(addrs map[string][]netip.Prefix) error {
	for _, t := range c.Tiebreakers {
		for _, v := range c.VIPs {
			if t == v.Addr {
				return badVar("FLIP_TIEBREAKER", "%s is a VIP: the passive box would count itself cut off exactly when the active box dies; give the gateway or another host both boxes reach", t)
			}
		}
		if slices.Contains(c.Peers, t) {
			return badVar("FLIP_TIEBREAKER", "%s is the other box (FLIP_PEER): the passive box would count itself cut off exactly when the active box dies; give the gateway or another host both boxes reach", t)
		}
		if hasAddr(addrs, t) {
			return badVar("FLIP_TIEBREAKER", "%s is an address of this box: it always answers; give the gateway or another host both boxes reach", t)
		}
	}
	for _, p := range c.Peers {
		for _, v := range c.VIPs {
			if p == v.Addr {
				return badVar("FLIP_PEER", "%s is a VIP; give the other box's own address", p)
			}
		}
	}
	for _, v := range c.VIPs {
		if v.Own.IsValid() && v.Prefix.Bits() != v.Own.Bits() {
			return badVar("FLIP_RESOURCES", "VIP %s: write it with its subnet's prefix, %s/%d (as %s on %s): another prefix makes it a primary address the kernel may pick as a source", v.Prefix, v.Addr, v.Own.Bits(), v.Own, v.Iface)
		}
	}
	return nil
}
