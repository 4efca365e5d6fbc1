// Command flip keeps a two-box Asterisk PBX reachable when a box or its
// Asterisk dies: the standby takes the virtual IPs, announces them, makes SIP
// leave from the shared address, repoints the foneBRIDGE and starts Asterisk.
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"os/exec"
	"os/signal"
	"runtime"
	"strings"
	"syscall"
	"time"
)

const usageText = `usage: flip [run]            run the failover agent (configured by FLIP_* variables)
       flip check [--json]     validate the configuration and the box, print the takeover plan; changes nothing
       flip watch [TARGET]     measure a SIP outage from a client (flip watch -h)
       flip status             the running agent's state (over its control socket)
       flip switchover         hand the service to the other box, measure the outage
       flip release            on the active box: give everything up
       flip takeover [--force] on a passive box: take over now
       flip hold [--for 1h]    maintenance: nothing moves by itself (both boxes)
       flip unhold             end the hold
       flip version            print the version and the git commit it was built from

Exit status: 0 ok, 1 runtime failure, 2 bad usage or configuration.
See README.md for every FLIP_* variable.
`

func main() {
	os.Exit(realMain(os.Args[1:], os.Stdout, os.Stderr))
}

func realMain(args []string, stdout, stderr io.Writer) int {
	cmd := "run"
	if len(args) > 0 {
		cmd, args = args[0], args[1:]
	}
	switch cmd {
	case "run":
		if len(args) > 0 {
			fmt.Fprintf(stderr, "flip run: takes no arguments (got %q); configure it with FLIP_* variables\n", args)
			return 2
		}
		return runAgent(stderr)
	case "watch":
		return runWatch(args, stdout, stderr)
	case "check":
		return runCheck(args, stdout, stderr)
	case "status", "release", "takeover", "switchover", "hold", "unhold":
		return runControl(cmd, args, stdout, stderr)
	case "version":
		return runVersion(args, stdout, stderr)
	case "-h", "-help", "--help", "help":
		fmt.Fprint(stdout, usageText)
		return 0
	default:
		fmt.Fprintf(stderr, "flip: unknown command %q\n%s", cmd, usageText)
		return 2
	}
}

