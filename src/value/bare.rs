//! Strings the client libraries store without pickling ("bare" values), converted for their
//! reader by the route's text policies, when the route names the library's text flag.
//!
//! python-memcached and pymemcache store a value of exactly type `str`/`bytes`/`unicode`
//! unpickled and mark its type in the flags: a py2 `str` and a py3 `bytes` get no bit, text
//! (`unicode`, py3 `str`) gets the text bit (`_FLAG_TEXT` / `FLAG_TEXT`, 16) and is sent as
//! UTF-8; the zlib bit may come on top of either. Reading, both return the bytes for no bit and
//! `value.decode('utf8')` for the text bit. So a bare value changes type for its reader by its
//! flags alone:
//! - a Python 2 reader under `py2_text = utf8` gets text as a UTF-8 `str`: the text bit is
//!   cleared, the bytes stay (as that policy does inside pickles);
//! - a Python 3 reader gets a value with no bit as its `py3_str` policy makes a py2 `str`:
//!   `utf8-or-bytes` sets the text bit when the bytes are valid UTF-8, `latin1` always sets it
//!   (re-encoding the bytes as UTF-8), `bytes` leaves it. A compressed one made text is served
//!   inflated, without the zlib bit: pymemcache's `pickle_serde` (Django's `PyMemcacheCache`)
//!   never inflates, and decodes whatever has the text bit as UTF-8, so text still compressed
//!   would raise `UnicodeDecodeError` in it, where the stored value reads back as bytes.
//!
//! The flags cannot tell a py2 `str` from a py3 `bytes`, so a route that names its text flag
//! also turns Python 3's own `bytes` values into text for Python 3 readers: that is why the
//! text flag is off (0) unless configured. pylibmc uses bit 16 for `bool`: never set the text
//! flag on routes pylibmc writes to. Sans-IO.
use std::borrow::Cow;

use bytes::Bytes;

use super::compress;
use super::flags::{Flags, ValueFlags};
use super::Refusal;
use crate::pickle::strings::{self, Py3Form};
use crate::pickle::{Policy, Py2Text, Py3Str, Runtime};

/// A bare value converted for its reader: new flags, and new bytes when they change too.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BareConversion {
    /// The flags the reader is served.
    pub flags: Flags,
    /// The bytes the reader is served, when not the stored ones.
    pub data: Option<Bytes>,
}

/// Converts a bare string value for `policy.target`: `Ok(None)` when it is served as stored
/// (text flag off, not a bare string by its flags, or already what the policy makes of it).
/// A compressed value a Python 3 reader could get as text is inflated (up to `max_inflated`)
/// to be judged; one that does not inflate is `Err` with the reason, and is served as stored.
pub fn convert_bare(
    data: &Bytes,
    flags: Flags,
    vf: ValueFlags,
    policy: &Policy,
    max_inflated: usize,
) -> Result<Option<BareConversion>, Refusal> {
    let text = vf.text_flag;
    if text == 0 {
        return Ok(None);
    }
    // Only the words these libraries write for a string: the string bit, maybe zlib, nothing
    // else (an integer, a pickle or an unknown bit is no bare string).
    let zlib = vf.zlib_flag;
    let compressed = zlib != 0 && flags.0 & zlib != 0;
    match policy.target {
        Runtime::Py2 => {
            let is_text = flags.0 & text != 0 && flags.0 & !(text | zlib) == 0;
            Ok(
                (is_text && policy.py2_text == Py2Text::Utf8).then_some(BareConversion {
                    flags: Flags(flags.0 & !text),
                    data: None,
                }),
            )
        }
        Runtime::Py3 => {
            if flags.0 & !zlib != 0 || policy.py3_str == Py3Str::Bytes {
                return Ok(None);
            }
            if !compressed {
                return Ok(py3_text(data, policy.py3_str).map(|new| BareConversion {
                    flags: Flags(flags.0 | text),
                    data: new,
                }));
            }
            let inflated = Bytes::from(compress::inflate(data, max_inflated)?);
            // Served inflated (see the module's doc), so new bytes even when the text is not.
            Ok(
                py3_text(&inflated, policy.py3_str).map(|new| BareConversion {
                    flags: Flags(flags.0 & !zlib | text),
                    data: Some(new.unwrap_or(inflated)),
                }),
            )
        }
    }
}

