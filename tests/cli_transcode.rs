//! The `transcode` and `inspect` commands, run as the built binary on byte literals written by
//! CPython 3.11 and 2.7.18 (each literal says which object it encodes).

use std::io::Write;
use std::process::{Command, Output, Stdio};

/// py3: {1, 2} at protocol 4
const SET_P4: &[u8] = b"\x80\x04\x95\x09\x00\x00\x00\x00\x00\x00\x00\x8f\x94(K\x01K\x02\x90.";
/// CPython 3's pickle.dumps({1, 2}, 2) without the temporaries' memo entries
const SET_P2: &[u8] = b"\x80\x02c__builtin__\nset\nq\x00](K\x01K\x02e\x85Rq\x01.";
/// py3: datetime.timezone.utc at protocol 4 (no Python 2 equivalent)
const TZ_P4: &[u8] = b"\x80\x04\x957\x00\x00\x00\x00\x00\x00\x00\x8c\x08datetime\x94\x8c\x08timezone\x94\x93\x94h\x00\x8c\x09timedelta\x94\x93\x94K\x00K\x00K\x00\x87\x94R\x94\x85\x94R\x94.";
/// py2: '\xe7\x88\xb1' (UTF-8 of U+7231) by cPickle protocol 0
const UTF8_P0: &[u8] = b"S'\\xe7\\x88\\xb1'\np1\n.";
/// py2: {'a': [1, 'b']} by cPickle protocol 0
const ASCII_P0: &[u8] = b"(dp1\nS'a'\n(lp2\nI1\naS'b'\nas.";

fn run(args: &[&str], stdin: &[u8]) -> Output {
    let mut child = Command::new(env!("CARGO_BIN_EXE_picklebridge"))
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn picklebridge");
    // A process that rejects its arguments exits without reading: a broken pipe is fine then.
    let _ = child.stdin.take().expect("stdin").write_all(stdin);
    child.wait_with_output().expect("wait")
}

#[test]
fn rewrites_stdin_to_stdout() {
    let out = run(&["transcode", "--to", "py2"], SET_P4);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(out.stdout, SET_P2);
    let out = run(&["transcode", "--to", "py3"], UTF8_P0);
    assert_eq!(out.status.code(), Some(0));
    assert_eq!(out.stdout, b"X\x03\x00\x00\x00\xe7\x88\xb1p1\n.");
    let out = run(&["transcode", "--to", "py3", "--py3-str", "bytes"], UTF8_P0);
    assert_eq!(out.stdout, b"C\x03\xe7\x88\xb1p1\n.");
}

#[test]
fn unchanged_value_is_copied_through() {
    let out = run(&["transcode", "--to", "py3"], ASCII_P0);
    assert_eq!(out.status.code(), Some(0));
    assert_eq!(out.stdout, ASCII_P0);
}

#[test]
fn refused_exits_3_with_the_reason_and_no_output() {
    let out = run(&["transcode", "--to", "py2"], TZ_P4);
    assert_eq!(out.status.code(), Some(3));
    assert!(out.stdout.is_empty());
    assert_eq!(
        String::from_utf8_lossy(&out.stderr),
        "refused: py3_only_global\n"
    );
    let out = run(&["transcode", "--to", "py3"], &SET_P4[..10]);
    assert_eq!(out.status.code(), Some(3));
    assert!(out.stdout.is_empty());
    assert_eq!(String::from_utf8_lossy(&out.stderr), "refused: truncated\n");
}

