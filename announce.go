package main

import (
	"log/slog"
	"sync"
	"time"
)

// announcer decides when and how often a moved address is announced; the
// frames themselves are arp.go's. The first round goes out at once, the
// rest every interval: peers ignore a second update within their ARP
// locktime (1 s on Linux), and switches age their MAC tables on their own
// schedule, so one burst is not enough.
type announcer struct {
	log      *slog.Logger
	count    int
	interval time.Duration
	send     func(iface string, v vipSpec) error

	mu   sync.Mutex
	stop chan struct{}
	done chan struct{}
}

// announceStallAfter: a gap between two rounds longer than this many
// intervals means the process was stopped; the rounds left are dropped.
const announceStallAfter = 2

// Start announces every VIP once now and count-1 more times in the
// background. It replaces an announcement already running.
func (a *announcer) Start(vips []vipSpec) {
	a.Stop()
	a.round(vips, 1)
	if a.count <= 1 {
		return
	}
	stop, done := make(chan struct{}), make(chan struct{})
	a.mu.Lock()
	a.stop, a.done = stop, done
	a.mu.Unlock()
	go func() {
		defer close(done)
		t := time.NewTicker(a.interval)
		defer t.Stop()
		prev := time.Now()
		for n := 2; n <= a.count; n++ {
			select {
			case <-stop:
				return
			case <-t.C:
				// The time now, not the tick's: a tick missed while the
				// process was stopped is delivered on waking with its old
				// time.
				now := time.Now()
				if now.Sub(prev) > announceStallAfter*a.interval {
					// The process did not run for a while (SIGSTOP, a
					// frozen VM): the other box may hold the VIP by now,
					// and the agent decides, not a stale announcement.
					a.log.Warn("announcement stopped: flip did not run for a while", "gap", now.Sub(prev).Round(time.Millisecond))
					return
				}
				prev = now
				a.round(vips, n)
			}
		}
	}()
}

// Stop ends the background announcements and waits for them: a released
// box must not claim the address afterwards.
func (a *announcer) Stop() {
	a.mu.Lock()
	stop, done := a.stop, a.done
	a.stop, a.done = nil, nil
	a.mu.Unlock()
	if stop != nil {
		close(stop)
		<-done
	}
}

func (a *announcer) round(vips []vipSpec, n int) {
	for _, v := range vips {
		if err := a.send(v.Iface, v); err != nil {
			a.log.Error("announcement (gratuitous ARP / unsolicited NA) failed", "vip", v.Addr, "iface", v.Iface, "round", n, "err", err)
		}
	}
}
