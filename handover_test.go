package main

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"net"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/mdlayher/arp"
	"github.com/mdlayher/ethernet"
	"github.com/mdlayher/ndp"
)

// TestARPAsker: only another box's broadcast question for the VIP ends a
// hand-over; claims, unicast refreshes and our own frames do not.
func TestARPAsker(t *testing.T) {
	other := netip.MustParseAddr("192.0.2.12")
	build := func(op arp.Operation, src, dst net.HardwareAddr, sender, target netip.Addr) []byte {
		return ftARPFrame(t, op, src, dst, sender, make(net.HardwareAddr, 6), target)
	}
	tests := []struct {
		name  string
		frame []byte
		want  net.HardwareAddr
	}{
		{"the other box's holder check", build(arp.OperationRequest, arpTestOther, ethernet.Broadcast, other, arpTestVIP), arpTestOther},
		{"a client refreshing its entry (unicast)", build(arp.OperationRequest, arpTestOther, arpTestMAC, other, arpTestVIP), nil},
		{"a question for another address", build(arp.OperationRequest, arpTestOther, ethernet.Broadcast, other, other), nil},
		{"a gratuitous ARP for the VIP (a claim)", build(arp.OperationRequest, arpTestOther, ethernet.Broadcast, arpTestVIP, arpTestVIP), nil},
		{"a reply", build(arp.OperationReply, arpTestOther, ethernet.Broadcast, other, arpTestVIP), nil},
		{"our own question", build(arp.OperationRequest, arpTestMAC, ethernet.Broadcast, netip.MustParseAddr("192.0.2.11"), arpTestVIP), nil},
		{"truncated", build(arp.OperationRequest, arpTestOther, ethernet.Broadcast, other, arpTestVIP)[:20], nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := arpAsker(tt.frame, arpTestMAC, arpTestVIP); !bytes.Equal(got, tt.want) {
				t.Errorf("asker %s, want %s", got, tt.want)
			}
		})
	}
}

// TestNDPAsker: the IPv6 form: a multicast solicitation for the VIP from
// another box's address.
func TestNDPAsker(t *testing.T) {
	other := netip.MustParseAddr("2001:db8::12")
	snm, _ := ndp.SolicitedNodeMulticast(ndpTestVIP)
	nsFrame := func(ethSrc, ethDst net.HardwareAddr, src netip.Addr, target netip.Addr, opts []ndp.Option) []byte {
		b, err := ndpFrame(ethSrc, ethDst, src, snm, &ndp.NeighborSolicitation{TargetAddress: target, Options: opts})
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	slla := []ndp.Option{&ndp.LinkLayerAddress{Direction: ndp.Source, Addr: ndpTestOther}}
	mc := ipv6MulticastMAC(snm)
	tests := []struct {
		name  string
		frame []byte
		want  net.HardwareAddr
	}{
		{"the other box's holder check", nsFrame(ndpTestOther, mc, other, ndpTestVIP, slla), ndpTestOther},
		{"without a link-layer option: the frame's source", nsFrame(ndpTestOther, mc, other, ndpTestVIP, nil), ndpTestOther},
		{"a client's unreachability probe (unicast)", nsFrame(ndpTestOther, ndpTestOurs, other, ndpTestVIP, slla), nil},
		{"duplicate address detection", nsFrame(ndpTestOther, mc, netip.IPv6Unspecified(), ndpTestVIP, nil), nil},
		{"a solicitation for another address", nsFrame(ndpTestOther, mc, other, other, slla), nil},
		{"our own solicitation", nsFrame(ndpTestOurs, mc, other, ndpTestVIP, nil), nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := ndpAsker(tt.frame, ndpTestOurs, ndpTestVIP); !bytes.Equal(got, tt.want) {
				t.Errorf("asker %s, want %s", got, tt.want)
			}
		})
	}
}

// ftStep is a resource that writes what is done to it into a shared list.
type ftStep struct {
	name string
	log  *[]string
}

func (s *ftStep) Name() string                { return s.name }
func (s *ftStep) Start(context.Context) error { *s.log = append(*s.log, "start "+s.name); return nil }
func (s *ftStep) Stop(context.Context) error  { *s.log = append(*s.log, "stop "+s.name); return nil }
func (s *ftStep) Check(context.Context) error { return nil }

