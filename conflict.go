package main

import (
	"context"
	"net"
)

// conflictReport is the answer of one conflict check: another MAC that
// claims a VIP, or none (mac nil).
type conflictReport struct {
	vip vipSpec
	mac net.HardwareAddr
	// cause and reason, from a holder check: why the takeover may go past
	// this holder (causeHolderTimeout, causeHolderDead).
	cause, reason string
}

// checkConflicts asks the wire, off the agent's goroutine, whether another
// box also holds one of this box's VIPs: after a partition heals both may
// have it, and a hung box's kernel keeps answering ARP for it. One check at
// a time; the answer comes back on out.
func (a *agent) checkConflicts(out chan<- conflictReport) {
	if a.m.role != roleActive || a.conflictCheckRunning {
		return
	}
	a.conflictCheckRunning = true
	vips := a.cfg.VIPs
	a.spawn(func() {
		for _, v := range vips {
			if mac, err := a.findHolder(v); err == nil && mac != nil {
				out <- conflictReport{vip: v, mac: mac}
				return
			}
		}
		out <- conflictReport{}
	})
}

// onConflict applies the split-brain rule (machine.conflict): yield, or
// keep the address and announce it again so the network follows this box.
func (a *agent) onConflict(ctx context.Context, c conflictReport) {
	if c.mac == nil {
		if d := a.m.noConflict(); d.Announce {
			a.log.Warn("conflict over", "decision", d.Reason)
			a.announce.Start(a.cfg.VIPs)
			a.repoint(ctx) // and records the state
		}
		return
	}
	if a.m.role != roleActive {
		return
	}
	a.ev.Conflict(c.vip.Addr, c.mac)
	d := a.m.conflict(a.now())
	if d.Verdict == verdictRelease {
		a.log.Warn("another box holds the VIP too", "vip", c.vip.Addr, "holder", c.mac.String(), "decision", d.Reason)
		a.release(ctx, d.Cause, d.Reason)
		return
	}
	if !d.Announce {
		a.log.Warn("another box holds the VIP too; checking once more", "vip", c.vip.Addr, "holder", c.mac.String(), "decision", d.Reason)
		a.record(journalEntry{Op: opActive}) // the open conflict outlives a restart
		return
	}
	a.log.Warn("another box claims the VIP; announcing it again", "vip", c.vip.Addr, "holder", c.mac.String(), "decision", d.Reason)
	a.announce.Start(a.cfg.VIPs)
	if d.Repoint {
		a.repoint(ctx)
	}
}

// repoint starts again the resources that follow the holder (the
// foneBRIDGE), after a split brain that this box won, or when the other
// box's heartbeat says it pointed them at itself since (heardPeer). A failure is logged:
// the box keeps serving SIP either way.
func (a *agent) repoint(ctx context.Context) {
	for _, r := range a.resources[a.network:] {
		if f, ok := r.(holderFollower); !ok || !f.followsHolder() {
			continue
		}
		a.log.Warn("pointing the resource at this box again", "resource", r.Name())
		if _, err := a.phase(ctx, "start", r); err != nil {
			a.log.Error("cannot point the resource at this box again", "resource", r.Name(), "err", err)
			continue
		}
		a.notePointed(r)
	}
	a.record(journalEntry{Op: opActive})
}

// notePointed tells the machine when a resource that follows the holder
// (the foneBRIDGE) was pointed at this box: the heartbeats carry it.
func (a *agent) notePointed(r resource) {
	if f, ok := r.(holderFollower); ok && f.followsHolder() {
		a.m.pointedHere(a.now())
	}
}

// onChange handles what netlink reported: a link that went or came back, or
// an address or route of a VIP interface that changed.
func (a *agent) onChange(ctx context.Context, c boxChange, conflicts chan<- conflictReport) {
	switch c.kind {
	case changeLinkDown, changeLinkUp:
		up := a.linksUp()
		wasLost := a.m.linkLost
		a.m.setLink(up, a.now())
		a.log.Info("link changed", "iface", c.iface, "all_vip_links_up", up, "role", a.m.role)
		if up && wasLost {
			// Back from being cut off: ask at once whether someone else
			// took over meanwhile, before this box answers for the VIP.
			a.checkConflicts(conflicts)
		}
	case changeAddrOrRoute:
		a.repairDrift()
	}
}

// repairDrift puts back what someone else changed: on an active box a
// removed VIP or a route whose src is no longer the VIP (networkd, DHCP, an
// admin), announcing the VIPs again afterwards; on any box a connected
// route of a VIP subnet that is gone.
func (a *agent) repairDrift() {
	if a.m.role != roleActive {
		for _, v := range newRoutesResource(a.cfg.VIPs).subnets {
			if rt, err := connectedRoute(v); err == nil && rt == nil {
				a.log.Warn("connected route of a VIP subnet is gone; re-creating it", "subnet", v.Own.Masked(), "iface", v.Iface)
				if err := setConnectedSrc(v, v.Own.Addr()); err != nil {
					a.log.Error("cannot re-create the connected route", "subnet", v.Own.Masked(), "err", err)
				}
			}
		}
		return
	}
	t := a.now()
	repaired := false
	// The network resources know how to check and redo themselves: a VIP
	// that is gone, a connected route whose src is no longer the VIP.
	for _, r := range a.resources[:a.network] {
		problem := r.Check(context.Background())
		if problem == nil {
			continue
		}
		a.log.Warn("changed by someone else on the active box; putting it back", "resource", r.Name(), "problem", problem)
		if err := r.Start(context.Background()); err != nil {
			a.log.Error("cannot put it back", "resource", r.Name(), "err", err)
			continue
		}
		repaired = true
	}
	if repaired {
		a.announce.Start(a.cfg.VIPs)
		a.log.Info("repaired the active box's network state", "duration", ms(a.now().Sub(t)))
	}
}
