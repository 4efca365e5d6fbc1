package main

import (
	"context"
	"strings"
	"time"
)

// The effects of the standby sync (sync.go has the rules): the command
// runs on a goroutine of its own, so the loop goes on probing; its end
// comes back to the loop.

// syncStatus is the standby sync in `flip status` and /status.
type syncStatus struct {
	Running     bool    `json:"running"`
	LastStart   string  `json:"last_start,omitempty"`
	LastSuccess string  `json:"last_success,omitempty"`
	LastError   string  `json:"last_error,omitempty"` // of the last run, if it failed
	LastMS      float64 `json:"last_ms,omitempty"`
	Runs        int     `json:"runs"`
	Failures    int     `json:"failures"`
}

// String is the sync in one line for `flip status`.
func (s syncStatus) String() string {
	out := "standby sync: "
	switch {
	case s.Running:
		out += "running since " + s.LastStart
	case s.Runs == 0:
		out += "not run yet"
	case s.LastError != "":
		out += "last run FAILED (" + s.LastError + ")"
	default:
		out += "last run ok"
	}
	if s.LastSuccess != "" {
		out += ", last success " + s.LastSuccess
	}
	return out
}

// maybeSync starts FLIP_SYNC_CMD when the machine says it is due, and
// returns when to ask again (the earlier of next and the sync's own time).
func (a *agent) maybeSync(ctx context.Context, next time.Time) time.Time {
	if a.cfg.SyncCmd == nil {
		return next
	}
	due, at := a.m.syncDue(a.now(), a.cfg.SyncInterval)
	if !due {
		if !at.IsZero() && at.Before(next) {
			return at
		}
		return next
	}
	a.m.syncStarted(a.now())
	runCtx, cancel := context.WithCancel(ctx)
	a.syncCancel = cancel
	if a.syncDone == nil {
		a.syncDone = make(chan commandRun, 1)
	}
	a.syncView.Running, a.syncView.LastStart = true, timeString(a.now())
	a.ev.Synced(a.syncView)
	argv := a.syncArgv()
	done := a.syncDone
	go func() {
		done <- execCommand(runCtx, a.cfg.SyncTimeout, argv) // buffered; one run at a time
	}()
	return next
}

// syncArgv is FLIP_SYNC_CMD with {peer} replaced by the other box's LAN
// address (FLIP_PEER's first), so one /etc/default/flip serves both boxes.
func (a *agent) syncArgv() []string {
	argv := make([]string, len(a.cfg.SyncCmd))
	for i, w := range a.cfg.SyncCmd {
		if len(a.cfg.Peers) > 0 {
			w = strings.ReplaceAll(w, "{peer}", a.cfg.Peers[0].String())
		}
		argv[i] = w
	}
	return argv
}

// onSyncDone takes the end of a run, on the loop.
func (a *agent) onSyncDone(run commandRun) {
	if a.syncCancel != nil {
		a.syncCancel()
		a.syncCancel = nil
	}
	ok := run.Err == nil
	a.m.syncEnded(a.now(), ok)
	v := &a.syncView
	v.Running, v.Runs, v.LastMS = false, v.Runs+1, msFloat(run.Duration)
	if ok {
		v.LastSuccess, v.LastError = timeString(a.now()), ""
		a.log.Info("standby sync done", "cmd", commandName(a.cfg.SyncCmd), "duration", ms(run.Duration))
	} else {
		v.Failures++
		v.LastError = run.Err.Error()
		if run.Output != "" {
			v.LastError += "; output: " + run.Output
		}
		a.log.Warn("standby sync failed; the other box may be out of step (this moves nothing)",
			"cmd", commandName(a.cfg.SyncCmd), "err", run.Err, "exit", run.Code, "output", run.Output, "failures_in_a_row", a.m.sync.failsInRow)
	}
	a.ev.Synced(*v)
}

// stopSync kills a run under way: the box is releasing or draining, and a
// passive box never pushes. Its end still comes back (onSyncDone).
func (a *agent) stopSync() {
	if a.syncCancel != nil {
		a.log.Warn("standby sync cut short: this box is leaving the active role or draining")
		a.syncCancel()
		a.syncCancel = nil
	}
}
