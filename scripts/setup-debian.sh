#!/usr/bin/env bash
# Installs everything `make test` and `make demo` need on a fresh Debian 12 machine. Idempotent:
# each step checks what is already there and does nothing when it is.
#
#   1. Debian packages (memcached, promtool, nutcracker, libmemcached-tools, python3-venv, openssl
#      (test certificates for TLS to memcached) and the shared libraries CPython 2.7 loads); `apt-get update` only when something must be installed.
#   2. .cache/venv: a Python 3 virtualenv from the pinned scripts/requirements-py3.txt.
#   3. .cache/py27: CPython 2.7.18 from Debian bullseye debs, fetched with `apt-get download`
#      against a PRIVATE sources list, state and cache (the system apt configuration is untouched)
#      and unpacked with `dpkg -x`; bullseye-only libraries it needs (libssl1.1, libffi7) too.
#   4. .cache/py2-wheels: pure Python 2 wheels from scripts/requirements-py2.txt.
#   5. .cache/bin/python2 and .cache/bin/python3: the one path each that tests and scripts use.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
CACHE="$ROOT/.cache"
BIN="$CACHE/bin"
VENV="$CACHE/venv"
PY27="$CACHE/py27"
WHEELS="$CACHE/py2-wheels"
APT_PRIV="$CACHE/apt-bullseye"
export DEBIAN_FRONTEND=noninteractive

log() { printf 'setup: %s\n' "$*" >&2; }
die() { printf 'setup: error: %s\n' "$*" >&2; exit 1; }

# ---------------------------------------------------------------------------------------------
# 1. Debian packages.
# Runtime libraries of python2.7 (bullseye's libpython2.7-stdlib Depends) that Debian 12 ships
# under the same names are installed from Debian 12; the others come from bullseye in step 3.
APT_PACKAGES=(
    memcached prometheus nutcracker libmemcached-tools python3 python3-venv ca-certificates openssl
    libbz2-1.0 libcrypt1 libdb5.3 libexpat1 libncursesw6 libnsl2 libreadline8 libsqlite3-0
    libtinfo6 libtirpc3 zlib1g media-types
)

missing=()
for pkg in "${APT_PACKAGES[@]}"; do
    status="$(dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null || true)"
    [[ "$status" == "install ok installed" ]] || missing+=("$pkg")
