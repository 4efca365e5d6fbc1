package main

import (
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"strings"
)

// buildCheckPlan derives the takeover and release steps from the resources
// the agent would build (buildResources), in the agent's order: start left
// to right with the announcement right after the last VIP/routes resource,
// stop right to left. server is the MAC the fonebridge would write.
func buildCheckPlan(cfg *config, server string) checkPlan {
	resources, network := buildResources(cfg, slog.New(slog.DiscardHandler), netlinkAddresses{})
	plan := checkPlan{Takeover: []planStep{}, Release: []planStep{}}
	add := func(steps *[]planStep, resource, action string) {
		*steps = append(*steps, planStep{Step: len(*steps) + 1, Resource: resource, Action: action})
	}
	var vips []string
	for _, v := range cfg.VIPs {
		how := "gratuitous ARP request+reply"
		if v.Addr.Is6() {
			how = "unsolicited NA (override) to ff02::1"
		}
		vips = append(vips, fmt.Sprintf("%s on %s: %s", v.Addr, v.Iface, how))
	}
	announce := fmt.Sprintf("announce each VIP (%s), %d rounds every %s, the first at once",
		strings.Join(vips, "; "), cfg.GARPCount, cfg.GARPInterval)

	optional := cfg.optionalFlags()
	for i, r := range resources {
		for _, a := range checkActions(cfg, r, "start", server) {
			if optional[i] {
				a += " (optional: a failure is logged, notified and retried; the takeover goes on)"
			}
			add(&plan.Takeover, r.Name(), a)
		}
		if i == network-1 {
			add(&plan.Takeover, "announce", announce)
		}
	}
	add(&plan.Release, "announce", "announce: stop the announcement rounds still running")
	for i := len(resources) - 1; i >= 0; i-- {
		for _, a := range checkActions(cfg, resources[i], "stop", server) {
			add(&plan.Release, resources[i].Name(), a)
		}
	}
	return plan
}

// checkActions describes what starting or stopping r does.
func checkActions(cfg *config, r resource, action, server string) []string {
	switch r := r.(type) {
	case *vipResource:
		if action == "start" {
			return []string{fmt.Sprintf("add %s to %s (netlink)", r.vip.Prefix, r.vip.Iface)}
		}
		return []string{fmt.Sprintf("delete %s from %s (netlink)", r.vip.Prefix, r.vip.Iface)}
	case *routesResource:
		var out []string
		for _, v := range r.subnets {
			if action == "start" {
				out = append(out, fmt.Sprintf("set src %s on route %s dev %s", v.Addr, v.Own.Masked(), v.Iface))
			} else {
				out = append(out, fmt.Sprintf("set src %s (own address) on route %s dev %s, before the VIP is deleted so the route survives",
					v.Own.Addr(), v.Own.Masked(), v.Iface))
			}
		}
		return out
	case *foneBridge:
		if action == "start" {
			return []string{fmt.Sprintf("fonebridge: write server=%s into %s, run %s %s (timeout %s, %d retries)",
				server, r.ConfPath, r.Fonulator, r.ConfPath, r.Timeout, r.Retries)}
		}
		return []string{"fonebridge: nothing on release: running fonulator here would point the TDMoE stream back at this box, " +
			"stealing it from the new active one"}
	case *commandResource:
		line := strings.Join(r.argv(action), " ")
		if strings.HasPrefix(r.name, "exec:") {
			return []string{fmt.Sprintf("exec: %s (timeout %s)", line, cfg.ResourceTO)}
		}
		return []string{fmt.Sprintf("service %s: %s (timeout %s)", r.name, line, cfg.ResourceTO)}
	default:
		return []string{fmt.Sprintf("%s %s (timeout %s)", action, r.Name(), cfg.ResourceTO)}
	}
}

func writeCheckJSON(w io.Writer, rep checkReport) {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	enc.SetEscapeHTML(false)
	_ = enc.Encode(rep)
}

// checkMarks are the plain-ASCII status markers of the text report.
var checkMarks = map[checkStatus]string{
	checkOK:   "OK",
	checkFail: "FAIL",
	checkWarn: "WARN",
	checkSkip: "SKIP",
}

// writeCheckText prints the report in aligned columns, then the plan.
func writeCheckText(w io.Writer, cfg *config, rep checkReport) {
	width := 0
	for _, r := range rep.Checks {
		width = max(width, len(r.Name))
	}
	indent := strings.Repeat(" ", 6+width+2)
	counts := map[checkStatus]int{}
	fmt.Fprintf(w, "flip check on %s\n\n", cfg.Name)
	for _, r := range rep.Checks {
		counts[r.Status]++
		lines := strings.Split(r.Detail, "\n")
		fmt.Fprintf(w, "%-4s  %-*s  %s\n", checkMarks[r.Status], width, r.Name, lines[0])
		for _, l := range lines[1:] {
			fmt.Fprintf(w, "%s%s\n", indent, l)
		}
		if r.Fix != "" {
			fix := strings.Split(r.Fix, "\n")
			fmt.Fprintf(w, "%sfix: %s\n", indent, fix[0])
			for _, l := range fix[1:] {
				fmt.Fprintf(w, "%s     %s\n", indent, l)
			}
		}
	}
	verdict := "all checks passed"
	if !rep.OK {
		verdict = "SOME CHECKS FAILED"
	}
	warnings := "warnings"
	if counts[checkWarn] == 1 {
		warnings = "warning"
	}
	fmt.Fprintf(w, "\n%s: %d ok, %d failed, %d %s, %d skipped\n",
		verdict, counts[checkOK], counts[checkFail], counts[checkWarn], warnings, counts[checkSkip])
	writeSteps := func(title string, steps []planStep) {
		fmt.Fprintf(w, "\n%s:\n", title)
		for _, s := range steps {
			fmt.Fprintf(w, "  %2d. %s\n", s.Step, s.Action)
		}
	}
	writeSteps("takeover (left to right)", rep.Plan.Takeover)
	writeSteps("release (right to left)", rep.Plan.Release)
}
