package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"
)

// ckHost is the box of the check tests: the config tests' fake host.
type ckHost = ftFakeHost

func ckBox() ckHost {
	return ckHost{
		"eth0": {netip.MustParsePrefix("192.0.2.11/24")},
		"eth1": {netip.MustParsePrefix("198.51.100.11/24")},
		"lo":   {netip.MustParsePrefix("127.0.0.1/8")},
	}
}

var ckMAC = net.HardwareAddr{0x02, 0, 0, 0, 0, 0x0b}

// ckStatusFull is /proc/self/status of a process with every capability.
const ckStatusFull = "Name:\tflip\nUmask:\t0022\nState:\tR (running)\nCapInh:\t0000000000000000\n" +
	"CapPrm:\t000001ffffffffff\nCapEff:\t000001ffffffffff\nCapBnd:\t000001ffffffffff\nCapAmb:\t0000000000000000\n"

// ckStatusNone is the same for an ordinary user.
const ckStatusNone = "Name:\tflip\nCapInh:\t0000000000000000\nCapPrm:\t0000000000000000\n" +
	"CapEff:\t0000000000000000\nCapBnd:\t000001ffffffffff\n"

// ckRedfoneConf is a valid redfone.conf pointing at some other box.
const ckRedfoneConf = "[globals]\nfb=192.0.2.222\nport=1\nserver=00:11:22:33:44:55\n\n[span1]\nframing=ccs\nencoding=hdb3\n"

// ckSetEnv sets the flip variables of a test, every other one unset
// (config_test.go's ftSetEnv).
func ckSetEnv(t *testing.T, env map[string]string) {
	t.Helper()
	if _, ok := env["FLIP_NAME"]; !ok {
		env["FLIP_NAME"] = "pbx1"
	}
	ftSetEnv(t, env)
}

// ckChecker is a checker of a healthy passive box that looks at nothing
// real except files and commands: every interface of addrs is up with a
// carrier, nothing is held, every route has the own address as src, full
// capabilities, and the probe target answers 404.
func ckChecker(cfg *config, addrs map[string][]netip.Prefix) *checker {
	return &checker{
		cfg:   cfg,
		addrs: addrs,
		link: func(name string) (checkLink, error) {
			if _, ok := addrs[name]; !ok {
				return checkLink{}, fmt.Errorf("route ip+net: no such network interface")
			}
			return checkLink{Up: true, Running: true, MAC: ckMAC}, nil
		},
		procStatus: func() (string, error) { return ckStatusFull, nil },
		holds:      func(vipSpec) (bool, error) { return false, nil },
		routeSrc:   func(v vipSpec) (netip.Addr, bool, error) { return v.Own.Addr(), true, nil },
		commands:   checkCommands,
		macLookup:  func(string) (net.HardwareAddr, error) { return ckMAC, nil },
		probe: func(context.Context) (probeResult, error) {
			return probeResult{Sent: time.Now(), Answered: true, Status: 404, Server: "Asterisk PBX 18", RTT: time.Millisecond}, nil
		},
		// Never the real ping: unit tests send nothing on the wire.
		tiebreaker: func(cfg *config) checkRow {
			return tiebreakerRow(cfg, func(*config) (time.Duration, error) { return time.Millisecond, nil })
		},
	}
}

// ckScript writes an executable script that appends its arguments to log
// when run, and returns its path.
func ckScript(t *testing.T, name, log string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), name)
	body := fmt.Sprintf("#!/bin/sh\necho \"$*\" >>%q\n", log)
	if err := os.WriteFile(p, []byte(body), 0o755); err != nil {
		t.Fatal(err)
	}
	return p
}

// ckFonulator copies the stand-in fonulator into a temp dir and makes it log
// its runs to the returned log path.
func ckFonulator(t *testing.T) (path, log string) {
	t.Helper()
	script, err := os.ReadFile(filepath.Join("testdata", "fonulator"))
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	path = filepath.Join(dir, "fonulator")
	if err := os.WriteFile(path, script, 0o755); err != nil {
		t.Fatal(err)
	}
	log = filepath.Join(dir, "fonulator.log")
	t.Setenv("FONULATOR_LOG", log)
	return path, log
}

