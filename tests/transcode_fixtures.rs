//! Golden fixtures (tests/fixtures/pickles, written by scripts/gen_fixtures.py under real
//! CPython 2.7 and 3) through `picklebridge::pickle::transcode` for the OTHER runtime; every output
//! is loaded by the other real interpreter with default `pickle.loads` (and `cPickle.loads`) and
//! compared to the expected object under the policy by scripts/check_fixtures.py, one process per
//! batch. A refusal must be the documented one from [`expected_refusal`]; nothing is skipped.
//! serde-pickle independently decodes original and output of every plain-data case.
mod common;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use common::python::{self, Py};
use picklebridge::pickle::{self, Global, Outcome, Policy, Py2Text, Py3Str, Reason, Runtime};

const PY_TIMEOUT: Duration = Duration::from_secs(180);

/// One golden pickle: `<case>_<writer>_p<N>[_c].pickle`.
#[derive(Debug)]
struct Fixture {
    case: String,
    writer: Py,
    proto: u8,
    stem: String,
    data: Bytes,
}

/// cases.json: every case of scripts/pbfixtures.py.
#[derive(Debug)]
struct Case {
    writers: Vec<Py>,
    plain: bool,
}

fn fixtures_dir() -> PathBuf {
    python::repo_root().join("tests/fixtures/pickles")
}

fn parse_stem(stem: &str) -> Option<(String, Py, u8)> {
    let stem = stem.strip_suffix("_c").unwrap_or(stem);
    let (rest, proto) = stem.rsplit_once("_p")?;
    let proto: u8 = proto.parse().ok()?;
    let (case, writer) = rest.rsplit_once('_')?;
    let writer = match writer {
        "py2" => Py::Py2,
        "py3" => Py::Py3,
        _ => return None,
    };
    Some((case.to_owned(), writer, proto))
}

fn load_fixtures() -> Vec<Fixture> {
    let dir = fixtures_dir();
    let mut out = Vec::new();
    for entry in std::fs::read_dir(&dir).expect("tests/fixtures/pickles exists") {
        let path = entry.expect("dir entry").path();
        let Some(stem) = path
            .file_name()
            .and_then(|n| n.to_str())
            .and_then(|n| n.strip_suffix(".pickle"))
        else {
            continue;
        };
        let (case, writer, proto) =
            parse_stem(stem).unwrap_or_else(|| panic!("unexpected fixture name {stem}"));
        let data = Bytes::from(std::fs::read(&path).expect("read fixture"));
        out.push(Fixture {
            case,
            writer,
            proto,
            stem: stem.to_owned(),
            data,
        });
    }
    out.sort_by(|a, b| a.stem.cmp(&b.stem));
    out
}

fn load_cases() -> (BTreeMap<String, Case>, Vec<Global>) {
    let text = std::fs::read_to_string(fixtures_dir().join("cases.json")).expect("cases.json");
    let json: serde_json::Value = serde_json::from_str(&text).expect("cases.json parses");
    let mut cases = BTreeMap::new();
    for c in json["cases"].as_array().expect("cases array") {
        let writers = c["writers"]
            .as_array()
            .expect("writers")
            .iter()
            .map(|w| if w == "py2" { Py::Py2 } else { Py::Py3 })
            .collect();
        let plain = c["plain"].as_bool().expect("plain");
        let name = c["name"].as_str().expect("name").to_owned();
        cases.insert(name, Case { writers, plain });
    }
    let classic = json["py2_classic"]
        .as_array()
        .expect("py2_classic")
        .iter()
        .map(|g| g.as_str().expect("str").parse().expect("module.Class"))
        .collect();
    (cases, classic)
}

