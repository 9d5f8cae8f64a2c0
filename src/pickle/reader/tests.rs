//! Reader and validator tests: opcode families, truncation at every prefix, trailing data, and a
//! bounded random-bytes / mutation test with a fixed seed (printed on failure).

use bytes::Bytes;

use super::super::{analyze, transcode, ErrorKind, Outcome, Policy, Reason, Runtime};
use super::*;

fn ops(buf: &[u8]) -> Vec<(u8, usize, Vec<u8>)> {
    Reader::new(buf)
        .map(|r| r.map(|o| (o.code, o.pos, o.arg.to_vec())))
        .collect::<Result<_, _>>()
        .unwrap()
}

fn kind(buf: &[u8]) -> ErrorKind {
    analyze(buf).unwrap_err().kind
}

/// Valid pickles covering every opcode family (written by CPython 2.7 / 3.11 or hand-assembled).
const CORPUS: &[&[u8]] = &[
    // py3 [1, -1, 256, 2**31, 2**70, 1.5, None, True] protocol 2
    b"\x80\x02]q\x00(K\x01J\xff\xff\xff\xffM\x00\x01\x8a\x05\x00\x00\x00\x80\x00\x8a\t\x00\x00\x00\x00\x00\x00\x00\x00@G?\xf8\x00\x00\x00\x00\x00\x00N\x88e.",
    // py2 [1, 2L, 1.5, 'a', u'\xe9', None, True] protocol 0
    b"(lp0\nI1\naL2L\naF1.5\naS'a'\np1\naV\xe9\np2\naNaI01\na.",
    // py3 {'a': (1, 2), b'b': frozenset()} protocol 4 with FRAME / MEMOIZE
    b"\x80\x04\x95\x16\x00\x00\x00\x00\x00\x00\x00}\x94(\x8c\x01a\x94K\x01K\x02\x86\x94C\x01b\x94(\x91\x94u.",
    // py2 datetime.date(2015, 3, 4) protocol 0 (GLOBAL, MARK, TUPLE, REDUCE, PUT)
    b"cdatetime\ndate\np1\n(S'\\x07\\xdf\\x03\\x04'\ntRp2\n.",
    // py2 old-style instance protocol 0 (INST, BUILD, DICT, GET)
    b"(i__main__\nC\np0\n(dp1\nS'x'\np2\ng2\nsb.",
    // protocol 1: EMPTY_TUPLE, TUPLE via MARK, BINGET, LONG_BINPUT, LONG_BINGET, BINSTRING, OBJ, POP, DUP, POP_MARK
    b"(c__main__\nC\nq\x00or\x01\x00\x00\x00j\x01\x00\x00\x000h\x010(K\x011)2\x86T\x01\x00\x00\x00a\x87.",
    // py3 protocol 5 bytearray and BINBYTES8/BINUNICODE8/EMPTY_SET/ADDITEMS/SETITEM
    b"\x80\x05}\x8e\x01\x00\x00\x00\x00\x00\x00\x00b\x96\x01\x00\x00\x00\x00\x00\x00\x00a\x8d\x01\x00\x00\x00\x00\x00\x00\x00c\x8f(K\x01\x90\x87s.",
    // NEWOBJ, TUPLE3, EMPTY_LIST + APPEND, LIST, NEWFALSE, LONG4, BINUNICODE, SETITEMS
    b"\x80\x02c__main__\nC\n)\x81]K\x01a(l\x89\x8b\x01\x00\x00\x00\x01X\x01\x00\x00\x00x\x87\x87}(NNu\x86b.",
];

#[test]
fn fixed_width_and_length_prefixed_arguments() {
    assert_eq!(ops(b"K\x07."), vec![(b'K', 0, vec![7]), (b'.', 2, vec![])]);
    let o = Reader::new(b"J\xfe\xff\xff\xff.").next().unwrap().unwrap();
    assert_eq!(o.uint(), -2);
    let o = Reader::new(b"M\x00\x01.").next().unwrap().unwrap();
    assert_eq!(o.uint(), 256);
    assert_eq!(ops(b"U\x02ab.")[0].2, b"ab");
    assert_eq!(ops(b"T\x01\x00\x00\x00a.")[0].2, b"a");
    assert_eq!(ops(b"\x8c\x01a.")[0].2, b"a");
    assert_eq!(ops(b"\x8e\x01\x00\x00\x00\x00\x00\x00\x00b.")[0].2, b"b");
    assert_eq!(ops(b"\x8a\x01\xff.")[0].2, b"\xff");
    // A negative int4 length (string4 / long4) is an error, not a 4 GiB read.
    assert_eq!(kind(b"T\xff\xff\xff\xff."), ErrorKind::BadArgument);
    assert_eq!(kind(b"\x8b\xff\xff\xff\xff."), ErrorKind::BadArgument);
    // A huge uint8 length is truncation, never an allocation.
    assert_eq!(
        kind(b"\x8e\xff\xff\xff\xff\xff\xff\xff\xff"),
        ErrorKind::Truncated
    );
}

