package main

import (
	"bufio"
	"fmt"
	"io"
	"os"
	"strings"
)

// /etc/default/flip is read by systemd (EnvironmentFile=) and by
// `docker run --env-file`; a shell's `set -a; . /etc/default/flip` is not
// the same thing: it runs an unquoted value with blanks ("FLIP_RESOURCES=
// 192.0.2.10/24 fonebridge asterisk") as a command. So `flip check
// --env-file PATH` reads the file itself, the way systemd does, and an
// operator never has to source it.

// envAssignment is one KEY=VALUE line of an environment file.
type envAssignment struct {
	Key, Value string
	Line       int
}

// parseEnvFile reads KEY=VALUE lines with systemd's EnvironmentFile= rules
// for the cases flip's file uses: blank lines and lines starting with # or
// ; are comments; blanks around the key and the value are dropped; a value
// wholly in "..." or '...' loses its quotes (docker --env-file would keep
// them, so deploy/flip.default never quotes; TestEnvFileReadsTheDefaults).
// A line that is not an assignment is an error naming the file and line.
func parseEnvFile(r io.Reader, name string) ([]envAssignment, error) {
	var out []envAssignment
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(strings.TrimSuffix(sc.Text(), "\r"))
		if line == "" || line[0] == '#' || line[0] == ';' {
			continue
		}
		key, value, ok := strings.Cut(line, "=")
		key = strings.TrimSpace(strings.TrimPrefix(key, "export "))
		if !ok || key == "" || strings.ContainsAny(key, " \t\"'") {
			return nil, fmt.Errorf("%s:%d: not a VAR=value line: %q", name, n, line)
		}
		value = strings.TrimSpace(value)
		if len(value) >= 2 && (value[0] == '"' || value[0] == '\'') && value[len(value)-1] == value[0] {
			value = value[1 : len(value)-1]
		}
		out = append(out, envAssignment{Key: key, Value: value, Line: n})
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	return out, nil
}

// useEnvFile makes the FLIP_* variables of path the only ones this process
// sees (a one-off command such as flip check): those already in the
// environment are dropped, so a leftover export cannot mix in.
func useEnvFile(path string) error {
	f, err := os.Open(path)
	if err != nil {
		return fmt.Errorf("--env-file: %w", err)
	}
	defer f.Close()
	vars, err := parseEnvFile(f, path)
	if err != nil {
		return fmt.Errorf("--env-file: %w", err)
	}
	for _, kv := range os.Environ() {
		if k, _, _ := strings.Cut(kv, "="); strings.HasPrefix(k, "FLIP_") && !hookVariables[k] {
			os.Unsetenv(k)
		}
	}
	for _, a := range vars {
		if strings.HasPrefix(a.Key, "FLIP_") {
			os.Setenv(a.Key, a.Value)
		}
	}
	return nil
}