// runAgent validates everything first, so bad configuration exits with
// status 2 before any address, route or service on the box is touched.
func runAgent(stderr io.Writer) int {
	cfg, err := loadConfig(systemInterfaces{})
	if err != nil {
		fmt.Fprintf(stderr, "flip: configuration error: %v\n", err)
		return 2
	}
	log := newLogger(cfg.LogFormat, cfg.Name, stderr)
	oneThread()
	// Before flip runs any command: it takes NOTIFY_SOCKET out of the
	// environment that hooks and services inherit.
	sd := newSystemdEvents(log)
	addrs := netlinkAddresses{}
	resources, network := buildResources(cfg, log, addrs)
	if err := checkCommands(cfg); err != nil {
		fmt.Fprintf(stderr, "flip: configuration error: %v\n", err)
		return 2
	}
	for _, r := range resources {
		if fb, ok := r.(*foneBridge); ok {
			if err := fb.Validate(); err != nil {
				fmt.Fprintf(stderr, "flip: configuration error: %v\n", err)
				return 2
			}
		}
	}
	var probe func(ctx context.Context) probeResult
	var probes tickProber
	var probeErrors <-chan struct{}
	if cfg.ProbeTransport == "udp" {
		// The light path: no goroutine, no blocking read, refusals seen
		// through IP_RECVERR (probe_tick.go).
		tp, err := newTickProbe(cfg.Source, cfg.ProbeTarget, cfg.DeadAfter)
		if err != nil {
			log.Error("cannot start the SIP probe", "err", err)
			return 1
		}
		defer tp.Close()
		probes = tp
		if w, err := tp.watchErrors(); err != nil {
			log.Warn("refusals are seen at the next probe tick only", "err", err)
		} else {
			defer w.Close()
			probeErrors = w.C
		}
	} else {
		// sipgo's client; it sees a refused connection as a reset.
		p, err := newProberTransport(cfg.Source, cfg.ProbeTarget, cfg.DeadAfter, cfg.ProbeTransport)
		if err != nil {
			log.Error("cannot start the SIP probe", "err", err)
			return 1
		}
		defer p.Close()
		probe = p.probe
	}

	tracker := newStateTracker(cfg)
	notifier := newNotifier(cfg.NotifyCmd, cfg.NotifyTimeout, log)
	defer notifier.Close()                   // after the agent's loop has returned
	ev := multiEvents{tracker, notifier, sd} // sd last: READY=1 once the tracker knows the state
	ag := &agent{
		cfg:         cfg,
		log:         log,
		probe:       probe,
		probes:      probes,
		probeErrors: probeErrors,
		addrs:       addrs,
		resources:   resources,
		network:     network,
		optional:    cfg.optionalFlags(),
		announce: &announcer{
			log:      log,
			count:    cfg.GARPCount,
			interval: cfg.GARPInterval,
			send:     func(_ string, v vipSpec) error { return announceVIP(v) },
		},
		findHolder: func(v vipSpec) (net.HardwareAddr, error) {
			return findVIPHolder(v, cfg.ARPCheckWindow)
		},
		watchAskers: func(v vipSpec) (vipAskers, error) { return watchVIPAskers(v) },
		ev:          ev,
		tracker:     tracker,
		ctl:         make(chan ctlCall),
		resourceTimeout: func(r resource) time.Duration {
			if fb, ok := r.(*foneBridge); ok {
				// fonulator has its own per-run timeout and retries.
				return time.Duration(fb.Retries+1)*(fb.Timeout+fb.RetryDelay) + cfg.ResourceTO
			}
			return cfg.ResourceTO
		},
	}
	ag.busy = sd.busy
	notifier.revision = ag.revision.Load
	ag.journal = &journal{path: cfg.StateFile}
	ag.crash = crashPoint(cfg.DebugCrashAfter)
	ag.watchBox = func(ctx context.Context, out chan<- boxChange) { watchBox(ctx, cfg.VIPs, out, log) }
	if len(cfg.Peers) > 0 {
		p, err := newPeerSet(cfg.Source, cfg.Peers, cfg.PeerPort, cfg.PeerKey, cfg.Name, log)
		if err != nil {
			log.Error("cannot open the peer channel", "err", err)
			return 1
		}
		fingerprint := configFingerprint(cfg.PeerKey) // what flip check on the other box compares
		for _, path := range p.paths {
			path.config = fingerprint
		}
		ag.peer = p
		defer p.Close()
		tracker.peerPaths = func(now time.Time) []peerPathStatus { return p.status(now, cfg.DeadAfter) }
		tracker.peerRefused = p.refusedTotal
	}
	if cfg.pool() {
		arb, err := newEtcdArbiter(cfg, log)
		if err != nil {
			log.Error("cannot set up the etcd client", "err", err)
			return 1
		}
		ag.arb = arb
	}
	if len(cfg.Tiebreakers) > 0 {
		tb, err := newTiebreaker(cfg.Source, cfg.Tiebreakers)
		if err != nil {
			log.Error("cannot start the tiebreaker", "err", err)
			return 1
		}
		defer tb.Close()
		ag.tiebreak = tb
	}
	if cfg.FenceCmd != "" {
		fields := strings.Fields(cfg.FenceCmd)
		ag.fence = func(ctx context.Context, c conflictReport) error {
			argv := append(append([]string{}, fields...), c.vip.Addr.String(), c.mac.String())
			var env []string
			if rev := ag.revision.Load(); rev > 0 {
				env = append(env, revisionVar(rev))
			}
			out, err := runCommandEnv(ctx, cfg.FenceTimeout, argv, env)
			if err == nil && out != "" {
				log.Info("fence output", "output", out)
			}
			return err
		}
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()
	status := func() ctlResponse { return ag.withStatus(ctlResponse{OK: true}) }
	if err := serveControl(ctx, cfg.ControlSocket, ag.ctl, status, log); err != nil {
		log.Error("cannot open the control socket", "err", err)
		return 1
	}
	if cfg.MetricsAddr != "" {
		m := newMetricsEvents(version) // the linker's version (flip version), else the module's
		if ag.peer != nil {
			m.watchPeer(ag.peer, cfg.DeadAfter)
		}
		addr, err := serveMetrics(ctx, cfg.MetricsAddr, m, tracker, log)
		if err != nil {
			log.Error("cannot serve metrics", "err", err)
			return 1
		}
		// Before sd, which stays last: READY=1 once everyone knows the state.
		ag.ev = multiEvents{tracker, notifier, m, sd}
		log.Info("serving /metrics and /status", "addr", addr.String())
	}
	if err := ag.run(ctx); err != nil && !errors.Is(err, context.Canceled) {
		log.Error("agent stopped", "err", err)
		return 1
	}
	return 0
}

// checkCommands makes sure the fence and notify commands, and the service
// command when a service is listed, exist: a missing systemctl must show at start, not at
// the first takeover.
func checkCommands(cfg *config) error {
	for _, c := range []struct{ name, cmd string }{{"FLIP_FENCE_CMD", cfg.FenceCmd}, {"FLIP_NOTIFY_CMD", cfg.NotifyCmd}} {
		if c.cmd == "" {
			continue
		}
		prog := strings.Fields(c.cmd)[0]
		if _, err := exec.LookPath(prog); err != nil {
			return badVar(c.name, "%q not found (%v); install the command or fix its path", prog, err)
		}
	}
	if !cfg.has(kindService) {
		return nil
	}
	prog := strings.Fields(cfg.ServiceCmd)[0]
	if _, err := exec.LookPath(prog); err != nil {
		return badVar("FLIP_SERVICE_CMD", "%q not found (%v); install it or point FLIP_SERVICE_CMD at the command that starts services", prog, err)
	}
	return nil
}

// newLogger logs with log/slog in text or JSON, tagged with the box name so
// the two boxes' logs can be merged.
func newLogger(format, box string, w io.Writer) *slog.Logger {
	var h slog.Handler
	if format == "json" {
		h = slog.NewJSONHandler(w, nil)
	} else {
		h = slog.NewTextHandler(w, nil)
	}
	return slog.New(h).With("box", box)
}

// oneThread runs the agent's goroutines on one OS thread at a time unless
// the operator set GOMAXPROCS. Everything that decides runs on one loop
// anyway; with more than one P, each hand-over between goroutines (a tick,
// a netlink message) wakes an idle thread that spins and sleeps again. On
// the benchmark VM that was a third of flip's idle CPU (BENCHMARKS.md).
// Blocking system calls (a resource command, a socket read) still get
// threads of their own.
func oneThread() {
	if os.Getenv("GOMAXPROCS") == "" {
		runtime.GOMAXPROCS(1)
	}
}
