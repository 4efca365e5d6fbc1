package main

import (
	"context"
	"time"
)

// Optional resources (issue 15). By default a failed start aborts the
// takeover: every resource is needed to serve. Some operators would rather
// serve SIP without the foneBRIDGE than not at all: a PRI problem must not
// become a total outage. A resource marked with "?" in FLIP_RESOURCES
// ("fonebridge?", "exec:/usr/local/sbin/pager?") may fail to start: the
// takeover goes on, the failure is logged and reported to the notify hook
// (FLIP_NOTIFY_OK=false on the takeover) and the status, and the start is
// retried while the box is active, optionalRetryFirst after the failure and
// then twice as long each time up to optionalRetryMax. VIPs and routes can
// never be optional.

// Retry delays of a failed optional resource.
const (
	optionalRetryFirst = 10 * time.Second
	optionalRetryMax   = 5 * time.Minute
)

// optionalRetryDelay is the wait before retry n (1, 2, ...): doubling from
// optionalRetryFirst, capped at optionalRetryMax.
func optionalRetryDelay(n int) time.Duration {
	d := optionalRetryFirst
	for i := 1; i < n && d < optionalRetryMax; i++ {
		d *= 2
	}
	return min(d, optionalRetryMax)
}

// optionalRetry is a failed optional resource waiting for its next start.
type optionalRetry struct {
	tries int
	next  time.Time
}

// optionalFlags says, per resource of cfg (in order), whether it is
// optional.
func (c *config) optionalFlags() []bool {
	out := make([]bool, len(c.Resources))
	for i, r := range c.Resources {
		out[i] = r.Optional
	}
	return out
}

// isOptional reports whether resource i may fail without aborting.
func (a *agent) isOptional(i int) bool { return i < len(a.optional) && a.optional[i] }

// optionalFailed records a failed optional start for its retries.
func (a *agent) optionalFailed(i int) {
	if a.optRetry == nil {
		a.optRetry = map[int]*optionalRetry{}
	}
	r := a.optRetry[i]
	if r == nil {
		r = &optionalRetry{}
		a.optRetry[i] = r
	}
	r.tries++
	r.next = a.now().Add(optionalRetryDelay(r.tries))
}

// retryOptional starts again, while active, the optional resources whose
// start failed and whose retry is due.
func (a *agent) retryOptional(ctx context.Context) {
	if a.m.role != roleActive {
		a.optRetry = nil
		return
	}
	for i, r := range a.optRetry {
		if a.now().Before(r.next) {
			continue
		}
		res := a.resources[i]
		if _, err := a.phase(ctx, "start", res); err != nil {
			a.optionalFailed(i)
			a.log.Error("optional resource still failing; serving without it", "resource", res.Name(), "tries", r.tries, "next_try_in", optionalRetryDelay(r.tries), "err", err)
			continue
		}
		a.notePointed(res)
		delete(a.optRetry, i)
		a.log.Warn("optional resource started on retry", "resource", res.Name(), "tries", r.tries+1)
	}
}