// ckFullBox is an environment listing every kind of resource, with the
// commands as scripts that log when run. It returns the logs and the
// redfone.conf path.
func ckFullBox(t *testing.T, extra map[string]string) (logs []string, conf string) {
	t.Helper()
	dir := t.TempDir()
	svcLog, execLog := filepath.Join(dir, "service.log"), filepath.Join(dir, "exec.log")
	svc := ckScript(t, "service", svcLog)
	script := ckScript(t, "resource.sh", execLog)
	fonulator, fonLog := ckFonulator(t)
	conf = filepath.Join(dir, "redfone.conf")
	if err := os.WriteFile(conf, []byte(ckRedfoneConf), 0o644); err != nil {
		t.Fatal(err)
	}
	env := map[string]string{
		"FLIP_RESOURCES":            "192.0.2.110/24 198.51.100.110/24 routes fonebridge asterisk exec:" + script,
		"FLIP_SERVICE_CMD":          svc + " {action} {name}",
		"FLIP_FONULATOR":            fonulator,
		"FLIP_FONEBRIDGE_CONF":      conf,
		"FLIP_FONEBRIDGE_INTERFACE": "eth1",
	}
	for k, v := range extra {
		env[k] = v
	}
	ckSetEnv(t, env)
	return []string{svcLog, execLog, fonLog}, conf
}

// ckRun runs flip check with the fake box and the checker mk makes.
func ckRun(t *testing.T, mk func(*config, map[string][]netip.Prefix) *checker, args ...string) (int, string, string) {
	t.Helper()
	var stdout, stderr bytes.Buffer
	code := checkMain(args, &stdout, &stderr, ckBox(), mk)
	return code, stdout.String(), stderr.String()
}

func ckLoad(t *testing.T) *config {
	t.Helper()
	cfg, err := loadConfig(ckBox())
	if err != nil {
		t.Fatalf("loadConfig: %v", err)
	}
	return cfg
}

func ckActions(steps []planStep) []string {
	var out []string
	for i, s := range steps {
		if s.Step != i+1 {
			panic(fmt.Sprintf("step %d numbered %d", i+1, s.Step))
		}
		out = append(out, s.Action)
	}
	return out
}

