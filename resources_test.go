package main

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// ftArgsScript writes a script that prints its arguments one per line
// between brackets and exits with code.
func ftArgsScript(t *testing.T, code int) string {
	t.Helper()
	return ftExecutable(t, `for a in "$@"; do printf '[%s]\n' "$a"; done
exit `+strconv.Itoa(code))
}

func TestServiceResourceArgv(t *testing.T) {
	tests := []struct {
		name     string
		template string
		service  string
		action   string
		want     []string
	}{
		{
			name:     "default template",
			template: "systemctl {action} {name}",
			service:  "asterisk",
			action:   "start",
			want:     []string{"systemctl", "start", "asterisk"},
		},
		{
			name:     "name before action, extra blanks",
			template: "  /usr/sbin/service   {name}\t{action} ",
			service:  "asterisk",
			action:   "status",
			want:     []string{"/usr/sbin/service", "asterisk", "status"},
		},
		{
			name:     "placeholders inside a word",
			template: "/etc/init.d/{name} {action} --unit={name}.service",
			service:  "asterisk",
			action:   "stop",
			want:     []string{"/etc/init.d/asterisk", "stop", "--unit=asterisk.service"},
		},
		{
			// The template is never given to a shell: whatever the name
			// holds stays one argument.
			name:     "name with blanks and shell characters stays one argument",
			template: "systemctl {action} {name}",
			service:  "a b;reboot $(id)",
			action:   "start",
			want:     []string{"systemctl", "start", "a b;reboot $(id)"},
		},
		{
			name:     "a name holding {action} is not expanded again",
			template: "systemctl {action} {name}",
			service:  "{action}",
			action:   "start",
			want:     []string{"systemctl", "start", "{action}"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := newServiceResource(tt.template, tt.service, time.Second)
			if got := r.argv(tt.action); !reflect.DeepEqual(got, tt.want) {
				t.Fatalf("argv(%q) = %q, want %q", tt.action, got, tt.want)
			}
			if r.Name() != tt.service {
				t.Errorf("Name() = %q, want %q", r.Name(), tt.service)
			}
		})
	}
}

// TestServiceResourceRuns runs real commands through the resource: every
// action reaches the program with {action} and {name} expanded, and no
// shell ever sees the name.
func TestServiceResourceRuns(t *testing.T) {
	ok := ftArgsScript(t, 0)
	failing := ftArgsScript(t, 3)
	marker := filepath.Join(t.TempDir(), "injected")
	tests := []struct {
		name     string
		template string
		service  string
		action   string
		wantErr  []string // substrings of the error; nil for success
	}{
		{name: "echo start", template: "/bin/echo {action} {name}", service: "asterisk", action: "start"},
		{name: "echo stop", template: "/bin/echo {action} {name}", service: "asterisk", action: "stop"},
		{name: "echo status", template: "/bin/echo {action} {name}", service: "asterisk", action: "status"},
		{name: "script ok", template: ok + " {action} {name}", service: "asterisk", action: "start"},
		{
			name:     "false start",
			template: "/bin/false {action}",
			service:  "asterisk",
			action:   "start",
			wantErr:  []string{"asterisk start: ", "/bin/false: ", "exit status 1"},
		},
		{
			name:     "false stop",
			template: "/bin/false {action}",
			service:  "asterisk",
			action:   "stop",
			wantErr:  []string{"asterisk stop: ", "/bin/false: "},
		},
		{
			name:     "false status",
			template: "/bin/false {action}",
			service:  "asterisk",
			action:   "status",
			wantErr:  []string{"asterisk status: ", "/bin/false: "},
		},
		{
			name:     "failure carries the command output",
			template: failing + " {action} {name}",
			service:  "asterisk",
			action:   "start",
			wantErr:  []string{"asterisk start: ", "exit status 3", "[start]", "[asterisk]"},
		},
		{
			name:     "shell characters in the name are not run",
			template: failing + " {action} {name}",
			service:  "x;touch " + marker + ";$(touch " + marker + ")",
			action:   "start",
			wantErr:  []string{"[x;touch " + marker + ";$(touch " + marker + ")]"},
		},
		{
			name:     "missing program",
			template: "flip-test-no-such-program {action} {name}",
			service:  "asterisk",
			action:   "start",
			wantErr:  []string{"asterisk start: ", "flip-test-no-such-program"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := newServiceResource(tt.template, tt.service, 10*time.Second)
			var err error
			switch tt.action {
			case "start":
				err = r.Start(context.Background())
			case "stop":
				err = r.Stop(context.Background())
			case "status":
				err = r.Check(context.Background())
			}
			if tt.wantErr == nil {
				if err != nil {
					t.Fatalf("%s: %v", tt.action, err)
				}
				return
			}
			if err == nil {
				t.Fatalf("%s succeeded, want an error", tt.action)
			}
			for _, s := range tt.wantErr {
				if !strings.Contains(err.Error(), s) {
					t.Errorf("error %q does not contain %q", err, s)
				}
			}
			if _, statErr := os.Stat(marker); statErr == nil {
				t.Fatal("the service name was run by a shell")
			}
		})
	}
}

