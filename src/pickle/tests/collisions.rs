//! Keys that would become equal in the reader (py2 `str`, text and bytes of one content) are
//! refused `collision`, never merged: among OrderedDict keys, inside tuple and frozenset keys,
//! in lists handed alone to a class, and in the items a container takes; keys that cannot meet
//! are converted.

use super::*;

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
