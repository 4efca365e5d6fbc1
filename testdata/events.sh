# events.sh — the lab's event timeline, sourced by lab.sh.
#
# Timing assertions in the namespace tests are made against events, never
# against polling windows: how fast this machine spawns `ip netns exec`
# must not decide a test. Two sources, both stamped by the kernel's wall
# clock as the events happen (not when a test looks):
#
#   - the address events of each box (`ip -ts monitor address`, started by
#     lab_up before any flip runs, in $LAB_DIR/BOX/addr.events), so "when
#     did b add the VIP" and "did a and b ever hold it at once" are exact;
#   - flip's own log lines (time=…, UTC, millisecond resolution).
#
# All times are Unix milliseconds. Every process started here is recorded
# in LAB_PIDS and killed by PID in lab_down.

# ev_now: the current time in Unix milliseconds.
ev_now() { date +%s%3N; }

# The awk function that turns an ISO time (2026-11-30T10:07:06.885121,
# optionally ending in Z; UTC) into Unix milliseconds, without mktime,
# which mawk lacks (days from the civil date, H. Hinnant's algorithm).
EV_AWK_MS='
function ev_ms(ts,   y, m, d, era, yoe, doy, doe, days, sec) {
	y = substr(ts, 1, 4) + 0; m = substr(ts, 6, 2) + 0; d = substr(ts, 9, 2) + 0
	sec = substr(ts, 12, 2) * 3600 + substr(ts, 15, 2) * 60 + substr(ts, 18) + 0
	if (m <= 2) y--
	era = int(y / 400); yoe = y - era * 400
	doy = int((153 * (m > 2 ? m - 3 : m + 9) + 2) / 5) + d - 1
	doe = yoe * 365 + int(yoe / 4) - int(yoe / 100) + doy
	days = era * 146097 + doe - 719468
	return int((days * 86400 + sec) * 1000 + 0.5)
}'

# ev_start_monitors: one `ip monitor address` per box, in UTC. Returns once
# both are listening: each must have reported a marker address added to
# and removed from its loopback (bounded wait).
ev_start_monitors() {
	local n i all
	for n in $LAB_BOXES; do
		: >"$LAB_DIR/$n/addr.events"
		TZ=UTC ip -n "$(lab_ns "$n")" -ts -o monitor address >>"$LAB_DIR/$n/addr.events" 2>&1 &
		LAB_PIDS+=($!)
	done
	for i in $(seq 1 100); do
		all=1
		for n in $LAB_BOXES; do
			grep -q ' 203.0.113.254/32' "$LAB_DIR/$n/addr.events" && continue
			all=0
			lab_exec "$n" ip addr add 203.0.113.254/32 dev lo 2>/dev/null
			lab_exec "$n" ip addr del 203.0.113.254/32 dev lo 2>/dev/null
		done
		[ $all = 1 ] && return 0
		sleep 0.05
	done
	echo "lab: the address monitors did not start" >&2
	return 1
}

# ev_vip BOX [ADDR]: BOX's events for ADDR (default the IPv4 VIP), one
# line each, "MS add" or "MS del", in order.
ev_vip() {
	awk -v addr=" ${2:-$LAB_VIP}/" "$EV_AWK_MS"'
		index($0, addr) {
			printf "%.0f %s\n", ev_ms(substr($1, 2, length($1) - 2)), (index($0, "] Deleted ") ? "del" : "add")
		}' "$LAB_DIR/$1/addr.events"
}

# ev_adds BOX FROM [TO] [ADDR]: how many times BOX added the VIP between
# FROM and TO (Unix ms; TO empty: no end).
ev_adds() {
	ev_vip "$1" "${4:-}" | awk -v from="$2" -v to="${3:-}" \
		'$2 == "add" && $1 >= from && (to == "" || $1 <= to) { n++ } END { print n + 0 }'
}

# ev_first BOX KIND [ADDR]: the time of BOX's first add or del of the VIP
# (empty if none); ev_last likewise for the last one.
ev_first() { ev_vip "$1" "${3:-}" | awk -v k="$2" '$2 == k { print $1; exit }'; }
ev_last() { ev_vip "$1" "${3:-}" | awk -v k="$2" '$2 == k { t = $1 } END { if (t != "") print t }'; }

# ev_log BOX PATTERN [last]: the time of the first (or last) line of BOX's
# flip log that matches the grep pattern; empty if none.
ev_log() {
	grep -- "$2" "$LAB_DIR/$1/flip.log" 2>/dev/null |
		awk -v which="${3:-first}" "$EV_AWK_MS"'
			match($0, /^time=[^ ]+/) {
				t = ev_ms(substr($0, 6, RLENGTH - 5))
				if (which == "first") { printf "%.0f\n", t; exit }
			}
			END { if (which == "last" && t != "") printf "%.0f\n", t }'
}

# ev_never_two [ADDR]: replays every box's events for the VIP in time order
# and fails, naming the moment, if two boxes ever held it at once.
ev_never_two() {
	local n
	{
		for n in $LAB_BOXES; do
			ev_vip "$n" "${1:-}" | sed "s/\$/ $n/"
		done
	} | sort -n -s -k1,1 | awk '
		{ held[$3] = ($2 == "add"); k = 0; for (b in held) k += held[b] }
		k > 1 { print "    two boxes held the VIP at " $1 " (" $3 " added it)"; bad = 1; exit }
		END { exit bad }'
}

# ev_after LATER EARLIER [MIN_MS]: LATER is at least MIN_MS (default 0)
# after EARLIER; both must be set. Says the gap either way.
ev_after() {
	local later=$1 earlier=$2 min=${3:-0}
	if [ -z "$later" ] || [ -z "$earlier" ]; then
		echo "    (missing event: later='$later' earlier='$earlier')"
		return 1
	fi
	echo "    gap: $((later - earlier)) ms (at least $min ms required)"
	[ $((later - earlier)) -ge "$min" ]
}

# ev_stays_out BOX SECONDS [ADDR]: watches SECONDS and then checks, from
# the address events, that BOX added the VIP not once since the call. For
# promises with no timer of their own ("the box that released stays
# passive while the other serves"): the events catch a hold of any length,
# however slowly the test looks.
ev_stays_out() {
	local from
	from=$(ev_now)
	sleep "$2"
	[ "$(ev_adds "$1" "$from" "" "${3:-}")" = 0 ]
}

# ev_log_min_gap BOX PATTERN: the shortest time (ms) between two successive
# lines of BOX's flip log that match PATTERN; empty with fewer than two.
ev_log_min_gap() {
	grep -- "$2" "$LAB_DIR/$1/flip.log" 2>/dev/null |
		awk "$EV_AWK_MS"'
			match($0, /^time=[^ ]+/) {
				t = ev_ms(substr($0, 6, RLENGTH - 5))
				if (prev != "" && (min == "" || t - prev < min)) min = t - prev
				prev = t
			}
			END { if (min != "") print min }'
}

# ev_within LATER EARLIER MAX_MS: LATER is at most MAX_MS after EARLIER (and
# not before it); both must be set. Says the gap. For results the test
# exists to show (issue 11's "within 3 s"), not for timing flip in general.
ev_within() {
	local later=$1 earlier=$2 most=$3
	if [ -z "$later" ] || [ -z "$earlier" ]; then
		echo "    (missing event: later='$later' earlier='$earlier')"
		return 1
	fi
	echo "    gap: $((later - earlier)) ms (at most $most ms)"
	[ $((later - earlier)) -ge 0 ] && [ $((later - earlier)) -le "$most" ]
}
