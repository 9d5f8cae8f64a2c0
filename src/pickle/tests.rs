//! Transcoder tests: one per rewrite rule, on pickles written by real CPython 3.11 and CPython
//! 2.7.18 (byte literals generated once; each says which object it encodes). The expected
//! outputs were checked to load in the other interpreter to the expected object.

use super::opcode as op;
use super::*;

mod cross_random;
mod globals;
mod lines;
mod object_keys;
mod utc;

/// py3: {1, 2} at protocol 4
const P3_SET_P4: &[u8] = b"\x80\x04\x95\x09\x00\x00\x00\x00\x00\x00\x00\x8f\x94(K\x01K\x02\x90.";
/// py3: [b'ab', b''] at protocol 3
const P3_BYTES_P3: &[u8] = b"]q\x00(C\x02abq\x01C\x00q\x02e.";
/// py3: ['\u7231', '\u7231'] (shared) at protocol 4
const P3_TEXT_P4: &[u8] =
    b"\x80\x04\x95\x0d\x00\x00\x00\x00\x00\x00\x00]\x94(\x8c\x03\xe7\x88\xb1\x94h\x01e.";
/// py3: {'a': '\u7231'} at protocol 2
const P3_TEXT_P2: &[u8] =
    b"\x80\x02}q\x00X\x01\x00\x00\x00aq\x01X\x03\x00\x00\x00\xe7\x88\xb1q\x02s.";
/// py3: range(3) at protocol 4 (builtins.range -> __builtin__.xrange)
const P3_RANGE_P4: &[u8] = b"\x80\x04\x95 \x00\x00\x00\x00\x00\x00\x00\x8c\x08builtins\x94\x8c\x05range\x94\x93\x94K\x00K\x03K\x01\x87\x94R\x94.";
/// py3: frozenset({1}) at protocol 5
const P3_FROZENSET_P5: &[u8] = b"\x80\x05\x95\x06\x00\x00\x00\x00\x00\x00\x00(K\x01\x91\x94.";
/// py3: bytearray(b'a') at protocol 5
const P3_BYTEARRAY_P5: &[u8] =
    b"\x80\x05\x95\x0c\x00\x00\x00\x00\x00\x00\x00\x96\x01\x00\x00\x00\x00\x00\x00\x00a\x94.";
/// py3: datetime.timezone.utc at protocol 4
const P3_TZ_P4: &[u8] = b"\x80\x04\x957\x00\x00\x00\x00\x00\x00\x00\x8c\x08datetime\x94\x8c\x08timezone\x94\x93\x94h\x00\x8c\x09timedelta\x94\x93\x94K\x00K\x00K\x00\x87\x94R\x94\x85\x94R\x94.";
/// py3: {b'a': 1, 'a': 2} at protocol 4
const P3_COLLIDE_P4: &[u8] =
    b"\x80\x04\x95\x11\x00\x00\x00\x00\x00\x00\x00}\x94(C\x01a\x94K\x01\x8c\x01a\x94K\x02u.";
/// py3: datetime.date(2015, 3, 4) at protocol 2
const P3_DATE_P2: &[u8] = b"\x80\x02cdatetime\ndate\nq\x00c_codecs\nencode\nq\x01X\x05\x00\x00\x00\x07\xc3\x9f\x03\x04q\x02X\x06\x00\x00\x00latin1q\x03\x86q\x04Rq\x05\x85q\x06Rq\x07.";
/// py3: b'\xff' at protocol 2
const P3_BYTES_P2: &[u8] = b"\x80\x02c_codecs\nencode\nq\x00X\x02\x00\x00\x00\xc3\xbfq\x01X\x06\x00\x00\x00latin1q\x02\x86q\x03Rq\x04.";
/// py2: {'a': [1, 'b']} by cPickle protocol 0
const P2_ASCII_P0: &[u8] = b"(dp1\nS'a'\n(lp2\nI1\naS'b'\nas.";
/// py2: '\xe7\x88\xb1' (UTF-8 of U+7231) by cPickle protocol 0
const P2_UTF8_P0: &[u8] = b"S'\\xe7\\x88\\xb1'\np1\n.";
/// py2: '\xff\x00' by cPickle protocol 2
const P2_BIN_P2: &[u8] = b"\x80\x02U\x02\xff\x00q\x01.";
/// py2: datetime.date(2015, 3, 4) by cPickle protocol 0
const P2_DATE_P0: &[u8] = b"cdatetime\ndate\np1\n(S'\\x07\\xdf\\x03\\x04'\ntRp2\n.";
/// py2: datetime.date(2015, 3, 4) by cPickle protocol 2
const P2_DATE_P2: &[u8] = b"\x80\x02cdatetime\ndate\nq\x01U\x04\x07\xdf\x03\x04\x85Rq\x02.";
/// py2: datetime.datetime(2020, 1, 2, 3, 4, 5) by cPickle protocol 1
const P2_DT_P1: &[u8] =
    b"cdatetime\ndatetime\nq\x01(U\n\x07\xe4\x01\x02\x03\x04\x05\x00\x00\x00tRq\x02.";
/// py2: {u'a': '\xe7\x88\xb1'} by cPickle protocol 2
const P2_MIXED_P2: &[u8] = b"\x80\x02}q\x01X\x01\x00\x00\x00aU\x03\xe7\x88\xb1q\x02s.";
/// py2: {'\xe7': 1, u'\xe7': 2} by cPickle protocol 2
const P2_COLLIDE_P2: &[u8] = b"\x80\x02}q\x01(X\x02\x00\x00\x00\xc3\xa7K\x02U\x01\xe7K\x01u.";

fn py2() -> Policy {
    Policy::for_target(Runtime::Py2)
}

fn py3() -> Policy {
    Policy::for_target(Runtime::Py3)
}

/// Transcodes and returns the rewritten bytes, checking the invariants every rewrite must hold.
fn rewritten(src: &[u8], policy: &Policy) -> Vec<u8> {
    let t = transcode(&Bytes::copy_from_slice(src), policy);
    let Outcome::Rewritten(out) = t.outcome else {
        panic!("expected a rewrite, got {:?}", t.outcome);
    };
    let s = analyze(&out).expect("output re-parses");
    if policy.target == Runtime::Py2 {
        assert!(
            s.max_protocol <= 2,
            "py2 output uses protocol {} opcodes",
            s.max_protocol
        );
    }
    let again = transcode(&out, policy);
    assert_eq!(
        again.outcome,
        Outcome::Unchanged,
        "second pass changes {out:?}"
    );
    out.to_vec()
}

fn refused(src: &[u8], policy: &Policy) -> Reason {
    match transcode(&Bytes::copy_from_slice(src), policy).outcome {
        Outcome::Refused(r) => r,
        other => panic!("expected a refusal, got {other:?}"),
    }
}

#[test]
fn unchanged_returns_no_copy_and_a_summary() {
    let src = Bytes::from_static(P2_ASCII_P0);
    let t = transcode(&src, &py3());
    assert_eq!(t.outcome, Outcome::Unchanged);
    let s = t.summary.unwrap();
    assert_eq!(
        (s.declared_protocol, s.max_protocol, s.writer),
        (None, 0, Writer::Py2)
    );
    // py3-written protocol 2 pickles pass to py3 readers and, with `keep`, to py2 readers.
    for (src, policy) in [
        (P3_TEXT_P2, py3()),
        (P3_TEXT_P2, py2()),
        (P3_DATE_P2, py2()),
        (P3_BYTES_P2, py3()),
    ] {
        assert_eq!(
            transcode(&Bytes::from_static(src), &policy).outcome,
            Outcome::Unchanged
        );
    }
}

