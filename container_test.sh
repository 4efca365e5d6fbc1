#!/usr/bin/env bash
# container_test.sh — flip in FROM scratch containers on a Docker network:
# two boxes (a primary, b) with a stand-in Asterisk each in hot standby,
# sharing the box's network namespace, and a client. Box a must take the VIP;
# when box a's containers are stopped, box b must take it over and SIP must
# answer at the VIP from box b, seen by the client across the network.
#
#   sudo ./container_test.sh
#
# Needs root (nsenter into the containers' network namespaces), a Docker
# daemon, Go, nsenter and ip. Without them it skips (exit 0) and says why,
# also under CI=true. No image is pulled: both images are FROM scratch.
#
# Network: one --internal Docker network, 203.0.113.0/24 (TEST-NET-3), made
# here with a unique name; nothing is sent anywhere else. Everything this
# script creates (containers, network, images, temp dir) is removed by ID or
# by its unique name on exit, also on failure or Ctrl-C.
set -u
ROOT=$(cd "$(dirname "$0")" && pwd)
export PATH=$PATH:/usr/local/go/bin

skip() {
	echo "SKIP container test: $*"
	exit 0
}
[ "$(id -u)" = 0 ] || skip "need root to enter the containers' network namespaces (run as root)"
for tool in docker go nsenter ip timeout; do
	command -v "$tool" >/dev/null || skip "need $tool (Docker Engine, Go 1.26, util-linux, iproute2, coreutils)"
done
timeout 30 docker info >/dev/null 2>&1 || skip "no Docker daemon answers (docker info failed)"

SUBNET=203.0.113.0/24
VIP=203.0.113.100
IP_A=203.0.113.11 IP_B=203.0.113.12 IP_C=203.0.113.50
ID=flipct-$$-$RANDOM
NET=$ID-net
IMG_FLIP=flip-test:$ID
IMG_ASTERISK=standin-asterisk-test:$ID
WORK=$(mktemp -d /tmp/flip-container.XXXXXX)
CONTAINERS=() # IDs, as docker create printed them
NET_ID=""
IMAGES=()
WATCH_PID=""

cleanup() {
	local c
	[ -n "$WATCH_PID" ] && kill "$WATCH_PID" 2>/dev/null
	for c in "${CONTAINERS[@]}"; do
		timeout 60 docker rm -f "$c" >/dev/null 2>&1
	done
	[ -n "$NET_ID" ] && timeout 60 docker network rm "$NET_ID" >/dev/null 2>&1
	for c in "${IMAGES[@]}"; do
		timeout 60 docker rmi "$c" >/dev/null 2>&1
	done
	rm -rf "$WORK"
}
trap cleanup EXIT
trap 'echo "interrupted"; exit 130' INT TERM

PASSED=0 FAILED=0
check() {
	local what=$1
	shift
	if "$@"; then
		echo "PASS $what"
		PASSED=$((PASSED + 1))
	else
		echo "FAIL $what"
		FAILED=$((FAILED + 1))
	fi
}

