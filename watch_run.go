package main

// flip watch, the measuring loop: one connected UDP socket, a fresh
// OPTIONS every interval, answers matched by Call-ID.

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/emiago/sipgo/sip"
)

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
	a.responder = responder(res)
	return true
}

// watchRequest builds a fresh OPTIONS (sipOptions): new Call-ID, branch,
// From tag, and CSeq seq, so no answer can be mistaken for another probe's.
func watchRequest(seq int, local, target string) (callID string, data []byte) {
	lhost, _, _ := net.SplitHostPort(local)
	return sipOptions{
		RURI:      "sip:" + target,
		Via:       "SIP/2.0/UDP " + local,
		From:      "sip:flip-watch@" + watchURIHost(lhost),
		UserAgent: "flip-watch",
		CSeq:      seq,
	}.build()
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