/// The documented refusals: a case the transcoder must refuse for a target, and why.
fn expected_refusal(case: &str, writer: Py, proto: u8, policy: &Policy) -> Option<Reason> {
    match (writer, policy.target, case) {
        // array.array at protocol 3+ is `array._array_reconstructor(...)`, absent in Python 2,
        // and written as `array.array(typecode, list)`; not for a subclass, whose own
        // `__new__`/`__init__` that form would call (the reconstructor does not).
        (Py::Py3, Runtime::Py2, "array_with_dict") if proto >= 3 => Some(Reason::Py3OnlyGlobal),
        // Python 2's array lacks the typecode `q` (at 0-2 `array.array('q', ...)`).
        (Py::Py3, Runtime::Py2, "array_q") => Some(Reason::Py3OnlyGlobal),
        // Keyword arguments to `__new__` (protocols 4-5); at 2-3 Python 3 itself writes a
        // `functools.partial` of `getattr(cls, '__new__')`, which converts.
        (Py::Py3, Runtime::Py2, "class_kwnew") if proto >= 4 => Some(Reason::NewobjEx),
        // Python 2's char arrays (typecode 'c') have no Python 3 typecode.
        (Py::Py2, Runtime::Py3, "array_char") => Some(Reason::Unsupported),
        // datetime.timezone does not exist in Python 2: no protocol-2 stream can load there.
        (Py::Py3, Runtime::Py2, "datetime_utc") => Some(Reason::Py3OnlyGlobal),
        // b'a' and 'a' are one key in Python 2 (under `keep` and `utf8` alike): never merged.
        (Py::Py3, Runtime::Py2, "collision_dict" | "collision_set") => Some(Reason::Collision),
        // Decimal('1.5') and Fraction(3, 2): two keys in Python 2, one in Python 3.
        (Py::Py2, Runtime::Py3, "decimal_fraction_keys") => Some(Reason::Collision),
        _ => None,
    }
}

/// serde-pickle's view of a pickle (an independent decoder; plain data only).
fn serde_value(data: &[u8]) -> Result<serde_pickle::Value, String> {
    serde_pickle::value_from_slice(data, serde_pickle::DeOptions::new()).map_err(|e| e.to_string())
}

/// What a plain value becomes under `policy`, in serde-pickle terms: py2 `str` (`Bytes` from a
/// py2 writer) per `py3_str`, py3 text per `py2_text`.
fn normalize(v: serde_pickle::Value, writer: Py, policy: &Policy) -> serde_pickle::Value {
    use serde_pickle::{HashableValue as H, Value as V};
    let key = |h: H| {
        normalize(h.into_value(), writer, policy)
            .into_hashable()
            .expect("hashable")
    };
    match v {
        V::Bytes(b) if writer == Py::Py2 => match policy.py3_str {
            Py3Str::Bytes => V::Bytes(b),
            Py3Str::Latin1 => V::String(b.iter().map(|&c| char::from(c)).collect()),
            Py3Str::Utf8OrBytes => {
                String::from_utf8(b).map_or_else(|e| V::Bytes(e.into_bytes()), V::String)
            }
        },
        V::String(s) if writer == Py::Py3 && policy.py2_text == Py2Text::Utf8 => {
            V::Bytes(s.into_bytes())
        }
        V::List(l) => V::List(
            l.into_iter()
                .map(|x| normalize(x, writer, policy))
                .collect(),
        ),
        V::Tuple(l) => V::Tuple(
            l.into_iter()
                .map(|x| normalize(x, writer, policy))
                .collect(),
        ),
        V::Set(s) => V::Set(s.into_iter().map(key).collect()),
        V::FrozenSet(s) => V::FrozenSet(s.into_iter().map(key).collect()),
        V::Dict(d) => V::Dict(
            d.into_iter()
                .map(|(k, x)| (key(k), normalize(x, writer, policy)))
                .collect(),
        ),
        other => other,
    }
}