/// What a py2 `str` of these bytes becomes inside a pickle for a Python 3 reader under
/// `py3_str`: `None` when it stays bytes, `Some(None)` when it is text of these very bytes,
/// `Some(Some(utf8))` when it is text of other bytes.
fn py3_text(raw: &[u8], py3_str: Py3Str) -> Option<Option<Bytes>> {
    match strings::py3_form(raw, py3_str) {
        Py3Form::Bytes => None,
        Py3Form::Keep | Py3Form::Text(Cow::Borrowed(_)) => Some(None),
        Py3Form::Text(Cow::Owned(text)) => Some(Some(Bytes::from(text))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vf(text_flag: u32) -> ValueFlags {
        ValueFlags {
            text_flag,
            ..ValueFlags::default()
        }
    }

    fn policy(target: Runtime, py2_text: Py2Text, py3_str: Py3Str) -> Policy {
        let mut p = Policy::for_target(target);
        p.py2_text = py2_text;
        p.py3_str = py3_str;
        p
    }

    fn convert(data: &[u8], flags: u32, text_flag: u32, p: &Policy) -> Option<(u32, Vec<u8>)> {
        let data = Bytes::copy_from_slice(data);
        convert_bare(&data, Flags(flags), vf(text_flag), p, 1 << 20)
            .unwrap()
            .map(|c| (c.flags.0, c.data.map_or(data.to_vec(), |d| d.to_vec())))
    }

    #[test]
    fn nothing_changes_with_the_text_flag_off() {
        for target in [Runtime::Py2, Runtime::Py3] {
            for py3_str in [Py3Str::Utf8OrBytes, Py3Str::Latin1] {
                let p = policy(target, Py2Text::Utf8, py3_str);
                for flags in [0, 8, 16, 24] {
                    assert_eq!(convert(b"\xc3\xa9", flags, 0, &p), None, "{flags}");
                }
            }
        }
    }

    #[test]
    fn python2_readers_get_text_as_utf8_str_under_utf8_only() {
        let utf8 = policy(Runtime::Py2, Py2Text::Utf8, Py3Str::default());
        let keep = policy(Runtime::Py2, Py2Text::Keep, Py3Str::default());
        assert_eq!(
            convert(b"\xc3\xa9", 16, 16, &utf8),
            Some((0, b"\xc3\xa9".to_vec()))
        );
        // Compressed text keeps its zlib bit and bytes.
        let z = compress::deflate(b"\xc3\xa9");
        assert_eq!(convert(&z, 24, 16, &utf8), Some((8, z.clone())));
        assert_eq!(convert(b"\xc3\xa9", 16, 16, &keep), None);
        // Not bare text: no bit, an integer, a pickle, an unknown bit beside the text bit.
        for flags in [0, 2, 1 | 16, 16 | 64] {
            assert_eq!(convert(b"5", flags, 16, &utf8), None, "{flags}");
        }
    }

    #[test]
    fn python3_readers_get_no_bit_values_by_py3_str() {
        let utf8 = policy(Runtime::Py3, Py2Text::default(), Py3Str::Utf8OrBytes);
        let latin1 = policy(Runtime::Py3, Py2Text::default(), Py3Str::Latin1);
        let bytes = policy(Runtime::Py3, Py2Text::default(), Py3Str::Bytes);
        assert_eq!(
            convert(b"\xc3\xa9t\xc3\xa9", 0, 16, &utf8),
            Some((16, b"\xc3\xa9t\xc3\xa9".to_vec()))
        );
        assert_eq!(convert(b"", 0, 16, &utf8), Some((16, Vec::new())));
        assert_eq!(convert(b"\xff", 0, 16, &utf8), None);
        assert_eq!(
            convert(b"\xff", 0, 16, &latin1),
            Some((16, "\u{ff}".as_bytes().to_vec()))
        );
        // `latin1` decodes every py2 `str` as latin-1, valid UTF-8 or not, as inside pickles.
        assert_eq!(
            convert(b"\xc3\xa9", 0, 16, &latin1),
            Some((16, "\u{c3}\u{a9}".as_bytes().to_vec()))
        );
        assert_eq!(convert(b"ab", 0, 16, &latin1), Some((16, b"ab".to_vec())));
        assert_eq!(convert(b"ab", 0, 16, &bytes), None);
        // Already text, an integer, a pickle: as stored.
        for flags in [16, 2, 4, 1] {
            assert_eq!(convert(b"5", flags, 16, &utf8), None, "{flags}");
        }
    }

    #[test]
    fn python3_readers_of_compressed_values_are_judged_and_served_inflated() {
        let utf8 = policy(Runtime::Py3, Py2Text::default(), Py3Str::Utf8OrBytes);
        let latin1 = policy(Runtime::Py3, Py2Text::default(), Py3Str::Latin1);
        let text = "été".repeat(50);
        let z = compress::deflate(text.as_bytes());
        assert_eq!(convert(&z, 8, 16, &utf8), Some((16, text.into_bytes())));
        let binary = compress::deflate(&[0xff; 100]);
        assert_eq!(convert(&binary, 8, 16, &utf8), None);
        assert_eq!(
            convert(&binary, 8, 16, &latin1),
            Some((16, "\u{ff}".repeat(100).into_bytes()))
        );
        let ascii = compress::deflate(&[b'a'; 300]);
        assert_eq!(convert(&ascii, 8, 16, &latin1), Some((16, vec![b'a'; 300])));
        // Not a zlib stream, or past the inflate bound: as stored, with the reason.
        let p = &utf8;
        let judge = |data: &[u8], max| {
            convert_bare(&Bytes::copy_from_slice(data), Flags(8), vf(16), p, max)
        };
        assert_eq!(judge(b"not zlib", 1 << 20), Err(Refusal::ZlibCorrupt));
        assert_eq!(judge(&ascii, 100), Err(Refusal::InflateTooLarge));
        // Python 2 readers' text keeps its compressed bytes (their client inflates), so
        // nothing is inflated for them, and no-bit values for Python 3 under `bytes` neither.
        let not_zlib = Bytes::from_static(b"not zlib");
        let py2 = policy(Runtime::Py2, Py2Text::Utf8, Py3Str::default());
        assert_eq!(
            convert_bare(&not_zlib, Flags(24), vf(16), &py2, 1 << 20),
            Ok(Some(BareConversion {
                flags: Flags(8),
                data: None
            }))
        );
        let keep = policy(Runtime::Py3, Py2Text::default(), Py3Str::Bytes);
        assert_eq!(
            convert_bare(&not_zlib, Flags(8), vf(16), &keep, 1 << 20),
            Ok(None)
        );
    }
}
