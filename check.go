package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/netip"
	"os"
	"strings"
)

// flip check: validate the environment and the box without changing
// anything, and print the takeover and release plan step by step.
//
// Every look at the box goes through a checker field, so the checks run in
// tests without root against fakes; the report and the plan are built by
// pure functions from what the checks found and from the parsed config.

const checkUsage = `usage: flip check [--json] [--env-file PATH]

Checks the FLIP_* configuration and this box without changing anything:
interfaces and VIPs, capabilities, commands and scripts, the foneBRIDGE
config, one SIP OPTIONS probe of the service address. Then prints what a
takeover and a release would do, step by step.

  --json     one JSON object {ok, checks, plan} instead of the text report
  --env-file read the FLIP_* variables from PATH (e.g. /etc/default/flip),
             as systemd's EnvironmentFile= does, and ignore the environment's;
             never source that file in a shell: unquoted values with blanks
             would run as commands
  -h, --help this help

Exit status: 0 every check passed (warnings and skips allowed), 1 some check
failed, 2 bad usage or configuration.
`

// checkStatus is the verdict of one check.
type checkStatus string

const (
	checkOK   checkStatus = "ok"
	checkFail checkStatus = "fail"
	checkWarn checkStatus = "warn" // worth a look, but a running agent copes
	checkSkip checkStatus = "skip" // not applicable or not checked
)

// checkRow is one line of the report.
type checkRow struct {
	Name   string      `json:"name"`
	Status checkStatus `json:"status"`
	Detail string      `json:"detail"`
	Fix    string      `json:"fix,omitempty"`
}

// planStep is one thing a takeover or release does, in order.
type planStep struct {
	Step     int    `json:"step"`
	Resource string `json:"resource"` // the FLIP_RESOURCES entry, or "announce"
	Action   string `json:"action"`
}

// checkPlan is what a takeover and a release would do.
type checkPlan struct {
	Takeover []planStep `json:"takeover"`
	Release  []planStep `json:"release"`
}

// checkReport is the whole outcome; it is also the --json output.
type checkReport struct {
	OK     bool       `json:"ok"`
	Checks []checkRow `json:"checks"`
	Plan   checkPlan  `json:"plan"`
}

// checkLink is what the checks need to know about one interface.
type checkLink struct {
	Up      bool // administratively up (IFF_UP)
	Running bool // carrier (IFF_RUNNING)
	MAC     net.HardwareAddr
}

// checker runs the checks. Every field that looks at the box is a function,
// so tests replace them; newSystemChecker fills in the real, read-only ones.
type checker struct {
	cfg *config
	// addrs are the IPv4 prefixes of every interface, as loadConfig saw them.
	addrs map[string][]netip.Prefix
	// link looks up one interface.
	link func(name string) (checkLink, error)
	// procStatus returns the text of /proc/self/status.
	procStatus func() (string, error)
	// holds reports whether a VIP is on its interface (netlink, read-only).
	holds func(v vipSpec) (bool, error)
	// routeSrc returns the src of the connected route of v's own subnet on
	// its interface; found is false when there is no such route.
	routeSrc func(v vipSpec) (src netip.Addr, found bool, err error)
	// commands checks that the commands of cfg exist (main.go's checkCommands).
	commands func(cfg *config) error
	// macLookup finds an interface's MAC for the fonebridge; nil = real.
	macLookup func(iface string) (net.HardwareAddr, error)
	// probe sends one SIP OPTIONS to the probe target from the source.
	probe func(ctx context.Context) (probeResult, error)
	// tiebreaker checks FLIP_TIEBREAKER.
	tiebreaker func(cfg *config) checkRow
	// peer asks the other box's agent on every FLIP_PEER path.
	peer func(cfg *config) []checkRow
	// pool reaches etcd in pool mode (check_pool.go); nil: not checked.
	pool func(ctx context.Context, cfg *config) []checkRow
}

// newSystemChecker looks at the real box, read-only.
func newSystemChecker(cfg *config, addrs map[string][]netip.Prefix) *checker {
	return &checker{
		cfg:   cfg,
		addrs: addrs,
		link: func(name string) (checkLink, error) {
			ifi, err := net.InterfaceByName(name)
			if err != nil {
				return checkLink{}, err
			}
			return checkLink{
				Up:      ifi.Flags&net.FlagUp != 0,
				Running: ifi.Flags&net.FlagRunning != 0,
				MAC:     ifi.HardwareAddr,
			}, nil
		},
		procStatus: func() (string, error) {
			b, err := os.ReadFile("/proc/self/status")
			return string(b), err
		},
		holds: netlinkAddresses{}.Query,
		routeSrc: func(v vipSpec) (netip.Addr, bool, error) {
			rt, err := connectedRoute(v)
			if err != nil || rt == nil {
				return netip.Addr{}, false, err
			}
			src, _ := netip.AddrFromSlice(rt.Src)
			return src.Unmap(), true, nil
		},
		commands: checkCommands,
		probe: func(ctx context.Context) (probeResult, error) {
			p, err := newProber(cfg.Source, cfg.ProbeTarget, cfg.DeadAfter)
			if err != nil {
				return probeResult{}, err
			}
			defer p.Close()
			return p.probe(ctx), nil
		},
		tiebreaker: checkTiebreaker,
		peer:       checkPeerPaths,
		pool:       checkPoolEtcd,
	}
}

