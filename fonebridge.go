package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync"
	"syscall"
	"time"
)

// redfoneError is one problem in a redfone.conf. renderRedfone returns one
// per problem found (joined with errors.Join when there are several), so an
// operator can fix the whole file in one go.
type redfoneError struct {
	Line    int    // 1-based line in the file
	Problem string // what is wrong and how to fix it
}

func (e *redfoneError) Error() string {
	return fmt.Sprintf("redfone.conf line %d: %s", e.Line, e.Problem)
}

// redfoneLineRules are the shape rules of fonulator's flex lexer, which
// anchors every directive with ^ and $ and has no notion of inline comments:
// a line that breaks one of them becomes a "bad token" (exit 2) at the worst
// moment, during a takeover. They apply to every non-empty line that is not
// a comment; the first rule a line breaks is reported.
var redfoneLineRules = []struct {
	bad     func(line string) bool
	problem string
}{
	{
		func(l string) bool { return strings.HasPrefix(l, ";") },
		"';' comment; fonulator only knows comments with '#' in column 1",
	},
	{
		func(l string) bool { return strings.TrimLeft(l, " \t") != l },
		"leading blank; remove the spaces or tabs at the start of the line",
	},
	{
		func(l string) bool { return strings.TrimRight(l, " \t") != l },
		"trailing blank; remove the spaces or tabs at the end of the line",
	},
	{
		func(l string) bool { return strings.ContainsAny(l, "#;") },
		"comment not in column 1; fonulator has no end-of-line comments, put the comment on its own line starting with '#'",
	},
	{
		func(l string) bool {
			return strings.Contains(l, " =") || strings.Contains(l, "= ") ||
				strings.Contains(l, "\t=") || strings.Contains(l, "=\t")
		},
		"blank around '='; write key=value with no spaces",
	},
}

// redfoneSection is the kind of a [section] header.
type redfoneSection string

const (
	redfoneNone    redfoneSection = ""
	redfoneGlobals redfoneSection = "globals"
	redfoneSpan    redfoneSection = "span"
	redfoneDSP     redfoneSection = "dsp"
	redfoneAny     redfoneSection = "*" // directive accepted in any section
)

// redfoneHeaderRE matches the only headers the lexer knows ([spanN] takes a
// single digit); it is caseless like the lexer.
var redfoneHeaderRE = regexp.MustCompile(`(?i)^\[(globals|dsp|span[0-9])\]$`)

// redfoneDirectives lists what fonulator accepts inside sections: the value
// its lexer wants (value nil: a bare flag without '='; want describes it for
// the error) and the section its parser accepts it in. Anything else stops
// fonulator with exit 2 or 3, which retrying cannot fix, so it is caught here
// before anything is touched.
var redfoneDirectives = map[string]struct {
	value   *regexp.Regexp
	want    string
	section redfoneSection
}{
	"fb":   {regexp.MustCompile(`^[a-zA-Z0-9.]+$`), "an IPv4 address or a plain hostname (letters, digits, dots)", redfoneGlobals},
	"port": {regexp.MustCompile(`^[12]$`), "1 or 2", redfoneGlobals},
	// The lexer would take mixed separators, but fonulator's sscanf then
	// rejects them in the middle of a run.
	"server":      {regexp.MustCompile(`^([[:xdigit:]]{2}:){5}[[:xdigit:]]{2}$|^([[:xdigit:]]{2}-){5}[[:xdigit:]]{2}$`), "exactly one MAC address: six hex octets all separated by ':' or all by '-', e.g. 00:11:22:33:44:55", redfoneGlobals},
	"priorities":  {regexp.MustCompile(`^[0-9],[0-9],[0-9],[0-9]$`), "four digits separated by commas, e.g. 0,1,2,3", redfoneGlobals},
	"wplloff":     {nil, "", redfoneGlobals},
	"framing":     {regexp.MustCompile(`(?i)^(esf|sf|ccs|cas)$`), "esf, sf, ccs or cas", redfoneSpan},
	"encoding":    {regexp.MustCompile(`(?i)^(b8zs|hdb3|ami)$`), "b8zs, hdb3 or ami", redfoneSpan},
	"longhaul":    {regexp.MustCompile(`^[0-3]$`), "0 to 3", redfoneSpan},
	"shorthaul":   {regexp.MustCompile(`^[0-4]$`), "0 to 4", redfoneSpan},
	"crc4":        {nil, "", redfoneSpan},
	"rbs":         {nil, "", redfoneSpan},
	"loopback":    {nil, "", redfoneSpan},
	"dejitter":    {nil, "", redfoneSpan},
	"j1":          {nil, "", redfoneSpan},
	"slave":       {nil, "", redfoneAny}, // ignored outside a span, not an error
	"master":      {nil, "", redfoneAny}, // a no-op everywhere
	"iec":         {nil, "", redfoneAny}, // deprecated no-op
	"dsp":         {regexp.MustCompile(`(?i)^(ulaw|alaw|off)$`), "ulaw, alaw or off", redfoneAny},
	"dspdisabled": {nil, "", redfoneAny},
	"voicea":      {regexp.MustCompile(`^[0-9]+(-[0-9]+)?$`), "a channel or a range, e.g. 1-23", redfoneDSP},
	"voiceb":      {regexp.MustCompile(`^[0-9]+(-[0-9]+)?$`), "a channel or a range, e.g. 1-23", redfoneDSP},
	"data":        {regexp.MustCompile(`^[0-9]+(-[0-9]+)?$`), "a channel or a range, e.g. 1-23", redfoneDSP},
}

