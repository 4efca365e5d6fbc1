package main

// flip check, part one: what the box itself offers — capabilities, the
// VIPs and which box holds them, the routes. Nothing here changes the box.

import (
	"bufio"
	"errors"
	"fmt"
	"net/netip"
	"strconv"
	"strings"
)

// Capability bits (linux/capability.h).
const (
	capNetAdmin = 12
	capNetRaw   = 13
)

// parseCapEff reads the effective capability set from the text of
// /proc/self/status.
func parseCapEff(status string) (uint64, error) {
	sc := bufio.NewScanner(strings.NewReader(status))
	for sc.Scan() {
		k, v, ok := strings.Cut(sc.Text(), ":")
		if !ok || k != "CapEff" {
			continue
		}
		bits, err := strconv.ParseUint(strings.TrimSpace(v), 16, 64)
		if err != nil {
			return 0, fmt.Errorf("CapEff %q is not a hex mask: %w", strings.TrimSpace(v), err)
		}
		return bits, nil
	}
	return 0, errors.New("no CapEff line")
}

// scopeLink is the "scope link " an IPv4 connected route is written with.
func scopeLink(v vipSpec) string {
	if v.Addr.Is4() {
		return "scope link "
	}
	return ""
}

// checkCapabilities: netlink changes need CAP_NET_ADMIN, gratuitous ARP and
// the ARP holder check need CAP_NET_RAW.
func (c *checker) checkCapabilities() checkRow {
	row := checkRow{Name: "capabilities"}
	const fix = "run flip as root, or grant them: systemd AmbientCapabilities=CAP_NET_ADMIN CAP_NET_RAW, " +
		"docker --cap-add NET_ADMIN --cap-add NET_RAW; this checks the flip check process itself, so run it the way the agent runs"
	status, err := c.procStatus()
	var eff uint64
	if err == nil {
		eff, err = parseCapEff(status)
	}
	if err != nil {
		row.Status, row.Detail, row.Fix = checkFail, "cannot read the effective capabilities from /proc/self/status: "+err.Error(), fix
		return row
	}
	var missing []string
	if eff&(1<<capNetAdmin) == 0 {
		missing = append(missing, "CAP_NET_ADMIN (add and delete VIPs, change routes)")
	}
	if eff&(1<<capNetRaw) == 0 {
		missing = append(missing, "CAP_NET_RAW (gratuitous ARP and NA, the holder check, the tiebreaker ping)")
	}
	if len(missing) > 0 {
		row.Status = checkFail
		row.Detail = fmt.Sprintf("missing from the effective set (CapEff %016x): %s", eff, strings.Join(missing, ", "))
		row.Fix = fix
		return row
	}
	row.Status, row.Detail = checkOK, fmt.Sprintf("CAP_NET_ADMIN and CAP_NET_RAW in the effective set (CapEff %016x)", eff)
	return row
}

// checkVIPs checks each VIP's interface and own address, and asks netlink
// whether this box holds it now. held[i] is for cfg.VIPs[i]; a failed query
// counts as not held.
func (c *checker) checkVIPs() ([]checkRow, []bool) {
	var rows []checkRow
	held := make([]bool, len(c.cfg.VIPs))
	for i, v := range c.cfg.VIPs {
		row := checkRow{Name: "vip " + v.Prefix.String(), Status: checkOK}
		var parts []string
		l, err := c.link(v.Iface)
		switch {
		case err != nil:
			row.Status, row.Fix = checkFail, fmt.Sprintf("create %s, or write the VIP as %s@IFACE with the right interface", v.Iface, v.Prefix)
			parts = append(parts, fmt.Sprintf("interface %s: %v", v.Iface, err))
		case !l.Up:
			row.Status, row.Fix = checkFail, fmt.Sprintf("bring it up: ip link set %s up (and make it come up at boot)", v.Iface)
			parts = append(parts, fmt.Sprintf("interface %s is down", v.Iface))
		case !l.Running:
			row.Status, row.Fix = checkWarn, fmt.Sprintf("check the cable and switch port of %s; the agent takes over only with a carrier", v.Iface)
			parts = append(parts, fmt.Sprintf("interface %s is up but has no carrier", v.Iface))
		default:
			parts = append(parts, fmt.Sprintf("%s up", v.Iface))
		}
		if ownOn(c.addrs[v.Iface], v.Own) {
			parts = append(parts, fmt.Sprintf("own address %s in the VIP's subnet", v.Own))
		} else {
			row.Status = checkFail
			parts = append(parts, fmt.Sprintf("own address %s is gone from %s", v.Own, v.Iface))
			if row.Fix == "" {
				row.Fix = fmt.Sprintf("give %s an address in %s (the box's own, not the VIP)", v.Iface, v.Prefix.Masked())
			}
		}
		switch ok, err := c.holds(v); {
		case err != nil:
			row.Status = checkFail
			parts = append(parts, fmt.Sprintf("cannot ask netlink whether the VIP is here: %v", err))
			if row.Fix == "" {
				row.Fix = "flip needs netlink to query and change addresses; run it on the host network (docker --network host)"
			}
		case ok:
			held[i] = true
			parts = append(parts, "held by this box now")
		default:
			parts = append(parts, "not on this box now")
		}
		row.Detail = strings.Join(parts, ", ")
		rows = append(rows, row)
	}
	return rows, held
}

