package main

import (
	"errors"
	"maps"
	"net/netip"
	"os"
	"path/filepath"
	"reflect"
	"strconv"
	"strings"
	"testing"
	"time"
)

// ftFakeHost is a box's interfaces for loadConfig.
type ftFakeHost map[string][]netip.Prefix

func (h ftFakeHost) InterfaceAddrs() (map[string][]netip.Prefix, error) {
	out := make(map[string][]netip.Prefix, len(h))
	for k, v := range h {
		out[k] = append([]netip.Prefix(nil), v...)
	}
	return out, nil
}

// ftFailingHost cannot list its interfaces.
type ftFailingHost struct{}

func (ftFailingHost) InterfaceAddrs() (map[string][]netip.Prefix, error) {
	return nil, errors.New("netlink: permission denied")
}

func ftPrefixes(s ...string) []netip.Prefix {
	out := make([]netip.Prefix, len(s))
	for i, p := range s {
		out[i] = netip.MustParsePrefix(p)
	}
	return out
}

// ftHost is the box of the tests: a LAN on eth0, a WAN on eth1.
func ftHost() ftFakeHost {
	return ftFakeHost{
		"eth0": ftPrefixes("192.0.2.11/24"),
		"eth1": ftPrefixes("198.51.100.11/24"),
		"lo":   ftPrefixes("127.0.0.1/8"),
	}
}

// ftEnvNames is every variable envconfig may read for envSpec: FLIP_X and,
// through its fallback to the bare tag, X.
func ftEnvNames() []string {
	var names []string
	st := reflect.TypeFor[envSpec]()
	for i := 0; i < st.NumField(); i++ {
		tag := st.Field(i).Tag.Get("envconfig")
		names = append(names, "FLIP_"+tag, tag)
	}
	return names
}

// ftClearEnv unsets every FLIP_* variable (and the bare names envconfig
// falls back to) for the test, restoring them afterwards. t.Setenv(name, "")
// would leave them set-but-empty, which loadConfig rightly rejects.
func ftClearEnv(t *testing.T) {
	t.Helper()
	names := ftEnvNames()
	for _, kv := range os.Environ() {
		name, _, _ := strings.Cut(kv, "=")
		if strings.HasPrefix(name, "FLIP_") {
			names = append(names, name)
		}
	}
	for _, name := range names {
		old, ok := os.LookupEnv(name)
		if !ok {
			continue
		}
		if err := os.Unsetenv(name); err != nil {
			t.Fatalf("unset %s: %v", name, err)
		}
		t.Cleanup(func() { os.Setenv(name, old) })
	}
}

// ftSetEnv clears the environment of flip variables and sets env.
func ftSetEnv(t *testing.T, env map[string]string) {
	t.Helper()
	ftClearEnv(t)
	for k, v := range env {
		t.Setenv(k, v)
	}
}

// ftVIP is a VIP as parseVIP should find it on ftHost.
func ftVIP(addr, prefix, iface, own string) vipSpec {
	return vipSpec{
		Addr:   netip.MustParseAddr(addr),
		Prefix: netip.MustParsePrefix(prefix),
		Iface:  iface,
		Own:    netip.MustParsePrefix(own),
	}
}

var (
	ftLANVIP = ftVIP("192.0.2.110", "192.0.2.110/24", "eth0", "192.0.2.11/24")
	ftWANVIP = ftVIP("198.51.100.110", "198.51.100.110/24", "eth1", "198.51.100.11/24")
)

// ftDefaultConfig is the configuration every unset variable gives, for
// FLIP_NAME=pbx1 and no resources yet.
func ftDefaultConfig() *config {
	return &config{
		ProbeInterval:    100 * time.Millisecond,
		DeadAfter:        time.Second,
		RefusedAfter:     300 * time.Millisecond,
		HandoverWait:     time.Second,
		ProbeTransport:   "udp",
		InitDead:         30 * time.Second,
		StartTimeout:     60 * time.Second,
		HolderWait:       61 * time.Second, // StartTimeout + DeadAfter
		ServiceCmd:       "systemctl {action} {name}",
		ResourceTO:       30 * time.Second,
		FonebridgeConf:   "/etc/redfone.conf",
		Fonulator:        "fonulator",
		FonulatorTimeout: 30 * time.Second,
		FonulatorRetries: 2,
		GARPCount:        5,
		GARPInterval:     time.Second,
		ARPCheckWindow:   60 * time.Millisecond,
		HolderRecheck:    20 * time.Millisecond,
		FenceTimeout:     30 * time.Second,
		HoldDown:         2 * time.Minute,
		ConflictInterval: time.Second,
		PeerPort:         5999,
		FailbackDelay:    5 * time.Minute,
		StateFile:        "/run/flip/state.json",
		NotifyTimeout:    10 * time.Second,
		CallsCmd:         []string{"asterisk", "-rx", "core show channels count"},
		DrainTimeout:     10 * time.Minute,
		DrainPoll:        time.Second,
		SyncTimeout:      10 * time.Minute,
		ControlSocket:    "/run/flip/flip.sock",
		LogFormat:        "text",
		Name:             "pbx1",
	}
}

