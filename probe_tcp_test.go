package main

import (
	"bufio"
	"context"
	"net"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/emiago/sipgo"
	"github.com/emiago/sipgo/sip"
)

// TestProberTCP: FLIP_PROBE_TRANSPORT=tcp probes over a TCP connection, and
// a refused connection fails the probe at once, marked Refused, instead of
// after the timeout.
func TestProberTCP(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ua, err := sipgo.NewUA()
	if err != nil {
		t.Fatal(err)
	}
	defer ua.Close()
	srv, err := sipgo.NewServer(ua)
	if err != nil {
		t.Fatal(err)
	}
	srv.OnOptions(func(req *sip.Request, tx sip.ServerTransaction) {
		res := sip.NewResponseFromRequest(req, 200, "OK", nil)
		res.AppendHeader(sip.NewHeader("Server", "tcp-standin"))
		_ = tx.Respond(res)
	})
	go func() { _ = srv.ServeTCP(l) }()

	p, err := newProberTransport(netip.MustParseAddr("127.0.0.1"), l.Addr().String(), 2*time.Second, "tcp")
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	for i := 0; i < 3; i++ {
		r := p.probe(context.Background())
		if !r.Answered || r.Status != 200 || r.Server != "tcp-standin" {
			t.Fatalf("probe %d over TCP = %+v, want a 200 from tcp-standin", i, r)
		}
	}

	closed, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := closed.Addr().String()
	closed.Close()
	q, err := newProberTransport(netip.MustParseAddr("127.0.0.1"), addr, 5*time.Second, "tcp")
	if err != nil {
		t.Fatal(err)
	}
	defer q.Close()
	start := time.Now()
	r := q.probe(context.Background())
	if r.Answered || !r.Refused {
		t.Fatalf("probe of a closed TCP port = %+v, want refused", r)
	}
	// A bound, not a benchmark: the timeout is 5 s, a refusal is immediate.
	if d := time.Since(start); d > 2*time.Second {
		t.Fatalf("refused probe took %s: it waited for the timeout", d)
	}
}

// TestReadSIPMessage: one message at a time from a stream, framed by
// Content-Length, with keep-alive CRLFs between messages skipped.
func TestReadSIPMessage(t *testing.T) {
	tests := []struct {
		name    string
		in      string
		want    []string // messages read in order
		wantErr string   // of the read after them
	}{
		{"two messages, a body and keep-alives", "\r\n\r\nSIP/2.0 200 OK\r\nContent-Length: 4\r\n\r\nbodySIP/2.0 404 Not Found\r\nl: 0\r\n\r\n",
			[]string{"SIP/2.0 200 OK\r\nContent-Length: 4\r\n\r\nbody", "SIP/2.0 404 Not Found\r\nl: 0\r\n\r\n"}, "EOF"},
		{"no Content-Length", "SIP/2.0 200 OK\r\nCall-ID: x\r\n\r\n", nil, "without Content-Length"},
		{"bad Content-Length", "SIP/2.0 200 OK\r\nContent-Length: -3\r\n\r\n", nil, "bad Content-Length"},
		{"body cut short", "SIP/2.0 200 OK\r\nContent-Length: 10\r\n\r\nabc", nil, "EOF"},
		{"endless header", "SIP/2.0 200 OK\r\n" + strings.Repeat("X-Junk: "+strings.Repeat("a", 1000)+"\r\n", 80), nil, "longer than"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rd := bufio.NewReaderSize(strings.NewReader(tt.in), 4096)
			for i, want := range tt.want {
				got, err := readSIPMessage(rd)
				if err != nil || string(got) != want {
					t.Fatalf("message %d = %q, %v; want %q", i, got, err, want)
				}
			}
			if _, err := readSIPMessage(rd); err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Fatalf("last read: %v, want an error containing %q", err, tt.wantErr)
			}
		})
	}
}

// TestProberTCPReconnects: a connection the server closed (Asterisk
// restarted) is dialled again at once: the probe is answered, not failed.
func TestProberTCPReconnects(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	conns := make(chan int, 16)
	go func() {
		for n := 1; ; n++ {
			c, err := l.Accept()
			if err != nil {
				return
			}
			conns <- n
			rd := bufio.NewReader(c)
			b, err := readSIPMessage(rd)
			if err == nil {
				m, _ := sip.ParseMessage(b)
				if req, ok := m.(*sip.Request); ok {
					res := sip.NewResponseFromRequest(req, 200, "OK", nil)
					_, _ = c.Write([]byte(res.String()))
				}
			}
			c.Close() // one answer per connection, then gone
		}
	}()
	p, err := newProberTransport(netip.MustParseAddr("127.0.0.1"), l.Addr().String(), 2*time.Second, "tcp")
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	for i := range 3 {
		if r := p.probe(context.Background()); !r.Answered || r.Status != 200 {
			t.Fatalf("probe %d after the server closed the last connection = %+v, want answered", i, r)
		}
	}
	if len(conns) != 3 {
		t.Fatalf("%d connections for 3 probes, want one each (the server closes them)", len(conns))
	}
}
