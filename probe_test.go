package main

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/emiago/sipgo/sip"
)

// ftSIPRequest is what the test server saw of one request.
type ftSIPRequest struct {
	from    netip.AddrPort
	at      time.Time
	method  string
	uri     string
	callID  string
	branch  string
	viaHost string
	fromTag string
	cseq    string
}

// ftSIPReply is how the test server answers the nth request (from 0).
type ftSIPReply struct {
	drop    bool
	delay   time.Duration
	trying  bool // send 100 Trying first
	status  int
	reason  string
	headers map[string]string
}

// ftSIPServer is a raw UDP SIP responder on 127.0.0.1: it records every
// request and answers as its reply function says (404 by default).
type ftSIPServer struct {
	conn net.PacketConn

	mu    sync.Mutex
	reply func(n int) ftSIPReply
	reqs  []ftSIPRequest
}

func ftListenSIP() (*ftSIPServer, error) {
	conn, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	s := &ftSIPServer{conn: conn}
	go s.serve()
	return s, nil
}

// reset forgets the requests seen so far and answers as reply says from
// now on, until the test ends.
func (s *ftSIPServer) reset(t *testing.T, reply func(n int) ftSIPReply) {
	s.mu.Lock()
	s.reply, s.reqs = reply, nil
	s.mu.Unlock()
	t.Cleanup(func() {
		s.mu.Lock()
		s.reply, s.reqs = nil, nil
		s.mu.Unlock()
	})
}

func (s *ftSIPServer) addr() string { return s.conn.LocalAddr().String() }

func (s *ftSIPServer) serve() {
	buf := make([]byte, 65535)
	for {
		n, from, err := s.conn.ReadFrom(buf)
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return
			}
			continue
		}
		at := time.Now()
		msg, err := sip.ParseMessage(append([]byte(nil), buf[:n]...))
		req, ok := msg.(*sip.Request)
		if err != nil || !ok {
			continue
		}
		r := ftSIPRequest{
			from:   from.(*net.UDPAddr).AddrPort(),
			at:     at,
			method: string(req.Method),
			uri:    req.Recipient.String(),
		}
		if h := req.CallID(); h != nil {
			r.callID = h.Value()
		}
		if h := req.Via(); h != nil {
			r.branch, _ = h.Params.Get("branch")
			r.viaHost = h.Host
		}
		if h := req.From(); h != nil {
			r.fromTag, _ = h.Params.Get("tag")
		}
		if h := req.CSeq(); h != nil {
			r.cseq = h.Value()
		}
		s.mu.Lock()
		idx := len(s.reqs)
		s.reqs = append(s.reqs, r)
		reply := s.reply
		s.mu.Unlock()

		rp := ftSIPReply{status: 404, reason: "Not Found"}
		if reply != nil {
			rp = reply(idx)
		}
		if rp.drop {
			continue
		}
		if rp.trying {
			s.conn.WriteTo([]byte(sip.NewResponseFromRequest(req, 100, "Trying", nil).String()), from)
		}
		send := func() {
			res := sip.NewResponseFromRequest(req, rp.status, rp.reason, nil)
			for k, v := range rp.headers {
				res.AppendHeader(sip.NewHeader(k, v))
			}
			s.conn.WriteTo([]byte(res.String()), from)
		}
		if rp.delay == 0 {
			send()
			continue
		}
		time.AfterFunc(rp.delay, send)
	}
}

func (s *ftSIPServer) requests() []ftSIPRequest {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]ftSIPRequest(nil), s.reqs...)
}

// The probers of these tests are made once and never closed: newProber sets
// sipgo's process-wide default logger, unsynchronised, which races with the
// goroutines of any prober made before it (see TestNewProberTwiceNoRace).
var (
	ftProbeOnce sync.Once
	ftProbeErr  error
	ftProbeSrv  *ftSIPServer
	ftProbers   = map[string]*prober{}
	// ftClosedAddr is a UDP port nobody listens on.
	ftClosedAddr string
)

const ftShortTimeout = 300 * time.Millisecond

func ftProbeKey(source, target string, timeout time.Duration) string {
	return source + ">" + target + "/" + timeout.String()
}

