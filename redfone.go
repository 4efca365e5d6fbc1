// redfone.conf: the grammar of fonulator's strict lexer and the rendering
// of this box's MAC into server=.

package main

import (
	"bytes"
	"errors"
	"fmt"
	"net"
	"regexp"
	"slices"
	"strings"
)

// redfoneError is one problem in a redfone.conf. renderRedfone returns one
// per problem found (joined with errors.Join when there are several), so an
// operator can fix the whole file in one go.
type redfoneError struct {
	Line    int    // 1-based line in the file
	Problem string // what is wrong and how to fix it
}

func (e *redfoneError) Error() string {
	return fmt.Sprintf("redfone.conf line %d: %s", e.Line, e.Problem)
}

// redfoneLineRules are the shape rules of fonulator's flex lexer, which
// anchors every directive with ^ and $ and has no notion of inline comments:
// a line that breaks one of them becomes a "bad token" (exit 2) at the worst
// moment, during a takeover. They apply to every non-empty line that is not
// a comment; the first rule a line breaks is reported.
var redfoneLineRules = []struct {
	bad     func(line string) bool
	problem string
}{
	{
		func(l string) bool { return strings.HasPrefix(l, ";") },
		"';' comment; fonulator only knows comments with '#' in column 1",
	},
	{
		func(l string) bool { return strings.TrimLeft(l, " \t") != l },
		"leading blank; remove the spaces or tabs at the start of the line",
	},
	{
		func(l string) bool { return strings.TrimRight(l, " \t") != l },
		"trailing blank; remove the spaces or tabs at the end of the line",
	},
	{
		func(l string) bool { return strings.ContainsAny(l, "#;") },
		"comment not in column 1; fonulator has no end-of-line comments, put the comment on its own line starting with '#'",
	},
	{
		func(l string) bool {
			return strings.Contains(l, " =") || strings.Contains(l, "= ") ||
				strings.Contains(l, "\t=") || strings.Contains(l, "=\t")
		},
		"blank around '='; write key=value with no spaces",
	},
}

// redfoneSection is the kind of a [section] header.
type redfoneSection string

const (
	redfoneNone    redfoneSection = ""
	redfoneGlobals redfoneSection = "globals"
	redfoneSpan    redfoneSection = "span"
	redfoneDSP     redfoneSection = "dsp"
	redfoneAny     redfoneSection = "*" // directive accepted in any section
)

// redfoneHeaderRE matches the only headers the lexer knows ([spanN] takes a
// single digit); it is caseless like the lexer.
var redfoneHeaderRE = regexp.MustCompile(`(?i)^\[(globals|dsp|span[0-9])\]$`)

