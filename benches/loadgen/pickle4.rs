//! A valid protocol-4 pickle of a user-profile dict, built byte by byte, with a varying payload.
//!
//! The bytes are what CPython 3.8+ `pickle.dumps(obj, 4)` writes for
//! `{'id': idx, 'name': 'user-<idx>', 'email': ..., 'bio': <text with non-ASCII>, 'tags': [...],
//! 'score': float, 'active': True}`: PROTO 4, one FRAME, MEMOIZE after every memoizable object,
//! SHORT_BINUNICODE/BINUNICODE for text. Protocol-4 opcodes (FRAME, MEMOIZE, SHORT_BINUNICODE)
//! mean a Python 2 reader cannot load it, so a py2 listener must downgrade every one.
//! Opcode values are from CPython `Lib/pickletools.py`.

/// PROTO: protocol version, one byte argument.
const PROTO: u8 = 0x80;
/// FRAME: 8-byte little-endian length of the frame that follows (protocol 4).
const FRAME: u8 = 0x95;
/// EMPTY_DICT: push `{}`.
const EMPTY_DICT: u8 = b'}';
/// EMPTY_LIST: push `[]`.
const EMPTY_LIST: u8 = b']';
/// MEMOIZE: store the top of the stack in the memo at the next index (protocol 4).
const MEMOIZE: u8 = 0x94;
/// MARK: push the mark object.
const MARK: u8 = b'(';
/// SHORT_BINUNICODE: 1-byte length, UTF-8 text (protocol 4).
const SHORT_BINUNICODE: u8 = 0x8c;
/// BINUNICODE: 4-byte little-endian length, UTF-8 text.
const BINUNICODE: u8 = b'X';
/// BININT1: 1-byte unsigned int.
const BININT1: u8 = b'K';
/// BININT2: 2-byte little-endian unsigned int.
const BININT2: u8 = b'M';
/// BININT: 4-byte little-endian signed int.
const BININT: u8 = b'J';
/// BINFLOAT: 8-byte big-endian IEEE double.
const BINFLOAT: u8 = b'G';
/// NEWTRUE: push True (protocol 2).
const NEWTRUE: u8 = 0x88;
/// APPENDS: extend the list below the mark with the items above it.
const APPENDS: u8 = b'e';
/// SETITEMS: add the key/value pairs above the mark to the dict below it.
const SETITEMS: u8 = b'u';
/// STOP: end of pickle.
const STOP: u8 = b'.';

/// Appends a str the way CPython does: SHORT_BINUNICODE below 256 bytes, else BINUNICODE;
/// then MEMOIZE.
fn push_str(out: &mut Vec<u8>, s: &str) {
    let b = s.as_bytes();
    match u8::try_from(b.len()) {
        Ok(n) => out.extend_from_slice(&[SHORT_BINUNICODE, n]),
        Err(_) => {
            out.push(BINUNICODE);
            out.extend_from_slice(&(b.len() as u32).to_le_bytes());
        }
    }
    out.extend_from_slice(b);
    out.push(MEMOIZE);
}

/// Appends a non-negative int below 2^31 the way CPython does (smallest BININT* that fits).
fn push_int(out: &mut Vec<u8>, v: u64) {
    if let Ok(v) = u8::try_from(v) {
        out.extend_from_slice(&[BININT1, v]);
    } else if let Ok(v) = u16::try_from(v) {
        out.push(BININT2);
        out.extend_from_slice(&v.to_le_bytes());
    } else {
        out.push(BININT);
        out.extend_from_slice(&(v as u32).to_le_bytes());
    }
}

/// The dict body between the frame header and STOP, with a bio of `bio_len` bytes.
fn body(idx: u64, bio_len: usize) -> Vec<u8> {
    let mut b = Vec::with_capacity(bio_len + 256);
    b.extend_from_slice(&[EMPTY_DICT, MEMOIZE, MARK]);
    push_str(&mut b, "id");
    push_int(&mut b, idx % 2_000_000_000);
    push_str(&mut b, "name");
    push_str(&mut b, &format!("user-{idx:08}"));
    push_str(&mut b, "email");
    push_str(&mut b, &format!("user-{idx:08}@example.org"));
    push_str(&mut b, "bio");
    push_str(&mut b, &bio(idx, bio_len));
    push_str(&mut b, "tags");
    b.extend_from_slice(&[EMPTY_LIST, MEMOIZE, MARK]);
    for tag in ["python", "migration", "caché"] {
        push_str(&mut b, tag);
    }
    b.push(APPENDS);
    push_str(&mut b, "score");
    b.push(BINFLOAT);
    b.extend_from_slice(&(idx as f64 / 7.0).to_be_bytes());
    push_str(&mut b, "active");
    b.push(NEWTRUE);
    b.push(SETITEMS);
    b.push(STOP);
    b
}

/// Text of exactly `len` UTF-8 bytes (at least 16): a non-ASCII opening, then letters from `idx`.
fn bio(idx: u64, len: usize) -> String {
    const OPENING: &str = "Café ✓ 爱 "; // 15 bytes: é is 2, ✓ and 爱 are 3 each
    let mut s = String::with_capacity(len);
    s.push_str(OPENING);
    let mut rng = crate::workload::Rng::new(idx + 1);
    while s.len() < len {
        let c = rng.next() % 27;
        s.push(if c == 26 {
            ' '
        } else {
            (b'a' + c as u8) as char
        });
    }
    s
}

/// A protocol-4 pickle of user `idx`'s profile, exactly `size` bytes long (`size` >= 512).
pub fn user_profile(idx: u64, size: usize) -> Vec<u8> {
    const HEADER: usize = 2 + 9; // PROTO 4, FRAME <u64>
    let overhead = HEADER + body(idx, 256).len() - 256;
    let bio_len = size.saturating_sub(overhead).max(256);
    let body = body(idx, bio_len);
    let mut out = Vec::with_capacity(HEADER + body.len());
    out.extend_from_slice(&[PROTO, 4, FRAME]);
    out.extend_from_slice(&(body.len() as u64).to_le_bytes());
    out.extend_from_slice(&body);
    out
}

/// Self-checks run by the smoke mode: the size is exact and an independent decoder
/// (serde-pickle) reads the pickle back with the expected fields.
pub fn self_check() {
    for idx in [0u64, 7, 123_456, 99_999_999] {
        let p = user_profile(idx, 1024);
        assert_eq!(p.len(), 1024, "pickle of {idx} is {} bytes", p.len());
        assert_eq!(&p[..3], &[PROTO, 4, FRAME]);
        let v: serde_pickle::Value = serde_pickle::value_from_slice(&p, Default::default())
            .unwrap_or_else(|e| panic!("pickle of {idx} does not decode: {e}"));
        let text = format!("{v:?}");
        assert!(text.contains(&format!("user-{idx:08}")), "{text}");
        assert!(text.contains("Café ✓ 爱"), "{text}");
    }
}
