package main

import (
	"context"
	"net"
	"net/netip"
	"os"
	"runtime"
	"testing"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"
)

// nlTestBox moves the calling test's OS thread into a new, empty network
// namespace with one veth interface d0 holding 192.0.2.11/24, and returns
// the VIP 192.0.2.100/24 on it. Needs root; skips otherwise.
func nlTestBox(t *testing.T) vipSpec {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root: creates a network namespace (run ./test.sh as root)")
	}
	runtime.LockOSThread()
	orig, err := netns.Get()
	if err != nil {
		runtime.UnlockOSThread()
		t.Fatalf("current netns: %v", err)
	}
	ns, err := netns.New()
	if err != nil {
		orig.Close()
		runtime.UnlockOSThread()
		t.Skipf("cannot create a network namespace here: %v", err)
	}
	t.Cleanup(func() {
		if err := netns.Set(orig); err != nil {
			t.Errorf("restore netns: %v", err)
			return // leave the thread locked: it is in the wrong namespace
		}
		ns.Close()
		orig.Close()
		runtime.UnlockOSThread()
	})
	// A veth pair, not a dummy: this kernel may have no dummy module.
	d := &netlink.Veth{LinkAttrs: netlink.LinkAttrs{Name: "d0"}, PeerName: "d1"}
	if err := netlink.LinkAdd(d); err != nil {
		t.Fatalf("add veth: %v", err)
	}
	for _, name := range []string{"d0", "d1"} {
		l, err := netlink.LinkByName(name)
		if err == nil {
			err = netlink.LinkSetUp(l)
		}
		if err != nil {
			t.Fatalf("set %s up: %v", name, err)
		}
	}
	own, _ := netlink.ParseAddr("192.0.2.11/24")
	if err := netlink.AddrAdd(d, own); err != nil {
		t.Fatalf("add own address: %v", err)
	}
	return vipSpec{
		Addr:   netip.MustParseAddr("192.0.2.100"),
		Prefix: netip.MustParsePrefix("192.0.2.100/24"),
		Iface:  "d0",
		Own:    netip.MustParsePrefix("192.0.2.11/24"),
	}
}

func nlRouteSrc(t *testing.T, v vipSpec) string {
	t.Helper()
	rt, err := connectedRoute(v)
	if err != nil {
		t.Fatalf("connectedRoute: %v", err)
	}
	if rt == nil {
		return "none"
	}
	return net.IP(rt.Src).String()
}

// TestNetlinkAddressesIdempotent: adding a present VIP and deleting an
// absent one are "already done", not errors.
func TestNetlinkAddressesIdempotent(t *testing.T) {
	v := nlTestBox(t)
	var a netlinkAddresses
	steps := []struct {
		name string
		do   func(vipSpec) error
		want bool
	}{
		{"configure", a.Configure, true},
		{"configure again", a.Configure, true},
		{"deconfigure", a.Deconfigure, false},
		{"deconfigure again", a.Deconfigure, false},
	}
	for _, s := range steps {
		if err := s.do(v); err != nil {
			t.Fatalf("%s: %v", s.name, err)
		}
		got, err := a.Query(v)
		if err != nil {
			t.Fatalf("%s: query: %v", s.name, err)
		}
		if got != s.want {
			t.Fatalf("after %s: VIP present = %v, want %v", s.name, got, s.want)
		}
	}
	bad := v
	bad.Iface = "nope0"
	if err := a.Configure(bad); err == nil {
		t.Fatal("configure on a missing interface: no error")
	}
}

// TestRoutesSrcRewriteAndRelease: the takeover sets src = VIP, the release
// puts the own address back before the VIP goes, and the route survives.
func TestRoutesSrcRewriteAndRelease(t *testing.T) {
	nlRoutesRoundTrip(t, nlTestBox(t), nil)
}

// nlRoutesRoundTrip takes v's subnet through a takeover and a release:
// routes refuse a src that is not on the box yet, start and stop are
// idempotent, src is the VIP while active and the own address after, and
// the route survives. during runs while active, for family-specific checks.
func nlRoutesRoundTrip(t *testing.T, v vipSpec, during func()) {
	t.Helper()
	var a netlinkAddresses
	r := newRoutesResource([]vipSpec{v})
	ctx := context.Background()
	if err := r.Start(ctx); err == nil {
		t.Fatal("routes start without the VIP on the box: want an error (src must be a local address)")
	}
	if err := a.Configure(v); err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 2; i++ {
		if err := r.Start(ctx); err != nil {
			t.Fatalf("start #%d: %v", i+1, err)
		}
	}
	if got := nlRouteSrc(t, v); got != v.Addr.String() {
		t.Fatalf("after start: src %s, want the VIP", got)
	}
	if err := r.Check(ctx); err != nil {
		t.Fatalf("check after start: %v", err)
	}
	if during != nil {
		during()
	}
	for i := 0; i < 2; i++ {
		if err := r.Stop(ctx); err != nil {
			t.Fatalf("stop #%d: %v", i+1, err)
		}
	}
	if err := a.Deconfigure(v); err != nil {
		t.Fatal(err)
	}
	if got := nlRouteSrc(t, v); got != v.Own.Addr().String() {
		t.Fatalf("after release: connected route src %s, want the own address", got)
	}
	if err := r.Check(ctx); err == nil {
		t.Fatal("check after release: want an error (src is not the VIP)")
	}
}

