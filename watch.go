package main

// flip watch: the drill client. It fires a fresh SIP OPTIONS at the VIP every
// few milliseconds and measures how long the VIP stayed silent during a
// failover, and which box answered before and after.
//
// It deliberately uses one connected UDP socket: the kernel then delivers only
// datagrams whose source is the target address, so every answer counted here
// provably left from the VIP (an answer from a box's own address is dropped),
// and a closed port shows up at once as ECONNREFUSED instead of a timeout.

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/netip"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/emiago/sipgo/sip"
	"github.com/vishvananda/netlink"
)

// watchDefaultPort is the SIP port used when the target has none.
const watchDefaultPort = "5060"

// watchStatusEvery limits how often the live status line is redrawn, so a
// 10 ms probe interval does not flood a terminal.
const watchStatusEvery = 200 * time.Millisecond

// watchConfig is the parsed command line of `flip watch`.
type watchConfig struct {
	target      string // host:port
	source      string // local IP to send from, or ""
	interval    time.Duration
	timeout     time.Duration
	forDur      time.Duration // 0: no limit but max
	max         time.Duration
	untilSwitch bool
	json        bool
	// neighbourMAC reads the MAC of the target's neighbour entry (nil:
	// watchNeighbourMAC, the kernel's table); tests supply their own.
	neighbourMAC func(target string) string
}

// watchProbe is what happened to one OPTIONS probe. Probes are kept in send
// order, which is also send-time order.
type watchProbe struct {
	Seq       int
	CallID    string
	Sent      time.Time
	Answered  time.Time // zero unless answered within the timeout
	Status    int
	Responder string // Server or User-Agent header of the answer
	Late      bool   // an answer came, but after the timeout
	SendErr   bool   // the datagram could not be sent
}

func (p watchProbe) answered() bool { return !p.Answered.IsZero() }

// watchGap is the longest stretch without answers, bounded by answered
// probes on both sides.
type watchGap struct {
	Found      bool
	Start, End time.Time // send times of the answered probes around the gap
	Lost       int       // unanswered probes inside the gap
}

func (g watchGap) duration() time.Duration { return g.End.Sub(g.Start) }

// watchOutage finds the longest gap between consecutive answered probes,
// measured between their send times. Send times are used, not answer times,
// because they are what the drill controls: the answer to the first probe
// after a takeover comes back a round trip later no matter when service
// actually resumed. With no losses the longest gap is about one interval.
func watchOutage(probes []watchProbe) watchGap {
	var best watchGap
	prev := -1
	for i, p := range probes {
		if !p.answered() {
			continue
		}
		if prev >= 0 {
			d := p.Sent.Sub(probes[prev].Sent)
			if !best.Found || d > best.duration() {
				best = watchGap{Found: true, Start: probes[prev].Sent, End: p.Sent, Lost: i - prev - 1}
			}
		}
		prev = i
	}
	return best
}

// watchSwitchIndex returns the index of the first answered probe whose
// responder differs from that of the first answered probe, or -1.
func watchSwitchIndex(probes []watchProbe) int {
	first := -1
	for i, p := range probes {
		if !p.answered() {
			continue
		}
		if first < 0 {
			first = i
			continue
		}
		if p.Responder != probes[first].Responder {
			return i
		}
	}
	return -1
}

