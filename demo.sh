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
[ "$(id -u)" = 0 ] || { echo "demo: run as root (it creates network namespaces)" >&2; exit 2; }
bash "$ROOT/scripts/deps.sh" || exit 1

WORK=$(mktemp -d /tmp/flip-demo.XXXXXX)
LAB_ROOT=$ROOT
LAB_BIN=$WORK/bin
# shellcheck source=testdata/lab.sh
source "$ROOT/testdata/lab.sh"
LAB_SERVICE=$SERVICE
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
lab_redfone a
lab_redfone b
LAB_STANDIN_ARGS="-start-delay $START_DELAY"
if [ "$HOT" = 1 ]; then
	LAB_STANDIN_ARGS=""
	lab_standin a
	lab_standin b
	mode="hot standby ($what running on both boxes)"
elif [ "$SERVICE" = kamailio ] && [ "$START_DELAY" = 0 ]; then
	mode="cold standby ($what started on takeover, no added delay)"
else
	mode="cold standby ($what started on takeover, answers after $START_DELAY)"
fi
say "two boxes, $mode; VIP $LAB_VIP; box a is primary"
lab_flip a
lab_flip b
if ! lab_wait 20 lab_sipp; then
	echo "demo: box a never served the VIP; its log:" >&2
	cat "$LAB_DIR/a/flip.log" >&2
	exit 1
fi
echo "box a serves the VIP (sipp got an answer); holders: $(lab_holders)"

say "client: flip watch $LAB_VIP every 10 ms"
lab_exec c "$LAB_BIN/flip" watch -interval 10ms -until-switch -max 90s "$LAB_VIP" \
	>"$WORK/watch.txt" 2>/dev/null &
watch_pid=$!
LAB_PIDS+=("$watch_pid")
sleep 1

say "$(date +%H:%M:%S.%3N) power off box a (cable cut, processes killed)"
cut_ms=$(date +%s%3N)
lab_power_off a
wait "$watch_pid"
lab_wait 60 grep -q 'takeover complete' "$LAB_DIR/b/flip.log"

say "box b's takeover timeline (ms after the power-off)"
awk -v cut="$cut_ms" '
	/taking over|phase done|takeover complete|fonulator done/ {
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
	}' "$LAB_DIR/b/flip.log"

say "what the client saw"
sed 's/^/  /' "$WORK/watch.txt"
echo
echo "  holders now: $(lab_holders)   (b's MAC: $(lab_mac b), client's entry for the VIP: $(lab_client_neigh))"
echo "  b's route: $(lab_exec b ip -4 route show "$LAB_SUBNET" dev eth0)"
echo "  fonulator on b: $(cat "$LAB_DIR/b/fonulator.log")"
outage=$(sed -n 's/^outage: \([0-9.]*\) ms.*/\1/p' "$WORK/watch.txt")
say "SIP outage seen by the client: ${outage:-unknown} ms"
