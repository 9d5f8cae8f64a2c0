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

use bytes::Bytes;
use common::python::{self, Py};
use picklebridge::pickle::{self, Outcome, Policy, Runtime};

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

/// Python 3 instances of standard-library classes that are old-style in Python 2 (the generated
/// `PY2_CLASSIC` table: `collections.UserDict` is `UserDict.IterableUserDict` there,
/// `xmlrpc.client.DateTime` is `xmlrpclib.DateTime`, ...) are written for Python 2 readers as
/// classic instances, at every protocol CPython 3 writes: with `NEWOBJ` (what CPython 3 itself
/// writes at protocol 2) Python 2 fails, "NEWOBJ class argument isn't a type object".
#[test]
fn old_style_classes_of_python_2_load_there() {
    let writer = r#"
import sys, pickle, collections, xmlrpc.client, http.cookiejar, textwrap
cookie = http.cookiejar.Cookie(0, 'n', 'v', None, False, 'example.com', False, False, '/',
                               False, False, None, False, None, None, {})
values = [collections.UserDict({'a': 1, 'b': [1, 2]}), xmlrpc.client.DateTime('20260101T00:00:00'),
          xmlrpc.client.Binary(b'\x00\xff'), cookie, textwrap.TextWrapper(width=10)]
sys.stdout.buffer.write(pickle.dumps(values, int(sys.argv[1])))
"#;
    let reader = r#"
import sys, cPickle
v = cPickle.load(sys.stdin)
print(repr(([type(x).__name__ for x in v], v[0].data, v[1].value, v[2].data, v[3].name,
            v[3].domain, v[4].width)))
"#;
    let want = "(['instance', 'instance', 'instance', 'instance', 'instance'], \
                {u'a': 1, u'b': [1, 2]}, u'20260101T00:00:00', '\\x00\\xff', u'n', \
                u'example.com', 10)";
    for protocol in ["2", "3", "4", "5"] {
        let out = python::run(
            Py::Py3,
            &["-c", writer, protocol],
            b"",
            Duration::from_secs(60),
        );
        out.assert_ok("pickle in Python 3");
        let src = Bytes::from(out.stdout.clone());
        let rewritten = match pickle::transcode(&src, &Policy::for_target(Runtime::Py2)).outcome {
            Outcome::Rewritten(b) => b,
            other => panic!("protocol {protocol}: {other:?}"),
        };
        let out = python::run(
            Py::Py2,
            &["-c", reader],
            &rewritten,
            Duration::from_secs(60),
        );
        out.assert_ok("load in Python 2");
        assert_eq!(out.stdout_str().trim(), want, "protocol {protocol}");
    }
}
