package main

import (
	"bytes"
	"errors"
	"io"
	"log/slog"
	"net/netip"
	"strings"
	"sync"
	"testing"
	"time"
)

// ftSendCall is one gratuitous ARP the announcer asked for.
type ftSendCall struct {
	iface string
	vip   netip.Addr
	at    time.Time
}

// ftSender records the announcer's send calls. hold makes every call after
// the first n take that long; err is returned from every call.
type ftSender struct {
	hold      time.Duration
	holdAfter int
	err       error

	mu       sync.Mutex
	calls    []ftSendCall
	inFlight int
	started  chan struct{} // receives when a held call starts, if set
}

func (f *ftSender) send(iface string, v vipSpec) error {
	f.mu.Lock()
	f.calls = append(f.calls, ftSendCall{iface: iface, vip: v.Addr, at: time.Now()})
	n := len(f.calls)
	f.inFlight++
	f.mu.Unlock()
	if f.hold > 0 && n > f.holdAfter {
		if f.started != nil {
			select {
			case f.started <- struct{}{}:
			default:
			}
		}
		time.Sleep(f.hold)
	}
	f.mu.Lock()
	f.inFlight--
	f.mu.Unlock()
	return f.err
}

func (f *ftSender) snapshot() ([]ftSendCall, int) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]ftSendCall(nil), f.calls...), f.inFlight
}

// waitCalls waits (bounded) until at least n calls were made.
func (f *ftSender) waitCalls(t *testing.T, n int) []ftSendCall {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for {
		calls, _ := f.snapshot()
		if len(calls) >= n {
			return calls
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d send calls after 5 s, want %d", len(calls), n)
		}
		time.Sleep(time.Millisecond)
	}
}

// ftSyncBuffer is a bytes.Buffer safe for the announcer's goroutine.
type ftSyncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (b *ftSyncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.Write(p)
}

func (b *ftSyncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.String()
}

func ftAnnouncer(f *ftSender, count int, interval time.Duration, w io.Writer) *announcer {
	if w == nil {
		w = io.Discard
	}
	return &announcer{
		log:      slog.New(slog.NewTextHandler(w, nil)),
		count:    count,
		interval: interval,
		send:     f.send,
	}
}

var ftTwoVIPs = []vipSpec{ftLANVIP, ftWANVIP}

func TestAnnouncerRounds(t *testing.T) {
	tests := []struct {
		name     string
		count    int
		interval time.Duration
		vips     []vipSpec
	}{
		{name: "one round only", count: 1, interval: 20 * time.Millisecond, vips: ftTwoVIPs},
		{name: "three rounds, two VIPs", count: 3, interval: 20 * time.Millisecond, vips: ftTwoVIPs},
		{name: "five rounds, one VIP", count: 5, interval: 10 * time.Millisecond, vips: ftTwoVIPs[:1]},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := &ftSender{}
			a := ftAnnouncer(f, tt.count, tt.interval, nil)
			defer a.Stop()
			a.Start(tt.vips)

			// The first round is synchronous: it is on the wire before
			// Start returns, so the services start behind it.
			calls, _ := f.snapshot()
			if len(calls) != len(tt.vips) {
				t.Fatalf("%d send calls when Start returned, want the first round (%d)", len(calls), len(tt.vips))
			}
			for i, v := range tt.vips {
				if calls[i].iface != v.Iface || calls[i].vip != v.Addr {
					t.Errorf("call %d = %s on %s, want %s on %s", i, calls[i].vip, calls[i].iface, v.Addr, v.Iface)
				}
			}

			want := tt.count * len(tt.vips)
			calls = f.waitCalls(t, want)
			// No round beyond count.
			time.Sleep(5 * tt.interval)
			if calls, _ = f.snapshot(); len(calls) != want {
				t.Fatalf("%d send calls, want %d (%d rounds × %d VIPs)", len(calls), want, tt.count, len(tt.vips))
			}
			perVIP := map[netip.Addr]int{}
			for _, c := range calls {
				perVIP[c.vip]++
			}
			for _, v := range tt.vips {
				if perVIP[v.Addr] != tt.count {
					t.Errorf("%s announced %d times, want %d", v.Addr, perVIP[v.Addr], tt.count)
				}
			}
			// Rounds follow a ticker started after the first round: round
			// r+1 is never earlier than r intervals after round 1 (single
			// gaps may be shorter, since a tick can be late).
			n := len(tt.vips)
			for r := 1; r < tt.count; r++ {
				if since := calls[r*n].at.Sub(calls[0].at); since < time.Duration(r)*tt.interval {
					t.Errorf("round %d came %s after round 1, want at least %s", r+1, since, time.Duration(r)*tt.interval)
				}
			}
		})
	}
}

