package main

import (
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// sdListener is a stand-in for systemd's notify socket.
type sdListener struct {
	t    *testing.T
	conn *net.UnixConn
}

func sdListen(t *testing.T, name string) *sdListener {
	t.Helper()
	conn, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: name, Net: "unixgram"})
	if err != nil {
		t.Fatalf("listen %s: %v", name, err)
	}
	t.Cleanup(func() { conn.Close() })
	return &sdListener{t: t, conn: conn}
}

// drain returns every datagram queued now (waiting at most 200 ms for the
// first one, 20 ms for each further one).
func (l *sdListener) drain() []string {
	l.t.Helper()
	var out []string
	buf := make([]byte, 4096)
	wait := 200 * time.Millisecond
	for {
		l.conn.SetReadDeadline(time.Now().Add(wait))
		n, err := l.conn.Read(buf)
		if err != nil {
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				return out
			}
			l.t.Fatalf("read notify socket: %v", err)
		}
		out = append(out, string(buf[:n]))
		wait = 20 * time.Millisecond
	}
}

// sdClock is a settable clock for the rate limit.
type sdClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *sdClock) now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *sdClock) add(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

// sdLogBuffer is a log sink safe for concurrent writes.
type sdLogBuffer = ftSyncBuffer

func sdTestLogger() (*slog.Logger, *sdLogBuffer) {
	var buf sdLogBuffer
	return slog.New(slog.NewTextHandler(&buf, &slog.HandlerOptions{Level: slog.LevelDebug})), &buf
}

func sdCount(msgs []string, want string) int {
	n := 0
	for _, m := range msgs {
		if m == want {
			n++
		}
	}
	return n
}

func TestSystemdNotifySequence(t *testing.T) {
	sock := filepath.Join(t.TempDir(), "notify")
	l := sdListen(t, sock)
	t.Setenv("NOTIFY_SOCKET", sock)
	t.Setenv("WATCHDOG_USEC", "2000000") // 2 s: a keep-alive at most every 1 s
	t.Setenv("WATCHDOG_PID", strconv.Itoa(os.Getpid()))
	log, logs := sdTestLogger()
	s := newSystemdEvents(log)
	if !s.enabled() || s.watchdog != 2*time.Second {
		t.Fatalf("enabled=%v watchdog=%s, want true and 2s", s.enabled(), s.watchdog)
	}
	for _, k := range systemdNotifyEnv {
		if v, ok := os.LookupEnv(k); ok {
			t.Errorf("%s=%q still set: commands flip runs would inherit it", k, v)
		}
	}
	clock := &sdClock{t: time.Date(2025, 1, 1, 12, 0, 0, 0, time.UTC)}
	s.now = clock.now

	s.Started(rolePassive, 0)
	for i := 0; i < 50; i++ { // 50 probes within 490 ms: one keep-alive
		s.Probed(probeResult{Answered: true})
		clock.add(10 * time.Millisecond)
	}
	clock.add(600 * time.Millisecond) // 1.09 s after the first: one more
	for i := 0; i < 20; i++ {
		s.Probed(probeResult{})
	}
	s.Transition(rolePassive, roleActive, causeServiceSilent, "nobody answered for 1s", true, 12345*time.Microsecond)
	s.Transition(roleActive, rolePassive, causeOwnServiceSilent, "own service silent", true, 30*time.Millisecond)
	s.Transition(rolePassive, rolePassive, causeTakeoverFailed, "takeover aborted:\nasterisk failed", false, 2*time.Second)
	s.Stopping()
	s.Probed(probeResult{}) // after Stopping: nothing more is sent
	s.Started(roleActive, 2)

	got := l.drain()
	want := []string{
		"READY=1\nSTATUS=passive, 0 VIPs held",
		"WATCHDOG=1",
		"WATCHDOG=1",
		"STATUS=active: took over (service_silent) in 12ms",
		"STATUS=passive: released (own_service_silent) in 30ms",
		"STATUS=passive: takeover failed (takeover_failed) in 2s",
		"STOPPING=1\nSTATUS=stopping; the box is left as it is (passive)",
	}
	if strings.Join(got, "|") != strings.Join(want, "|") {
		t.Errorf("datagrams:\n got %q\nwant %q", got, want)
	}
	if !strings.HasPrefix(got[0], "READY=1") {
		t.Errorf("first datagram %q, want READY=1 first", got[0])
	}
	if !strings.HasPrefix(got[len(got)-1], "STOPPING=1") {
		t.Errorf("last datagram %q, want STOPPING=1 last", got[len(got)-1])
	}
	if n := sdCount(got, "WATCHDOG=1"); n >= 70 || n != 2 {
		t.Errorf("%d keep-alives for 70 probes, want 2 (rate-limited to half the interval)", n)
	}
	if s.failures() != 0 || strings.Contains(logs.String(), "cannot notify") {
		t.Errorf("failures=%d, log:\n%s", s.failures(), logs)
	}
}

func TestSystemdWatchdogRealClock(t *testing.T) {
	sock := filepath.Join(t.TempDir(), "notify")
	l := sdListen(t, sock)
	t.Setenv("NOTIFY_SOCKET", sock)
	t.Setenv("WATCHDOG_USEC", "100000") // 100 ms: at most every 50 ms
	s := newSystemdEvents(nil)
	s.Started(roleActive, 1)
	start := time.Now()
	probes := 0
	for time.Since(start) < 300*time.Millisecond {
		s.Probed(probeResult{})
		probes++
		time.Sleep(time.Millisecond)
	}
	got := l.drain()
	if got[0] != "READY=1\nSTATUS=active, 1 VIP held" {
		t.Errorf("first datagram %q", got[0])
	}
	n := sdCount(got, "WATCHDOG=1")
	// 300 ms / 50 ms = 6 (+1 for the first); sleeping can only lower it.
	if n < 2 || n > 8 {
		t.Errorf("%d keep-alives for %d probes in 300 ms, want 2..8", n, probes)
	}
}

func TestSystemdOtherEventsKeepAlive(t *testing.T) {
	sock := filepath.Join(t.TempDir(), "notify")
	l := sdListen(t, sock)
	t.Setenv("NOTIFY_SOCKET", sock)
	t.Setenv("WATCHDOG_USEC", "1000000")
	s := newSystemdEvents(nil)
	clock := &sdClock{t: time.Unix(1000, 0)}
	s.now = clock.now
	s.Phase("start", "203.0.113.100/24", time.Millisecond, nil)
	clock.add(time.Second)
	s.Fenced(nil, time.Second)
	clock.add(time.Second)
	s.Conflict(netip.MustParseAddr("203.0.113.100"), net.HardwareAddr{2, 0, 0, 0, 0, 1})
	if got := l.drain(); sdCount(got, "WATCHDOG=1") != 3 || len(got) != 3 {
		t.Errorf("got %q, want three keep-alives", got)
	}
}

func TestSystemdBusyRaisesWatchdog(t *testing.T) {
	sock := filepath.Join(t.TempDir(), "notify")
	l := sdListen(t, sock)
	t.Setenv("NOTIFY_SOCKET", sock)
	t.Setenv("WATCHDOG_USEC", "5000000")
	s := newSystemdEvents(nil)
	done := s.busy(30 * time.Second)
	inner := s.busy(time.Second) // smaller: must not lower the timeout
	inner()
	larger := s.busy(60 * time.Second)
	larger()
	done()
	done() // twice is harmless
	got := l.drain()
	want := []string{
		"WATCHDOG=1\nWATCHDOG_USEC=35000000",
		"WATCHDOG=1",
		"WATCHDOG=1\nWATCHDOG_USEC=65000000",
		"WATCHDOG_USEC=5000000\nWATCHDOG=1",
	}
	if strings.Join(got, "|") != strings.Join(want, "|") {
		t.Errorf("datagrams:\n got %q\nwant %q", got, want)
	}

	// Without a watchdog busy sends nothing.
	t.Setenv("NOTIFY_SOCKET", sock)
	os.Unsetenv("WATCHDOG_USEC")
	s = newSystemdEvents(nil)
	s.busy(time.Minute)()
	s.Probed(probeResult{})
	if got := l.drain(); len(got) != 0 {
		t.Errorf("no watchdog: got %q, want nothing", got)
	}
}

func TestSystemdAbstractSocket(t *testing.T) {
	name := fmt.Sprintf("@flip-test-%d-%d", os.Getpid(), time.Now().UnixNano())
	l := sdListen(t, name)
	t.Setenv("NOTIFY_SOCKET", name)
	s := newSystemdEvents(nil)
	s.Started(rolePassive, 0)
	s.Stopping()
	got := l.drain()
	if len(got) != 2 || !strings.HasPrefix(got[0], "READY=1") || !strings.HasPrefix(got[1], "STOPPING=1") {
		t.Errorf("abstract socket: got %q", got)
	}
}

func TestSystemdNoNotifySocket(t *testing.T) {
	t.Setenv("NOTIFY_SOCKET", "")
	os.Unsetenv("NOTIFY_SOCKET")
	t.Setenv("WATCHDOG_USEC", "1000000")
	log, logs := sdTestLogger()
	s := newSystemdEvents(log)
	if s.enabled() {
		t.Fatal("enabled without NOTIFY_SOCKET")
	}
	s.Started(roleActive, 1)
	s.Probed(probeResult{})
	s.busy(time.Minute)()
	s.Transition(rolePassive, roleActive, causeServiceSilent, "", true, time.Millisecond)
	s.Stopping()
	if s.failures() != 0 || logs.String() != "" {
		t.Errorf("failures=%d, log %q; want nothing at all", s.failures(), logs)
	}
	var ev events = s // it is an events listener
	_ = ev
}

func TestSystemdWatchdogPID(t *testing.T) {
	self := os.Getpid()
	for _, tt := range []struct {
		usec, pid string
		want      time.Duration
		err       bool
	}{
		{"", "", 0, false},
		{"5000000", "", 5 * time.Second, false},
		{"5000000", strconv.Itoa(self), 5 * time.Second, false},
		{"5000000", strconv.Itoa(self + 1), 0, false}, // another process's watchdog
		{"5000000", "x", 0, true},
		{"0", "", 0, true},
		{"-1", "", 0, true},
		{"abc", "", 0, true},
	} {
		got, err := sdWatchdogInterval(tt.usec, tt.pid, self)
		if got != tt.want || (err != nil) != tt.err {
			t.Errorf("sdWatchdogInterval(%q, %q) = %s, %v; want %s, error %v", tt.usec, tt.pid, got, err, tt.want, tt.err)
		}
	}
}

// A socket nobody reads fills up; sends must fail at once (never block the
// agent's loop) and the failure must be logged once, not per message.
func TestSystemdSendNeverBlocks(t *testing.T) {
	sock := filepath.Join(t.TempDir(), "notify")
	sdListen(t, sock) // never read
	t.Setenv("NOTIFY_SOCKET", sock)
	t.Setenv("WATCHDOG_USEC", "2")
	log, logs := sdTestLogger()
	s := newSystemdEvents(log)
	clock := &sdClock{t: time.Unix(0, 0)}
	s.now = clock.now
	start := time.Now()
	const n = 3000
	for i := 0; i < n; i++ {
		s.Probed(probeResult{})
		clock.add(time.Millisecond) // every probe is due a keep-alive
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Fatalf("%d sends took %s: something blocked", n, d)
	}
	if s.failures() == 0 {
		t.Fatalf("no failed send after %d datagrams to a socket nobody reads (queue never full?)", n)
	}
	if c := strings.Count(logs.String(), "cannot notify"); c != 1 {
		t.Errorf("failure logged %d times, want once; log:\n%s", c, logs)
	}
	if !strings.Contains(logs.String(), "not reading its notify socket") {
		t.Errorf("log does not explain EAGAIN:\n%s", logs)
	}

	// A socket that is gone: logged once too.
	t.Setenv("NOTIFY_SOCKET", filepath.Join(t.TempDir(), "missing"))
	log, logs = sdTestLogger()
	s = newSystemdEvents(log)
	for i := 0; i < 10; i++ {
		s.Transition(rolePassive, roleActive, causeServiceSilent, "", true, 0)
	}
	if s.failures() != 10 || strings.Count(logs.String(), "cannot notify") != 1 {
		t.Errorf("failures=%d, log:\n%s", s.failures(), logs)
	}
}

func TestSystemdNotUnixSocket(t *testing.T) {
	t.Setenv("NOTIFY_SOCKET", "vsock:2:1234")
	log, logs := sdTestLogger()
	s := newSystemdEvents(log)
	s.Started(rolePassive, 0)
	if s.enabled() || !strings.Contains(logs.String(), "not a unix socket") {
		t.Errorf("enabled=%v, log %q", s.enabled(), logs)
	}
}

// TestSystemdUnitVerify runs systemd-analyze verify on deploy/flip.service,
// with ExecStart pointed at an executable the test creates (the real unit
// names /usr/local/sbin/flip, which need not exist here).
func TestSystemdUnitVerify(t *testing.T) {
	src, err := os.ReadFile(filepath.Join("deploy", "flip.service"))
	if err != nil {
		t.Fatalf("read the unit: %v", err)
	}
	unit := string(src)
	for _, want := range []string{
		"Type=notify", "NotifyAccess=main", "ExecStart=/usr/local/sbin/flip",
		"EnvironmentFile=/etc/default/flip", "Restart=always", "WatchdogSec=",
		"RuntimeDirectory=flip", "AmbientCapabilities=CAP_NET_ADMIN CAP_NET_RAW",
	} {
		if !strings.Contains(unit, "\n"+want) {
			t.Errorf("deploy/flip.service lacks %q", want)
		}
	}
	analyze, err := exec.LookPath("systemd-analyze")
	if err != nil {
		t.Skip("systemd-analyze is not installed (apt-get install systemd); the unit file was not verified")
	}
	dir := t.TempDir()
	bin := filepath.Join(dir, "flip")
	if err := os.WriteFile(bin, []byte("#!/bin/sh\nexit 0\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	env := filepath.Join(dir, "flip.default")
	if err := os.WriteFile(env, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	unit = strings.ReplaceAll(unit, "ExecStart=/usr/local/sbin/flip", "ExecStart="+bin)
	unit = strings.ReplaceAll(unit, "EnvironmentFile=/etc/default/flip", "EnvironmentFile="+env)
	path := filepath.Join(dir, "flip.service")
	if err := os.WriteFile(path, []byte(unit), 0o644); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(analyze, "verify", path)
	cmd.Env = append(os.Environ(), "SYSTEMD_LOG_LEVEL=notice", "SYSTEMD_PAGER=")
	out, err := cmd.CombinedOutput()
	text := strings.TrimSpace(string(out))
	// In a container without systemd as PID 1 verify may not be able to
	// set itself up at all: that says nothing about the unit.
	if err != nil && sdCannotRunAnalyze.MatchString(text) {
		t.Skipf("systemd-analyze cannot run here (%v): %s", err, text)
	}
	var problems []string
	for _, line := range strings.Split(text, "\n") {
		if line == "" || sdIgnoredVerifyLine.MatchString(line) {
			continue
		}
		if strings.Contains(line, "flip.service") {
			problems = append(problems, line)
		}
	}
	if err != nil || len(problems) > 0 {
		t.Errorf("systemd-analyze verify deploy/flip.service: %v\n%s", err, strings.Join(problems, "\n"))
		return
	}
	t.Logf("systemd-analyze verify: ok (%s)", strings.ReplaceAll(text, "\n", "; "))
}

// sdCannotRunAnalyze matches systemd-analyze failing for lack of a systemd
// environment rather than because of the unit.
var sdCannotRunAnalyze = regexp.MustCompile(`(?i)failed to (initialize manager|set up|create|connect)|no such file or directory.*(/run/systemd|/sys/fs/cgroup)|permission denied|operation not permitted|read-only file system`)

// sdIgnoredVerifyLine matches verify's complaints about the machine (other
// units, missing binaries of dependencies), not about flip.service.
var sdIgnoredVerifyLine = regexp.MustCompile(`(?i)is not executable|command .* not found|not-found|documentation`)

// TestDefaultsFileListsEveryVariable keeps deploy/flip.default in step with
// the code: every FLIP_* variable appears as a commented "#NAME=" line (with
// the code's default where it has one), and nothing else is set or named.
func TestDefaultsFileListsEveryVariable(t *testing.T) {
	b, err := os.ReadFile(filepath.Join("deploy", "flip.default"))
	if err != nil {
		t.Fatalf("read deploy/flip.default: %v", err)
	}
	assign := regexp.MustCompile(`^(#?)(FLIP_[A-Z_]+)=(.*)$`)
	lines := map[string][]string{} // name -> values of its "#NAME=" lines
	for i, line := range strings.Split(string(b), "\n") {
		m := assign.FindStringSubmatch(line)
		if m == nil {
			if strings.Contains(line, "=") && !strings.HasPrefix(line, "#") && strings.TrimSpace(line) != "" {
				t.Errorf("line %d sets something that is not a FLIP_* variable: %q", i+1, line)
			}
			continue
		}
		if m[1] == "" {
			t.Errorf("line %d: %s is set; every line must stay commented so the defaults apply", i+1, m[2])
		}
		if strings.HasPrefix(m[3], `"`) || strings.HasPrefix(m[3], "'") {
			t.Errorf("line %d: %s is quoted; docker --env-file would keep the quotes", i+1, m[2])
		}
		lines[m[2]] = append(lines[m[2]], m[3])
	}
	typ := reflect.TypeOf(envSpec{})
	for i := 0; i < typ.NumField(); i++ {
		f := typ.Field(i)
		name := f.Tag.Get("envconfig")
		vals, ok := lines[name]
		if !ok {
			t.Errorf("deploy/flip.default does not list %s: add a commented #%s=DEFAULT line with its meaning (README's table)", name, name)
			continue
		}
		delete(lines, name)
		if def := f.Tag.Get("default"); def != "" && !slices.Contains(vals, def) {
			t.Errorf("deploy/flip.default: #%s=%s expected (the code's default), got %q", name, def, vals)
		}
	}
	for name := range lines {
		t.Errorf("deploy/flip.default names %s, which the code does not read", name)
	}
}
