package main

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/emiago/sipgo/sip"
)

// init silences sipgo's process-wide default logger: it logs every dropped
// transaction, and a probe that times out is normal here. It is an
// unguarded global, so it is set before any transport goroutine can run.
func init() { sip.SetDefaultLogger(slog.New(slog.DiscardHandler)) }

// probeResult is what one SIP OPTIONS probe learned. Sent is when the probe
// left: silence is measured from the send time of the last answered probe,
// and a probe sent before a role change never counts for the new role.
type probeResult struct {
	Sent     time.Time
	Answered bool
	Status   int           // SIP status code of the answer
	Server   string        // Server or User-Agent header of the answer
	RTT      time.Duration // send to answer, when answered
	Err      error         // why there was no answer
	Refused  bool          // the port refused (TCP RST or ICMP): the service is not listening
}

// prober sends SIP OPTIONS to the service address. Any SIP response (200,
// 404, 401, 403…) means the SIP stack is alive: Asterisk answers OPTIONS
// differently depending on its config.
type prober struct {
	udp       *tickProbe // UDP: the agent's own probe, waited on (probeOnce)
	udpMu     sync.Mutex
	tcp       *tcpProbe // TCP (probe_tcp.go)
	timeout   time.Duration
	transport string // "UDP" or "TCP"
}

// newProber sends from source (this box's own address, never a VIP: after
// the route src rewrite the kernel would pick the VIP) to target host:port
// over UDP. timeout bounds each probe; an answer later than that is silence
// anyway.
func newProber(source netip.Addr, target string, timeout time.Duration) (*prober, error) {
	return newProberTransport(source, target, timeout, "udp")
}

// newProberTransport is newProber over "udp" or "tcp" (FLIP_PROBE_TRANSPORT,
// for Asterisk set-ups that refuse UDP). Over TCP a refused connection
// fails the probe at once, marked Refused.
func newProberTransport(source netip.Addr, target string, timeout time.Duration, transport string) (*prober, error) {
	host, portStr, err := net.SplitHostPort(target)
	if err != nil {
		return nil, fmt.Errorf("probe target %q: %w", target, err)
	}
	port, err := strconv.Atoi(portStr)
	if err != nil {
		return nil, fmt.Errorf("probe target %q: bad port: %w", target, err)
	}
	// An IPv6 host goes into the URI in brackets, as sipgo's own parser
	// keeps it: the Request-URI is then sip:[2001:db8::100]:5060, and the
	// transport, which joins Host and Port with a plain ":", gets an
	// address it can parse. (Via and From hosts, from the source, are
	// bracketed by sipgo when it writes them.)
	if a, err := netip.ParseAddr(host); err == nil {
		a = a.Unmap()
		if a.Is4() != source.Unmap().Is4() {
			return nil, fmt.Errorf("probe target %s and source %s are not of the same IP version; set FLIP_SOURCE to this box's own IPv%d address", target, source, ipVersion(a))
		}
		host = a.String()
		if a.Is6() {
			host = "[" + host + "]"
		}
	}
	if strings.EqualFold(transport, "udp") {
		u, err := newTickProbe(source, target, timeout)
		if err != nil {
			return nil, err
		}
		return &prober{udp: u, timeout: timeout, transport: "UDP"}, nil
	}
	if !strings.EqualFold(transport, "tcp") {
		return nil, fmt.Errorf("probe transport %q: want udp or tcp", transport)
	}
	return &prober{tcp: newTCPProbe(source, target, host, port, timeout), timeout: timeout, transport: "TCP"}, nil
}

// probe sends one OPTIONS and waits for its final answer or the timeout.
// Each probe is a new request, so it gets a fresh Call-ID, Via branch, From
// tag and CSeq: ldirectord's reused Call-ID made Asterisk answer old dialogs
// on the wrong port.
func (p *prober) probe(ctx context.Context) probeResult {
	if p.udp != nil {
		p.udpMu.Lock()
		defer p.udpMu.Unlock()
		return p.udp.probeOnce(ctx)
	}
	return p.tcp.probe(ctx)
}

// responder names the SIP stack that answered: its Server header, else its
// User-Agent ("" when it sent neither).
func responder(r *sip.Response) string {
	if h := r.GetHeader("Server"); h != nil {
		return h.Value()
	}
	if h := r.GetHeader("User-Agent"); h != nil {
		return h.Value()
	}
	return ""
}

func ipVersion(a netip.Addr) int {
	if a.Unmap().Is4() {
		return 4
	}
	return 6
}

// Close releases the SIP transport.
func (p *prober) Close() error {
	if p.udp != nil {
		return p.udp.Close()
	}
	return p.tcp.Close()
}