// redfoneParser walks a redfone.conf line by line, collecting every problem.
type redfoneParser struct {
	errs       []error
	section    redfoneSection
	sawGlobals bool
	sawDSP     bool
	globalsAt  int            // line of [globals]
	fbAt       int            // line of fb=
	serverAt   int            // line of server=
	headers    map[string]int // lowercased section name -> first line
}

func (p *redfoneParser) bad(line int, format string, args ...any) {
	p.errs = append(p.errs, &redfoneError{line, fmt.Sprintf(format, args...)})
}

// header handles a line starting with '['. Section order matters to
// fonulator's state machine: [globals] first, [dsp] last, no repeats.
func (p *redfoneParser) header(n int, l string) {
	m := redfoneHeaderRE.FindStringSubmatch(l)
	if m == nil {
		p.bad(n, "unknown section header %q; fonulator knows only [globals], [span1]..[span9] and [dsp]", l)
		p.section = redfoneAny // go on checking lines, but not against a section
		return
	}
	name := strings.ToLower(m[1])
	if at, dup := p.headers[name]; dup {
		p.bad(n, "section [%s] repeated (first at line %d); merge the two into one", name, at)
	} else {
		p.headers[name] = n
	}
	switch {
	case name == "globals":
		if !p.sawGlobals {
			p.globalsAt = n
		}
		p.sawGlobals, p.section = true, redfoneGlobals
	case !p.sawGlobals:
		if len(p.headers) == 1 {
			p.bad(n, "[%s] comes before [globals]; [globals] must be the first section", name)
		}
		p.section = redfoneAny
	case name == "dsp":
		p.sawDSP, p.section = true, redfoneDSP
	default: // spanN
		if p.sawDSP {
			p.bad(n, "[%s] comes after [dsp]; fonulator wants [dsp] as the last section", name)
		}
		p.section = redfoneSpan
	}
}

// directive handles a key=value or flag line inside a section.
func (p *redfoneParser) directive(n int, l string) {
	if p.section == redfoneNone {
		p.bad(n, "%q is outside any section; put it under [globals] or a [spanN] section", l)
		return
	}
	key, value, hasValue := strings.Cut(l, "=")
	key = strings.ToLower(key)
	d, known := redfoneDirectives[key]
	switch {
	case !known || (d.value == nil) == hasValue:
		p.bad(n, "unknown directive %q; fonulator would stop with exit code 2 (bad token)", l)
		return
	case d.value != nil && !d.value.MatchString(value):
		p.bad(n, "%s= value %q is not valid; want %s", key, value, d.want)
		return
	case p.section != redfoneAny && d.section != redfoneAny && d.section != p.section:
		if hasValue {
			key += "="
		}
		p.bad(n, "%s is only valid in a [%s] section, not in [%s]; move it there", key, d.section, p.section)
		return
	}
	switch key {
	case "fb":
		p.fbAt = n
	case "server":
		if p.serverAt != 0 {
			p.bad(n, "second server= (first at line %d); keep exactly one server= line in [globals]", p.serverAt)
			return
		}
		p.serverAt = n
	}
}

