#!/usr/bin/env bash
# demo.sh — a complete failover on this one machine, in network namespaces:
# two boxes running flip (box a primary), a stand-in Asterisk in cold
# standby (started by flip on takeover, answering after START_DELAY), a
# stand-in fonulator, and a client running `flip watch` against the VIP
# every 10 ms. Box a is powered off; the demo prints box b's takeover
# timeline and the SIP outage the client saw, then cleans up.
#
#   sudo ./demo.sh                  cold standby, Asterisk answers 2 s after start
#   sudo START_DELAY=0 ./demo.sh    Asterisk starts instantly (best case)
#   sudo HOT=1 ./demo.sh            hot standby: Asterisk already runs on both
#   sudo SERVICE=kamailio ./demo.sh Kamailio, a real SIP server, in place of
#                                   the stand-in (testdata/kamailio-service);
#                                   no START_DELAY unless given: Kamailio's
#                                   own start-up (tens of ms) is the delay
#   sudo POOL=1 ./demo.sh           pool mode: three boxes and a three-member
#                                   etcd cluster of its own (Debian's
#                                   etcd-server), hot standby; the leader is
#                                   powered off and its lease (FLIP_ETCD_TTL,
#                                   5 s) runs out before the next box wins
set -u
ROOT=$(cd "$(dirname "$0")" && pwd)
export PATH=$PATH:/usr/local/go/bin
SERVICE=${SERVICE:-standin}
case $SERVICE in
standin) START_DELAY=${START_DELAY:-2s} what="the stand-in Asterisk" ;;
kamailio) START_DELAY=${START_DELAY:-0} what="Kamailio" ;;
*) echo "demo: SERVICE is standin (default) or kamailio, not '$SERVICE'" >&2; exit 2 ;;
esac
HOT=${HOT:-0}
POOL=${POOL:-0}
[ "$POOL" = 1 ] && HOT=1 # a pool box campaigns while its own service answers
[ "$(id -u)" = 0 ] || { echo "demo: run as root (it creates network namespaces)" >&2; exit 2; }
bash "$ROOT/scripts/deps.sh" || exit 1

WORK=$(mktemp -d /tmp/flip-demo.XXXXXX)
LAB_ROOT=$ROOT
LAB_BIN=$WORK/bin
# shellcheck source=testdata/lab.sh
source "$ROOT/testdata/lab.sh"
# shellcheck source=testdata/pool_lab.sh
source "$ROOT/testdata/pool_lab.sh"
LAB_SERVICE=$SERVICE
if [ "$POOL" = 1 ]; then
	pool_lab_vars
	command -v etcd >/dev/null || { echo "demo: POOL=1 needs etcd (apt-get install etcd-server etcd-client)" >&2; exit 1; }
fi
if [ "$SERVICE" = kamailio ] && why=$(lab_kamailio_missing); then
	echo "demo: SERVICE=kamailio: $why" >&2
	exit 1
fi
trap 'lab_down; rm -rf "$WORK"' EXIT
trap 'exit 130' INT TERM

say() { printf '\n\033[1m%s\033[0m\n' "$*"; }

say "building flip (static) and the stand-in Asterisk"
(cd "$ROOT" && CGO_ENABLED=0 go build -o "$LAB_BIN/flip" . &&
	CGO_ENABLED=0 go build -o "$LAB_BIN/standin-asterisk" ./tools/standin-asterisk) || exit 1
ls -l "$LAB_BIN/flip" | awk '{print "flip binary: " $5 " bytes"}'

lab_up "$WORK/lab" || exit 1
for n in $LAB_BOXES; do lab_redfone "$n"; done
LAB_STANDIN_ARGS="-start-delay $START_DELAY"
if [ "$POOL" = 1 ]; then
	LAB_STANDIN_ARGS=""
	say "starting a three-member etcd cluster (e1 e2 e3: ${LAB_ADDR[e1]} ${LAB_ADDR[e2]} ${LAB_ADDR[e3]})"
	pool_etcd_up || { echo "demo: etcd did not come up; its logs:" >&2; cat "$LAB_DIR"/e*/etcd.log >&2; exit 1; }
	for n in $LAB_BOXES; do lab_standin "$n"; done
	LAB_RESOURCES="$LAB_VIP/24 routes fonebridge" # Asterisk runs by itself on every box
	mode="hot standby ($what running on every box)"
elif [ "$HOT" = 1 ]; then
	LAB_STANDIN_ARGS=""
	lab_standin a
	lab_standin b
	mode="hot standby ($what running on both boxes)"
