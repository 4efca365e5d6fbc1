#!/usr/bin/env bash
# bench/failover.sh — the SIP outage a client sees when the active box of a
# two-box pair fails, for flip and for keepalived, in network namespaces
# (testdata/lab.sh: boxes a and b, client c, switch sw; TEST-NET only).
#
#   sudo bench/failover.sh                 RUNS=5, hot and cold standby (~14 min)
#   sudo QUICK=1 bench/failover.sh         RUNS=1, hot standby only (~70 s)
#   sudo RUNS=3 bench/failover.sh
#   sudo AGENTS="flip flip-tuned" SCENARIOS=box bench/failover.sh
#
# Environment:
#   RUNS         runs per cell (default 5; QUICK=1 makes it 1)
#   QUICK        1: RUNS=1 and hot standby only
#   AGENTS       any of: flip flip-tuned flip-peer ka-v2 ka-v3 (default all five)
#   STANDBYS     any of: hot cold (default both; QUICK=1: hot)
#   SCENARIOS    any of: box asterisk switchover (default all three)
#   START_DELAY  cold standby: how long the stand-in Asterisk takes to answer
#                after it is started on takeover (default 2s)
#   BUDGET_S     stop starting new runs after this many seconds (default 1800)
#   RESULTS      directory for the results (default bench/results/failover-DATE)
#   KEEP         1: keep every run's logs (lab dirs) under RESULTS/runs
#   FLIP_ENV     extra VAR=VALUE settings for both flip agents, blank separated
#                (experiments, e.g. FLIP_ENV="FLIP_ARP_CHECK_WINDOW=10ms")
#   CLIENT_TIMEOUT  an answer later than this after its probe counts as lost
#                (default 20ms: a voice jitter buffer would have dropped it, and
#                a probe parked in the client's ARP queue while the VIP moves
#                must not count as answered at its send time)
#
# Agents:
#   flip         flip with its defaults (probe 100 ms, dead after 1 s)
#   flip-tuned   FLIP_PROBE_INTERVAL=20ms FLIP_DEAD_AFTER=200ms
#   flip-peer    flip's defaults plus the peer channel (FLIP_PEER, FLIP_PEER_KEY),
#                which only changes the switchover: it runs that scenario only
#                (PEER_ALL=1: all three)
#   ka-v2        keepalived, VRRPv2, advert_int 1
#   ka-v3        keepalived, VRRPv3, advert_int 0.1
#   keepalived has a track_script (SIP OPTIONS to 127.0.0.1:5060, interval 1,
#   fall 1); see bench/lib.sh (ka_conf) for every setting and why.
#
# Scenarios (always on box a, the active one; box b must take over):
#   box          box a dies: cable cut at the switch, all its processes
#                killed, its addresses back to boot state (lab_power_off)
#   asterisk     kill -9 of box a's Asterisk; the box and its agent stay up
#   hang         box a freezes: its agent and Asterisk get SIGSTOP, its kernel
#                still answers ARP (not in the default set; SCENARIOS=hang)
#   switchover   controlled switchover: `flip switchover` on box a (its control
#                socket; "n/a (not implemented yet)" if the binary has no such
#                command); keepalived stopped gracefully on box a (SIGTERM:
#                priority-0 adverts)
#
# Each run builds a fresh lab, starts the agent, waits until box a serves the
# VIP, starts `flip watch -interval 10ms -until-switch -json` in the client,
# waits 0.5 s plus a random 0-1 s (a random phase of the agents' timers),
# injects the fault, and waits for the client to see box b answer (at most
# WATCH_MAX). Then a 0.5 s watch checks that the VIP still answers. Both boxes'
# addresses are recorded by `ip monitor` all along, so any moment at which
# both held the VIP is found (to the microsecond, not at a sampling rate).
set -u
BENCH_ROOT=$(cd "$(dirname "$0")/.." && pwd)
# shellcheck source=lib.sh
source "$BENCH_ROOT/bench/lib.sh"

QUICK=${QUICK:-0}
RUNS=${RUNS:-5}
STANDBYS=${STANDBYS:-hot cold}
if [ "$QUICK" = 1 ]; then
	RUNS=1
	STANDBYS=hot