/// Globals the reader's runtime lacks, in the spelling the other runtime's pickle writes: the
/// refusal names which side lacks them.
#[test]
fn globals_the_reader_lacks_are_refused_by_side() {
    let cases: &[(&[u8], &str, &str)] = &[
        // py3: RecursionError('r') at protocol 2, written `__builtin__.RecursionError`.
        (
            b"\x80\x02c__builtin__\nRecursionError\nq\x00X\x01\x00\x00\x00rq\x01\x85q\x02Rq\x03.",
            "py2",
            "py3_only_global",
        ),
        // py3: array.array('q', [1]) at protocol 2 (Python 2's array lacks the typecode).
        (
            b"\x80\x02carray\narray\nq\x00X\x01\x00\x00\x00qq\x01]q\x02K\x01a\x86q\x03Rq\x04.",
            "py2",
            "py3_only_global",
        ),
        // py2: sets.Set([1]) by cPickle protocol 2.
        (
            b"\x80\x02csets\nSet\nq\x01)\x81q\x02}q\x03K\x01\x88s\x85b.",
            "py3",
            "py2_only_global",
        ),
        // py2: cmp by cPickle protocol 0.
        (b"c__builtin__\ncmp\np1\n.", "py3", "py2_only_global"),
    ];
    for &(src, to, reason) in cases {
        let out = run(&["transcode", "--to", to], src);
        assert_eq!(out.status.code(), Some(3), "{src:?} to {to}");
        assert!(out.stdout.is_empty());
        assert_eq!(
            String::from_utf8_lossy(&out.stderr),
            format!("refused: {reason}\n"),
            "{src:?} to {to}"
        );
        // The other reader loads it as it is.
        let other = if to == "py2" { "py3" } else { "py2" };
        let out = run(&["transcode", "--to", other], src);
        assert_eq!(out.status.code(), Some(0), "{src:?} to {other}");
    }
}

/// DICT and SETITEMS over an odd number of items: CPython 3.11 raises "odd number of items for
/// DICT" / "... for SETITEMS", CPython 2.7's pickle an IndexError, and cPickle loads the DICT
/// as `{}` (dropping the last item), so a rewrite would hand a Python 2 reader a value that
/// never existed: refused as malformed for both readers, the stored bytes forwarded.
#[test]
fn odd_item_dicts_are_refused_as_malformed() {
    let odd: [&[u8]; 3] = [
        b"(K\x01d.",
        b"\x80\x04\x95\x0d\x00\x00\x00\x00\x00\x00\x00}\x94(K\x01\x8c\x01a\x94K\x02u.",
        b"\x80\x02}q\x00(U\x01aK\x01U\x01bu.",
    ];
    for src in odd {
        for to in ["py2", "py3"] {
            let out = run(&["transcode", "--to", to], src);
            assert_eq!(out.status.code(), Some(3), "{src:?} to {to}");
            assert!(out.stdout.is_empty());
            assert_eq!(
                String::from_utf8_lossy(&out.stderr),
                "refused: malformed\n",
                "{src:?} to {to}"
            );
        }
    }
}

/// A FRAME claiming more bytes than are left: CPython 3 says "pickle data was truncated"
/// (checked in tests/transcode_fixtures.rs); refused, never rewritten into a loadable `[]`.
#[test]
fn frames_longer_than_the_input_are_refused_as_truncated() {
    let src = b"\x80\x04\x95\x64\x00\x00\x00\x00\x00\x00\x00].";
    for to in ["py2", "py3"] {
        let out = run(&["transcode", "--to", to], src);
        assert_eq!(out.status.code(), Some(3), "to {to}");
        assert!(out.stdout.is_empty());
        assert_eq!(String::from_utf8_lossy(&out.stderr), "refused: truncated\n");
    }
}

#[test]
fn options_are_parsed_and_bad_ones_rejected() {
    // py3: pickle.dumps(m.C(), 2) for a class m.C with __dict__ {'a': 1}
    let obj = b"\x80\x02cm\nC\nq\x00)\x81q\x01}q\x02X\x01\x00\x00\x00aq\x03K\x01sb.";
    let out = run(
        &[
            "transcode",
            "--to",
            "py2",
            "--py2-classic",
            "x.Y,m.C",
            "--py2-text",
            "utf8",
        ],
        obj,
    );
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(
        out.stdout,
        b"\x80\x02(cm\nC\nq\x00oq\x01}q\x02U\x01aq\x03K\x01sb."
    );
    // `--py2-utc pytz`: the same `timezone.utc` that is refused without it.
    let out = run(&["transcode", "--to", "py2", "--py2-utc", "pytz"], TZ_P4);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        out.stdout.starts_with(b"\x80\x02cpytz\n_UTC\n"),
        "{:?}",
        out.stdout
    );
    let out = run(
        &["transcode", "--to", "py2", "--py2-utc", "zoneinfo"],
        TZ_P4,
    );
    assert_eq!(out.status.code(), Some(2));
    let out = run(&["transcode", "--to", "py4"], b"N.");
    assert_eq!(out.status.code(), Some(2));
    let out = run(
        &["transcode", "--to", "py2", "--py2-classic", "nodot"],
        b"N.",
    );
    assert_eq!(out.status.code(), Some(2));
}

