package main

import (
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"
)

// obsHookScript appends "start CAUSE OLD NEW" and "end CAUSE" to the file
// given as its first argument, with the reason and its other arguments in
// between, sleeping its second argument between the two. A cause starting
// with "hang" sleeps 30 s, with "fail" exits 3 after writing to stderr.
const obsHookScript = `#!/bin/sh
log=$1 nap=$2 old=$3 new=$4 cause=$5
echo "start $cause $old $new" >> "$log"
case "$cause" in
hang*) sleep 30 ;;
fail*) echo "boom on stderr" >&2; echo "end $cause" >> "$log"; exit 3 ;;
esac
sleep "$nap"
echo "reason $cause $FLIP_NOTIFY_REASON" >> "$log"
echo "time $cause $FLIP_NOTIFY_TIME" >> "$log"
echo "ok $cause $FLIP_NOTIFY_OK" >> "$log"
echo "revision $cause ${FLIP_REVISION:-none}" >> "$log"
echo "end $cause" >> "$log"
`

// obsHook writes the hook into a temp dir and returns FLIP_NOTIFY_CMD for
// it and the file it writes.
func obsHook(t *testing.T, nap time.Duration) (cmd, logFile string) {
	t.Helper()
	dir := t.TempDir()
	script := filepath.Join(dir, "hook.sh")
	if err := os.WriteFile(script, []byte(obsHookScript), 0o755); err != nil {
		t.Fatal(err)
	}
	logFile = filepath.Join(dir, "calls")
	return fmt.Sprintf("%s %s %.3f", script, logFile, nap.Seconds()), logFile
}

// obsLog is a slog logger into a buffer that tests read while the worker
// writes.
type obsLog struct{ ftSyncBuffer }

func (l *obsLog) logger() *slog.Logger { return slog.New(slog.NewTextHandler(l, nil)) }

// obsLines reads the hook's file.
func obsLines(t *testing.T, file string) []string {
	t.Helper()
	b, err := os.ReadFile(file)
	if os.IsNotExist(err) {
		return nil
	}
	if err != nil {
		t.Fatal(err)
	}
	return strings.Split(strings.TrimSpace(string(b)), "\n")
}

