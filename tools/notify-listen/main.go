// Command notify-listen stands in for systemd's end of the sd_notify
// protocol in the namespace tests: it binds a unix datagram socket and
// writes every message it receives to a file, one line per datagram
// ("UNIX-MILLISECONDS FIELD|FIELD|…"), so a test can check what flip told
// systemd and when. It runs until killed.
package main

import (
	"flag"
	"fmt"
	"net"
	"os"
	"strings"
	"time"
)

func main() {
	path := flag.String("socket", "", "unix datagram socket to create (NOTIFY_SOCKET)")
	out := flag.String("out", "", "file the messages are appended to")
	flag.Parse()
	if *path == "" || *out == "" {
		fmt.Fprintln(os.Stderr, "usage: notify-listen -socket PATH -out FILE")
		os.Exit(2)
	}
	_ = os.Remove(*path)
	c, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: *path, Net: "unixgram"})
	if err != nil {
		fmt.Fprintln(os.Stderr, "notify-listen:", err)
		os.Exit(1)
	}
	f, err := os.OpenFile(*out, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		fmt.Fprintln(os.Stderr, "notify-listen:", err)
		os.Exit(1)
	}
	buf := make([]byte, 4096)
	for {
		n, _, err := c.ReadFromUnix(buf)
		if err != nil {
			fmt.Fprintln(os.Stderr, "notify-listen:", err)
			os.Exit(1)
		}
		msg := strings.ReplaceAll(strings.TrimRight(string(buf[:n]), "\n"), "\n", "|")
		fmt.Fprintf(f, "%d %s\n", time.Now().UnixMilli(), msg)
	}
}
