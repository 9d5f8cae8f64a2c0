//! Emits pickle opcodes into one output buffer, sized once from the input length.
//!
//! Only encodings live here (how a py2 `str`, a py3 `str`, a `bytes`, a memo PUT/GET or a GLOBAL
//! is written); the rewriters decide what to write.

use super::opcode as op;

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
    /// BINUNICODE, UTF-8, encoded straight into the output (ASCII runs copied as they are).
    pub(crate) fn text_latin1(&mut self, bytes: &[u8]) {
        let high = bytes.iter().filter(|&&b| b >= 0x80).count();
        let n = bytes.len() + high;
        self.buf.push(op::BINUNICODE);
        self.buf
            .extend_from_slice(&u32::try_from(n).unwrap_or(u32::MAX).to_le_bytes());
        if high == 0 {
            self.buf.extend_from_slice(bytes);
            return;
        }
        self.buf.reserve(n);
        let mut rest = bytes;
        while !rest.is_empty() {
            let ascii = rest.iter().position(|&b| b >= 0x80).unwrap_or(rest.len());
            self.buf.extend_from_slice(&rest[..ascii]);
            rest = &rest[ascii..];
            let high = rest.iter().position(|&b| b < 0x80).unwrap_or(rest.len());
            for &b in &rest[..high] {
                // U+0080..U+00FF in UTF-8: 110000xx 10xxxxxx.
                self.buf
                    .extend_from_slice(&[0xC0 | (b >> 6), 0x80 | (b & 0x3F)]);
            }
            rest = &rest[high..];
        }
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

    /// GLOBAL `module\nname\n` (the caller checked both are newline-free ASCII).
    pub(crate) fn global(&mut self, module: &str, name: &str) {
        self.buf.push(op::GLOBAL);
        self.buf.extend_from_slice(module.as_bytes());
        self.buf.push(b'\n');
        self.buf.extend_from_slice(name.as_bytes());
        self.buf.push(b'\n');
    }
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
        let cases: [&[u8]; 5] = [
            b"",
            b"abc",
            b"\xff",
            b"a\x80b\xe9\xe9c",
            &[0x7f, 0x80, 0xbf, 0xc0],
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