#[test]
fn line_arguments_are_checked() {
    assert_eq!(ops(b"I-12\n.")[0].2, b"-12");
    assert_eq!(ops(b"L12L\n.")[0].2, b"12L");
    assert_eq!(ops(b"F1e300\n.")[0].2, b"1e300");
    assert_eq!(ops(b"Fnan\n.")[0].2, b"nan");
    assert_eq!(kind(b"I1x\n."), ErrorKind::BadArgument);
    assert_eq!(kind(b"Fone\n."), ErrorKind::BadArgument);
    assert_eq!(kind(b"S'abc\n."), ErrorKind::BadArgument);
    assert_eq!(kind(b"S'\\x4'\n."), ErrorKind::BadArgument);
    assert_eq!(kind(b"c\nname\n."), ErrorKind::BadArgument);
    assert_eq!(kind(b"g-1\n."), ErrorKind::BadArgument);
    let o = Reader::new(b"cmod\nname\n.").next().unwrap().unwrap();
    assert_eq!(o.global_pair(), Some((&b"mod"[..], &b"name"[..])));
}

#[test]
fn structure_is_validated() {
    assert_eq!(kind(b"z"), ErrorKind::UnknownOpcode);
    assert_eq!(kind(b"N.x"), ErrorKind::TrailingData);
    assert_eq!(kind(b"NN."), ErrorKind::UnbalancedStack);
    assert_eq!(kind(b"(N."), ErrorKind::UnbalancedStack);
    assert_eq!(kind(b"."), ErrorKind::UnbalancedStack);
    assert_eq!(kind(b"]N(a."), ErrorKind::StackUnderflow);
    assert_eq!(kind(b"t."), ErrorKind::StackUnderflow);
    assert_eq!(kind(b"h\x00."), ErrorKind::BadMemo);
    assert_eq!(kind(b"q\x00N."), ErrorKind::BadMemo);
    assert_eq!(kind(b"\x80\x06N."), ErrorKind::UnsupportedProtocol);
    assert_eq!(kind(b"(o."), ErrorKind::StackUnderflow);
    // As CPython 3: "odd number of items for DICT" / "... for SETITEMS".
    assert_eq!(kind(b"(K\x01d."), ErrorKind::OddItems);
    assert_eq!(kind(b"}(K\x01K\x02K\x03u."), ErrorKind::OddItems);
    assert!(analyze(b"}(K\x01K\x02u.").is_ok());
    assert!(analyze(b"(K\x01K\x02d.").is_ok());
    let e = analyze(b"\x80\x02(K\x01d.").unwrap_err();
    assert_eq!((e.offset, e.opcode), (5, Some(b'd')));
    let e = analyze(b"K\x01a.").unwrap_err();
    assert_eq!((e.offset, e.opcode), (2, Some(b'a')));
    assert!(e.to_string().contains("APPEND"), "{e}");
    // POP at an empty frame pops the MARK, as CPython 3 does.
    assert!(analyze(b"N(0.").is_ok());
}

#[test]
fn a_frame_longer_than_the_rest_is_truncated() {
    // CPython's C unpickler reads a FRAME's bytes ahead: "pickle data was truncated" when
    // fewer are left, even where the ops inside end with STOP.
    let e = analyze(b"\x80\x04\x95\x64\x00\x00\x00\x00\x00\x00\x00].").unwrap_err();
    assert_eq!(
        (e.kind, e.offset, e.opcode),
        (ErrorKind::Truncated, 2, Some(0x95))
    );
    assert_eq!(
        kind(b"\x80\x04\x95\x03\x00\x00\x00\x00\x00\x00\x00]."),
        ErrorKind::Truncated
    );
    // Exactly the rest, or less (ops may go on past a frame in the C unpickler), is fine.
    assert!(analyze(b"\x80\x04\x95\x02\x00\x00\x00\x00\x00\x00\x00].").is_ok());
    assert!(analyze(b"\x80\x04\x95\x01\x00\x00\x00\x00\x00\x00\x00].").is_ok());
    assert!(analyze(b"\x80\x04\x95\x00\x00\x00\x00\x00\x00\x00\x00].").is_ok());
    // A length past u64's half, never an overflow.
    assert_eq!(
        kind(b"\x80\x04\x95\xff\xff\xff\xff\xff\xff\xff\xff]."),
        ErrorKind::Truncated
    );
}

