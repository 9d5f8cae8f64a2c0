//! Pass 2 for a Python 3 reader: py2 `str` (STRING / BINSTRING / SHORT_BINSTRING) becomes py3
//! `str` (BINUNICODE) or `bytes` (SHORT_BINBYTES / BINBYTES) per [`super::Py3Str`], and binary
//! state of the classes in `compat::BINARY_STATE` always becomes `bytes`.
//!
//! `bytes` are written with the protocol-3 opcodes SHORT_BINBYTES / BINBYTES, but the PROTO of
//! the input is kept: CPython 3's loader runs every opcode whatever PROTO declares, and it
//! renames py2 globals (`__builtin__`, `copy_reg`, ...) through `_compat_pickle` only while the
//! declared protocol is below 3 (`Unpickler.find_class`). FRAMEs are dropped since rewritten
//! ops change frame lengths. Memo indices are untouched (nothing is inserted; a GET whose use
//! follows another text rule than the memoized string becomes a fresh, unmemoized copy).
//!
//! Under `py2_utc = pytz`, `pytz._UTC()` becomes `datetime.timezone(timedelta(0, 0, 0))`
//! (`scan/utc.rs`): the class op is replaced in place, so its memo PUT still holds a class.

use super::bigint;
use super::error::{ErrorKind, TranscodeError};
use super::opcode as op;
use super::reader::{Op, Reader};
use super::scan::{Ann, Scan};
use super::strings::{self, Py3Form};
use super::writer::Out;
use super::Policy;

/// Rewrites `src` for a Python 3 reader.
///
/// # Errors
/// [`ErrorKind::LimitExceeded`] when the output would pass `policy.limits.max_output`.
pub(crate) fn normalize(
    src: &[u8],
    scan: &Scan,
    policy: &Policy,
) -> Result<Vec<u8>, TranscodeError> {
    let mut out = Out::for_input(src.len(), policy.limits.max_output);
    let anns = &scan.plan.anns;
    let mut next = 0;
    for item in Reader::new(src) {
        let o = item?;
        while next < anns.len() && anns[next].0 < o.pos {
            next += 1;
        }
        let here = anns[next..].iter().take_while(|(pos, _)| *pos == o.pos);
        let (mut as_bytes, mut keep, mut fresh, mut utc) = (false, false, None, None);
        for (_, a) in here {
            as_bytes |= *a == Ann::AsBytes;
            keep |= *a == Ann::KeepText;
            if matches!(a, Ann::UtcGlobal | Ann::UtcCall) {
                utc = Some(*a);
            }
            if let Ann::Fresh { src: from, keep } = *a {
                fresh = Some((from, keep));
            }
        }
        match (o.code, fresh) {
            (op::FRAME, _) => {}
            // `pytz._UTC()` -> `datetime.timezone(timedelta(0, 0, 0))`, which is
            // `timezone.utc` (as CPython 3 pickles it at protocol 2).
            _ if utc == Some(Ann::UtcGlobal) => {
                if o.code == op::STACK_GLOBAL {
                    // Its module and name strings are on the stack.
                    out.raw(&[op::POP, op::POP]);
                }
                out.global("datetime", "timezone");
            }
            _ if utc == Some(Ann::UtcCall) => {
                out.byte(op::POP);
                out.global("datetime", "timedelta");
                out.raw(&[op::BININT1, 0, op::BININT1, 0, op::BININT1, 0]);
                out.raw(&[op::TUPLE3, op::REDUCE, op::TUPLE1, op::REDUCE]);
            }
            (op::STRING | op::BINSTRING | op::SHORT_BINSTRING, _) => {
                py2_str(&mut out, &o, as_bytes, keep, policy)?;
            }
            // More digits than Python 3 reads from a line: the binary form (`bigint.rs`).
            (op::INT | op::LONG, _) if bigint::digits(o.arg).len() > bigint::PY3_MAX_STR_DIGITS => {
                let bytes = bigint::decimal_to_long(o.arg).ok_or_else(|| {
                    TranscodeError::new(ErrorKind::BadArgument, o.pos, Some(o.code))
                })?;
                out.long(&bytes);
            }
            // A GET of a memoized str whose rule differs for this use: its own copy instead.
            (op::GET | op::BINGET | op::LONG_BINGET, Some((from, keep))) => {
                let s = op_at(src, from, &o)?;
                py2_str(&mut out, &s, false, keep, policy)?;
            }
            _ => out.raw(o.raw),
        }
        if out.buf.len() > policy.limits.max_output {
            return Err(TranscodeError::new(
                ErrorKind::LimitExceeded,
                o.pos,
                Some(o.code),
            ));
        }
    }
    Ok(out.buf)
}

/// One py2 `str` op for a Python 3 reader: binary state as `bytes`; a kept ASCII `str` (an
/// attribute name, an encoding name like `bytearray(u'..', 'latin-1')`) as it is; else per
/// `py3_str`.
fn py2_str(
    out: &mut Out,
    o: &Op<'_>,
    as_bytes: bool,
    keep: bool,
    policy: &Policy,
) -> Result<(), TranscodeError> {
    let bytes = strings::py2_str_bytes(o)
        .ok_or_else(|| TranscodeError::new(ErrorKind::BadArgument, o.pos, Some(o.code)))?;
    if as_bytes {
        out.py3_bytes(&bytes);
    } else if keep && bytes.is_ascii() {
        out.raw(o.raw);
    } else {
        match strings::py3_form(&bytes, policy.py3_str) {
            Py3Form::Keep => out.raw(o.raw),
            Py3Form::Text(t) => out.text(&t),
            Py3Form::Bytes => out.py3_bytes(&bytes),
        }
    }
    Ok(())
}

/// The op at offset `pos` of the input (the string a GET at `at` fetches).
fn op_at<'a>(input: &'a [u8], pos: usize, at: &Op<'_>) -> Result<Op<'a>, TranscodeError> {
    input
        .get(pos..)
        .and_then(|s| Reader::new(s).next())
        .and_then(Result::ok)
        .map(|o| Op { pos, ..o })
        .ok_or_else(|| TranscodeError::new(ErrorKind::BadMemo, at.pos, Some(at.code)))
}
