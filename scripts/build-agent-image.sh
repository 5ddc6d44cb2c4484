#!/usr/bin/env bash
# Builds the reference agent image (Dockerfile.agent) without any registry:
# the base image from scripts/build-base-image.sh, a static sortie-agent for
# this machine's architecture, and a build context holding only those two
# files and the Dockerfile.
#
# Environment:
#   AGENT_IMAGE  tag to build (default sortie/agent:dev)
#   BASE_IMAGE   base image tag (default sortie/base:busybox), built if absent
#   GOARCH       architecture of the binary (default: go env GOARCH); it must
#                match the base image's busybox, i.e. this machine's
#   VERSION      version stamped into the binary and the image label
#                (default: git describe, else "dev")
#   FORCE=1      also rebuild the base image
set -euo pipefail

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
AGENT_IMAGE=${AGENT_IMAGE:-sortie/agent:dev}
export BASE_IMAGE=${BASE_IMAGE:-sortie/base:busybox}
GOARCH=${GOARCH:-$(go env GOARCH)}
VERSION=${VERSION:-$(git -C "$repo" describe --tags --always --dirty 2>/dev/null || echo dev)}

log() { printf 'build-agent-image: %s\n' "$*" >&2; }

"$repo/scripts/build-base-image.sh"

ctx=$(mktemp -d)
trap 'rm -rf "$ctx"' EXIT
bin=bin/sortie-agent-linux-$GOARCH
log "building $bin ($VERSION)"
(cd "$repo" && CGO_ENABLED=0 GOOS=linux GOARCH=$GOARCH go build -trimpath \
	-ldflags "-s -w -X main.version=$VERSION" -o "$ctx/$bin" ./cmd/sortie-agent)
cp "$repo/Dockerfile.agent" "$ctx/Dockerfile.agent"

# The legacy builder is enough; use BuildKit only where buildx is installed.
if [[ -z ${DOCKER_BUILDKIT:-} ]] && ! docker buildx version >/dev/null 2>&1; then
	export DOCKER_BUILDKIT=0
fi
log "building $AGENT_IMAGE from $BASE_IMAGE"
old_id=$(docker image inspect --format '{{.Id}}' "$AGENT_IMAGE" 2>/dev/null || true)
docker build -q -f "$ctx/Dockerfile.agent" \
	--build-arg "BASE=$BASE_IMAGE" \
	--build-arg "AGENT_BIN=$bin" \
	--build-arg "VERSION=$VERSION" \
	-t "$AGENT_IMAGE" "$ctx" >/dev/null
# The previous build is left untagged: drop it unless something still uses it.
if [[ -n $old_id && $old_id != "$(docker image inspect --format '{{.Id}}' "$AGENT_IMAGE")" ]]; then
	docker image rm "$old_id" >/dev/null 2>&1 || true
fi
log "built $AGENT_IMAGE"