// redfoneDirectives lists what fonulator accepts inside sections: the value
// its lexer wants (value nil: a bare flag without '='; want describes it for
// the error) and the section its parser accepts it in. Anything else stops
// fonulator with exit 2 or 3, which retrying cannot fix, so it is caught here
// before anything is touched.
var redfoneDirectives = map[string]struct {
	value   *regexp.Regexp
	want    string
	section redfoneSection
}{
	"fb":   {regexp.MustCompile(`^[a-zA-Z0-9.]+$`), "an IPv4 address or a plain hostname (letters, digits, dots)", redfoneGlobals},
	"port": {regexp.MustCompile(`^[12]$`), "1 or 2", redfoneGlobals},
	// The lexer would take mixed separators, but fonulator's sscanf then
	// rejects them in the middle of a run.
	"server":      {regexp.MustCompile(`^([[:xdigit:]]{2}:){5}[[:xdigit:]]{2}$|^([[:xdigit:]]{2}-){5}[[:xdigit:]]{2}$`), "exactly one MAC address: six hex octets all separated by ':' or all by '-', e.g. 00:11:22:33:44:55", redfoneGlobals},
	"priorities":  {regexp.MustCompile(`^[0-9],[0-9],[0-9],[0-9]$`), "four digits separated by commas, e.g. 0,1,2,3", redfoneGlobals},
	"wplloff":     {nil, "", redfoneGlobals},
	"framing":     {regexp.MustCompile(`(?i)^(esf|sf|ccs|cas)$`), "esf, sf, ccs or cas", redfoneSpan},
	"encoding":    {regexp.MustCompile(`(?i)^(b8zs|hdb3|ami)$`), "b8zs, hdb3 or ami", redfoneSpan},
	"longhaul":    {regexp.MustCompile(`^[0-3]$`), "0 to 3", redfoneSpan},
	"shorthaul":   {regexp.MustCompile(`^[0-4]$`), "0 to 4", redfoneSpan},
	"crc4":        {nil, "", redfoneSpan},
	"rbs":         {nil, "", redfoneSpan},
	"loopback":    {nil, "", redfoneSpan},
	"dejitter":    {nil, "", redfoneSpan},
	"j1":          {nil, "", redfoneSpan},
	"slave":       {nil, "", redfoneAny}, // ignored outside a span, not an error
	"master":      {nil, "", redfoneAny}, // a no-op everywhere
	"iec":         {nil, "", redfoneAny}, // deprecated no-op
	"dsp":         {regexp.MustCompile(`(?i)^(ulaw|alaw|off)$`), "ulaw, alaw or off", redfoneAny},
	"dspdisabled": {nil, "", redfoneAny},
	"voicea":      {regexp.MustCompile(`^[0-9]+(-[0-9]+)?$`), "a channel or a range, e.g. 1-23", redfoneDSP},
	"voiceb":      {regexp.MustCompile(`^[0-9]+(-[0-9]+)?$`), "a channel or a range, e.g. 1-23", redfoneDSP},
	"data":        {regexp.MustCompile(`^[0-9]+(-[0-9]+)?$`), "a channel or a range, e.g. 1-23", redfoneDSP},
}

// redfoneParser walks a redfone.conf line by line, collecting every problem.
type redfoneParser struct {
	errs       []error
	section    redfoneSection
	sawGlobals bool
	sawDSP     bool
	globalsAt  int            // line of [globals]
	fbAt       int            // line of fb=
	serverAt   int            // line of server=
	headers    map[string]int // lowercased section name -> first line
}

func (p *redfoneParser) bad(line int, format string, args ...any) {
	p.errs = append(p.errs, &redfoneError{line, fmt.Sprintf(format, args...)})
}

// header handles a line starting with '['. Section order matters to
// fonulator's state machine: [globals] first, [dsp] last, no repeats.
func (p *redfoneParser) header(n int, l string) {
	m := redfoneHeaderRE.FindStringSubmatch(l)
	if m == nil {
		p.bad(n, "unknown section header %q; fonulator knows only [globals], [span1]..[span9] and [dsp]", l)
		p.section = redfoneAny // go on checking lines, but not against a section
		return
	}
	name := strings.ToLower(m[1])
	if at, dup := p.headers[name]; dup {
		p.bad(n, "section [%s] repeated (first at line %d); merge the two into one", name, at)
	} else {
		p.headers[name] = n
	}
	switch {
	case name == "globals":
		if !p.sawGlobals {
			p.globalsAt = n
		}
		p.sawGlobals, p.section = true, redfoneGlobals
	case !p.sawGlobals:
		if len(p.headers) == 1 {
			p.bad(n, "[%s] comes before [globals]; [globals] must be the first section", name)
		}
		p.section = redfoneAny
	case name == "dsp":
		p.sawDSP, p.section = true, redfoneDSP
	default: // spanN
		if p.sawDSP {
			p.bad(n, "[%s] comes after [dsp]; fonulator wants [dsp] as the last section", name)
		}
		p.section = redfoneSpan
	}
}

