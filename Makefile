# picklebridge: `make demo` and `make test` set up everything they need on a fresh Debian machine.
.PHONY: all build setup test fixtures demo bench bench-load fuzz lint fmt clean

all: build

build:
	cargo build --release

# Installs Debian packages, the Python 3 virtualenv and CPython 2.7 into .cache/ (idempotent).
setup:
	bash scripts/setup-debian.sh

# The whole suite: lint, every test (unit, integration, doc) and each bench run once in test mode.
test: setup
	cargo fmt --check
	cargo clippy --all-targets -- -D warnings
	cargo test
	cargo test --benches

# Starts memcached and the proxy (config/demo.toml) and shows Py3->Py2 and Py2->Py3 reads,
# each failing without the proxy first.
demo: setup build
	bash scripts/demo.sh

# Regenerates the golden pickles with the real interpreters (commit the result).
fixtures: setup
	.cache/bin/python2 scripts/gen_fixtures.py tests/fixtures/pickles
	.cache/bin/python3 scripts/gen_fixtures.py tests/fixtures/pickles

lint:
	cargo fmt --check
	cargo clippy --all-targets -- -D warnings

fmt:
	cargo fmt

clean:
	cargo clean

# Load benchmark against memcached, twemproxy and the proxy (README "Performance").
# `make bench-load QUICK=1` runs one short round as a smoke check.
bench-load:
	bash scripts/bench-load.sh $(if $(QUICK),--quick)
