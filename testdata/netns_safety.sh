# netns_safety.sh — the fault matrix of "never two, never none", sourced by
# netns_test.sh (which provides the lab, expect, fail and the helpers).

# nft_loss NS PERCENT: drop PERCENT % of the packets in and out of eth0 in
# namespace NS (this kernel has no netem). Loopback is left alone: the
# active box's probe of its own VIP is not on the wire.
nft_loss() {
	lab_exec "$1" nft -f - <<EOF
table inet fliploss {
	chain in { type filter hook input priority 0; iifname "eth0" numgen random mod 100 < $2 drop; }
	chain out { type filter hook output priority 0; oifname "eth0" numgen random mod 100 < $2 drop; }
}
EOF
}

# nft_isolate NS: drop everything in and out of eth0 but keep the link up,
# so only a tiebreaker can tell the box it is cut off.
nft_isolate() {
	lab_exec "$1" nft -f - <<'EOF'
table netdev flipcut {
	chain in { type filter hook ingress device "eth0" priority 0; drop; }
	chain out { type filter hook egress device "eth0" priority 0; drop; }
}
EOF
}

# nft_partition: the switch stops forwarding between the two boxes (ARP
# included); both still reach the client.
nft_partition() {
	lab_exec sw nft -f - <<'EOF'
table bridge flippart {
	chain partition {
		type filter hook forward priority 0;
		iifname "pa" oifname "pb" drop;
		iifname "pb" oifname "pa" drop;
	}
}
EOF
}
nft_heal() { lab_exec sw nft delete table bridge flippart; }

transitions() { grep -cE 'msg="(taking over|releasing)"' "$LAB_DIR/$1/flip.log" 2>/dev/null; }
neigh_is() { [ "$(lab_client_neigh)" = "$(lab_mac "$1")" ]; }
# hot_pair: Asterisk running on both boxes, box a serving.
hot_pair() {
	lab_standin a
	lab_standin b
	lab_flip a "$@"
	lab_flip b "$@"
	lab_wait 10 serving a || fail "box a did not start serving"
	lab_wait 10 flip_heard a || fail "box a's flip did not hear its own service"
	lab_wait 10 flip_heard b || fail "box b's flip did not hear the service"
}

# 3.1 Packet loss does not flip: 10 % each way on both boxes and the client.
test_loss_does_not_flip() {
	hot_pair
	local before_a before_b secs=${LOSS_SECONDS:-60}
	before_a=$(transitions a) before_b=$(transitions b)
	for n in a b c; do nft_loss "$n" 10 || fail "nft loss rule in $n"; done
	lab_log "10 % loss each way for ${secs} s"
	sleep "$secs"
	echo "    false flips in ${secs} s at 10 % loss each way: $(($(transitions a) - before_a + $(transitions b) - before_b))"
	expect "no takeover or release under 10 % loss (a)" test "$(transitions a)" = "$before_a"
	expect "no takeover or release under 10 % loss (b)" test "$(transitions b)" = "$before_b"
	expect "a still the only holder" only_holder a
}

# 3.2 A flap shorter than FLIP_DEAD_AFTER flips nothing. The cable is out
# for 0.5 s (one shell in the switch's namespace, timed there); with
# FLIP_DEAD_AFTER=2s a loaded machine that stretches the flap by a whole
# second still tests the rule, and the flap's real length is checked.
test_short_flap() {
	hot_pair FLIP_DEAD_AFTER=2s
	local out
	out=$(lab_exec sw sh -c 'date +%s%3N; ip link set pa down; sleep 0.5; ip link set pa up; date +%s%3N')
	local flap=$(($(echo "$out" | tail -n 1) - $(echo "$out" | head -n 1)))
	echo "    the flap lasted at most $flap ms"
	expect "the flap was shorter than FLIP_DEAD_AFTER (2 s)" test "$flap" -lt 2000
	sleep 3
	expect "b never took over" bash -c "! grep -q 'taking over' '$LAB_DIR/b/flip.log'"
	expect "a never released" bash -c "! grep -q releasing '$LAB_DIR/a/flip.log'"
	expect "a still the only holder" only_holder a
	expect "SIP answers" sip_ok
}

