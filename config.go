package main

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"reflect"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/kelseyhightower/envconfig"
)

// envSpec is the raw environment contract, decoded by envconfig.
// Every field is validated again in loadConfig: envconfig's `default` applies
// only to unset variables and `required` does not catch set-but-empty ones.
type envSpec struct {
	Resources      string        `envconfig:"FLIP_RESOURCES"`
	Primary        bool          `envconfig:"FLIP_PRIMARY" default:"false"`
	ProbeTarget    string        `envconfig:"FLIP_PROBE_TARGET"`
	Source         string        `envconfig:"FLIP_SOURCE"`
	ProbeInterval  time.Duration `envconfig:"FLIP_PROBE_INTERVAL" default:"100ms"`
	DeadAfter      time.Duration `envconfig:"FLIP_DEAD_AFTER" default:"1s"`
	RefusedAfter   time.Duration `envconfig:"FLIP_REFUSED_AFTER" default:"300ms"`
	HandoverWait   time.Duration `envconfig:"FLIP_HANDOVER_WAIT" default:"1s"`
	ProbeTransport string        `envconfig:"FLIP_PROBE_TRANSPORT" default:"udp"`
	InitDead       time.Duration `envconfig:"FLIP_INIT_DEAD" default:"30s"`
	StartTimeout   time.Duration `envconfig:"FLIP_START_TIMEOUT" default:"60s"`
	HolderWait     time.Duration `envconfig:"FLIP_HOLDER_WAIT" default:"0"`
	ServiceCmd     string        `envconfig:"FLIP_SERVICE_CMD" default:"systemctl {action} {name}"`
	ResourceTO     time.Duration `envconfig:"FLIP_RESOURCE_TIMEOUT" default:"30s"`

	FonebridgeConf      string        `envconfig:"FLIP_FONEBRIDGE_CONF" default:"/etc/redfone.conf"`
	FonebridgeInterface string        `envconfig:"FLIP_FONEBRIDGE_INTERFACE"`
	Fonulator           string        `envconfig:"FLIP_FONULATOR" default:"fonulator"`
	FonulatorTimeout    time.Duration `envconfig:"FLIP_FONULATOR_TIMEOUT" default:"30s"`
	FonulatorRetries    int           `envconfig:"FLIP_FONULATOR_RETRIES" default:"2"`

	GARPCount      int           `envconfig:"FLIP_GARP_COUNT" default:"5"`
	GARPInterval   time.Duration `envconfig:"FLIP_GARP_INTERVAL" default:"1s"`
	ARPCheckWindow time.Duration `envconfig:"FLIP_ARP_CHECK_WINDOW" default:"60ms"`
	HolderRecheck  time.Duration `envconfig:"FLIP_HOLDER_RECHECK" default:"20ms"`

	Tiebreaker       string        `envconfig:"FLIP_TIEBREAKER"`
	FenceCmd         string        `envconfig:"FLIP_FENCE_CMD"`
	FenceTimeout     time.Duration `envconfig:"FLIP_FENCE_TIMEOUT" default:"30s"`
	HoldDown         time.Duration `envconfig:"FLIP_HOLD_DOWN" default:"2m"`
	ConflictInterval time.Duration `envconfig:"FLIP_CONFLICT_INTERVAL" default:"1s"`

	Peer            string        `envconfig:"FLIP_PEER"`
	PeerKey         string        `envconfig:"FLIP_PEER_KEY"`
	PeerPort        int           `envconfig:"FLIP_PEER_PORT" default:"5999"`
	Failback        bool          `envconfig:"FLIP_FAILBACK" default:"false"`
	FailbackDelay   time.Duration `envconfig:"FLIP_FAILBACK_DELAY" default:"5m"`
	StateFile       string        `envconfig:"FLIP_STATE_FILE" default:"/run/flip/state.json"`
	DebugCrashAfter string        `envconfig:"FLIP_DEBUG_CRASH_AFTER"`

	DrainCmd     string        `envconfig:"FLIP_DRAIN_CMD"`
	UndrainCmd   string        `envconfig:"FLIP_UNDRAIN_CMD"`
	CallsCmd     string        `envconfig:"FLIP_CALLS_CMD" default:"asterisk -rx 'core show channels count'"`
	DrainTimeout time.Duration `envconfig:"FLIP_DRAIN_TIMEOUT" default:"10m"`
	DrainPoll    time.Duration `envconfig:"FLIP_DRAIN_POLL" default:"1s"`
	SyncCmd      string        `envconfig:"FLIP_SYNC_CMD"`
	SyncInterval time.Duration `envconfig:"FLIP_SYNC_INTERVAL" default:"0"`
	SyncTimeout  time.Duration `envconfig:"FLIP_SYNC_TIMEOUT" default:"10m"`

	EtcdEndpoints string        `envconfig:"FLIP_ETCD_ENDPOINTS"`
	EtcdPrefix    string        `envconfig:"FLIP_ETCD_PREFIX" default:"/flip/"`
	EtcdTTL       time.Duration `envconfig:"FLIP_ETCD_TTL" default:"5s"`
	EtcdLoss      string        `envconfig:"FLIP_ETCD_LOSS" default:"release"`
	EtcdCA        string        `envconfig:"FLIP_ETCD_CA"`
	EtcdCert      string        `envconfig:"FLIP_ETCD_CERT"`
	EtcdKey       string        `envconfig:"FLIP_ETCD_KEY"`

	MetricsAddr   string        `envconfig:"FLIP_METRICS_ADDR"`
	NotifyCmd     string        `envconfig:"FLIP_NOTIFY_CMD"`
	NotifyTimeout time.Duration `envconfig:"FLIP_NOTIFY_TIMEOUT" default:"10s"`
	ControlSocket string        `envconfig:"FLIP_CONTROL_SOCKET" default:"/run/flip/flip.sock"`

	LogFormat string `envconfig:"FLIP_LOG_FORMAT" default:"text"`
	Name      string `envconfig:"FLIP_NAME"`
}