/// Fixtures serde-pickle 1.2 cannot decode (its limits, not the pickles'): `__builtin__.bytes()`
/// for empty bytes, and protocol-0 STRING escapes of binary py2 str. Asserted both ways.
fn serde_limit(stem: &str) -> bool {
    let Some((case, writer, proto)) = parse_stem(stem) else {
        return false;
    };
    match (writer, proto) {
        (Py::Py3, 0..=2) => case == "bytes_0",
        (Py::Py2, 0) => [
            "str_binary_255",
            "str_binary_256",
            "str_binary_70000",
            "str_binary_in_dict",
        ]
        .contains(&case.as_str()),
        _ => false,
    }
}

/// ASCII-only `Bytes` as `String`, recursively (see [`serde_check`]).
fn ascii_as_text(v: serde_pickle::Value) -> serde_pickle::Value {
    use serde_pickle::{HashableValue as H, Value as V};
    let key = |h: H| {
        ascii_as_text(h.into_value())
            .into_hashable()
            .expect("hashable")
    };
    match v {
        V::Bytes(b) if b.is_ascii() => V::String(String::from_utf8(b).expect("ascii")),
        V::List(l) => V::List(l.into_iter().map(ascii_as_text).collect()),
        V::Tuple(l) => V::Tuple(l.into_iter().map(ascii_as_text).collect()),
        V::Set(s) => V::Set(s.into_iter().map(key).collect()),
        V::FrozenSet(s) => V::FrozenSet(s.into_iter().map(key).collect()),
        V::Dict(d) => V::Dict(
            d.into_iter()
                .map(|(k, x)| (key(k), ascii_as_text(x)))
                .collect(),
        ),
        other => other,
    }
}

/// serde-pickle decodes original and output of a plain-data case to equal values.
fn serde_check(fx: &Fixture, output: &[u8], policy: &Policy) -> Result<(), String> {
    let (case, writer, original) = (fx.case.as_str(), fx.writer, &fx.data[..]);
    if serde_limit(&fx.stem) {
        return Ok(());
    }
    // serde-pickle decodes py2 bytearray to `Bytes` like a py2 str, so the policy mapping of
    // strings cannot be applied to it; the interpreter check covers that case.
    // Empty bytes for a py2 reader is `__builtin__.bytes()`, exactly as CPython writes it for
    // protocol 2, which serde-pickle cannot resolve (see serde_limit); CPython checks it.
    if case == "bytearray" || (case == "bytes_0" && policy.target == Runtime::Py2) {
        return Ok(());
    }
    let want = normalize(serde_value(original)?, writer, policy);
    let mut got = serde_value(output)?;
    if writer == Py::Py2 && policy.py3_str != Py3Str::Bytes {
        // serde-pickle reads a py2 STRING as bytes even where CPython 3 reads ASCII as `str`
        // (left unchanged by the transcoder, correctly): read the output as CPython 3 does.
        got = ascii_as_text(got);
    }
    if got == want {
        Ok(())
    } else {
        Err(format!("serde-pickle: got {got:?}, want {want:?}"))
    }
}

/// A named policy variant for one direction.
struct Variant {
    label: &'static str,
    policy: Policy,
    checker_args: Vec<&'static str>,
    /// Only plain-data cases (e.g. `bytes` turns Decimal's and classes' strings into bytes,
    /// exactly as CPython 3's own `encoding='bytes'` does, which their constructors reject).
    plain_only: bool,
}

fn variants(writer: Py, classic: &[Global]) -> Vec<Variant> {
    match writer {
        Py::Py3 => [(Py2Text::Keep, "keep"), (Py2Text::Utf8, "utf8")]
            .into_iter()
            .map(|(text, name)| {
                let mut policy = Policy::for_target(Runtime::Py2);
                policy.py2_text = text;
                policy.py2_classic = Arc::from(classic.to_vec());
                Variant {
                    label: name,
                    policy,
                    checker_args: vec!["--writer", "py3", "--py2-text", name],
                    plain_only: false,
                }
            })
            .collect(),
        Py::Py2 => [
            (Py3Str::Utf8OrBytes, "utf8-or-bytes", false),
            (Py3Str::Latin1, "latin1", false),
            (Py3Str::Bytes, "bytes", true),
        ]
        .into_iter()
        .map(|(s, name, plain_only)| {
            let mut policy = Policy::for_target(Runtime::Py3);
            policy.py3_str = s;
            Variant {
                label: name,
                policy,
                checker_args: vec!["--writer", "py2", "--py3-str", name],
                plain_only,
            }
        })
        .collect(),
    }
}

