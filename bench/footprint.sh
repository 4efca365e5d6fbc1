#!/usr/bin/env bash
# bench/footprint.sh — what flip and keepalived cost on a box: resident
# memory, CPU per hour of probing, binary size. Same namespaces as the
# failover benchmark (testdata/lab.sh), hot standby: Asterisk (the stand-in)
# runs on both boxes, box a holds the VIP, box b watches.
#
#   sudo bench/footprint.sh                 DURATION=60 s per agent (~5 min)
#   sudo DURATION=20 bench/footprint.sh     quicker, coarser
#
# Environment:
#   DURATION   seconds of CPU measurement per agent (default 60)
#   WARMUP     seconds after the pair serves before measuring (default 10)
#   AGENTS     any of: flip flip-tuned flip-peer ka-v2 ka-v3 (default: all but
#              flip-peer, flip's defaults with heartbeats over FLIP_PEER)
#   FLIP_ENV   extra VAR=VALUE settings for the flip agents, blank separated
#              (experiments, e.g. FLIP_ENV="FLIP_CONFLICT_INTERVAL=5s")
#   RESULTS    directory for the results (default bench/results/footprint-DATE)
#
# For each agent and box: VmRSS and VmHWM from /proc/PID/status at the end;
# CPU = utime+stime from /proc/PID/stat over DURATION, scaled to seconds per
# hour and to % of one core. keepalived is two processes (parent and VRRP
# child); both are counted. Its track_script (a SIP check run every second
# by the VRRP child) is reported separately as "children": it is the part of
# keepalived's work that flip does inside its own process (SIP probing), so
# "own + children" is the comparable figure. flip's children column counts
# the service scripts flip ran (none in steady state).
set -u
BENCH_ROOT=$(cd "$(dirname "$0")/.." && pwd)
# shellcheck source=lib.sh
source "$BENCH_ROOT/bench/lib.sh"

DURATION=${DURATION:-60}
WARMUP=${WARMUP:-10}
AGENTS=${AGENTS:-flip flip-tuned ka-v2 ka-v3}
FLIP_ENV=${FLIP_ENV:-}
RESULTS=${RESULTS:-$BENCH_ROOT/bench/results/footprint-$(date +%Y%m%d-%H%M%S)}
case $DURATION in '' | *[!0-9]* | 0) bench_die "DURATION must be a positive number of seconds" ;; esac
case $WARMUP in '' | *[!0-9]*) bench_die "WARMUP must be a number of seconds" ;; esac
[ "$DURATION" -le 3600 ] || bench_die "DURATION must be at most 3600"
[ "$WARMUP" -le 600 ] || bench_die "WARMUP must be at most 600"

bench_need_root
bench_deps

WORK=$(mktemp -d /tmp/flip-footprint.XXXXXX)
LAB_BIN=$WORK/bin
LAB_DIR=$WORK/none
mkdir -p "$RESULTS" "$LAB_DIR"
trap 'lab_down; rm -rf "$WORK"' EXIT
trap 'exit 130' INT TERM

bench_say "building flip (static: default and -ldflags='-s -w') and the stand-in Asterisk"
bench_snapshot "$WORK/src"
LAB_ROOT=$WORK/src
bench_build "$LAB_BIN" "$WORK/src"
(cd "$WORK/src" && CGO_ENABLED=0 go build -ldflags='-s -w' -o "$WORK/flip-stripped" . &&
	CGO_ENABLED=0 go build -trimpath -ldflags='-s -w' -o "$WORK/flip-trimpath-stripped" .) ||
	bench_die "build failed"
CLK_TCK=$(getconf CLK_TCK)

