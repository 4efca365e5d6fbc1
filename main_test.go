package main

import (
	"bytes"
	"strings"
	"testing"
)

// TestRealMainExitCodes: usage errors and every bad configuration exit
// with status 2 and a message naming what to fix, before anything on the
// box is touched (none of these gets as far as netlink).
func TestRealMainExitCodes(t *testing.T) {
	tests := []struct {
		name     string
		args     []string
		env      map[string]string
		wantCode int
		wantText string
	}{
		{"help", []string{"--help"}, nil, 0, "usage: flip"},
		{"unknown command", []string{"frobnicate"}, nil, 2, `unknown command "frobnicate"`},
		{"run takes no arguments", []string{"run", "now"}, nil, 2, "takes no arguments"},
		{"no resources", nil, map[string]string{}, 2, "FLIP_RESOURCES: not set"},
		{"missing fonulator", nil, map[string]string{
			"FLIP_RESOURCES": "127.0.0.100/8 fonebridge", "FLIP_FONULATOR": "/nonexistent/fonulator",
			"FLIP_FONEBRIDGE_INTERFACE": "lo",
		}, 2, "FLIP_FONULATOR"},
		{"missing service command", nil, map[string]string{
			"FLIP_RESOURCES": "127.0.0.100/8 asterisk", "FLIP_SERVICE_CMD": "/nonexistent/systemctl {action} {name}",
		}, 2, "FLIP_SERVICE_CMD"},
		{"missing notify hook", nil, map[string]string{
			"FLIP_RESOURCES": "127.0.0.100/8", "FLIP_NOTIFY_CMD": "/nonexistent/hook",
		}, 2, "FLIP_NOTIFY_CMD"},
		{"missing fence", nil, map[string]string{
			"FLIP_RESOURCES": "127.0.0.100/8", "FLIP_FENCE_CMD": "/nonexistent/fence",
		}, 2, "FLIP_FENCE_CMD"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ftSetEnv(t, tt.env)
			var out, errOut bytes.Buffer
			code := realMain(tt.args, &out, &errOut)
			if code != tt.wantCode {
				t.Fatalf("exit %d, want %d; stderr %q", code, tt.wantCode, errOut.String())
			}
			if text := out.String() + errOut.String(); !strings.Contains(text, tt.wantText) {
				t.Fatalf("output %q does not mention %q", text, tt.wantText)
			}
		})
	}
}
