package main

import (
	"context"
	"log/slog"
	"strconv"
	"strings"
	"sync"
	"time"
)

// notifyQueueSize bounds the role changes waiting for FLIP_NOTIFY_CMD. A
// flapping pair with a hanging hook must not grow memory without bound; the
// oldest waiting change is dropped (and the drop logged), so the newest,
// which tells the current role, always runs.
const notifyQueueSize = 64

// notifyCloseGrace is how much longer than one FLIP_NOTIFY_TIMEOUT Close
// waits for the hooks still queued at exit.
const notifyCloseGrace = time.Second

// notifier runs FLIP_NOTIFY_CMD on every role change: OLD_ROLE NEW_ROLE
// CAUSE appended to its arguments, the reason in FLIP_NOTIFY_REASON and
// whether it went well in FLIP_NOTIFY_OK (false: an aborted takeover or a
// release with a failed stop). Unlike
// keepalived's notify scripts, which can overlap and finish out of order,
// one worker runs the hooks one at a time in the order of the changes.
// Transition only queues: a slow, failing or hanging hook is logged and
// killed at FLIP_NOTIFY_TIMEOUT, and never holds up the agent.
type notifier struct {
	nopEvents
	argv    []string // nil: disabled
	timeout time.Duration
	log     *slog.Logger
	max     int // queue bound; a field so tests can make it small
	// revision is the pool's fencing token at the time of a transition
	// (FLIP_REVISION); nil or 0: none (a pair).
	revision func() int64

	mu      sync.Mutex
	queue   []notifyJob
	dropped int // dropped since the worker last reported it
	closed  bool

	wake      chan struct{} // capacity 1: "the queue may have work"
	done      chan struct{} // closed when the worker exits
	ctx       context.Context
	cancel    context.CancelFunc
	closeOnce sync.Once
}

// notifyJob is one role change waiting for the hook.
type notifyJob struct {
	from, to role
	cause    string
	reason   string
	ok       bool // false: an aborted takeover, or a release with a failed stop
	at       time.Time
	revision int64 // pool mode: the election revision this box last won with
}

var _ events = (*notifier)(nil)

// newNotifier splits cmd on blanks (no shell) and starts the worker. With
// cmd "" it returns a disabled notifier (never nil: it is safe to add to
// multiEvents and to Close).
func newNotifier(cmd string, timeout time.Duration, log *slog.Logger) *notifier {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	n := &notifier{argv: strings.Fields(cmd), timeout: timeout, log: log, max: notifyQueueSize}
	if len(n.argv) == 0 {
		n.argv = nil
		return n
	}
	if n.timeout <= 0 {
		n.timeout = 10 * time.Second
	}
	n.wake = make(chan struct{}, 1)
	n.done = make(chan struct{})
	n.ctx, n.cancel = context.WithCancel(context.Background())
	go n.work()
	return n
}

// Transition queues a hook run for a role change, and also for the worst
// cases an operator must hear of: an aborted takeover (passive to passive,
// cause takeover_failed, the resource and the error in the reason) and a
// release with a stop that failed (ok false). FLIP_NOTIFY_OK says which.
// It never blocks.
func (n *notifier) Transition(from, to role, cause, reason string, ok bool, _ time.Duration) {
	if n == nil || n.argv == nil || (from == to && ok) {
		return
	}
	j := notifyJob{from: from, to: to, cause: cause, reason: reason, ok: ok, at: time.Now()}
	if n.revision != nil {
		j.revision = n.revision()
	}
	n.mu.Lock()
	if n.closed {
		n.mu.Unlock()
		return
	}
	if len(n.queue) >= max(n.max, 1) {
		n.queue[0] = notifyJob{}
		n.queue = n.queue[1:]
		n.dropped++
	}
	n.queue = append(n.queue, j)
	n.mu.Unlock()
	select {
	case n.wake <- struct{}{}:
	default:
	}
}

// Close lets the queued hooks run, waiting at most FLIP_NOTIFY_TIMEOUT + 1 s
// in all; then it kills the running hook, logs what did not run, and
// returns. Transitions after Close are ignored. Safe to call twice.
func (n *notifier) Close() {
	if n == nil || n.argv == nil {
		return
	}
	n.closeOnce.Do(func() {
		n.mu.Lock()
		n.closed = true
		n.mu.Unlock()
		select {
		case n.wake <- struct{}{}:
		default:
		}
		wait := n.timeout + notifyCloseGrace
		t := time.NewTimer(wait)
		defer t.Stop()
		select {
		case <-n.done:
			return
		case <-t.C:
		}
		n.mu.Lock()
		left := len(n.queue)
		n.queue = nil
		n.mu.Unlock()
		n.log.Warn("notify hook still running at exit; killing it", "cmd", n.command(), "waited", wait, "not_run", left)
		n.cancel()
		select {
		case <-n.done:
		case <-time.After(commandKillGrace):
		}
	})
}

// work runs the queued hooks one at a time, in order, until Close.
func (n *notifier) work() {
	defer close(n.done)
	for {
		j, dropped, ok := n.next()
		if dropped > 0 {
			n.log.Warn("notify queue full: dropped the oldest role changes without running the hook",
				"cmd", n.command(), "dropped", dropped, "queue_size", n.max)
		}
		if !ok {
			return
		}
		n.run(j)
	}
}

// next waits for the next job. ok is false once the notifier is closed
// and the queue empty, or Close gave up waiting. dropped is how many jobs
// were dropped since the last call (a drop always leaves the queue full, so
// it is reported with the job that follows it).
func (n *notifier) next() (j notifyJob, dropped int, ok bool) {
	for {
		n.mu.Lock()
		if len(n.queue) > 0 {
			j = n.queue[0]
			n.queue[0] = notifyJob{}
			n.queue = n.queue[1:]
			dropped, n.dropped = n.dropped, 0
			n.mu.Unlock()
			return j, dropped, true
		}
		closed := n.closed
		n.mu.Unlock()
		if closed || n.ctx.Err() != nil {
			return j, 0, false
		}
		select {
		case <-n.wake:
		case <-n.ctx.Done():
		}
	}
}

// run runs the hook once for j and logs the outcome.
func (n *notifier) run(j notifyJob) {
	argv := append(append([]string{}, n.argv...), j.from.String(), j.to.String(), j.cause)
	env := []string{
		"FLIP_NOTIFY_REASON=" + j.reason,
		"FLIP_NOTIFY_TIME=" + timeString(j.at),
		"FLIP_NOTIFY_OK=" + strconv.FormatBool(j.ok),
	}
	if j.revision > 0 {
		env = append(env, revisionVar(j.revision))
	}
	waited := time.Since(j.at)
	r := execCommandEnv(n.ctx, n.timeout, argv, env)
	attrs := []any{
		"cmd", commandName(argv),
		"duration", ms(r.Duration),
		"queued", ms(waited),
	}
	if r.Err == nil {
		if r.Output != "" {
			attrs = append(attrs, "output", r.Output)
		}
		n.log.Info("notify hook done", attrs...)
		return
	}
	attrs = append(attrs, "err", r.Err, "exit_code", r.Code, "timed_out", r.TimedOut, "output", r.Output)
	n.log.Error("notify hook failed", attrs...)
}

func (n *notifier) command() string { return commandName(n.argv) }
