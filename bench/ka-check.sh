#!/bin/sh
# ka-check.sh ENVFILE — keepalived's track_script for the benchmark: is the
# box's Asterisk answering SIP? One quick OPTIONS exchange with the stand-in's
# loopback listener (127.0.0.1:5060) using `flip watch` (200 ms, a probe every
# 50 ms, each waiting at most 100 ms): exit 0 if anything answered.
#
# Cold standby (STANDBY=cold) mirrors flip's own rules, or keepalived could
# never work there: a box without the VIP has no Asterisk to check (exit 0),
# and after becoming master (notify_master writes ka.master-since) silence is
# forgiven until the first answer or for GRACE_S seconds, like
# FLIP_START_TIMEOUT; after the first answer every failed check counts.
set -u
. "$1"
dir=$(dirname "$1")

probe() {
	"$LAB_BIN/flip" watch -for 200ms -interval 50ms -timeout 100ms 127.0.0.1 >/dev/null 2>&1
}

if [ "$STANDBY" = cold ]; then
	ip -4 -o addr show dev eth0 | grep -q " $LAB_VIP/" || exit 0
	if [ ! -f "$dir/ka.answered" ]; then
		if probe; then
			: >"$dir/ka.answered"
			exit 0
		fi
		since=$(cat "$dir/ka.master-since" 2>/dev/null || echo 0)
		[ $(($(date +%s) - since)) -lt "$GRACE_S" ] && exit 0
		exit 1
	fi
fi
probe
