package main

import (
	"bytes"
	"net"
	"net/netip"
	"testing"

	"github.com/mdlayher/arp"
	"github.com/mdlayher/ethernet"
)

var (
	arpTestMAC   = net.HardwareAddr{0x02, 0, 0x5e, 0, 0x53, 0x01}
	arpTestOther = net.HardwareAddr{0x02, 0, 0x5e, 0, 0x53, 0x02}
	arpTestVIP   = netip.MustParseAddr("192.0.2.100")
)

// TestGARPFramesBothForms: one request with a zero target MAC and one reply
// with target MAC = own MAC, both broadcast, sender IP = target IP = VIP.
func TestGARPFramesBothForms(t *testing.T) {
	frames, err := garpFrames(arpTestMAC, arpTestVIP)
	if err != nil {
		t.Fatal(err)
	}
	want := []struct {
		op  arp.Operation
		tha net.HardwareAddr
	}{
		{arp.OperationRequest, make(net.HardwareAddr, 6)},
		{arp.OperationReply, arpTestMAC},
	}
	if len(frames) != len(want) {
		t.Fatalf("%d frames, want %d", len(frames), len(want))
	}
	for i, w := range want {
		var f ethernet.Frame
		if err := f.UnmarshalBinary(frames[i]); err != nil {
			t.Fatalf("frame %d: %v", i, err)
		}
		if !bytes.Equal(f.Destination, ethernet.Broadcast) || !bytes.Equal(f.Source, arpTestMAC) || f.EtherType != ethernet.EtherTypeARP {
			t.Fatalf("frame %d: ethernet header %s -> %s type %v", i, f.Source, f.Destination, f.EtherType)
		}
		var p arp.Packet
		if err := p.UnmarshalBinary(f.Payload); err != nil {
			t.Fatalf("frame %d: %v", i, err)
		}
		if p.Operation != w.op || p.SenderIP != arpTestVIP || p.TargetIP != arpTestVIP ||
			!bytes.Equal(p.SenderHardwareAddr, arpTestMAC) || !bytes.Equal(p.TargetHardwareAddr, w.tha) {
			t.Fatalf("frame %d: %+v, want op %v sender=target=%s tha %s", i, p, w.op, arpTestVIP, w.tha)
		}
	}
}

// TestClaimant: only ARP frames that claim the VIP from another MAC count;
// the box's own gratuitous ARPs carry the VIP as sender too.
func TestClaimant(t *testing.T) {
	build := func(op arp.Operation, mac net.HardwareAddr, sender netip.Addr) []byte {
		return ftARPFrame(t, op, mac, ethernet.Broadcast, sender, arpTestMAC, netip.MustParseAddr("192.0.2.11"))
	}
	tests := []struct {
		name  string
		frame []byte
		want  net.HardwareAddr
	}{
		{"reply from the holder", build(arp.OperationReply, arpTestOther, arpTestVIP), arpTestOther},
		{"gratuitous request from another box", build(arp.OperationRequest, arpTestOther, arpTestVIP), arpTestOther},
		{"our own gratuitous ARP", build(arp.OperationReply, arpTestMAC, arpTestVIP), nil},
		{"another address", build(arp.OperationReply, arpTestOther, netip.MustParseAddr("192.0.2.12")), nil},
		{"garbage", []byte{1, 2, 3}, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := claimant(tt.frame, arpTestMAC, arpTestVIP); !bytes.Equal(got, tt.want) {
				t.Fatalf("claimant = %s, want %s", got, tt.want)
			}
		})
	}
}

// ftARPFrame builds one ARP frame from src to dst.
func ftARPFrame(t *testing.T, op arp.Operation, src, dst net.HardwareAddr, sender netip.Addr, tha net.HardwareAddr, target netip.Addr) []byte {
	t.Helper()
	p, err := arp.NewPacket(op, src, sender, tha, target)
	if err != nil {
		t.Fatal(err)
	}
	b, err := frame(src, dst, p)
	if err != nil {
		t.Fatal(err)
	}
	return b
}
