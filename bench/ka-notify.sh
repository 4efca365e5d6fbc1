#!/bin/sh
# ka-notify.sh STATE ENVFILE — keepalived's notify script in cold standby:
# on MASTER start Asterisk (both stand-in listeners, answering after
# START_DELAY), on BACKUP or FAULT stop it. The stand-in is started the way
# flip starts it: testdata/standin-service (returns at once, like systemd).
set -u
state=$1
. "$2"
dir=$(dirname "$2")
box=$(basename "$dir")
echo "$(date +%s%3N) $state" >>"$dir/ka.notify"

svc() { # ACTION NAME LISTEN
	STANDIN_STATE_DIR="$dir/state" STANDIN_BIN="$LAB_BIN/standin-asterisk" \
		STANDIN_ARGS="-name standin-asterisk-box-$box$4 -listen $3 -start-delay $START_DELAY" \
		"$LAB_ROOT/testdata/standin-service" "$1" "$2"
}

case $state in
master)
	date +%s >"$dir/ka.master-since"
	rm -f "$dir/ka.answered"
	svc start asterisk "$LAB_VIP:5060" ""
	svc start asterisk-lo 127.0.0.1:5060 -lo
	;;
backup | fault)
	svc stop asterisk "$LAB_VIP:5060" ""
	svc stop asterisk-lo 127.0.0.1:5060 -lo
	;;
esac
exit 0
