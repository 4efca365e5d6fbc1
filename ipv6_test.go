package main

// IPv6 VIPs: parsing and configuration, SIP probes and the refusal watch
// over IPv6. The NDP frames are tested in ndp_test.go, addresses and routes
// in netlink_test.go, flip watch's neighbour MAC in watch_test.go, and a
// dual-stack failover end to end in testdata/netns_ipv6.sh.

import (
	"context"
	"errors"
	"net"
	"net/netip"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/emiago/sipgo/sip"
)

// ftHost6 is a dual-stack box: eth0 with an IPv4 and an IPv6 LAN address
// (and its link-local one, which is never a VIP's own address), eth1 WAN.
func ftHost6() ftFakeHost {
	return ftFakeHost{
		"eth0": ftPrefixes("192.0.2.11/24", "2001:db8::11/64"),
		"eth1": ftPrefixes("198.51.100.11/24", "2001:db8:1::11/64"),
		"lo":   ftPrefixes("127.0.0.1/8", "::1/128"),
	}
}

func TestParseVIPv6(t *testing.T) {
	tests := []struct {
		name    string
		tok     string
		host    ftFakeHost
		want    vipSpec
		wantErr string
	}{
		{name: "valid", tok: "2001:db8::100/64", host: ftHost6(),
			want: ftVIP("2001:db8::100", "2001:db8::100/64", "eth0", "2001:db8::11/64")},
		{name: "valid with @IFACE", tok: "2001:db8:1::100/64@eth1", host: ftHost6(),
			want: ftVIP("2001:db8:1::100", "2001:db8:1::100/64", "eth1", "2001:db8:1::11/64")},
		{name: "a narrower VIP prefix inside the own /64", tok: "2001:db8::100/120", host: ftHost6(),
			want: ftVIP("2001:db8::100", "2001:db8::100/120", "eth0", "2001:db8::11/64")},
		{name: "unique local addresses are fine", tok: "fd00:db8::100/64",
			host: ftFakeHost{"eth0": ftPrefixes("fd00:db8::11/64")},
			want: ftVIP("fd00:db8::100", "fd00:db8::100/64", "eth0", "fd00:db8::11/64")},
		{name: "held VIPs and /128s are not the own address; the oldest (listed last) is",
			tok: "2001:db8::100/64",
			host: ftFakeHost{"eth0": ftPrefixes("2001:db8::101/64", "2001:db8::100/64", "2001:db8::5/128",
				"2001:db8::11/64", "192.0.2.11/24")},
			want: ftVIP("2001:db8::100", "2001:db8::100/64", "eth0", "2001:db8::11/64")},
		{name: "outside every subnet", tok: "2001:db8:2::100/64", host: ftHost6(), wantErr: "outside the subnets"},
		{name: "only a /128 in the prefix", tok: "2001:db8::100/64",
			host: ftFakeHost{"eth0": ftPrefixes("2001:db8::11/128", "192.0.2.11/24")}, wantErr: "outside the subnets"},
		{name: "a box without IPv6", tok: "2001:db8::100/64", host: ftHost(), wantErr: "outside the subnets"},
		{name: "link-local", tok: "fe80::100/64", host: ftFakeHost{"eth0": ftPrefixes("fe80::1/64")}, wantErr: "link-local"},
		{name: "multicast", tok: "ff02::100/64", host: ftHost6(), wantErr: "not a unicast"},
		{name: "loopback", tok: "::1/128", host: ftHost6(), wantErr: "not a unicast"},
		{name: "IPv4-mapped", tok: "::ffff:192.0.2.100/120", host: ftHost6(), wantErr: "IPv4-mapped"},
		{name: "zone", tok: "2001:db8::100%eth0/64", host: ftHost6(), wantErr: "not ADDR/PREFIX"},
		{name: "subnet on two interfaces", tok: "2001:db8::100/64",
			host: ftFakeHost{"eth0": ftPrefixes("2001:db8::11/64"), "eth1": ftPrefixes("2001:db8::12/64")}, wantErr: "@IFACE"},
		{name: "IPv4 link-local subnets work as before", tok: "169.254.0.100/16",
			host: ftFakeHost{"eth0": ftPrefixes("169.254.0.11/16")},
			want: ftVIP("169.254.0.100", "169.254.0.100/16", "eth0", "169.254.0.11/16")},
		{name: "IPv4 VIP never takes an IPv6 own address", tok: "192.0.2.100/24",
			host: ftFakeHost{"eth0": ftPrefixes("2001:db8::11/64", "192.0.2.11/24")},
			want: ftVIP("192.0.2.100", "192.0.2.100/24", "eth0", "192.0.2.11/24")},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := parseVIP(tt.tok, tt.host)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("parseVIP(%q) = %+v, %v; want an error with %q", tt.tok, got, err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatalf("parseVIP(%q): %v", tt.tok, err)
			}
			if got != tt.want {
				t.Fatalf("parseVIP(%q) = %+v, want %+v", tt.tok, got, tt.want)
			}
		})
	}
}

