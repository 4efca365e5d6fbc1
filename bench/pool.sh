#!/usr/bin/env bash
# bench/pool.sh — the SIP outage a client sees in pool mode (issue 14): three
# boxes in hot standby and a real three-member etcd cluster, all in network
# namespaces (testdata/pool_lab.sh; TEST-NET only). It prints numbers; it
# asserts nothing (these machines are noisy).
#
#   sudo bench/pool.sh                   RUNS=3, TTLs 5 and 2, every scenario (~3 min)
#   sudo RUNS=5 TTLS=5 bench/pool.sh
#
# Environment:
#   RUNS       runs per cell (default 3)
#   TTLS       FLIP_ETCD_TTL values in seconds (default "5 2")
#   SCENARIOS  any of: box asterisk switchover (default all three)
#   BUDGET_S   stop starting new runs after this many seconds (default 900)
#   KEEP       a directory: every run's lab (logs, address events) is copied there
#   FOOTPRINT  seconds: instead of the outages, measure each box's flip for
#              that long in a quiet pool (CPU share of one core, resident
#              memory), the leader and the followers apart
#
# Scenarios (on the leader; another box must take over):
#   box         the leader's box dies (cable cut, processes killed): its lease
#               runs out after the TTL
#   asterisk    kill -9 of the leader's Asterisk: it releases and resigns
#   switchover  flip switchover on the leader
#
# Each run builds a fresh lab, waits until one box serves, starts `flip
# watch -interval 10ms -until-switch -json` in the client, waits 0.5 s plus
# a random 0–1 s (a random phase of the keep-alives), injects the fault and
# reads the outage the client saw. Every box's address events are kept, so
# a moment with two holders would be found (overlap column).
set -u
BENCH_ROOT=$(cd "$(dirname "$0")/.." && pwd)
# shellcheck source=lib.sh
source "$BENCH_ROOT/bench/lib.sh"
RUNS=${RUNS:-3}
TTLS=${TTLS:-5 2}
SCENARIOS=${SCENARIOS:-box asterisk switchover}
BUDGET_S=${BUDGET_S:-900}
[ "$(id -u)" = 0 ] || { echo "bench: run as root (network namespaces)" >&2; exit 2; }
command -v etcd >/dev/null || { echo "bench: needs etcd (apt-get install etcd-server etcd-client)" >&2; exit 2; }

WORK=$(mktemp -d /tmp/flip-pool-bench.XXXXXX)
LAB_ROOT=$BENCH_ROOT
LAB_BIN=$WORK/bin
# shellcheck source=../testdata/lab.sh
source "$BENCH_ROOT/testdata/lab.sh"
# shellcheck source=../testdata/pool_lab.sh
source "$BENCH_ROOT/testdata/pool_lab.sh"
trap 'lab_down; rm -rf "$WORK"' EXIT
trap 'exit 130' INT TERM
(cd "$BENCH_ROOT" && CGO_ENABLED=0 go build -o "$LAB_BIN/flip" . &&
	CGO_ENABLED=0 go build -o "$LAB_BIN/standin-asterisk" ./tools/standin-asterisk) || exit 1

# overlap_ms: the longest time two boxes held the VIP at once (0: never).
overlap_ms() {
	local n
	for n in $LAB_BOXES; do ev_vip "$n" | sed "s/\$/ $n/"; done | sort -n -s -k1,1 | awk '
		{ held[$3] = ($2 == "add"); k = 0; for (b in held) k += held[b] }
		k > 1 && from == "" { from = $1 }
		k <= 1 && from != "" { if ($1 - from > most) most = $1 - from; from = "" }
		END { print most + 0 }'
}