// runCheck is `flip check`.
func runCheck(args []string, stdout, stderr io.Writer) int {
	return checkMain(args, stdout, stderr, systemInterfaces{}, newSystemChecker)
}

// checkMain is runCheck with the box's interfaces and the checker to use
// given, for tests.
func checkMain(args []string, stdout, stderr io.Writer, host hostInterfaces,
	newChecker func(*config, map[string][]netip.Prefix) *checker) int {
	fs := flag.NewFlagSet("check", flag.ContinueOnError)
	fs.SetOutput(io.Discard) // errors and usage are printed below
	asJSON := fs.Bool("json", false, "print one JSON object")
	envFile := fs.String("env-file", "", "read the FLIP_* variables from this file (as systemd's EnvironmentFile= does) instead of the environment")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			fmt.Fprint(stdout, checkUsage)
			return 0
		}
		fmt.Fprintf(stderr, "flip check: %v\n%s", err, checkUsage)
		return 2
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "flip check: takes no arguments (got %q); it checks the FLIP_* configuration\n%s", fs.Args(), checkUsage)
		return 2
	}

	if *envFile != "" {
		if err := useEnvFile(*envFile); err != nil {
			fmt.Fprintf(stderr, "flip check: %v\n", err)
			return 2
		}
	}
	cfg, err := loadConfig(host)
	if err != nil {
		fmt.Fprintf(stderr, "flip: configuration error: %v\n", err)
		if *asJSON {
			writeCheckJSON(stdout, checkReport{
				Checks: []checkRow{{Name: "configuration", Status: checkFail, Detail: err.Error(),
					Fix: "fix the FLIP_* variable the error names; see README.md's configuration table"}},
				Plan: checkPlan{Takeover: []planStep{}, Release: []planStep{}},
			})
		}
		return 2
	}
	addrs, err := host.InterfaceAddrs()
	if err != nil { // loadConfig just listed them; this is very unlikely
		fmt.Fprintf(stderr, "flip check: %v\n", err)
		return 1
	}
	rep := newChecker(cfg, addrs).run(context.Background())
	if *asJSON {
		writeCheckJSON(stdout, rep)
	} else {
		writeCheckText(stdout, cfg, rep)
	}
	if !rep.OK {
		return 1
	}
	return 0
}

// run runs every check, in the order of the report, and builds the plan.
func (c *checker) run(ctx context.Context) checkReport {
	var rows []checkRow
	rows = append(rows, checkConfigRow(c.cfg))
	rows = append(rows, c.checkCapabilities())
	vipRows, held := c.checkVIPs()
	rows = append(rows, vipRows...)
	rows = append(rows, checkRoleRow(c.cfg, held))
	if c.cfg.has(kindRoutes) {
		rows = append(rows, c.checkRoutes(held)...)
	}
	rows = append(rows, c.checkCommandRows()...)
	rows = append(rows, c.checkExecs()...)
	fbRow, server := c.checkFonebridge(ctx)
	if c.cfg.has(kindFonebridge) {
		rows = append(rows, fbRow)
	}
	holdsAny := false
	for _, h := range held {
		holdsAny = holdsAny || h
	}
	rows = append(rows, c.checkProbe(ctx, holdsAny))
	if c.peer != nil {
		rows = append(rows, c.peer(c.cfg)...)
	}
	if c.tiebreaker != nil {
		rows = append(rows, c.tiebreaker(c.cfg))
	}
	if c.pool != nil {
		rows = append(rows, c.pool(ctx, c.cfg)...)
	}
	rep := checkReport{OK: true, Checks: rows, Plan: buildCheckPlan(c.cfg, server)}
	for _, r := range rows {
		if r.Status == checkFail {
			rep.OK = false
		}
	}
	return rep
}

// checkConfigRow summarises the parsed configuration: it loaded, or
// checkMain would have stopped with status 2.
func checkConfigRow(cfg *config) checkRow {
	var res []string
	for _, r := range cfg.Resources {
		switch r.Kind {
		case kindVIP:
			res = append(res, fmt.Sprintf("VIP %s on %s (own address %s)", r.VIP.Prefix, r.VIP.Iface, r.VIP.Own))
		case kindRoutes:
			res = append(res, "routes (connected route src = VIP while active)")
		case kindFonebridge:
			res = append(res, fmt.Sprintf("fonebridge (%s, MAC of %s)", cfg.FonebridgeConf, cfg.FonebridgeInterface))
		case kindService:
			res = append(res, "service "+r.Name)
		case kindExec:
			res = append(res, "exec:"+r.Path)
		}
	}
	primary := "not primary"
	if cfg.Primary {
		primary = "primary (takes over first at a cold start)"
	}
	lines := []string{
		fmt.Sprintf("box %s, %s; %d resources, in start order:", cfg.Name, primary, len(cfg.Resources)),
	}
	for i, r := range res {
		lines = append(lines, fmt.Sprintf("  %d. %s", i+1, r))
	}
	lines = append(lines,
		fmt.Sprintf("probe %s from %s every %s, dead after %s, init dead %s, start timeout %s",
			cfg.ProbeTarget, cfg.Source, cfg.ProbeInterval, cfg.DeadAfter, cfg.InitDead, cfg.StartTimeout))
	return checkRow{Name: "configuration", Status: checkOK, Detail: strings.Join(lines, "\n")}
}