// The plan follows FLIP_RESOURCES: start left to right with the
// announcement right after the network part, stop right to left.
func TestCheckPlan(t *testing.T) {
	script := ckScript(t, "resource.sh", filepath.Join(t.TempDir(), "log"))
	const (
		fbRelease  = "fonebridge: nothing on release: running fonulator here would point the TDMoE stream back at this box, stealing it from the new active one"
		stopGARP   = "announce: stop the announcement rounds still running"
		startAster = "service asterisk: systemctl start asterisk (timeout 30s)"
		stopAster  = "service asterisk: systemctl stop asterisk (timeout 30s)"
	)
	tests := []struct {
		name     string
		env      map[string]string
		takeover []string
		release  []string
	}{
		{
			name: "heartbeat fonebridge line",
			env:  map[string]string{"FLIP_RESOURCES": "192.0.2.110/24 fonebridge asterisk"},
			takeover: []string{
				"add 192.0.2.110/24 to eth0 (netlink)",
				"announce each VIP (192.0.2.110 on eth0: gratuitous ARP request+reply), 5 rounds every 1s, the first at once",
				"fonebridge: write server=02:00:00:00:00:0b into /etc/redfone.conf, run fonulator /etc/redfone.conf (timeout 30s, 2 retries)",
				startAster,
			},
			release: []string{
				stopGARP,
				stopAster,
				fbRelease,
				"delete 192.0.2.110/24 from eth0 (netlink)",
			},
		},
		{
			name: "heartbeat multi-homed line",
			env:  map[string]string{"FLIP_RESOURCES": "192.0.2.110/24 198.51.100.110/24 routes asterisk"},
			takeover: []string{
				"add 192.0.2.110/24 to eth0 (netlink)",
				"add 198.51.100.110/24 to eth1 (netlink)",
				"set src 192.0.2.110 on route 192.0.2.0/24 dev eth0",
				"set src 198.51.100.110 on route 198.51.100.0/24 dev eth1",
				"announce each VIP (192.0.2.110 on eth0: gratuitous ARP request+reply; 198.51.100.110 on eth1: gratuitous ARP request+reply), 5 rounds every 1s, the first at once",
				startAster,
			},
			release: []string{
				stopGARP,
				stopAster,
				// The routes resource restores its subnets in its own order.
				"set src 192.0.2.11 (own address) on route 192.0.2.0/24 dev eth0, before the VIP is deleted so the route survives",
				"set src 198.51.100.11 (own address) on route 198.51.100.0/24 dev eth1, before the VIP is deleted so the route survives",
				"delete 198.51.100.110/24 from eth1 (netlink)",
				"delete 192.0.2.110/24 from eth0 (netlink)",
			},
		},
		{
			name: "exec, own service command and timings",
			env: map[string]string{
				"FLIP_RESOURCES":         "192.0.2.110/24 192.0.2.111/24@eth0 routes fonebridge asterisk exec:" + script,
				"FLIP_SERVICE_CMD":       "service {name} {action}",
				"FLIP_RESOURCE_TIMEOUT":  "5s",
				"FLIP_GARP_COUNT":        "3",
				"FLIP_GARP_INTERVAL":     "2s",
				"FLIP_FONULATOR":         "/opt/redfone/fonulator",
				"FLIP_FONULATOR_TIMEOUT": "20s",
				"FLIP_FONULATOR_RETRIES": "0",
				"FLIP_FONEBRIDGE_CONF":   "/srv/redfone.conf",
			},
			takeover: []string{
				"add 192.0.2.110/24 to eth0 (netlink)",
				"add 192.0.2.111/24 to eth0 (netlink)",
				// One subnet, one route: its src is the first VIP.
				"set src 192.0.2.110 on route 192.0.2.0/24 dev eth0",
				"announce each VIP (192.0.2.110 on eth0: gratuitous ARP request+reply; 192.0.2.111 on eth0: gratuitous ARP request+reply), 3 rounds every 2s, the first at once",
				"fonebridge: write server=02:00:00:00:00:0b into /srv/redfone.conf, run /opt/redfone/fonulator /srv/redfone.conf (timeout 20s, 0 retries)",
				"service asterisk: service asterisk start (timeout 5s)",
				"exec: " + script + " start (timeout 5s)",
			},
			release: []string{
				stopGARP,
				"exec: " + script + " stop (timeout 5s)",
				"service asterisk: service asterisk stop (timeout 5s)",
				fbRelease,
				"set src 192.0.2.11 (own address) on route 192.0.2.0/24 dev eth0, before the VIP is deleted so the route survives",
				"delete 192.0.2.111/24 from eth0 (netlink)",
				"delete 192.0.2.110/24 from eth0 (netlink)",
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ckSetEnv(t, tt.env)
			cfg := ckLoad(t)
			plan := buildCheckPlan(cfg, ckMAC.String())
			if got := ckActions(plan.Takeover); !reflect.DeepEqual(got, tt.takeover) {
				t.Errorf("takeover:\n got  %q\n want %q", got, tt.takeover)
			}
			if got := ckActions(plan.Release); !reflect.DeepEqual(got, tt.release) {
				t.Errorf("release:\n got  %q\n want %q", got, tt.release)
			}
			// The steps name the agent's resources in the agent's order.
			resources, network := buildResources(cfg, nil, netlinkAddresses{})
			var want []string
			for i, r := range resources {
				want = append(want, r.Name())
				if i == network-1 {
					want = append(want, "announce")
				}
			}
			var got []string
			for _, s := range plan.Takeover {
				if len(got) == 0 || got[len(got)-1] != s.Resource {
					got = append(got, s.Resource)
				}
			}
			if !reflect.DeepEqual(got, want) {
				t.Errorf("takeover resources %q, want the agent's %q", got, want)
			}
		})
	}
}

