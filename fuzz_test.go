package main

import (
	"crypto/hmac"
	"encoding/hex"
	"encoding/json"
	"net"
	"net/netip"
	"testing"
	"time"
)

// Fuzz targets for every parser of bytes that come from the wire (issue
// 12): a SIP answer and its socket's ancillary data, the ICMP error quote,
// ARP and NDP frames (holder checks and the hand-over's askers), and peer
// messages. Each must never panic, whatever it is fed; the seed corpus is
// in testdata/fuzz/, and ./test.sh runs each for a few seconds.

// FuzzSIPAnswer: the tick probe's parser of answers and their arrival
// time (SO_TIMESTAMPNS in the ancillary data).
func FuzzSIPAnswer(f *testing.F) {
	const callID = "0123456789abcdef01234567@flip" // the seeds' Call-ID
	f.Add([]byte("SIP/2.0 200 OK\r\nVia: SIP/2.0/UDP 192.0.2.11:40000;branch=z9hG4bK1\r\nFrom: <sip:flip@192.0.2.11>;tag=1\r\nTo: <sip:192.0.2.100:5060>;tag=2\r\nCall-ID: "+callID+"\r\nCSeq: 1 OPTIONS\r\nServer: Asterisk PBX 20\r\nContent-Length: 0\r\n\r\n"), []byte{})
	f.Add([]byte("SIP/2.0 100 Trying\r\n\r\n"), []byte{1, 2, 3})
	f.Fuzz(func(t *testing.T, b, oob []byte) {
		p := &tickProbe{pending: []*tickPending{{callID: callID, sent: ftStart}}}
		res, ok := p.answer(b, oob, ftStart.Add(time.Second))
		if ok && (!res.Answered || res.RTT < 0) {
			t.Fatalf("answer %+v: answered with a negative RTT or not answered", res)
		}
	})
}

// FuzzICMPQuote: the Call-ID quoted in an ICMP port unreachable.
func FuzzICMPQuote(f *testing.F) {
	_, req := optionsRequest("sip:192.0.2.100:5060", "SIP/2.0/UDP 192.0.2.11:40000", "sip:flip@192.0.2.11")
	f.Add(req)
	f.Add(req[:len(req)/2])
	f.Add([]byte("Call-ID:"))
	f.Fuzz(func(t *testing.T, b []byte) {
		_ = quotedCallID(b)
		_ = refusedError(b)
		_ = arrival(b, ftStart)
	})
}

// FuzzARPFrame: the holder check's and the hand-over's readers of ARP
// frames.
func FuzzARPFrame(f *testing.F) {
	frames, err := garpFrames(arpTestOther, arpTestVIP)
	if err != nil {
		f.Fatal(err)
	}
	for _, fr := range frames {
		f.Add(fr)
	}
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, b []byte) {
		if mac := claimant(b, arpTestMAC, arpTestVIP); mac != nil && mac.String() == arpTestMAC.String() {
			t.Fatal("our own frame taken for another box's claim")
		}
		_ = arpAsker(b, arpTestMAC, arpTestVIP)
	})
}

// FuzzNDPFrame: the same for IPv6 (Neighbour Advertisements and
// Solicitations).
func FuzzNDPFrame(f *testing.F) {
	if na, err := unsolicitedNAFrame(ndpTestOther, ndpTestVIP); err == nil {
		f.Add(na)
	}
	if ns, err := solicitationFrame(ndpTestOther, netip.MustParseAddr("2001:db8::12"), ndpTestVIP); err == nil {
		f.Add(ns)
	}
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, b []byte) {
		_ = ndpClaimant(b, ndpTestOurs, ndpTestVIP)
		_ = ndpAsker(b, ndpTestOurs, ndpTestVIP)
		_, _, _, _ = ndpMessage(b, ndpTestOurs)
	})
}

// FuzzPeerMessage: the peer channel's check of a datagram. Whatever comes
// in, only a message signed with the key, addressed to this box and fresh
// is accepted.
func FuzzPeerMessage(f *testing.F) {
	p := &peer{local: netip.MustParseAddr("192.0.2.12"), remote: &net.UDPAddr{IP: net.ParseIP("192.0.2.11"), Port: 5999},
		key: []byte("0123456789abcdef-fuzz"), seen: map[string]time.Time{}}
	m := peerMsg{Type: peerHeartbeat, From: "box-a", Src: "192.0.2.11", Dst: "192.0.2.12", TS: ftStart.UnixNano(), Nonce: "00", Beat: &heartbeat{Role: "active", Holds: true}}
	m.MAC = p.sign(m)
	good, _ := json.Marshal(m)
	f.Add(good)
	f.Add([]byte(`{"type":"released"}`))
	f.Add([]byte("junk"))
	from := &net.UDPAddr{IP: net.ParseIP("192.0.2.11"), Port: 5999}
	f.Fuzz(func(t *testing.T, b []byte) {
		q := &peer{local: p.local, remote: p.remote, key: p.key, seen: map[string]time.Time{}}
		got, err := q.verify(b, from, ftStart)
		if err != nil {
			return
		}
		want, _ := hex.DecodeString(q.sign(got))
		mac, _ := hex.DecodeString(got.MAC)
		if !hmac.Equal(want, mac) || got.Dst != "192.0.2.12" || got.Src != "192.0.2.11" {
			t.Fatalf("accepted a message that is not signed and addressed right: %+v", got)
		}
	})
}