#[test]
fn py2_set_becomes_builtin_set_of_list_with_memo_after_reduce() {
    // CPython 3: pickle.dumps({1, 2}, 2) minus the temporaries' memo entries.
    let out = rewritten(P3_SET_P4, &py2());
    assert_eq!(
        out,
        b"\x80\x02c__builtin__\nset\nq\x00](K\x01K\x02e\x85Rq\x01."
    );
}

#[test]
fn py2_frozenset_and_bytearray() {
    assert_eq!(
        rewritten(P3_FROZENSET_P5, &py2()),
        b"\x80\x02c__builtin__\nfrozenset\nq\x00](K\x01e\x85Rq\x01."
    );
    assert_eq!(
        rewritten(P3_BYTEARRAY_P5, &py2()),
        &b"\x80\x02c__builtin__\nbytearray\nq\x00c_codecs\nencode\nq\x01X\x01\x00\x00\x00a\
           X\x06\x00\x00\x00latin1q\x02\x86R\x85Rq\x03."[..]
    );
}

#[test]
fn py2_bytes_use_codecs_encode_and_empty_bytes_use_builtin_bytes() {
    // `_codecs.encode` and 'latin1' are memoized once, as CPython's save_reduce does.
    assert_eq!(
        rewritten(P3_BYTES_P3, &py2()),
        &b"\x80\x02]q\x00(c_codecs\nencode\nq\x01X\x02\x00\x00\x00abX\x06\x00\x00\x00latin1q\x02\
           \x86Rq\x03c__builtin__\nbytes\nq\x04)Rq\x05e."[..]
    );
}

#[test]
fn py2_short_binunicode_and_memoize_renumbered() {
    assert_eq!(
        rewritten(P3_TEXT_P4, &py2()),
        b"\x80\x02]q\x00(X\x03\x00\x00\x00\xe7\x88\xb1q\x01h\x01e."
    );
}

#[test]
fn py2_text_utf8_policy_writes_py2_str_but_keeps_codecs_arguments() {
    let mut p = py2();
    p.py2_text = Py2Text::Utf8;
    assert_eq!(
        rewritten(P3_TEXT_P2, &p),
        b"\x80\x02}q\x00U\x01aq\x01U\x03\xe7\x88\xb1q\x02s."
    );
    // The text inside `_codecs.encode(u'\xff', u'latin1')` must stay unicode for Python 2.
    assert_eq!(
        transcode(&Bytes::from_static(P3_BYTES_P2), &p).outcome,
        Outcome::Unchanged
    );
}

#[test]
fn py2_stack_global_becomes_renamed_global() {
    assert_eq!(
        rewritten(P3_RANGE_P4, &py2()),
        b"\x80\x02c__builtin__\nxrange\nq\x00K\x00K\x03K\x01\x87q\x01Rq\x02."
    );
}

#[test]
fn py2_refusals_have_their_reasons() {
    assert_eq!(refused(P3_TZ_P4, &py2()), Reason::Py3OnlyGlobal);
    // py3: array.array('i', [1]) at protocol 3 (Python 2's array module has no reconstructor).
    let array_p3 = b"\x80\x03carray\n_array_reconstructor\nq\x00(carray\narray\nq\x01X\x01\x00\x00\x00iq\x02K\x08C\x04\x01\x00\x00\x00q\x03tq\x04Rq\x05.";
    assert_eq!(refused(array_p3, &py2()), Reason::Py3OnlyGlobal);
    assert_eq!(refused(P3_COLLIDE_P4, &py2()), Reason::Collision);
    // NEWOBJ_EX: cls, args, kwargs (a hand-assembled minimal stream).
    let newobj_ex = b"\x80\x04\x8c\x01m\x8c\x01C\x93)}\x92.";
    assert_eq!(refused(newobj_ex, &py2()), Reason::NewobjEx);
    assert_eq!(refused(b"\x80\x02a.", &py2()), Reason::Malformed);
    assert_eq!(refused(b"\x80\x02K\x01Q.", &py2()), Reason::PersistentId);
    assert_eq!(refused(b"Pid\n.", &py3()), Reason::PersistentId);
    assert_eq!(refused(b"\x80\x02\x82\x01.", &py2()), Reason::Extension);
    assert_eq!(refused(b"\x80\x05\x97.", &py3()), Reason::OutOfBandBuffer);
    // py2: array.array('c', 'ab') by cPickle protocol 2 (typecode 'c' is gone in Python 3).
    let array_c = b"\x80\x02carray\narray\nq\x01U\x01c]q\x02(U\x01aU\x01be\x86Rq\x03.";
    assert_eq!(refused(array_c, &py3()), Reason::Unsupported);
    assert_eq!(refused(b"\x80\x06N.", &py3()), Reason::UnsupportedProtocol);
    // A refused but valid pickle still reports what it contains.
    let t = transcode(&Bytes::from_static(P3_TZ_P4), &py2());
    assert!(t.summary.unwrap().py3_only_global);
}

#[test]
fn py2_classic_class_written_with_obj() {
    // py3: pickle.dumps(m.C(), 2) for a class m.C with __dict__ {'a': 1}.
    let src = b"\x80\x02cm\nC\nq\x00)\x81q\x01}q\x02X\x01\x00\x00\x00aq\x03K\x01sb.";
    let mut p = py2();
    p.py2_classic = Arc::from(vec![Global::new("m", "C")]);
    assert_eq!(
        rewritten(src, &p),
        b"\x80\x02(cm\nC\nq\x00oq\x01}q\x02X\x01\x00\x00\x00aq\x03K\x01sb."
    );
    // Without the class in the list nothing changes.
    assert_eq!(
        transcode(&Bytes::from_static(src), &py2()).outcome,
        Outcome::Unchanged
    );
}

#[test]
fn py2_classic_class_mark_counts_against_the_depth_limit() {
    // The instance of `py2_classic_class_written_with_obj` inside `n` open MARKs: OBJ's MARK
    // makes one more, so at the limit it is refused instead of written past it.
    let value = |n: usize| {
        let mut v = b"\x80\x02".to_vec();
        v.extend(std::iter::repeat_n(b'(', n));
        v.extend_from_slice(b"cm\nC\nq\x00)\x81q\x01");
        v.extend(std::iter::repeat_n(b'l', n));
        v.push(b'.');
        v
    };
    let mut p = py2();
    p.py2_classic = Arc::from(vec![Global::new("m", "C")]);
    p.limits.max_depth = 3;
    let out = rewritten(&value(2), &p);
    assert_eq!(transcode(&Bytes::from(out), &p).outcome, Outcome::Unchanged);
    assert_eq!(refused(&value(3), &p), Reason::LimitExceeded);
}

#[test]
fn py3_strings_follow_policy() {
    assert_eq!(
        rewritten(P2_UTF8_P0, &py3()),
        b"X\x03\x00\x00\x00\xe7\x88\xb1p1\n."
    );
    assert_eq!(rewritten(P2_BIN_P2, &py3()), b"\x80\x02C\x02\xff\x00q\x01.");
    let mut p = py3();
    p.py3_str = Py3Str::Bytes;
    assert_eq!(
        rewritten(P2_ASCII_P0, &p),
        b"(dp1\nC\x01a(lp2\nI1\naC\x01bas."
    );
    p.py3_str = Py3Str::Latin1;
    assert_eq!(
        rewritten(P2_BIN_P2, &p),
        b"\x80\x02X\x03\x00\x00\x00\xc3\xbf\x00q\x01."
    );
    assert_eq!(refused(P2_COLLIDE_P2, &p), Reason::Collision);
    assert_eq!(
        rewritten(P2_MIXED_P2, &py3()),
        b"\x80\x02}q\x01X\x01\x00\x00\x00aX\x03\x00\x00\x00\xe7\x88\xb1q\x02s."
    );
}