// watchSummary is the result of a watch run; its JSON form is the -json output.
type watchSummary struct {
	Target      string  `json:"target"`
	Local       string  `json:"local"`
	Started     string  `json:"started"`
	Ended       string  `json:"ended"`
	DurationMS  float64 `json:"duration_ms"`
	IntervalMS  float64 `json:"interval_ms"`
	TimeoutMS   float64 `json:"timeout_ms"`
	StopReason  string  `json:"stop_reason"` // for, max, switch, signal
	Sent        int     `json:"sent"`
	Answered    int     `json:"answered"`
	Lost        int     `json:"lost"`
	Late        int     `json:"late"`
	Refused     int     `json:"refused"`
	SendErrors  int     `json:"send_errors"`
	FirstServer string  `json:"first_responder"`
	FirstStatus int     `json:"first_status"`
	FirstMAC    string  `json:"first_mac"` // the target's neighbour entry at the first answer
	LastServer  string  `json:"last_responder"`
	LastStatus  int     `json:"last_status"`
	LastMAC     string  `json:"last_mac"` // ... and at the end
	Switched    bool    `json:"switched"`
	SwitchAt    string  `json:"switch_at,omitempty"` // send time of the new responder's first answered probe
	OutageMS    float64 `json:"outage_ms"`
	OutageStart string  `json:"outage_start,omitempty"`
	OutageEnd   string  `json:"outage_end,omitempty"`
	OutageLost  int     `json:"outage_lost"`
	LostBefore  int     `json:"lost_before_first_answer"`
	LostAfter   int     `json:"lost_after_last_answer"`
}

// watchMS converts a duration to milliseconds with microsecond precision.
func watchMS(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }

// watchStamp formats a wall-clock time for the summary.
func watchStamp(t time.Time) string { return t.Format(time.RFC3339Nano) }

// watchSummarize computes everything the summary reports from the probe
// records; the counters the records cannot hold (refusals, stop reason) are
// filled in by the caller.
func watchSummarize(probes []watchProbe) watchSummary {
	var s watchSummary
	s.Sent = len(probes)
	firstAns, lastAns := -1, -1
	for i, p := range probes {
		if p.Late {
			s.Late++
		}
		if p.SendErr {
			s.SendErrors++
		}
		if !p.answered() {
			continue
		}
		s.Answered++
		if firstAns < 0 {
			firstAns = i
		}
		lastAns = i
	}
	s.Lost = s.Sent - s.Answered
	if firstAns < 0 {
		s.LostBefore = s.Sent
		return s
	}
	s.LostBefore = firstAns
	s.LostAfter = len(probes) - 1 - lastAns
	s.FirstServer, s.FirstStatus = probes[firstAns].Responder, probes[firstAns].Status
	s.LastServer, s.LastStatus = probes[lastAns].Responder, probes[lastAns].Status
	if i := watchSwitchIndex(probes); i >= 0 {
		s.Switched = true
		s.SwitchAt = watchStamp(probes[i].Sent)
	}
	if g := watchOutage(probes); g.Found {
		s.OutageMS = watchMS(g.duration())
		s.OutageStart, s.OutageEnd = watchStamp(g.Start), watchStamp(g.End)
		s.OutageLost = g.Lost
	}
	return s
}

// watchNormalizeTarget turns "host", "host:port", "[v6]", "[v6]:port", a bare
// IPv6 address or a "sip:" URI host part into host:port.
func watchNormalizeTarget(s string) (string, error) {
	s = strings.TrimSpace(s)
	if len(s) >= 4 && strings.EqualFold(s[:4], "sip:") {
		s = s[4:]
	}
	if s == "" {
		return "", errors.New("empty target")
	}
	if host, port, err := net.SplitHostPort(s); err == nil {
		n, perr := strconv.Atoi(port)
		if host == "" || perr != nil || n < 1 || n > 65535 {
			return "", fmt.Errorf("bad target %q: want host[:port]", s)
		}
		return net.JoinHostPort(host, port), nil
	}
	host := strings.TrimSuffix(strings.TrimPrefix(s, "["), "]")
	if strings.Contains(host, ":") && net.ParseIP(host) == nil {
		return "", fmt.Errorf("bad target %q: want host[:port]", s)
	}
	if host == "" || strings.ContainsAny(host, "[]/ ") {
		return "", fmt.Errorf("bad target %q: want host[:port]", s)
	}
	return net.JoinHostPort(host, watchDefaultPort), nil
}

