#!/usr/bin/env bash
# Makes sure the tools the tests call are installed: cloud-init (for
# `cloud-init schema`, internal/cloudinit), systemd-analyze (for
# `systemd-analyze verify`, internal/supervisor) and the distribution
# registry (docker-registry, which tests start on a loopback port of their
# own to pull a private image with credentials). Installs the Debian
# package of each one that is missing (cloud-init, systemd, docker-registry)
# with apt-get, and only those. The registry is never left running as a
# service: the tests start their own. Idempotent; prints one line on success.
set -euo pipefail

have() { command -v "$1" >/dev/null 2>&1; }
say_ok() {
	echo "tools: cloud-init $(cloud-init --version 2>&1 | awk '{print $NF}'), $(systemd-analyze --version | head -n 1), registry $(docker-registry --version | awk '{print $NF}')"
}

missing=()
have cloud-init || missing+=(cloud-init)
have systemd-analyze || missing+=(systemd)
have docker-registry || missing+=(docker-registry)
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

# Debian's docker-registry package enables and starts a service on port
# 5000 where an init system runs one. The tests start their own registry:
# stop and disable the service, so that nothing of ours listens there.
if [[ " ${missing[*]} " == *" docker-registry "* ]]; then
	if [[ -d /run/systemd/system ]]; then
		systemctl disable --now docker-registry.service >/dev/null 2>&1 || true
	fi
	if [[ -x /etc/init.d/docker-registry ]]; then
		/etc/init.d/docker-registry stop >/dev/null 2>&1 || true
		update-rc.d docker-registry disable >/dev/null 2>&1 || true
	fi
fi

for tool in cloud-init systemd-analyze docker-registry; do
	if ! have "$tool"; then
		echo "ensure-tools: $tool is still missing after installing its package" >&2
		exit 1
	fi
done
say_ok