// config is the validated configuration the agent runs with.
type config struct {
	Resources []resourceSpec
	VIPs      []vipSpec
	Primary   bool

	ProbeTarget    string // host:port
	Source         netip.Addr
	ProbeInterval  time.Duration
	DeadAfter      time.Duration
	RefusedAfter   time.Duration // port refused this long = down; 0 off
	HandoverWait   time.Duration // switchover without peer: longest wait for the other box's holder check; 0 off
	ProbeTransport string        // udp or tcp
	InitDead       time.Duration
	StartTimeout   time.Duration
	HolderWait     time.Duration
	ServiceCmd     string
	ResourceTO     time.Duration

	FonebridgeConf      string
	FonebridgeInterface string
	Fonulator           string
	FonulatorTimeout    time.Duration
	FonulatorRetries    int

	GARPCount      int
	GARPInterval   time.Duration
	ARPCheckWindow time.Duration
	HolderRecheck  time.Duration

	Tiebreakers      []netip.Addr // a box must reach one to take over or stay active
	FenceCmd         string       // must succeed before a takeover past a holder
	FenceTimeout     time.Duration
	HoldDown         time.Duration // no takeover this long after an own failure
	ConflictInterval time.Duration // how often an active box asks who else holds its VIPs

	Peers           []netip.Addr // the other box's addresses, one per path; none: no peer channel
	PeerKey         string
	PeerPort        int
	Failback        bool
	FailbackDelay   time.Duration
	StateFile       string // the takeover/release journal
	DebugCrashAfter string // test only: SIGKILL self after this step

	DrainCmd     []string // run once when a drain starts; nil = none
	UndrainCmd   []string // run when a drain is called off; nil = none
	CallsCmd     []string // prints the calls in progress
	DrainTimeout time.Duration
	DrainPoll    time.Duration
	SyncCmd      []string // run by the active box to bring the standby in step; nil = none
	SyncInterval time.Duration
	SyncTimeout  time.Duration

	// Pool mode (pool.go, pool_etcd.go): on when EtcdEndpoints is set.
	EtcdEndpoints []string
	EtcdPrefix    string // ends in "/"
	LeaseTTL      time.Duration
	PoolHold      bool // FLIP_ETCD_LOSS=hold
	EtcdCA        string
	EtcdCert      string
	EtcdKey       string

	MetricsAddr   string // host:port for Prometheus and /status; "" = off
	NotifyCmd     string // run on every role change; "" = none
	NotifyTimeout time.Duration
	ControlSocket string // Unix socket for flip status/switchover/…

	LogFormat string
	Name      string // this box in logs
}