#[test]
fn py3_datetime_state_becomes_bytes_in_every_protocol() {
    assert_eq!(
        rewritten(P2_DATE_P0, &py3()),
        b"cdatetime\ndate\np1\n(C\x04\x07\xdf\x03\x04tRp2\n."
    );
    assert_eq!(
        rewritten(P2_DATE_P2, &py3()),
        b"\x80\x02cdatetime\ndate\nq\x01C\x04\x07\xdf\x03\x04\x85Rq\x02."
    );
    let out = rewritten(P2_DT_P1, &py3());
    assert_eq!(
        out,
        b"cdatetime\ndatetime\nq\x01(C\n\x07\xe4\x01\x02\x03\x04\x05\x00\x00\x00tRq\x02."
    );
    // Even under `bytes`/`latin1` the state is bytes, and the summary says so.
    let s = analyze(P2_DATE_P2).unwrap();
    assert!(s.py2_binary_state && s.py2_str_non_ascii);
    assert_eq!(s.globals, vec![Global::new("datetime", "date")]);
}

#[test]
fn summary_detects_writer_protocol_and_text() {
    let s = analyze(P3_TEXT_P4).unwrap();
    assert_eq!(
        (s.declared_protocol, s.max_protocol, s.writer),
        (Some(4), 4, Writer::Py3)
    );
    assert!(s.py3_text && !s.py2_str_non_ascii);
    let s = analyze(P3_BYTES_P2).unwrap();
    assert_eq!((s.max_protocol, s.writer), (2, Writer::Py3));
    let s = analyze(P2_MIXED_P2).unwrap();
    assert_eq!(s.writer, Writer::Py2);
    assert!(!s.py3_text && s.py2_str_non_ascii);
    let s = analyze(P3_RANGE_P4).unwrap();
    assert_eq!(s.globals, vec![Global::new("builtins", "range")]);
}

#[test]
fn limits_refuse_instead_of_allocating() {
    let mut p = py2();
    p.limits.max_output = 8;
    assert_eq!(refused(P3_SET_P4, &p), Reason::LimitExceeded);
    let mut p = py3();
    p.limits.max_depth = 1;
    assert_eq!(refused(b"((t.", &p), Reason::LimitExceeded);
}

#[test]
fn reasons_are_a_closed_set_of_distinct_labels() {
    let mut labels: Vec<_> = Reason::ALL.iter().map(|r| r.as_str()).collect();
    labels.sort_unstable();
    labels.dedup();
    assert_eq!(labels.len(), Reason::ALL.len());
    assert!(labels.contains(&"newobj_ex") && labels.contains(&"limit_exceeded"));
}

#[test]
fn py2_classic_class_from_protocol_0_and_1_reconstructor() {
    let mut p = py2();
    p.py2_classic = Arc::from(vec![Global::new("m", "C")]);
    // py3: c = m.C(); c.a = 1; pickle.dumps([c, m.C()], 0) -- copy_reg._reconstructor form
    let p0 = b"(lp0\nccopy_reg\n_reconstructor\np1\n(cm\nC\np2\nc__builtin__\nobject\np3\nNtp4\nRp5\n(dp6\nVa\np7\nI1\nsbag1\n(g2\ng3\nNtp8\nRp9\na.";
    assert_eq!(
        rewritten(p0, &p),
        b"\x80\x02(lq\x00(cm\nC\nq\x01oq\x02(dq\x03Va\nq\x04I1\nsba(h\x01oq\x05a."
    );
    // the same at protocol 1
    let p1 = b"]q\x00(ccopy_reg\n_reconstructor\nq\x01(cm\nC\nq\x02c__builtin__\nobject\nq\x03Ntq\x04Rq\x05}q\x06X\x01\x00\x00\x00aq\x07K\x01sbh\x01(h\x02h\x03Ntq\x08Rq\x09e.";
    assert_eq!(
        rewritten(p1, &p),
        b"\x80\x02]q\x00((cm\nC\nq\x01oq\x02}q\x03X\x01\x00\x00\x00aq\x04K\x01sb(h\x01oq\x05e."
    );
}

#[test]
fn py2_classic_class_given_to_copy_reg_newobj_is_refused() {
    let mut p = py2();
    p.py2_classic = Arc::from(vec![Global::new("m", "C")]);
    // py3: class C whose __reduce_ex__ returns object.__reduce_ex__(self, 2);
    // pickle.dumps(m.C(1), 0) and (.., 1): copy_reg.__newobj__(C), which calls C.__new__, which
    // a classic class lacks ("class C has no attribute '__new__'" in Python 2).
    let p0 = b"ccopy_reg\n__newobj__\np0\n(cm\nC\np1\ntp2\nRp3\n(dp4\nVv\np5\nI1\nsb.";
    let p1 = b"ccopy_reg\n__newobj__\nq\x00(cm\nC\nq\x01tq\x02Rq\x03}q\x04X\x01\x00\x00\x00vq\x05K\x01sb.";
    for src in [&p0[..], &p1[..]] {
        assert_eq!(refused(src, &p), Reason::Unsupported, "{src:?}");
        // Not a classic class: Python 2 calls C.__new__, nothing to change.
        assert_eq!(
            transcode(&Bytes::copy_from_slice(src), &py2()).outcome,
            Outcome::Unchanged
        );
    }
}

#[test]
fn py2_utf8_policy_refuses_a_stringio_whose_state_must_stay_unicode() {
    // py3: pickle.dumps(io.StringIO('h\xe9'), 2) and (.., 4). Python 2's StringIO.__setstate__
    // takes only unicode ("initial_value must be unicode or None, not str").
    let p2 = b"\x80\x02c_io\nStringIO\nq\x00)\x81q\x01(X\x03\x00\x00\x00h\xc3\xa9q\x02X\x01\x00\x00\x00\nq\x03K\x00Ntq\x04b.";
    let p4 = b"\x80\x04\x95(\x00\x00\x00\x00\x00\x00\x00\x8c\x03_io\x94\x8c\x08StringIO\x94\x93\x94)\x81\x94(\x8c\x03h\xc3\xa9\x94\x8c\x01\n\x94K\x00Nt\x94b.";
    let mut utf8 = py2();
    utf8.py2_text = Py2Text::Utf8;
    assert_eq!(refused(p2, &utf8), Reason::Unsupported);
    assert_eq!(refused(p4, &utf8), Reason::Unsupported);
    // Under keep the text stays unicode: protocol 2 as it is, protocol 4 downgraded.
    assert_eq!(
        transcode(&Bytes::from_static(p2), &py2()).outcome,
        Outcome::Unchanged
    );
    assert_eq!(rewritten(p4, &py2()), &p2[..]);
}

