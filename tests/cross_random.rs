//! Randomized cross-interpreter differential check of `picklebridge transcode`, the way an
//! outside checker runs it: real CPython 3.11 / 2.7 write a seeded random corpus
//! (scripts/gen_random.py: every protocol, pickle and cPickle), the built binary converts it
//! with `transcode --to <other> --out-dir` under every policy that matters, and the other real
//! interpreter loads each output with default `pickle.loads` (and `cPickle.loads`) and compares
//! it with the value rebuilt there (scripts/check_random.py). A refusal passes only with the
//! reason README documents for that value; a value that must be refused and is not fails.
//! The Python 2 outputs (`keep`) must also load back in Python 3 to the original.
//!
//! Bounded by default (one seed, [`DEFAULT_COUNT`] values per direction). More by hand:
//!
//!     PB_RANDOM_SEEDS=1-20 PB_RANDOM_COUNT=300 cargo test --test cross_random -- --nocapture
//!
//! (`PB_RANDOM_SEEDS`: comma-separated seeds or ranges `a-b`; `PB_RANDOM_OPEN=1` also generates
//! the shapes of the open transcoder bugs listed in gen_random.py's OPEN_SHAPES.) A failure
//! names the seed, the value index and the file; rerun that seed to reproduce it.
mod common;

use std::path::{Path, PathBuf};
use std::time::Duration;

use common::python::{self, Py};

/// The default seed (fixed: a failure reproduces).
const DEFAULT_SEED: u64 = 20_261_126;
/// Values per direction by default: keeps the test well under a minute on two busy cores.
const DEFAULT_COUNT: usize = 400;
/// Files per `picklebridge transcode` run (bounds the command line).
const FILES_PER_RUN: usize = 1500;
const PY_TIMEOUT: Duration = Duration::from_secs(900);

/// One policy for one direction.
struct Variant {
    label: &'static str,
    /// `picklebridge transcode` options.
    cli: &'static [&'static str],
    /// check_random.py options.
    checker: &'static [&'static str],
    /// The outputs also load in the writer's runtime back to the original.
    back: bool,
}

fn variants(writer: Py) -> Vec<Variant> {
    match writer {
        // Python 2 readers: OldStyle is a classic class there (as in the golden corpus).
        Py::Py3 => vec![
            Variant {
                label: "py2_text=keep",
                cli: &["--py2-text", "keep", "--py2-classic", "pbfixtures.OldStyle"],
                checker: &["--py2-text", "keep"],
                back: true,
            },
            Variant {
                label: "py2_text=utf8",
                cli: &["--py2-text", "utf8", "--py2-classic", "pbfixtures.OldStyle"],
                checker: &["--py2-text", "utf8"],
                back: false,
            },
            // timezone.utc becomes pytz.utc (Python 3 has no pytz here: no round trip).
            Variant {
                label: "py2_utc=pytz",
                cli: &["--py2-utc", "pytz", "--py2-classic", "pbfixtures.OldStyle"],
                checker: &["--py2-utc", "pytz"],
                back: false,
            },
        ],
        Py::Py2 => ["utf8-or-bytes", "bytes", "latin1"]
            .into_iter()
            .map(|p| Variant {
                label: match p {
                    "bytes" => "py3_str=bytes",
                    "latin1" => "py3_str=latin1",
                    _ => "py3_str=utf8-or-bytes",
                },
                cli: match p {
                    "bytes" => &["--py3-str", "bytes"],
                    "latin1" => &["--py3-str", "latin1"],
                    _ => &["--py3-str", "utf8-or-bytes"],
                },
                checker: match p {
                    "bytes" => &["--py3-str", "bytes"],
                    "latin1" => &["--py3-str", "latin1"],
                    _ => &["--py3-str", "utf8-or-bytes"],
                },
                back: false,
            })
            .collect(),
    }
}