fi
AGENTS=${AGENTS:-flip flip-tuned flip-peer ka-v2 ka-v3}
PEER_ALL=${PEER_ALL:-0}
SCENARIOS=${SCENARIOS:-box asterisk switchover}
START_DELAY=${START_DELAY:-2s}
BUDGET_S=${BUDGET_S:-1800}
WATCH_MAX=${WATCH_MAX:-20s}
CLIENT_TIMEOUT=${CLIENT_TIMEOUT:-20ms}
FLIP_ENV=${FLIP_ENV:-}
KEEP=${KEEP:-0}
RESULTS=${RESULTS:-$BENCH_ROOT/bench/results/failover-$(date +%Y%m%d-%H%M%S)}

case $RUNS in '' | *[!0-9]* | 0) bench_die "RUNS must be a positive number" ;; esac
[ "$RUNS" -le 50 ] || bench_die "RUNS must be at most 50"

bench_need_root
bench_deps

WORK=$(mktemp -d /tmp/flip-bench.XXXXXX)
LAB_BIN=$WORK/bin
LAB_DIR=$WORK/none
mkdir -p "$RESULTS" "$LAB_DIR"
cleanup() {
	lab_down
	if [ "$KEEP" = 1 ] && [ -d "$WORK/runs" ]; then
		cp -a "$WORK/runs" "$RESULTS/" 2>/dev/null
	fi
	rm -rf "$WORK"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

bench_say "building flip and the stand-in Asterisk (from a copy of the working tree)"
bench_snapshot "$WORK/src"
LAB_ROOT=$WORK/src # the lab's helper scripts from the same copy
bench_build "$LAB_BIN" "$WORK/src"
echo "flip: $BENCH_FLIP_VERSION" >&2
FLIP_HAS_SWITCHOVER=0
"$LAB_BIN/flip" -h 2>&1 | grep -q switchover && FLIP_HAS_SWITCHOVER=1

# One line per run:
# agent standby scenario run outage_ms lost switched overlap_ms answered_after
#   after_outage_ms vip_ms detect_ms wait_ms total_ms vip routes announce fonebridge asterisk flags
TSV=$RESULTS/runs.tsv
PHASES=$RESULTS/phases.txt
: >"$TSV"
: >"$PHASES"
RUN_N=0

# --- agents -----------------------------------------------------------------------

# start_flip AGENT STANDBY: flip on both boxes; box a primary.
start_flip() {
	local agent=$1 standby=$2 env=() extra=() pa=() pb=()
	[ "$agent" = flip-tuned ] && env=(FLIP_PROBE_INTERVAL=20ms FLIP_DEAD_AFTER=200ms)
	if [ "$agent" = flip-peer ]; then
		pa=(FLIP_PEER="${LAB_ADDR[b]}" FLIP_PEER_KEY=bench-peer-key-not-secret)
		pb=(FLIP_PEER="${LAB_ADDR[a]}" FLIP_PEER_KEY=bench-peer-key-not-secret)
	fi
	read -ra extra <<<"$FLIP_ENV"
	env+=("${extra[@]}")
	lab_redfone a
	lab_redfone b
	lab_standin a # cold standby too: a's Asterisk is up already (saves the start delay)
	if [ "$standby" = hot ]; then
		lab_standin b
		LAB_STANDIN_ARGS=""
	else
		LAB_STANDIN_ARGS="-start-delay $START_DELAY"
	fi
	lab_flip a "${env[@]}" "${pa[@]}"
	lab_flip b "${env[@]}" "${pb[@]}"
	lab_wait 20 client_answers_from a || return 1
	# b must have heard the service (it may take over only then, or after
	# FLIP_INIT_DEAD); half a second is five of its probes, 25 when tuned.
	sleep 0.5
}

# start_keepalived VERSION ADVERT STANDBY
start_keepalived() {
	local version=$1 advert=$2 standby=$3 n
	for n in a b; do
		lab_exec "$n" sysctl -qw net.ipv4.ip_nonlocal_bind=1
		# Cold standby: box a's first start is instant; the real delay is
		# written below, once a serves.
		ka_env "$n" "$standby" 0s
		ka_conf "$n" "$version" "$advert" "$standby"
	done
	if [ "$standby" = hot ]; then
		ka_asterisk a start
		ka_asterisk b start
	fi
	ka_start a
	lab_wait 20 client_answers_from a || return 1
	ka_start b
	ka_env a "$standby" "$START_DELAY"
	ka_env b "$standby" "$START_DELAY"
	# b must be BACKUP and have heard a's adverts: bounded wait for its log.
	lab_wait 10 grep -q 'Entering BACKUP STATE' "$LAB_DIR/b/keepalived.log" || return 1
	sleep 1.5
}

# cell_na AGENT SCENARIO: why this cell is not run ("" = it is).
cell_na() {
	if [ "$2" = switchover ] && [ "${1#flip}" != "$1" ] && [ "$FLIP_HAS_SWITCHOVER" = 0 ]; then
		echo "n/a (not implemented yet)"
	elif [ "$1" = flip-peer ] && [ "$2" != switchover ] && [ "$2" != hang ] && [ "$PEER_ALL" != 1 ]; then
		echo "skipped: as flip (the peer channel changes the switchover and the hang)"
	fi
}

# --- one run ----------------------------------------------------------------------

# log_ms FILE PATTERN [AFTER_MS]: epoch ms of the first flip log line matching
# PATTERN at or after AFTER_MS; empty if none.
log_ms() {
	local f=$1 pat=$2 after=${3:-0} line t
	while IFS= read -r line; do
		t=${line#time=}
		t=${t%% *}
		t=$(date -d "$t" +%s%3N 2>/dev/null) || continue
		if [ "$t" -ge "$after" ]; then
			echo "$t"
			return 0
		fi
	done < <(grep -- "$pat" "$f" 2>/dev/null)
	return 0
}

# vip_add_ms BOX AFTER_MS: epoch ms at which BOX got the VIP after AFTER_MS.
vip_add_ms() {
	holders_events "$1" | awk -v after="$2" '$2 == "add" && $1 * 1000 >= after { printf "%.0f\n", $1 * 1000; exit }'
}

# phase_field LINE NAME: a phase's ms from a "takeover complete" line.
phase_field() {
	echo "$1" | sed -n "s|.*phases=\"[^\"]*$2=\([0-9.]*\)ms.*|\1|p"
}

run_once() {
	local agent=$1 standby=$2 scen=$3 idx=$4
	RUN_N=$((RUN_N + 1))
	LAB_ID="$$r$RUN_N"
	LAB_RESOURCES="" LAB_STANDIN_ARGS="" LAB_INIT_DEAD="" LAB_START_TIMEOUT=""
	local rdir=$WORK/runs/$agent-$standby-$scen-$idx
	local flags=() ok=1
	if ! lab_up "$rdir" >/dev/null 2>&1; then
		lab_down
		echo "$agent $standby $scen $idx - - - - - - - - - - - - - - - lab-failed" >>"$TSV"
		return
	fi
	holders_start
	holders_mark
	sleep 0.1

	case $agent in
	flip*) start_flip "$agent" "$standby" ;;
	ka-v2) start_keepalived 2 1 "$standby" ;;
	ka-v3) start_keepalived 3 0.1 "$standby" ;;
	esac || { ok=0; flags+=("no-start"); }

	local t_fault=0
	if [ $ok = 1 ]; then
		# Not through lab_exec: $! must be flip watch itself.
		ip netns exec "$(lab_ns c)" "$LAB_BIN/flip" watch -interval 10ms -timeout "$CLIENT_TIMEOUT" -until-switch -max "$WATCH_MAX" -json \
			"$LAB_VIP" >"$rdir/watch.json" 2>"$rdir/watch.err" &
		local wpid=$!
		LAB_PIDS+=("$wpid")
		sleep 0.5
		rand_sleep 1000
		t_fault=$(now_ms)
		echo "$t_fault" >"$rdir/fault.ms"
		case $scen in
		box) lab_power_off a ;;
		asterisk) kill_asterisk a ;;
		hang) hang_box a ;;
		switchover)
			if [ "${agent#flip}" != "$agent" ]; then
				lab_exec a "$LAB_BIN/flip" switchover --socket "$LAB_DIR/a/flip.sock" --json --max 20s \
					>"$rdir/switchover.out" 2>&1
			else
				ka_stop a
			fi
			;;
		esac
		wait "$wpid"
		# After the switch: does the VIP keep answering? (0.5 s, 10 ms probes)
		lab_exec c "$LAB_BIN/flip" watch -for 500ms -interval 10ms -timeout "$CLIENT_TIMEOUT" -json "$LAB_VIP" >"$rdir/after.json" 2>/dev/null
	fi

	local outage lost switched answered_after after_outage overlap holders
	outage=$(json_field "$rdir/watch.json" outage_ms)
	lost=$(json_field "$rdir/watch.json" lost)
	switched=$(json_field "$rdir/watch.json" switched)
	answered_after=$(json_field "$rdir/after.json" answered)
	after_outage=$(json_field "$rdir/after.json" outage_ms)
	holders=$(lab_holders)
	overlap=$(holders_overlap_ms)
	[ "$switched" = true ] || { flags+=("no-switch"); outage=-; }
	[ "${answered_after:-0}" -gt 0 ] 2>/dev/null || flags+=("no-answer-at-end")
	awk -v o="$overlap" 'BEGIN { exit !(o > 0) }' && flags+=("both-held-VIP:${overlap}ms")
	[ "$holders" = "a b" ] && flags+=("both-hold-at-end")
	if [ -n "$after_outage" ] && awk -v o="$after_outage" 'BEGIN { exit !(o > 100) }'; then
		flags+=("gap-after:${after_outage}ms")
	fi
	[ "$ok" = 1 ] && [ "$holders" != b ] && flags+=("holders-at-end:${holders:-none}")

	# When did b get the VIP, and (flip) what did b's log say.
	local vip_ms=- detect=- waited=- total=- pv=- pr=- pa=- pf=- ps=-
	if [ "$t_fault" != 0 ]; then
		local t
		t=$(vip_add_ms b "$t_fault")
		[ -n "$t" ] && vip_ms=$((t - t_fault))
		if [ "${agent#flip}" != "$agent" ]; then
			local blog=$rdir/b/flip.log t_wait t_take line
			t_wait=$(log_ms "$blog" "still holds the VIP" "$t_fault")
			t_take=$(log_ms "$blog" 'msg="taking over"' "$t_fault")
			if [ -n "$t_take" ]; then
				if [ -n "$t_wait" ]; then
					detect=$((t_wait - t_fault))
					waited=$((t_take - t_wait))
				else
					detect=$((t_take - t_fault))
					waited=0
				fi
			fi
			line=$(grep 'msg="takeover complete"' "$blog" | tail -n1)
			if [ -n "$line" ]; then
				total=$(echo "$line" | sed -n 's/.* total=\([0-9.]*\)ms.*/\1/p')
				pv=$(phase_field "$line" "$LAB_VIP/24")
				pr=$(phase_field "$line" routes)
				pa=$(phase_field "$line" announce)
				pf=$(phase_field "$line" fonebridge)
				ps=$(phase_field "$line" asterisk)
				echo "$agent $standby $scen $idx: $line" >>"$PHASES"
			fi
			grep -E 'msg=(releasing|"release complete")|level=(WARN|ERROR)' "$rdir/a/flip.log" "$blog" 2>/dev/null |
				sed "s|^$rdir/||; s|^|$agent $standby $scen $idx: |" >>"$PHASES"
		fi
	fi
	[ ${#flags[@]} -eq 0 ] && flags=(ok)
	local flagstr
	flagstr=$(
		IFS=,
		echo "${flags[*]}"
	)
	echo "$agent $standby $scen $idx ${outage:--} ${lost:--} ${switched:--} $overlap ${answered_after:--} ${after_outage:--} $vip_ms $detect $waited ${total:--} ${pv:--} ${pr:--} ${pa:--} ${pf:--} ${ps:--} $flagstr" >>"$TSV"
	printf '  %-10s %-4s %-10s run %d: outage %s ms, lost %s, VIP on b after %s ms  [%s]\n' \
		"$agent" "$standby" "$scen" "$idx" "${outage:--}" "${lost:--}" "$vip_ms" "$flagstr" >&2
	lab_down
}

# --- the table -------------------------------------------------------------------

print_tables() {
	local agent standby scen
	echo "SIP outage seen by the client (flip watch, OPTIONS every 10 ms to the VIP), ms"
	echo
	printf '| %-10s | %-7s | %-10s | %4s | %-28s | %10s | %16s | %s |\n' agent standby scenario runs \
		"outage min / median / max" "lost (med)" "VIP on b (med)" flags
	printf '|%s|%s|%s|%s|%s|%s|%s|%s|\n' ------------ --------- ------------ ------ \
		------------------------------ ------------ ------------------ ------
	for agent in $AGENTS; do
		for standby in $STANDBYS; do
			for scen in $SCENARIOS; do
				local na
				na=$(cell_na "$agent" "$scen")
				if [ -n "$na" ]; then
					case $na in n/a*)
						printf '| %-10s | %-7s | %-10s | %4s | %-28s | %10s | %16s | %s |\n' \
							"$agent" "$standby" "$scen" - "$na" - - -
						;;
					esac
					continue
				fi
				local rows n o l v fl
				rows=$(awk -v a="$agent" -v s="$standby" -v c="$scen" '$1 == a && $2 == s && $3 == c' "$TSV")
				n=$(echo "$rows" | grep -c .)
				[ "$n" = 0 ] && continue
				o=$(echo "$rows" | awk '$5 != "-" {print $5}' | stats | awk '{printf "%s / %s / %s", $1, $2, $3}')
				l=$(echo "$rows" | awk '$6 != "-" {print $6}' | median)
				v=$(echo "$rows" | awk '$11 != "-" {print $11}' | median)
				fl=$(echo "$rows" | awk '$20 != "ok" {print "run " $4 ": " $20}' | paste -sd ';' -)
				[ -z "$fl" ] && fl=ok
				printf '| %-10s | %-7s | %-10s | %4s | %-28s | %10s | %16s | %s |\n' \
					"$agent" "$standby" "$scen" "$n" "$o" "$l" "$v" "$fl"
			done
		done
	done
	echo
	echo "flip's own account (box b's log), medians in ms: detect = fault to b's decision"
	echo "(its first holder check, or 'taking over'); wait = b waiting for box a to"
	echo "release the VIP; total and the phases from b's 'takeover complete ... phases=...'"
	echo "(announce = the first GARP round; the services start after it); VIP on b ="
	echo "fault to the VIP appearing on b (ip monitor); outage = what the client saw."
	echo
	printf '| %-10s | %-7s | %-10s | %6s | %6s | %6s | %6s | %6s | %8s | %10s | %8s | %8s | %7s |\n' \
		agent standby scenario detect wait total VIP routes announce fonebridge asterisk "VIP on b" outage
	printf '|%s|%s|%s|%s|%s|%s|%s|%s|%s|%s|%s|%s|%s|\n' ------------ --------- ------------ \
		-------- -------- -------- -------- -------- ---------- ------------ ---------- ---------- ---------
	for agent in $AGENTS; do
		[ "${agent#flip}" = "$agent" ] && continue
		for standby in $STANDBYS; do
			for scen in $SCENARIOS; do
				[ -n "$(cell_na "$agent" "$scen")" ] && continue
				local rows cols=() i
				rows=$(awk -v a="$agent" -v s="$standby" -v c="$scen" '$1 == a && $2 == s && $3 == c' "$TSV")
				[ -z "$rows" ] && continue
				for i in 12 13 14 15 16 17 18 19; do
					cols+=("$(echo "$rows" | awk -v i="$i" '$i != "-" {print $i}' | median)")
				done
				local o vb
				o=$(echo "$rows" | awk '$5 != "-" {print $5}' | median)
				vb=$(echo "$rows" | awk '$11 != "-" {print $11}' | median)
				printf '| %-10s | %-7s | %-10s | %6s | %6s | %6s | %6s | %6s | %8s | %10s | %8s | %8s | %7s |\n' \
					"$agent" "$standby" "$scen" "${cols[0]}" "${cols[1]}" "${cols[2]}" "${cols[3]}" "${cols[4]}" \
					"${cols[5]}" "${cols[6]}" "${cols[7]}" "$vb" "$o"
			done
		done
	done
}

