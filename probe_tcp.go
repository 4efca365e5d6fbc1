package main

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/emiago/sipgo/sip"
)

// tcpProbe is FLIP_PROBE_TRANSPORT=tcp, for Asterisk set-ups that refuse
// SIP over UDP. It sends the same OPTIONS as every other probe of flip
// (sipOptions) over one TCP connection kept open, as a SIP client keeps its
// flow: a new connection every 100 ms would leave hundreds of sockets in
// TIME_WAIT. When Asterisk dies its kernel resets the connection, the next
// connect is refused, and the probe says so at once (Refused).
type tcpProbe struct {
	source  netip.Addr
	target  string // host:port to dial
	ruri    string
	host    string // this box's address as it goes into Via and From
	timeout time.Duration

	mu   sync.Mutex // one probe at a time on the connection
	conn net.Conn
	rd   *bufio.Reader
}

// tcpMaxMessage bounds one SIP message read from the connection: a stack
// that sends a huge or endless header must not make flip read for ever.
const tcpMaxMessage = 64 << 10

func newTCPProbe(source netip.Addr, target, uriHost string, port int, timeout time.Duration) *tcpProbe {
	host := source.Unmap().String()
	if source.Unmap().Is6() {
		host = "[" + host + "]"
	}
	return &tcpProbe{source: source.Unmap(), target: target, ruri: "sip:" + uriHost + ":" + strconv.Itoa(port) + ";transport=tcp",
		host: host, timeout: timeout}
}

// probe sends one OPTIONS and reads until its final answer or the timeout.
// A connection that turns out broken (Asterisk restarted since) is dialled
// again once, at once.
func (p *tcpProbe) probe(ctx context.Context) probeResult {
	p.mu.Lock()
	defer p.mu.Unlock()
	res := probeResult{Sent: time.Now()}
	ctx, cancel := context.WithTimeout(ctx, p.timeout)
	defer cancel()
	for attempt := 0; ; attempt++ {
		fresh := p.conn == nil
		if fresh {
			if err := p.dial(ctx); err != nil {
				res.Err = err
				res.Refused = errors.Is(err, syscall.ECONNREFUSED)
				return res
			}
		}
		resp, err := p.exchange(ctx)
		if err == nil {
			res.Answered, res.RTT, res.Status, res.Server = true, time.Since(res.Sent), resp.StatusCode, responder(resp)
			return res
		}
		p.drop()
		if fresh || attempt > 0 || ctx.Err() != nil {
			res.Err = fmt.Errorf("OPTIONS over TCP to %s: %w", p.target, err)
			return res
		}
	}
}

// dial opens the connection from this box's own address.
func (p *tcpProbe) dial(ctx context.Context) error {
	d := net.Dialer{LocalAddr: &net.TCPAddr{IP: p.source.AsSlice()}}
	c, err := d.DialContext(ctx, "tcp", p.target)
	if err != nil {
		return fmt.Errorf("connect to %s: %w", p.target, err)
	}
	p.conn, p.rd = c, bufio.NewReaderSize(c, 4096)
	return nil
}

// exchange writes one OPTIONS and returns its final answer; provisional
// answers and answers to earlier, given-up probes are skipped.
func (p *tcpProbe) exchange(ctx context.Context) (*sip.Response, error) {
	local := p.conn.LocalAddr().(*net.TCPAddr)
	callID, msg := sipOptions{RURI: p.ruri, Via: "SIP/2.0/TCP " + p.host + ":" + strconv.Itoa(local.Port),
		From: "sip:flip@" + p.host, UserAgent: "flip"}.build()
	deadline, _ := ctx.Deadline()
	if err := p.conn.SetDeadline(deadline); err != nil {
		return nil, err
	}
	if _, err := p.conn.Write(msg); err != nil {
		return nil, err
	}
	for range 16 { // bounded: stray answers before ours
		b, err := readSIPMessage(p.rd)
		if err != nil {
			return nil, err
		}
		m, err := sip.ParseMessage(b)
		if err != nil {
			return nil, fmt.Errorf("unparsable answer: %w", err)
		}
		r, ok := m.(*sip.Response)
		if !ok || r.IsProvisional() || r.CallID() == nil || r.CallID().Value() != callID {
			continue
		}
		return r, nil
	}
	return nil, errors.New("no answer to this probe among 16 messages")
}

// readSIPMessage reads one SIP message from a stream: the header up to the
// blank line, then Content-Length bytes of body (RFC 3261 18.3: over a
// stream transport Content-Length is mandatory).
func readSIPMessage(rd *bufio.Reader) ([]byte, error) {
	var msg bytes.Buffer
	length := -1
	for {
		line, err := rd.ReadSlice('\n')
		if err != nil {
			return nil, err
		}
		if msg.Len()+len(line) > tcpMaxMessage {
			return nil, fmt.Errorf("SIP header longer than %d bytes", tcpMaxMessage)
		}
		if msg.Len() == 0 && len(bytes.TrimSpace(line)) == 0 {
			continue // keep-alive CRLFs between messages (RFC 5626)
		}
		msg.Write(line)
		trimmed := strings.TrimSpace(string(line))
		if trimmed == "" {
			break
		}
		name, value, ok := strings.Cut(trimmed, ":")
		if ok && (strings.EqualFold(strings.TrimSpace(name), "Content-Length") || strings.EqualFold(strings.TrimSpace(name), "l")) {
			n, err := strconv.Atoi(strings.TrimSpace(value))
			if err != nil || n < 0 || n > tcpMaxMessage {
				return nil, fmt.Errorf("bad Content-Length %q", value)
			}
			length = n
		}
	}
	if length < 0 {
		return nil, errors.New("SIP message over TCP without Content-Length")
	}
	body := make([]byte, length)
	if _, err := io.ReadFull(rd, body); err != nil {
		return nil, err
	}
	msg.Write(body)
	return msg.Bytes(), nil
}

// drop closes the connection; the next probe dials again.
func (p *tcpProbe) drop() {
	if p.conn != nil {
		p.conn.Close()
		p.conn, p.rd = nil, nil
	}
}

// Close closes the connection.
func (p *tcpProbe) Close() error {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.drop()
	return nil
}
