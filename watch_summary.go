package main

// flip watch, the record of a drill: every probe, the longest gap between
// answers (the outage) and the switch from one responder to the other.

import (
	"time"
)

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