// directive handles a key=value or flag line inside a section.
func (p *redfoneParser) directive(n int, l string) {
	if p.section == redfoneNone {
		p.bad(n, "%q is outside any section; put it under [globals] or a [spanN] section", l)
		return
	}
	key, value, hasValue := strings.Cut(l, "=")
	key = strings.ToLower(key)
	d, known := redfoneDirectives[key]
	switch {
	case !known || (d.value == nil) == hasValue:
		p.bad(n, "unknown directive %q; fonulator would stop with exit code 2 (bad token)", l)
		return
	case d.value != nil && !d.value.MatchString(value):
		p.bad(n, "%s= value %q is not valid; want %s", key, value, d.want)
		return
	case p.section != redfoneAny && d.section != redfoneAny && d.section != p.section:
		if hasValue {
			key += "="
		}
		p.bad(n, "%s is only valid in a [%s] section, not in [%s]; move it there", key, d.section, p.section)
		return
	}
	switch key {
	case "fb":
		p.fbAt = n
	case "server":
		if p.serverAt != 0 {
			p.bad(n, "second server= (first at line %d); keep exactly one server= line in [globals]", p.serverAt)
			return
		}
		p.serverAt = n
	}
}

// finish reports what is missing from the file as a whole.
func (p *redfoneParser) finish() {
	if !p.sawGlobals {
		p.bad(1, "no [globals] section; the file must start with [globals] holding fb= and server=")
		return
	}
	if p.fbAt == 0 {
		p.bad(p.globalsAt, "[globals] has no fb= line; add fb=<foneBRIDGE IP address or hostname>")
	}
	if p.serverAt == 0 {
		p.bad(p.globalsAt, "[globals] has no server= line; add server=<MAC of the NIC carrying TDMoE>")
	}
}

// renderRedfone validates src against fonulator's grammar and returns it
// with the one server= line of [globals] replaced by server=MAC (mac in
// lowercase colon form); every other byte is kept. A problem is reported as
// a *redfoneError naming the line and the fix; several are joined with
// errors.Join, in line order.
func renderRedfone(src []byte, mac net.HardwareAddr) ([]byte, error) {
	if len(mac) != 6 || bytes.Equal(mac, make([]byte, 6)) {
		return nil, fmt.Errorf("redfone.conf: %q is not a usable Ethernet MAC for server=; the TDMoE interface needs a 6-byte, non-zero address", mac.String())
	}
	lines := strings.Split(string(src), "\n")
	// A final "\n" leaves an empty last element that is no line at all.
	lastHasNewline := lines[len(lines)-1] == ""
	if lastHasNewline {
		lines = lines[:len(lines)-1]
	}
	for i, l := range lines {
		if strings.HasSuffix(l, "\r") {
			// One report is enough: the whole file has the wrong line endings.
			return nil, &redfoneError{i + 1, "CRLF (Windows) line ending; convert the file to LF line endings, e.g. with dos2unix"}
		}
	}

	p := &redfoneParser{headers: map[string]int{}}
	for i, l := range lines {
		n := i + 1
		switch {
		case l == "" || strings.HasPrefix(l, "#"):
		case i == len(lines)-1 && !lastHasNewline:
			// flex's $ needs a newline: an unterminated last directive is a
			// bad token.
			p.bad(n, "last line has no newline at the end; add one")
		case redfoneLineProblem(l) != "":
			p.bad(n, "%s", redfoneLineProblem(l))
		case strings.HasPrefix(l, "["):
			p.header(n, l)
		default:
			p.directive(n, l)
		}
	}
	p.finish()
	if len(p.errs) > 0 {
		slices.SortStableFunc(p.errs, func(a, b error) int {
			return a.(*redfoneError).Line - b.(*redfoneError).Line
		})
		if len(p.errs) == 1 {
			return nil, p.errs[0]
		}
		return nil, errors.Join(p.errs...)
	}

	lines[p.serverAt-1] = "server=" + mac.String()
	out := strings.Join(lines, "\n")
	if lastHasNewline {
		out += "\n"
	}
	return []byte(out), nil
}

// redfoneLineProblem returns the first shape rule l breaks, or "".
func redfoneLineProblem(l string) string {
	for _, r := range redfoneLineRules {
		if r.bad(l) {
			return r.problem
		}
	}
	return ""
}