// finish reports what is missing from the file as a whole.
func (p *redfoneParser) finish() {
	if !p.sawGlobals {
		p.bad(1, "no [globals] section; the file must start with [globals] holding fb= and server=")
		return
	}
	if p.fbAt == 0 {
		p.bad(p.globalsAt, "[globals] has no fb= line; add fb=<foneBRIDGE IP address or hostname>")
	}
	if p.serverAt == 0 {
		p.bad(p.globalsAt, "[globals] has no server= line; add server=<MAC of the NIC carrying TDMoE>")
	}
}

// renderRedfone validates src against fonulator's grammar and returns it
// with the one server= line of [globals] replaced by server=MAC (mac in
// lowercase colon form); every other byte is kept. A problem is reported as
// a *redfoneError naming the line and the fix; several are joined with
// errors.Join, in line order.
func renderRedfone(src []byte, mac net.HardwareAddr) ([]byte, error) {
	if len(mac) != 6 || bytes.Equal(mac, make([]byte, 6)) {
		return nil, fmt.Errorf("redfone.conf: %q is not a usable Ethernet MAC for server=; the TDMoE interface needs a 6-byte, non-zero address", mac.String())
	}
	lines := strings.Split(string(src), "\n")
	// A final "\n" leaves an empty last element that is no line at all.
	lastHasNewline := lines[len(lines)-1] == ""
	if lastHasNewline {
		lines = lines[:len(lines)-1]
	}
	for i, l := range lines {
		if strings.HasSuffix(l, "\r") {
			// One report is enough: the whole file has the wrong line endings.
			return nil, &redfoneError{i + 1, "CRLF (Windows) line ending; convert the file to LF line endings, e.g. with dos2unix"}
		}
	}

	p := &redfoneParser{headers: map[string]int{}}
	for i, l := range lines {
		n := i + 1
		switch {
		case l == "" || strings.HasPrefix(l, "#"):
		case i == len(lines)-1 && !lastHasNewline:
			// flex's $ needs a newline: an unterminated last directive is a
			// bad token.
			p.bad(n, "last line has no newline at the end; add one")
		case redfoneLineProblem(l) != "":
			p.bad(n, "%s", redfoneLineProblem(l))
		case strings.HasPrefix(l, "["):
			p.header(n, l)
		default:
			p.directive(n, l)
		}
	}
	p.finish()
	if len(p.errs) > 0 {
		slices.SortStableFunc(p.errs, func(a, b error) int {
			return a.(*redfoneError).Line - b.(*redfoneError).Line
		})
		if len(p.errs) == 1 {
			return nil, p.errs[0]
		}
		return nil, errors.Join(p.errs...)
	}

	lines[p.serverAt-1] = "server=" + mac.String()
	out := strings.Join(lines, "\n")
	if lastHasNewline {
		out += "\n"
	}
	return []byte(out), nil
}

// redfoneLineProblem returns the first shape rule l breaks, or "".
func redfoneLineProblem(l string) string {
	for _, r := range redfoneLineRules {
		if r.bad(l) {
			return r.problem
		}
	}
	return ""
}

// writeFileAtomic replaces path with data so that a crash leaves either the
// old or the new file, never a torn one: a temporary file in the same
// directory is written, synced and renamed over path, then the directory is
// synced. An existing file keeps its mode (perm applies only to a new file)
// and, as far as permitted, its owner; a symlink is followed and its target
// replaced. If path already holds data nothing is written and changed is
// false.
func writeFileAtomic(path string, data []byte, perm os.FileMode) (changed bool, err error) {
	if real, err := filepath.EvalSymlinks(path); err == nil {
		path = real
	}
	mode := perm.Perm()
	var owner *syscall.Stat_t
	if st, err := os.Stat(path); err == nil {
		if !st.Mode().IsRegular() {
			return false, fmt.Errorf("%s is not a regular file", path)
		}
		if old, err := os.ReadFile(path); err == nil && bytes.Equal(old, data) {
			return false, nil
		}
		mode = st.Mode().Perm()
		owner, _ = st.Sys().(*syscall.Stat_t)
	} else if !errors.Is(err, fs.ErrNotExist) {
		return false, err
	}

	dir, base := filepath.Split(path)
	if dir == "" {
		dir = "."
	}
	tmp, err := os.CreateTemp(dir, "."+base+".tmp-*")
	if err != nil {
		return false, err
	}
	renamed := false
	defer func() {
		if err != nil && !renamed {
			tmp.Close()
			os.Remove(tmp.Name())
		}
	}()
	if _, err = tmp.Write(data); err != nil {
		return false, err
	}
	// CreateTemp made it 0600 and Chmod is not subject to the umask.
	if err = tmp.Chmod(mode); err != nil {
		return false, err
	}
	if owner != nil && (int(owner.Uid) != os.Geteuid() || int(owner.Gid) != os.Getegid()) {
		// Best effort: fonulator runs as root and reads the file either way;
		// a lost owner only matters to the humans editing it.
		_ = tmp.Chown(int(owner.Uid), int(owner.Gid))
	}
	if err = tmp.Sync(); err != nil {
		return false, err
	}
	if err = tmp.Close(); err != nil {
		return false, err
	}
	if err = os.Rename(tmp.Name(), path); err != nil {
		return false, err
	}
	renamed = true
	// The rename is durable only once the directory entry is on disk.
	d, err := os.Open(dir)
	if err != nil {
		return true, err
	}
	defer d.Close()
	if err := d.Sync(); err != nil {
		return true, fmt.Errorf("sync %s: %w", dir, err)
	}
	return true, nil
}