func TestParseCapEff(t *testing.T) {
	tests := []struct {
		name    string
		status  string
		want    uint64
		wantErr bool
	}{
		{"root", ckStatusFull, 0x1ffffffffff, false},
		{"no capabilities", ckStatusNone, 0, false},
		{"only net_admin", "Name:\tflip\nCapEff:\t0000000000001000\n", 1 << capNetAdmin, false},
		{"net_admin and net_raw", "CapEff:\t0000000000003000\nCapBnd:\t0000000000003000\n", 1<<capNetAdmin | 1<<capNetRaw, false},
		{"no CapEff line", "Name:\tflip\nCapPrm:\t0000000000003000\n", 0, true},
		{"garbage", "CapEff:\tzz\n", 0, true},
		{"empty", "", 0, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := parseCapEff(tt.status)
			if (err != nil) != tt.wantErr || got != tt.want {
				t.Fatalf("parseCapEff = %#x, %v; want %#x, error %v", got, err, tt.want, tt.wantErr)
			}
		})
	}
}

func TestCheckCapabilities(t *testing.T) {
	tests := []struct {
		name       string
		status     string
		err        error
		want       checkStatus
		mentions   []string
		notMention []string
	}{
		{"root", ckStatusFull, nil, checkOK, []string{"CAP_NET_ADMIN and CAP_NET_RAW"}, nil},
		{"both bits only", "CapEff:\t0000000000003000\n", nil, checkOK, nil, nil},
		{"none", ckStatusNone, nil, checkFail, []string{"CAP_NET_ADMIN (", "CAP_NET_RAW ("}, nil},
		{"net_admin only", "CapEff:\t0000000000001000\n", nil, checkFail, []string{"CAP_NET_RAW ("}, []string{"CAP_NET_ADMIN ("}},
		{"net_raw only", "CapEff:\t0000000000002000\n", nil, checkFail, []string{"CAP_NET_ADMIN ("}, []string{"CAP_NET_RAW ("}},
		{"unreadable", "", errors.New("permission denied"), checkFail, []string{"permission denied"}, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := &checker{procStatus: func() (string, error) { return tt.status, tt.err }}
			row := c.checkCapabilities()
			if row.Status != tt.want {
				t.Fatalf("status %s, want %s: %+v", row.Status, tt.want, row)
			}
			for _, m := range tt.mentions {
				if !strings.Contains(row.Detail, m) {
					t.Errorf("detail %q does not mention %q", row.Detail, m)
				}
			}
			for _, m := range tt.notMention {
				if strings.Contains(row.Detail, m) {
					t.Errorf("detail %q mentions %q", row.Detail, m)
				}
			}
			if tt.want == checkFail && !strings.Contains(row.Fix, "AmbientCapabilities") {
				t.Errorf("fix %q does not say how to grant them", row.Fix)
			}
		})
	}
}

func TestCheckUsage(t *testing.T) {
	mk := func(*config, map[string][]netip.Prefix) *checker {
		t.Fatal("no check may run")
		return nil
	}
	ckSetEnv(t, map[string]string{"FLIP_RESOURCES": "192.0.2.110/24 asterisk"})
	for _, tt := range []struct {
		args      []string
		code      int
		stdout    string
		stderrHas string
	}{
		{[]string{"-h"}, 0, checkUsage, ""},
		{[]string{"--help"}, 0, checkUsage, ""},
		{[]string{"--bogus"}, 2, "", "flag provided but not defined: -bogus"},
		{[]string{"extra"}, 2, "", "takes no arguments"},
	} {
		t.Run(strings.Join(tt.args, " "), func(t *testing.T) {
			code, stdout, stderr := ckRun(t, mk, tt.args...)
			if code != tt.code || stdout != tt.stdout || !strings.Contains(stderr, tt.stderrHas) {
				t.Fatalf("exit %d, stdout %q, stderr %q; want %d, %q, stderr with %q", code, stdout, stderr, tt.code, tt.stdout, tt.stderrHas)
			}
		})
	}
}

