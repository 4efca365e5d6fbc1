package main

// flip watch: the drill client. It fires a fresh SIP OPTIONS at the VIP every
// few milliseconds and measures how long the VIP stayed silent during a
// failover, and which box answered before and after.
//
// It deliberately uses one connected UDP socket: the kernel then delivers only
// datagrams whose source is the target address, so every answer counted here
// provably left from the VIP (an answer from a box's own address is dropped),
// and a closed port shows up at once as ECONNREFUSED instead of a timeout.

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/netip"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/vishvananda/netlink"
)

// watchDefaultPort is the SIP port used when the target has none.
const watchDefaultPort = "5060"

// watchStatusEvery limits how often the live status line is redrawn, so a
// 10 ms probe interval does not flood a terminal.
const watchStatusEvery = 200 * time.Millisecond

// watchConfig is the parsed command line of `flip watch`.
type watchConfig struct {
	target      string // host:port
	source      string // local IP to send from, or ""
	interval    time.Duration
	timeout     time.Duration
	forDur      time.Duration // 0: no limit but max
	max         time.Duration
	untilSwitch bool
	json        bool
	// neighbourMAC reads the MAC of the target's neighbour entry (nil:
	// watchNeighbourMAC, the kernel's table); tests supply their own.
	neighbourMAC func(target string) string
}

// watchNormalizeTarget turns "host", "host:port", "[v6]", "[v6]:port", a bare
// IPv6 address or a "sip:" URI host part into host:port.
func watchNormalizeTarget(s string) (string, error) {
	s = strings.TrimSpace(s)
	if len(s) >= 4 && strings.EqualFold(s[:4], "sip:") {
		s = s[4:]
	}
	if s == "" {
		return "", errors.New("empty target")
	}
	if host, port, err := net.SplitHostPort(s); err == nil {
		n, perr := strconv.Atoi(port)
		if host == "" || perr != nil || n < 1 || n > 65535 {
			return "", fmt.Errorf("bad target %q: want host[:port]", s)
		}
		return net.JoinHostPort(host, port), nil
	}
	host := strings.TrimSuffix(strings.TrimPrefix(s, "["), "]")
	if strings.Contains(host, ":") && net.ParseIP(host) == nil {
		return "", fmt.Errorf("bad target %q: want host[:port]", s)
	}
	if host == "" || strings.ContainsAny(host, "[]/ ") {
		return "", fmt.Errorf("bad target %q: want host[:port]", s)
	}
	return net.JoinHostPort(host, watchDefaultPort), nil
}

// watchParseArgs parses the command line. ok is false when runWatch must
// return code right away (bad usage: 2, -help: 0).
func watchParseArgs(args []string, stderr io.Writer) (cfg watchConfig, code int, ok bool) {
	fs := flag.NewFlagSet("watch", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprintf(fs.Output(), "usage: flip watch [flags] [TARGET]\n"+
			"  Probe TARGET (host[:port], default port %s, default $FLIP_PROBE_TARGET) with SIP OPTIONS\n"+
			"  and report the longest gap in answers.\n", watchDefaultPort)
		fs.PrintDefaults()
	}
	fs.DurationVar(&cfg.interval, "interval", 10*time.Millisecond, "time between probes")
	fs.DurationVar(&cfg.timeout, "timeout", 500*time.Millisecond, "how long a probe may wait for its answer")
	fs.StringVar(&cfg.source, "source", "", "local IP address to send from")
	fs.DurationVar(&cfg.forDur, "for", 0, "stop after this long (0: run until -max, -until-switch or a signal)")
	fs.BoolVar(&cfg.untilSwitch, "until-switch", false, "stop at the first answer from a responder other than the first one")
	fs.DurationVar(&cfg.max, "max", 10*time.Minute, "hard limit on the run time")
	fs.BoolVar(&cfg.json, "json", false, "print the summary as JSON")

	// flag stops at the first positional argument; parse again after it so
	// that flags may follow TARGET. Bounded by the number of arguments.
	var pos []string
	rest := args
	for range len(args) + 1 {
		if err := fs.Parse(rest); err != nil {
			if errors.Is(err, flag.ErrHelp) {
				return cfg, 0, false
			}
			return cfg, 2, false
		}
		if fs.NArg() == 0 {
			break
		}
		pos = append(pos, fs.Arg(0))
		rest = fs.Args()[1:]
	}

	bad := func(format string, a ...any) (watchConfig, int, bool) {
		fmt.Fprintf(stderr, "flip watch: "+format+"\n", a...)
		return cfg, 2, false
	}
	switch {
	case len(pos) > 1:
		return bad("one TARGET expected, got %d: %q", len(pos), pos)
	case cfg.interval < time.Millisecond:
		return bad("-interval must be at least 1ms")
	case cfg.timeout <= 0:
		return bad("-timeout must be positive")
	case cfg.max <= 0:
		return bad("-max must be positive")
	case cfg.forDur < 0:
		return bad("-for must not be negative")
	}
	if cfg.source != "" && net.ParseIP(strings.Trim(cfg.source, "[]")) == nil {
		return bad("-source %q is not an IP address", cfg.source)
	}
	target := os.Getenv("FLIP_PROBE_TARGET")
	if len(pos) == 1 {
		target = pos[0]
	}
	if target == "" {
		return bad("no TARGET given and FLIP_PROBE_TARGET is not set")
	}
	t, err := watchNormalizeTarget(target)
	if err != nil {
		return bad("%v", err)
	}
	cfg.target = t
	return cfg, 0, true
}

