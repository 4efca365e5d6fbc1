package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/emiago/sipgo/sip"
)

// watchTestBase is an arbitrary fixed start time for synthetic probe records.
var watchTestBase = time.Date(2024, 5, 1, 12, 0, 0, 0, time.UTC)

// watchTestProbes builds probe records from a pattern: one probe per
// character, 10 ms apart; '.' is unanswered, any other letter is answered by
// responder "box-<letter>" 2 ms after sending.
func watchTestProbes(pattern string) []watchProbe {
	ps := make([]watchProbe, len(pattern))
	for i, c := range pattern {
		sent := watchTestBase.Add(time.Duration(i) * 10 * time.Millisecond)
		ps[i] = watchProbe{Seq: i + 1, Sent: sent}
		if c != '.' {
			ps[i].Answered = sent.Add(2 * time.Millisecond)
			ps[i].Status = 200
			ps[i].Responder = "box-" + string(c)
		}
	}
	return ps
}

func TestWatchOutage(t *testing.T) {
	tests := []struct {
		name    string
		pattern string
		found   bool
		ms      int // gap length in ms
		from    int // index of the answered probe before the gap
		lost    int
	}{
		{"empty", "", false, 0, 0, 0},
		{"no answers", "....", false, 0, 0, 0},
		{"one answer", "..a..", false, 0, 0, 0},
		{"all answered", "aaaa", true, 10, 0, 0},
		{"one gap", "aa...bb", true, 40, 1, 3},
		{"longest of two", "a.a....ab", true, 50, 2, 4},
		{"tie keeps first", "a..a..a", true, 30, 0, 2},
		{"leading and trailing losses ignored", "....a.a.....", true, 20, 4, 1},
		{"same responder across gap", "aa......aa", true, 70, 1, 6},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			g := watchOutage(watchTestProbes(tc.pattern))
			if g.Found != tc.found {
				t.Fatalf("found = %v, want %v", g.Found, tc.found)
			}
			if !tc.found {
				return
			}
			if got := g.duration(); got != time.Duration(tc.ms)*time.Millisecond {
				t.Errorf("duration = %v, want %d ms", got, tc.ms)
			}
			wantStart := watchTestBase.Add(time.Duration(tc.from) * 10 * time.Millisecond)
			if !g.Start.Equal(wantStart) {
				t.Errorf("start = %v, want %v", g.Start, wantStart)
			}
			if g.Lost != tc.lost {
				t.Errorf("lost = %d, want %d", g.Lost, tc.lost)
			}
		})
	}
}

func TestWatchSwitchIndex(t *testing.T) {
	tests := []struct {
		pattern string
		want    int
	}{
		{"", -1},
		{"...", -1},
		{"aaaa", -1},
		{"aa..b", 4},
		{"..ab", 3},
		{"a.b.a", 2},
	}
	for _, tc := range tests {
		if got := watchSwitchIndex(watchTestProbes(tc.pattern)); got != tc.want {
			t.Errorf("watchSwitchIndex(%q) = %d, want %d", tc.pattern, got, tc.want)
		}
	}
}

