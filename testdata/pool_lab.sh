# pool_lab.sh — a pool of three boxes arbitrated by a real three-member
# etcd cluster (Debian's etcd-server), all in network namespaces on the
# lab's switch (issue 14). Source it after lab.sh, and set, before lab_up:
#
#   LAB_BOXES="a b d"  LAB_EXTRA="e1 e2 e3"   (pool_lab_vars does it)
#
#   box a 192.0.2.11   box b 192.0.2.12   box d 192.0.2.13
#   etcd  e1 192.0.2.21  e2 192.0.2.22  e3 192.0.2.23  (client port 2379)
#   client c 192.0.2.50, VIP 192.0.2.100
#
# Every etcd member is started here, recorded by PID (LAB_PIDS and
# POOL_ETCD_PID) and killed by PID in lab_down.

POOL_MEMBERS="e1 e2 e3"
POOL_TTL=${POOL_TTL:-5}
POOL_PREFIX=/flip/lab/
declare -A POOL_ETCD_PID

pool_lab_vars() {
	LAB_BOXES="a b d"
	LAB_EXTRA="$POOL_MEMBERS"
}

# pool_endpoints: the client URLs of the members, comma-separated.
pool_endpoints() {
	local n out=()
	for n in $POOL_MEMBERS; do out+=("http://${LAB_ADDR[$n]}:2379"); done
	(IFS=,; echo "${out[*]}")
}

# pool_etcd_start MEMBER [existing]: starts one member (a new cluster, or
# rejoining it with its data directory).
pool_etcd_start() {
	local n=$1 state=${2:-new} m cluster=()
	for m in $POOL_MEMBERS; do cluster+=("$m=http://${LAB_ADDR[$m]}:2380"); done
	mkdir -p "$LAB_DIR/$n"
	ip netns exec "$(lab_ns "$n")" etcd --name "$n" --data-dir "$LAB_DIR/$n/data" \
		--listen-peer-urls "http://${LAB_ADDR[$n]}:2380" --initial-advertise-peer-urls "http://${LAB_ADDR[$n]}:2380" \
		--listen-client-urls "http://${LAB_ADDR[$n]}:2379" --advertise-client-urls "http://${LAB_ADDR[$n]}:2379" \
		--initial-cluster "$(IFS=,; echo "${cluster[*]}")" --initial-cluster-state "$state" \
		--initial-cluster-token "flip-lab-$LAB_ID" --heartbeat-interval 100 --election-timeout 1000 \
		>>"$LAB_DIR/$n/etcd.log" 2>&1 &
	POOL_ETCD_PID[$n]=$!
	LAB_PIDS+=($!)
}

# pool_etcdctl ARGS…: etcdctl from the client's namespace, bounded.
pool_etcdctl() {
	lab_exec c env ETCDCTL_API=3 timeout 10 etcdctl --endpoints "$(pool_endpoints)" --dial-timeout 2s --command-timeout 3s "$@"
}

# pool_etcd_healthy: every member answers and the cluster has a leader.
pool_etcd_healthy() { pool_etcdctl endpoint health >/dev/null 2>&1; }

# pool_etcd_up: the three members, and a bounded wait until they are healthy.
pool_etcd_up() {
	local n
	for n in $POOL_MEMBERS; do pool_etcd_start "$n"; done
	lab_wait 10 pool_etcd_healthy || { echo "lab: etcd did not become healthy" >&2; return 1; }
}

# pool_etcd_kill MEMBER: kill -9 one member.
pool_etcd_kill() {
	kill -9 "${POOL_ETCD_PID[$1]}" 2>/dev/null
	wait "${POOL_ETCD_PID[$1]}" 2>/dev/null
	return 0
}

# pool_etcd_leader: the member (e1…) that leads the etcd cluster now.
pool_etcd_leader() {
	local n
	for n in $POOL_MEMBERS; do
		if lab_exec c env ETCDCTL_API=3 timeout 5 etcdctl --endpoints "http://${LAB_ADDR[$n]}:2379" \
			--dial-timeout 1s --command-timeout 2s endpoint status -w json 2>/dev/null |
			grep -q '"member_id":\([0-9]*\),.*"leader":\1,'; then
			echo "$n"
			return 0
		fi
	done
	return 1
}

