#!/usr/bin/env bash
# Load benchmark (issue 5): the same closed-loop loads against memcached direct, twemproxy
# (Debian's nutcracker) and picklebridge in passthrough and transcode mode, all in front of ONE
# memcached, interleaved A/B over several rounds in one run. Prints Markdown tables (medians over
# rounds) with ops/s, p50/p99/p99.9 latency, CPU seconds per million requests and RSS of the
# target process, then the RSS of each target at 1 000 client connections (50 active + 950 idle).
#
# Usage: scripts/bench-load.sh [--quick] [--out DIR]
#   --quick   one round of 1 s per load (smoke check, ~1 minute); default: 5 rounds of 3 s (~7 min)
#   --out     where results go (default target/bench-load): results.jsonl, report.md, logs
#
# Everything listens on 127.0.0.1 free ports; every wait is bounded; every process started here
# is stopped on exit (trap). Installs memcached and nutcracker with apt-get when missing.
set -euo pipefail
cd "$(dirname "$0")/.."

QUICK=0
OUT=target/bench-load
while [ $# -gt 0 ]; do
    case "$1" in
        --quick) QUICK=1 ;;
        --out) OUT="$2"; shift ;;
        *) echo "usage: $0 [--quick] [--out DIR]" >&2; exit 64 ;;
    esac
    shift
done

if [ "$QUICK" = 1 ]; then
    ROUNDS=1 WARMUP=0.3 DURATION=1 KEYS=2000 IDLE_DURATION=1
else
    ROUNDS=5 WARMUP=1 DURATION=3 KEYS=10000 IDLE_DURATION=3
fi
CONNECTIONS=50        # active closed-loop connections per run
DEPTH=8               # requests per pipelined batch on each connection
MAX_REQUESTS=20000000 # request budget per run, on top of the time bound
LOADS="${LOADS:-small large multiget pickle}"  # override: LOADS=pickle scripts/bench-load.sh

log() { printf '[bench-load %(%H:%M:%S)T] %s\n' -1 "$*" >&2; }

