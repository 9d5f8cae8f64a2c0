//! Zero-copy reader: an iterator of [`Op`]s (opcode, byte offset, raw bytes, argument) over a
//! pickle, with a bounds check on every length it reads. It checks each argument's framing
//! (lengths, newline-terminated lines, quoting, decimal syntax) but not the stack discipline,
//! which `machine.rs` owns. After STOP it refuses any trailing byte.

use super::error::{ErrorKind, TranscodeError};
use super::opcode::{self, ArgKind, OpInfo};

/// One opcode as it appears in the input.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Op<'a> {
    /// The opcode byte.
    pub code: u8,
    /// Byte offset of the opcode.
    pub pos: usize,
    /// The whole op: opcode byte and argument, as in the input.
    pub raw: &'a [u8],
    /// The argument: the payload of length-prefixed kinds, the line (without `\n`) of line kinds,
    /// `module\nname` for GLOBAL/INST, the fixed-width bytes of integer kinds.
    pub arg: &'a [u8],
}

impl<'a> Op<'a> {
    /// The static facts of this opcode (the reader only yields known opcodes).
    pub fn info(&self) -> &'static OpInfo {
        // The reader only builds `Op`s for bytes `opcode::info` knows; NONE is a harmless default.
        opcode::info(self.code).unwrap_or(&opcode::ALL[16])
    }

    /// Byte offset just after this op.
    pub fn end(&self) -> usize {
        self.pos + self.raw.len()
    }

    /// The integer argument of U1/U2/U4/U8/I4 kinds (little-endian), 0 otherwise.
    pub fn uint(&self) -> i64 {
        let a = self.arg;
        match self.info().arg {
            ArgKind::U1 | ArgKind::U2 | ArgKind::U4 | ArgKind::U8 => {
                let mut v: u64 = 0;
                for (i, b) in a.iter().enumerate() {
                    v |= u64::from(*b) << (8 * i);
                }
                i64::try_from(v).unwrap_or(i64::MAX)
            }
            ArgKind::I4 => match <[u8; 4]>::try_from(a) {
                Ok(b) => i64::from(i32::from_le_bytes(b)),
                Err(_) => 0,
            },
            _ => 0,
        }
    }

    /// The memo index of GET/BINGET/LONG_BINGET/PUT/BINPUT/LONG_BINPUT (`None` for others).
    pub fn memo_index(&self) -> Option<u64> {
        match self.code {
            opcode::GET | opcode::PUT => parse_decimal(self.arg),
            opcode::BINGET | opcode::LONG_BINGET | opcode::BINPUT | opcode::LONG_BINPUT => {
                u64::try_from(self.uint()).ok()
            }
            _ => None,
        }
    }

    /// For GLOBAL/INST: `(module, name)`.
    pub fn global_pair(&self) -> Option<(&'a [u8], &'a [u8])> {
        let nl = self.arg.iter().position(|&b| b == b'\n')?;
        Some((&self.arg[..nl], &self.arg[nl + 1..]))
    }
}

/// Parses an unsigned decimal line as pickle's GET/PUT take it (digits only): one pass, 1 to
/// 19 digits (so no overflow). Inline: the fast path's scan reads one per protocol-0 GET/PUT,
/// and a call there costs ~4 % of such a value.
#[inline(always)]
pub(crate) fn parse_decimal(s: &[u8]) -> Option<u64> {
    // A leading zero: Python 2 keys its protocol-0 memo by the line (`p01` and `p1` are two
    // slots), Python 3 by the number (one). Neither writes one.
    if s.is_empty() || s.len() > 19 || (s.len() > 1 && s[0] == b'0') {
        return None;
    }
    let mut n = 0u64;
    for &d in s {
        if !d.is_ascii_digit() {
            return None;
        }
        n = n * 10 + u64::from(d - b'0');
    }
    Some(n)
}

/// An iterator of [`Op`]s; yields `Err` once and then stops.
#[derive(Clone, Debug)]
pub struct Reader<'a> {
    buf: &'a [u8],
    pos: usize,
    done: bool,
}

impl<'a> Reader<'a> {
    /// A reader over one complete pickle.
    pub fn new(buf: &'a [u8]) -> Self {
        Reader {
            buf,
            pos: 0,
            done: false,
        }
    }

