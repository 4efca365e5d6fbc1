#!/usr/bin/env bash
# bench/drain.sh — calls in progress through a switchover: how many a plain
# `flip switchover` drops and how many `flip switchover --drain` drops, with
# real SIP calls placed by sipp (bench/sipp-calls.xml).
#
# Usage (root; it creates network namespaces):
#   bench/drain.sh                      # RUNS=3 per mode
#   RUNS=5 MODES="drained" bench/drain.sh
#
# Settings (environment):
#   RUNS=3            runs per mode (1..20)
#   MODES="plain drained"
#   RATE=2            calls placed per second
#   HOLD_MS=4000      how long each call lasts (INVITE answered to BYE)
#   LEAD_S=10         seconds of calls before the switchover
#   TAIL_S=5          seconds of calls after the switchover is over
#   DRAIN_TIMEOUT=60s the --drain time-out
#   DRAIN_POLL=500ms  FLIP_DRAIN_POLL
#   FLIP_ENV=""       more FLIP_VAR=VALUE settings for both agents
#   RESULTS=bench/results/drain-DATE   where the raw results go
#
# The lab is testdata/lab.sh's (namespaces flip<id>-a, -b, -c, -sw; boxes a
# 192.0.2.11 and b 192.0.2.12, client c 192.0.2.50, VIP 192.0.2.100; TEST-NET
# only, nothing in the root namespace), a fresh one per run, deleted after it
# and on exit. Hot standby: the stand-in Asterisk (tools/standin-asterisk)
# runs on both boxes from the start, each with
#   -drain-file $LAB_DIR/BOX/state/draining   (503 to new calls while it exists)
#   -calls-file $LAB_DIR/BOX/state/calls      (the calls in progress)
# and flip on both with
#   FLIP_DRAIN_CMD="touch …/draining"   (Asterisk: core stop gracefully)
#   FLIP_UNDRAIN_CMD="rm -f …/draining" (Asterisk: core abort shutdown)
#   FLIP_CALLS_CMD="cat …/calls"        (Asterisk: core show channels count)
#   FLIP_DRAIN_POLL=$DRAIN_POLL
#
# One run: box a serves the VIP; sipp in the client places RATE calls a
# second to the VIP, each held HOLD_MS; after LEAD_S and a random 0-1 s (the
# phase against sipp's call schedule), `flip switchover` (plain)
# or `flip switchover --drain=$DRAIN_TIMEOUT` (drained) runs on box a; TAIL_S
# after it returned, sipp stops placing calls (SIGUSR1) and the calls in
# progress end (bounded: SIPP_END_S, then it is killed). sipp's statistics
# then say, per call: completed (BYE answered 200), dropped (BYE answered 481
# by a box that never saw the call, or 503, or no answer at all), refused
# (INVITE answered 503 by the draining box), other (INVITE unanswered,
# unexpected answers). flip's JSON gives the drain time and the outage its
# own probe measured.
set -u
BENCH_ROOT=$(cd "$(dirname "$0")/.." && pwd)
# shellcheck source=lib.sh
source "$BENCH_ROOT/bench/lib.sh"
# The stand-in Asterisk, whatever the caller's environment says: only it has
# -drain-file and -calls-file (a lab with LAB_SERVICE=kamailio would not).
LAB_SERVICE=standin

RUNS=${RUNS:-3}
MODES=${MODES:-plain drained}
RATE=${RATE:-2}
HOLD_MS=${HOLD_MS:-4000}
LEAD_S=${LEAD_S:-10}
TAIL_S=${TAIL_S:-5}
DRAIN_TIMEOUT=${DRAIN_TIMEOUT:-60s}
DRAIN_POLL=${DRAIN_POLL:-500ms}
FLIP_ENV=${FLIP_ENV:-}
SIPP_END_S=${SIPP_END_S:-90}
RESULTS=${RESULTS:-$BENCH_ROOT/bench/results/drain-$(date +%Y%m%d-%H%M%S)}

# range NAME VALUE MIN MAX: VALUE must be a whole number in MIN..MAX.
range() {
	case $2 in '' | *[!0-9]*) bench_die "$1 must be a whole number, got '$2'" ;; esac
	if [ "$2" -lt "$3" ] || [ "$2" -gt "$4" ]; then
		bench_die "$1 must be $3..$4, got $2"
	fi
}
range RUNS "$RUNS" 1 20
range RATE "$RATE" 1 50
range HOLD_MS "$HOLD_MS" 100 60000
range LEAD_S "$LEAD_S" 1 120
range TAIL_S "$TAIL_S" 0 120
range SIPP_END_S "$SIPP_END_S" 10 600
for m in $MODES; do
	case $m in plain | drained) ;; *) bench_die "unknown mode $m (plain, drained)" ;; esac
