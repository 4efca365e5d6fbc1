# lab.sh — a two-box Asterisk pair and a client in network namespaces, for
# the end-to-end tests (netns_test.sh) and the demo (demo.sh). Source it.
#
# Topology, all TEST-NET, joined only to each other through a bridge that
# lives in its own namespace (nothing touches the root namespace):
#
#   box a  192.0.2.11  eth0 ─┐
#   box b  192.0.2.12  eth0 ─┼─ br0 (namespace "sw")
#   client 192.0.2.50  eth0 ─┘
#   VIP    192.0.2.100/24
#
# Every process the lab starts is recorded by PID and killed by PID in
# lab_down; the namespaces are deleted there too (call it from a trap).
#
# A pool (issue 14, testdata/pool_lab.sh) sets LAB_BOXES="a b d" (box d
# 192.0.2.13) and LAB_EXTRA="e1 e2 e3" (etcd members, 192.0.2.21–23) before
# lab_up: every box and node gets its own namespace on the same switch.

LAB_VIP=192.0.2.100
LAB_SUBNET=192.0.2.0/24
declare -A LAB_ADDR=([a]=192.0.2.11 [b]=192.0.2.12 [d]=192.0.2.13 [c]=192.0.2.50
	[e1]=192.0.2.21 [e2]=192.0.2.22 [e3]=192.0.2.23)
LAB_BOXES=${LAB_BOXES:-a b}
LAB_EXTRA=${LAB_EXTRA:-}
# lab_nodes: every namespace on the switch: the boxes, the client, the rest.
lab_nodes() { echo "$LAB_BOXES c $LAB_EXTRA"; }
LAB_ID=${LAB_ID:-$$}
LAB_PIDS=()
# shellcheck source=testdata/events.sh
source "$(dirname "${BASH_SOURCE[0]}")/events.sh"
# shellcheck source=testdata/lab_service.sh
source "$(dirname "${BASH_SOURCE[0]}")/lab_service.sh"

lab_ns() { echo "flip$LAB_ID-$1"; }
lab_exec() { local n=$1; shift; ip netns exec "$(lab_ns "$n")" "$@"; }

# lab_up DIR: builds the namespaces; DIR holds logs and state.
lab_up() {
	LAB_DIR=$1
	mkdir -p "$LAB_DIR"
	ip netns add "$(lab_ns sw)"
	lab_exec sw ip link add br0 type bridge
	lab_exec sw ip link set br0 up
	lab_exec sw ip link set lo up
	local n
	for n in $(lab_nodes); do
		ip netns add "$(lab_ns "$n")"
		ip link add eth0 netns "$(lab_ns "$n")" type veth peer name "p$n" netns "$(lab_ns sw)"
		lab_exec sw ip link set "p$n" master br0 up
		lab_exec "$n" ip link set lo up
		lab_exec "$n" ip addr add "${LAB_ADDR[$n]}/24" dev eth0
		lab_exec "$n" ip link set eth0 up
		mkdir -p "$LAB_DIR/$n"
	done
	# The boxes' kernels must answer ARP only for addresses they hold.
	for n in $LAB_BOXES; do
		lab_exec "$n" sysctl -qw net.ipv4.conf.all.arp_ignore=1 net.ipv4.conf.eth0.promote_secondaries=1
	done
	lab_wait_dad || return 1
	ev_start_monitors
}

# lab_wait_dad waits (bounded) until every node's link is up.
lab_wait_dad() {
	local i n down
	for i in $(seq 1 50); do
		down=0
		for n in $(lab_nodes); do
			[ "$(lab_exec "$n" cat /sys/class/net/eth0/operstate)" = up ] || down=1
		done
		[ $down = 0 ] && return 0
		sleep 0.1
	done
	echo "lab: links did not come up" >&2
	return 1
}