// fonebridgeDefaultTimeout bounds a fonulator run when the caller set none:
// an unreachable device fails on its own after about 10 s, a live one
// answers in about a second, so 30 s is only ever hit by a hung run.
const fonebridgeDefaultTimeout = 30 * time.Second

// fonebridgeOutputLimit is how much of fonulator's output is kept: its last
// lines say what failed, the rest is progress chatter.
const fonebridgeOutputLimit = 4096

// fonebridgeKillGrace is how long Wait waits for fonulator's pipes after its
// process group was killed or it exited, in case a descendant left the group
// and still holds them.
const fonebridgeKillGrace = 2 * time.Second

// fonebridgeExitCodes describes fonulator's exit codes (its FB_STATUS enum).
// retry is false where a rerun gets the same answer: the file is wrong, or
// the device needs a reboot first.
var fonebridgeExitCodes = map[int]struct {
	meaning string
	retry   bool
}{
	0: {"ok", false},
	1: {"failed (device unreachable, bad value or device error)", true},
	2: {"bad token in the config file", false},
	3: {"bad state: a directive is in the wrong section", false},
	4: {"duplicate span section", false},
	5: {"bad input (DSP channel number or range)", false},
	6: {"system error", true},
	7: {"the DSP needs a device reboot (power-cycle the foneBRIDGE or run fonulator -R, then retry)", false},
	8: {"foneBRIDGE library error", true},
}

// fonebridgeTail keeps the last fonebridgeOutputLimit bytes written to it.
// It is shared by stdout and stderr, which exec may copy concurrently.
type fonebridgeTail struct {
	mu sync.Mutex
	b  []byte
}

func (t *fonebridgeTail) Write(p []byte) (int, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.b = append(t.b, p...)
	if over := len(t.b) - fonebridgeOutputLimit; over > 0 {
		t.b = append(t.b[:0], t.b[over:]...)
	}
	return len(p), nil
}

func (t *fonebridgeTail) String() string {
	t.mu.Lock()
	defer t.mu.Unlock()
	return strings.TrimSpace(string(t.b))
}

// foneBridge is the resource that points a Redfone foneBRIDGE's TDMoE stream
// at this box: it writes this box's MAC into server= of redfone.conf and
// runs fonulator, like the init script in heartbeat's haresources did.
type foneBridge struct {
	ConfPath   string        // redfone.conf
	Interface  string        // NIC carrying TDMoE; its MAC goes into server=
	Fonulator  string        // command name or path
	Timeout    time.Duration // per fonulator run
	Retries    int           // extra runs after a failed first one
	RetryDelay time.Duration // pause between runs
	Log        *slog.Logger

	// macLookup finds an interface's MAC; nil means net.InterfaceByName.
	// Tests replace it since no test interface has a usable MAC.
	macLookup func(iface string) (net.HardwareAddr, error)
}

// Name implements resource.
func (f *foneBridge) Name() string { return "fonebridge" }

func (f *foneBridge) log() *slog.Logger {
	if f.Log == nil {
		return slog.New(slog.DiscardHandler)
	}
	return f.Log.With("resource", "fonebridge")
}