done
DRAIN_TIMEOUT_S=$(echo "$DRAIN_TIMEOUT" | sed -n 's/^\([0-9][0-9]*\)s$/\1/p; s/^\([0-9][0-9]*\)m$/\1 * 60/p')
[ -n "$DRAIN_TIMEOUT_S" ] || bench_die "DRAIN_TIMEOUT must be like 60s or 2m"
DRAIN_TIMEOUT_S=$((DRAIN_TIMEOUT_S))
range "DRAIN_TIMEOUT (seconds)" "$DRAIN_TIMEOUT_S" 1 600

bench_need_root
for c in ip sipp setsid timeout awk; do
	command -v "$c" >/dev/null || bench_die "$c is missing (scripts/deps.sh installs what the lab needs; sipp: Debian's sip-tester)"
done
command -v go >/dev/null || bench_die "go is missing (/usr/local/go/bin)"
TOUCH=$(command -v touch)
RM=$(command -v rm)
CAT=$(command -v cat)

WORK=$(mktemp -d /tmp/flip-drain.XXXXXX)
LAB_BIN=$WORK/bin
LAB_DIR=$WORK/none
mkdir -p "$RESULTS" "$LAB_DIR" || bench_die "cannot create $RESULTS"
cleanup() {
	lab_down
	rm -rf "$WORK"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

bench_say "building flip and the stand-in Asterisk (from a copy of the working tree)"
bench_snapshot "$WORK/src"
LAB_ROOT=$WORK/src # the lab's helper scripts from the same copy
bench_build "$LAB_BIN" "$WORK/src"
SCENARIO=$WORK/src/bench/sipp-calls.xml
[ -f "$SCENARIO" ] || bench_die "no bench/sipp-calls.xml in the copy"
echo "flip: $BENCH_FLIP_VERSION" >&2

# One line per run (TSV, space separated):
# mode run placed completed dropped481 byetimeout refused other unfinished
#   up_at_switch drain_ms outage_ms lost switched sw_rc flags invite_retrans
TSV=$RESULTS/runs.tsv
: >"$TSV"
RUN_N=0

# --- helpers ----------------------------------------------------------------

# standin_args BOX: the stand-in Asterisk's drain and calls files.
standin_args() { echo "-drain-file $LAB_DIR/$1/state/draining -calls-file $LAB_DIR/$1/state/calls"; }

# start_pair: stand-ins on both boxes (hot standby), flip on both, box a
# serving, box b having heard it.
start_pair() {
	local n extra=()
	read -ra extra <<<"$FLIP_ENV"
	for n in a b; do
		mkdir -p "$LAB_DIR/$n/state"
		lab_redfone "$n"
		# shellcheck disable=SC2046
		lab_standin "$n" $(standin_args "$n")
	done
	for n in a b; do
		# flip starts the stand-in itself after a takeover if it is not
		# running: with the same files.
		LAB_STANDIN_ARGS=$(standin_args "$n") lab_flip "$n" \
			FLIP_DRAIN_CMD="$TOUCH $LAB_DIR/$n/state/draining" \
			FLIP_UNDRAIN_CMD="$RM -f $LAB_DIR/$n/state/draining" \
			FLIP_CALLS_CMD="$CAT $LAB_DIR/$n/state/calls" \
			FLIP_DRAIN_POLL="$DRAIN_POLL" "${extra[@]}"
	done
	lab_wait 20 client_answers_from a || return 1
	lab_wait 10 test -s "$LAB_DIR/a/state/calls" || return 1
	# b must have heard the service before a switchover (it takes over only
	# then); a second is ten of its probes.
	sleep 1
}

# stat_field FILE NAME: NAME's value in the last line of sipp's -trace_stat
# file (';'-separated, a header line first); empty if there is none.
stat_field() {
	awk -F';' -v n="$2" 'NR == 1 { for (i = 1; i <= NF; i++) if ($i == n) c = i; next }
		{ last = $0 }
		END { if (c && last != "") { split(last, f, ";"); print f[c] + 0 } }' "$1" 2>/dev/null
}

# counts_suffix FILE SUFFIX: the sum, in the last line of sipp's -trace_counts
# file, of the columns whose name ends in SUFFIX (e.g. _BYE_Timeout).
counts_suffix() {
	awk -F';' -v s="$2" 'NR == 1 { for (i = 1; i <= NF; i++) if (substr($i, length($i) - length(s) + 1) == s) c[i] = 1; next }
		{ last = $0 }
		END { t = 0; if (last != "") { split(last, f, ";"); for (i in c) t += f[i] } print t }' "$1" 2>/dev/null
}

# json_num FILE NAME: the first numeric field NAME in flip's one-line JSON.
json_num() { grep -o "\"$2\":[-0-9.]*" "$1" 2>/dev/null | head -n1 | cut -d: -f2; }
json_str() { grep -o "\"$2\":\"[^\"]*\"" "$1" 2>/dev/null | head -n1 | cut -d'"' -f4; }
json_bool() { grep -o "\"$2\":\(true\|false\)" "$1" 2>/dev/null | head -n1 | cut -d: -f2; }

# keep_raw RDIR MODE IDX: the run's raw files to the results.
keep_raw() {
	local rdir=$1 out=$RESULTS/runs/$2-$3 f
	mkdir -p "$out"
	for f in c/stat.csv c/sipp.out c/errors.log a/flip.log b/flip.log a/state/asterisk.log b/state/asterisk.log \
		a/switchover.json a/switchover.err; do
		[ -f "$rdir/$f" ] && cp "$rdir/$f" "$out/${f//\//_}"
	done
	for f in "$rdir"/c/*_counts.csv; do
		[ -f "$f" ] && cp "$f" "$out/c_counts.csv"
	done
	return 0
}

# --- one run ------------------------------------------------------------------

run_once() {
	local mode=$1 idx=$2 flags=()
	RUN_N=$((RUN_N + 1))
	LAB_ID="$$d$RUN_N"
	LAB_RESOURCES="" LAB_STANDIN_ARGS="" LAB_INIT_DEAD="" LAB_START_TIMEOUT=""
	local rdir=$WORK/runs/$mode-$idx
	if ! lab_up "$rdir" >/dev/null 2>&1; then
		lab_down
		echo "$mode $idx - - - - - - - - - - - - - lab-failed -" >>"$TSV"
		bench_note "$mode run $idx: the lab did not come up"
		return
	fi
	holders_start
	holders_mark
	if ! start_pair; then
		keep_raw "$rdir" "$mode" "$idx"
		lab_down
		echo "$mode $idx - - - - - - - - - - - - - no-start -" >>"$TSV"
		bench_note "$mode run $idx: box a did not start serving"
		return
	fi

	# sipp in the client: RATE calls/s, each HOLD_MS, at most enough calls
	# for 10 minutes (it is stopped long before; -timeout is the last
	# bound). Not through lab_exec: $! must be sipp itself (the subshell
	# and ip netns exec exec into it). Its files go to its working dir.
	local max_calls=$((RATE * 600))
	(cd "$rdir/c" && exec ip netns exec "$(lab_ns c)" sipp -sf "$SCENARIO" -s service \
		-i "${LAB_ADDR[c]}" -p 5070 -r "$RATE" -rp 1000 -d "$HOLD_MS" -m "$max_calls" \
		-max_invite_retrans 5 -max_non_invite_retrans 9 -nostdin \
		-trace_stat -stf stat.csv -fd 1 -trace_counts -trace_err -error_file errors.log \
		-timeout 900s "$LAB_VIP:5060") >"$rdir/c/sipp.out" 2>&1 &
	local spid=$!
	LAB_PIDS+=("$spid")
	sleep "$LEAD_S"
	# A random phase against sipp's call schedule (a call every 1/RATE s
	# from its start): otherwise the switchover would fall at the same
	# point between two INVITEs in every run.
	rand_sleep 1000
	if ! kill -0 "$spid" 2>/dev/null; then
		flags+=("sipp-exited-early")
	fi

	local up_at_switch sw_rc t0 t1
	up_at_switch=$(cat "$LAB_DIR/a/state/calls" 2>/dev/null)
	local sw=(switchover --socket "$LAB_DIR/a/flip.sock" --json --max 20s)
	[ "$mode" = drained ] && sw+=(--drain="$DRAIN_TIMEOUT")
	t0=$(now_ms)
	lab_exec a timeout $((DRAIN_TIMEOUT_S + 60)) "$LAB_BIN/flip" "${sw[@]}" \
		>"$rdir/a/switchover.json" 2>"$rdir/a/switchover.err"
	sw_rc=$?
	t1=$(now_ms)
	[ "$sw_rc" = 0 ] || flags+=("switchover-rc-$sw_rc")

	sleep "$TAIL_S"
	# SIGUSR1: sipp places no more calls and ends when the calls in progress
	# have ended (a BYE unanswered takes up to 32 s of retransmissions).
	kill -USR1 "$spid" 2>/dev/null
	local end=$((SECONDS + SIPP_END_S))
	for _ in $(seq 1 $((SIPP_END_S * 4))); do
		kill -0 "$spid" 2>/dev/null || break
		[ "$SECONDS" -ge "$end" ] && break
		sleep 0.25
	done
	if kill -0 "$spid" 2>/dev/null; then
		flags+=("sipp-killed-after-${SIPP_END_S}s")
		kill -9 "$spid" 2>/dev/null
	fi
	wait "$spid" 2>/dev/null

	# sipp's account.
	local st=$rdir/c/stat.csv counts
	counts=$(find "$rdir/c" -maxdepth 1 -name '*_counts.csv' | head -n1)
	local placed completed failed dropped481 refused byeto inviteto other unfinished okc
	placed=$(stat_field "$st" "TotalCallCreated")
	completed=$(stat_field "$st" "SuccessfulCall(C)")
	failed=$(stat_field "$st" "FailedCall(C)")
	okc=$(stat_field "$st" "completed(C)")
	dropped481=$(stat_field "$st" "dropped(C)")
	refused=$(stat_field "$st" "refused(C)")
	byeto=$(counts_suffix "$counts" "_BYE_Timeout")
	inviteto=$(counts_suffix "$counts" "_INVITE_Timeout")
	local invrt
	invrt=$(counts_suffix "$counts" "_INVITE_Retrans")
	if [ -z "$placed" ]; then
		flags+=("no-sipp-stats")
		placed=- completed=- dropped481=- refused=- byeto=- other=- unfinished=-
	else
		: "${completed:=0}" "${failed:=0}" "${okc:=0}" "${dropped481:=0}" "${refused:=0}" "${byeto:=0}" "${inviteto:=0}"
		other=$((failed - dropped481 - refused - byeto))
		unfinished=$((placed - completed - failed))
		[ "$okc" = "$completed" ] || flags+=("completed-counter-$okc")
		[ "$inviteto" -gt 0 ] && flags+=("invite-timeouts-$inviteto")
		[ "$unfinished" -gt 0 ] && flags+=("unfinished-$unfinished")
	fi

	# flip's account.
	local js=$rdir/a/switchover.json drain_ms=- outage lost switched
	outage=$(json_num "$js" outage_ms)
	lost=$(json_num "$js" lost)
	switched=$(json_bool "$js" switched)
	if [ "$mode" = drained ]; then
		drain_ms=$(json_num "$js" waited_ms)
		local outcome
		outcome=$(json_str "$js" outcome)
		[ "$outcome" = switched ] || flags+=("drain-${outcome:-unknown}")
	fi
	[ "$switched" = true ] || flags+=("no-switch")
	local holders overlap
	holders=$(lab_holders)
	overlap=$(holders_overlap_ms)
	[ "$holders" = b ] || flags+=("holders-at-end:${holders:-none}")
	awk -v o="$overlap" 'BEGIN { exit !(o > 0) }' && flags+=("both-held-VIP:${overlap}ms")
	echo "$t0 $t1" >"$rdir/a/switchover.ms"

	[ ${#flags[@]} -eq 0 ] && flags=(ok)
	local flagstr
	flagstr=$(
		IFS=,
		echo "${flags[*]}"
	)
	echo "$mode $idx $placed $completed $dropped481 $byeto $refused $other $unfinished ${up_at_switch:--} ${drain_ms:--} ${outage:--} ${lost:--} ${switched:--} $sw_rc $flagstr ${invrt:--}" >>"$TSV"
	printf '  %-7s run %d: placed %s, completed %s, dropped %s (481) + %s (BYE timeout), refused %s, other %s; up at switch %s; drain %s ms; outage %s ms  [%s]\n' \
		"$mode" "$idx" "$placed" "$completed" "$dropped481" "$byeto" "$refused" "$other" "${up_at_switch:--}" \
		"${drain_ms:--}" "${outage:--}" "$flagstr" >&2
	keep_raw "$rdir" "$mode" "$idx"
	lab_down
}

# --- the tables ---------------------------------------------------------------

# sec MS: milliseconds as seconds with two decimals ("-" stays).
sec() { case $1 in - | '') echo - ;; *) awk -v m="$1" 'BEGIN { printf "%.2f s", m / 1000 }' ;; esac; }

print_tables() {
	local mode
	echo "Calls through a switchover: sipp places $RATE calls/s to the VIP, each held $((HOLD_MS / 1000)).$(printf '%03d' $((HOLD_MS % 1000))) s;"
	echo "the switchover starts after ${LEAD_S} s of calls; calls are placed until ${TAIL_S} s after it returned."
	echo
	echo "| mode | runs | calls placed | completed | dropped | refused (503) | other failed | calls up at the switch | drain (median) | outage min / median / max |"
	echo "|---|---:|---:|---:|---:|---:|---:|---:|---:|---|"
	for mode in $MODES; do
		local rows n
		rows=$(awk -v m="$mode" '$1 == m && $3 != "-"' "$TSV")
		n=$(echo "$rows" | grep -c .)
		[ "$n" = 0 ] && continue
		local sums
		sums=$(echo "$rows" | awk '{ p += $3; c += $4; d += $5 + $6; r += $7; o += $8 } END { print p, c, d, r, o }')
		local p c d r o up dr out label
		read -r p c d r o <<<"$sums"
		up=$(echo "$rows" | awk '$10 != "-" { printf "%s%s", s, $10; s = ", " }')
		dr=$(echo "$rows" | awk '$11 != "-" { print $11 }' | median)
		out=$(echo "$rows" | awk '$12 != "-" { print $12 }' | stats | awk '{ printf "%s / %s / %s ms", $1, $2, $3 }')
		label="\`flip switchover\`"
		[ "$mode" = drained ] && label="\`flip switchover --drain=$DRAIN_TIMEOUT\`"
		[ "$mode" = plain ] && dr=-
		echo "| $label | $n | $p | $c | **$d** | $r | $o | $up | $(sec "$dr") | $out |"
	done
	echo
	echo "Per run (dropped = BYE answered 481 by a box that never saw the call + BYE unanswered;"
	echo "refused = INVITE answered 503 while box a drained; other = INVITE unanswered or an unexpected answer;"
	echo "outage = flip switchover's own probe, SIP OPTIONS every 10 ms: last answer from a to first from b;"
	echo "INVITE retrans = INVITEs sent again (no answer within 0.5 s: the call was set up late, not lost)):"
	echo
	echo "| mode | run | placed | completed | dropped (481) | dropped (BYE timeout) | refused (503) | other | up at switch | drain | outage | INVITE retrans | flags |"
	echo "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|---:|---|"
	awk '{ printf "| %s | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s |\n", $1, $2, $3, $4, $5, $6, $7, $8, $10,
		($11 == "-" ? "-" : sprintf("%.2f s", $11 / 1000)),
		($12 == "-" ? "-" : sprintf("%s ms, %s lost", $12, $13)), $17, $16 }' "$TSV"
}

# --- main -------------------------------------------------------------------------

bench_say "drain benchmark: RUNS=$RUNS modes: $MODES; $RATE calls/s held ${HOLD_MS} ms; switchover after ${LEAD_S} s"
echo "results: $RESULTS" >&2
for mode in $MODES; do
	for idx in $(seq 1 "$RUNS"); do
		run_once "$mode" "$idx"
	done
done

{
	echo "machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ *//'), kernel $(uname -r)"
	echo "sipp: $(sipp -v 2>&1 | grep -m1 -o 'SIPp v[^ ]*')"
	echo "flip: $BENCH_FLIP_VERSION"
	echo "settings: RUNS=$RUNS MODES='$MODES' RATE=$RATE HOLD_MS=$HOLD_MS LEAD_S=$LEAD_S TAIL_S=$TAIL_S DRAIN_TIMEOUT=$DRAIN_TIMEOUT DRAIN_POLL=$DRAIN_POLL${FLIP_ENV:+ FLIP_ENV='$FLIP_ENV'}; $(date -u +%Y-%m-%dT%H:%MZ), ${SECONDS} s"
	echo
	print_tables
} | tee "$RESULTS/table.md"
