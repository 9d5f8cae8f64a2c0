//! Regressions found by the randomized cross-interpreter check (scripts/gen_random.py,
//! scripts/check_random.py, tests/cross_random.rs), each reduced to the smallest value CPython
//! writes with the same defect. The expected outputs were loaded in the other interpreter.

use super::*;

#[test]
fn py3_bytes_policy_keeps_the_array_typecode_str() {
    // py2: cPickle.dumps(array.array('i', [1]), 2) and protocol 0. Under `bytes` the typecode
    // became b'i': Python 3 raised "array() argument 1 must be a unicode character, not bytes".
    let mut p = py3();
    p.py3_str = Py3Str::Bytes;
    for src in [
        &b"\x80\x02carray\narray\nq\x01U\x01i]q\x02K\x01a\x86Rq\x03."[..],
        b"carray\narray\np1\n(S'i'\n(lp2\nI1\natRp3\n.",
    ] {
        assert_eq!(
            transcode(&Bytes::copy_from_slice(src), &p).outcome,
            Outcome::Unchanged
        );
    }
}