// configError is a bad FLIP_* variable. It names the variable and the fix,
// and makes main exit with status 2 before anything on the box is touched.
type configError struct {
	Var string
	Msg string
}

func (e *configError) Error() string { return e.Var + ": " + e.Msg }

func badVar(name, format string, args ...any) error {
	return &configError{Var: name, Msg: fmt.Sprintf(format, args...)}
}

// hostInterfaces is what config validation needs to know about the box:
// its interfaces and their addresses. Tests supply a fake one.
type hostInterfaces interface {
	// InterfaceAddrs returns the IPv4 and IPv6 prefixes of every interface
	// by name, in the kernel's order; IPv6 link-local ones are left out.
	InterfaceAddrs() (map[string][]netip.Prefix, error)
}

// systemInterfaces reads the real interfaces of the box.
type systemInterfaces struct{}

func (systemInterfaces) InterfaceAddrs() (map[string][]netip.Prefix, error) {
	ifaces, err := net.Interfaces()
	if err != nil {
		return nil, fmt.Errorf("list interfaces: %w", err)
	}
	out := make(map[string][]netip.Prefix, len(ifaces))
	for _, ifi := range ifaces {
		addrs, err := ifi.Addrs()
		if err != nil {
			return nil, fmt.Errorf("list addresses of %s: %w", ifi.Name, err)
		}
		for _, a := range addrs {
			ipn, ok := a.(*net.IPNet)
			if !ok {
				continue
			}
			p, err := netip.ParsePrefix(ipn.String())
			if err != nil || (p.Addr().Is6() && p.Addr().IsLinkLocalUnicast()) {
				continue // IPv6 link-local: never a VIP's own address nor a probe source
			}
			out[ifi.Name] = append(out[ifi.Name], p)
		}
	}
	return out, nil
}

