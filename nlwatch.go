package main

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"time"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"
)

// boxChange is something netlink reported about the box that the agent may
// have to act on: an address or route of a VIP changed (someone else —
// networkd, DHCP, an admin — may have undone the takeover), or a VIP
// interface lost or regained its link.
type boxChange struct {
	kind  changeKind
	iface string
}

type changeKind int

const (
	changeAddrOrRoute changeKind = iota
	changeLinkDown
	changeLinkUp
)

// nlResubscribeDelay spaces resubscriptions: the kernel closes a netlink
// subscription whose socket buffer overflowed, and flip must not go blind.
// Failing again and again, the delay doubles up to nlResubscribeMax, and
// the log says so at most once per rateLogEvery, with a count.
const (
	nlResubscribeDelay = 100 * time.Millisecond
	nlResubscribeMax   = 5 * time.Second
	// nlHealthy: a subscription that lasted this long resets the delay.
	nlHealthy = time.Minute
)

// vipIfaces maps the VIP interfaces' names to their current indexes. An
// interface deleted and created again (ifdown/ifup of a VLAN or a bond)
// comes back with a new index: the map follows the name, or its events
// (its link coming back up) would be dropped and the box would count its
// link down for ever.
type vipIfaces struct {
	names   map[string]bool
	byIndex map[int]string
}

func newVIPIfaces(vips []vipSpec) *vipIfaces {
	v := &vipIfaces{names: map[string]bool{}, byIndex: map[int]string{}}
	for _, s := range vips {
		v.names[s.Iface] = true
		if l, err := netlink.LinkByName(s.Iface); err == nil {
			v.byIndex[l.Attrs().Index] = s.Iface
		}
	}
	return v
}

// name is the VIP interface with this index, if it is one.
func (v *vipIfaces) name(index int) (string, bool) {
	n, ok := v.byIndex[index]
	return n, ok
}

// link follows a link update: a VIP interface (by name) created or
// renamed gets its index; one deleted loses it. It reports the interface's
// name if the update concerns a VIP interface.
func (v *vipIfaces) link(index int, name string, deleted bool) (string, bool) {
	if old, ok := v.byIndex[index]; ok && (deleted || old != name) {
		delete(v.byIndex, index)
		if deleted {
			return old, true
		}
	}
	if !v.names[name] || deleted {
		return "", false
	}
	for i, n := range v.byIndex {
		if n == name && i != index {
			delete(v.byIndex, i) // the old interface of that name is gone
		}
	}
	v.byIndex[index] = name
	return name, true
}

// watchBox subscribes to address, route and link changes of the VIP
// interfaces and sends what concerns them to out, until ctx ends. A closed
// subscription is renewed, so a burst of changes cannot blind the agent.
func watchBox(ctx context.Context, vips []vipSpec, out chan<- boxChange, log *slog.Logger) {
	ifaces := newVIPIfaces(vips)
	send := func(c boxChange) {
		select {
		case out <- c:
		case <-ctx.Done():
		}
	}
	resubscribe(ctx, func() error { return watchOnce(ctx, ifaces, send, log) },
		func() { send(boxChange{kind: changeAddrOrRoute}) }, realClock{}, log)
}

// resubscribe runs watch again each time it returns, until ctx ends:
// after a pause that doubles while it keeps failing quickly (up to
// nlResubscribeMax) and resets once it lasted nlHealthy, with a log line
// at most every rateLogEvery that counts the failures. missed runs after
// each pause: something may have changed while nobody listened.
func resubscribe(ctx context.Context, watch func() error, missed func(), clk clock, log *slog.Logger) {
	var closed rateLog
	var lastErr error
	delay := nlResubscribeDelay
	for attempt := 0; ctx.Err() == nil; attempt++ {
		if attempt > 0 {
			if n, ok := closed.note(clk.Now()); ok {
				log.Warn("netlink subscription closed or failed; subscribing again", "times", n, "next_delay", delay, "last_err", fmt.Sprint(lastErr))
			}
			if !clk.Sleep(ctx, delay) {
				return
			}
			missed()
		}
		start := clk.Now()
		lastErr = watch()
		if clk.Now().Sub(start) >= nlHealthy {
			delay = nlResubscribeDelay
		} else {
			delay = min(2*delay, nlResubscribeMax)
		}
	}
}

// clock is time as resubscribe needs it; realClock is the wall clock.
type clock interface {
	Now() time.Time
	Sleep(ctx context.Context, d time.Duration) bool // false: ctx ended
}

type realClock struct{}

func (realClock) Now() time.Time { return time.Now() }
func (realClock) Sleep(ctx context.Context, d time.Duration) bool {
	select {
	case <-time.After(d):
		return true
	case <-ctx.Done():
		return false
	}
}

// watchOnce runs one set of subscriptions until one of them closes.
func watchOnce(ctx context.Context, ifaces *vipIfaces, send func(boxChange), log *slog.Logger) error {
	done := make(chan struct{})
	defer close(done)
	addrs := make(chan netlink.AddrUpdate, 64)
	routes := make(chan netlink.RouteUpdate, 64)
	links := make(chan netlink.LinkUpdate, 64)
	onErr := func(err error) { log.Debug("netlink subscription error", "err", err) }
	if err := netlink.AddrSubscribeWithOptions(addrs, done, netlink.AddrSubscribeOptions{ErrorCallback: onErr}); err != nil {
		return fmt.Errorf("cannot watch addresses: %w", err)
	}
	if err := netlink.RouteSubscribeWithOptions(routes, done, netlink.RouteSubscribeOptions{ErrorCallback: onErr}); err != nil {
		return fmt.Errorf("cannot watch routes: %w", err)
	}
	if err := netlink.LinkSubscribeWithOptions(links, done, netlink.LinkSubscribeOptions{ErrorCallback: onErr}); err != nil {
		return fmt.Errorf("cannot watch links: %w", err)
	}
	for {
		select {
		case <-ctx.Done():
			return nil
		case u, ok := <-addrs:
			if !ok {
				return nil
			}
			if name, mine := ifaces.name(u.LinkIndex); mine {
				send(boxChange{kind: changeAddrOrRoute, iface: name})
			}
		case u, ok := <-routes:
			if !ok {
				return nil
			}
			if name, mine := ifaces.name(u.LinkIndex); mine && u.Table == unix.RT_TABLE_MAIN {
				send(boxChange{kind: changeAddrOrRoute, iface: name})
			}
		case u, ok := <-links:
			if !ok {
				return nil
			}
			deleted := u.Header.Type == unix.RTM_DELLINK
			name, mine := ifaces.link(int(u.Index), u.Attrs().Name, deleted)
			if !mine {
				continue
			}
			if !deleted && linkCarrying(u.Attrs()) {
				send(boxChange{kind: changeLinkUp, iface: name})
			} else {
				send(boxChange{kind: changeLinkDown, iface: name})
			}
		}
	}
}

// linkCarrying reports an interface that is up and has a carrier.
func linkCarrying(a *netlink.LinkAttrs) bool {
	return a.Flags&net.FlagUp != 0 && a.RawFlags&unix.IFF_LOWER_UP != 0
}

// linksCarrying reports whether every VIP interface is up with a carrier
// now; the agent asks at start, the watcher reports changes after.
func linksCarrying(vips []vipSpec) bool {
	for _, v := range vips {
		l, err := netlink.LinkByName(v.Iface)
		if err != nil || !linkCarrying(l.Attrs()) {
			return false
		}
	}
	return true
}
