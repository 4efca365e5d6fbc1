package main

import (
	"bytes"
	"errors"
	"fmt"
	"net/netip"
	"strconv"
	"time"
	"unsafe"

	"github.com/emiago/sipgo/sip"
	"golang.org/x/sys/unix"
)

// tickProbe is the agent's SIP probe over UDP. It never blocks and has no
// goroutine: on each probe tick the agent collects what came back since the
// last tick and sends the next OPTIONS. On the VMs this was measured on,
// every wake-up of a Go process costs 0.1–0.2 ms of CPU; a blocking reader,
// a per-probe goroutine and a keep-alive socket woke flip four to six times
// per probe (0.7–0.8 % of a core at 10 probes a second). Here the socket is a
// non-blocking descriptor outside Go's netpoller, so an arriving answer wakes
// nobody; the tick is the only wake-up.
//
// The socket is unconnected: the active box probes its own VIP over loopback,
// and a wildcard-bound Asterisk answers that from the box's own address,
// which a connected socket would drop. IP_RECVERR makes Linux report ICMP
// port unreachable on it all the same: the error queue hands back the start
// of the refused OPTIONS, whose Call-ID names the probe. A closed SIP port is
// so known from the probe itself, with no keep-alive of its own.
type tickProbe struct {
	fd      int
	target  netip.AddrPort
	to      unix.Sockaddr
	ruri    string // sip:HOST:PORT
	via     string // SIP/2.0/UDP HOST:PORT of the socket
	from    string // sip:flip@HOST
	timeout time.Duration

	pending []*tickPending // sent, not yet answered, oldest first
	done    []probeResult  // finished between two collects (send errors)
	// errQueued: a send consumed the socket error that announces an ICMP
	// error, so the error queue is read on the next collect even though
	// no receive reports it.
	errQueued bool
	buf       []byte
	oob       []byte
}

// tickPending is one probe on the wire.
type tickPending struct {
	callID   string
	msg      []byte
	sent     time.Time // first send: silence is counted from it
	lastSend time.Time // for the T1 retransmission
}

// tickMaxPending bounds the probes kept waiting for an answer: a timeout of
// seconds at a 10 ms interval must not grow without limit. The oldest is
// given up first.
const tickMaxPending = 512

func newTickProbe(source netip.Addr, target string, timeout time.Duration) (*tickProbe, error) {
	ap, err := netip.ParseAddrPort(target)
	if err != nil {
		return nil, fmt.Errorf("probe target %q: want IP:port: %w", target, err)
	}
	ap = netip.AddrPortFrom(ap.Addr().Unmap(), ap.Port())
	source = source.Unmap()
	if ap.Addr().Is4() != source.Is4() {
		return nil, fmt.Errorf("probe target %s and source %s are not of the same IP version; set FLIP_SOURCE to this box's own IPv%d address", target, source, ipVersion(ap.Addr()))
	}
	family, level, recverr := unix.AF_INET6, unix.SOL_IPV6, unix.IPV6_RECVERR
	var bind unix.Sockaddr = &unix.SockaddrInet6{Addr: source.As16()}
	var to unix.Sockaddr = &unix.SockaddrInet6{Addr: ap.Addr().As16(), Port: int(ap.Port())}
	host := "[" + source.String() + "]"
	uriHost := "[" + ap.Addr().String() + "]"
	if source.Is4() {
		family, level, recverr = unix.AF_INET, unix.SOL_IP, unix.IP_RECVERR
		bind = &unix.SockaddrInet4{Addr: source.As4()}
		to = &unix.SockaddrInet4{Addr: ap.Addr().As4(), Port: int(ap.Port())}
		host, uriHost = source.String(), ap.Addr().String()
	}
	fd, err := unix.Socket(family, unix.SOCK_DGRAM|unix.SOCK_NONBLOCK|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return nil, fmt.Errorf("SIP probe socket on %s: %w", source, err)
	}
	fail := func(what string, err error) (*tickProbe, error) {
		unix.Close(fd)
		return nil, fmt.Errorf("SIP probe socket on %s: %s: %w", source, what, err)
	}
	if err := unix.SetsockoptInt(fd, level, recverr, 1); err != nil {
		return fail("IP_RECVERR", err)
	}
	if err := unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_TIMESTAMPNS, 1); err != nil {
		return fail("SO_TIMESTAMPNS", err)
	}
	if err := unix.Bind(fd, bind); err != nil {
		return fail("bind", err)
	}
	local, err := unix.Getsockname(fd)
	if err != nil {
		return fail("getsockname", err)
	}
	port := 0
	switch sa := local.(type) {
	case *unix.SockaddrInet4:
		port = sa.Port
	case *unix.SockaddrInet6:
		port = sa.Port
	}
	return &tickProbe{
		fd:      fd,
		target:  ap,
		to:      to,
		ruri:    "sip:" + uriHost + ":" + strconv.Itoa(int(ap.Port())),
		via:     "SIP/2.0/UDP " + host + ":" + strconv.Itoa(port),
		from:    "sip:flip@" + host,
		timeout: timeout,
		buf:     make([]byte, 65535),
		oob:     make([]byte, 512),
	}, nil
}