// Bad configuration: exit 2 before anything is looked at, naming the
// variable like `flip run` does.
func TestCheckBadConfig(t *testing.T) {
	mk := func(*config, map[string][]netip.Prefix) *checker {
		t.Fatal("no check may run on a bad configuration")
		return nil
	}
	for _, tt := range []struct {
		name string
		env  map[string]string
		v    string
	}{
		{"unparsable", map[string]string{"FLIP_RESOURCES": "192.0.2.110/24 asterisk", "FLIP_DEAD_AFTER": "soon"}, "FLIP_DEAD_AFTER"},
		{"not above the interval", map[string]string{"FLIP_RESOURCES": "192.0.2.110/24 asterisk", "FLIP_DEAD_AFTER": "50ms"}, "FLIP_DEAD_AFTER"},
		{"VIP outside the box", map[string]string{"FLIP_RESOURCES": "203.0.113.10/24 asterisk"}, "FLIP_RESOURCES"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			ckSetEnv(t, tt.env)
			code, stdout, stderr := ckRun(t, mk)
			if code != 2 {
				t.Errorf("exit %d, want 2", code)
			}
			if !strings.HasPrefix(stderr, "flip: configuration error: "+tt.v+":") {
				t.Errorf("stderr %q does not name %s like flip run does", stderr, tt.v)
			}
			if stdout != "" {
				t.Errorf("stdout %q, want nothing", stdout)
			}

			code, stdout, _ = ckRun(t, mk, "--json")
			var rep checkReport
			if err := json.Unmarshal([]byte(stdout), &rep); err != nil {
				t.Fatalf("--json output %q: %v", stdout, err)
			}
			if code != 2 || rep.OK || len(rep.Checks) != 1 || rep.Checks[0].Status != checkFail || !strings.Contains(rep.Checks[0].Detail, tt.v) {
				t.Errorf("--json: exit %d, %+v; want 2 and one failed configuration check naming %s", code, rep, tt.v)
			}
		})
	}
}

// Every check passes on a healthy box, and checking runs nothing: no
// fonulator, no service command, no script, redfone.conf untouched.
func TestCheckAllPassChangesNothing(t *testing.T) {
	logs, conf := ckFullBox(t, map[string]string{"FLIP_TIEBREAKER": "192.0.2.1"})
	code, stdout, stderr := ckRun(t, ckChecker)
	t.Logf("report:\n%s", stdout)
	if code != 0 {
		t.Fatalf("exit %d, want 0; stderr %q", code, stderr)
	}
	for _, want := range []string{
		"OK    configuration",
		"OK    capabilities",
		"OK    vip 192.0.2.110/24 ",
		"OK    vip 198.51.100.110/24 ",
		"OK    role at start",
		"OK    route 192.0.2.0/24 ",
		"OK    route 198.51.100.0/24 ",
		"OK    service command",
		"OK    service asterisk",
		"OK    fonebridge",
		"a takeover writes server=02:00:00:00:00:0b (MAC of eth1), the file has server=00:11:22:33:44:55 (another box) now",
		"OK    probe 192.0.2.110:5060",
		"SIP 404 in 1ms, server Asterisk PBX 18",
		"OK    tiebreaker",
		"all checks passed: ",
		"takeover (left to right):\n   1. add 192.0.2.110/24 to eth0 (netlink)\n",
		"release (right to left):\n   1. announce: stop",
	} {
		if !strings.Contains(stdout, want) {
			t.Errorf("report lacks %q", want)
		}
	}
	for _, log := range logs {
		if _, err := os.Stat(log); !errors.Is(err, os.ErrNotExist) {
			b, _ := os.ReadFile(log)
			t.Errorf("%s exists: a command ran during the check: %q", log, b)
		}
	}
	if b, err := os.ReadFile(conf); err != nil || string(b) != ckRedfoneConf {
		t.Errorf("redfone.conf changed: %q, %v", b, err)
	}
}