// watchParseArgs parses the command line. ok is false when runWatch must
// return code right away (bad usage: 2, -help: 0).
func watchParseArgs(args []string, stderr io.Writer) (cfg watchConfig, code int, ok bool) {
	fs := flag.NewFlagSet("watch", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprintf(fs.Output(), "usage: flip watch [flags] [TARGET]\n"+
			"  Probe TARGET (host[:port], default port %s, default $FLIP_PROBE_TARGET) with SIP OPTIONS\n"+
			"  and report the longest gap in answers.\n", watchDefaultPort)
		fs.PrintDefaults()
	}
	fs.DurationVar(&cfg.interval, "interval", 10*time.Millisecond, "time between probes")
	fs.DurationVar(&cfg.timeout, "timeout", 500*time.Millisecond, "how long a probe may wait for its answer")
	fs.StringVar(&cfg.source, "source", "", "local IP address to send from")
	fs.DurationVar(&cfg.forDur, "for", 0, "stop after this long (0: run until -max, -until-switch or a signal)")
	fs.BoolVar(&cfg.untilSwitch, "until-switch", false, "stop at the first answer from a responder other than the first one")
	fs.DurationVar(&cfg.max, "max", 10*time.Minute, "hard limit on the run time")
	fs.BoolVar(&cfg.json, "json", false, "print the summary as JSON")

	// flag stops at the first positional argument; parse again after it so
	// that flags may follow TARGET. Bounded by the number of arguments.
	var pos []string
	rest := args
	for range len(args) + 1 {
		if err := fs.Parse(rest); err != nil {
			if errors.Is(err, flag.ErrHelp) {
				return cfg, 0, false
			}
			return cfg, 2, false
		}
		if fs.NArg() == 0 {
			break
		}
		pos = append(pos, fs.Arg(0))
		rest = fs.Args()[1:]
	}

	bad := func(format string, a ...any) (watchConfig, int, bool) {
		fmt.Fprintf(stderr, "flip watch: "+format+"\n", a...)
		return cfg, 2, false
	}
	switch {
	case len(pos) > 1:
		return bad("one TARGET expected, got %d: %q", len(pos), pos)
	case cfg.interval < time.Millisecond:
		return bad("-interval must be at least 1ms")
	case cfg.timeout <= 0:
		return bad("-timeout must be positive")
	case cfg.max <= 0:
		return bad("-max must be positive")
	case cfg.forDur < 0:
		return bad("-for must not be negative")
	}
	if cfg.source != "" && net.ParseIP(strings.Trim(cfg.source, "[]")) == nil {
		return bad("-source %q is not an IP address", cfg.source)
	}
	target := os.Getenv("FLIP_PROBE_TARGET")
	if len(pos) == 1 {
		target = pos[0]
	}
	if target == "" {
		return bad("no TARGET given and FLIP_PROBE_TARGET is not set")
	}
	t, err := watchNormalizeTarget(target)
	if err != nil {
		return bad("%v", err)
	}
	cfg.target = t
	return cfg, 0, true
}

