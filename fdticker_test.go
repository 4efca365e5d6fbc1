package main

import (
	"testing"
	"time"
)

// TestFDTicker: ticks come at the interval and end with Stop.
func TestFDTicker(t *testing.T) {
	if _, err := openTimerFD(time.Second); err != nil {
		t.Skipf("no timerfd here (the agent falls back to time.Ticker): %v", err)
	}
	const every = 10 * time.Millisecond
	tk := newFDTicker(every)
	start := time.Now()
	var last time.Time
	for i := range 5 {
		select {
		case last = <-tk.C:
		case <-time.After(time.Second):
			t.Fatalf("tick %d did not come within 1 s", i)
		}
	}
	if el := last.Sub(start); el < 4*every {
		t.Errorf("5 ticks of %s in %s: too fast", every, el)
	}
	tk.Stop()
	time.Sleep(3 * every)
	select { // one tick may have been on its way
	case <-tk.C:
	default:
	}
	select {
	case <-tk.C:
		t.Error("a tick after Stop")
	case <-time.After(5 * every):
	}
}
