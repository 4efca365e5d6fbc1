// Command standin-asterisk stands in for Asterisk in flip's end-to-end tests.
//
// It answers every SIP request over UDP statelessly, one response per
// datagram, so a failover drill sees exactly what a probe of a real PBX would
// see: silence (and a closed port) while "Asterisk" is starting, then answers
// carrying a Server header that tells the boxes apart.
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
	"os"
	"os/signal"
	"strconv"
	"strings"
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
	500: "Server Internal Error",
	503: "Service Unavailable",
}

// drainFile: while it exists every request gets 503 (Asterisk after "core
// stop gracefully": it still answers, it takes no new calls).
var drainFile string

func main() {
	listen := flag.String("listen", "0.0.0.0:5060", "UDP address to listen on")
	name := flag.String("name", "standin-asterisk", "value of the Server header of every response")
	startDelay := flag.Duration("start-delay", 0, "sleep this long before binding the socket (mimics Asterisk's startup)")
	status := flag.Int("status", 200, "status code to answer requests with")
	pidfile := flag.String("pidfile", "", "write own pid here; removed on exit")
	verbose := flag.Bool("v", false, "log every request")
	tcp := flag.Bool("tcp", false, "also answer SIP over TCP on the same address")
	flag.StringVar(&drainFile, "drain-file", "", "while this file exists, answer 503 Service Unavailable, as Asterisk does while it shuts down gracefully")
	flag.Parse()

	log.SetFlags(log.LstdFlags | log.Lmicroseconds)
	log.SetPrefix("standin-asterisk: ")
	if *status < 100 || *status > 699 {
		log.Fatalf("bad -status %d: want 100..699", *status)
	}
	if err := run(*listen, *name, *startDelay, *status, *pidfile, *verbose, *tcp); err != nil {
		log.Fatal(err)
	}
}

func run(listen, name string, startDelay time.Duration, status int, pidfile string, verbose, tcp bool) error {
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
		go serveTCP(l, name, status)
	}
	log.Printf("listening on %s after start delay %s (name %q, status %d)", conn.LocalAddr(), startDelay, name, status)

	// Closing the socket is what ends the read loop on a signal.
	go func() {
		<-ctx.Done()
		conn.Close()
	}()

	reason := reasons[status]
	if reason == "" {
		reason = "Status " + strconv.Itoa(status)
	}
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
		st, rsn := status, reason
		if drainFile != "" {
			if _, err := os.Stat(drainFile); err == nil {
				st, rsn = 503, reasons[503]
			}
		}
		reply := answer(buf[:n], from, name, st, rsn)
		if reply == nil {
			continue
		}
		if verbose {
			log.Printf("%d from %s", st, from)
		}
		if _, err := conn.WriteTo(reply, from); err != nil {
			log.Printf("reply to %s: %v", from, err)
		}
	}
}

// serveTCP answers SIP over TCP: each connection carries requests framed by
// their headers' end and Content-Length.
func serveTCP(l net.Listener, name string, status int) {
	reason := reasons[status]
	if reason == "" {
		reason = "Status " + strconv.Itoa(status)
	}
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
				if reply := answer(append([]byte(head.String()), body...), c.RemoteAddr(), name, status, reason); reply != nil {
					if _, err := c.Write(reply); err != nil {
						return
					}
				}
			}
		}()
	}
}

// answer builds the response to one datagram, or nil when it must not be
// answered (not a request, unparsable, or an ACK). Nothing is remembered
// between requests: each one is answered on its own.
func answer(data []byte, from net.Addr, name string, status int, reason string) []byte {
	msg, err := sip.ParseMessage(data)
	if err != nil {
		return nil
	}
	req, ok := msg.(*sip.Request)
	if !ok || req.IsAck() {
		return nil
	}
	// The source fills in Via received/rport (RFC 3581) if the client asked.
	req.SetSource(from.String())
	res := sip.NewResponseFromRequest(req, status, reason, nil)
	res.AppendHeader(sip.NewHeader("Server", name))
	if req.Method == sip.OPTIONS {
		res.AppendHeader(sip.NewHeader("Allow", "OPTIONS, INVITE, ACK, BYE, CANCEL"))
	}
	// NewResponseFromRequest already set Content-Length: 0 (no body).
	return []byte(res.String())
}
