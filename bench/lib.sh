# bench/lib.sh — shared helpers for bench/failover.sh and bench/footprint.sh.
# Source it; it sources testdata/lab.sh (the namespaces: boxes a and b, client
# c, switch sw, VIP 192.0.2.100/24, TEST-NET only) and adds what the
# benchmarks need on top: keepalived in the box namespaces, a stand-in
# Asterisk that keepalived can use, VIP holder tracking, small statistics.
#
# Needs: BENCH_ROOT (the repository root) set before sourcing.

BENCH_DIR=$BENCH_ROOT/bench
export PATH=$PATH:/usr/local/go/bin

bench_say() { printf '\n\033[1m%s\033[0m\n' "$*" >&2; }
bench_note() { printf '%s %s\n' "$(date +%H:%M:%S)" "$*" >&2; }
bench_die() { echo "bench: $*" >&2; exit 1; }

bench_need_root() {
	[ "$(id -u)" = 0 ] || bench_die "run as root (it creates network namespaces)"
}

# bench_deps: the repository's own dependency script (ip, nft, sipp, gcc,
# setsid, Go) and keepalived from Debian's package.
bench_deps() {
	bash "$BENCH_ROOT/scripts/deps.sh" || exit 1
	if ! command -v keepalived >/dev/null; then
		bench_note "installing keepalived (Debian package)"
		export DEBIAN_FRONTEND=noninteractive
		timeout 600 apt-get update -qq
		# The package's postinst asks to start the service; in a container
		# policy-rc.d refuses, elsewhere we stop it right away by its unit.
		timeout 900 apt-get install -y -qq --no-install-recommends keepalived >/dev/null ||
			bench_die "apt-get install keepalived failed"
		if command -v systemctl >/dev/null && systemctl is-active -q keepalived 2>/dev/null; then
			systemctl stop keepalived
		fi
	fi
	command -v keepalived >/dev/null || bench_die "keepalived is missing"
}

# bench_snapshot DIR: copies the working tree (without .git and bench/results)
# to DIR, so that a long run builds and uses one consistent state even while
# the tree is being edited; sets BENCH_FLIP_VERSION to what was copied.
bench_snapshot() {
	local dir=$1 n
	mkdir -p "$dir"
	tar -C "$BENCH_ROOT" --exclude=./.git --exclude=./bench/results -cf - . | tar -C "$dir" -xf - ||
		bench_die "cannot copy the working tree"
	n=$(git -C "$BENCH_ROOT" status --porcelain 2>/dev/null | grep -vc '^?? bench/')
	BENCH_FLIP_VERSION="$(git -C "$BENCH_ROOT" describe --always --dirty 2>/dev/null) ($n changed files besides bench/), copied $(date -u +%Y-%m-%dT%H:%M:%SZ)"
}

# bench_build OUT [SRC]: flip and the stand-in Asterisk, static
# (CGO_ENABLED=0), from SRC (default: the repository).
bench_build() {
	local out=$1 src=${2:-$BENCH_ROOT}
	mkdir -p "$out"
	(cd "$src" && CGO_ENABLED=0 go build -o "$out/flip" . &&
		CGO_ENABLED=0 go build -o "$out/standin-asterisk" ./tools/standin-asterisk) ||
		bench_die "build failed"
}

# shellcheck source=../testdata/lab.sh
source "$BENCH_ROOT/testdata/lab.sh"
LAB_ROOT=$BENCH_ROOT

# --- time and random phase --------------------------------------------------

now_ms() { date +%s%3N; }

# rand_sleep MAXMS: sleeps a uniformly random 0..MAXMS ms (the timer phase).
rand_sleep() {
	local ms=$((RANDOM * 32768 + RANDOM))
	ms=$((ms % ($1 + 1)))
	sleep "$(printf '%d.%03d' $((ms / 1000)) $((ms % 1000)))"
}

# --- VIP holder tracking ------------------------------------------------------
#
# Rather than polling `ip addr` every 20 ms (two forks per sample, which on a
# 2-core machine would itself disturb the timings), each box's address
# changes are recorded as they happen by `ip monitor` with microsecond
# timestamps; holders_overlap_ms then computes exactly how long both boxes
# held the VIP at once. A final `lab_holders` sample is also taken.

# holders_start: starts one monitor per box; its lines go to $LAB_DIR/BOX/addr.mon.
holders_start() {
	local n
	for n in a b; do
		# ip -n joins the namespace itself: $! is ip's own PID.
		ip -n "$(lab_ns "$n")" -ts -4 monitor address >"$LAB_DIR/$n/addr.mon" 2>/dev/null &
		LAB_PIDS+=($!)
	done
}

# holders_mark: records for each box whether it holds the VIP now (a pseudo-event
# at the start of the monitor log, so the log is self-contained).
holders_mark() {
	local n
	for n in a b; do
		if lab_holds "$n"; then
			echo "INIT $(date +%s.%6N) add" >"$LAB_DIR/$n/addr.init"
		else
			echo "INIT $(date +%s.%6N) del" >"$LAB_DIR/$n/addr.init"
		fi
	done
}

