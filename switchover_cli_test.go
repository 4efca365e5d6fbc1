package main

import (
	"testing"
	"time"
)

// TestSwitchMeasure: the outage runs from the newest answer of the box
// that answered first to the first answer of another SIP stack, counting
// the probes lost between; with the same Server header on both boxes, the
// first answer sent after the release was complete is the other box's.
func TestSwitchMeasure(t *testing.T) {
	at := func(ms int) time.Time { return ftStart.Add(time.Duration(ms) * time.Millisecond) }
	ans := func(ms int, server string) probeResult {
		return probeResult{Sent: at(ms), Answered: true, Status: 200, Server: server}
	}
	lost := func(ms int) probeResult { return probeResult{Sent: at(ms)} }
	for _, tt := range []struct {
		name     string
		after    string
		released int // ms; 0: not known
		wantMS   float64
	}{
		{"other Server header", "box-b", 0, 50},
		{"same Server header, release known", "asterisk", 25, 50},
	} {
		t.Run(tt.name, func(t *testing.T) {
			m := &switchMeasure{}
			m.add(ans(0, "asterisk"))
			m.add(ans(10, "asterisk"))
			m.add(lost(20))
			m.add(lost(30))
			m.add(lost(40))
			if tt.released > 0 {
				m.setReleased(at(tt.released))
			}
			m.add(ans(60, tt.after))
			first, ok := m.waitAfter(time.Millisecond)
			if !ok {
				t.Fatal("no answer counted as the other box's")
			}
			ms, n := m.outage(first)
			if ms != tt.wantMS || n != 3 {
				t.Fatalf("outage %.1f ms, %d lost; want %.1f ms, 3 lost", ms, n, tt.wantMS)
			}
		})
	}
	m := &switchMeasure{}
	m.add(ans(0, "asterisk"))
	m.add(ans(60, "asterisk"))
	if _, ok := m.waitAfter(time.Millisecond); ok {
		t.Fatal("with the same header and no release known, an answer counted as the other box's")
	}
}