// send puts one new OPTIONS on the wire. A send that fails (no route while
// the link is down, say) is an unanswered probe, returned by the next collect.
func (p *tickProbe) send(now time.Time) {
	callID, msg := optionsRequest(p.ruri, p.via, p.from)
	if err := p.sendto(msg); err != nil {
		p.done = append(p.done, probeResult{Sent: now, Err: fmt.Errorf("send OPTIONS to %s: %w", p.target, err)})
		return
	}
	if len(p.pending) >= tickMaxPending {
		p.done = append(p.done, p.expire(p.pending[0], "too many probes unanswered"))
		p.pending = p.pending[1:]
	}
	p.pending = append(p.pending, &tickPending{callID: callID, msg: msg, sent: now, lastSend: now})
}

// sendto sends one datagram. Linux reports a pending socket error (the
// ICMP error of an earlier probe, under IP_RECVERR) on the next send and
// drops that datagram; the error is noted for collect and the datagram
// sent again.
func (p *tickProbe) sendto(msg []byte) error {
	err := unix.Sendto(p.fd, msg, 0, p.to)
	if errors.Is(err, unix.ECONNREFUSED) {
		p.errQueued = true
		err = unix.Sendto(p.fd, msg, 0, p.to)
	}
	return err
}

// collect reads everything that arrived since the last call without
// waiting, and returns the probes that finished: answered, refused, or
// silent for longer than the timeout. Unanswered probes older than T1 go
// out again, as RFC 3261 retransmits over UDP.
func (p *tickProbe) collect(now time.Time) []probeResult {
	out := p.done
	p.done = nil
	for range tickMaxPending { // bounded: at most this many datagrams per tick
		n, oobn, _, _, err := unix.Recvmsg(p.fd, p.buf, p.oob, unix.MSG_DONTWAIT)
		if err != nil {
			if errors.Is(err, unix.EAGAIN) {
				break
			}
			// The socket error that IP_RECVERR sets; the details are
			// in the error queue.
			p.errQueued = true
			continue
		}
		if r, ok := p.answer(p.buf[:n], p.oob[:oobn], now); ok {
			out = append(out, r)
		}
	}
	if p.errQueued {
		p.errQueued = false
		out = append(out, p.readErrors(now)...)
	}
	keep := p.pending[:0]
	for _, q := range p.pending {
		switch {
		case now.Sub(q.sent) >= p.timeout:
			out = append(out, p.expire(q, ""))
			continue
		case now.Sub(q.lastSend) >= udpProbeT1:
			q.lastSend = now
			_ = p.sendto(q.msg)
		}
		keep = append(keep, q)
	}
	clear(p.pending[len(keep):])
	p.pending = keep
	return out
}

// answer matches one datagram to its probe by Call-ID. Provisional answers,
// strays and answers to probes already given up are dropped.
func (p *tickProbe) answer(b, oob []byte, now time.Time) (probeResult, bool) {
	msg, err := sip.ParseMessage(b)
	if err != nil {
		return probeResult{}, false
	}
	r, ok := msg.(*sip.Response)
	if !ok || r.IsProvisional() || r.CallID() == nil {
		return probeResult{}, false
	}
	q := p.take(r.CallID().Value())
	if q == nil {
		return probeResult{}, false
	}
	at := arrival(oob, now)
	res := probeResult{Sent: q.sent, Answered: true, RTT: max(at.Sub(q.sent), 0), Status: r.StatusCode}
	res.Server = responder(r)
	return res, true
}