// ftFonebridgeConfig is the seed's first haresources line,
// `asterisk1 10.10.10.110 fonulator asterisk`, in flip's terms.
func ftFonebridgeConfig() *config {
	c := ftDefaultConfig()
	c.Resources = []resourceSpec{
		{Kind: kindVIP, Token: "192.0.2.110/24", VIP: ftLANVIP},
		{Kind: kindFonebridge, Token: "fonebridge"},
		{Kind: kindService, Token: "asterisk", Name: "asterisk"},
	}
	c.VIPs = []vipSpec{ftLANVIP}
	c.ProbeTarget = "192.0.2.110:5060"
	c.Source = netip.MustParseAddr("192.0.2.11")
	c.FonebridgeInterface = "eth0"
	return c
}

// ftMultihomedConfig is the seed's second haresources line,
// `asterisk1 10.10.10.110 77.77.77.110 fixrouting asterisk`.
func ftMultihomedConfig() *config {
	c := ftDefaultConfig()
	c.Resources = []resourceSpec{
		{Kind: kindVIP, Token: "192.0.2.110/24", VIP: ftLANVIP},
		{Kind: kindVIP, Token: "198.51.100.110/24", VIP: ftWANVIP},
		{Kind: kindRoutes, Token: "routes"},
		{Kind: kindService, Token: "asterisk", Name: "asterisk"},
	}
	c.VIPs = []vipSpec{ftLANVIP, ftWANVIP}
	c.ProbeTarget = "192.0.2.110:5060"
	c.Source = netip.MustParseAddr("192.0.2.11")
	return c
}