func (f *foneBridge) mac() (net.HardwareAddr, error) {
	lookup := f.macLookup
	if lookup == nil {
		lookup = func(name string) (net.HardwareAddr, error) {
			ifi, err := net.InterfaceByName(name)
			if err != nil {
				return nil, err
			}
			return ifi.HardwareAddr, nil
		}
	}
	mac, err := lookup(f.Interface)
	if err != nil {
		return nil, fmt.Errorf("interface %q: %w", f.Interface, err)
	}
	if len(mac) != 6 || bytes.Equal(mac, make([]byte, 6)) {
		return nil, fmt.Errorf("interface %q has no Ethernet MAC (%q); use the NIC that carries TDMoE", f.Interface, mac.String())
	}
	return mac, nil
}

// render reads ConfPath and renders it for this box's MAC.
func (f *foneBridge) render() ([]byte, net.HardwareAddr, error) {
	mac, err := f.mac()
	if err != nil {
		return nil, nil, err
	}
	src, err := os.ReadFile(f.ConfPath)
	if err != nil {
		return nil, nil, err
	}
	out, err := renderRedfone(src, mac)
	if err != nil {
		return nil, nil, fmt.Errorf("%s: %w", f.ConfPath, err)
	}
	return out, mac, nil
}

// Start points the foneBRIDGE at this box. fonulator runs even when the
// file already names this box: the device may still stream to the peer
// (the file is not what the device holds, and a device power cycle forgets
// the last run).
func (f *foneBridge) Start(ctx context.Context) error {
	log := f.log()
	out, mac, err := f.render()
	if err != nil {
		return fmt.Errorf("fonebridge: %w", err)
	}
	changed, err := writeFileAtomic(f.ConfPath, out, 0o644)
	if err != nil {
		return fmt.Errorf("fonebridge: write %s: %w", f.ConfPath, err)
	}
	log.Info("redfone.conf rendered", "path", f.ConfPath, "server", mac.String(), "changed", changed)

	attempts := 1 + max(f.Retries, 0)
	var last fonebridgeRun
	runs := 0
	for runs < attempts {
		if runs > 0 {
			t := time.NewTimer(f.RetryDelay)
			select {
			case <-ctx.Done():
				t.Stop()
				return fmt.Errorf("fonebridge: %s %s: gave up after %d of %d runs (%w); last run: %s",
					f.Fonulator, f.ConfPath, runs, attempts, ctx.Err(), last)
			case <-t.C:
			}
		}
		runs++
		last = f.runFonulator(ctx)
		attrs := []any{"attempt", runs, "attempts", attempts, "duration", last.duration.Round(time.Millisecond),
			"exit", last.code, "result", last.meaning, "output", last.output}
		if last.err == nil {
			log.Info("fonulator done", attrs...)
			return nil
		}
		log.Warn("fonulator failed", attrs...)
		if !last.retry || ctx.Err() != nil {
			break
		}
	}
	err = fmt.Errorf("fonebridge: %s %s failed (%d of %d runs made), last with %s", f.Fonulator, f.ConfPath, runs, attempts, last)
	if ctx.Err() != nil {
		// Let the caller tell its own deadline from a fonulator failure.
		err = fmt.Errorf("%w: %w", err, ctx.Err())
	}
	return err
}

// fonebridgeRun is the outcome of one fonulator run.
type fonebridgeRun struct {
	err      error // nil on success
	code     int   // exit code, -1 if none (killed, not started)
	meaning  string
	retry    bool // a rerun might succeed
	output   string
	duration time.Duration
}

func (r fonebridgeRun) String() string {
	s := r.meaning
	if r.code >= 0 {
		s = fmt.Sprintf("exit code %d: %s", r.code, r.meaning)
	}
	if r.output == "" {
		return s + " (no output)"
	}
	return fmt.Sprintf("%s; output: %q", s, r.output)
}