// A failed check gives exit 1 and still the whole report and plan.
func TestCheckFailure(t *testing.T) {
	ckFullBox(t, map[string]string{"FLIP_FONULATOR": "/nonexistent/fonulator"})
	code, stdout, _ := ckRun(t, ckChecker)
	t.Logf("report:\n%s", stdout)
	if code != 1 {
		t.Fatalf("exit %d, want 1", code)
	}
	for _, want := range []string{
		"FAIL  fonebridge",
		"fix: FLIP_FONULATOR: \"/nonexistent/fonulator\" not found",
		"SOME CHECKS FAILED: ",
		"OK    probe 192.0.2.110:5060",
		"takeover (left to right):",
		"run /nonexistent/fonulator ",
		"release (right to left):",
	} {
		if !strings.Contains(stdout, want) {
			t.Errorf("report lacks %q", want)
		}
	}

	code, stdout, _ = ckRun(t, ckChecker, "--json")
	if code != 1 {
		t.Errorf("--json: exit %d, want 1", code)
	}
	var rep checkReport
	if err := json.Unmarshal([]byte(stdout), &rep); err != nil {
		t.Fatalf("--json output does not parse: %v\n%s", err, stdout)
	}
	if rep.OK {
		t.Error("ok = true with a failed check")
	}
	statuses := map[string]checkStatus{}
	for _, c := range rep.Checks {
		statuses[c.Name] = c.Status
	}
	if statuses["fonebridge"] != checkFail || statuses["configuration"] != checkOK || statuses["capabilities"] != checkOK {
		t.Errorf("statuses %v, want fonebridge fail, configuration and capabilities ok", statuses)
	}
	if len(rep.Plan.Takeover) != 8 || len(rep.Plan.Release) != 8 {
		t.Errorf("plan has %d takeover and %d release steps, want 8 each: %+v", len(rep.Plan.Takeover), len(rep.Plan.Release), rep.Plan)
	}
	// The raw JSON has the documented shape.
	var raw map[string]json.RawMessage
	if err := json.Unmarshal([]byte(stdout), &raw); err != nil {
		t.Fatal(err)
	}
	for _, k := range []string{"ok", "checks", "plan"} {
		if _, ok := raw[k]; !ok {
			t.Errorf("JSON lacks %q", k)
		}
	}
}

