package main

import (
	"context"
	"errors"
	"fmt"
	"math"
	"net"
	"net/netip"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"
)

// addressConfigurer is the small interface the decision logic uses for
// addresses (after vip-manager's ipmanager): query, configure, deconfigure.
// The state machine never touches netlink itself.
type addressConfigurer interface {
	Query(v vipSpec) (bool, error)
	Configure(v vipSpec) error
	Deconfigure(v vipSpec) error
}

// netlinkAddresses adds and removes VIPs with netlink.
type netlinkAddresses struct{}

func vipLink(v vipSpec) (netlink.Link, error) {
	l, err := netlink.LinkByName(v.Iface)
	if err != nil {
		return nil, fmt.Errorf("interface %s of VIP %s: %w", v.Iface, v.Addr, err)
	}
	return l, nil
}

// vipAddr is the VIP as netlink adds and deletes it. An IPv6 VIP gets two
// things an IPv4 one does not need:
//   - IFA_F_NODAD: without it the address is tentative for about a second
//     (duplicate address detection) and unusable: nothing can bind to it,
//     it cannot be a route's src, and the box does not answer for it.
//     flip's own holder check has asked the wire already.
//   - preferred lifetime 0 (valid for ever): a "deprecated" address, which
//     the kernel's source address selection (RFC 6724 rule 3) never picks
//     on its own; it is still reachable and usable when asked for. So, like
//     an IPv4 secondary address, the VIP becomes a source only where the
//     routes resource makes it the connected route's src, and connections
//     the box opens elsewhere keep its own address and survive a failover.
func vipAddr(v vipSpec) *netlink.Addr {
	a := &netlink.Addr{IPNet: &net.IPNet{
		IP:   v.Addr.AsSlice(),
		Mask: net.CIDRMask(v.Prefix.Bits(), v.Addr.BitLen()),
	}}
	if v.Addr.Is6() {
		a.Flags = unix.IFA_F_NODAD
		a.PreferedLft = 0
		a.ValidLft = int(lifetimeForever)
	}
	return a
}

// lifetimeForever is the kernel's infinite address lifetime (0xffffffff). A
// variable, so that the conversion to int compiles on 32-bit platforms too
// (where netlink then sends no lifetimes and the VIP stays preferred).
var lifetimeForever uint32 = math.MaxUint32

// addrFamily is the netlink family of an address.
func addrFamily(a netip.Addr) int {
	if a.Is6() {
		return netlink.FAMILY_V6
	}
	return netlink.FAMILY_V4
}

// Query reports whether the VIP is on its interface.
func (netlinkAddresses) Query(v vipSpec) (bool, error) {
	l, err := vipLink(v)
	if err != nil {
		return false, err
	}
	addrs, err := netlink.AddrList(l, addrFamily(v.Addr))
	if err != nil {
		return false, fmt.Errorf("list addresses of %s: %w", v.Iface, err)
	}
	for _, a := range addrs {
		if ip, ok := netip.AddrFromSlice(a.IP); ok && ip.Unmap() == v.Addr {
			return true, nil
		}
	}
	return false, nil
}

// Configure adds the VIP. EEXIST means it is already there: done.
func (netlinkAddresses) Configure(v vipSpec) error {
	l, err := vipLink(v)
	if err != nil {
		return err
	}
	if err := netlink.AddrAdd(l, vipAddr(v)); err != nil && !errors.Is(err, unix.EEXIST) {
		return fmt.Errorf("add VIP %s to %s: %w", v.Prefix, v.Iface, err)
	}
	return nil
}

// Deconfigure removes the VIP. EADDRNOTAVAIL means it is already gone: done.
func (netlinkAddresses) Deconfigure(v vipSpec) error {
	l, err := vipLink(v)
	if err != nil {
		return err
	}
	if err := netlink.AddrDel(l, vipAddr(v)); err != nil && !errors.Is(err, unix.EADDRNOTAVAIL) {
		return fmt.Errorf("delete VIP %s from %s: %w", v.Prefix, v.Iface, err)
	}
	return nil
}

// vipResource is a VIP as a resource of the takeover.
type vipResource struct {
	vip   vipSpec
	addrs addressConfigurer
}

func (r *vipResource) Name() string                { return r.vip.Prefix.String() }
func (r *vipResource) Start(context.Context) error { return r.addrs.Configure(r.vip) }
func (r *vipResource) Stop(context.Context) error  { return r.addrs.Deconfigure(r.vip) }
func (r *vipResource) Check(ctx context.Context) error {
	ok, err := r.addrs.Query(r.vip)
	if err != nil {
		return err
	}
	if !ok {
		return fmt.Errorf("VIP %s is not on %s", r.vip.Addr, r.vip.Iface)
	}
	return nil
}
