package main

import (
	"net"
	"net/netip"
	"strings"
	"testing"
	"time"
)

// ftTickRound sends one probe and collects, every 5 ms, until it finishes
// or within passes; it fails the test if nothing finished.
func ftTickRound(t *testing.T, p *tickProbe, within time.Duration) probeResult {
	t.Helper()
	sent := time.Now()
	p.send(sent)
	for deadline := time.Now().Add(within); time.Now().Before(deadline); time.Sleep(5 * time.Millisecond) {
		if rs := p.collect(time.Now()); len(rs) > 0 {
			if len(rs) != 1 {
				t.Fatalf("one probe sent, %d results: %+v", len(rs), rs)
			}
			if !rs[0].Sent.Equal(sent) {
				t.Errorf("result Sent %v, want the send time %v", rs[0].Sent, sent)
			}
			return rs[0]
		}
	}
	t.Fatalf("no result within %s", within)
	return probeResult{}
}

// ftFreeUDP is a 127.0.0.1 UDP port nobody listens on.
func ftFreeUDP(t *testing.T) string {
	t.Helper()
	free, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer free.Close()
	return free.LocalAddr().String()
}

// TestTickProbe: the agent's probe finishes each probe as answered (with
// the status, the server and an RTT from the kernel's receive time, not
// from when it was collected), refused, or silent after the timeout; a lost
// request is sent again after T1.
func TestTickProbe(t *testing.T) {
	srv, err := ftListenSIP()
	if err != nil {
		t.Fatal(err)
	}
	defer srv.conn.Close()
	tests := []struct {
		name    string
		target  string
		timeout time.Duration
		reply   func(n int) ftSIPReply
		wait    time.Duration // before the first collect
		within  time.Duration
		check   func(t *testing.T, r probeResult)
		reqs    int // requests the server must have seen; -1: not checked
	}{
		{"answered 404", srv.addr(), 2 * time.Second, nil, 0, time.Second, func(t *testing.T, r probeResult) {
			if !r.Answered || r.Status != 404 || r.Err != nil {
				t.Errorf("got %+v, want a 404 answer", r)
			}
		}, 1},
		{"answered 200 with a Server header", srv.addr(), 2 * time.Second, func(int) ftSIPReply {
			return ftSIPReply{status: 200, reason: "OK", headers: map[string]string{"Server": "Asterisk PBX 20.5.0"}}
		}, 0, time.Second, func(t *testing.T, r probeResult) {
			if !r.Answered || r.Status != 200 || r.Server != "Asterisk PBX 20.5.0" {
				t.Errorf("got %+v, want 200 from Asterisk PBX 20.5.0", r)
			}
		}, 1},
		{"RTT is the arrival, not the collect", srv.addr(), 2 * time.Second, nil, 200 * time.Millisecond, time.Second, func(t *testing.T, r probeResult) {
			if !r.Answered || r.RTT >= 150*time.Millisecond || r.RTT <= 0 {
				t.Errorf("got %+v; want an answer with the loopback RTT, collected 200 ms later", r)
			}
		}, 1},
		{"a provisional answer is not the answer", srv.addr(), 2 * time.Second, func(int) ftSIPReply {
			return ftSIPReply{trying: true, status: 486, reason: "Busy Here"}
		}, 0, time.Second, func(t *testing.T, r probeResult) {
			if !r.Answered || r.Status != 486 {
				t.Errorf("got %+v, want the final 486", r)
			}
		}, 1},
		{"lost request sent again after T1", srv.addr(), 2 * time.Second, func(n int) ftSIPReply {
			return ftSIPReply{drop: n == 0, status: 404, reason: "Not Found"}
		}, 0, 2 * time.Second, func(t *testing.T, r probeResult) {
			if !r.Answered || r.RTT < udpProbeT1 {
				t.Errorf("got %+v, want the retransmission answered after T1", r)
			}
		}, 2},
		{"silence until the timeout", srv.addr(), 300 * time.Millisecond, func(int) ftSIPReply {
			return ftSIPReply{drop: true}
		}, 0, 2 * time.Second, func(t *testing.T, r probeResult) {
			if r.Answered || r.Refused || r.Err == nil || !strings.Contains(r.Err.Error(), "no answer within 300ms") {
				t.Errorf("got %+v, want silence after 300ms", r)
			}
		}, 1},
		{"closed port refused at once", ftFreeUDP(t), 5 * time.Second, nil, 0, time.Second, func(t *testing.T, r probeResult) {
			if r.Answered || !r.Refused || !strings.Contains(r.Err.Error(), "port unreachable") {
				t.Errorf("got %+v, want refused", r)
			}
		}, -1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv.reset(t, tt.reply)
			p, err := newTickProbe(netip.MustParseAddr("127.0.0.1"), tt.target, tt.timeout)
			if err != nil {
				t.Fatal(err)
			}
			defer p.Close()
			sent := time.Now()
			p.send(sent)
			time.Sleep(tt.wait)
			var got []probeResult
			for deadline := time.Now().Add(tt.within); len(got) == 0 && time.Now().Before(deadline); time.Sleep(5 * time.Millisecond) {
				got = p.collect(time.Now())
			}
			if len(got) != 1 {
				t.Fatalf("results %+v; want one within %s", got, tt.within)
			}
			if !got[0].Sent.Equal(sent) {
				t.Errorf("Sent %v, want %v", got[0].Sent, sent)
			}
			tt.check(t, got[0])
			if n := len(srv.requests()); tt.reqs >= 0 && n != tt.reqs {
				t.Errorf("server saw %d requests, want %d", n, tt.reqs)
			}
			if more := p.collect(time.Now().Add(time.Hour)); len(more) != 0 {
				t.Errorf("a finished probe came back again: %+v", more)
			}
		})
	}
}