/// Runs scripts/check_fixtures.py in `reader` over `dir`; returns the FAIL blocks.
fn check_dir(reader: Py, args: &[&str], dir: &Path) -> (usize, Vec<String>) {
    let script = python::repo_root().join("scripts/check_fixtures.py");
    let dir_s = dir.to_str().expect("utf-8 temp path");
    let mut argv = vec![script.to_str().expect("utf-8 path")];
    argv.extend_from_slice(args);
    argv.push(dir_s);
    let out = python::run(reader, &argv, b"", PY_TIMEOUT);
    let text = out.stdout_str();
    let passed = text.lines().filter(|l| l.starts_with("ok ")).count();
    let mut fails = Vec::new();
    for line in text.lines() {
        if line.starts_with("FAIL ") {
            fails.push(line.to_owned());
        } else if line.starts_with("    ") {
            if let Some(last) = fails.last_mut() {
                last.push('\n');
                last.push_str(line);
            }
        }
    }
    assert!(
        out.code == Some(0) || !fails.is_empty(),
        "checker crashed (exit {:?}): {}\n{}",
        out.code,
        text,
        out.stderr
    );
    (passed, fails)
}

/// Transcodes every fixture of `writer` for the other runtime under each policy variant and
/// has the other interpreter load and compare the results. Returns all problems found.
fn transcode_and_check(writer: Py) -> Vec<String> {
    let (cases, classic) = load_cases();
    let fixtures: Vec<Fixture> = load_fixtures()
        .into_iter()
        .filter(|f| f.writer == writer)
        .collect();
    assert!(fixtures.len() > 100, "too few {writer:?} fixtures");
    let mut problems = Vec::new();
    for variant in variants(writer, &classic) {
        let out_dir = tempfile::tempdir().expect("tempdir");
        let (mut sent, mut refused, mut rewritten) = (0, 0, 0);
        for fx in &fixtures {
            let case = cases.get(&fx.case).expect("fixture of a known case");
            if variant.plain_only && !case.plain {
                continue;
            }
            let result = pickle::transcode(&fx.data, &variant.policy);
            let expected = expected_refusal(&fx.case, writer, fx.proto, &variant.policy);
            let label = format!("{} [{}]", fx.stem, variant.label);
            let delivered = match (&result.outcome, expected) {
                (Outcome::Refused(got), Some(want)) if *got == want => {
                    refused += 1;
                    continue;
                }
                (Outcome::Refused(got), want) => {
                    problems.push(format!("{label}: refused {got}, expected {want:?}"));
                    continue;
                }
                (_, Some(want)) => {
                    problems.push(format!("{label}: not refused, expected {want}"));
                    continue;
                }
                (Outcome::Unchanged, None) => fx.data.clone(),
                (Outcome::Rewritten(b), None) => {
                    rewritten += 1;
                    b.clone()
                }
            };
            if case.plain {
                if let Err(e) = serde_check(fx, &delivered, &variant.policy) {
                    problems.push(format!("{label}: {}", truncate(&e)));
                }
            }
            let name = format!("{}@{}.pickle", fx.case, fx.stem);
            std::fs::write(out_dir.path().join(name), &delivered).expect("write output");
            sent += 1;
        }
        eprintln!(
            "{writer:?} -> {:?} [{}]: {sent} loaded by the reader ({rewritten} rewritten), \
             {refused} refused as documented",
            writer.other(),
            variant.label
        );
        assert!(
            sent > 0 && rewritten > 0,
            "nothing checked for {}",
            variant.label
        );
        let reader = writer.other();
        let (passed, fails) = check_dir(reader, &variant.checker_args, out_dir.path());
        assert_eq!(passed + fails.len(), sent, "checker saw every file");
        problems.extend(
            fails
                .into_iter()
                .map(|f| format!("[{} in {reader:?}] {f}", variant.label)),
        );
        // One stored form serves both tiers: py2-target output (default policy) loads in
        // CPython 3 back to the original.
        if writer == Py::Py3 && variant.label == "keep" {
            let (_, fails) = check_dir(Py::Py3, &["--writer", "py3"], out_dir.path());
            problems.extend(
                fails
                    .into_iter()
                    .map(|f| format!("[keep, back in Py3] {f}")),
            );
        }
    }
    problems
}

