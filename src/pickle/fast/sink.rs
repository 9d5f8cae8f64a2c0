//! What the validating pass does with each op: nothing ([`NoSink`]), or write it for a reader
//! ([`Py2Sink`], [`Py3Sink`]), copying runs of unchanged ops in one go each.

use super::super::opcode as op;
use super::super::strings::{self, Py3Form};
use super::super::writer::Out;
use super::super::Py3Str;
use super::decode::{memo_index, py2_str_bytes, FOp};

/// What the validating pass does with each op once it is validated.
pub(super) trait Sink {
    /// The op at `pos` is valid so far; `None` gives up (the general path decides).
    fn op(&mut self, src: &[u8], pos: usize, o: FOp) -> Option<()>;
    /// STOP was reached and the whole pickle is valid.
    fn finish(&mut self, src: &[u8]);
}

/// Validation only.
pub(super) struct NoSink;

impl Sink for NoSink {
    #[inline(always)]
    fn op(&mut self, _: &[u8], _: usize, _: FOp) -> Option<()> {
        Some(())
    }

    #[inline(always)]
    fn finish(&mut self, _: &[u8]) {}
}

/// Copies runs of ops that stay as they are in one go each.
pub(super) struct Runs<'o> {
    pub(super) out: &'o mut Out,
    /// Start of the pending run of unchanged input.
    pub(super) from: usize,
}

impl Runs<'_> {
    /// Copies the pending run up to `pos` (the op there is rewritten or dropped) and restarts
    /// the run at `end`.
    #[inline(always)]
    fn cut(&mut self, src: &[u8], pos: usize, end: usize) {
        let run = &src[self.from..pos];
        // Runs between rewritten ops are mostly a few bytes (an int, a container op): a
        // byte loop beats a call to memcpy there.
        if run.len() <= 16 {
            self.out.buf.reserve(16);
            for &b in run {
                self.out.buf.push(b);
            }
        } else {
            self.out.raw(run);
        }
        self.from = end;
    }
}

/// Protocol 2 for a Python 2 reader, for plain data (what `downgrade.rs` writes for it): PROTO 2
/// first, FRAMEs dropped, MEMOIZE -> BINPUT, short/8-byte text -> BINUNICODE (or a py2 `str`
/// under the `utf8` text policy). Memo ids are the input's (the caller checks their order). At
/// the first global, bytes or set it stops and the caller has `downgrade.rs` write the value.
pub(super) struct Py2Sink<'o> {
    runs: Runs<'o>,
    utf8: bool,
    puts: u32,
    /// Met a construct `downgrade.rs` writes (globals, bytes, sets): stopped writing.
    pub(super) handed_over: bool,
}

impl<'o> Py2Sink<'o> {
    pub(super) fn new(out: &'o mut Out, utf8: bool) -> Self {
        out.raw(&[op::PROTO, 2]);
        Py2Sink {
            runs: Runs { out, from: 0 },
            utf8,
            puts: 0,
            handed_over: false,
        }
    }
}

impl Sink for Py2Sink<'_> {
    #[inline(always)]
    fn op(&mut self, src: &[u8], pos: usize, o: FOp) -> Option<()> {
        if self.handed_over {
            return Some(());
        }
        let r = &mut self.runs;
        match o.code {
            op::PROTO | op::FRAME => r.cut(src, pos, o.end),
            // Protocol 0's raw-unicode-escape text as a py2 `str`, globals (renamed, STACK_GLOBAL
            // folded) and bytes (`_codecs.encode` with inserted memo ids): `downgrade.rs`.
            op::UNICODE if self.utf8 => self.handed_over = true,
            op::GLOBAL
            | op::STACK_GLOBAL
            | op::SHORT_BINBYTES
            | op::BINBYTES
            | op::BINBYTES8
            | op::BYTEARRAY8
            | op::EMPTY_SET => self.handed_over = true,
            op::MEMOIZE | op::BINPUT | op::LONG_BINPUT | op::PUT => {
                r.cut(src, pos, o.end);
                r.out.put(self.puts);
                self.puts += 1;
            }
            // BINGET stays as it is: ids are the input's.
            op::LONG_BINGET | op::GET => {
                r.cut(src, pos, o.end);
                r.out.get(u32::try_from(memo_index(src, o)?).ok()?);
            }
            op::BINUNICODE | op::SHORT_BINUNICODE | op::BINUNICODE8 => {
                let payload = o.arg(src);
                if self.utf8 {
                    r.cut(src, pos, o.end);
                    r.out.py2_str(std::str::from_utf8(payload).ok()?.as_bytes());
                } else if o.code != op::BINUNICODE {
                    r.cut(src, pos, o.end);
                    r.out.byte(op::BINUNICODE);
                    r.out.raw(&u32::try_from(payload.len()).ok()?.to_le_bytes());
                    r.out.raw(payload);
                }
            }
            _ => {}
        }
        Some(())
    }

    fn finish(&mut self, src: &[u8]) {
        if !self.handed_over {
            self.runs.cut(src, src.len(), src.len());
        }
    }
}

/// The input for a Python 3 reader (what `py3.rs` writes): FRAMEs dropped, py2 `str`s per the
/// `py3_str` policy, except binary state (datetime & co.), which is always `bytes`.
pub(super) struct Py3Sink<'o> {
    pub(super) runs: Runs<'o>,
    pub(super) policy: Py3Str,
    /// Offsets of binary-state py2 `str`s (always `bytes`), sorted; consumed front to back.
    pub(super) as_bytes: &'o [u32],
}

impl Sink for Py3Sink<'_> {
    #[inline(always)]
    fn op(&mut self, src: &[u8], pos: usize, o: FOp) -> Option<()> {
        let r = &mut self.runs;
        match o.code {
            op::FRAME => r.cut(src, pos, o.end),
            op::SHORT_BINSTRING | op::BINSTRING | op::STRING => {
                let bytes = py2_str_bytes(src, o)?;
                while self.as_bytes.first().is_some_and(|&p| (p as usize) < pos) {
                    self.as_bytes = &self.as_bytes[1..];
                }
                if self.as_bytes.first() == Some(&(pos as u32)) {
                    r.cut(src, pos, o.end);
                    r.out.py3_bytes(&bytes);
                    return Some(());
                }
                match strings::py3_form(&bytes, self.policy) {
                    Py3Form::Keep => {}
                    Py3Form::Text(t) => {
                        r.cut(src, pos, o.end);
                        r.out.text(&t);
                    }
                    Py3Form::Bytes => {
                        r.cut(src, pos, o.end);
                        r.out.py3_bytes(&bytes);
                    }
                }
            }
            _ => {}
        }
        Some(())
    }

    fn finish(&mut self, src: &[u8]) {
        self.runs.cut(src, src.len(), src.len());
    }
}
