#!/usr/bin/env bash
# Runs the independent client (written from docs/PROTOCOL.md alone) against a real `kadnet node`.
# usage: independent_client_test.sh KADNET_CLI INDEPENDENT_CLIENT
set -euo pipefail

cli=$1
client=$2
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
vectors=$here/../vectors

coproc NODE { exec "$cli" node --listen tcp://127.0.0.1:0 --json 2>&1; }
node_pid=$NODE_PID
# Duplicate the coprocess pipes: bash closes NODE[0] and NODE[1] as soon as the node exits,
# and its last lines are still worth reading then.
exec {node_out}<&"${NODE[0]}" {node_in}>&"${NODE[1]}"

cleanup() {
  if kill -0 "$node_pid" 2>/dev/null; then kill "$node_pid" 2>/dev/null || true; fi
}
trap cleanup EXIT

line=""
if ! IFS= read -r -t 10 -u "$node_out" line; then
  echo "FAIL [node]: kadnet node printed nothing within 10 s" >&2
  exit 1
fi
echo "node: $line"
port=$(printf '%s\n' "$line" | grep -o '"listening" *: *\[[^]]*\]' | grep -o 'tcp://[^"]*' | head -n1 | sed 's/.*:\([0-9]*\)$/\1/' || true)
if [[ -z "$port" ]]; then
  echo "FAIL [node]: no tcp port in the node's first JSON line" >&2
  exit 1
fi
echo "node listens on 127.0.0.1:$port"

status=0
out=$(mktemp)
"$client" 127.0.0.1 "$port" "$vectors" | tee "$out" || status=$?
# The node runs on this machine with its default configuration (prefer_aes_gcm on): when the
# client offered AES-256-GCM (its CPU has it, hence the node's too), the node must have chosen it.
if [ "$status" -eq 0 ] && grep -q "offers AES-256-GCM" "$out" && ! grep -q "sealing with AES-256-GCM" "$out"; then
  echo "FAIL [aes-gcm]: the client offered AES-256-GCM; the node (same CPU, default config) declined" >&2
  status=1
fi
rm -f "$out"

# Show what the node printed meanwhile, then stop it.
echo stats >&"$node_in" || true
echo quit >&"$node_in" || true
exec {node_in}>&-
while IFS= read -r -t 10 -u "$node_out" line; do echo "node: $line"; done || true
exec {node_out}<&-
node_status=0
wait "$node_pid" || node_status=$?
echo "node exit status: $node_status"
trap - EXIT
echo "independent client exit status: $status"
exit "$status"