func TestAnnouncerStop(t *testing.T) {
	tests := []struct {
		name        string
		afterRounds int // rounds done before Stop
	}{
		{name: "right after Start", afterRounds: 1},
		{name: "after three rounds", afterRounds: 3},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			const interval = 5 * time.Millisecond
			f := &ftSender{}
			a := ftAnnouncer(f, 100, interval, nil)
			a.Start(ftTwoVIPs)
			f.waitCalls(t, tt.afterRounds*len(ftTwoVIPs))
			a.Stop()
			stopped, inFlight := f.snapshot()
			if inFlight != 0 {
				t.Fatalf("%d send calls still running after Stop returned", inFlight)
			}
			time.Sleep(20 * interval)
			if calls, _ := f.snapshot(); len(calls) != len(stopped) {
				t.Fatalf("%d send calls after Stop returned (%d before): a released box claimed the address", len(calls)-len(stopped), len(stopped))
			}
			a.Stop() // a second Stop is harmless
		})
	}
}

// Stop waits for a round in progress: once it returns, no frame for the
// address leaves this box.
func TestAnnouncerStopWaitsForRound(t *testing.T) {
	f := &ftSender{hold: 50 * time.Millisecond, holdAfter: 1, started: make(chan struct{}, 1)}
	a := ftAnnouncer(f, 100, time.Millisecond, nil)
	a.Start(ftTwoVIPs[:1])
	select {
	case <-f.started:
	case <-time.After(5 * time.Second):
		t.Fatal("the second round never started")
	}
	a.Stop()
	calls, inFlight := f.snapshot()
	if inFlight != 0 {
		t.Fatalf("Stop returned with %d send calls in flight", inFlight)
	}
	time.Sleep(100 * time.Millisecond)
	if after, _ := f.snapshot(); len(after) != len(calls) {
		t.Fatalf("%d send calls after Stop returned", len(after)-len(calls))
	}
}

// A second Start replaces the first announcement: the old VIP list is not
// announced any more.
func TestAnnouncerStartReplaces(t *testing.T) {
	f := &ftSender{}
	a := ftAnnouncer(f, 100, 5*time.Millisecond, nil)
	defer a.Stop()
	a.Start(ftTwoVIPs[:1]) // LAN
	f.waitCalls(t, 3)
	a.Start(ftTwoVIPs[1:]) // WAN
	replaced, _ := f.snapshot()
	if last := replaced[len(replaced)-1]; last.vip != ftWANVIP.Addr {
		t.Fatalf("last call before the second Start returned is %s, want the new VIP's first round", last.vip)
	}
	calls := f.waitCalls(t, len(replaced)+5)
	for _, c := range calls[len(replaced):] {
		if c.vip == ftLANVIP.Addr {
			t.Fatalf("%s announced after it was replaced", c.vip)
		}
	}
}

// A failing send is logged and the rounds go on: one bad interface must not
// stop the announcement of the others.
func TestAnnouncerSendErrors(t *testing.T) {
	var logs ftSyncBuffer
	f := &ftSender{err: errors.New("sendto: network is down")}
	a := ftAnnouncer(f, 3, 5*time.Millisecond, &logs)
	defer a.Stop()
	a.Start(ftTwoVIPs)
	f.waitCalls(t, 6)
	deadline := time.Now().Add(5 * time.Second)
	for strings.Count(logs.String(), "announcement (gratuitous ARP / unsolicited NA) failed") < 6 {
		if time.Now().After(deadline) {
			t.Fatalf("want 6 logged failures, got:\n%s", logs.String())
		}
		time.Sleep(time.Millisecond)
	}
	out := logs.String()
	for _, s := range []string{"network is down", "vip=192.0.2.110", "iface=eth1", "round=1", "round=3"} {
		if !strings.Contains(out, s) {
			t.Errorf("log does not contain %q:\n%s", s, out)
		}
	}
}

func TestAnnouncerStopWithoutStart(t *testing.T) {
	a := ftAnnouncer(&ftSender{}, 5, time.Millisecond, nil)
	done := make(chan struct{})
	go func() {
		a.Stop()
		a.Stop()
		close(done)
	}()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("Stop without Start blocked")
	}
}
