// Command standin-asterisk stands in for Asterisk in flip's end-to-end tests.
//
// It answers SIP requests over UDP, one response per datagram, so a failover
// drill sees exactly what a probe of a real PBX would see: silence (and a
// closed port) while "Asterisk" is starting, then answers carrying a Server
// header that tells the boxes apart.
//
// It also takes calls, as far as counting dropped calls needs: an INVITE is
// answered 200 OK with a minimal SDP body, and the call is in progress (a
// dialog, known by its Call-ID) from that 200 until its BYE. A BYE, re-INVITE
// or other in-dialog request for a Call-ID it never answered gets 481
// Call/Transaction Does Not Exist: that is what the other box of a pair
// answers for the calls of a switchover that did not wait for them (the call
// is dropped). No media flows. -calls-file publishes the number of calls in
// progress for FLIP_CALLS_CMD (`cat FILE`).
//
// It binds the wildcard address by default, like Asterisk does, so the kernel
// picks each reply's source address from the route (including a route's
// "src" hint) rather than from the address the request was sent to. Go
// listens on IPv4 and IPv6 for network "udp" and an unspecified address
// (one dual-stack socket, *:5060), so IPv6 clients are answered too.
package main

import (
	"bufio"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log"
	"net"
	"net/netip"
	"os"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/emiago/sipgo/sip"
)

// reasons gives the reason phrases for the status codes a test is likely to
// ask for; the phrase is cosmetic, so anything else gets a generic one.
var reasons = map[int]string{
	200: "OK",
	401: "Unauthorized",
	403: "Forbidden",
	404: "Not Found",
	405: "Method Not Allowed",
	481: "Call/Transaction Does Not Exist",
	500: "Server Internal Error",
	503: "Service Unavailable",
}

// reasonFor is the reason phrase of status.
func reasonFor(status int) string {
	if r := reasons[status]; r != "" {
		return r
	}
	return "Status " + strconv.Itoa(status)
}

// endedKeep is how long an ended call is remembered, so that a retransmitted
// BYE (its 200 was lost) gets 200 again rather than 481, and a late
// retransmission of the INVITE gets its 200 again without reviving the call:
// 64*T1, the lifetime of a SIP transaction.
const endedKeep = 32 * time.Second

func main() {
	listen := flag.String("listen", "0.0.0.0:5060", "UDP address to listen on")
	name := flag.String("name", "standin-asterisk", "value of the Server header of every response")
	startDelay := flag.Duration("start-delay", 0, "sleep this long before binding the socket (mimics Asterisk's startup)")
	status := flag.Int("status", 200, "status code to answer requests with (a 2xx: INVITEs are answered 200 OK and become calls)")
	pidfile := flag.String("pidfile", "", "write own pid here; removed on exit")
	verbose := flag.Bool("v", false, "log every request")
	tcp := flag.Bool("tcp", false, "also answer SIP over TCP on the same address")
	drainFile := flag.String("drain-file", "", "while this file exists, answer 503 Service Unavailable to OPTIONS and new calls (in-dialog requests of the calls in progress are answered as usual), as Asterisk does while it shuts down gracefully")
	callsFile := flag.String("calls-file", "", "write the number of calls in progress here (a bare number, replaced atomically) whenever it changes; removed on exit")
	flag.Parse()

	log.SetFlags(log.LstdFlags | log.Lmicroseconds)
	log.SetPrefix("standin-asterisk: ")
	if *status < 100 || *status > 699 {
		log.Fatalf("bad -status %d: want 100..699", *status)
	}
	s := &server{
		name:      *name,
		status:    *status,
		drainFile: *drainFile,
		verbose:   *verbose,
		calls:     newDialogs(*callsFile, time.Now),
	}
	if err := run(s, *listen, *startDelay, *pidfile, *tcp); err != nil {
		log.Fatal(err)
	}
}