done
if ((${#missing[@]})); then
    log "installing Debian packages: ${missing[*]}"
    SUDO=()
    if [[ "$(id -u)" != 0 ]]; then
        command -v sudo >/dev/null || die "need root (or sudo) to install: ${missing[*]}"
        SUDO=(sudo)
    fi
    "${SUDO[@]}" apt-get update -q
    "${SUDO[@]}" apt-get install -y -q --no-install-recommends "${missing[@]}"
fi
for tool in /usr/bin/memcached /usr/bin/promtool /usr/sbin/nutcracker /usr/bin/openssl; do
    [[ -x "$tool" ]] || die "$tool missing after apt-get install"
done

mkdir -p "$BIN"

# ---------------------------------------------------------------------------------------------
# 2. Python 3 virtualenv from pinned requirements (re-created when the requirements change).
PY3_REQ="$ROOT/scripts/requirements-py3.txt"
py3_stamp="$VENV/.requirements.sha256"
want="$(sha256sum "$PY3_REQ" | cut -d' ' -f1)"
if [[ ! -x "$VENV/bin/python3" || "$(cat "$py3_stamp" 2>/dev/null)" != "$want" ]]; then
    log "creating $VENV from $PY3_REQ"
    rm -rf "$VENV"
    /usr/bin/python3 -m venv "$VENV"
    "$VENV/bin/python3" -m pip install -q --no-input --disable-pip-version-check --no-deps \
        -r "$PY3_REQ"
    echo "$want" >"$py3_stamp"
fi
cat >"$BIN/python3" <<'EOF'
#!/bin/sh
# The project's Python 3: the virtualenv made by scripts/setup-debian.sh.
here="$(cd "$(dirname "$0")/.." && pwd)"
exec "$here/venv/bin/python3" "$@"
EOF
chmod +x "$BIN/python3"

# ---------------------------------------------------------------------------------------------
# 3. CPython 2.7.18 from Debian bullseye debs, with a private apt configuration.
PY27_DEBS=(python2.7 python2.7-minimal libpython2.7-minimal libpython2.7-stdlib libssl1.1 libffi7)
py27_stamp="$PY27/.debs"
if [[ ! -x "$PY27/usr/bin/python2.7" || "$(cat "$py27_stamp" 2>/dev/null)" != "${PY27_DEBS[*]}" ]]; then
    log "fetching CPython 2.7 from Debian bullseye into $PY27"
    mkdir -p "$APT_PRIV/lists/partial" "$APT_PRIV/cache/archives/partial" "$APT_PRIV/debs"
    echo 'deb http://deb.debian.org/debian bullseye main' >"$APT_PRIV/sources.list"
    APT_OPTS=(
        -o "Dir::Etc::SourceList=$APT_PRIV/sources.list"
        -o "Dir::Etc::SourceParts=/dev/null"
        -o "Dir::State::Lists=$APT_PRIV/lists"
        -o "Dir::Cache=$APT_PRIV/cache"
        -o "Debug::NoLocking=1"
        -o "APT::Sandbox::User=root"
        -o "Acquire::IndexTargets::deb::DEP-11::DefaultEnabled=false"
    )
    apt-get "${APT_OPTS[@]}" update -q
    rm -f "$APT_PRIV/debs/"*.deb
    (cd "$APT_PRIV/debs" && apt-get "${APT_OPTS[@]}" download "${PY27_DEBS[@]}")
    rm -rf "$PY27"
    mkdir -p "$PY27"
    for deb in "$APT_PRIV/debs/"*.deb; do
        dpkg -x "$deb" "$PY27"
    done
    echo "${PY27_DEBS[*]}" >"$py27_stamp"
fi

# ---------------------------------------------------------------------------------------------
# 4. Python 2 packages as pure wheels.
PY2_REQ="$ROOT/scripts/requirements-py2.txt"
py2_stamp="$WHEELS/.requirements.sha256"
want="$(sha256sum "$PY2_REQ" | cut -d' ' -f1)"
if [[ "$(cat "$py2_stamp" 2>/dev/null)" != "$want" ]]; then
    log "downloading Python 2 wheels into $WHEELS"
    rm -rf "$WHEELS"
    mkdir -p "$WHEELS"
    "$VENV/bin/python3" -m pip download -q --no-input --disable-pip-version-check \
        --python-version 2.7 --only-binary=:all: --no-deps -d "$WHEELS" -r "$PY2_REQ"
    echo "$want" >"$py2_stamp"
fi

cat >"$BIN/python2" <<'EOF'
#!/bin/sh
# The project's Python 2: CPython 2.7.18 from Debian bullseye debs unpacked into .cache/py27,
# with the pure wheels of .cache/py2-wheels on its path (made by scripts/setup-debian.sh).
here="$(cd "$(dirname "$0")/.." && pwd)"
PYTHONHOME="$here/py27/usr"
LD_LIBRARY_PATH="$here/py27/usr/lib/x86_64-linux-gnu${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
wheels=""
for whl in "$here"/py2-wheels/*.whl; do
    [ -e "$whl" ] && wheels="$wheels${wheels:+:}$whl"
done
PYTHONPATH="$wheels${PYTHONPATH:+:$PYTHONPATH}"
export PYTHONHOME LD_LIBRARY_PATH PYTHONPATH
exec "$here/py27/usr/bin/python2.7" "$@"
EOF
chmod +x "$BIN/python2"

# ---------------------------------------------------------------------------------------------
# 5. Verify both interpreters with the modules the tests rely on.
"$BIN/python2" -c 'import cPickle, pickle, memcache, six, datetime, decimal, collections, zlib, hashlib; assert __import__("sys").version_info[:3] == (2, 7, 18); print 1' >/dev/null \
    || die "CPython 2.7 in $PY27 does not run (remove $PY27 and rerun)"
"$BIN/python3" -c 'import pickle, pymemcache, memcache, django; from django.core.cache.backends.memcached import PyMemcacheCache' \
    || die "the Python 3 virtualenv in $VENV is broken (remove it and rerun)"
log "ok: $("$BIN/python2" -V 2>&1), $("$BIN/python3" -V 2>&1), $(/usr/bin/memcached -V)"