# --- main -------------------------------------------------------------------------

bench_say "failover benchmark: RUNS=$RUNS agents: $AGENTS; standby: $STANDBYS; scenarios: $SCENARIOS; cold start delay $START_DELAY"
echo "results: $RESULTS" >&2
skipped=0
for agent in $AGENTS; do
	case $agent in flip | flip-tuned | flip-peer | ka-v2 | ka-v3) ;; *) bench_die "unknown agent $agent" ;; esac
	for standby in $STANDBYS; do
		for scen in $SCENARIOS; do
			[ -n "$(cell_na "$agent" "$scen")" ] && continue
			for idx in $(seq 1 "$RUNS"); do
				if [ "$SECONDS" -ge "$BUDGET_S" ]; then
					skipped=$((skipped + 1))
					continue
				fi
				run_once "$agent" "$standby" "$scen" "$idx"
			done
		done
	done
done
[ "$skipped" -gt 0 ] && bench_note "time budget (BUDGET_S=$BUDGET_S) used up: $skipped runs skipped"

{
	echo "machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ *//'), kernel $(uname -r)"
	echo "keepalived: $(keepalived --version 2>&1 | head -n1)"
	echo "flip: $BENCH_FLIP_VERSION"
	echo "settings: RUNS=$RUNS STANDBYS='$STANDBYS' START_DELAY=$START_DELAY CLIENT_TIMEOUT=$CLIENT_TIMEOUT${FLIP_ENV:+ FLIP_ENV='$FLIP_ENV'}; $(date -u +%Y-%m-%dT%H:%MZ), ${SECONDS} s"
	echo
	print_tables
} | tee "$RESULTS/table.md"