# one_run TTL SCENARIO: prints "outage_ms overlap_ms".
one_run() {
	local ttl=$1 scenario=$2 old
	pool_lab_vars
	LAB_RESOURCES="$LAB_VIP/24 routes fonebridge"
	lab_up "$WORK/run$LAB_ID" >/dev/null || return 1
	POOL_TTL=$ttl pool_start >/dev/null 2>&1 || { lab_down; return 1; }
	old=$(pool_holder)
	lab_wait 5 flip_heard_pool "$old"
	ip netns exec "$(lab_ns c)" "$LAB_BIN/flip" watch -interval 10ms -timeout 20ms -until-switch -max 60s -json \
		"$LAB_VIP" >"$LAB_DIR/watch.json" 2>/dev/null &
	local watch=$!
	LAB_PIDS+=("$watch")
	sleep "0.$((500 + RANDOM % 1000))" 2>/dev/null || sleep 1
	case $scenario in
	box) lab_power_off "$old" ;;
	asterisk) kill -9 "$(cat "$LAB_DIR/$old/state/asterisk.pid")" ;;
	switchover) lab_exec "$old" "$LAB_BIN/flip" switchover --socket "$LAB_DIR/$old/flip.sock" >/dev/null 2>&1 ;;
	esac
	wait "$watch"
	echo "$(json_field "$LAB_DIR/watch.json" outage_ms) $(overlap_ms)"
	[ -n "${KEEP:-}" ] && mkdir -p "$KEEP" && cp -r "$LAB_DIR" "$KEEP/ttl$ttl-$scenario-$LAB_ID"
	lab_down
}

# flip_heard_pool BOX: BOX's flip saw its own service answer.
flip_heard_pool() { pool_status "$1" | grep -q '"consecutive_missed": *0[,}]'; }

# cpu_ticks PID: utime + stime of PID, in clock ticks.
cpu_ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }
rss_kb() { awk '/^VmRSS:/ {print $2}' "/proc/$1/status"; }

if [ -n "${FOOTPRINT:-}" ]; then
	LAB_ID=$((LAB_ID + 1))
	pool_lab_vars
	LAB_RESOURCES="$LAB_VIP/24 routes fonebridge"
	lab_up "$WORK/footprint" >/dev/null || exit 1
	POOL_TTL=${TTLS%% *} pool_start >/dev/null 2>&1 || exit 1
	sleep 5
	hz=$(getconf CLK_TCK)
	declare -A t0
	for n in $LAB_BOXES; do t0[$n]=$(cpu_ticks "${LAB_FLIP_PID[$n]}"); done
	sleep "$FOOTPRINT"
	leader=$(pool_holder)
	printf '%-4s %-9s %-14s %s\n' box role "CPU % of a core" "RSS MB"
	for n in $LAB_BOXES; do
		role=follower
		[ "$n" = "$leader" ] && role=leader
		printf '%-4s %-9s %-14s %s\n' "$n" "$role" \
			"$(awk -v d=$(($(cpu_ticks "${LAB_FLIP_PID[$n]}") - t0[$n])) -v hz="$hz" -v s="$FOOTPRINT" 'BEGIN { printf "%.3f", 100 * d / hz / s }')" \
			"$(awk -v k="$(rss_kb "${LAB_FLIP_PID[$n]}")" 'BEGIN { printf "%.1f", k / 1024 }')"
	done
	exit 0
fi

start=$SECONDS
printf '%-6s %-11s %-28s %-30s %s\n' TTL scenario "outage ms (min median max)" "runs" "two holders (longest, ms)"
for ttl in $TTLS; do
	for s in $SCENARIOS; do
		outs=() overlaps=()
		for _ in $(seq 1 "$RUNS"); do
			[ $((SECONDS - start)) -lt "$BUDGET_S" ] || break
			LAB_ID=$((LAB_ID + 1)) # here: one_run runs in a subshell, and every run needs a lab of its own
			r=$(one_run "$ttl" "$s") || continue
			outs+=("${r% *}")
			overlaps+=("${r#* }")
		done
		printf '%-6s %-11s %-28s %-30s %s\n' "${ttl}s" "$s" "$(printf '%s\n' "${outs[@]}" | stats)" \
			"${outs[*]}" "$(printf '%s\n' "${overlaps[@]}" | sort -n | tail -1)"
	done
done
