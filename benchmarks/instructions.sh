#!/usr/bin/env bash
# Instructions per request of a server in benchmarks/servers/, counted by valgrind (callgrind), not
# timed: on this shared 2-core VM a time measurement swings by 30% from minute to minute, an
# instruction count by well under 1% (JIT and GC threads included). Counts two runs of the same
# server, after 2,000 and 22,000 requests, and prints the difference / 20,000: startup cancels out.
# Start it several times: the same server can settle into different JIT states per process.
#   benchmarks/instructions.sh hello.mjs plugin
# Needs valgrind (Debian package valgrind); takes about two minutes.
set -euo pipefail
script=$1; shift
here=$(cd "$(dirname "$0")" && pwd)
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
count () { # requests server-args... -> total instructions
  local requests=$1; shift
  valgrind --tool=callgrind --smc-check=all-non-file --callgrind-out-file="$work/cg.$requests" \
    node "$here/servers/$script" "$@" >"$work/out.$requests" 2>"$work/err.$requests" &
  local pid=$!
  for _ in $(seq 1 300); do grep -q listening "$work/out.$requests" && break; sleep 1; done
  local port; port=$(grep -o 'listening":[0-9]*' "$work/out.$requests" | cut -d: -f2)
  node -e "require('$here/../node_modules/autocannon')({ url: 'http://127.0.0.1:$port/', connections: 10, amount: $requests })
    .then((r) => { if (r.requests.total !== $requests || r.non2xx > 0) { console.error('requests failed', r.requests.total, r.non2xx); process.exit(1) } })"
  kill -TERM "$pid"; wait "$pid" 2>/dev/null || true
  cat "$work"/cg."$requests"* | awk '/^summary:/ { sum += $2 } END { print sum }'
}
small=$(count 2000 "$@")
large=$(count 22000 "$@")
echo "$script $*: $(( (large - small) / 20000 )) instructions per request"