func TestWatchSummarize(t *testing.T) {
	tests := []struct {
		name                             string
		pattern                          string
		sent, answered, lost             int
		first, last                      string
		switched                         bool
		outageMS                         float64
		outageLost, lostBefore, lostAftr int
	}{
		{"nothing", "", 0, 0, 0, "", "", false, 0, 0, 0, 0},
		{"never answered", "...", 3, 0, 3, "", "", false, 0, 0, 3, 0},
		{"steady", "aaa", 3, 3, 0, "box-a", "box-a", false, 10, 0, 0, 0},
		{"failover", ".aa....bb.", 10, 4, 6, "box-a", "box-b", true, 50, 4, 1, 1},
		{"restart same box", "a...a", 5, 2, 3, "box-a", "box-a", false, 40, 3, 0, 0},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s := watchSummarize(watchTestProbes(tc.pattern))
			if s.Sent != tc.sent || s.Answered != tc.answered || s.Lost != tc.lost {
				t.Errorf("sent/answered/lost = %d/%d/%d, want %d/%d/%d",
					s.Sent, s.Answered, s.Lost, tc.sent, tc.answered, tc.lost)
			}
			if s.FirstServer != tc.first || s.LastServer != tc.last {
				t.Errorf("responders = %q/%q, want %q/%q", s.FirstServer, s.LastServer, tc.first, tc.last)
			}
			if s.Switched != tc.switched {
				t.Errorf("switched = %v, want %v", s.Switched, tc.switched)
			}
			if s.OutageMS != tc.outageMS || s.OutageLost != tc.outageLost {
				t.Errorf("outage = %v ms / %d lost, want %v / %d", s.OutageMS, s.OutageLost, tc.outageMS, tc.outageLost)
			}
			if s.LostBefore != tc.lostBefore || s.LostAfter != tc.lostAftr {
				t.Errorf("lost before/after = %d/%d, want %d/%d", s.LostBefore, s.LostAfter, tc.lostBefore, tc.lostAftr)
			}
			if tc.answered > 0 && (s.FirstStatus != 200 || s.LastStatus != 200) {
				t.Errorf("statuses = %d/%d, want 200/200", s.FirstStatus, s.LastStatus)
			}
		})
	}
}

func TestWatchNormalizeTarget(t *testing.T) {
	tests := []struct {
		in, want string
		bad      bool
	}{
		{in: "192.0.2.10", want: "192.0.2.10:5060"},
		{in: "192.0.2.10:5070", want: "192.0.2.10:5070"},
		{in: " sip:192.0.2.10 ", want: "192.0.2.10:5060"},
		{in: "2001:db8::10", want: "[2001:db8::10]:5060"},
		{in: "[2001:db8::10]", want: "[2001:db8::10]:5060"},
		{in: "[2001:db8::10]:5070", want: "[2001:db8::10]:5070"},
		{in: "pbx.example", want: "pbx.example:5060"},
		{in: "", bad: true},
		{in: "192.0.2.10:0", bad: true},
		{in: "192.0.2.10:99999", bad: true},
		{in: "192.0.2.10:sip", bad: true},
		{in: ":5060", bad: true},
		{in: "2001:db8::zz", bad: true},
		{in: "a b", bad: true},
	}
	for _, tc := range tests {
		got, err := watchNormalizeTarget(tc.in)
		if tc.bad {
			if err == nil {
				t.Errorf("watchNormalizeTarget(%q) = %q, want error", tc.in, got)
			}
			continue
		}
		if err != nil || got != tc.want {
			t.Errorf("watchNormalizeTarget(%q) = %q, %v; want %q", tc.in, got, err, tc.want)
		}
	}
}

