package main

import (
	"bytes"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/emiago/sipgo/sip"
)

// msg is one request of a test: method, Call-ID, whether it carries a To
// tag (in-dialog), its CSeq number and whether the drain file exists.
type msg struct {
	method   string
	callID   string
	toTag    bool
	cseq     int
	draining bool
	// want: the status code (0: no answer), the calls in progress after it.
	want      int
	wantCalls int
	// sameAs: the answer must be byte for byte the answer of that earlier
	// step (1-based), as a retransmission gets.
	sameAs int
	// advance: the clock moves on this much before the request.
	advance time.Duration
}

// request builds a parsed request as sipp's uac scenario sends it.
func request(t *testing.T, m msg) *sip.Request {
	t.Helper()
	to := "<sip:service@192.0.2.100:5060>"
	if m.toTag {
		to += ";tag=standin-tag"
	}
	cseq := m.cseq
	if cseq == 0 {
		cseq = 1
	}
	body := ""
	ctype := ""
	if m.method == "INVITE" {
		body = "v=0\r\no=user1 53655765 2353687637 IN IP4 192.0.2.50\r\ns=-\r\nc=IN IP4 192.0.2.50\r\nt=0 0\r\nm=audio 6000 RTP/AVP 0\r\na=rtpmap:0 PCMU/8000\r\n"
		ctype = "Content-Type: application/sdp\r\n"
	}
	raw := fmt.Sprintf("%s sip:service@192.0.2.100:5060 SIP/2.0\r\n"+
		"Via: SIP/2.0/UDP 192.0.2.50:5070;branch=z9hG4bK-%s-%d-%s\r\n"+
		"From: sipp <sip:sipp@192.0.2.50:5070>;tag=caller-%s\r\n"+
		"To: %s\r\n"+
		"Call-ID: %s\r\n"+
		"CSeq: %d %s\r\n"+
		"Contact: sip:sipp@192.0.2.50:5070\r\n"+
		"Max-Forwards: 70\r\n"+
		"%s"+
		"Content-Length: %d\r\n\r\n%s",
		m.method, m.callID, cseq, m.method, m.callID, to, m.callID, cseq, m.method, ctype, len(body), body)
	parsed, err := sip.ParseMessage([]byte(raw))
	if err != nil {
		t.Fatalf("parse %q: %v", raw, err)
	}
	req, ok := parsed.(*sip.Request)
	if !ok {
		t.Fatalf("not a request: %q", raw)
	}
	req.SetSource("192.0.2.50:5070")
	return req
}

// statusOf is the status code of a response's bytes.
func statusOf(t *testing.T, b []byte) int {
	t.Helper()
	parsed, err := sip.ParseMessage(b)
	if err != nil {
		t.Fatalf("parse response %q: %v", b, err)
	}
	res, ok := parsed.(*sip.Response)
	if !ok {
		t.Fatalf("not a response: %q", b)
	}
	return res.StatusCode
}

