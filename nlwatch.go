package main

import (
	"context"
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
const nlResubscribeDelay = 100 * time.Millisecond

// watchBox subscribes to address, route and link changes of the VIP
// interfaces and sends what concerns them to out, until ctx ends. A closed
// subscription is renewed, so a burst of changes cannot blind the agent.
func watchBox(ctx context.Context, vips []vipSpec, out chan<- boxChange, log *slog.Logger) {
	ifaces := map[int]string{}
	for _, v := range vips {
		if l, err := netlink.LinkByName(v.Iface); err == nil {
			ifaces[l.Attrs().Index] = v.Iface
		}
	}
	send := func(c boxChange) {
		select {
		case out <- c:
		case <-ctx.Done():
		}
	}
	for attempt := 0; ctx.Err() == nil; attempt++ {
		if attempt > 0 {
			log.Warn("netlink subscription closed; subscribing again", "attempt", attempt)
			select {
			case <-time.After(nlResubscribeDelay):
			case <-ctx.Done():
				return
			}
			// Something may have changed while nobody listened.
			send(boxChange{kind: changeAddrOrRoute})
		}
		watchOnce(ctx, ifaces, send, log)
	}
}

// watchOnce runs one set of subscriptions until one of them closes.
func watchOnce(ctx context.Context, ifaces map[int]string, send func(boxChange), log *slog.Logger) {
	done := make(chan struct{})
	defer close(done)
	addrs := make(chan netlink.AddrUpdate, 64)
	routes := make(chan netlink.RouteUpdate, 64)
	links := make(chan netlink.LinkUpdate, 64)
	onErr := func(err error) { log.Debug("netlink subscription error", "err", err) }
	if err := netlink.AddrSubscribeWithOptions(addrs, done, netlink.AddrSubscribeOptions{ErrorCallback: onErr}); err != nil {
		log.Error("cannot watch addresses", "err", err)
		return
	}
	if err := netlink.RouteSubscribeWithOptions(routes, done, netlink.RouteSubscribeOptions{ErrorCallback: onErr}); err != nil {
		log.Error("cannot watch routes", "err", err)
		return
	}
	if err := netlink.LinkSubscribeWithOptions(links, done, netlink.LinkSubscribeOptions{ErrorCallback: onErr}); err != nil {
		log.Error("cannot watch links", "err", err)
		return
	}
	for {
		select {
		case <-ctx.Done():
			return
		case u, ok := <-addrs:
			if !ok {
				return
			}
			if _, mine := ifaces[u.LinkIndex]; mine {
				send(boxChange{kind: changeAddrOrRoute, iface: ifaces[u.LinkIndex]})
			}
		case u, ok := <-routes:
			if !ok {
				return
			}
			if _, mine := ifaces[u.LinkIndex]; mine && u.Table == unix.RT_TABLE_MAIN {
				send(boxChange{kind: changeAddrOrRoute, iface: ifaces[u.LinkIndex]})
			}
		case u, ok := <-links:
			if !ok {
				return
			}
			name, mine := ifaces[int(u.Index)]
			if !mine {
				continue
			}
			if linkCarrying(u.Attrs()) {
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