func TestWatchParseArgs(t *testing.T) {
	t.Setenv("FLIP_PROBE_TARGET", "")
	var stderr bytes.Buffer
	cfg, code, ok := watchParseArgs([]string{"-interval", "20ms", "192.0.2.10", "-json", "-for", "3s", "-until-switch"}, &stderr)
	if !ok {
		t.Fatalf("parse failed with code %d: %s", code, stderr.String())
	}
	if cfg.target != "192.0.2.10:5060" || cfg.interval != 20*time.Millisecond || !cfg.json ||
		cfg.forDur != 3*time.Second || !cfg.untilSwitch || cfg.timeout != 500*time.Millisecond || cfg.max != 10*time.Minute {
		t.Errorf("unexpected config %+v", cfg)
	}

	t.Setenv("FLIP_PROBE_TARGET", "198.51.100.7")
	cfg, _, ok = watchParseArgs([]string{"-source", "198.51.100.1"}, &stderr)
	if !ok || cfg.target != "198.51.100.7:5060" || cfg.source != "198.51.100.1" {
		t.Errorf("env target: ok=%v cfg=%+v", ok, cfg)
	}

	t.Setenv("FLIP_PROBE_TARGET", "")
	for _, args := range [][]string{
		{},
		{"192.0.2.1", "192.0.2.2"},
		{"-interval", "0s", "192.0.2.1"},
		{"-timeout", "0s", "192.0.2.1"},
		{"-max", "-1s", "192.0.2.1"},
		{"-for", "-1s", "192.0.2.1"},
		{"-source", "nonsense", "192.0.2.1"},
		{"-nosuchflag", "192.0.2.1"},
		{"192.0.2.1:notaport"},
	} {
		if _, code, ok := watchParseArgs(args, &stderr); ok || code != 2 {
			t.Errorf("args %q: ok=%v code=%d, want usage error 2", args, ok, code)
		}
	}
	if _, code, ok := watchParseArgs([]string{"-h"}, &stderr); ok || code != 0 {
		t.Errorf("-h: ok=%v code=%d, want 0", ok, code)
	}
	if code := runWatch(nil, &bytes.Buffer{}, &bytes.Buffer{}); code != 2 {
		t.Errorf("runWatch without target = %d, want 2", code)
	}
}

func TestWatchRequestIsFresh(t *testing.T) {
	seen := map[string]bool{}
	for seq := 1; seq <= 3; seq++ {
		id, data := watchRequest(seq, "[2001:db8::1]:40000", "[2001:db8::10]:5060")
		msg, err := sip.ParseMessage(data)
		if err != nil {
			t.Fatalf("probe %d does not parse: %v\n%s", seq, err, data)
		}
		req, ok := msg.(*sip.Request)
		if !ok || req.Method != sip.OPTIONS {
			t.Fatalf("probe %d is not an OPTIONS request", seq)
		}
		branch, _ := req.Via().Params.Get("branch")
		tag, _ := req.From().Params.Get("tag")
		if req.CallID().Value() != id || req.CSeq().SeqNo != uint32(seq) || !strings.HasPrefix(branch, "z9hG4bK") {
			t.Errorf("probe %d: call-id %q (want %q), cseq %d, branch %q", seq, req.CallID().Value(), id, req.CSeq().SeqNo, branch)
		}
		for _, v := range []string{id, branch, tag} {
			if seen[v] {
				t.Errorf("probe %d reuses %q", seq, v)
			}
			seen[v] = true
		}
	}
}

// watchTestResponder answers SIP requests on a UDP socket with a given
// Server name, replying from replyConn (the listening socket itself unless
// the test wants answers to come from elsewhere).
type watchTestResponder struct {
	conn net.PacketConn
	wg   sync.WaitGroup
}

func watchStartResponder(t *testing.T, addr, name string, replyConn net.PacketConn) *watchTestResponder {
	t.Helper()
	var conn net.PacketConn
	var err error
	// Rebinding a just-closed UDP port normally works at once; retry briefly
	// (bounded) in case the kernel is slow to let go.
	for range 50 {
		if conn, err = net.ListenPacket("udp", addr); err == nil {
			break
		}
		time.Sleep(10 * time.Millisecond)
	}
	if err != nil {
		t.Fatalf("listen %s: %v", addr, err)
	}
	if replyConn == nil {
		replyConn = conn
	}
	r := &watchTestResponder{conn: conn}
	r.wg.Add(1)
	go func() {
		defer r.wg.Done()
		buf := make([]byte, 65535)
		for {
			n, from, err := conn.ReadFrom(buf)
			if err != nil {
				if errors.Is(err, net.ErrClosed) {
					return
				}
				continue
			}
			msg, err := sip.ParseMessage(buf[:n])
			req, ok := msg.(*sip.Request)
			if err != nil || !ok {
				continue
			}
			res := sip.NewResponseFromRequest(req, 200, "OK", nil)
			res.AppendHeader(sip.NewHeader("Server", name))
			replyConn.WriteTo([]byte(res.String()), from)
		}
	}()
	return r
}

