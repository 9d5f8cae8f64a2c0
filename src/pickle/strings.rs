//! Py2 `str` / py3 `str` / `bytes`: decoding the textual argument forms of protocol 0
//! (STRING's `repr()` escapes, UNICODE's raw-unicode-escape) and deciding what a py2 `str`
//! becomes for a Python 3 reader under [`Py3Str`].
//!
//! Pure functions over byte slices; no pickle state here.

use std::borrow::Cow;

use super::opcode;
use super::reader::Op;
use super::Py3Str;

/// Decodes STRING's argument (quotes included) as CPython 3 does: strip the outer quotes, then
/// `codecs.escape_decode` (`\\ \' \" \a \b \f \n \r \t \v`, `\ooo`, `\xhh`; other escapes stay
/// as written). `None` when CPython would raise (bad `\x`, trailing backslash, bad quoting).
pub(crate) fn decode_string_escape(quoted: &[u8]) -> Option<Cow<'_, [u8]>> {
    if quoted.len() < 2
        || quoted[0] != quoted[quoted.len() - 1]
        || !matches!(quoted[0], b'\'' | b'"')
    {
        return None;
    }
    let s = &quoted[1..quoted.len() - 1];
    if !s.contains(&b'\\') {
        return Some(Cow::Borrowed(s));
    }
    let mut out = Vec::with_capacity(s.len());
    let mut i = 0;
    while i < s.len() {
        let b = s[i];
        if b != b'\\' {
            out.push(b);
            i += 1;
            continue;
        }
        let e = *s.get(i + 1)?; // "Trailing \ in string"
        i += 2;
        match e {
            b'\n' => {}
            b'\\' | b'\'' | b'"' => out.push(e),
            b'a' => out.push(7),
            b'b' => out.push(8),
            b'f' => out.push(12),
            b'n' => out.push(b'\n'),
            b'r' => out.push(b'\r'),
            b't' => out.push(b'\t'),
            b'v' => out.push(11),
            b'0'..=b'7' => {
                let mut v = u32::from(e - b'0');
                for _ in 0..2 {
                    match s.get(i) {
                        Some(&d @ b'0'..=b'7') => {
                            v = v * 8 + u32::from(d - b'0');
                            i += 1;
                        }
                        _ => break,
                    }
                }
                out.push((v & 0xff) as u8);
            }
            b'x' => {
                let hi = hex(*s.get(i)?)?;
                let lo = hex(*s.get(i + 1)?)?;
                out.push(hi * 16 + lo);
                i += 2;
            }
            other => {
                out.push(b'\\');
                out.push(other);
            }
        }
    }
    Some(Cow::Owned(out))
}

fn hex(b: u8) -> Option<u8> {
    (b as char).to_digit(16).map(|d| d as u8)
}

/// Decodes UNICODE's raw-unicode-escape argument: bytes are latin-1 code points, except
/// `\uXXXX` / `\UXXXXXXXX` after an odd run of backslashes. `None` when CPython would raise or
/// the text holds a lone surrogate (not representable as UTF-8).
pub(crate) fn decode_raw_unicode_escape(line: &[u8]) -> Option<String> {
    let mut out = String::with_capacity(line.len());
    let mut i = 0;
    while i < line.len() {
        let b = line[i];
        if b != b'\\' {
            out.push(char::from(b));
            i += 1;
            continue;
        }
        let run = line[i..].iter().take_while(|&&c| c == b'\\').count();
        let after = line.get(i + run).copied();
        if run % 2 == 1 && matches!(after, Some(b'u' | b'U')) {
            out.extend(std::iter::repeat('\\').take(run - 1));
            let width = if after == Some(b'u') { 4 } else { 8 };
            let digits = line.get(i + run + 1..i + run + 1 + width)?;
            let mut v: u32 = 0;
            for &d in digits {
                v = v.checked_mul(16)? + u32::from(hex(d)?);
            }
            out.push(char::from_u32(v)?);
            i += run + 1 + width;
        } else {
            out.extend(std::iter::repeat('\\').take(run));
            i += run;
        }
    }
    Some(out)
}

/// The bytes of a py2 `str` op (STRING, BINSTRING, SHORT_BINSTRING).
pub(crate) fn py2_str_bytes<'a>(op: &Op<'a>) -> Option<Cow<'a, [u8]>> {
    match op.code {
        opcode::STRING => decode_string_escape(op.arg),
        opcode::BINSTRING | opcode::SHORT_BINSTRING => Some(Cow::Borrowed(op.arg)),
        _ => None,
    }
}

/// The text of a unicode op (UNICODE, BINUNICODE, SHORT_BINUNICODE, BINUNICODE8) as UTF-8.
/// `None` when the payload does not decode (CPython would raise, or a lone surrogate).
pub(crate) fn text_utf8<'a>(op: &Op<'a>) -> Option<Cow<'a, str>> {
    match op.code {
        opcode::UNICODE => decode_raw_unicode_escape(op.arg).map(Cow::Owned),
        opcode::BINUNICODE | opcode::SHORT_BINUNICODE | opcode::BINUNICODE8 => {
            std::str::from_utf8(op.arg).ok().map(Cow::Borrowed)
        }
        _ => None,
    }
}

/// What a py2 `str` becomes for a Python 3 reader.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Py3Form<'a> {
    /// Leave the op as written (ASCII text loads as `str` with encoding='ASCII').
    Keep,
    /// A py3 `str` with this text.
    Text(Cow<'a, str>),
    /// A py3 `bytes` object.
    Bytes,
}

