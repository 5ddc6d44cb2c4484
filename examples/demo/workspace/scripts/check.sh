#!/bin/sh
# Formatting, vet and tests of the whole module; run from anywhere.
set -eu
cd "$(dirname "$0")/.."
unformatted=$(gofmt -l .)
if [ -n "$unformatted" ]; then
	echo "not gofmt-ed:" >&2
	echo "$unformatted" >&2
	exit 1
fi
go vet ./...
# TODO: run with -race once CI has a C toolchain.
go test ./...