func ftSetupProbers() {
	ftProbeSrv, ftProbeErr = ftListenSIP()
	if ftProbeErr != nil {
		return
	}
	free, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		ftProbeErr = err
		return
	}
	ftClosedAddr = free.LocalAddr().String()
	free.Close()
	for _, k := range []struct {
		source, target string
		timeout        time.Duration
	}{
		{"127.0.0.1", ftProbeSrv.addr(), 2 * time.Second},
		{"127.0.0.2", ftProbeSrv.addr(), 2 * time.Second},
		{"127.0.0.3", ftProbeSrv.addr(), 2 * time.Second},
		{"127.0.0.1", ftProbeSrv.addr(), ftShortTimeout},
		{"127.0.0.1", ftClosedAddr, ftShortTimeout},
	} {
		p, err := newProber(netip.MustParseAddr(k.source), k.target, k.timeout)
		if err != nil {
			ftProbeErr = fmt.Errorf("newProber(%s, %s): %w", k.source, k.target, err)
			return
		}
		ftProbers[ftProbeKey(k.source, k.target, k.timeout)] = p
	}
}

// ftProbeServer is the shared SIP server, answering as reply says for this
// test (404 Not Found if reply is nil).
func ftProbeServer(t *testing.T, reply func(n int) ftSIPReply) *ftSIPServer {
	t.Helper()
	ftProbeOnce.Do(ftSetupProbers)
	if ftProbeErr != nil {
		t.Fatalf("probe test setup: %v", ftProbeErr)
	}
	ftProbeSrv.reset(t, reply)
	return ftProbeSrv
}

// ftGetProber is the shared prober from source to target with timeout.
func ftGetProber(t *testing.T, source, target string, timeout time.Duration) *prober {
	t.Helper()
	ftProbeOnce.Do(ftSetupProbers)
	if ftProbeErr != nil {
		t.Fatalf("probe test setup: %v", ftProbeErr)
	}
	p := ftProbers[ftProbeKey(source, target, timeout)]
	if p == nil {
		t.Fatalf("no prober %s", ftProbeKey(source, target, timeout))
	}
	return p
}

// ldirectord sent every OPTIONS with the same Call-ID, branch and tag, and
// Asterisk matched new probes to old dialogs. Every probe must be new.
func TestProberFreshRequests(t *testing.T) {
	srv := ftProbeServer(t, nil)
	p := ftGetProber(t, "127.0.0.1", srv.addr(), 2*time.Second)
	const n = 20
	for i := range n {
		if r := p.probe(context.Background()); !r.Answered || r.Status != 404 {
			t.Fatalf("probe %d: %+v, want a 404 answer", i, r)
		}
	}
	reqs := srv.requests()
	if len(reqs) != n {
		t.Fatalf("server got %d requests, want %d (one per probe, no retransmissions)", len(reqs), n)
	}
	fields := []struct {
		name string
		get  func(ftSIPRequest) string
	}{
		{"Call-ID", func(r ftSIPRequest) string { return r.callID }},
		{"Via branch", func(r ftSIPRequest) string { return r.branch }},
		{"From tag", func(r ftSIPRequest) string { return r.fromTag }},
	}
	for _, f := range fields {
		seen := map[string]int{}
		for i, r := range reqs {
			v := f.get(r)
			if v == "" {
				t.Errorf("request %d has no %s", i, f.name)
				continue
			}
			if j, ok := seen[v]; ok {
				t.Errorf("requests %d and %d share %s %q", j, i, f.name, v)
			}
			seen[v] = i
		}
	}
	for i, r := range reqs {
		if r.method != "OPTIONS" {
			t.Errorf("request %d is %s, want OPTIONS", i, r.method)
		}
		if !strings.HasPrefix(r.branch, "z9hG4bK") {
			t.Errorf("request %d branch %q lacks the RFC 3261 magic cookie", i, r.branch)
		}
		if want := "sip:" + srv.addr(); r.uri != want {
			t.Errorf("request %d Request-URI %q, want %q", i, r.uri, want)
		}
		if r.cseq == "" || !strings.HasSuffix(r.cseq, "OPTIONS") {
			t.Errorf("request %d CSeq %q", i, r.cseq)
		}
	}
}