func (r *watchTestResponder) stop() {
	r.conn.Close()
	r.wg.Wait()
}

// watchTestRun runs `flip watch -json` with args and decodes its summary.
// It does not call t.Fatal, so it may run in its own goroutine.
func watchTestRun(args ...string) (int, watchSummary, string, error) {
	var stdout, stderr bytes.Buffer
	code := runWatch(append([]string{"-json"}, args...), &stdout, &stderr)
	var s watchSummary
	if err := json.Unmarshal(stdout.Bytes(), &s); err != nil {
		return code, s, "", fmt.Errorf("decode summary (exit %d): %v\nstdout: %s\nstderr: %s", code, err, stdout.String(), stderr.String())
	}
	return code, s, stdout.String(), nil
}

// TestWatchFailover stops an in-process responder for ~300 ms and brings it
// back under another Server name, like a failover to the other box.
func TestWatchFailover(t *testing.T) {
	a := watchStartResponder(t, "127.0.0.1:0", "box-a", nil)
	addr := a.conn.LocalAddr().String()

	type result struct {
		code int
		sum  watchSummary
		out  string
		err  error
	}
	done := make(chan result, 1)
	go func() {
		code, sum, out, err := watchTestRun("-until-switch", "-for", "5s", "-interval", "10ms", "-timeout", "200ms", addr)
		done <- result{code, sum, out, err}
	}()

	time.Sleep(200 * time.Millisecond)
	a.stop()
	time.Sleep(300 * time.Millisecond)
	b := watchStartResponder(t, addr, "box-b", nil)
	defer b.stop()

	var r result
	select {
	case r = <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("watch did not stop")
	}
	if r.err != nil {
		t.Fatal(r.err)
	}
	s := r.sum
	t.Logf("summary: %s", r.out)
	if r.code != 0 {
		t.Errorf("exit code %d, want 0", r.code)
	}
	if s.FirstServer != "box-a" || s.LastServer != "box-b" || !s.Switched || s.StopReason != "switch" {
		t.Errorf("responders %q -> %q, switched %v, stop %q; want box-a -> box-b, switch",
			s.FirstServer, s.LastServer, s.Switched, s.StopReason)
	}
	if s.OutageMS < 250 || s.OutageMS > 1500 {
		t.Errorf("outage %.1f ms, want 250..1500", s.OutageMS)
	}
	if s.OutageLost < 10 {
		t.Errorf("%d probes lost in the outage, want at least 10", s.OutageLost)
	}
	if s.Refused == 0 {
		t.Errorf("no ECONNREFUSED seen while the port was closed")
	}
	if s.OutageStart == "" || s.OutageEnd == "" || s.FirstStatus != 200 || s.LastStatus != 200 {
		t.Errorf("incomplete summary %+v", s)
	}
}

// TestWatchIgnoresOtherSource checks the point of the connected socket: an
// answer sent from an address other than the target's is never counted.
func TestWatchIgnoresOtherSource(t *testing.T) {
	other, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer other.Close()
	r := watchStartResponder(t, "127.0.0.1:0", "elsewhere", other)
	defer r.stop()

	code, s, _, err := watchTestRun("-for", "300ms", "-timeout", "100ms", r.conn.LocalAddr().String())
	if err != nil {
		t.Fatal(err)
	}
	if code != 1 || s.Answered != 0 || s.Sent == 0 {
		t.Errorf("exit %d, sent %d, answered %d; want exit 1 with no answers", code, s.Sent, s.Answered)
	}
}

