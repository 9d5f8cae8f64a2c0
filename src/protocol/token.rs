//! Command-line framing and tokenizing exactly as memcached 1.6.18 does it (`proto_text.c`
//! `try_read_command_ascii`, `tokenize_command`, `util.c` `safe_strto*`). Pure functions over
//! `&[u8]`; no I/O, no allocation beyond the token list.
//!
//! memcached quirks reproduced here on purpose, each checked against the real server:
//! - a line ends at `\n`; one `\r` before it is dropped only if the line is longer than 1 byte;
//! - the line is cut at its first NUL byte (`strlen`), the rest of the line is ignored;
//! - tokens are split on `' '` only (tabs and control bytes are part of keys);
//! - at most 23 tokens are split, the rest of the line stays one unsplit remainder.

/// memcached's `MAX_TOKENS`: 23 real tokens plus the terminal (empty) token.
pub(crate) const MAX_TOKENS: usize = 24;

/// One request line, tokenized like memcached's `tokenize_command` (no allocation).
#[derive(Debug, Clone)]
pub(crate) struct Line {
    /// Byte ranges (into the buffer given to [`Line::tokenize`]) of the split tokens.
    ranges: [(usize, usize); MAX_TOKENS - 1],
    /// How many of `ranges` are used.
    n: usize,
    /// Start of the unsplit remainder when the line had more than 23 tokens.
    pub rest: Option<usize>,
    /// End of the line content (after CR stripping and NUL truncation).
    pub end: usize,
}

impl Line {
    /// Tokenizes `buf[start..end]`, cutting at the first NUL like `strlen` does.
    pub fn tokenize(buf: &[u8], start: usize, end: usize) -> Line {
        let end = match buf[start..end].iter().position(|&b| b == 0) {
            Some(nul) => start + nul,
            None => end,
        };
        let mut line = Line {
            ranges: [(0, 0); MAX_TOKENS - 1],
            n: 0,
            rest: None,
            end,
        };
        let mut s = start;
        let mut e = start;
        while e < end {
            if buf[e] == b' ' {
                if s != e {
                    line.ranges[line.n] = (s, e);
                    line.n += 1;
                    if line.n == MAX_TOKENS - 1 {
                        e += 1;
                        line.rest = (e < end).then_some(e);
                        return line;
                    }
                }
                s = e + 1;
            }
            e += 1;
        }
        if s != e {
            line.ranges[line.n] = (s, e);
            line.n += 1;
        }
        line
    }

    /// Byte ranges of the split tokens.
    pub fn tokens(&self) -> &[(usize, usize)] {
        &self.ranges[..self.n]
    }

    /// memcached's `ntokens`: split tokens plus the terminal token.
    pub fn ntokens(&self) -> usize {
        self.n + 1
    }

    /// The bytes of token `i` (empty when `i` is past the last token, like the terminal token).
    pub fn token<'a>(&self, buf: &'a [u8], i: usize) -> &'a [u8] {
        match self.tokens().get(i) {
            Some(&(s, e)) => &buf[s..e],
            None => &[],
        }
    }

    /// True when the second-to-last token (memcached's `tokens[ntokens - 2]`) is `noreply`.
    pub fn noreply(&self, buf: &[u8]) -> bool {
        // With a remainder, tokens[ntokens-2] is the 23rd split token.
        self.tokens()
            .last()
            .is_some_and(|&(s, e)| &buf[s..e] == b"noreply")
    }
}

/// Every space-separated token of `buf[start..end]` (no limit): what memcached's get loop sees
/// after re-tokenizing the remainder chunk by chunk.
pub(crate) fn all_tokens(buf: &[u8], start: usize, end: usize) -> Vec<(usize, usize)> {
    buf[start..end]
        .split(|&b| b == b' ')
        .scan(start, |pos, tok| {
            let s = *pos;
            *pos += tok.len() + 1;
            Some((s, s + tok.len()))
        })
        .filter(|&(s, e)| s != e)
        .collect()
}

/// C `isspace` in the "C" locale.
fn is_space(b: u8) -> bool {
    matches!(b, b' ' | b'\t' | b'\n' | 0x0b | 0x0c | b'\r')
}

/// What `strtoull`/`strtol` read: sign, magnitude (None on overflow), and whether the text
/// after the digits is acceptable to memcached (`isspace(*endptr) || *endptr == '\0'`).
fn scan(tok: &[u8]) -> Option<(bool, Option<u64>)> {
    let mut i = 0;
    while i < tok.len() && is_space(tok[i]) {
        i += 1;
    }
    let mut neg = false;
    if i < tok.len() && (tok[i] == b'+' || tok[i] == b'-') {
        neg = tok[i] == b'-';
        i += 1;
    }
    let digits_start = i;
    let mut mag: Option<u64> = Some(0);
    while i < tok.len() && tok[i].is_ascii_digit() {
        mag = mag
            .and_then(|m| m.checked_mul(10))
            .and_then(|m| m.checked_add(u64::from(tok[i] - b'0')));
        i += 1;
    }
    if i == digits_start {
        return None; // str == endptr
    }
    if i < tok.len() && !is_space(tok[i]) {
        return None;
    }
    Some((neg, mag))
}