func TestLoadConfigDualStack(t *testing.T) {
	t.Run("IPv4 first: probes over IPv4", func(t *testing.T) {
		ftSetEnv(t, map[string]string{"FLIP_RESOURCES": "192.0.2.100/24 2001:db8::100/64 routes asterisk"})
		c, err := loadConfig(ftHost6())
		if err != nil {
			t.Fatal(err)
		}
		if len(c.VIPs) != 2 || !c.VIPs[1].Addr.Is6() || c.VIPs[1].Own != netip.MustParsePrefix("2001:db8::11/64") {
			t.Fatalf("VIPs %+v", c.VIPs)
		}
		if c.ProbeTarget != "192.0.2.100:5060" || c.Source != netip.MustParseAddr("192.0.2.11") {
			t.Fatalf("probe %s from %s", c.ProbeTarget, c.Source)
		}
		if n := len(newRoutesResource(c.VIPs).subnets); n != 2 {
			t.Fatalf("routes rewrites %d subnets, want the IPv4 and the IPv6 one", n)
		}
	})
	t.Run("IPv6 first: probes over IPv6", func(t *testing.T) {
		ftSetEnv(t, map[string]string{"FLIP_RESOURCES": "2001:db8::100/64 192.0.2.100/24 routes asterisk"})
		c, err := loadConfig(ftHost6())
		if err != nil {
			t.Fatal(err)
		}
		if c.ProbeTarget != "[2001:db8::100]:5060" || c.Source != netip.MustParseAddr("2001:db8::11") {
			t.Fatalf("probe %s from %s", c.ProbeTarget, c.Source)
		}
	})
	t.Run("FLIP_SOURCE and FLIP_PROBE_TARGET in IPv6", func(t *testing.T) {
		ftSetEnv(t, map[string]string{"FLIP_RESOURCES": "192.0.2.100/24 2001:db8::100/64 asterisk",
			"FLIP_SOURCE": "2001:db8::11", "FLIP_PROBE_TARGET": "[2001:db8::100]:5070"})
		c, err := loadConfig(ftHost6())
		if err != nil {
			t.Fatal(err)
		}
		if c.ProbeTarget != "[2001:db8::100]:5070" || c.Source != netip.MustParseAddr("2001:db8::11") {
			t.Fatalf("probe %s from %s", c.ProbeTarget, c.Source)
		}
	})
	t.Run("an IPv6 VIP as FLIP_SOURCE", func(t *testing.T) {
		ftSetEnv(t, map[string]string{"FLIP_RESOURCES": "2001:db8::100/64 asterisk", "FLIP_SOURCE": "2001:db8::100"})
		host := ftHost6()
		host["eth0"] = append(host["eth0"], netip.MustParsePrefix("2001:db8::100/64"))
		ftWantConfigError(t, host, "FLIP_SOURCE", "VIP")
	})
	for _, tt := range []struct{ name, resources, tiebreaker, want string }{
		{"an IPv6 tiebreaker with an IPv4 source", "192.0.2.100/24 asterisk", "2001:db8::1", "IPv6 but the pings leave from this box's own address 192.0.2.11 (IPv4"},
		{"an IPv4 tiebreaker with an IPv6 source", "2001:db8::100/64 asterisk", "192.0.2.1", "IPv4 but the pings leave from this box's own address 2001:db8::11 (IPv6"},
		{"one of two of the wrong version", "2001:db8::100/64 asterisk", "2001:db8::1,192.0.2.1", "192.0.2.1 is IPv4"},
		{"not an address", "2001:db8::100/64 asterisk", "gateway", "not an IP address"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			ftSetEnv(t, map[string]string{"FLIP_RESOURCES": tt.resources, "FLIP_TIEBREAKER": tt.tiebreaker})
			ftWantConfigError(t, ftHost6(), "FLIP_TIEBREAKER", tt.want)
		})
	}
	t.Run("IPv6 tiebreakers with an IPv6 source", func(t *testing.T) {
		ftSetEnv(t, map[string]string{"FLIP_RESOURCES": "2001:db8::100/64 asterisk", "FLIP_TIEBREAKER": "2001:db8::1, 2001:db8::2"})
		cfg, err := loadConfig(ftHost6())
		if err != nil {
			t.Fatal(err)
		}
		want := []netip.Addr{netip.MustParseAddr("2001:db8::1"), netip.MustParseAddr("2001:db8::2")}
		if !slices.Equal(cfg.Tiebreakers, want) {
			t.Errorf("tiebreakers %v, want %v", cfg.Tiebreakers, want)
		}
	})
}