func TestExecResource(t *testing.T) {
	script := ftArgsScript(t, 0)
	failing := ftArgsScript(t, 2)
	r := newExecResource(script, 10*time.Second)
	if want := "exec:" + script; r.Name() != want {
		t.Errorf("Name() = %q, want %q", r.Name(), want)
	}
	for _, action := range []string{"start", "stop", "status"} {
		if got, want := r.argv(action), []string{script, action}; !reflect.DeepEqual(got, want) {
			t.Errorf("argv(%q) = %q, want %q", action, got, want)
		}
	}
	ctx := context.Background()
	for name, f := range map[string]func(context.Context) error{"start": r.Start, "stop": r.Stop, "status": r.Check} {
		if err := f(ctx); err != nil {
			t.Errorf("%s: %v", name, err)
		}
	}
	err := newExecResource(failing, 10*time.Second).Stop(ctx)
	if err == nil {
		t.Fatal("stop of a failing script succeeded")
	}
	for _, s := range []string{"exec:" + failing + " stop: ", "exit status 2", "[stop]"} {
		if !strings.Contains(err.Error(), s) {
			t.Errorf("error %q does not contain %q", err, s)
		}
	}
}

// ftGone says whether pid has exited; a zombie counts, since an orphan is
// reaped by whatever init the test runs under, maybe never.
func ftGone(pid int) bool {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return true
	}
	i := bytes.LastIndexByte(b, ')')
	return i < 0 || i+2 >= len(b) || b[i+2] == 'Z' || b[i+2] == 'X'
}

