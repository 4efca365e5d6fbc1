package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"time"
)

// The control socket lets an operator on the box ask the running agent for
// its state and order a release, takeover or switchover. It is a Unix socket
// of mode 0600 in a 0700 directory: root only, and no network port.

// ctlRequest is one line of JSON from `flip status|release|takeover|switchover`.
type ctlRequest struct {
	Cmd   string `json:"cmd"`
	Force bool   `json:"force,omitempty"`
	// Drain (switchover): drain the calls first, for at most DrainNS
	// (nanoseconds; 0: FLIP_DRAIN_TIMEOUT).
	Drain   bool  `json:"drain,omitempty"`
	DrainNS int64 `json:"drain_ns,omitempty"`
	// HoldNS (hold): how long (nanoseconds; 0: one hour). By: who asks
	// (the box the command ran on, and the user if known).
	HoldNS int64  `json:"hold_ns,omitempty"`
	By     string `json:"by,omitempty"`
	// To (switchover, pool mode): the box (its FLIP_NAME) to hand over to.
	To string `json:"to,omitempty"`
	// Deadline (Unix nanoseconds): the client gives up then. A request
	// still queued behind a long step at that time is dropped, not
	// carried out later for nobody.
	Deadline int64 `json:"deadline,omitempty"`
}

// ctlMaxRequest bounds one request line: a request is a few dozen bytes,
// and a client must not make flip buffer without end.
const ctlMaxRequest = 4096

// ctlResponse is the agent's one-line JSON answer.
type ctlResponse struct {
	OK     bool           `json:"ok"`
	Error  string         `json:"error,omitempty"`
	Note   string         `json:"note,omitempty"`
	Source string         `json:"source"` // this box's own address, for the switchover's probes
	Status statusSnapshot `json:"status"`
}

// ctlCall is a request handed to the agent's loop, which alone touches the box.
type ctlCall struct {
	req      ctlRequest
	reply    chan ctlResponse
	deadline time.Time // the client's, or this connection's, whichever is first
}

// expired reports a call whose client has given up by now.
func (c ctlCall) expired(now time.Time) bool { return !c.deadline.IsZero() && now.After(c.deadline) }

// ctlCallTimeout bounds how long one connection waits for the agent: a
// takeover may run fonulator and start Asterisk.
const ctlCallTimeout = 5 * time.Minute

// serveControl listens on path and hands each request to calls until ctx
// ends. A stale socket left by a killed agent is replaced; one that answers
// belongs to another running agent, which is an error.
func serveControl(ctx context.Context, path string, calls chan<- ctlCall, status func() ctlResponse, log *slog.Logger) error {
	dir := filepath.Dir(path)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("FLIP_CONTROL_SOCKET: directory of %s: %w", path, err)
	}
	if fi, err := os.Lstat(dir); err == nil && fi.Mode()&os.ModeSymlink != 0 {
		return fmt.Errorf("FLIP_CONTROL_SOCKET: the directory %s is a symbolic link: the socket could land anywhere; use a real directory (e.g. /run/flip)", dir)
	}
	if c, err := net.DialTimeout("unix", path, time.Second); err == nil {
		c.Close()
		return fmt.Errorf("FLIP_CONTROL_SOCKET: %s answers: another flip is running on this box", path)
	}
	if fi, err := os.Lstat(path); err == nil {
		if fi.Mode()&os.ModeSocket == 0 {
			return fmt.Errorf("FLIP_CONTROL_SOCKET: %s exists and is not a socket (%s); flip only replaces a stale socket: move it away or choose another path", path, fi.Mode().Type())
		}
		if err := os.Remove(path); err != nil {
			return fmt.Errorf("FLIP_CONTROL_SOCKET: remove the stale socket %s: %w", path, err)
		}
	}
	l, err := net.Listen("unix", path)
	if err != nil {
		return fmt.Errorf("FLIP_CONTROL_SOCKET: listen on %s: %w", path, err)
	}
	if err := os.Chmod(path, 0o600); err != nil {
		l.Close()
		return fmt.Errorf("FLIP_CONTROL_SOCKET: chmod %s: %w", path, err)
	}
	go func() {
		<-ctx.Done()
		l.Close()
		os.Remove(path)
	}()
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			go handleControl(ctx, c, calls, status, log)
		}
	}()
	return nil
}

