package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io/fs"
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

// runCommand runs argv with stdin from /dev/null (an interactive prompt must
// never hang a takeover), in its own process group (so a timeout kills the
// children a script started, too), with combined output captured. The error
// names the command, says whether it timed out, and carries the output.
func runCommand(ctx context.Context, timeout time.Duration, argv []string) (string, error) {
	if len(argv) == 0 {
		return "", errors.New("empty command")
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, argv[0], argv[1:]...)
	cmd.Stdin = nil // /dev/null
	var out tailBuffer
	cmd.Stdout, cmd.Stderr = &out, &out
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }
	cmd.WaitDelay = commandKillGrace
	err := cmd.Run()
	text := strings.TrimSpace(out.String())
	if err == nil {
		return text, nil
	}
	if errors.Is(err, exec.ErrNotFound) || errors.Is(err, fs.ErrNotExist) {
		return text, fmt.Errorf("%q: %w", argv[0], errNotFound)
	}
	if ctx.Err() == context.DeadlineExceeded {
		err = fmt.Errorf("timed out after %s and was killed", timeout)
	}
	if text != "" {
		return text, fmt.Errorf("%s: %w; output: %s", strings.Join(argv, " "), err, text)
	}
	return text, fmt.Errorf("%s: %w (no output)", strings.Join(argv, " "), err)
}

// tailBuffer keeps the last commandOutputLimit bytes written to it.
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