/// memcached `safe_strtoull`: decimal u64, leading whitespace allowed, a negative number
/// rejected only when it wraps to a value with the top bit set (so `-0` is 0).
pub(crate) fn strtoull(tok: &[u8]) -> Option<u64> {
    let (neg, mag) = scan(tok)?;
    let mag = mag?; // ERANGE
    let v = if neg { mag.wrapping_neg() } else { mag };
    if neg && (v as i64) < 0 {
        return None;
    }
    Some(v)
}

/// memcached `safe_strtoul`: as [`strtoull`] (unsigned long is 64-bit), then truncated to u32.
pub(crate) fn strtoul(tok: &[u8]) -> Option<u32> {
    strtoull(tok).map(|v| v as u32)
}

/// memcached `safe_strtol`: decimal `long` (ERANGE outside i64), then truncated to i32.
pub(crate) fn strtol(tok: &[u8]) -> Option<i32> {
    let (neg, mag) = scan(tok)?;
    let mag = mag?;
    let v: i64 = if neg {
        if mag > 1u64 << 63 {
            return None;
        }
        (mag as i64).wrapping_neg()
    } else {
        i64::try_from(mag).ok()?
    };
    Some(v as i32)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_follow_memcached() {
        type Case = (&'static [u8], Option<u64>, Option<u32>, Option<i32>);
        let cases: &[Case] = &[
            (b"0", Some(0), Some(0), Some(0)),
            (b"+1", Some(1), Some(1), Some(1)),
            (b"01", Some(1), Some(1), Some(1)),
            (b"\t1", Some(1), Some(1), Some(1)),
            (b"1\t", Some(1), Some(1), Some(1)),
            (b"1x", None, None, None),
            (b"", None, None, None),
            (b"-", None, None, None),
            (b"-0", Some(0), Some(0), Some(0)),
            (b"-1", None, None, Some(-1)),
            (b"4294967296", Some(1 << 32), Some(0), Some(0)),
            (b"2147483648", Some(1 << 31), Some(1 << 31), Some(i32::MIN)),
            (
                b"18446744073709551615",
                Some(u64::MAX),
                Some(u32::MAX),
                None,
            ),
            (b"18446744073709551616", None, None, None),
            (b"-9223372036854775808", None, None, Some(0)),
        ];
        for &(tok, ull, ul, l) in cases {
            let t = String::from_utf8_lossy(tok);
            assert_eq!(strtoull(tok), ull, "strtoull {t:?}");
            assert_eq!(strtoul(tok), ul, "strtoul {t:?}");
            assert_eq!(strtol(tok), l, "strtol {t:?}");
        }
    }

    #[test]
    fn tokenizer_matches_memcached() {
        let buf = b"get  a\tb  c ";
        let line = Line::tokenize(buf, 0, buf.len());
        let toks: Vec<&[u8]> = (0..line.tokens().len())
            .map(|i| line.token(buf, i))
            .collect();
        assert_eq!(toks, vec![&b"get"[..], b"a\tb", b"c"]);
        assert_eq!(line.rest, None);

        let buf = b"get k\0zz yy";
        let line = Line::tokenize(buf, 0, buf.len());
        assert_eq!(line.ntokens(), 3);

        let mut long = b"get".to_vec();
        for _ in 0..30 {
            long.extend_from_slice(b" k");
        }
        let line = Line::tokenize(&long, 0, long.len());
        assert_eq!(line.ntokens(), MAX_TOKENS);
        let rest = line.rest.expect("remainder");
        assert_eq!(all_tokens(&long, rest, long.len()).len(), 8);
    }
}

/// Writes `n` in decimal without allocating (compose paths run per request).
pub(crate) fn put_u64(dst: &mut bytes::BytesMut, mut n: u64) {
    let mut digits = [0u8; 20];
    let mut i = digits.len();
    loop {
        i -= 1;
        digits[i] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    dst.extend_from_slice(&digits[i..]);
}

/// Writes `n` in decimal, `-` first when negative: an exptime or delay as memcached's
/// `safe_strtol` read it, whatever padding the client's token had.
pub(crate) fn put_i32(dst: &mut bytes::BytesMut, n: i32) {
    if n < 0 {
        dst.extend_from_slice(b"-");
    }
    put_u64(dst, u64::from(n.unsigned_abs()));
}

#[cfg(test)]
mod put_tests {
    #[test]
    fn put_u64_is_decimal() {
        for n in [0u64, 7, 10, 12345, u64::MAX] {
            let mut b = bytes::BytesMut::new();
            super::put_u64(&mut b, n);
            assert_eq!(&b[..], n.to_string().as_bytes());
        }
    }

    #[test]
    fn put_i32_is_decimal() {
        for n in [0i32, 5, -1, i32::MAX, i32::MIN] {
            let mut b = bytes::BytesMut::new();
            super::put_i32(&mut b, n);
            assert_eq!(&b[..], n.to_string().as_bytes());
        }
    }
}
