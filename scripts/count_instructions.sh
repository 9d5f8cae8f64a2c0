#!/usr/bin/env bash
# Instructions per value of `pickle::transcode` for every shape of benches/transcode.rs: the
# load- and layout-independent column of README "Transcoder vs CPython".
#
#   scripts/count_instructions.sh            # every shape
#   scripts/count_instructions.sh set_1500   # the shapes named
#
# For each shape, `picklebridge transcode --out-dir` converts N1 and then N2 copies of the
# fixture under valgrind's callgrind, which counts only inside `picklebridge::pickle::transcode`
# (--toggle-collect); the figure is (count(N2) - count(N1)) / (N2 - N1), so what a first call
# pays once (thread-local scratch, the summary cache) is left out. Installs valgrind with
# apt-get when missing. Uses the release build (`cargo build --release`).
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
N1=20
N2=60

log() { printf '[count-instructions %(%H:%M:%S)T] %s\n' -1 "$*" >&2; }

if ! command -v valgrind >/dev/null; then
    log "installing valgrind"
    SUDO=(); [ "$(id -u)" = 0 ] || SUDO=(sudo -n)
    "${SUDO[@]}" env DEBIAN_FRONTEND=noninteractive apt-get update -qq
    "${SUDO[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq valgrind >/dev/null
fi

log "building (release)"
cargo build --release --bin picklebridge --quiet
BIN="$(cargo metadata --format-version 1 --no-deps \
    | python3 -c 'import json, sys; print(json.load(sys.stdin)["target_directory"])')/release/picklebridge"
[ -x "$BIN" ] || { echo "$BIN not found" >&2; exit 1; }

WORK="$(mktemp -d)"
trap 'rm -rf "$WORK"' EXIT

# The shapes, straight from the bench: ("name", "fixture stem", Runtime::Py2|Py3, Expect::...).
mapfile -t SHAPES < <(sed -n 's/^ *("\([a-z0-9_]*\)", *"\([a-z0-9_]*\)", *Runtime::\(Py[23]\),.*/\1 \2 \3/p' \
    benches/transcode.rs)
[ ${#SHAPES[@]} -gt 0 ] || { echo "no shapes found in benches/transcode.rs" >&2; exit 1; }

# Instructions inside pickle::transcode while converting $2 copies of fixture $1 for reader $3.
count() {
    local stem=$1 copies=$2 reader=$3 dir="$WORK/in-$2" i
    rm -rf "$dir" "$WORK/out" && mkdir -p "$dir" "$WORK/out"
    for ((i = 0; i < copies; i++)); do
        cp "tests/fixtures/pickles/$stem.pickle" "$dir/$i.pickle"
    done
    valgrind --tool=callgrind --toggle-collect='picklebridge::pickle::transcode' \
        --callgrind-out-file="$WORK/cg.out" \
        "$BIN" transcode --to "$reader" --out-dir "$WORK/out" "$dir"/*.pickle >/dev/null 2>&1
    sed -n 's/^totals: \([0-9]*\).*/\1/p' "$WORK/cg.out"
}

printf '%-28s %-30s %-6s %12s\n' shape fixture reader instructions
for entry in "${SHAPES[@]}"; do
    read -r name stem runtime <<<"$entry"
    if [ $# -gt 0 ] && [[ " $* " != *" $name "* ]]; then
        continue
    fi
    reader=$(tr '[:upper:]' '[:lower:]' <<<"$runtime")
    a=$(count "$stem" "$N1" "$reader")
    b=$(count "$stem" "$N2" "$reader")
    printf '%-28s %-30s %-6s %12d\n' "$name" "$stem" "$reader" $(((b - a) / (N2 - N1)))
done