# cpu_ticks PID: "own children" clock ticks: utime+stime and cutime+cstime
# (fields 14-17 of /proc/PID/stat, counted after the ")" that ends comm).
cpu_ticks() {
	local s
	s=$(cat "/proc/$1/stat" 2>/dev/null) || { echo "- -"; return; }
	s=${s##*) }
	# shellcheck disable=SC2086
	set -- $s
	# After comm: $1 = state (field 3), so field N is ${N-2}.
	echo "$((${12} + ${13})) $((${14} + ${15}))"
}

# mem_kb PID: "VmRSS VmHWM Pss" in kB. Pss (smaps_rollup) charges shared
# pages (libc, the other keepalived process) proportionally: the fair sum.
mem_kb() {
	local pss
	pss=$(awk '/^Pss:/ {print $2}' "/proc/$1/smaps_rollup" 2>/dev/null)
	awk -v p="${pss:--}" '/^VmRSS:/ {r = $2} /^VmHWM:/ {h = $2} END {print r + 0, h + 0, p}' "/proc/$1/status" 2>/dev/null
}

# start_pair AGENT: hot standby pair; prints "label pid" lines of the
# processes to measure.
start_pair() {
	local agent=$1 n
	case $agent in
	flip | flip-tuned | flip-peer)
		local env=() pa=() pb=()
		[ "$agent" = flip-tuned ] && env=(FLIP_PROBE_INTERVAL=20ms FLIP_DEAD_AFTER=200ms)
		if [ "$agent" = flip-peer ]; then
			# Heartbeats: 4 per FLIP_DEAD_AFTER each way.
			pa=(FLIP_PEER="${LAB_ADDR[b]}" FLIP_PEER_KEY=bench-peer-key-not-secret)
			pb=(FLIP_PEER="${LAB_ADDR[a]}" FLIP_PEER_KEY=bench-peer-key-not-secret)
		fi
		local extra=()
		read -ra extra <<<"$FLIP_ENV"
		env+=("${extra[@]}")
		lab_redfone a
		lab_redfone b
		lab_standin a
		lab_standin b
		lab_flip a "${env[@]}" "${pa[@]}"
		lab_flip b "${env[@]}" "${pb[@]}"
		lab_wait 20 client_answers_from a || return 1
		;;
	ka-v2 | ka-v3)
		local v=2 adv=1
		[ "$agent" = ka-v3 ] && v=3 adv=0.1
		for n in a b; do
			lab_exec "$n" sysctl -qw net.ipv4.ip_nonlocal_bind=1
			ka_env "$n" hot 0s
			ka_conf "$n" "$v" "$adv" hot
		done
		ka_asterisk a start
		ka_asterisk b start
		ka_start a
		lab_wait 20 client_answers_from a || return 1
		ka_start b
		lab_wait 10 grep -q 'Entering BACKUP STATE' "$LAB_DIR/b/keepalived.log" || return 1
		;;
	esac
}

# procs AGENT: "box role process pid" lines.
procs() {
	case $1 in
	flip | flip-tuned | flip-peer)
		echo "a active flip ${LAB_FLIP_PID[a]}"
		echo "b passive flip ${LAB_FLIP_PID[b]}"
		;;
	*)
		echo "a active keepalived ${KA_PID[a]}"
		echo "a active keepalived-vrrp $(ka_vrrp_pid a)"
		echo "b passive keepalived ${KA_PID[b]}"
		echo "b passive keepalived-vrrp $(ka_vrrp_pid b)"
		;;
	esac
}

TSV=$RESULTS/footprint.tsv
: >"$TSV"
run=0
for agent in $AGENTS; do
	case $agent in flip | flip-tuned | flip-peer | ka-v2 | ka-v3) ;; *) bench_die "unknown agent $agent" ;; esac
	run=$((run + 1))
	LAB_ID="$$f$run"
	LAB_RESOURCES="" LAB_STANDIN_ARGS="" LAB_INIT_DEAD="" LAB_START_TIMEOUT=""
	bench_say "$agent: warm-up ${WARMUP}s, then ${DURATION}s of measurement"
	lab_up "$WORK/$agent" >/dev/null 2>&1 || bench_die "lab did not come up"
	start_pair "$agent" || bench_die "$agent: box a never served the VIP"
	sleep "$WARMUP"
	mapfile -t P < <(procs "$agent")
	declare -A T0=() R0=()
	for line in "${P[@]}"; do
		set -- $line
		T0[$4]=$(cpu_ticks "$4")
		R0[$4]=$(mem_kb "$4" | awk '{print $1}')
	done
	sleep "$DURATION"
	for line in "${P[@]}"; do
		set -- $line
		read -r own0 ch0 <<<"${T0[$4]}"
		read -r own1 ch1 <<<"$(cpu_ticks "$4")"
		read -r rss hwm pss <<<"$(mem_kb "$4")"
		if [ "$own1" = - ] || [ "$own0" = - ]; then
			echo "$agent $1 $2 $3 - - - - -" >>"$TSV"
			bench_note "$agent: $3 on box $1 (pid $4) died during the measurement"
			continue
		fi
		echo "$agent $1 $2 $3 $rss $hwm $((own1 - own0)) $((ch1 - ch0)) $pss ${R0[$4]}" >>"$TSV"
	done
	holders=$(lab_holders)
	[ "$holders" = a ] || bench_note "$agent: VIP holders at the end: '${holders}' (expected a)"
	lab_down
done