// ftExecutable writes an executable script and returns its path.
func ftExecutable(t *testing.T, body string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "resource.sh")
	if err := os.WriteFile(p, []byte("#!/bin/sh\n"+body+"\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestLoadConfigValid(t *testing.T) {
	script := ftExecutable(t, "exit 0")
	tests := []struct {
		name string
		env  map[string]string
		host ftFakeHost // ftHost() if nil
		want func() *config
	}{
		{
			name: "fonebridge haresources line",
			env:  map[string]string{"FLIP_RESOURCES": "192.0.2.110/24 fonebridge asterisk"},
			want: ftFonebridgeConfig,
		},
		{
			name: "optional foneBRIDGE",
			env:  map[string]string{"FLIP_RESOURCES": "192.0.2.110/24 fonebridge? asterisk"},
			want: func() *config {
				c := ftFonebridgeConfig()
				c.Resources[1].Optional = true
				return c
			},
		},
		{
			name: "multi-homed haresources line",
			env:  map[string]string{"FLIP_RESOURCES": "192.0.2.110/24 198.51.100.110/24 routes asterisk"},
			want: ftMultihomedConfig,
		},
		{
			name: "blanks, tabs and newlines between tokens",
			env:  map[string]string{"FLIP_RESOURCES": "\n  192.0.2.110/24\tfonebridge \n asterisk  "},
			want: ftFonebridgeConfig,
		},
		{
			// A restarted agent on the active box: the VIP is a secondary
			// address of eth0. Its own address must still be found.
			name: "box already holds the VIP",
			env:  map[string]string{"FLIP_RESOURCES": "192.0.2.110/24 fonebridge asterisk"},
			host: ftFakeHost{
				"eth0": ftPrefixes("192.0.2.11/24", "192.0.2.110/24"),
				"eth1": ftPrefixes("198.51.100.11/24"),
				"lo":   ftPrefixes("127.0.0.1/8"),
			},
			want: ftFonebridgeConfig,
		},
		{
			name: "VIP with an explicit interface",
			env:  map[string]string{"FLIP_RESOURCES": "198.51.100.110/24@eth1 asterisk"},
			want: func() *config {
				c := ftDefaultConfig()
				c.Resources = []resourceSpec{
					{Kind: kindVIP, Token: "198.51.100.110/24@eth1", VIP: ftWANVIP},
					{Kind: kindService, Token: "asterisk", Name: "asterisk"},
				}
				c.VIPs = []vipSpec{ftWANVIP}
				c.ProbeTarget = "198.51.100.110:5060"
				c.Source = netip.MustParseAddr("198.51.100.11")
				return c
			},
		},
		{
			name: "subnet on two interfaces, interface given",
			env:  map[string]string{"FLIP_RESOURCES": "192.0.2.110/24@eth1 asterisk"},
			host: ftFakeHost{
				"eth0": ftPrefixes("192.0.2.11/24"),
				"eth1": ftPrefixes("192.0.2.12/24"),
			},
			want: func() *config {
				c := ftDefaultConfig()
				v := ftVIP("192.0.2.110", "192.0.2.110/24", "eth1", "192.0.2.12/24")
				c.Resources = []resourceSpec{
					{Kind: kindVIP, Token: "192.0.2.110/24@eth1", VIP: v},
					{Kind: kindService, Token: "asterisk", Name: "asterisk"},
				}
				c.VIPs = []vipSpec{v}
				c.ProbeTarget = "192.0.2.110:5060"
				c.Source = netip.MustParseAddr("192.0.2.12")
				return c
			},
		},
		{
			name: "every variable set",
			env: map[string]string{
				"FLIP_RESOURCES":            "192.0.2.110/24 198.51.100.110/24 routes fonebridge asterisk exec:" + script,
				"FLIP_PRIMARY":              "true",
				"FLIP_PROBE_TARGET":         "192.0.2.110:5070",
				"FLIP_SOURCE":               "198.51.100.11",
				"FLIP_PROBE_INTERVAL":       "50ms",
				"FLIP_DEAD_AFTER":           "2s",
				"FLIP_INIT_DEAD":            "4s", // exactly 2 × FLIP_DEAD_AFTER
				"FLIP_START_TIMEOUT":        "10s",
				"FLIP_HOLDER_WAIT":          "5s",
				"FLIP_SERVICE_CMD":          " /usr/sbin/service {name} {action} ",
				"FLIP_RESOURCE_TIMEOUT":     "7s",
				"FLIP_FONEBRIDGE_CONF":      "/srv/redfone.conf",
				"FLIP_FONEBRIDGE_INTERFACE": "eth1",
				"FLIP_FONULATOR":            "/opt/redfone/fonulator",
				"FLIP_FONULATOR_TIMEOUT":    "12s",
				"FLIP_FONULATOR_RETRIES":    "0",
				"FLIP_GARP_COUNT":           "1",
				"FLIP_GARP_INTERVAL":        "3s",
				"FLIP_ARP_CHECK_WINDOW":     "80ms",
				"FLIP_HOLDER_RECHECK":       "15ms",
				"FLIP_LOG_FORMAT":           "json",
				"FLIP_NAME":                 " pbx2 ",
			},
			want: func() *config {
				c := ftMultihomedConfig()
				c.Resources = append(c.Resources[:3],
					resourceSpec{Kind: kindFonebridge, Token: "fonebridge"},
					resourceSpec{Kind: kindService, Token: "asterisk", Name: "asterisk"},
					resourceSpec{Kind: kindExec, Token: "exec:" + script, Path: script},
				)
				c.Primary = true
				c.ProbeTarget = "192.0.2.110:5070"
				c.Source = netip.MustParseAddr("198.51.100.11")
				c.ProbeInterval = 50 * time.Millisecond
				c.DeadAfter = 2 * time.Second
				c.InitDead = 4 * time.Second
				c.StartTimeout = 10 * time.Second
				c.HolderWait = 5 * time.Second
				c.ServiceCmd = "/usr/sbin/service {name} {action}"
				c.ResourceTO = 7 * time.Second
				c.FonebridgeConf = "/srv/redfone.conf"
				c.FonebridgeInterface = "eth1"
				c.Fonulator = "/opt/redfone/fonulator"
				c.FonulatorTimeout = 12 * time.Second
				c.FonulatorRetries = 0
				c.GARPCount = 1
				c.GARPInterval = 3 * time.Second
				c.ARPCheckWindow = 80 * time.Millisecond
				c.HolderRecheck = 15 * time.Millisecond
				c.LogFormat = "json"
				c.Name = "pbx2"
				return c
			},
		},
		{
			name: "HolderWait defaults to StartTimeout + DeadAfter",
			env: map[string]string{
				"FLIP_RESOURCES":     "192.0.2.110/24 fonebridge asterisk",
				"FLIP_START_TIMEOUT": "10s",
				"FLIP_DEAD_AFTER":    "2s",
			},
			want: func() *config {
				c := ftFonebridgeConfig()
				c.StartTimeout, c.DeadAfter, c.HolderWait = 10*time.Second, 2*time.Second, 12*time.Second
				return c
			},
		},
		{
			name: "probe target without a port gets 5060",
			env: map[string]string{
				"FLIP_RESOURCES":    "192.0.2.110/24 fonebridge asterisk",
				"FLIP_PROBE_TARGET": " 192.0.2.110 ",
			},
			want: ftFonebridgeConfig,
		},
		{
			name: "no service: the service command may be empty",
			env: map[string]string{
				"FLIP_RESOURCES":   "192.0.2.110/24 routes",
				"FLIP_SERVICE_CMD": "",
			},
			want: func() *config {
				c := ftDefaultConfig()
				c.Resources = []resourceSpec{
					{Kind: kindVIP, Token: "192.0.2.110/24", VIP: ftLANVIP},
					{Kind: kindRoutes, Token: "routes"},
				}
				c.VIPs = []vipSpec{ftLANVIP}
				c.ProbeTarget = "192.0.2.110:5060"
				c.Source = netip.MustParseAddr("192.0.2.11")
				c.ServiceCmd = ""
				return c
			},
		},
		{
			name: "systemd template unit as a service",
			env:  map[string]string{"FLIP_RESOURCES": "192.0.2.110/24 asterisk@pbx.service"},
			want: func() *config {
				c := ftDefaultConfig()
				c.Resources = []resourceSpec{
					{Kind: kindVIP, Token: "192.0.2.110/24", VIP: ftLANVIP},
					{Kind: kindService, Token: "asterisk@pbx.service", Name: "asterisk@pbx.service"},
				}
				c.VIPs = []vipSpec{ftLANVIP}
				c.ProbeTarget = "192.0.2.110:5060"
				c.Source = netip.MustParseAddr("192.0.2.11")
				return c
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			env := maps.Clone(tt.env)
			if _, ok := env["FLIP_NAME"]; !ok {
				env["FLIP_NAME"] = "pbx1"
			}
			ftSetEnv(t, env)
			host := tt.host
			if host == nil {
				host = ftHost()
			}
			got, err := loadConfig(host)
			if err != nil {
				t.Fatalf("loadConfig: %v", err)
			}
			if want := tt.want(); !reflect.DeepEqual(got, want) {
				t.Fatalf("loadConfig:\n got %+v\nwant %+v", got, want)
			}
		})
	}
}

func TestLoadConfigDefaultNameIsHostname(t *testing.T) {
	ftSetEnv(t, map[string]string{"FLIP_RESOURCES": "192.0.2.110/24 asterisk"})
	host, err := os.Hostname()
	if err != nil {
		t.Skipf("no hostname: %v", err)
	}
	c, err := loadConfig(ftHost())
	if err != nil {
		t.Fatalf("loadConfig: %v", err)
	}
	if c.Name != host {
		t.Fatalf("Name = %q, want the hostname %q", c.Name, host)
	}
}

func TestLoadConfigInvalid(t *testing.T) {
	const resources = "192.0.2.110/24 fonebridge asterisk"
	tests := []struct {
		name    string
		env     map[string]string // FLIP_RESOURCES=resources unless given
		unset   bool              // leave FLIP_RESOURCES unset
		host    ftFakeHost
		wantVar string
		wantMsg string // a substring of the message, if any
	}{
		// FLIP_RESOURCES
		{name: "resources unset", unset: true, wantVar: "FLIP_RESOURCES", wantMsg: "not set"},
		{name: "resources empty", env: map[string]string{"FLIP_RESOURCES": ""}, wantVar: "FLIP_RESOURCES"},
		{name: "resources only blanks", env: map[string]string{"FLIP_RESOURCES": " \t\n "}, wantVar: "FLIP_RESOURCES"},
		{name: "heartbeat IPaddr syntax", env: map[string]string{"FLIP_RESOURCES": "IPaddr::10.0.0.1 asterisk"}, wantVar: "FLIP_RESOURCES", wantMsg: "IPaddr::10.0.0.1"},
		{name: "heartbeat IPaddr syntax after a VIP", env: map[string]string{"FLIP_RESOURCES": "192.0.2.110/24 IPaddr::10.0.0.1"}, wantVar: "FLIP_RESOURCES", wantMsg: "not a resource"},
		{name: "heartbeat IPaddr with a prefix", env: map[string]string{"FLIP_RESOURCES": "IPaddr::192.0.2.110/24/eth0 asterisk"}, wantVar: "FLIP_RESOURCES"},
		{name: "fonulator token", env: map[string]string{"FLIP_RESOURCES": "192.0.2.110/24 fonulator asterisk"}, wantVar: "FLIP_RESOURCES", wantMsg: "fonebridge"},
		{name: "bare address without prefix", env: map[string]string{"FLIP_RESOURCES": "192.0.2.110 asterisk"}, wantVar: "FLIP_RESOURCES"},
		{name: "bare address after a VIP", env: map[string]string{"FLIP_RESOURCES": "192.0.2.110/24 198.51.100.110 asterisk"}, wantVar: "FLIP_RESOURCES"},
		{name: "VIP outside every subnet", env: map[string]string{"FLIP_RESOURCES": "203.0.113.7/24 asterisk"}, wantVar: "FLIP_RESOURCES", wantMsg: "203.0.113.7"},
		{name: "VIP is the box's own address", env: map[string]string{"FLIP_RESOURCES": "192.0.2.11/24 asterisk"}, wantVar: "FLIP_RESOURCES"},
		{name: "VIP on a nonexistent interface", env: map[string]string{"FLIP_RESOURCES": "192.0.2.110/24@eth9 asterisk"}, wantVar: "FLIP_RESOURCES", wantMsg: "eth9"},
		{name: "VIP on the wrong interface", env: map[string]string{"FLIP_RESOURCES": "198.51.100.110/24@eth0 asterisk"}, wantVar: "FLIP_RESOURCES", wantMsg: "eth0"},
		{
			name: "subnet on two interfaces without @IFACE",
			env:  map[string]string{"FLIP_RESOURCES": "192.0.2.110/24 asterisk"},
			host: ftFakeHost{
				"eth0": ftPrefixes("192.0.2.11/24"),
				"eth1": ftPrefixes("192.0.2.12/24"),
			},
			wantVar: "FLIP_RESOURCES",
			wantMsg: "@IFACE",
		},
		{name: "malformed prefix", env: map[string]string{"FLIP_RESOURCES": "192.0.2.110/33 asterisk"}, wantVar: "FLIP_RESOURCES"},
		{name: "IPv6 VIP outside every subnet", env: map[string]string{"FLIP_RESOURCES": "2001:db8::110/64 asterisk"}, wantVar: "FLIP_RESOURCES", wantMsg: "outside the subnets"},
		{name: "routes before any VIP", env: map[string]string{"FLIP_RESOURCES": "routes 192.0.2.110/24 asterisk"}, wantVar: "FLIP_RESOURCES"},
		{name: "service first", env: map[string]string{"FLIP_RESOURCES": "asterisk 192.0.2.110/24"}, wantVar: "FLIP_RESOURCES"},
		{name: "only a service", env: map[string]string{"FLIP_RESOURCES": "asterisk"}, wantVar: "FLIP_RESOURCES", wantMsg: "VIP"},
		{name: "VIP after a service", env: map[string]string{"FLIP_RESOURCES": "192.0.2.110/24 asterisk 198.51.100.110/24"}, wantVar: "FLIP_RESOURCES", wantMsg: "after"},
		{name: "routes after fonebridge", env: map[string]string{"FLIP_RESOURCES": "192.0.2.110/24 fonebridge routes asterisk"}, wantVar: "FLIP_RESOURCES", wantMsg: "after"},
		{name: "duplicate service", env: map[string]string{"FLIP_RESOURCES": "192.0.2.110/24 asterisk asterisk"}, wantVar: "FLIP_RESOURCES", wantMsg: "twice"},
		{name: "duplicate VIP", env: map[string]string{"FLIP_RESOURCES": "192.0.2.110/24 192.0.2.110/24 asterisk"}, wantVar: "FLIP_RESOURCES", wantMsg: "twice"},
		{name: "exec relative path", env: map[string]string{"FLIP_RESOURCES": "192.0.2.110/24 exec:scripts/pbx"}, wantVar: "FLIP_RESOURCES", wantMsg: "absolute"},
		{name: "exec missing file", env: map[string]string{"FLIP_RESOURCES": "192.0.2.110/24 exec:/nonexistent/flip-test/pbx"}, wantVar: "FLIP_RESOURCES"},
		{name: "exec of a directory", env: map[string]string{"FLIP_RESOURCES": "192.0.2.110/24 exec:/"}, wantVar: "FLIP_RESOURCES"},
		{name: "service name with shell characters", env: map[string]string{"FLIP_RESOURCES": "192.0.2.110/24 asterisk;reboot"}, wantVar: "FLIP_RESOURCES"},

		// Timings and counts.
		{name: "dead after equal to the default interval", env: map[string]string{"FLIP_DEAD_AFTER": "100ms"}, wantVar: "FLIP_DEAD_AFTER", wantMsg: "FLIP_PROBE_INTERVAL"},
		{name: "dead after below the interval", env: map[string]string{"FLIP_PROBE_INTERVAL": "2s"}, wantVar: "FLIP_DEAD_AFTER"},
		{name: "dead after not a duration", env: map[string]string{"FLIP_DEAD_AFTER": "abc"}, wantVar: "FLIP_DEAD_AFTER", wantMsg: "abc"},
		{name: "dead after without a unit", env: map[string]string{"FLIP_DEAD_AFTER": "2"}, wantVar: "FLIP_DEAD_AFTER"},
		{name: "dead after zero", env: map[string]string{"FLIP_DEAD_AFTER": "0s"}, wantVar: "FLIP_DEAD_AFTER"},
		{name: "probe interval set but empty", env: map[string]string{"FLIP_PROBE_INTERVAL": ""}, wantVar: "FLIP_PROBE_INTERVAL", wantMsg: "empty"},
		{name: "probe interval only blanks", env: map[string]string{"FLIP_PROBE_INTERVAL": "  "}, wantVar: "FLIP_PROBE_INTERVAL"},
		{name: "probe interval negative", env: map[string]string{"FLIP_PROBE_INTERVAL": "-100ms"}, wantVar: "FLIP_PROBE_INTERVAL"},
		{name: "optional VIP", env: map[string]string{"FLIP_RESOURCES": "192.0.2.110/24? asterisk"}, wantVar: "FLIP_RESOURCES", wantMsg: "cannot be optional"},
		{name: "optional routes", env: map[string]string{"FLIP_RESOURCES": "192.0.2.110/24 routes? asterisk"}, wantVar: "FLIP_RESOURCES", wantMsg: "cannot be optional"},
		{name: "optional and plain twice", env: map[string]string{"FLIP_RESOURCES": "192.0.2.110/24 fonebridge fonebridge?"}, wantVar: "FLIP_RESOURCES", wantMsg: "listed twice"},
		{name: "calls command with an open quote", env: map[string]string{"FLIP_CALLS_CMD": "asterisk -rx 'core show channels count"}, wantVar: "FLIP_CALLS_CMD", wantMsg: "not closed"},
		{name: "calls command blank", env: map[string]string{"FLIP_CALLS_CMD": "  "}, wantVar: "FLIP_CALLS_CMD", wantMsg: "empty"},
		{name: "drain command over two lines", env: map[string]string{"FLIP_DRAIN_CMD": "a\nb"}, wantVar: "FLIP_DRAIN_CMD", wantMsg: "line break"},
		{name: "sync interval without a command", env: map[string]string{"FLIP_SYNC_INTERVAL": "5m"}, wantVar: "FLIP_SYNC_INTERVAL", wantMsg: "FLIP_SYNC_CMD is not"},
		{name: "sync {peer} without FLIP_PEER", env: map[string]string{"FLIP_SYNC_CMD": "rsync -a /etc/asterisk/ rsync://{peer}/asterisk/"}, wantVar: "FLIP_SYNC_CMD", wantMsg: "FLIP_PEER is not set"},
		{name: "sync interval too short", env: map[string]string{"FLIP_SYNC_CMD": "true", "FLIP_SYNC_INTERVAL": "1s"}, wantVar: "FLIP_SYNC_INTERVAL", wantMsg: "10s to 24h"},
		{name: "drain poll too fast", env: map[string]string{"FLIP_DRAIN_POLL": "10ms"}, wantVar: "FLIP_DRAIN_POLL", wantMsg: "100ms to 1m"},
		// Ranges (issue 12, item 3): a busy loop, and sums that overflow.
		{name: "probe interval 1ns: a busy loop", env: map[string]string{"FLIP_PROBE_INTERVAL": "1ns"}, wantVar: "FLIP_PROBE_INTERVAL", wantMsg: "out of range (10ms to 10s)"},
		{name: "probe interval just under its range", env: map[string]string{"FLIP_PROBE_INTERVAL": "9ms"}, wantVar: "FLIP_PROBE_INTERVAL"},
		{name: "start timeout that overflows the holder wait", env: map[string]string{"FLIP_START_TIMEOUT": "2562047h"}, wantVar: "FLIP_START_TIMEOUT", wantMsg: "out of range"},
		{name: "dead after that passed the init-dead check", env: map[string]string{"FLIP_DEAD_AFTER": "1500000h", "FLIP_INIT_DEAD": "2562047h"}, wantVar: "FLIP_DEAD_AFTER", wantMsg: "out of range"},
		{name: "hold down over a day", env: map[string]string{"FLIP_HOLD_DOWN": "25h"}, wantVar: "FLIP_HOLD_DOWN"},
		{name: "garp count over 100", env: map[string]string{"FLIP_GARP_COUNT": "101"}, wantVar: "FLIP_GARP_COUNT", wantMsg: "1 to 100"},
		{name: "fonulator retries over 10", env: map[string]string{"FLIP_FONULATOR_RETRIES": "11"}, wantVar: "FLIP_FONULATOR_RETRIES"},
		// Addresses in two roles.
		{name: "tiebreaker is a VIP", env: map[string]string{"FLIP_TIEBREAKER": "192.0.2.110"}, wantVar: "FLIP_TIEBREAKER", wantMsg: "is a VIP"},
		{name: "tiebreaker is the other box", env: map[string]string{"FLIP_TIEBREAKER": "192.0.2.12", "FLIP_PEER": "192.0.2.12", "FLIP_PEER_KEY": "0123456789abcdef"}, wantVar: "FLIP_TIEBREAKER", wantMsg: "other box"},
		{name: "tiebreaker is this box", env: map[string]string{"FLIP_TIEBREAKER": "192.0.2.11"}, wantVar: "FLIP_TIEBREAKER", wantMsg: "this box"},
		{name: "peer is a VIP", env: map[string]string{"FLIP_PEER": "192.0.2.110", "FLIP_PEER_KEY": "0123456789abcdef"}, wantVar: "FLIP_PEER", wantMsg: "is a VIP"},
		{name: "VIP /16 on a /24", env: map[string]string{"FLIP_RESOURCES": "192.0.2.110/16 asterisk"}, wantVar: "FLIP_RESOURCES", wantMsg: "192.0.2.110/24"},
		{name: "VIP /0", env: map[string]string{"FLIP_RESOURCES": "192.0.2.110/0 asterisk"}, wantVar: "FLIP_RESOURCES"},
		{name: "init dead negative", env: map[string]string{"FLIP_INIT_DEAD": "-1s"}, wantVar: "FLIP_INIT_DEAD"},
		{name: "init dead below twice dead after", env: map[string]string{"FLIP_INIT_DEAD": "1999ms"}, wantVar: "FLIP_INIT_DEAD", wantMsg: "FLIP_DEAD_AFTER"},
		{name: "init dead below twice a raised dead after", env: map[string]string{"FLIP_DEAD_AFTER": "20s"}, wantVar: "FLIP_INIT_DEAD"},
		{name: "start timeout zero", env: map[string]string{"FLIP_START_TIMEOUT": "0s"}, wantVar: "FLIP_START_TIMEOUT"},
		{name: "holder wait negative", env: map[string]string{"FLIP_HOLDER_WAIT": "-1s"}, wantVar: "FLIP_HOLDER_WAIT"},
		{name: "handover wait negative", env: map[string]string{"FLIP_HANDOVER_WAIT": "-1s"}, wantVar: "FLIP_HANDOVER_WAIT"},
		{name: "handover wait within the refusal time", env: map[string]string{"FLIP_HANDOVER_WAIT": "400ms"}, wantVar: "FLIP_HANDOVER_WAIT", wantMsg: "FLIP_REFUSED_AFTER"},
		{name: "resource timeout zero", env: map[string]string{"FLIP_RESOURCE_TIMEOUT": "0s"}, wantVar: "FLIP_RESOURCE_TIMEOUT"},
		{name: "garp count zero", env: map[string]string{"FLIP_GARP_COUNT": "0"}, wantVar: "FLIP_GARP_COUNT"},
		{name: "garp count not a number", env: map[string]string{"FLIP_GARP_COUNT": "five"}, wantVar: "FLIP_GARP_COUNT"},
		{name: "garp interval zero", env: map[string]string{"FLIP_GARP_INTERVAL": "0s"}, wantVar: "FLIP_GARP_INTERVAL"},
		{name: "fonulator retries negative", env: map[string]string{"FLIP_FONULATOR_RETRIES": "-1"}, wantVar: "FLIP_FONULATOR_RETRIES"},

		// Other variables.
		{name: "primary maybe", env: map[string]string{"FLIP_PRIMARY": "maybe"}, wantVar: "FLIP_PRIMARY", wantMsg: "maybe"},
		{name: "primary set but empty", env: map[string]string{"FLIP_PRIMARY": ""}, wantVar: "FLIP_PRIMARY"},
		{name: "source not an address of the box", env: map[string]string{"FLIP_SOURCE": "192.0.2.99"}, wantVar: "FLIP_SOURCE", wantMsg: "192.0.2.99"},
		{name: "source not an address", env: map[string]string{"FLIP_SOURCE": "pbx1.example"}, wantVar: "FLIP_SOURCE"},
		{name: "source is the VIP", env: map[string]string{"FLIP_SOURCE": "192.0.2.110"}, wantVar: "FLIP_SOURCE"},
		{
			// The active box holds the VIP, so it is one of its addresses:
			// it must still be refused as the probe source.
			name: "source is a VIP the box holds",
			env:  map[string]string{"FLIP_SOURCE": "192.0.2.110"},
			host: ftFakeHost{
				"eth0": ftPrefixes("192.0.2.11/24", "192.0.2.110/24"),
				"eth1": ftPrefixes("198.51.100.11/24"),
			},
			wantVar: "FLIP_SOURCE",
			wantMsg: "VIP",
		},
		{
			name:    "source is the second VIP the box holds",
			env:     map[string]string{"FLIP_RESOURCES": "192.0.2.110/24 198.51.100.110/24 routes asterisk", "FLIP_SOURCE": "198.51.100.110"},
			host:    ftFakeHost{"eth0": ftPrefixes("192.0.2.11/24"), "eth1": ftPrefixes("198.51.100.11/24", "198.51.100.110/24")},
			wantVar: "FLIP_SOURCE",
			wantMsg: "VIP",
		},
		{name: "probe target garbage", env: map[string]string{"FLIP_PROBE_TARGET": "garbage"}, wantVar: "FLIP_PROBE_TARGET", wantMsg: "garbage"},
		{name: "probe target port zero", env: map[string]string{"FLIP_PROBE_TARGET": "192.0.2.110:0"}, wantVar: "FLIP_PROBE_TARGET"},
		{name: "probe target bad port", env: map[string]string{"FLIP_PROBE_TARGET": "192.0.2.110:70000"}, wantVar: "FLIP_PROBE_TARGET"},
		{name: "log format xml", env: map[string]string{"FLIP_LOG_FORMAT": "xml"}, wantVar: "FLIP_LOG_FORMAT", wantMsg: "xml"},
		{name: "unknown variable (typo)", env: map[string]string{"FLIP_DEADAFTER": "1s"}, wantVar: "FLIP_DEADAFTER"},
		{name: "unknown empty variable", env: map[string]string{"FLIP_": ""}, wantVar: "FLIP_"},
		{name: "service command without {action}", env: map[string]string{"FLIP_SERVICE_CMD": "/etc/init.d/asterisk restart"}, wantVar: "FLIP_SERVICE_CMD", wantMsg: "{action}"},
		{name: "service command empty with a service", env: map[string]string{"FLIP_SERVICE_CMD": ""}, wantVar: "FLIP_SERVICE_CMD"},
		{name: "service command blank with a service", env: map[string]string{"FLIP_SERVICE_CMD": "   "}, wantVar: "FLIP_SERVICE_CMD"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			env := map[string]string{"FLIP_NAME": "pbx1"}
			if !tt.unset {
				env["FLIP_RESOURCES"] = resources
			}
			maps.Copy(env, tt.env)
			ftSetEnv(t, env)
			host := tt.host
			if host == nil {
				host = ftHost()
			}
			c, err := loadConfig(host)
			if err == nil {
				t.Fatalf("loadConfig succeeded, want an error naming %s; got %+v", tt.wantVar, c)
			}
			if c != nil {
				t.Errorf("loadConfig returned a config with its error: %+v", c)
			}
			var ce *configError
			if !errors.As(err, &ce) {
				t.Fatalf("error %q (%T) is not a *configError: main would not exit 2 for it", err, err)
			}
			if ce.Var != tt.wantVar {
				t.Errorf("Var = %q, want %q (error %q)", ce.Var, tt.wantVar, err)
			}
			if strings.TrimSpace(ce.Msg) == "" {
				t.Errorf("empty message for %s", ce.Var)
			}
			if !strings.Contains(err.Error(), tt.wantVar) {
				t.Errorf("error %q does not name %s", err, tt.wantVar)
			}
			if !strings.Contains(ce.Msg, tt.wantMsg) {
				t.Errorf("message %q does not mention %q", ce.Msg, tt.wantMsg)
			}
		})
	}
}