# 3.3 Hung holder: a's flip frozen, its Asterisk dead, its kernel still
# answering ARP. b waits FLIP_HOLDER_WAIT, fences, takes over, and keeps
# announcing while a's kernel claims the VIP.
test_hung_holder() {
	cat >"$LAB_DIR/fence" <<EOF
#!/bin/sh
echo "\$(date +%s%3N) fence \$*" >>"$LAB_DIR/fence.log"
exit \${FENCE_EXIT:-0}
EOF
	chmod +x "$LAB_DIR/fence"
	hot_pair FLIP_HOLDER_WAIT=3s FLIP_FENCE_CMD="$LAB_DIR/fence"
	lab_sipp
	kill -STOP "${LAB_FLIP_PID[a]}"
	kill -9 "$(cat "$LAB_DIR/a/state/asterisk.pid")"
	expect "b waits for the holder first" lab_wait 6 log_has b 'another box still holds the VIP'
	expect "b takes over after FLIP_HOLDER_WAIT" lab_wait 10 lab_holds b
	# The wait starts just before b logs it; the log's millisecond stamp
	# and a busy scheduler may put the line up to 100 ms after that start.
	expect "b added the VIP at least FLIP_HOLDER_WAIT (3 s) after its first wait line" \
		ev_after "$(ev_first b add)" "$(ev_log b 'another box still holds the VIP')" 2900
	expect "the fence ran with the VIP and the holder's MAC" grep -q "fence $LAB_VIP $(lab_mac a)" "$LAB_DIR/fence.log"
	expect "the fence ran before the takeover" log_has b 'fence done; taking over'
	expect "client's neighbour entry ends on b" lab_wait 5 neigh_is b
	expect "b keeps announcing while a's kernel claims the VIP" lab_wait 4 log_has b 'another box claims the VIP; announcing it again'
	expect "SIP answers through the VIP (b)" lab_wait 5 sip_ok
	kill -CONT "${LAB_FLIP_PID[a]}"
}

# 3.3b A failed fence stops the takeover, with a clear log line.
test_fence_fails() {
	printf '#!/bin/sh\necho "no power switch answers" >&2\nexit 1\n' >"$LAB_DIR/fence"
	chmod +x "$LAB_DIR/fence"
	hot_pair FLIP_HOLDER_WAIT=2s FLIP_FENCE_CMD="$LAB_DIR/fence"
	kill -STOP "${LAB_FLIP_PID[a]}"
	kill -9 "$(cat "$LAB_DIR/a/state/asterisk.pid")"
	expect "fence failure logged with its output" lab_wait 10 log_has b 'fence failed; not taking over.*no power switch answers'
	expect "b did not take over" never_holds b 3
	kill -CONT "${LAB_FLIP_PID[a]}"
}

# 3.4 Isolated box stays out: with a tiebreaker (the client stands in for the
# gateway), a passive box cut off from everything (link still up) does not
# take over; a cut-off active box releases and the other takes over.
test_isolated_passive() {
	hot_pair FLIP_TIEBREAKER="${LAB_ADDR[c]}"
	nft_isolate b
	expect "isolated passive box never takes the VIP (6 s)" never_holds b 6
	expect "a still serves" serving a
}

test_isolated_active() {
	hot_pair FLIP_TIEBREAKER="${LAB_ADDR[c]}"
	nft_isolate a
	expect "isolated active box releases" lab_wait 6 log_has a 'cause=isolated\|this box is cut off'
	expect "b takes over" lab_wait 6 lab_holds b
	expect "SIP answers through b" lab_wait 5 sip_ok
}

# 3.5 Heal after split brain: a partition between the boxes (no tiebreaker)
# makes both hold the VIP; after healing the primary keeps it.
test_split_brain_heals() {
	hot_pair
	nft_partition
	expect "partition: b takes over too" lab_wait 5 lab_holds b
	expect "split brain: both hold the VIP" test "$(lab_holders)" = "a b"
	nft_heal
	expect "healed: only the primary (a) holds it" lab_wait 10 only_holder a
	expect "b released for split brain" log_has b 'releasing.*primary keeps it'
	expect "client's neighbour entry ends on a" lab_wait 5 neigh_is a
	expect "SIP answers" lab_wait 3 sip_ok
}

