//! Pass 2 for a Python 3 reader: py2 `str` (STRING / BINSTRING / SHORT_BINSTRING) becomes py3
//! `str` (BINUNICODE) or `bytes` (SHORT_BINBYTES / BINBYTES) per [`super::Py3Str`], and binary
//! state of the classes in `compat::BINARY_STATE` always becomes `bytes`.
//!
//! `bytes` are written with the protocol-3 opcodes SHORT_BINBYTES / BINBYTES, but the PROTO of
//! the input is kept: CPython 3's loader runs every opcode whatever PROTO declares, and it
//! renames py2 globals (`__builtin__`, `copy_reg`, ...) through `_compat_pickle` only while the
//! declared protocol is below 3 (`Unpickler.find_class`). FRAMEs are dropped since rewritten
//! ops change frame lengths. Memo indices are untouched (nothing is inserted).

use super::error::{ErrorKind, TranscodeError};
use super::opcode as op;
use super::reader::Reader;
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
        let (mut as_bytes, mut keep) = (false, false);
        for (_, a) in here {
            as_bytes |= *a == Ann::AsBytes;
            keep |= *a == Ann::KeepText;
        }
        match o.code {
            op::FRAME => {}
            op::STRING | op::BINSTRING | op::SHORT_BINSTRING => {
                let bytes = strings::py2_str_bytes(&o).ok_or_else(|| {
                    TranscodeError::new(ErrorKind::BadArgument, o.pos, Some(o.code))
                })?;
                if as_bytes {
                    out.py3_bytes(&bytes);
                } else if keep && bytes.is_ascii() {
                    // An encoding name (`bytearray(u'..', 'latin-1')`): must stay `str`.
                    out.raw(o.raw);
                } else {
                    match strings::py3_form(&bytes, policy.py3_str) {
                        Py3Form::Keep => out.raw(o.raw),
                        Py3Form::Text(t) => out.text(&t),
                        Py3Form::Bytes => out.py3_bytes(&bytes),
                    }
                }
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
