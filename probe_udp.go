package main

import (
	"context"
	"crypto/rand"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"strconv"
	"sync"
	"time"

	"github.com/emiago/sipgo/sip"
)

// udpProbe sends SIP OPTIONS over one unconnected UDP socket and matches
// answers to probes by Call-ID, for the commands that probe and wait for the
// answer (`flip check`, the switchover's outage measurement); the agent's
// own loop uses tickProbe, which never blocks. A full sipgo client
// transaction per probe cost about 0.75 ms of CPU; this path keeps what the
// probe needs — a fresh request each time, sipgo's
// parser for the answer, the RFC 3261 retransmission at T1 — and nothing
// else. The socket is unconnected on purpose: the active box probes its own
// VIP over loopback, and a wildcard-bound Asterisk answers that from the
// box's own address, which a connected socket would drop.
type udpProbe struct {
	conn    *net.UDPConn
	target  *net.UDPAddr
	ruri    string // sip:HOST:PORT
	via     string // SIP/2.0/UDP HOST:PORT of the socket
	from    string // sip:flip@HOST
	timeout time.Duration

	mu      sync.Mutex
	pending map[string]chan *sip.Response // Call-ID -> the waiting probe
	closed  bool
}

// udpProbeT1 is RFC 3261's T1: an unanswered UDP request is sent again
// after it, so one lost datagram does not make a whole probe silent.
const udpProbeT1 = 500 * time.Millisecond

func newUDPProbe(source netip.Addr, target, uriHost string, port int, timeout time.Duration) (*udpProbe, error) {
	raddr, err := net.ResolveUDPAddr("udp", target)
	if err != nil {
		return nil, fmt.Errorf("probe target %q: %w", target, err)
	}
	c, err := net.ListenUDP("udp", &net.UDPAddr{IP: source.AsSlice()})
	if err != nil {
		return nil, fmt.Errorf("SIP probe socket on %s: %w", source, err)
	}
	local := c.LocalAddr().(*net.UDPAddr)
	host := source.String()
	if source.Is6() {
		host = "[" + host + "]"
	}
	p := &udpProbe{
		conn:    c,
		target:  raddr,
		ruri:    "sip:" + uriHost + ":" + strconv.Itoa(port),
		via:     "SIP/2.0/UDP " + host + ":" + strconv.Itoa(local.Port),
		from:    "sip:flip@" + host,
		timeout: timeout,
		pending: map[string]chan *sip.Response{},
	}
	go p.read()
	return p, nil
}

// request builds one OPTIONS for this probe's socket.
func (p *udpProbe) request() (callID string, b []byte) {
	return optionsRequest(p.ruri, p.via, p.from)
}

// optionsRequest builds one OPTIONS from the agent (User-Agent flip).
func optionsRequest(ruri, via, from string) (callID string, b []byte) {
	return sipOptions{RURI: ruri, Via: via, From: from, UserAgent: "flip"}.build()
}

// sipOptions is what differs between the OPTIONS flip sends: the agent's
// probes (tick and UDP probe) and flip watch's (and so the switchover's
// measurement). One builder for all of them.
type sipOptions struct {
	RURI, Via, From string
	UserAgent       string // also the Call-ID's host part
	CSeq            int    // 0: a random one
}

// build makes one OPTIONS with a fresh Call-ID, branch, tag and CSeq:
// ldirectord's reused Call-ID made Asterisk answer old dialogs on the wrong
// port.
func (o sipOptions) build() (callID string, b []byte) {
	r := make([]byte, 24)
	_, _ = rand.Read(r)
	callID = hex.EncodeToString(r[:12]) + "@" + o.UserAgent
	branch := "z9hG4bK" + hex.EncodeToString(r[12:20])
	tag := hex.EncodeToString(r[20:24])
	cseq := o.CSeq
	if cseq == 0 {
		cseq = int(binary.BigEndian.Uint16(r[0:2])&0x7fff) + 1
	}
	msg := "OPTIONS " + o.RURI + " SIP/2.0\r\n" +
		"Via: " + o.Via + ";branch=" + branch + ";rport\r\n" +
		"Max-Forwards: 70\r\n" +
		"From: <" + o.From + ">;tag=" + tag + "\r\n" +
		"To: <" + o.RURI + ">\r\n" +
		"Call-ID: " + callID + "\r\n" +
		"CSeq: " + strconv.Itoa(cseq) + " OPTIONS\r\n" +
		"User-Agent: " + o.UserAgent + "\r\n" +
		"Accept: application/sdp\r\n" +
		"Content-Length: 0\r\n\r\n"
	return callID, []byte(msg)
}

// probe sends one OPTIONS and waits for its final answer or the timeout,
// sending it again (same request) every T1 while unanswered.
func (p *udpProbe) probe(ctx context.Context) probeResult {
	res := probeResult{Sent: time.Now()}
	callID, msg := p.request()
	answer := make(chan *sip.Response, 1)
	p.mu.Lock()
	if p.closed {
		p.mu.Unlock()
		res.Err = net.ErrClosed
		return res
	}
	p.pending[callID] = answer
	p.mu.Unlock()
	defer func() {
		p.mu.Lock()
		delete(p.pending, callID)
		p.mu.Unlock()
	}()
	if _, err := p.conn.WriteToUDP(msg, p.target); err != nil {
		res.Err = fmt.Errorf("send OPTIONS to %s: %w", p.target, err)
		return res
	}
	deadline := time.NewTimer(p.timeout)
	defer deadline.Stop()
	resend := time.NewTicker(udpProbeT1)
	defer resend.Stop()
	for {
		select {
		case r := <-answer:
			res.Answered = true
			res.RTT = time.Since(res.Sent)
			res.Status = r.StatusCode
			res.Server = responder(r)
			return res
		case <-resend.C:
			_, _ = p.conn.WriteToUDP(msg, p.target)
		case <-deadline.C:
			res.Err = fmt.Errorf("no answer from %s within %s", p.target, p.timeout)
			return res
		case <-ctx.Done():
			res.Err = ctx.Err()
			return res
		}
	}
}

// read hands every final response to the probe waiting for its Call-ID;
// anything else (provisional answers, stray datagrams) is dropped.
func (p *udpProbe) read() {
	buf := make([]byte, 65535)
	for {
		n, _, err := p.conn.ReadFromUDP(buf)
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return
			}
			continue
		}
		msg, err := sip.ParseMessage(buf[:n])
		if err != nil {
			continue
		}
		r, ok := msg.(*sip.Response)
		if !ok || r.IsProvisional() || r.CallID() == nil {
			continue
		}
		p.mu.Lock()
		ch := p.pending[r.CallID().Value()]
		p.mu.Unlock()
		if ch != nil {
			select {
			case ch <- r:
			default: // a retransmission's second answer
			}
		}
	}
}

// Close ends the reader.
func (p *udpProbe) Close() error {
	p.mu.Lock()
	p.closed = true
	p.mu.Unlock()
	return p.conn.Close()
}
