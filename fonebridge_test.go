package main

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

var updateGolden = flag.Bool("update", false, "rewrite golden files in testdata")

// fonebridgeTestMAC is what the tests write into server=.
var fonebridgeTestMAC = net.HardwareAddr{0x02, 0xfc, 0x00, 0x00, 0x00, 0x02}

func TestRedfoneRenderGolden(t *testing.T) {
	inputs, err := filepath.Glob(filepath.Join("testdata", "redfone", "*.conf"))
	if err != nil {
		t.Fatal(err)
	}
	if len(inputs) == 0 {
		t.Fatal("no testdata/redfone/*.conf inputs")
	}
	for _, in := range inputs {
		t.Run(filepath.Base(in), func(t *testing.T) {
			src, err := os.ReadFile(in)
			if err != nil {
				t.Fatal(err)
			}
			got, err := renderRedfone(src, fonebridgeTestMAC)
			if err != nil {
				t.Fatalf("renderRedfone: %v", err)
			}
			golden := strings.TrimSuffix(in, ".conf") + ".golden"
			if *updateGolden {
				if err := os.WriteFile(golden, got, 0o644); err != nil {
					t.Fatal(err)
				}
			}
			want, err := os.ReadFile(golden)
			if err != nil {
				t.Fatalf("%v (run go test -run TestRedfoneRenderGolden -update to create it)", err)
			}
			if !bytes.Equal(got, want) {
				t.Fatalf("output differs from %s:\n--- got\n%s\n--- want\n%s", golden, got, want)
			}

			// Whatever the golden file says, only the server= line may differ.
			srcLines := strings.Split(string(src), "\n")
			gotLines := strings.Split(string(got), "\n")
			if len(srcLines) != len(gotLines) {
				t.Fatalf("line count changed: %d -> %d", len(srcLines), len(gotLines))
			}
			for i := range srcLines {
				if srcLines[i] == gotLines[i] {
					continue
				}
				if gotLines[i] != "server=02:fc:00:00:00:02" {
					t.Errorf("line %d changed: %q -> %q", i+1, srcLines[i], gotLines[i])
				}
			}
		})
	}
}