fn truncate(s: &str) -> String {
    match s.char_indices().nth(400) {
        Some((i, _)) => format!("{}...", &s[..i]),
        None => s.to_owned(),
    }
}

fn assert_no_problems(what: &str, problems: Vec<String>) {
    assert!(
        problems.is_empty(),
        "{what}: {} problem(s):\n{}",
        problems.len(),
        problems.join("\n")
    );
}

/// Why DICT and SETITEMS over an odd number of items are refused (`malformed`, the stored bytes
/// forwarded): no reader loads them as written. CPython 3 raises, CPython 2.7's pickle raises,
/// and cPickle raises for SETITEMS but loads an odd DICT without its last item, a value that
/// was never stored.
#[test]
fn odd_item_dicts_load_nowhere_as_written_and_are_refused() {
    const SCRIPT: &str = r"import pickle
mods = [pickle]
try:
    import cPickle
    mods.append(cPickle)
except ImportError:
    pass
for m in mods:
    for s in (b'(K\x01K\x02K\x03d.', b'}(K\x01K\x02K\x03u.'):
        try:
            r = repr(m.loads(s))
        except Exception as e:
            r = '%s: %s' % (type(e).__name__, e)
        print('%s %s' % (m.__name__, r))
";
    let py3 = python::run(Py::Py3, &["-c", SCRIPT], b"", PY_TIMEOUT);
    py3.assert_ok("python3 odd items");
    assert_eq!(
        py3.stdout_str(),
        "pickle UnpicklingError: odd number of items for DICT\n\
         pickle UnpicklingError: odd number of items for SETITEMS\n"
    );
    let py2 = python::run(Py::Py2, &["-c", SCRIPT], b"", PY_TIMEOUT);
    py2.assert_ok("python2 odd items");
    assert_eq!(
        py2.stdout_str(),
        "pickle IndexError: list index out of range\n\
         pickle IndexError: list index out of range\n\
         cPickle {1: 2}\n\
         cPickle UnpicklingError: odd number of items for SETITEMS\n"
    );
    for src in [&b"(K\x01K\x02K\x03d."[..], b"}(K\x01K\x02K\x03u."] {
        for target in [Runtime::Py2, Runtime::Py3] {
            let out = pickle::transcode(&Bytes::from_static(src), &Policy::for_target(target));
            assert_eq!(
                out.outcome,
                Outcome::Refused(Reason::Malformed),
                "{src:?} for {target:?}"
            );
        }
    }
}

