package main

import (
	"os"
	"regexp"
	"sort"
	"strings"
	"testing"
)

// manPage is the hand-written flip(8) the Debian package installs.
const manPage = "docs/flip.8"

// readmeConfigRows reads README.md's configuration table as readme_test.go
// does: variable name -> the rest of its row (meaning | default |).
func readmeConfigRows(t *testing.T) map[string]string {
	t.Helper()
	b, err := os.ReadFile("README.md")
	if err != nil {
		t.Fatalf("read README.md: %v", err)
	}
	rows := map[string]string{}
	for _, m := range regexp.MustCompile("(?m)^\\| `(FLIP_[A-Z_]+)` \\|(.*)$").FindAllStringSubmatch(string(b), -1) {
		rows[m[1]] = m[2]
	}
	return rows
}

// manPlain turns roff source into plain words: the arguments of font
// macros joined as groff prints them, escapes dropped, other requests gone.
func manPlain(src string) string {
	var out []string
	for _, line := range strings.Split(src, "\n") {
		if strings.HasPrefix(line, ".\\\"") {
			continue
		}
		if strings.HasPrefix(line, ".") {
			f := strings.Fields(line)
			switch f[0] {
			case ".B", ".I":
				line = strings.Join(f[1:], " ")
			case ".BR", ".RB", ".BI", ".IB", ".IR", ".RI":
				var words []string
				for _, w := range regexp.MustCompile(`"[^"]*"|\S+`).FindAllString(strings.TrimSpace(line[len(f[0]):]), -1) {
					words = append(words, strings.Trim(w, `"`))
				}
				line = strings.Join(words, "")
			default:
				continue
			}
		}
		out = append(out, line)
	}
	s := strings.Join(out, " ")
	s = regexp.MustCompile(`\\f(\(..|\[[^]]*\]|.)`).ReplaceAllString(s, "")
	s = strings.NewReplacer(`\-`, "-", `\&`, "", `\%`, "", `\(mu`, "×", `\(em`, "—", `\(aq`, "'", `\(lq`, "“", `\(rq`, "”", `\e`, `\`).Replace(s)
	return strings.Join(strings.Fields(s), " ")
}

// manEnvironment returns each ".TP / .B FLIP_..." entry of the man page's
// ENVIRONMENT section as plain text, and the names in the order they appear.
func manEnvironment(t *testing.T) (map[string]string, []string) {
	t.Helper()
	b, err := os.ReadFile(manPage)
	if err != nil {
		t.Fatalf("read %s: %v", manPage, err)
	}
	src := string(b)
	start := strings.Index(src, "\n.SH ENVIRONMENT\n")
	if start < 0 {
		t.Fatalf("%s has no ENVIRONMENT section", manPage)
	}
	section := src[start+1:]
	if end := strings.Index(section[1:], "\n.SH "); end >= 0 {
		section = section[:end+1]
	}
	entries := map[string]string{}
	var order []string
	for _, part := range strings.Split(section, "\n.TP\n")[1:] {
		tag, body, _ := strings.Cut(part, "\n")
		m := regexp.MustCompile(`^\.B (FLIP_[A-Z_]+)$`).FindStringSubmatch(tag)
		if m == nil {
			t.Errorf("%s: ENVIRONMENT entry tagged %q, want \".B FLIP_NAME\"", manPage, tag)
			continue
		}
		if _, dup := entries[m[1]]; dup {
			t.Errorf("%s documents %s twice", manPage, m[1])
		}
		entries[m[1]] = manPlain(body)
		order = append(order, m[1])
	}
	return entries, order
}

// TestManpageEnvironment keeps flip(8) in step with the README's
// configuration table: every variable in the table has an entry, nothing
// else has, and each entry gives the table's default and range.
func TestManpageEnvironment(t *testing.T) {
	rows := readmeConfigRows(t)
	entries, _ := manEnvironment(t)
	if len(rows) == 0 {
		t.Fatal("README.md has no configuration table rows")
	}
	var missing []string
	for name := range rows {
		if _, ok := entries[name]; !ok {
			missing = append(missing, name)
		}
	}
	sort.Strings(missing)
	for _, name := range missing {
		t.Errorf("%s is in the README's configuration table but not in %s (ENVIRONMENT)", name, manPage)
	}
	for name, text := range entries {
		row, ok := rows[name]
		if !ok {
			t.Errorf("%s documents %s, which the README's configuration table does not have", manPage, name)
			continue
		}
		cells := strings.Split(row, "|")
		def := strings.TrimSpace(cells[len(cells)-2])
		switch {
		case def == "required":
			if !strings.Contains(text, "Required.") {
				t.Errorf("%s: README says required, %s does not say \"Required.\": %q", name, manPage, text)
			}
		case strings.HasPrefix(def, "`") && strings.HasSuffix(def, "`"):
			want := "Default: " + strings.Trim(def, "`")
			if !regexp.MustCompile(regexp.QuoteMeta(want) + `([^0-9A-Za-z]|$)`).MatchString(text) {
				t.Errorf("%s: README says default %s, %s does not say %q: %q", name, def, manPage, want, text)
			}
		default:
			if !strings.Contains(text, "Default: ") {
				t.Errorf("%s: README says default %s, %s gives no \"Default: \": %q", name, def, manPage, text)
			}
		}
		if r := regexp.MustCompile(`\(range: [^)]*\)`).FindString(row); r != "" && !strings.Contains(text, r) {
			t.Errorf("%s: README says %s, %s does not: %q", name, r, manPage, text)
		}
	}
}

// TestManpageNamesOnlyKnownVariables: any FLIP_ name anywhere in flip(8)
// (not only in ENVIRONMENT) is one the README's configuration table names,
// so a renamed or removed variable cannot linger in the man page.
func TestManpageNamesOnlyKnownVariables(t *testing.T) {
	rows := readmeConfigRows(t)
	var table strings.Builder
	for name, row := range rows {
		table.WriteString(name + " " + row + "\n")
	}
	b, err := os.ReadFile(manPage)
	if err != nil {
		t.Fatalf("read %s: %v", manPage, err)
	}
	seen := map[string]bool{}
	for _, name := range regexp.MustCompile(`FLIP_[A-Z_]*[A-Z]`).FindAllString(manPlain(string(b)), -1) {
		if seen[name] {
			continue
		}
		seen[name] = true
		if !regexp.MustCompile(`\b` + name + `\b`).MatchString(table.String()) {
			t.Errorf("%s names %s, which the README's configuration table does not", manPage, name)
		}
	}
}

// TestManpageCommands: flip(8) describes every command of flip's usage text.
func TestManpageCommands(t *testing.T) {
	b, err := os.ReadFile(manPage)
	if err != nil {
		t.Fatalf("read %s: %v", manPage, err)
	}
	src := string(b)
	for _, m := range regexp.MustCompile(`(?m)^(?:usage:| )\s+flip \[?([a-z]+)`).FindAllStringSubmatch(usageText, -1) {
		cmd := m[1]
		if !regexp.MustCompile(`(?m)^\.TP\n(\.B |\\fB)` + cmd + `\b`).MatchString(src) {
			t.Errorf("%s has no COMMANDS entry for %q (flip help lists it)", manPage, cmd)
		}
	}
}