# 3.5b A cut-off active box comes back: it still held the VIP while its
# link was down; on return it sees b serving and yields.
test_cut_active_returns() {
	hot_pair
	lab_cut a
	expect "b takes over" lab_wait 5 lab_holds b
	lab_join a
	expect "returning a yields: only b holds" lab_wait 5 only_holder b
	expect "a yielded after its link came back" log_has a "link came back: yielding"
	expect "client's neighbour entry ends on b" lab_wait 5 neigh_is b
	expect "SIP answers" lab_wait 3 sip_ok
}

# 3.6 Both Asterisks dead (service start fails everywhere): no ping-pong.
# With FLIP_HOLD_DOWN=4s and 15 s watched, each box tries more than once;
# the rule is checked on flip's own timestamps: a box's attempts are at
# least FLIP_HOLD_DOWN apart, however slowly the test looks.
test_both_dead_no_ping_pong() {
	LAB_STANDIN_ARGS=""
	lab_flip a STANDIN_FAIL_START=1 FLIP_INIT_DEAD=2s FLIP_HOLD_DOWN=4s
	lab_flip b STANDIN_FAIL_START=1 FLIP_INIT_DEAD=2s FLIP_HOLD_DOWN=4s
	sleep 15
	local n box gap
	n=$(($(log_count a 'msg="taking over"') + $(log_count b 'msg="taking over"')))
	echo "    takeover attempts in 15 s: $n"
	expect "both boxes tried (the hold-down was exercised)" test "$n" -ge 2
	for box in a b; do
		gap=$(ev_log_min_gap "$box" 'msg="taking over"')
		echo "    box $box: shortest time between two attempts: ${gap:-none} ms"
		expect "box $box's attempts are at least FLIP_HOLD_DOWN (4 s) apart" test "${gap:-4000}" -ge 4000
	done
	expect "the hold-down is logged with its end" log_has a 'holding down after this box.s own failure'
	expect "nobody holds the VIP between attempts" lab_wait 5 bash -c "[ -z \"\$(ip netns exec $(lab_ns a) ip -4 -o addr show dev eth0 | grep ' $LAB_VIP/')\$(ip netns exec $(lab_ns b) ip -4 -o addr show dev eth0 | grep ' $LAB_VIP/')\" ]"
}

# 3.7 Someone removes the VIP or rewrites the route on the active box: flip
# puts it back (netlink subscription) and announces again.
test_drift_repaired() {
	hot_pair
	lab_exec a ip addr del "$LAB_VIP/24" dev eth0
	expect "VIP put back" lab_wait 5 lab_holds a
	expect "connected route back with src = VIP" lab_wait 5 bash -c "[ \"\$(ip netns exec $(lab_ns a) ip -4 route show $LAB_SUBNET dev eth0 proto kernel | grep -o 'src [0-9.]*')\" = 'src $LAB_VIP' ]"
	expect "repair logged" log_has a "changed by someone else on the active box.*resource=$LAB_VIP/24 problem=.VIP $LAB_VIP is not on eth0"
	lab_exec a ip route change "$LAB_SUBNET" dev eth0 proto kernel scope link src "${LAB_ADDR[a]}"
	expect "route src set back to the VIP" lab_wait 5 bash -c "[ \"\$(ip netns exec $(lab_ns a) ip -4 route show $LAB_SUBNET dev eth0 proto kernel | grep -o 'src [0-9.]*')\" = 'src $LAB_VIP' ]"
	expect "route repair logged" log_has a 'changed by someone else on the active box.*resource=routes'
	expect "re-announced" log_has a 'repaired the active box'
	expect "SIP answers" sip_ok
	expect "b never took over" bash -c "! grep -q 'taking over' '$LAB_DIR/b/flip.log'"
}

