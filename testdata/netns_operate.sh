# netns_operate.sh — operator commands over the control socket, sourced by
# netns_test.sh (which provides the lab, expect, fail and the helpers).

ctl() { local box=$1; shift; lab_exec "$box" "$LAB_BIN/flip" "$@" --socket "$LAB_DIR/$box/flip.sock"; }

# flip status answers over the socket (mode 0600) with the agent's state.
test_control_status() {
	hot_pair
	expect "socket is mode 0600" test "$(stat -c %a "$LAB_DIR/a/flip.sock")" = 600
	ctl a status --json >"$LAB_DIR/a/status.json"
	expect "status: a is active" grep -q '"role":"active"' "$LAB_DIR/a/status.json"
	ctl b status >"$LAB_DIR/b/status.txt"
	expect "status (text): b is passive" grep -qi 'passive' "$LAB_DIR/b/status.txt"
	expect "release on a passive box is refused (exit 1)" bash -c "! ip netns exec $(lab_ns b) $LAB_BIN/flip release --socket $LAB_DIR/b/flip.sock"
}

# flip switchover on the active box, without the peer channel: a stops
# Asterisk but keeps the VIP; b sees the closed port, asks who holds the
# VIP, waits while a does; a lets go when b asks; b takes over. The outage
# is measured and printed.
test_control_switchover() {
	hot_pair
	ctl a switchover >"$LAB_DIR/a/switchover.txt" 2>&1
	local rc=$?
	sed 's/^/    | /' "$LAB_DIR/a/switchover.txt"
	expect "switchover exits 0" test "$rc" = 0
	expect "timeline printed" grep -q 'active -> passive (operator)' "$LAB_DIR/a/switchover.txt"
	expect "outage measured" grep -q '^outage: [0-9.]* ms' "$LAB_DIR/a/switchover.txt"
	expect "a kept the VIP with Asterisk stopped" log_has a 'services stopped; keeping the VIP until the other box asks'
	expect "b decided on the closed port" log_has b "taking over.*service's port closed"
	expect "b waited while a still held the VIP" log_has b 'another box still holds the VIP; waiting'
	expect "a let go when b asked" log_has a "the other box asked who holds the VIP; releasing it.*asker=$(lab_mac b)"
	expect "b holds, a does not" only_holder b
	expect "a does not take it back (4 s)" never_holds a 4
	expect "SIP answers through b" sip_ok
}

# flip takeover is refused while another box holds the VIP; --force
# overrides it, says so, and the forced box keeps the VIP.
test_control_takeover() {
	hot_pair
	expect "takeover refused while a holds the VIP" bash -c "! ip netns exec $(lab_ns b) $LAB_BIN/flip takeover --socket $LAB_DIR/b/flip.sock 2>$LAB_DIR/b/refused.txt"
	expect "refusal names the holder and the way out" grep -q "holds $LAB_VIP: run .flip switchover. there" "$LAB_DIR/b/refused.txt"
	kill -TERM "${LAB_FLIP_PID[a]}"
	{ wait "${LAB_FLIP_PID[a]}"; } 2>/dev/null
	ctl b takeover --force >"$LAB_DIR/b/forced.txt" 2>&1
	expect "forced takeover succeeds" test $? = 0
	expect "it says what it overrode" grep -q "forced: overrode box $(lab_mac a)" "$LAB_DIR/b/forced.txt"
	expect "b holds the VIP" lab_holds b
	expect "b keeps announcing against a's kernel" lab_wait 4 log_has b 'another box claims the VIP; announcing it again'
	expect "client's neighbour entry ends on b" lab_wait 4 neigh_is b
}

# FLIP_PROBE_TRANSPORT=tcp: probes over TCP; when Asterisk dies the refused
# connection is known at once, the active box releases and b takes over.
test_probe_over_tcp() {
	LAB_STANDIN_ARGS="-tcp"
	lab_standin a -tcp
	lab_standin b -tcp
	lab_flip a FLIP_PROBE_TRANSPORT=tcp
	lab_flip b FLIP_PROBE_TRANSPORT=tcp
	lab_wait 10 serving a || fail "box a did not start serving"
	lab_wait 10 flip_heard a || fail "box a's flip did not hear its own service"
	expect "a is active over TCP probes" bash -c "! grep -q releasing '$LAB_DIR/a/flip.log'"
	kill -9 "$(cat "$LAB_DIR/a/state/asterisk.pid")"
	expect "a releases on the refused connection" lab_wait 3 log_has a "releasing.*port closed"
	expect "b takes over" lab_wait 3 lab_holds b
	expect "SIP answers through b" lab_wait 5 sip_ok
}

