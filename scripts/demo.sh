#!/usr/bin/env bash
# The demo: a real agent (examples/demo/workspace/agent.sh in the reference
# image) analyses a real source tree on a local "VM" booted from cloud-init
# user-data, through the embedded S3 store, and answers a follow-up message
# sent mid-run. Run it with `make demo`, which builds what it needs first.
set -euo pipefail
cd "$(dirname "$0")/.."

image=${AGENT_IMAGE:-sortie/agent:dev}
out=${DEMO_OUTBOX:-sortie-outbox/demo}
question=${DEMO_QUESTION:-How many TODOs are left, and where?}

for f in bin/coordinator bin/vm-supervisor; do
	[ -x "$f" ] || { echo "demo: $f is missing: run make build" >&2; exit 1; }
done
docker image inspect "$image" >/dev/null 2>&1 || {
	echo "demo: image $image is missing: run make images" >&2
	exit 1
}
rm -rf "$out"
echo "demo: running $image over examples/demo/workspace; outbox files go to $out/"
echo
set +e
bin/coordinator run \
	--image "$image" \
	--workspace examples/demo/workspace \
	--input '{"task":"report on this workspace"}' \
	--timeout 5m --memory 256m --cpus 1 --pids 256 \
	--message "$question" \
	--outbox "$out" \
	-- sh /workspace/agent.sh
rc=$?
set -e
echo
echo "demo: coordinator exited $rc; outbox files:"
find "$out" -type f | sort | sed 's/^/  /'
exit "$rc"
