package main

import (
	"context"
	"fmt"
	"strings"
	"time"
)

// holderCheck looks on the wire for another box answering ARP for a VIP.
// It reports wait when the takeover must wait, and the holder when one is
// there but FLIP_HOLDER_WAIT is over (the takeover then needs the fence).
// Probe answers that arrived during the check are taken in first: the
// service may be back.
func (a *agent) holderCheck(results <-chan probeResult) (wait bool, holder conflictReport) {
	if a.broken == mutantNoHolderCheck {
		return false, holder
	}
	for _, v := range a.cfg.VIPs {
		mac, err := a.findHolder(v)
		if err != nil {
			a.holderErrStreak++
			if n, ok := a.holderErrors.note(a.now()); ok {
				a.log.Error("cannot check who holds the VIP; not taking over", "vip", v.Addr, "err", err, "times", n)
			}
			return true, holder
		}
		a.holderErrStreak = 0
		if mac == nil {
			continue
		}
		first := a.m.holderSince.IsZero()
		if first {
			a.ev.Conflict(v.Addr, mac)
		}
		if gone, why := a.m.holderGone(a.now()); gone {
			a.log.Warn("the holder's flip is gone; taking over", "vip", v.Addr, "holder", mac.String(), "why", why)
			holder = conflictReport{vip: v, mac: mac, cause: causeHolderDead, reason: why}
			break
		}
		if a.m.holderSeen(a.now()) {
			a.log.Warn("holder did not release within FLIP_HOLDER_WAIT; taking over", "vip", v.Addr, "holder", mac.String(), "wait", a.cfg.HolderWait)
			holder = conflictReport{vip: v, mac: mac, cause: causeHolderTimeout, reason: "the holder did not release within FLIP_HOLDER_WAIT"}
			break
		}
		if first {
			a.log.Info("another box still holds the VIP; waiting for it to release", "vip", v.Addr, "holder", mac.String(), "wait_at_most", a.cfg.HolderWait)
		}
		return true, holder
	}
	a.collectProbes(a.now())
	for {
		select {
		case r := <-results:
			a.observe(r)
		default:
			return a.m.decide(a.now()).Verdict != verdictTakeover, holder
		}
	}
}

// takeover starts every resource left to right, announcing the VIPs as soon
// as the network resources are in place. A failed start stops what was
// started, right to left, and the box stays passive.
func (a *agent) takeover(ctx context.Context, cause, reason string) {
	a.takeoverFrom(ctx, cause, reason, journalEntry{})
}