func TestRedfoneRenderInvalid(t *testing.T) {
	const head = "[globals]\nfb=10.0.0.5\nserver=00:11:22:33:44:55\n"
	tests := []struct {
		name string
		conf string
		line int
		want string
	}{
		{"CRLF", "[globals]\r\nfb=10.0.0.5\r\nserver=00:11:22:33:44:55\r\n", 1, "CRLF"},
		{"CRLF later", head + "[span1]\r\ncrc4\n", 4, "CRLF"},
		{"leading blank", head + "[span1]\n framing=ccs\n", 5, "leading blank"},
		{"leading tab", head + "\tport=1\n", 4, "leading blank"},
		{"trailing blank", "[globals]\nfb=10.0.0.5 \nserver=00:11:22:33:44:55\n", 2, "trailing blank"},
		{"blank-only line", head + "  \n", 4, "blank"},
		{"space before =", "[globals]\nfb =10.0.0.5\nserver=00:11:22:33:44:55\n", 2, "around '='"},
		{"space after =", head + "port= 1\n", 4, "around '='"},
		{"inline hash comment", head + "port=1 # primary\n", 4, "comment not in column 1"},
		{"inline hash no space", head + "port=1#primary\n", 4, "comment not in column 1"},
		{"semicolon comment", head + "; a comment\n", 4, "';' comment"},
		{"inline semicolon", head + "port=1;x\n", 4, "comment not in column 1"},
		{"globals not first", "[span1]\nframing=ccs\n[globals]\nfb=10.0.0.5\nserver=00:11:22:33:44:55\n", 1, "[globals] must be the first section"},
		{"no globals", "# only a comment\n[span1]\ncrc4\n", 1, "no [globals]"},
		{"empty file", "", 1, "no [globals]"},
		{"missing fb", "# x\n[globals]\nserver=00:11:22:33:44:55\n", 2, "no fb="},
		{"missing server", "[globals]\nfb=10.0.0.5\n[span1]\ncrc4\n", 1, "no server="},
		{"two servers", head + "server=00:11:22:33:44:66\n", 4, "second server= (first at line 3)"},
		{"server in span", "[globals]\nfb=10.0.0.5\n[span1]\nserver=00:11:22:33:44:55\n", 4, "only valid in a [globals] section"},
		{"two MACs", "[globals]\nfb=10.0.0.5\nserver=00:11:22:33:44:55,00:11:22:33:44:66\n", 3, "want exactly one MAC"},
		{"short MAC", "[globals]\nfb=10.0.0.5\nserver=00:11:22:33:44\n", 3, "want exactly one MAC"},
		{"mixed separators", "[globals]\nfb=10.0.0.5\nserver=00:11-22:33:44:55\n", 3, "want exactly one MAC"},
		{"dotted MAC", "[globals]\nfb=10.0.0.5\nserver=0011.2233.4455\n", 3, "want exactly one MAC"},
		{"empty server", "[globals]\nfb=10.0.0.5\nserver=\n", 3, "want exactly one MAC"},
		{"line outside section", "fb=10.0.0.5\n[globals]\nserver=00:11:22:33:44:55\n", 1, "outside any section"},
		{"unknown header", head + "[span10]\n", 4, "unknown section header"},
		{"header with blank", head + "[span 1]\n", 4, "unknown section header"},
		{"unclosed header", head + "[span1\n", 4, "unknown section header"},
		{"repeated span", head + "[span1]\ncrc4\n[span2]\n[span1]\n", 7, "repeated (first at line 4)"},
		{"span after dsp", head + "[dsp]\ndspdisabled\n[span1]\ncrc4\n", 6, "after [dsp]"},
		{"unknown directive", head + "[span1]\nframing=ccs\ncrc-4\n", 6, "unknown directive"},
		{"flag given a value", head + "[span1]\ncrc4=1\n", 5, "unknown directive"},
		{"bad port", head + "port=3\n", 4, "port= value \"3\""},
		{"bad framing", head + "[span1]\nframing=d4\n", 5, "framing= value"},
		{"framing in globals", head + "framing=ccs\n", 4, "only valid in a [span] section"},
		{"no final newline", head + "[span1]\ncrc4", 5, "no newline at the end"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := renderRedfone([]byte(tt.conf), fonebridgeTestMAC)
			if err == nil {
				t.Fatal("renderRedfone succeeded, want an error")
			}
			var re *redfoneError
			if !errors.As(err, &re) {
				t.Fatalf("error %v (%T) is no *redfoneError", err, err)
			}
			prefix := "redfone.conf line " + strconv.Itoa(tt.line) + ": "
			found := false
			for _, l := range strings.Split(err.Error(), "\n") {
				if strings.HasPrefix(l, prefix) && strings.Contains(l, tt.want) {
					found = true
				}
			}
			if !found {
				t.Fatalf("error does not say %q at line %d:\n%v", tt.want, tt.line, err)
			}
		})
	}
}

func TestRedfoneRenderReportsEveryProblem(t *testing.T) {
	conf := "[globals]\nfb =x\nserver=00:11:22:33:44:55\nport=1 \n"
	_, err := renderRedfone([]byte(conf), fonebridgeTestMAC)
	for _, want := range []string{"line 2: blank around '='", "line 4: trailing blank"} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("error %v does not contain %q", err, want)
		}
	}
}

func TestRedfoneRenderRejectsUnusableMAC(t *testing.T) {
	conf := []byte("[globals]\nfb=10.0.0.5\nserver=00:11:22:33:44:55\n")
	for _, mac := range []net.HardwareAddr{nil, {0, 0, 0, 0, 0, 0}, {1, 2, 3, 4, 5, 6, 7, 8}} {
		if _, err := renderRedfone(conf, mac); err == nil {
			t.Errorf("renderRedfone with MAC %q succeeded, want an error", mac.String())
		}
	}
}