func ownOn(ps []netip.Prefix, own netip.Prefix) bool {
	for _, p := range ps {
		if p == own {
			return true
		}
	}
	return false
}

// checkRoleRow says how a flip started now would begin, from which VIPs
// the box holds (agent.resume).
func checkRoleRow(cfg *config, held []bool) checkRow {
	n := 0
	for _, h := range held {
		if h {
			n++
		}
	}
	row := checkRow{Name: "role at start", Status: checkOK}
	switch {
	case n == 0:
		row.Detail = "passive: this box holds none of the VIPs; flip starts passive and takes over when the service is silent"
	case n == len(held):
		row.Detail = "active: this box holds every VIP; flip resumes as active (nothing restarted, VIPs announced again)"
	default:
		var missing []string
		for i, h := range held {
			if !h {
				missing = append(missing, cfg.VIPs[i].Prefix.String())
			}
		}
		row.Status = checkWarn
		row.Detail = fmt.Sprintf("half-held: %d of %d VIPs on this box, missing %s; flip resumes as active and re-adds them",
			n, len(held), strings.Join(missing, ", "))
		row.Fix = "if this box should be passive, make sure the other box is active before starting flip here"
	}
	return row
}

// checkRoutes reads the connected route of each VIP subnet (the ones the
// routes resource rewrites) and compares its src with what the box's state
// calls for: the VIP when held, the own address otherwise.
func (c *checker) checkRoutes(held []bool) []checkRow {
	heldBy := map[netip.Addr]bool{}
	for i, v := range c.cfg.VIPs {
		heldBy[v.Addr] = held[i]
	}
	var rows []checkRow
	for _, v := range newRoutesResource(c.cfg.VIPs).subnets {
		subnet := v.Own.Masked()
		row := checkRow{Name: fmt.Sprintf("route %s", subnet), Status: checkOK}
		want, state := v.Own.Addr(), "own address; VIP not held"
		if heldBy[v.Addr] {
			want, state = v.Addr, "the VIP; VIP held"
		}
		src, found, err := c.routeSrc(v)
		switch {
		case err != nil:
			row.Status, row.Detail = checkFail, fmt.Sprintf("cannot read the connected route of %s on %s: %v", subnet, v.Iface, err)
			row.Fix = "flip needs netlink to read and change routes; run it on the host network"
		case !found:
			row.Status = checkWarn
			row.Detail = fmt.Sprintf("no connected route %s dev %s: the box cannot reach that subnet now", subnet, v.Iface)
			row.Fix = fmt.Sprintf("flip re-creates it at start; by hand: ip route add %s dev %s %ssrc %s", subnet, v.Iface, scopeLink(v), want)
		case src != want:
			row.Status = checkWarn
			row.Detail = fmt.Sprintf("%s dev %s src %s, expected %s (%s)", subnet, v.Iface, srcString(src), want, state)
			row.Fix = fmt.Sprintf("flip sets src %s at start; by hand: ip route change %s dev %s %ssrc %s", want, subnet, v.Iface, scopeLink(v), want)
		default:
			row.Detail = fmt.Sprintf("%s dev %s src %s (%s)", subnet, v.Iface, src, state)
		}
		rows = append(rows, row)
	}
	return rows
}

func srcString(a netip.Addr) string {
	if !a.IsValid() {
		return "(none)"
	}
	return a.String()
}