// obsWaitFor polls until the file has the line, or fails.
func obsWaitFor(t *testing.T, file, line string, within time.Duration) []string {
	t.Helper()
	deadline := time.Now().Add(within)
	for {
		lines := obsLines(t, file)
		for _, l := range lines {
			if l == line {
				return lines
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("no line %q within %s; file:\n%s", line, within, strings.Join(lines, "\n"))
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// obsRuns is the start/end sequence of the hook file, checking that runs
// never overlap: every start is followed by its own end before the next
// start. A "hang" hook is killed at its timeout and never writes its end.
// It returns the causes in the order they ran.
func obsRuns(t *testing.T, lines []string) []string {
	t.Helper()
	var order []string
	running := ""
	for _, l := range lines {
		f := strings.Fields(l)
		switch f[0] {
		case "start":
			if running != "" && !strings.HasPrefix(running, "hang") {
				t.Fatalf("hook %s started while %s was running:\n%s", f[1], running, strings.Join(lines, "\n"))
			}
			running = f[1]
			order = append(order, f[1])
		case "end":
			if running != f[1] {
				t.Fatalf("end of %s while %q was running:\n%s", f[1], running, strings.Join(lines, "\n"))
			}
			running = ""
		}
	}
	return order
}

// obsChange is the n-th of alternating role changes.
func obsChange(n int) (from, to role) {
	if n%2 == 1 {
		return rolePassive, roleActive
	}
	return roleActive, rolePassive
}

func TestNotifierRunsInOrderOneAtATime(t *testing.T) {
	cmd, file := obsHook(t, 100*time.Millisecond)
	var log obsLog
	n := newNotifier(cmd, 5*time.Second, log.logger())
	defer n.Close()
	const count = 5
	for i := 1; i <= count; i++ {
		from, to := obsChange(i)
		start := time.Now()
		n.Transition(from, to, fmt.Sprintf("c%d", i), fmt.Sprintf("reason number %d", i), true, time.Millisecond)
		// A bound, not a benchmark: the hooks sleep 100 ms each, so a
		// Transition that waited for one would take at least that.
		if d := time.Since(start); d > 50*time.Millisecond {
			t.Fatalf("Transition %d took %s while a hook was running", i, d)
		}
	}
	lines := obsWaitFor(t, file, fmt.Sprintf("end c%d", count), 10*time.Second)
	order := obsRuns(t, lines)
	if got, want := strings.Join(order, " "), "c1 c2 c3 c4 c5"; got != want {
		t.Fatalf("hooks ran in order %q, want %q", got, want)
	}
	for i := 1; i <= count; i++ {
		from, to := obsChange(i)
		for _, want := range []string{
			fmt.Sprintf("start c%d %s %s", i, from, to),
			fmt.Sprintf("reason c%d reason number %d", i, i),
		} {
			if !strings.Contains(strings.Join(lines, "\n"), want) {
				t.Errorf("%q missing:\n%s", want, strings.Join(lines, "\n"))
			}
		}
	}
	// FLIP_NOTIFY_TIME is the time of the change, RFC 3339.
	for _, l := range lines {
		if f := strings.Fields(l); f[0] == "time" {
			if len(f) != 3 {
				t.Fatalf("no FLIP_NOTIFY_TIME: %q", l)
			}
			if _, err := time.Parse(time.RFC3339Nano, f[2]); err != nil {
				t.Fatalf("FLIP_NOTIFY_TIME %q: %v", f[2], err)
			}
		}
	}
	if !strings.Contains(log.String(), "notify hook done") {
		t.Errorf("successful runs not logged:\n%s", log.String())
	}
}

// A failing or hanging hook is logged and the next one still runs.
func TestNotifierFailingHooks(t *testing.T) {
	tests := []struct {
		name    string
		timeout time.Duration
		first   string   // cause of the first change, picks the behaviour
		logged  []string // in the log of the first run
		maxTime time.Duration
	}{
		{
			name:    "exit 3",
			timeout: 5 * time.Second,
			first:   "fail",
			logged:  []string{"notify hook failed", "exit_code=3", "boom on stderr", "hook.sh", "exit status 3"},
			maxTime: 5 * time.Second,
		},
		{
			name:    "hangs past the timeout",
			timeout: 300 * time.Millisecond,
			first:   "hang",
			logged:  []string{"notify hook failed", "timed_out=true", "timed out after 300ms", "hook.sh"},
			// Killed at 300 ms, not after its 30 s sleep.
			maxTime: 5 * time.Second,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cmd, file := obsHook(t, 10*time.Millisecond)
			var log obsLog
			n := newNotifier(cmd, tt.timeout, log.logger())
			defer n.Close()
			start := time.Now()
			n.Transition(rolePassive, roleActive, tt.first, "first", true, 0)
			n.Transition(roleActive, rolePassive, "next", "second", true, 0)
			lines := obsWaitFor(t, file, "end next", tt.maxTime)
			if d := time.Since(start); d > tt.maxTime {
				t.Fatalf("took %s", d)
			} else if tt.first == "hang" && d < tt.timeout {
				t.Fatalf("the next hook ended %s after the changes: it did not wait for the hanging one to be killed at %s", d, tt.timeout)
			}
			if got := strings.Join(obsRuns(t, lines), " "); !strings.HasPrefix(got, tt.first) || !strings.HasSuffix(got, "next") {
				t.Fatalf("runs %q", got)
			}
			// The log line is written after the run ends, which may be
			// after the next hook started.
			deadline := time.Now().Add(5 * time.Second)
			for {
				out := log.String()
				missing := ""
				for _, want := range tt.logged {
					if !strings.Contains(out, want) {
						missing = want
					}
				}
				if missing == "" {
					break
				}
				if time.Now().After(deadline) {
					t.Fatalf("%q missing from the log:\n%s", missing, out)
				}
				time.Sleep(10 * time.Millisecond)
			}
		})
	}
}

func TestNotifierMissingCommand(t *testing.T) {
	var log obsLog
	n := newNotifier(filepath.Join(t.TempDir(), "no-such-hook")+" --flag", time.Second, log.logger())
	n.Transition(rolePassive, roleActive, causeServiceSilent, "r", true, 0)
	n.Close()
	if out := log.String(); !strings.Contains(out, "notify hook failed") || !strings.Contains(out, "command not found") {
		t.Fatalf("log:\n%s", out)
	}
}

// Role changes run the hook, and so does an aborted takeover (passive to
// passive, ok false: FLIP_NOTIFY_OK=false); not Started, not a "change" to
// the same role that went well, not the other events.
func TestNotifierOnlyRoleChanges(t *testing.T) {
	cmd, file := obsHook(t, 0)
	n := newNotifier(cmd, 5*time.Second, nil)
	var e events = n
	e.Started(roleActive, 1)
	e.Probed(obsMissed(0))
	e.Phase("start", "asterisk", time.Second, nil)
	e.Conflict(obsConfig().VIPs[0].Addr, obsHolder)
	e.Fenced(nil, time.Second)
	e.Transition(rolePassive, rolePassive, causeTakeoverFailed, "aborted", false, time.Second)
	e.Transition(roleActive, roleActive, "x", "not a change", true, 0)
	e.Transition(rolePassive, roleActive, causeServiceSilent, "real", true, time.Second)
	e.Stopping()
	n.Close()
	lines := obsLines(t, file)
	if got, want := strings.Join(obsRuns(t, lines), " "), causeTakeoverFailed+" "+causeServiceSilent; got != want {
		t.Fatalf("hook ran for %q, want %q", got, want)
	}
	okLines := strings.Join(lines, "\n")
	if !strings.Contains(okLines, "ok "+causeTakeoverFailed+" false") || !strings.Contains(okLines, "ok "+causeServiceSilent+" true") {
		t.Fatalf("FLIP_NOTIFY_OK not as expected:\n%s", okLines)
	}
}

// With a full queue the oldest waiting change is dropped and reported;
// Transition still never blocks, and the newest change always runs.
func TestNotifierQueueFull(t *testing.T) {
	cmd, file := obsHook(t, 150*time.Millisecond)
	var log obsLog
	n := newNotifier(cmd, 5*time.Second, log.logger())
	n.max = 3
	const count = 10
	for i := 1; i <= count; i++ {
		from, to := obsChange(i)
		start := time.Now()
		n.Transition(from, to, fmt.Sprintf("c%d", i), "r", true, 0)
		if d := time.Since(start); d > 50*time.Millisecond {
			t.Fatalf("Transition %d took %s with a full queue", i, d)
		}
	}
	obsWaitFor(t, file, fmt.Sprintf("end c%d", count), 10*time.Second)
	n.Close()
	order := obsRuns(t, obsLines(t, file))
	last := 0
	for _, c := range order {
		i, _ := strconv.Atoi(strings.TrimPrefix(c, "c"))
		if i <= last {
			t.Fatalf("out of order: %v", order)
		}
		last = i
	}
	if last != count {
		t.Fatalf("the newest change did not run: %v", order)
	}
	dropped := 0
	for _, m := range regexp.MustCompile(`dropped=(\d+)`).FindAllStringSubmatch(log.String(), -1) {
		d, _ := strconv.Atoi(m[1])
		dropped += d
	}
	if dropped == 0 || dropped+len(order) != count {
		t.Fatalf("ran %d (%v), reported %d dropped; want %d in all and some dropped\n%s", len(order), order, dropped, count, log.String())
	}
	if !strings.Contains(log.String(), "notify queue full") {
		t.Fatalf("drop not logged as such:\n%s", log.String())
	}
}

func TestNotifierClose(t *testing.T) {
	t.Run("waits for the queued hooks", func(t *testing.T) {
		cmd, file := obsHook(t, 100*time.Millisecond)
		n := newNotifier(cmd, 5*time.Second, nil)
		n.Transition(rolePassive, roleActive, "c1", "r", true, 0)
		n.Transition(roleActive, rolePassive, "c2", "r", true, 0)
		n.Close()
		if got := strings.Join(obsRuns(t, obsLines(t, file)), " "); got != "c1 c2" {
			t.Fatalf("after Close ran %q, want c1 c2", got)
		}
		// Ignored after Close, and Close again is harmless.
		n.Transition(rolePassive, roleActive, "c3", "r", true, 0)
		n.Close()
		time.Sleep(200 * time.Millisecond)
		if got := strings.Join(obsRuns(t, obsLines(t, file)), " "); got != "c1 c2" {
			t.Fatalf("ran %q after Close", got)
		}
	})
	t.Run("bounded by the timeout plus a second", func(t *testing.T) {
		cmd, file := obsHook(t, 0)
		var log obsLog
		timeout := 400 * time.Millisecond
		n := newNotifier(cmd, timeout, log.logger())
		for i := 1; i <= 5; i++ {
			from, to := obsChange(i)
			n.Transition(from, to, fmt.Sprintf("hang%d", i), "r", true, 0)
		}
		start := time.Now()
		n.Close()
		d := time.Since(start)
		// Five hanging hooks take 5 × 400 ms; Close gives up after
		// 400 ms + 1 s and kills the one running.
		if d > timeout+notifyCloseGrace+commandKillGrace || d < timeout+notifyCloseGrace-50*time.Millisecond {
			t.Fatalf("Close took %s, want about %s", d, timeout+notifyCloseGrace)
		}
		if !strings.Contains(log.String(), "still running at exit") || !strings.Contains(log.String(), "not_run=") {
			t.Fatalf("log:\n%s", log.String())
		}
		if n := len(obsRuns(t, obsLines(t, file))); n >= 5 {
			t.Fatalf("%d hooks ran; Close did not stop the queue", n)
		}
	})
}

func TestNotifierDisabled(t *testing.T) {
	for _, cmd := range []string{"", "   "} {
		n := newNotifier(cmd, time.Second, nil)
		if n == nil {
			t.Fatal("newNotifier returned nil: it must be safe to add to multiEvents")
		}
		ev := multiEvents{n}
		ev.Started(roleActive, 1)
		ev.Transition(rolePassive, roleActive, causeServiceSilent, "r", true, 0)
		ev.Stopping()
		n.Close()
	}
	var nilN *notifier
	nilN.Transition(rolePassive, roleActive, "x", "r", true, 0)
	nilN.Close()
}

// In a pool the hook gets the fencing token, the revision this box last
// won the election with, in FLIP_REVISION; a pair's hook gets none.
func TestNotifierRevision(t *testing.T) {
	cmd, file := obsHook(t, 0)
	n := newNotifier(cmd, 5*time.Second, nil)
	rev := int64(0)
	n.revision = func() int64 { return rev }
	n.Transition(rolePassive, roleActive, causeServiceSilent, "a pair", true, time.Second)
	rev = 42
	n.Transition(rolePassive, roleActive, causeLeaseWon, "won", true, time.Second)
	n.Close()
	got := strings.Join(obsLines(t, file), "\n")
	if !strings.Contains(got, "revision "+causeServiceSilent+" none") || !strings.Contains(got, "revision "+causeLeaseWon+" 42") {
		t.Fatalf("FLIP_REVISION not as expected:\n%s", got)
	}
}