lab_down() {
	local p n round
	{
		for p in "${LAB_PIDS[@]}"; do
			kill -9 "$p"
		done
		# The services flip started, by their pidfiles. A service command
		# that flip ran just before it was killed (its own process group)
		# may still be starting its daemon and writing the pidfile: look
		# again, three rounds 0.2 s apart.
		for round in 1 2 3; do
			for n in $LAB_BOXES; do
				for p in "$LAB_DIR/$n"/state/*.pid; do
					[ -f "$p" ] && kill -9 "$(cat "$p")"
				done
			done
			[ "$round" = 3 ] || sleep 0.2
		done
		for p in "${LAB_PIDS[@]}"; do
			wait "$p"
		done
	} 2>/dev/null
	LAB_PIDS=()
	for n in $(lab_nodes) sw; do
		ip netns del "$(lab_ns "$n")" 2>/dev/null
	done
	return 0
}

# lab_flip BOX [VAR=VALUE…]: starts flip on BOX with the lab's defaults,
# overridden by the given variables; its PID goes to LAB_FLIP_PID[BOX].
declare -A LAB_FLIP_PID
lab_flip() {
	local box=$1; shift
	local primary=false
	[ "$box" = a ] && primary=true
	# Not through lab_exec: $! must be flip's own PID (ip netns exec and env
	# exec into it), not a subshell's.
	ip netns exec "$(lab_ns "$box")" env -i PATH="$PATH" TZ=UTC \
		FLIP_NAME="box-$box" \
		FLIP_RESOURCES="${LAB_RESOURCES:-$LAB_VIP/24 routes fonebridge asterisk}" \
		FLIP_PRIMARY="$primary" \
		FLIP_SERVICE_CMD="$(lab_service_cmd) {action} {name}" \
		FLIP_FONULATOR="$LAB_ROOT/testdata/fonulator" \
		FLIP_FONEBRIDGE_CONF="$LAB_DIR/$box/redfone.conf" \
		FLIP_INIT_DEAD="${LAB_INIT_DEAD:-30s}" \
		FLIP_START_TIMEOUT="${LAB_START_TIMEOUT:-60s}" \
		FLIP_STATE_FILE="$LAB_DIR/$box/state.json" \
		FLIP_CONTROL_SOCKET="$LAB_DIR/$box/flip.sock" \
		FONULATOR_LOG="$LAB_DIR/$box/fonulator.log" \
		STANDIN_STATE_DIR="$LAB_DIR/$box/state" \
		STANDIN_BIN="$LAB_BIN/standin-asterisk" \
		STANDIN_ARGS="-name standin-asterisk-box-$box ${LAB_STANDIN_ARGS:-}" \
		"$@" \
		"$LAB_BIN/flip" >>"$LAB_DIR/$box/flip.log" 2>&1 &
	LAB_FLIP_PID[$box]=$!
	LAB_PIDS+=($!)
}

# lab_redfone BOX: writes the box's redfone.conf (as the foneBRIDGE's
# installer would, with some other MAC in server=).
lab_redfone() {
	cat >"$LAB_DIR/$1/redfone.conf" <<'EOF'
[globals]
fb=203.0.113.5
port=1
server=00:00:5e:00:53:01
priorities=0,0,0,0

[span1]
framing=esf
encoding=b8zs
EOF
}

# lab_standin BOX ARGS…: starts the stand-in Asterisk on BOX directly (hot
# standby), through the same service script flip uses.
lab_standin() {
	local box=$1; shift
	lab_exec "$box" env STANDIN_STATE_DIR="$LAB_DIR/$box/state" STANDIN_BIN="$LAB_BIN/standin-asterisk" \
		STANDIN_ARGS="-name standin-asterisk-box-$box $*" "$(lab_service_cmd)" start asterisk
}

# lab_crossover: a second cable straight between the boxes (veth xo0,
# 198.51.100.11/24 on a and .12/24 on b), a second path for the peer
# channel, as a crossover cable or a second VLAN would be.
declare -A LAB_XO=([a]=198.51.100.11 [b]=198.51.100.12)
lab_crossover() {
	ip link add xo0 netns "$(lab_ns a)" type veth peer name xo0 netns "$(lab_ns b)" || return 1
	local n
	for n in a b; do
		lab_exec "$n" ip addr add "${LAB_XO[$n]}/24" dev xo0 || return 1
		lab_exec "$n" ip link set xo0 up || return 1
	done
}

lab_mac() { lab_exec "$1" cat /sys/class/net/eth0/address; }

# lab_holds BOX: true if BOX has the VIP.
lab_holds() { lab_exec "$1" ip -4 -o addr show dev eth0 | grep -q " $LAB_VIP/"; }

# lab_holders: prints which boxes hold the VIP ("a", "b", "a b" or "").
lab_holders() {
	local out=() n
	for n in $LAB_BOXES; do lab_holds "$n" && out+=("$n"); done
	echo "${out[*]}"
}

# lab_wait SECONDS CMD…: polls CMD every 50 ms until it succeeds or time is
# up. It waits for an event; it does not time flip (bench/ does that), so
# the bound is stretched by LAB_WAIT_SLACK (default 3): a loaded machine
# that runs each `ip netns exec` slowly must not fail a test.
LAB_WAIT_SLACK=${LAB_WAIT_SLACK:-3}
lab_wait() {
	local limit=$(($1 * LAB_WAIT_SLACK)); shift
	local end=$((SECONDS + limit + 1)) i
	for i in $(seq 1 $((limit * 20 + 1))); do
		"$@" && return 0
		[ $SECONDS -ge $end ] && break
		sleep 0.05
	done
	return 1
}

# lab_cut BOX / lab_join BOX: unplug and replug a box's cable at the switch.
lab_cut() { lab_exec sw ip link set "p$1" down; }
lab_join() { lab_exec sw ip link set "p$1" up; }

# lab_power_off BOX: the box dies: cable cut, every process of it killed,
# and (like a reboot) its addresses back to the boot configuration.
lab_power_off() {
	local box=$1 p
	lab_cut "$box"
	{
		kill -9 "${LAB_FLIP_PID[$box]}"
		wait "${LAB_FLIP_PID[$box]}"
	} 2>/dev/null
	for p in "$LAB_DIR/$box"/state/*.pid; do
		[ -f "$p" ] && kill -9 "$(cat "$p")" 2>/dev/null && rm -f "$p"
	done
	lab_exec "$box" ip addr del "$LAB_VIP/24" dev eth0 2>/dev/null
	lab_exec "$box" ip addr del "$LAB_VIP6/64" dev eth0 2>/dev/null # if lab_ipv6 gave it one
	rm -f "$LAB_DIR/$box/state.json" # /run is tmpfs: a reboot clears it
	return 0
}

# lab_client_neigh: the client's neighbour entry (MAC) for the VIP.
lab_client_neigh() { lab_exec c ip neigh show "$LAB_VIP" dev eth0 | awk '{for(i=1;i<=NF;i++) if($i=="lladdr") print $(i+1)}'; }

# lab_sipp: the independent witness: sipp in the client sends one OPTIONS to
# the VIP and must get an answer.
lab_sipp() {
	(cd "$LAB_DIR/c" && lab_exec c timeout 20 sipp -sf "$LAB_ROOT/testdata/sipp-options.xml" \
		-i "${LAB_ADDR[c]}" -bind_local -p 5070 -m 1 -timeout 10s -timeout_error -recv_timeout 3000 \
		"$LAB_VIP:5060" >sipp.out 2>&1)
}

lab_log() { printf '%s %s\n' "$(date +%H:%M:%S.%3N)" "$*"; }

# --- IPv6 (dual stack), for the tests that call lab_ipv6 ------------------
#
#   box a  2001:db8::11/64   box b  2001:db8::12/64   client 2001:db8::50/64
#   VIP    2001:db8::100/64
#
# The other tests never call lab_ipv6: their lab has only the link-local
# IPv6 addresses every interface gets, as before.

LAB_VIP6=2001:db8::100
LAB_SUBNET6=2001:db8::/64
declare -A LAB_ADDR6=([a]=2001:db8::11 [b]=2001:db8::12 [c]=2001:db8::50)

# lab_ipv6: gives the boxes and the client their IPv6 addresses. They are
# added without duplicate address detection (nodad, and accept_dad=0 for
# anything added later), as if the boxes had been up for a while: an
# address under DAD is tentative for about a second and nothing can bind to
# it. The link-local addresses that came with the link stay as the kernel
# made them (tentative for a second): flip needs none of them.
lab_ipv6() {
	local n
	for n in a b c; do
		lab_exec "$n" sysctl -qw net.ipv6.conf.all.accept_dad=0 net.ipv6.conf.default.accept_dad=0 \
			net.ipv6.conf.eth0.accept_dad=0 || return 1
		lab_exec "$n" ip -6 addr add "${LAB_ADDR6[$n]}/64" dev eth0 nodad || return 1
	done
}

# lab_holds6 BOX: true if BOX has the IPv6 VIP.
lab_holds6() { lab_exec "$1" ip -6 -o addr show dev eth0 | grep -q " $LAB_VIP6/"; }

# lab_route_src6 BOX: the src of BOX's IPv6 connected route (empty: none).
lab_route_src6() {
	lab_exec "$1" ip -6 route show "$LAB_SUBNET6" dev eth0 proto kernel | sed -n 's/.* src \([0-9a-f:]*\).*/\1/p'
}

# lab_client_neigh6: the client's IPv6 neighbour entry (MAC) for the VIP.
lab_client_neigh6() { lab_exec c ip -6 neigh show "$LAB_VIP6" dev eth0 | awk '{for(i=1;i<=NF;i++) if($i=="lladdr") print $(i+1)}'; }

# lab_sipp6: sipp in the client sends one OPTIONS to [VIP6]:5060 over IPv6.
lab_sipp6() {
	(cd "$LAB_DIR/c" && lab_exec c timeout 20 sipp -sf "$LAB_ROOT/testdata/sipp-options.xml" \
		-i "${LAB_ADDR6[c]}" -bind_local -p 5070 -m 1 -timeout 10s -timeout_error -recv_timeout 3000 \
		"[$LAB_VIP6]:5060" >sipp6.out 2>&1)
}