// What the box looks like shows in the VIP, role and route rows.
func TestCheckVIPsAndRoutes(t *testing.T) {
	lan, wan := netip.MustParseAddr("192.0.2.110"), netip.MustParseAddr("198.51.100.110")
	tests := []struct {
		name  string
		setup func(c *checker)
		want  map[string]checkStatus
		has   []string
	}{
		{
			name: "passive",
			want: map[string]checkStatus{"vip 192.0.2.110/24": checkOK, "role at start": checkOK, "route 192.0.2.0/24": checkOK},
			has:  []string{"eth0 up, own address 192.0.2.11/24 in the VIP's subnet, not on this box now", "passive: ", "192.0.2.0/24 dev eth0 src 192.0.2.11 (own address; VIP not held)"},
		},
		{
			name: "active",
			setup: func(c *checker) {
				c.holds = func(vipSpec) (bool, error) { return true, nil }
				c.routeSrc = func(v vipSpec) (netip.Addr, bool, error) { return v.Addr, true, nil }
				c.probe = func(context.Context) (probeResult, error) {
					return probeResult{Err: context.DeadlineExceeded}, nil
				}
			},
			want: map[string]checkStatus{
				"vip 192.0.2.110/24": checkOK, "role at start": checkOK, "route 198.51.100.0/24": checkOK,
				"probe 192.0.2.110:5060": checkWarn,
			},
			has: []string{
				"held by this box now", "active: ", "198.51.100.0/24 dev eth1 src 198.51.100.110 (the VIP; VIP held)",
				"this box holds the VIPs, so its own Asterisk should answer: a running flip here would release",
			},
		},
		{
			name: "half-held, src not matching",
			setup: func(c *checker) {
				c.holds = func(v vipSpec) (bool, error) { return v.Addr == lan, nil }
			},
			want: map[string]checkStatus{"role at start": checkWarn, "route 192.0.2.0/24": checkWarn, "route 198.51.100.0/24": checkOK},
			has:  []string{"half-held: 1 of 2 VIPs on this box, missing 198.51.100.110/24", "192.0.2.0/24 dev eth0 src 192.0.2.11, expected 192.0.2.110"},
		},
		{
			name: "interface down, no carrier, route gone",
			setup: func(c *checker) {
				c.link = func(name string) (checkLink, error) {
					return checkLink{Up: name != "eth0", Running: name != "eth1"}, nil
				}
				c.routeSrc = func(v vipSpec) (netip.Addr, bool, error) { return netip.Addr{}, v.Addr != wan, nil }
			},
			want: map[string]checkStatus{"vip 192.0.2.110/24": checkFail, "vip 198.51.100.110/24": checkWarn, "route 198.51.100.0/24": checkWarn},
			has:  []string{"interface eth0 is down", "ip link set eth0 up", "interface eth1 is up but has no carrier", "no connected route 198.51.100.0/24 dev eth1", "ip route add 198.51.100.0/24 dev eth1 scope link src 198.51.100.11"},
		},
		{
			name: "interface gone, own address gone, netlink fails",
			setup: func(c *checker) {
				delete(c.addrs, "eth1")
				c.link = func(name string) (checkLink, error) {
					if name == "eth1" {
						return checkLink{}, errors.New("no such network interface")
					}
					return checkLink{Up: true, Running: true}, nil
				}
				c.holds = func(v vipSpec) (bool, error) { return false, errors.New("netlink: operation not permitted") }
				c.routeSrc = func(vipSpec) (netip.Addr, bool, error) {
					return netip.Addr{}, false, errors.New("netlink: operation not permitted")
				}
			},
			want: map[string]checkStatus{"vip 192.0.2.110/24": checkFail, "vip 198.51.100.110/24": checkFail, "route 192.0.2.0/24": checkFail},
			has:  []string{"interface eth1: no such network interface", "own address 198.51.100.11/24 is gone from eth1", "cannot ask netlink", "cannot read the connected route"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ckSetEnv(t, map[string]string{"FLIP_RESOURCES": "192.0.2.110/24 198.51.100.110/24 routes"})
			cfg := ckLoad(t)
			addrs, _ := ckBox().InterfaceAddrs()
			c := ckChecker(cfg, addrs)
			if tt.setup != nil {
				tt.setup(c)
			}
			rep := c.run(context.Background())
			var all strings.Builder
			got := map[string]checkStatus{}
			failed := false
			for _, r := range rep.Checks {
				got[r.Name] = r.Status
				failed = failed || r.Status == checkFail
				fmt.Fprintf(&all, "%s %s: %s (fix: %s)\n", r.Status, r.Name, r.Detail, r.Fix)
			}
			t.Logf("\n%s", all.String())
			for name, st := range tt.want {
				if got[name] != st {
					t.Errorf("%s: %q, want %q", name, got[name], st)
				}
			}
			for _, h := range tt.has {
				if !strings.Contains(all.String(), h) {
					t.Errorf("report lacks %q", h)
				}
			}
			if rep.OK == failed {
				t.Errorf("ok = %v with a failed check: %v", rep.OK, failed)
			}
		})
	}
}

// One real SIP OPTIONS from the configured source to an in-process
// responder (probe_test.go's), through the system checker's prober.
func TestCheckProbe(t *testing.T) {
	host := ckHost{"lo": {netip.MustParsePrefix("127.0.0.1/8")}}
	tests := []struct {
		name   string
		reply  ftSIPReply
		status checkStatus
		has    []string
	}{
		{
			name:   "answers",
			reply:  ftSIPReply{status: 200, reason: "OK", headers: map[string]string{"Server": "ck-asterisk 1.0"}},
			status: checkOK,
			has:    []string{"SIP 200 in ", "server ck-asterisk 1.0"},
		},
		{
			name:   "answers 404 without Server",
			reply:  ftSIPReply{status: 404, reason: "Not Found"},
			status: checkOK,
			has:    []string{"SIP 404 in ", "(no Server or User-Agent header)"},
		},
		{
			name:   "silent",
			reply:  ftSIPReply{drop: true},
			status: checkWarn,
			has:    []string{"no answer within FLIP_DEAD_AFTER (300ms)", "from 127.0.0.1", "cold standby", "take over"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := ftProbeServer(t, func(int) ftSIPReply { return tt.reply })
			ckSetEnv(t, map[string]string{
				"FLIP_RESOURCES":    "127.0.0.110/8",
				"FLIP_PROBE_TARGET": srv.addr(),
				"FLIP_DEAD_AFTER":   "300ms",
			})
			cfg, err := loadConfig(host)
			if err != nil {
				t.Fatal(err)
			}
			addrs, _ := host.InterfaceAddrs()
			start := time.Now()
			row := newSystemChecker(cfg, addrs).checkProbe(context.Background(), false)
			t.Logf("%+v after %s", row, time.Since(start))
			if row.Status != tt.status {
				t.Errorf("status %s, want %s", row.Status, tt.status)
			}
			for _, h := range tt.has {
				if !strings.Contains(row.Detail, h) {
					t.Errorf("detail %q lacks %q", row.Detail, h)
				}
			}
			if n := len(srv.requests()); n != 1 {
				t.Errorf("%d requests, want exactly one probe", n)
			}
			if row.Name != "probe "+srv.addr() {
				t.Errorf("name %q", row.Name)
			}
		})
	}
}