// TestTickProbeMatchesByCallID: answers to several probes in flight go to
// their own probes, in any order, and each probe finishes once.
func TestTickProbeMatchesByCallID(t *testing.T) {
	srv, err := ftListenSIP()
	if err != nil {
		t.Fatal(err)
	}
	defer srv.conn.Close()
	// The first request is answered last.
	srv.reset(t, func(n int) ftSIPReply {
		if n == 0 {
			return ftSIPReply{status: 500, reason: "Late", delay: 100 * time.Millisecond}
		}
		return ftSIPReply{status: 404, reason: "Not Found"}
	})
	p, err := newTickProbe(netip.MustParseAddr("127.0.0.1"), srv.addr(), 2*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	t0 := time.Now()
	p.send(t0)
	p.send(t0.Add(time.Millisecond))
	p.send(t0.Add(2 * time.Millisecond))
	time.Sleep(300 * time.Millisecond)
	got := p.collect(time.Now())
	if len(got) != 3 {
		t.Fatalf("results %+v, want 3", got)
	}
	status := map[time.Time]int{}
	for _, r := range got {
		status[r.Sent] = r.Status
	}
	want := map[time.Time]int{t0: 500, t0.Add(time.Millisecond): 404, t0.Add(2 * time.Millisecond): 404}
	for sent, st := range want {
		if status[sent] != st {
			t.Errorf("probe sent at +%s: status %d, want %d", sent.Sub(t0), status[sent], st)
		}
	}
}

// TestTickProbeFresh: every probe is a new request (ldirectord's reused
// Call-ID made Asterisk answer old dialogs), sent from the source address.
func TestTickProbeFresh(t *testing.T) {
	srv, err := ftListenSIP()
	if err != nil {
		t.Fatal(err)
	}
	defer srv.conn.Close()
	srv.reset(t, nil)
	p, err := newTickProbe(netip.MustParseAddr("127.0.0.2"), srv.addr(), 2*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	for range 5 {
		if r := ftTickRound(t, p, time.Second); !r.Answered {
			t.Fatalf("probe: %+v", r)
		}
	}
	seen := map[string]bool{}
	for _, r := range srv.requests() {
		if r.from.Addr() != netip.MustParseAddr("127.0.0.2") || r.viaHost != "127.0.0.2" {
			t.Errorf("request from %s, Via host %s; want 127.0.0.2", r.from, r.viaHost)
		}
		if r.method != "OPTIONS" {
			t.Errorf("method %s", r.method)
		}
		for _, id := range []string{"c" + r.callID, "b" + r.branch, "t" + r.fromTag} {
			if seen[id] {
				t.Errorf("reused %s", id)
			}
			seen[id] = true
		}
	}
}

func TestNewTickProbeErrors(t *testing.T) {
	tests := []struct {
		source, target, want string
	}{
		{"127.0.0.1", "192.0.2.100", "want IP:port"},
		{"127.0.0.1", "sip.example:5060", "want IP:port"},
		{"::1", "127.0.0.1:5060", "FLIP_SOURCE"},
		{"192.0.2.99", "127.0.0.1:5060", "bind"},
	}
	for _, tt := range tests {
		p, err := newTickProbe(netip.MustParseAddr(tt.source), tt.target, time.Second)
		if err == nil {
			p.Close()
			t.Errorf("newTickProbe(%s, %s): no error", tt.source, tt.target)
			continue
		}
		if !strings.Contains(err.Error(), tt.want) {
			t.Errorf("newTickProbe(%s, %s): %v; want it to mention %q", tt.source, tt.target, err, tt.want)
		}
	}
}

func TestQuotedCallID(t *testing.T) {
	_, msg := optionsRequest("sip:192.0.2.100:5060", "SIP/2.0/UDP 192.0.2.11:40000", "sip:flip@192.0.2.11")
	full := quotedCallID(msg)
	tests := []struct {
		name string
		in   []byte
		want string
	}{
		{"whole request", msg, full},
		{"cut inside the Call-ID", msg[:strings.Index(string(msg), full)+4], ""},
		{"not SIP", []byte("\r\n\r\n"), ""},
	}
	if !strings.HasSuffix(full, "@flip") {
		t.Fatalf("Call-ID %q from the whole request", full)
	}
	for _, tt := range tests {
		if got := quotedCallID(tt.in); got != tt.want {
			t.Errorf("%s: %q, want %q", tt.name, got, tt.want)
		}
	}
}

// TestTickProbeRefusedBetweenTicks: the ICMP error of one probe is pending
// when the next probe is sent. Linux reports it on that send and drops the
// datagram; both probes must still go out and both come back refused.
func TestTickProbeRefusedBetweenTicks(t *testing.T) {
	p, err := newTickProbe(netip.MustParseAddr("127.0.0.1"), ftFreeUDP(t), 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	t0 := time.Now()
	p.send(t0)
	time.Sleep(50 * time.Millisecond) // the port unreachable is back
	p.send(t0.Add(time.Millisecond))
	time.Sleep(50 * time.Millisecond)
	got := p.collect(time.Now())
	if len(got) != 2 {
		t.Fatalf("results %+v, want both probes", got)
	}
	for _, r := range got {
		if !r.Refused {
			t.Errorf("probe sent at +%s: %+v, want refused", r.Sent.Sub(t0), r)
		}
	}
}
