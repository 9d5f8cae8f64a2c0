//! Emits pickle opcodes into one output buffer, sized once from the input length.
//!
//! Only encodings live here (how a py2 `str`, a py3 `str`, a `bytes`, a memo PUT/GET or a GLOBAL
//! is written); the rewriters decide what to write.

use super::opcode as op;

/// Globals (and one constant) a protocol-2 rewrite for Python 2 inserts, as CPython 3's own
/// `pickle.dumps(obj, 2)` does; each is memoized once by the writer that inserts it.
#[derive(Clone, Copy)]
pub(crate) enum Ins {
    CodecsEncode,
    Latin1,
    Bytes,
    Set,
    Frozenset,
    Bytearray,
    /// `getattr`, for a nested class (`downgrade.rs`).
    Getattr,
}

impl Ins {
    /// How many there are (a writer keeps one memo id per kind).
    pub(crate) const COUNT: usize = 7;
}

/// The output of a rewrite.
#[derive(Debug)]
pub(crate) struct Out {
    pub(crate) buf: Vec<u8>,
}

impl Out {
    /// A buffer for rewriting an `input_len`-byte pickle (rewrites rarely grow a value by more
    /// than a quarter, plus the ~50 bytes of globals a protocol-2 rewrite may insert; one
    /// reallocation at worst).
    pub(crate) fn for_input(input_len: usize, max: usize) -> Out {
        Out {
            buf: Vec::with_capacity((input_len + input_len / 4 + 64).min(max)),
        }
    }

    #[inline]
    pub(crate) fn raw(&mut self, b: &[u8]) {
        self.buf.extend_from_slice(b);
    }

    #[inline]
    pub(crate) fn byte(&mut self, b: u8) {
        self.buf.push(b);
    }

    #[inline]
    fn len_prefixed(&mut self, short: u8, long: u8, payload: &[u8]) {
        match u8::try_from(payload.len()) {
            Ok(n) => self.buf.extend_from_slice(&[short, n]),
            Err(_) => {
                self.buf.push(long);
                // Inputs are bounded by the u32/i32 lengths of the ops they came from.
                let n = u32::try_from(payload.len()).unwrap_or(u32::MAX);
                self.buf.extend_from_slice(&n.to_le_bytes());
            }
        }
        self.buf.extend_from_slice(payload);
    }

    /// A py3 `str` / py2 `unicode`: BINUNICODE (protocol 1), UTF-8.
    #[inline]
    pub(crate) fn text(&mut self, utf8: &str) {
        self.buf.push(op::BINUNICODE);
        let n = u32::try_from(utf8.len()).unwrap_or(u32::MAX);
        self.buf.extend_from_slice(&n.to_le_bytes());
        self.buf.extend_from_slice(utf8.as_bytes());
    }

