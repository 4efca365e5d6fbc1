# lab_service.sh — which SIP service the lab's boxes run, sourced by lab.sh
# (issue 13). LAB_SERVICE picks it:
#
#   standin   (default) tools/standin-asterisk, through testdata/standin-service
#   kamailio  Debian's Kamailio with testdata/kamailio.cfg, through
#             testdata/kamailio-service
#
# Both service scripts take the same arguments and environment (start|stop|
# status NAME, STANDIN_STATE_DIR, STANDIN_ARGS) and keep the service's PID
# in $LAB_DIR/BOX/state/NAME.pid: lab_flip hands flip `$(lab_service_cmd)
# {action} {name}` as FLIP_SERVICE_CMD, and lab_standin starts the service
# through it for a hot standby. The service is still called "asterisk".
#
# Set LAB_SERVICE before a test, or for one call (bash passes a variable
# assigned in front of a function call to everything the function runs):
#
#   LAB_SERVICE=kamailio test_asterisk_dies

LAB_SERVICE=${LAB_SERVICE:-standin}

# lab_service_cmd: the service script for LAB_SERVICE (a path with no
# blanks: flip splits FLIP_SERVICE_CMD on them).
lab_service_cmd() {
	case ${LAB_SERVICE:-standin} in
	standin) echo "$LAB_ROOT/testdata/standin-service" ;;
	kamailio) echo "$LAB_ROOT/testdata/kamailio-service" ;;
	*)
		echo "lab: unknown LAB_SERVICE '$LAB_SERVICE' (standin or kamailio)" >&2
		echo "$LAB_ROOT/testdata/no-such-service-$LAB_SERVICE"
		return 1
		;;
	esac
}

# lab_kamailio_missing: says why the Kamailio lab cannot run here and
# succeeds; fails (silently) when it can.
lab_kamailio_missing() {
	if ! command -v kamailio >/dev/null && [ ! -x /usr/sbin/kamailio ]; then
		echo "kamailio is not installed (apt-get install kamailio)"
		return 0
	fi
	if ! command -v unshare >/dev/null; then
		echo "unshare is not installed (apt-get install util-linux)"
		return 0
	fi
	return 1
}

# lab_service_pid BOX [NAME]: the PID in BOX's pidfile for NAME (asterisk).
lab_service_pid() { cat "$LAB_DIR/$1/state/${2:-asterisk}.pid" 2>/dev/null; }

# lab_kill_service BOX [NAME]: the service dies (kill -9 of the PID in its
# pidfile) and this waits, bounded, until that process is gone. For
# Kamailio that PID is the main process, the init of its own PID namespace:
# the kernel kills its children with it (kamailio-service says why).
lab_kill_service() {
	local pid
	pid=$(lab_service_pid "$1" "${2:-}")
	[ -n "$pid" ] || { echo "    lab: no ${2:-asterisk} pidfile on $1" >&2; return 1; }
	kill -9 "$pid" || return 1
	lab_wait 2 lab_pid_gone "$pid"
}

# lab_pid_gone PID: no such process, or only its zombie.
lab_pid_gone() {
	[ ! -e "/proc/$1" ] || [ "$(sed 's/^.*) //' "/proc/$1/stat" 2>/dev/null | cut -d' ' -f1)" = Z ]
}

# lab_sip_port_closed BOX: nothing in BOX listens on UDP port 5060.
lab_sip_port_closed() { [ -z "$(lab_exec "$1" ss -Hnlu 'sport = :5060')" ]; }

# lab_sip_port_open BOX: something in BOX listens on UDP port 5060.
lab_sip_port_open() { ! lab_sip_port_closed "$1"; }