func run(s *server, listen string, startDelay time.Duration, pidfile string, tcp bool) error {
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()

	if pidfile != "" {
		if err := os.WriteFile(pidfile, []byte(strconv.Itoa(os.Getpid())+"\n"), 0o644); err != nil {
			return fmt.Errorf("write pidfile: %w", err)
		}
		defer os.Remove(pidfile)
	}

	// The port stays closed during the delay, so probes get ICMP port
	// unreachable exactly as they would from a box whose Asterisk is booting.
	if startDelay > 0 {
		t := time.NewTimer(startDelay)
		select {
		case <-t.C:
		case <-ctx.Done():
			t.Stop()
			log.Printf("stopped during start delay")
			return nil
		}
	}

	conn, err := net.ListenPacket("udp", listen)
	if err != nil {
		return err
	}
	if tcp {
		l, err := net.Listen("tcp", listen)
		if err != nil {
			return err
		}
		go func() {
			<-ctx.Done()
			l.Close()
		}()
		go serveTCP(l, s)
	}
	// Up: no calls yet. A stopped Asterisk has no count to give (its console
	// does not answer), so the file goes away on exit.
	s.calls.publish()
	defer s.calls.remove()
	log.Printf("listening on %s after start delay %s (name %q, status %d)", conn.LocalAddr(), startDelay, s.name, s.status)

	// Closing the socket is what ends the read loop on a signal.
	go func() {
		<-ctx.Done()
		conn.Close()
	}()

	buf := make([]byte, 65535)
	for {
		n, from, err := conn.ReadFrom(buf)
		if err != nil {
			if errors.Is(err, net.ErrClosed) || ctx.Err() != nil {
				log.Printf("stopping")
				return nil
			}
			// Transient errors (e.g. ICMP reports) must not end the loop.
			log.Printf("read: %v", err)
			continue
		}
		reply := s.answer(buf[:n], from)
		if reply == nil {
			continue
		}
		if _, err := conn.WriteTo(reply, from); err != nil {
			log.Printf("reply to %s: %v", from, err)
		}
	}
}

// serveTCP answers SIP over TCP: each connection carries requests framed by
// their headers' end and Content-Length.
func serveTCP(l net.Listener, s *server) {
	for {
		c, err := l.Accept()
		if err != nil {
			return
		}
		go func() {
			defer c.Close()
			r := bufio.NewReader(c)
			for {
				var head strings.Builder
				length := 0
				for {
					line, err := r.ReadString('\n')
					if err != nil {
						return
					}
					head.WriteString(line)
					if k, v, ok := strings.Cut(line, ":"); ok && strings.EqualFold(strings.TrimSpace(k), "Content-Length") {
						length, _ = strconv.Atoi(strings.TrimSpace(v))
					}
					if line == "\r\n" && head.Len() > 2 {
						break
					}
				}
				body := make([]byte, length)
				if _, err := io.ReadFull(r, body); err != nil {
					return
				}
				if reply := s.answer(append([]byte(head.String()), body...), c.RemoteAddr()); reply != nil {
					if _, err := c.Write(reply); err != nil {
						return
					}
				}
			}
		}()
	}
}

// server answers requests: its settings and the calls in progress.
type server struct {
	name      string
	status    int    // the answer to OPTIONS and out-of-dialog requests (a 2xx: calls are taken)
	drainFile string // while it exists: 503 to OPTIONS and new calls
	verbose   bool
	calls     *dialogs
}

// draining says whether the drain file exists.
func (s *server) draining() bool {
	if s.drainFile == "" {
		return false
	}
	_, err := os.Stat(s.drainFile)
	return err == nil
}

// answer builds the response to one datagram, or nil when it must not be
// answered (not a request, unparsable, or an ACK).
func (s *server) answer(data []byte, from net.Addr) []byte {
	msg, err := sip.ParseMessage(data)
	if err != nil {
		return nil
	}
	req, ok := msg.(*sip.Request)
	if !ok {
		return nil
	}
	// The source fills in Via received/rport (RFC 3581) if the client asked.
	req.SetSource(from.String())
	reply, status := s.respond(req, s.draining())
	if s.verbose && reply != nil {
		log.Printf("%d from %s (%s)", status, from, req.Method)
	}
	return reply
}

