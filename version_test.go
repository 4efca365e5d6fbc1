package main

import (
	"bytes"
	"runtime/debug"
	"strings"
	"testing"
)

// TestVersionLine: the linker's version and commit win; without them flip
// says "dev" and takes the commit from the binary's VCS stamp.
func TestVersionLine(t *testing.T) {
	stamp := func(kv ...string) *debug.BuildInfo {
		bi := &debug.BuildInfo{}
		for i := 0; i < len(kv); i += 2 {
			bi.Settings = append(bi.Settings, debug.BuildSetting{Key: kv[i], Value: kv[i+1]})
		}
		return bi
	}
	full := "0123456789abcdef0123456789abcdef01234567"
	tests := []struct {
		name, ver, rev string
		bi             *debug.BuildInfo
		want           string
	}{
		{"ldflags", "0.3.0", "abc1234", nil, "flip 0.3.0 (commit abc1234)"},
		{"ldflags beat the stamp", "0.3.0", "abc1234", stamp("vcs.revision", full), "flip 0.3.0 (commit abc1234)"},
		{"dirty tree", "0.3.0", "abc1234", stamp("vcs.revision", full, "vcs.modified", "true"), "flip 0.3.0 (commit abc1234-dirty)"},
		{"dev from the stamp", "", "", stamp("vcs.revision", full, "vcs.modified", "false"), "flip dev (commit 0123456789ab)"},
		{"dev without a stamp", "", "", nil, "flip dev"},
		{"dev, stamp without vcs", "", "", stamp("-trimpath", "true"), "flip dev"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := versionLine(tt.ver, tt.rev, tt.bi); got != tt.want {
				t.Errorf("versionLine(%q, %q) = %q, want %q", tt.ver, tt.rev, got, tt.want)
			}
		})
	}
}

// TestVersionCommand: "flip version" prints one line naming the version set
// by the linker and exits 0; arguments are a usage error (2).
func TestVersionCommand(t *testing.T) {
	oldVersion, oldCommit := version, commit
	t.Cleanup(func() { version, commit = oldVersion, oldCommit })
	version, commit = "1.2.3", "deadbee"

	var out, errOut bytes.Buffer
	if code := realMain([]string{"version"}, &out, &errOut); code != 0 {
		t.Fatalf("flip version: exit %d, stderr %q", code, errOut.String())
	}
	if !strings.HasPrefix(out.String(), "flip 1.2.3 (commit deadbee") || strings.Count(out.String(), "\n") != 1 {
		t.Errorf("flip version printed %q, want one line \"flip 1.2.3 (commit deadbee...)\"", out.String())
	}

	out.Reset()
	errOut.Reset()
	if code := realMain([]string{"version", "now"}, &out, &errOut); code != 2 {
		t.Errorf("flip version now: exit %d, want 2", code)
	}
	if !strings.Contains(errOut.String(), "takes no arguments") {
		t.Errorf("flip version now: stderr %q does not say it takes no arguments", errOut.String())
	}

	out.Reset()
	if code := realMain([]string{"help"}, &out, &errOut); code != 0 || !strings.Contains(out.String(), "flip version") {
		t.Errorf("flip help does not list flip version: exit %d, %q", code, out.String())
	}
}