// Any final SIP answer means the SIP stack is alive, whatever its status.
func TestProberAnswers(t *testing.T) {
	tests := []struct {
		name       string
		reply      ftSIPReply
		wantStatus int
		wantServer string
	}{
		{
			name:       "404 with Server",
			reply:      ftSIPReply{status: 404, reason: "Not Found", headers: map[string]string{"Server": "Asterisk PBX 20.5.0"}},
			wantStatus: 404,
			wantServer: "Asterisk PBX 20.5.0",
		},
		{
			name:       "200 with User-Agent only",
			reply:      ftSIPReply{status: 200, reason: "OK", headers: map[string]string{"User-Agent": "FPBX-16.0"}},
			wantStatus: 200,
			wantServer: "FPBX-16.0",
		},
		{
			name:       "Server preferred over User-Agent",
			reply:      ftSIPReply{status: 200, reason: "OK", headers: map[string]string{"User-Agent": "ua", "Server": "srv"}},
			wantStatus: 200,
			wantServer: "srv",
		},
		{
			name:       "401 without a name",
			reply:      ftSIPReply{status: 401, reason: "Unauthorized"},
			wantStatus: 401,
		},
		{
			name:       "403",
			reply:      ftSIPReply{status: 403, reason: "Forbidden", headers: map[string]string{"Server": "Asterisk"}},
			wantStatus: 403,
			wantServer: "Asterisk",
		},
		{
			name:       "503 still means the stack answers",
			reply:      ftSIPReply{status: 503, reason: "Service Unavailable"},
			wantStatus: 503,
		},
		{
			name:       "100 Trying then 404",
			reply:      ftSIPReply{trying: true, delay: 50 * time.Millisecond, status: 404, reason: "Not Found", headers: map[string]string{"Server": "Asterisk"}},
			wantStatus: 404,
			wantServer: "Asterisk",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := ftProbeServer(t, func(int) ftSIPReply { return tt.reply })
			p := ftGetProber(t, "127.0.0.1", srv.addr(), 2*time.Second)
			r := p.probe(context.Background())
			if !r.Answered || r.Err != nil {
				t.Fatalf("probe = %+v, want answered", r)
			}
			if r.Status != tt.wantStatus {
				t.Errorf("Status = %d, want %d", r.Status, tt.wantStatus)
			}
			if r.Server != tt.wantServer {
				t.Errorf("Server = %q, want %q", r.Server, tt.wantServer)
			}
		})
	}
}

// Probes leave from the configured source (the box's own address, never
// the VIP), and say so in their Via. The kernel accepts all of 127/8 on lo.
func TestProberSource(t *testing.T) {
	for _, source := range []string{"127.0.0.1", "127.0.0.2", "127.0.0.3"} {
		t.Run(source, func(t *testing.T) {
			srv := ftProbeServer(t, nil)
			p := ftGetProber(t, source, srv.addr(), 2*time.Second)
			for i := range 3 {
				if r := p.probe(context.Background()); !r.Answered {
					t.Fatalf("probe %d: %+v, want an answer", i, r)
				}
			}
			for i, r := range srv.requests() {
				if got := r.from.Addr().String(); got != source {
					t.Errorf("request %d came from %s, want %s", i, r.from, source)
				}
				if r.viaHost != source {
					t.Errorf("request %d Via host %q, want %s", i, r.viaHost, source)
				}
			}
		})
	}
}

// Sent is taken before the request leaves: silence is measured from it.
func TestProberSentBeforeAnswer(t *testing.T) {
	const delay = 150 * time.Millisecond
	srv := ftProbeServer(t, func(int) ftSIPReply {
		return ftSIPReply{delay: delay, status: 404, reason: "Not Found"}
	})
	p := ftGetProber(t, "127.0.0.1", srv.addr(), 2*time.Second)
	before := time.Now()
	r := p.probe(context.Background())
	after := time.Now()
	if !r.Answered {
		t.Fatalf("probe = %+v, want an answer", r)
	}
	reqs := srv.requests()
	if len(reqs) != 1 {
		t.Fatalf("server got %d requests, want 1", len(reqs))
	}
	if r.Sent.Before(before) || r.Sent.After(reqs[0].at) {
		t.Errorf("Sent = before%+v, want between the call (before) and the server's receipt (before%+v)", r.Sent.Sub(before), reqs[0].at.Sub(before))
	}
	if got := after.Sub(r.Sent); got < delay {
		t.Errorf("answer came %s after Sent, but the server held it %s: Sent is the arrival time", got, delay)
	}
}

