# netns_ipv6.sh — IPv6 VIPs end to end, sourced by netns_test.sh (which
# provides the lab, expect, fail and the helpers). Each test gives the lab
# its IPv6 addresses first (lab_ipv6); the other tests never see them.

IPV6_TESTS="ipv6_dual_stack_failover ipv6_probes_over_ipv6 ipv6_tiebreaker ipv6_switchover ipv6_switchover_with_peer"

holds_both() { lab_holds "$1" && lab_holds6 "$1"; }
neigh6_is() { [ "$(lab_client_neigh6)" = "$(lab_mac "$1")" ]; }
serving6() { lab_holds6 "$1" && lab_sipp6; }
# json_field FILE NAME: a string field of flip watch's JSON summary.
json_field() { sed -n "s/^ *\"$2\": *\"\\([^\"]*\\)\".*/\\1/p" "$1"; }
# watch6_from_vip: flip watch in the client over IPv6; its connected socket
# counts only answers whose source address is the IPv6 VIP.
watch6_from_vip() {
	lab_exec c "$LAB_BIN/flip" watch -for 300ms -json "[$LAB_VIP6]:5060" >"$LAB_DIR/c/watch6.json" 2>/dev/null &&
		grep -q '"answered": *[1-9]' "$LAB_DIR/c/watch6.json"
}
# v6_vip_flags BOX: the IPv6 VIP on BOX is usable at once (not tentative)
# and deprecated (never picked as a source on its own).
v6_vip_flags() {
	local line
	line=$(lab_exec "$1" ip -6 -o addr show dev eth0 | grep " $LAB_VIP6/64")
	case $line in *tentative*) return 1 ;; esac
	case $line in *nodad*deprecated* | *deprecated*nodad*) return 0 ;; esac
	return 1
}

# Dual stack: FLIP_RESOURCES holds an IPv4 and an IPv6 VIP. Box a dies;
# box b takes both, announces the IPv6 one with an unsolicited Neighbour
# Advertisement (the client's neighbour entry moves to b's MAC), rewrites
# both connected routes' src, and SIP answers over IPv6 through the VIP.
# flip watch over IPv6 in the client sees the switch and both MACs.
test_ipv6_dual_stack_failover() {
	LAB_RESOURCES="$LAB_VIP/24 $LAB_VIP6/64 routes fonebridge asterisk"
	lab_ipv6 || fail "IPv6 addresses"
	start_pair 1s
	local mac_a mac_b watch_pid
	mac_a=$(lab_mac a) mac_b=$(lab_mac b)
	expect "a holds the IPv6 VIP too" lab_holds6 a
	expect "a's IPv6 VIP: nodad (not tentative) and deprecated" v6_vip_flags a
	expect "a's IPv6 connected route has src = IPv6 VIP" test "$(lab_route_src6 a)" = "$LAB_VIP6"
	expect "a's IPv4 connected route has src = VIP" test "$(route_src a)" = "$LAB_VIP"
	expect "b's IPv6 connected route has b's own src" test "$(lab_route_src6 b)" = "${LAB_ADDR6[b]}"
	expect "SIP answers over IPv6 from the VIP (flip watch)" lab_wait 5 watch6_from_vip
	expect "sipp over IPv6 gets an answer" lab_wait 5 lab_sipp6
	expect "client's IPv6 neighbour entry points at a" test "$(lab_client_neigh6)" = "$mac_a"
	expect "flip watch names a's MAC" test "$(json_field "$LAB_DIR/c/watch6.json" last_mac)" = "$mac_a"

	# The drill client, over IPv6, through the failover.
	ip netns exec "$(lab_ns c)" "$LAB_BIN/flip" watch -json -until-switch -max 20s -interval 10ms \
		"[$LAB_VIP6]:5060" >"$LAB_DIR/c/watch6-failover.json" 2>/dev/null &
	watch_pid=$!
	LAB_PIDS+=("$watch_pid")
	sleep 0.5
	lab_log "power off box a"
	lab_power_off a
	expect "b holds both VIPs" lab_wait 3 holds_both b
	expect "client's IPv6 neighbour entry moved to b's MAC" lab_wait 3 neigh6_is b
	expect "client's IPv4 neighbour entry moved to b's MAC" lab_wait 3 neigh_is b
	expect "b's IPv6 VIP: nodad (not tentative) and deprecated" v6_vip_flags b
	expect "b's IPv6 connected route has src = IPv6 VIP" test "$(lab_route_src6 b)" = "$LAB_VIP6"
	expect "b's IPv4 connected route has src = VIP" test "$(route_src b)" = "$LAB_VIP"
	expect "b announced the IPv6 VIP (no announcement errors)" bash -c "! grep -q 'gratuitous ARP failed' '$LAB_DIR/b/flip.log'"
	expect "SIP answers over IPv6 from the VIP (flip watch)" lab_wait 5 watch6_from_vip
	expect "sipp over IPv6 gets an answer from b" lab_wait 5 lab_sipp6
	expect "SIP over IPv4 still answers (sipp)" lab_wait 5 sip_ok
	local i
	for i in $(seq 1 100); do
		kill -0 "$watch_pid" 2>/dev/null || break
		sleep 0.2
	done
	wait "$watch_pid" 2>/dev/null
	local w=$LAB_DIR/c/watch6-failover.json
	sed 's/^/    | /' "$w" | grep -E '"(first|last)_(responder|mac)"|"outage_ms"|"switched"'
	expect "flip watch saw the switch" grep -q '"switched": true' "$w"
	expect "flip watch: first MAC a's, last MAC b's" test "$(json_field "$w" first_mac) $(json_field "$w" last_mac)" = "$mac_a $mac_b"
	expect "flip watch: first responder a, last b" test "$(json_field "$w" first_responder) $(json_field "$w" last_responder)" = "standin-asterisk-box-a standin-asterisk-box-b"
}