# With the peer channel, the switchover's released box tells the other,
# which takes over at once instead of after FLIP_DEAD_AFTER.
test_switchover_with_peer() {
	peer_pair
	ctl a switchover >"$LAB_DIR/a/switchover.txt" 2>&1
	expect "switchover exits 0" test $? = 0
	sed -n 's/^outage: /    switchover outage (peer channel): /p' "$LAB_DIR/a/switchover.txt"
	expect "b took over on a's word, not on silence" log_has b 'taking over.*released the service and handed it over'
	expect "only b holds" only_holder b
	expect "SIP answers through b" lab_wait 3 sip_ok
}

# systemd's notify protocol, end to end: a stand-in for systemd's socket
# (tools/notify-listen) records what flip a says: READY=1 with its role at
# the start, a STATUS line per role change, WATCHDOG=1 while the loop runs
# (WATCHDOG_USEC=2 s: one at least every second), STOPPING=1 on SIGTERM.
# FLIP_NOTIFY_CMD runs on each role change, in order. (Both were wired only
# when FLIP_METRICS_ADDR was set, until this test.)
test_systemd_notify() {
	local sock="$LAB_DIR/a/notify.sock" msgs="$LAB_DIR/a/notify.log" hooks="$LAB_DIR/a/hook.log"
	printf '#!/bin/sh\necho "$*: $FLIP_NOTIFY_REASON" >>%s\n' "$hooks" >"$LAB_DIR/a/hook"
	chmod +x "$LAB_DIR/a/hook"
	"$LAB_BIN/notify-listen" -socket "$sock" -out "$msgs" &
	LAB_PIDS+=($!)
	lab_wait 5 test -S "$sock" || fail "notify-listen did not start"
	lab_standin a
	lab_standin b
	lab_flip a NOTIFY_SOCKET="$sock" WATCHDOG_USEC=2000000 FLIP_NOTIFY_CMD="$LAB_DIR/a/hook"
	lab_flip b
	expect "READY=1 with the role at the start" lab_wait 5 grep -q 'READY=1|STATUS=passive, 0 VIPs held' "$msgs"
	expect "STATUS on the takeover" lab_wait 10 grep -q 'STATUS=active: took over' "$msgs"
	lab_wait 10 flip_heard a || fail "box a's flip did not hear its own service"
	local before after
	before=$(grep -c 'WATCHDOG=1' "$msgs")
	sleep 3
	after=$(grep -c 'WATCHDOG=1' "$msgs")
	echo "    watchdog pings in 3 s: $((after - before))"
	expect "watchdog pings while the loop runs" test $((after - before)) -ge 2
	local gap
	gap=$(awk '/WATCHDOG=1/ { if (t != "" && $1 - t > g) g = $1 - t; t = $1 } END { print g + 0 }' "$msgs")
	echo "    longest time between two watchdog pings: $gap ms"
	expect "no two pings further apart than WATCHDOG_USEC (2 s): systemd never kills it" test "$gap" -lt 2000
	kill -9 "$(cat "$LAB_DIR/a/state/asterisk.pid")"
	expect "STATUS on the release" lab_wait 5 grep -q 'STATUS=passive: released' "$msgs"
	expect "the hook ran for the takeover, then the release" lab_wait 5 bash -c "[ \"\$(cut -d' ' -f1,2 '$hooks' | tr '\n' ,)\" = 'passive active,active passive,' ]"
	expect "the hook got the reason" grep -q "^active passive .*: .*port closed" "$hooks"
	kill -TERM "${LAB_FLIP_PID[a]}"
	{ wait "${LAB_FLIP_PID[a]}"; } 2>/dev/null
	expect "STOPPING=1 on SIGTERM" lab_wait 3 grep -q 'STOPPING=1' "$msgs"
	expect "nothing after STOPPING=1" test "$(tail -n 1 "$msgs" | grep -c STOPPING=1)" = 1
}