// Without an answer the probe gives up after its timeout, not after
// sipgo's 32 s transaction timeout.
func TestProberNoAnswer(t *testing.T) {
	const timeout = ftShortTimeout
	tests := []struct {
		name   string
		target func(t *testing.T) string
	}{
		{
			name:   "nothing listening",
			target: func(t *testing.T) string { ftProbeServer(t, nil); return ftClosedAddr },
		},
		{
			name: "server drops requests",
			target: func(t *testing.T) string {
				return ftProbeServer(t, func(int) ftSIPReply { return ftSIPReply{drop: true} }).addr()
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := ftGetProber(t, "127.0.0.1", tt.target(t), timeout)
			before := time.Now()
			r := p.probe(context.Background())
			elapsed := time.Since(before)
			if r.Answered {
				t.Fatalf("probe = %+v, want no answer", r)
			}
			if r.Err == nil {
				t.Error("no answer but no Err")
			}
			if r.Sent.IsZero() || r.Sent.Before(before) {
				t.Errorf("Sent = %v, want the send time", r.Sent)
			}
			if elapsed > timeout+time.Second {
				t.Errorf("probe took %s, want about the %s timeout", elapsed, timeout)
			}
			t.Logf("gave up after %s: %v", elapsed, r.Err)
		})
	}
}

// An answer that arrives after its probe gave up is not taken as the answer
// to the next probe, and a timed-out probe does not spoil the next ones.
func TestProberLateAnswer(t *testing.T) {
	const timeout = ftShortTimeout
	srv := ftProbeServer(t, func(n int) ftSIPReply {
		if n == 0 {
			// The first probe's answer comes late, while the second waits.
			return ftSIPReply{delay: timeout + 150*time.Millisecond, status: 503, reason: "Late"}
		}
		return ftSIPReply{delay: 200 * time.Millisecond, status: 404, reason: "Not Found"}
	})
	p := ftGetProber(t, "127.0.0.1", srv.addr(), timeout)
	if r := p.probe(context.Background()); r.Answered {
		t.Fatalf("first probe = %+v, want a timeout", r)
	}
	r := p.probe(context.Background())
	if !r.Answered || r.Status != 404 {
		t.Fatalf("second probe = %+v, want its own 404 (not the first probe's late 503)", r)
	}
}

func TestProberContextCancelled(t *testing.T) {
	srv := ftProbeServer(t, func(int) ftSIPReply { return ftSIPReply{drop: true} })
	p := ftGetProber(t, "127.0.0.1", srv.addr(), 2*time.Second)
	ctx, cancel := context.WithCancel(context.Background())
	time.AfterFunc(100*time.Millisecond, cancel)
	before := time.Now()
	r := p.probe(ctx)
	if elapsed := time.Since(before); elapsed > time.Second {
		t.Fatalf("probe took %s after its context was cancelled", elapsed)
	}
	if r.Answered || r.Err == nil {
		t.Fatalf("probe = %+v, want unanswered with an error", r)
	}
}

func TestNewProberBadTarget(t *testing.T) {
	for _, target := range []string{"127.0.0.1", "127.0.0.1:sip", ":"} {
		t.Run(target, func(t *testing.T) {
			p, err := newProber(netip.MustParseAddr("127.0.0.1"), target, time.Second)
			if err == nil {
				p.Close()
				t.Fatalf("newProber(%q) succeeded, want an error", target)
			}
			if !strings.Contains(err.Error(), target) {
				t.Errorf("error %q does not name the target %q", err, target)
			}
		})
	}
}

// TestNewProberTwiceNoRace: sipgo's default logger is an unguarded package
// variable that the goroutines of an earlier prober read (e.g.
// UDPConnection.TryClose when its transport closes); newProber must set it
// only once, or a second prober in one process is a data race under -race.
func TestNewProberTwiceNoRace(t *testing.T) {
	srv := ftProbeServer(t, nil)
	first, err := newProber(netip.MustParseAddr("127.0.0.1"), srv.addr(), 2*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	if r := first.probe(context.Background()); !r.Answered {
		t.Fatalf("probe = %+v", r)
	}
	first.Close()
	// Let the closed transport's goroutines run their exit path, which
	// reads the default logger.
	time.Sleep(200 * time.Millisecond)
	second, err := newProber(netip.MustParseAddr("127.0.0.1"), srv.addr(), 2*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer second.Close()
	if r := second.probe(context.Background()); !r.Answered {
		t.Fatalf("probe = %+v", r)
	}
}
