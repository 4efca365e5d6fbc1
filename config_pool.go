package main

import (
	"net"
	"net/netip"
	"net/url"
	"strings"
	"time"
)

// Bounds of FLIP_ETCD_TTL: below leaseTTLMin a keep-alive lost to one etcd
// leader election drops the VIPs; above leaseTTLMax a dead leader's VIPs
// wait for ever by a PBX's measure.
const (
	leaseTTLMin = 2 * time.Second
	leaseTTLMax = 5 * time.Minute
)

// pool reports whether flip runs in pool mode (FLIP_ETCD_ENDPOINTS).
func (c *config) pool() bool { return len(c.EtcdEndpoints) > 0 }

// coldStandby reports whether flip starts the service on takeover
// (FLIP_RESOURCES lists one): a passive box then runs none.
func (c *config) coldStandby() bool { return c.has(kindService) }

// serviceTarget is the first VIP at the probe's port, in pool mode, where
// the probe goes to the box's own address instead; "" for a pair.
func (c *config) serviceTarget() string {
	if !c.pool() || len(c.VIPs) == 0 {
		return ""
	}
	_, port, err := net.SplitHostPort(c.ProbeTarget)
	if err != nil {
		return ""
	}
	return net.JoinHostPort(c.VIPs[0].Addr.String(), port)
}

// checkPool reads and checks the pool-mode variables. Pool mode replaces
// the pair's own rules (the primary, the peer channel, failback): setting
// those beside it is refused rather than silently ignored.
func (c *config) checkPool(spec envSpec) error {
	for _, f := range strings.FieldsFunc(spec.EtcdEndpoints, func(r rune) bool { return r == ',' || r == ' ' || r == '\t' }) {
		u, err := url.Parse(f)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.Port() == "" || (u.Path != "" && u.Path != "/") {
			return badVar("FLIP_ETCD_ENDPOINTS", "%q is not an etcd client URL; list them as http://HOST:PORT or https://HOST:PORT, e.g. http://192.0.2.21:2379,http://192.0.2.22:2379,http://192.0.2.23:2379", f)
		}
		c.EtcdEndpoints = append(c.EtcdEndpoints, u.Scheme+"://"+u.Host)
	}
	unused := func(name string) error {
		return badVar(name, "is set but FLIP_ETCD_ENDPOINTS is not: it belongs to pool mode; set the endpoints or unset it")
	}
	if !c.pool() {
		switch {
		case spec.EtcdCA != "":
			return unused("FLIP_ETCD_CA")
		case spec.EtcdCert != "":
			return unused("FLIP_ETCD_CERT")
		case spec.EtcdKey != "":
			return unused("FLIP_ETCD_KEY")
		}
		return nil
	}
	c.LeaseTTL = spec.EtcdTTL
	if c.LeaseTTL < leaseTTLMin || c.LeaseTTL > leaseTTLMax || c.LeaseTTL%time.Second != 0 {
		return badVar("FLIP_ETCD_TTL", "%s: give whole seconds from %s to %s (etcd's leases count in seconds), e.g. 5s", c.LeaseTTL, leaseTTLMin, leaseTTLMax)
	}
	if c.LeaseTTL < 2*c.DeadAfter {
		return badVar("FLIP_ETCD_TTL", "(%s) must be at least 2 × FLIP_DEAD_AFTER (%s): a leader that stops answering must find out before its lease is in doubt", c.LeaseTTL, c.DeadAfter)
	}
	switch strings.ToLower(strings.TrimSpace(spec.EtcdLoss)) {
	case "release":
	case "hold":
		c.PoolHold = true
	default:
		return badVar("FLIP_ETCD_LOSS", "%q: use release (drop the VIPs when the lease cannot be proven, the default) or hold (keep them while the service answers)", spec.EtcdLoss)
	}
	c.EtcdPrefix = strings.TrimSpace(spec.EtcdPrefix)
	if !strings.HasPrefix(c.EtcdPrefix, "/") || strings.ContainsAny(c.EtcdPrefix, " \t") {
		return badVar("FLIP_ETCD_PREFIX", "%q must start with / and hold no blanks, e.g. /flip/pbx1/ (one prefix per pool)", spec.EtcdPrefix)
	}
	if !strings.HasSuffix(c.EtcdPrefix, "/") {
		c.EtcdPrefix += "/"
	}
	c.EtcdCA, c.EtcdCert, c.EtcdKey = strings.TrimSpace(spec.EtcdCA), strings.TrimSpace(spec.EtcdCert), strings.TrimSpace(spec.EtcdKey)
	if (c.EtcdCert == "") != (c.EtcdKey == "") {
		return badVar("FLIP_ETCD_CERT", "FLIP_ETCD_CERT and FLIP_ETCD_KEY go together (the client certificate and its key); set both or neither")
	}
	for _, p := range []struct{ name, path string }{{"FLIP_ETCD_CA", c.EtcdCA}, {"FLIP_ETCD_CERT", c.EtcdCert}, {"FLIP_ETCD_KEY", c.EtcdKey}} {
		if p.path != "" && !strings.HasPrefix(p.path, "/") {
			return badVar(p.name, "%q must be an absolute path to a PEM file", p.path)
		}
	}
	switch {
	case len(c.Peers) > 0:
		return badVar("FLIP_PEER", "is set in pool mode (FLIP_ETCD_ENDPOINTS): etcd is the arbiter of a pool and the peer channel is for a pair; unset one of them")
	case c.Failback:
		return badVar("FLIP_FAILBACK", "is set in pool mode (FLIP_ETCD_ENDPOINTS): no box of a pool is preferred; unset it")
	case c.Primary:
		return badVar("FLIP_PRIMARY", "is true in pool mode (FLIP_ETCD_ENDPOINTS): no box of a pool is preferred, the first eligible box wins; unset it")
	}
	// The PEM files are read now: a missing or bad one is a configuration
	// error (exit 2), not a failure of the running agent.
	if _, err := etcdTLS(c); err != nil {
		return err
	}
	// A passive box of a pool probes its own service (hot standby: it may
	// campaign only while that answers), never the VIP.
	if spec.ProbeTarget == "" {
		c.ProbeTarget = net.JoinHostPort(c.Source.String(), "5060")
	}
	host, _, _ := net.SplitHostPort(c.ProbeTarget)
	if a, err := netip.ParseAddr(host); err == nil {
		for _, v := range c.VIPs {
			if v.Addr == a.Unmap() {
				return badVar("FLIP_PROBE_TARGET", "%s is a VIP: in pool mode each box probes its own service on its own address (the default, %s:5060)", a, c.Source)
			}
		}
	}
	return nil
}
