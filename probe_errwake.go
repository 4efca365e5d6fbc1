package main

import (
	"fmt"
	"os"

	"golang.org/x/sys/unix"
)

// The tick probe reads its socket only on the probe tick, so that an
// arriving answer wakes nobody (probe_tick.go). A refusal, though, is news
// worth a wake-up: the active box's Asterisk has died, and with the other
// box ready every millisecond is outage (fastrefusal.go). errorWatch waits
// for socket errors alone: an epoll set that holds the probe socket with
// no event asked for still reports EPOLLERR (Linux always adds it), and an
// ICMP error queued under IP_RECVERR raises it, while answers (EPOLLIN)
// are filtered out before they wake anyone. Edge-triggered, so each new
// error wakes once; the tick's collect drains the error queue as before.
// Go's netpoller waits on the epoll descriptor itself, so no thread is
// parked in a system call and Close ends the watch.

// errorWatch reports socket errors on the probe socket.
type errorWatch struct {
	C <-chan struct{} // one value per burst of errors; dropped if not read
	f *os.File
}

// watchErrors starts an errorWatch on p's socket.
func (p *tickProbe) watchErrors() (*errorWatch, error) {
	epfd, err := unix.EpollCreate1(unix.EPOLL_CLOEXEC)
	if err != nil {
		return nil, fmt.Errorf("probe error watch on %s: epoll_create1: %w", p.target, err)
	}
	ev := unix.EpollEvent{Events: unix.EPOLLET, Fd: int32(p.fd)} // EPOLLERR is implied
	if err := unix.EpollCtl(epfd, unix.EPOLL_CTL_ADD, p.fd, &ev); err != nil {
		unix.Close(epfd)
		return nil, fmt.Errorf("probe error watch on %s: epoll_ctl: %w", p.target, err)
	}
	if err := unix.SetNonblock(epfd, true); err != nil {
		unix.Close(epfd)
		return nil, fmt.Errorf("probe error watch on %s: %w", p.target, err)
	}
	f := os.NewFile(uintptr(epfd), "probe-errors")
	rc, err := f.SyscallConn()
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("probe error watch on %s: %w", p.target, err)
	}
	c := make(chan struct{}, 1)
	go func() {
		events := make([]unix.EpollEvent, 1)
		for {
			got := false
			var werr error
			err := rc.Read(func(fd uintptr) bool {
				n, err := unix.EpollWait(int(fd), events, 0)
				got, werr = n > 0, err
				return got || (err != nil && err != unix.EINTR)
			})
			if err != nil || (werr != nil && werr != unix.EINTR) {
				return // closed; or epoll broke, and the tick still collects
			}
			if got {
				select {
				case c <- struct{}{}:
				default:
				}
			}
		}
	}()
	return &errorWatch{C: c, f: f}, nil
}

// Close ends the watch.
func (w *errorWatch) Close() error { return w.f.Close() }