# IPv6 only: the first (and only) VIP is IPv6, so the SIP probes of both
# boxes go over IPv6 from their own IPv6 addresses. Cold standby: Asterisk
# dies on a, a releases, b takes over; while b's Asterisk starts, a's
# holder check (a Neighbour Solicitation) finds b holding the VIP and a
# waits instead of taking it back.
test_ipv6_probes_over_ipv6() {
	LAB_RESOURCES="$LAB_VIP6/64 routes fonebridge asterisk"
	LAB_STANDIN_ARGS="-start-delay 2s -v"
	lab_ipv6 || fail "IPv6 addresses"
	lab_flip a FLIP_HOLD_DOWN=0
	lab_flip b
	expect "a serves over IPv6" lab_wait 15 serving6 a
	expect "a probes [VIP6]:5060 from its own IPv6 address" log_has a "probe_target=\"\\?\\[$LAB_VIP6\\]:5060\"\\? source=${LAB_ADDR6[a]}"
	expect "b probes over IPv6 too" log_has b "source=${LAB_ADDR6[b]}"
	expect "b's probes reach a's Asterisk over IPv6" lab_wait 3 grep -q "from \\[${LAB_ADDR6[b]}\\]:" "$LAB_DIR/a/state/asterisk.log"
	expect "a's IPv6 connected route has src = VIP" test "$(lab_route_src6 a)" = "$LAB_VIP6"
	lab_wait 10 flip_heard a || fail "box a's flip did not hear its own service"
	lab_log "kill Asterisk on a"
	kill -9 "$(cat "$LAB_DIR/a/state/asterisk.pid")"
	expect "a releases" lab_wait 3 log_has a 'msg="release complete"'
	expect "a's IPv6 route src back to its own address" test "$(lab_route_src6 a)" = "${LAB_ADDR6[a]}"
	expect "b takes over" lab_wait 4 lab_holds6 b
	expect "a waits for the holder it found on the wire (NDP)" lab_wait 4 log_has a 'another box still holds the VIP'
	expect "a does not take the VIP back while b's Asterisk starts (watched 3 s)" never_holds a 3 "$LAB_VIP6"
	expect "never two holders of the IPv6 VIP" ev_never_two "$LAB_VIP6"
	expect "SIP answers over IPv6 through b" lab_wait 5 lab_sipp6
	expect "client's IPv6 neighbour entry is b's" lab_wait 3 neigh6_is b
	expect "only b holds the IPv6 VIP" bash -c "! ip netns exec $(lab_ns a) ip -6 -o addr show dev eth0 | grep -q ' $LAB_VIP6/'"

	# Drift: someone deletes the IPv6 VIP on the active box. The kernel
	# keeps the connected route but clears its src (IPv4 would delete the
	# route); flip puts the VIP back and sets the src again.
	lab_log "delete the IPv6 VIP on b behind flip's back"
	lab_exec b ip addr del "$LAB_VIP6/64" dev eth0
	expect "b puts the IPv6 VIP back" lab_wait 2 log_has b "changed by someone else on the active box.*resource=$LAB_VIP6/64"
	expect "b holds the IPv6 VIP again" lab_wait 2 lab_holds6 b
	expect "b set the cleared route src back" lab_wait 2 log_has b 'changed by someone else on the active box.*resource=routes'
	expect "b's IPv6 route src is the VIP again" lab_wait 2 bash -c "[ \"\$(ip netns exec $(lab_ns b) ip -6 route show $LAB_SUBNET6 dev eth0 proto kernel | grep -o 'src [0-9a-f:]*')\" = 'src $LAB_VIP6' ]"
	expect "SIP still answers over IPv6" lab_wait 5 lab_sipp6
}

