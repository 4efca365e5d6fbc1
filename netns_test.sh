#!/usr/bin/env bash
# netns_test.sh — flip's end-to-end tests: two boxes, a client and a switch
# in network namespaces (testdata/lab.sh), real netlink, raw-socket ARP and
# SIP over UDP, with sipp (Debian sip-tester) as an independent witness.
#
#   sudo ./netns_test.sh            all tests
#   sudo ./netns_test.sh restart    the tests whose names match
#
# Needs root, ip, nft and sipp. Without them it skips (exit 0) and says why,
# except under CI=true, where a missing tool is a failure.
set -u
ROOT=$(cd "$(dirname "$0")" && pwd)

skip() {
	if [ "${CI:-}" = true ]; then
		echo "netns tests: cannot run under CI: $*" >&2
		exit 1
	fi
	echo "SKIP netns tests: $*"
	exit 0
}
[ "$(id -u)" = 0 ] || skip "need root to create network namespaces (run as root)"
for tool in ip sipp go; do
	command -v "$tool" >/dev/null || skip "need $tool (apt-get install iproute2 sip-tester; Go 1.26)"
done
ip netns add "flipprobe$$" 2>/dev/null || skip "cannot create network namespaces here"
ip netns del "flipprobe$$"

WORK=$(mktemp -d /tmp/flip-netns.XXXXXX)
LAB_ROOT=$ROOT
LAB_BIN=$WORK/bin
# shellcheck source=testdata/lab.sh
source "$ROOT/testdata/lab.sh"

echo "building flip and the stand-in Asterisk"
(cd "$ROOT" && CGO_ENABLED=0 go build -o "$LAB_BIN/flip" . &&
	CGO_ENABLED=0 go build -o "$LAB_BIN/standin-asterisk" ./tools/standin-asterisk &&
	CGO_ENABLED=0 go build -o "$LAB_BIN/notify-listen" ./tools/notify-listen) || exit 1

PASSED=0 FAILED=0 FAILS=()
CURRENT=""
TEST_FAILED=0

# fail REASON: marks the current test failed and shows the boxes' logs.
fail() {
	TEST_FAILED=1
	echo "    FAIL: $*"
}

# expect DESCRIPTION CMD…: CMD must succeed.
expect() {
	local what=$1; shift
	if "$@"; then
		echo "    ok: $what"
	else
		fail "$what"
	fi
}

# run_test NAME: builds a fresh lab, runs test_NAME, tears the lab down.
run_test() {
	local name=$1 n
	if [ -n "${FILTER:-}" ] && [[ $name != *$FILTER* ]]; then return; fi
	CURRENT=$name
	TEST_FAILED=0
	LAB_ID=$((LAB_ID + 1))
	LAB_RESOURCES="" LAB_STANDIN_ARGS="" LAB_INIT_DEAD="" LAB_START_TIMEOUT=""
	LAB_BOXES="a b" LAB_EXTRA=""
	[[ $name == pool_* ]] && pool_lab_vars
	echo "=== $name"
	lab_up "$WORK/$name" || fail "lab did not come up"
	for n in $LAB_BOXES; do lab_redfone "$n"; done
	"test_$name"
	if [ $TEST_FAILED = 0 ]; then
		PASSED=$((PASSED + 1))
		echo "--- PASS $name"
	else
		FAILED=$((FAILED + 1))
		FAILS+=("$name")
		echo "--- FAIL $name; logs:"
		for n in $LAB_BOXES; do
			tail -n 40 "$LAB_DIR/$n/flip.log" 2>/dev/null | sed "s/^/    $n | /"
		done
	fi
	lab_down
}

trap 'lab_down; rm -rf "$WORK"' EXIT
trap 'exit 130' INT TERM

# --- small helpers over the lab -------------------------------------------

