#!/usr/bin/env bash
# Builds the base image of the reference agent image without any registry:
# a root filesystem of a static busybox (every applet linked), /tmp, and
# /etc/passwd and /etc/group with root and an unprivileged user "agent"
# (uid/gid 1000), imported with `docker import`.
#
# Environment:
#   BASE_IMAGE  tag to build (default sortie/base:busybox)
#   FORCE=1     rebuild even when the image exists
#   BUSYBOX     path of a static busybox to use (default: /bin/busybox, from
#               Debian's busybox-static, installed with apt-get when missing)
set -euo pipefail

BASE_IMAGE=${BASE_IMAGE:-sortie/base:busybox}
FORCE=${FORCE:-0}
BUSYBOX=${BUSYBOX:-}

log() { printf 'build-base-image: %s\n' "$*" >&2; }
die() { log "error: $*"; exit 1; }

command -v docker >/dev/null || die "docker not found"
if [[ $FORCE != 1 ]] && docker image inspect "$BASE_IMAGE" >/dev/null 2>&1; then
	log "$BASE_IMAGE exists; skipping (FORCE=1 rebuilds)"
	exit 0
fi

# is_static FILE: true when FILE is an ELF executable without a program
# interpreter (statically linked).
is_static() {
	local f=$1
	[[ -f $f && -x $f ]] || return 1
	if command -v readelf >/dev/null; then
		! readelf -l "$f" 2>/dev/null | grep -q 'Requesting program interpreter'
	elif command -v file >/dev/null; then
		file -L "$f" | grep -q 'statically linked'
	elif command -v ldd >/dev/null; then
		# glibc's ldd says "not a dynamic executable", musl's and others
		# "statically linked"/"not a dynamic program"; a dynamic binary
		# lists its libraries and exits 0.
		! ldd "$f" >/dev/null 2>&1
	else
		die "cannot tell whether $f is static: need readelf, file or ldd"
	fi
}

if [[ -z $BUSYBOX ]]; then
	BUSYBOX=/bin/busybox
	if ! is_static "$BUSYBOX"; then
		command -v apt-get >/dev/null ||
			die "$BUSYBOX is not a static busybox and apt-get is missing; set BUSYBOX=/path/to/static/busybox"
		log "installing Debian's busybox-static (replaces a dynamic busybox package, if any)"
		sudo=()
		[[ $(id -u) == 0 ]] || sudo=(sudo)
		if ! "${sudo[@]}" env DEBIAN_FRONTEND=noninteractive NEEDRESTART_SUSPEND=1 apt-get install -y --no-install-recommends busybox-static >/dev/null; then
			"${sudo[@]}" apt-get update -qq
			"${sudo[@]}" env DEBIAN_FRONTEND=noninteractive NEEDRESTART_SUSPEND=1 apt-get install -y --no-install-recommends busybox-static >/dev/null
		fi
	fi
fi
is_static "$BUSYBOX" || die "$BUSYBOX is not a statically linked executable"
bb_version=$("$BUSYBOX" 2>&1 | head -n1 || true)
log "using $BUSYBOX: $bb_version"

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
root=$work/rootfs
mkdir -p "$root"/{bin,sbin,usr/bin,usr/sbin,usr/local/bin,etc,root,home/agent,tmp,var/tmp,proc,sys,dev}
chmod 1777 "$root/tmp" "$root/var/tmp"
chmod 0700 "$root/root"
install -m 0755 "$BUSYBOX" "$root/bin/busybox"

# One symlink per applet, where busybox would install it (so shebangs such
# as /usr/bin/env work); with an old busybox without --list-full, all in /bin.
if applets=$("$BUSYBOX" --list-full 2>/dev/null) && [[ -n $applets ]]; then
	:
else
	applets=$("$BUSYBOX" --list | sed 's|^|bin/|')
fi
n=0
while IFS= read -r applet; do
	[[ -n $applet && $applet != bin/busybox && $applet != linuxrc ]] || continue
	mkdir -p "$root/$(dirname "$applet")"
	ln -sf /bin/busybox "$root/$applet"
	n=$((n + 1))
done <<<"$applets"
[[ -e $root/bin/sh ]] || ln -s /bin/busybox "$root/bin/sh"
log "linked $n applets"

cat >"$root/etc/passwd" <<'EOF'
root:x:0:0:root:/root:/bin/sh
agent:x:1000:1000:Sortie agent:/home/agent:/bin/sh
nobody:x:65534:65534:nobody:/nonexistent:/bin/false
EOF
cat >"$root/etc/group" <<'EOF'
root:x:0:
agent:x:1000:
nogroup:x:65534:
EOF
chmod 0644 "$root/etc/passwd" "$root/etc/group"

# Ownership is set in the archive, not on disk, so this works without root:
# everything root's except the agent's home.
tar --numeric-owner --owner=0 --group=0 --exclude=./home/agent \
	-C "$root" -cf "$work/rootfs.tar" .
tar --numeric-owner --owner=1000 --group=1000 \
	-C "$root" -rf "$work/rootfs.tar" ./home/agent

old_id=$(docker image inspect --format '{{.Id}}' "$BASE_IMAGE" 2>/dev/null || true)
docker import \
	--change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
	--change 'CMD ["/bin/sh"]' \
	--change "LABEL org.opencontainers.image.title=sortie-base org.opencontainers.image.description=\"static busybox: ${bb_version//\"/}\"" \
	--message "sortie base image: static busybox rootfs" \
	"$work/rootfs.tar" "$BASE_IMAGE" >/dev/null
# A forced rebuild leaves the previous image untagged: drop it unless a
# container or another tag still uses it.
if [[ -n $old_id && $old_id != "$(docker image inspect --format '{{.Id}}' "$BASE_IMAGE")" ]]; then
	docker image rm "$old_id" >/dev/null 2>&1 || true
fi
log "built $BASE_IMAGE"