# finish: the summary line, the boxes' logs on failure, the exit status.
finish() {
	if [ "$FAILED" -gt 0 ]; then
		local c f
		for f in "$WORK"/*.json; do
			[ -f "$f" ] || continue
			echo "--- $(basename "$f") (flip watch -json)"
			tr -d '\n' <"$f"
			echo
			[ -s "$f.err" ] && cat "$f.err"
		done
		for c in flip-a flip-b; do
			echo "--- docker logs $ID-$c (last 40 lines)"
			timeout 30 docker logs --tail 40 "$ID-$c" 2>&1
		done
	fi
	echo "container: $PASSED passed, $FAILED failed"
	[ "$FAILED" -eq 0 ]
	exit
}

now_ms() { echo $(($(date +%s%N) / 1000000)); }

# wait_until SECONDS CMD…: runs CMD every 100 ms until it succeeds, for at
# most SECONDS of wall time (and at most 600 tries).
wait_until() {
	local deadline=$(($(now_ms) + $1 * 1000)) i
	shift
	for ((i = 0; i < 600; i++)); do
		"$@" && return 0
		[ "$(now_ms)" -lt "$deadline" ] || return 1
		sleep 0.1
	done
	return 1
}

pid_of() { timeout 30 docker inspect -f '{{.State.Pid}}' "$1" 2>/dev/null; }
# holds PID: the network namespace of PID has the VIP on eth0.
holds() { nsenter -t "$1" -n ip -4 -o addr show dev eth0 2>/dev/null | grep -q " $VIP/24 "; }
lacks() { ! holds "$1"; }
# jfield FILE KEY: one top-level field of flip watch -json output.
jfield() { sed -n "s/^  \"$2\": \"\{0,1\}\([^\",]*\)\"\{0,1\},\{0,1\}\$/\1/p" "$1"; }
# watch_from PID OUT [ARGS…]: 300 ms of flip watch at the VIP from PID's
# network namespace.
watch_from() {
	local pid=$1 out=$2
	shift 2
	timeout 20 nsenter -t "$pid" -n "$WORK/flip" watch -for 300ms -json "$@" "$VIP" >"$out" 2>"$out.err"
}
answered_by() { [ "$(jfield "$1" answered)" -gt 0 ] 2>/dev/null && [ "$(jfield "$1" last_responder)" = "$2" ]; }

echo "== building flip and the stand-in Asterisk (static), and their FROM scratch images"
mkdir -p "$WORK/ctx-flip" "$WORK/ctx-asterisk"
(cd "$ROOT" && CGO_ENABLED=0 go build -trimpath -ldflags='-s -w' -o "$WORK/ctx-flip/flip" . &&
	CGO_ENABLED=0 go build -trimpath -o "$WORK/ctx-asterisk/standin-asterisk" ./tools/standin-asterisk) || {
	echo "FAIL go build"
	FAILED=1
	finish
}
cp "$WORK/ctx-flip/flip" "$WORK/flip"
build() { # build TAG DOCKERFILE CONTEXT
	timeout 300 docker build -q -t "$1" -f "$2" "$3" >"$WORK/build.log" 2>&1 && IMAGES+=("$1") ||
		{
			cat "$WORK/build.log"
			false
		}
}
check "image from the repo's Dockerfile (FROM scratch + flip)" build "$IMG_FLIP" "$ROOT/Dockerfile" "$WORK/ctx-flip"
check "image from tools/standin-asterisk/Dockerfile" build "$IMG_ASTERISK" "$ROOT/tools/standin-asterisk/Dockerfile" "$WORK/ctx-asterisk"
[ "${#IMAGES[@]}" = 2 ] || finish

echo "== network $NET ($SUBNET, --internal), boxes a ($IP_A, primary) and b ($IP_B), client $IP_C"
NET_ID=$(timeout 60 docker network create --internal --subnet "$SUBNET" "$NET") || {
	echo "FAIL docker network create"
	FAILED=1
	finish
}

# run NAME ARGS…: docker create, the ID recorded for cleanup, then start
# (a container that fails to start is still removed).
run() {
	local name=$1 id
	shift
	id=$(timeout 60 docker create --name "$ID-$name" "$@") || return 1
	CONTAINERS+=("$id")
	timeout 60 docker start "$id" >/dev/null
}
# box NAME IP PRIMARY: a flip container and its stand-in Asterisk (hot standby).
# Resources: the VIP and routes only (a scratch container has no systemctl).
# routes is what makes the answers leave from the VIP: the stand-in, like
# Asterisk, binds 0.0.0.0, so the kernel picks the reply's source from the
# connected route's src. With the VIP alone the client hears nothing at the VIP.
box() {
	run "flip-$1" --network "$NET" --ip "$2" --cap-add NET_ADMIN --cap-add NET_RAW --tmpfs /tmp \
		-e FLIP_RESOURCES="$VIP/24 routes" -e FLIP_PRIMARY="$3" -e FLIP_NAME="$1" \
		-e FLIP_CONTROL_SOCKET=/tmp/flip.sock "$IMG_FLIP" &&
		run "asterisk-$1" --network "container:$ID-flip-$1" "$IMG_ASTERISK" -name "asterisk-$1"
}
check "box a: flip and stand-in Asterisk containers run" box a "$IP_A" true
check "box b: flip and stand-in Asterisk containers run" box b "$IP_B" false
# The client is only a network namespace on the Docker network: flip watch
# runs there from the host's binary (nsenter -n). The stand-in image keeps
# it alive; its SIP port at the client's address plays no part.
check "client container runs" run client --network "$NET" --ip "$IP_C" "$IMG_ASTERISK" -name client
PID_A=$(pid_of "$ID-flip-a") PID_B=$(pid_of "$ID-flip-b") PID_C=$(pid_of "$ID-client")
if [ -z "$PID_A" ] || [ -z "$PID_B" ] || [ -z "$PID_C" ] || [ "$PID_A" = 0 ] || [ "$PID_B" = 0 ] || [ "$PID_C" = 0 ]; then
	echo "FAIL a container is not running (pids a=$PID_A b=$PID_B client=$PID_C)"
	FAILED=$((FAILED + 1))
	finish
fi

echo "== cold start: the primary takes the VIP"
check "box a holds $VIP within 15 s" wait_until 15 holds "$PID_A"
check "box b does not hold $VIP" lacks "$PID_B"
check "client: SIP answers at $VIP from asterisk-a" wait_until 5 eval 'watch_from "$PID_C" "$WORK/before.json" && answered_by "$WORK/before.json" asterisk-a'
# Box b probes the VIP every 100 ms like the client does; once it has
# heard the service it may take over after FLIP_DEAD_AFTER of silence
# instead of FLIP_INIT_DEAD.
sleep 1

echo "== box a dies: docker stop of its flip and stand-in Asterisk containers"
timeout 60 nsenter -t "$PID_C" -n "$WORK/flip" watch -until-switch -max 20s -json "$VIP" >"$WORK/outage.json" 2>"$WORK/outage.err" &
WATCH_PID=$!
sleep 0.5
T0=$(now_ms)
timeout 60 docker stop -t 5 "$ID-flip-a" "$ID-asterisk-a" >/dev/null
check "flip a exited 0 on SIGTERM" [ "$(timeout 30 docker inspect -f '{{.State.ExitCode}}' "$ID-flip-a")" = 0 ]
check "box b holds $VIP within 10 s" wait_until 10 holds "$PID_B"
echo "     box b holds the VIP $(($(now_ms) - T0)) ms after docker stop began"
check "client: SIP answers at $VIP from asterisk-b" wait_until 5 eval 'watch_from "$PID_C" "$WORK/after.json" && answered_by "$WORK/after.json" asterisk-b'
# SIP answers must leave box b from the VIP, not from b's own address: the
# routes resource rewrote the connected route's src (without it the client's
# connected socket above would see nothing). Checked from outside, by the
# client; inside box b the VIP is a local address, and the kernel answers a
# local peer from the primary address whatever the route says.
check "box b: connected route's src is the VIP" eval 'nsenter -t "$PID_B" -n ip -4 route show 203.0.113.0/24 | grep -q "src $VIP"'
wait_until 25 eval '! kill -0 $WATCH_PID 2>/dev/null'
wait "$WATCH_PID"
WATCH_PID=""
check "client's watch saw the switch asterisk-a -> asterisk-b" \
	eval '[ "$(jfield "$WORK/outage.json" switched)" = true ] && [ "$(jfield "$WORK/outage.json" first_responder)" = asterisk-a ] && [ "$(jfield "$WORK/outage.json" last_responder)" = asterisk-b ]'
echo "     outage seen by the client: $(jfield "$WORK/outage.json" outage_ms) ms ($(jfield "$WORK/outage.json" outage_lost) probes lost)"
check "box b logged its takeover" eval 'timeout 30 docker logs "$ID-flip-b" 2>&1 | grep -q "takeover complete"'
finish
