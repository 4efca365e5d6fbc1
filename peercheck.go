package main

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"os"
	"reflect"
	"slices"
	"strings"
)

// What `flip check` learns from the other box over the peer channel
// (issue 15): whether both boxes sign with the same FLIP_PEER_KEY, said as
// such when they do not, and whether their configurations match.
//
// Every message carries a key id: a fixed label signed with the key. It
// tells "another key" from "junk" without revealing anything a signature
// does not. A ping signed with another key is answered (at most once a
// second, so a forged one cannot make a storm) with a pong signed with this
// box's key: the pinger cannot verify it, but sees its own nonce echoed and
// the other key id, and says "FLIP_PEER_KEY differs".
//
// Pings and pongs carry the sender's configuration fingerprint: for each
// FLIP_* variable that must be the same on both boxes, a short HMAC (with
// the peer key, so a password in FLIP_FENCE_CMD cannot be guessed from it by
// someone on the LAN) of its value. `flip check` names the variables whose
// values differ.

// keyIDLabel is what the key id signs.
const keyIDLabel = "flip peer key id"

// keyID is the key id of key: 16 hex digits.
func keyID(key []byte) string {
	h := hmac.New(sha256.New, key)
	h.Write([]byte(keyIDLabel))
	return hex.EncodeToString(h.Sum(nil))[:16]
}

// errPeerOtherKey: a datagram from the peer's address, signed with another
// FLIP_PEER_KEY.
var errPeerOtherKey = errors.New("signed with another FLIP_PEER_KEY")

// perBoxVariables differ between the two boxes by design, or are secrets
// compared otherwise (the key, by its id): left out of the fingerprint.
var perBoxVariables = []string{
	"FLIP_PRIMARY", "FLIP_NAME", "FLIP_PEER", "FLIP_PEER_KEY", "FLIP_SOURCE", "FLIP_FAILBACK",
	"FLIP_FONEBRIDGE_INTERFACE", "FLIP_STATE_FILE", "FLIP_CONTROL_SOCKET", "FLIP_METRICS_ADDR",
	"FLIP_DEBUG_CRASH_AFTER", "FLIP_LOG_FORMAT",
}

// configFingerprint is the fingerprint of this process's FLIP_*
// configuration, signed with key: variable name -> 12 hex digits of
// HMAC(key, value), "" for a variable that is not set (its default).
func configFingerprint(key string) map[string]string {
	out := map[string]string{}
	typ := reflect.TypeOf(envSpec{})
	for i := range typ.NumField() {
		name := typ.Field(i).Tag.Get("envconfig")
		if name == "" || slices.Contains(perBoxVariables, name) {
			continue
		}
		v, ok := os.LookupEnv(name)
		if !ok || strings.TrimSpace(v) == "" {
			out[name] = ""
			continue
		}
		h := hmac.New(sha256.New, []byte(key))
		h.Write([]byte(name + "=" + strings.TrimSpace(v)))
		out[name] = hex.EncodeToString(h.Sum(nil))[:12]
	}
	return out
}

// configDiff names the variables whose fingerprints differ (a variable
// only one side knows, from another version of flip, counts too).
func configDiff(ours, theirs map[string]string) []string {
	var diff []string
	for k, v := range ours {
		if tv, ok := theirs[k]; !ok || tv != v {
			diff = append(diff, k)
		}
	}
	for k := range theirs {
		if _, ok := ours[k]; !ok {
			diff = append(diff, k)
		}
	}
	slices.Sort(diff)
	return diff
}