// takeoverFrom is takeover, skipping the non-network resources that an
// interrupted takeover (journal entry prior) had already started: fonulator
// is not run twice. VIPs and routes are always redone; that is idempotent.
func (a *agent) takeoverFrom(ctx context.Context, cause, reason string, prior journalEntry) {
	start := a.now()
	a.beatBusy(doingTakeover)
	a.m.setRole(roleActive, start, cause)
	a.log.Info("taking over", "reason", reason)
	entry := journalEntry{Op: opTakeover, Cause: cause}
	a.record(entry)
	var phases, degraded []string
	for i, r := range a.resources {
		if ctx.Err() != nil && a.broken != mutantTermCutsPhases {
			// flip is stopping (SIGTERM): the box is left as it is, the
			// journal saying how far the takeover got; the next start asks
			// the wire and finishes it or abandons it (resumeTakeover).
			a.log.Warn("flip is stopping during a takeover; the box is left as it is, the next start finishes or abandons it",
				"done", entry.Done, "total", ms(a.now().Sub(start)))
			return
		}
		if i >= a.network && prior.done(r.Name()) {
			a.log.Info("phase already done before the restart", "action", "start", "resource", r.Name())
			entry.Done = append(entry.Done, r.Name())
			continue
		}
		d, err := a.phase(ctx, "start", r)
		phases = append(phases, fmt.Sprintf("%s=%s", r.Name(), ms(d)))
		if err != nil && a.isOptional(i) {
			a.log.Error("optional resource failed to start; the takeover goes on without it and retries it", "resource", r.Name(), "err", err, "next_try_in", optionalRetryFirst)
			a.optionalFailed(i)
			degraded = append(degraded, r.Name()+": "+err.Error())
			continue
		}
		if err != nil {
			a.log.Error("takeover failed; stopping what was started", "resource", r.Name(), "err", err)
			a.stopAll(ctx, i)
			a.m.setRole(rolePassive, a.now(), causeTakeoverFailed)
			a.record(journalEntry{Op: opPassive}) // with the hold-down
			a.beatDone()
			a.log.Error("takeover aborted", "failed_resource", r.Name(), "reason", err, "total", ms(a.now().Sub(start)))
			a.logHoldDown()
			a.ev.Transition(rolePassive, rolePassive, causeTakeoverFailed, fmt.Sprintf("takeover aborted: %s failed: %v", r.Name(), err), false, a.now().Sub(start))
			return
		}
		entry.Done = append(entry.Done, r.Name())
		a.notePointed(r)
		if i < a.network {
			a.crash.after(r.Name())
		}
		if i == a.network-1 {
			t := a.now()
			a.announce.Start(a.cfg.VIPs)
			a.ev.Phase("announce", "gratuitous ARP / unsolicited NA", a.now().Sub(t), nil)
			phases = append(phases, "announce="+ms(a.now().Sub(t)))
			a.log.Info("phase done", "action", "announce", "resource", "gratuitous ARP / unsolicited NA", "duration", ms(a.now().Sub(t)), "since_decision", ms(a.now().Sub(start)))
			a.crash.after("announce")
		}
		if i >= a.network-1 {
			// Journal writes stay off the path from decision to announcement.
			a.record(entry)
		}
		if i >= a.network {
			a.crash.after(r.Name())
		}
	}
	a.record(journalEntry{Op: opActive, Cause: cause})
	a.beatDone()
	if len(degraded) > 0 {
		reason += "; optional resource failed (retried): " + strings.Join(degraded, "; ")
	}
	a.log.Info("takeover complete", "total", ms(a.now().Sub(start)), "phases", strings.Join(phases, " "), "reason", reason)
	a.ev.Transition(rolePassive, roleActive, cause, reason, len(degraded) == 0, a.now().Sub(start))
}

// release stops every resource right to left: services first, then routes
// (src restored while the VIP still exists, so the connected route
// survives), then the VIPs.
func (a *agent) release(ctx context.Context, cause, reason string) {
	a.releaseWith(ctx, cause, reason, nil)
}

// releaseWith is release; when beforeNetwork is set, it runs after the
// services have stopped and before the network resources (VIPs, routes)
// do: the switchover's hand-over waits there (handover.go).
func (a *agent) releaseWith(ctx context.Context, cause, reason string, beforeNetwork func()) {
	start := a.now()
	a.stopSync()
	a.beatBusy(doingRelease)
	a.log.Warn("releasing", "reason", reason)
	a.record(journalEntry{Op: opRelease, Cause: cause})
	a.announce.Stop()
	var failed []string
	if beforeNetwork != nil {
		failed = a.stopRange(ctx, len(a.resources)-1, a.network)
		beforeNetwork()
		failed = append(failed, a.stopAll(ctx, a.network-1)...)
	} else {
		failed = a.stopAll(ctx, len(a.resources)-1)
	}
	a.m.setRole(rolePassive, a.now(), cause)
	a.record(journalEntry{Op: opPassive}) // with the hold-down
	a.beatDone()
	if len(failed) > 0 {
		// The box is passive all the same (a half-released box is worse),
		// but the operator must hear of what may still run or be held.
		reason += "; stop failed: " + strings.Join(failed, "; ")
		a.log.Error("release complete with failed stops: check the box", "total", ms(a.now().Sub(start)), "reason", reason)
	} else {
		a.log.Info("release complete", "total", ms(a.now().Sub(start)), "reason", reason)
	}
	a.logHoldDown()
	a.ev.Transition(roleActive, rolePassive, cause, reason, len(failed) == 0, a.now().Sub(start))
}

// stopAll stops resources[last] down to resources[0]. A failing stop is
// logged and the rest still stop: a half-released box is worse.
func (a *agent) stopAll(ctx context.Context, last int) []string {
	if last >= a.network-1 {
		a.announce.Stop()
	}
	failed := a.stopRange(ctx, last, 0)
	a.record(journalEntry{Op: opPassive})
	return failed
}