// A box whose interfaces cannot be read must not get a configuration.
func TestLoadConfigHostError(t *testing.T) {
	ftSetEnv(t, map[string]string{"FLIP_RESOURCES": "192.0.2.110/24 asterisk", "FLIP_NAME": "pbx1"})
	c, err := loadConfig(ftFailingHost{})
	if err == nil || c != nil {
		t.Fatalf("loadConfig = %+v, %v; want an error", c, err)
	}
	if !strings.Contains(err.Error(), "permission denied") {
		t.Errorf("error %q does not carry the cause", err)
	}
}

// TestConfigIgnoresUnprefixedVariables: with a prefix, envconfig.Process
// falls back to the bare tag name (RESOURCES, PRIMARY, NAME, DEAD_AFTER…)
// when FLIP_X is unset; unrelated variables in the service's environment
// must not configure flip.
func TestConfigIgnoresUnprefixedVariables(t *testing.T) {
	tests := []struct {
		name  string
		env   map[string]string
		check func(t *testing.T, c *config, err error)
	}{
		{
			name: "RESOURCES stands in for an unset FLIP_RESOURCES",
			env:  map[string]string{"RESOURCES": "192.0.2.110/24 asterisk"},
			check: func(t *testing.T, c *config, err error) {
				var ce *configError
				if !errors.As(err, &ce) || ce.Var != "FLIP_RESOURCES" {
					t.Errorf("loadConfig = %+v, %v; want a FLIP_RESOURCES error (it is unset)", c, err)
				}
			},
		},
		{
			name: "PRIMARY makes the box primary",
			env:  map[string]string{"FLIP_RESOURCES": "192.0.2.110/24 asterisk", "PRIMARY": "true"},
			check: func(t *testing.T, c *config, err error) {
				if err != nil {
					t.Fatalf("loadConfig: %v", err)
				}
				if c.Primary {
					t.Error("Primary = true from PRIMARY=true; FLIP_PRIMARY is unset, want false")
				}
			},
		},
		{
			name: "a bad DEAD_AFTER is blamed on FLIP_DEAD_AFTER",
			env:  map[string]string{"FLIP_RESOURCES": "192.0.2.110/24 asterisk", "DEAD_AFTER": "abc"},
			check: func(t *testing.T, c *config, err error) {
				if err != nil {
					t.Errorf("loadConfig: %v; want success, FLIP_DEAD_AFTER is unset", err)
				}
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			env := maps.Clone(tt.env)
			env["FLIP_NAME"] = "pbx1"
			ftSetEnv(t, env)
			c, err := loadConfig(ftHost())
			tt.check(t, c, err)
		})
	}
}

// TestLoadConfigRangeEdges: every duration and count just outside its
// range (config_bounds.go) is refused with exit 2, naming the variable.
func TestLoadConfigRangeEdges(t *testing.T) {
	type edge struct{ name, value string }
	var edges []edge
	for _, b := range durationBounds {
		below := b.min - time.Millisecond
		if b.zeroOK {
			below = -time.Millisecond
		}
		edges = append(edges, edge{b.name, below.String()}, edge{b.name, (b.max + time.Millisecond).String()})
	}
	for _, b := range countBounds {
		edges = append(edges, edge{b.name, strconv.Itoa(b.min - 1)}, edge{b.name, strconv.Itoa(b.max + 1)})
	}
	for _, e := range edges {
		t.Run(e.name+"="+e.value, func(t *testing.T) {
			ftSetEnv(t, map[string]string{"FLIP_NAME": "pbx1", "FLIP_RESOURCES": "192.0.2.110/24 fonebridge asterisk", e.name: e.value})
			_, err := loadConfig(ftHost())
			var ce *configError
			if !errors.As(err, &ce) || ce.Var != e.name {
				t.Fatalf("loadConfig = %v, want an error naming %s", err, e.name)
			}
		})
	}
}