    /// `n` bytes at `at`, or a truncation error.
    fn slice(&self, at: usize, n: u64) -> Option<&'a [u8]> {
        let n = usize::try_from(n).ok()?;
        let end = at.checked_add(n)?;
        self.buf.get(at..end)
    }

    fn line(&self, at: usize) -> Option<&'a [u8]> {
        let rest = self.buf.get(at..)?;
        let nl = rest.iter().position(|&b| b == b'\n')?;
        Some(&rest[..nl])
    }

    #[inline(always)]
    fn read_op(&mut self) -> Result<Op<'a>, TranscodeError> {
        let pos = self.pos;
        let Some(&code) = self.buf.get(pos) else {
            return Err(TranscodeError::new(ErrorKind::Truncated, pos, None));
        };
        let Some(info) = opcode::info(code) else {
            return Err(TranscodeError::new(
                ErrorKind::UnknownOpcode,
                pos,
                Some(code),
            ));
        };
        let at = pos + 1;
        let trunc = || TranscodeError::new(ErrorKind::Truncated, pos, Some(code));
        // (argument, bytes after the opcode byte)
        let (arg, len) = match info.arg {
            ArgKind::None => (&self.buf[at..at], 0),
            ArgKind::U1 => fixed(self.slice(at, 1), trunc)?,
            ArgKind::U2 => fixed(self.slice(at, 2), trunc)?,
            ArgKind::U4 | ArgKind::I4 => fixed(self.slice(at, 4), trunc)?,
            ArgKind::U8 | ArgKind::F8 => fixed(self.slice(at, 8), trunc)?,
            ArgKind::Len1 | ArgKind::LenI4 | ArgKind::LenU4 | ArgKind::LenU8 => {
                let width: usize = match info.arg {
                    ArgKind::Len1 => 1,
                    ArgKind::LenU8 => 8,
                    _ => 4,
                };
                let prefix = self.slice(at, width as u64).ok_or_else(trunc)?;
                let mut n: u64 = 0;
                for (i, b) in prefix.iter().enumerate() {
                    n |= u64::from(*b) << (8 * i);
                }
                if info.arg == ArgKind::LenI4 && n > i32::MAX as u64 {
                    // string4 / long4: a negative length is an error, not a huge read.
                    return Err(TranscodeError::new(ErrorKind::BadArgument, pos, Some(code)));
                }
                let payload = self.slice(at + width, n).ok_or_else(trunc)?;
                (payload, width + payload.len())
            }
            ArgKind::Line | ArgKind::QuotedLine => {
                let line = self.line(at).ok_or_else(trunc)?;
                if !line_ok(code, line) {
                    return Err(TranscodeError::new(ErrorKind::BadArgument, pos, Some(code)));
                }
                (line, line.len() + 1)
            }
            ArgKind::TwoLines => {
                let first = self.line(at).ok_or_else(trunc)?;
                let second = self.line(at + first.len() + 1).ok_or_else(trunc)?;
                let total = first.len() + 1 + second.len();
                if first.is_empty() || second.is_empty() {
                    return Err(TranscodeError::new(ErrorKind::BadArgument, pos, Some(code)));
                }
                (&self.buf[at..at + total], total + 1)
            }
        };
        extra_checks(code, arg, pos)?;
        self.pos = at + len;
        let op = Op {
            code,
            pos,
            raw: &self.buf[pos..self.pos],
            arg,
        };
        // CPython's C unpickler reads a whole frame ahead: one that claims more bytes than are
        // left is "pickle data was truncated", however the ops inside end. (`uint` saturates
        // at i64::MAX, past any input.)
        if code == opcode::FRAME && op.uint() as u64 > (self.buf.len() - self.pos) as u64 {
            return Err(trunc());
        }
        Ok(op)
    }
}

#[inline(always)]
fn fixed(
    b: Option<&[u8]>,
    trunc: impl FnOnce() -> TranscodeError,
) -> Result<(&[u8], usize), TranscodeError> {
    let b = b.ok_or_else(trunc)?;
    Ok((b, b.len()))
}

/// Semantic checks on fixed arguments: PROTO <= 5.
fn extra_checks(code: u8, arg: &[u8], pos: usize) -> Result<(), TranscodeError> {
    if code == opcode::PROTO && arg.first().is_some_and(|&p| p > 5) {
        return Err(TranscodeError::new(
            ErrorKind::UnsupportedProtocol,
            pos,
            Some(code),
        ));
    }
    Ok(())
}

/// INT's decimalnl_short: optional sign, digits (`I00`/`I01` are False/True).
#[inline(always)]
pub(crate) fn int_line_ok(line: &[u8]) -> bool {
    line == b"01" || decimal_ok(line.strip_prefix(b"-").unwrap_or(line))
}

/// Digits of an INT or LONG line, without a leading zero unless all are zeros: both runtimes
/// read the line with base 0, where Python 2 takes `010` as octal 8 and Python 3 refuses it.
/// Neither writes one.
#[inline(always)]
fn decimal_ok(digits: &[u8]) -> bool {
    match digits {
        [] => false,
        [b'0', rest @ ..] => rest.iter().all(|&d| d == b'0'),
        _ => digits.iter().all(u8::is_ascii_digit),
    }
}

/// Syntax of newline-terminated arguments, as CPython 3's unpickler accepts them.
pub(crate) fn line_ok(code: u8, line: &[u8]) -> bool {
    match code {
        opcode::INT => int_line_ok(line),
        // decimalnl_long: optional sign, digits, optional trailing 'L'.
        opcode::LONG => {
            let s = line.strip_suffix(b"L").unwrap_or(line);
            decimal_ok(s.strip_prefix(b"-").unwrap_or(s))
        }
        opcode::GET | opcode::PUT => parse_decimal(line).is_some(),
        // floatnl: anything float() accepts; refuse what is clearly not a float.
        opcode::FLOAT => std::str::from_utf8(line)
            .ok()
            .is_some_and(|s| s.trim().parse::<f64>().is_ok() || is_special_float(s.trim())),
        // stringnl: repr()-quoted, same quote at both ends.
        opcode::STRING => {
            line.len() >= 2 && matches!(line[0], b'\'' | b'"') && line[line.len() - 1] == line[0]
        }
        // unicodestringnl and persistent ids: any bytes up to the newline.
        _ => true,
    }
}

fn is_special_float(s: &str) -> bool {
    matches!(
        s.to_ascii_lowercase().as_str(),
        "nan" | "inf" | "-inf" | "+inf" | "infinity" | "-infinity" | "+nan" | "-nan"
    )
}

impl<'a> Iterator for Reader<'a> {
    type Item = Result<Op<'a>, TranscodeError>;

    #[inline]
    fn next(&mut self) -> Option<Self::Item> {
        if self.done {
            return None;
        }
        let op = match self.read_op() {
            Ok(op) => op,
            Err(e) => {
                self.done = true;
                return Some(Err(e));
            }
        };
        if op.code == opcode::STOP {
            self.done = true;
            if self.pos != self.buf.len() {
                return Some(Err(TranscodeError::new(
                    ErrorKind::TrailingData,
                    self.pos,
                    None,
                )));
            }
        }
        Some(Ok(op))
    }
}

#[cfg(test)]
mod tests;