// runWatch is `flip watch`. Exit codes: 0 the target answered, 1 it never
// answered (or the socket could not be set up), 2 bad usage.
func runWatch(args []string, stdout, stderr io.Writer) int {
	cfg, code, ok := watchParseArgs(args, stderr)
	if !ok {
		return code
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()

	var status io.Writer
	if !cfg.json {
		status = stderr
	}
	sum, err := watchRun(ctx, cfg, status)
	if err != nil {
		fmt.Fprintf(stderr, "flip watch: %v\n", err)
		return 1
	}
	if cfg.json {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		if err := enc.Encode(sum); err != nil {
			fmt.Fprintf(stderr, "flip watch: %v\n", err)
			return 1
		}
	} else {
		watchPrintText(stdout, sum)
	}
	if sum.Answered == 0 {
		return 1
	}
	return 0
}

// watchPrintText writes the human-readable summary.
func watchPrintText(w io.Writer, s watchSummary) {
	fmt.Fprintf(w, "target %s from %s, %.0f ms (stopped: %s)\n", s.Target, s.Local, s.DurationMS, s.StopReason)
	fmt.Fprintf(w, "probes: sent %d, answered %d, lost %d (late %d, refused %d, send errors %d)\n",
		s.Sent, s.Answered, s.Lost, s.Late, s.Refused, s.SendErrors)
	if s.Answered == 0 {
		fmt.Fprintln(w, "no answers")
		return
	}
	fmt.Fprintf(w, "first responder: %q status %d%s\n", s.FirstServer, s.FirstStatus, watchMACText(s.FirstMAC))
	fmt.Fprintf(w, "last responder:  %q status %d%s\n", s.LastServer, s.LastStatus, watchMACText(s.LastMAC))
	if s.Switched {
		fmt.Fprintf(w, "responder switched at %s\n", s.SwitchAt)
	}
	if s.OutageStart != "" {
		fmt.Fprintf(w, "outage: %.1f ms from %s to %s, %d probes lost in it\n",
			s.OutageMS, s.OutageStart, s.OutageEnd, s.OutageLost)
	} else {
		fmt.Fprintln(w, "outage: not measured (fewer than two answers)")
	}
	if s.LostBefore > 0 || s.LostAfter > 0 {
		fmt.Fprintf(w, "unanswered: %d before the first answer, %d after the last\n", s.LostBefore, s.LostAfter)
	}
}

// watchMACText is the MAC part of a responder line: which box's MAC the
// client's neighbour entry for the target held.
func watchMACText(mac string) string {
	if mac == "" {
		return ", MAC unknown (no neighbour entry for the target)"
	}
	return ", MAC " + mac
}

// watchNeighbourMAC returns the MAC of target's (host:port) neighbour entry
// on the interface the route to it leaves by, IPv4 or IPv6, or "" when
// there is none with a MAC: the target is behind a router, on this host,
// or not resolved (yet). This is the box the client's frames go to.
func watchNeighbourMAC(target string) string {
	host, _, err := net.SplitHostPort(target)
	if err != nil {
		return ""
	}
	ip, err := netip.ParseAddr(host)
	if err != nil {
		return ""
	}
	ip = ip.Unmap()
	routes, err := netlink.RouteGet(ip.AsSlice())
	if err != nil || len(routes) == 0 || routes[0].Gw != nil {
		return ""
	}
	family := netlink.FAMILY_V4
	if ip.Is6() {
		family = netlink.FAMILY_V6
	}
	neighs, err := netlink.NeighList(routes[0].LinkIndex, family)
	if err != nil {
		return ""
	}
	for _, n := range neighs {
		a, ok := netip.AddrFromSlice(n.IP)
		// NOARP entries (loopback's, with a zero MAC) say nothing about a box.
		if !ok || a.Unmap() != ip || len(n.HardwareAddr) == 0 || n.State&(netlink.NUD_FAILED|netlink.NUD_INCOMPLETE|netlink.NUD_NOARP) != 0 {
			continue
		}
		return n.HardwareAddr.String()
	}
	return ""
}

// watchAnswer is one datagram (or socket error) seen by the receiver.
type watchAnswer struct {
	at        time.Time
	callID    string
	status    int
	responder string
	err       error
}

// watchReceive reads answers until the socket is closed or done is closed.
func watchReceive(conn *net.UDPConn, out chan<- watchAnswer, done <-chan struct{}) {
	buf := make([]byte, 65535)
	for {
		n, err := conn.Read(buf)
		a := watchAnswer{at: time.Now(), err: err}
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return
			}
		} else if !watchParseAnswer(buf[:n], &a) {
			continue
		}
		select {
		case out <- a:
		case <-done:
			return
		}
	}
}

// watchParseAnswer fills a from a SIP response; false if data is not one.
func watchParseAnswer(data []byte, a *watchAnswer) bool {
	msg, err := sip.ParseMessage(data)
	if err != nil {
		return false
	}
	res, ok := msg.(*sip.Response)
	if !ok || res.CallID() == nil {
		return false
	}
	a.callID = res.CallID().Value()
	a.status = res.StatusCode
	if h := res.GetHeader("Server"); h != nil {
		a.responder = h.Value()
	} else if h := res.GetHeader("User-Agent"); h != nil {
		a.responder = h.Value()
	}
	return true
}

