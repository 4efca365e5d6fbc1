package main

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"time"
)

// resource is one thing the active box holds, in heartbeat's model: a
// takeover starts resources left to right, a release stops them right to
// left, and each knows how to start, stop and check itself. Start and Stop
// must be idempotent: a restarted agent may repeat either.
type resource interface {
	Name() string
	Start(ctx context.Context) error
	Stop(ctx context.Context) error
	Check(ctx context.Context) error
}

// runner is a resource that can say whether it runs (a service): a passive
// box stops those it finds running at start (cold standby: only the active
// box runs them).
type runner interface {
	running(ctx context.Context) bool
}

// holderFollower is a resource that points something outside the box at
// the holder (the foneBRIDGE's TDMoE stream): the box that keeps the VIP
// after a split brain starts it again, since the other box may have pointed
// it at itself meanwhile.
type holderFollower interface {
	followsHolder() bool
}

// resourceKind tells the entries of FLIP_RESOURCES apart.
type resourceKind int

const (
	kindVIP resourceKind = iota
	kindRoutes
	kindFonebridge
	kindService
	kindExec
)

// resourceSpec is one parsed entry of FLIP_RESOURCES.
type resourceSpec struct {
	Kind  resourceKind
	Token string  // as written
	VIP   vipSpec // kindVIP
	Name  string  // kindService: the service name
	Path  string  // kindExec: the script
	// Optional ("fonebridge?"): a start failure is logged, notified and
	// retried, and does not abort the takeover (optional.go).
	Optional bool
}

// vipSpec is a virtual address and where it lives.
type vipSpec struct {
	Addr   netip.Addr
	Prefix netip.Prefix // the VIP with the prefix it is added with
	Iface  string
	// Own is the box's own address on Iface in the VIP's subnet: the
	// connected route's normal src, restored on release.
	Own netip.Prefix
}

