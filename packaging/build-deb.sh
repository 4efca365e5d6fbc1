#!/usr/bin/env bash
# packaging/build-deb.sh [OUTDIR] — builds flip_VERSION_ARCH.deb into OUTDIR
# (default: bin/ in the repository, which git ignores) with dpkg-deb, no
# debhelper:
#   /usr/sbin/flip                        static (CGO_ENABLED=0), -trimpath,
#                                         version and commit set by -ldflags
#   /lib/systemd/system/flip.service      deploy/flip.service, ExecStart=/usr/sbin/flip
#   /etc/default/flip                     deploy/flip.default, a conffile, mode 0600
#   /usr/share/man/man8/flip.8.gz         docs/flip.8
#   /usr/share/doc/flip/                  copyright, changelog.Debian.gz,
#                                         README.Debian, README.md.gz, docs
#   /usr/share/lintian/overrides/flip     packaging/lintian-overrides
#
# Environment:
#   VERSION     upstream version (default: from "git describe --tags
#               --always": a tag v0.3.0 gives 0.3.0, 5 commits after it
#               0.3.0+git20261130.5.abc1234, no tag 0.0~git20261130.abc1234).
#               A VERSION with a "-" is the whole Debian version; otherwise
#               the Debian revision is DEBIAN_REVISION (default 1).
#   ARCH        Debian architecture (default: dpkg --print-architecture);
#               GOARCH follows from it, so any ARCH Go supports cross-builds.
#   DEBFULLNAME, DEBEMAIL
#               the Maintainer (default: the author of the HEAD commit).
#   SOURCE_DATE_EPOCH
#               time stamp of the files and the changelog (default: the
#               HEAD commit's time), for a reproducible package.
set -euo pipefail

die() {
	echo "build-deb: $*" >&2
	exit 1
}

[ $# -le 1 ] || die "usage: packaging/build-deb.sh [OUTDIR]"
here=$(cd "$(dirname "$0")" && pwd)
top=$(dirname "$here")
outdir=${1:-$top/bin}
mkdir -p "$outdir"
outdir=$(cd "$outdir" && pwd)
cd "$top"
export PATH=$PATH:/usr/local/go/bin
export LC_ALL=C
command -v dpkg-deb >/dev/null || die "dpkg-deb not found (apt-get install dpkg)"
command -v go >/dev/null || die "go not found (expected on PATH or in /usr/local/go/bin)"

in_git=false
if git rev-parse --git-dir >/dev/null 2>&1; then in_git=true; fi

# --- versions ---------------------------------------------------------------
if $in_git; then
	commit=$(git rev-parse --short HEAD)
	commit_epoch=$(git log -1 --format=%ct HEAD)
else
	commit=unknown
	commit_epoch=$(date +%s)
fi
export SOURCE_DATE_EPOCH=${SOURCE_DATE_EPOCH:-$commit_epoch}
day=$(date -u -d "@$SOURCE_DATE_EPOCH" +%Y%m%d)

if [ -n "${VERSION:-}" ]; then
	upstream=${VERSION#v}
else
	$in_git || die "not in a git work tree: set VERSION"
	describe=$(git describe --tags --always)
	describe=${describe#v}
	if [[ $describe =~ ^[0-9a-f]{4,40}$ ]]; then
		# No tag at all: a snapshot, below any real release.
		upstream="0.0~git$day.$describe"
	elif [[ $describe =~ ^(.+)-([0-9]+)-g([0-9a-f]+)$ ]]; then
		upstream="${BASH_REMATCH[1]}+git$day.${BASH_REMATCH[2]}.${BASH_REMATCH[3]}"
	else
		upstream=$describe
	fi
fi
if [[ $upstream == *-* && -n "${VERSION:-}" ]]; then
	debversion=$upstream
	upstream=${upstream%-*}
else
	debversion="$upstream-${DEBIAN_REVISION:-1}"
fi
[[ $debversion =~ ^[0-9][A-Za-z0-9.+~-]*-[A-Za-z0-9.+~]+$ ]] ||
	die "version $debversion is not a Debian version (a digit first, then [A-Za-z0-9.+~], a revision after -): set VERSION"
dpkg --validate-version "$debversion" 2>/dev/null || die "dpkg rejects version $debversion"

# --- architecture -------------------------------------------------------------
arch=${ARCH:-$(dpkg --print-architecture)}
goarm=
case $arch in
amd64 | arm64 | riscv64 | s390x | loong64) goarch=$arch ;;
i386) goarch=386 ;;
armhf) goarch=arm goarm=7 ;;
armel) goarch=arm goarm=5 ;;
ppc64el) goarch=ppc64le ;;
mips64el) goarch=mips64le ;;
*) die "no GOARCH for Debian architecture $arch" ;;
esac

