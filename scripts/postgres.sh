#!/usr/bin/env bash
# A PostgreSQL server for the test suite, on a free loopback port, in a directory of its own.
#
#   eval "$(./scripts/postgres.sh start)"   # prints: export SCALEPILOT_PG_URL=postgres://...
#   ./scripts/postgres.sh stop              # stops it by its postmaster PID, removes its data
#
# PostgreSQL is installed with apt-get when missing. The server programs refuse to run as
# root: as root they run as the `postgres` user. The state (PID, directory, URL) is kept in
# target/pg/state. The machine's own clusters (5432) are never touched.
set -euo pipefail
cd "$(dirname "$0")/.."

state_dir="${SCALEPILOT_PG_STATE_DIR:-$PWD/target/pg}"
state="$state_dir/state"

log() { echo "$@" >&2; }

pg_bin() {
    if [ -n "${PG_BIN:-}" ]; then
        echo "$PG_BIN"
        return
    fi
    local found
    found=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1 || true)
    [ -n "$found" ] && [ -x "$found/initdb" ] && echo "$found"
}

install_postgres() {
    log "== installing postgresql"
    local sudo=""
    [ "$(id -u)" -eq 0 ] || sudo="sudo"
    local guard=""
    # Never let the package scripts start the system cluster on its default port.
    if [ ! -e /usr/sbin/policy-rc.d ]; then
        printf '#!/bin/sh\nexit 101\n' | $sudo tee /usr/sbin/policy-rc.d >/dev/null
        $sudo chmod +x /usr/sbin/policy-rc.d
        guard=1
    fi
    $sudo apt-get update -q >&2
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -q --no-install-recommends postgresql >&2 \
        || { [ -n "$guard" ] && $sudo rm -f /usr/sbin/policy-rc.d; exit 1; }
    [ -n "$guard" ] && $sudo rm -f /usr/sbin/policy-rc.d
    true
}

free_port() {
    python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])' 2>/dev/null \
        || echo $((20000 + RANDOM % 20000))
}

as_pg() {
    if [ "$(id -u)" -eq 0 ]; then
        runuser -u postgres -- "$@"
    else
        "$@"
    fi
}

start() {
    if [ -f "$state" ]; then
        # shellcheck disable=SC1090
        . "$state"
        if [ -n "${PG_PID:-}" ] && kill -0 "$PG_PID" 2>/dev/null; then
            log "PostgreSQL already running (pid $PG_PID)"
            echo "export SCALEPILOT_PG_URL=$PG_URL"
            return
        fi
        rm -rf "${PG_DIR:-/nonexistent}"
        rm -f "$state"
    fi
    local bin
    bin=$(pg_bin || true)
    if [ -z "$bin" ]; then
        install_postgres
        bin=$(pg_bin || true)
        [ -n "$bin" ] || { log "PostgreSQL is still missing after installing it"; exit 1; }
    fi
    # A world-traversable directory: the postgres user must reach the data directory.
    local dir
    dir=$(mktemp -d /tmp/scalepilot-pg.XXXXXX)
    chmod 0755 "$dir"
    [ "$(id -u)" -eq 0 ] && chown postgres:postgres "$dir"
    as_pg "$bin/initdb" -D "$dir/data" -U postgres --auth=trust --no-sync -E UTF8 --no-locale >"$dir/initdb.log" 2>&1 \
        || { log "initdb failed:"; cat "$dir/initdb.log" >&2; rm -rf "$dir"; exit 1; }
    local port tries=0
    while :; do
        port=$(free_port)
        if as_pg "$bin/pg_ctl" -D "$dir/data" -l "$dir/log" -w -t 60 \
            -o "-c listen_addresses=127.0.0.1 -c port=$port -c unix_socket_directories=$dir -c fsync=off -c max_connections=300" \
            start >&2; then
            break
        fi
        tries=$((tries + 1))
        if [ "$tries" -ge 3 ]; then
            log "PostgreSQL did not start:"
            cat "$dir/log" >&2 || true
            rm -rf "$dir"
            exit 1
        fi
    done
    local pid url
    pid=$(head -n 1 "$dir/data/postmaster.pid")
    url="postgres://postgres@127.0.0.1:$port/postgres"
    mkdir -p "$state_dir"
    printf 'PG_PID=%s\nPG_DIR=%s\nPG_URL=%s\n' "$pid" "$dir" "$url" >"$state"
    log "PostgreSQL started (pid $pid, port $port, dir $dir)"
    echo "export SCALEPILOT_PG_URL=$url"
}

stop() {
    [ -f "$state" ] || { log "no PostgreSQL started by this script"; return 0; }
    # shellcheck disable=SC1090
    . "$state"
    if [ -n "${PG_PID:-}" ] && kill -0 "$PG_PID" 2>/dev/null; then
        kill -INT "$PG_PID" 2>/dev/null || true
        for _ in $(seq 1 100); do
            # Gone, or a zombie waiting to be reaped.
            if ! kill -0 "$PG_PID" 2>/dev/null || grep -q '^[^)]*) Z' "/proc/$PG_PID/stat" 2>/dev/null; then
                break
            fi
            sleep 0.1
        done
        if kill -0 "$PG_PID" 2>/dev/null && ! grep -q '^[^)]*) Z' "/proc/$PG_PID/stat" 2>/dev/null; then
            kill -KILL "$PG_PID" 2>/dev/null || true
        fi
    fi
    case "${PG_DIR:-}" in
        /tmp/scalepilot-pg.*) rm -rf "$PG_DIR" ;;
    esac
    rm -f "$state"
    log "PostgreSQL stopped"
}

case "${1:-}" in
    start) start ;;
    stop) stop ;;
    *)
        echo "usage: $0 start|stop" >&2
        exit 2
        ;;
esac
