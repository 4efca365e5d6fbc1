package main

// flip check, part two: the commands, exec: scripts, fonebridge, the SIP
// probe and the tiebreaker. Nothing here changes the box.

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"os/exec"
	"strings"
	"time"
)

// checkCommandRows checks FLIP_SERVICE_CMD and FLIP_FENCE_CMD with main.go's
// checkCommands, one row each, and shows the command line of every service.
// Nothing is run.
func (c *checker) checkCommandRows() []checkRow {
	var rows []checkRow
	if c.cfg.FenceCmd != "" {
		only := *c.cfg
		only.Resources = nil // the fence command alone
		row := checkRow{Name: "fence command", Status: checkOK, Detail: fmt.Sprintf("%s found", strings.Fields(c.cfg.FenceCmd)[0])}
		if err := c.commands(&only); err != nil {
			row.Status, row.Detail, row.Fix = checkFail, err.Error(), "install the fence command or fix FLIP_FENCE_CMD"
		}
		rows = append(rows, row)
	}
	if !c.cfg.has(kindService) {
		return rows
	}
	only := *c.cfg
	only.FenceCmd = "" // the service command alone
	prog := strings.Fields(c.cfg.ServiceCmd)[0]
	row := checkRow{Name: "service command", Status: checkOK, Detail: fmt.Sprintf("%s found (FLIP_SERVICE_CMD=%q)", prog, c.cfg.ServiceCmd)}
	err := c.commands(&only)
	if err != nil {
		row.Status, row.Detail = checkFail, err.Error()
		row.Fix = "install it, or set FLIP_SERVICE_CMD to the command that starts services; in a container, list only VIPs and routes"
	}
	rows = append(rows, row)
	for _, r := range c.cfg.Resources {
		if r.Kind != kindService {
			continue
		}
		svc := newServiceResource(c.cfg.ServiceCmd, r.Name, c.cfg.ResourceTO)
		st := checkOK
		if err != nil {
			st = checkSkip
		}
		rows = append(rows, checkRow{
			Name:   "service " + r.Name,
			Status: st,
			Detail: fmt.Sprintf("start: %s; stop: %s (not run now)", strings.Join(svc.argv("start"), " "), strings.Join(svc.argv("stop"), " ")),
		})
	}
	return rows
}

// checkExecs checks that every exec: script is still an executable file.
func (c *checker) checkExecs() []checkRow {
	var rows []checkRow
	for _, r := range c.cfg.Resources {
		if r.Kind != kindExec {
			continue
		}
		row := checkRow{Name: "exec:" + r.Path, Status: checkOK,
			Detail: fmt.Sprintf("executable; start: %s start; stop: %s stop (not run now)", r.Path, r.Path)}
		st, err := os.Stat(r.Path)
		switch {
		case err != nil:
			row.Status, row.Detail = checkFail, err.Error()
		case st.IsDir():
			row.Status, row.Detail = checkFail, r.Path+" is a directory"
		case st.Mode()&0o111 == 0:
			row.Status, row.Detail = checkFail, fmt.Sprintf("%s is not executable (mode %s)", r.Path, st.Mode())
		}
		if row.Status == checkFail {
			row.Fix = fmt.Sprintf("install the script, chmod +x %s, or fix the path in FLIP_RESOURCES", r.Path)
		}
		rows = append(rows, row)
	}
	return rows
}

