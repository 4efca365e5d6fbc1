# netns_kamailio.sh — the core failover scenarios with a real SIP server,
# Kamailio (Debian's kamailio package, testdata/kamailio.cfg), on the boxes
# instead of the stand-in Asterisk (issue 13). Sourced by netns_test.sh
# (the lab, expect, fail and the helpers) after netns_safety.sh (hot_pair)
# and netns_operate.sh (test_control_switchover, test_probe_over_tcp).
#
# Each test but the first runs the stand-in test of the same scenario
# unchanged, with LAB_SERVICE=kamailio (testdata/lab_service.sh: flip's
# FLIP_SERVICE_CMD and lab_standin then use testdata/kamailio-service), so
# it asserts all the stand-in version asserts; then it checks that the
# answers really came from Kamailio. A test whose scenario gives the
# stand-in a start delay (-start-delay) gets the same delay before Kamailio
# starts: a slow Asterisk with a real SIP stack.
#
# Without kamailio the tests say so and pass (SKIP), or fail under CI=true.

# kamailio_skip: true (after saying why) when Kamailio cannot run here.
kamailio_skip() {
	local why
	why=$(lab_kamailio_missing) || return 1
	if [ "${CI:-}" = true ]; then
		fail "cannot run under CI: $why"
	else
		echo "    SKIP: $why"
	fi
	return 0
}

# kamailio_serves BOX: flip watch in the client (flip's own OPTIONS, whose
# Request-URI is sip:VIP:5060, over a connected socket: answers from the VIP
# only) gets 200s from Kamailio on BOX (its Server header), first to last.
kamailio_serves() {
	local w="$LAB_DIR/c/kamailio-watch.json"
	lab_exec c "$LAB_BIN/flip" watch -for 300ms -json "${2:-$LAB_VIP}" >"$w" 2>/dev/null &&
		grep -q '"answered": *[1-9]' "$w" &&
		grep -q "\"first_responder\": *\"kamailio box-$1\"" "$w" &&
		grep -q "\"last_responder\": *\"kamailio box-$1\"" "$w" &&
		grep -q '"first_status": *200' "$w" && grep -q '"last_status": *200' "$w"
}

# kamailio_invite_501 BOX: sipp in the client sends an INVITE to the VIP
# and must get 501 from Kamailio on BOX (Server header); it then ACKs.
kamailio_invite_501() {
	cat >"$LAB_DIR/c/invite-501.xml" <<'EOF'
<?xml version="1.0" encoding="ISO-8859-1" ?>
<!DOCTYPE scenario SYSTEM "sipp.dtd">
<scenario name="INVITE to a box with no users: 501">
  <send retrans="500">
    <![CDATA[

      INVITE sip:nobody@[remote_ip]:[remote_port] SIP/2.0
      Via: SIP/2.0/[transport] [local_ip]:[local_port];branch=[branch]
      From: "flip-test" <sip:flip-test@[local_ip]:[local_port]>;tag=[pid]SIPpTag[call_number]
      To: <sip:nobody@[remote_ip]:[remote_port]>
      Call-ID: [call_id]
      CSeq: 1 INVITE
      Contact: <sip:flip-test@[local_ip]:[local_port];transport=[transport]>
      Max-Forwards: 70
      User-Agent: sipp flip-test
      Content-Length: 0

    ]]>
  </send>
  <recv response="501" timeout="2000">
    <action>
      <ereg regexp="kamailio box-[a-z]" search_in="hdr" header="Server:" check_it="true" assign_to="server"/>
      <log message="Server: [$server]"/>
    </action>
  </recv>
  <send>
    <![CDATA[

      ACK sip:nobody@[remote_ip]:[remote_port] SIP/2.0
      [last_Via:]
      [last_From:]
      [last_To:]
      [last_Call-ID:]
      CSeq: 1 ACK
      Max-Forwards: 70
      Content-Length: 0

    ]]>
  </send>
</scenario>
EOF
	(cd "$LAB_DIR/c" && lab_exec c timeout 20 sipp -sf invite-501.xml \
		-i "${LAB_ADDR[c]}" -bind_local -p 5071 -m 1 -timeout 10s -timeout_error \
		-trace_logs -log_file invite-501.log "$LAB_VIP:5060" >invite-501.out 2>&1) &&
		grep -q "Server: kamailio box-$1" "$LAB_DIR/c/invite-501.log"
}

# session_gone SID: no live process (zombies aside) in session SID.
# shellcheck disable=SC2009 # pgrep cannot leave zombies out
session_gone() { ! ps -s "$1" -o stat= 2>/dev/null | grep -qv '^Z'; }

