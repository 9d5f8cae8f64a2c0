//! `array.array` at protocols 3-5 for a Python 2 reader: `array._array_reconstructor(...)`
//! becomes `array.array(typecode, [item, ...])`, as CPython 3's protocol-2 pickle writes it.
//! Inputs by CPython 3.11 unless marked hand-made; the outputs were loaded in CPython 2.7
//! (`pickle` and `cPickle`) and 3.11 to equal arrays.

use super::*;

/// py3: array.array('i', [1]) at protocol 3
const I_P3: &[u8] = b"\x80\x03carray\n_array_reconstructor\nq\x00(carray\narray\nq\x01X\x01\x00\x00\x00iq\x02K\x08C\x04\x01\x00\x00\x00q\x03tq\x04Rq\x05.";
/// py3: a = array('h', [5]); [a, a, array('d', [0.5])] at protocol 4 (the array shared through
/// the memo, the reconstructor and `array.array` fetched by GET for the second array)
const SHARED_P4: &[u8] = b"\x80\x04\x95d\x00\x00\x00\x00\x00\x00\x00]\x94(\x8c\x05array\x94\x8c\x14_array_reconstructor\x94\x93\x94(\x8c\x05array\x94\x8c\x05array\x94\x93\x94\x8c\x01h\x94K\x04C\x02\x05\x00\x94t\x94R\x94h\nh\x03(h\x06\x8c\x01d\x94K\x10C\x08\x00\x00\x00\x00\x00\x00\xe0?\x94t\x94R\x94e.";
/// py3: array.array('u', '\xe9') at protocol 5
const U_P5: &[u8] = b"\x80\x05\x95F\x00\x00\x00\x00\x00\x00\x00\x8c\x05array\x94\x8c\x14_array_reconstructor\x94\x93\x94(\x8c\x05array\x94\x8c\x05array\x94\x93\x94\x8c\x01u\x94K\x14C\x04\xe9\x00\x00\x00\x94t\x94R\x94.";
/// py3: array.array('B') at protocol 3
const EMPTY_P3: &[u8] = b"\x80\x03carray\n_array_reconstructor\nq\x00(carray\narray\nq\x01X\x01\x00\x00\x00Bq\x02K\x00C\x00q\x03tq\x04Rq\x05.";

/// `I_P3` with its typecode, mformat and bytes replaced (hand-made unless CPython writes it).
fn i_p3_with(typecode: u8, mformat: u8, bytes: &[u8]) -> Vec<u8> {
    let mut v =
        b"\x80\x03carray\n_array_reconstructor\nq\x00(carray\narray\nq\x01X\x01\x00\x00\x00"
            .to_vec();
    v.extend_from_slice(&[typecode, b'q', 2, b'K', mformat, b'C', bytes.len() as u8]);
    v.extend_from_slice(bytes);
    v.extend_from_slice(b"q\x03tq\x04Rq\x05.");
    v
}

#[test]
fn py2_array_becomes_array_of_typecode_and_list() {
    assert_eq!(
        rewritten(I_P3, &py2()),
        b"\x80\x02carray\narray\nq\x00X\x01\x00\x00\x00iq\x01](K\x01e\x86Rq\x02."
    );
    assert_eq!(
        rewritten(EMPTY_P3, &py2()),
        b"\x80\x02carray\narray\nq\x00X\x01\x00\x00\x00Bq\x01]\x86Rq\x02."
    );
    // The typecode and the items stay unicode under `utf8` (`array('u', [u'\xe9'])`).
    let mut utf8 = py2();
    utf8.py2_text = Py2Text::Utf8;
    let want = b"\x80\x02carray\narray\nq\x00X\x01\x00\x00\x00uq\x01](X\x02\x00\x00\x00\xc3\xa9e\x86Rq\x02.";
    assert_eq!(rewritten(U_P5, &py2()), want);
    assert_eq!(rewritten(U_P5, &utf8), want);
}

#[test]
fn py2_array_shared_and_its_globals_reused_by_a_second_array() {
    // The second reference is a GET of the first array; the second array fetches the
    // reconstructor (skipped with it) and `array.array` (written as a GET) from the memo.
    assert_eq!(
        rewritten(SHARED_P4, &py2()),
        b"\x80\x02]q\x00(carray\narray\nq\x01X\x01\x00\x00\x00hq\x02](K\x05e\x86Rq\x03h\x03\
          h\x01X\x01\x00\x00\x00dq\x04](G?\xe0\x00\x00\x00\x00\x00\x00e\x86Rq\x05e."
    );
}

#[test]
fn py2_array_bytes_shared_with_other_values() {
    // py3: [array('B'), array('d'), b'', array('B', [1]), b'\x01'] at protocol 3: CPython's one
    // `b''` is the first array's items, fetched by GET for the second array and the bytes
    // value; the one-byte `bytes` is the third array's and fetched for the value after it.
    let src = b"\x80\x03]q\x00(carray\n_array_reconstructor\nq\x01(carray\narray\nq\x02X\x01\x00\x00\x00Bq\x03K\x00C\x00q\x04tq\x05Rq\x06h\x01(h\x02X\x01\x00\x00\x00dq\x07K\x10h\x04tq\x08Rq\th\x04h\x01(h\x02h\x03K\x00C\x01\x01q\ntq\x0bRq\x0ch\ne.";
    // The bytes ops fetched elsewhere are written as they stand (memoized for those GETs),
    // then popped for the list; a GET of them in an array's place becomes the list.
    assert_eq!(
        rewritten(src, &py2()),
        b"\x80\x02]q\x00(carray\narray\nq\x01X\x01\x00\x00\x00Bq\x02c__builtin__\nbytes\n\
          q\x03)Rq\x040]\x86Rq\x05h\x01X\x01\x00\x00\x00dq\x06]\x86Rq\x07h\x04h\x01h\x02\
          c_codecs\nencode\nq\x08X\x01\x00\x00\x00\x01X\x06\x00\x00\x00latin1q\t\x86Rq\n\
          0](K\x01e\x86Rq\x0bh\ne."
    );
}

