package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"syscall"
	"time"
)

// journal records how far a takeover or a release got, so that an agent
// killed half-way (kill -9, the OOM killer) finishes the job when it starts
// again instead of leaving a half-held box, and never runs fonulator a
// second time when the first run had finished. It lives in /run (tmpfs): a
// reboot clears it, as it clears the VIPs.
type journal struct {
	path string
}

// journalStore keeps the journal: a file (journal) on a box, memory in
// the simulator.
type journalStore interface {
	load() (journalEntry, error)
	save(e journalEntry) error
}

// journalOp is what the box was doing or is.
type journalOp string

const (
	opTakeover journalOp = "takeover" // started, not finished
	opActive   journalOp = "active"   // takeover finished
	opRelease  journalOp = "release"  // started, not finished
	opPassive  journalOp = "passive"  // release finished, or never active
)

// journalEntry is the journal's content.
type journalEntry struct {
	Op    journalOp `json:"op"`
	Done  []string  `json:"done,omitempty"` // resources started (takeover) or stopped (release)
	Cause string    `json:"cause,omitempty"`
	At    time.Time `json:"at"`
	// The machine's memory that must outlive a restart of flip (not a
	// reboot: /run is cleared): a restarted flip must not take over during
	// a hold-down, nor ask for a failback its own failure ruled out.
	HoldDownUntil time.Time `json:"hold_down_until,omitzero"`
	FailbackOff   bool      `json:"failback_off,omitempty"`
	// ConflictOpen: active, in a conflict this box has not won; if it is
	// still active when the conflict ends, it points the foneBRIDGE back
	// (machine.noConflict), also after a restart in between.
	ConflictOpen bool `json:"conflict_open,omitempty"`
	// PointedAt: when this box last pointed the foneBRIDGE at itself, so a
	// restarted holder does not take the other box's older run for news.
	PointedAt time.Time `json:"pointed_at,omitzero"`
	// HoldUntil and HoldBy: a hold (maintenance mode) in force survives a
	// restart of flip on this box.
	HoldUntil time.Time `json:"hold_until,omitzero"`
	HoldBy    string    `json:"hold_by,omitempty"`
	// Lease: pool mode, the etcd lease this box won the election on, so a
	// restarted flip takes up its leadership instead of moving the VIPs.
	Lease int64 `json:"lease,omitempty"`
}

func (e journalEntry) done(name string) bool { return slices.Contains(e.Done, name) }

// load reads the journal; a missing one is an empty entry (Op "").
func (j *journal) load() (journalEntry, error) {
	var e journalEntry
	if j == nil || j.path == "" {
		return e, nil
	}
	b, err := os.ReadFile(j.path)
	if errors.Is(err, fs.ErrNotExist) {
		return e, nil
	}
	if err != nil {
		return e, fmt.Errorf("read state file %s: %w", j.path, err)
	}
	if err := json.Unmarshal(b, &e); err != nil {
		return journalEntry{}, fmt.Errorf("state file %s is damaged (%v); delete it to let flip inspect the box instead", j.path, err)
	}
	return e, nil
}

// save replaces the journal atomically.
func (j *journal) save(e journalEntry) error {
	if j == nil || j.path == "" {
		return nil
	}
	e.At = time.Now().UTC()
	b, err := json.Marshal(e)
	if err != nil {
		return err
	}
	if err := os.MkdirAll(filepath.Dir(j.path), 0o700); err != nil {
		return fmt.Errorf("state directory of %s: %w", j.path, err)
	}
	// Rename without fsync: it survives the death of the process, which is
	// what the journal is for, and a power loss clears /run anyway; an fsync
	// per phase would slow the takeover down on a busy disk.
	tmp := j.path + ".tmp"
	if err := os.WriteFile(tmp, append(b, '\n'), 0o600); err != nil {
		return fmt.Errorf("write state file %s: %w", tmp, err)
	}
	if err := os.Rename(tmp, j.path); err != nil {
		return fmt.Errorf("write state file %s: %w", j.path, err)
	}
	return nil
}

// crashPoint makes the agent kill itself with SIGKILL right after the named
// step (FLIP_DEBUG_CRASH_AFTER): the crash tests use it to stop flip after
// each phase exactly, which no outside kill -9 can time. Empty: never.
type crashPoint string

func (c crashPoint) after(step string) {
	if c != "" && string(c) == step {
		_ = syscall.Kill(os.Getpid(), syscall.SIGKILL)
		time.Sleep(time.Second) // the signal is on its way
	}
}