# holders_events BOX: "EPOCH_SECONDS add|del" for the VIP, in order.
holders_events() {
	local n=$1
	cat "$LAB_DIR/$n/addr.init" 2>/dev/null | awk '{print $2, $3}'
	# Lines look like:
	#   [2025-11-25T14:06:33.123456] 3: eth0    inet 192.0.2.100/24 scope global secondary eth0
	#   [2025-11-25T14:06:34.000001] Deleted 3: eth0    inet 192.0.2.100/24 ...
	grep -F " $LAB_VIP/" "$LAB_DIR/$n/addr.mon" 2>/dev/null | while read -r ts rest; do
		ts=${ts#[}
		ts=${ts%]}
		local ev=add
		case $rest in Deleted*) ev=del ;; esac
		echo "$(date -d "${ts/T/ }" +%s.%6N) $ev"
	done
}

# holders_overlap_ms: total ms during which both boxes held the VIP, from
# the monitor logs (0.000 if never).
holders_overlap_ms() {
	{
		holders_events a | sed 's/$/ a/'
		holders_events b | sed 's/$/ b/'
	} | sort -n | awk '
		{ t = $1; if (both) tot += t - since
		  h[$3] = ($2 == "add")
		  nb = h["a"] && h["b"]
		  if (nb && !both) since = t
		  both = nb }
		END { printf "%.3f\n", tot * 1000 }'
}

# --- the stand-in Asterisk for keepalived boxes ------------------------------
#
# flip makes the VIP the source of the box's SIP answers (route src rewrite),
# so with flip the stand-in binds 0.0.0.0 like Asterisk. keepalived does not
# do that: a server on 0.0.0.0 would answer the client from the box's own
# address and `flip watch` (a connected socket) would drop every answer. So on
# keepalived boxes the stand-in runs as the usual keepalived recipe has it:
# bound to the VIP with net.ipv4.ip_nonlocal_bind=1, plus a second listener
# on 127.0.0.1:5060 for keepalived's health check (the check then needs no
# VIP). Both are "Asterisk": started, stopped and killed together.

# ka_asterisk BOX start|stop [DELAY]: both listeners, via testdata/standin-service.
ka_asterisk() {
	local box=$1 action=$2 delay=${3:-0s}
	lab_exec "$box" env STANDIN_STATE_DIR="$LAB_DIR/$box/state" STANDIN_BIN="$LAB_BIN/standin-asterisk" \
		STANDIN_ARGS="-name standin-asterisk-box-$box -listen $LAB_VIP:5060 -start-delay $delay" \
		"$LAB_ROOT/testdata/standin-service" "$action" asterisk
	lab_exec "$box" env STANDIN_STATE_DIR="$LAB_DIR/$box/state" STANDIN_BIN="$LAB_BIN/standin-asterisk" \
		STANDIN_ARGS="-name standin-asterisk-box-$box-lo -listen 127.0.0.1:5060 -start-delay $delay" \
		"$LAB_ROOT/testdata/standin-service" "$action" asterisk-lo
}

# kill_asterisk BOX: kill -9 every stand-in process of BOX (Asterisk crashes).
# hang_box BOX: the box freezes: its agent (and keepalived's VRRP child) and
# its Asterisk stop (SIGSTOP); its kernel goes on answering ARP. lab_down's
# SIGKILL ends them.
hang_box() {
	local box=$1 f
	kill -STOP "${LAB_FLIP_PID[$box]}" 2>/dev/null
	[ -f "$LAB_DIR/$box/state/keepalived-vrrp.pid" ] && kill -STOP "$(cat "$LAB_DIR/$box/state/keepalived-vrrp.pid")" 2>/dev/null
	for f in "$LAB_DIR/$box"/state/asterisk*.pid; do
		[ -f "$f" ] && kill -STOP "$(cat "$f")" 2>/dev/null
	done
	return 0
}

kill_asterisk() {
	local box=$1 f
	for f in "$LAB_DIR/$box"/state/asterisk*.pid; do
		[ -f "$f" ] && kill -9 "$(cat "$f")" 2>/dev/null
	done
	return 0
}

# --- keepalived -----------------------------------------------------------------