# Maintenance mode (issue 15): `flip hold` on the passive box holds both
# (peer channel). Asterisk restarted on the active box moves nothing: a
# does not release, b does not take over; status and log lines say held
# and by whom. An explicit switchover still works while held. `flip unhold`
# ends it on both; a hold also survives a restart of flip and ends by
# itself at its deadline.
test_hold() {
	peer_pair
	ctl b hold --for 60s >"$LAB_DIR/b/hold.txt" 2>&1
	expect "flip hold exits 0 and says both boxes are held" grep -q 'held until .* on both boxes' "$LAB_DIR/b/hold.txt"
	expect "a (told over the peer channel) is held too" lab_wait 5 a_status_has 'HELD (maintenance) by .*@box-b\|HELD (maintenance) by box-b'
	lab_log "Asterisk on a stops (an upgrade): nothing moves"
	local pid
	pid=$(cat "$LAB_DIR/a/state/asterisk.pid")
	kill -TERM "$pid"
	expect "a would release but is held" lab_wait 5 log_has a 'would release.*nothing moves by itself'
	expect "b does not take over (3 s)" never_holds b 3
	expect "a still holds" only_holder a
	expect "a's log lines say held and by whom" log_has a 'held="by .*box-b until'
	lab_standin a
	expect "a's Asterisk back: a serves again, nothing moved" lab_wait 10 serving a
	lab_log "restart flip on a: the hold survives"
	kill -TERM "${LAB_FLIP_PID[a]}"
	{ wait "${LAB_FLIP_PID[a]}"; } 2>/dev/null
	# shellcheck disable=SC2046
	lab_flip a $(peer_env a)
	expect "a is still held after its restart" lab_wait 10 a_status_has 'HELD (maintenance)'
	ctl a switchover >"$LAB_DIR/a/switchover.txt" 2>&1
	expect "an explicit switchover still works while held" test $? = 0
	expect "b holds" lab_wait 5 only_holder b
	ctl a unhold >"$LAB_DIR/a/unhold.txt" 2>&1
	expect "flip unhold ends it on both boxes" grep -q 'hold ended on both boxes' "$LAB_DIR/a/unhold.txt"
	expect "b's log says the hold ended on the other box's word" lab_wait 5 log_has b "hold ended on the other box's word"
	ctl b hold --for 2s >/dev/null 2>&1
	expect "a 2 s hold runs out by itself" lab_wait 10 log_has b 'hold ran out'
	expect "--for is only for hold" bash -c "! ip netns exec $(lab_ns a) $LAB_BIN/flip status --for 1m --socket $LAB_DIR/a/flip.sock 2>/dev/null"
}

# An optional foneBRIDGE ("fonebridge?") whose fonulator fails: b takes
# over all the same and serves SIP, the takeover is reported ok=false with
# the resource named, and the start is retried while b is active.
test_optional_fonebridge() {
	lab_standin a
	lab_standin b
	lab_flip a FLIP_RESOURCES="$LAB_VIP/24 routes fonebridge? asterisk"
	lab_flip b FONULATOR_EXIT=1 FLIP_FONULATOR_RETRIES=0 FLIP_RESOURCES="$LAB_VIP/24 routes fonebridge? asterisk"
	lab_wait 10 serving a || fail "box a did not start serving"
	lab_wait 10 flip_heard b || fail "box b's flip did not hear the service"
	kill -9 "$(cat "$LAB_DIR/a/state/asterisk.pid")"
	expect "b's fonulator fails, and b goes on without it" lab_wait 5 log_has b 'optional resource failed to start; the takeover goes on'
	expect "b's takeover completes, naming the failed resource" lab_wait 5 log_has b 'takeover complete.*optional resource failed (retried): fonebridge'
	expect "b holds the VIP" lab_wait 5 only_holder b
	expect "SIP answers through b" lab_wait 5 sip_ok
	expect "b's status shows the takeover with ok=false" bash -c "ip netns exec $(lab_ns b) $LAB_BIN/flip status --json --socket $LAB_DIR/b/flip.sock | grep -o '\"last_takeover\":{[^}]*' | grep -q '\"to\":\"active\".*\"ok\":false'"
	expect "the start is retried while b is active (10 s)" lab_wait 20 log_has b 'optional resource still failing'
}