/// CPython 3's C unpickler reads a FRAME ahead: one claiming more bytes than are left is
/// "pickle data was truncated", while a frame shorter than its ops loads. The transcoder agrees.
#[test]
fn frames_longer_than_the_rest_load_nowhere_and_are_refused() {
    const SCRIPT: &str = r"import pickle
for s in (b'\x80\x04\x95\x64\x00\x00\x00\x00\x00\x00\x00].',
          b'\x80\x04\x95\x01\x00\x00\x00\x00\x00\x00\x00].'):
    try:
        r = repr(pickle.loads(s))
    except Exception as e:
        r = '%s: %s' % (type(e).__name__, e)
    print(r)
";
    let py3 = python::run(Py::Py3, &["-c", SCRIPT], b"", PY_TIMEOUT);
    py3.assert_ok("python3 frames");
    assert_eq!(
        py3.stdout_str(),
        "UnpicklingError: pickle data was truncated\n[]\n"
    );
    let long = Bytes::from_static(b"\x80\x04\x95\x64\x00\x00\x00\x00\x00\x00\x00].");
    let short = Bytes::from_static(b"\x80\x04\x95\x01\x00\x00\x00\x00\x00\x00\x00].");
    for target in [Runtime::Py2, Runtime::Py3] {
        let policy = Policy::for_target(target);
        assert_eq!(
            pickle::transcode(&long, &policy).outcome,
            Outcome::Refused(Reason::Truncated),
            "for {target:?}"
        );
        assert!(
            !matches!(
                pickle::transcode(&short, &policy).outcome,
                Outcome::Refused(_)
            ),
            "for {target:?}"
        );
    }
}

#[test]
fn interpreters_are_real_cpython_2_7_and_3() {
    let out = python::run(
        Py::Py2,
        &[
            "-c",
            "import sys, cPickle, pickle, memcache, datetime, decimal, collections, zlib\n\
             print '%d.%d.%d' % sys.version_info[:3]",
        ],
        b"",
        PY_TIMEOUT,
    );
    out.assert_ok("python2 import check");
    assert_eq!(out.stdout_str().trim(), "2.7.18");

    let out = python::run(
        Py::Py3,
        &[
            "-c",
            "import sys, pickle, pymemcache, memcache, django\n\
             from django.core.cache.backends.memcached import PyMemcacheCache\n\
             print(sys.version_info[0], pickle.HIGHEST_PROTOCOL)",
        ],
        b"",
        PY_TIMEOUT,
    );
    out.assert_ok("python3 import check");
    assert_eq!(out.stdout_str().trim(), "3 5");
}

#[test]
fn corpus_is_complete() {
    let (cases, _) = load_cases();
    let fixtures = load_fixtures();
    for fx in &fixtures {
        let case = cases
            .get(&fx.case)
            .unwrap_or_else(|| panic!("{}: case not in cases.json", fx.stem));
        assert!(case.writers.contains(&fx.writer), "{}: writer", fx.stem);
    }
    // Every case, every protocol, both py2 picklers, unless the writer itself cannot pickle it
    // (recorded with its error in manifest_py{2,3}.json).
    for writer in [Py::Py2, Py::Py3] {
        let path = fixtures_dir().join(format!("manifest_{}.json", writer.as_str()));
        let manifest: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(path).expect("manifest")).expect("json");
        let unpicklable: Vec<&str> = manifest["unpicklable"]
            .as_array()
            .expect("unpicklable")
            .iter()
            .map(|u| u["file"].as_str().expect("file"))
            .collect();
        let (protos, suffixes): (&[u8], &[&str]) = match writer {
            Py::Py2 => (&[0, 1, 2], &["", "_c"]),
            Py::Py3 => (&[0, 1, 2, 3, 4, 5], &[""]),
        };
        for name in cases
            .iter()
            .filter(|(_, c)| c.writers.contains(&writer))
            .map(|(n, _)| n)
        {
            for p in protos {
                for s in suffixes {
                    let stem = format!("{name}_{}_p{p}{s}", writer.as_str());
                    let present = fixtures.iter().any(|f| f.stem == stem);
                    assert!(
                        present || unpicklable.contains(&stem.as_str()),
                        "{stem} missing: rerun `make fixtures`"
                    );
                }
            }
        }
    }
    assert!(fixtures.iter().any(|f| f.proto == 5));
}