// runWatch is `flip watch`. Exit codes: 0 the target answered, 1 it never
// answered (or the socket could not be set up), 2 bad usage.
func runWatch(args []string, stdout, stderr io.Writer) int {
	cfg, code, ok := watchParseArgs(args, stderr)
	if !ok {
		return code
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()

	var status io.Writer
	if !cfg.json {
		status = stderr
	}
	sum, err := watchRun(ctx, cfg, status)
	if err != nil {
		fmt.Fprintf(stderr, "flip watch: %v\n", err)
		return 1
	}
	if cfg.json {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		if err := enc.Encode(sum); err != nil {
			fmt.Fprintf(stderr, "flip watch: %v\n", err)
			return 1
		}
	} else {
		watchPrintText(stdout, sum)
	}
	if sum.Answered == 0 {
		return 1
	}
	return 0
}

// watchPrintText writes the human-readable summary.
func watchPrintText(w io.Writer, s watchSummary) {
	fmt.Fprintf(w, "target %s from %s, %.0f ms (stopped: %s)\n", s.Target, s.Local, s.DurationMS, s.StopReason)
	fmt.Fprintf(w, "probes: sent %d, answered %d, lost %d (late %d, refused %d, send errors %d)\n",
		s.Sent, s.Answered, s.Lost, s.Late, s.Refused, s.SendErrors)
	if s.Answered == 0 {
		fmt.Fprintln(w, "no answers")
		return
	}
	fmt.Fprintf(w, "first responder: %q status %d%s\n", s.FirstServer, s.FirstStatus, watchMACText(s.FirstMAC))
	fmt.Fprintf(w, "last responder:  %q status %d%s\n", s.LastServer, s.LastStatus, watchMACText(s.LastMAC))
	if s.Switched {
		fmt.Fprintf(w, "responder switched at %s\n", s.SwitchAt)
	}
	if s.OutageStart != "" {
		fmt.Fprintf(w, "outage: %.1f ms from %s to %s, %d probes lost in it\n",
			s.OutageMS, s.OutageStart, s.OutageEnd, s.OutageLost)
	} else {
		fmt.Fprintln(w, "outage: not measured (fewer than two answers)")
	}
	if s.LostBefore > 0 || s.LostAfter > 0 {
		fmt.Fprintf(w, "unanswered: %d before the first answer, %d after the last\n", s.LostBefore, s.LostAfter)
	}
}

// watchMACText is the MAC part of a responder line: which box's MAC the
// client's neighbour entry for the target held.
func watchMACText(mac string) string {
	if mac == "" {
		return ", MAC unknown (no neighbour entry for the target)"
	}
	return ", MAC " + mac
}

// watchNeighbourMAC returns the MAC of target's (host:port) neighbour entry
// on the interface the route to it leaves by, IPv4 or IPv6, or "" when
// there is none with a MAC: the target is behind a router, on this host,
// or not resolved (yet). This is the box the client's frames go to.
func watchNeighbourMAC(target string) string {
	host, _, err := net.SplitHostPort(target)
	if err != nil {
		return ""
	}
	ip, err := netip.ParseAddr(host)
	if err != nil {
		return ""
	}
	ip = ip.Unmap()
	routes, err := netlink.RouteGet(ip.AsSlice())
	if err != nil || len(routes) == 0 || routes[0].Gw != nil {
		return ""
	}
	family := netlink.FAMILY_V4
	if ip.Is6() {
		family = netlink.FAMILY_V6
	}
	neighs, err := netlink.NeighList(routes[0].LinkIndex, family)
	if err != nil {
		return ""
	}
	for _, n := range neighs {
		a, ok := netip.AddrFromSlice(n.IP)
		// NOARP entries (loopback's, with a zero MAC) say nothing about a box.
		if !ok || a.Unmap() != ip || len(n.HardwareAddr) == 0 || n.State&(netlink.NUD_FAILED|netlink.NUD_INCOMPLETE|netlink.NUD_NOARP) != 0 {
			continue
		}
		return n.HardwareAddr.String()
	}
	return ""
}