func TestFoneBridgeWriteFileAtomic(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "redfone.conf")

	changed, err := writeFileAtomic(path, []byte("one\n"), 0o640)
	if err != nil || !changed {
		t.Fatalf("new file: changed=%v err=%v, want true, nil", changed, err)
	}
	fonebridgeAssertFile(t, path, "one\n", 0o640)

	// An existing file keeps its mode, whatever perm says.
	if err := os.Chmod(path, 0o604); err != nil {
		t.Fatal(err)
	}
	changed, err = writeFileAtomic(path, []byte("two\n"), 0o644)
	if err != nil || !changed {
		t.Fatalf("changed content: changed=%v err=%v, want true, nil", changed, err)
	}
	fonebridgeAssertFile(t, path, "two\n", 0o604)

	// Identical content is not rewritten: the inode stays the same.
	before, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	changed, err = writeFileAtomic(path, []byte("two\n"), 0o644)
	if err != nil || changed {
		t.Fatalf("same content: changed=%v err=%v, want false, nil", changed, err)
	}
	after, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if !os.SameFile(before, after) {
		t.Error("identical content was rewritten (new inode)")
	}

	// A symlink is followed: the link stays, its target gets the content.
	link := filepath.Join(dir, "link.conf")
	if err := os.Symlink("redfone.conf", link); err != nil {
		t.Fatal(err)
	}
	if _, err := writeFileAtomic(link, []byte("three\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if st, err := os.Lstat(link); err != nil || st.Mode()&os.ModeSymlink == 0 {
		t.Errorf("symlink replaced: %v, %v", st, err)
	}
	fonebridgeAssertFile(t, path, "three\n", 0o604)

	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	if len(entries) != 2 {
		t.Errorf("temporary files left behind: %v", entries)
	}
}

func fonebridgeAssertFile(t *testing.T, path, content string, mode os.FileMode) {
	t.Helper()
	got, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if string(got) != content {
		t.Errorf("%s holds %q, want %q", path, got, content)
	}
	st, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if st.Mode().Perm() != mode {
		t.Errorf("%s has mode %v, want %v", path, st.Mode().Perm(), mode)
	}
}

// fonebridgeTestConf is a valid config pointing at some other box.
const fonebridgeTestConf = "[globals]\nfb=192.0.2.222\nport=1\nserver=00:11:22:33:44:55\n\n[span1]\nframing=ccs\nencoding=hdb3\n"

// fonebridgeSetup returns a foneBridge wired to a copy of the stand-in
// fonulator (copied so it is executable however the checkout kept its mode),
// a redfone.conf holding conf, and the stand-in's log path.
func fonebridgeSetup(t *testing.T, conf string) (*foneBridge, string) {
	t.Helper()
	dir := t.TempDir()
	script, err := os.ReadFile(filepath.Join("testdata", "fonulator"))
	if err != nil {
		t.Fatal(err)
	}
	fonulator := filepath.Join(dir, "fonulator")
	if err := os.WriteFile(fonulator, script, 0o755); err != nil {
		t.Fatal(err)
	}
	confPath := filepath.Join(dir, "redfone.conf")
	if err := os.WriteFile(confPath, []byte(conf), 0o640); err != nil {
		t.Fatal(err)
	}
	logPath := filepath.Join(dir, "fonulator.log")
	t.Setenv("FONULATOR_LOG", logPath)
	t.Setenv("FONULATOR_DELAY", "")
	t.Setenv("FONULATOR_EXIT", "")
	return &foneBridge{
		ConfPath:   confPath,
		Interface:  "tdmoe0",
		Fonulator:  fonulator,
		Timeout:    10 * time.Second,
		RetryDelay: 10 * time.Millisecond,
		Log:        slog.New(slog.NewTextHandler(t.Output(), nil)),
		macLookup: func(iface string) (net.HardwareAddr, error) {
			if iface != "tdmoe0" {
				return nil, errors.New("no such network interface")
			}
			return fonebridgeTestMAC, nil
		},
	}, logPath
}

// fonebridgeRuns returns the stand-in's log lines, one per run.
func fonebridgeRuns(t *testing.T, logPath string) []string {
	t.Helper()
	b, err := os.ReadFile(logPath)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		t.Fatal(err)
	}
	return strings.Split(strings.TrimSuffix(string(b), "\n"), "\n")
}