// TestWatchClosedPort checks a target whose port is closed: misses, refusals
// and exit code 1, within the -for bound.
func TestWatchClosedPort(t *testing.T) {
	c, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := c.LocalAddr().String()
	c.Close()

	start := time.Now()
	code, s, _, err := watchTestRun("-for", "200ms", "-timeout", "100ms", addr)
	if err != nil {
		t.Fatal(err)
	}
	if el := time.Since(start); el > 2*time.Second {
		t.Errorf("took %v, want about 300 ms", el)
	}
	if code != 1 || s.Answered != 0 || s.Refused == 0 || s.StopReason != "for" {
		t.Errorf("exit %d, answered %d, refused %d, stop %q; want 1, 0, >0, for", code, s.Answered, s.Refused, s.StopReason)
	}
}

// TestWatchTextAndSignal runs the text mode and stops it through the
// context, as SIGINT would.
func TestWatchTextAndSignal(t *testing.T) {
	r := watchStartResponder(t, "127.0.0.1:0", "box-a", nil)
	defer r.stop()
	cfg, _, ok := watchParseArgs([]string{r.conn.LocalAddr().String()}, &bytes.Buffer{})
	if !ok {
		t.Fatal("parse failed")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 450*time.Millisecond)
	defer cancel()
	var status bytes.Buffer
	s, err := watchRun(ctx, cfg, &status)
	if err != nil {
		t.Fatal(err)
	}
	if s.StopReason != "signal" || s.Answered == 0 || s.Lost != 0 || s.Switched {
		t.Errorf("stop %q answered %d lost %d switched %v", s.StopReason, s.Answered, s.Lost, s.Switched)
	}
	if n := strings.Count(status.String(), "\r"); n < 2 || n > 4 {
		t.Errorf("%d status updates in 450 ms, want 2..4 (at most one per 200 ms, plus the final one)", n)
	}
	var out bytes.Buffer
	watchPrintText(&out, s)
	for _, want := range []string{"answered", `first responder: "box-a" status 200`, "outage:"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("text summary lacks %q:\n%s", want, out.String())
		}
	}
}

// TestWatchNeighbourMACOutput: the MAC of the target's neighbour entry at
// the first answer and at the end goes into the JSON and the text.
func TestWatchNeighbourMACOutput(t *testing.T) {
	a := watchStartResponder(t, "127.0.0.1:0", "box-a", nil)
	defer a.stop()
	calls := 0
	macs := []string{"02:00:5e:00:53:0a", "02:00:5e:00:53:0b"}
	cfg, code, ok := watchParseArgs([]string{"-for", "100ms", "-interval", "10ms", a.conn.LocalAddr().String()}, &strings.Builder{})
	if !ok {
		t.Fatalf("parse: exit %d", code)
	}
	cfg.neighbourMAC = func(target string) string {
		if target != a.conn.LocalAddr().String() {
			t.Errorf("looked up %q", target)
		}
		mac := macs[min(calls, 1)]
		calls++
		return mac
	}
	sum, err := watchRun(context.Background(), cfg, nil)
	if err != nil {
		t.Fatal(err)
	}
	if sum.FirstMAC != macs[0] || sum.LastMAC != macs[1] || calls != 2 {
		t.Fatalf("first_mac %q last_mac %q after %d lookups", sum.FirstMAC, sum.LastMAC, calls)
	}
	var b strings.Builder
	watchPrintText(&b, sum)
	for _, want := range []string{`"box-a" status 200, MAC ` + macs[0], `"box-a" status 200, MAC ` + macs[1]} {
		if !strings.Contains(b.String(), want) {
			t.Errorf("text output lacks %q:\n%s", want, b.String())
		}
	}
}

// TestWatchNeighbourMAC reads the kernel's table: loopback has no
// neighbour entries, so the answer is empty rather than an error.
func TestWatchNeighbourMAC(t *testing.T) {
	for _, target := range []string{"127.0.0.1:5060", "[::1]:5060", "not-an-address:5060", "garbage"} {
		if got := watchNeighbourMAC(target); got != "" {
			t.Errorf("watchNeighbourMAC(%q) = %q, want empty", target, got)
		}
	}
}
