package main

import (
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
)

// docFiles are the documents an operator reads.
func docFiles(t *testing.T) []string {
	t.Helper()
	files := []string{"README.md", "BENCHMARKS.md", "deploy/flip.default", "deploy/flip.service", "docs/flip.8", "packaging/README.Debian"}
	more, err := filepath.Glob("docs/*.md")
	if err != nil {
		t.Fatal(err)
	}
	return append(files, more...)
}

// TestDocsNameOnlyFilesThatExist: every repository path a document names
// (docs/…, bench/…, testdata/…, deploy/…, packaging/…, tools/…,
// scripts/…, a top-level NAME.md or script) is in the repository, and no
// document points at an issue number that only the work queue knows.
func TestDocsNameOnlyFilesThatExist(t *testing.T) {
	path := regexp.MustCompile("(?:^|[\\s`(\\[])((?:docs|bench|testdata|deploy|packaging|tools|scripts)/[A-Za-z0-9_./-]*[A-Za-z0-9_-]|[A-Z][A-Z-]+\\.md|[a-z_]+(?:_test)?\\.sh)")
	issue := regexp.MustCompile(`(?i)\bissue #[0-9]+`)
	for _, f := range docFiles(t) {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatalf("read %s: %v", f, err)
		}
		for _, m := range path.FindAllStringSubmatch(string(b), -1) {
			p := strings.TrimSuffix(m[1], ".")
			if strings.Contains(p, "results/") || strings.HasSuffix(p, "/") {
				continue // bench output, made by the scripts
			}
			if _, err := os.Stat(p); err != nil {
				if _, err2 := os.Stat(filepath.Join("testdata", p)); err2 == nil && strings.HasSuffix(p, ".sh") {
					continue // a testdata script named without its directory
				}
				if _, err2 := os.Stat(filepath.Join("packaging", p)); err2 == nil {
					continue
				}
				if _, err2 := os.Stat(filepath.Join("bench", p)); err2 == nil {
					continue
				}
				t.Errorf("%s names %s, which is not in the repository", f, p)
			}
		}
		if m := issue.FindString(string(b)); m != "" {
			t.Errorf("%s points at %q, which is not in the repository", f, m)
		}
	}
}

// TestDocsAgreeOnTheMetricsPort: every example of FLIP_METRICS_ADDR and of
// the metrics URL uses the same port.
func TestDocsAgreeOnTheMetricsPort(t *testing.T) {
	port := regexp.MustCompile(`(?:FLIP_METRICS_ADDR[=` + "`" + ` ,]+[^\s:]*|127\.0\.0\.1|localhost):(9[0-9]{3})\b`)
	var seen []string
	for _, f := range docFiles(t) {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		for _, m := range port.FindAllStringSubmatch(string(b), -1) {
			if !slices.Contains(seen, m[1]) {
				seen = append(seen, m[1])
			}
			if m[1] != "9641" {
				t.Errorf("%s uses metrics port %s in %q; the documents use 9641", f, m[1], m[0])
			}
		}
	}
	if len(seen) == 0 {
		t.Fatal("no metrics port example found: the pattern is broken")
	}
}

// TestRunbookCommandsAreTested: every flip command of docs/runbook.md, with
// its flags, is one the namespace tests run.
func TestRunbookCommandsAreTested(t *testing.T) {
	b, err := os.ReadFile(filepath.Join("docs", "runbook.md"))
	if err != nil {
		t.Fatal(err)
	}
	var tests strings.Builder
	files, _ := filepath.Glob("testdata/*.sh")
	for _, f := range append(files, "netns_test.sh") {
		tb, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		tests.Write(tb)
	}
	// In the tests: `ctl BOX CMD ARGS` (BOX a letter or "$var") or
	// `$LAB_BIN/flip CMD ARGS`.
	used := regexp.MustCompile(`(?:ctl (?:[abd]|"\$[a-z_]+")|LAB_BIN/flip\"?) ([a-z]+)((?: --?[a-z-]+(?:=\S+)?(?: [^-\s>|&;]\S*)?)*)`)
	tested := map[string]bool{}
	flagRE := regexp.MustCompile(`--?[a-z-]+`)
	for _, m := range used.FindAllStringSubmatch(tests.String(), -1) {
		tested[m[1]] = true
		for _, f := range flagRE.FindAllString(m[2], -1) {
			tested[m[1]+" "+f] = true
		}
	}
	cmdRE := regexp.MustCompile("(?m)^flip ([a-z]+)([^#\\n]*)")
	found := 0
	for _, block := range strings.Split(string(b), "```")[1:] {
		for _, m := range cmdRE.FindAllStringSubmatch(block, -1) {
			found++
			if !tested[m[1]] {
				t.Errorf("docs/runbook.md runs `flip %s`, which no namespace test runs", m[1])
			}
			for _, f := range flagRE.FindAllString(m[2], -1) {
				if !tested[m[1]+" "+f] {
					t.Errorf("docs/runbook.md runs `flip %s %s`, which no namespace test runs", m[1], f)
				}
			}
		}
	}
	if found < 5 {
		t.Fatalf("found %d flip commands in docs/runbook.md: the pattern is broken", found)
	}
}

// TestDocsAgreeWithTheDefaultsFile: what the documents show of
// /etc/default/flip follows its rules (one VAR=value per line, values not
// quoted: docker --env-file keeps quotes), no document tells a shell to
// source it, every `docker run` has the restart policy and the /run/flip
// volume, and flip.default does not call VIPs IPv4 only.
func TestDocsAgreeWithTheDefaultsFile(t *testing.T) {
	assign := regexp.MustCompile(`^(FLIP_[A-Z_]+)=(.*)$`)
	source := regexp.MustCompile(`(?:^|[;&\s])(?:\.|source) +/etc/default/flip`)
	for _, f := range docFiles(t) {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		text := string(b)
		if f != "deploy/flip.default" {
			blocks := strings.Split(text, "```")
			for i := 1; i < len(blocks); i += 2 {
				for _, line := range strings.Split(blocks[i], "\n") {
					m := assign.FindStringSubmatch(strings.TrimSpace(line))
					if m == nil {
						continue
					}
					if strings.HasPrefix(m[2], `"`) || strings.HasPrefix(m[2], "'") {
						t.Errorf("%s: %q quotes its value; /etc/default/flip never does (docker --env-file keeps quotes)", f, line)
					}
					if strings.Contains(m[2], " FLIP_") {
						t.Errorf("%s: %q sets two variables on one line; /etc/default/flip has one per line", f, line)
					}
				}
			}
		}
		if m := source.FindString(text); m != "" {
			t.Errorf("%s tells a shell to source /etc/default/flip (%q): unquoted values with blanks run as commands; use flip check --env-file", f, m)
		}
		blocks := strings.Split(text, "```")
		for i := 1; i < len(blocks); i += 2 {
			for _, run := range regexp.MustCompile(`docker run(?:[^\n]*\\\n)*[^\n]*`).FindAllString(blocks[i], -1) {
				if !strings.Contains(run, "--restart") || !strings.Contains(run, "-v /run/flip:/run/flip") {
					t.Errorf("%s: %q lacks --restart or -v /run/flip:/run/flip", f, run)
				}
			}
		}
	}
	b, err := os.ReadFile(filepath.Join("deploy", "flip.default"))
	if err != nil {
		t.Fatal(err)
	}
	if regexp.MustCompile(`IPv4\s+VIPs`).Match(b) {
		t.Error("deploy/flip.default says IPv4 VIPs; IPv6 VIPs work too (README, IPv6)")
	}
}