# Hot standby with Kamailio, and what a Kamailio kill leaves: the config
# answers as flip and clients need it; a kill -9 of the pidfile's PID (the
# main process) takes the children and the socket with it; b's Kamailio,
# started before b had the VIP, answers on the VIP after the takeover.
test_kamailio_hot_standby() {
	kamailio_skip && return
	LAB_SERVICE=kamailio hot_pair
	expect "OPTIONS to the VIP (flip's Request-URI, no user): 200 from Kamailio on a, from the VIP" kamailio_serves a
	expect "OPTIONS to the VIP (sipp, sip:service@VIP): 200" sip_ok
	expect "INVITE: 501 from Kamailio on a, and the ACK goes out" kamailio_invite_501 a
	expect "passive b's Kamailio answers on b's own address" kamailio_serves b "${LAB_ADDR[b]}"
	local pid sid nproc pid_b
	pid=$(lab_service_pid a) sid=$(ps -o sid= -p "$(lab_service_pid a)" | tr -d ' ') pid_b=$(lab_service_pid b)
	nproc=$(pgrep -c -s "$sid")
	echo "    a's Kamailio: main process $pid, $nproc processes in its session $sid"
	expect "Kamailio on a forked children" test "$nproc" -gt 2
	lab_log "kill -9 Kamailio's main process on a"
	kill -9 "$pid"
	expect "UDP 5060 closes on a (no child keeps the socket)" lab_wait 1 lab_sip_port_closed a
	expect "no process of a's Kamailio is left" lab_wait 2 session_gone "$sid"
	expect "a releases" lab_wait 3 log_has a 'msg="release complete"'
	expect "b takes over" lab_wait 3 lab_holds b
	expect "b's Kamailio, started before b held the VIP, answers on it (from the VIP)" lab_wait 5 kamailio_serves b
	expect "sipp gets an answer through b" lab_wait 5 sip_ok
	expect "it is the Kamailio started before the takeover (same PID)" test "$(lab_service_pid b)" = "$pid_b"
	expect "never two holders" ev_never_two
}

# The active box dies (test_box_dies_and_returns, cold standby, 1 s delay).
test_kamailio_box_dies() {
	kamailio_skip && return
	LAB_SERVICE=kamailio test_box_dies_and_returns
	expect "the VIP is answered by Kamailio on b: 200, from the VIP" lab_wait 3 kamailio_serves b
}

# Kamailio dies on the active box (test_asterisk_dies: kill -9 of its main
# process), the box lives.
test_kamailio_asterisk_dies() {
	kamailio_skip && return
	LAB_SERVICE=kamailio test_asterisk_dies
	expect "a's killed Kamailio left nothing on UDP 5060" lab_sip_port_closed a
	expect "the VIP is answered by Kamailio on b: 200, from the VIP" lab_wait 3 kamailio_serves b
}

# Cold standby (test_cold_standby): b's Kamailio starts on takeover, 5 s late.
test_kamailio_cold_standby() {
	kamailio_skip && return
	LAB_SERVICE=kamailio test_cold_standby
	expect "Kamailio runs on b only" bash -c "[ -f '$LAB_DIR/b/state/asterisk.pid' ] && [ ! -f '$LAB_DIR/a/state/asterisk.pid' ]"
	expect "a's killed Kamailio left nothing on UDP 5060" lab_sip_port_closed a
	expect "the VIP is answered by Kamailio on b: 200, from the VIP" lab_wait 3 kamailio_serves b
}

# flip switchover (test_control_switchover): a stops Kamailio through
# kamailio-service, keeps the VIP until b asks; b's running Kamailio serves.
test_kamailio_switchover() {
	kamailio_skip && return
	LAB_SERVICE=kamailio test_control_switchover
	expect "Kamailio stopped on a" test "$(calls a stop)" -ge 1
	expect "nothing on UDP 5060 on a" lab_sip_port_closed a
	expect "the VIP is answered by Kamailio on b: 200, from the VIP" lab_wait 3 kamailio_serves b
}

# Probes over TCP (test_probe_over_tcp): Kamailio also listens on TCP; its
# death is a refused connection.
test_kamailio_probe_over_tcp() {
	kamailio_skip && return
	LAB_SERVICE=kamailio test_probe_over_tcp
	expect "the VIP is answered by Kamailio on b over UDP too" lab_wait 3 kamailio_serves b
}

# shellcheck disable=SC2034 # netns_test.sh runs them
KAMAILIO_TESTS="kamailio_hot_standby kamailio_box_dies kamailio_asterisk_dies kamailio_cold_standby kamailio_switchover kamailio_probe_over_tcp"
