package main

// systemd integration: readiness, a status line and the watchdog, told over
// the sd_notify protocol (one datagram per message to the unix socket named
// by $NOTIFY_SOCKET). Implemented here with plain syscalls: a non-blocking
// socket and MSG_DONTWAIT, so a stalled or vanished systemd can never hold
// up the agent's loop.

import (
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
)

// systemdEvents tells systemd what the agent does (see the events
// interface): READY=1 once it has looked at the box, a STATUS= line on every
// role change, STOPPING=1 on exit, and WATCHDOG=1 keep-alives.
//
// The keep-alives come from the agent's own events (above all Probed), never
// from a timer of their own: they stop when the agent's loop stops, and
// systemd then restarts flip (WatchdogSec= in deploy/flip.service). They are
// rate-limited to one per half watchdog interval.
//
// Without $NOTIFY_SOCKET (not started by systemd, or not Type=notify) every
// method does nothing.
type systemdEvents struct {
	nopEvents
	log *slog.Logger

	mu       sync.Mutex
	fd       int                   // datagram socket; -1 when off or closed
	addr     *syscall.SockaddrUnix // $NOTIFY_SOCKET
	watchdog time.Duration         // WATCHDOG_USEC for this process; 0 = off
	now      func() time.Time      // the clock (tests replace it)
	lastPing time.Time             // when WATCHDOG=1 was last sent
	role     role                  // last role reported, for the stop line
	busyN    int                   // open busy() calls
	raised   time.Duration         // the watchdog timeout busy() set; 0 = none
	failed   int                   // sends that failed
	logged   bool                  // the first failure was logged
}

// systemdNotifyEnv are the variables systemd sets for the notify protocol.
// They are removed from flip's environment once read, so the commands flip
// runs (systemctl, exec: scripts, fonulator, the notify and fence commands)
// do not inherit them and cannot talk to systemd in flip's name.
var systemdNotifyEnv = []string{"NOTIFY_SOCKET", "WATCHDOG_USEC", "WATCHDOG_PID"}

// newSystemdEvents reads $NOTIFY_SOCKET, $WATCHDOG_USEC and $WATCHDOG_PID
// (then unsets them) and opens the socket. It never fails: without
// NOTIFY_SOCKET, or when the socket cannot be opened (logged), the listener
// does nothing.
func newSystemdEvents(log *slog.Logger) *systemdEvents {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	s := &systemdEvents{log: log, fd: -1, now: time.Now}
	path := os.Getenv("NOTIFY_SOCKET")
	wd, wdErr := sdWatchdogInterval(os.Getenv("WATCHDOG_USEC"), os.Getenv("WATCHDOG_PID"), os.Getpid())
	for _, k := range systemdNotifyEnv {
		os.Unsetenv(k)
	}
	if path == "" {
		return s
	}
	if path[0] != '/' && path[0] != '@' {
		// systemd ≥ 254 may name an AF_VSOCK address for VMs; flip runs on
		// the host, where systemd always gives a unix socket.
		log.Warn("systemd: NOTIFY_SOCKET is not a unix socket path; not notifying systemd", "notify_socket", path)
		return s
	}
	if wdErr != nil {
		log.Warn("systemd: ignoring the watchdog", "err", wdErr)
	}
	fd, err := syscall.Socket(syscall.AF_UNIX, syscall.SOCK_DGRAM|syscall.SOCK_NONBLOCK|syscall.SOCK_CLOEXEC, 0)
	if err != nil {
		log.Warn("systemd: cannot open the notify socket; not notifying systemd", "err", err)
		return s
	}
	// A leading '@' means the abstract namespace: SockaddrUnix turns it
	// into the leading NUL byte itself.
	s.fd, s.addr, s.watchdog = fd, &syscall.SockaddrUnix{Name: path}, wd
	log.Debug("systemd: notifying", "notify_socket", path, "watchdog", wd)
	return s
}

// sdWatchdogInterval parses WATCHDOG_USEC, as sd_watchdog_enabled(3) does: the
// watchdog is for this process only if WATCHDOG_PID is unset or names it.
func sdWatchdogInterval(usec, pid string, self int) (time.Duration, error) {
	if usec == "" {
		return 0, nil
	}
	if pid != "" {
		p, err := strconv.Atoi(pid)
		if err != nil || p <= 0 {
			return 0, fmt.Errorf("bad WATCHDOG_PID %q", pid)
		}
		if p != self {
			return 0, nil // meant for another process
		}
	}
	u, err := strconv.ParseUint(usec, 10, 64)
	if err != nil || u == 0 || u > uint64(time.Duration(1<<62)/time.Microsecond) {
		return 0, fmt.Errorf("bad WATCHDOG_USEC %q", usec)
	}
	return time.Duration(u) * time.Microsecond, nil
}

// enabled reports whether systemd is listening (NOTIFY_SOCKET was set and
// the socket is open).
func (s *systemdEvents) enabled() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.fd >= 0
}

// Started: READY=1 ends systemd's start phase (Type=notify), with the role
// the agent resumed in.
func (s *systemdEvents) Started(r role, vipsHeld int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.role = r
	s.send("READY=1\nSTATUS=" + sdStatusLine(r, vipsHeld))
}

