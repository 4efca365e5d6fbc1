package main

import (
	"net/netip"
	"testing"
	"time"
)

// TestErrorWatch: a refused probe wakes the watch at once, while answers
// wake nobody (they wait for the tick, as before), and Close ends it.
func TestErrorWatch(t *testing.T) {
	srv := ftProbeServer(t, nil)
	answered, err := newTickProbe(netip.MustParseAddr("127.0.0.1"), srv.addr(), 2*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer answered.Close()
	wa, err := answered.watchErrors()
	if err != nil {
		t.Fatal(err)
	}
	for range 5 {
		if r := ftTickRound(t, answered, time.Second); !r.Answered {
			t.Fatalf("probe of the responder: %+v, want answered", r)
		}
	}
	select {
	case <-wa.C:
		t.Fatal("answers woke the error watch")
	default:
	}
	if err := wa.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}

	refused, err := newTickProbe(netip.MustParseAddr("127.0.0.1"), ftFreeUDP(t), 2*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer refused.Close()
	wr, err := refused.watchErrors()
	if err != nil {
		t.Fatal(err)
	}
	defer wr.Close()
	for i := range 3 {
		refused.send(time.Now())
		select {
		case <-wr.C:
		case <-time.After(5 * time.Second):
			t.Fatalf("refusal %d did not wake the watch", i+1)
		}
		rs := refused.collect(time.Now())
		if len(rs) != 1 || !rs[0].Refused {
			t.Fatalf("refusal %d: collect after the wake = %+v, want one refused probe", i+1, rs)
		}
	}
}
