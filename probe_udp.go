package main

import (
	"context"
	"crypto/rand"
	"encoding/binary"
	"encoding/hex"
	"strconv"
	"time"
)

// udpProbeT1 is RFC 3261's T1: an unanswered UDP request is sent again
// after it, so one lost datagram does not make a whole probe silent.
const udpProbeT1 = 500 * time.Millisecond

// probeOncePoll is how often probeOnce collects while it waits: the tick
// probe never wakes on an answer (probe_tick.go), and a command that waits
// for one probe (flip check, the switchover's measurement) can afford to
// look every millisecond for the few it sends.
const probeOncePoll = time.Millisecond

// probeOnce sends one OPTIONS on the tick probe and waits for its end:
// answered, refused, silent past the timeout (with the retransmission at
// T1 on the way), or ctx done. It is how the commands that probe and wait
// use the agent's own probe: one UDP client for all of flip.
func (p *tickProbe) probeOnce(ctx context.Context) probeResult {
	sent := time.Now()
	p.send(sent)
	poll := time.NewTicker(probeOncePoll)
	defer poll.Stop()
	for {
		for _, r := range p.collect(time.Now()) {
			if r.Sent.Equal(sent) {
				return r
			}
		}
		select {
		case <-ctx.Done():
			return probeResult{Sent: sent, Err: ctx.Err()}
		case <-poll.C:
		}
	}
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