# 3.8 Crash at every step: flip on box a kills itself (SIGKILL) right after
# one takeover phase; restarted, it finishes the takeover from the journal:
# everything held, routes matching, fonulator and Asterisk started once.
crash_during_takeover() {
	local phase=$1
	LAB_STANDIN_ARGS="-start-delay 1s"
	lab_flip a FLIP_DEBUG_CRASH_AFTER="$phase"
	lab_flip b
	expect "flip killed itself after $phase" lab_wait 5 bash -c "! kill -0 ${LAB_FLIP_PID[a]} 2>/dev/null"
	{ wait "${LAB_FLIP_PID[a]}"; } 2>/dev/null
	expect "journal says: takeover in progress" grep -q '"op":"takeover"' "$LAB_DIR/a/state.json"
	lab_flip a
	expect "restarted flip asks the wire, then finishes the takeover" lab_wait 5 log_has a 'flip stopped during a takeover; no other box holds the VIP: finishing it'
	expect "a serves" lab_wait 8 serving a
	expect "route src = VIP" test "$(route_src a)" = "$LAB_VIP"
	expect "fonulator ran exactly once" test "$(fonulator_runs a)" = 1
	expect "Asterisk started exactly once" test "$(calls a start)" = 1
	expect "journal says: active" lab_wait 2 grep -q '"op":"active"' "$LAB_DIR/a/state.json"
	expect "only a holds" only_holder a
}
test_crash_after_vip() { crash_during_takeover "$LAB_VIP/24"; }
test_crash_after_routes() { crash_during_takeover routes; }
test_crash_after_announce() { crash_during_takeover announce; }
test_crash_after_fonebridge() { crash_during_takeover fonebridge; }
test_crash_after_asterisk() { crash_during_takeover asterisk; }

# 3.8b Crash during a release (after Asterisk was stopped): the restarted
# flip finishes the release (route src back, then the VIP), b takes over.
test_crash_during_release() {
	LAB_STANDIN_ARGS="-start-delay 1s"
	lab_flip a FLIP_DEBUG_CRASH_AFTER=stop:asterisk
	lab_flip b
	lab_wait 10 serving a || fail "box a did not start serving"
	lab_wait 10 flip_heard a || fail "box a's flip did not hear its own service"
	kill -9 "$(cat "$LAB_DIR/a/state/asterisk.pid")"
	expect "flip killed itself during the release" lab_wait 5 bash -c "! kill -0 ${LAB_FLIP_PID[a]} 2>/dev/null"
	{ wait "${LAB_FLIP_PID[a]}"; } 2>/dev/null
	expect "journal says: release in progress" grep -q '"op":"release"' "$LAB_DIR/a/state.json"
	lab_flip a
	expect "restarted flip finishes the release" lab_wait 5 log_has a 'flip stopped during a release; finishing it'
	expect "a gave the VIP up" lab_wait 3 bash -c "! ip netns exec $(lab_ns a) ip -4 -o addr show dev eth0 | grep -q ' $LAB_VIP/'"
	expect "a's route src is its own" test "$(route_src a)" = "${LAB_ADDR[a]}"
	expect "b takes over" lab_wait 5 lab_holds b
	expect "exactly one holder at the end" lab_wait 5 only_holder b
}