/// Whatever the error, the reader yields it once and then ends (a caller that skips errors
/// must not loop forever on a truncated argument).
#[test]
fn an_error_is_yielded_once_then_the_reader_ends() {
    for (input, want) in [
        (&b"\x80\x02X\x05\x00"[..], ErrorKind::Truncated), // argument cut short
        (b"\x80\x02", ErrorKind::Truncated),               // no STOP
        (b"\xff.", ErrorKind::UnknownOpcode),
        (b"I0x1\n.", ErrorKind::BadArgument),
        (b"\x80\x06N.", ErrorKind::UnsupportedProtocol),
        (
            b"\x80\x04\x95\x09\x00\x00\x00\x00\x00\x00\x00N.",
            ErrorKind::Truncated,
        ), // FRAME
        (b"N.N", ErrorKind::TrailingData),
    ] {
        let items: Vec<_> = Reader::new(input).take(100).collect();
        let errors: Vec<ErrorKind> = items
            .iter()
            .filter_map(|r| r.as_ref().err().map(|e| e.kind))
            .collect();
        assert_eq!(errors, [want], "{input:?}");
        assert!(items.last().is_some_and(Result::is_err), "{input:?}");
    }
}

#[test]
fn corpus_parses_and_every_prefix_is_refused_as_truncated() {
    for (n, p) in CORPUS.iter().enumerate() {
        analyze(p).unwrap_or_else(|e| panic!("corpus {n}: {e}"));
        for i in 0..p.len() {
            assert_eq!(kind(&p[..i]), ErrorKind::Truncated, "corpus {n} prefix {i}");
            for target in [Runtime::Py2, Runtime::Py3] {
                let t = transcode(
                    &Bytes::copy_from_slice(&p[..i]),
                    &Policy::for_target(target),
                );
                assert_eq!(t.outcome, Outcome::Refused(super::super::Reason::Truncated));
                assert!(t.summary.is_none());
            }
        }
    }
}

#[test]
fn every_opcode_of_the_table_appears_in_the_tests() {
    fn mark(seen: &mut [bool; 256], p: &[u8]) {
        for o in Reader::new(p).flatten() {
            seen[usize::from(o.code)] = true;
        }
    }
    let mut seen = [false; 256];
    for p in CORPUS {
        mark(&mut seen, p);
    }
    // The golden corpus, written by the real interpreters at every protocol.
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/pickles");
    let mut files = 0;
    for entry in std::fs::read_dir(&dir).expect("tests/fixtures/pickles") {
        let path = entry.expect("fixture entry").path();
        if path.extension().is_some_and(|e| e == "pickle") {
            mark(&mut seen, &std::fs::read(&path).expect("read fixture"));
            files += 1;
        }
    }
    assert!(files > 600, "{files} fixtures in {}", dir.display());
    // No CPython value pickles these without a persistent_id hook, a copyreg extension or
    // out-of-band buffers: each is refused here with its reason, for both readers.
    for (code, src, reason) in [
        (opcode::PERSID, &b"Pabc\n."[..], Reason::PersistentId),
        (opcode::BINPERSID, b"\x80\x02K\x01Q.", Reason::PersistentId),
        (opcode::EXT1, b"\x80\x02\x82\x01.", Reason::Extension),
        (opcode::EXT2, b"\x80\x02\x83\x01\x00.", Reason::Extension),
        (
            opcode::EXT4,
            b"\x80\x02\x84\x01\x00\x00\x00.",
            Reason::Extension,
        ),
        (
            opcode::NEXT_BUFFER,
            b"\x80\x05\x97.",
            Reason::OutOfBandBuffer,
        ),
        (
            opcode::READONLY_BUFFER,
            b"\x80\x05\x97\x98.",
            Reason::OutOfBandBuffer,
        ),
    ] {
        for target in [Runtime::Py2, Runtime::Py3] {
            let out = transcode(&Bytes::from_static(src), &Policy::for_target(target)).outcome;
            assert_eq!(out, Outcome::Refused(reason), "{src:?} for {target:?}");
        }
        mark(&mut seen, src);
        assert!(seen[usize::from(code)], "{src:?}");
    }
    let missing: Vec<_> = opcode::ALL
        .iter()
        .filter(|o| !seen[usize::from(o.code)])
        .map(|o| o.name)
        .collect();
    assert!(missing.is_empty(), "opcodes without a test: {missing:?}");
}