# --- maintainer -----------------------------------------------------------------
if [ -n "${DEBFULLNAME:-}" ] && [ -n "${DEBEMAIL:-}" ]; then
	maintainer="$DEBFULLNAME <$DEBEMAIL>"
elif $in_git; then
	maintainer=$(git log -1 --format='%an <%ae>' HEAD)
else
	die "set DEBFULLNAME and DEBEMAIL (the Maintainer field)"
fi

echo "build-deb: flip $debversion ($arch, commit $commit)"

# --- stage the package tree -------------------------------------------------------
umask 022
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
stage=$work/flip
doc=$stage/usr/share/doc/flip
mkdir -p "$stage/DEBIAN" "$stage/usr/sbin" "$stage/lib/systemd/system" "$stage/etc/default" \
	"$stage/usr/share/man/man8" "$doc" "$stage/usr/share/lintian/overrides"

export CGO_ENABLED=0 GOOS=linux GOARCH=$goarch GOFLAGS=${GOFLAGS:--mod=readonly}
if [ -n "$goarm" ]; then export GOARM=$goarm; fi
# -s -w: no symbol table or DWARF (Debian ships stripped binaries);
# -buildid=: no build ID that depends on the build directory.
timeout 900 go build -trimpath \
	-ldflags "-s -w -buildid= -X main.version=$upstream -X main.commit=$commit" \
	-o "$stage/usr/sbin/flip" .

# The unit: the manual install's file, with the packaged binary's path, a
# man page link, and its install instructions replaced by the package's.
awk '
	/^# Install \(as root/ { skip = 1
		print "# Installed by the flip Debian package. It is neither enabled nor started"
		print "# on install: fill in /etc/default/flip, check it with \"flip check\","
		print "# then: systemctl enable --now flip. Change this unit with"
		print "# \"systemctl edit flip\", not here: upgrades replace this file. See"
		print "# /usr/share/doc/flip/README.Debian."
		next }
	skip && /^#   systemctl daemon-reload/ { skip = 0; next }
	skip { next }
	/^# See docs\/systemd-container\.md\.$/ { print "# See /usr/share/doc/flip/docs/systemd-container.md.gz."; next }
	/^ExecStart=\/usr\/local\/sbin\/flip$/ { print "ExecStart=/usr/sbin/flip"; next }
	{ print }
	/^Documentation=/ && !man { print "Documentation=man:flip(8)"; man = 1 }
' deploy/flip.service >"$stage/lib/systemd/system/flip.service"
grep -qx 'ExecStart=/usr/sbin/flip' "$stage/lib/systemd/system/flip.service" ||
	die "deploy/flip.service has no line ExecStart=/usr/local/sbin/flip to rewrite"
! grep -q '/usr/local/sbin/flip' "$stage/lib/systemd/system/flip.service" ||
	die "the packaged unit still names /usr/local/sbin/flip: update the awk in $0"
grep -qx 'Documentation=man:flip(8)' "$stage/lib/systemd/system/flip.service" ||
	die "deploy/flip.service has no Documentation= line"

# The configuration: mode 0600, since FLIP_PEER_KEY is a secret.
install -m 0600 deploy/flip.default "$stage/etc/default/flip"
echo /etc/default/flip >"$stage/DEBIAN/conffiles"