func TestFoneBridgeStart(t *testing.T) {
	f, logPath := fonebridgeSetup(t, fonebridgeTestConf)
	if err := f.Start(context.Background()); err != nil {
		t.Fatalf("Start: %v", err)
	}
	runs := fonebridgeRuns(t, logPath)
	if len(runs) != 1 {
		t.Fatalf("fonulator ran %d times, want once: %q", len(runs), runs)
	}
	if want := " args=" + f.ConfPath + " server=02:fc:00:00:00:02"; !strings.HasSuffix(runs[0], want) {
		t.Errorf("run %q does not end in %q", runs[0], want)
	}
	want := strings.Replace(fonebridgeTestConf, "server=00:11:22:33:44:55", "server=02:fc:00:00:00:02", 1)
	fonebridgeAssertFile(t, f.ConfPath, want, 0o640)

	// A second takeover runs fonulator again though the file is unchanged:
	// the device may still stream to the peer.
	if err := f.Start(context.Background()); err != nil {
		t.Fatalf("second Start: %v", err)
	}
	if runs := fonebridgeRuns(t, logPath); len(runs) != 2 {
		t.Fatalf("fonulator ran %d times after two Starts, want 2", len(runs))
	}
}

func TestFoneBridgeStartRetries(t *testing.T) {
	tests := []struct {
		exit     string
		retries  int
		wantRuns int
		wantErr  string // "" for success
	}{
		{"0", 2, 1, ""},
		{"1", 2, 3, "exit code 1: failed"},
		{"1", 0, 1, "exit code 1: failed"},
		{"2", 2, 1, "exit code 2: bad token"},
		{"7", 2, 1, "DSP needs a device reboot"},
		{"6", 1, 2, "exit code 6: system error"},
		{"42", 1, 2, "exit code 42: unknown failure"},
	}
	for _, tt := range tests {
		t.Run("exit"+tt.exit+"/retries"+strconv.Itoa(tt.retries), func(t *testing.T) {
			f, logPath := fonebridgeSetup(t, fonebridgeTestConf)
			t.Setenv("FONULATOR_EXIT", tt.exit)
			f.Retries = tt.retries
			err := f.Start(context.Background())
			if runs := fonebridgeRuns(t, logPath); len(runs) != tt.wantRuns {
				t.Errorf("fonulator ran %d times, want %d", len(runs), tt.wantRuns)
			}
			if tt.wantErr == "" {
				if err != nil {
					t.Fatalf("Start: %v", err)
				}
				return
			}
			if err == nil {
				t.Fatal("Start succeeded, want an error")
			}
			for _, want := range []string{tt.wantErr, f.Fonulator, f.ConfPath} {
				if !strings.Contains(err.Error(), want) {
					t.Errorf("error %q does not mention %q", err, want)
				}
			}
		})
	}
}

func TestFoneBridgeStartOutputInError(t *testing.T) {
	f, _ := fonebridgeSetup(t, fonebridgeTestConf)
	script := "#!/bin/sh\necho 'Bad token in configuration file on line 3.'\necho 'treeParser: oops' >&2\nexit 2\n"
	if err := os.WriteFile(f.Fonulator, []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	err := f.Start(context.Background())
	if err == nil {
		t.Fatal("Start succeeded, want an error")
	}
	for _, want := range []string{"Bad token in configuration file on line 3.", "treeParser: oops"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not carry output %q", err, want)
		}
	}
}

