#!/usr/bin/env bash
# The web dashboard in real headless Chromium against a real daemon (docs/dashboard.md).
#
#   1. installs Debian's chromium (when /usr/bin/chromium is missing) and the test's npm packages;
#   2. checks that the committed bundle (web/dist) is what scripts/web-build.sh builds now;
#   3. builds the debug binary, writes a config (SQLite store, API on a free loopback port, one
#      group replaying a trace into a `command` target), creates admin/operator/viewer tokens
#      and starts `scalepilot run`;
#   4. runs tests/browser/dashboard.test.mjs (it saves the group page to docs/dashboard.png;
#      SP_SCREENSHOT=path saves it elsewhere, SP_SCREENSHOT= not at all).
# Everything started here is stopped by PID and every temp file removed on exit.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
cd "$root"

if ! command -v cargo >/dev/null 2>&1 && [ -f "$HOME/.cargo/env" ]; then
    # shellcheck disable=SC1091
    . "$HOME/.cargo/env"
fi

cleanup=()
on_exit() {
    local i
    # Newest first: the daemon stops before its temp dir goes.
    for ((i = ${#cleanup[@]} - 1; i >= 0; i--)); do
        eval "${cleanup[$i]}" || true
    done
}
trap on_exit EXIT

chromium="${CHROMIUM:-/usr/bin/chromium}"
need=()
[ -x "$chromium" ] || need+=(chromium)
# nodejs (from the machine's apt sources) usually brings npm; the npm package only without it.
command -v node >/dev/null 2>&1 || need+=(nodejs)
command -v python3 >/dev/null 2>&1 || need+=(python3)
command -v curl >/dev/null 2>&1 || need+=(curl)
if [ ${#need[@]} -gt 0 ]; then
    echo "== installing ${need[*]}"
    sudo=""
    [ "$(id -u)" -eq 0 ] || sudo="sudo"
    # Never let package scripts start services.
    if [ ! -e /usr/sbin/policy-rc.d ]; then
        printf '#!/bin/sh\nexit 101\n' | $sudo tee /usr/sbin/policy-rc.d >/dev/null
        $sudo chmod +x /usr/sbin/policy-rc.d
        cleanup+=("$sudo rm -f /usr/sbin/policy-rc.d")
    fi
    $sudo apt-get update -q
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -q --no-install-recommends "${need[@]}"
fi
if ! command -v npm >/dev/null 2>&1; then
    echo "== installing npm"
    sudo=""
    [ "$(id -u)" -eq 0 ] || sudo="sudo"
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -q --no-install-recommends npm
fi
node_major=$(node -p 'process.versions.node.split(".")[0]')
if [ "$node_major" -lt 20 ]; then
    echo "browser-test: Node.js $(node --version) is too old: playwright-core needs Node.js 20 or later" >&2
    exit 1
fi
if [ ! -x "$chromium" ]; then
    echo "browser-test: Chromium is missing at $chromium and could not be installed" >&2
    exit 1
fi
if ! "$chromium" --version >/dev/null 2>&1; then
    echo "browser-test: $chromium does not run ($chromium --version failed)" >&2
    exit 1
fi
echo "== $("$chromium" --version 2>/dev/null | head -1), node $(node --version)"

tmp=$(mktemp -d "${TMPDIR:-/tmp}/scalepilot-browser.XXXXXX")
cleanup+=("rm -rf '$tmp'")

echo "== the committed bundle (web/dist) is what scripts/web-build.sh builds"
scripts/web-build.sh "$tmp/dist" >/dev/null
if ! diff -rq web/dist "$tmp/dist" >"$tmp/dist.diff"; then
    cat "$tmp/dist.diff" >&2
    echo "browser-test: web/dist is out of date with web/src or web/package-lock.json: run scripts/web-build.sh and commit web/dist" >&2
    exit 1
fi

echo "== npm ci (tests/browser)"
(cd tests/browser && npm ci --ignore-scripts --no-audit --no-fund --loglevel=error >/dev/null)

echo "== cargo build"
cargo build -q --bin scalepilot
bin="${CARGO_TARGET_DIR:-$root/target}/debug/scalepilot"

port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
# Four minutes of a wave between 15 and 45 requests per trace second, played 4× faster: the
# group scales out and in while the test runs, so the chart and the timeline have content.
python3 -c '
import math
print("timestamp_seconds,value")
for t in range(14400):
    print(f"{t},{round(30 + 15 * math.sin(2 * math.pi * t / 240))}")
' >"$tmp/load.csv"
cfg="$tmp/scalepilot.yaml"
cat >"$cfg" <<EOF
store: {kind: sqlite, path: "$tmp/sp.db"}
api: {listen: "127.0.0.1:$port"}
groups:
  - name: web
    min: 1
    max: 10
    evaluation_interval: 1s
    source: {kind: trace, file: "$tmp/load.csv", speedup: 4}
    target: {kind: command, command: "echo \$SCALEPILOT_DESIRED > $tmp/web-replicas.txt"}
    strategies:
      - {kind: target_tracking, metric: request_rate, target_per_replica: 25}
      - {kind: predictive, metric: request_rate, capacity_per_replica: 25, startup: 2s, forecast_only: true}
  - name: batch
    min: 1
    max: 4
    evaluation_interval: 2s
    dry_run: true
    source: {kind: static, values: {queue_depth: 40}}
    target: {kind: command, command: "echo \$SCALEPILOT_DESIRED > $tmp/batch-replicas.txt"}
    strategies:
      - {kind: target_tracking, metric: queue_depth, target_per_replica: 20}
EOF

# `scalepilot token create` prints the new token (its last line of output).
token() {
    local out
    out=$("$bin" token create --config "$cfg" --role "$1" --name "$2") || {
        echo "browser-test: scalepilot token create --role $1 failed" >&2
        return 1
    }
    printf '%s\n' "$out" | awk 'NF { line = $NF } END { print line }'
}
export SP_ADMIN_NAME=ada SP_OPERATOR_NAME=otto SP_VIEWER_NAME=vera
SP_ADMIN_TOKEN=$(token admin "$SP_ADMIN_NAME")
SP_OPERATOR_TOKEN=$(token operator "$SP_OPERATOR_NAME")
SP_VIEWER_TOKEN=$(token viewer "$SP_VIEWER_NAME")
export SP_ADMIN_TOKEN SP_OPERATOR_TOKEN SP_VIEWER_TOKEN
for t in "$SP_ADMIN_TOKEN" "$SP_OPERATOR_TOKEN" "$SP_VIEWER_TOKEN"; do
    [ -n "$t" ] || {
        echo "browser-test: scalepilot token create printed no token" >&2
        exit 1
    }
done

echo "== scalepilot run (API on 127.0.0.1:$port)"
(cd "$tmp" && exec "$bin" run --config "$cfg") >"$tmp/daemon.log" 2>&1 &
daemon=$!
cleanup+=("kill $daemon 2>/dev/null; wait $daemon 2>/dev/null")
url="http://127.0.0.1:$port"
for _ in $(seq 1 300); do
    if ! kill -0 "$daemon" 2>/dev/null; then
        tail -30 "$tmp/daemon.log" >&2
        echo "browser-test: the daemon exited before /healthz answered" >&2
        exit 1
    fi
    curl -fsS "$url/healthz" >/dev/null 2>&1 && break
    sleep 0.2
done
curl -fsS "$url/healthz" >/dev/null || {
    tail -30 "$tmp/daemon.log" >&2
    echo "browser-test: $url/healthz never answered" >&2
    exit 1
}

echo "== dashboard test in headless Chromium"
export SP_URL="$url" SP_GROUP=web CHROMIUM="$chromium"
export SP_SCREENSHOT="${SP_SCREENSHOT-$root/docs/dashboard.png}"
if ! node tests/browser/dashboard.test.mjs; then
    echo "--- daemon log (last 40 lines)" >&2
    tail -40 "$tmp/daemon.log" >&2
    exit 1
fi
echo "== browser test passed"