// loadConfig decodes and validates the FLIP_* environment against the box's
// interfaces. It touches nothing: a bad variable is reported before any
// address, route or service is changed.
func loadConfig(host hostInterfaces) (*config, error) {
	var spec envSpec
	if err := decodeEnv(&spec); err != nil {
		return nil, err
	}
	c := &config{
		Primary:             spec.Primary,
		ProbeInterval:       spec.ProbeInterval,
		DeadAfter:           spec.DeadAfter,
		RefusedAfter:        spec.RefusedAfter,
		HandoverWait:        spec.HandoverWait,
		ProbeTransport:      strings.ToLower(strings.TrimSpace(spec.ProbeTransport)),
		InitDead:            spec.InitDead,
		StartTimeout:        spec.StartTimeout,
		HolderWait:          spec.HolderWait,
		ServiceCmd:          strings.TrimSpace(spec.ServiceCmd),
		ResourceTO:          spec.ResourceTO,
		FonebridgeConf:      spec.FonebridgeConf,
		FonebridgeInterface: spec.FonebridgeInterface,
		Fonulator:           spec.Fonulator,
		FonulatorTimeout:    spec.FonulatorTimeout,
		FonulatorRetries:    spec.FonulatorRetries,
		GARPCount:           spec.GARPCount,
		GARPInterval:        spec.GARPInterval,
		ARPCheckWindow:      spec.ARPCheckWindow,
		HolderRecheck:       spec.HolderRecheck,
		FenceCmd:            strings.TrimSpace(spec.FenceCmd),
		FenceTimeout:        spec.FenceTimeout,
		HoldDown:            spec.HoldDown,
		ConflictInterval:    spec.ConflictInterval,
		PeerKey:             spec.PeerKey,
		PeerPort:            spec.PeerPort,
		Failback:            spec.Failback,
		FailbackDelay:       spec.FailbackDelay,
		StateFile:           spec.StateFile,
		DebugCrashAfter:     strings.TrimSpace(spec.DebugCrashAfter),
		MetricsAddr:         strings.TrimSpace(spec.MetricsAddr),
		NotifyCmd:           strings.TrimSpace(spec.NotifyCmd),
		NotifyTimeout:       spec.NotifyTimeout,
		DrainTimeout:        spec.DrainTimeout,
		DrainPoll:           spec.DrainPoll,
		SyncInterval:        spec.SyncInterval,
		SyncTimeout:         spec.SyncTimeout,
		ControlSocket:       spec.ControlSocket,
		LogFormat:           spec.LogFormat,
		Name:                strings.TrimSpace(spec.Name),
	}
	if c.Name == "" {
		c.Name, _ = os.Hostname()
	}
	if err := c.checkTimings(); err != nil {
		return nil, err
	}
	for _, cmd := range []struct {
		name, value string
		to          *[]string
	}{{"FLIP_DRAIN_CMD", spec.DrainCmd, &c.DrainCmd}, {"FLIP_UNDRAIN_CMD", spec.UndrainCmd, &c.UndrainCmd}, {"FLIP_CALLS_CMD", spec.CallsCmd, &c.CallsCmd}, {"FLIP_SYNC_CMD", spec.SyncCmd, &c.SyncCmd}} {
		argv, err := splitCommand(cmd.value)
		if err != nil {
			return nil, badVar(cmd.name, "%v; quote words with spaces in '...' or \"...\", e.g. asterisk -rx 'core show channels count'", err)
		}
		*cmd.to = argv
	}
	if len(c.CallsCmd) == 0 {
		return nil, badVar("FLIP_CALLS_CMD", "empty; give a command that prints the calls in progress, e.g. asterisk -rx 'core show channels count' (the default)")
	}
	for _, f := range strings.FieldsFunc(spec.Tiebreaker, func(r rune) bool { return r == ',' || r == ' ' || r == '\t' }) {
		a, err := netip.ParseAddr(f)
		if err != nil || a.Zone() != "" {
			return nil, badVar("FLIP_TIEBREAKER", "%q is not an IP address; list addresses this box must reach to take over, e.g. the gateway: FLIP_TIEBREAKER=192.0.2.1", f)
		}
		c.Tiebreakers = append(c.Tiebreakers, a.Unmap())
	}
	if c.MetricsAddr != "" {
		if _, _, err := net.SplitHostPort(c.MetricsAddr); err != nil {
			return nil, badVar("FLIP_METRICS_ADDR", "%q is not HOST:PORT (%v); e.g. 127.0.0.1:9641, or leave it empty for no metrics", c.MetricsAddr, err)
		}
	}
	if !strings.HasPrefix(c.StateFile, "/") {
		return nil, badVar("FLIP_STATE_FILE", "%q must be an absolute path, e.g. /run/flip/state.json", c.StateFile)
	}
	if c.ControlSocket == "" || !strings.HasPrefix(c.ControlSocket, "/") {
		return nil, badVar("FLIP_CONTROL_SOCKET", "%q must be an absolute path, e.g. /run/flip/flip.sock", c.ControlSocket)
	}
	if c.ProbeTransport != "udp" && c.ProbeTransport != "tcp" {
		return nil, badVar("FLIP_PROBE_TRANSPORT", "%q is not a probe transport; use udp or tcp", spec.ProbeTransport)
	}
	if c.LogFormat != "text" && c.LogFormat != "json" {
		return nil, badVar("FLIP_LOG_FORMAT", "%q is not a log format; use text or json", c.LogFormat)
	}

	addrs, err := host.InterfaceAddrs()
	if err != nil {
		return nil, err
	}
	if strings.TrimSpace(spec.Resources) == "" {
		return nil, badVar("FLIP_RESOURCES", "not set; list what the active box holds in start order, e.g. FLIP_RESOURCES=\"192.0.2.10/24 routes fonebridge asterisk\"")
	}
	c.Resources, err = parseResources(spec.Resources, addrs)
	if err != nil {
		return nil, err
	}
	for _, r := range c.Resources {
		if r.Kind == kindVIP {
			c.VIPs = append(c.VIPs, r.VIP)
		}
	}
	if err := c.resolveAddresses(spec, addrs); err != nil {
		return nil, err
	}
	for _, t := range c.Tiebreakers {
		if t.Is4() != c.Source.Is4() {
			return nil, badVar("FLIP_TIEBREAKER", "%s is IPv%d but the pings leave from this box's own address %s (IPv%d: FLIP_SOURCE, or the first VIP's interface); list tiebreakers of the source's IP version, or set FLIP_SOURCE", t, ipVersion(t), c.Source, ipVersion(c.Source))
		}
	}
	if err := c.checkPeer(spec, addrs); err != nil {
		return nil, err
	}
	if err := c.checkPool(spec); err != nil {
		return nil, err
	}
	if c.SyncInterval > 0 && c.SyncCmd == nil {
		return nil, badVar("FLIP_SYNC_INTERVAL", "is set but FLIP_SYNC_CMD is not: give the command that copies to the other box, e.g. rsync -a /etc/asterisk/ rsync://{peer}/asterisk/")
	}
	if slices.ContainsFunc(c.SyncCmd, func(w string) bool { return strings.Contains(w, "{peer}") }) && len(c.Peers) == 0 {
		return nil, badVar("FLIP_SYNC_CMD", "uses {peer}, but FLIP_PEER is not set: set FLIP_PEER to the other box's address, or write the address into the command")
	}
	if err := c.checkAddressRoles(addrs); err != nil {
		return nil, err
	}
	if c.has(kindService) && c.ServiceCmd == "" {
		return nil, badVar("FLIP_SERVICE_CMD", "is empty but FLIP_RESOURCES lists a service; unset it for the default \"systemctl {action} {name}\"")
	}
	if c.has(kindService) && !strings.Contains(c.ServiceCmd, "{action}") {
		return nil, badVar("FLIP_SERVICE_CMD", "%q has no {action} placeholder; write e.g. \"systemctl {action} {name}\"", c.ServiceCmd)
	}
	return c, nil
}