// checkFonebridge checks that a takeover could repoint the foneBRIDGE:
// fonulator is installed and redfone.conf renders with this box's MAC
// (foneBridge.Check; fonulator is never run). It also returns what the plan
// shows for server=.
func (c *checker) checkFonebridge(ctx context.Context) (checkRow, string) {
	if !c.cfg.has(kindFonebridge) {
		return checkRow{}, ""
	}
	fb := newFoneBridgeFromConfig(c.cfg, slog.New(slog.DiscardHandler))
	fb.macLookup = c.macLookup
	row := checkRow{Name: "fonebridge", Status: checkOK}
	server := fmt.Sprintf("<MAC of %s: unknown>", fb.Interface)
	mac, macErr := fb.mac()
	if macErr == nil {
		server = mac.String()
	}
	if err := fb.Check(ctx); err != nil {
		row.Status, row.Detail = checkFail, err.Error()
		// Validate says the same with the FLIP_* variable to fix.
		if verr := fb.Validate(); verr != nil {
			row.Fix = verr.Error()
		} else {
			row.Fix = "install fonulator (FLIP_FONULATOR), fix redfone.conf (FLIP_FONEBRIDGE_CONF), name the TDMoE NIC (FLIP_FONEBRIDGE_INTERFACE)"
		}
		return row, server
	}
	path, _ := exec.LookPath(fb.Fonulator)
	now := "no server= line"
	if b, err := os.ReadFile(fb.ConfPath); err == nil {
		if cur := redfoneServer(b); cur != "" {
			now = "server=" + cur
			if m, err := net.ParseMAC(cur); err == nil && m.String() == mac.String() {
				now += " (this box already)"
			} else {
				now += " (another box)"
			}
		}
	}
	row.Detail = fmt.Sprintf("fonulator at %s; %s renders; a takeover writes server=%s (MAC of %s), the file has %s now",
		path, fb.ConfPath, server, fb.Interface, now)
	return row, server
}

// redfoneServer returns the value of the first server= line, or "".
func redfoneServer(b []byte) string {
	for _, l := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(l, "server="); ok {
			return strings.TrimSpace(v)
		}
	}
	return ""
}

// checkProbe sends ONE SIP OPTIONS to the probe target, as the agent does.
// No answer is a warning only: on a passive box with Asterisk in cold
// standby, or while both boxes are down on purpose, nobody serves it.
// holdsAny tells whether this box holds a VIP now (its own service is the
// one probed).
func (c *checker) checkProbe(ctx context.Context, holdsAny bool) checkRow {
	row := checkRow{Name: "probe " + c.cfg.ProbeTarget}
	r, err := c.probe(ctx)
	if err != nil {
		row.Status = checkFail
		row.Detail = fmt.Sprintf("cannot send a SIP probe from %s: %v", c.cfg.Source, err)
		row.Fix = "FLIP_SOURCE must be an address of this box that can reach FLIP_PROBE_TARGET"
		return row
	}
	if !r.Answered {
		row.Status = checkWarn
		row.Detail = fmt.Sprintf("no answer within FLIP_DEAD_AFTER (%s) to SIP OPTIONS from %s", c.cfg.DeadAfter, c.cfg.Source)
		if r.Err != nil {
			row.Detail += fmt.Sprintf(" (%v)", r.Err)
		}
		if holdsAny {
			row.Detail += "; this box holds the VIPs, so its own Asterisk should answer: a running flip here would release " +
				"(after FLIP_START_TIMEOUT if it just took over)"
			row.Fix = "start Asterisk here (systemctl status asterisk), check it listens on the probe target's port " +
				"and that no firewall drops UDP from " + c.cfg.Source.String()
			return row
		}
		row.Detail += "; this can be fine: nobody serves the service address right now (Asterisk in cold standby " +
			"before the first takeover, or both boxes stopped); a running flip would count it as silence and take over"
		row.Fix = "if the other box is active, check that Asterisk runs there and listens on the probe target's port, " +
			"and that no firewall drops UDP from " + c.cfg.Source.String()
		return row
	}
	row.Status = checkOK
	server := r.Server
	if server == "" {
		server = "(no Server or User-Agent header)"
	}
	row.Detail = fmt.Sprintf("SIP %d in %s, server %s (any SIP answer means alive)", r.Status, r.RTT.Round(10*time.Microsecond), server)
	return row
}

// checkTiebreaker checks FLIP_TIEBREAKER by pinging as the agent does.
func checkTiebreaker(cfg *config) checkRow { return tiebreakerRow(cfg, pingTiebreakers) }

