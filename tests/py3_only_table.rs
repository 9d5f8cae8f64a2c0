//! The generated table of globals Python 2 lacks (`src/pickle/compat/py3_only.rs`, from
//! scripts/gen_py3_only.py) checked against the real CPython 2.7: every module listed fails to
//! import there and every name fails to load, after `fix_imports` renames them. A table entry
//! that Python 2 could load would refuse values it can read.
mod common;

use std::time::Duration;

use common::python::{self, Py};

#[test]
fn every_entry_is_missing_in_python_2() {
    let out = python::run(
        Py::Py3,
        &["scripts/gen_py3_only.py", "--verify"],
        b"",
        Duration::from_secs(300),
    );
    let text = out.stdout_str();
    assert_eq!(out.code, Some(0), "{text}\n{}", out.stderr);
    assert!(text.contains(": 0 problems"), "{text}");
}