# 3.5c Issue 10, defect 1, end to end: an admin stops flip on the active
# primary (SIGTERM leaves the VIP) and its Asterisk stays down past
# FLIP_HOLDER_WAIT; b takes over past the "hung" holder. Then Asterisk and
# flip come back on a: a resumes holding the VIP, and before the fix both
# kept it for ever. Now a, whose flip was not running, yields.
test_split_brain_after_restart() {
	hot_pair FLIP_HOLDER_WAIT=3s
	kill -TERM "${LAB_FLIP_PID[a]}"
	{ wait "${LAB_FLIP_PID[a]}"; } 2>/dev/null
	kill -9 "$(cat "$LAB_DIR/a/state/asterisk.pid")"
	expect "b takes over past a's kernel after FLIP_HOLDER_WAIT" lab_wait 10 log_has b 'holder did not release within FLIP_HOLDER_WAIT'
	expect "b holds the VIP" lab_wait 5 lab_holds b
	expect "both hold it (a's kernel still has it)" test "$(lab_holders)" = "a b"
	lab_log "Asterisk and flip back on a"
	lab_standin a
	local back
	back=$(ev_now)
	lab_flip a FLIP_HOLDER_WAIT=3s
	expect "a resumes as active (it holds the VIP)" lab_wait 5 log_has a 'role=active vips_held=1'
	expect "a yields: its flip was not running while it held the VIP" lab_wait 10 log_has a 'releasing.*was not running for a while'
	expect "exactly one holder, b" lab_wait 5 only_holder b
	local gone
	gone=$(ev_last a del)
	echo "    a let go $((gone - back)) ms after its flip started again"
	expect "a let go after its flip came back, not before" ev_after "$gone" "$back"
	expect "and stays out (watched 3 s)" never_holds a 3
	expect "client's neighbour entry on b" lab_wait 5 neigh_is b
	expect "SIP answers through the VIP" lab_wait 5 sip_ok
}

# peer_pair: a hot pair with the peer channel; box a serves, and flip on
# both boxes has heard the service.
peer_pair() {
	lab_standin a
	lab_standin b
	# shellcheck disable=SC2046
	lab_flip a $(peer_env a)
	# shellcheck disable=SC2046
	lab_flip b $(peer_env b)
	lab_wait 10 serving a || fail "box a did not start serving"
	lab_wait 10 flip_heard a || fail "box a's flip did not hear its own service"
	lab_wait 10 flip_heard b || fail "box b's flip did not hear the service"
}

PEER_KEY=flip-test-peer-key-0123456789
peer_env() { # peer_env BOX: the peer channel settings for BOX
	local other=b
	[ "$1" = b ] && other=a
	echo "FLIP_PEER=${LAB_ADDR[$other]} FLIP_PEER_KEY=$PEER_KEY"
}

# 3.3c Issue 11: a hung holder with the peer channel. a's flip and
# Asterisk are frozen (SIGSTOP), its kernel still answers ARP for the VIP.
# b hears no heartbeat and takes over without waiting FLIP_HOLDER_WAIT (61 s
# here): it serves within 3 s. When a wakes, it hears b's heartbeat and
# yields: one holder, no second outage.
test_hung_holder_heartbeats() {
	peer_pair
	local hung
	hung=$(ev_now)
	kill -STOP "${LAB_FLIP_PID[a]}" "$(cat "$LAB_DIR/a/state/asterisk.pid")"
	expect "b takes over: no heartbeat from a's flip" lab_wait 5 log_has b "the holder's flip is gone"
	expect "b added the VIP within 3 s of the hang" ev_within "$(ev_first b add)" "$hung" 3000
	expect "client's neighbour entry moves to b" lab_wait 5 neigh_is b
	expect "SIP answers through b" lab_wait 5 sip_ok
	kill -CONT "$(cat "$LAB_DIR/a/state/asterisk.pid")" "${LAB_FLIP_PID[a]}"
	expect "a wakes and yields (b's heartbeat or its conflict check, whichever comes first)" lab_wait 5 log_has a 'releasing.*was not running for a while'
	expect "exactly one holder, b" lab_wait 5 only_holder b
	expect "client's neighbour entry stays on b" neigh_is b
	expect "SIP still answers" sip_ok
}

