package main

import (
	"sync"
	"time"
)

// rateLogEvery is the least time between two log lines of one rateLog.
const rateLogEvery = 10 * time.Second

// rateLog bounds how often a repeated event is logged: the first one at
// once, then at most one line per rateLogEvery with how many happened since
// the last line. A storm of junk datagrams or a check failing every 20 ms
// then costs a line every ten seconds, and the count says how bad it was.
type rateLog struct {
	mu    sync.Mutex
	last  time.Time
	count int
	total int
}

// note records one event at now; it returns how many to report and true
// when a line is due.
func (r *rateLog) note(now time.Time) (count int, due bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.count++
	r.total++
	if !r.last.IsZero() && now.Sub(r.last) < rateLogEvery {
		return 0, false
	}
	count, r.count, r.last = r.count, 0, now
	return count, true
}

// Total is how many events were noted in all.
func (r *rateLog) Total() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.total
}
