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
}

impl Ins {
    /// How many there are (a writer keeps one memo id per kind).
    pub(crate) const COUNT: usize = 6;
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
    /// run) is mispredicted half the time: eight bytes at a time, an all-ASCII word is copied
    /// and any other is encoded without branches (each byte writes both UTF-8 bytes where it
    /// goes, and the next one overwrites the second when it was ASCII).
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
        // 16 bytes of slack: a word writes up to 16 bytes from where the last one ended.
        self.buf.resize(start + n + 16, 0);
        let out = &mut self.buf[start..];
        let mut at = 0;
        let mut words = bytes.chunks_exact(8);
        for word in &mut words {
            let Some(dst) = out.get_mut(at..at + 16) else {
                break;
            };
            let w = u64::from_le_bytes([
                word[0], word[1], word[2], word[3], word[4], word[5], word[6], word[7],
            ]);
            if w & 0x8080_8080_8080_8080 == 0 {
                dst[..8].copy_from_slice(word);
                at += 8;
                continue;
            }
            // Where byte j goes: j plus the number of high bytes before it (a prefix sum of
            // the top bits, one per byte lane, by one multiplication), so the eight bytes are
            // placed independently. At most 7 + 7 = 14, so `p + 1` stays below 16.
            let high = (w >> 7) & 0x0101_0101_0101_0101;
            let before = high.wrapping_mul(0x0101_0101_0101_0101) - high;
            for (j, &b) in word.iter().enumerate() {
                let p = j + ((before >> (8 * j)) & 0xff) as usize;
                // U+0080..U+00FF in UTF-8: 110000xx 10xxxxxx.
                dst[p & 15] = if b >= 0x80 { 0xC0 | (b >> 6) } else { b };
                dst[(p + 1) & 15] = 0x80 | (b & 0x3F);
            }
            at += 8 + high.count_ones() as usize;
        }
        for &b in words.remainder() {
            if b < 0x80 {
                out[at] = b;
                at += 1;
            } else {
                out[at] = 0xC0 | (b >> 6);
                out[at + 1] = 0x80 | (b & 0x3F);
                at += 2;
            }
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
        }
    }

    /// GLOBAL `module\nname\n` (the caller checked both are newline-free ASCII).
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

/// How many bytes are >= 0x80 (a word at a time: their top bits, counted).
fn high_bytes(bytes: &[u8]) -> usize {
    let words = bytes.chunks_exact(8);
    let tail = words.remainder().iter().filter(|&&b| b >= 0x80).count();
    words
        .map(|w| {
            let w = u64::from_le_bytes([w[0], w[1], w[2], w[3], w[4], w[5], w[6], w[7]]);
            (w & 0x8080_8080_8080_8080).count_ones() as usize
        })
        .sum::<usize>()
        + tail
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
        let cases: [&[u8]; 8] = [
            b"",
            b"abc",
            b"\xff",
            b"a\x80b\xe9\xe9c",
            &[0x7f, 0x80, 0xbf, 0xc0],
            b"abcdefgh\xffabcdefghi\x80\x81\x82\x83\x84\x85\x86\x87\x88",
            &all,
            &mixed,
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
