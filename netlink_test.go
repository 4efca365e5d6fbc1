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
	v := nlTestBox(t)
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
	if got := nlRouteSrc(t, v); got != "192.0.2.100" {
		t.Fatalf("after start: src %s, want the VIP", got)
	}
	if err := r.Check(ctx); err != nil {
		t.Fatalf("check after start: %v", err)
	}
	for i := 0; i < 2; i++ {
		if err := r.Stop(ctx); err != nil {
			t.Fatalf("stop #%d: %v", i+1, err)
		}
	}
	if err := a.Deconfigure(v); err != nil {
		t.Fatal(err)
	}
	if got := nlRouteSrc(t, v); got != "192.0.2.11" {
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