#[test]
fn py3_bytearray_encoding_name_stays_str_under_bytes_policy() {
    // py2: cPickle.dumps(bytearray(b'a\xff'), 2) -- bytearray(u'a\xff', 'latin-1')
    let src =
        b"\x80\x02c__builtin__\nbytearray\nq\x01X\x03\x00\x00\x00a\xc3\xbfU\x07latin-1\x86Rq\x02.";
    let mut p = py3();
    p.py3_str = Py3Str::Bytes;
    assert_eq!(
        transcode(&Bytes::from_static(src), &p).outcome,
        Outcome::Unchanged
    );
}

#[test]
fn py3_bytes_policy_keeps_attribute_names_and_text_constructor_arguments() {
    let mut p = py3();
    p.py3_str = Py3Str::Bytes;
    // py2: cPickle.dumps(decimal.Decimal('1.1'), 2) -- Decimal(b'1.1') would raise in Python 3
    let dec = b"\x80\x02cdecimal\nDecimal\nq\x01U\x031.1\x85Rq\x02.";
    assert_eq!(
        transcode(&Bytes::from_static(dec), &p).outcome,
        Outcome::Unchanged
    );
    // py2: n = m.N(); n.a = 'v'; cPickle.dumps(n, 2) -- the name stays str, the value is bytes
    let obj = b"\x80\x02cm\nN\nq\x01)\x81q\x02}q\x03U\x01aU\x01vsb.";
    assert_eq!(
        rewritten(obj, &p),
        b"\x80\x02cm\nN\nq\x01)\x81q\x02}q\x03U\x01aC\x01vsb."
    );
}

#[test]
fn py3_bytes_policy_refuses_a_state_dict_used_elsewhere_too() {
    let mut p = py3();
    p.py3_str = Py3Str::Bytes;
    // py2: e = ValueError('x'); e.k = 'v'. Python 2 pickles e.__dict__ itself as the state; in
    // these values the same dict is also a plain dict, whose keys the policy makes bytes while
    // a state's stay str: one stored dict cannot be both.
    let shared: [&[u8]; 3] = [
        // cPickle.dumps([{'d': e.__dict__}, e], 2): the state is a GET of the earlier dict
        b"\x80\x02]q\x01(}q\x02U\x01d}q\x03U\x01kU\x01vsscexceptions\nValueError\nq\x04U\x01x\x85q\x05Rq\x06h\x03be.",
        // pickle.dumps([e.__dict__, e], 0)
        b"(lp0\n(dp1\nS'k'\np2\nS'v'\np3\nsacexceptions\nValueError\np4\n(S'x'\np5\ntp6\nRp7\ng1\nba.",
        // cPickle.dumps([e, {'d': e.__dict__}], 2): the GET follows the BUILD
        b"\x80\x02]q\x01(cexceptions\nValueError\nq\x02U\x01x\x85q\x03Rq\x04}q\x05U\x01kU\x01vsb}q\x06U\x01dh\x05se.",
    ];
    for src in shared {
        assert_eq!(refused(src, &p), Reason::Unsupported, "{src:?}");
        // Under the default policy the ASCII keys stay str in both roles.
        assert_eq!(
            transcode(&Bytes::copy_from_slice(src), &py3()).outcome,
            Outcome::Unchanged
        );
    }
    // Two objects sharing one __dict__ (o2.__dict__ = o1.__dict__; cPickle.dumps([o1, o2], 2)):
    // both uses are states, converted.
    let two = b"\x80\x02]q\x01(cm\nN\nq\x02)\x81q\x03}q\x04U\x01aU\x01xsbh\x02)\x81q\x05h\x04be.";
    assert_eq!(
        rewritten(two, &p),
        b"\x80\x02]q\x01(cm\nN\nq\x02)\x81q\x03}q\x04U\x01aC\x01xsbh\x02)\x81q\x05h\x04be."
    );
    // cPickle.dumps([e], 2): a state dict of its own is converted (k stays str, v is bytes).
    let own =
        b"\x80\x02]q\x01cexceptions\nValueError\nq\x02U\x01x\x85q\x03Rq\x04}q\x05U\x01kU\x01vsba.";
    assert_eq!(
        rewritten(own, &p),
        b"\x80\x02]q\x01cexceptions\nValueError\nq\x02C\x01x\x85q\x03Rq\x04}q\x05U\x01kC\x01vsba."
    );
}

#[test]
fn many_distinct_globals_are_each_listed_once() {
    // [m.g0, ..., m.g39, m.g0, ..., m.g39] at protocol 1 (hand-assembled), then renamed ones.
    let mut p = b"](".to_vec();
    for _ in 0..2 {
        for i in 0..40 {
            p.extend_from_slice(format!("cm\ng{i}\n").as_bytes());
        }
    }
    p.extend_from_slice(b"cbuiltins\nrange\ne.");
    let s = analyze(&p).unwrap();
    assert_eq!(s.globals.len(), 41);
    assert_eq!(s.globals[39], Global::new("m", "g39"));
    let out = rewritten(&p, &py2());
    assert!(out.ends_with(b"c__builtin__\nxrange\ne."));
}

#[test]
fn globals_complete_until_the_summary_cap_or_an_extension_code() {
    // [m.g0, ..., m.g{n-1}] at protocol 1: n distinct globals.
    let list = |n: usize| {
        let mut p = b"](".to_vec();
        for i in 0..n {
            p.extend_from_slice(format!("cm\ng{i}\n").as_bytes());
        }
        p.extend_from_slice(b"e.");
        p
    };
    let full = analyze(&list(MAX_SUMMARY_GLOBALS)).unwrap();
    assert_eq!(full.globals.len(), MAX_SUMMARY_GLOBALS);
    assert!(full.globals_complete);
    let over = analyze(&list(MAX_SUMMARY_GLOBALS + 1)).unwrap();
    assert_eq!(over.globals.len(), MAX_SUMMARY_GLOBALS);
    assert!(!over.globals_complete);
    // Repeats of listed globals keep the list complete.
    let mut repeated = list(MAX_SUMMARY_GLOBALS);
    repeated.truncate(repeated.len() - 2);
    repeated.extend_from_slice(b"cm\ng0\ne.");
    assert!(analyze(&repeated).unwrap().globals_complete);
    let t = transcode(&Bytes::from(list(MAX_SUMMARY_GLOBALS + 1)), &py3());
    assert!(!t.summary.unwrap().globals_complete);
    // EXT1 names a global through the copyreg registry.
    let ext = analyze(b"\x80\x02\x82\x01.").unwrap();
    assert!(ext.globals.is_empty());
    assert!(!ext.globals_complete);
}

#[test]
fn stack_global_of_py2_str_or_computed_strings_is_listed() {
    // Python 3 runs STACK_GLOBAL on STRING args decoded as ASCII: os.system is referenced.
    let s = analyze(b"\x80\x04S'os'\nS'system'\n\x93.").unwrap();
    assert_eq!(s.globals, vec![Global::new("os", "system")]);
    // A module name computed by a REDUCE (here str(u'os')) cannot be known: the sentinel.
    let computed = b"\x80\x04cbuiltins\nstr\n\x8c\x02os\x85R\x8c\x06system\x93.";
    let s = analyze(computed).unwrap();
    assert_eq!(
        s.globals[1],
        Global::new(COMPUTED_GLOBAL.0, COMPUTED_GLOBAL.1)
    );
    assert_eq!(refused(computed, &py2()), Reason::Unsupported);
    let t = transcode(&Bytes::from_static(computed), &py3());
    assert!(t
        .summary
        .unwrap()
        .globals
        .contains(&Global::new("<computed>", "__computed__")));
}

