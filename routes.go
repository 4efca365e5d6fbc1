package main

import (
	"context"
	"fmt"
	"net"
	"net/netip"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"
)

// routesResource is heartbeat's `fixrouting` done with netlink: while the box
// is active, the connected route of each VIP's subnet carries src = VIP, so a
// SIP server bound to the wildcard answers and originates from the shared
// address (the carrier authenticates by it); on release the box's own address
// is put back. It must stop before the VIP is deleted: deleting an address
// that is a route's src deletes the route, and the box loses its subnet.
//
// IPv6 works the same way with one kernel difference (measured): deleting an
// address that is an IPv6 route's src does not delete the route, it clears
// the src (the route then has none, as before flip first touched it). The
// prefix route stays as long as another address of the prefix (the box's
// own) is on the interface. Check sees the missing src on an active box and
// the drift repair sets it again; at start the repair sets the role's src.
type routesResource struct {
	subnets []vipSpec // one VIP per (interface, own subnet): the first listed
}

func newRoutesResource(vips []vipSpec) *routesResource {
	r := &routesResource{}
	seen := map[string]bool{}
	for _, v := range vips {
		key := v.Iface + " " + v.Own.Masked().String()
		if !seen[key] {
			seen[key] = true
			r.subnets = append(r.subnets, v)
		}
	}
	return r
}

func (r *routesResource) Name() string { return "routes" }

// Start sets src = VIP on every VIP subnet's connected route.
func (r *routesResource) Start(context.Context) error {
	for _, v := range r.subnets {
		if err := setConnectedSrc(v, v.Addr); err != nil {
			return err
		}
	}
	return nil
}

// Stop puts the box's own address back as src.
func (r *routesResource) Stop(context.Context) error {
	var first error
	for _, v := range r.subnets {
		if err := setConnectedSrc(v, v.Own.Addr()); err != nil && first == nil {
			first = err
		}
	}
	return first
}

// Check reports a connected route that is missing or has another src.
func (r *routesResource) Check(context.Context) error {
	for _, v := range r.subnets {
		rt, err := connectedRoute(v)
		if err != nil {
			return err
		}
		if rt == nil {
			return fmt.Errorf("no connected route for %s on %s", v.Own.Masked(), v.Iface)
		}
		if src, _ := netip.AddrFromSlice(rt.Src); src.Unmap() != v.Addr {
			return fmt.Errorf("route %s dev %s has src %s, want %s", v.Own.Masked(), v.Iface, rt.Src, v.Addr)
		}
	}
	return nil
}

// repairConnectedRoutes makes sure every VIP subnet has its connected route,
// with src = VIP when the box holds its VIPs and the own address otherwise.
// Linux drops the connected route when an address that was its src is
// deleted (by an admin or networkd while flip was down): without the repair
// the box cannot even reach its peer.
func repairConnectedRoutes(vips []vipSpec, active bool) error {
	for _, v := range newRoutesResource(vips).subnets {
		src := v.Own.Addr()
		if active {
			src = v.Addr
		}
		if err := setConnectedSrc(v, src); err != nil {
			return err
		}
	}
	return nil
}

// connectedRoute finds the kernel's route for the own address's subnet on
// the VIP's interface in the main table, or nil. An IPv4 connected route
// has scope link; an IPv6 one (`2001:db8::/64 dev eth0 proto kernel metric
// 256`) has scope universe, and where there are several for the prefix (a
// router-advertised one, say) the one with the lowest metric is the one
// the kernel uses.
func connectedRoute(v vipSpec) (*netlink.Route, error) {
	l, err := netlink.LinkByName(v.Iface)
	if err != nil {
		return nil, fmt.Errorf("interface %s: %w", v.Iface, err)
	}
	dst := prefixIPNet(v.Own.Masked())
	filter := &netlink.Route{LinkIndex: l.Attrs().Index, Dst: dst, Table: unix.RT_TABLE_MAIN}
	routes, err := netlink.RouteListFiltered(addrFamily(v.Addr), filter,
		netlink.RT_FILTER_OIF|netlink.RT_FILTER_DST|netlink.RT_FILTER_TABLE)
	if err != nil {
		return nil, fmt.Errorf("list routes for %s on %s: %w", dst, v.Iface, err)
	}
	if !v.Addr.Is6() {
		for i := range routes {
			if routes[i].Scope == netlink.SCOPE_LINK && routes[i].Gw == nil {
				return &routes[i], nil
			}
		}
		return nil, nil
	}
	var best *netlink.Route
	for i := range routes {
		rt := &routes[i]
		if rt.Scope != netlink.SCOPE_UNIVERSE || rt.Gw != nil || len(rt.MultiPath) > 0 || rt.Type != unix.RTN_UNICAST {
			continue
		}
		if best == nil || rt.Priority < best.Priority {
			best = rt
		}
	}
	return best, nil
}

// setConnectedSrc changes the connected route's src in place, which keeps its
// scope, protocol and metric, or re-creates the route if it is gone.
func setConnectedSrc(v vipSpec, src netip.Addr) error {
	rt, err := connectedRoute(v)
	if err != nil {
		return err
	}
	if rt == nil {
		l, err := netlink.LinkByName(v.Iface)
		if err != nil {
			return fmt.Errorf("interface %s: %w", v.Iface, err)
		}
		add := &netlink.Route{
			LinkIndex: l.Attrs().Index,
			Dst:       prefixIPNet(v.Own.Masked()),
			Src:       src.AsSlice(),
			Scope:     netlink.SCOPE_LINK,
			Protocol:  unix.RTPROT_KERNEL,
			Table:     unix.RT_TABLE_MAIN,
		}
		if v.Addr.Is6() {
			// As the kernel makes it for an address: scope universe, metric 256.
			add.Scope, add.Priority = netlink.SCOPE_UNIVERSE, ipv6PrefixRouteMetric
		}
		if err := netlink.RouteAdd(add); err != nil && err != unix.EEXIST {
			return fmt.Errorf("re-create connected route %s dev %s src %s: %w", add.Dst, v.Iface, src, err)
		}
		return nil
	}
	if cur, _ := netip.AddrFromSlice(rt.Src); cur.Unmap() == src {
		return nil
	}
	rt.Src = src.AsSlice()
	if err := netlink.RouteChange(rt); err != nil {
		return fmt.Errorf("set src %s on route %s dev %s: %w", src, rt.Dst, v.Iface, err)
	}
	return nil
}

// ipv6PrefixRouteMetric is the metric of the kernel's IPv6 prefix routes
// (IP6_RT_PRIO_ADDRCONF).
const ipv6PrefixRouteMetric = 256

func prefixIPNet(p netip.Prefix) *net.IPNet {
	return &net.IPNet{IP: p.Addr().AsSlice(), Mask: net.CIDRMask(p.Bits(), p.Addr().BitLen())}
}
