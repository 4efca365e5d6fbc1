#!/usr/bin/env bash
# packaging/test-deb.sh — builds the Debian package and checks it, as root:
#   1. packaging/build-deb.sh into a temporary directory;
#   2. lintian: any E: fails (warnings are printed; the overrides in
#      packaging/lintian-overrides are shown as O:); skipped, with a message,
#      when lintian is not installed;
#   3. dpkg-deb -c / -I: binary, unit, conffile, man page, control fields;
#   4. dpkg --root into a scratch root (maintainer scripts run chrootless with
#      DPKG_ROOT set, so they must leave the host's systemd alone: checked),
#      then DIR/usr/sbin/flip version names the package's version;
#   5. an edit to DIR/etc/default/flip survives an upgrade to a higher
#      version (dpkg --force-confold), also when the packaged file changed,
#      and the binary reports the new version; remove keeps the conffile,
#      purge deletes it.
# Prints one PASS/FAIL line at the end; exits non-zero on failure. Every
# step is bounded by a timeout; the temporary directory is always removed.
set -euo pipefail

cd "$(dirname "$0")/.."
export PATH=$PATH:/usr/local/go/bin:/usr/sbin:/sbin
export LC_ALL=C DEBIAN_FRONTEND=noninteractive

step="start"
result=FAIL
summary=""
tmp=""
cleanup() {
	local rc=$?
	[ -n "$tmp" ] && rm -rf "$tmp"
	if [ "$result" = PASS ]; then
		echo "PASS: packaging/test-deb.sh: $summary"
		exit 0
	fi
	echo "FAIL: packaging/test-deb.sh: step \"$step\" failed" >&2
	[ "$rc" -ne 0 ] || rc=1
	exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

fail() {
	echo "test-deb: $step: $*" >&2
	exit 1
}
say() { echo "== $step"; }

step="prerequisites"
say
command -v dpkg-deb >/dev/null || fail "dpkg-deb is missing (apt-get install dpkg): cannot build or inspect the package"
command -v dpkg >/dev/null || fail "dpkg is missing"
[ "$(id -u)" = 0 ] || fail "run as root: dpkg --root installs files owned by root"
tmp=$(mktemp -d /tmp/flip-test-deb.XXXXXX)

# What the maintainer scripts must not touch on the host.
host_state() {
	{
		find /etc/systemd/system /var/lib/systemd/deb-systemd-helper-enabled \
			/var/lib/systemd/deb-systemd-helper-masked -printf '%p %l\n' 2>/dev/null | sort
		dpkg-query -W -f='${Status} ${Version}\n' flip 2>&1 || true
		ls -la /etc/default/flip /usr/sbin/flip /lib/systemd/system/flip.service 2>&1 || true
	} | md5sum
}
host_before=$(host_state)

# --- 1. build ------------------------------------------------------------------
step="build"
say
mkdir -p "$tmp/out1" "$tmp/out2"
timeout 900 bash packaging/build-deb.sh "$tmp/out1"
deb1=$(find "$tmp/out1" -name 'flip_*.deb')
[ "$(echo "$deb1" | wc -l)" = 1 ] && [ -f "$deb1" ] || fail "expected one flip_*.deb in $tmp/out1, got: $deb1"
v1=$(dpkg-deb -f "$deb1" Version)
up1=${v1%-*}
arch=$(dpkg --print-architecture)
[ "$(basename "$deb1")" = "flip_${v1}_$arch.deb" ] || fail "file name $(basename "$deb1"), want flip_${v1}_$arch.deb"
[[ $v1 =~ ^[0-9] ]] || fail "version $v1 does not start with a digit"
echo "built $(basename "$deb1")"

# --- 2. lintian ----------------------------------------------------------------------
step="lintian"
say
lintian_note="lintian skipped"
if ! command -v lintian >/dev/null; then
	echo "SKIP: lintian is not installed (apt-get install lintian); the lintian step is skipped"
else
	# The verdict: E: tags not overridden fail (--show-overrides would make
	# lintian fail on the overridden ones too, so it is a second run).
	set +e
	out=$(timeout 600 lintian --fail-on error --display-info "$deb1" 2>&1)
	rc=$?
	set -e
	printf '%s\n' "$out" | grep -v '^running with root privileges' || true
	errors=$(printf '%s\n' "$out" | grep -c '^E:' || true)
	warnings=$(printf '%s\n' "$out" | grep -c '^W:' || true)
	[ "$rc" = 0 ] && [ "$errors" = 0 ] || fail "lintian: $errors error(s), exit status $rc"
	# The overrides, each with its reason (packaging/lintian-overrides).
	out=$(timeout 600 lintian --show-overrides "$deb1" 2>&1 || true)
	printf '%s\n' "$out" | grep -E '^(O|N):' || true
	overridden=$(printf '%s\n' "$out" | grep -c '^O:' || true)
	lintian_note="lintian: 0 errors, $warnings warnings, $overridden overridden"
	echo "$lintian_note"
fi

# --- 3. inspect ------------------------------------------------------------------------
step="inspect"
say
contents=$(dpkg-deb -c "$deb1")
expect_entry() { # MODE PATH
	printf '%s\n' "$contents" | grep -qE "^$1 root/root +[0-9]+ [0-9-]+ [0-9:]+ \./$2\$" ||
		fail "dpkg-deb -c lists no $1 root/root ./$2"
}
expect_entry '-rwxr-xr-x' 'usr/sbin/flip'
expect_entry '-rw-r--r--' 'lib/systemd/system/flip\.service'
expect_entry '-rw-------' 'etc/default/flip'
expect_entry '-rw-r--r--' 'usr/share/man/man8/flip\.8\.gz'
expect_entry '-rw-r--r--' 'usr/share/doc/flip/copyright'
expect_entry '-rw-r--r--' 'usr/share/doc/flip/changelog\.Debian\.gz'
expect_entry '-rw-r--r--' 'usr/share/doc/flip/README\.Debian'
expect_entry '-rw-r--r--' 'usr/share/lintian/overrides/flip'
dpkg-deb -I "$deb1"
[ "$(dpkg-deb -I "$deb1" conffiles)" = /etc/default/flip ] || fail "DEBIAN/conffiles is not exactly /etc/default/flip"
for f in postinst prerm postrm; do
	dpkg-deb -I "$deb1" "$f" >"$tmp/$f"
	sh -n "$tmp/$f" || fail "$f: syntax error"
done
for kv in "Package=flip" "Architecture=$arch" "Section=net" "Priority=optional"; do
	[ "$(dpkg-deb -f "$deb1" "${kv%%=*}")" = "${kv#*=}" ] || fail "control: ${kv%%=*} is not ${kv#*=}"
done
[ -z "$(dpkg-deb -f "$deb1" Depends)" ] || fail "a static binary needs no Depends"
dpkg-deb --fsys-tarfile "$deb1" | tar -xOf - ./lib/systemd/system/flip.service >"$tmp/flip.service"
grep -qx 'ExecStart=/usr/sbin/flip' "$tmp/flip.service" || fail "the unit's ExecStart is not /usr/sbin/flip"
! grep -q /usr/local/sbin/flip "$tmp/flip.service" || fail "the unit still names /usr/local/sbin/flip"
grep -qx 'EnvironmentFile=/etc/default/flip' "$tmp/flip.service" || fail "the unit does not read /etc/default/flip"
dpkg-deb --fsys-tarfile "$deb1" | tar -xOf - ./usr/share/man/man8/flip.8.gz | gunzip >"$tmp/flip.8"
if command -v man >/dev/null; then
	warn=$(MANWIDTH=80 timeout 60 man --warnings -E UTF-8 -l -Tutf8 -Z "$tmp/flip.8" 2>&1 >/dev/null)
	[ -z "$warn" ] || fail "man page warnings: $warn"
	MANWIDTH=80 timeout 60 man -l "$tmp/flip.8" 2>/dev/null | grep -q FLIP_RESOURCES || fail "flip(8) does not render FLIP_RESOURCES"
fi

# --- 4. install into a scratch root -------------------------------------------------------
root=$tmp/root
mkdir -p "$root/var/lib/dpkg/info" "$root/var/lib/dpkg/updates" "$root/var/lib/dpkg/triggers"
: >"$root/var/lib/dpkg/status"
# Maintainer scripts run on the host with DPKG_ROOT=$root (no shell in the
# scratch root to chroot into); the log stays in the temporary directory.
dpkg_root() {
	timeout 120 dpkg --root="$root" --log="$tmp/dpkg.log" --force-script-chrootless "$@" </dev/null
}
installed_version() {
	dpkg-query --admindir="$root/var/lib/dpkg" -W -f='${Status} ${Version}' flip
}
check_version() { # DEBVERSION
	local up=${1%-*} out
	[ "$(installed_version)" = "install ok installed $1" ] || fail "dpkg says $(installed_version), want $1 installed"
	out=$("$root/usr/sbin/flip" version)
	echo "$out"
	case $out in
	"flip $up (commit "[0-9a-f]*")") ;;
	*) fail "flip version printed \"$out\", want \"flip $up (commit ...)\"" ;;
	esac
}