// readErrors drains the error queue. A port unreachable finishes the probe
// whose OPTIONS it quotes as refused; other ICMP errors (host unreachable
// while ARP fails) are left to the timeout.
func (p *tickProbe) readErrors(now time.Time) []probeResult {
	var out []probeResult
	for range tickMaxPending {
		n, oobn, _, _, err := unix.Recvmsg(p.fd, p.buf, p.oob, unix.MSG_ERRQUEUE|unix.MSG_DONTWAIT)
		if err != nil {
			return out
		}
		if !refusedError(p.oob[:oobn]) {
			continue
		}
		if q := p.take(quotedCallID(p.buf[:n])); q != nil {
			out = append(out, probeResult{Sent: q.sent, Refused: true,
				Err: fmt.Errorf("%s: port unreachable (nothing listens)", p.target)})
		}
	}
	return out
}

// take removes and returns the pending probe with callID, or nil.
func (p *tickProbe) take(callID string) *tickPending {
	for i, q := range p.pending {
		if q.callID == callID {
			p.pending = append(p.pending[:i], p.pending[i+1:]...)
			return q
		}
	}
	return nil
}

func (p *tickProbe) expire(q *tickPending, why string) probeResult {
	if why == "" {
		why = "no answer within " + p.timeout.String()
	}
	return probeResult{Sent: q.sent, Err: fmt.Errorf("%s: %s", p.target, why)}
}

// Close releases the socket; pending probes are forgotten.
func (p *tickProbe) Close() error {
	p.pending = nil
	return unix.Close(p.fd)
}

// quotedCallID finds the Call-ID in the start of an OPTIONS quoted by an
// ICMP error ("" when the quote is cut before it).
func quotedCallID(b []byte) string {
	const h = "\r\nCall-ID: "
	i := bytes.Index(b, []byte(h))
	if i < 0 {
		return ""
	}
	rest := b[i+len(h):]
	j := bytes.Index(rest, []byte("\r\n"))
	if j < 0 {
		return ""
	}
	return string(rest[:j])
}

// refusedError reports whether an error-queue message is ECONNREFUSED, the
// form ICMP (and ICMPv6) port unreachable takes.
func refusedError(oob []byte) bool {
	msgs, err := unix.ParseSocketControlMessage(oob)
	if err != nil {
		return false
	}
	for _, m := range msgs {
		if (m.Header.Level == unix.SOL_IP && m.Header.Type == unix.IP_RECVERR) ||
			(m.Header.Level == unix.SOL_IPV6 && m.Header.Type == unix.IPV6_RECVERR) {
			var ee unix.SockExtendedErr
			if !copyStruct(unsafe.Pointer(&ee), unsafe.Sizeof(ee), m.Data) {
				continue
			}
			if ee.Errno == uint32(unix.ECONNREFUSED) {
				return true
			}
		}
	}
	return false
}

// arrival is the kernel's receive time of a datagram (SO_TIMESTAMPNS), so a
// probe's RTT does not include the wait for the next tick; now without one.
func arrival(oob []byte, now time.Time) time.Time {
	msgs, err := unix.ParseSocketControlMessage(oob)
	if err != nil {
		return now
	}
	for _, m := range msgs {
		var ts unix.Timespec
		if m.Header.Level == unix.SOL_SOCKET && m.Header.Type == unix.SCM_TIMESTAMPNS &&
			copyStruct(unsafe.Pointer(&ts), unsafe.Sizeof(ts), m.Data) {
			at := time.Unix(ts.Unix())
			// Wall clock against the send's wall clock; a clock step in
			// between must not give a negative or absurd RTT.
			if at.After(now.Round(0)) {
				return now
			}
			return at
		}
	}
	return now
}

// copyStruct copies a kernel struct out of control-message data, which need
// not be aligned for it; false when the data is too short.
func copyStruct(dst unsafe.Pointer, size uintptr, data []byte) bool {
	if uintptr(len(data)) < size {
		return false
	}
	copy(unsafe.Slice((*byte)(dst), size), data)
	return true
}