size_of() { stat -c %s "$1"; }
ka_bin=$(command -v keepalived)
ka_libs=$(ldd "$ka_bin" 2>/dev/null | awk '$3 ~ /^\// {print $3}' | sort -u)
ka_libs_size=0
for l in $ka_libs; do ka_libs_size=$((ka_libs_size + $(stat -L -c %s "$l"))); done
ka_pkg_kb=$(dpkg-query -W -f='${Installed-Size}' keepalived 2>/dev/null)

{
	echo "machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ *//'), kernel $(uname -r)"
	echo "flip: $BENCH_FLIP_VERSION, $(go version | awk '{print $3}'); keepalived: $(keepalived --version 2>&1 | head -n1)"
	echo "settings: WARMUP=${WARMUP}s DURATION=${DURATION}s${FLIP_ENV:+ FLIP_ENV='$FLIP_ENV'}, CLK_TCK=$CLK_TCK (CPU resolution $((1000 / CLK_TCK)) ms); $(date -u +%Y-%m-%dT%H:%MZ)"
	echo
	echo "Memory and CPU in steady state (hot standby, box a active, box b passive);"
	echo "RSS start = VmRSS when the measurement began (after the warm-up), the rest at its end:"
	echo
	printf '| %-10s | %-3s | %-7s | %-15s | %9s | %9s | %9s | %8s | %12s | %9s | %14s | %11s |\n' \
		agent box role process "RSS start" "VmRSS kB" "VmHWM kB" "Pss kB" "own CPU s/h" "own %core" "children s/h" "total %core"
	printf '|%s|%s|%s|%s|%s|%s|%s|%s|%s|%s|%s|%s|\n' ------------ ----- --------- ----------------- ----------- ----------- \
		----------- ---------- -------------- ----------- ---------------- -------------
	awk -v tck="$CLK_TCK" -v dur="$DURATION" '
		$5 == "-" { printf "| %-10s | %-3s | %-7s | %-15s | %9s | %9s | %9s | %8s | %12s | %9s | %14s | %11s |\n", $1, $2, $3, $4, "died", "-", "-", "-", "-", "-", "-", "-"; next }
		{
			own = $7 / tck; ch = $8 / tck
			printf "| %-10s | %-3s | %-7s | %-15s | %9s | %9d | %9d | %8s | %12.1f | %9.3f | %14.1f | %11.3f |\n",
				$1, $2, $3, $4, $10, $5, $6, $9, own * 3600 / dur, own / dur * 100, ch * 3600 / dur, (own + ch) / dur * 100
		}' "$TSV"
	echo
	echo "Per box (keepalived: parent + VRRP child, + its check scripts):"
	echo
	printf '| %-10s | %-3s | %-7s | %9s | %8s | %17s | %17s |\n' agent box role "VmRSS kB" "Pss kB" "CPU s/h own+chld" "%core own+chld"
	printf '|%s|%s|%s|%s|%s|%s|%s|\n' ------------ ----- --------- ----------- ---------- ------------------- -------------------
	awk -v tck="$CLK_TCK" -v dur="$DURATION" '
		$5 != "-" { k = $1 " " $2 " " $3; if (!(k in rss)) order[++n] = k; rss[k] += $5; pss[k] += $9; cpu[k] += ($7 + $8) / tck }
		END { for (i = 1; i <= n; i++) { k = order[i]; split(k, f, " ")
			printf "| %-10s | %-3s | %-7s | %9d | %8d | %17.1f | %17.3f |\n", f[1], f[2], f[3], rss[k], pss[k], cpu[k] * 3600 / dur, cpu[k] / dur * 100 } }' "$TSV"
	echo
	echo "Binary size (bytes):"
	echo
	printf '| %-48s | %12s |\n' binary bytes
	printf '|%s|%s|\n' -------------------------------------------------- --------------
	printf '| %-48s | %12s |\n' "flip, CGO_ENABLED=0 go build" "$(size_of "$LAB_BIN/flip")"
	printf '| %-48s | %12s |\n' "flip, CGO_ENABLED=0 -ldflags='-s -w'" "$(size_of "$WORK/flip-stripped")"
	printf '| %-48s | %12s |\n' "flip, CGO_ENABLED=0 -trimpath -ldflags='-s -w'" "$(size_of "$WORK/flip-trimpath-stripped")"
	printf '| %-48s | %12s |\n' "keepalived ($ka_bin, dynamic)" "$(size_of "$ka_bin")"
	printf '| %-48s | %12s |\n' "its $(echo "$ka_libs" | grep -c .) shared libraries (ldd; mostly system-wide)" "$ka_libs_size"
	printf '| %-48s | %12s |\n' "keepalived package, Installed-Size" "$((${ka_pkg_kb:-0} * 1024))"
} | tee "$RESULTS/table.md"
