#!/usr/bin/env bash
# Makes sure a Docker engine answers on this machine: installs Debian's
# docker.io if dockerd or the docker CLI is missing, starts dockerd in the
# background if it is not running, and waits up to 60 s for it. Idempotent;
# prints one line on success. dockerd logs to $STATE/dockerd.log (default
# /tmp/dockerd.log).
set -euo pipefail

log="${STATE:-/tmp}/dockerd.log"

answering() { docker info >/dev/null 2>&1; }
say_ok() { echo "docker: engine $(docker version --format '{{.Server.Version}}' 2>/dev/null || echo '?') answering"; }

if command -v docker >/dev/null && answering; then
	say_ok
	exit 0
fi

if ! command -v dockerd >/dev/null || ! command -v docker >/dev/null; then
	if [[ $(id -u) -ne 0 ]]; then
		echo "ensure-docker: Docker is not installed and installing it needs root: run 'apt-get install docker.io' as root" >&2
		exit 1
	fi
	apt_log=$(mktemp /tmp/ensure-docker-apt.XXXXXX.log)
	if ! { apt-get update && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends docker.io; } >"$apt_log" 2>&1; then
		tail -n 30 "$apt_log" >&2
		echo "ensure-docker: installing docker.io with apt-get failed; full log in $apt_log" >&2
		exit 1
	fi
	rm -f "$apt_log"
fi

# Start dockerd unless one is already on its way up.
if ! pgrep -x dockerd >/dev/null; then
	if [[ $(id -u) -ne 0 ]]; then
		echo "ensure-docker: dockerd is not running and starting it needs root: start the Docker service" >&2
		exit 1
	fi
	mkdir -p "$(dirname "$log")"
	setsid nohup dockerd >"$log" 2>&1 </dev/null &
fi

for _ in $(seq 1 60); do
	if answering; then
		say_ok
		exit 0
	fi
	sleep 1
done
tail -n 30 "$log" >&2 2>/dev/null || true
echo "ensure-docker: the Docker engine did not answer within 60 s; dockerd's log is $log" >&2
exit 1
