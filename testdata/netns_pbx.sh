# netns_pbx.sh — the PBX side of a failover (issue 13): drained
# switchovers. Sourced by netns_test.sh (the lab, expect, fail, helpers) after
# netns_operate.sh (ctl) and netns_safety.sh (hot_pair, peer_env).

# drain_pair MODE CALLS [FLIP_VAR=VALUE...]: a hot pair whose stand-in
# Asterisks answer 503 while $LAB_DIR/BOX/state/draining exists, and whose
# drain commands are testdata/drain-standin over the box's state dir, with
# CALLS calls in progress counted in MODE (fall, fall-stop, stay, fail).
# DRAIN_PEER=1: with the peer channel.
drain_pair() {
	local mode=$1 calls=$2 n
	shift 2
	for n in a b; do
		mkdir -p "$LAB_DIR/$n/state"
		echo "$mode" >"$LAB_DIR/$n/state/mode"
		echo "$calls" >"$LAB_DIR/$n/state/calls"
		lab_standin "$n" -drain-file "$LAB_DIR/$n/state/draining"
	done
	for n in a b; do
		# shellcheck disable=SC2046
		lab_flip "$n" $([ "${DRAIN_PEER:-}" = 1 ] && peer_env "$n") DRAIN_DIR="$LAB_DIR/$n/state" \
			FLIP_DRAIN_CMD="$LAB_ROOT/testdata/drain-standin drain" \
			FLIP_UNDRAIN_CMD="$LAB_ROOT/testdata/drain-standin undrain" \
			FLIP_CALLS_CMD="$LAB_ROOT/testdata/drain-standin calls" \
			FLIP_DRAIN_POLL=200ms "$@"
	done
	lab_wait 10 serving a || fail "box a did not start serving"
	lab_wait 10 flip_heard a || fail "box a's flip did not hear its own service"
	lab_wait 10 flip_heard b || fail "box b's flip did not hear the service"
}

drain_log_count() { grep -c "^$2\$" "$LAB_DIR/$1/state/drain.log" 2>/dev/null || true; }

# A drained switchover: 3 calls end one by one; flip switchover --drain
# prints the count as it falls, switches at 0 and measures the outage. The
# drain command ran once, the undo never, and b took the VIP only after a's
# drain was over (while a drained, its 503 answers kept b passive).
test_drain_switchover() {
	drain_pair fall 3 FLIP_DRAIN_POLL=1s
	ctl a switchover --drain=20s >"$LAB_DIR/a/switchover.txt" 2>&1
	local rc=$?
	sed 's/^/    | /' "$LAB_DIR/a/switchover.txt"
	expect "switchover --drain exits 0" test "$rc" = 0
	expect "the falling count was printed" bash -c "grep -q 'draining: 2 calls left' '$LAB_DIR/a/switchover.txt' && grep -q 'draining: 1 call left' '$LAB_DIR/a/switchover.txt'"
	expect "it switched when no calls were left" grep -q 'switched after .*: no calls left' "$LAB_DIR/a/switchover.txt"
	expect "outage measured" grep -q '^outage: [0-9.]* ms' "$LAB_DIR/a/switchover.txt"
	expect "FLIP_DRAIN_CMD ran once" test "$(drain_log_count a drain)" = 1
	expect "FLIP_UNDRAIN_CMD never ran" test "$(drain_log_count a undrain)" = 0
	expect "a released with cause drained" log_has a 'msg=releasing .*reason="drain: no calls left'
	expect "b added the VIP only after a's drain was over" \
		ev_after "$(ev_first b add)" "$(ev_log a 'drain over: switching over')"
	expect "b holds, a does not" lab_wait 5 only_holder b
	expect "never two holders" ev_never_two
	expect "SIP answers through b" lab_wait 5 sip_ok
}

