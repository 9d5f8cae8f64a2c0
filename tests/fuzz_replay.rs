//! Replays the committed fuzz corpus (`fuzz/corpus/<target>/`) on stable with the same invariants
//! the cargo-fuzz targets assert (`fuzz/invariants/`), then runs bounded, seeded random mutations
//! of it. A failure prints the seed, the iteration and the input in hex, so it reproduces with
//! `PB_FUZZ_SEED=<seed>`; save the input under `fuzz/corpus/<target>/` to keep it.

use std::panic::{self, AssertUnwindSafe};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

#[path = "../fuzz/invariants/protocol.rs"]
mod protocol_invariants;
#[path = "../fuzz/invariants/transcode.rs"]
mod transcode_invariants;

/// Mutations per corpus run (and at most this much wall time, so a slow debug build stays bounded).
const MUTATIONS: usize = 20_000;
const TIME_BUDGET: Duration = Duration::from_secs(20);

fn corpus(target: &str) -> Vec<(PathBuf, Vec<u8>)> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("fuzz/corpus")
        .join(target);
    let mut entries: Vec<(PathBuf, Vec<u8>)> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("corpus {} unreadable: {e}", dir.display()))
        .map(|entry| entry.expect("dir entry").path())
        .filter(|path| path.is_file())
        .map(|path| {
            let data = std::fs::read(&path).expect("corpus file");
            (path, data)
        })
        .collect();
    entries.sort();
    assert!(!entries.is_empty(), "empty corpus {}", dir.display());
    entries
}

fn hex(data: &[u8]) -> String {
    data.iter().map(|b| format!("{b:02x}")).collect()
}

/// Runs `check` on `data`; on a panic, reports what reproduces it and fails the test.
fn run_case(what: &str, data: &[u8], check: fn(&[u8])) {
    if let Err(cause) = panic::catch_unwind(AssertUnwindSafe(|| check(data))) {
        let msg = cause
            .downcast_ref::<String>()
            .map(String::as_str)
            .or_else(|| cause.downcast_ref::<&str>().copied())
            .unwrap_or("(non-string panic)");
        panic!(
            "invariant failed for {what}: {msg}\ninput ({} bytes): {}",
            data.len(),
            hex(data)
        );
    }
}

/// splitmix64: a tiny deterministic generator (no dependency, same sequence everywhere).
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }
}

/// One structure-unaware mutation: flips, interesting bytes, truncation, splices, duplication.
fn mutate(rng: &mut Rng, seed: &[u8], other: &[u8], interesting: &[u8]) -> Vec<u8> {
    let mut data = seed.to_vec();
    for _ in 0..1 + rng.below(4) {
        let at = rng.below(data.len() + 1);
        match rng.below(7) {
            0 if at < data.len() => data[at] ^= 1 << rng.below(8),
            1 if at < data.len() => data[at] = interesting[rng.below(interesting.len())],
            2 => data.truncate(at),
            3 => data.insert(at, interesting[rng.below(interesting.len())]),
            4 if at < data.len() => {
                let end = (at + 1 + rng.below(16)).min(data.len());
                let piece = data[at..end].to_vec();
                data.splice(at..at, piece);
            }
            5 => {
                let from = rng.below(other.len() + 1);
                data.truncate(at);
                data.extend_from_slice(&other[from..]);
            }
            _ if at < data.len() => data[at] = rng.next() as u8,
            _ => data.push(rng.next() as u8),
        }
    }
    data
}

fn seed() -> u64 {
    match std::env::var("PB_FUZZ_SEED") {
        Ok(text) => text.parse().expect("PB_FUZZ_SEED is a u64"),
        Err(_) => 0x5eed_2026,
    }
}

fn mutate_corpus(target: &str, interesting: &[u8], check: fn(&[u8])) {
    let seed = seed();
    let entries = corpus(target);
    let mut rng = Rng(seed);
    let start = Instant::now();
    let mut runs = 0;
    while runs < MUTATIONS && start.elapsed() < TIME_BUDGET {
        let (_, base) = &entries[rng.below(entries.len())];
        let (_, other) = &entries[rng.below(entries.len())];
        let data = mutate(&mut rng, base, other, interesting);
        run_case(
            &format!("{target} seed {seed} iteration {runs}"),
            &data,
            check,
        );
        runs += 1;
    }
    eprintln!(
        "{target}: {runs} mutations of {} corpus entries, seed {seed}",
        entries.len()
    );
    assert!(runs >= 1000, "only {runs} mutations ran in {TIME_BUDGET:?}");
}

/// Pickle opcode bytes plus lengths that hit boundaries.
const PICKLE_BYTES: &[u8] =
    b"\x80\x95\x8c\x93\x94\x81\x92\x85\x86\x87\x88\x89\x8a\x8b\x8d\x8e\x96\x97\x98\
(.0123456789:=BCFGIJKLMNPQRSTUVX]abcdeghijlopqrstu}\x00\x01\x02\x04\x05\x7f\xff\n";

#[test]
fn transcode_corpus_replays_clean() {
    for (path, data) in corpus("transcode") {
        run_case(
            &path.display().to_string(),
            &data,
            transcode_invariants::check_transcode,
        );
    }
}

#[test]
fn transcode_seeded_mutations_keep_invariants() {
    mutate_corpus(
        "transcode",
        PICKLE_BYTES,
        transcode_invariants::check_transcode,
    );
}

/// Bytes that matter to the memcache text protocol: separators, digits, signs, command letters.
const PROTOCOL_BYTES: &[u8] =
    b"\r\n \t\x000123456789-+acdefgiklmnopqrstuvxyzABCDEFKLNORSTUV\x7f\xff";

#[test]
fn parse_request_corpus_replays_clean() {
    for (path, data) in corpus("parse_request") {
        run_case(
            &path.display().to_string(),
            &data,
            protocol_invariants::check_parse_request,
        );
    }
}

#[test]
fn parse_request_seeded_mutations_keep_invariants() {
    mutate_corpus(
        "parse_request",
        PROTOCOL_BYTES,
        protocol_invariants::check_parse_request,
    );
}

#[test]
fn parse_response_corpus_replays_clean() {
    for (path, data) in corpus("parse_response") {
        run_case(
            &path.display().to_string(),
            &data,
            protocol_invariants::check_parse_response,
        );
    }
}

#[test]
fn parse_response_seeded_mutations_keep_invariants() {
    mutate_corpus(
        "parse_response",
        PROTOCOL_BYTES,
        protocol_invariants::check_parse_response,
    );
}