step="install $v1 into a scratch root"
say
dpkg_root -i "$deb1"
check_version "$v1"
[ "$(stat -c %a "$root/etc/default/flip")" = 600 ] || fail "/etc/default/flip is not mode 0600"
cmp -s deploy/flip.default "$root/etc/default/flip" || fail "/etc/default/flip is not deploy/flip.default"
[ -f "$root/lib/systemd/system/flip.service" ] || fail "no unit installed"
[ ! -e "$root/etc/systemd/system/multi-user.target.wants/flip.service" ] || fail "flip was enabled on install"
if command -v go >/dev/null; then
	bi=$(go version -m "$root/usr/sbin/flip")
	# (-trimpath keeps -ldflags out of the build info: flip version checks those.)
	for want in 'CGO_ENABLED=0' '-trimpath=true'; do
		printf '%s\n' "$bi" | grep -qF -e "$want" || fail "go version -m: the binary was not built with $want"
	done
fi
"$root/usr/sbin/flip" help | grep -q 'flip version' || fail "flip help does not list flip version"

# --- 5. upgrades keep the edited conffile -------------------------------------------------
step="upgrade to a higher version"
say
echo 'FLIP_PROBE_INTERVAL=200ms' >>"$root/etc/default/flip"
timeout 900 env VERSION="$up1+1" bash packaging/build-deb.sh "$tmp/out2"
deb2=$(find "$tmp/out2" -name 'flip_*.deb')
v2=$(dpkg-deb -f "$deb2" Version)
dpkg --compare-versions "$v2" gt "$v1" || fail "$v2 is not above $v1"
dpkg_root --force-confold -i "$deb2"
check_version "$v2"
tail -n 1 "$root/etc/default/flip" | grep -qx 'FLIP_PROBE_INTERVAL=200ms' || fail "the edit to /etc/default/flip was lost"

