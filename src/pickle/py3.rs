//! Pass 2 for a Python 3 reader: py2 `str` (STRING / BINSTRING / SHORT_BINSTRING) becomes py3
//! `str` (BINUNICODE) or `bytes` (SHORT_BINBYTES / BINBYTES) per [`super::Py3Str`], and binary
//! state of the classes in `compat::BINARY_STATE` always becomes `bytes`.
//!
//! The output declares PROTO 3 (or the input's higher protocol), because SHORT_BINBYTES/BINBYTES
//! are protocol-3 opcodes; FRAMEs are dropped since rewritten ops change frame lengths. Memo
//! indices are untouched (nothing is inserted).

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
    let proto = scan.summary.declared_protocol.unwrap_or(0).max(3);
    out.raw(&[op::PROTO, proto]);
    let anns = &scan.plan.anns;
    let mut next = 0;
    for item in Reader::new(src) {
        let o = item?;
        while next < anns.len() && anns[next].0 < o.pos {
            next += 1;
        }
        let as_bytes = next < anns.len() && anns[next] == (o.pos, Ann::AsBytes);
        match o.code {
            op::PROTO | op::FRAME => {}
            op::STRING | op::BINSTRING | op::SHORT_BINSTRING => {
                let bytes = strings::py2_str_bytes(&o).ok_or_else(|| {
                    TranscodeError::new(ErrorKind::BadArgument, o.pos, Some(o.code))
                })?;
                if as_bytes {
                    out.py3_bytes(&bytes);
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