log_has() { grep -q -- "$2" "$LAB_DIR/$1/flip.log" 2>/dev/null; }
log_count() { grep -c -- "$2" "$LAB_DIR/$1/flip.log" 2>/dev/null || true; }
calls() { cat "$LAB_DIR/$1/state/asterisk.calls" 2>/dev/null | grep -c " $2\$"; }
fonulator_runs() { cat "$LAB_DIR/$1/fonulator.log" 2>/dev/null | grep -c .; }
route_src() { lab_exec "$1" ip -4 route show "$LAB_SUBNET" dev eth0 proto kernel | sed -n 's/.* src \([0-9.]*\).*/\1/p'; }
only_holder() { [ "$(lab_holders)" = "$1" ]; }
sip_ok() { lab_sipp; }
# watch_from_vip: flip watch in the client uses a connected UDP socket, so
# it counts only answers whose source address is the VIP.
watch_from_vip() {
	lab_exec c "$LAB_BIN/flip" watch -for 300ms -json "$LAB_VIP" >"$LAB_DIR/c/watch.json" 2>/dev/null &&
		grep -q '"answered": *[1-9]' "$LAB_DIR/c/watch.json"
}
# never_holds BOX SECONDS [ADDR]: BOX adds the VIP (or ADDR) not once while
# the test watches for SECONDS, and its address events say so (events.sh):
# only for promises with no timer of their own.
never_holds() { ev_stays_out "$1" "$2" "${3:-}"; }
# serving BOX: BOX holds the VIP and SIP answers through it.
serving() { lab_holds "$1" && sip_ok; }
# flip_heard BOX: BOX's flip has seen its SIP probes answered, the last
# ones too (flip status): a test that then kills Asterisk knows flip saw it
# alive, however slowly this machine ran the test until then.
flip_heard() {
	local s
	s=$(ip netns exec "$(lab_ns "$1")" "$LAB_BIN/flip" status --json --socket "$LAB_DIR/$1/flip.sock" 2>/dev/null) || return 1
	[[ $s =~ \"answered\":\ *[1-9] ]] && [[ $s =~ \"consecutive_missed\":\ *0[,}] ]]
}

# start_pair DELAY: both boxes in cold standby, Asterisk taking DELAY to
# answer; waits until box a serves.
start_pair() {
	LAB_STANDIN_ARGS="-start-delay $1"
	lab_flip a
	lab_flip b "${@:2}"
	lab_wait 15 serving a || fail "box a did not start serving"
	lab_wait 10 flip_heard a || fail "box a's flip did not hear its own service"
}

# --- the tests ------------------------------------------------------------

# 1. Cold start: the primary takes over within about FLIP_DEAD_AFTER; the
# other box stays passive while the primary's Asterisk takes 5 s to answer.
test_cold_start() {
	LAB_STANDIN_ARGS="-start-delay 5s"
	lab_flip a
	lab_flip b
	expect "primary holds the VIP" lab_wait 2 lab_holds a
	expect "box b stays passive while a's Asterisk starts (watched 6 s)" never_holds b 6
	expect "SIP answers through the VIP (sipp)" lab_wait 5 sip_ok
	expect "answers leave from the VIP (connected socket)" watch_from_vip
	expect "takeover summary logged" log_has a 'msg="takeover complete"'
	expect "announce came before fonebridge and asterisk" \
		bash -c "grep -o 'phases=\"[^\"]*\"' '$LAB_DIR/a/flip.log' | grep -q 'routes=.* announce=.* fonebridge=.* asterisk='"
	expect "box b never tried a takeover" bash -c "! grep -q 'taking over' '$LAB_DIR/b/flip.log'"
	expect "fonulator ran once on a" test "$(fonulator_runs a)" = 1
	expect "Asterisk not started on b" test "$(calls b start)" = 0
}

# 2 and 6. The active box dies; the passive takes over everything. Then the
# old active comes back and stays passive (no automatic failback).
test_box_dies_and_returns() {
	start_pair 1s
	lab_wait 3 sip_ok
	local mac_a mac_b
	mac_a=$(lab_mac a) mac_b=$(lab_mac b)
	expect "client's neighbour entry points at a first" test "$(lab_client_neigh)" = "$mac_a"
	lab_log "power off box a"
	lab_power_off a
	expect "box b holds the VIP" lab_wait 3 lab_holds b
	expect "client's neighbour entry moved to b's MAC" lab_wait 3 bash -c "[ \"\$(ip netns exec $(lab_ns c) ip neigh show $LAB_VIP dev eth0 | grep -o 'lladdr [0-9a-f:]*' | cut -d' ' -f2)\" = $mac_b ]"
	expect "b's connected route has src = VIP" test "$(route_src b)" = "$LAB_VIP"
	expect "fonulator ran once on b" test "$(fonulator_runs b)" = 1
	expect "fonulator was given b's MAC in server=" grep -q "server=$mac_b" "$LAB_DIR/b/fonulator.log"
	expect "Asterisk started on b" test "$(calls b start)" = 1
	expect "sipp gets an answer from the VIP" lab_wait 5 sip_ok
	expect "answers leave from the VIP (connected socket)" watch_from_vip

	lab_log "box a returns"
	lab_join a
	: >"$LAB_DIR/a/flip.log.before"
	cp "$LAB_DIR/a/flip.log" "$LAB_DIR/a/flip.log.before"
	: >"$LAB_DIR/a/flip.log"
	lab_flip a
	expect "returning primary stays passive (5 s)" never_holds a 5
	expect "b still serves" serving b
	expect "returning box never tried a takeover" bash -c "! grep -q 'taking over' '$LAB_DIR/a/flip.log'"
	expect "returning box started passive" log_has a 'role=passive'
	expect "fonulator not run again on a" test "$(fonulator_runs a)" = 1
}

# 3. Asterisk dies, the box lives: the active releases in reverse order, the
# passive takes over, exactly one box ends with the VIP.
test_asterisk_dies() {
	start_pair 1s
	lab_log "kill Asterisk on a"
	kill -9 "$(cat "$LAB_DIR/a/state/asterisk.pid")"
	expect "a releases" lab_wait 3 log_has a 'msg="release complete"'
	expect "release stopped asterisk, then routes, then the VIP" \
		bash -c "grep 'action=stop' '$LAB_DIR/a/flip.log' | grep -o 'resource=[^ ]*' | tr '\n' ' ' | grep -q 'resource=asterisk resource=fonebridge resource=routes resource=$LAB_VIP/24'"
	expect "a's connected route survived with its own src" test "$(route_src a)" = "${LAB_ADDR[a]}"
	expect "b takes over" lab_wait 3 lab_holds b
	expect "SIP answers through b" lab_wait 5 sip_ok
	expect "a never took the VIP back (watched 3 s)" never_holds a 3
	expect "never two holders: b added the VIP after a deleted it" ev_never_two
	expect "only b holds" only_holder b
}

# 4. Cold standby: Asterisk runs only on the active box; while the new active's
# Asterisk starts (5 s), the old one does not take the VIP back: it sees the
# holder on the wire and waits for it. (FLIP_HOLD_DOWN=0 on box a, or the
# hold-down after its own failure would keep it out before the holder check.)
test_cold_standby() {
	LAB_STANDIN_ARGS="-start-delay 5s"
	lab_flip a FLIP_HOLD_DOWN=0
	lab_flip b
	lab_wait 15 serving a || fail "box a did not start serving"
	lab_wait 10 flip_heard a || fail "box a's flip did not hear its own service"
	expect "Asterisk not running on passive b" bash -c "[ ! -f '$LAB_DIR/b/state/asterisk.pid' ]"
	kill -9 "$(cat "$LAB_DIR/a/state/asterisk.pid")"
	expect "b takes over" lab_wait 3 lab_holds b
	expect "a waited for the holder" lab_wait 5 log_has a 'another box still holds the VIP'
	expect "SIP answers through b" lab_wait 10 sip_ok
	expect "a never took the VIP back after its release" test "$(ev_adds a "$(ev_last a del)")" = 0
	expect "never two holders" ev_never_two
	expect "only b holds" only_holder b
}

# 4b. Bounded wait: a holder whose services never answer releases after
# FLIP_START_TIMEOUT, and the waiting box then takes over.
test_holder_releases_after_start_timeout() {
	LAB_STANDIN_ARGS="-start-delay 600s"
	LAB_START_TIMEOUT=3s
	lab_flip a
	lab_flip b FLIP_INIT_DEAD=2s
	expect "a holds" lab_wait 3 lab_holds a
	expect "b waits while a holds the VIP" lab_wait 5 log_has b 'another box still holds the VIP'
	expect "a releases on FLIP_START_TIMEOUT" lab_wait 10 log_has a 'releasing.*FLIP_START_TIMEOUT'
	expect "b takes over once a released" lab_wait 10 log_has b 'msg="takeover complete"'
	# The timer starts just before the "taking over" line; its millisecond
	# stamp and a busy scheduler may put the line up to 100 ms later.
	expect "a released no sooner than FLIP_START_TIMEOUT (3 s) after its takeover" \
		ev_after "$(ev_log a 'releasing.*FLIP_START_TIMEOUT')" "$(ev_log a 'msg="taking over"')" 2900
	expect "b added the VIP only after a deleted it" ev_after "$(ev_first b add)" "$(ev_first a del)"
	expect "never two holders" ev_never_two
}

# 5. flip restarts: kill -9 and restart on the active box changes nothing;
# SIGTERM leaves the box as is; a VIP deleted while flip was down took its
# connected route with it, and flip repairs the route at start.
test_restart() {
	start_pair 1s
	local starts stops
	starts=$(calls a start) stops=$(calls a stop)
	{
		kill -9 "${LAB_FLIP_PID[a]}"
		wait "${LAB_FLIP_PID[a]}"
	} 2>/dev/null
	lab_flip a
	expect "restarted agent resumes as active" lab_wait 5 log_has a 'role=active vips_held=1'
	sleep 2
	expect "a still holds the VIP" only_holder a
	expect "b never added the VIP" test "$(ev_adds b 0)" = 0
	expect "no release after the restart" bash -c "! grep -q releasing '$LAB_DIR/a/flip.log'"
	expect "Asterisk untouched" test "$(calls a start)/$(calls a stop)" = "$starts/$stops"
	expect "fonulator not run again" test "$(fonulator_runs a)" = 1
	expect "SIP still answers" sip_ok

	kill -TERM "${LAB_FLIP_PID[a]}"
	local rc=0
	wait "${LAB_FLIP_PID[a]}" || rc=$?
	expect "SIGTERM: flip exits 0" test "$rc" = 0
	expect "SIGTERM: VIP still on a" lab_holds a
	expect "SIGTERM: Asterisk untouched" test "$(calls a stop)" = "$stops"
	expect "SIGTERM: SIP still answers" sip_ok

	lab_exec a ip addr del "$LAB_VIP/24" dev eth0
	expect "(kernel) deleting the src VIP dropped the connected route" test -z "$(route_src a)"
	lab_flip a
	expect "flip repaired the connected route with a's own src" lab_wait 3 bash -c "[ \"\$(ip netns exec $(lab_ns a) ip -4 route show $LAB_SUBNET dev eth0 proto kernel | grep -o 'src [0-9.]*')\" = 'src ${LAB_ADDR[a]}' ]"
	expect "a, passive now, stopped the Asterisk it found running" lab_wait 5 log_has a 'passive box with a managed service running: stopping it.*resource=asterisk'
	expect "Asterisk stopped on a" test "$(calls a stop)" = "$((stops + 1))"
	expect "b takes over the orphaned VIP" lab_wait 10 lab_holds b
	expect "exactly one holder" only_holder b
}

# 7. A failed takeover stops what it started, right to left, and says which
# resource failed and why.
test_failed_takeover() {
	start_pair 1s STANDIN_FAIL_START=1
	lab_power_off a
	expect "b's takeover aborts naming asterisk" lab_wait 4 log_has b 'msg="takeover aborted".*failed_resource=asterisk'
	expect "the reason carries the service's own error" log_has b 'takeover aborted.*STANDIN_FAIL_START'
	expect "b gave the VIP back" bash -c "! ip netns exec $(lab_ns b) ip -4 -o addr show dev eth0 | grep -q ' $LAB_VIP/'"
	expect "b's route src is its own again" test "$(route_src b)" = "${LAB_ADDR[b]}"
	expect "stopped right to left: asterisk, fonebridge, routes, VIP" \
		bash -c "grep 'action=stop' '$LAB_DIR/b/flip.log' | grep -o 'resource=[^ ]*' | head -4 | tr '\n' ' ' | grep -q 'resource=asterisk resource=fonebridge resource=routes resource=$LAB_VIP/24'"
}

# shellcheck source=testdata/netns_safety.sh
source "$ROOT/testdata/netns_safety.sh"
# shellcheck source=testdata/netns_operate.sh
source "$ROOT/testdata/netns_operate.sh"
# shellcheck source=testdata/netns_ipv6.sh
source "$ROOT/testdata/netns_ipv6.sh"
# shellcheck source=testdata/netns_pbx.sh
source "$ROOT/testdata/netns_pbx.sh"
# shellcheck source=testdata/netns_kamailio.sh
source "$ROOT/testdata/netns_kamailio.sh"
source "$ROOT/testdata/pool_lab.sh"
source "$ROOT/testdata/netns_pool.sh"

FILTER=${1:-}
for t in cold_start box_dies_and_returns asterisk_dies cold_standby holder_releases_after_start_timeout restart failed_takeover $SAFETY_TESTS $OPERATE_TESTS $IPV6_TESTS $PBX_TESTS $KAMAILIO_TESTS $POOL_TESTS; do
	run_test "$t"
done
echo
[ $FAILED -gt 0 ] && echo "failed: ${FAILS[*]}"
echo "netns: $PASSED passed, $FAILED failed"
[ $FAILED = 0 ]