/// An output that cannot be written (stdout is `/dev/full`) is an I/O error, exit 74 with the
/// cause on stderr, for both commands: never a silent success.
#[test]
fn a_full_stdout_is_an_io_error() {
    let dir = tempfile::tempdir().expect("tempdir");
    let file = dir.path().join("set.pickle");
    std::fs::write(&file, SET_P4).unwrap();
    let file = file.display().to_string();
    for args in [
        vec!["transcode", "--to", "py2"],
        vec!["inspect", file.as_str()],
        vec!["inspect", "--json", file.as_str()],
    ] {
        let full = std::fs::OpenOptions::new()
            .write(true)
            .open("/dev/full")
            .expect("/dev/full");
        let mut child = Command::new(env!("CARGO_BIN_EXE_picklebridge"))
            .args(&args)
            .stdin(Stdio::piped())
            .stdout(full)
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn picklebridge");
        let _ = child.stdin.take().expect("stdin").write_all(SET_P4);
        let out = child.wait_with_output().expect("wait");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(74), "{args:?}: {stderr}");
        assert!(stderr.contains("writing stdout"), "{args:?}: {stderr}");
    }
}

#[test]
fn batch_converts_files_into_out_dir_with_a_summary() {
    let dir = tempfile::tempdir().expect("tempdir");
    let input = dir.path().join("in");
    let output = dir.path().join("out");
    std::fs::create_dir(&input).unwrap();
    std::fs::write(input.join("set.pickle"), SET_P4).unwrap();
    std::fs::write(input.join("none.pickle"), b"\x80\x02N.").unwrap();
    std::fs::write(input.join("tz.pickle"), TZ_P4).unwrap();
    let files: Vec<String> = ["set", "none", "tz"]
        .iter()
        .map(|n| input.join(format!("{n}.pickle")).display().to_string())
        .collect();
    let mut args = vec!["transcode", "--to", "py2", "--out-dir"];
    let out_arg = output.display().to_string();
    args.push(&out_arg);
    args.extend(files.iter().map(String::as_str));
    let out = run(&args, b"");
    assert_eq!(out.status.code(), Some(3), "one file is refused");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains("set.pickle\trewritten\n"), "{stdout}");
    assert!(stdout.contains("none.pickle\tunchanged\n"), "{stdout}");
    assert!(
        stdout.contains("tz.pickle\trefused\tpy3_only_global\n"),
        "{stdout}"
    );
    assert!(
        stdout.ends_with("3 files: 1 rewritten, 1 unchanged, 1 refused, 0 errors\n"),
        "{stdout}"
    );
    assert_eq!(std::fs::read(output.join("set.pickle")).unwrap(), SET_P2);
    assert_eq!(
        std::fs::read(output.join("none.pickle")).unwrap(),
        b"\x80\x02N."
    );
    assert!(!output.join("tz.pickle").exists());
    let out = run(&["transcode", "--to", "py2", &files[0]], b"");
    assert_eq!(out.status.code(), Some(64));
}

