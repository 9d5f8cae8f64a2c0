#!/usr/bin/env bash
# `make demo`: a Python 3 value read by Python 2 and a Python 2 value read by Python 3, each
# first straight from memcached (failing with the real errors) and then through picklebridge.
# Starts memcached (free loopback port) and the proxy from config/demo.toml (py2 listener
# 127.0.0.1:11311, py3 listener 127.0.0.1:11312); stops both on exit.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
PY2=.cache/bin/python2
PY3=.cache/bin/python3
BIN="${PICKLEBRIDGE_BIN:-${CARGO_TARGET_DIR:-target}/release/picklebridge}"
PY2_LISTENER=127.0.0.1:11311
PY3_LISTENER=127.0.0.1:11312

pids=()
cleanup() {
    for pid in "${pids[@]}"; do
        kill "$pid" 2>/dev/null || true
    done
    for pid in "${pids[@]}"; do
        wait "$pid" 2>/dev/null || true
    done
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# Waits (100 tries, 5-10 s at most) until HOST:PORT accepts connections.
wait_port() {
    for _ in $(seq 1 100); do
        if "$PY3" -c "import socket,sys; socket.create_connection(('${1%:*}', ${1##*:}), 0.2)" \
            2>/dev/null; then
            return 0
        fi
        sleep 0.05
    done
    echo "demo: nothing listening on $1 after 5 s" >&2
    return 1
}

for addr in "$PY2_LISTENER" "$PY3_LISTENER"; do
    if "$PY3" -c "import socket; socket.create_connection(('${addr%:*}', ${addr##*:}), 0.2)" \
        2>/dev/null; then
        echo "demo: $addr is already in use (config/demo.toml needs it)" >&2
        exit 1
    fi
done

MC_PORT="$("$PY3" -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')"
MC="127.0.0.1:$MC_PORT"
/usr/bin/memcached -u root -l 127.0.0.1 -p "$MC_PORT" -U 0 &
pids+=($!)
wait_port "$MC"
"$BIN" serve --config config/demo.toml --upstream "$MC" 2>.cache/demo-proxy.log &
pids+=($!)
wait_port "$PY2_LISTENER"
wait_port "$PY3_LISTENER"

echo "== memcached on $MC; picklebridge: py2 clients -> $PY2_LISTENER, py3 clients -> $PY3_LISTENER"
echo
echo "== 1. Python 3 writes, Python 2 reads"
echo "-- without the proxy (both talk to memcached $MC):"
"$PY3" scripts/demo_py3.py write "$MC" demo:py3-profile
rc=0; "$PY2" scripts/demo_py2.py read "$MC" demo:py3-profile || rc=$?
if [ "$rc" != 1 ]; then
    echo "demo: expected Python 2 to fail to unpickle without the proxy (exit 1), got exit $rc" >&2
    exit 1
fi
echo "-- through picklebridge:"
"$PY3" scripts/demo_py3.py write "$PY3_LISTENER" demo:py3-profile
"$PY2" scripts/demo_py2.py read "$PY2_LISTENER" demo:py3-profile \
    || { echo "demo: FAILED: Python 2 cannot read the value through the proxy" >&2; exit 1; }
echo
echo "== 2. Python 2 writes, Python 3 reads"
echo "-- without the proxy:"
"$PY2" scripts/demo_py2.py write "$MC" demo:py2-profile
rc=0; "$PY3" scripts/demo_py3.py read "$MC" demo:py2-profile || rc=$?
if [ "$rc" != 1 ]; then
    echo "demo: expected Python 3 to fail to unpickle without the proxy (exit 1), got exit $rc" >&2
    exit 1
fi
echo "-- through picklebridge:"
"$PY2" scripts/demo_py2.py write "$PY2_LISTENER" demo:py2-profile
"$PY3" scripts/demo_py3.py read "$PY3_LISTENER" demo:py2-profile \
    || { echo "demo: FAILED: Python 3 cannot read the value through the proxy" >&2; exit 1; }
echo
echo "== done (proxy log: .cache/demo-proxy.log)"