// TestRepairConnectedRoutes: deleting a VIP that is the route's src takes
// the connected route with it (the kernel's doing); the repair at start
// brings it back with the right src for the role.
func TestRepairConnectedRoutes(t *testing.T) {
	v := nlTestBox(t)
	var a netlinkAddresses
	if err := a.Configure(v); err != nil {
		t.Fatal(err)
	}
	if err := newRoutesResource([]vipSpec{v}).Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	if err := a.Deconfigure(v); err != nil {
		t.Fatal(err)
	}
	if got := nlRouteSrc(t, v); got != "none" {
		t.Fatalf("precondition: the kernel kept the route (src %s) after its src VIP was deleted", got)
	}
	if err := repairConnectedRoutes([]vipSpec{v}, false); err != nil {
		t.Fatalf("repair (passive): %v", err)
	}
	if got := nlRouteSrc(t, v); got != "192.0.2.11" {
		t.Fatalf("repaired route src %s, want the own address", got)
	}
	if err := a.Configure(v); err != nil {
		t.Fatal(err)
	}
	if err := repairConnectedRoutes([]vipSpec{v}, true); err != nil {
		t.Fatalf("repair (active): %v", err)
	}
	if got := nlRouteSrc(t, v); got != "192.0.2.100" {
		t.Fatalf("repaired route src %s on an active box, want the VIP", got)
	}
}

// nlTestBox6 is nlTestBox with 2001:db8::11/64 on d0 too (added without
// duplicate address detection, so it is usable at once, as a box's address
// is long after boot), and returns the VIP 2001:db8::100/64 on d0.
func nlTestBox6(t *testing.T) vipSpec {
	t.Helper()
	v4 := nlTestBox(t)
	l, err := netlink.LinkByName(v4.Iface)
	if err != nil {
		t.Fatal(err)
	}
	own, _ := netlink.ParseAddr("2001:db8::11/64")
	own.Flags = unix.IFA_F_NODAD
	if err := netlink.AddrAdd(l, own); err != nil {
		t.Fatalf("add own IPv6 address: %v", err)
	}
	return vipSpec{
		Addr:   netip.MustParseAddr("2001:db8::100"),
		Prefix: netip.MustParsePrefix("2001:db8::100/64"),
		Iface:  v4.Iface,
		Own:    netip.MustParsePrefix("2001:db8::11/64"),
	}
}

// nlAddrFlags returns the flags of address a on iface, or -1 if absent.
func nlAddrFlags(t *testing.T, iface string, a netip.Addr) int {
	t.Helper()
	l, err := netlink.LinkByName(iface)
	if err != nil {
		t.Fatal(err)
	}
	addrs, err := netlink.AddrList(l, netlink.FAMILY_ALL)
	if err != nil {
		t.Fatal(err)
	}
	for _, x := range addrs {
		if ip, _ := netip.AddrFromSlice(x.IP); ip.Unmap() == a {
			return x.Flags
		}
	}
	return -1
}

// TestNetlinkAddressesIdempotentV6: an IPv6 VIP is added without DAD (not
// tentative: usable at once) and deprecated (never picked as a source on
// its own), found by Query, and EEXIST/EADDRNOTAVAIL mean "already done".
func TestNetlinkAddressesIdempotentV6(t *testing.T) {
	v := nlTestBox6(t)
	var a netlinkAddresses
	for i, step := range []struct {
		name string
		do   func(vipSpec) error
		want bool
	}{
		{"configure", a.Configure, true},
		{"configure again", a.Configure, true},
		{"deconfigure", a.Deconfigure, false},
		{"deconfigure again", a.Deconfigure, false},
		{"configure after release", a.Configure, true},
	} {
		if err := step.do(v); err != nil {
			t.Fatalf("%s: %v", step.name, err)
		}
		got, err := a.Query(v)
		if err != nil {
			t.Fatalf("%s: query: %v", step.name, err)
		}
		if got != step.want {
			t.Fatalf("after %s: VIP present = %v, want %v", step.name, got, step.want)
		}
		if i == 0 {
			f := nlAddrFlags(t, v.Iface, v.Addr)
			if f&unix.IFA_F_TENTATIVE != 0 || f&unix.IFA_F_NODAD == 0 || f&unix.IFA_F_DEPRECATED == 0 || f&unix.IFA_F_PERMANENT == 0 {
				t.Fatalf("VIP flags %#x: want nodad, deprecated, permanent, not tentative", f)
			}
		}
	}
	// The IPv4 VIP of the same box is another address: not found.
	v4 := vipSpec{Addr: netip.MustParseAddr("192.0.2.100"), Prefix: netip.MustParsePrefix("192.0.2.100/24"), Iface: v.Iface}
	if got, err := a.Query(v4); err != nil || got {
		t.Fatalf("IPv4 VIP found = %v (%v) with only the IPv6 one added", got, err)
	}
}

