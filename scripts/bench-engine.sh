#!/usr/bin/env bash
# Daemon memory with many groups: runs `scalepilot run` on N groups (static source, command
# target; default 1000) for a while and prints its resident memory. Usage:
#   ./scripts/bench-engine.sh [GROUPS] [SECONDS]
set -euo pipefail
cd "$(dirname "$0")/.."
groups=${1:-1000}
seconds=${2:-40}
cargo build --release --quiet
bin=$PWD/target/release/scalepilot
dir=$(mktemp -d)
trap 'kill "$pid" 2>/dev/null || true; wait "$pid" 2>/dev/null || true; rm -rf "$dir"' EXIT
{
    echo "store: {kind: sqlite, path: bench.db}"
    echo "engine: {max_concurrency: 16}"
    echo "groups:"
    for i in $(seq 1 "$groups"); do
        cat <<GROUP
  - name: g$i
    min: 2
    max: 50
    evaluation_interval: 10s
    source: {kind: static, values: {request_rate: $((i % 40 + 10))}}
    target: {kind: command, command: "true"}
    strategies:
      - {kind: target_tracking, metric: request_rate, target_per_replica: 10}
GROUP
    done
} > "$dir/bench.yaml"
SCALEPILOT_LOG=warn "$bin" run --config "$dir/bench.yaml" &
pid=$!
sleep "$seconds"
evaluations=$("$bin" history --config "$dir/bench.yaml" --limit 100000 --json | grep -c '"key"' || true)
rss=$(awk '/VmRSS/ {print $2}' /proc/$pid/status)
hwm=$(awk '/VmHWM/ {print $2}' /proc/$pid/status)
echo "groups: $groups, after ${seconds}s: RSS $((rss / 1024)) MiB, peak $((hwm / 1024)) MiB, scaling activities recorded: $evaluations"
kill -TERM "$pid"
wait "$pid"
echo "daemon exited with $?"