func TestDialogs(t *testing.T) {
	tests := []struct {
		name   string
		status int // -status; 0: 200
		steps  []msg
	}{
		{"a call: INVITE 200, ACK nothing, BYE 200", 0, []msg{
			{method: "INVITE", callID: "c1", want: 200, wantCalls: 1},
			{method: "ACK", callID: "c1", toTag: true, want: 0, wantCalls: 1},
			{method: "BYE", callID: "c1", toTag: true, cseq: 2, want: 200, wantCalls: 0},
		}},
		{"two calls overlap", 0, []msg{
			{method: "INVITE", callID: "c1", want: 200, wantCalls: 1},
			{method: "INVITE", callID: "c2", want: 200, wantCalls: 2},
			{method: "BYE", callID: "c1", toTag: true, cseq: 2, want: 200, wantCalls: 1},
			{method: "BYE", callID: "c2", toTag: true, cseq: 2, want: 200, wantCalls: 0},
		}},
		{"a BYE for a call never seen: 481, the call is dropped", 0, []msg{
			{method: "BYE", callID: "elsewhere", toTag: true, cseq: 2, want: 481, wantCalls: 0},
		}},
		{"a re-INVITE or INFO for a call never seen: 481", 0, []msg{
			{method: "INVITE", callID: "elsewhere", toTag: true, cseq: 2, want: 481, wantCalls: 0},
			{method: "INFO", callID: "elsewhere", toTag: true, cseq: 3, want: 481, wantCalls: 0},
		}},
		{"in-dialog requests of a call in progress: 200", 0, []msg{
			{method: "INVITE", callID: "c1", want: 200, wantCalls: 1},
			{method: "INVITE", callID: "c1", toTag: true, cseq: 2, want: 200, wantCalls: 1},
			{method: "INFO", callID: "c1", toTag: true, cseq: 3, want: 200, wantCalls: 1},
			{method: "BYE", callID: "c1", toTag: true, cseq: 4, want: 200, wantCalls: 0},
			{method: "INFO", callID: "c1", toTag: true, cseq: 5, want: 481, wantCalls: 0},
		}},
		{"a retransmitted INVITE gets the same 200, one call", 0, []msg{
			{method: "INVITE", callID: "c1", want: 200, wantCalls: 1},
			{method: "INVITE", callID: "c1", want: 200, wantCalls: 1, sameAs: 1},
			{method: "INVITE", callID: "c1", want: 200, wantCalls: 1, sameAs: 1, draining: true},
		}},
		{"a retransmitted BYE gets 200 again, not 481", 0, []msg{
			{method: "INVITE", callID: "c1", want: 200, wantCalls: 1},
			{method: "BYE", callID: "c1", toTag: true, cseq: 2, want: 200, wantCalls: 0},
			{method: "BYE", callID: "c1", toTag: true, cseq: 2, want: 200, wantCalls: 0, advance: 10 * time.Second},
			{method: "INVITE", callID: "c1", want: 200, wantCalls: 0, sameAs: 1},
		}},
		{"an ended call is forgotten after a transaction's lifetime", 0, []msg{
			{method: "INVITE", callID: "c1", want: 200, wantCalls: 1},
			{method: "BYE", callID: "c1", toTag: true, cseq: 2, want: 200, wantCalls: 0},
			{method: "BYE", callID: "c1", toTag: true, cseq: 2, want: 481, wantCalls: 0, advance: endedKeep + time.Second},
		}},
		{"draining: new calls 503, the calls in progress go on and end", 0, []msg{
			{method: "INVITE", callID: "c1", want: 200, wantCalls: 1},
			{method: "INVITE", callID: "c2", want: 503, wantCalls: 1, draining: true},
			{method: "OPTIONS", callID: "p1", want: 503, wantCalls: 1, draining: true},
			{method: "INVITE", callID: "c1", toTag: true, cseq: 2, want: 200, wantCalls: 1, draining: true},
			{method: "BYE", callID: "c1", toTag: true, cseq: 3, want: 200, wantCalls: 0, draining: true},
			{method: "BYE", callID: "c2", toTag: true, cseq: 2, want: 481, wantCalls: 0, draining: true},
			{method: "INVITE", callID: "c3", want: 200, wantCalls: 1},
		}},
		{"OPTIONS and other requests as before", 0, []msg{
			{method: "OPTIONS", callID: "p1", want: 200},
			{method: "REGISTER", callID: "r1", want: 200},
			{method: "REGISTER", callID: "r1", want: 503, draining: true},
		}},
		{"CANCEL: 200 for a known call (already answered), 481 otherwise", 0, []msg{
			{method: "INVITE", callID: "c1", want: 200, wantCalls: 1},
			{method: "CANCEL", callID: "c1", want: 200, wantCalls: 1},
			{method: "CANCEL", callID: "c9", want: 481, wantCalls: 1},
		}},
		{"-status 403: every new request 403, no calls", 403, []msg{
			{method: "OPTIONS", callID: "p1", want: 403},
			{method: "INVITE", callID: "c1", want: 403, wantCalls: 0},
			{method: "INVITE", callID: "c1", want: 503, wantCalls: 0, draining: true},
			{method: "BYE", callID: "c1", toTag: true, cseq: 2, want: 481, wantCalls: 0},
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			now := time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)
			file := filepath.Join(t.TempDir(), "calls")
			status := tc.status
			if status == 0 {
				status = 200
			}
			s := &server{name: "box-test", status: status, calls: newDialogs(file, func() time.Time { return now })}
			s.calls.publish()
			answers := make([][]byte, len(tc.steps))
			for i, m := range tc.steps {
				now = now.Add(m.advance)
				reply, st := s.respond(request(t, m), m.draining)
				answers[i] = reply
				where := fmt.Sprintf("step %d (%s %s)", i+1, m.method, m.callID)
				if m.want == 0 {
					if reply != nil {
						t.Fatalf("%s: answered %q, want no answer", where, reply)
					}
				} else {
					if reply == nil {
						t.Fatalf("%s: no answer, want %d", where, m.want)
					}
					if got := statusOf(t, reply); got != m.want || st != m.want {
						t.Fatalf("%s: status %d (reported %d), want %d", where, got, st, m.want)
					}
				}
				if m.sameAs > 0 && !bytes.Equal(reply, answers[m.sameAs-1]) {
					t.Fatalf("%s: answer differs from step %d's:\n%s\n---\n%s", where, m.sameAs, reply, answers[m.sameAs-1])
				}
				if got := s.calls.inProgress(); got != m.wantCalls {
					t.Fatalf("%s: %d calls in progress, want %d", where, got, m.wantCalls)
				}
				b, err := os.ReadFile(file)
				if err != nil {
					t.Fatalf("%s: calls file: %v", where, err)
				}
				if got := string(b); got != fmt.Sprintf("%d\n", m.wantCalls) {
					t.Fatalf("%s: calls file says %q, want %d", where, got, m.wantCalls)
				}
			}
		})
	}
}