// TestRoutesSrcRewriteAndReleaseV6: the IPv6 connected route (scope
// universe, metric 256) gets src = VIP and the own address back, and the
// IPv4 route of the same interface is left alone.
func TestRoutesSrcRewriteAndReleaseV6(t *testing.T) {
	v := nlTestBox6(t)
	rt, err := connectedRoute(v)
	if err != nil || rt == nil {
		t.Fatalf("connected route of %s: %v, %v", v.Own.Masked(), rt, err)
	}
	if rt.Priority != ipv6PrefixRouteMetric || rt.Scope != netlink.SCOPE_UNIVERSE || rt.Src != nil {
		t.Fatalf("kernel's route: metric %d scope %d src %v, want 256, universe, none", rt.Priority, rt.Scope, rt.Src)
	}
	nlRoutesRoundTrip(t, v, func() {
		if rt, _ := connectedRoute(v); rt.Priority != ipv6PrefixRouteMetric || rt.Protocol != unix.RTPROT_KERNEL {
			t.Fatalf("after start: metric %d protocol %d, want the kernel's route changed in place", rt.Priority, rt.Protocol)
		}
		v4 := vipSpec{Addr: netip.MustParseAddr("192.0.2.100"), Prefix: netip.MustParsePrefix("192.0.2.100/24"), Iface: v.Iface, Own: netip.MustParsePrefix("192.0.2.11/24")}
		if got := nlRouteSrc(t, v4); got != "192.0.2.11" {
			t.Fatalf("IPv4 connected route src %s, want it untouched", got)
		}
	})
}

// TestIPv6PrefsrcDeleted: unlike IPv4, deleting an IPv6 address that is a
// route's src does not delete the route; the kernel clears the src. Check
// reports it on an active box, and the repair sets the role's src again.
func TestIPv6PrefsrcDeleted(t *testing.T) {
	v := nlTestBox6(t)
	var a netlinkAddresses
	r := newRoutesResource([]vipSpec{v})
	if err := a.Configure(v); err != nil {
		t.Fatal(err)
	}
	if err := r.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	if err := a.Deconfigure(v); err != nil {
		t.Fatal(err)
	}
	if got := nlRouteSrc(t, v); got != "<nil>" {
		t.Fatalf("kernel behaviour changed: after deleting the src VIP the IPv6 route has src %s, want the route kept without src", got)
	}
	if err := a.Configure(v); err != nil {
		t.Fatal(err)
	}
	if err := r.Check(context.Background()); err == nil {
		t.Fatal("check: want an error for the route that lost its src")
	}
	if err := repairConnectedRoutes([]vipSpec{v}, true); err != nil {
		t.Fatalf("repair (active): %v", err)
	}
	if got := nlRouteSrc(t, v); got != "2001:db8::100" {
		t.Fatalf("repaired src %s on an active box, want the VIP", got)
	}
	if err := repairConnectedRoutes([]vipSpec{v}, false); err != nil {
		t.Fatalf("repair (passive): %v", err)
	}
	if got := nlRouteSrc(t, v); got != "2001:db8::11" {
		t.Fatalf("repaired src %s on a passive box, want the own address", got)
	}

	// A connected route deleted by someone else is re-created as the
	// kernel makes it: scope universe, metric 256.
	rt, _ := connectedRoute(v)
	if err := netlink.RouteDel(rt); err != nil {
		t.Fatal(err)
	}
	if got := nlRouteSrc(t, v); got != "none" {
		t.Fatalf("route still there after delete (src %s)", got)
	}
	if err := repairConnectedRoutes([]vipSpec{v}, false); err != nil {
		t.Fatalf("re-create: %v", err)
	}
	rt, _ = connectedRoute(v)
	if rt == nil || rt.Priority != ipv6PrefixRouteMetric || net.IP(rt.Src).String() != "2001:db8::11" {
		t.Fatalf("re-created route %+v", rt)
	}
}

// TestSystemInterfacesIPv6: the box's interfaces as config validation sees
// them include IPv6 global addresses and leave out link-local ones.
func TestSystemInterfacesIPv6(t *testing.T) {
	v := nlTestBox6(t)
	addrs, err := systemInterfaces{}.InterfaceAddrs()
	if err != nil {
		t.Fatal(err)
	}
	got := addrs[v.Iface]
	has := func(p string) bool {
		for _, x := range got {
			if x == netip.MustParsePrefix(p) {
				return true
			}
		}
		return false
	}
	if !has("192.0.2.11/24") || !has("2001:db8::11/64") {
		t.Fatalf("%s: %v, want the IPv4 and the IPv6 address", v.Iface, got)
	}
	for _, p := range got {
		if p.Addr().IsLinkLocalUnicast() {
			t.Fatalf("%s: %v lists a link-local address", v.Iface, got)
		}
	}
	if _, err := parseVIP("2001:db8::100/64", addrs); err != nil {
		t.Fatalf("parseVIP on the real interfaces: %v", err)
	}
}
