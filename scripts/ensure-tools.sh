#!/usr/bin/env bash
# Makes sure the validators the tests call are installed: cloud-init (for
# `cloud-init schema`, internal/cloudinit) and systemd-analyze (for
# `systemd-analyze verify`, internal/supervisor). Installs the Debian
# package of each one that is missing (cloud-init, systemd) with apt-get,
# and only those. Idempotent; prints one line on success.
set -euo pipefail

have() { command -v "$1" >/dev/null 2>&1; }
say_ok() {
	echo "tools: cloud-init $(cloud-init --version 2>&1 | awk '{print $NF}'), $(systemd-analyze --version | head -n 1)"
}

missing=()
have cloud-init || missing+=(cloud-init)
have systemd-analyze || missing+=(systemd)
if [[ ${#missing[@]} -eq 0 ]]; then
	say_ok
	exit 0
fi

if [[ $(id -u) -ne 0 ]]; then
	echo "ensure-tools: installing ${missing[*]} needs root: run 'apt-get install ${missing[*]}' as root" >&2
	exit 1
fi
apt_log=$(mktemp /tmp/ensure-tools-apt.XXXXXX.log)
if ! { apt-get update && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends "${missing[@]}"; } >"$apt_log" 2>&1; then
	tail -n 30 "$apt_log" >&2
	echo "ensure-tools: installing ${missing[*]} with apt-get failed; full log in $apt_log" >&2
	exit 1
fi
rm -f "$apt_log"

for tool in cloud-init systemd-analyze; do
	if ! have "$tool"; then
		echo "ensure-tools: $tool is still missing after installing its package" >&2
		exit 1
	fi
done
say_ok