# An IPv6-only pair with an IPv6 tiebreaker (the client stands in for the
# gateway; ICMPv6 echo from the boxes' own addresses): a passive box cut off
# from everything does not take over; the active box, cut off, releases and
# the other takes over.
test_ipv6_tiebreaker() {
	LAB_RESOURCES="$LAB_VIP6/64 routes fonebridge asterisk"
	lab_ipv6 || fail "IPv6 addresses"
	lab_standin a
	lab_standin b
	lab_flip a FLIP_TIEBREAKER="${LAB_ADDR6[c]}"
	lab_flip b FLIP_TIEBREAKER="${LAB_ADDR6[c]}"
	expect "a serves over IPv6" lab_wait 15 serving6 a
	nft_isolate b
	expect "isolated passive box never takes the IPv6 VIP (watched 4 s)" never_holds b 4 "$LAB_VIP6"
	expect "a still serves" serving6 a
	lab_exec b nft delete table netdev flipcut
	expect "b hears a's Asterisk again" lab_wait 10 bash -c "ip netns exec $(lab_ns b) $LAB_BIN/flip status --json --socket $LAB_DIR/b/flip.sock | grep -q '\"consecutive_missed\": *0'"
	nft_isolate a
	expect "isolated active box releases" lab_wait 4 log_has a 'cause=isolated\|this box is cut off'
	expect "b takes over" lab_wait 4 lab_holds6 b
	expect "SIP answers over IPv6 through b" lab_wait 5 lab_sipp6
}

# ipv6_lab: an IPv6-only pair's addresses and stand-ins; the test starts
# the agents (ipv6_serving then waits for box a).
ipv6_lab() {
	LAB_RESOURCES="$LAB_VIP6/64 routes fonebridge asterisk"
	lab_ipv6 || fail "IPv6 addresses"
	lab_standin a
	lab_standin b
}
ipv6_serving() {
	lab_wait 15 serving6 a || fail "box a did not start serving over IPv6"
	lab_wait 10 flip_heard a || fail "box a's flip did not hear its own service"
	lab_wait 10 flip_heard b || fail "box b's flip did not hear the service"
}

# Switchover of an IPv6-only pair without the peer channel: a keeps the
# VIP with Asterisk stopped until b's holder check (a Neighbour
# Solicitation for the VIP) asks, then lets go; b takes over.
test_ipv6_switchover() {
	ipv6_lab
	lab_flip a
	lab_flip b
	ipv6_serving
	ctl a switchover >"$LAB_DIR/a/switchover.txt" 2>&1
	expect "switchover exits 0" test $? = 0
	sed -n 's/^outage: /    switchover outage (IPv6, no peer channel): /p' "$LAB_DIR/a/switchover.txt"
	expect "a let go when b asked (NDP)" log_has a "the other box asked who holds the VIP; releasing it.*asker=$(lab_mac b)"
	expect "b holds the IPv6 VIP" lab_holds6 b
	expect "a does not" bash -c "! ip netns exec $(lab_ns a) ip -6 -o addr show dev eth0 | grep -q ' $LAB_VIP6/'"
	expect "SIP answers over IPv6 through b" lab_wait 5 lab_sipp6
}

# The peer channel between the boxes' own IPv6 addresses.
test_ipv6_switchover_with_peer() {
	ipv6_lab
	lab_flip a FLIP_PEER="${LAB_ADDR6[b]}" FLIP_PEER_KEY="$PEER_KEY"
	lab_flip b FLIP_PEER="${LAB_ADDR6[a]}" FLIP_PEER_KEY="$PEER_KEY"
	ipv6_serving
	ctl a switchover >"$LAB_DIR/a/switchover.txt" 2>&1
	expect "switchover exits 0" test $? = 0
	sed -n 's/^outage: /    switchover outage (IPv6, peer channel): /p' "$LAB_DIR/a/switchover.txt"
	expect "b took over on a's word over IPv6" log_has b 'taking over.*released the service and handed it over'
	expect "b holds the IPv6 VIP" lab_holds6 b
	expect "SIP answers over IPv6 through b" lab_wait 5 lab_sipp6
}
