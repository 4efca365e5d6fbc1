package main

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
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

// run sends a keep-alive every interval and reports when a refusal came
// back, until ctx ends.
func (w *refusalWatch) run(ctx context.Context, interval time.Duration, out chan<- time.Time) {
	if !w.connect(ctx) {
		return
	}
	defer w.conn.Close()
	go w.read(ctx, out)
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		// A refusal can also surface on the write (for the previous one).
		if _, err := w.conn.Write(sipKeepAlive); errors.Is(err, syscall.ECONNREFUSED) {
			report(ctx, out, time.Now())
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// read turns ECONNREFUSED on the socket into reports.
func (w *refusalWatch) read(ctx context.Context, out chan<- time.Time) {
	buf := make([]byte, 2048)
	for ctx.Err() == nil {
		_ = w.conn.SetReadDeadline(time.Now().Add(250 * time.Millisecond))
		if _, err := w.conn.Read(buf); errors.Is(err, syscall.ECONNREFUSED) {
			report(ctx, out, time.Now())
		}
	}
}

func report(ctx context.Context, out chan<- time.Time, t time.Time) {
	select {
	case out <- t:
	case <-ctx.Done():
	}
}