// ftAskers is a fake askerWatch: wait records itself and answers mac.
type ftAskers struct {
	log    *[]string
	mac    net.HardwareAddr
	waited time.Duration
}

func (f *ftAskers) wait(window time.Duration) (net.HardwareAddr, error) {
	*f.log = append(*f.log, "wait")
	f.waited = window
	return f.mac, nil
}
func (f *ftAskers) Close() { *f.log = append(*f.log, "close") }

// TestHandOver: a switchover without the peer channel stops the services
// first, keeps the VIP and routes until the other box asks, then stops
// them; with refusals off, or when it cannot listen, it releases at once.
func TestHandOver(t *testing.T) {
	asker := net.HardwareAddr{0x02, 0, 0x5e, 0, 0x53, 0x02}
	handed := []string{"stop asterisk", "stop fonebridge", "wait", "stop routes", "stop vip", "close"}
	plain := []string{"stop asterisk", "stop fonebridge", "stop routes", "stop vip"}
	tests := []struct {
		name      string
		refused   time.Duration
		handover  time.Duration
		watchErr  error
		mac       net.HardwareAddr
		want      []string
		wantInLog string
	}{
		{"the other box asks", 300 * time.Millisecond, time.Second, nil, asker, handed, "the other box asked who holds the VIP"},
		{"nobody asks: released after the wait", 300 * time.Millisecond, time.Second, nil, nil, handed, "no box asked for the VIP within FLIP_HANDOVER_WAIT"},
		{"refusals off: the other box could not see the closed port", 0, time.Second, nil, asker, plain, "releasing"},
		{"hand-over off", 300 * time.Millisecond, 0, nil, asker, plain, "releasing"},
		{"cannot listen", 300 * time.Millisecond, time.Second, errors.New("no CAP_NET_RAW"), asker, plain, "cannot listen for the other box's holder check"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var steps []string
			var logs bytes.Buffer
			log := slog.New(slog.NewTextHandler(&logs, nil))
			vip := vipSpec{Addr: arpTestVIP, Prefix: netip.PrefixFrom(arpTestVIP, 24), Iface: "eth0"}
			cfg := &config{VIPs: []vipSpec{vip}, RefusedAfter: tt.refused, HandoverWait: tt.handover,
				DeadAfter: time.Second, ProbeInterval: 100 * time.Millisecond, ResourceTO: time.Second}
			fake := &ftAskers{log: &steps, mac: tt.mac}
			a := &agent{
				cfg: cfg, log: log, ev: nopEvents{},
				m:        newMachine(ftTiming(true), time.Now(), roleActive),
				announce: &announcer{log: log, count: 1, interval: time.Second, send: func(string, vipSpec) error { return nil }},
				resources: []resource{&ftStep{"vip", &steps}, &ftStep{"routes", &steps},
					&ftStep{"fonebridge", &steps}, &ftStep{"asterisk", &steps}},
				network:         2,
				resourceTimeout: func(resource) time.Duration { return time.Second },
				watchAskers: func(v vipSpec) (vipAskers, error) {
					if v.Addr != arpTestVIP {
						t.Errorf("listening for %s, want the first VIP", v.Addr)
					}
					return fake, tt.watchErr
				},
			}
			a.handOver(context.Background(), causeOperator, "operator: flip switchover")
			if strings.Join(steps, ", ") != strings.Join(tt.want, ", ") {
				t.Errorf("steps %q, want %q", steps, tt.want)
			}
			if a.m.role != rolePassive {
				t.Errorf("role %s after the hand-over, want passive", a.m.role)
			}
			if len(steps) > 2 && steps[2] == "wait" && fake.waited != tt.handover {
				t.Errorf("waited at most %s, want FLIP_HANDOVER_WAIT %s", fake.waited, tt.handover)
			}
			if !strings.Contains(logs.String(), tt.wantInLog) {
				t.Errorf("log does not say %q:\n%s", tt.wantInLog, logs.String())
			}
		})
	}
}