func handleControl(ctx context.Context, c net.Conn, calls chan<- ctlCall, status func() ctlResponse, log *slog.Logger) {
	defer c.Close()
	deadline := time.Now().Add(ctlCallTimeout)
	_ = c.SetDeadline(deadline)
	var req ctlRequest
	line, err := bufio.NewReader(io.LimitReader(c, ctlMaxRequest)).ReadBytes('\n')
	if errors.Is(err, io.EOF) && len(line) >= ctlMaxRequest {
		err = fmt.Errorf("longer than %d bytes", ctlMaxRequest)
	}
	if err == nil {
		err = json.Unmarshal(line, &req)
	}
	if req.Deadline > 0 {
		if d := time.Unix(0, req.Deadline); d.Before(deadline) {
			deadline = d
		}
	}
	enc := json.NewEncoder(c)
	if err != nil {
		_ = enc.Encode(ctlResponse{Error: fmt.Sprintf("bad request (%v): send one line of JSON like {\"cmd\":\"status\"}", err)})
		return
	}
	if req.Cmd == "status" && status != nil {
		// From the tracker, not the agent's loop: `flip status` answers
		// while a long step (fonulator, a slow service start) runs.
		_ = enc.Encode(status())
		return
	}
	call := ctlCall{req: req, reply: make(chan ctlResponse, 1), deadline: deadline}
	select {
	case calls <- call:
	case <-ctx.Done():
		_ = enc.Encode(ctlResponse{Error: "flip is stopping"})
		return
	}
	select {
	case resp := <-call.reply:
		if req.Cmd != "status" {
			log.Info("control request done", "cmd", req.Cmd, "force", req.Force, "ok", resp.OK, "error", resp.Error)
		}
		_ = enc.Encode(resp)
	case <-ctx.Done():
		_ = enc.Encode(ctlResponse{Error: "flip is stopping"})
	}
}

// callControl sends one request to the agent at path and returns its answer.
func callControl(path string, req ctlRequest) (ctlResponse, error) {
	var resp ctlResponse
	c, err := net.DialTimeout("unix", path, 2*time.Second)
	if err != nil {
		if errors.Is(err, os.ErrPermission) {
			return resp, fmt.Errorf("cannot open %s: %w (the control socket is root only)", path, err)
		}
		return resp, fmt.Errorf("no flip agent answers on %s (%w); is it running? (set FLIP_CONTROL_SOCKET or --socket if it uses another path)", path, err)
	}
	defer c.Close()
	deadline := time.Now().Add(ctlCallTimeout)
	_ = c.SetDeadline(deadline)
	req.Deadline = deadline.UnixNano()
	b, _ := json.Marshal(req)
	if _, err := c.Write(append(b, '\n')); err != nil {
		return resp, fmt.Errorf("write to %s: %w", path, err)
	}
	line, err := bufio.NewReader(c).ReadBytes('\n')
	if err != nil {
		return resp, fmt.Errorf("read from %s: %w", path, err)
	}
	if err := json.Unmarshal(line, &resp); err != nil {
		return resp, fmt.Errorf("bad answer from %s: %w", path, err)
	}
	return resp, nil
}

// operatorHoldDown keeps a box that an operator released from taking the
// service straight back while the other box takes over: long enough for
// the other to see the silence and add the VIP, after which the holder
// check keeps this box out anyway.
func (a *agent) operatorHoldDown() time.Duration { return 3 * a.cfg.DeadAfter }

// onControl carries out an operator's request on the agent's goroutine.
// switchover hands the service to the other box: with the peer channel a
// release and a word to the other box; without it the hand-over that keeps
// the VIP until the other box asks (handover.go). This box then stays out
// for a while, and failback is on again (an operator chose this).
func (a *agent) switchover(ctx context.Context, cause, reason string) {
	if !a.hasPeer() && a.arb == nil {
		a.handOver(ctx, cause, reason)
	} else {
		a.release(ctx, cause, reason)
	}
	a.m.holdOff(a.now(), a.operatorHoldDown())
	a.m.failbackOn()
	a.tellPeerReleased()
}

