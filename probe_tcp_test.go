package main

import (
	"context"
	"net"
	"net/netip"
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