/// xorshift64*: a tiny deterministic PRNG (no rand crate).
struct XorShift(u64);

impl XorShift {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
}

/// Checks the invariants of `transcode` on one input (no panic is implied by returning).
fn check_invariants(input: &[u8]) -> Result<(), String> {
    let src = Bytes::copy_from_slice(input);
    let parsed = analyze(input);
    for target in [Runtime::Py2, Runtime::Py3] {
        let policy = Policy::for_target(target);
        let t = transcode(&src, &policy);
        match (&t.outcome, &parsed) {
            (Outcome::Unchanged | Outcome::Rewritten(_), Err(e)) => {
                return Err(format!("{target:?}: accepted input analyze refuses ({e})"))
            }
            (Outcome::Rewritten(out), _) => {
                let s =
                    analyze(out).map_err(|e| format!("{target:?}: output does not parse: {e}"))?;
                if target == Runtime::Py2 && s.max_protocol > 2 {
                    return Err(format!("py2 output uses protocol {}", s.max_protocol));
                }
                if out[..] == input[..] {
                    return Err("Rewritten with identical bytes".into());
                }
                if transcode(out, &policy).outcome != Outcome::Unchanged {
                    return Err(format!("{target:?}: second pass not Unchanged"));
                }
            }
            _ => {}
        }
    }
    Ok(())
}

#[test]
fn random_bytes_and_mutations_never_panic_and_keep_invariants() {
    let seed = 0x5eed_2026_u64;
    let mut rng = XorShift(seed);
    let alphabet: Vec<u8> = opcode::ALL
        .iter()
        .map(|o| o.code)
        .chain([0, 1, 2, 0xff, b'\n', b'\''])
        .collect();
    for round in 0..20_000 {
        let buf: Vec<u8> = if round % 2 == 0 {
            let len = rng.below(40);
            (0..len)
                .map(|_| alphabet[rng.below(alphabet.len())])
                .collect()
        } else {
            let mut b = CORPUS[rng.below(CORPUS.len())].to_vec();
            for _ in 0..1 + rng.below(3) {
                let i = rng.below(b.len());
                match rng.below(3) {
                    0 => b[i] = alphabet[rng.below(alphabet.len())],
                    1 => {
                        b.remove(i);
                    }
                    _ => b.insert(i, alphabet[rng.below(alphabet.len())]),
                }
            }
            b
        };
        if let Err(msg) = check_invariants(&buf) {
            panic!("seed {seed:#x} round {round}: {msg}; input {buf:?}");
        }
    }
}

#[test]
fn memo_indices_parse_as_pickle_takes_them() {
    assert_eq!(parse_decimal(b"0"), Some(0));
    assert_eq!(
        parse_decimal(b"9999999999999999999"),
        Some(9_999_999_999_999_999_999)
    );
    for bad in [
        &b""[..],
        b"12345678901234567890",
        b"+1",
        b"-1",
        b"1 ",
        b"1a",
        b"\xd9",
        // Python 2 keys its memo by the line: `p07` is not `p7` there.
        b"007",
        b"00",
    ] {
        assert_eq!(parse_decimal(bad), None, "{bad:?}");
    }
}

#[test]
fn integer_lines_with_a_leading_zero_are_refused() {
    // Base 0 in both runtimes: octal 8 in Python 2, a ValueError in Python 3.
    for bad in [&b"010"[..], b"-010", b"-01", b"007"] {
        assert!(!int_line_ok(bad), "{bad:?}");
        let mut long = bad.to_vec();
        long.push(b'L');
        assert!(!line_ok(opcode::LONG, &long), "{long:?}");
    }
    // False and True, zeros, and what the runtimes write.
    for good in [&b"00"[..], b"01", b"0", b"-0", b"000", b"10", b"-7"] {
        assert!(int_line_ok(good), "{good:?}");
    }
    for good in [&b"0L"[..], b"00L", b"-5L", b"123", b"10L"] {
        assert!(line_ok(opcode::LONG, good), "{good:?}");
    }
}