// tiebreakerRow reports whether a tiebreaker answers, asking reach.
func tiebreakerRow(cfg *config, reach func(*config) (time.Duration, error)) checkRow {
	row := checkRow{Name: "tiebreaker", Status: checkSkip}
	if len(cfg.Tiebreakers) == 0 {
		row.Detail = "FLIP_TIEBREAKER not set"
		return row
	}
	var as []string
	for _, a := range cfg.Tiebreakers {
		as = append(as, a.String())
	}
	rtt, err := reach(cfg)
	if err != nil {
		row.Status = checkFail
		row.Detail = fmt.Sprintf("FLIP_TIEBREAKER=%s: %v: this box would count itself cut off (a passive box would not take over, an active one would release)", strings.Join(as, ","), err)
		row.Fix = "check the link and that the tiebreaker answers ping from this box's own address (as root or with CAP_NET_RAW), or fix FLIP_TIEBREAKER"
		return row
	}
	row.Status = checkOK
	row.Detail = fmt.Sprintf("FLIP_TIEBREAKER=%s answers ICMP echo from %s (%s)", strings.Join(as, ","), cfg.Source, rtt.Round(time.Microsecond))
	return row
}

// pingTiebreakers pings the tiebreakers as the agent does, for at most
// FLIP_DEAD_AFTER, and returns the first answer's round trip.
func pingTiebreakers(cfg *config) (time.Duration, error) {
	tb, err := newTiebreaker(cfg.Source, cfg.Tiebreakers)
	if err != nil {
		return 0, err
	}
	defer tb.Close()
	start := time.Now()
	for time.Since(start) < cfg.DeadAfter { // bounded by FLIP_DEAD_AFTER
		tb.ping(time.Now())
		time.Sleep(min(cfg.ProbeInterval, cfg.DeadAfter-time.Since(start)))
		if sent := tb.collect(); len(sent) > 0 {
			return time.Since(sent[0]), nil
		}
	}
	return 0, fmt.Errorf("no answer within FLIP_DEAD_AFTER (%s)", cfg.DeadAfter)
}

// checkPeerPaths asks the other box's flip on every FLIP_PEER path (a
// signed ping, a signed pong): one row per path.
func checkPeerPaths(cfg *config) []checkRow {
	return peerPathRows(cfg, pingPaths(cfg.Source, cfg.Peers, cfg.PeerPort, cfg.PeerKey, cfg.Name, cfg.DeadAfter))
}

// peerPathRows turns the pings' results into rows.
func peerPathRows(cfg *config, results []pingResult) []checkRow {
	if len(cfg.Peers) == 0 {
		return []checkRow{{Name: "peer", Status: checkSkip, Detail: "FLIP_PEER not set: no heartbeats (recommended on every pair)"}}
	}
	var rows []checkRow
	for _, r := range results {
		row := checkRow{Name: "peer " + r.Remote.String(), Status: checkOK}
		if r.Err != nil {
			row.Status = checkFail
			row.Detail = fmt.Sprintf("path %s -> %s: %v", r.Local, r.Remote, r.Err)
			row.Fix = fmt.Sprintf("start flip on the other box, and open UDP %d between the boxes on this path", cfg.PeerPort)
			if errors.Is(r.Err, errPeerOtherKey) {
				row.Fix = "give both boxes the same FLIP_PEER_KEY (in /etc/default/flip), then restart flip on the box you changed"
			}
		} else {
			row.Detail = fmt.Sprintf("path %s -> %s: the other box's flip answered a signed ping (%s)", r.Local, r.Remote, r.RTT.Round(time.Microsecond))
		}
		rows = append(rows, row)
	}
	return append(rows, configRow(cfg, results))
}

// configRow compares this box's configuration with the other box's, from
// the first path that answered: the FLIP_* variables that must be the same
// on both (all but FLIP_PRIMARY, FLIP_NAME, FLIP_PEER, ... : perBoxVariables).
func configRow(cfg *config, results []pingResult) checkRow {
	row := checkRow{Name: "same configuration"}
	for _, r := range results {
		if r.Err != nil || r.Config == nil {
			continue
		}
		diff := configDiff(configFingerprint(cfg.PeerKey), r.Config)
		if len(diff) == 0 {
			row.Status, row.Detail = checkOK, "the other box's FLIP_* settings are the same as this box's (all but the per-box ones: "+strings.Join(perBoxVariables, ", ")+")"
			return row
		}
		row.Status = checkFail
		row.Detail = "these settings differ from the other box's: " + strings.Join(diff, ", ")
		row.Fix = "make /etc/default/flip the same on both boxes but for FLIP_PRIMARY, FLIP_NAME and the other per-box settings, then restart flip on the box you changed"
		return row
	}
	row.Status, row.Detail = checkSkip, "no path answered: cannot compare with the other box"
	return row
}
