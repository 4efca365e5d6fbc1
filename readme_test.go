package main

import (
	"os"
	"reflect"
	"regexp"
	"strings"
	"testing"
)

// TestREADMEConfigTable keeps the README's configuration table and the code
// in step: every FLIP_* variable is documented once, nothing else is, and a
// default written as a literal in the README is the code's default.
func TestREADMEConfigTable(t *testing.T) {
	b, err := os.ReadFile("README.md")
	if err != nil {
		t.Fatalf("read README.md: %v", err)
	}
	row := regexp.MustCompile("(?m)^\\| `(FLIP_[A-Z_]+)` \\|.*\\| ([^|]*) \\|$")
	documented := map[string]string{}
	for _, m := range row.FindAllStringSubmatch(string(b), -1) {
		if _, dup := documented[m[1]]; dup {
			t.Errorf("README documents %s twice", m[1])
		}
		documented[m[1]] = strings.TrimSpace(m[2])
	}
	typ := reflect.TypeOf(envSpec{})
	for i := 0; i < typ.NumField(); i++ {
		f := typ.Field(i)
		name := f.Tag.Get("envconfig")
		doc, ok := documented[name]
		if !ok {
			t.Errorf("%s is not in the README's configuration table", name)
			continue
		}
		delete(documented, name)
		def := f.Tag.Get("default")
		if strings.HasPrefix(doc, "`") && def != "" && doc != "`"+def+"`" {
			t.Errorf("%s: README says default %s, code says %q", name, doc, def)
		}
	}
	for name := range documented {
		t.Errorf("README documents %s, which the code does not read", name)
	}
}

// TestREADMEStatesRanges: the README's configuration table states each
// duration's and count's range exactly as config_bounds.go enforces it.
func TestREADMEStatesRanges(t *testing.T) {
	rows := readmeConfigRows(t)
	check := func(name, text string) {
		if !strings.Contains(rows[name], "("+text+")") {
			t.Errorf("README row of %s does not say (%s)", name, text)
		}
	}
	for _, d := range durationBounds {
		check(d.name, d.rangeText())
	}
	for _, c := range countBounds {
		check(c.name, c.rangeText())
	}
}