# Calls that never end: the switchover is called off at the time-out,
# FLIP_UNDRAIN_CMD undoes the drain (a answers 200 again), a keeps the VIP,
# and b never takes it, although a answered 503 all along.
test_drain_called_off() {
	drain_pair stay 2
	ctl a switchover --drain=3s >"$LAB_DIR/a/switchover.txt" 2>&1 &
	local cli=$!
	expect "while a drains, b's probes get a's 503 and b stays passive" lab_wait 5 b_sees_503
	wait "$cli"
	local rc=$?
	sed 's/^/    | /' "$LAB_DIR/a/switchover.txt"
	expect "switchover --drain exits 1" test "$rc" = 1
	expect "it says why" grep -q 'called-off after .*2 calls still in progress at the drain time-out' "$LAB_DIR/a/switchover.txt"
	expect "FLIP_UNDRAIN_CMD ran once" lab_wait 5 test "$(drain_log_count a undrain)" = 1
	expect "the drain file is gone: a takes calls again" test ! -e "$LAB_DIR/a/state/draining"
	expect "status shows the drain called off and undone" lab_wait 5 a_status_has 'last drain.*called-off.*FLIP_UNDRAIN_CMD: ok'
	expect "a still holds the VIP" only_holder a
	expect "b never took the VIP" never_holds b 2
}

# b_sees_503: b is passive and its newest probe answer was a 503.
b_sees_503() {
	local s
	s=$(ctl b status --json) || return 1
	grep -q '"role":"passive"' <<<"$s" && grep -q '"last_status":503' <<<"$s"
}

# --force: calls left at the time-out, switched anyway.
test_drain_force() {
	drain_pair stay 2
	ctl a switchover --drain=1s --force >"$LAB_DIR/a/switchover.txt" 2>&1
	local rc=$?
	sed 's/^/    | /' "$LAB_DIR/a/switchover.txt"
	expect "switchover --drain --force exits 0" test "$rc" = 0
	expect "it says it switched anyway" grep -q 'switching anyway (--force)' "$LAB_DIR/a/switchover.txt"
	expect "FLIP_UNDRAIN_CMD never ran" test "$(drain_log_count a undrain)" = 0
	expect "b holds" lab_wait 5 only_holder b
	expect "never two holders" ev_never_two
}

# A count command that fails: three failures in a row call the switchover
# off, naming FLIP_CALLS_CMD; the drain is undone and a keeps the VIP.
test_drain_count_fails() {
	drain_pair fail 0
	ctl a switchover --drain=20s >"$LAB_DIR/a/switchover.txt" 2>&1
	local rc=$?
	sed 's/^/    | /' "$LAB_DIR/a/switchover.txt"
	expect "switchover --drain exits 1" test "$rc" = 1
	expect "it names the failing command and its output" grep -q 'FLIP_CALLS_CMD failed 3 times.*Unable to connect' "$LAB_DIR/a/switchover.txt"
	expect "FLIP_UNDRAIN_CMD ran" lab_wait 5 test "$(drain_log_count a undrain)" = 1
	expect "a still holds the VIP" only_holder a
	expect "b never took the VIP" never_holds b 2
}

# Asterisk stops by itself after its last call ("core stop gracefully"),
# before flip's next count, with the peer channel: the end of the drain, not
# a failure. a releases with cause drained (no hold-down), tells b, and b
# takes over on that word.
test_drain_service_stops() {
	DRAIN_PEER=1 drain_pair fall-stop 2 FLIP_DRAIN_POLL=2s
	ctl a switchover --drain=30s >"$LAB_DIR/a/switchover.txt" 2>&1
	local rc=$?
	sed 's/^/    | /' "$LAB_DIR/a/switchover.txt"
	expect "switchover --drain exits 0" test "$rc" = 0
	expect "a released because its service stopped during the drain" log_has a 'drain: the service stopped by itself'
	expect "b took over on a's word" lab_wait 5 log_has b 'released the service and handed it over'
	expect "no hold-down on a (an operator's switchover, not a failure)" bash -c "! grep -q 'held down' '$LAB_DIR/a/flip.log'"
	expect "b holds" lab_wait 5 only_holder b
	expect "never two holders" ev_never_two
	expect "SIP answers through b" lab_wait 5 sip_ok
}

