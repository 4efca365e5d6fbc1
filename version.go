package main

import (
	"fmt"
	"io"
	"runtime/debug"
)

// version and commit name the build. A release or package build sets them
// with the linker (packaging/build-deb.sh does):
//
//	go build -ldflags "-X main.version=0.3.0 -X main.commit=abc1234" .
//
// A plain "go build" leaves them empty: flip version then says "dev" and
// takes the commit from the VCS stamp Go puts in the binary, if any.
var (
	version string
	commit  string
)

// runVersion is "flip version": one line, exit status 0.
func runVersion(args []string, stdout, stderr io.Writer) int {
	if len(args) > 0 {
		if len(args) == 1 && (args[0] == "-h" || args[0] == "-help" || args[0] == "--help") {
			fmt.Fprintln(stdout, "usage: flip version    print flip's version and the git commit it was built from")
			return 0
		}
		fmt.Fprintf(stderr, "flip version: takes no arguments (got %q)\n", args)
		return 2
	}
	bi, _ := debug.ReadBuildInfo() // nil when the binary carries none
	fmt.Fprintln(stdout, versionLine(version, commit, bi))
	return 0
}

// versionLine is "flip VERSION (commit C)": VERSION and C from the linker
// flags, else "dev" and the VCS revision in bi (12 hex digits, "-dirty" when
// the work tree had changes). Without any commit it is "flip VERSION".
func versionLine(ver, rev string, bi *debug.BuildInfo) string {
	if ver == "" {
		ver = "dev"
	}
	dirty := false
	if bi != nil {
		for _, s := range bi.Settings {
			switch s.Key {
			case "vcs.revision":
				if rev == "" {
					rev = s.Value
					if len(rev) > 12 {
						rev = rev[:12]
					}
				}
			case "vcs.modified":
				dirty = s.Value == "true"
			}
		}
	}
	if rev == "" {
		return "flip " + ver
	}
	if dirty {
		rev += "-dirty"
	}
	return "flip " + ver + " (commit " + rev + ")"
}
