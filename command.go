package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"time"
)

// commandOutputLimit bounds how much of a command's output is kept for the
// log: enough for an error message, not enough to flood the journal.
const commandOutputLimit = 4096

// commandKillGrace is how long a command has to exit after its process group
// got SIGKILL before Wait gives up on its pipes.
const commandKillGrace = 2 * time.Second

// commandRun is the outcome of one external command.
type commandRun struct {
	Output   string // the last commandOutputLimit bytes of stdout+stderr
	Code     int    // exit code; -1 when it did not exit by itself
	TimedOut bool   // killed (with its process group) at the timeout
	Err      error  // nil on success
	Duration time.Duration
}

// execCommand runs argv with stdin from /dev/null (an interactive prompt
// must never hang a takeover), in its own process group (so a timeout kills
// the children a script started, too), with combined output captured.
func execCommand(ctx context.Context, timeout time.Duration, argv []string) commandRun {
	return execCommandEnv(ctx, timeout, argv, nil)
}

// execCommandEnv is execCommand with extra environment variables (NAME=value)
// on top of flip's own, for hooks that get their arguments that way.
func execCommandEnv(ctx context.Context, timeout time.Duration, argv, env []string) commandRun {
	if len(argv) == 0 {
		return commandRun{Code: -1, Err: errors.New("empty command")}
	}
	runCtx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	cmd := exec.CommandContext(runCtx, argv[0], argv[1:]...)
	cmd.Stdin = nil // /dev/null
	if len(env) > 0 {
		cmd.Env = append(os.Environ(), env...)
	}
	var out tailBuffer
	cmd.Stdout, cmd.Stderr = &out, &out
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }
	cmd.WaitDelay = commandKillGrace
	start := time.Now()
	err := cmd.Run()
	r := commandRun{Output: strings.TrimSpace(out.String()), Code: -1, Duration: time.Since(start)}
	if cmd.ProcessState != nil && cmd.ProcessState.Exited() {
		r.Code = cmd.ProcessState.ExitCode()
	}
	switch {
	case err == nil, errors.Is(err, exec.ErrWaitDelay) && r.Code == 0:
		// ErrWaitDelay after a clean exit: a straggler kept the pipes
		// open, but the command itself did its job.
		return r
	case errors.Is(err, exec.ErrNotFound), errors.Is(err, fs.ErrNotExist):
		r.Err = fmt.Errorf("%q: %w", argv[0], errNotFound)
	case runCtx.Err() == context.DeadlineExceeded && ctx.Err() == nil:
		r.TimedOut = true
		r.Err = fmt.Errorf("timed out after %s and was killed with its process group", timeout)
	case ctx.Err() != nil:
		r.Err = fmt.Errorf("cancelled and killed: %w", ctx.Err())
	default:
		r.Err = err
	}
	return r
}

// runCommand runs argv like execCommand and folds the outcome into one error
// that names the command and carries its exit status and output — never its
// arguments: `fence_ipmilan ... -p secret` must not reach the log, the
// control socket's reply or the unauthenticated GET /status.
func runCommand(ctx context.Context, timeout time.Duration, argv []string) (string, error) {
	return runCommandEnv(ctx, timeout, argv, nil)
}

// runCommandEnv is runCommand with extra environment variables.
func runCommandEnv(ctx context.Context, timeout time.Duration, argv, env []string) (string, error) {
	r := execCommandEnv(ctx, timeout, argv, env)
	if r.Err == nil {
		return r.Output, nil
	}
	if errors.Is(r.Err, errNotFound) {
		return r.Output, r.Err
	}
	if r.Output != "" {
		return r.Output, fmt.Errorf("%s: %w; output: %s", commandName(argv), r.Err, r.Output)
	}
	return r.Output, fmt.Errorf("%s: %w (no output)", commandName(argv), r.Err)
}

// commandName is what flip says of a command: its program, not its
// arguments (they may hold a password).
func commandName(argv []string) string {
	if len(argv) == 0 {
		return "(empty command)"
	}
	return argv[0]
}

// tailBuffer keeps the last commandOutputLimit bytes written to it. exec
// calls Write from one goroutine when Stdout and Stderr are the same writer.
type tailBuffer struct{ b bytes.Buffer }

func (t *tailBuffer) Write(p []byte) (int, error) {
	n := len(p)
	t.b.Write(p)
	if over := t.b.Len() - commandOutputLimit; over > 0 {
		t.b.Next(over)
	}
	return n, nil
}

func (t *tailBuffer) String() string { return t.b.String() }