# pool_flip BOX [VAR=VALUE…]: flip on BOX in pool mode, hot standby by
# default (LAB_RESOURCES without a service; its stand-in started by
# pool_start).
pool_flip() {
	local box=$1; shift
	lab_flip "$box" FLIP_PRIMARY=false FLIP_ETCD_ENDPOINTS="$(pool_endpoints)" \
		FLIP_ETCD_TTL="${POOL_TTL}s" FLIP_ETCD_PREFIX="$POOL_PREFIX" "$@"
}

# pool_start [VAR=VALUE…]: etcd, then on every box its stand-in Asterisk
# (hot standby) and flip; waits until exactly one box serves.
pool_start() {
	local n
	LAB_RESOURCES=${LAB_RESOURCES:-"$LAB_VIP/24 routes fonebridge"}
	pool_etcd_up || return 1
	for n in $LAB_BOXES; do
		lab_redfone "$n"
		lab_standin "$n" || return 1
		pool_flip "$n" "$@"
	done
	lab_wait 15 pool_one_holder
}

# pool_one_holder: exactly one box holds the VIP.
pool_one_holder() { [ "$(lab_holders | wc -w)" = 1 ]; }

# pool_holder: the box that holds the VIP (empty if none or several).
pool_holder() {
	local h
	h=$(lab_holders)
	[ "$(echo "$h" | wc -w)" = 1 ] && echo "$h"
}

# pool_status BOX: flip status --json of BOX.
pool_status() {
	ip netns exec "$(lab_ns "$1")" "$LAB_BIN/flip" status --json --socket "$LAB_DIR/$1/flip.sock" 2>/dev/null
}

# pool_cut_etcd NODE [MEMBER…] / pool_join_etcd NODE: NODE's packets to and
# from the etcd members (default all; else those named) are dropped
# (nftables in NODE), the rest of the LAN stays.
pool_cut_etcd() {
	local node=$1 n set=()
	shift
	for n in ${*:-$POOL_MEMBERS}; do set+=("${LAB_ADDR[$n]}"); done
	lab_exec "$node" nft -f - <<EOF
table inet poolcut {
	chain out { type filter hook output priority 0; ip daddr { $(IFS=,; echo "${set[*]}") } drop; }
	chain in { type filter hook input priority 0; ip saddr { $(IFS=,; echo "${set[*]}") } drop; }
}
EOF
}
pool_join_etcd() { lab_exec "$1" nft delete table inet poolcut; }

# pool_others BOX: the boxes of the pool but BOX.
pool_others() { local n; for n in $LAB_BOXES; do [ "$n" = "$1" ] || echo "$n"; done; }

# pool_first_add_after MS BOX…: the first time after MS that one of the
# boxes added the VIP (empty: none).
pool_first_add_after() {
	local from=$1 n; shift
	for n in "$@"; do ev_vip "$n" | awk -v f="$from" '$2 == "add" && $1 >= f { print $1; exit }'; done | sort -n | head -1
}

# pool_first_del_after MS BOX: the first time after MS that BOX deleted the
# VIP (empty: none).
pool_first_del_after() { ev_vip "$2" | awk -v f="$1" '$2 == "del" && $1 >= f { print $1; exit }'; }

# pool_lets_go BOX: BOX does not hold the VIP.
pool_lets_go() { ! lab_holds "$1"; }

# pool_sees_leader BOX LEADER: flip status on BOX names LEADER's box.
pool_sees_leader() { pool_status "$1" | grep -q "\"name\": *\"box-$2\""; }

# pool_new_holder OLD: some box other than OLD serves the VIP alone.
pool_new_holder() { local h; h=$(pool_holder) && [ -n "$h" ] && [ "$h" != "$1" ]; }