// sdStatusLine is the Started status: role and VIPs held.
func sdStatusLine(r role, held int) string {
	if held == 1 {
		return r.String() + ", 1 VIP held"
	}
	return fmt.Sprintf("%s, %d VIPs held", r, held)
}

// Probed is the heartbeat of the agent's loop: every result it takes in
// keeps the watchdog fed.
func (s *systemdEvents) Probed(probeResult) { s.alive() }

// Phase, Fenced and Conflict show the loop alive too (during a takeover
// no probe result is taken in).
func (s *systemdEvents) Phase(string, string, time.Duration, error) { s.alive() }

func (s *systemdEvents) Fenced(error, time.Duration) { s.alive() }

func (s *systemdEvents) Conflict(netip.Addr, net.HardwareAddr) { s.alive() }

// Transition replaces the status line: the new role, what happened, why
// (the cause label) and how long it took.
func (s *systemdEvents) Transition(from, to role, cause, _ string, ok bool, total time.Duration) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.role = to
	s.send("STATUS=" + sdTransitionLine(from, to, cause, ok, total))
	s.pingLocked()
}

// sdTransitionLine describes one Transition for the status line.
func sdTransitionLine(from, to role, cause string, ok bool, total time.Duration) string {
	var what string
	switch {
	case from == rolePassive && to == roleActive && ok:
		what = "took over"
	case from == roleActive && to == rolePassive && ok:
		what = "released"
	case from == rolePassive && to == rolePassive:
		what = "takeover failed"
	case !ok:
		what = fmt.Sprintf("%s to %s failed", from, to)
	default:
		what = fmt.Sprintf("%s to %s", from, to)
	}
	if cause == "" {
		cause = "unknown"
	}
	return fmt.Sprintf("%s: %s (%s) in %s", to, what, sdOneLine(cause), total.Round(time.Millisecond))
}

// sdOneLine keeps a value on one line: a newline would start a new
// assignment in the notify message.
func sdOneLine(s string) string {
	return strings.Map(func(r rune) rune {
		if r == '\n' || r == '\r' {
			return ' '
		}
		return r
	}, s)
}

// Stopping: STOPPING=1, and the socket is closed (nothing is sent after it).
func (s *systemdEvents) Stopping() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.send("STOPPING=1\nSTATUS=stopping; the box is left as it is (" + s.role.String() + ")")
	if s.fd >= 0 {
		syscall.Close(s.fd)
		s.fd = -1
	}
}

// busy tells systemd that the agent's loop is about to block in one step
// that it bounds itself (a resource start or stop, fonulator with its
// retries, the fence command), for at most bound. For that step the
// watchdog timeout is raised to bound plus the configured interval
// (WATCHDOG_USEC=, systemd 236 or newer; the message also counts as a
// keep-alive); done puts it back. A step stuck past its own bound still gets
// flip restarted. Nested calls keep the largest timeout until the last one
// is done. Without a watchdog, busy does nothing. Call done from the same
// goroutine or any other, once or more.
func (s *systemdEvents) busy(bound time.Duration) (done func()) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.fd < 0 || s.watchdog <= 0 || bound <= 0 {
		return func() {}
	}
	s.busyN++
	if t := bound + s.watchdog; t > s.raised {
		s.raised = t
		s.send(fmt.Sprintf("WATCHDOG=1\nWATCHDOG_USEC=%d", t.Microseconds()))
	} else {
		s.send("WATCHDOG=1")
	}
	s.lastPing = s.now()
	var once sync.Once
	return func() {
		once.Do(func() {
			s.mu.Lock()
			defer s.mu.Unlock()
			s.busyN--
			if s.busyN == 0 && s.fd >= 0 {
				s.raised = 0
				s.send(fmt.Sprintf("WATCHDOG_USEC=%d\nWATCHDOG=1", s.watchdog.Microseconds()))
				s.lastPing = s.now()
			}
		})
	}
}

// alive sends WATCHDOG=1 if half the watchdog interval has passed since the
// last one.
func (s *systemdEvents) alive() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.pingLocked()
}

func (s *systemdEvents) pingLocked() {
	if s.fd < 0 || s.watchdog <= 0 {
		return
	}
	now := s.now()
	if !s.lastPing.IsZero() && now.Sub(s.lastPing) < s.watchdog/2 {
		return
	}
	s.lastPing = now
	s.send("WATCHDOG=1")
}

// send writes one notify message without ever blocking: the socket is
// non-blocking and MSG_DONTWAIT is set, so a full queue (systemd busy or
// hung) is EAGAIN, not a wait. The first failure is logged; later ones are
// only counted, so a probe every 100 ms cannot flood the journal.
func (s *systemdEvents) send(msg string) {
	if s.fd < 0 {
		return
	}
	err := syscall.Sendto(s.fd, []byte(msg), syscall.MSG_DONTWAIT|syscall.MSG_NOSIGNAL, s.addr)
	if err == nil {
		return
	}
	s.failed++
	if !s.logged {
		s.logged = true
		args := []any{"socket", s.addr.Name, "message", strings.SplitN(msg, "\n", 2)[0], "err", err}
		if errors.Is(err, syscall.EAGAIN) {
			args = append(args, "hint", "systemd is not reading its notify socket; the message was dropped")
		}
		s.log.Warn("systemd: cannot notify; further failures are not logged", args...)
	}
}

// failures is how many notify messages could not be sent.
func (s *systemdEvents) failures() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.failed
}
