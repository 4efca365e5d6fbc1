package main

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"
)

// TestPingReportsAnotherKey: a ping to a box whose flip signs with another
// key is answered all the same, and the pinger says the keys differ rather
// than "no answer".
func TestPingReportsAnotherKey(t *testing.T) {
	a, b := ptPair(t, "0123456789abcdef-key-one", "0123456789abcdef-key-two")
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go b.run(ctx, make(chan peerMsg, 8))
	_, _, err := a.ping(2 * time.Second)
	if !errors.Is(err, errPeerOtherKey) || !strings.Contains(err.Error(), "give both boxes the same key") {
		t.Fatalf("ping with another key: %v, want the key mismatch said as such", err)
	}
	// A second ping within the second gets no answer: forged pings make
	// no storm.
	if _, _, err := a.ping(300 * time.Millisecond); errors.Is(err, errPeerOtherKey) {
		t.Fatal("a second ping with another key was answered within the same second")
	}
}

// TestPingComparesConfigurations: the pong carries the other box's
// fingerprint; configDiff names the settings that differ, and only those.
func TestPingComparesConfigurations(t *testing.T) {
	const key = "0123456789abcdef-shared"
	a, b := ptPair(t, key, key)
	t.Setenv("FLIP_RESOURCES", "192.0.2.110/24 fonebridge asterisk")
	t.Setenv("FLIP_DEAD_AFTER", "1s")
	t.Setenv("FLIP_PRIMARY", "true") // per box: not compared
	b.config = configFingerprint(key)
	t.Setenv("FLIP_DEAD_AFTER", "2s")
	t.Setenv("FLIP_PRIMARY", "false")
	a.config = configFingerprint(key)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go b.run(ctx, make(chan peerMsg, 8))
	_, theirs, err := a.ping(2 * time.Second)
	if err != nil {
		t.Fatal(err)
	}
	if diff := configDiff(a.config, theirs); strings.Join(diff, " ") != "FLIP_DEAD_AFTER" {
		t.Fatalf("configDiff = %q, want only FLIP_DEAD_AFTER", diff)
	}
	if v := a.config["FLIP_DEAD_AFTER"]; len(v) != 12 || strings.Contains(v, "2s") {
		t.Fatalf("fingerprint of a value = %q: want 12 hex digits, not the value", v)
	}
	row := configRow(&config{PeerKey: key}, []pingResult{{Config: theirs}})
	if row.Status != checkFail || !strings.Contains(row.Detail, "FLIP_DEAD_AFTER") {
		t.Fatalf("configRow = %+v", row)
	}
}