// stopRange stops resources[last] down to resources[first].
// It returns "RESOURCE: error" for each stop that failed.
func (a *agent) stopRange(ctx context.Context, last, first int) []string {
	var failed []string
	for i := last; i >= first; i-- {
		if _, err := a.phase(ctx, "stop", a.resources[i]); err != nil {
			a.log.Error("stop failed; continuing the release", "resource", a.resources[i].Name(), "err", err)
			failed = append(failed, a.resources[i].Name()+": "+err.Error())
		}
		a.crash.after("stop:" + a.resources[i].Name())
	}
	return failed
}

// record writes the journal; a failure is logged and the work goes on: a
// missing journal only costs the restart-after-crash shortcut.
func (a *agent) record(e journalEntry) {
	if a.journal == nil {
		return
	}
	if a.m != nil {
		a.m.memory(a.now(), &e)
	}
	if err := a.journal.save(e); err != nil {
		a.log.Error("cannot write the state file", "err", err)
	}
}

// phase runs one start or stop with its timeout and logs its duration.
func (a *agent) phase(ctx context.Context, action string, r resource) (time.Duration, error) {
	if a.broken != mutantTermCutsPhases {
		// SIGTERM never cuts a step short: a start killed half-way
		// (systemctl carries on, fonulator leaves the spans down) and a
		// stop that fails at once are worse than waiting for the step's
		// own timeout. takeoverFrom stops between steps instead.
		ctx = context.WithoutCancel(ctx)
	}
	ctx, cancel := context.WithTimeout(ctx, a.resourceTimeout(r))
	defer cancel()
	if a.busy != nil {
		defer a.busy(a.resourceTimeout(r))()
	}
	t := a.now()
	if a.tracker != nil {
		a.tracker.stepBegins(action, r.Name(), t)
	}
	var err error
	if action == "start" {
		err = r.Start(ctx)
	} else {
		err = r.Stop(ctx)
	}
	d := a.now().Sub(t)
	a.m.alive(a.now()) // a long phase is the agent at work, not a stall
	a.ev.Phase(action, r.Name(), d, err)
	if err == nil {
		a.log.Info("phase done", "action", action, "resource", r.Name(), "duration", ms(d))
	}
	return d, err
}

// ms formats a duration in milliseconds with two decimals.
func ms(d time.Duration) string {
	return fmt.Sprintf("%.2fms", float64(d)/float64(time.Millisecond))
}

// fenceRetryDelay spaces fence attempts after a failed one: the fence is a
// power switch or a management API, not something to hammer.
const fenceRetryDelay = 5 * time.Second

// fenced runs FLIP_FENCE_CMD before a takeover past a holder that did not
// release, where two boxes could otherwise hold the address. Without a
// fence command it allows the takeover. A failed fence stops the takeover;
// it is tried again after fenceRetryDelay.
func (a *agent) fenced(ctx context.Context, c conflictReport) bool {
	if a.fence == nil {
		return true
	}
	if a.now().Before(a.nextFence) {
		return false
	}
	t := a.now()
	err := a.runFence(ctx, c)
	if err != nil {
		a.nextFence = a.now().Add(fenceRetryDelay)
		a.log.Error("fence failed; not taking over", "vip", c.vip.Addr, "holder", c.mac.String(), "err", err, "retry_in", fenceRetryDelay)
		return false
	}
	a.log.Warn("fence done; taking over from the hung holder", "vip", c.vip.Addr, "holder", c.mac.String(), "duration", ms(a.now().Sub(t)))
	return true
}

// runFence runs FLIP_FENCE_CMD against the holder c: the one place that
// does, for the automatic takeover and `flip takeover --force` alike. The
// systemd watchdog is raised for the fence's timeout (a slow IPMI fence
// must not get flip killed), and its result and duration are recorded.
func (a *agent) runFence(ctx context.Context, c conflictReport) error {
	if a.busy != nil {
		defer a.busy(a.cfg.FenceTimeout)()
	}
	t := a.now()
	if a.tracker != nil {
		a.tracker.stepBegins("fence", c.mac.String(), t)
		defer a.tracker.stepEnds()
	}
	err := a.fence(ctx, c)
	a.ev.Fenced(err, a.now().Sub(t))
	return err
}

// logHoldDown says when a box that failed on its own will try again.
func (a *agent) logHoldDown() {
	if until := a.m.holdDownEnd; a.now().Before(until) {
		a.log.Warn("holding down after this box's own failure: no takeover until then", "until", until.Format(time.RFC3339), "hold_down", a.cfg.HoldDown)
	}
}