func TestFoneBridgeStartStdinIsDevNull(t *testing.T) {
	f, _ := fonebridgeSetup(t, fonebridgeTestConf)
	// fonulator's reboot prompt reads stdin: it must get /dev/null, never
	// flip's own stdin or a pipe nobody writes to.
	script := "#!/bin/sh\nin=$(readlink /proc/$$/fd/0)\n[ \"$in\" = /dev/null ] && exit 0\necho \"stdin is $in\"\nexit 1\n"
	if err := os.WriteFile(f.Fonulator, []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	f.Timeout = 5 * time.Second
	if err := f.Start(context.Background()); err != nil {
		t.Fatalf("Start: %v", err)
	}
}

func TestFoneBridgeStartTimeoutKillsProcessGroup(t *testing.T) {
	f, logPath := fonebridgeSetup(t, fonebridgeTestConf)
	t.Setenv("FONULATOR_DELAY", "30")
	f.Timeout = 300 * time.Millisecond

	start := time.Now()
	err := f.Start(context.Background())
	if err == nil || !strings.Contains(err.Error(), "timed out after 300ms") {
		t.Fatalf("Start: %v, want a timeout error", err)
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("Start took %v after a 300ms timeout", d)
	}
	runs := fonebridgeRuns(t, logPath)
	if len(runs) != 1 {
		t.Fatalf("fonulator ran %d times, want once", len(runs))
	}
	m := regexp.MustCompile(` child=([0-9]+) `).FindStringSubmatch(runs[0])
	if m == nil {
		t.Fatalf("no child pid in %q", runs[0])
	}
	child, _ := strconv.Atoi(m[1])
	deadline := time.Now().Add(3 * time.Second)
	for !fonebridgeGone(child) {
		if time.Now().After(deadline) {
			syscall.Kill(child, syscall.SIGKILL)
			t.Fatalf("fonulator's child %d survived the timeout", child)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// fonebridgeGone says whether pid has exited; a zombie counts, since an
// orphan is reaped by whatever init the test runs under, maybe never.
func fonebridgeGone(pid int) bool {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return true
	}
	// The state follows the command name, which is in parentheses.
	i := bytes.LastIndexByte(b, ')')
	return i < 0 || i+2 >= len(b) || b[i+2] == 'Z' || b[i+2] == 'X'
}

func TestFoneBridgeStartCancelled(t *testing.T) {
	tests := []struct {
		name, exit, delay string
	}{
		{"during the retry delay", "1", "0"},
		{"during a run", "0", "30"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f, logPath := fonebridgeSetup(t, fonebridgeTestConf)
			t.Setenv("FONULATOR_EXIT", tt.exit)
			t.Setenv("FONULATOR_DELAY", tt.delay)
			f.Retries = 5
			f.RetryDelay = time.Hour
			ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
			defer cancel()
			start := time.Now()
			err := f.Start(ctx)
			if !errors.Is(err, context.DeadlineExceeded) {
				t.Fatalf("Start: %v, want context.DeadlineExceeded", err)
			}
			if d := time.Since(start); d > 5*time.Second {
				t.Errorf("Start took %v after its context ended", d)
			}
			if runs := fonebridgeRuns(t, logPath); len(runs) != 1 {
				t.Errorf("fonulator ran %d times, want once", len(runs))
			}
		})
	}
}

func TestFoneBridgeStartInvalidConfTouchesNothing(t *testing.T) {
	const bad = "[globals]\nfb=192.0.2.222\nserver=00:11:22:33:44:55 # the primary\n"
	f, logPath := fonebridgeSetup(t, bad)
	err := f.Start(context.Background())
	if err == nil || !strings.Contains(err.Error(), "redfone.conf line 3") {
		t.Fatalf("Start: %v, want an error about line 3", err)
	}
	if runs := fonebridgeRuns(t, logPath); len(runs) != 0 {
		t.Errorf("fonulator ran %d times on an invalid file", len(runs))
	}
	fonebridgeAssertFile(t, f.ConfPath, bad, 0o640)
}

func TestFoneBridgeStopNeverRunsFonulator(t *testing.T) {
	f, logPath := fonebridgeSetup(t, fonebridgeTestConf)
	if err := f.Stop(context.Background()); err != nil {
		t.Fatalf("Stop: %v", err)
	}
	if runs := fonebridgeRuns(t, logPath); len(runs) != 0 {
		t.Errorf("Stop ran fonulator: %q", runs)
	}
	fonebridgeAssertFile(t, f.ConfPath, fonebridgeTestConf, 0o640)
}

func TestFoneBridgeCheck(t *testing.T) {
	tests := []struct {
		name  string
		setup func(f *foneBridge)
		want  string // "" for no error
	}{
		{"ok", func(*foneBridge) {}, ""},
		{"fonulator missing", func(f *foneBridge) { f.Fonulator = "/nonexistent/fonulator" }, "/nonexistent/fonulator"},
		{"bad interface", func(f *foneBridge) { f.Interface = "eth9" }, `interface "eth9"`},
		{"conf missing", func(f *foneBridge) { f.ConfPath += ".missing" }, "redfone.conf.missing"},
		{"conf invalid", func(f *foneBridge) {
			os.WriteFile(f.ConfPath, []byte("[globals]\nfb=x\n"), 0o644)
		}, "no server="},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f, logPath := fonebridgeSetup(t, fonebridgeTestConf)
			tt.setup(f)
			err := f.Check(context.Background())
			switch {
			case tt.want == "" && err != nil:
				t.Fatalf("Check: %v", err)
			case tt.want != "" && (err == nil || !strings.Contains(err.Error(), tt.want)):
				t.Fatalf("Check: %v, want an error mentioning %q", err, tt.want)
			}
			if runs := fonebridgeRuns(t, logPath); len(runs) != 0 {
				t.Errorf("Check ran fonulator: %q", runs)
			}
		})
	}
	f, _ := fonebridgeSetup(t, fonebridgeTestConf)
	if err := f.Check(context.Background()); err != nil {
		t.Fatal(err)
	}
	fonebridgeAssertFile(t, f.ConfPath, fonebridgeTestConf, 0o640)
}

