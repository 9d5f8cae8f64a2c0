# picklebridge: `make demo` and `make test` set up everything they need on a fresh Debian machine.
.PHONY: all build setup test fixtures py3-only-table protocol-diff demo bench bench-load bench-instructions fuzz lint fmt clean

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

# Request bytes to memcached and through the proxy, replies compared (by hand; README
# "Where a client can tell it from memcached"). FAMILIES: empty for all.
protocol-diff: setup
	cargo build --release
	python3 scripts/protocol_diff/run.py $(FAMILIES)

# The globals Python 2 lacks (src/pickle/compat/py3_only.rs) and those Python 3 lacks
# (src/pickle/compat/py2_only.rs), from both real interpreters.
py3-only-table: setup
	.cache/bin/python3 scripts/gen_py3_only.py

lint:
	cargo fmt --check
	cargo clippy --all-targets -- -D warnings
	RUSTDOCFLAGS="-D warnings" cargo doc --no-deps

fmt:
	cargo fmt

clean:
	cargo clean

# Criterion micro-benchmarks of the transcoder, the protocol codec and metrics, and the load
# generator's checks (README "Performance"); `make bench BENCH=transcode` runs one of them.
bench: setup
	cargo bench $(if $(BENCH),--bench $(BENCH))

# Instructions per value of pickle::transcode for each shape of benches/transcode.rs, counted
# by callgrind (installs valgrind when missing); README "Transcoder vs CPython".
bench-instructions:
	bash scripts/count_instructions.sh

# Load benchmark against memcached, twemproxy and the proxy (README "Performance").
# `make bench-load QUICK=1` runs one short round as a smoke check.
bench-load: setup
	bash scripts/bench-load.sh $(if $(QUICK),--quick)

# Fuzzing (nightly + cargo-fuzz, installed if missing), with debug assertions (so the transcode
# target also checks the fast path against the general path): each target runs FUZZ_SECONDS on
# a scratch corpus seeded from the committed fuzz/corpus/<target>/; crashes land in
# fuzz/artifacts/<target>/.
# The committed corpus is replayed on stable by tests/fuzz_replay.rs as part of `make test`.
FUZZ_SECONDS ?= 60
FUZZ_TARGETS ?= transcode parse_request parse_response
fuzz:
	command -v cargo-fuzz >/dev/null || cargo install --locked cargo-fuzz
	for t in $(FUZZ_TARGETS); do \
		mkdir -p fuzz/target/work/$$t && \
		cargo +nightly fuzz run --debug-assertions $$t fuzz/target/work/$$t fuzz/corpus/$$t -- \
			-max_total_time=$(FUZZ_SECONDS) -timeout=10 -rss_limit_mb=2048 -print_final_stats=1 \
			|| exit 1; \
	done