#[test]
fn py2_nested_class_name_is_refused_not_walked_with_getattr() {
    // py3: pickle.dumps(nm.Outer.Inner, 4) without the frame
    let src = b"\x80\x04\x8c\x02nm\x94\x8c\x0bOuter.Inner\x94\x93\x94.";
    assert_eq!(refused(src, &py2()), Reason::Unsupported);
    assert_eq!(
        transcode(&Bytes::from_static(src), &py3()).outcome,
        Outcome::Unchanged
    );
}

#[test]
fn py2_memoized_module_string_used_as_a_value_is_written_when_first_fetched() {
    // py3: [datetime.date(2015, 3, 4), 'datetime', datetime.time(1, 2)] at protocol 4: the
    // 'datetime' module string of the first STACK_GLOBAL is memoized and BINGET as a list item
    // and as the second STACK_GLOBAL's module.
    let src = b"\x80\x04\x95>\x00\x00\x00\x00\x00\x00\x00]\x94(\x8c\x08datetime\x94\x8c\x04date\x94\x93\x94C\x04\x07\xdf\x03\x04\x94\x85\x94R\x94h\x01h\x01\x8c\x04time\x94\x93\x94C\x06\x01\x02\x00\x00\x00\x00\x94\x85\x94R\x94e.";
    // Checked: loads in CPython 2.7 to [date(2015, 3, 4), u'datetime', time(1, 2)].
    assert_eq!(
        rewritten(src, &py2()),
        &b"\x80\x02]q\x00(cdatetime\ndate\nq\x01c_codecs\nencode\nq\x02X\x05\x00\x00\x00\x07\xc3\x9f\
           \x03\x04X\x06\x00\x00\x00latin1q\x03\x86Rq\x04\x85q\x05Rq\x06X\x08\x00\x00\x00datetimeq\x07\
           cdatetime\ntime\nq\x08h\x02X\x06\x00\x00\x00\x01\x02\x00\x00\x00\x00h\x03\x86Rq\t\x85q\nRq\x0be."[..]
    );
}

/// xorshift64* (no rand crate), for the mutation test below.
struct Rng(u64);

impl Rng {
    fn below(&mut self, n: usize) -> usize {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        (self.0.wrapping_mul(0x2545_f491_4f6c_dd1d) % n as u64) as usize
    }
}

#[test]
fn mutated_real_pickles_keep_every_invariant_under_every_policy() {
    let corpus: &[&[u8]] = &[
        P3_SET_P4,
        P3_BYTES_P3,
        P3_TEXT_P4,
        P3_TEXT_P2,
        P3_RANGE_P4,
        P3_FROZENSET_P5,
        P3_BYTEARRAY_P5,
        P3_TZ_P4,
        P3_COLLIDE_P4,
        P3_DATE_P2,
        P3_BYTES_P2,
        P2_ASCII_P0,
        P2_UTF8_P0,
        P2_BIN_P2,
        P2_DATE_P0,
        P2_DATE_P2,
        P2_DT_P1,
        P2_MIXED_P2,
        P2_COLLIDE_P2,
    ];
    let mut policies = Vec::new();
    for text in [Py2Text::Keep, Py2Text::Utf8] {
        let mut p = py2();
        p.py2_text = text;
        p.py2_classic = Arc::from(vec![Global::new("m", "C")]);
        policies.push(p);
    }
    for s in [Py3Str::Utf8OrBytes, Py3Str::Bytes, Py3Str::Latin1] {
        let mut p = py3();
        p.py3_str = s;
        policies.push(p);
    }
    let seed = 0xc0ffee_u64;
    let mut rng = Rng(seed);
    let bytes: &[u8] = b"\x80\x02\x03\x04\x05\x94\x93\x8c\x8f\x90\x91(tue]}h\x00\x01q.NKXCUS'\n";
    for round in 0..6_000 {
        let mut b = corpus[rng.below(corpus.len())].to_vec();
        for _ in 0..1 + rng.below(2) {
            let i = rng.below(b.len());
            match rng.below(3) {
                0 => b[i] = bytes[rng.below(bytes.len())],
                1 => {
                    b.remove(i);
                }
                _ => b.insert(i, bytes[rng.below(bytes.len())]),
            }
        }
        let src = Bytes::from(b);
        let parsed = analyze(&src);
        for policy in &policies {
            let t = transcode(&src, policy);
            let ctx = || format!("seed {seed:#x} round {round} {:?}: {src:?}", policy.target);
            match &t.outcome {
                Outcome::Rewritten(out) => {
                    assert!(parsed.is_ok(), "rewrote an invalid pickle, {}", ctx());
                    assert_ne!(out, &src, "{}", ctx());
                    let s = analyze(out).unwrap_or_else(|e| panic!("{e}, {}", ctx()));
                    if policy.target == Runtime::Py2 {
                        assert!(s.max_protocol <= 2, "{}", ctx());
                    }
                    assert_eq!(
                        transcode(out, policy).outcome,
                        Outcome::Unchanged,
                        "{}",
                        ctx()
                    );
                }
                Outcome::Unchanged => assert!(parsed.is_ok(), "{}", ctx()),
                Outcome::Refused(_) => {}
            }
        }
    }
}

/// Keys that would collide among the keys of an `OrderedDict` (or another dict-like object:
/// Python 3 writes SETITEMS into a call's result, Python 2 a list of pairs) are refused
/// `collision`, never merged; without strings that can meet in the target they are converted.
#[test]
fn collisions_among_ordered_dict_keys_are_refused() {
    // OrderedDict([(b'a', 1), ('a', 2)]) at protocol 4.
    let py3_written: &[u8] =
        b"\x80\x04\x950\x00\x00\x00\x00\x00\x00\x00\x8c\x0bcollections\x94\x8c\x0b\
        OrderedDict\x94\x93\x94)R\x94(C\x01a\x94K\x01\x8c\x01a\x94K\x02u.";
    assert_eq!(refused(py3_written, &py2()), Reason::Collision);
    // OrderedDict([('\xc3\xa7', 1), (u'\xe7', 2)]), cPickle protocol 2.
    let py2_written: &[u8] = b"\x80\x02ccollections\nOrderedDict\nq\x01]q\x02(]q\x03(U\x02\xc3\xa7\
        q\x04K\x01e]q\x05(X\x02\x00\x00\x00\xc3\xa7K\x02ee\x85Rq\x06.";
    assert_eq!(refused(py2_written, &py3()), Reason::Collision);
    // As bytes, the py2 strings can no longer meet the text.
    let bytes = Policy {
        py3_str: Py3Str::Bytes,
        ..py3()
    };
    rewritten(py2_written, &bytes);
    // OrderedDict([('a', 1), ('b', 2)]) at protocol 4: one kind of string, converted.
    let plain: &[u8] = b"\x80\x04\x950\x00\x00\x00\x00\x00\x00\x00\x8c\x0bcollections\x94\x8c\x0b\
        OrderedDict\x94\x93\x94)R\x94(\x8c\x01a\x94K\x01\x8c\x01b\x94K\x02u.";
    rewritten(plain, &py2());
}