    /// A py3 `str` holding the latin-1 decoding of `bytes` (what `bytes.decode('latin1')` gives):
    /// BINUNICODE, UTF-8, encoded straight into the output.
    ///
    /// Binary values are about half bytes >= 0x80 in no pattern, so a branch per byte (or per
    /// run) is mispredicted half the time: eight bytes at a time, an all-ASCII word is copied,
    /// an all-high word (UTF-8 text kept as bytes) is encoded in the lanes of two words, and
    /// any other is encoded without branches (each byte writes both UTF-8 bytes where it goes,
    /// and the next one overwrites the second when it was ASCII).
    pub(crate) fn text_latin1(&mut self, bytes: &[u8]) {
        let n = bytes.len() + high_bytes(bytes);
        self.buf.push(op::BINUNICODE);
        self.buf
            .extend_from_slice(&u32::try_from(n).unwrap_or(u32::MAX).to_le_bytes());
        if n == bytes.len() {
            self.buf.extend_from_slice(bytes);
            return;
        }
        if bytes.len() < 64 {
            // Short (a datetime's state): setting up the words costs more than it saves.
            self.buf.reserve(n);
            for &b in bytes {
                if b < 0x80 {
                    self.buf.push(b);
                } else {
                    self.buf
                        .extend_from_slice(&[0xC0 | (b >> 6), 0x80 | (b & 0x3F)]);
                }
            }
            return;
        }
        let start = self.buf.len();
        // 18 bytes of slack: a word writes up to 16 bytes from where the last one ended (the
        // two bytes at 16, which it never reaches, are there to spare a bounds check).
        self.buf.resize(start + n + 18, 0);
        let out = &mut self.buf[start..];
        let mut at = 0;
        let mut words = bytes.chunks_exact(8);
        for word in &mut words {
            let Some(dst) = out
                .get_mut(at..at + 18)
                .and_then(|d| <&mut [u8; 18]>::try_from(d).ok())
            else {
                break;
            };
            let w = u64::from_le_bytes(word.try_into().unwrap_or_default());
            let top = w & 0x8080_8080_8080_8080;
            if top == 0 {
                dst[..8].copy_from_slice(&w.to_le_bytes());
                at += 8;
                continue;
            }
            if top == 0x8080_8080_8080_8080 {
                // Eight high bytes (UTF-8 text kept as bytes is all high bytes): two each, in
                // order, four at a time in the 16-bit lanes of a word.
                dst[..8].copy_from_slice(&two_byte_utf8(w as u32).to_le_bytes());
                dst[8..16].copy_from_slice(&two_byte_utf8((w >> 32) as u32).to_le_bytes());
                at += 16;
                continue;
            }
            // Each byte's UTF-8 from a table (an ASCII byte's second byte is a placeholder
            // the next byte overwrites), written where it goes: j plus the number of high
            // bytes before it (a prefix sum of the top bits, one per byte lane, by one
            // multiplication), so no write waits for the one before. At most 7 + 7 = 14.
            let ones = top >> 7;
            let through = ones.wrapping_mul(0x0101_0101_0101_0101);
            let at_byte = (through - ones) + 0x0706_0504_0302_0100;
            for j in 0..8 {
                let q = ((at_byte >> (8 * j)) & 0x0F) as usize;
                let utf8 = LATIN1_UTF8[usize::from((w >> (8 * j)) as u8)];
                dst[q..q + 2].copy_from_slice(&utf8.to_le_bytes());
            }
            at += 8 + (through >> 56) as usize;
        }
        // The last bytes one at a time, from the table as in a mixed word.
        for &b in words.remainder() {
            out[at..at + 2].copy_from_slice(&LATIN1_UTF8[usize::from(b)].to_le_bytes());
            at += 1 + usize::from(b >> 7);
        }
        debug_assert_eq!(at, n);
        self.buf.truncate(start + n);
    }

    /// A py2 `str`: SHORT_BINSTRING or BINSTRING (protocol 1).
    #[inline]
    pub(crate) fn py2_str(&mut self, bytes: &[u8]) {
        self.len_prefixed(op::SHORT_BINSTRING, op::BINSTRING, bytes);
    }

    /// A py3 `bytes`: SHORT_BINBYTES or BINBYTES (protocol 3).
    #[inline]
    pub(crate) fn py3_bytes(&mut self, bytes: &[u8]) {
        self.len_prefixed(op::SHORT_BINBYTES, op::BINBYTES, bytes);
    }

    /// An integer from its little-endian two's complement bytes: LONG1 or LONG4 (protocol 2).
    #[inline]
    pub(crate) fn long(&mut self, bytes: &[u8]) {
        self.len_prefixed(op::LONG1, op::LONG4, bytes);
    }

