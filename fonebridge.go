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
	"time"
)

// fonebridgeDefaultTimeout bounds a fonulator run when the caller set none:
// an unreachable device fails on its own after about 10 s, a live one
// answers in about a second, so 30 s is only ever hit by a hung run.
const fonebridgeDefaultTimeout = 30 * time.Second

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
// classifies the outcome. execCommand gives it stdin /dev/null (fonulator
// can stop at an interactive reboot prompt, which must read EOF instead of
// hanging the takeover) and its own process group.
func (f *foneBridge) runFonulator(ctx context.Context) fonebridgeRun {
	timeout := f.Timeout
	if timeout <= 0 {
		timeout = fonebridgeDefaultTimeout
	}
	c := execCommand(ctx, timeout, []string{f.Fonulator, f.ConfPath})
	r := fonebridgeRun{err: c.Err, code: c.Code, output: c.Output, duration: c.Duration}
	switch {
	case c.Err == nil:
		r.code, r.meaning = 0, fonebridgeExitCodes[0].meaning
	case c.TimedOut:
		r.meaning = fmt.Sprintf("timed out after %s; its process group was killed (spans stay down until a run succeeds)", timeout)
		r.retry = true
	case ctx.Err() != nil:
		r.err = ctx.Err()
		r.meaning = fmt.Sprintf("cancelled (%v); its process group was killed", ctx.Err())
	case c.Code >= 0:
		if m, ok := fonebridgeExitCodes[c.Code]; ok {
			r.meaning, r.retry = m.meaning, m.retry
		} else {
			r.meaning, r.retry = "unknown failure", true
		}
	default: // not started, or killed by someone else
		r.meaning = c.Err.Error()
		r.retry = !errors.Is(c.Err, errNotFound) && !errors.Is(c.Err, fs.ErrPermission)
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

// followsHolder: the foneBRIDGE sends its TDMoE stream to the MAC that
// fonulator last gave it, so the box that keeps the VIP after a split
// brain runs fonulator again.
func (f *foneBridge) followsHolder() bool { return true }