#[test]
fn fixtures_load_in_their_own_interpreter() {
    // Validates the corpus and the checker: untranscoded, each writer reads back its objects.
    for writer in [Py::Py2, Py::Py3] {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut n = 0;
        for fx in load_fixtures().into_iter().filter(|f| f.writer == writer) {
            let name = format!("{}@{}.pickle", fx.case, fx.stem);
            std::fs::write(dir.path().join(name), &fx.data).expect("write");
            n += 1;
        }
        let (passed, fails) = check_dir(writer, &["--writer", writer.as_str()], dir.path());
        assert_no_problems("fixtures in their own interpreter", fails);
        assert_eq!(passed, n);
    }
}

#[test]
fn serde_pickle_reads_every_plain_fixture_alike() {
    // Independent check of the corpus: every protocol and pickler of one writer gives the same
    // plain value, and py2 and py3 writers agree once py2 ASCII str is read as text.
    let (cases, _) = load_cases();
    let mut first: BTreeMap<(String, Py), (String, serde_pickle::Value)> = BTreeMap::new();
    let mut seen = 0;
    for fx in load_fixtures() {
        if !cases[&fx.case].plain || fx.case == "bytearray" {
            continue;
        }
        let v = match serde_value(&fx.data) {
            Ok(v) => {
                assert!(
                    !serde_limit(&fx.stem),
                    "{} decodes now: update serde_limit",
                    fx.stem
                );
                v
            }
            Err(e) => {
                assert!(serde_limit(&fx.stem), "{}: {}", fx.stem, truncate(&e));
                continue;
            }
        };
        let v = normalize(v, fx.writer, &Policy::for_target(Runtime::Py3));
        seen += 1;
        match first.get(&(fx.case.clone(), fx.writer)) {
            Some((stem, want)) => assert_eq!(&v, want, "{} differs from {stem}", fx.stem),
            None => {
                first.insert((fx.case.clone(), fx.writer), (fx.stem.clone(), v));
            }
        }
    }
    assert!(seen > 200, "{seen} plain fixtures");
    for ((case, writer), (stem, v)) in &first {
        if *writer == Py::Py2 {
            if let Some((other, w)) = first.get(&(case.clone(), Py::Py3)) {
                assert_eq!(v, w, "{stem} vs {other}");
            }
        }
    }
}

#[test]
fn untranscoded_cross_loads_fail_with_the_production_errors() {
    // The problem picklebridge exists for, shown by the real interpreters on the raw fixtures.
    let fixtures = load_fixtures();
    let raw = |stem: &str| {
        let fx = fixtures.iter().find(|f| f.stem == stem).expect("fixture");
        let dir = tempfile::tempdir().expect("tempdir");
        let name = format!("{}@{}.pickle", fx.case, fx.stem);
        std::fs::write(dir.path().join(name), &fx.data).expect("write");
        dir
    };
    let dir = raw("text_dict_py3_p4");
    let (_, fails) = check_dir(Py::Py2, &["--writer", "py3"], dir.path());
    assert_eq!(fails.len(), 1, "{fails:?}");
    assert!(
        fails[0].contains("unsupported pickle protocol: 4"),
        "{}",
        fails[0]
    );
    let dir = raw("str_utf8_py2_p2_c");
    let (_, fails) = check_dir(Py::Py3, &["--writer", "py2"], dir.path());
    assert_eq!(fails.len(), 1, "{fails:?}");
    assert!(fails[0].contains("UnicodeDecodeError"), "{}", fails[0]);
}

#[test]
fn py3_fixtures_transcoded_for_py2_load_in_cpython_2_7() {
    assert_no_problems("py3 -> py2", transcode_and_check(Py::Py3));
}

#[test]
fn py2_fixtures_transcoded_for_py3_load_in_cpython_3() {
    assert_no_problems("py2 -> py3", transcode_and_check(Py::Py2));
}

