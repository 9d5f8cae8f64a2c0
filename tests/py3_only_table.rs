//! The generated tables of globals one runtime lacks (from scripts/gen_py3_only.py) checked
//! against the real interpreters. `src/pickle/compat/py3_only.rs` against CPython 2.7: every
//! module listed fails to import there and every name fails to load, after `fix_imports`
//! renames them, and every name in Python 2's spelling fails as spelled.
//! `src/pickle/compat/py2_only.rs` against CPython 3: every module and name fails to load both
//! as its unpickler's `fix_imports` maps it and as spelled. A table entry the reader could load
//! would refuse values it can read. `src/pickle/compat.rs`'s copies of `_compat_pickle`'s four
//! name mappings against CPython 3's own. And both tables generated again from the two
//! interpreters equal the committed files: an entry missing would let a value naming it pass
//! unchanged and fail in the reader.
mod common;

use std::time::Duration;

use common::python::{self, Py};

#[test]
fn every_entry_is_missing_in_the_reader() {
    let out = python::run(
        Py::Py3,
        &["scripts/gen_py3_only.py", "--verify"],
        b"",
        Duration::from_secs(300),
    );
    let text = out.stdout_str();
    assert_eq!(out.code, Some(0), "{text}\n{}", out.stderr);
    // One summary line per table.
    assert!(
        text.contains("checked against Python 2: 0 problems"),
        "{text}"
    );
    // (py2_only's line; the compat.rs line below also ends this way.)
    assert!(
        text.lines()
            .any(|l| l.starts_with("py2_only: ")
                && l.ends_with("checked against Python 3: 0 problems")),
        "{text}"
    );
    // compat.rs's copies of `_compat_pickle`'s name mappings.
    assert!(
        text.contains("compat.rs name mappings checked against Python 3: 0 problems"),
        "{text}"
    );
    assert!(
        text.contains("tables regenerated: identical to the committed files"),
        "{text}"
    );
}
