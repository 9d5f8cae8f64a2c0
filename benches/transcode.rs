//! Transcoder throughput over the golden corpus (tests/fixtures/pickles): per direction, values
//! that need no change (must be memcpy-like or better: no copy at all) against values that are
//! rewritten. Compare with scripts/bench_cpython.py (CPython `loads` + `dumps(obj, 2)` on the same
//! files). `cargo test --benches` runs each benchmark once; `cargo bench --bench transcode` measures.
use std::hint::black_box;
use std::path::PathBuf;

use bytes::Bytes;
use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use picklebridge::pickle::{analyze, transcode, Outcome, Policy, Runtime};

/// (shape, fixture stem, target, outcome): py3-written values read by py2 and py2-written values
/// read by py3, some of them already in the reader's form (`Unchanged`: all ASCII class
/// instances from Python 2, and the `unchanged_*` shapes).
#[rustfmt::skip]
const SHAPES: &[(&str, &str, Runtime, Expect)] = &[
    ("small_text_dict",            "text_dict_py3_p4",             Runtime::Py2, Expect::Rewritten),
    ("datetime",                   "datetime_naive_py3_p4",        Runtime::Py2, Expect::Rewritten),
    ("set_1500",                   "set_large_py3_p4",             Runtime::Py2, Expect::Rewritten),
    ("bytes_70k",                  "bytes_70000_py3_p5",           Runtime::Py2, Expect::Rewritten),
    ("classes",                    "class_all_py3_p4",             Runtime::Py2, Expect::Rewritten),
    ("dict_1500",                  "dict_large_py3_p4",            Runtime::Py2, Expect::Rewritten),
    ("unchanged_dict_1500",        "dict_large_py3_p2",            Runtime::Py2, Expect::Unchanged),
    ("unchanged_text_12k",         "unicode_long_py3_p2",          Runtime::Py2, Expect::Unchanged),
    ("py2_str_utf8",               "str_utf8_py2_p2_c",            Runtime::Py3, Expect::Rewritten),
    ("py2_datetimes",              "datetime_many_py2_p2_c",       Runtime::Py3, Expect::Rewritten),
    ("py2_mixed_keys",             "str_dict_mixed_keys_py2_p2_c", Runtime::Py3, Expect::Rewritten),
    ("py2_binary_70k",             "str_binary_70000_py2_p2_c",    Runtime::Py3, Expect::Rewritten),
    ("py2_classes",                "class_all_py2_p2_c",           Runtime::Py3, Expect::Unchanged),
    ("unchanged_py2_dict_1500",    "dict_large_py2_p2_c",          Runtime::Py3, Expect::Unchanged),
    ("unchanged_py2_unicode_12k",  "unicode_long_py2_p2_c",        Runtime::Py3, Expect::Unchanged),
    // Protocol 0: python-memcached's default pickleProtocol.
    ("py2_p0_containers",          "str_in_containers_py2_p0_c",   Runtime::Py3, Expect::Rewritten),
    ("unchanged_py2_p0_dict_1500", "dict_large_py2_p0_c",          Runtime::Py3, Expect::Unchanged),
];

fn fixture(stem: &str) -> Bytes {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/pickles")
        .join(format!("{stem}.pickle"));
    match std::fs::read(&path) {
        Ok(data) => Bytes::from(data),
        Err(e) => panic!("{}: {e} (run `make fixtures`)", path.display()),
    }
}

/// The outcome a bench times.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Expect {
    Unchanged,
    Rewritten,
}

/// Asserts that `src` has the outcome its bench claims to time: a refusal, or a rewrite where
/// no copy is promised, would time something else.
fn check_outcome(shape: &str, src: &Bytes, policy: &Policy, want: Expect) {
    let got = match transcode(src, policy).outcome {
        Outcome::Unchanged => Expect::Unchanged,
        Outcome::Rewritten(_) => Expect::Rewritten,
        refused => panic!("{shape}: {refused:?}, want {want:?}"),
    };
    assert_eq!(got, want, "{shape}");
}

fn bench_transcode(c: &mut Criterion) {
    for target in [Runtime::Py2, Runtime::Py3] {
        let policy = Policy::for_target(target);
        let mut group = c.benchmark_group(format!("transcode_for_{}", target.as_str()));
        for (shape, stem, _, want) in SHAPES.iter().filter(|(_, _, t, _)| *t == target) {
            let src = fixture(stem);
            check_outcome(shape, &src, &policy, *want);
            group.throughput(Throughput::Bytes(src.len() as u64));
            group.bench_with_input(BenchmarkId::from_parameter(shape), &src, |b, src| {
                b.iter(|| transcode(black_box(src), black_box(&policy)))
            });
        }
        group.finish();
    }
}