/// A `datetime`/`time` with `fold=1` at protocol 4+ carries the fold in its state (0x80 on the
/// month or hour byte), which Python 2 rejects: it is cleared, as CPython 3's own protocol-2
/// pickle drops fold (and fold does not take part in equality). A state also fetched elsewhere
/// is refused rather than changed there too.
#[test]
fn py2_fold_bit_is_cleared_from_datetime_and_time_state() {
    // [datetime(2020, 11, 1, 1, 30, fold=1), time(1, 30, fold=1)] at protocol 4.
    let src: &[u8] = b"\x80\x04\x95F\x00\x00\x00\x00\x00\x00\x00]\x94(\x8c\x08datetime\x94\x8c\x08\
        datetime\x94\x93\x94C\n\x07\xe4\x8b\x01\x01\x1e\x00\x00\x00\x00\x94\x85\x94R\x94h\x01\x8c\
        \x04time\x94\x93\x94C\x06\x81\x1e\x00\x00\x00\x00\x94\x85\x94R\x94e.";
    let out = rewritten(src, &py2());
    let want: &[u8] = b"\x80\x02]q\x00(cdatetime\ndatetime\nq\x01c_codecs\nencode\nq\x02X\x0b\x00\
        \x00\x00\x07\xc3\xa4\x0b\x01\x01\x1e\x00\x00\x00\x00X\x06\x00\x00\x00latin1q\x03\x86Rq\x04\
        \x85q\x05Rq\x06cdatetime\ntime\nq\x07h\x02X\x06\x00\x00\x00\x01\x1e\x00\x00\x00\x00h\x03\
        \x86Rq\x08\x85q\tRq\ne.";
    assert_eq!(out, want);
    // [datetime(..., fold=1), <its state bytes again>]: the state is also a value.
    let shared: &[u8] = b"\x80\x04]\x94\x8c\x08datetime\x94\x8c\x08datetime\x94\x93\x94C\n\x07\xe4\
        \x8b\x01\x01\x1e\x00\x00\x00\x00\x94\x85\x94R\x94ah\x04a.";
    assert_eq!(refused(shared, &py2()), Reason::Unsupported);
    // For Python 3 readers nothing changes.
    let t = transcode(&Bytes::from_static(src), &py3());
    assert_eq!(t.outcome, Outcome::Unchanged);
}

/// Tuple and frozenset keys that would become equal in the target are refused `collision`:
/// they are compared as a whole (strings by kind and content, numbers by their ops, nested
/// tuples and frozensets recursively). Composite keys that stay distinct are converted.
#[test]
fn collisions_inside_tuple_and_frozenset_keys_are_refused() {
    let py3_written: [&[u8]; 2] = [
        // {(b'a',): 1, ('a',): 2}
        b"\x80\x04\x95\x15\x00\x00\x00\x00\x00\x00\x00}\x94(C\x01a\x94\x85\x94K\x01\x8c\x01a\x94\
          \x85\x94K\x02u.",
        // {frozenset([b'a']): 1, frozenset(['a']): 2}
        b"\x80\x04\x95\x17\x00\x00\x00\x00\x00\x00\x00}\x94((C\x01a\x94\x91\x94K\x01(\x8c\x01a\
          \x94\x91\x94K\x02u.",
    ];
    for (i, src) in py3_written.into_iter().enumerate() {
        assert_eq!(refused(src, &py2()), Reason::Collision, "py3 case {i}");
    }
    let py2_written: [&[u8]; 2] = [
        // {('\xc3\xa7',): 1, (u'\xe7',): 2}
        b"\x80\x02}q\x01(X\x02\x00\x00\x00\xc3\xa7\x85q\x02K\x02U\x02\xc3\xa7q\x03\x85q\x04K\x01u.",
        // {frozenset(['\xc3\xa7']): 1, frozenset([u'\xe7']): 2}
        b"\x80\x02}q\x01(c__builtin__\nfrozenset\nq\x02]q\x03X\x02\x00\x00\x00\xc3\xa7a\x85Rq\x04\
          K\x02h\x02]q\x05U\x02\xc3\xa7q\x06a\x85Rq\x07K\x01u.",
    ];
    let bytes = Policy {
        py3_str: Py3Str::Bytes,
        ..py3()
    };
    for (i, src) in py2_written.into_iter().enumerate() {
        assert_eq!(refused(src, &py3()), Reason::Collision, "py2 case {i}");
        // As bytes, the py2 strings can no longer meet the text.
        rewritten(src, &bytes);
    }
    // {('a', 1): b'x', (b'a', 2): 'y', (frozenset(['a']), 1): 0, (frozenset([b'b']), 1): 0}:
    // bytes and text meet inside the keys, but no two keys become equal.
    rewritten(
        b"\x80\x04\x955\x00\x00\x00\x00\x00\x00\x00}\x94(\x8c\x01a\x94K\x01\x86\x94C\x01x\x94C\
          \x01a\x94K\x02\x86\x94\x8c\x01y\x94(h\x01\x91\x94K\x01\x86\x94K\x00(C\x01b\x94\x91\x94\
          K\x01\x86\x94K\x00u.",
        &py2(),
    );
}

/// Numbers inside composite keys are compared by value, as both runtimes compare them: `1`,
/// `1L`, `True` and `1.0` are one key, `-0.0` is `0`. So `{(1.0, b'a'): 1, (1, 'a'): 2}`,
/// two keys in Python 3, would be one in Python 2 (`(1.0, 'a') == (1, u'a')`): refused, as are
/// the same keys written with other integer ops; keys whose numbers differ are converted.
#[test]
fn numbers_in_composite_keys_are_compared_by_value() {
    let merged: [&[u8]; 6] = [
        // CPython 3.11, protocol 2: {(1.0, b'a'): 1, (1, 'a'): 2}
        b"\x80\x02}q\x00(G?\xf0\x00\x00\x00\x00\x00\x00c_codecs\nencode\nq\x01X\x01\x00\x00\
          \x00aq\x02X\x06\x00\x00\x00latin1q\x03\x86q\x04Rq\x05\x86q\x06K\x01K\x01X\x01\x00\
          \x00\x00aq\x07\x86q\x08K\x02u.",
        // LONG1 1 / BININT1 1, BININT 1 / BININT1 1, NEWTRUE / BININT1 1 (protocol 4)
        b"\x80\x04}(\x8a\x01\x01C\x01a\x86K\x01K\x01\x8c\x01a\x86K\x02u.",
        b"\x80\x04}(J\x01\x00\x00\x00C\x01a\x86K\x01K\x01\x8c\x01a\x86K\x02u.",
        b"\x80\x04}(\x88C\x01a\x86K\x01K\x01\x8c\x01a\x86K\x02u.",
        // -0.0 / 0.0
        b"\x80\x04}(G\x80\x00\x00\x00\x00\x00\x00\x00C\x01a\x86K\x01G\x00\x00\x00\x00\x00\
          \x00\x00\x00\x8c\x01a\x86K\x02u.",
        // A set: {(1.0, b'a'), (1, 'a')}
        b"\x80\x04\x8f(G?\xf0\x00\x00\x00\x00\x00\x00C\x01a\x86K\x01\x8c\x01a\x86\x90.",
    ];
    for (i, src) in merged.into_iter().enumerate() {
        assert_eq!(refused(src, &py2()), Reason::Collision, "case {i}");
    }
    // Protocol 0, for a Python 3 reader: {(1, 'caf\xc3\xa9'): 1, (1L, u'caf\xe9'): 2}
    // (INT and LONG of 1), two keys in Python 2, one in Python 3.
    let p0 = b"(dp0\n(I1\nS'caf\\xc3\\xa9'\ntp1\nI1\ns(L1L\nVcaf\xe9\ntp2\nI2\ns.";
    assert_eq!(refused(p0, &py3()), Reason::Collision);
    // Different numbers: {(2.0, b'a'): 1, (1, 'a'): 2} is converted; a non-minimal LONG1 of
    // 5 and BININT1 5 with the same bytes are one key in both runtimes (not a collision).
    rewritten(
        b"\x80\x04}(G@\x00\x00\x00\x00\x00\x00\x00C\x01a\x86K\x01K\x01\x8c\x01a\x86K\x02u.",
        &py2(),
    );
    rewritten(
        b"\x80\x04}(\x8a\x02\x05\x00C\x01a\x86K\x01K\x05C\x01a\x86K\x02K\x05\x8c\x01b\x86K\x03u.",
        &py2(),
    );
    // {(None,): 2, (b'',): 3, b'\xe7\x88\xb1': 4} (CPython 3.11, protocol 2): None and the
    // empty bytes are two keys (their hashes must not meet: seen in tests/cross_random.rs).
    let none_and_empty = transcode(
        &Bytes::from_static(
            b"\x80\x02}q\x00(N\x85q\x01K\x02c__builtin__\nbytes\nq\x02)Rq\x03\x85q\x04K\x03c_codecs\n\
          encode\nq\x05X\x06\x00\x00\x00\xc3\xa7\xc2\x88\xc2\xb1q\x06X\x06\x00\x00\x00latin1q\x07\
          \x86q\x08Rq\tK\x04u.",
        ),
        &py2(),
    );
    assert_eq!(none_and_empty.outcome, Outcome::Unchanged);
}

