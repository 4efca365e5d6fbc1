package main

import (
	"bufio"
	"context"
	"encoding/json"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// Issue 12, item 6: the control socket replaces only a stale socket, never
// a file or a symlinked directory, bounds a request's size, and drops a
// request its client gave up on.

func TestControlSocketRefusesWhatIsNotAStaleSocket(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	log := slog.New(slog.DiscardHandler)
	dir := t.TempDir()

	file := filepath.Join(dir, "flip.sock")
	if err := os.WriteFile(file, []byte("precious"), 0o600); err != nil {
		t.Fatal(err)
	}
	err := serveControl(ctx, file, make(chan ctlCall), nil, log)
	if err == nil || !strings.Contains(err.Error(), "not a socket") {
		t.Fatalf("serveControl over a regular file: %v, want refused", err)
	}
	if b, _ := os.ReadFile(file); string(b) != "precious" {
		t.Fatal("the file was replaced")
	}

	realDir := filepath.Join(dir, "real")
	if err := os.Mkdir(realDir, 0o700); err != nil {
		t.Fatal(err)
	}
	link := filepath.Join(dir, "link")
	if err := os.Symlink(realDir, link); err != nil {
		t.Fatal(err)
	}
	if err := serveControl(ctx, filepath.Join(link, "flip.sock"), make(chan ctlCall), nil, log); err == nil || !strings.Contains(err.Error(), "symbolic link") {
		t.Fatalf("serveControl in a symlinked directory: %v, want refused", err)
	}

	stale := filepath.Join(dir, "stale.sock")
	l, err := net.Listen("unix", stale)
	if err != nil {
		t.Fatal(err)
	}
	l.(*net.UnixListener).SetUnlinkOnClose(false)
	l.Close() // a killed agent's socket: still there, nobody listening
	if err := serveControl(ctx, stale, make(chan ctlCall), nil, log); err != nil {
		t.Fatalf("serveControl over a stale socket: %v, want it replaced", err)
	}
}

func ctlDial(t *testing.T, path, line string) ctlResponse {
	t.Helper()
	c, err := net.Dial("unix", path)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(5 * time.Second))
	if _, err := c.Write([]byte(line)); err != nil {
		t.Fatal(err)
	}
	var resp ctlResponse
	b, err := bufio.NewReader(c).ReadBytes('\n')
	if err != nil {
		t.Fatalf("read: %v", err)
	}
	if err := json.Unmarshal(b, &resp); err != nil {
		t.Fatal(err)
	}
	return resp
}

func TestControlBoundsRequestsAndCarriesTheDeadline(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	path := filepath.Join(t.TempDir(), "flip.sock")
	calls := make(chan ctlCall, 1)
	if err := serveControl(ctx, path, calls, nil, slog.New(slog.DiscardHandler)); err != nil {
		t.Fatal(err)
	}
	resp := ctlDial(t, path, strings.Repeat("x", 2*ctlMaxRequest))
	if resp.OK || !strings.Contains(resp.Error, "longer than") {
		t.Fatalf("oversized request: %+v, want refused as too long", resp)
	}

	// A request whose client already gave up reaches the loop marked
	// expired; the loop drops it (agent.run).
	go func() {
		call := <-calls
		if !call.expired(time.Now()) {
			call.reply <- ctlResponse{Error: "not expired"}
			return
		}
		call.reply <- ctlResponse{Error: "dropped"}
	}()
	past := time.Now().Add(-time.Second).UnixNano()
	b, _ := json.Marshal(ctlRequest{Cmd: "takeover", Deadline: past})
	if resp := ctlDial(t, path, string(b)+"\n"); resp.Error != "dropped" {
		t.Fatalf("a request past its client's deadline: %+v, want it expired", resp)
	}
}

// TestControlStatusWithoutTheLoop: issue 12, item 7. `flip status` is
// answered from the tracker while the agent's loop is busy (nobody reads
// the calls), and says which step runs and for how long.
func TestControlStatusWithoutTheLoop(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	path := filepath.Join(t.TempDir(), "flip.sock")
	tr := newStateTracker(&config{Name: "box-a"})
	tr.stepBegins("start", "fonebridge", time.Now().Add(-3*time.Second))
	status := func() ctlResponse { return ctlResponse{OK: true, Status: tr.Snapshot()} }
	if err := serveControl(ctx, path, make(chan ctlCall), status, slog.New(slog.DiscardHandler)); err != nil {
		t.Fatal(err)
	}
	resp := ctlDial(t, path, `{"cmd":"status"}`+"\n")
	b := resp.Status.Busy
	if !resp.OK || b == nil || b.Resource != "fonebridge" || b.ForMS < 3000 {
		t.Fatalf("status while busy: %+v (busy %+v), want fonebridge for 3 s or more", resp, b)
	}
}
