#!/usr/bin/env bash
# Makes sure a MinIO server binary is installed for the tests (internal/testenv
# finds it through $MINIO_BIN, PATH, $GOBIN or $(go env GOPATH)/bin). Installs
# the pinned version with `go install` from a temporary directory, so that it
# never enters this module's go.mod. Idempotent; prints one line on success.
set -euo pipefail

MINIO_VERSION=v0.0.0-20260212201848-7aac2a2c5b7c

find_minio() {
	if [[ -n "${MINIO_BIN:-}" ]]; then
		[[ -x "$MINIO_BIN" ]] && { echo "$MINIO_BIN"; return 0; }
		return 1
	fi
	command -v minio 2>/dev/null && return 0
	local dir
	for dir in "$(go env GOBIN)" "$(go env GOPATH | cut -d: -f1)/bin" "$HOME/go/bin"; do
		[[ -n "$dir" && -x "$dir/minio" ]] && { echo "$dir/minio"; return 0; }
	done
	return 1
}

if path=$(find_minio); then
	echo "minio: $path"
	exit 0
fi
if [[ -n "${MINIO_BIN:-}" ]]; then
	echo "ensure-minio: MINIO_BIN=$MINIO_BIN is not an executable file: unset MINIO_BIN or point it at a minio binary" >&2
	exit 1
fi

tmp=$(mktemp -d)
log=$(mktemp /tmp/ensure-minio.XXXXXX.log)
trap 'rm -rf "$tmp"' EXIT
if ! (cd "$tmp" && GOFLAGS= go install "github.com/minio/minio@$MINIO_VERSION") >"$log" 2>&1; then
	tail -n 30 "$log" >&2
	echo "ensure-minio: go install github.com/minio/minio@$MINIO_VERSION failed; full log in $log" >&2
	exit 1
fi
rm -f "$log"
if ! path=$(find_minio); then
	echo "ensure-minio: minio was installed but is not in \$GOBIN or \$(go env GOPATH)/bin: set MINIO_BIN to its path" >&2
	exit 1
fi
echo "minio: $path (installed $MINIO_VERSION)"
