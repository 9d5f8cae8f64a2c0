//! Globals one runtime pickles that the other cannot load, whatever spelling the pickle uses:
//! Python 3's names as its `fix_imports` writes them at protocols 0-2 (Python 2's spelling) for
//! py2 readers, and Python 2's names for py3 readers. Inputs written by real CPython 3.11 and
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

/// py2: `cPickle.dumps(x, p)` of names Python 3 lacks, at protocols 2 and 0.
const P2_ONLY: &[&[u8]] = &[
    // sets.Set([1]), protocols 2 and 0
    b"\x80\x02csets\nSet\nq\x01)\x81q\x02}q\x03K\x01\x88s\x85b.",
    b"ccopy_reg\n_reconstructor\np1\n(csets\nSet\np2\nc__builtin__\nobject\np3\nNtRp4\n((dp5\nI1\nI01\nstb.",
    // cmp, buffer, file, apply, execfile, raw_input
    b"\x80\x02c__builtin__\ncmp\nq\x01.",
    b"c__builtin__\ncmp\np1\n.",
    b"\x80\x02c__builtin__\nbuffer\nq\x01.",
    b"\x80\x02c__builtin__\nfile\nq\x01.",
    b"\x80\x02c__builtin__\napply\nq\x01.",
    b"\x80\x02c__builtin__\nexecfile\nq\x01.",
    b"\x80\x02c__builtin__\nraw_input\nq\x01.",
    // os.getcwdu (pickled as posix.getcwdu), string.maketrans (strop.maketrans), string.upper
    b"\x80\x02cposix\ngetcwdu\nq\x01.",
    b"\x80\x02cstrop\nmaketrans\nq\x01.",
    b"\x80\x02cstring\nupper\nq\x01.",
    // urllib.FancyURLopener (the class), protocols 2 and 0
    b"\x80\x02curllib\nFancyURLopener\nq\x01.",
    b"curllib\nFancyURLopener\np1\n.",
    // os.stat_result and os.statvfs_result, protocols 2 and 0: copy_reg's reducers name
    // os._make_stat_result and os._make_statvfs_result, which Python 3 lacks.
    b"\x80\x02cos\n_make_stat_result\nq\x01(K\x01K\x02K\x03K\x04K\x05K\x06K\x07K\x08K\tK\nt}q\x02(U\x08st_ctimeq\x03K\nU\x07st_rdevq\x04NU\x08st_mtimeq\x05K\tU\tst_blocksq\x06NU\x08st_atimeq\x07K\x08U\nst_blksizeq\x08Nu\x86Rq\t.",
    b"cos\n_make_statvfs_result\np1\n((I1\nI2\nI3\nI4\nI5\nI6\nI7\nI8\nI9\nI10\nt(dtRp2\n.",
];

#[test]
fn python_2_only_names_are_refused_for_py3() {
    for src in P2_ONLY {
        assert_eq!(refused(src, &py3()), Reason::Py2OnlyGlobal, "{src:?}");
        let bytes = Policy {
            py3_str: Py3Str::Bytes,
            ..py3()
        };
        assert_eq!(refused(src, &bytes), Reason::Py2OnlyGlobal, "{src:?}");
        // Python 2 wrote them and loads them.
        assert_eq!(outcome(src, &py2()), Outcome::Unchanged, "{src:?}");
    }
}

#[test]
fn python_2_names_python_3_maps_still_reach_py3() {
    let keep: &[&[u8]] = &[
        // py2: ValueError('v') (`exceptions`, mapped by name), xrange(3) (mapped to `range`),
        // set([1]), repr.Repr (`repr` is `reprlib`), subprocess.Popen, by cPickle protocol 2.
        b"\x80\x02cexceptions\nValueError\nq\x01U\x01v\x85q\x02Rq\x03.",
        b"\x80\x02c__builtin__\nxrange\nq\x01K\x00K\x03K\x01\x87Rq\x02.",
        b"\x80\x02c__builtin__\nset\nq\x01]q\x02K\x01a\x85Rq\x03.",
        b"\x80\x02crepr\nRepr\nq\x01.",
        b"\x80\x02csubprocess\nPopen\nq\x01.",
        // py3: RecursionError('r') at protocol 2 (`__builtin__`, which Python 3 maps back).
        b"\x80\x02c__builtin__\nRecursionError\nq\x00X\x01\x00\x00\x00rq\x01\x85q\x02Rq\x03.",
    ];
    for src in keep {
        assert!(
            !matches!(outcome(src, &py3()), Outcome::Refused(_)),
            "{src:?}"
        );
    }
}

/// py3: [subprocess.Popen, subprocess.check_output] at protocol 4. `fix_imports` would write
/// `commands.Popen` and `commands.check_output`, which Python 2 lacks (its `commands` holds only
/// what Python 3 moved to `subprocess`); Python 2 loads them as spelled, so they stay so
/// (`KEEP_SPELLED`; the output was loaded in CPython 2.7).
#[test]
fn names_fix_imports_would_break_keep_their_spelling_for_py2() {
    let src = b"\x80\x04\x95/\x00\x00\x00\x00\x00\x00\x00]\x94(\x8c\nsubprocess\x94\x8c\x05Popen\x94\x93\x94h\x01\x8c\x0ccheck_output\x94\x93\x94e.";
    let out = rewritten(src, &py2());
    for name in [&b"csubprocess\nPopen\n"[..], b"csubprocess\ncheck_output\n"] {
        assert!(out.windows(name.len()).any(|w| w == name), "{out:?}");
    }
    assert!(!out.windows(8).any(|w| w == b"commands"), "{out:?}");
    // The same at protocol 2, where CPython 3 already wrote `commands.Popen`: refused.
    assert_eq!(
        refused(b"\x80\x02ccommands\nPopen\nq\x00.", &py2()),
        Reason::Py3OnlyGlobal
    );
}
