//! `array.array` at protocols 3-5, for a Python 2 reader: CPython 3 pickles it as
//! `array._array_reconstructor(array.array, typecode, mformat_code, items_bytes)`, a function
//! Python 2 lacks, and at protocols 0-2 as `array.array(typecode, [item, ...])`
//! (`Modules/arraymodule.c`, `array_array___reduce_ex___impl`: "It is necessary to use a list
//! representation for Python 2.x compatible pickle protocol"). This module knows the machine
//! formats and writes the items of the second form from the bytes of the first; `scan/calls.rs`
//! decides which calls are converted and `downgrade.rs` writes them.
//!
//! Pure: no I/O, no allocation beyond the output buffer.

use super::opcode as op;
use super::writer::Out;

/// Items per MARK ... APPENDS batch, as CPython's `_BATCHSIZE` (so the output's stack stays
/// small whatever the array's length).
pub(crate) const BATCH: usize = 1000;

/// How an item of a machine format is stored (`enum machine_format_code` and
/// `mformat_descriptors` in `Modules/arraymodule.c`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Item {
    /// An integer of `size` bytes.
    Int {
        size: usize,
        signed: bool,
        big: bool,
    },
    /// IEEE 754 binary32 (`4`) or binary64 (`8`).
    Float { size: usize, big: bool },
    /// A UTF-16 code unit (no surrogates: see [`check`]).
    Utf16 { big: bool },
    /// A UTF-32 code point.
    Utf32 { big: bool },
}

/// The item layout of `mformat` (0-21), or `None` for any other code.
fn item(mformat: u8) -> Option<Item> {
    let big = mformat % 2 == 1;
    Some(match mformat {
        // UNSIGNED_INT8 = 0, SIGNED_INT8 = 1 (one byte: no byte order).
        0 | 1 => Item::Int {
            size: 1,
            signed: mformat == 1,
            big: false,
        },
        // UNSIGNED_INT16_LE = 2 ... SIGNED_INT64_BE = 13: unsigned LE, BE, signed LE, BE.
        2..=13 => Item::Int {
            size: 2 << ((mformat - 2) / 4),
            signed: (mformat - 2) % 4 >= 2,
            big,
        },
        // IEEE_754_FLOAT_LE = 14, _BE = 15, IEEE_754_DOUBLE_LE = 16, _BE = 17.
        14..=17 => Item::Float {
            size: if mformat < 16 { 4 } else { 8 },
            big,
        },
        // UTF16_LE = 18, UTF16_BE = 19, UTF32_LE = 20, UTF32_BE = 21.
        18 | 19 => Item::Utf16 { big },
        20 | 21 => Item::Utf32 { big },
        _ => None?,
    })
}

/// Whether `mformat` is one a CPython writes for `typecode` on some platform
/// (`typecode_to_mformat_code`: the C type's size and the machine's byte order): `b` and `B`
/// one byte; `h`/`H` two; `i`/`I` four; `l`/`L` four (32-bit and Windows `long`) or eight;
/// `f` and `d` IEEE 754; `u` UTF-16 (2-byte `wchar_t`) or UTF-32. Typecodes Python 2's array
/// lacks (`q`, `Q`, `w`) and any other pairing are not converted: the item types would differ
/// from the array's own, and the rewriter does not guess which the reader would get.
pub(crate) fn accepts(typecode: u8, mformat: u8) -> bool {
    matches!(
        (typecode, mformat),
        (b'b', 1)
            | (b'B', 0)
            | (b'h', 4 | 5)
            | (b'H', 2 | 3)
            | (b'i', 8 | 9)
            | (b'I', 6 | 7)
            | (b'l', 8 | 9 | 12 | 13)
            | (b'L', 6 | 7 | 10 | 11)
            | (b'f', 14 | 15)
            | (b'd', 16 | 17)
            | (b'u', 18..=21)
    )
}

/// The bytes each item takes in `mformat`.
fn size(it: Item) -> usize {
    match it {
        Item::Int { size, .. } | Item::Float { size, .. } => size,
        Item::Utf16 { .. } => 2,
        Item::Utf32 { .. } => 4,
    }
}

/// Reads an unsigned integer of `chunk.len()` (<= 8) bytes.
fn uint(chunk: &[u8], big: bool) -> u64 {
    let fold = |acc: u64, &b: &u8| acc << 8 | u64::from(b);
    if big {
        chunk.iter().fold(0, fold)
    } else {
        chunk.iter().rev().fold(0, fold)
    }
}

/// The character a text item holds, if it is one the rewrite writes with certainty: a UTF-16
/// unit that is not a surrogate (a pair is one character where Python 3 decodes the bytes and
/// two items in the array that was pickled), or a UTF-32 Unicode scalar value.
fn char_of(it: Item, chunk: &[u8]) -> Option<char> {
    match it {
        Item::Utf16 { big } | Item::Utf32 { big } => {
            char::from_u32(u32::try_from(uint(chunk, big)).ok()?)
        }
        _ => None,
    }
}