/// A set subclass is pickled as `MySet([members])` (`set.__reduce__`): a list that is the one
/// argument of a class other than the standard ones (`compat::collects_items`) has its items
/// checked as members, so `MySet([b'a', 'a'])`, one member in Python 2, is refused; a list
/// among two arguments, or without members that meet, is converted.
#[test]
fn lists_given_alone_to_a_class_are_checked_as_members() {
    let merged: [&[u8]; 2] = [
        // CPython 3.11: pickle.dumps(MySet([b'a', 'a']), 2) and (…, 4)
        b"\x80\x02cpbm\nMySet\nq\x00]q\x01(c_codecs\nencode\nq\x02X\x01\x00\x00\x00aq\x03X\x06\
          \x00\x00\x00latin1q\x04\x86q\x05Rq\x06X\x01\x00\x00\x00aq\x07e\x85q\x08Rq\t.",
        b"\x80\x04\x95!\x00\x00\x00\x00\x00\x00\x00\x8c\x03pbm\x94\x8c\x05MySet\x94\x93\x94]\x94(\
          C\x01a\x94\x8c\x01a\x94e\x85\x94R\x94.",
    ];
    for src in merged {
        assert_eq!(refused(src, &py2()), Reason::Collision, "{src:?}");
    }
    // MySet([b'a', 'b']): nothing meets.
    rewritten(
        b"\x80\x04\x95!\x00\x00\x00\x00\x00\x00\x00\x8c\x03pbm\x94\x8c\x05MySet\x94\x93\x94]\x94(\
          \x8c\x01b\x94C\x01a\x94e\x85\x94R\x94.",
        &py2(),
    );
    // pbm.Two(1, [b'a', 'a']) by REDUCE, and collections.deque([b'a', 'a']): sequences kept.
    rewritten(
        b"\x80\x04\x8c\x03pbm\x94\x8c\x03Two\x94\x93\x94K\x01]\x94(C\x01a\x94\x8c\x01a\x94e\x86\x94R\x94.",
        &py2(),
    );
    rewritten(
        b"\x80\x04\x8c\x0bcollections\x94\x8c\x05deque\x94\x93\x94]\x94(C\x01a\x94\x8c\x01a\x94e\x85\x94R\x94.",
        &py2(),
    );
}

/// Composite keys built from shared sub-tuples (a memo GET twice per level, 2^40 leaves) are
/// digested within a budget: the check ends, and a key it could not finish is refused when two
/// such keys are in one dict rather than maybe merged, unless the value has no strings of two
/// kinds (nothing can become equal then).
#[test]
fn shared_sub_tuples_in_keys_are_digested_within_a_budget() {
    let key = |leaf: &[u8], memo: &mut u8| {
        let mut v = leaf.to_vec();
        v.extend_from_slice(&[op::TUPLE1, op::BINPUT, *memo]);
        for _ in 0..40 {
            v.extend_from_slice(&[op::BINGET, *memo, op::BINGET, *memo, op::TUPLE2]);
            *memo += 1;
            v.extend_from_slice(&[op::BINPUT, *memo]);
        }
        *memo += 1;
        v
    };
    // {key(leaf0): 1, key(leaf1): 2}
    let dict = |leaf0: &[u8], leaf1: &[u8]| {
        let mut memo = 0;
        let mut v = vec![op::PROTO, 4, op::EMPTY_DICT, op::MARK];
        v.extend(key(leaf0, &mut memo));
        v.extend_from_slice(&[op::BININT1, 1]);
        v.extend(key(leaf1, &mut memo));
        v.extend_from_slice(&[op::BININT1, 2, op::SETITEMS, op::STOP]);
        v
    };
    assert_eq!(
        refused(&dict(b"C\x01a", b"\x8c\x01a"), &py2()),
        Reason::Collision
    );
    // The same with int leaves.
    let ints = dict(b"K\x01", b"K\x02");
    for p in [py2(), py3()] {
        let t = transcode(&Bytes::from(ints.clone()), &p);
        assert!(!matches!(t.outcome, Outcome::Refused(_)), "{:?}", t.outcome);
    }
}

#[test]
fn items_are_added_only_by_the_ops_their_container_takes() {
    // Python 3 readers (sets stay EMPTY_SET): a dict, a set and a list each given another
    // container's op cannot load in CPython (no such method) and are refused; an object built by
    // a call may have any of them.
    let bad: [&[u8]; 6] = [
        b"}K\x01a.",          // APPEND to a dict
        b"\x8f(K\x01e.",      // APPENDS to a set
        b"]K\x01K\x02s.",     // SETITEM to a list
        b"\x8f(K\x01K\x02u.", // SETITEMS to a set
        b"](K\x01\x90.",      // ADDITEMS to a list
        b"}(K\x01\x90.",      // ADDITEMS to a dict
    ];
    for src in bad {
        let mut v = vec![op::PROTO, 4];
        v.extend_from_slice(src);
        assert_eq!(refused(&v, &py3()), Reason::Unsupported, "{src:?}");
    }
    // Empty batches load (CPython's C unpickler adds nothing), and a called object takes all.
    for src in [
        &b"}(e."[..],
        b"](u.",
        b"cm\nC\n)R(K\x01K\x02uK\x03a(K\x04\x90.",
    ] {
        let mut v = vec![op::PROTO, 4];
        v.extend_from_slice(src);
        let t = transcode(&Bytes::from(v), &py3());
        assert!(
            !matches!(t.outcome, Outcome::Refused(_)),
            "{src:?}: {:?}",
            t.outcome
        );
    }
}