# --- tools -------------------------------------------------------------------------------------
need_apt=()
command -v memcached >/dev/null || need_apt+=(memcached)
command -v nutcracker >/dev/null || [ -x /usr/sbin/nutcracker ] || need_apt+=(nutcracker)
if [ ${#need_apt[@]} -gt 0 ]; then
    log "installing ${need_apt[*]}"
    SUDO=(); [ "$(id -u)" = 0 ] || SUDO=(sudo -n)
    "${SUDO[@]}" env DEBIAN_FRONTEND=noninteractive apt-get update -qq
    "${SUDO[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need_apt[@]}" >/dev/null
fi
MEMCACHED=$(command -v memcached)
NUTCRACKER=$(command -v nutcracker || echo /usr/sbin/nutcracker)
ulimit -n 8192 2>/dev/null || ulimit -n 4096 2>/dev/null || true
[ "$(ulimit -n)" -ge 2100 ] || { echo "need >= 2100 open files, have $(ulimit -n)" >&2; exit 1; }

log "building (release)"
cargo build --release --bin picklebridge
cargo bench --bench loadgen --no-run --quiet
LOADGEN=$(cargo bench --bench loadgen --no-run --message-format=json 2>/dev/null \
    | grep -o '"executable":"[^"]*loadgen[^"]*"' | tail -n1 | cut -d'"' -f4)
[ -x "$LOADGEN" ] || { echo "loadgen executable not found" >&2; exit 1; }
PICKLEBRIDGE="${CARGO_TARGET_DIR:-target}/release/picklebridge"

mkdir -p "$OUT"
RESULTS="$OUT/results.jsonl"
: >"$RESULTS"

# --- processes ---------------------------------------------------------------------------------
PIDS=()
cleanup() {
    for pid in "${PIDS[@]}"; do kill "$pid" 2>/dev/null || true; done
    for pid in "${PIDS[@]}"; do
        for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
        kill -9 "$pid" 2>/dev/null || true
    done
}
trap cleanup EXIT
# Interrupted: stop the servers and the run (not go on with the next rounds against dead ones).
trap 'exit 130' INT
trap 'exit 143' TERM

free_port() { "$LOADGEN" free-port; }

# wait_port PORT PID: until PORT accepts connections (10 s at most), failing if PID died.
wait_port() {
    for _ in $(seq 200); do
        if (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; then return 0; fi
        kill -0 "$2" 2>/dev/null || { echo "process $2 exited before listening on $1" >&2; return 1; }
        sleep 0.05
    done
    echo "port $1 not ready after 10 s" >&2
    return 1
}

MC_PORT=$(free_port)
run_as=(); [ "$(id -u)" = 0 ] && run_as=(-u root)
"$MEMCACHED" -l 127.0.0.1 -p "$MC_PORT" -U 0 -m 1024 -c 4096 -t 2 "${run_as[@]}" \
    >"$OUT/memcached.log" 2>&1 &
MC_PID=$!; PIDS+=("$MC_PID")
wait_port "$MC_PORT" "$MC_PID"
log "memcached $("$MEMCACHED" -V | cut -d' ' -f2) on 127.0.0.1:$MC_PORT (pid $MC_PID)"

TW_PORT=$(free_port); TW_STATS=$(free_port)
while [ "$TW_STATS" = "$TW_PORT" ]; do TW_STATS=$(free_port); done
cat >"$OUT/nutcracker.yml" <<EOF
bench:
  listen: 127.0.0.1:$TW_PORT
  hash: fnv1a_64
  distribution: ketama
  timeout: 5000
  redis: false
  preconnect: true
  auto_eject_hosts: false
  server_connections: 1
  servers:
    - 127.0.0.1:$MC_PORT:1
EOF
"$NUTCRACKER" -c "$OUT/nutcracker.yml" -a 127.0.0.1 -s "$TW_STATS" -o "$OUT/nutcracker.log" &
TW_PID=$!; PIDS+=("$TW_PID")
wait_port "$TW_PORT" "$TW_PID"
log "nutcracker $("$NUTCRACKER" --version 2>&1 | grep -o '[0-9][0-9.]*' | head -n1) on 127.0.0.1:$TW_PORT (pid $TW_PID)"

# label port pid, one line each
TARGETS=("memcached $MC_PORT $MC_PID" "twemproxy $TW_PORT $TW_PID")
# picklebridge_config MODE PORT: one py2 listener in front of the memcached, every key on one
# route in MODE ("passthrough": values never looked at; "transcode": pickles rewritten for py2).
picklebridge_config() {
    cat <<EOF
[[listener]]
address = "127.0.0.1:$2"
client = "py2"
name = "bench"

[pool.main]
servers = ["127.0.0.1:$MC_PORT"]

[[route]]
prefix = ""
pool = "main"
mode = "$1"

[timeouts]
request_ms = 5000   # as twemproxy's "timeout: 5000" above: same patience on an overloaded box
${3:-}
EOF
}

if "$PICKLEBRIDGE" serve --help 2>&1 | grep -q -- '--config'; then
    for mode in passthrough transcode; do
        port=$(free_port)
        picklebridge_config "$mode" "$port" >"$OUT/picklebridge-$mode.toml"
        "$PICKLEBRIDGE" serve --config "$OUT/picklebridge-$mode.toml" \
            >"$OUT/picklebridge-$mode.log" 2>&1 &
        pid=$!; PIDS+=("$pid")
        wait_port "$port" "$pid"
        TARGETS+=("pb-$mode $port $pid")
        log "picklebridge $mode on 127.0.0.1:$port (pid $pid)"
    done
    # The same passthrough on one worker thread (`[runtime] workers = 1`): a sidecar sharing its
    # host's cores with the application, as here with the load generator and memcached.
    port=$(free_port)
    picklebridge_config passthrough "$port" "$(printf '[runtime]\nworkers = 1')" \
        >"$OUT/picklebridge-1w.toml"
    if "$PICKLEBRIDGE" check-config "$OUT/picklebridge-1w.toml" >/dev/null 2>&1; then
        "$PICKLEBRIDGE" serve --config "$OUT/picklebridge-1w.toml" >"$OUT/picklebridge-1w.log" 2>&1 &
        pid=$!; PIDS+=("$pid")
        wait_port "$port" "$pid"
        TARGETS+=("pb-passthrough-1w $port $pid")
        log "picklebridge passthrough with 1 worker thread on 127.0.0.1:$port (pid $pid)"
    else
        log "this commit's picklebridge has no [runtime] workers: no pb-passthrough-1w rows"
    fi
else
    log "WARNING: this commit's picklebridge has no 'serve --config': picklebridge rows are absent"
fi

# --- load --------------------------------------------------------------------------------------
for load in $LOADS; do
    "$LOADGEN" prefill --target "127.0.0.1:$MC_PORT" --load "$load" --keys "$KEYS"
done
log "pre-filled $KEYS keys per load"

# Proof that the transcode rows measure a real rewrite: a pickle fetched through pb-transcode
# must load in CPython 2.7 (from `make setup`, .cache/bin/python2) and equal CPython 3's view.
PY2_CHECK="not run (no pb-transcode target or no .cache/bin/python2; run \`make setup\`)"
PY2_CHECK_FAILED=0
for target in "${TARGETS[@]}"; do
    read -r label port _ <<<"$target"
    [ "$label" = pb-transcode ] && [ -x .cache/bin/python2 ] || continue
    if out=$(timeout 20 .cache/bin/python2 scripts/bench_load_check.py "127.0.0.1:$port" 2>&1); then
        PY2_CHECK="passed: $out"
    else
        PY2_CHECK="FAILED: $(echo "$out" | tail -n1)"
        PY2_CHECK_FAILED=1
    fi
done
log "CPython 2.7 check of a pickle read through pb-transcode: $PY2_CHECK"

FAILED=0
LOAD_BEFORE=$(cut -d' ' -f1-3 /proc/loadavg)
# run LABEL PORT PID ROUND LOAD [extra loadgen args]
run() {
    local label=$1 port=$2 pid=$3 round=$4 load=$5
    shift 5
    "$LOADGEN" run --target "127.0.0.1:$port" --label "$label" --pid "$pid" --round "$round" \
        --load "$load" --keys "$KEYS" --depth "$DEPTH" --max-requests "$MAX_REQUESTS" "$@" \
        >>"$RESULTS" || FAILED=$((FAILED + 1))
}

n=${#TARGETS[@]}
for round in $(seq "$ROUNDS"); do
    for load in $LOADS; do
        # Rotate the order every round so no target always runs first (A/B interleaving).
        for i in $(seq 0 $((n - 1))); do
            read -r label port pid <<<"${TARGETS[$(((i + round - 1) % n))]}"
            run "$label" "$port" "$pid" "$round" "$load" \
                --connections "$CONNECTIONS" --warmup "$WARMUP" --duration "$DURATION"
        done
    done
done

log "1 000 client connections: $CONNECTIONS active + $((1000 - CONNECTIONS)) idle"
for target in "${TARGETS[@]}"; do
    read -r label port pid <<<"$target"
    run "$label" "$port" "$pid" 1 small --scenario conn1000 --connections "$CONNECTIONS" \
        --idle-connections $((1000 - CONNECTIONS)) --warmup "$WARMUP" --duration "$IDLE_DURATION"
done

LOAD_AFTER=$(cut -d' ' -f1-3 /proc/loadavg)

# --- report ------------------------------------------------------------------------------------
{
    echo "### Load benchmark run of $(date -u '+%Y-%m-%d %H:%M UTC') (commit $(git rev-parse --short HEAD))"
    echo
    echo "Machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //'),"
    echo "$(awk '/MemTotal/ {printf "%.0f GiB", $2/1048576}' /proc/meminfo) RAM, Linux $(uname -r)."
    echo "memcached $("$MEMCACHED" -V | cut -d' ' -f2) (-t 2), nutcracker $("$NUTCRACKER" --version 2>&1 | grep -o '[0-9][0-9.]*' | head -n1)."
    echo "Each run: $CONNECTIONS connections, pipeline depth $DEPTH, ${WARMUP} s warm-up + ${DURATION} s measured"
    echo "(at most $MAX_REQUESTS requests); $ROUNDS interleaved rounds; $KEYS pre-filled keys per load."
    echo "Load average (1/5/15 min) before the runs: $LOAD_BEFORE; after: $LOAD_AFTER."
    echo
    echo "CPython 2.7 loads a \`pickle\` value read through pb-transcode: $PY2_CHECK"
    "$LOADGEN" report "$RESULTS"
} >"$OUT/report.md"
cat "$OUT/report.md"
if [ "$FAILED" -gt 0 ]; then
    log "$FAILED runs saw errors or misses (see above and $RESULTS)"
    exit 1
fi
if [ "$PY2_CHECK_FAILED" = 1 ]; then
    log "the CPython 2.7 check of pb-transcode failed: $PY2_CHECK"
    exit 1
fi
log "done: $OUT/report.md"
