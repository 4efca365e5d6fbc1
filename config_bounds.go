package main

import (
	"fmt"
	"time"
)

// durationBound is the range a duration setting must be in. The lows keep
// flip from spinning (FLIP_PROBE_INTERVAL=1ns is a busy loop and a flood
// of OPTIONS); the highs are far beyond any sane setting and keep every sum
// of them (the holder wait is FLIP_START_TIMEOUT + FLIP_DEAD_AFTER) far from
// time.Duration's 292 years, so nothing overflows into a negative wait.
type durationBound struct {
	name     string
	min, max time.Duration
	zeroOK   bool // 0 is a meaningful value (off, or "derive it")
	of       func(c *config) time.Duration
}

// durationBounds are the README table's ranges (TestREADMEStatesRanges
// keeps them in step).
var durationBounds = []durationBound{
	{"FLIP_PROBE_INTERVAL", 10 * time.Millisecond, 10 * time.Second, false, func(c *config) time.Duration { return c.ProbeInterval }},
	{"FLIP_DEAD_AFTER", 50 * time.Millisecond, 10 * time.Minute, false, func(c *config) time.Duration { return c.DeadAfter }},
	{"FLIP_REFUSED_AFTER", 0, time.Minute, true, func(c *config) time.Duration { return c.RefusedAfter }},
	{"FLIP_HANDOVER_WAIT", 0, time.Minute, true, func(c *config) time.Duration { return c.HandoverWait }},
	{"FLIP_INIT_DEAD", 100 * time.Millisecond, time.Hour, false, func(c *config) time.Duration { return c.InitDead }},
	{"FLIP_START_TIMEOUT", time.Second, time.Hour, false, func(c *config) time.Duration { return c.StartTimeout }},
	{"FLIP_HOLDER_WAIT", 0, 2 * time.Hour, true, func(c *config) time.Duration { return c.HolderWait }},
	{"FLIP_RESOURCE_TIMEOUT", time.Second, time.Hour, false, func(c *config) time.Duration { return c.ResourceTO }},
	{"FLIP_FONULATOR_TIMEOUT", time.Second, 10 * time.Minute, false, func(c *config) time.Duration { return c.FonulatorTimeout }},
	{"FLIP_GARP_INTERVAL", 10 * time.Millisecond, time.Minute, false, func(c *config) time.Duration { return c.GARPInterval }},
	{"FLIP_ARP_CHECK_WINDOW", time.Millisecond, 5 * time.Second, false, func(c *config) time.Duration { return c.ARPCheckWindow }},
	{"FLIP_HOLDER_RECHECK", time.Millisecond, 10 * time.Second, false, func(c *config) time.Duration { return c.HolderRecheck }},
	{"FLIP_FENCE_TIMEOUT", time.Second, 10 * time.Minute, false, func(c *config) time.Duration { return c.FenceTimeout }},
	{"FLIP_HOLD_DOWN", 0, 24 * time.Hour, true, func(c *config) time.Duration { return c.HoldDown }},
	{"FLIP_CONFLICT_INTERVAL", 100 * time.Millisecond, time.Minute, false, func(c *config) time.Duration { return c.ConflictInterval }},
	{"FLIP_FAILBACK_DELAY", time.Second, 24 * time.Hour, false, func(c *config) time.Duration { return c.FailbackDelay }},
	{"FLIP_DRAIN_TIMEOUT", time.Second, 24 * time.Hour, false, func(c *config) time.Duration { return c.DrainTimeout }},
	{"FLIP_DRAIN_POLL", 100 * time.Millisecond, time.Minute, false, func(c *config) time.Duration { return c.DrainPoll }},
	{"FLIP_SYNC_INTERVAL", 10 * time.Second, 24 * time.Hour, true, func(c *config) time.Duration { return c.SyncInterval }},
	{"FLIP_SYNC_TIMEOUT", time.Second, 24 * time.Hour, false, func(c *config) time.Duration { return c.SyncTimeout }},
	{"FLIP_NOTIFY_TIMEOUT", 100 * time.Millisecond, 10 * time.Minute, false, func(c *config) time.Duration { return c.NotifyTimeout }},
}

// countBound is the range a count setting must be in.
type countBound struct {
	name     string
	min, max int
	of       func(c *config) int
}

var countBounds = []countBound{
	{"FLIP_GARP_COUNT", 1, 100, func(c *config) int { return c.GARPCount }},
	{"FLIP_FONULATOR_RETRIES", 0, 10, func(c *config) int { return c.FonulatorRetries }},
	{"FLIP_PEER_PORT", 1, 65535, func(c *config) int { return c.PeerPort }},
}

// span is the range in words, e.g. "10ms to 10s" or "0 or 1ms to 1m".
func (b durationBound) span() string {
	if b.zeroOK {
		return fmt.Sprintf("0 or %s to %s", shortDuration(max(b.min, time.Millisecond)), shortDuration(b.max))
	}
	return fmt.Sprintf("%s to %s", shortDuration(b.min), shortDuration(b.max))
}

func (b countBound) span() string { return fmt.Sprintf("%d to %d", b.min, b.max) }

// rangeText is how the README states a bound.
func (b durationBound) rangeText() string { return "range: " + b.span() }
func (b countBound) rangeText() string    { return "range: " + b.span() }

// shortDuration writes 10m, 1h, 100ms rather than 10m0s, 1h0m0s.
func shortDuration(d time.Duration) string {
	switch {
	case d >= time.Hour && d%time.Hour == 0:
		return fmt.Sprintf("%dh", d/time.Hour)
	case d >= time.Minute && d%time.Minute == 0:
		return fmt.Sprintf("%dm", d/time.Minute)
	case d >= time.Second && d%time.Second == 0:
		return fmt.Sprintf("%ds", d/time.Second)
	default:
		return fmt.Sprintf("%dms", d/time.Millisecond)
	}
}

// checkBounds rejects a duration or count out of its range, naming it.
func (c *config) checkBounds() error {
	for _, b := range durationBounds {
		d := b.of(c)
		if b.zeroOK && d == 0 {
			continue
		}
		low := b.min
		if b.zeroOK {
			low = max(b.min, time.Millisecond) // 0 itself passed above
		}
		if d < low || d > b.max {
			return badVar(b.name, "%s is out of range (%s)", d, b.span())
		}
	}
	for _, b := range countBounds {
		if n := b.of(c); n < b.min || n > b.max {
			return badVar(b.name, "%d is out of range (%s)", n, b.span())
		}
	}
	return nil
}
