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
}

// durationBounds are the README table's ranges (TestREADMEConfigTable
// keeps them in step).
var durationBounds = []durationBound{
	{"FLIP_PROBE_INTERVAL", 10 * time.Millisecond, 10 * time.Second, false},
	{"FLIP_DEAD_AFTER", 50 * time.Millisecond, 10 * time.Minute, false},
	{"FLIP_REFUSED_AFTER", 0, time.Minute, true},
	{"FLIP_HANDOVER_WAIT", 0, time.Minute, true},
	{"FLIP_INIT_DEAD", 100 * time.Millisecond, time.Hour, false},
	{"FLIP_START_TIMEOUT", time.Second, time.Hour, false},
	{"FLIP_HOLDER_WAIT", 0, 2 * time.Hour, true},
	{"FLIP_RESOURCE_TIMEOUT", time.Second, time.Hour, false},
	{"FLIP_FONULATOR_TIMEOUT", time.Second, 10 * time.Minute, false},
	{"FLIP_GARP_INTERVAL", 10 * time.Millisecond, time.Minute, false},
	{"FLIP_ARP_CHECK_WINDOW", time.Millisecond, 5 * time.Second, false},
	{"FLIP_HOLDER_RECHECK", time.Millisecond, 10 * time.Second, false},
	{"FLIP_FENCE_TIMEOUT", time.Second, 10 * time.Minute, false},
	{"FLIP_HOLD_DOWN", 0, 24 * time.Hour, true},
	{"FLIP_CONFLICT_INTERVAL", 100 * time.Millisecond, time.Minute, false},
	{"FLIP_FAILBACK_DELAY", time.Second, 24 * time.Hour, false},
	{"FLIP_NOTIFY_TIMEOUT", 100 * time.Millisecond, 10 * time.Minute, false},
}

// countBound is the range a count setting must be in.
type countBound struct {
	name     string
	min, max int
}

var countBounds = []countBound{
	{"FLIP_GARP_COUNT", 1, 100},
	{"FLIP_FONULATOR_RETRIES", 0, 10},
	{"FLIP_PEER_PORT", 1, 65535},
}

// rangeText is how the README states a bound.
func (b durationBound) rangeText() string {
	if b.zeroOK {
		return fmt.Sprintf("range: 0 or %s to %s", shortDuration(max(b.min, time.Millisecond)), shortDuration(b.max))
	}
	return fmt.Sprintf("range: %s to %s", shortDuration(b.min), shortDuration(b.max))
}

func (b countBound) rangeText() string { return fmt.Sprintf("range: %d to %d", b.min, b.max) }

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
		d := c.durationOf(b.name)
		if b.zeroOK && d == 0 {
			continue
		}
		if d < b.min || d > b.max || (b.zeroOK && d < time.Millisecond) {
			return badVar(b.name, "%s is out of range (%s)", d, b.rangeText()[len("range: "):])
		}
	}
	for _, b := range countBounds {
		n := c.countOf(b.name)
		if n < b.min || n > b.max {
			return badVar(b.name, "%d is out of range (%d to %d)", n, b.min, b.max)
		}
	}
	return nil
}

// durationOf is the configured value of a duration setting.
func (c *config) durationOf(name string) time.Duration {
	return map[string]time.Duration{
		"FLIP_PROBE_INTERVAL": c.ProbeInterval, "FLIP_DEAD_AFTER": c.DeadAfter,
		"FLIP_REFUSED_AFTER": c.RefusedAfter, "FLIP_HANDOVER_WAIT": c.HandoverWait,
		"FLIP_INIT_DEAD": c.InitDead, "FLIP_START_TIMEOUT": c.StartTimeout, "FLIP_HOLDER_WAIT": c.HolderWait,
		"FLIP_RESOURCE_TIMEOUT": c.ResourceTO, "FLIP_FONULATOR_TIMEOUT": c.FonulatorTimeout,
		"FLIP_GARP_INTERVAL": c.GARPInterval, "FLIP_ARP_CHECK_WINDOW": c.ARPCheckWindow,
		"FLIP_HOLDER_RECHECK": c.HolderRecheck, "FLIP_FENCE_TIMEOUT": c.FenceTimeout,
		"FLIP_HOLD_DOWN": c.HoldDown, "FLIP_CONFLICT_INTERVAL": c.ConflictInterval,
		"FLIP_FAILBACK_DELAY": c.FailbackDelay, "FLIP_NOTIFY_TIMEOUT": c.NotifyTimeout,
	}[name]
}

// countOf is the configured value of a count setting.
func (c *config) countOf(name string) int {
	return map[string]int{"FLIP_GARP_COUNT": c.GARPCount, "FLIP_FONULATOR_RETRIES": c.FonulatorRetries, "FLIP_PEER_PORT": c.PeerPort}[name]
}