/// `PB_RANDOM_SEEDS` (e.g. `1,5-9`), else [`DEFAULT_SEED`].
fn seeds() -> Vec<u64> {
    let Ok(spec) = std::env::var("PB_RANDOM_SEEDS") else {
        return vec![DEFAULT_SEED];
    };
    let mut out = Vec::new();
    for part in spec.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        let bad = || panic!("PB_RANDOM_SEEDS: bad part {part:?} (want N or A-B)");
        match part.split_once('-') {
            Some((a, b)) => {
                let (a, b): (u64, u64) = (a.parse().unwrap_or_else(|_| bad()), {
                    b.parse().unwrap_or_else(|_| bad())
                });
                out.extend(a..=b);
            }
            None => out.push(part.parse().unwrap_or_else(|_| bad())),
        }
    }
    assert!(!out.is_empty(), "PB_RANDOM_SEEDS names no seed");
    out
}

fn count() -> usize {
    std::env::var("PB_RANDOM_COUNT").map_or(DEFAULT_COUNT, |c| {
        c.parse().expect("PB_RANDOM_COUNT is a number")
    })
}

fn path_str(p: &Path) -> &str {
    p.to_str().expect("utf-8 temp path")
}

/// Writes the corpus of `seed` with `writer`; returns the manifest path and its pickle files.
fn generate(writer: Py, seed: u64, count: usize, dir: &Path) -> (PathBuf, Vec<PathBuf>) {
    let (seed_s, count_s) = (seed.to_string(), count.to_string());
    let mut args = vec![
        "scripts/gen_random.py",
        "--seed",
        &seed_s,
        "--count",
        &count_s,
        path_str(dir),
    ];
    if std::env::var_os("PB_RANDOM_OPEN").is_some_and(|v| v == "1") {
        args.push("--include-open");
    }
    python::run(writer, &args, b"", PY_TIMEOUT).assert_ok("gen_random.py");
    let manifest = dir.join(format!("manifest_{}.json", writer.as_str()));
    let json: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&manifest).expect("manifest"))
            .expect("manifest parses");
    let files: Vec<PathBuf> = json["files"]
        .as_array()
        .expect("files")
        .iter()
        .map(|f| dir.join(f["file"].as_str().expect("file name")))
        .collect();
    assert!(
        files.len() >= count,
        "{} pickles for {count} values",
        files.len()
    );
    (manifest, files)
}

/// Runs `picklebridge transcode --to <reader> --out-dir out` over `files` in batches; returns
/// the stdout logs (`FILE<TAB>rewritten|unchanged|refused<TAB>reason`), one per batch.
fn transcode(reader: Py, files: &[PathBuf], v: &Variant, out: &Path, logs: &Path) -> Vec<PathBuf> {
    let bin = Path::new(env!("CARGO_BIN_EXE_picklebridge"));
    let mut paths = Vec::new();
    for (i, chunk) in files.chunks(FILES_PER_RUN).enumerate() {
        let mut args = vec![
            "transcode",
            "--to",
            reader.as_str(),
            "--out-dir",
            path_str(out),
        ];
        args.extend_from_slice(v.cli);
        args.extend(chunk.iter().map(|p| path_str(p)));
        let run = python::run_path(bin, &args, b"", PY_TIMEOUT);
        let text = run.stdout_str();
        // 0: all converted; 3: some refused (judged by the checker). Anything else (a panic,
        // an I/O error) fails here.
        assert!(
            matches!(run.code, Some(0 | 3)) && run.stderr.is_empty(),
            "picklebridge transcode [{}] exit {:?}\n{}\n{}",
            v.label,
            run.code,
            run.stderr,
            text.lines().last().unwrap_or("")
        );
        assert_eq!(
            text.lines().count(),
            chunk.len() + 1,
            "one line per file and a summary"
        );
        let log = logs.join(format!("transcode-{i}.log"));
        std::fs::write(&log, text).expect("write log");
        paths.push(log);
    }
    paths
}

/// What check_random.py reported: its counts and FAIL blocks.
struct Checked {
    passed: usize,
    refused: usize,
    fails: Vec<String>,
}