// respond is the answer to req (nil: none) and its status code, draining or
// not. The rules:
//
//   - ACK: no answer.
//   - OPTIONS: -status, or 503 while draining.
//   - INVITE without a To tag (a new call): a retransmission of an INVITE
//     already answered 200 (known Call-ID) gets the very same 200 again;
//     otherwise 503 while draining, -status if that is not a 2xx, else 200 OK
//     with SDP and Contact, and the call is in progress from then on.
//   - BYE, and any request with a To tag (in-dialog): 481 for an unknown
//     Call-ID; for a call in progress 200 (a BYE ends the call; a re-INVITE
//     gets SDP), draining or not. A retransmitted BYE of a call that ended
//     in the last endedKeep gets 200 again.
//   - CANCEL: 200 for a known Call-ID (the call was answered already, so it
//     changes nothing), 481 otherwise.
//   - any other request: -status, or 503 while draining.
func (s *server) respond(req *sip.Request, draining bool) ([]byte, int) {
	if req.IsAck() {
		return nil, 0
	}
	callID := ""
	if h := req.CallID(); h != nil {
		callID = h.Value()
	}
	inDialog := req.Method == sip.BYE || hasToTag(req)
	switch {
	case req.Method == sip.OPTIONS:
		return s.plain(req, s.status, draining)
	case req.Method == sip.INVITE && !inDialog:
		if cached := s.calls.answered(callID); cached != nil {
			return cached, 200
		}
		if draining || s.status/100 != 2 || callID == "" {
			return s.plain(req, s.status, draining)
		}
		return s.calls.start(callID, s.build(req, 200, true)), 200
	case req.Method == sip.CANCEL:
		if s.calls.known(callID) {
			return s.build(req, 200, false), 200
		}
		return s.build(req, 481, false), 481
	case inDialog:
		if req.Method == sip.BYE {
			if s.calls.end(callID) {
				return s.build(req, 200, false), 200
			}
			return s.build(req, 481, false), 481
		}
		if !s.calls.active(callID) {
			return s.build(req, 481, false), 481
		}
		return s.build(req, 200, req.Method == sip.INVITE), 200
	default:
		return s.plain(req, s.status, draining)
	}
}

// plain answers status, or 503 while draining.
func (s *server) plain(req *sip.Request, status int, draining bool) ([]byte, int) {
	if draining {
		status = 503
	}
	return s.build(req, status, false), status
}

// build is the response to req with status; sdp: a 200 to an INVITE (with a
// Contact and an SDP answer).
func (s *server) build(req *sip.Request, status int, sdp bool) []byte {
	var body []byte
	host := localHost(req)
	if sdp {
		body = sdpAnswer(host)
	}
	res := sip.NewResponseFromRequest(req, status, reasonFor(status), body)
	res.AppendHeader(sip.NewHeader("Server", s.name))
	if req.Method == sip.OPTIONS || sdp {
		res.AppendHeader(sip.NewHeader("Allow", "OPTIONS, INVITE, ACK, BYE, CANCEL"))
	}
	if sdp {
		hostport := host
		if strings.Contains(host, ":") {
			hostport = "[" + host + "]"
		}
		if req.Recipient.Port > 0 {
			hostport += ":" + strconv.Itoa(req.Recipient.Port)
		}
		res.AppendHeader(sip.NewHeader("Contact", "<sip:standin@"+hostport+">"))
		res.AppendHeader(sip.NewHeader("Content-Type", "application/sdp"))
	}
	// NewResponseFromRequest set Content-Length (0 without a body).
	return []byte(res.String())
}

// hasToTag says whether req's To header has a tag: a request within a dialog.
func hasToTag(req *sip.Request) bool {
	h := req.To()
	return h != nil && h.Params.Has("tag")
}

// localHost is the address the SDP and Contact name: the Request-URI's host
// if it is an IP address (the address the caller dialled: the VIP), else
// 0.0.0.0.
func localHost(req *sip.Request) string {
	if a, err := netip.ParseAddr(strings.Trim(req.Recipient.Host, "[]")); err == nil {
		return a.String()
	}
	return "0.0.0.0"
}

// sdpAnswer is a minimal SDP answer: one audio stream, G.711 µ-law, at host.
func sdpAnswer(host string) []byte {
	ipv := "IP4"
	if strings.Contains(host, ":") {
		ipv = "IP6"
	}
	return []byte("v=0\r\n" +
		"o=standin 1 1 IN " + ipv + " " + host + "\r\n" +
		"s=standin-asterisk\r\n" +
		"c=IN " + ipv + " " + host + "\r\n" +
		"t=0 0\r\n" +
		"m=audio 10000 RTP/AVP 0\r\n" +
		"a=rtpmap:0 PCMU/8000\r\n" +
		"a=sendrecv\r\n")
}