step="upgrade with a changed /etc/default/flip"
say
# The same package, one version up, whose /etc/default/flip differs from the
# one installed before: both sides changed, --force-confold keeps the
# administrator's file and puts the new one beside it as .dpkg-dist.
dpkg-deb -R "$deb2" "$tmp/pkg3"
echo '# a new variable, in the next version' >>"$tmp/pkg3/etc/default/flip"
v3="$up1+2-1"
sed -i "s/^Version: .*/Version: $v3/" "$tmp/pkg3/DEBIAN/control"
deb3="$tmp/flip_${v3}_$arch.deb"
dpkg-deb --root-owner-group --build "$tmp/pkg3" "$deb3" >/dev/null
dpkg_root --force-confold -i "$deb3"
[ "$(installed_version)" = "install ok installed $v3" ] || fail "dpkg says $(installed_version), want $v3 installed"
grep -qx 'FLIP_PROBE_INTERVAL=200ms' "$root/etc/default/flip" || fail "the edit to /etc/default/flip was lost"
! grep -q 'in the next version' "$root/etc/default/flip" || fail "the packaged file replaced the edited one"
grep -q 'in the next version' "$root/etc/default/flip.dpkg-dist" || fail "no /etc/default/flip.dpkg-dist with the new file"
[ "$(stat -c %a "$root/etc/default/flip")" = 600 ] || fail "/etc/default/flip is no longer mode 0600"

step="remove and purge"
say
dpkg_root -r flip
[ ! -e "$root/usr/sbin/flip" ] || fail "remove left /usr/sbin/flip"
grep -qx 'FLIP_PROBE_INTERVAL=200ms' "$root/etc/default/flip" || fail "remove deleted the edited conffile"
dpkg_root -P flip
[ ! -e "$root/etc/default/flip" ] || fail "purge left /etc/default/flip"

step="host untouched"
say
[ "$(host_state)" = "$host_before" ] || fail "the host's systemd state, dpkg database or files changed"

result=PASS
summary="flip $v1 -> $v2 -> $v3 built, $lintian_note, installed, upgraded (edited /etc/default/flip kept) and purged in a scratch root"