#[test]
fn cpython_bench_script_runs_on_every_shape() {
    // scripts/bench_cpython.py is the baseline the README compares against; keep it working.
    // Python 3: 8 fixtures and the 3 `bytes` contents of the bench group transcode_bytes_for_py2.
    for (py, shapes) in [(Py::Py3, 8 + 3), (Py::Py2, 9)] {
        let out = python::run(
            py,
            &["scripts/bench_cpython.py", "--quick"],
            b"",
            PY_TIMEOUT,
        );
        out.assert_ok("bench_cpython.py --quick");
        let rows = out.stdout_str().lines().skip(2).count();
        assert_eq!(rows, shapes, "{}", out.stdout_str());
    }
}

/// `picklebridge transcode FILE... --out-dir DIR` (what an offline conversion or an external
/// checker runs) on every fixture of `writer`; returns the output dir for the other interpreter
/// and how many outputs it holds (every fixture but the refused ones).
fn cli_batch(writer: Py, extra: &[&str]) -> (tempfile::TempDir, usize) {
    let input = tempfile::tempdir().expect("tempdir");
    let output = tempfile::tempdir().expect("tempdir");
    let mut files = Vec::new();
    for fx in load_fixtures().into_iter().filter(|f| f.writer == writer) {
        let path = input.path().join(format!("{}@{}.pickle", fx.case, fx.stem));
        std::fs::write(&path, &fx.data).expect("write");
        files.push(path.to_str().expect("utf-8").to_owned());
    }
    let to = writer.other().as_str();
    let out_dir = output.path().to_str().expect("utf-8");
    let mut args = vec!["transcode", "--to", to, "--out-dir", out_dir];
    args.extend_from_slice(extra);
    args.extend(files.iter().map(String::as_str));
    let bin = Path::new(env!("CARGO_BIN_EXE_picklebridge"));
    let out = python::run_path(bin, &args, b"", PY_TIMEOUT);
    let policy = Policy::for_target(match writer.other() {
        Py::Py2 => Runtime::Py2,
        Py::Py3 => Runtime::Py3,
    });
    let text = out.stdout_str();
    let mut refused = 0;
    for line in text.lines().filter(|l| l.contains("\trefused\t")) {
        let mut parts = line.split('\t');
        let file = Path::new(parts.next().expect("file"));
        let reason = parts.nth(1).expect("reason");
        let name = file.file_name().and_then(|n| n.to_str()).expect("name");
        let (case, rest) = name.split_once('@').expect("case@stem");
        let stem = rest.trim_end_matches(".pickle");
        let (_, _, proto) = parse_stem(stem).expect("fixture stem");
        let want = expected_refusal(case, writer, proto, &policy).map(Reason::as_str);
        assert_eq!(Some(reason), want, "{stem}: refused by the CLI");
        // The proxy forwards the original of a refused value: nothing for the reader to check.
        let _ = std::fs::remove_file(output.path().join(name));
        refused += 1;
    }
    let want_code = if refused > 0 { 3 } else { 0 };
    assert_eq!(out.code, Some(want_code), "{text}\n{}", out.stderr);
    assert!(
        text.lines()
            .last()
            .unwrap_or("")
            .starts_with(&format!("{} files: ", files.len())),
        "{text}"
    );
    (output, files.len() - refused)
}

#[test]
fn cli_batch_outputs_load_in_the_other_interpreter() {
    let (out, written) = cli_batch(Py::Py3, &["--py2-classic", "pbfixtures.OldStyle"]);
    let (passed, fails) = check_dir(Py::Py2, &["--writer", "py3"], out.path());
    assert_no_problems("picklebridge transcode --to py2", fails);
    assert_eq!(passed, written, "every output loaded and compared");
    let (out, written) = cli_batch(Py::Py2, &[]);
    let (passed, fails) = check_dir(Py::Py3, &["--writer", "py2"], out.path());
    assert_no_problems("picklebridge transcode --to py3", fails);
    assert_eq!(passed, written, "every output loaded and compared");
}
