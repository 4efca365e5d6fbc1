package main

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"strings"
	"time"
)

// agent runs the state machine against the box: it sends the probes, feeds
// their results to the machine, and carries out takeovers and releases.
type agent struct {
	cfg       *config
	log       *slog.Logger
	m         *machine
	probe     func(ctx context.Context) probeResult
	addrs     addressConfigurer
	resources []resource
	// network is how many leading resources are VIPs and routes: the
	// announcement goes out right after them, so the first answers of the
	// services already leave from a VIP the network knows.
	network    int
	announce   *announcer
	findHolder func(v vipSpec) (net.HardwareAddr, error)
	// resourceTimeout bounds one start or stop of a resource.
	resourceTimeout func(r resource) time.Duration
	// ev hears about everything the agent does (metrics, hooks, systemd).
	ev events
}

// buildResources turns the parsed FLIP_RESOURCES into resources.
func buildResources(cfg *config, log *slog.Logger, addrs addressConfigurer) ([]resource, int) {
	var out []resource
	network := 0
	for _, s := range cfg.Resources {
		switch s.Kind {
		case kindVIP:
			out = append(out, &vipResource{vip: s.VIP, addrs: addrs})
			network++
		case kindRoutes:
			out = append(out, newRoutesResource(cfg.VIPs))
			network++
		case kindFonebridge:
			out = append(out, newFoneBridgeFromConfig(cfg, log))
		case kindService:
			out = append(out, newServiceResource(cfg.ServiceCmd, s.Name, cfg.ResourceTO))
		case kindExec:
			out = append(out, newExecResource(s.Path, cfg.ResourceTO))
		}
	}
	return out, network
}

// newFoneBridgeFromConfig is the fonebridge resource as configured.
func newFoneBridgeFromConfig(cfg *config, log *slog.Logger) *foneBridge {
	return &foneBridge{
		ConfPath:   cfg.FonebridgeConf,
		Interface:  cfg.FonebridgeInterface,
		Fonulator:  cfg.Fonulator,
		Timeout:    cfg.FonulatorTimeout,
		Retries:    cfg.FonulatorRetries,
		RetryDelay: fonulatorRetryDelay,
		Log:        log,
	}
}

// fonulatorRetryDelay spaces fonulator retries: long enough for a device
// that was mid-reconfiguration to settle, short next to its 10 s timeout.
const fonulatorRetryDelay = time.Second

// resume finds out at start what the box holds, so a restarted agent takes
// up where it left off: with its VIPs it is active (nothing is restarted,
// Asterisk is untouched); without them passive. Either way the connected
// routes are repaired first, since a VIP deleted while flip was down takes
// its connected route with it.
func (a *agent) resume(now time.Time) error {
	held := 0
	for _, v := range a.cfg.VIPs {
		ok, err := a.addrs.Query(v)
		if err != nil {
			return err
		}
		if ok {
			held++
		}
	}
	active := held > 0
	if active && held < len(a.cfg.VIPs) {
		// Half-held: flip died during a takeover or someone removed one VIP.
		// The services were left running, so complete the network part.
		a.log.Warn("some VIPs missing at start; re-adding them", "held", held, "of", len(a.cfg.VIPs))
		for _, v := range a.cfg.VIPs {
			if err := a.addrs.Configure(v); err != nil {
				return err
			}
		}
	}
	if a.cfg.has(kindRoutes) {
		if err := repairConnectedRoutes(a.cfg.VIPs, active); err != nil {
			return fmt.Errorf("repair routes at start: %w", err)
		}
	}
	r := rolePassive
	if active {
		r = roleActive
		a.announce.Start(a.cfg.VIPs)
	}
	a.m = newMachine(a.timing(), now, r)
	a.ev.Started(r, held)
	a.log.Info("started", "role", r, "vips_held", held, "primary", a.cfg.Primary,
		"probe_target", a.cfg.ProbeTarget, "source", a.cfg.Source)
	return nil
}

func (a *agent) timing() timing {
	return timing{
		Primary:      a.cfg.Primary,
		DeadAfter:    a.cfg.DeadAfter,
		InitDead:     a.cfg.InitDead,
		StartTimeout: a.cfg.StartTimeout,
		HolderWait:   a.cfg.HolderWait,
	}
}

// run is the agent's loop. It returns when ctx ends and leaves the box as
// it is: stopping flip never drops a call by itself.
func (a *agent) run(ctx context.Context) error {
	if err := a.resume(time.Now()); err != nil {
		return err
	}
	results := make(chan probeResult, 256)
	send := func() {
		go func() {
			r := a.probe(ctx)
			select {
			case results <- r:
			case <-ctx.Done():
			}
		}()
	}
	ticker := time.NewTicker(a.cfg.ProbeInterval)
	defer ticker.Stop()
	timer := time.NewTimer(a.cfg.DeadAfter)
	defer timer.Stop()
	send()
	for {
		select {
		case <-ctx.Done():
			a.announce.Stop()
			a.ev.Stopping()
			a.log.Info("stopping; box left as it is", "role", a.m.role)
			return nil
		case <-ticker.C:
			send()
			continue
		case r := <-results:
			a.m.observe(r)
			a.ev.Probed(r)
		case <-timer.C:
		}
		next := a.step(ctx, results)
		timer.Reset(time.Until(next))
	}
}