var serviceNameRE = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9@._-]*$`)

// parseResources reads FLIP_RESOURCES: network resources (VIPs, then
// `routes`) first, since the address must exist before anything uses it and
// the announcement goes out as soon as the network part is in place.
func parseResources(s string, addrs map[string][]netip.Prefix) ([]resourceSpec, error) {
	const name = "FLIP_RESOURCES"
	var out []resourceSpec
	seen := map[string]bool{}
	seenVIP := map[netip.Addr]string{}
	sawOther := false
	for _, tok := range strings.Fields(s) {
		optional := strings.HasSuffix(tok, "?")
		tok = strings.TrimSuffix(tok, "?")
		if seen[tok] {
			return nil, badVar(name, "%q is listed twice; list each resource once", tok)
		}
		seen[tok] = true
		r := resourceSpec{Token: tok, Optional: optional}
		switch {
		case strings.Contains(tok, "/") && !strings.HasPrefix(tok, "exec:"):
			v, err := parseVIP(tok, addrs)
			if err != nil {
				return nil, badVar(name, "%v", err)
			}
			if prev, dup := seenVIP[v.Addr]; dup {
				return nil, badVar(name, "%q and %q are the same VIP; list each address once", prev, tok)
			}
			seenVIP[v.Addr] = tok
			r.Kind, r.VIP = kindVIP, v
		case tok == "routes":
			r.Kind = kindRoutes
		case tok == "fonebridge":
			r.Kind = kindFonebridge
		case tok == "fonulator":
			return nil, badVar(name, "%q: the foneBRIDGE resource is called \"fonebridge\" (flip runs fonulator itself)", tok)
		case strings.HasPrefix(tok, "exec:"):
			p := strings.TrimPrefix(tok, "exec:")
			if !filepath.IsAbs(p) {
				return nil, badVar(name, "%q: exec: needs an absolute path to a script taking start|stop|status", tok)
			}
			if st, err := os.Stat(p); err != nil || st.IsDir() || st.Mode()&0o111 == 0 {
				return nil, badVar(name, "%q: %s is not an executable file; install the script or fix the path", tok, p)
			}
			r.Kind, r.Path = kindExec, p
		case serviceNameRE.MatchString(tok) && !isIPLike(tok):
			r.Kind, r.Name = kindService, tok
		default:
			return nil, badVar(name, "%q is not a resource; use ADDR/PREFIX[@IFACE], routes, fonebridge, exec:/path or a service name", tok)
		}
		network := r.Kind == kindVIP || r.Kind == kindRoutes
		if network && optional {
			return nil, badVar(name, "%q?: VIPs and routes cannot be optional (without them nothing is served); only fonebridge, services and exec: resources can, e.g. \"fonebridge?\"", tok)
		}
		if network && sawOther {
			return nil, badVar(name, "%q comes after %q; list VIPs and routes before fonebridge, services and exec: resources", tok, out[len(out)-1].Token)
		}
		if r.Kind == kindRoutes && len(out) == 0 {
			return nil, badVar(name, "routes comes before any VIP; list the VIPs first, e.g. \"192.0.2.10/24 routes asterisk\"")
		}
		sawOther = sawOther || !network
		out = append(out, r)
	}
	if len(out) == 0 || out[0].Kind != kindVIP {
		return nil, badVar(name, "must start with at least one VIP, e.g. \"192.0.2.10/24 routes asterisk\"")
	}
	return out, nil
}

// isIPLike catches a bare address written without a prefix, which would
// otherwise parse as a service name.
func isIPLike(s string) bool {
	_, err := netip.ParseAddr(s)
	return err == nil
}

// parseVIP reads ADDR/PREFIX[@IFACE] and finds the interface and own address
// in the VIP's subnet. IPv4 and IPv6 VIPs are accepted; the own address of
// an IPv6 VIP is a global address of the box in that prefix (link-local
// addresses and /128s never are). The kernel lists IPv6 addresses newest
// first, so when an interface has several in the prefix the oldest (the
// box's configured address, there before any VIP) is taken; IPv4 lists the
// primary first.
func parseVIP(tok string, addrs map[string][]netip.Prefix) (vipSpec, error) {
	pfx, iface, _ := strings.Cut(tok, "@")
	p, err := netip.ParsePrefix(pfx)
	if err != nil {
		return vipSpec{}, fmt.Errorf("%q: not ADDR/PREFIX[@IFACE] (%v)", tok, err)
	}
	a := p.Addr()
	switch {
	case a.Is4In6():
		return vipSpec{}, fmt.Errorf("%q: an IPv4-mapped IPv6 address; write an IPv4 VIP as IPv4, e.g. %s/24", tok, a.Unmap())
	case a.Is6() && a.IsLinkLocalUnicast():
		return vipSpec{}, fmt.Errorf("%q: a link-local address cannot be a VIP; use a global address of the subnet, e.g. 2001:db8::100/64", tok)
	case a.Is6() && !a.IsGlobalUnicast():
		return vipSpec{}, fmt.Errorf("%q: %s is not a unicast address a box can serve from; use a global address of the subnet, e.g. 2001:db8::100/64", tok, a)
	}
	v := vipSpec{Addr: a, Prefix: p, Iface: iface}
	var names []string
	if iface != "" {
		if _, ok := addrs[iface]; !ok {
			return vipSpec{}, fmt.Errorf("%q: interface %s does not exist or has no address", tok, iface)
		}
		names = []string{iface}
	} else {
		for n := range addrs {
			names = append(names, n)
		}
	}
	for _, n := range names {
		for _, own := range addrs[n] {
			oa := own.Addr()
			if oa == v.Addr || oa.Is4() != a.Is4() || own.Bits() == oa.BitLen() || (oa.Is6() && oa.IsLinkLocalUnicast()) || !own.Masked().Contains(v.Addr) {
				continue
			}
			if v.Own.IsValid() && v.Iface != n {
				return vipSpec{}, fmt.Errorf("%q: subnet %s is on both %s and %s; write %s@IFACE", tok, own.Masked(), v.Iface, n, pfx)
			}
			if !v.Own.IsValid() || a.Is6() {
				v.Own, v.Iface = own, n
			}
		}
	}
	if !v.Own.IsValid() {
		where := "any interface"
		if iface != "" {
			where = iface
		}
		return vipSpec{}, fmt.Errorf("%q: %s is outside the subnets of %s; a VIP must be in the subnet of one of the box's own addresses", tok, v.Addr, where)
	}
	return v, nil
}

// commandResource runs an external command for start, stop and status:
// a service through FLIP_SERVICE_CMD or an exec: script.
type commandResource struct {
	name    string
	argv    func(action string) []string
	timeout time.Duration
}

func (c *commandResource) Name() string { return c.name }

func (c *commandResource) Start(ctx context.Context) error { return c.run(ctx, "start") }
func (c *commandResource) Stop(ctx context.Context) error  { return c.run(ctx, "stop") }
func (c *commandResource) Check(ctx context.Context) error { return c.run(ctx, "status") }

// running reports whether the service runs (its status command exits 0).
func (c *commandResource) running(ctx context.Context) bool { return c.Check(ctx) == nil }

func (c *commandResource) run(ctx context.Context, action string) error {
	if _, err := runCommand(ctx, c.timeout, c.argv(action)); err != nil {
		return fmt.Errorf("%s %s: %w", c.name, action, err)
	}
	return nil
}

// newServiceResource runs a service through the FLIP_SERVICE_CMD template.
// The template is split on blanks and never passed to a shell, so a service
// name cannot inject anything.
func newServiceResource(template, name string, timeout time.Duration) *commandResource {
	fields := strings.Fields(template)
	return &commandResource{
		name:    name,
		timeout: timeout,
		argv: func(action string) []string {
			argv := make([]string, len(fields))
			for i, f := range fields {
				f = strings.ReplaceAll(f, "{action}", action)
				argv[i] = strings.ReplaceAll(f, "{name}", name)
			}
			return argv
		},
	}
}

// newExecResource runs `PATH start|stop|status`, like a heartbeat resource
// script.
func newExecResource(path string, timeout time.Duration) *commandResource {
	return &commandResource{
		name:    "exec:" + path,
		timeout: timeout,
		argv:    func(action string) []string { return []string{path, action} },
	}
}

// errNotFound marks a command that is not installed.
var errNotFound = errors.New("command not found")
