package main

import (
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// TestParseEnvFile follows systemd's EnvironmentFile= rules for what
// flip's file uses, and names the line it cannot read.
func TestParseEnvFile(t *testing.T) {
	in := "# comment\n; also a comment\n\n  FLIP_RESOURCES=192.0.2.10/24 fonebridge asterisk  \n" +
		"FLIP_CALLS_CMD=asterisk -rx 'core show channels count'\nFLIP_NAME=\"pbx 1\"\nexport FLIP_PRIMARY=true\r\nOTHER=x\n"
	got, err := parseEnvFile(strings.NewReader(in), "f")
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]string{
		"FLIP_RESOURCES": "192.0.2.10/24 fonebridge asterisk",
		"FLIP_CALLS_CMD": "asterisk -rx 'core show channels count'",
		"FLIP_NAME":      "pbx 1",
		"FLIP_PRIMARY":   "true",
		"OTHER":          "x",
	}
	if len(got) != len(want) {
		t.Fatalf("got %+v", got)
	}
	for _, a := range got {
		if want[a.Key] != a.Value {
			t.Errorf("%s = %q, want %q", a.Key, a.Value, want[a.Key])
		}
	}
	if _, err := parseEnvFile(strings.NewReader("FLIP_A=1\nnot an assignment\n"), "/etc/default/flip"); err == nil || !strings.Contains(err.Error(), "/etc/default/flip:2") {
		t.Fatalf("bad line: %v, want the file and line named", err)
	}
}

// TestEnvFileReadsTheDefaults: deploy/flip.default with every line
// uncommented reads the same under systemd's rules (parseEnvFile) and
// docker's --env-file (the text after the first '=', as is), so the file
// means one thing to both; and flip check --env-file takes it.
func TestEnvFileReadsTheDefaults(t *testing.T) {
	b, err := os.ReadFile(filepath.Join("deploy", "flip.default"))
	if err != nil {
		t.Fatal(err)
	}
	assign := regexp.MustCompile(`^#(FLIP_[A-Z_]+=.*)$`)
	var uncommented []string
	docker := map[string]string{}
	for _, line := range strings.Split(string(b), "\n") {
		if m := assign.FindStringSubmatch(line); m != nil {
			uncommented = append(uncommented, m[1])
			k, v, _ := strings.Cut(m[1], "=")
			docker[k] = v // docker keeps the last one
		}
	}
	got, err := parseEnvFile(strings.NewReader(strings.Join(uncommented, "\n")), "flip.default")
	if err != nil {
		t.Fatal(err)
	}
	systemd := map[string]string{}
	for _, a := range got {
		systemd[a.Key] = a.Value
	}
	if len(systemd) != len(docker) {
		t.Fatalf("systemd reads %d variables, docker %d", len(systemd), len(docker))
	}
	for k, v := range docker {
		if systemd[k] != v {
			t.Errorf("%s: systemd reads %q, docker %q", k, systemd[k], v)
		}
	}
	dir := t.TempDir()
	path := filepath.Join(dir, "flip")
	if err := os.WriteFile(path, []byte("# only the resources\nFLIP_RESOURCES=192.0.2.110/24 fonebridge asterisk\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	t.Setenv("FLIP_PROBE_INTERVAL", "not a duration") // ignored with --env-file
	if err := useEnvFile(path); err != nil {
		t.Fatal(err)
	}
	if v, ok := os.LookupEnv("FLIP_PROBE_INTERVAL"); ok {
		t.Fatalf("FLIP_PROBE_INTERVAL=%q from the environment survived --env-file", v)
	}
	if got := os.Getenv("FLIP_RESOURCES"); got != "192.0.2.110/24 fonebridge asterisk" {
		t.Fatalf("FLIP_RESOURCES = %q", got)
	}
	os.Unsetenv("FLIP_RESOURCES")
}