# 3.3c' Issue 11: Asterisk killed on the active box with the peer channel.
# b's heartbeats say it could take over, so a confirms its first refusal at
# once (three refusals in a row, 10 ms apart) instead of waiting
# FLIP_REFUSED_AFTER, releases, and tells b, which takes over on that word
# (its own 300 ms of refusals would come later). How fast: bench/failover.sh
# (BENCHMARKS.md), not a timed assertion here.
test_asterisk_dies_with_peer() {
	peer_pair
	lab_log "kill Asterisk on a"
	kill -9 "$(cat "$LAB_DIR/a/state/asterisk.pid")"
	expect "a releases on refusals confirmed at once, the other box being ready" lab_wait 5 log_has a 'refusals in a row.*the other box is ready to take over'
	expect "b takes over on a's word" lab_wait 5 log_has b 'released the service and handed it over'
	expect "b holds the VIP" lab_wait 5 lab_holds b
	expect "SIP answers through b" lab_wait 5 sip_ok
	expect "client's neighbour entry moves to b" lab_wait 5 neigh_is b
	expect "never two holders: b added the VIP after a deleted it" ev_never_two
	expect "only b holds" only_holder b
}

# 3.3d Issue 11: two paths for the peer channel (the LAN and a crossover
# cable). Cutting either one moves nothing (a warning names it); with the
# LAN cut between the boxes but the crossover up, b's probes and ARP are
# silent, yet a's heartbeats say it holds the VIP and its service answers:
# b does not take over, and the clients keep being served by a.
test_peer_paths() {
	lab_crossover || fail "crossover cable"
	lab_standin a
	lab_standin b
	lab_flip a FLIP_PEER="${LAB_ADDR[b]} ${LAB_XO[b]}" FLIP_PEER_KEY="$PEER_KEY"
	lab_flip b FLIP_PEER="${LAB_ADDR[a]} ${LAB_XO[a]}" FLIP_PEER_KEY="$PEER_KEY"
	lab_wait 10 serving a || fail "box a did not start serving"
	lab_wait 10 flip_heard b || fail "box b's flip did not hear the service"
	expect "b's status shows a round trip on the LAN path" lab_wait 5 bash -c "ip netns exec $(lab_ns b) $LAB_BIN/flip status --json --socket $LAB_DIR/b/flip.sock | tr -d ' \\n' | grep -q '\"rtt_ms\":[0-9]'"
	expect "b's status shows two delivering paths" lab_wait 5 bash -c "ip netns exec $(lab_ns b) $LAB_BIN/flip status --json --socket $LAB_DIR/b/flip.sock | tr -d ' \n' | grep -q '\"remote\":\"${LAB_XO[a]}\",\"last_heard\":\"[^\"]*\",\"heard_last_minute\":[1-9][0-9]*,\"silent\":false'"
	local from
	from=$(ev_now)
	lab_log "cut the crossover cable"
	lab_exec a ip link set xo0 down
	expect "b warns that one path is silent" lab_wait 5 log_has b 'peer path silent; the other paths still deliver'
	expect "b does not take over (watched 3 s)" never_holds b 3
	lab_exec a ip link set xo0 up
	expect "b says the crossover delivers again" lab_wait 5 log_has b 'peer path delivers again'
	lab_log "cut the LAN between the boxes, crossover up"
	nft_partition
	expect "b does not take over while a's heartbeats say it serves (watched 4 s)" never_holds b 4
	expect "the clients are still served (sipp)" sip_ok
	nft_heal
	expect "a never released, b never took over" test "$(ev_adds b "$from")/$(transitions a)" = "0/1"
	expect "only a holds" only_holder a
}

# 3.3e Issue 11: a storm of 10,000 junk datagrams at box a's peer port,
# from the client. a refuses them, counts them (flip status), logs a bounded
# number of lines, and keeps deciding: its Asterisk killed during the storm
# is noticed, and b takes over.
test_peer_junk_storm() {
	peer_pair
	lab_exec c bash -c 'for i in $(seq 10000); do printf "junk %d" "$i" >/dev/udp/'"${LAB_ADDR[a]}"'/5999; done' &
	local storm=$!
	LAB_PIDS+=("$storm")
	sleep 0.2
	kill -9 "$(cat "$LAB_DIR/a/state/asterisk.pid")"
	expect "a releases during the storm" lab_wait 5 log_has a 'msg="release complete"'
	expect "b takes over" lab_wait 5 lab_holds b
	{ wait "$storm"; } 2>/dev/null
	local refused lines
	refused=$(ip netns exec "$(lab_ns a)" "$LAB_BIN/flip" status --json --socket "$LAB_DIR/a/flip.sock" | tr -d ' \n' | sed -n 's/.*"peer_refused":\([0-9]*\).*/\1/p')
	lines=$(log_count a 'peer datagrams refused')
	echo "    refused datagrams counted: ${refused:-0}; log lines about them: $lines"
	expect "the junk was counted" test "${refused:-0}" -ge 1000
	expect "at most 3 log lines about it (one per 10 s)" test "$lines" -le 3
	expect "SIP answers through b" lab_wait 5 sip_ok
}