// watchRequest builds a fresh OPTIONS: new Call-ID, branch, From tag and
// CSeq for every probe, so no answer can be mistaken for another probe's.
func watchRequest(seq int, local, target string) (callID string, data []byte) {
	callID = strconv.Itoa(seq) + "-" + sip.GenerateTagN(20) + "@flip-watch"
	lhost, _, _ := net.SplitHostPort(local)
	req := "OPTIONS sip:" + target + " SIP/2.0\r\n" +
		"Via: SIP/2.0/UDP " + local + ";branch=" + sip.GenerateBranch() + ";rport\r\n" +
		"Max-Forwards: 70\r\n" +
		"From: <sip:flip-watch@" + watchURIHost(lhost) + ">;tag=" + sip.GenerateTagN(16) + "\r\n" +
		"To: <sip:" + target + ">\r\n" +
		"Call-ID: " + callID + "\r\n" +
		"CSeq: " + strconv.Itoa(seq) + " OPTIONS\r\n" +
		"User-Agent: flip-watch\r\n" +
		"Accept: application/sdp\r\n" +
		"Content-Length: 0\r\n\r\n"
	return callID, []byte(req)
}

// watchURIHost brackets an IPv6 address for use in a SIP URI.
func watchURIHost(h string) string {
	if strings.Contains(h, ":") {
		return "[" + h + "]"
	}
	return h
}

// watchState is the run's bookkeeping; only watchRun's goroutine touches it.
type watchState struct {
	cfg      watchConfig
	conn     *net.UDPConn
	local    string
	probes   []watchProbe
	byID     map[string]int
	refused  int
	firstOK  int    // index of the first answered probe, or -1
	firstMAC string // the target's neighbour entry at the first answer
}

// send fires the next probe. A connected UDP socket reports a pending ICMP
// error on the next send and drops that datagram, so the send is retried once.
func (st *watchState) send() {
	seq := len(st.probes) + 1
	id, data := watchRequest(seq, st.local, st.cfg.target)
	p := watchProbe{Seq: seq, CallID: id, Sent: time.Now()}
	_, err := st.conn.Write(data)
	if errors.Is(err, syscall.ECONNREFUSED) {
		st.refused++
		_, err = st.conn.Write(data)
	}
	p.SendErr = err != nil
	st.byID[id] = len(st.probes)
	st.probes = append(st.probes, p)
}

// record files an answer; it reports whether it came from a responder other
// than the first one (the -until-switch condition).
func (st *watchState) record(a watchAnswer) (switched bool) {
	if a.err != nil {
		if errors.Is(a.err, syscall.ECONNREFUSED) {
			st.refused++
		}
		return false
	}
	i, ok := st.byID[a.callID]
	if !ok || st.probes[i].answered() || st.probes[i].Late {
		return false // stray or duplicate
	}
	p := &st.probes[i]
	if a.at.Sub(p.Sent) > st.cfg.timeout {
		p.Late = true
		return false
	}
	p.Answered, p.Status, p.Responder = a.at, a.status, a.responder
	if st.firstOK < 0 {
		st.firstOK = i
		st.firstMAC = st.cfg.neighbourMAC(st.cfg.target)
		return false
	}
	return p.Responder != st.probes[st.firstOK].Responder
}

// pending reports whether a probe after index from may still get a timely
// answer.
func (st *watchState) pending(now time.Time, from int) bool {
	for i := len(st.probes) - 1; i > from; i-- {
		p := st.probes[i]
		if now.Sub(p.Sent) > st.cfg.timeout {
			return false
		}
		if !p.answered() && !p.SendErr {
			return true
		}
	}
	return false
}