#[test]
fn frozenset_keys_of_lists_filled_before_the_global_are_not_taken_for_empty() {
    // {frozenset(l0): 1, frozenset(l1): 2} with l0 = [b'a'], l1 = ['a'] built (inside another
    // list) before the `frozenset` global is named, then fetched from the memo: equal keys in
    // Python 2, so refused, not merged.
    let src = b"\x80\x03]q\x02(]q\x00C\x01aa]q\x01X\x01\x00\x00\x00aae}(cbuiltins\nfrozenset\nh\x00\x85RK\x01cbuiltins\nfrozenset\nh\x01\x85RK\x02u\x86.";
    assert_eq!(refused(src, &py2()), Reason::Collision);
    // The same written by Python 2 (l0 = ['a'], l1 = [u'a']) for a Python 3 reader.
    let py2_src = b"\x80\x02]q\x02(]q\x00U\x01aa]q\x01X\x01\x00\x00\x00aae}(c__builtin__\nfrozenset\nh\x00\x85RK\x01c__builtin__\nfrozenset\nh\x01\x85RK\x02u\x86.";
    assert_eq!(refused(py2_src, &py3()), Reason::Collision);
    // A dict given lists by APPENDS (only fuzzing makes one; CPython cannot load it: a dict
    // has no `append`) is refused as such, whatever the lists hold.
    let lists = b"\x80\x03}(\x8f]X\x01\x00\x00\x00aa](C\x01bcm\nC\n)Ree.";
    assert_eq!(refused(lists, &py2()), Reason::Unsupported);
}

#[test]
fn composite_keys_are_judged_by_the_string_kinds_the_reader_gets() {
    // Python 2: {frozenset([m.C(), '\xc3\xa9', 'a']): 1, frozenset(): 2}. The first key has no
    // digest (an object); for Python 3 its strings become text ('é') and str ('a'), kinds a
    // second transcode of the rewrite would judge as able to meet: refused now, as then.
    let both = b"\x80\x02}q\x00(c__builtin__\nfrozenset\n]q\x01(cm\nC\n)RU\x02\xc3\xa9U\x01ae\x85RK\x01c__builtin__\nfrozenset\n]\x85RK\x02u.";
    assert_eq!(refused(both, &py3()), Reason::Collision);
    // Without 'a' only text remains: written, and the rewrite transcoded again stays as it is.
    let one = b"\x80\x02}q\x00(c__builtin__\nfrozenset\n]q\x01(cm\nC\n)RU\x02\xc3\xa9e\x85RK\x01c__builtin__\nfrozenset\n]\x85RK\x02u.";
    let out = rewritten(one, &py3());
    assert_eq!(
        transcode(&Bytes::from(out), &py3()).outcome,
        Outcome::Unchanged
    );
}

#[test]
fn names_renamed_twice_by_the_table_are_renamed_once() {
    // `_dbm` -> `dbm` (as `fix_imports` writes it), and `dbm` -> `anydbm`: the rewrite of a
    // protocol-0 `_dbm.open`, transcoded again, stays as it is.
    let out = rewritten(b"c_dbm\nopen\n.", &py2());
    assert_eq!(out, b"\x80\x02cdbm\nopen\n.");
    assert_eq!(
        transcode(&Bytes::from(out), &py2()).outcome,
        Outcome::Unchanged
    );
    // Also when the rewrite holds bytes: `_codecs.encode` is Python 3's, but at protocol 2
    // Python 3 writes Python 2's names (found by the seeded mutations of tests/fuzz_replay.rs).
    let out = rewritten(b"c_dbm\nps\nq\x00C\x05\x80\x02K\x01.\x85R.", &py2());
    assert!(out.starts_with(b"\x80\x02cdbm\nps\n"), "{out:?}");
    // `dbm` at protocol 0-2 is Python 2's own (or `fix_imports`' for `_dbm`), even next to
    // other Python 3 evidence; at protocol 3+ or next to names only Python 3 has (written with
    // `fix_imports` off) it is renamed as `fix_imports` does.
    assert_eq!(
        transcode(
            &Bytes::from_static(b"\x80\x02cdbm\nopen\nc_codecs\nencode\n\x86."),
            &py2()
        )
        .outcome,
        Outcome::Unchanged
    );
    // ... also where the value changes for another reason (text under `py2_text = utf8`).
    let utf8 = Policy {
        py2_text: Py2Text::Utf8,
        ..py2()
    };
    assert_eq!(
        rewritten(
            b"\x80\x02(cdbm\nopen\nc_codecs\nencode\nX\x01\x00\x00\x00at.",
            &utf8
        ),
        b"\x80\x02(cdbm\nopen\nc_codecs\nencode\nU\x01at."
    );
    assert_eq!(
        transcode(&Bytes::from_static(b"cdbm\nopen\n."), &py2()).outcome,
        Outcome::Unchanged
    );
    assert_eq!(
        rewritten(b"\x80\x03cdbm\nopen\n.", &py2()),
        b"\x80\x02canydbm\nopen\n."
    );
    assert_eq!(
        rewritten(b"(cdbm\nopen\ncbuiltins\nlen\nl.", &py2()),
        b"\x80\x02(canydbm\nopen\nc__builtin__\nlen\nl."
    );
}

#[test]
fn py2_str_names_of_a_stack_global_stay_str_under_the_bytes_policy() {
    // STACK_GLOBAL of SHORT_BINSTRING 'os', 'system' (only made by hand: Python 3 decodes them
    // as ASCII `str`), called with 'ls': under `py3_str = bytes` the argument becomes bytes, the
    // names stay `str` (as bytes Python 3 could not look the global up), and the rewrite names
    // the same global as the original.
    let src = b"\x80\x02U\x02osU\x06system\x93U\x02ls\x85R.";
    let policy = Policy {
        py3_str: Py3Str::Bytes,
        ..py3()
    };
    let out = rewritten(src, &policy);
    assert_eq!(out, b"\x80\x02U\x02osU\x06system\x93C\x02ls\x85R.");
    let global = |b: &[u8]| {
        transcode(&Bytes::copy_from_slice(b), &policy)
            .summary
            .unwrap()
            .globals
    };
    assert_eq!(global(src), vec![Global::new("os", "system")]);
    assert_eq!(global(&out), global(src));
}

#[test]
fn inst_names_are_renamed_like_global_for_py2() {
    // INST (only Python 2 writes it, or a hand) of `_pickle.Pickler` given Python 3 bytes (the
    // writer is not certainly Python 2): the class is renamed as a GLOBAL of it is (what Python
    // 3 writes when it round-trips the value), so the rewrite, transcoded again, stays as it is.
    let out = rewritten(b"\x80\x03(C\x01ai_pickle\nPickler\n.", &py2());
    let inst = b"ipickle\nPickler\n.";
    assert_eq!(&out[out.len() - inst.len()..], inst, "{out:?}");
    assert_eq!(
        transcode(&Bytes::from(out), &py2()).outcome,
        Outcome::Unchanged
    );
}

#[test]
fn py2_names_that_python_3_renames_away_stay_python_2s_own() {
    // py2: subprocess.Popen (the class) by cPickle protocol 2. Python 3 would write
    // `commands.Popen` for its own `subprocess.Popen` (fix_imports), which Python 2 lacks, but
    // this value is Python 2's: not refused (a refusal is a miss for its Python 2 reader).
    let t = transcode(
        &Bytes::from_static(b"\x80\x02csubprocess\nPopen\nq\x01."),
        &py2(),
    );
    assert_eq!(t.outcome, Outcome::Unchanged);
    // py3: subprocess.run at protocol 2 (as `commands.run`): Python 2 has neither, and
    // refuses the name as `fix_imports` spelled it (`SPELLED_NAMES`).
    let run = b"\x80\x02ccommands\nrun\nq\x00.";
    assert_eq!(refused(run, &py2()), Reason::Py3OnlyGlobal);
    assert_eq!(
        refused(b"\x80\x03csubprocess\nrun\nq\x00.", &py2()),
        Reason::Py3OnlyGlobal
    );
}
