//! Globals Python 3 pickles that Python 2 cannot load, whatever spelling the pickle uses:
//! Python 3's names as its `fix_imports` writes them at protocols 0-2 (Python 2's spelling). Inputs written by real CPython 3.11 and
//! CPython 2.7.18; each refusal was checked against the reader (it raises on the value).

use super::*;

/// Transcodes `src` and returns the outcome (no refusal expected or refused: either).
fn outcome(src: &[u8], policy: &Policy) -> Outcome {
    transcode(&Bytes::copy_from_slice(src), policy).outcome
}

/// py3: `pickle.dumps(x, p)` at protocols 0 and 2 of names only Python 3 has, which
/// `fix_imports` writes in Python 2's spelling (`__builtin__`, `repr`, `_abcoll`).
const P3_SPELLED_FOR_PY2: &[&[u8]] = &[
    // RecursionError('r'), protocols 0 and 2
    b"c__builtin__\nRecursionError\np0\n(Vr\np1\ntp2\nRp3\n.",
    b"\x80\x02c__builtin__\nRecursionError\nq\x00X\x01\x00\x00\x00rq\x01\x85q\x02Rq\x03.",
    // BlockingIOError(11, 'x'), protocol 2
    b"\x80\x02c__builtin__\nBlockingIOError\nq\x00K\x0bX\x01\x00\x00\x00xq\x01\x86q\x02Rq\x03.",
    // ascii, protocols 0 and 2
    b"c__builtin__\nascii\np0\n.",
    b"\x80\x02c__builtin__\nascii\nq\x00.",
    // reprlib.recursive_repr, collections.abc.AsyncIterator, protocol 2
    b"\x80\x02crepr\nrecursive_repr\nq\x00.",
    b"\x80\x02c_abcoll\nAsyncIterator\nq\x00.",
    // array.array('q', [1]) and array.array('Q', [1]), protocols 0 and 2: Python 2's array
    // lacks the typecodes ("bad typecode").
    b"carray\narray\np0\n(Vq\np1\n(lp2\nI1\natp3\nRp4\n.",
    b"\x80\x02carray\narray\nq\x00X\x01\x00\x00\x00qq\x01]q\x02K\x01a\x86q\x03Rq\x04.",
    b"carray\narray\np0\n(VQ\np1\n(lp2\nI1\natp3\nRp4\n.",
    b"\x80\x02carray\narray\nq\x00X\x01\x00\x00\x00Qq\x01]q\x02K\x01a\x86q\x03Rq\x04.",
];

#[test]
fn py3_names_in_python_2_spelling_are_refused_for_py2() {
    for src in P3_SPELLED_FOR_PY2 {
        assert_eq!(refused(src, &py2()), Reason::Py3OnlyGlobal, "{src:?}");
        // Python 3 loads them (its unpickler maps `__builtin__` back).
        assert!(
            !matches!(outcome(src, &py3()), Outcome::Refused(_)),
            "{src:?}"
        );
        let summary = transcode(&Bytes::copy_from_slice(src), &py2()).summary;
        assert!(summary.unwrap().py3_only_global, "{src:?}");
    }
}

#[test]
fn python_2_names_and_typecodes_still_reach_py2() {
    let keep: &[&[u8]] = &[
        // py3: array.array('i', [1]) at protocol 2 (Python 2 has the typecode).
        b"\x80\x02carray\narray\nq\x00X\x01\x00\x00\x00iq\x01]q\x02K\x01a\x86q\x03Rq\x04.",
        // py2: array.array('i', [1]), repr.Repr, ValueError('v'), set([1]), subprocess.Popen
        // by cPickle protocol 2.
        b"\x80\x02carray\narray\nq\x01U\x01i]q\x02K\x01a\x86Rq\x03.",
        b"\x80\x02crepr\nRepr\nq\x01.",
        b"\x80\x02cexceptions\nValueError\nq\x01U\x01v\x85q\x02Rq\x03.",
        b"\x80\x02c__builtin__\nset\nq\x01]q\x02K\x01a\x85Rq\x03.",
        b"\x80\x02csubprocess\nPopen\nq\x01.",
    ];
    for src in keep {
        assert!(
            !matches!(outcome(src, &py2()), Outcome::Refused(_)),
            "{src:?}"
        );
    }
}