func TestRunCommandTimeoutKillsProcessGroup(t *testing.T) {
	pidFile := filepath.Join(t.TempDir(), "child.pid")
	const timeout = 300 * time.Millisecond
	start := time.Now()
	// The background sleep keeps the output pipe open: without a process
	// group kill the command would hang on it (or on WaitDelay).
	out, err := runCommand(context.Background(), timeout,
		[]string{"sh", "-c", "sleep 30 & echo $! > " + pidFile + "; echo started; sleep 30"})
	elapsed := time.Since(start)
	if elapsed >= 10*time.Second {
		t.Fatalf("runCommand returned after %s, want well under the commands' 30 s", elapsed)
	}
	if elapsed < timeout {
		t.Errorf("runCommand returned after %s, before its %s timeout", elapsed, timeout)
	}
	if err == nil {
		t.Fatal("runCommand succeeded, want a timeout")
	}
	if !strings.Contains(err.Error(), "timed out after "+timeout.String()) {
		t.Errorf("error %q does not say it timed out", err)
	}
	if !strings.Contains(err.Error(), "started") || out != "started" {
		t.Errorf("output %q / error %q: want the output before the kill", out, err)
	}
	b, rerr := os.ReadFile(pidFile)
	if rerr != nil {
		t.Fatalf("read child pid: %v", rerr)
	}
	child, rerr := strconv.Atoi(strings.TrimSpace(string(b)))
	if rerr != nil {
		t.Fatalf("child pid %q: %v", b, rerr)
	}
	deadline := time.Now().Add(5 * time.Second)
	for !ftGone(child) {
		if time.Now().After(deadline) {
			syscall.Kill(child, syscall.SIGKILL)
			t.Fatalf("background child %d survived the timeout: the process group was not killed", child)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func TestRunCommandParentCancel(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	time.AfterFunc(100*time.Millisecond, cancel)
	start := time.Now()
	_, err := runCommand(ctx, time.Minute, []string{"sh", "-c", "sleep 30 & sleep 30"})
	if elapsed := time.Since(start); elapsed >= 10*time.Second {
		t.Fatalf("runCommand returned %s after its context was cancelled", elapsed)
	}
	if err == nil {
		t.Fatal("runCommand succeeded after its context was cancelled")
	}
}

func TestRunCommandStdinIsDevNull(t *testing.T) {
	// If the command inherited the test's stdin it would block on this
	// pipe until the timeout.
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	oldStdin := os.Stdin
	os.Stdin = r
	t.Cleanup(func() {
		os.Stdin = oldStdin
		w.Close()
		r.Close()
	})

	tests := []struct {
		name string
		argv []string
		want string
	}{
		{name: "read gets end of file", argv: []string{"sh", "-c", "read x; echo got:$x"}, want: "got:"},
		{name: "fd 0 is /dev/null", argv: []string{"readlink", "/proc/self/fd/0"}, want: "/dev/null"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			start := time.Now()
			out, err := runCommand(context.Background(), 10*time.Second, tt.argv)
			if elapsed := time.Since(start); elapsed >= 5*time.Second {
				t.Fatalf("runCommand took %s: it waited on stdin", elapsed)
			}
			if err != nil {
				t.Fatalf("runCommand: %v", err)
			}
			if out != tt.want {
				t.Fatalf("output %q, want %q", out, tt.want)
			}
		})
	}
}

func TestRunCommandOutput(t *testing.T) {
	tests := []struct {
		name    string
		argv    []string
		wantOut string
		wantErr []string // substrings; nil for success
	}{
		{
			name:    "success returns trimmed combined output",
			argv:    []string{"sh", "-c", "echo out; echo err >&2"},
			wantOut: "out\nerr",
		},
		{
			name:    "failure carries stderr",
			argv:    []string{"sh", "-c", "echo boom >&2; exit 3"},
			wantOut: "boom",
			wantErr: []string{"sh: ", "exit status 3", "output: boom"},
		},
		{
			name:    "failure without output says so",
			argv:    []string{"sh", "-c", "exit 4"},
			wantErr: []string{"exit status 4", "(no output)"},
		},
		{
			name:    "empty command",
			argv:    nil,
			wantErr: []string{"empty command"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			out, err := runCommand(context.Background(), 10*time.Second, tt.argv)
			if out != tt.wantOut {
				t.Errorf("output %q, want %q", out, tt.wantOut)
			}
			if tt.wantErr == nil {
				if err != nil {
					t.Fatalf("runCommand: %v", err)
				}
				return
			}
			if err == nil {
				t.Fatal("runCommand succeeded, want an error")
			}
			for _, s := range tt.wantErr {
				if !strings.Contains(err.Error(), s) {
					t.Errorf("error %q does not contain %q", err, s)
				}
			}
		})
	}
}

// A chatty failing command keeps only the tail of its output: enough for the
// log, not a flood.
func TestRunCommandOutputLimit(t *testing.T) {
	out, err := runCommand(context.Background(), 10*time.Second,
		[]string{"sh", "-c", "i=0; while [ $i -lt 2000 ]; do echo line$i; i=$((i+1)); done; echo LAST; exit 1"})
	if err == nil {
		t.Fatal("runCommand succeeded, want exit status 1")
	}
	if len(out) > commandOutputLimit {
		t.Errorf("kept %d bytes of output, want at most %d", len(out), commandOutputLimit)
	}
	if !strings.HasSuffix(out, "LAST") || !strings.HasSuffix(err.Error(), "LAST") {
		t.Errorf("the tail of the output was not kept: %q", out[max(0, len(out)-40):])
	}
	if strings.Contains(out, "line0\n") {
		t.Error("the head of the output was kept instead of the tail")
	}
}

func TestRunCommandNotFound(t *testing.T) {
	_, err := runCommand(context.Background(), 10*time.Second, []string{"flip-test-no-such-program", "start"})
	if !errors.Is(err, errNotFound) {
		t.Fatalf("error %v is not errNotFound", err)
	}
	if !strings.Contains(err.Error(), "flip-test-no-such-program") {
		t.Errorf("error %q does not name the command", err)
	}
	// Through a resource, errNotFound survives the wrapping.
	err = newServiceResource("flip-test-no-such-program {action} {name}", "asterisk", time.Second).Start(context.Background())
	if !errors.Is(err, errNotFound) {
		t.Fatalf("resource error %v is not errNotFound", err)
	}
}

// TestRunCommandAbsolutePathNotFound: a missing program given by absolute
// path (FLIP_SERVICE_CMD="/usr/sbin/service {name} {action}" on a box
// without it, or a deleted exec: script) is not reported as errNotFound:
// exec only wraps exec.ErrNotFound for a PATH lookup; an absolute path fails
// in fork/exec with ENOENT (fs.ErrNotExist).
func TestRunCommandAbsolutePathNotFound(t *testing.T) {
	_, err := runCommand(context.Background(), 10*time.Second, []string{"/nonexistent/flip-test/service", "start"})
	if err == nil {
		t.Fatal("runCommand succeeded")
	}
	if !errors.Is(err, errNotFound) {
		t.Errorf("error %q is not errNotFound", err)
	}
}

// TestRunCommandKeepsArgumentsSecret: issue 12, item 4. A failing command's
// error names the program, its exit status and output, never its
// arguments (a fence's password).
func TestRunCommandKeepsArgumentsSecret(t *testing.T) {
	_, err := runCommand(context.Background(), 5*time.Second, []string{"sh", "-c", "exit 1", "fence_ipmilan", "-p", "s3cret-passw0rd"})
	if err == nil {
		t.Fatal("runCommand succeeded, want exit status 1")
	}
	if strings.Contains(err.Error(), "s3cret") || !strings.Contains(err.Error(), "sh: exit status 1") {
		t.Fatalf("error %q: want the program and exit status, not the arguments", err)
	}
}