func ftWantConfigError(t *testing.T, host ftFakeHost, name, msg string) {
	t.Helper()
	_, err := loadConfig(host)
	var ce *configError
	if !errors.As(err, &ce) || ce.Var != name || !strings.Contains(ce.Msg, msg) {
		t.Fatalf("loadConfig: %v; want a configError on %s mentioning %q", err, name, msg)
	}
}

// ftLoopback6 skips a test on a host without ::1.
func ftLoopback6(t *testing.T) {
	t.Helper()
	c, err := net.ListenPacket("udp6", "[::1]:0")
	if err != nil {
		t.Skipf("no IPv6 loopback here: %v", err)
	}
	c.Close()
}

// TestProberIPv6: a probe to an IPv6 target leaves from the IPv6 source
// with the host bracketed in the Request-URI and Via, and is answered.
func TestProberIPv6(t *testing.T) {
	ftLoopback6(t)
	conn, err := net.ListenPacket("udp6", "[::1]:0")
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	type seen struct {
		from    net.Addr
		uri     string
		via     string
		fromHdr string
		err     error
	}
	got := make(chan seen, 1)
	go func() {
		buf := make([]byte, 65535)
		n, from, err := conn.ReadFrom(buf)
		if err != nil {
			got <- seen{err: err}
			return
		}
		msg, err := sip.ParseMessage(buf[:n])
		req, ok := msg.(*sip.Request)
		if err != nil || !ok {
			got <- seen{err: errors.New("not a SIP request: " + string(buf[:n]))}
			return
		}
		s := seen{from: from, uri: req.Recipient.String()}
		if v := req.Via(); v != nil {
			s.via = v.Value()
		}
		if f := req.From(); f != nil {
			s.fromHdr = f.Value()
		}
		got <- s
		res := sip.NewResponseFromRequest(req, 200, "OK", nil)
		res.AppendHeader(sip.NewHeader("Server", "v6-box"))
		conn.WriteTo([]byte(res.String()), from)
	}()

	p, err := newProber(netip.MustParseAddr("::1"), conn.LocalAddr().String(), 2*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	r := p.probe(context.Background())
	var s seen
	select {
	case s = <-got:
	case <-time.After(time.Second):
		t.Fatalf("no request reached the IPv6 server; probe = %+v", r)
	}
	if s.err != nil {
		t.Fatal(s.err)
	}
	port := conn.LocalAddr().(*net.UDPAddr).Port
	if want := "sip:[::1]:" + strconv.Itoa(port); s.uri != want {
		t.Errorf("Request-URI %q, want %q", s.uri, want)
	}
	if !strings.Contains(s.via, " [::1]:") {
		t.Errorf("Via %q: want the IPv6 source bracketed", s.via)
	}
	if !strings.Contains(s.fromHdr, "@[::1]") {
		t.Errorf("From %q: want the IPv6 source bracketed", s.fromHdr)
	}
	if ua, ok := s.from.(*net.UDPAddr); !ok || !ua.IP.Equal(net.IPv6loopback) {
		t.Errorf("probe came from %v, want ::1", s.from)
	}
	if !r.Answered || r.Server != "v6-box" {
		t.Fatalf("probe = %+v, want answered by v6-box", r)
	}
}

func TestProberFamilyMismatch(t *testing.T) {
	for _, tt := range []struct{ source, target string }{
		{"192.0.2.11", "[2001:db8::100]:5060"},
		{"2001:db8::11", "192.0.2.100:5060"},
	} {
		p, err := newProber(netip.MustParseAddr(tt.source), tt.target, time.Second)
		if err == nil {
			p.Close()
			t.Fatalf("newProber(%s, %s): want an error", tt.source, tt.target)
		}
		if !strings.Contains(err.Error(), "FLIP_SOURCE") {
			t.Errorf("error %q does not say what to fix", err)
		}
	}
}

// TestTickProbeRefusedIPv6: ICMPv6 port unreachable finishes the probe
// as refused through IPV6_RECVERR, as ICMP does for IPv4.
func TestTickProbeRefusedIPv6(t *testing.T) {
	ftLoopback6(t)
	free, err := net.ListenPacket("udp6", "[::1]:0")
	if err != nil {
		t.Fatal(err)
	}
	target := free.LocalAddr().String()
	free.Close()
	p, err := newTickProbe(netip.MustParseAddr("::1"), target, 2*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	r := ftTickRound(t, p, time.Second)
	if !r.Refused || r.Answered {
		t.Fatalf("probe to the closed port %s: %+v; want refused", target, r)
	}
}
