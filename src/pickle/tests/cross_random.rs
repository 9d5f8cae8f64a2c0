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

#[test]
fn py2_empty_bytes_and_empty_text_keys_collide() {
    // py3: pickle.dumps({b'': 1, '': 2}, 2) and pickle.dumps({b'', ''}, 0): CPython 3 writes b''
    // as `__builtin__.bytes()` below protocol 3. In Python 2 both keys are '' == u'': merged
    // silently, one value lost. The protocol 3+ forms (C\x00) were already refused.
    let dict =
        b"\x80\x02}q\x00(c__builtin__\nbytes\nq\x01)Rq\x02K\x01X\x00\x00\x00\x00q\x03K\x02u.";
    let set = b"c__builtin__\nset\np0\n((lp1\nc__builtin__\nbytes\np2\n(tRp3\naV\np4\natp5\nRp6\n.";
    for src in [&dict[..], &set[..]] {
        for text in [Py2Text::Keep, Py2Text::Utf8] {
            let mut p = py2();
            p.py2_text = text;
            assert_eq!(refused(src, &p), Reason::Collision);
        }
    }
    // Without text beside it, empty bytes is an ordinary key.
    let alone = b"\x80\x02}q\x00c__builtin__\nbytes\nq\x01)Rq\x02K\x01s.";
    assert_eq!(
        transcode(&Bytes::from_static(alone), &py2()).outcome,
        Outcome::Unchanged
    );
}

#[test]
fn memoized_string_with_a_kept_use_and_a_converted_use_gets_a_copy_per_rule() {
    // py3: pickle.dumps({'\xff': b'\xff'}, 2): CPython 3 memoizes the interned one-character
    // 'ÿ' once, as the key and (BINGET) as the text argument of `_codecs.encode`. Under
    // `py2_text = utf8` the key must become the UTF-8 str and the argument must stay unicode;
    // both followed the memoized op's rule, so Python 2 got {u'\xff': '\xff'}.
    let src = b"\x80\x02}q\x00X\x02\x00\x00\x00\xc3\xbfq\x01c_codecs\nencode\nq\x02h\x01X\x06\x00\x00\x00latin1q\x03\x86q\x04Rq\x05s.";
    let mut p = py2();
    p.py2_text = Py2Text::Utf8;
    // Python 2 loads {'\xc3\xbf': '\xff'}.
    assert_eq!(
        rewritten(src, &p),
        b"\x80\x02}q\x00U\x02\xc3\xbfq\x01c_codecs\nencode\nq\x02X\x02\x00\x00\x00\xc3\xbfX\x06\x00\x00\x00latin1q\x03\x86q\x04Rq\x05s."
    );
    // py2: n = m.N(); n.a = 'a'; n.b = ['b', 'a']; pickle.dumps(n, 2): pure-Python pickle
    // memoizes the interned 'a' and 'b', attribute names (kept str) and values (bytes under
    // `py3_str = bytes`, which got str). Python 3 loads {'a': b'a', 'b': [b'b', b'a']}.
    let src =
        b"\x80\x02cm\nN\nq\x00)\x81q\x01}q\x02(U\x01aq\x03h\x03U\x01bq\x04]q\x05(h\x04h\x03eub.";
    let mut p = py3();
    p.py3_str = Py3Str::Bytes;
    assert_eq!(
        rewritten(src, &p),
        b"\x80\x02cm\nN\nq\x00)\x81q\x01}q\x02(U\x01aq\x03C\x01aU\x01bq\x04]q\x05(C\x01bC\x01aeub."
    );
}

#[test]
fn py2_text_utf8_keeps_the_items_of_a_unicode_array() {
    // py3: pickle.dumps(array.array('u', 'a\xe9'), 2) and array('u', 'a') at protocol 0:
    // `array('u', [u'a', u'\xe9'])`. Under `py2_text = utf8` the items became UTF-8 str and
    // Python 2 raised "TypeError: array item must be unicode character"; they stay unicode
    // (nothing else in the value changes, so the value is unchanged).
    let mut p = py2();
    p.py2_text = Py2Text::Utf8;
    for src in [
        &b"\x80\x02carray\narray\nq\x00X\x01\x00\x00\x00uq\x01]q\x02(X\x01\x00\x00\x00aq\x03X\x02\x00\x00\x00\xc3\xa9q\x04e\x86q\x05Rq\x06."[..],
        b"carray\narray\np0\n(Vu\np1\n(lp2\nVa\np3\natp4\nRp5\n.",
    ] {
        assert_eq!(
            transcode(&Bytes::copy_from_slice(src), &p).outcome,
            Outcome::Unchanged
        );
    }
    // A list that is not an array's argument is still converted.
    let list = b"\x80\x02]q\x00X\x01\x00\x00\x00aq\x01a.";
    assert_eq!(rewritten(list, &p), b"\x80\x02]q\x00U\x01aq\x01a.");
}

#[test]
fn a_memoized_text_folded_into_a_stack_global_is_not_copied() {
    // Hand-made protocol 4 (CPython writes nothing this tangled): 'builtins' is the kept text
    // argument of `_codecs.encode`, then fetched (h\x03) as the module of a STACK_GLOBAL, whose
    // string ops are folded into GLOBAL for Python 2: [b'builtins', int].
    let src = b"\x80\x04(\x8c\x07_codecs\x94\x8c\x06encode\x94\x93\x94\x8c\x08builtins\x94\x8c\x06latin1\x94\x86\x94R\x94h\x03\x8c\x03int\x94\x93\x94l.";
    let mut p = py2();
    p.py2_text = Py2Text::Utf8;
    // Python 2 loads ['builtins', long] (CPython 3's own rename of builtins.int).
    assert_eq!(
        rewritten(src, &p),
        b"\x80\x02(c_codecs\nencode\nq\x00X\x08\x00\x00\x00builtinsq\x01X\x06\x00\x00\x00latin1q\x02\x86q\x03Rq\x04c__builtin__\nlong\nq\x05l."
    );
}