/// `analyze` (observe-mode routes): validation and summary only, no rewrite.
fn bench_analyze(c: &mut Criterion) {
    let mut group = c.benchmark_group("analyze");
    for (shape, stem, _, _) in SHAPES {
        let src = fixture(stem);
        group.throughput(Throughput::Bytes(src.len() as u64));
        group.bench_with_input(BenchmarkId::from_parameter(shape), &src, |b, src| {
            b.iter(|| analyze(black_box(src)))
        });
    }
    group.finish();
}

/// Hostile shapes: one long py2 `str` key fetched from the memo as the key of many dict items
/// (or inside many tuple keys) next to a text key, so every key is compared. Each op is decoded
/// and hashed (and, for a Python 3 reader, its form decided) once per value; before that, these
/// ~400 KB values took 1-2.5 s each.
fn bench_hostile(c: &mut Criterion) {
    const REFS: u16 = 50_000;
    let value = |key: &[u8], item: &dyn Fn(u16) -> Vec<u8>| {
        let mut v = b"\x80\x02}q\x01(T".to_vec();
        v.extend_from_slice(&(key.len() as u32).to_le_bytes());
        v.extend_from_slice(key);
        v.extend_from_slice(b"q\x02K\x01X\x01\x00\x00\x00bK\x02");
        for i in 0..REFS {
            v.extend(item(i));
        }
        v.extend_from_slice(b"u.");
        Bytes::from(v)
    };
    let ascii = vec![b'x'; 60_000];
    let utf8 = "\u{e9}".repeat(30_000).into_bytes();
    let in_tuple = |i: u16| {
        let [lo, hi] = i.to_le_bytes();
        vec![b'h', 2, b'M', lo, hi, 0x86, b'N']
    };
    let policy = Policy::for_target(Runtime::Py3);
    let mut group = c.benchmark_group("transcode_hostile");
    group.sample_size(10);
    // ASCII py2 `str` is already what Python 3 loads; UTF-8 becomes text.
    for (shape, src, want) in [
        (
            "repeated_long_key",
            value(&ascii, &|_| b"h\x02N".to_vec()),
            Expect::Unchanged,
        ),
        (
            "long_key_in_tuple_keys",
            value(&ascii, &in_tuple),
            Expect::Unchanged,
        ),
        (
            "long_utf8_key_in_tuple_keys",
            value(&utf8, &in_tuple),
            Expect::Rewritten,
        ),
    ] {
        // Converted whole, not refused early (which would be fast for the wrong reason).
        check_outcome(shape, &src, &policy, want);
        group.throughput(Throughput::Bytes(src.len() as u64));
        group.bench_with_input(BenchmarkId::from_parameter(shape), &src, |b, src| {
            b.iter(|| transcode(black_box(src), black_box(&policy)))
        });
    }
    group.finish();
}

/// py3 `bytes` of 70 000 bytes for a Python 2 reader (each byte becomes a latin-1 character,
/// written as UTF-8) by content, as CPython 3.11 writes it at protocol 5: the fixture `bytes_70k`
/// is `bytes(range(256))` repeated, whose 8-byte words are all ASCII or all high; here bytes
/// with no pattern (compressed or encrypted data: mixed words), UTF-8 text kept as bytes (all
/// high) and ASCII.
fn bench_bytes_content(c: &mut Criterion) {
    const LEN: usize = 70_000;
    let value = |data: &[u8]| {
        let mut v = b"\x80\x05B".to_vec();
        v.extend_from_slice(&(data.len() as u32).to_le_bytes());
        v.extend_from_slice(data);
        v.extend_from_slice(b"\x94.");
        Bytes::from(v)
    };
    // A fixed-seed 64-bit LCG (Knuth's MMIX constants), top byte of each step.
    let mut state = 0x2545_F491_4F6C_DD1Du64;
    let random: Vec<u8> = (0..LEN)
        .map(|_| {
            state = state
                .wrapping_mul(6_364_136_223_846_793_005)
                .wrapping_add(1_442_695_040_888_963_407);
            (state >> 56) as u8
        })
        .collect();
    let cjk: Vec<u8> = "\u{7231}\u{60c5}".bytes().cycle().take(LEN).collect();
    let ascii: Vec<u8> = b"hello world ".iter().copied().cycle().take(LEN).collect();
    let policy = Policy::for_target(Runtime::Py2);
    let mut group = c.benchmark_group("transcode_bytes_for_py2");
    for (shape, data) in [("random", random), ("utf8_text", cjk), ("ascii", ascii)] {
        let src = value(&data);
        check_outcome(shape, &src, &policy, Expect::Rewritten);
        group.throughput(Throughput::Bytes(src.len() as u64));
        group.bench_with_input(BenchmarkId::from_parameter(shape), &src, |b, src| {
            b.iter(|| transcode(black_box(src), black_box(&policy)))
        });
    }
    group.finish();
}

criterion_group!(
    benches,
    bench_transcode,
    bench_analyze,
    bench_hostile,
    bench_bytes_content
);
criterion_main!(benches);