func (a *agent) onControl(ctx context.Context, req ctlRequest) ctlResponse {
	switch req.Cmd {
	case "status":
		return ctlResponse{OK: true}
	case "release", "switchover":
		if a.m.role != roleActive {
			return ctlResponse{Error: "this box is passive: nothing to release; run it on the active box"}
		}
		if req.To != "" {
			return a.switchTo(req)
		}
		if req.Cmd == "switchover" && a.arb != nil && a.m.pool.observed.Waiting == 0 {
			return ctlResponse{Error: "no other box of the pool is campaigning (run flip status there: down, held down, held, or its own service silent): a switchover would only drop the service; flip release drops it anyway"}
		}
		if req.Cmd == "switchover" && req.Drain {
			timeout := time.Duration(req.DrainNS)
			if timeout <= 0 {
				timeout = a.cfg.DrainTimeout
			}
			if err := a.beginDrain(ctx, timeout, req.Force); err != nil {
				return ctlResponse{Error: err.Error()}
			}
			then := "calling it off"
			if req.Force {
				then = "switching anyway (--force)"
			}
			return ctlResponse{OK: true, Note: fmt.Sprintf("draining: switching over once no calls are left; after %s, %s", timeout, then)}
		}
		if a.m.drain.on {
			return ctlResponse{Error: "a drain is in progress: wait for it, or run `flip switchover` without --drain after it to switch at once"}
		}
		if req.Cmd == "switchover" {
			a.switchover(ctx, causeOperator, "operator: flip switchover")
		} else {
			a.release(ctx, causeOperator, "operator: flip release")
			a.m.holdOff(a.now(), a.operatorHoldDown())
			a.tellPeerReleased()
		}
		return ctlResponse{OK: true, Note: fmt.Sprintf("released; this box will not take over for %s while the other box takes over", a.operatorHoldDown())}
	case "hold":
		d := time.Duration(req.HoldNS)
		if d == 0 {
			d = holdDefault
		}
		by := a.cfg.Name
		if req.By != "" {
			by = req.By + "@" + a.cfg.Name
		}
		note, err := a.hold(d, by)
		if err != nil {
			return ctlResponse{Error: err.Error()}
		}
		return ctlResponse{OK: true, Note: note}
	case "unhold":
		return ctlResponse{OK: true, Note: a.unhold(a.cfg.Name)}
	case "takeover":
		if a.m.role == roleActive {
			return ctlResponse{Error: "this box is already active"}
		}
		if a.arb != nil {
			// A takeover outside the lease would make two holders.
			return ctlResponse{Error: fmt.Sprintf("in a pool the etcd lease decides who holds the VIPs: run `flip switchover --to %s` on the leader (%s)", a.cfg.Name, a.m.pool.observed.Name)}
		}
		cause, note := causeOperator, ""
		for _, v := range a.cfg.VIPs {
			mac, err := a.findHolder(v)
			if err != nil {
				return ctlResponse{Error: fmt.Sprintf("cannot check who holds %s: %v", v.Addr, err)}
			}
			if mac == nil {
				continue
			}
			if !req.Force {
				return ctlResponse{Error: fmt.Sprintf("box %s holds %s: run `flip switchover` there, or `flip takeover --force` here to take it anyway", mac, v.Addr)}
			}
			if a.fence != nil {
				if err := a.runFence(ctx, conflictReport{vip: v, mac: mac}); err != nil {
					return ctlResponse{Error: fmt.Sprintf("fence of box %s failed, not taking over: %v", mac, err)}
				}
			}
			// Like a takeover past a hung holder, this box keeps the VIP
			// in a conflict: the operator said so.
			cause = causeOperatorForced
			note = fmt.Sprintf("forced: overrode box %s, which holds %s; this box keeps the VIP and announces it. If flip still runs on that box and it is the primary, both keep it: stop flip there (or power it off) first", mac, v.Addr)
		}
		a.m.clearHoldDown()
		a.m.failbackOn()
		a.takeover(ctx, cause, "operator: flip takeover")
		if a.m.role != roleActive {
			return ctlResponse{Error: "takeover failed; see the status and the log", Note: note}
		}
		return ctlResponse{OK: true, Note: note}
	default:
		return ctlResponse{Error: fmt.Sprintf("unknown command %q: use status, release, takeover, switchover, hold or unhold", req.Cmd)}
	}
}
