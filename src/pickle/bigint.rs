//! Decimal integer lines (protocol 0/1's INT and LONG, `L123...L`) as the binary LONG1/LONG4
//! argument, for Python 3 readers: CPython 3.11+ reads a decimal line with `int(line, 0)`, which
//! refuses more than 4 300 digits (`sys.get_int_max_str_digits()`, CVE-2020-10735), while
//! Python 2's cPickle writes any `long` that way at protocols 0 and 1 (python-memcached's
//! default). The binary form has no limit.
//!
//! Pure arithmetic on bytes; the caller bounds the digits (schoolbook conversion is quadratic).

/// Decimal digits Python 3 reads from an INT or LONG line (its default
/// `sys.int_info.default_max_str_digits`).
pub(crate) const PY3_MAX_STR_DIGITS: usize = 4300;

/// Digits converted per value at most (about 20 ms of work); past it the value is refused
/// `limit_exceeded`.
pub(crate) const MAX_CONVERTED_DIGITS: usize = 100_000;

/// The digits of an INT or LONG line (`-?[0-9]+`, LONG's trailing `L` allowed), without sign.
pub(crate) fn digits(line: &[u8]) -> &[u8] {
    let s = line.strip_suffix(b"L").unwrap_or(line);
    s.strip_prefix(b"-").unwrap_or(s)
}

/// The little-endian two's complement bytes of the integer on a decimal line, as pickle's
/// `encode_long` writes them for LONG1/LONG4 (the fewest bytes; empty for zero). `None` when
/// the line is not `-?[0-9]+` (with LONG's optional trailing `L`).
pub(crate) fn decimal_to_long(line: &[u8]) -> Option<Vec<u8>> {
    let negative = line.first() == Some(&b'-');
    let digits = digits(line);
    if digits.is_empty() || !digits.iter().all(u8::is_ascii_digit) {
        return None;
    }
    // The magnitude in base 2^32, little-endian: nine digits at a time (the first group takes
    // what is left over), each step `limbs = limbs * 10^k + group`.
    let mut limbs: Vec<u32> = Vec::with_capacity(digits.len() / 9 + 1);
    let first = match digits.len() % 9 {
        0 => 9,
        r => r,
    };
    let mut start = 0;
    let mut len = first;
    while start < digits.len() {
        let group = &digits[start..start + len];
        let value = group
            .iter()
            .fold(0u64, |v, &d| v * 10 + u64::from(d - b'0'));
        let scale = 10u64.pow(len as u32);
        let mut carry = value;
        for limb in &mut limbs {
            let x = u64::from(*limb) * scale + carry;
            *limb = x as u32;
            carry = x >> 32;
        }
        if carry != 0 {
            limbs.push(carry as u32);
        }
        start += len;
        len = 9;
    }
    let mut bytes: Vec<u8> = limbs.iter().flat_map(|l| l.to_le_bytes()).collect();
    while bytes.last() == Some(&0) {
        bytes.pop();
    }
    let Some(&top) = bytes.last() else {
        return Some(bytes);
    };
    if !negative {
        // A set top bit would read as negative: one more byte.
        if top & 0x80 != 0 {
            bytes.push(0);
        }
        return Some(bytes);
    }
    // -m in as many bytes: invert and add one; one more 0xff where that leaves the top bit
    // clear (-129 is 7f ff, -128 is 80).
    let mut carry = true;
    for b in &mut bytes {
        let (v, c) = (!*b).overflowing_add(u8::from(carry));
        *b = v;
        carry = c;
    }
    if bytes.last().is_some_and(|&t| t & 0x80 == 0) {
        bytes.push(0xff);
    }
    Some(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `pickle.encode_long(n)` of CPython 3.11 for each n.
    #[test]
    fn matches_cpython_encode_long() {
        let cases: &[(&str, &[u8])] = &[
            ("0", b""),
            ("-0", b""),
            ("000", b""),
            ("1", b"\x01"),
            ("-1", b"\xff"),
            ("127", b"\x7f"),
            ("128", b"\x80\x00"),
            ("-128", b"\x80"),
            ("-129", b"\x7f\xff"),
            ("255", b"\xff\x00"),
            ("256", b"\x00\x01"),
            ("-256", b"\x00\xff"),
            ("-257", b"\xff\xfe"),
            ("4294967295", b"\xff\xff\xff\xff\x00"),
            ("4294967296", b"\x00\x00\x00\x00\x01"),
            ("-4294967296", b"\x00\x00\x00\x00\xff"),
            (
                "18446744073709551616L",
                b"\x00\x00\x00\x00\x00\x00\x00\x00\x01",
            ),
            (
                "1000000000000000000000000000000",
                b"\x00\x00\x00@\xea\xed\x74\x46\xd0\x9c\x2c\x9f\x0c",
            ),
            (
                "-1000000000000000000000000000000L",
                b"\x00\x00\x00\xc0\x15\x12\x8b\xb9\x2f\x63\xd3\x60\xf3",
            ),
            ("123456789123456789", b"\x15\x5f\xd0\xac\x4b\x9b\xb6\x01"),
        ];
        for &(line, want) in cases {
            assert_eq!(
                decimal_to_long(line.as_bytes()).as_deref(),
                Some(want),
                "{line}"
            );
        }
        for bad in ["", "-", "L", "1x", "+1"] {
            assert_eq!(decimal_to_long(bad.as_bytes()), None, "{bad}");
        }
    }

    /// 10^k and -(10^k) for large k: the bytes are those of the number (checked by reading them
    /// back as base-2^8 digits and dividing by ten k times).
    #[test]
    fn large_powers_of_ten_round_trip() {
        for k in [4300usize, 4301, 9001] {
            let line = format!("1{}", "0".repeat(k));
            let mut bytes = decimal_to_long(line.as_bytes()).expect("digits");
            assert!(bytes.last().is_some_and(|&t| t & 0x80 == 0), "positive");
            // Divide by ten k times: nothing left over, and 1 at the end.
            for _ in 0..k {
                let mut rem = 0u32;
                for b in bytes.iter_mut().rev() {
                    let cur = (rem << 8) | u32::from(*b);
                    *b = (cur / 10) as u8;
                    rem = cur % 10;
                }
                assert_eq!(rem, 0);
            }
            assert!(bytes[0] == 1 && bytes[1..].iter().all(|&b| b == 0));
            // Negated, it is the two's complement: adding it to 10^k gives zero.
            let pos = decimal_to_long(line.as_bytes()).expect("digits");
            let neg = decimal_to_long(format!("-{line}").as_bytes()).expect("digits");
            assert!(neg.last().is_some_and(|&t| t & 0x80 != 0), "negative");
            let width = pos.len().max(neg.len());
            let at = |v: &[u8], i: usize, fill: u8| v.get(i).copied().unwrap_or(fill);
            let mut carry = 0u16;
            for i in 0..width {
                let sum = u16::from(at(&pos, i, 0)) + u16::from(at(&neg, i, 0xff)) + carry;
                assert_eq!(sum as u8, 0, "byte {i}");
                carry = sum >> 8;
            }
        }
    }
}