func TestFoneBridgeValidate(t *testing.T) {
	tests := []struct {
		name  string
		setup func(f *foneBridge)
		want  []string // nil for no error
	}{
		{"ok", func(*foneBridge) {}, nil},
		{"fonulator not installed", func(f *foneBridge) { f.Fonulator = "fonulator-not-installed" },
			[]string{"FLIP_FONULATOR", "install fonulator or set FLIP_FONULATOR"}},
		{"conf unreadable", func(f *foneBridge) { f.ConfPath = "/nonexistent/redfone.conf" },
			[]string{"FLIP_FONEBRIDGE_CONF", "/nonexistent/redfone.conf"}},
		{"conf invalid", func(f *foneBridge) {
			os.WriteFile(f.ConfPath, []byte("[globals]\nfb=x\nserver = 00:11:22:33:44:55\n"), 0o644)
		}, []string{"FLIP_FONEBRIDGE_CONF", "redfone.conf line 3"}},
		{"interface missing", func(f *foneBridge) { f.Interface = "eth9" },
			[]string{"FLIP_FONEBRIDGE_INTERFACE", "eth9"}},
		{"interface empty", func(f *foneBridge) { f.Interface = "" },
			[]string{"FLIP_FONEBRIDGE_INTERFACE"}},
		{"interface without MAC", func(f *foneBridge) {
			f.macLookup = func(string) (net.HardwareAddr, error) { return nil, nil }
		}, []string{"FLIP_FONEBRIDGE_INTERFACE", "no Ethernet MAC"}},
		{"everything wrong", func(f *foneBridge) {
			f.Fonulator, f.ConfPath, f.Interface = "fonulator-not-installed", "/nonexistent", "eth9"
		}, []string{"FLIP_FONULATOR", "FLIP_FONEBRIDGE_CONF", "FLIP_FONEBRIDGE_INTERFACE"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f, _ := fonebridgeSetup(t, fonebridgeTestConf)
			tt.setup(f)
			err := f.Validate()
			if tt.want == nil {
				if err != nil {
					t.Fatalf("Validate: %v", err)
				}
				return
			}
			if err == nil {
				t.Fatal("Validate succeeded, want an error")
			}
			for _, want := range tt.want {
				if !strings.Contains(err.Error(), want) {
					t.Errorf("error %q does not mention %q", err, want)
				}
			}
		})
	}
}

func TestFoneBridgeName(t *testing.T) {
	if got := (&foneBridge{}).Name(); got != "fonebridge" {
		t.Fatalf("Name() = %q, want fonebridge", got)
	}
}