fn check(
    reader: Py,
    writer: Py,
    manifest: &Path,
    logs: &[PathBuf],
    opts: &[&str],
    dir: &Path,
) -> Checked {
    let mut args = vec![
        "scripts/check_random.py",
        "--writer",
        writer.as_str(),
        "--manifest",
        path_str(manifest),
    ];
    for log in logs {
        args.extend(["--log", path_str(log)]);
    }
    args.extend_from_slice(opts);
    args.push(path_str(dir));
    let run = python::run(reader, &args, b"", PY_TIMEOUT);
    let text = run.stdout_str();
    let mut fails: Vec<String> = Vec::new();
    for line in text.lines() {
        if line.starts_with("FAIL ") {
            fails.push(line.to_owned());
        } else if let (Some(last), true) = (fails.last_mut(), line.starts_with("    ")) {
            last.push('\n');
            last.push_str(line);
        }
    }
    let summary = text.lines().last().unwrap_or("");
    let nums: Vec<usize> = summary
        .split(|c: char| !c.is_ascii_digit())
        .filter_map(|n| n.parse().ok())
        .collect();
    assert!(
        summary.ends_with(" failed")
            && nums.len() == 4
            && (run.code == Some(0)) == fails.is_empty(),
        "check_random.py crashed (exit {:?}): {summary}\n{}",
        run.code,
        run.stderr
    );
    Checked {
        passed: nums[0],
        refused: nums[1],
        fails,
    }
}

/// The whole loop for values written by `writer`, every seed and policy; returns the problems.
fn cross(writer: Py) -> Vec<String> {
    let reader = writer.other();
    let count = count();
    let mut problems = Vec::new();
    for seed in seeds() {
        let tmp = tempfile::tempdir().expect("tempdir");
        let gen_dir = tmp.path().join("gen");
        let (manifest, files) = generate(writer, seed, count, &gen_dir);
        for (i, v) in variants(writer).iter().enumerate() {
            let out = tmp.path().join(format!("out{i}"));
            let logs = tmp.path().join(format!("logs{i}"));
            std::fs::create_dir_all(&logs).expect("mkdir");
            let logs = transcode(reader, &files, v, &out, &logs);
            let c = check(reader, writer, &manifest, &logs, v.checker, &out);
            eprintln!(
                "seed {seed}: {count} {writer:?} values, {} pickles -> {reader:?} [{}]: {} \
                 loaded equal, {} refused as documented, {} failed",
                files.len(),
                v.label,
                c.passed,
                c.refused,
                c.fails.len()
            );
            if c.fails.is_empty() {
                assert_eq!(c.passed + c.refused, files.len(), "every file judged");
                assert!(c.passed > files.len() / 2, "[{}] too few loaded", v.label);
            }
            problems.extend(
                c.fails
                    .iter()
                    .map(|f| format!("[{} in {reader:?}] {f}", v.label)),
            );
            if v.back {
                let c = check(writer, writer, &manifest, &logs, &[], &out);
                eprintln!(
                    "seed {seed}: [{}] outputs back in {writer:?}: {} loaded equal",
                    v.label, c.passed
                );
                problems.extend(
                    c.fails
                        .iter()
                        .map(|f| format!("[{}, back in {writer:?}] {f}", v.label)),
                );
            }
        }
    }
    problems
}

fn assert_no_problems(what: &str, problems: &[String]) {
    let shown: Vec<&str> = problems.iter().take(40).map(String::as_str).collect();
    assert!(
        problems.is_empty(),
        "{what}: {} problem(s) (first {}):\n{}",
        problems.len(),
        shown.len(),
        shown.join("\n")
    );
}

#[test]
fn random_py3_values_transcoded_for_py2_load_in_cpython_2_7_and_back_in_3() {
    assert_no_problems("py3 -> py2", &cross(Py::Py3));
}

#[test]
fn random_py2_values_transcoded_for_py3_load_in_cpython_3() {
    assert_no_problems("py2 -> py3", &cross(Py::Py2));
}