# 3.7b Issue 12, item 2: the passive box's VIP interface is deleted and
# created again (ifdown/ifup of a VLAN or a bond gives it a new index). flip
# follows it by name: when the active box then dies, b takes over.
test_recreated_interface() {
	hot_pair
	lab_log "delete and re-create b's eth0"
	lab_exec b ip link del eth0
	ip link add eth0 netns "$(lab_ns b)" type veth peer name pb netns "$(lab_ns sw)"
	lab_exec sw ip link set pb master br0 up
	lab_exec b sysctl -qw net.ipv4.conf.eth0.promote_secondaries=1
	lab_exec b ip addr add "${LAB_ADDR[b]}/24" dev eth0
	lab_exec b ip link set eth0 up
	expect "b saw the new eth0 carry" lab_wait 5 log_has b 'link changed.*iface=eth0 all_vip_links_up=true'
	lab_wait 10 flip_heard b || fail "box b's flip does not hear the service again"
	lab_power_off a
	expect "b takes over when a dies" lab_wait 5 lab_holds b
	expect "SIP answers through b" lab_wait 5 sip_ok
}

# 3.9 Failback on request only: FLIP_FAILBACK=true on the primary; after it
# has been a healthy passive for FLIP_FAILBACK_DELAY, the active box releases
# first, tells it over the peer channel, and only then the primary takes over.
test_failback() {
	lab_standin a
	lab_standin b
	# shellcheck disable=SC2046
	lab_flip a $(peer_env a)
	# shellcheck disable=SC2046
	lab_flip b $(peer_env b)
	lab_wait 10 serving a || fail "box a did not start serving"
	lab_power_off a
	expect "b takes over from the dead primary" lab_wait 4 lab_holds b
	lab_wait 5 sip_ok
	lab_join a
	lab_standin a
	: >"$LAB_DIR/a/flip.log"
	lab_exec c "$LAB_BIN/flip" watch -interval 10ms -until-switch -max 30s -json "$LAB_VIP" >"$LAB_DIR/c/failback.json" 2>/dev/null &
	local watch=$!
	# shellcheck disable=SC2046
	lab_flip a $(peer_env a) FLIP_FAILBACK=true FLIP_FAILBACK_DELAY=2s
	expect "b releases because the primary asked" lab_wait 10 log_has b 'releasing.*failback: the primary'
	expect "a takes over after b said it released" lab_wait 3 log_has a 'taking over.*released the service and handed it over'
	expect "only a holds at the end" lab_wait 3 only_holder a
	{ wait "$watch"; } 2>/dev/null
	echo "    failback outage seen by the client: $(grep -o '"outage_ms": *[0-9.]*' "$LAB_DIR/c/failback.json")"
	expect "the client saw the switch to a" grep -q '"last_responder": *"standin-asterisk-box-a"' "$LAB_DIR/c/failback.json"
	sleep 3
	expect "exactly one failback: b released once, and nothing flipped after" test "$(grep -c 'msg=releasing.*failback: the primary' "$LAB_DIR/b/flip.log")/$(lab_holders)" = "1/a"
}

SAFETY_TESTS="recreated_interface hung_holder_heartbeats asterisk_dies_with_peer peer_paths peer_junk_storm split_brain_after_restart failback crash_after_vip crash_after_routes crash_after_announce crash_after_fonebridge crash_after_asterisk crash_during_release short_flap hung_holder fence_fails isolated_passive isolated_active split_brain_heals cut_active_returns both_dead_no_ping_pong drift_repaired loss_does_not_flip"