// step asks the machine what to do now and does it. It returns when to ask
// again if nothing else happens first.
func (a *agent) step(ctx context.Context, results <-chan probeResult) time.Time {
	d := a.m.decide(time.Now())
	switch d.Verdict {
	case verdictRelease:
		a.release(ctx, d.Cause, d.Reason)
	case verdictTakeover:
		wait, forced := a.holderCheck(results)
		if wait {
			return time.Now().Add(a.cfg.HolderRecheck)
		}
		if forced {
			d.Cause, d.Reason = causeHolderTimeout, d.Reason+"; the holder did not release within FLIP_HOLDER_WAIT"
		}
		a.takeover(ctx, d.Cause, d.Reason)
	default:
		return d.Next
	}
	return a.m.decide(time.Now()).Next
}

// holderCheck looks on the wire for another box answering ARP for a VIP.
// It reports wait when the takeover must wait, and forced when a holder is
// there but FLIP_HOLDER_WAIT is over. Probe answers that arrived during the
// check are taken in first: the service may be back.
func (a *agent) holderCheck(results <-chan probeResult) (wait, forced bool) {
	for _, v := range a.cfg.VIPs {
		mac, err := a.findHolder(v)
		if err != nil {
			a.log.Error("cannot check who holds the VIP; not taking over", "vip", v.Addr, "err", err)
			return true, false
		}
		if mac == nil {
			continue
		}
		first := a.m.holderSince.IsZero()
		if first {
			a.ev.Conflict(v.Addr, mac)
		}
		if a.m.holderSeen(time.Now()) {
			a.log.Warn("holder did not release within FLIP_HOLDER_WAIT; taking over", "vip", v.Addr, "holder", mac, "wait", a.cfg.HolderWait)
			forced = true
			break
		}
		if first {
			a.log.Info("another box still holds the VIP; waiting for it to release", "vip", v.Addr, "holder", mac, "wait_at_most", a.cfg.HolderWait)
		}
		return true, false
	}
	for {
		select {
		case r := <-results:
			a.m.observe(r)
			a.ev.Probed(r)
		default:
			return a.m.decide(time.Now()).Verdict != verdictTakeover, forced
		}
	}
}

// takeover starts every resource left to right, announcing the VIPs as soon
// as the network resources are in place. A failed start stops what was
// started, right to left, and the box stays passive.
func (a *agent) takeover(ctx context.Context, cause, reason string) {
	start := time.Now()
	a.m.setRole(roleActive, start)
	a.log.Info("taking over", "reason", reason)
	var phases []string
	for i, r := range a.resources {
		d, err := a.phase(ctx, "start", r)
		phases = append(phases, fmt.Sprintf("%s=%s", r.Name(), ms(d)))
		if err != nil {
			a.log.Error("takeover failed; stopping what was started", "resource", r.Name(), "err", err)
			a.stopAll(ctx, i)
			a.m.setRole(rolePassive, time.Now())
			a.log.Error("takeover aborted", "failed_resource", r.Name(), "reason", err, "total", ms(time.Since(start)))
			a.ev.Transition(rolePassive, rolePassive, causeTakeoverFailed, fmt.Sprintf("takeover aborted: %s failed: %v", r.Name(), err), false, time.Since(start))
			return
		}
		if i == a.network-1 {
			t := time.Now()
			a.announce.Start(a.cfg.VIPs)
			a.ev.Phase("announce", "gratuitous ARP", time.Since(t), nil)
			phases = append(phases, "announce="+ms(time.Since(t)))
			a.log.Info("phase done", "action", "announce", "resource", "gratuitous ARP", "duration", ms(time.Since(t)), "since_decision", ms(time.Since(start)))
		}
	}
	a.log.Info("takeover complete", "total", ms(time.Since(start)), "phases", strings.Join(phases, " "), "reason", reason)
	a.ev.Transition(rolePassive, roleActive, cause, reason, true, time.Since(start))
}

// release stops every resource right to left: services first, then routes
// (src restored while the VIP still exists, so the connected route
// survives), then the VIPs.
func (a *agent) release(ctx context.Context, cause, reason string) {
	start := time.Now()
	a.log.Warn("releasing", "reason", reason)
	a.announce.Stop()
	a.stopAll(ctx, len(a.resources)-1)
	a.m.setRole(rolePassive, time.Now())
	a.log.Info("release complete", "total", ms(time.Since(start)), "reason", reason)
	a.ev.Transition(roleActive, rolePassive, cause, reason, true, time.Since(start))
}

// stopAll stops resources[last] down to resources[0]. A failing stop is
// logged and the rest still stop: a half-released box is worse.
func (a *agent) stopAll(ctx context.Context, last int) {
	if last >= a.network-1 {
		a.announce.Stop()
	}
	for i := last; i >= 0; i-- {
		if _, err := a.phase(ctx, "stop", a.resources[i]); err != nil {
			a.log.Error("stop failed; continuing the release", "resource", a.resources[i].Name(), "err", err)
		}
	}
}

// phase runs one start or stop with its timeout and logs its duration.
func (a *agent) phase(ctx context.Context, action string, r resource) (time.Duration, error) {
	ctx, cancel := context.WithTimeout(ctx, a.resourceTimeout(r))
	defer cancel()
	t := time.Now()
	var err error
	if action == "start" {
		err = r.Start(ctx)
	} else {
		err = r.Stop(ctx)
	}
	d := time.Since(t)
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
