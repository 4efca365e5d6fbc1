#!/usr/bin/env bash
# deps.sh — installs the Debian packages the demo and the tests need, if
# missing: iproute2 (ip netns, veth, bridge), nftables (packet loss), sipp
# (sip-tester, the independent SIP witness), gcc (go test -race needs cgo),
# kamailio (a real SIP server beside the stand-in Asterisk), rsync (the
# standby sync recipe), lintian (checks the Debian package) and etcd (etcd-server
# and etcd-client: the arbiter of pool mode, a real three-member cluster in
# the pool tests).
set -eu
need=()
command -v ip >/dev/null || need+=(iproute2)
command -v nft >/dev/null || need+=(nftables)
command -v sipp >/dev/null || need+=(sip-tester)
command -v gcc >/dev/null || need+=(gcc)
command -v setsid >/dev/null || need+=(util-linux)
command -v kamailio >/dev/null || [ -x /usr/sbin/kamailio ] || need+=(kamailio)
command -v rsync >/dev/null || need+=(rsync)
command -v lintian >/dev/null || need+=(lintian)
command -v dpkg-deb >/dev/null || need+=(dpkg)
command -v etcd >/dev/null || need+=(etcd-server)
command -v etcdctl >/dev/null || need+=(etcd-client)
if [ ${#need[@]} -gt 0 ]; then
	if [ "$(id -u)" != 0 ]; then
		echo "deps: missing ${need[*]}; run as root or: apt-get install ${need[*]}" >&2
		exit 1
	fi
	echo "deps: installing ${need[*]}"
	export DEBIAN_FRONTEND=noninteractive
	timeout 600 apt-get update -qq
	timeout 900 apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
fi
command -v go >/dev/null || [ -x /usr/local/go/bin/go ] || {
	echo "deps: Go 1.26 is not installed (expected go on PATH or /usr/local/go/bin/go)" >&2
	exit 1
}
