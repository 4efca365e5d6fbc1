package main

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"sync/atomic"
	"syscall"
	"time"
)

// refusalWatch hears a dead Asterisk at once instead of by timeout. SIP
// probes go through sipgo's unconnected UDP socket, on which Linux never
// reports ICMP port unreachable; this connected socket sends a SIP
// keep-alive (CRLF CRLF, RFC 5626, which a live Asterisk ignores) to the
// probe target every interval, and a closed port comes back as
// ECONNREFUSED. The state machine takes FLIP_REFUSED_AFTER of refusals,
// with no SIP answer since, as the service being down.
type refusalWatch struct {
	laddr, raddr *net.UDPAddr
	conn         *net.UDPConn
	ready        atomic.Pointer[net.UDPConn] // set once connected
}

// refusalRedial spaces attempts to connect the socket while the box has no
// route to the target (its link is down at start, say).
const refusalRedial = time.Second

// sipKeepAlive is RFC 5626's keep-alive ping.
var sipKeepAlive = []byte("\r\n\r\n")

func newRefusalWatch(source netip.Addr, target string) (*refusalWatch, error) {
	raddr, err := net.ResolveUDPAddr("udp", target)
	if err != nil {
		return nil, fmt.Errorf("probe target %q: %w", target, err)
	}
	return &refusalWatch{laddr: &net.UDPAddr{IP: source.AsSlice()}, raddr: raddr}, nil
}

// connect dials the socket, retrying while there is no route: a box whose
// link is down must still start.
func (w *refusalWatch) connect(ctx context.Context) bool {
	for ctx.Err() == nil {
		c, err := net.DialUDP("udp", w.laddr, w.raddr)
		if err == nil {
			w.conn = c
			return true
		}
		select {
		case <-ctx.Done():
		case <-time.After(refusalRedial):
		}
	}
	return false
}

// run connects the socket and reports when a refusal comes back, until
// ctx ends. The keep-alives go out from ping, on the agent's probe tick: no
// timer of its own, so no wake-ups of its own.
func (w *refusalWatch) run(ctx context.Context, out chan<- time.Time) {
	if !w.connect(ctx) {
		return
	}
	w.ready.Store(w.conn)
	go func() {
		<-ctx.Done()
		w.conn.Close() // ends the blocking read below
	}()
	buf := make([]byte, 2048)
	for {
		_, err := w.conn.Read(buf)
		switch {
		case errors.Is(err, syscall.ECONNREFUSED):
			report(ctx, out, time.Now())
		case errors.Is(err, net.ErrClosed):
			return
		}
	}
}

// ping sends one keep-alive; before the socket is connected it does nothing.
// A refusal reported on the write belongs to an earlier keep-alive; the
// read side reports it.
func (w *refusalWatch) ping() {
	if c := w.ready.Load(); c != nil {
		_, _ = c.Write(sipKeepAlive)
	}
}

func report(ctx context.Context, out chan<- time.Time, t time.Time) {
	select {
	case out <- t:
	case <-ctx.Done():
	}
}
