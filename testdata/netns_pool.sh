# netns_pool.sh — pool mode (issue 14): three boxes, a real three-member
# etcd cluster (testdata/pool_lab.sh), hot standby (every box runs its
# stand-in Asterisk; flip moves the VIP, the routes and the foneBRIDGE).
# Sourced by netns_test.sh. Timing promises are checked against the
# boxes' address events (events.sh), never against polling.
#
# Without etcd the tests say so and pass (SKIP), or fail under CI=true.

POOL_TESTS="pool_leader_asterisk_dies pool_leader_box_dies"

# pool_skip: true (after saying why) when etcd cannot run here.
pool_skip() {
	command -v etcd >/dev/null && command -v etcdctl >/dev/null && return 1
	if [ "${CI:-}" = true ]; then
		fail "cannot run under CI: etcd is not installed (apt-get install etcd-server etcd-client)"
	else
		echo "    SKIP: etcd is not installed (apt-get install etcd-server etcd-client)"
	fi
	return 0
}

# pool_others BOX: the boxes of the pool but BOX.
pool_others() { local n; for n in $LAB_BOXES; do [ "$n" = "$1" ] || echo "$n"; done; }

# pool_first_add_after MS BOX…: the first time after MS that one of the
# boxes added the VIP (empty: none).
pool_first_add_after() {
	local from=$1 n; shift
	for n in "$@"; do ev_vip "$n" | awk -v f="$from" '$2 == "add" && $1 >= f { print $1; exit }'; done | sort -n | head -1
}

# pool_new_holder OLD: some box other than OLD serves the VIP alone.
pool_new_holder() { local h; h=$(pool_holder) && [ -n "$h" ] && [ "$h" != "$1" ]; }

# The leader's Asterisk dies: it releases and resigns, the next box wins in
# milliseconds; the new holder must serve within 1 s of the kill.
test_pool_leader_asterisk_dies() {
	pool_skip && return
	pool_start || { fail "the pool did not come up with one holder"; return; }
	local old killed added new
	old=$(pool_holder)
	expect "flip on $old saw its Asterisk answer" lab_wait 5 flip_heard "$old"
	killed=$(ev_now)
	kill -9 "$(cat "$LAB_DIR/$old/state/asterisk.pid")"
	expect "another box holds the VIP" lab_wait 5 pool_new_holder "$old"
	new=$(pool_holder)
	# shellcheck disable=SC2046
	added=$(pool_first_add_after "$killed" $(pool_others "$old"))
	expect "the new holder added the VIP within 1 s of the kill" ev_within "$added" "$killed" 1000
	expect "$old released for its own service" log_has "$old" 'releasing.*own service'
	expect "$new won the election" log_has "$new" 'won the election'
	expect "sipp gets an answer through the VIP" sip_ok
	expect "the client's neighbour entry is on $new" lab_wait 5 neigh_is "$new"
	expect "never two holders" ev_never_two
}

# The leader's box dies (cable cut, processes killed): its lease runs out
# after the TTL and the next box wins: a new holder within TTL + 1 s.
test_pool_leader_box_dies() {
	pool_skip && return
	pool_start || { fail "the pool did not come up with one holder"; return; }
	local old died added
	old=$(pool_holder)
	died=$(ev_now)
	lab_power_off "$old"
	expect "another box holds the VIP" lab_wait $((POOL_TTL + 5)) pool_new_holder "$old"
	# shellcheck disable=SC2046
	added=$(pool_first_add_after "$died" $(pool_others "$old"))
	expect "the new holder added the VIP within TTL + 1 s" ev_within "$added" "$died" $(((POOL_TTL + 1) * 1000))
	expect "sipp gets an answer through the VIP" sip_ok
	expect "never two holders" ev_never_two
}