// hookVariables are set by flip for its notify hook; a hook that runs flip
// (say, `flip status`) passes them on, and they are not configuration.
var hookVariables = map[string]bool{"FLIP_NOTIFY_REASON": true, "FLIP_NOTIFY_TIME": true, "FLIP_NOTIFY_OK": true}

// decodeEnv decodes FLIP_* from the process environment with envconfig and
// turns its errors into ones that name the variable. It rejects unknown
// FLIP_* names (a typo would otherwise silently run with a default) and
// set-but-empty values of non-string variables.
func decodeEnv(spec *envSpec) error {
	known := map[string]reflect.StructField{}
	t := reflect.TypeOf(*spec)
	for i := 0; i < t.NumField(); i++ {
		known[t.Field(i).Tag.Get("envconfig")] = t.Field(i)
	}
	var names []string
	for _, kv := range os.Environ() {
		name, _, _ := strings.Cut(kv, "=")
		if strings.HasPrefix(name, "FLIP_") {
			names = append(names, name)
		}
	}
	sort.Strings(names)
	for _, name := range names {
		f, ok := known[name]
		if !ok && hookVariables[name] {
			continue
		}
		if !ok {
			return badVar(name, "is not a flip variable; check the spelling against the README's configuration table, or unset it")
		}
		if v := os.Getenv(name); strings.TrimSpace(v) == "" && f.Type.Kind() != reflect.String {
			return badVar(name, "is set but empty; give a value or unset it for the default %q", f.Tag.Get("default"))
		}
	}
	// Full names in the tags and no prefix: with a prefix, envconfig falls
	// back to the bare name (RESOURCES, PRIMARY…) when FLIP_X is unset.
	if err := envconfig.Process("", spec); err != nil {
		var pe *envconfig.ParseError
		if errors.As(err, &pe) {
			return badVar(pe.KeyName, "%q cannot be read as %s: %v", pe.Value, pe.TypeName, pe.Err)
		}
		return &configError{Var: "FLIP_*", Msg: err.Error()}
	}
	return nil
}

func (c *config) has(k resourceKind) bool {
	for _, r := range c.Resources {
		if r.Kind == k {
			return true
		}
	}
	return false
}