gzip -9n <docs/flip.8 >"$stage/usr/share/man/man8/flip.8.gz"
install -m 0644 packaging/README.Debian "$doc/README.Debian"
gzip -9n <README.md >"$doc/README.md.gz"
mkdir -p "$doc/docs"
for f in docs/*.md; do
	gzip -9n <"$f" >"$doc/docs/$(basename "$f").gz"
done
mkdir -p "$doc/examples"
install -m 0644 deploy/pjsip-flip.conf "$doc/examples/pjsip-flip.conf"
install -m 0644 packaging/lintian-overrides "$stage/usr/share/lintian/overrides/flip"

# changelog.Debian: one entry for this build.
{
	echo "flip ($debversion) unstable; urgency=medium"
	echo
	echo "  * Built from git commit $commit."
	echo
	echo " -- $maintainer  $(date -u -R -d "@$SOURCE_DATE_EPOCH")"
} | gzip -9n >"$doc/changelog.Debian.gz"

# --- copyright: flip, then everything linked into the static binary -----------------
# dep5_text FILE: FILE as the continuation lines of a copyright field.
dep5_text() {
	expand "$1" | sed 's/\r$//' | awk '
		/^[ \t]*$/ { if (started) blank++; next }
		{ while (blank > 0) { print " ."; blank-- } started = 1; print " " $0 }'
}
# holders FILE...: the copyright lines of a licence or NOTICE file.
holders() {
	grep -hE '^[[:space:]]*Copyright ([0-9]|\([cC]\)|©)' "$@" 2>/dev/null |
		sed -E 's/^[[:space:]]*Copyright[[:space:]]+(\([cC]\)[[:space:]]*|©[[:space:]]*)?//; s/[[:space:]]+$//' |
		awk '!seen[$0]++' || true
}
# stanza NAME VERSION DIR PATTERN: a Files paragraph for one linked module.
stanza() {
	local name=$1 ver=$2 dir=$3 pattern=$4 lic notice short copy
	lic=$(find "$dir" -maxdepth 1 -type f \( -iname 'licen[cs]e*' -o -iname 'copying*' \) | sort | head -n 1)
	[ -n "$lic" ] || die "no LICENSE file in $dir ($name): cannot state its licence"
	notice=$(find "$dir" -maxdepth 1 -type f \( -iname 'notice*' -o -iname 'patents*' \) | sort)
	if grep -q 'Apache License' "$lic" && grep -q 'Version 2\.0' "$lic"; then
		short=Apache-2.0
	elif grep -q 'Mozilla Public License' "$lic" && grep -q 'Version 2\.0' "$lic"; then
		short=MPL-2.0
	elif grep -q 'Permission is hereby granted, free of charge' "$lic"; then
		short=Expat
	elif grep -q 'Redistribution and use in source and binary forms' "$lic"; then
		if grep -qi 'Neither the name' "$lic"; then short=BSD-3-Clause; else short=BSD-2-Clause; fi
	else
		die "unknown licence in $lic ($name): teach packaging/build-deb.sh its short name"
	fi
	# shellcheck disable=SC2086 # $notice is a list of paths without blanks
	copy=$(holders "$lic" $notice)
	[ -n "$copy" ] || copy="the $name authors"
	echo
	echo "Files: $pattern"
	echo "Copyright: $(printf '%s\n' "$copy" | sed '2,$s/^/ /')"
	echo "License: $short"
	case $short in
	Apache-2.0 | MPL-2.0)
		echo " On Debian systems, the complete text of this licence can be found in"
		echo " /usr/share/common-licenses/$short."
		;;
	*) dep5_text "$lic" ;;
	esac
	echo "Comment: $name $ver, linked into /usr/sbin/flip."
	for f in $notice; do
		echo " ."
		echo " $(basename "$f"):"
		dep5_text "$f"
	done
}
{
	cat packaging/copyright.in
	goroot=$(go env GOROOT)
	stanza "The Go runtime and standard library" "$(go env GOVERSION)" "$goroot" "go/src/*"
	go list -deps -f '{{with .Module}}{{if not .Main}}{{.Path}} {{.Version}} {{.Dir}}{{end}}{{end}}' . |
		sort -u | while read -r path ver dir; do
		[ -n "$dir" ] || die "module $path@$ver is not in the module cache"
		stanza "$path" "$ver" "$dir" "vendor/$path/*"
	done
} >"$doc/copyright"

# --- control files --------------------------------------------------------------------
install -m 0755 packaging/postinst packaging/prerm packaging/postrm "$stage/DEBIAN/"
installed_size=$(du -sk --apparent-size --exclude=DEBIAN "$stage" | cut -f1)
sed -e "s|@VERSION@|$debversion|" -e "s|@ARCH@|$arch|" -e "s|@MAINTAINER@|$maintainer|" \
	-e "s|@INSTALLED_SIZE@|$installed_size|" packaging/control.in >"$stage/DEBIAN/control"
! grep -q '@[A-Z_]*@' "$stage/DEBIAN/control" || die "unfilled field in DEBIAN/control"
(cd "$stage" && find . -path ./DEBIAN -prune -o -type f -print | sed 's|^\./||' | sort |
	grep -vxF -f <(sed 's|^/||' DEBIAN/conffiles) | xargs -d '\n' md5sum) >"$stage/DEBIAN/md5sums"
chmod 0644 "$stage/DEBIAN/control" "$stage/DEBIAN/conffiles" "$stage/DEBIAN/md5sums"

find "$stage" -exec touch -h -d "@$SOURCE_DATE_EPOCH" {} +
deb="$outdir/flip_${debversion}_$arch.deb"
dpkg-deb --root-owner-group -Zxz --build "$stage" "$deb" >/dev/null
echo "build-deb: $deb"