// runFonulator runs fonulator once on ConfPath, bounded by Timeout, and
// classifies the outcome.
func (f *foneBridge) runFonulator(ctx context.Context) fonebridgeRun {
	timeout := f.Timeout
	if timeout <= 0 {
		timeout = fonebridgeDefaultTimeout
	}
	runCtx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()

	cmd := exec.CommandContext(runCtx, f.Fonulator, f.ConfPath)
	// nil Stdin is /dev/null: fonulator can stop at an interactive reboot
	// prompt, which must read EOF instead of hanging the takeover.
	cmd.Stdin = nil
	var tail fonebridgeTail
	cmd.Stdout, cmd.Stderr = &tail, &tail
	// Its own process group, so a timeout kills whatever it started too.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }
	cmd.WaitDelay = fonebridgeKillGrace

	start := time.Now()
	err := cmd.Run()
	r := fonebridgeRun{code: -1, output: tail.String(), duration: time.Since(start)}

	var exitErr *exec.ExitError
	switch {
	case err == nil || errors.Is(err, exec.ErrWaitDelay) && cmd.ProcessState.Success():
		// ErrWaitDelay after a clean exit: a straggler kept the pipes open,
		// but fonulator itself finished its job.
		r.code, r.meaning = 0, fonebridgeExitCodes[0].meaning
		return r
	case runCtx.Err() == context.DeadlineExceeded && ctx.Err() == nil:
		r.err = fmt.Errorf("timed out after %s", timeout)
		r.meaning = fmt.Sprintf("timed out after %s; its process group was killed (spans stay down until a run succeeds)", timeout)
		r.retry = true
	case ctx.Err() != nil:
		r.err = ctx.Err()
		r.meaning = fmt.Sprintf("cancelled (%v); its process group was killed", ctx.Err())
	case errors.As(err, &exitErr) && exitErr.ExitCode() >= 0:
		r.err = err
		r.code = exitErr.ExitCode()
		if m, ok := fonebridgeExitCodes[r.code]; ok {
			r.meaning, r.retry = m.meaning, m.retry
		} else {
			r.meaning, r.retry = "unknown failure", true
		}
	default: // not started, or killed by someone else
		r.err = err
		r.meaning = err.Error()
		r.retry = !errors.Is(err, exec.ErrNotFound) && !errors.Is(err, fs.ErrNotExist) && !errors.Is(err, fs.ErrPermission)
	}
	return r
}

// Stop does nothing, on purpose: the box giving the foneBRIDGE up has
// nothing to undo, and running fonulator here would point the TDMoE stream
// back at this box, stealing it from the new active one.
func (f *foneBridge) Stop(context.Context) error { return nil }

// Check reports whether a takeover could work right now: the file renders
// with this box's MAC and fonulator is installed. It never runs fonulator,
// since every configuring run briefly stops the device's TDMoE stream.
func (f *foneBridge) Check(context.Context) error {
	var errs []error
	if _, _, err := f.render(); err != nil {
		errs = append(errs, err)
	}
	if _, err := exec.LookPath(f.Fonulator); err != nil {
		errs = append(errs, fmt.Errorf("fonulator not found: %w", err))
	}
	for i, err := range errs {
		errs[i] = fmt.Errorf("fonebridge: %w", err)
	}
	return errors.Join(errs...)
}

// Validate checks the settings at config time, before anything is touched,
// and names the FLIP_* variable to fix in each error.
func (f *foneBridge) Validate() error {
	var errs []error
	if _, err := exec.LookPath(f.Fonulator); err != nil {
		errs = append(errs, fmt.Errorf("FLIP_FONULATOR: %q not found (%v); install fonulator or set FLIP_FONULATOR to its path", f.Fonulator, err))
	}
	mac, err := f.mac()
	if f.Interface == "" {
		errs = append(errs, errors.New("FLIP_FONEBRIDGE_INTERFACE: empty; name the NIC that carries TDMoE, e.g. eth1"))
	} else if err != nil {
		errs = append(errs, fmt.Errorf("FLIP_FONEBRIDGE_INTERFACE: %v; name the NIC that carries TDMoE", err))
	}
	if mac == nil {
		// Still check the file's grammar with a placeholder MAC.
		mac = net.HardwareAddr{0x02, 0, 0, 0, 0, 1}
	}
	if f.ConfPath == "" {
		errs = append(errs, errors.New("FLIP_FONEBRIDGE_CONF: empty; give the path of redfone.conf, e.g. /etc/redfone.conf"))
	} else if src, err := os.ReadFile(f.ConfPath); err != nil {
		errs = append(errs, fmt.Errorf("FLIP_FONEBRIDGE_CONF: cannot read %s: %v", f.ConfPath, err))
	} else if _, err := renderRedfone(src, mac); err != nil {
		errs = append(errs, fmt.Errorf("FLIP_FONEBRIDGE_CONF: %s is not a valid fonulator config; fix it:\n%w", f.ConfPath, err))
	}
	if f.Retries < 0 {
		errs = append(errs, fmt.Errorf("fonebridge: retries must not be negative (got %d)", f.Retries))
	}
	return errors.Join(errs...)
}