/// Whether the first non-ASCII character of `bytes` is well-formed UTF-8 (a quick no for
/// binary data, whose first high byte mostly is not; a yes still needs the whole check).
#[inline(always)]
fn utf8_start(bytes: &[u8]) -> bool {
    let Some(i) = bytes.iter().position(|&b| b >= 0x80) else {
        return true;
    };
    let cont = |k: usize| bytes.get(i + k).is_some_and(|&b| b & 0xc0 == 0x80);
    match bytes[i] {
        0xc2..=0xdf => cont(1),
        0xe0..=0xef => cont(1) && cont(2),
        0xf0..=0xf4 => cont(1) && cont(2) && cont(3),
        _ => false,
    }
}

/// Decides the py3 form of a py2 `str` holding `bytes` under `policy` (binary state excluded:
/// the caller makes that `bytes` unconditionally).
pub(crate) fn py3_form(bytes: &[u8], policy: Py3Str) -> Py3Form<'_> {
    match policy {
        Py3Str::Bytes => Py3Form::Bytes,
        _ if bytes.is_ascii() => Py3Form::Keep,
        _ => py3_form_non_ascii(bytes, policy),
    }
}

/// [`py3_form`] of `bytes` known to hold a byte >= 0x80 (kept out of line: inlined into the
/// fast path's validating loop it slowed every value, strings or not).
#[inline(never)]
pub(crate) fn py3_form_non_ascii(bytes: &[u8], policy: Py3Str) -> Py3Form<'_> {
    match policy {
        Py3Str::Bytes => Py3Form::Bytes,
        Py3Str::Utf8OrBytes if !utf8_start(bytes) => Py3Form::Bytes,
        Py3Str::Utf8OrBytes => match std::str::from_utf8(bytes) {
            Ok(s) => Py3Form::Text(Cow::Borrowed(s)),
            Err(_) => Py3Form::Bytes,
        },
        Py3Str::Latin1 => Py3Form::Text(Cow::Owned(bytes.iter().map(|&b| char::from(b)).collect())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn utf8_start_never_says_no_to_valid_utf8() {
        // Every 1-3 byte string after an ASCII prefix, and every 4-byte lead with sample tails.
        let mut buf = Vec::new();
        let mut check = |tail: &[u8]| {
            buf.clear();
            buf.extend_from_slice(b"ab");
            buf.extend_from_slice(tail);
            let valid = std::str::from_utf8(&buf).is_ok();
            assert!(!valid || utf8_start(&buf), "{buf:x?}");
            if tail
                .first()
                .is_some_and(|&b| !(0xc2..=0xf4).contains(&b) && b >= 0x80)
            {
                assert!(!utf8_start(&buf), "{buf:x?}");
            }
        };
        for a in 0..=255u8 {
            check(&[a]);
            for b in 0..=255u8 {
                check(&[a, b]);
                for c in [0x00, 0x7f, 0x80, 0x9f, 0xa0, 0xbf, 0xc0, 0xff] {
                    check(&[a, b, c]);
                    check(&[a, b, c, 0x80]);
                    check(&[a, b, c, 0x41]);
                }
            }
        }
    }

    #[test]
    fn string_escapes_decode_like_codecs_escape_decode() {
        let d = |s: &[u8]| decode_string_escape(s).map(|c| c.into_owned());
        assert_eq!(d(b"'abc'"), Some(b"abc".to_vec()));
        // py2 repr('\xe7\x88\xb1') as cPickle protocol 0 writes it
        assert_eq!(d(br"'\xe7\x88\xb1'"), Some(vec![0xe7, 0x88, 0xb1]));
        assert_eq!(d(br#""it's""#), Some(b"it's".to_vec()));
        assert_eq!(d(br"'a\'b\\c\n\t\r'"), Some(b"a'b\\c\n\t\r".to_vec()));
        assert_eq!(d(br"'\0\101\7777'"), Some(vec![0, 0x41, 0xff, b'7']));
        assert_eq!(d(br"'\q'"), Some(b"\\q".to_vec()));
        assert_eq!(d(br"'\x4'"), None);
        assert_eq!(d(br"'\'"), None);
        assert_eq!(d(b"'abc\""), None);
        assert_eq!(d(b"'"), None);
    }

    #[test]
    fn raw_unicode_escape_decodes_like_cpython() {
        let d = decode_raw_unicode_escape;
        assert_eq!(d(b"abc").as_deref(), Some("abc"));
        // py3 pickle protocol 0 of '\u7231\xe7': chars < 256 as latin-1 bytes
        assert_eq!(d(b"\\u7231\xe7").as_deref(), Some("\u{7231}\u{e7}"));
        assert_eq!(d(b"\\U0001f600").as_deref(), Some("\u{1f600}"));
        assert_eq!(d(b"\\\\u0041").as_deref(), Some("\\\\u0041"));
        assert_eq!(d(b"a\\b").as_deref(), Some("a\\b"));
        assert_eq!(d(b"\\u12"), None);
        assert_eq!(d(b"\\ud800"), None);
    }

    #[test]
    fn py3_form_follows_policy() {
        assert_eq!(py3_form(b"abc", Py3Str::Utf8OrBytes), Py3Form::Keep);
        assert_eq!(py3_form(b"abc", Py3Str::Bytes), Py3Form::Bytes);
        assert_eq!(py3_form(b"abc", Py3Str::Latin1), Py3Form::Keep);
        assert_eq!(
            py3_form("爱".as_bytes(), Py3Str::Utf8OrBytes),
            Py3Form::Text("爱".into())
        );
        assert_eq!(py3_form(b"\xff", Py3Str::Utf8OrBytes), Py3Form::Bytes);
        assert_eq!(py3_form(b"\xe7", Py3Str::Latin1), Py3Form::Text("ç".into()));
    }
}