/// Whether `bytes` holds whole items of `mformat` that [`write_items`] writes: its length is a
/// multiple of the item size (CPython 3 refuses the value otherwise: "bytes length not a
/// multiple of item size") and each text item is a character (see `char_of`).
pub(crate) fn check(mformat: u8, bytes: &[u8]) -> bool {
    let Some(it) = item(mformat) else {
        return false;
    };
    let n = size(it);
    if bytes.len() % n != 0 {
        return false;
    }
    match it {
        Item::Utf16 { .. } | Item::Utf32 { .. } => {
            bytes.chunks_exact(n).all(|c| char_of(it, c).is_some())
        }
        _ => true,
    }
}

/// Writes `array.tolist()` of the items in `bytes` as CPython 3's protocol-2 pickle does
/// (EMPTY_LIST, then MARK ... APPENDS per [`BATCH`] items, where CPython writes a one-item
/// list as the item and APPEND, which loads the same; numbers as `save_long` and `save_float`
/// write them, characters as BINUNICODE). Returns `false`, having written part of the list,
/// when [`check`] would refuse `bytes`.
pub(crate) fn write_items(out: &mut Out, mformat: u8, bytes: &[u8]) -> bool {
    let Some(it) = item(mformat) else {
        return false;
    };
    let n = size(it);
    if bytes.len() % n != 0 {
        return false;
    }
    out.byte(op::EMPTY_LIST);
    for batch in bytes.chunks(n * BATCH) {
        out.byte(op::MARK);
        for chunk in batch.chunks_exact(n) {
            match it {
                Item::Int { size, signed, big } => {
                    let raw = uint(chunk, big);
                    let v = match (signed, size) {
                        // Sign-extend from `size` bytes.
                        (true, s) if s < 8 => {
                            let shift = 64 - 8 * s as u32;
                            i128::from(((raw << shift) as i64) >> shift)
                        }
                        (true, _) => i128::from(raw as i64),
                        (false, _) => i128::from(raw),
                    };
                    out.int(v);
                }
                Item::Float { size: 4, big } => {
                    let bits = uint(chunk, big) as u32;
                    out.float(f64::from(f32::from_bits(bits)));
                }
                Item::Float { big, .. } => out.float(f64::from_bits(uint(chunk, big))),
                Item::Utf16 { .. } | Item::Utf32 { .. } => {
                    let Some(c) = char_of(it, chunk) else {
                        return false;
                    };
                    out.text(c.encode_utf8(&mut [0; 4]));
                }
            }
        }
        out.byte(op::APPENDS);
    }
    true
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The `(size, signed, big-endian)` of every integer code, as `mformat_descriptors` lists
    /// them (`{1, 0, 0}, {1, 1, 0}, {2, 0, 0}, {2, 0, 1}, {2, 1, 0}, ...`).
    #[test]
    fn machine_formats_match_cpython_s_table() {
        let ints: Vec<_> = (0..=13)
            .map(|m| match item(m) {
                Some(Item::Int { size, signed, big }) => (size, signed, big),
                other => panic!("{m}: {other:?}"),
            })
            .collect();
        let want = [
            (1, false, false),
            (1, true, false),
            (2, false, false),
            (2, false, true),
            (2, true, false),
            (2, true, true),
            (4, false, false),
            (4, false, true),
            (4, true, false),
            (4, true, true),
            (8, false, false),
            (8, false, true),
            (8, true, false),
            (8, true, true),
        ];
        assert_eq!(ints, want);
        assert_eq!(
            item(14),
            Some(Item::Float {
                size: 4,
                big: false
            })
        );
        assert_eq!(item(17), Some(Item::Float { size: 8, big: true }));
        assert_eq!(item(19), Some(Item::Utf16 { big: true }));
        assert_eq!(item(20), Some(Item::Utf32 { big: false }));
        assert_eq!(item(22), None);
    }

    fn items(mformat: u8, bytes: &[u8]) -> Vec<u8> {
        let mut out = Out::for_input(0, 1 << 20);
        assert!(write_items(&mut out, mformat, bytes));
        out.buf
    }

    #[test]
    fn items_are_written_as_cpython_s_protocol_2_pickle_writes_them() {
        // array('h', [-2, 300]) little-endian: BININT (negative), BININT2.
        assert_eq!(
            items(4, b"\xfe\xff\x2c\x01"),
            b"](J\xfe\xff\xff\xffM\x2c\x01e"
        );
        // array('L', [2**64 - 1]) big-endian: LONG1 of 9 bytes.
        assert_eq!(
            items(11, &[0xff; 8]),
            b"](\x8a\x09\xff\xff\xff\xff\xff\xff\xff\xff\x00e"
        );
        // array('f', [1.0]) little-endian: BINFLOAT.
        assert_eq!(items(14, b"\x00\x00\x80\x3f"), b"](G\x3f\xf0\0\0\0\0\0\0e");
        // array('u', 'é') UTF-32 LE.
        assert_eq!(items(20, b"\xe9\0\0\0"), b"](X\x02\0\0\0\xc3\xa9e");
        // Empty: the list alone.
        assert_eq!(items(8, b""), b"]");
    }

    #[test]
    fn partial_items_and_surrogates_are_refused() {
        assert!(!check(8, b"\x01\x00\x00"));
        assert!(!check(18, b"\x3d\xd8"));
        assert!(!check(20, b"\x00\xd8\x00\x00"));
        assert!(!check(22, b""));
        assert!(check(18, b"a\0"));
    }
}
