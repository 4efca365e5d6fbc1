// Command wakeup measures what one periodic wake-up costs a Go process on
// this machine: the reason flip's probe loop is built as it is (a timerfd
// tick, a non-blocking socket collected on the tick, GOMAXPROCS=1; see
// probe_tick.go and fdticker.go). It runs each variant for a while and
// prints the CPU it used as a share of one core.
//
//	go run ./bench/wakeup                 all variants, 20 s each
//	go run ./bench/wakeup -for 5s -interval 20ms
//
// The UDP variants send one 400-byte datagram per tick over loopback to an
// echo server in a child process (its CPU is not counted) and read the
// answer: "blocking" as a reader goroutine would (Go's netpoller wakes it),
// "collected" with a non-blocking read on the next tick (no wake-up of its
// own). Nothing leaves 127.0.0.1.
package main

import (
	"flag"
	"fmt"
	"net"
	"os"
	"os/exec"
	"runtime"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

func main() {
	echo := flag.Bool("echo", false, "run as the echo server (internal)")
	dur := flag.Duration("for", 20*time.Second, "how long each variant runs")
	interval := flag.Duration("interval", 100*time.Millisecond, "tick interval")
	only := flag.String("variant", "", "run this variant only (internal)")
	flag.Parse()
	if *echo {
		serveEcho()
		return
	}
	if *only != "" {
		run(*only, *dur, *interval)
		return
	}
	srv := exec.Command(os.Args[0], "-echo")
	srv.Stderr = os.Stderr
	if err := srv.Start(); err != nil {
		fmt.Fprintln(os.Stderr, "wakeup: echo server:", err)
		os.Exit(1)
	}
	defer srv.Process.Kill()
	time.Sleep(200 * time.Millisecond)
	fmt.Printf("%-34s %-10s %12s %10s\n", "variant", "GOMAXPROCS", "CPU", "% of core")
	for _, v := range []string{"time.Ticker", "timerfd", "time.Ticker+udp-blocking", "time.Ticker+udp-collected", "timerfd+udp-collected"} {
		for _, procs := range []string{"2", "1"} {
			// A fresh process per variant, so runtime state does not carry over.
			c := exec.Command(os.Args[0], "-variant", v, "-for", dur.String(), "-interval", interval.String())
			c.Env = append(os.Environ(), "GOMAXPROCS="+procs)
			c.Stdout, c.Stderr = os.Stdout, os.Stderr
			_ = c.Run()
		}
	}
}

const echoPort = 47001

func serveEcho() {
	c, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1), Port: echoPort})
	if err != nil {
		fmt.Fprintln(os.Stderr, "wakeup: echo:", err)
		os.Exit(1)
	}
	buf := make([]byte, 2048)
	for {
		n, from, err := c.ReadFromUDP(buf)
		if err != nil {
			return
		}
		_, _ = c.WriteToUDP(buf[:n], from)
	}
}

func cpuUsed() time.Duration {
	var ru syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// ticks returns a tick channel of the kind the variant names.
func ticks(variant string, d time.Duration) <-chan struct{} {
	out := make(chan struct{}, 1)
	if len(variant) >= 7 && variant[:7] == "timerfd" {
		fd, err := unix.TimerfdCreate(unix.CLOCK_MONOTONIC, unix.TFD_NONBLOCK|unix.TFD_CLOEXEC)
		if err != nil {
			panic(err)
		}
		ts := unix.NsecToTimespec(int64(d))
		if err := unix.TimerfdSettime(fd, 0, &unix.ItimerSpec{Interval: ts, Value: ts}, nil); err != nil {
			panic(err)
		}
		f := os.NewFile(uintptr(fd), "timerfd")
		go func() {
			var n [8]byte
			for {
				if _, err := f.Read(n[:]); err != nil {
					return
				}
				out <- struct{}{}
			}
		}()
		return out
	}
	t := time.NewTicker(d)
	go func() {
		for range t.C {
			out <- struct{}{}
		}
	}()
	return out
}

func run(variant string, dur, interval time.Duration) {
	to := &unix.SockaddrInet4{Addr: [4]byte{127, 0, 0, 1}, Port: echoPort}
	msg := make([]byte, 400)
	var send func()
	var got chan struct{} // blocking variant: the reader hands answers to the loop
	switch {
	case len(variant) > 13 && variant[len(variant)-13:] == "udp-collected":
		fd, err := unix.Socket(unix.AF_INET, unix.SOCK_DGRAM|unix.SOCK_NONBLOCK|unix.SOCK_CLOEXEC, 0)
		if err != nil {
			panic(err)
		}
		buf := make([]byte, 2048)
		send = func() {
			for range 16 { // what came back since the last tick
				if _, _, err := unix.Recvfrom(fd, buf, unix.MSG_DONTWAIT); err != nil {
					break
				}
			}
			_ = unix.Sendto(fd, msg, 0, to)
		}
	case len(variant) > 12 && variant[len(variant)-12:] == "udp-blocking":
		c, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
		if err != nil {
			panic(err)
		}
		got = make(chan struct{}, 16)
		go func() {
			buf := make([]byte, 2048)
			for {
				if _, _, err := c.ReadFromUDP(buf); err != nil {
					return
				}
				got <- struct{}{}
			}
		}()
		dst := &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1), Port: echoPort}
		send = func() { _, _ = c.WriteToUDP(msg, dst) }
	default:
		send = func() {}
	}
	tick := ticks(variant, interval)
	start, c0 := time.Now(), cpuUsed()
	for n := 0; time.Since(start) < dur && n < int(dur/interval)+10; {
		select {
		case <-tick:
			send()
			n++
		case <-got:
		}
	}
	el, used := time.Since(start), cpuUsed()-c0
	fmt.Printf("%-34s %-10d %12s %9.3f%%\n", variant, runtime.GOMAXPROCS(0), used.Round(time.Microsecond), 100*float64(used)/float64(el))
}
