#!/bin/sh
# The Sortie demo agent: run as `sh /workspace/agent.sh` in the reference
# agent image (POSIX sh; busybox is enough). It analyses the workspace with
# ordinary tools, ships a report and a manifest through the outbox, then
# waits for one follow-up message, answers it, and exits 0.
#
# Environment (the agent contract): SORTIE_WORKSPACE, SORTIE_OUTBOX,
# SORTIE_INBOX, SORTIE_RUN_ID, SORTIE_INPUT. DEMO_WAIT sets how long to wait
# for the follow-up (default 120s); without one the agent still exits 0.
set -eu

ws=${SORTIE_WORKSPACE:-/workspace}
wait_for=${DEMO_WAIT:-120s}
self=agent.sh # this script, left out of the analysis

say() { printf '[agent] %s\n' "$*"; }
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
trap 'say "stopped (SIGTERM)"; exit 143' TERM
trap 'say "interrupted (SIGINT)"; exit 130' INT

cd "$ws"
say "run ${SORTIE_RUN_ID:-(no run id)}: analysing $ws"
if [ -n "${SORTIE_INPUT:-}" ] && [ -f "$SORTIE_INPUT" ]; then
	say "input: $(wc -c <"$SORTIE_INPUT" | tr -d ' ') bytes in $SORTIE_INPUT"
fi

# --- the tree ----------------------------------------------------------
find . -type f ! -path "./$self" ! -path './.git/*' | sed 's|^\./||' | LC_ALL=C sort >"$tmp/files"
nfiles=$(wc -l <"$tmp/files" | tr -d ' ')
ndirs=$(find . -mindepth 1 -type d ! -path './.git' ! -path './.git/*' | wc -l | tr -d ' ')
say "found $nfiles files in $ndirs directories"

# lines <TAB> bytes <TAB> path, one row per file
while IFS= read -r f; do
	printf '%s\t%s\t%s\n' "$(wc -l <"$f" | tr -d ' ')" "$(wc -c <"$f" | tr -d ' ')" "$f"
done <"$tmp/files" >"$tmp/stats"
total_lines=$(awk -F'\t' '{s += $1} END {print s + 0}' "$tmp/stats")
total_bytes=$(awk -F'\t' '{s += $2} END {print s + 0}' "$tmp/stats")
say "counted $total_lines lines, $total_bytes bytes"

# extension <TAB> files <TAB> lines
awk -F'\t' '{
	n = split($3, parts, "/"); base = parts[n]
	ext = (base ~ /.\./) ? base : "(none)"; sub(/^.*\./, ".", ext)
	files[ext]++; lines[ext] += $1
} END { for (e in files) printf "%s\t%d\t%d\n", e, files[e], lines[e] }' "$tmp/stats" |
	sort -t "$(printf '\t')" -k2,2nr -k1,1 >"$tmp/types"

# --- TODO / FIXME ------------------------------------------------------
grep -rn -E '(TODO|FIXME)(\([^)]*\))?:' . 2>/dev/null |
	grep -v -e "^\./$self:" -e '^\./\.git/' | sed 's|^\./||' | LC_ALL=C sort >"$tmp/todos" || true
ntodo=$(grep -c -E 'TODO(\([^)]*\))?:' "$tmp/todos" || true)
nfixme=$(grep -c -E 'FIXME(\([^)]*\))?:' "$tmp/todos" || true)
say "found $ntodo TODO and $nfixme FIXME comments"

# --- largest files and manifest -----------------------------------------
sort -t "$(printf '\t')" -k2,2nr -k3,3 "$tmp/stats" | head -n 5 >"$tmp/largest"
largest=$(head -n 1 "$tmp/largest" | awk -F'\t' '{printf "%s (%d bytes)", $3, $2}')
while IFS= read -r f; do sha256sum -- "$f"; done <"$tmp/files" >"$tmp/manifest"
say "hashed $nfiles files (sha256)"

# --- report ----------------------------------------------------------------
{
	echo "# Workspace report"
	echo
	echo "Run \`${SORTIE_RUN_ID:-none}\`, $(date -u +%Y-%m-%dT%H:%M:%SZ)."
	echo
	echo "| | |"
	echo "|---|---|"
	echo "| files | $nfiles |"
	echo "| directories | $ndirs |"
	echo "| lines | $total_lines |"
	echo "| bytes | $total_bytes |"
	echo "| TODO / FIXME | $ntodo / $nfixme |"
	echo
	echo "## Files by type"
	echo
	echo "| type | files | lines |"
	echo "|---|---:|---:|"
	awk -F'\t' '{printf "| %s | %d | %d |\n", $1, $2, $3}' "$tmp/types"
	echo
	echo "## Lines per file"
	echo
	echo "| file | lines | bytes |"
	echo "|---|---:|---:|"
	awk -F'\t' '{printf "| %s | %d | %d |\n", $3, $1, $2}' "$tmp/stats"
	echo
	echo "## TODO and FIXME"
	echo
	if [ -s "$tmp/todos" ]; then
		echo '```text'
		sed 's/:[[:space:]]*/: /2' "$tmp/todos"
		echo '```'
	else
		echo "None."
	fi
	echo
	echo "## Largest files"
	echo
	awk -F'\t' '{printf "%d. %s - %d bytes\n", NR, $3, $2}' "$tmp/largest"
	echo
	echo "The SHA-256 of every file is in \`artifacts/workspace-manifest.txt\`."
} >"$tmp/report.md"

sortie-agent outbox report.md "$tmp/report.md"
sortie-agent outbox artifacts/workspace-manifest.txt "$tmp/manifest"
say "wrote report.md and artifacts/workspace-manifest.txt to the outbox"

# --- one follow-up -----------------------------------------------------------
say "waiting up to $wait_for for a follow-up message"
if question=$(sortie-agent wait-message -timeout "$wait_for"); then
	:
else
	rc=$?
	if [ "$rc" -eq 2 ]; then
		say "no follow-up arrived; done"
		exit 0
	fi
	say "wait-message failed (exit $rc)" >&2
	exit "$rc"
fi
say "question: $question"

case $(printf '%s' "$question" | tr '[:upper:]' '[:lower:]') in
*todo* | *fixme*)
	answer="There are $((ntodo + nfixme)) TODO/FIXME comments: $ntodo TODO and $nfixme FIXME."
	details=$(sed 's/:[[:space:]]*/: /2; s/^/- /' "$tmp/todos")
	;;
*largest* | *biggest* | *size*)
	answer="The largest file is $largest."
	details=$(awk -F'\t' '{printf "- %s: %d bytes\n", $3, $2}' "$tmp/largest")
	;;
*line*)
	answer="The workspace has $total_lines lines in $nfiles files."
	details=$(awk -F'\t' '{printf "- %s: %d lines\n", $3, $1}' "$tmp/stats")
	;;
*)
	answer="Summary: $nfiles files in $ndirs directories, $total_lines lines, $ntodo TODO and $nfixme FIXME comments; the largest file is $largest."
	details=""
	;;
esac

say "answer: $answer"
{
	echo "# Reply"
	echo
	printf '%s\n' "$question" | sed 's/^/> /'
	echo
	echo "$answer"
	if [ -n "$details" ]; then
		echo
		printf '%s\n' "$details"
	fi
} >"$tmp/reply.md"
sortie-agent outbox reply.md "$tmp/reply.md"
say "wrote reply.md to the outbox; done"