    /// An integer as CPython's protocol-2 `save_long` writes it: BININT1 (0-255), BININT2
    /// (0-65535), BININT (a signed 32-bit value), else LONG1 (minimal two's complement).
    pub(crate) fn int(&mut self, v: i128) {
        if let Ok(b) = u8::try_from(v) {
            self.buf.extend_from_slice(&[op::BININT1, b]);
        } else if let Ok(w) = u16::try_from(v) {
            self.buf.push(op::BININT2);
            self.buf.extend_from_slice(&w.to_le_bytes());
        } else if let Ok(i) = i32::try_from(v) {
            self.buf.push(op::BININT);
            self.buf.extend_from_slice(&i.to_le_bytes());
        } else {
            let bytes = v.to_le_bytes();
            // Drop high bytes that only repeat the sign of the byte below them.
            let mut n = bytes.len();
            while n > 1 {
                let (top, below) = (bytes[n - 1], bytes[n - 2]);
                if (top == 0 && below < 0x80) || (top == 0xff && below >= 0x80) {
                    n -= 1;
                } else {
                    break;
                }
            }
            self.long(&bytes[..n]);
        }
    }

    /// A float: BINFLOAT (big-endian IEEE 754 double), as `save_float` writes it.
    #[inline]
    pub(crate) fn float(&mut self, v: f64) {
        self.buf.push(op::BINFLOAT);
        self.buf.extend_from_slice(&v.to_bits().to_be_bytes());
    }

    /// memo[id] = top: BINPUT or LONG_BINPUT.
    #[inline]
    pub(crate) fn put(&mut self, id: u32) {
        match u8::try_from(id) {
            Ok(i) => self.buf.extend_from_slice(&[op::BINPUT, i]),
            Err(_) => {
                self.buf.push(op::LONG_BINPUT);
                self.buf.extend_from_slice(&id.to_le_bytes());
            }
        }
    }

    /// push memo[id]: BINGET or LONG_BINGET.
    #[inline]
    pub(crate) fn get(&mut self, id: u32) {
        match u8::try_from(id) {
            Ok(i) => self.buf.extend_from_slice(&[op::BINGET, i]),
            Err(_) => {
                self.buf.push(op::LONG_BINGET);
                self.buf.extend_from_slice(&id.to_le_bytes());
            }
        }
    }

    /// An inserted global (or the `'latin1'` constant), unmemoized.
    pub(crate) fn inserted(&mut self, which: Ins) {
        match which {
            Ins::CodecsEncode => self.global("_codecs", "encode"),
            Ins::Latin1 => self.text("latin1"),
            Ins::Bytes => self.global("__builtin__", "bytes"),
            Ins::Set => self.global("__builtin__", "set"),
            Ins::Frozenset => self.global("__builtin__", "frozenset"),
            Ins::Bytearray => self.global("__builtin__", "bytearray"),
            Ins::Getattr => self.global("__builtin__", "getattr"),
        }
    }

    /// GLOBAL `module\nname\n` (the caller checked both with [`global_part_ok`]).
    pub(crate) fn global(&mut self, module: &str, name: &str) {
        self.named(op::GLOBAL, module, name);
    }

    /// GLOBAL or INST (`code`) of `module.name`.
    pub(crate) fn named(&mut self, code: u8, module: &str, name: &str) {
        self.buf.push(code);
        self.buf.extend_from_slice(module.as_bytes());
        self.buf.push(b'\n');
        self.buf.extend_from_slice(name.as_bytes());
        self.buf.push(b'\n');
    }
}

/// Whether `s` can be a module or name part of a protocol-2 GLOBAL line: non-empty,
/// newline-free ASCII (a dotted name is the caller's to judge).
pub(crate) fn global_part_ok(s: &str) -> bool {
    !s.is_empty() && s.is_ascii() && !s.contains('\n')
}

/// The UTF-8 of four high bytes (U+0080..U+00FF, `110000xx 10xxxxxx` each), in order: each
/// byte spread to a 16-bit lane, then both halves of its encoding made in every lane at once.
fn two_byte_utf8(four: u32) -> u64 {
    let x = u64::from(four);
    let x = (x | (x << 16)) & 0x0000_FFFF_0000_FFFF;
    let x = (x | (x << 8)) & 0x00FF_00FF_00FF_00FF;
    let lead = ((x >> 6) & 0x0003_0003_0003_0003) | 0x00C0_00C0_00C0_00C0;
    let tail = ((x & 0x003F_003F_003F_003F) << 8) | 0x8000_8000_8000_8000;
    lead | tail
}

