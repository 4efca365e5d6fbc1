package main

import (
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// TestPjsipSampleMatchesTheProbe: deploy/pjsip-flip.conf identifies the
// probes by their source address, which is the box's own address flip
// binds its probe socket to (FLIP_SOURCE): its match lines name both
// example boxes, and the probe's From, To and User-Agent are what the
// file's comment promises.
func TestPjsipSampleMatchesTheProbe(t *testing.T) {
	b, err := os.ReadFile(filepath.Join("deploy", "pjsip-flip.conf"))
	if err != nil {
		t.Fatal(err)
	}
	conf := string(b)
	matches := regexp.MustCompile(`(?m)^match\s*=\s*(\S+)`).FindAllStringSubmatch(conf, -1)
	var got []string
	for _, m := range matches {
		got = append(got, m[1])
	}
	if strings.Join(got, " ") != "192.0.2.11 192.0.2.12" {
		t.Fatalf("match lines %q, want both boxes' own addresses", got)
	}
	for _, want := range []string{"type = endpoint", "type = identify", "endpoint = flip-probe", "ignoreip = 127.0.0.1/8 ::1 192.0.2.11 192.0.2.12"} {
		if !strings.Contains(conf, want) {
			t.Errorf("deploy/pjsip-flip.conf lacks %q", want)
		}
	}
	_, msg := optionsRequest("sip:192.0.2.100:5060", "SIP/2.0/UDP 192.0.2.11:40000", "sip:flip@192.0.2.11")
	for _, h := range []string{"From: <sip:flip@192.0.2.11>", "To: <sip:192.0.2.100:5060>", "User-Agent: flip\r\n", "OPTIONS sip:192.0.2.100:5060 SIP/2.0"} {
		if !strings.Contains(string(msg), h) {
			t.Errorf("the probe has no %q; the comment of deploy/pjsip-flip.conf says it does:\n%s", h, msg)
		}
	}
	if !strings.Contains(conf, "From <sip:flip@OWN-ADDRESS>") || !strings.Contains(conf, `User-Agent "flip"`) {
		t.Error("deploy/pjsip-flip.conf's comment does not describe the probe")
	}
}
