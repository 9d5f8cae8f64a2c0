//! Protocol 0/1's decimal lines and other forms the two runtimes read differently: integers of
//! more digits than Python 3 reads from a line (Python 2's cPickle writes any `long` so at
//! protocols 0 and 1), leading zeros (octal in Python 2), memo indices Python 2 keys by their
//! text, and DUP of a string (one use twice). The last three only come from a hand: neither
//! runtime writes them.

use super::*;

/// `L<digits>L` of `10^k`, as cPickle writes a long at protocols 0 and 1.
fn long_line(k: usize) -> Vec<u8> {
    format!("L1{}L\n", "0".repeat(k)).into_bytes()
}

/// `[<long>, 'x']` at protocol 0, cPickle's layout (`(lp1\n` ... `a.`).
fn list_p0(items: &[Vec<u8>]) -> Vec<u8> {
    let mut v = b"(lp1\n".to_vec();
    for item in items {
        v.extend_from_slice(item);
        v.push(b'a');
    }
    v.extend_from_slice(b"S'x'\na.");
    v
}

#[test]
fn integers_python_3_cannot_read_from_a_line_are_written_in_binary() {
    // 10^4300 has 4 301 digits, one more than CPython 3.11 reads (`int(line, 0)`); 10^4299 is
    // read as it is.
    let src = list_p0(&[long_line(4300), long_line(4299), b"I-7\n".to_vec()]);
    let out = rewritten(&src, &py3());
    let want = bigint::decimal_to_long(format!("1{}", "0".repeat(4300)).as_bytes()).unwrap();
    let mut long4 = vec![op::LONG4];
    long4.extend_from_slice(&u32::try_from(want.len()).unwrap().to_le_bytes());
    long4.extend_from_slice(&want);
    assert!(out.starts_with(b"(lp1\n"), "{out:?}");
    assert_eq!(&out[5..5 + long4.len()], &long4[..]);
    // The rest is copied: the shorter long, the int, the string.
    let rest = &src[5 + long_line(4300).len()..];
    assert_eq!(&out[5 + long4.len()..], rest);
    // A short one stays a line (nothing to rewrite for a Python 3 reader).
    let short = list_p0(&[long_line(4299)]);
    assert_eq!(
        transcode(&Bytes::from(short), &py3()).outcome,
        Outcome::Unchanged
    );
    // Python 2 reads the line: nothing changes for it (a Python 3 value has no such line).
    assert_eq!(
        transcode(&Bytes::from(src), &py2()).outcome,
        Outcome::Unchanged
    );
}

#[test]
fn converting_long_lines_has_a_per_value_budget() {
    // 23 lines of 4 301 digits fit the 100 000 digits (98 923); 24 do not.
    let lines: Vec<Vec<u8>> = (0..23).map(|_| long_line(4300)).collect();
    rewritten(&list_p0(&lines), &py3());
    let lines: Vec<Vec<u8>> = (0..24).map(|_| long_line(4300)).collect();
    assert_eq!(refused(&list_p0(&lines), &py3()), Reason::LimitExceeded);
}

#[test]
fn integer_lines_and_memo_indices_with_a_leading_zero_are_refused() {
    // {('\xc3\xa9', I010): 1, (u'\xe9', I8): 2}: two keys in Python 2 (010 is octal 8 there),
    // which read as decimal would have looked distinct.
    let octal = b"(dp0\n(S'\\xc3\\xa9'\nI010\ntI1\ns(V\\u00e9\nI8\ntI2\ns.";
    for policy in [py3(), py2()] {
        assert_eq!(refused(octal, &policy), Reason::Malformed);
    }
    assert_eq!(refused(b"(lL010L\na.", &py3()), Reason::Malformed);
    // [S'\xff' as p01, the list as p1]: two memo slots in Python 2, one in Python 3.
    let memo = b"(lp1\nS'\\xff'\np01\nag1\na.";
    assert_eq!(refused(memo, &py3()), Reason::Malformed);
    // False and True stay what they are.
    assert_eq!(
        transcode(&Bytes::from_static(b"(lI00\naI01\na."), &py3()).outcome,
        Outcome::Unchanged
    );
}

#[test]
fn dup_of_a_string_is_refused() {
    // Obj() with state {'abc': 'abc'} from one SHORT_BINSTRING and DUP: an attribute name kept
    // as `str` and a value made `bytes` under `py3_str = bytes` would be one op.
    let attr = b"\x80\x02cprobemod\nObj\n)\x81}U\x03abc2sb.";
    let bytes = Policy {
        py3_str: Py3Str::Bytes,
        ..py3()
    };
    assert_eq!(refused(attr, &bytes), Reason::Unsupported);
    // array(<typecode>, <contents>) from one string.
    let array = b"\x80\x02carray\narray\nU\x01b2\x86R.";
    assert_eq!(refused(array, &py3()), Reason::Unsupported);
}

#[test]
fn text_and_binary_memo_ops_in_one_value_are_refused() {
    // MARK 'a' BINPUT 1 'b' PUT p1 BINGET 1 LIST: ['a', 'b', 'a'] in Python 2 (two slots),
    // ['a', 'b', 'b'] in Python 3 (one). Both orders, both readers.
    let put_after = b"(S'a'\nq\x01S'b'\np1\nh\x01l.";
    let bin_after = b"(S'a'\np1\nS'b'\nq\x01g1\nl.";
    for src in [&put_after[..], &bin_after[..]] {
        assert_eq!(refused(src, &py3()), Reason::Unsupported, "{src:?}");
    }
    assert_eq!(
        refused(b"(Va\nq\x01Vb\np1\nh\x01l.", &py2()),
        Reason::Unsupported
    );
}

#[test]
fn str_calls_whose_argument_would_become_bytes_are_refused() {
    let bytes = Policy {
        py3_str: Py3Str::Bytes,
        ..py3()
    };
    // str('\xff'), unicode('abc') (by hand): `str(b'\xff')` is the repr in Python 3.
    assert_eq!(
        refused(b"c__builtin__\nstr\n(S'\\xff'\ntR.", &py3()),
        Reason::Unsupported
    );
    assert_eq!(
        refused(b"c__builtin__\nunicode\n(S'abc'\ntR.", &bytes),
        Reason::Unsupported
    );
    // copy_reg.__newobj__(MyStr, '\xff'): NEWOBJ's REDUCE form.
    let newobj = b"\x80\x02ccopy_reg\n__newobj__\ncprobemod\nMyStr\nU\x01\xff\x86R.";
    assert_eq!(refused(newobj, &py3()), Reason::Unsupported);
    // As text they load as the string: str('caf\xc3\xa9') -> 'café'.
    rewritten(b"c__builtin__\nstr\n(S'caf\\xc3\\xa9'\ntR.", &py3());
}

#[test]
fn call_keys_python_2_holds_as_one_are_refused_under_bytes() {
    // Hand-made: {DecimalTuple('qq', 1, 2): 1, DecimalTuple(u'qq', 1, 2): 2} is one key in
    // Python 2 ('qq' == u'qq'); under `py3_str = bytes` Python 3 would hold two.
    let src = b"\x80\x02}q\x01(cdecimal\nDecimalTuple\nq\x02U\x02qqq\x03K\x01K\x02\x87\x81q\x04K\x01h\x02X\x02\x00\x00\x00qqq\x05K\x01K\x02\x87\x81q\x06K\x02u.";
    let bytes = Policy {
        py3_str: Py3Str::Bytes,
        ..py3()
    };
    assert_eq!(refused(src, &bytes), Reason::Collision);
}