# rsyncd BOX: a real rsync daemon on BOX's own address, module "asterisk"
# writable into $LAB_DIR/BOX/etc-asterisk (the other box's /etc/asterisk).
rsyncd() {
	local box=$1
	mkdir -p "$LAB_DIR/$box/etc-asterisk"
	cat >"$LAB_DIR/$box/rsyncd.conf" <<CONF
use chroot = false
[asterisk]
	path = $LAB_DIR/$box/etc-asterisk
	read only = false
	uid = root
	gid = root
CONF
	ip netns exec "$(lab_ns "$box")" rsync --daemon --no-detach --config="$LAB_DIR/$box/rsyncd.conf" \
		--address="${LAB_ADDR[$box]}" --port=873 --log-file="$LAB_DIR/$box/rsyncd.log" &
	RSYNCD_PID[$box]=$!
	LAB_PIDS+=($!)
}
declare -A RSYNCD_PID

# has_line FILE TEXT: FILE exists and has the line TEXT.
has_line() { grep -qx -- "$2" "$1" 2>/dev/null; }

# Keeping the standby in step with a real rsync daemon on both boxes: the
# active box pushes right after its takeover and every FLIP_SYNC_INTERVAL;
# the passive box never pushes; after a failover the direction reverses;
# a failed sync is a warning and a status line, and moves nothing.
test_standby_sync() {
	local n
	for n in a b; do rsyncd "$n"; done
	echo "exten v1" >"$LAB_DIR/a/etc-asterisk/extensions.conf"
	lab_standin a
	lab_standin b
	for n in a b; do
		# shellcheck disable=SC2046
		lab_flip "$n" $(peer_env "$n") FLIP_SYNC_INTERVAL=10s \
			FLIP_SYNC_CMD="rsync -a --delete --timeout=10 $LAB_DIR/$n/etc-asterisk/ rsync://{peer}/asterisk/"
	done
	lab_wait 10 serving a || fail "box a did not start serving"
	expect "right after its takeover a pushed /etc/asterisk to b" lab_wait 10 has_line "$LAB_DIR/b/etc-asterisk/extensions.conf" "exten v1"
	echo "exten v2" >"$LAB_DIR/a/etc-asterisk/extensions.conf"
	echo "written on the passive box" >"$LAB_DIR/b/etc-asterisk/only-on-b.conf"
	expect "a change on a reaches b within FLIP_SYNC_INTERVAL (10 s)" lab_wait 15 has_line "$LAB_DIR/b/etc-asterisk/extensions.conf" "exten v2"
	expect "the passive box never pushed: b's own file never reached a" test ! -e "$LAB_DIR/a/etc-asterisk/only-on-b.conf"
	expect "b (passive) never ran FLIP_SYNC_CMD" bash -c "! grep -q 'standby sync' '$LAB_DIR/b/flip.log'"
	expect "a's status shows the sync" lab_wait 5 a_status_has 'standby sync: last run ok'
	lab_log "kill Asterisk on a: b takes over"
	kill -9 "$(cat "$LAB_DIR/a/state/asterisk.pid")"
	expect "b holds" lab_wait 10 only_holder b
	echo "exten v3 from b" >"$LAB_DIR/b/etc-asterisk/extensions.conf"
	expect "after the failover b pushes to a (the direction reversed)" lab_wait 15 has_line "$LAB_DIR/a/etc-asterisk/extensions.conf" "exten v3 from b"
	local a_syncs
	a_syncs=$(grep -c 'standby sync done' "$LAB_DIR/a/flip.log")
	{ kill -9 "${RSYNCD_PID[a]}" && wait "${RSYNCD_PID[a]}"; } 2>/dev/null
	expect "with a's rsync daemon gone, b's sync fails with a warning" lab_wait 15 log_has b 'standby sync failed'
	expect "b's status says so" bash -c "ip netns exec $(lab_ns b) $LAB_BIN/flip status --socket $LAB_DIR/b/flip.sock | grep -q 'standby sync: last run FAILED'"
	expect "a failed sync moves nothing: b still holds" only_holder b
	expect "a (passive now) ran no sync since it released" test "$(grep -c 'standby sync done' "$LAB_DIR/a/flip.log")" = "$a_syncs"
}

PBX_TESTS="drain_switchover drain_called_off drain_force drain_count_fails drain_service_stops standby_sync"
