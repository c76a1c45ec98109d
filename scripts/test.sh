#!/usr/bin/env bash
# The whole test suite, from a fresh clone on a fresh machine: formatting, lints, every test.
#
# HAProxy and Prometheus are installed here when missing; the tests start every process they
# need (these services, the scalepilot daemon, backends, load) on loopback and stop it by PID.
set -euo pipefail
cd "$(dirname "$0")/.."

if ! command -v cargo >/dev/null 2>&1 && [ -f "$HOME/.cargo/env" ]; then
    # shellcheck disable=SC1091
    . "$HOME/.cargo/env"
fi
if command -v rustup >/dev/null 2>&1; then
    for c in rustfmt clippy; do
        rustup component list --installed 2>/dev/null | grep -q "^$c" || rustup component add "$c"
    done
fi

# Everything to undo on exit, in order (one EXIT trap runs them all).
cleanup=()
on_exit() {
    local c
    for c in "${cleanup[@]}"; do
        eval "$c" || true
    done
}
trap on_exit EXIT

# Real services the tests drive (they start them on loopback themselves and stop them by PID).
need=()
command -v haproxy >/dev/null 2>&1 || need+=(haproxy)
command -v prometheus >/dev/null 2>&1 || need+=(prometheus)
command -v python3 >/dev/null 2>&1 || need+=(python3)
# The API's TLS test makes a self-signed certificate with it.
command -v openssl >/dev/null 2>&1 || need+=(openssl)
if [ ${#need[@]} -gt 0 ]; then
    echo "== installing ${need[*]}"
    sudo=""
    [ "$(id -u)" -eq 0 ] || sudo="sudo"
    # Never let package scripts start the services on their default ports.
    if [ ! -e /usr/sbin/policy-rc.d ]; then
        printf '#!/bin/sh\nexit 101\n' | $sudo tee /usr/sbin/policy-rc.d >/dev/null
        $sudo chmod +x /usr/sbin/policy-rc.d
        cleanup+=("$sudo rm -f /usr/sbin/policy-rc.d")
    fi
    $sudo apt-get update -q
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -q --no-install-recommends "${need[@]}"
fi

echo "== the core stays pure (no runtime, database, HTTP client or server)"
if cargo tree -p scalepilot-core -e normal --prefix none | grep -E '^(tokio|sqlx|reqwest|axum|hyper) '; then
    echo "scalepilot-core depends on an IO crate (above): keep IO in the engine or store crates" >&2
    exit 1
fi
echo "== cargo fmt --check"
cargo fmt --all -- --check
echo "== cargo clippy"
cargo clippy --workspace --all-targets -- -D warnings
echo "== PostgreSQL for the store tests (scripts/postgres.sh; stopped on exit)"
cleanup+=("./scripts/postgres.sh stop")
pg_env=$(./scripts/postgres.sh start)
eval "$pg_env"
export SCALEPILOT_PG_URL
echo "== cargo test"
cargo test --workspace
echo "== the web dashboard in headless Chromium (scripts/browser-test.sh)"
# No screenshot here: a test run must not rewrite the committed docs/dashboard.png.
SP_SCREENSHOT= ./scripts/browser-test.sh
echo "== all tests passed"