// dialogs are the calls in progress, by Call-ID, and the ones that ended
// lately (retransmissions); the count goes to file whenever it changes.
type dialogs struct {
	mu    sync.Mutex
	now   func() time.Time
	file  string                // "" = none
	calls map[string][]byte     // Call-ID → the 200 that answered its INVITE
	ended map[string]endedEntry // Call-ID → the call that ended lately
	count int                   // the count last published; -1: none yet
}

type endedEntry struct {
	at    time.Time
	reply []byte // the 200 that answered its INVITE
}

func newDialogs(file string, now func() time.Time) *dialogs {
	return &dialogs{now: now, file: file, calls: map[string][]byte{}, ended: map[string]endedEntry{}, count: -1}
}

// answered is the 200 a known call's INVITE got (in progress or ended
// lately), nil if the Call-ID is unknown.
func (d *dialogs) answered(callID string) []byte {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.prune()
	if r, ok := d.calls[callID]; ok {
		return r
	}
	if e, ok := d.ended[callID]; ok {
		return e.reply
	}
	return nil
}

// known says whether callID is in progress or ended lately.
func (d *dialogs) known(callID string) bool { return d.answered(callID) != nil }

// active says whether callID is in progress.
func (d *dialogs) active(callID string) bool {
	d.mu.Lock()
	defer d.mu.Unlock()
	_, ok := d.calls[callID]
	return ok
}

// start records a call answered with reply and returns reply; if callID is
// known already (the same INVITE twice at once, over TCP), nothing changes
// and the first answer is returned.
func (d *dialogs) start(callID string, reply []byte) []byte {
	d.mu.Lock()
	defer d.mu.Unlock()
	if r, ok := d.calls[callID]; ok {
		return r
	}
	if e, ok := d.ended[callID]; ok {
		return e.reply
	}
	d.calls[callID] = reply
	d.publishLocked()
	return reply
}

// end ends callID on its BYE; false: unknown (never seen, or ended too long
// ago). A BYE of a call that ended lately (a retransmission) is true.
func (d *dialogs) end(callID string) bool {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.prune()
	if r, ok := d.calls[callID]; ok {
		delete(d.calls, callID)
		d.ended[callID] = endedEntry{at: d.now(), reply: r}
		d.publishLocked()
		return true
	}
	_, ok := d.ended[callID]
	return ok
}

// inProgress is the number of calls in progress.
func (d *dialogs) inProgress() int {
	d.mu.Lock()
	defer d.mu.Unlock()
	return len(d.calls)
}

// prune forgets the calls that ended more than endedKeep ago; d.mu held.
func (d *dialogs) prune() {
	now := d.now()
	for id, e := range d.ended {
		if now.Sub(e.at) > endedKeep {
			delete(d.ended, id)
		}
	}
}

// publish writes the count to the file (also when unchanged).
func (d *dialogs) publish() {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.count = -1
	d.publishLocked()
}

// publishLocked writes the count to the file if it changed: a temporary file
// in the same directory renamed over it, so a reader sees the old number or
// the new one, never a partial write. d.mu held.
func (d *dialogs) publishLocked() {
	n := len(d.calls)
	if d.file == "" || n == d.count {
		return
	}
	if err := writeAtomic(d.file, []byte(strconv.Itoa(n)+"\n")); err != nil {
		log.Printf("calls file: %v", err)
		return
	}
	d.count = n
}

// remove deletes the calls file.
func (d *dialogs) remove() {
	if d.file != "" {
		os.Remove(d.file)
	}
}

// writeAtomic replaces path with data: temporary file, then rename.
func writeAtomic(path string, data []byte) error {
	f, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".tmp*")
	if err != nil {
		return err
	}
	tmp := f.Name()
	_, err = f.Write(data)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Chmod(tmp, 0o644)
	}
	if err == nil {
		err = os.Rename(tmp, path)
	}
	if err != nil {
		os.Remove(tmp)
	}
	return err
}
