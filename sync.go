package main

import "time"

// Keeping the standby in step (issue 13). A standby whose /etc/asterisk,
// voicemail or AstDB is older than the active box's is not a standby:
// after a failover new extensions are missing. FLIP_SYNC_CMD (an rsync to
// the other box, say) is run by the active box once right after each
// takeover and then every FLIP_SYNC_INTERVAL (0: only after takeovers):
// never on a passive box (the direction follows the service), never while
// a drain runs, never two at once, each bounded by FLIP_SYNC_TIMEOUT. A
// takeover or release runs on the loop, so none starts meanwhile; one that
// is running when the box releases is killed, so a passive box never
// pushes. A failed sync is a warning, a metric and a line in the status,
// never a reason to move the service.
//
// The rules are here, pure; the agent runs the command (sync_run.go).

// syncState is what the machine knows of the standby sync.
type syncState struct {
	running    bool
	afterTake  bool      // a takeover completed: sync once as soon as allowed
	lastStart  time.Time // the last run started
	lastEnd    time.Time
	lastOK     time.Time // the last run that succeeded
	failsInRow int
}

// syncDue reports whether the active box should start a sync at now, and
// if not, when to ask again (zero: not before something changes).
// interval is FLIP_SYNC_INTERVAL; 0 syncs only after takeovers.
func (m *machine) syncDue(now time.Time, interval time.Duration) (bool, time.Time) {
	s := &m.sync
	if m.role != roleActive || s.running || m.drain.on {
		return false, time.Time{}
	}
	if s.afterTake {
		return true, time.Time{}
	}
	if interval <= 0 {
		return false, time.Time{}
	}
	next := s.lastStart.Add(interval)
	if !now.Before(next) {
		return true, time.Time{}
	}
	return false, next
}

// syncStarted records that a sync started at now.
func (m *machine) syncStarted(now time.Time) {
	m.sync.running, m.sync.afterTake, m.sync.lastStart = true, false, now
}

// syncEnded records how a sync ended at now.
func (m *machine) syncEnded(now time.Time, ok bool) {
	s := &m.sync
	s.running, s.lastEnd = false, now
	if ok {
		s.lastOK, s.failsInRow = now, 0
		return
	}
	s.failsInRow++
}

// syncRoleChange: a takeover asks for a sync as soon as it is done; any
// role change ends the run under way (the agent kills it).
func (m *machine) syncRoleChange(r role) {
	m.sync.afterTake = r == roleActive
	m.sync.running = false
}
