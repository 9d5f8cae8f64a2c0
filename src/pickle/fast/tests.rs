//! The fast path against the general path: equal answers wherever the fast path answers, over
//! the golden corpus under every policy, every prefix of each fixture, and seeded mutations.

use std::path::PathBuf;

use super::super::{transcode_general, Global, Policy, Py2Text, Py3Str, Runtime};
use super::*;

fn policies() -> Vec<Policy> {
    let mut all = Vec::new();
    for text in [Py2Text::Keep, Py2Text::Utf8] {
        all.push(Policy {
            py2_text: text,
            ..Policy::for_target(Runtime::Py2)
        });
    }
    for s in [Py3Str::Utf8OrBytes, Py3Str::Bytes, Py3Str::Latin1] {
        all.push(Policy {
            py3_str: s,
            ..Policy::for_target(Runtime::Py3)
        });
    }
    all
}

fn corpus() -> Vec<(String, Bytes)> {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/pickles");
    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|e| e.expect("dir entry").path())
        .filter(|p| p.extension().is_some_and(|x| x == "pickle"))
        .collect();
    files.sort();
    assert!(
        files.len() > 500,
        "golden corpus missing: {}",
        dir.display()
    );
    files
        .into_iter()
        .map(|p| {
            let data = std::fs::read(&p).expect("read fixture");
            (
                p.file_name().unwrap().to_string_lossy().into_owned(),
                Bytes::from(data),
            )
        })
        .collect()
}

/// Asserts the fast path, when it answers, equals the general path; returns whether it answered.
fn agrees(name: &str, src: &Bytes, policy: &Policy) -> bool {
    let Some(fast) = transcode(src, policy) else {
        return false;
    };
    let general = transcode_general(src, policy);
    assert_eq!(fast, general, "{name} under {policy:?}");
    true
}

#[test]
fn agrees_with_the_general_path_on_the_golden_corpus() {
    let (mut answered, mut total) = (0, 0);
    for (name, src) in corpus() {
        for policy in policies() {
            total += 1;
            answered += usize::from(agrees(&name, &src, &policy));
        }
        if let Some(summary) = analyze(&src) {
            assert_eq!(
                Ok(summary),
                super::super::scan::scan(&src, None).map(|s| s.summary)
            );
        }
    }
    // The subset is plain data: a good share of the corpus, not all of it.
    assert!(
        answered * 5 > total,
        "fast path answered {answered} of {total}"
    );
    assert!(
        answered < total,
        "fast path answered everything: subset check is broken"
    );
}

#[test]
fn common_shapes_take_the_fast_path() {
    let corpus = corpus();
    let get = |stem: &str| {
        corpus
            .iter()
            .find(|(n, _)| n == &format!("{stem}.pickle"))
            .map(|(_, b)| b.clone())
            .unwrap_or_else(|| panic!("fixture {stem}"))
    };
    let py2 = Policy::for_target(Runtime::Py2);
    let py3 = Policy::for_target(Runtime::Py3);
    for (stem, policy, rewritten) in [
        ("text_dict_py3_p4", &py2, true),
        ("dict_large_py3_p4", &py2, true),
        ("dict_large_py3_p2", &py2, false),
        ("unicode_long_py3_p2", &py2, false),
        ("str_utf8_py2_p2_c", &py3, true),
        ("str_binary_70000_py2_p2_c", &py3, true),
        ("dict_large_py2_p2_c", &py3, false),
        // Protocol 0 (python-memcached's default pickleProtocol).
        ("str_utf8_py2_p0", &py3, true),
        ("str_in_containers_py2_p0_c", &py3, true),
        ("dict_large_py2_p0_c", &py3, false),
        ("unicode_nonascii_py2_p0", &py3, false),
        ("text_dict_py3_p0", &py2, false),
        ("dict_large_py3_p0", &py2, false),
        // Globals and calls from Python 2: datetime state becomes bytes, the rest stays.
        ("datetime_many_py2_p2_c", &py3, true),
        ("datetime_naive_py2_p0", &py3, true),
        ("decimal_py2_p2_c", &py3, false),
        ("class_plain_py2_p2_c", &py3, false),
        ("stdlib_misc_py2_p2", &py3, false),
        ("datetime_many_py2_p2_c", &py2, false),
        ("class_plain_py2_p1_c", &py2, false),
        ("class_all_py2_p2_c", &py3, false),
        ("class_oldstyle_py2_p0", &py3, false),
        // Python 3's own protocols, read by Python 3: validated, unchanged.
        ("datetime_naive_py3_p4", &py3, false),
        ("class_all_py3_p5", &py3, false),
        ("set_large_py3_p4", &py3, false),
        ("bytes_in_containers_py3_p5", &py3, false),
        ("frozenset_small_py3_p4", &py3, false),
        ("bytearray_py3_p5", &py3, false),
        // Python 3's protocols for Python 2 readers: globals, bytes and memo ids are written
        // by `downgrade.rs` following this path's plan.
        ("datetime_naive_py3_p4", &py2, true),
        ("class_all_py3_p5", &py2, true),
        ("bytes_in_containers_py3_p3", &py2, true),
        ("bytearray_py3_p5", &py2, true),
        ("decimal_py3_p4", &py2, true),
        ("set_large_py3_p4", &py2, true),
        ("set_small_py3_p5", &py2, true),
    ] {
        let src = get(stem);
        let t = transcode(&src, policy).unwrap_or_else(|| panic!("{stem} left the fast path"));
        assert_eq!(
            matches!(t.outcome, Outcome::Rewritten(_)),
            rewritten,
            "{stem}"
        );
        assert_eq!(t, transcode_general(&src, policy), "{stem}");
    }
}