func TestCheckTiebreaker(t *testing.T) {
	answers := func(*config) (time.Duration, error) { return time.Millisecond, nil }
	silent := func(*config) (time.Duration, error) { return 0, errors.New("no answer within FLIP_DEAD_AFTER (1s)") }
	row := tiebreakerRow(&config{}, answers)
	if row.Status != checkSkip || row.Detail != "FLIP_TIEBREAKER not set" {
		t.Errorf("no tiebreaker: %+v", row)
	}
	set := &config{Tiebreakers: []netip.Addr{netip.MustParseAddr("192.0.2.1")}}
	if row = tiebreakerRow(set, answers); row.Status != checkOK || !strings.Contains(row.Detail, "192.0.2.1") {
		t.Errorf("tiebreaker answering: %+v", row)
	}
	if row = tiebreakerRow(set, silent); row.Status != checkFail || !strings.Contains(row.Detail, "cut off") || row.Fix == "" {
		t.Errorf("tiebreaker silent: %+v", row)
	}
}

// runCheck on this box's loopback, with the real, read-only checker: a
// missing fonulator fails the check, and the VIP is not added.
func TestRunCheckOnThisBox(t *testing.T) {
	addrs, err := systemInterfaces{}.InterfaceAddrs()
	if err != nil || !ownOn(addrs["lo"], netip.MustParsePrefix("127.0.0.1/8")) {
		t.Skipf("needs lo with 127.0.0.1/8 (have %v, %v)", addrs["lo"], err)
	}
	ckSetEnv(t, map[string]string{
		"FLIP_RESOURCES":  "127.0.0.110/8 fonebridge",
		"FLIP_FONULATOR":  "/nonexistent/fonulator",
		"FLIP_DEAD_AFTER": "300ms",
	})
	var stdout, stderr bytes.Buffer
	code := runCheck([]string{"--json"}, &stdout, &stderr)
	t.Logf("stdout:\n%s\nstderr: %s", stdout.String(), stderr.String())
	if code != 1 {
		t.Fatalf("exit %d, want 1", code)
	}
	var rep checkReport
	if err := json.Unmarshal(stdout.Bytes(), &rep); err != nil {
		t.Fatal(err)
	}
	if rep.OK {
		t.Error("ok = true with fonulator missing")
	}
	names := map[string]checkRow{}
	for _, c := range rep.Checks {
		names[c.Name] = c
	}
	for _, n := range []string{"configuration", "capabilities", "vip 127.0.0.110/8", "role at start", "fonebridge", "tiebreaker"} {
		if _, ok := names[n]; !ok {
			t.Errorf("no %q check", n)
		}
	}
	if names["fonebridge"].Status != checkFail {
		t.Errorf("fonebridge %+v, want fail", names["fonebridge"])
	}
	if held, err := (netlinkAddresses{}).Query(vipSpec{Addr: netip.MustParseAddr("127.0.0.110"), Iface: "lo"}); err == nil && held {
		t.Error("127.0.0.110 is on lo after flip check")
	}
}
