package main

import (
	"bufio"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"time"
)

// flip check: validate the environment and the box without changing
// anything, and print the takeover and release plan step by step.
//
// Every look at the box goes through a checker field, so the checks run in
// tests without root against fakes; the report and the plan are built by
// pure functions from what the checks found and from the parsed config.

const checkUsage = `usage: flip check [--json]

Checks the FLIP_* configuration and this box without changing anything:
interfaces and VIPs, capabilities, commands and scripts, the foneBRIDGE
config, one SIP OPTIONS probe of the service address. Then prints what a
takeover and a release would do, step by step.

  --json     one JSON object {ok, checks, plan} instead of the text report
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
	if c.tiebreaker != nil {
		rows = append(rows, c.tiebreaker(c.cfg))
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

// Capability bits (linux/capability.h).
const (
	capNetAdmin = 12
	capNetRaw   = 13
)

// parseCapEff reads the effective capability set from the text of
// /proc/self/status.
func parseCapEff(status string) (uint64, error) {
	sc := bufio.NewScanner(strings.NewReader(status))
	for sc.Scan() {
		k, v, ok := strings.Cut(sc.Text(), ":")
		if !ok || k != "CapEff" {
			continue
		}
		bits, err := strconv.ParseUint(strings.TrimSpace(v), 16, 64)
		if err != nil {
			return 0, fmt.Errorf("CapEff %q is not a hex mask: %w", strings.TrimSpace(v), err)
		}
		return bits, nil
	}
	return 0, errors.New("no CapEff line")
}

// scopeLink is the "scope link " an IPv4 connected route is written with.
func scopeLink(v vipSpec) string {
	if v.Addr.Is4() {
		return "scope link "
	}
	return ""
}

// checkCapabilities: netlink changes need CAP_NET_ADMIN, gratuitous ARP and
// the ARP holder check need CAP_NET_RAW.
func (c *checker) checkCapabilities() checkRow {
	row := checkRow{Name: "capabilities"}
	const fix = "run flip as root, or grant them: systemd AmbientCapabilities=CAP_NET_ADMIN CAP_NET_RAW, " +
		"docker --cap-add NET_ADMIN --cap-add NET_RAW; this checks the flip check process itself, so run it the way the agent runs"
	status, err := c.procStatus()
	var eff uint64
	if err == nil {
		eff, err = parseCapEff(status)
	}
	if err != nil {
		row.Status, row.Detail, row.Fix = checkFail, "cannot read the effective capabilities from /proc/self/status: "+err.Error(), fix
		return row
	}
	var missing []string
	if eff&(1<<capNetAdmin) == 0 {
		missing = append(missing, "CAP_NET_ADMIN (add and delete VIPs, change routes)")
	}
	if eff&(1<<capNetRaw) == 0 {
		missing = append(missing, "CAP_NET_RAW (gratuitous ARP and NA, the holder check, the tiebreaker ping)")
	}
	if len(missing) > 0 {
		row.Status = checkFail
		row.Detail = fmt.Sprintf("missing from the effective set (CapEff %016x): %s", eff, strings.Join(missing, ", "))
		row.Fix = fix
		return row
	}
	row.Status, row.Detail = checkOK, fmt.Sprintf("CAP_NET_ADMIN and CAP_NET_RAW in the effective set (CapEff %016x)", eff)
	return row
}

// checkVIPs checks each VIP's interface and own address, and asks netlink
// whether this box holds it now. held[i] is for cfg.VIPs[i]; a failed query
// counts as not held.
func (c *checker) checkVIPs() ([]checkRow, []bool) {
	var rows []checkRow
	held := make([]bool, len(c.cfg.VIPs))
	for i, v := range c.cfg.VIPs {
		row := checkRow{Name: "vip " + v.Prefix.String(), Status: checkOK}
		var parts []string
		l, err := c.link(v.Iface)
		switch {
		case err != nil:
			row.Status, row.Fix = checkFail, fmt.Sprintf("create %s, or write the VIP as %s@IFACE with the right interface", v.Iface, v.Prefix)
			parts = append(parts, fmt.Sprintf("interface %s: %v", v.Iface, err))
		case !l.Up:
			row.Status, row.Fix = checkFail, fmt.Sprintf("bring it up: ip link set %s up (and make it come up at boot)", v.Iface)
			parts = append(parts, fmt.Sprintf("interface %s is down", v.Iface))
		case !l.Running:
			row.Status, row.Fix = checkWarn, fmt.Sprintf("check the cable and switch port of %s; the agent takes over only with a carrier", v.Iface)
			parts = append(parts, fmt.Sprintf("interface %s is up but has no carrier", v.Iface))
		default:
			parts = append(parts, fmt.Sprintf("%s up", v.Iface))
		}
		if ownOn(c.addrs[v.Iface], v.Own) {
			parts = append(parts, fmt.Sprintf("own address %s in the VIP's subnet", v.Own))
		} else {
			row.Status = checkFail
			parts = append(parts, fmt.Sprintf("own address %s is gone from %s", v.Own, v.Iface))
			if row.Fix == "" {
				row.Fix = fmt.Sprintf("give %s an address in %s (the box's own, not the VIP)", v.Iface, v.Prefix.Masked())
			}
		}
		switch ok, err := c.holds(v); {
		case err != nil:
			row.Status = checkFail
			parts = append(parts, fmt.Sprintf("cannot ask netlink whether the VIP is here: %v", err))
			if row.Fix == "" {
				row.Fix = "flip needs netlink to query and change addresses; run it on the host network (docker --network host)"
			}
		case ok:
			held[i] = true
			parts = append(parts, "held by this box now")
		default:
			parts = append(parts, "not on this box now")
		}
		row.Detail = strings.Join(parts, ", ")
		rows = append(rows, row)
	}
	return rows, held
}

func ownOn(ps []netip.Prefix, own netip.Prefix) bool {
	for _, p := range ps {
		if p == own {
			return true
		}
	}
	return false
}

// checkRoleRow says how a flip started now would begin, from which VIPs
// the box holds (agent.resume).
func checkRoleRow(cfg *config, held []bool) checkRow {
	n := 0
	for _, h := range held {
		if h {
			n++
		}
	}
	row := checkRow{Name: "role at start", Status: checkOK}
	switch {
	case n == 0:
		row.Detail = "passive: this box holds none of the VIPs; flip starts passive and takes over when the service is silent"
	case n == len(held):
		row.Detail = "active: this box holds every VIP; flip resumes as active (nothing restarted, VIPs announced again)"
	default:
		var missing []string
		for i, h := range held {
			if !h {
				missing = append(missing, cfg.VIPs[i].Prefix.String())
			}
		}
		row.Status = checkWarn
		row.Detail = fmt.Sprintf("half-held: %d of %d VIPs on this box, missing %s; flip resumes as active and re-adds them",
			n, len(held), strings.Join(missing, ", "))
		row.Fix = "if this box should be passive, make sure the other box is active before starting flip here"
	}
	return row
}

// checkRoutes reads the connected route of each VIP subnet (the ones the
// routes resource rewrites) and compares its src with what the box's state
// calls for: the VIP when held, the own address otherwise.
func (c *checker) checkRoutes(held []bool) []checkRow {
	heldBy := map[netip.Addr]bool{}
	for i, v := range c.cfg.VIPs {
		heldBy[v.Addr] = held[i]
	}
	var rows []checkRow
	for _, v := range newRoutesResource(c.cfg.VIPs).subnets {
		subnet := v.Own.Masked()
		row := checkRow{Name: fmt.Sprintf("route %s", subnet), Status: checkOK}
		want, state := v.Own.Addr(), "own address; VIP not held"
		if heldBy[v.Addr] {
			want, state = v.Addr, "the VIP; VIP held"
		}
		src, found, err := c.routeSrc(v)
		switch {
		case err != nil:
			row.Status, row.Detail = checkFail, fmt.Sprintf("cannot read the connected route of %s on %s: %v", subnet, v.Iface, err)
			row.Fix = "flip needs netlink to read and change routes; run it on the host network"
		case !found:
			row.Status = checkWarn
			row.Detail = fmt.Sprintf("no connected route %s dev %s: the box cannot reach that subnet now", subnet, v.Iface)
			row.Fix = fmt.Sprintf("flip re-creates it at start; by hand: ip route add %s dev %s %ssrc %s", subnet, v.Iface, scopeLink(v), want)
		case src != want:
			row.Status = checkWarn
			row.Detail = fmt.Sprintf("%s dev %s src %s, expected %s (%s)", subnet, v.Iface, srcString(src), want, state)
			row.Fix = fmt.Sprintf("flip sets src %s at start; by hand: ip route change %s dev %s %ssrc %s", want, subnet, v.Iface, scopeLink(v), want)
		default:
			row.Detail = fmt.Sprintf("%s dev %s src %s (%s)", subnet, v.Iface, src, state)
		}
		rows = append(rows, row)
	}
	return rows
}

func srcString(a netip.Addr) string {
	if !a.IsValid() {
		return "(none)"
	}
	return a.String()
}

// checkCommandRows checks FLIP_SERVICE_CMD and FLIP_FENCE_CMD with main.go's
// checkCommands, one row each, and shows the command line of every service.
// Nothing is run.
func (c *checker) checkCommandRows() []checkRow {
	var rows []checkRow
	if c.cfg.FenceCmd != "" {
		only := *c.cfg
		only.Resources = nil // the fence command alone
		row := checkRow{Name: "fence command", Status: checkOK, Detail: fmt.Sprintf("%s found", strings.Fields(c.cfg.FenceCmd)[0])}
		if err := c.commands(&only); err != nil {
			row.Status, row.Detail, row.Fix = checkFail, err.Error(), "install the fence command or fix FLIP_FENCE_CMD"
		}
		rows = append(rows, row)
	}
	if !c.cfg.has(kindService) {
		return rows
	}
	only := *c.cfg
	only.FenceCmd = "" // the service command alone
	prog := strings.Fields(c.cfg.ServiceCmd)[0]
	row := checkRow{Name: "service command", Status: checkOK, Detail: fmt.Sprintf("%s found (FLIP_SERVICE_CMD=%q)", prog, c.cfg.ServiceCmd)}
	err := c.commands(&only)
	if err != nil {
		row.Status, row.Detail = checkFail, err.Error()
		row.Fix = "install it, or set FLIP_SERVICE_CMD to the command that starts services; in a container, list only VIPs and routes"
	}
	rows = append(rows, row)
	for _, r := range c.cfg.Resources {
		if r.Kind != kindService {
			continue
		}
		svc := newServiceResource(c.cfg.ServiceCmd, r.Name, c.cfg.ResourceTO)
		st := checkOK
		if err != nil {
			st = checkSkip
		}
		rows = append(rows, checkRow{
			Name:   "service " + r.Name,
			Status: st,
			Detail: fmt.Sprintf("start: %s; stop: %s (not run now)", strings.Join(svc.argv("start"), " "), strings.Join(svc.argv("stop"), " ")),
		})
	}
	return rows
}

// checkExecs checks that every exec: script is still an executable file.
func (c *checker) checkExecs() []checkRow {
	var rows []checkRow
	for _, r := range c.cfg.Resources {
		if r.Kind != kindExec {
			continue
		}
		row := checkRow{Name: "exec:" + r.Path, Status: checkOK,
			Detail: fmt.Sprintf("executable; start: %s start; stop: %s stop (not run now)", r.Path, r.Path)}
		st, err := os.Stat(r.Path)
		switch {
		case err != nil:
			row.Status, row.Detail = checkFail, err.Error()
		case st.IsDir():
			row.Status, row.Detail = checkFail, r.Path+" is a directory"
		case st.Mode()&0o111 == 0:
			row.Status, row.Detail = checkFail, fmt.Sprintf("%s is not executable (mode %s)", r.Path, st.Mode())
		}
		if row.Status == checkFail {
			row.Fix = fmt.Sprintf("install the script, chmod +x %s, or fix the path in FLIP_RESOURCES", r.Path)
		}
		rows = append(rows, row)
	}
	return rows
}

// checkFonebridge checks that a takeover could repoint the foneBRIDGE:
// fonulator is installed and redfone.conf renders with this box's MAC
// (foneBridge.Check; fonulator is never run). It also returns what the plan
// shows for server=.
func (c *checker) checkFonebridge(ctx context.Context) (checkRow, string) {
	if !c.cfg.has(kindFonebridge) {
		return checkRow{}, ""
	}
	fb := newFoneBridgeFromConfig(c.cfg, slog.New(slog.DiscardHandler))
	fb.macLookup = c.macLookup
	row := checkRow{Name: "fonebridge", Status: checkOK}
	server := fmt.Sprintf("<MAC of %s: unknown>", fb.Interface)
	mac, macErr := fb.mac()
	if macErr == nil {
		server = mac.String()
	}
	if err := fb.Check(ctx); err != nil {
		row.Status, row.Detail = checkFail, err.Error()
		// Validate says the same with the FLIP_* variable to fix.
		if verr := fb.Validate(); verr != nil {
			row.Fix = verr.Error()
		} else {
			row.Fix = "install fonulator (FLIP_FONULATOR), fix redfone.conf (FLIP_FONEBRIDGE_CONF), name the TDMoE NIC (FLIP_FONEBRIDGE_INTERFACE)"
		}
		return row, server
	}
	path, _ := exec.LookPath(fb.Fonulator)
	now := "no server= line"
	if b, err := os.ReadFile(fb.ConfPath); err == nil {
		if cur := redfoneServer(b); cur != "" {
			now = "server=" + cur
			if m, err := net.ParseMAC(cur); err == nil && m.String() == mac.String() {
				now += " (this box already)"
			} else {
				now += " (another box)"
			}
		}
	}
	row.Detail = fmt.Sprintf("fonulator at %s; %s renders; a takeover writes server=%s (MAC of %s), the file has %s now",
		path, fb.ConfPath, server, fb.Interface, now)
	return row, server
}

// redfoneServer returns the value of the first server= line, or "".
func redfoneServer(b []byte) string {
	for _, l := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(l, "server="); ok {
			return strings.TrimSpace(v)
		}
	}
	return ""
}

// checkProbe sends ONE SIP OPTIONS to the probe target, as the agent does.
// No answer is a warning only: on a passive box with Asterisk in cold
// standby, or while both boxes are down on purpose, nobody serves it.
// holdsAny tells whether this box holds a VIP now (its own service is the
// one probed).
func (c *checker) checkProbe(ctx context.Context, holdsAny bool) checkRow {
	row := checkRow{Name: "probe " + c.cfg.ProbeTarget}
	r, err := c.probe(ctx)
	if err != nil {
		row.Status = checkFail
		row.Detail = fmt.Sprintf("cannot send a SIP probe from %s: %v", c.cfg.Source, err)
		row.Fix = "FLIP_SOURCE must be an address of this box that can reach FLIP_PROBE_TARGET"
		return row
	}
	if !r.Answered {
		row.Status = checkWarn
		row.Detail = fmt.Sprintf("no answer within FLIP_DEAD_AFTER (%s) to SIP OPTIONS from %s", c.cfg.DeadAfter, c.cfg.Source)
		if r.Err != nil {
			row.Detail += fmt.Sprintf(" (%v)", r.Err)
		}
		if holdsAny {
			row.Detail += "; this box holds the VIPs, so its own Asterisk should answer: a running flip here would release " +
				"(after FLIP_START_TIMEOUT if it just took over)"
			row.Fix = "start Asterisk here (systemctl status asterisk), check it listens on the probe target's port " +
				"and that no firewall drops UDP from " + c.cfg.Source.String()
			return row
		}
		row.Detail += "; this can be fine: nobody serves the service address right now (Asterisk in cold standby " +
			"before the first takeover, or both boxes stopped); a running flip would count it as silence and take over"
		row.Fix = "if the other box is active, check that Asterisk runs there and listens on the probe target's port, " +
			"and that no firewall drops UDP from " + c.cfg.Source.String()
		return row
	}
	row.Status = checkOK
	server := r.Server
	if server == "" {
		server = "(no Server or User-Agent header)"
	}
	row.Detail = fmt.Sprintf("SIP %d in %s, server %s (any SIP answer means alive)", r.Status, r.RTT.Round(10*time.Microsecond), server)
	return row
}

// checkTiebreaker checks FLIP_TIEBREAKER by pinging as the agent does.
func checkTiebreaker(cfg *config) checkRow { return tiebreakerRow(cfg, pingTiebreakers) }

// tiebreakerRow reports whether a tiebreaker answers, asking reach.
func tiebreakerRow(cfg *config, reach func(*config) (time.Duration, error)) checkRow {
	row := checkRow{Name: "tiebreaker", Status: checkSkip}
	if len(cfg.Tiebreakers) == 0 {
		row.Detail = "FLIP_TIEBREAKER not set"
		return row
	}
	var as []string
	for _, a := range cfg.Tiebreakers {
		as = append(as, a.String())
	}
	rtt, err := reach(cfg)
	if err != nil {
		row.Status = checkFail
		row.Detail = fmt.Sprintf("FLIP_TIEBREAKER=%s: %v: this box would count itself cut off (a passive box would not take over, an active one would release)", strings.Join(as, ","), err)
		row.Fix = "check the link and that the tiebreaker answers ping from this box's own address (as root or with CAP_NET_RAW), or fix FLIP_TIEBREAKER"
		return row
	}
	row.Status = checkOK
	row.Detail = fmt.Sprintf("FLIP_TIEBREAKER=%s answers ICMP echo from %s (%s)", strings.Join(as, ","), cfg.Source, rtt.Round(time.Microsecond))
	return row
}

// pingTiebreakers pings the tiebreakers as the agent does, for at most
// FLIP_DEAD_AFTER, and returns the first answer's round trip.
func pingTiebreakers(cfg *config) (time.Duration, error) {
	tb, err := newTiebreaker(cfg.Source, cfg.Tiebreakers)
	if err != nil {
		return 0, err
	}
	ctx, cancel := context.WithTimeout(context.Background(), cfg.DeadAfter)
	defer cancel()
	answers := make(chan time.Time, 16)
	go tb.run(ctx, cfg.ProbeInterval, answers)
	select {
	case sent := <-answers:
		return time.Since(sent), nil
	case <-ctx.Done():
		return 0, fmt.Errorf("no answer within FLIP_DEAD_AFTER (%s)", cfg.DeadAfter)
	}
}