#[test]
fn py2_array_state_after_the_call_is_kept() {
    // Hand-made: BUILD with a dict after the call (CPython writes one for an instance dict).
    let mut src = I_P3[..I_P3.len() - 1].to_vec();
    src.extend_from_slice(b"}q\x06X\x01\x00\x00\x00xq\x07K\x05sb.");
    assert_eq!(
        rewritten(&src, &py2()),
        b"\x80\x02carray\narray\nq\x00X\x01\x00\x00\x00iq\x01](K\x01e\x86Rq\x02}q\x03\
          X\x01\x00\x00\x00xq\x04K\x05sb."
    );
}

#[test]
fn py2_arrays_converted_with_certainty_only() {
    // Big-endian machine formats CPython writes there, and 32-bit `long`.
    converted(&i_p3_with(b'i', 9, b"\x00\x00\x00\x01"), &py2());
    converted(&i_p3_with(b'l', 8, b"\x01\x00\x00\x00"), &py2());
    converted(&i_p3_with(b'u', 18, b"a\x00"), &py2());
    let refusals: [(&str, Vec<u8>); 6] = [
        // py3: array('q', [1]): Python 2's array lacks the typecode.
        ("q", i_p3_with(b'q', 12, &[1, 0, 0, 0, 0, 0, 0, 0])),
        ("Q", i_p3_with(b'Q', 10, &[1, 0, 0, 0, 0, 0, 0, 0])),
        // A machine format of another size than the typecode's.
        ("i as int64", i_p3_with(b'i', 12, &[1, 0, 0, 0, 0, 0, 0, 0])),
        // Bytes that are not whole items; a UTF-16 surrogate.
        ("partial item", i_p3_with(b'i', 8, b"\x01\x00\x00")),
        ("surrogate", i_p3_with(b'u', 18, b"\x3d\xd8")),
        // The reconstructor not called (hand-made).
        (
            "bare reconstructor",
            b"\x80\x03carray\n_array_reconstructor\nq\x00.".to_vec(),
        ),
    ];
    for (what, src) in refusals {
        assert_eq!(refused(&src, &py2()), Reason::Py3OnlyGlobal, "{what}");
    }
    // py3: class A(array.array): pass; A('i', [1]) at protocol 4: `A('i', [1])` would call
    // the subclass's own `__new__` and `__init__`, which the reconstructor does not.
    let subclass = b"\x80\x04\x95O\x00\x00\x00\x00\x00\x00\x00\x8c\x05array\x94\x8c\x14_array_reconstructor\x94\x93\x94(\x8c\x08__main__\x94\x8c\x01A\x94\x93\x94\x8c\x01i\x94K\x08C\x04\x01\x00\x00\x00\x94t\x94R\x94}\x94\x8c\x01x\x94K\x05sb.";
    assert_eq!(refused(subclass, &py2()), Reason::Py3OnlyGlobal);
    // The array's bytes fetched again after it (hand-made `(array, bytes)`): written as they
    // stand for that GET, popped for the list.
    let mut bytes_twice = I_P3[..I_P3.len() - 1].to_vec();
    bytes_twice.extend_from_slice(b"h\x03\x86.");
    assert_eq!(
        rewritten(&bytes_twice, &py2()),
        b"\x80\x02carray\narray\nq\x00X\x01\x00\x00\x00iq\x01c_codecs\nencode\nq\x02\
          X\x04\x00\x00\x00\x01\x00\x00\x00X\x06\x00\x00\x00latin1q\x03\x86Rq\x04\
          0](K\x01e\x86Rq\x05h\x04\x86."
    );
    // One reconstructor DUP'd and called twice (hand-made): its GLOBAL cannot be skipped
    // for both calls.
    let call = b"(carray\narray\nX\x01\x00\x00\x00iK\x08C\x04\x01\x00\x00\x00tR";
    let mut dup = b"\x80\x03carray\n_array_reconstructor\n2".to_vec();
    dup.extend_from_slice(call);
    dup.push(b'0');
    dup.extend_from_slice(call);
    dup.push(b'.');
    assert_eq!(refused(&dup, &py2()), Reason::Py3OnlyGlobal);
    // A Python 3 reader gets it as it is; the summary still says Python 2 lacks the global.
    let t = transcode(&Bytes::from_static(I_P3), &py3());
    assert_eq!(t.outcome, Outcome::Unchanged);
    assert!(t.summary.unwrap().py3_only_global);
}

#[test]
fn py2_array_items_count_against_the_stack_limit() {
    let mut p = py2();
    p.limits.max_stack = 500;
    assert_eq!(refused(I_P3, &p), Reason::LimitExceeded);
}