# ka_conf BOX VERSION ADVERT STANDBY: writes $LAB_DIR/BOX/keepalived.conf.
# Settings and why:
#   unicast_peer          VRRP to the peer's TEST-NET address (no multicast group
#                         address leaves the boxes; the brief allows both)
#   state BACKUP + nopreempt on both, priorities 150 (a) / 100 (b): no automatic
#                         failback (a PBX pair should not move calls back by
#                         itself; flip does not fail back either)
#   garp_master_delay 0   no second GARP burst 5 s later (it does not matter here)
#   garp_master_repeat 5  five GARPs at once on becoming master (the default)
#   track_script: interval 1 (keepalived's minimum: whole seconds), timeout 1,
#                         fall 1, rise 1: the fastest keepalived can react to a
#                         dead Asterisk; common configs use fall 2-3.
#   cold standby: notify_master starts Asterisk, notify_backup/notify_fault stop it.
ka_conf() {
	local box=$1 version=$2 advert=$3 standby=$4
	local prio=100 peer=b
	[ "$box" = a ] && prio=150
	[ "$box" = a ] && peer=b || peer=a
	local dir=$LAB_DIR/$box
	local notify=""
	if [ "$standby" = cold ]; then
		notify="	notify_master \"$BENCH_DIR/ka-notify.sh master $dir/ka.env\"
	notify_backup \"$BENCH_DIR/ka-notify.sh backup $dir/ka.env\"
	notify_fault \"$BENCH_DIR/ka-notify.sh fault $dir/ka.env\""
	fi
	cat >"$dir/keepalived.conf" <<EOF
global_defs {
	router_id box-$box
	script_user root
	vrrp_version $version
	vrrp_garp_master_delay 0
	vrrp_garp_master_repeat 5
	vrrp_garp_master_refresh 0
}

vrrp_script chk_sip {
	script "$BENCH_DIR/ka-check.sh $dir/ka.env"
	interval 1
	timeout 1
	fall 1
	rise 1
}

vrrp_instance VI_1 {
	state BACKUP
	nopreempt
	interface eth0
	virtual_router_id 51
	priority $prio
	advert_int $advert
	unicast_src_ip ${LAB_ADDR[$box]}
	unicast_peer {
		${LAB_ADDR[$peer]}
	}
	virtual_ipaddress {
		$LAB_VIP/24 dev eth0
	}
	garp_master_delay 0
	garp_master_repeat 5
	track_script {
		chk_sip
	}
$notify
}
EOF
}

# ka_env BOX STANDBY DELAY: the settings the notify and check scripts read
# (keepalived runs them with its own environment, so they go to a file; the
# scripts read it on every run, so DELAY can be changed after the start).
ka_env() {
	local box=$1 standby=$2 delay=$3
	cat >"$LAB_DIR/$box/ka.env" <<EOF
LAB_DIR='$LAB_DIR'
LAB_BIN='$LAB_BIN'
LAB_ROOT='$LAB_ROOT'
LAB_VIP='$LAB_VIP'
STANDBY='$standby'
START_DELAY='$delay'
GRACE_S='${KA_START_GRACE_S:-60}'
EOF
}

# ka_start BOX: runs keepalived (VRRP only) in BOX's namespace, in the
# foreground, logging to the console; pidfiles in the box's state dir, so
# lab_down and lab_power_off kill both processes. Its parent's PID goes to
# LAB_FLIP_PID[BOX] (lab_power_off kills that one first).
declare -A KA_PID
ka_start() {
	local box=$1 dir=$LAB_DIR/$1
	mkdir -p "$dir/state"
	ip netns exec "$(lab_ns "$box")" keepalived -n -l -D -G --vrrp -f "$dir/keepalived.conf" \
		-p "$dir/state/keepalived.pid" -r "$dir/state/keepalived-vrrp.pid" \
		-c "$dir/state/keepalived-checkers.pid" -i "box-$box" \
		>>"$dir/keepalived.log" 2>&1 &
	KA_PID[$box]=$!
	LAB_FLIP_PID[$box]=$!
	LAB_PIDS+=($!)
}

# ka_vrrp_pid BOX: the VRRP child's PID (bounded wait for its pidfile).
ka_vrrp_pid() {
	local f=$LAB_DIR/$1/state/keepalived-vrrp.pid i
	for i in $(seq 1 40); do
		[ -s "$f" ] && { cat "$f"; return 0; }
		sleep 0.05
	done
	return 1
}

# ka_stop BOX: graceful stop (SIGTERM: keepalived sends priority-0 adverts and
# removes the VIP); waits at most 5 s for the parent to exit.
ka_stop() {
	local box=$1 pid=${KA_PID[$1]} i
	kill -TERM "$pid" 2>/dev/null
	for i in $(seq 1 100); do
		kill -0 "$pid" 2>/dev/null || break
		sleep 0.05
	done
	wait "$pid" 2>/dev/null
	return 0
}

# --- client -----------------------------------------------------------------

# client_answers_from BOX: a short watch from the client gets answers and
# the last one is from BOX's stand-in.
client_answers_from() {
	local out
	out=$(lab_exec c "$LAB_BIN/flip" watch -for 200ms -interval 20ms -json "$LAB_VIP" 2>/dev/null) || return 1
	echo "$out" | grep -q "\"last_responder\": \"standin-asterisk-box-$1\""
}

# json_field FILE NAME: a scalar field of flip watch's JSON.
json_field() {
	sed -n "s/^ *\"$2\": *\"\{0,1\}\([^\",]*\)\"\{0,1\},\{0,1\}$/\1/p" "$1" | head -n1
}

# --- statistics ---------------------------------------------------------------

# stats: reads numbers (one a line), prints "min median max" (median of an
# even count = mean of the middle two); "- - -" when empty.
stats() {
	sort -g | awk '{v[NR] = $1}
		END {
			if (NR == 0) { print "- - -"; exit }
			m = (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2
			printf "%.1f %.1f %.1f\n", v[1], m, v[NR]
		}'
}

median() { stats | awk '{print $2}'; }