# flip check --env-file reads /etc/default/flip the way systemd does: the
# unquoted value with blanks that a shell would run as a command
# (FLIP_RESOURCES=... fonebridge asterisk) is read whole, and the check of the
# running box passes with nothing but the file (env -i: no FLIP_* around).
test_check_env_file() {
	hot_pair
	cat >"$LAB_DIR/a/flip.env" <<ENV
# as /etc/default/flip: one VAR=value per line, values not quoted
FLIP_NAME=box-a
FLIP_RESOURCES=$LAB_VIP/24 routes fonebridge asterisk
FLIP_PRIMARY=true
FLIP_SERVICE_CMD=$LAB_ROOT/testdata/standin-service {action} {name}
FLIP_FONULATOR=$LAB_ROOT/testdata/fonulator
FLIP_FONEBRIDGE_CONF=$LAB_DIR/a/redfone.conf
FLIP_STATE_FILE=$LAB_DIR/a/state.json
FLIP_CONTROL_SOCKET=$LAB_DIR/a/flip.sock
ENV
	expect "a shell cannot source it (why flip check reads it itself)" \
		bash -c "env -i PATH=/usr/bin:/bin bash -c 'set -a; . $LAB_DIR/a/flip.env; [ \"\$FLIP_RESOURCES\" = \"$LAB_VIP/24 routes fonebridge asterisk\" ]' 2>/dev/null; [ \$? != 0 ]"
	lab_exec a env -i PATH="$PATH" "$LAB_BIN/flip" check --env-file "$LAB_DIR/a/flip.env" >"$LAB_DIR/a/check.txt" 2>&1
	local rc=$?
	sed 's/^/    | /' "$LAB_DIR/a/check.txt" | head -40
	expect "flip check --env-file exits 0" test "$rc" = 0
	expect "it read FLIP_RESOURCES whole: the plan starts fonebridge and asterisk" \
		bash -c "grep -q 'fonebridge' '$LAB_DIR/a/check.txt' && grep -q 'asterisk' '$LAB_DIR/a/check.txt'"
	echo "FLIP_PROBE_INTERVAL=1ns" >>"$LAB_DIR/a/flip.env"
	lab_exec a env -i PATH="$PATH" "$LAB_BIN/flip" check --env-file "$LAB_DIR/a/flip.env" >"$LAB_DIR/a/check2.txt" 2>&1
	expect "a bad value in the file: exit 2 naming the variable" \
		bash -c "[ $? = 2 ] && grep -q FLIP_PROBE_INTERVAL '$LAB_DIR/a/check2.txt'"
}

# flip check over the peer channel: it names the settings that differ from
# the other box's (not the per-box ones), and says a key mismatch as such.
test_check_peer() {
	peer_pair
	local f=$LAB_DIR/b/flip.env
	cat >"$f" <<ENV
FLIP_NAME=box-b
FLIP_RESOURCES=$LAB_VIP/24 routes fonebridge asterisk
FLIP_PRIMARY=false
FLIP_SERVICE_CMD=$LAB_ROOT/testdata/standin-service {action} {name}
FLIP_FONULATOR=$LAB_ROOT/testdata/fonulator
FLIP_FONEBRIDGE_CONF=$LAB_DIR/a/redfone.conf
FLIP_INIT_DEAD=30s
FLIP_START_TIMEOUT=60s
FLIP_STATE_FILE=$LAB_DIR/b/state.json
FLIP_CONTROL_SOCKET=$LAB_DIR/b/flip.sock
FLIP_PEER=${LAB_ADDR[a]}
FLIP_PEER_KEY=$PEER_KEY
FLIP_HOLD_DOWN=5m
ENV
	lab_exec b env -i PATH="$PATH" "$LAB_BIN/flip" check --env-file "$f" >"$LAB_DIR/b/check.txt" 2>&1
	sed 's/^/    | /' "$LAB_DIR/b/check.txt" | grep -i 'peer\|configuration'
	expect "the other box's flip answered the signed ping" grep -q "OK *peer ${LAB_ADDR[a]}" "$LAB_DIR/b/check.txt"
	expect "flip check names the setting that differs" grep -q 'these settings differ from the other box.s: FLIP_HOLD_DOWN$' "$LAB_DIR/b/check.txt"
	sed -i 's/^FLIP_HOLD_DOWN=5m$//; s/^FLIP_PEER_KEY=.*/FLIP_PEER_KEY=another-key-0123456789/' "$f"
	lab_exec b env -i PATH="$PATH" "$LAB_BIN/flip" check --env-file "$f" >"$LAB_DIR/b/check2.txt" 2>&1
	sed 's/^/    | /' "$LAB_DIR/b/check2.txt" | grep -i 'peer'
	expect "another key is said as such" grep -q 'FAIL *peer .*signed with another FLIP_PEER_KEY' "$LAB_DIR/b/check2.txt"
}

# a_status_has PATTERN: a's flip status (text) matches PATTERN.
a_status_has() { ctl a status 2>/dev/null | grep -q -- "$1"; }

OPERATE_TESTS="switchover_with_peer probe_over_tcp control_status control_switchover control_takeover systemd_notify hold optional_fonebridge check_env_file check_peer"