elif [ "$SERVICE" = kamailio ] && [ "$START_DELAY" = 0 ]; then
	mode="cold standby ($what started on takeover, no added delay)"
else
	mode="cold standby ($what started on takeover, answers after $START_DELAY)"
fi
if [ "$POOL" = 1 ]; then
	say "three boxes (a b d), $mode; VIP $LAB_VIP; an etcd lease (TTL ${POOL_TTL}s) picks the holder"
	for n in $LAB_BOXES; do pool_flip "$n"; done
	lab_wait 20 pool_one_holder || { echo "demo: no box won the election; logs:" >&2; cat "$LAB_DIR"/[abd]/flip.log >&2; exit 1; }
	OLD=$(pool_holder)
	lab_wait 20 pool_sees_leader "$OLD" "$OLD"
	echo "  box $OLD's status: $(pool_status "$OLD" | sed -n 's/.*"observed": *{\([^}]*\)}.*/\1/p')"
else
	say "two boxes, $mode; VIP $LAB_VIP; box a is primary"
	lab_flip a
	lab_flip b
	OLD=a
fi
if ! lab_wait 20 lab_sipp; then
	echo "demo: box $OLD never served the VIP; its log:" >&2
	cat "$LAB_DIR/$OLD/flip.log" >&2
	exit 1
fi
echo "box $OLD serves the VIP (sipp got an answer); holders: $(lab_holders)"

say "client: flip watch $LAB_VIP every 10 ms"
lab_exec c "$LAB_BIN/flip" watch -interval 10ms -until-switch -max 90s "$LAB_VIP" \
	>"$WORK/watch.txt" 2>/dev/null &
watch_pid=$!
LAB_PIDS+=("$watch_pid")
sleep 1

say "$(date +%H:%M:%S.%3N) power off box $OLD (cable cut, processes killed)"
cut_ms=$(date +%s%3N)
lab_power_off "$OLD"
wait "$watch_pid"
NEW=b
if [ "$POOL" = 1 ]; then
	lab_wait 60 pool_new_holder "$OLD"
	NEW=$(pool_holder)
fi
lab_wait 60 grep -q 'takeover complete' "$LAB_DIR/$NEW/flip.log"

say "box $NEW's takeover timeline (ms after the power-off)"
awk -v cut="$cut_ms" '
	/taking over|phase done|takeover complete|fonulator done|won the election/ {
		match($0, /time=[^ ]+/); t = substr($0, RSTART + 5, RLENGTH - 5)
		split(substr(t, 12, 12), hms, ":")
		ms = ((hms[1] * 60 + hms[2]) * 60 + hms[3]) * 1000
		day = int(cut / 86400000) * 86400000
		rel = ms - (cut - day)
		match($0, /msg=("[^"]*"|[^ ]+)/); m = substr($0, RSTART + 4, RLENGTH - 4)
		r = ""; if (match($0, /resource=("[^"]*"|[^ ]+)/)) r = substr($0, RSTART + 9, RLENGTH - 9)
		a = ""; if (match($0, /action=[^ ]+/)) a = substr($0, RSTART + 7, RLENGTH - 7)
		d = ""; if (match($0, /duration=[^ ]+/)) d = substr($0, RSTART + 9, RLENGTH - 9)
		if (match($0, /total=[^ ]+/)) d = "total " substr($0, RSTART + 6, RLENGTH - 6)
		printf "  +%7.1f ms  %-20s %-6s %-18s %s\n", rel, m, a, r, d
	}' "$LAB_DIR/$NEW/flip.log"

say "what the client saw"
sed 's/^/  /' "$WORK/watch.txt"
echo
echo "  holders now: $(lab_holders)   ($NEW's MAC: $(lab_mac "$NEW"), client's entry for the VIP: $(lab_client_neigh))"
echo "  $NEW's route: $(lab_exec "$NEW" ip -4 route show "$LAB_SUBNET" dev eth0)"
echo "  fonulator on $NEW: $(cat "$LAB_DIR/$NEW/fonulator.log")"
if [ "$POOL" = 1 ]; then
	lab_wait 10 pool_sees_leader "$NEW" "$NEW"
	echo "  $NEW's status: $(ip netns exec "$(lab_ns "$NEW")" "$LAB_BIN/flip" status --socket "$LAB_DIR/$NEW/flip.sock" 2>/dev/null | grep '^pool:')"
fi
outage=$(sed -n 's/^outage: \([0-9.]*\) ms.*/\1/p' "$WORK/watch.txt")
say "SIP outage seen by the client: ${outage:-unknown} ms"