/// A file that cannot be read gets an `error` line, the others are still converted, and the run
/// exits 74 (I/O error) rather than 3, even with a refused file in the batch.
#[test]
fn batch_reports_an_unreadable_file_and_converts_the_rest() {
    let dir = tempfile::tempdir().expect("tempdir");
    let output = dir.path().join("out");
    let (missing, set, tz) = (
        dir.path().join("missing.pickle"),
        dir.path().join("set.pickle"),
        dir.path().join("tz.pickle"),
    );
    std::fs::write(&set, SET_P4).unwrap();
    std::fs::write(&tz, TZ_P4).unwrap();
    let args: Vec<String> = [&missing, &set, &tz]
        .iter()
        .map(|p| p.display().to_string())
        .collect();
    let out_arg = output.display().to_string();
    let mut argv = vec!["transcode", "--to", "py2", "--out-dir", &out_arg];
    argv.extend(args.iter().map(String::as_str));
    let out = run(&argv, b"");
    assert_eq!(out.status.code(), Some(74));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        stdout.contains(&format!("{}\terror\t", missing.display())),
        "{stdout}"
    );
    assert!(stdout.contains("set.pickle\trewritten\n"), "{stdout}");
    assert!(
        stdout.ends_with("3 files: 1 rewritten, 0 unchanged, 1 refused, 1 errors\n"),
        "{stdout}"
    );
    assert_eq!(std::fs::read(output.join("set.pickle")).unwrap(), SET_P2);
    assert!(!output.join("missing.pickle").exists());
}

/// A batch that would lose an output or an input is refused before anything is written: two
/// FILEs with one file name (one output for two inputs), and an `--out-dir` that is a FILE's
/// own directory, however spelled (the input would be overwritten by its conversion).
#[test]
fn batch_refuses_outputs_that_would_overwrite_one_another_or_an_input() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (a, b, output) = (
        dir.path().join("a"),
        dir.path().join("b"),
        dir.path().join("out"),
    );
    for d in [&a, &b] {
        std::fs::create_dir(d).unwrap();
    }
    std::fs::write(a.join("x.pickle"), SET_P4).unwrap();
    std::fs::write(b.join("x.pickle"), TZ_P4).unwrap();
    let path = |p: std::path::PathBuf| p.display().to_string();
    let (ax, bx) = (path(a.join("x.pickle")), path(b.join("x.pickle")));
    let out_arg = path(output.clone());
    let out = run(
        &["transcode", "--to", "py2", "--out-dir", &out_arg, &ax, &bx],
        b"",
    );
    assert_eq!(out.status.code(), Some(64));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("would both be written to"), "{stderr}");
    assert!(out.stdout.is_empty());
    assert!(!output.exists(), "a refused batch creates no --out-dir");
    // The input's own directory, spelled with `..`: the input stays as it was.
    let same = path(a.join("..").join("a"));
    let out = run(&["transcode", "--to", "py2", "--out-dir", &same, &ax], b"");
    assert_eq!(out.status.code(), Some(64));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("overwritten by its own output"), "{stderr}");
    assert_eq!(std::fs::read(a.join("x.pickle")).unwrap(), SET_P4);
    // Each alone converts, and leaves no temporary file behind.
    let out = run(
        &["transcode", "--to", "py2", "--out-dir", &out_arg, &ax],
        b"",
    );
    assert_eq!(out.status.code(), Some(0));
    let names: Vec<_> = std::fs::read_dir(&output)
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(names, ["x.pickle"]);
    assert_eq!(std::fs::read(output.join("x.pickle")).unwrap(), SET_P2);
}

#[test]
fn inspect_prints_disassembly_and_summary() {
    let out = run(&["inspect"], SET_P4);
    assert_eq!(out.status.code(), Some(0));
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("   11: \\x8f EMPTY_SET"), "{text}");
    assert!(text.contains("declared protocol: 4\n"), "{text}");
    assert!(text.contains("writer: py3\n"), "{text}");
    let out = run(&["inspect", "--json"], UTF8_P0);
    assert_eq!(out.status.code(), Some(0));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).expect("json");
    assert_eq!(v["summary"]["writer"], "py2");
    assert_eq!(v["summary"]["py2_str_non_ascii"], true);
    assert_eq!(v["ops"][0]["op"], "STRING");
    let out = run(&["inspect"], b"N.N");
    assert_eq!(out.status.code(), Some(3));
}