#[test]
fn every_prefix_of_a_fast_path_fixture_falls_back_to_a_refusal() {
    let mut checked = 0;
    for (name, src) in corpus() {
        // Prefixes of the fixtures under 4 KiB that the fast path answers whole (the rest adds
        // time, not cases). A prefix ends before STOP: the fast path must not answer it, and the
        // general path must refuse it.
        if src.len() > 4096 || transcode(&src, &Policy::for_target(Runtime::Py2)).is_none() {
            continue;
        }
        checked += 1;
        for i in 0..src.len() {
            let prefix = src.slice(..i);
            for policy in policies() {
                assert!(
                    transcode(&prefix, &policy).is_none(),
                    "{name}[..{i}] answered by the fast path"
                );
                let general = transcode_general(&prefix, &policy);
                assert!(
                    matches!(general.outcome, Outcome::Refused(_)),
                    "{name}[..{i}]: {general:?}"
                );
            }
        }
    }
    assert!(checked > 100, "fixtures checked: {checked}");
}

/// xorshift64*: a fixed-seed generator (the seed is printed on failure).
fn rng(seed: u64) -> impl FnMut() -> u64 {
    let mut x = seed;
    move || {
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        x.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
}

#[test]
fn seeded_mutations_agree() {
    const SEED: u64 = 0x5eed_fa57_0001;
    let mut next = rng(SEED);
    let plain: Vec<(String, Bytes)> = corpus()
        .into_iter()
        .filter(|(_, b)| b.len() <= 2048)
        .filter(|(_, b)| transcode(b, &Policy::for_target(Runtime::Py3)).is_some())
        .collect();
    assert!(!plain.is_empty());
    let policies = policies();
    let mut answered = 0;
    // Bounded: 20 000 mutants.
    for round in 0..20_000u64 {
        let (name, src) = &plain[(next() as usize) % plain.len()];
        let mut m = src.to_vec();
        for _ in 0..1 + next() % 3 {
            let i = (next() as usize) % m.len();
            match next() % 4 {
                0 => m[i] = next() as u8,
                1 => m[i] = m[i].wrapping_add(1),
                2 => {
                    m.remove(i);
                    if m.is_empty() {
                        m.push(b'.');
                    }
                }
                _ => m.insert(i, m[i]),
            }
        }
        let m = Bytes::from(m);
        let policy = &policies[(next() as usize) % policies.len()];
        let ok = std::panic::catch_unwind(|| agrees(name, &m, policy));
        match ok {
            Ok(a) => answered += usize::from(a),
            Err(_) => panic!("seed {SEED:#x}, round {round}: {name} mutated to {m:?}"),
        }
    }
    assert!(answered > 100, "mutants the fast path answered: {answered}");
}

/// Structural mutants of the golden corpus, valid where their fixture is, in the shapes byte
/// mutations rarely reach: extra memo PUTs after pushing ops (a STACK_GLOBAL whose strings are
/// PUT three times is more than the fused writer takes back), later copies of a memoized
/// string fetched by BINGET, and the whole value in a list beside a set (before it: the fused
/// writer's first pass stops there and a second pass follows its plan; after it). Wherever the
/// fast path answers, it answers as the general path does. Bounded: 6 000 mutants, each under
/// one policy.
#[test]
fn structural_mutations_agree() {
    use super::super::reader::Reader;
    const SEED: u64 = 0x5eed_57c7_0002;
    let mut next = rng(SEED);
    let fixtures: Vec<(String, Bytes)> = corpus()
        .into_iter()
        .filter(|(_, b)| b.len() <= 4096 && b.first() == Some(&op::PROTO))
        .collect();
    let policies = policies();
    let mut answered = 0;
    for round in 0..6_000u64 {
        let (name, src) = &fixtures[(next() as usize) % fixtures.len()];
        let proto = src[1];
        let Ok(ops) = Reader::new(src).collect::<Result<Vec<_>, _>>() else {
            continue;
        };
        let mut m = Vec::with_capacity(src.len() + 64);
        // Memo indices the extra PUTs of protocols 1-3 use (no fixture reaches them).
        let mut spare = 200u8;
        // Per text: the MEMOIZE index of its first copy (protocol 4+).
        let mut memoized: Vec<(&[u8], u8)> = Vec::new();
        let mut memo_len = 0usize;
        for (i, o) in ops.iter().enumerate() {
            if matches!(o.code, op::PROTO | op::FRAME) && proto >= 4 {
                // Dropped (the wrap below moves the value; frames are optional).
                if o.code == op::PROTO {
                    m.extend_from_slice(o.raw);
                }
                continue;
            }
            let put_next = ops.get(i + 1).is_some_and(|n| n.code == op::MEMOIZE);
            match memoized.iter().find(|(t, _)| *t == o.raw) {
                Some(&(_, idx))
                    if o.code == op::SHORT_BINUNICODE && put_next && next() % 2 == 0 =>
                {
                    m.extend_from_slice(&[op::BINGET, idx]);
                }
                _ => {
                    m.extend_from_slice(o.raw);
                    if o.code == op::SHORT_BINUNICODE && put_next && memo_len < 256 {
                        memoized.push((o.raw, memo_len as u8));
                    }
                }
            }
            if o.code == op::MEMOIZE {
                memo_len += 1;
            }
            let pushes = !matches!(
                o.code,
                op::MARK
                    | op::MEMOIZE
                    | op::BINPUT
                    | op::LONG_BINPUT
                    | op::PUT
                    | op::PROTO
                    | op::FRAME
                    | op::STOP
                    | op::POP
                    | op::POP_MARK
            );
            if pushes && next() % 6 == 0 {
                for _ in 0..1 + next() % 3 {
                    match proto {
                        4.. => {
                            m.push(op::MEMOIZE);
                            memo_len += 1;
                        }
                        _ => {
                            m.extend_from_slice(&[op::BINPUT, spare]);
                            spare = spare.wrapping_add(1).max(200);
                        }
                    }
                }
            }
        }
        if proto >= 4 && next() % 2 == 0 {
            // [<set>, value] or [value, <set>]: memo indices move by the list's and set's
            // MEMOIZEs, so GETs may now fetch other objects (or none): still a differential.
            let body = &m[2..m.len() - 1];
            let set: &[u8] = b"\x8f\x94(K\x01\x8c\x01a\x94\x90";
            let mut w = vec![op::PROTO, proto, op::EMPTY_LIST, op::MEMOIZE, op::MARK];
            if next() % 2 == 0 {
                w.extend_from_slice(set);
                w.extend_from_slice(body);
            } else {
                w.extend_from_slice(body);
                w.extend_from_slice(set);
            }
            w.extend_from_slice(&[op::APPENDS, op::STOP]);
            m = w;
        }
        let m = Bytes::from(m);
        let policy = &policies[(next() as usize) % policies.len()];
        match std::panic::catch_unwind(|| agrees(name, &m, policy)) {
            Ok(a) => answered += usize::from(a),
            Err(_) => panic!("seed {SEED:#x}, round {round}: {name} mutated to {m:?}"),
        }
    }
    assert!(
        answered > 1000,
        "mutants the fast path answered: {answered}"
    );
}

/// Generated pickles made of the inner loop's ops and the ones around them (dicts, tuples,
/// sets, bytes, py2 `str`s, STACK_GLOBAL), mostly invalid: wherever the fast path answers, it
/// answers as the general path does. Bounded: 400 000 values of up to 24 ops (most invalid,
/// each refused within a few ops).
#[test]
fn generated_op_sequences_agree() {
    const SEED: u64 = 0x5eed_0b50_0007;
    let mut next = rng(SEED);
    let policies = policies();
    let ops: [&[u8]; 26] = [
        b"N",
        b"\x88",
        b"K\x01",
        b"M\x02\x01",
        b"J\x03\x00\x00\x00",
        b"I7\n",
        b")",
        b"]",
        b"}",
        b"(",
        b"l",
        b"a",
        b"e",
        b"t",
        b"\x85",
        b"s",
        b"u",
        b"d",
        b"\x94",
        b"\x8c\x01a",
        b"X\x02\x00\x00\x00ab",
        b"U\x01a",
        b"C\x01a",
        b"\x8f",
        b"\x90",
        b"\x93",
    ];
    let mut answered = 0;
    for round in 0..400_000u64 {
        let mut v = vec![0x80, [2, 4][(next() % 2) as usize]];
        for _ in 0..1 + next() % 24 {
            match next() % 8 {
                // Memo PUTs and GETs of a small index, so that they meet.
                0 => {
                    v.extend_from_slice(&[[b'q', b'h'][(next() % 2) as usize], (next() % 4) as u8])
                }
                1 => v.extend_from_slice(&[b'r', (next() % 4) as u8, 0, 0, 0]),
                _ => v.extend_from_slice(ops[(next() as usize) % ops.len()]),
            }
        }
        v.push(b'.');
        let v = Bytes::from(v);
        let policy = &policies[(next() as usize) % policies.len()];
        match std::panic::catch_unwind(|| agrees("generated", &v, policy)) {
            Ok(a) => answered += usize::from(a),
            Err(_) => panic!("seed {SEED:#x}, round {round}: {v:?} under {policy:?}"),
        }
    }
    assert!(
        answered > 300,
        "generated values the fast path answered: {answered}"
    );
}

#[test]
fn dicts_mixing_string_kinds_fall_back_only_where_keys_meet() {
    // py2 cPickle protocol 2: {'\xe7': 1, u'\xe7': 2}: equal only as latin-1 text for a py3
    // reader (the general path refuses it there).
    let latin1 =
        Bytes::from_static(b"\x80\x02}q\x01(X\x02\x00\x00\x00\xc3\xa7K\x02U\x01\xe7K\x01u.");
    for policy in policies() {
        let meets = policy.py3_str == Py3Str::Latin1 && policy.target == Runtime::Py3;
        assert_eq!(agrees("latin1", &latin1, &policy), !meets, "{policy:?}");
    }
    use super::super::{Outcome, Reason};
    let refused = |src: &Bytes, policy: &Policy| {
        transcode_general(src, policy).outcome == Outcome::Refused(Reason::Collision)
    };
    let py3 = Policy::for_target(Runtime::Py3);
    assert!(refused(
        &latin1,
        &Policy {
            py3_str: Py3Str::Latin1,
            ..py3.clone()
        }
    ));
    // Keys whose contents are equal: 'a' / u'a' through SETITEM and through memoized keys
    // fetched again; protocol 0 (escaped 'caf\xc3\xa9', raw-unicode-escape u'caf\xe9', both
    // decoded); py3 {b'a': 1, 'a': 2}; two tuple keys (u'a',) / ('a',) in one dict.
    let setitem = Bytes::from_static(b"\x80\x02}q\x01X\x01\x00\x00\x00aq\x02K\x01sU\x01aK\x02s.");
    let memo = Bytes::from_static(
        b"\x80\x02]q\x00(X\x01\x00\x00\x00aq\x01U\x01aq\x02e}q\x03(h\x01K\x01h\x02K\x02u\x86.",
    );
    let p0 = Bytes::from_static(b"(dp1\nVcaf\xe9\np2\nI2\nsS'caf\\xc3\\xa9'\np3\nI1\ns.");
    let py3_bytes = Bytes::from_static(
        b"\x80\x04\x95\x11\x00\x00\x00\x00\x00\x00\x00}\x94(C\x01a\x94K\x01\x8c\x01a\x94K\x02u.",
    );
    let tuples = Bytes::from_static(
        b"\x80\x02}q\x01(U\x01xK\x01X\x01\x00\x00\x00a\x85q\x02K\x01U\x01a\x85q\x03K\x02u.",
    );
    for src in [&setitem, &memo, &p0, &py3_bytes, &tuples] {
        for policy in policies() {
            assert!(transcode(src, &policy).is_none(), "{src:?} {policy:?}");
        }
    }
    // 'caf\xc3\xa9' and u'caf\xe9' are two keys in Python 2 and one in Python 3.
    assert!(refused(&p0, &py3));
    // 'a' and u'a' are one key in Python 2 (a dict made by hand holds both) and, kept as
    // `str`, in Python 3 too; as `bytes` they would be two.
    let as_bytes = Policy {
        py3_str: Py3Str::Bytes,
        ..py3.clone()
    };
    for src in [&setitem, &memo, &tuples] {
        assert!(!refused(src, &py3), "{src:?}");
        assert!(refused(src, &as_bytes), "{src:?}");
    }
    // A tuple key holding an object of an unknown class (no digest) and strings of two kinds,
    // next to a tuple of numbers: {(1, 2): 1, ('a', u'b', mod.K('1')): 2}, which the general
    // path refuses for a py3 reader; the same with 3 in place of the object is not refused
    // (every key digested). A Decimal there is judged as any object (it equals numbers of its
    // value), and a date is digested by its state.
    let undigested = Bytes::from_static(
        b"\x80\x02}q\x01(K\x01K\x02\x86q\x02K\x01U\x01aX\x01\x00\x00\x00bcmod\nK\nq\x03U\x011\x85Rq\x04\x87K\x02u.",
    );
    assert!(refused(&undigested, &py3));
    assert!(transcode(&undigested, &py3).is_none());
    let decimal = Bytes::from_static(
        b"\x80\x02}q\x01(K\x01K\x02\x86q\x02K\x01U\x01aX\x01\x00\x00\x00bcdecimal\nDecimal\nq\x03U\x011\x85Rq\x04\x87K\x02u.",
    );
    assert!(refused(&decimal, &py3));
    assert!(transcode(&decimal, &py3).is_none());
    let date = Bytes::from_static(
        b"\x80\x02}q\x01(K\x01K\x02\x86q\x02K\x01U\x01aX\x01\x00\x00\x00bcdatetime\ndate\nq\x03U\x04\x07\xe4\x01\x01\x85Rq\x04\x87K\x02u.",
    );
    assert!(!refused(&date, &py3));
    assert!(transcode(&date, &py3).is_none());
    let digested = Bytes::from_static(
        b"\x80\x02}q\x01(K\x01K\x02\x86q\x02K\x01U\x01aX\x01\x00\x00\x00bK\x03\x87q\x03K\x02u.",
    );
    // (answered by the general path: the fast path does not digest tuple keys).
    assert!(!refused(&digested, &py3));
    assert!(transcode(&digested, &py3).is_none());
    assert!(refused(&py3_bytes, &Policy::for_target(Runtime::Py2)));
    // Distinct contents: answered under every policy (but latin-1 for a non-ASCII py2 `str`),
    // equal to the general path: {'a': 1, u'b': 2, 'c\xc3\xa9': 3} at protocols 0 and 2;
    // {(1, 't'): None, 'a': 1, u'b': 2} (one tuple key); py3 {b'a': 1, 'b': 2}.
    let p0 = Bytes::from_static(b"(dp1\nS'a'\nI1\nsVb\nI2\nsS'c\\xc3\\xa9'\np2\nI3\ns.");
    let p2 = Bytes::from_static(
        b"\x80\x02}q\x01(U\x01aK\x01X\x01\x00\x00\x00bK\x02U\x03c\xc3\xa9q\x02K\x03u.",
    );
    let one_tuple = Bytes::from_static(
        b"\x80\x02}q\x01(U\x01aK\x01K\x01U\x01t\x86q\x02NX\x01\x00\x00\x00bK\x02u.",
    );
    let py3_bytes = Bytes::from_static(
        b"\x80\x04\x95\x11\x00\x00\x00\x00\x00\x00\x00}\x94(C\x01a\x94K\x01\x8c\x01b\x94K\x02u.",
    );
    for (name, src) in [
        ("p0", p0),
        ("p2", p2),
        ("one_tuple", one_tuple),
        ("py3", py3_bytes),
    ] {
        for policy in policies() {
            let latin1 = policy.target == Runtime::Py3 && policy.py3_str == Py3Str::Latin1;
            let expected = !(latin1 && (name == "p0" || name == "p2"));
            assert_eq!(agrees(name, &src, &policy), expected, "{name} {policy:?}");
        }
    }
}

#[test]
fn string_kinds_are_told_apart_per_dict() {
    // py2 cPickle protocol 2: {'a': {u'b': 1}, 'c': [u'x', 'y']}: every dict has one key kind
    // (lists hold anything), so no key can collide and the fast path answers.
    let nested = Bytes::from_static(
        b"\x80\x02}q\x01(U\x01a}q\x02X\x01\x00\x00\x00bK\x01sU\x01c]q\x03(X\x01\x00\x00\x00xU\x01yeu.",
    );
    for policy in policies() {
        assert!(agrees("nested", &nested, &policy), "{policy:?}");
    }
}

/// The per-thread cache of globals fills up and starts over without changing any answer: more
/// distinct globals than it keeps, each in its own value, then the first ones again; and one
/// global spelled in many values keeps one entry (each value's summary lists it once).
#[test]
fn known_globals_cache_fills_and_starts_over() {
    // `[m.gI, m.gI]`: GLOBAL twice (the second one a repeat) in a protocol-2 list.
    let value = |i: usize| {
        let mut v = vec![op::PROTO, 2, op::EMPTY_LIST, op::MARK];
        for _ in 0..2 {
            v.extend_from_slice(format!("cm\ng{i}\n").as_bytes());
        }
        v.extend_from_slice(&[op::APPENDS, op::STOP]);
        Bytes::from(v)
    };
    let py2 = Policy::for_target(Runtime::Py2);
    for round in 0..2 {
        for i in (0..5000).step_by(if round == 0 { 1 } else { 97 }) {
            let src = value(i);
            let summary = analyze(&src).expect("fast path answers");
            assert_eq!(summary.globals, vec![Global::new("m", format!("g{i}"))]);
            assert!(agrees(&format!("m.g{i}"), &src, &py2), "m.g{i}");
        }
    }
}

/// Consecutive values of one shape share their summary's list of globals (no list built per
/// value); a value of another shape gets its own, and every list says what its value holds.
#[test]
fn consecutive_values_of_one_shape_share_their_globals_list() {
    // A protocol-2 list of the globals `names` (module `m`).
    let value = |names: &[&str]| {
        let mut v = vec![op::PROTO, 2, op::EMPTY_LIST, op::MARK];
        for n in names {
            v.extend_from_slice(format!("cm\n{n}\n").as_bytes());
        }
        v.extend_from_slice(&[op::APPENDS, op::STOP]);
        Bytes::from(v)
    };
    let list = |names: &[&str]| {
        names
            .iter()
            .map(|n| Global::new("m", *n))
            .collect::<Vec<_>>()
    };
    let summary = |names: &[&str]| analyze(&value(names)).expect("fast path answers");
    let a = summary(&["a", "b"]);
    let again = summary(&["a", "b", "a"]);
    assert_eq!(a.globals, list(&["a", "b"]));
    assert_eq!(again.globals, list(&["a", "b"]));
    assert!(std::ptr::eq(a.globals.as_ptr(), again.globals.as_ptr()));
    let other = summary(&["b", "a"]);
    assert_eq!(other.globals, list(&["b", "a"]));
    let one = summary(&["b"]);
    assert_eq!(one.globals, list(&["b"]));
    let none = summary(&[]);
    assert!(none.globals.is_empty());
    let back = summary(&["a", "b"]);
    assert_eq!(back.globals, list(&["a", "b"]));
    assert!(!std::ptr::eq(a.globals.as_ptr(), back.globals.as_ptr()));
    // The general path lists the same globals.
    let py3 = Policy::for_target(Runtime::Py3);
    assert!(agrees("m.b, m.a", &value(&["b", "a"]), &py3));
}

/// The fused Python 2 writer folds STACK_GLOBAL's strings into GLOBAL, renumbers memo ids
/// around the globals it inserts, and writes a folded string out where it is fetched later
/// (as CPython writes `[date(2020, 1, 1), 'datetime', 'date', date(2021, 2, 3)]` at protocol
/// 4: the strings are GETs of the STACK_GLOBAL's memoized arguments), bytes and bytearrays
/// (inserted globals), under both text policies.
#[test]
fn fused_writer_folds_globals_and_writes_out_fetched_strings() {
    let cases: [&[u8]; 3] = [
        b"\x80\x04\x95:\x00\x00\x00\x00\x00\x00\x00]\x94(\x8c\x08datetime\x94\x8c\x04date\x94\
          \x93\x94C\x04\x07\xe4\x01\x01\x94\x85\x94R\x94h\x01\x8c\x04date\x94h\x03C\x04\x07\
          \xe5\x02\x03\x94\x85\x94R\x94e.",
        // [b'', b'ab\xff', bytearray(b'x'), bytearray(), b'ab\xff'] at protocol 4.
        b"\x80\x04\x956\x00\x00\x00\x00\x00\x00\x00]\x94(C\x00\x94C\x03ab\xff\x94\x8c\x08\
          builtins\x94\x8c\tbytearray\x94\x93\x94C\x01x\x94\x85\x94R\x94h\x05)R\x94h\x02e.",
        // [date(2020, 1, 1), time(1, 2), 'datetime']: the second STACK_GLOBAL's module is a
        // GET of the first one's folded string (written out, then taken back with it).
        b"\x80\x04\x95>\x00\x00\x00\x00\x00\x00\x00]\x94(\x8c\x08datetime\x94\x8c\x04date\x94\
          \x93\x94C\x04\x07\xe4\x01\x01\x94\x85\x94R\x94h\x01\x8c\x04time\x94\x93\x94C\x06\x01\
          \x02\x00\x00\x00\x00\x94\x85\x94R\x94h\x01e.",
    ];
    for (i, src) in cases.into_iter().enumerate() {
        let src = Bytes::from_static(src);
        for text in [Py2Text::Keep, Py2Text::Utf8] {
            let policy = Policy {
                py2_text: text,
                ..Policy::for_target(Runtime::Py2)
            };
            let answered = agrees(&format!("case {i}"), &src, &policy);
            // `bytearray(<text>)` keeps its text under `utf8`: the general path's.
            assert!(
                answered || (i, text) == (1, Py2Text::Utf8),
                "case {i} {text:?}"
            );
        }
    }
}

/// What the fused writer cannot take back is the general path's, with the same answer: a
/// STACK_GLOBAL whose name is a GET of the module string's own memo slot (the slot's output
/// would be taken back with it), and a string PUT three times.
#[test]
fn fused_writer_leaves_what_it_cannot_take_back() {
    let py2 = Policy::for_target(Runtime::Py2);
    let cases: [&[u8]; 3] = [
        // 'datetime' MEMOIZE, GET 0, MEMOIZE, STACK_GLOBAL.
        b"\x80\x04\x8c\x08datetime\x94h\x00\x94\x93.",
        // 'datetime' BINPUT 0 BINPUT 1 BINPUT 2, 'date', STACK_GLOBAL.
        b"\x80\x04\x8c\x08datetimeq\x00q\x01q\x02\x8c\x04date\x93.",
        // The same with two PUTs (taken back), then GETs of both slots.
        b"\x80\x04(\x8c\x08datetimeq\x00q\x01\x8c\x04date\x93h\x00h\x01l.",
    ];
    for (i, src) in cases.into_iter().enumerate() {
        let src = Bytes::from_static(src);
        let general = transcode_general(&src, &py2);
        assert!(
            matches!(general.outcome, Outcome::Rewritten(_)),
            "case {i}: {general:?}"
        );
        agrees(&format!("case {i}"), &src, &py2);
        assert_eq!(super::super::transcode(&src, &py2), general, "case {i}");
    }
    // Two PUTs are taken back: the fast path answers the third case.
    assert!(agrees("two puts", &Bytes::from_static(cases[2]), &py2));
}

/// For a Python 2 reader the stack's room is `max_stack` less what the rewrite adds (3 for
/// bytes' `_codecs.encode` arguments, 1 per open set): both paths refuse one item past it and
/// answer alike at it.
#[test]
fn py2_rewrite_additions_count_against_the_stack_limit() {
    use super::super::{Outcome, Reason};
    // PROTO 4, `n` Nones in a MARKed list, then a value that grows on the way to Python 2.
    let value = |n: usize, tail: &[u8]| {
        let mut v = vec![op::PROTO, 4, op::MARK];
        v.extend(std::iter::repeat_n(op::NONE, n));
        v.extend_from_slice(tail);
        v.extend_from_slice(&[op::LIST, op::STOP]);
        Bytes::from(v)
    };
    let bytes = [op::SHORT_BINBYTES, 1, b'x'];
    let set = [op::EMPTY_SET];
    for (tail, extra) in [(&bytes[..], 3), (&set[..], 1)] {
        for (n, fits) in [(8 - extra - 1, true), (8 - extra, false)] {
            let src = value(n, tail);
            let mut policy = Policy::for_target(Runtime::Py2);
            policy.limits.max_stack = 8;
            let general = transcode_general(&src, &policy);
            let refused = general.outcome == Outcome::Refused(Reason::LimitExceeded);
            assert_eq!(
                refused, !fits,
                "{n} items + {tail:?}: {:?}",
                general.outcome
            );
            match transcode(&src, &policy) {
                Some(fast) => assert_eq!(fast, general, "{n} items + {tail:?}"),
                None => assert!(!fits, "{n} items + {tail:?}: the fast path gave up"),
            }
        }
    }
}

/// The scan's inner loop (`scan/run.rs`) stops wherever the main loop has something to decide:
/// each such point, inside a run of the ops it takes, must end as the general path ends it.
#[test]
fn inner_loop_stops_where_the_main_loop_decides() {
    use super::super::{Outcome, PickleLimits};
    let limits = |stack: usize, memo: usize, depth: usize| PickleLimits {
        max_stack: stack,
        max_memo: memo,
        max_depth: depth,
        ..PickleLimits::default()
    };
    let wide = PickleLimits::default();
    // (what it tries, pickle, limits, valid)
    let cases: [(&str, &[u8], PickleLimits, bool); 26] = [
        ("a run to STOP", b"\x80\x02]q\x00(K\x01M\x02\x01J\x03\x00\x00\x00NI9\nl\x88aa.", wide, true),
        ("PUT past the memo's next slot", b"\x80\x02]q\x05K\x01ah\x05a.", wide, true),
        ("PUT over a used slot", b"\x80\x02]q\x00]q\x00a.", wide, true),
        ("GET of a slot never PUT", b"\x80\x02]q\x00h\x01a.", wide, false),
        ("APPEND across a MARK", b"\x80\x02](K\x01ala.", wide, false),
        ("APPEND to a dict", b"\x80\x02}q\x00K\x01a.", wide, false),
        ("LIST without a MARK", b"\x80\x02K\x01K\x02l.", wide, false),
        ("nested MARKs and LISTs", b"\x80\x02](K\x01(K\x02lla.", wide, true),
        ("PUT right above a MARK", b"\x80\x02](q\x00l.", wide, false),
        ("protocol 0 lines", b"(lp0\nI1\naI-2\nag0\na.", wide, true),
        ("a bad protocol-0 int", b"(lp0\nI1x\na.", wide, false),
        ("the stack limit in a run", b"\x80\x02(K\x01K\x02K\x03K\x04K\x05l.", limits(4, 16, 16), false),
        ("just under the stack limit", b"\x80\x02(K\x01K\x02K\x03K\x04l.", limits(4, 16, 16), true),
        ("LIST over a full stack", b"\x80\x02]](laa.", limits(2, 16, 16), false),
        ("LIST just under the limit", b"\x80\x02]](laa.", limits(3, 16, 16), true),
        ("the memo limit in a run", b"\x80\x02]q\x00]q\x01]q\x02aa.", limits(16, 2, 16), false),
        ("the depth limit in a run", b"\x80\x02(((lll.", limits(16, 16, 2), false),
        ("a text op in a run", b"\x80\x04\x95\x10\x00\x00\x00\x00\x00\x00\x00]\x94\x8c\x01a\x94aX\x01\x00\x00\x00b\x94a.", wide, true),
        // A Python 2 reader's memo ids shifted by inserted globals (`_codecs.encode`,
        // `set`): PUTs in a run map their slots, which GETs fetch later.
        ("PUTs after bytes", b"\x80\x04\x95\x15\x00\x00\x00\x00\x00\x00\x00]\x94(C\x01x\x94]\x94K\x01a]\x94K\x02ah\x02e.", wide, true),
        ("PUTs after a set", b"\x80\x04\x95\x17\x00\x00\x00\x00\x00\x00\x00]\x94(\x8f\x94(K\x01\x90]\x94K\x03a]\x94K\x04ah\x02e.", wide, true),
        ("MEMOIZE past the memo limit", b"\x80\x04\x95\x14\x00\x00\x00\x00\x00\x00\x00]\x94(]\x94K\x01a]\x94K\x02a]\x94K\x03ae.", limits(16, 3, 16), false),
        ("MEMOIZE up to the memo limit", b"\x80\x04\x95\x14\x00\x00\x00\x00\x00\x00\x00]\x94(]\x94K\x01a]\x94K\x02a]\x94K\x03ae.", limits(16, 4, 16), true),
        // Two PUTs of a text op that a STACK_GLOBAL then takes back, fetched after it
        // (hand-made: CPython PUTs once): the fused writer must note both, so neither is
        // written in a run.
        ("PUTs of a taken-back text op", b"\x80\x04\x8c\x01m\x94\x94\x8c\x01n\x94\x93\x94h\x00\x86.", wide, true),
        // Python 3's sets for a Python 2 reader: closed where plain ops follow.
        ("an empty set before a run", b"\x80\x04\x95\x0b\x00\x00\x00\x00\x00\x00\x00]\x94(\x8f\x94K\x01K\x02e.", wide, true),
        ("a set before a run", b"\x80\x04\x95\x13\x00\x00\x00\x00\x00\x00\x00]\x94(\x8f\x94(K\x01K\x02\x90K\x03K\x04]\x94e.", wide, true),
        ("a set before a list", b"\x80\x04\x95\x14\x00\x00\x00\x00\x00\x00\x00(\x8f\x94(K\x05\x90]\x94(K\x06K\x07eN\x88t\x94.", wide, true),
    ];
    for (what, src, limits, valid) in cases {
        let src = Bytes::from_static(src);
        for mut policy in policies() {
            policy.limits = limits;
            let general = transcode_general(&src, &policy);
            let refused = matches!(general.outcome, Outcome::Refused(_));
            assert_eq!(
                refused, !valid,
                "{what} under {policy:?}: {:?}",
                general.outcome
            );
            let answered = agrees(what, &src, &policy);
            // Plain values the fast path decides itself (refusals are the general path's).
            assert_eq!(answered, valid, "{what} under {policy:?}");
        }
    }
}

/// The Python 3 writer learns that a py2 `str` is binary state only at the REDUCE after it:
/// each way it can have been written by then (not yet copied, copied as SHORT_BINSTRING or a
/// long BINSTRING, written as text or bytes, behind FRAMEs, fetched again from the memo) must
/// end as the general path writes it.
#[test]
fn py3_writer_turns_binary_state_into_bytes_wherever_it_was_written() {
    const DT: &[u8] = b"cdatetime\ndatetime\n";
    let ascii_state = b"U\x0a\x07\x00\x01\x01\x00\x00\x00\x00\x00\x00";
    let text_state = "U\x0aééééé".as_bytes(); // valid UTF-8: written as text first
    let changed = "U\x02é".as_bytes(); // a str that changes (text), cutting the run
    let mut long = vec![b'T'];
    long.extend_from_slice(&300u32.to_le_bytes());
    long.extend(std::iter::repeat_n(b'x', 300));
    let short_t = b"T\x03\x00\x00\x00abc";
    let p2 = |parts: &[&[u8]]| {
        let mut v = vec![op::PROTO, 2];
        for p in parts {
            v.extend_from_slice(p);
        }
        v.push(op::STOP);
        Bytes::from(v)
    };
    let mut frame = vec![op::PROTO, 4, op::FRAME];
    frame.extend_from_slice(&0u64.to_le_bytes());
    let cases: Vec<(&str, Bytes)> = vec![
        ("not yet copied", p2(&[DT, ascii_state, b"\x85R"])),
        (
            "copied, then cut",
            p2(&[DT, ascii_state, changed, b"\x86R"]),
        ),
        (
            "long BINSTRING, then cut",
            p2(&[DT, &long, changed, b"\x86R"]),
        ),
        (
            "short BINSTRING, then cut",
            p2(&[DT, short_t, changed, b"\x86R"]),
        ),
        ("written as text", p2(&[DT, text_state, b"\x85R"])),
        ("written as bytes", p2(&[DT, b"U\x02\xff\xfe", b"\x85R"])),
        ("behind a FRAME", {
            let mut v = frame.clone();
            v.extend_from_slice(b"(");
            v.extend_from_slice(changed);
            v.extend_from_slice(&frame[2..]);
            v.extend_from_slice(DT);
            v.extend_from_slice(ascii_state);
            v.extend_from_slice(b"\x85Rl.");
            Bytes::from(v)
        }),
    ];
    for (name, src) in cases {
        for s in [Py3Str::Utf8OrBytes, Py3Str::Bytes, Py3Str::Latin1] {
            let policy = Policy {
                py3_str: s,
                ..Policy::for_target(Runtime::Py3)
            };
            assert!(agrees(name, &src, &policy), "{name}: not on the fast path");
        }
    }
    // One state fetched again as the state of a second datetime: both uses are binary state,
    // which the general path converts (the fast path leaves a state's memo slot fetched again
    // to it); used once as state and once as a list item, it is refused (a copy per use would
    // be needed).
    use super::super::{Outcome, Reason};
    let twice = p2(&[
        b"(",
        DT,
        b"q\x01",
        ascii_state,
        b"q\x02\x85R",
        changed,
        b"h\x01h\x02\x85Rl",
    ]);
    let state_and_item = p2(&[b"(", DT, ascii_state, b"q\x02\x85Rh\x02l"]);
    let item_then_state = p2(&[b"(", ascii_state, b"q\x02", DT, b"h\x02\x85Rl"]);
    // PUT twice (by hand), fetched by the second slot as a list item.
    let put_twice = p2(&[b"(", DT, ascii_state, b"q\x01q\x02\x85Rh\x02l"]);
    for s in [Py3Str::Utf8OrBytes, Py3Str::Bytes, Py3Str::Latin1] {
        let policy = Policy {
            py3_str: s,
            ..Policy::for_target(Runtime::Py3)
        };
        assert!(transcode(&twice, &policy).is_none());
        assert!(matches!(
            transcode_general(&twice, &policy).outcome,
            Outcome::Rewritten(_)
        ));
        for src in [&state_and_item, &item_then_state, &put_twice] {
            assert!(transcode(src, &policy).is_none(), "{src:?}");
            assert_eq!(
                transcode_general(src, &policy).outcome,
                Outcome::Refused(Reason::Unsupported),
                "{src:?}"
            );
        }
    }
}

/// A DICT or SETITEMS of an odd number of items: CPython 3 refuses it ("odd number of items for
/// DICT"), `cPickle` drops a DICT's last item, so both paths refuse it as malformed, and a later
/// batch's keys are never read as values (py2 `'id'` next to `u'id'`; found by `make fuzz`).
#[test]
fn odd_item_batches_are_refused_as_malformed() {
    use super::super::Reason;
    let cases: [&[u8]; 6] = [
        b"\x80\x02(U\x02idK\x07U\x01xdVid\nI7\ns.",
        b"\x80\x02(K\x01K\x02U\x02idK\x07U\x01xdVid\nI7\ns.",
        b"\x80\x02}(U\x02idK\x07U\x01xuVid\nI7\ns.",
        b"\x80\x02}(U\x02idK\x07U\x01xu(Vid\nI7\nu.",
        b"(K\x01d.",
        b"\x80\x04\x95\x08\x00\x00\x00\x00\x00\x00\x00}(K\x01K\x02K\x03u.",
    ];
    for src in cases {
        general_refuses(src, Reason::Malformed);
    }
    // An even SETITEMS after them is taken (an empty one too).
    for src in [&b"}(K\x01K\x02u."[..], b"}(u."] {
        let src = Bytes::from_static(src);
        for policy in policies() {
            assert!(
                agrees("even batch", &src, &policy),
                "{src:?} under {policy:?}"
            );
        }
    }
}

/// A FRAME that claims more bytes than are left is truncated (CPython's C unpickler reads the
/// frame ahead); the fast path leaves it to the general path, which refuses it. (A frame
/// shorter than its ops, which the C unpickler loads, is still taken.)
#[test]
fn frames_longer_than_the_rest_are_refused_as_truncated() {
    use super::super::Reason;
    let cases: [&[u8]; 3] = [
        b"\x80\x04\x95\x64\x00\x00\x00\x00\x00\x00\x00].",
        b"\x80\x04\x95\x0e\x00\x00\x00\x00\x00\x00\x00}\x94(\x8c\x01a\x94K\x01u.",
        b"\x80\x05\x95\xff\xff\xff\xff\xff\xff\xff\xffN.",
    ];
    for src in cases {
        general_refuses(src, Reason::Truncated);
    }
    for src in [
        &b"\x80\x04\x95\x0b\x00\x00\x00\x00\x00\x00\x00}\x94(\x8c\x01a\x94K\x01u."[..],
        b"\x80\x04\x95\x02\x00\x00\x00\x00\x00\x00\x00}\x94(\x8c\x01a\x94K\x01u.",
    ] {
        let src = Bytes::from_static(src);
        for policy in policies() {
            assert!(
                agrees("short frame", &src, &policy),
                "{src:?} under {policy:?}"
            );
        }
    }
}

/// Under every policy the general path refuses `src` for `reason`, and the fast path leaves it
/// to the general path.
fn general_refuses(src: &'static [u8], reason: super::super::Reason) {
    let src = Bytes::from_static(src);
    for policy in policies() {
        assert_eq!(
            transcode_general(&src, &policy).outcome,
            super::super::Outcome::Refused(reason),
            "{src:?} under {policy:?}"
        );
        assert!(
            transcode(&src, &policy).is_none(),
            "{src:?} under {policy:?}"
        );
    }
}

#[test]
fn pytz_utc_under_py2_utc_pytz_is_the_general_paths() {
    // py2: datetime(2024, 1, 2, 3, 4, 5, 6, tzinfo=pytz.utc) by cPickle protocol 2.
    let src = Bytes::from_static(
        b"\x80\x02cdatetime\ndatetime\nq\x01U\n\x07\xe8\x01\x02\x03\x04\x05\x00\x00\x06\
          cpytz\n_UTC\nq\x02)Rq\x03\x86Rq\x04.",
    );
    let pytz = Policy {
        py2_utc: super::super::Py2Utc::Pytz,
        ..Policy::for_target(Runtime::Py3)
    };
    assert!(agrees(
        "pytz default",
        &src,
        &Policy::for_target(Runtime::Py3)
    ));
    assert!(!agrees("pytz converted", &src, &pytz));
}

#[test]
fn globals_the_reader_lacks_are_the_general_paths() {
    use super::super::{Outcome, Reason};
    // py2: sets.Set([1]) and cmp by cPickle protocol 2 (Python 3 lacks both); py3:
    // RecursionError('r') and array.array('q', [1]) at protocol 2 (Python 2 lacks the class,
    // written `__builtin__.RecursionError`, and the typecode).
    let cases: &[(&[u8], Runtime, Reason)] = &[
        (
            b"\x80\x02csets\nSet\nq\x01)\x81q\x02}q\x03K\x01\x88s\x85b.",
            Runtime::Py3,
            Reason::Py2OnlyGlobal,
        ),
        (
            b"\x80\x02c__builtin__\ncmp\nq\x01.",
            Runtime::Py3,
            Reason::Py2OnlyGlobal,
        ),
        (
            b"\x80\x02c__builtin__\nRecursionError\nq\x00X\x01\x00\x00\x00rq\x01\x85q\x02Rq\x03.",
            Runtime::Py2,
            Reason::Py3OnlyGlobal,
        ),
        (
            b"\x80\x02carray\narray\nq\x00X\x01\x00\x00\x00qq\x01]q\x02K\x01a\x86q\x03Rq\x04.",
            Runtime::Py2,
            Reason::Py3OnlyGlobal,
        ),
    ];
    for &(src, target, reason) in cases {
        let src = Bytes::from_static(src);
        for policy in policies().into_iter().filter(|p| p.target == target) {
            assert_eq!(
                transcode_general(&src, &policy).outcome,
                Outcome::Refused(reason),
                "{src:?} under {policy:?}"
            );
            assert!(
                transcode(&src, &policy).is_none(),
                "{src:?} under {policy:?}"
            );
        }
    }
    // The array's summary flag is the general path's too.
    let array_q =
        b"\x80\x02carray\narray\nq\x00X\x01\x00\x00\x00qq\x01]q\x02K\x01a\x86q\x03Rq\x04.";
    assert!(analyze(array_q).is_none());
    // An array with a typecode both have still takes the fast path for a py2 reader (py3:
    // array('i', [1]) at protocol 2; py2: the same by cPickle).
    for src in [
        &b"\x80\x02carray\narray\nq\x00X\x01\x00\x00\x00iq\x01]q\x02K\x01a\x86q\x03Rq\x04."[..],
        b"\x80\x02carray\narray\nq\x01U\x01i]q\x02K\x01a\x86Rq\x03.",
    ] {
        let src = Bytes::copy_from_slice(src);
        assert!(agrees("array i", &src, &Policy::for_target(Runtime::Py2)));
    }
}