/// The UTF-8 of each latin-1 character as a little-endian pair: U+0080..U+00FF are
/// `110000xx 10xxxxxx`; an ASCII byte is itself, followed by a placeholder.
static LATIN1_UTF8: [u16; 256] = {
    let mut table = [0u16; 256];
    let mut b = 0;
    while b < 256 {
        table[b] = if b < 0x80 {
            b as u16
        } else {
            (0xC0 | (b >> 6) as u16) | ((0x80 | (b & 0x3F)) as u16) << 8
        };
        b += 1;
    }
    table
};

/// How many bytes are >= 0x80 (a word at a time: their top bits, counted).
fn high_bytes(bytes: &[u8]) -> usize {
    let whole = bytes.len() / 8 * 8;
    let mut total = bytes[whole..].iter().filter(|&&b| b >= 0x80).count();
    // Eight byte-wide counters, one per lane of a word, added up before any can pass 255.
    for block in bytes[..whole].chunks(8 * 255) {
        let mut lanes = 0u64;
        for word in block.chunks_exact(8) {
            let w = u64::from_le_bytes(word.try_into().unwrap_or_default());
            lanes += (w >> 7) & 0x0101_0101_0101_0101;
        }
        let pairs = (lanes & 0x00FF_00FF_00FF_00FF) + ((lanes >> 8) & 0x00FF_00FF_00FF_00FF);
        total += (pairs.wrapping_mul(0x0001_0001_0001_0001) >> 48) as usize;
    }
    total
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn encodings_pick_short_and_long_forms() {
        let mut o = Out::for_input(0, 1 << 20);
        o.py2_str(b"ab");
        o.py3_bytes(&[0u8; 256][..]);
        o.put(255);
        o.put(256);
        o.get(1);
        o.text("é");
        o.global("copy_reg", "_reconstructor");
        let mut want = b"U\x02ab".to_vec();
        want.extend_from_slice(b"B\x00\x01\x00\x00");
        want.extend_from_slice(&[0u8; 256]);
        want.extend_from_slice(b"q\xffr\x00\x01\x00\x00h\x01X\x02\x00\x00\x00\xc3\xa9");
        want.extend_from_slice(b"ccopy_reg\n_reconstructor\n");
        assert_eq!(o.buf, want);
    }

    #[test]
    fn latin1_text_matches_char_by_char_decoding() {
        // Every byte value, in and out of eight-byte words, with ASCII runs between.
        let all: Vec<u8> = (0..=255u8).rev().chain(0..=255).collect();
        let mixed: Vec<u8> = (0..1000u32).map(|i| (i * 37 % 251) as u8).collect();
        // Every byte value at every place of a word whose other bytes are ASCII and high in
        // turn, so every word takes the mixed path (`all` has all-ASCII and all-high words);
        // 2 048 words, so the high bytes are counted over more than one block of 255.
        let placed: Vec<u8> = (0..=255u8)
            .flat_map(|v| {
                (0..8).flat_map(move |at| {
                    (0..8).map(move |j| match (j == at, j % 2) {
                        (true, _) => v,
                        (false, 0) => b'A',
                        (false, _) => 0xC3,
                    })
                })
            })
            .collect();
        let cases: [&[u8]; 11] = [
            b"",
            b"abc",
            b"\xff",
            b"a\x80b\xe9\xe9c",
            &[0x7f, 0x80, 0xbf, 0xc0],
            b"abcdefgh\xffabcdefghi\x80\x81\x82\x83\x84\x85\x86\x87\x88",
            &all,
            &mixed,
            &placed,
            // Past the short form with bytes after the last whole word, high and ASCII.
            &all[..511],
            &mixed[..997],
        ];
        for bytes in cases {
            let mut o = Out::for_input(0, 1 << 20);
            o.text_latin1(bytes);
            let text: String = bytes.iter().map(|&b| char::from(b)).collect();
            let mut want = Out::for_input(0, 1 << 20);
            want.text(&text);
            assert_eq!(o.buf, want.buf, "{bytes:?}");
        }
    }
}
