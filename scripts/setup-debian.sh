#!/usr/bin/env bash
# Installs everything `make test` and `make demo` need on a fresh Debian 12 machine. Idempotent:
# each step checks what is already there and does nothing when it is.
#
#   0. The Rust toolchain is checked, not installed: cargo and rustc 1.80+ with rustfmt and clippy,
#      from rustup (Debian 12's cargo is 1.63, too old for the crates this project uses).
#   1. Debian packages (memcached, promtool, nutcracker, libmemcached-tools, python3-venv, openssl
#      (test certificates for TLS to memcached), gcc for crates that build C, and the shared
#      libraries CPython 2.7 loads); `apt-get update` only when something must be installed.
#      Services the packages start (memcached, prometheus) are stopped and disabled when this
#      run installed them: the tests start their own, on free loopback ports.
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

# Two `make` runs at once in one checkout set up one .cache: the second waits for the first
# (flock is util-linux's, essential on Debian), then finds everything there.
mkdir -p "$CACHE"
exec 9>"$CACHE/.setup.lock"
flock 9

# ---------------------------------------------------------------------------------------------
# 0. The Rust toolchain (rustup's; checked only).
RUST_MIN=80
rust_hint="install Rust 1.$RUST_MIN or later with rustup (https://rustup.rs), then: rustup component add rustfmt clippy"
command -v cargo >/dev/null || die "cargo not found: $rust_hint"
rust_minor="$(rustc --version 2>/dev/null | sed -n 's/^rustc 1\.\([0-9]*\)\..*/\1/p')"
[[ -n "$rust_minor" && "$rust_minor" -ge "$RUST_MIN" ]] \
    || die "rustc 1.$RUST_MIN or later needed, found '$(rustc --version 2>&1)': $rust_hint"
cargo fmt --version >/dev/null 2>&1 || die "cargo fmt not found: $rust_hint"
cargo clippy --version >/dev/null 2>&1 || die "cargo clippy not found: $rust_hint"

# ---------------------------------------------------------------------------------------------
# 1. Debian packages.
# Runtime libraries of python2.7 (bullseye's libpython2.7-stdlib Depends) that Debian 12 ships
# under the same names are installed from Debian 12; the others come from bullseye in step 3.
APT_PACKAGES=(
    memcached prometheus nutcracker libmemcached-tools python3 python3-venv ca-certificates openssl
    gcc libc6-dev
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
        # No password prompt (CI has no terminal); sudo would drop DEBIAN_FRONTEND.
        SUDO=(sudo -n env DEBIAN_FRONTEND=noninteractive)
    fi
    "${SUDO[@]}" apt-get update -q || die "apt-get update failed (root or passwordless sudo needed)"
    # 9>&-: a service the packages start without systemd must not inherit (and hold) the lock.
    "${SUDO[@]}" apt-get install -y -q --no-install-recommends "${missing[@]}" 9>&-
    # Debian starts the daemons it installs (prometheus on :9090 of every interface): stop the
    # ones installed just now; the tests start their own on loopback.
    if [[ -d /run/systemd/system ]]; then
        for svc in memcached prometheus; do
            if [[ " ${missing[*]} " == *" $svc "* ]]; then
                log "stopping and disabling the $svc service that apt-get started"
                "${SUDO[@]}" systemctl disable --now "$svc" >/dev/null 2>&1 || true
            fi
        done
    fi
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

# The unpacked libraries' multiarch folder (x86_64-linux-gnu, aarch64-linux-gnu, ...).
multiarch=""
for dir in "$PY27"/usr/lib/*-linux-gnu*; do
    [[ -d "$dir" ]] && multiarch="$(basename "$dir")" && break
done
[[ -n "$multiarch" ]] || die "no <arch>-linux-gnu library folder in $PY27/usr/lib (remove $PY27 and rerun)"
cat >"$BIN/python2" <<EOF
#!/bin/sh
# The project's Python 2: CPython 2.7.18 from Debian bullseye debs unpacked into .cache/py27,
# with the pure wheels of .cache/py2-wheels on its path (made by scripts/setup-debian.sh).
MULTIARCH=$multiarch
EOF
cat >>"$BIN/python2" <<'EOF'
here="$(cd "$(dirname "$0")/.." && pwd)"
PYTHONHOME="$here/py27/usr"
LD_LIBRARY_PATH="$here/py27/usr/lib/$MULTIARCH${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
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