// The 200 to an INVITE is what sipp's uac scenario needs: a To tag, a
// Contact, an SDP body with its type and length, the Server header.
func TestInviteAnswer(t *testing.T) {
	s := &server{name: "standin-asterisk-box-a", status: 200, calls: newDialogs("", time.Now)}
	reply, _ := s.respond(request(t, msg{method: "INVITE", callID: "c1"}), false)
	parsed, err := sip.ParseMessage(reply)
	if err != nil {
		t.Fatalf("parse: %v\n%s", err, reply)
	}
	res := parsed.(*sip.Response)
	if res.StatusCode != 200 {
		t.Fatalf("status %d", res.StatusCode)
	}
	if to := res.To(); to == nil || !to.Params.Has("tag") {
		t.Errorf("no To tag: %s", reply)
	}
	if c := res.Contact(); c == nil || c.Address.Host != "192.0.2.100" || c.Address.Port != 5060 {
		t.Errorf("Contact: %v", res.Contact())
	}
	if ct := res.ContentType(); ct == nil || ct.Value() != "application/sdp" {
		t.Errorf("Content-Type: %v", ct)
	}
	body := string(res.Body())
	for _, line := range []string{"v=0", "c=IN IP4 192.0.2.100", "m=audio ", "t=0 0"} {
		if !strings.Contains(body, line) {
			t.Errorf("SDP lacks %q:\n%s", line, body)
		}
	}
	if cl := res.ContentLength(); cl == nil || int(*cl) != len(res.Body()) {
		t.Errorf("Content-Length %v, body %d bytes", cl, len(res.Body()))
	}
	if h := res.GetHeader("Server"); h == nil || h.Value() != "standin-asterisk-box-a" {
		t.Errorf("Server: %v", h)
	}
	// The BYE's 200 carries no body.
	bye, _ := s.respond(request(t, msg{method: "BYE", callID: "c1", toTag: true, cseq: 2}), false)
	if !strings.Contains(string(bye), "Content-Length: 0") {
		t.Errorf("200 to BYE: %s", bye)
	}
}

// answer() over the wire format: the drain file decides, ACK is not answered,
// and the calls file goes away with remove().
func TestAnswerDrainFile(t *testing.T) {
	dir := t.TempDir()
	drain := filepath.Join(dir, "draining")
	calls := filepath.Join(dir, "calls")
	s := &server{name: "x", status: 200, drainFile: drain, calls: newDialogs(calls, time.Now)}
	s.calls.publish()
	from := &net.UDPAddr{IP: net.ParseIP("192.0.2.50"), Port: 5070}
	raw := func(m msg) []byte { return []byte(request(t, m).String()) }

	if r := s.answer(raw(msg{method: "INVITE", callID: "c1"}), from); statusOf(t, r) != 200 {
		t.Fatalf("INVITE: %s", r)
	}
	if err := os.WriteFile(drain, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	if r := s.answer(raw(msg{method: "INVITE", callID: "c2"}), from); statusOf(t, r) != 503 {
		t.Fatalf("INVITE while draining: %s", r)
	}
	if r := s.answer(raw(msg{method: "OPTIONS", callID: "p"}), from); statusOf(t, r) != 503 {
		t.Fatalf("OPTIONS while draining: %s", r)
	}
	if r := s.answer(raw(msg{method: "ACK", callID: "c1", toTag: true}), from); r != nil {
		t.Fatalf("ACK answered: %s", r)
	}
	if r := s.answer(raw(msg{method: "BYE", callID: "c1", toTag: true, cseq: 2}), from); statusOf(t, r) != 200 {
		t.Fatalf("BYE while draining: %s", r)
	}
	if b, _ := os.ReadFile(calls); string(b) != "0\n" {
		t.Fatalf("calls file %q", b)
	}
	if r := s.answer([]byte("garbage"), from); r != nil {
		t.Fatalf("garbage answered: %s", r)
	}
	s.calls.remove()
	if _, err := os.Stat(calls); !os.IsNotExist(err) {
		t.Fatalf("calls file still there: %v", err)
	}
	// No temporary files left behind.
	if left, _ := filepath.Glob(filepath.Join(dir, ".calls.tmp*")); len(left) != 0 {
		t.Fatalf("temporary files left: %v", left)
	}
}