// statusLine is the live one-line progress report.
func (st *watchState) statusLine(start time.Time) string {
	answered, last := 0, "-"
	for i := len(st.probes) - 1; i >= 0; i-- {
		if st.probes[i].answered() {
			if last == "-" {
				last = fmt.Sprintf("%q %d", st.probes[i].Responder, st.probes[i].Status)
			}
			answered++
		}
	}
	return fmt.Sprintf("\r%6.1fs sent %d answered %d unanswered %d last %s   ",
		time.Since(start).Seconds(), len(st.probes), answered, len(st.probes)-answered, last)
}

// watchRun probes until -for, -max, -until-switch or ctx ends it, then waits
// (at most one timeout) for answers to probes still in flight. status, if
// not nil, gets the live status line.
func watchRun(ctx context.Context, cfg watchConfig, status io.Writer) (watchSummary, error) {
	raddr, err := net.ResolveUDPAddr("udp", cfg.target)
	if err != nil {
		return watchSummary{}, err
	}
	var laddr *net.UDPAddr
	if cfg.source != "" {
		laddr = &net.UDPAddr{IP: net.ParseIP(strings.Trim(cfg.source, "[]"))}
	}
	conn, err := net.DialUDP("udp", laddr, raddr)
	if err != nil {
		return watchSummary{}, err
	}
	answers := make(chan watchAnswer, 256)
	done := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		watchReceive(conn, answers, done)
	}()
	defer func() {
		close(done)
		conn.Close()
		wg.Wait()
	}()

	if cfg.neighbourMAC == nil {
		cfg.neighbourMAC = watchNeighbourMAC
	}
	st := &watchState{cfg: cfg, conn: conn, local: conn.LocalAddr().String(),
		byID: make(map[string]int), firstOK: -1}
	start := time.Now()
	limit := cfg.max
	reason := "max"
	if cfg.forDur > 0 && cfg.forDur < limit {
		limit, reason = cfg.forDur, "for"
	}
	end := time.NewTimer(limit)
	defer end.Stop()
	tick := time.NewTicker(cfg.interval)
	defer tick.Stop()
	var statusC <-chan time.Time
	if status != nil {
		t := time.NewTicker(watchStatusEvery)
		defer t.Stop()
		statusC = t.C
	}

	st.send()
	// After a switch only probes sent after the switching one are worth
	// waiting for: the earlier ones went to the old box or into the outage.
	drainFrom := -1
sending:
	for {
		select {
		case <-ctx.Done():
			reason = "signal"
			break sending
		case <-end.C:
			break sending
		case <-tick.C:
			st.send()
		case a := <-answers:
			if st.record(a) && cfg.untilSwitch {
				reason = "switch"
				drainFrom = st.byID[a.callID]
				break sending
			}
		case <-statusC:
			io.WriteString(status, st.statusLine(start))
		}
	}

	// Drain: give probes in flight their chance, bounded by one timeout.
	drain := time.NewTimer(cfg.timeout)
	defer drain.Stop()
	poll := time.NewTicker(cfg.interval)
	defer poll.Stop()
draining:
	for st.pending(time.Now(), drainFrom) {
		select {
		case <-drain.C:
			break draining
		case a := <-answers:
			st.record(a)
		case <-poll.C:
		}
	}
	if status != nil {
		io.WriteString(status, st.statusLine(start)+"\n")
	}

	sum := watchSummarize(st.probes)
	sum.Target, sum.Local = cfg.target, st.local
	sum.Started, sum.Ended = watchStamp(start), watchStamp(time.Now())
	sum.DurationMS = watchMS(time.Since(start))
	sum.IntervalMS, sum.TimeoutMS = watchMS(cfg.interval), watchMS(cfg.timeout)
	sum.StopReason = reason
	sum.Refused = st.refused
	if sum.Answered > 0 {
		sum.FirstMAC, sum.LastMAC = st.firstMAC, cfg.neighbourMAC(cfg.target)
	}
	return sum, nil
}
