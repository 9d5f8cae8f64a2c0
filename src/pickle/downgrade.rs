//! Pass 2 for a Python 2 reader: rewrites protocol 3/4/5 constructs as CPython 3's own
//! `pickle.dumps(obj, protocol=2)` writes them (`Lib/pickle.py` `_Pickler.save_bytes`,
//! `save_set`, `save_frozenset`, `save_bytearray`, `save_global`, `save_reduce`), following the
//! [`Plan`] of pass 1. Memo indices are renumbered in output order, because the rewrite inserts
//! memoized globals (`_codecs.encode`, `__builtin__.set`, ...) as CPython does.
//!
//! Never called on input that pass 1 did not validate; still returns errors, never panics.

use std::borrow::Cow;

use super::array;
use super::error::{ErrorKind, TranscodeError};
use super::opcode as op;
use super::reader::{Op, Reader};
use super::scan::Ann;
use super::strings;
use super::writer::{global_part_ok, Ins, Out};
use super::{compat, Policy, Summary, Writer};

/// Where an input memo slot lives in the output.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Slot {
    /// Written with this output index.
    New(u32),
    /// Its value was folded away (a STACK_GLOBAL string); written on first GET from the op here.
    Lazy(usize),
    /// A set still being built; PUT at its SetClose.
    Deferred,
    /// A folded-away temporary (the reconstructor's argument tuple): never fetched.
    Gone,
}

struct Downgrade<'a> {
    src: &'a [u8],
    out: Out,
    memo: Vec<Option<Slot>>,
    memo_len: u64,
    next_id: u32,
    inserted: [Option<u32>; Ins::COUNT],
    /// The value of the last op when it was skipped (a PUT of it then becomes that slot).
    pending: Option<Slot>,
    utf8_text: bool,
    rename: bool,
    /// Its names are Python 3's (see [`Downgrade::renames`]).
    py3_names: bool,
    /// The memo limit, applied to output ids too.
    max_memo: usize,
    at: (usize, u8),
}

/// Rewrites `src` for a Python 2 reader, following the plan of pass 1 (`scan.rs`, or the
/// fast path's scan for the constructs it plans).
///
/// # Errors
/// [`ErrorKind::Unsupported`] for what the plan does not cover, [`ErrorKind::LimitExceeded`]
/// when the output would pass `policy.limits.max_output`.
pub(crate) fn downgrade(
    src: &[u8],
    summary: &Summary,
    anns: &[(usize, Ann)],
    py3_names: bool,
    policy: &Policy,
) -> Result<Vec<u8>, TranscodeError> {
    let writer = summary.writer;
    let mut d = Downgrade {
        src,
        out: Out::for_input(src.len(), policy.limits.max_output),
        memo: Vec::with_capacity(16),
        memo_len: 0,
        next_id: 0,
        inserted: [None; Ins::COUNT],
        pending: None,
        utf8_text: policy.utf8_text_for(writer),
        rename: writer != Writer::Py2,
        py3_names,
        max_memo: policy.limits.max_memo,
        at: (0, 0),
    };
    d.out.raw(&[op::PROTO, 2]);
    let mut next = 0;
    for item in Reader::new(src) {
        let o = item?;
        d.at = (o.pos, o.code);
        while next < anns.len() && anns[next].0 < o.pos {
            next += 1;
        }
        let (mut own, mut utc) = (None, false);
        while next < anns.len() && anns[next].0 == o.pos {
            match anns[next].1 {
                // (Replaces the STACK_GLOBAL rewrite planned for the same op.)
                Ann::UtcGlobal => utc = true,
                Ann::SetClose { memo } => d.set_close(memo)?,
                Ann::FrozensetStart => {
                    d.ins(Ins::Frozenset)?;
                    d.out.byte(op::EMPTY_LIST);
                }
                Ann::MarkBefore => d.out.byte(op::MARK),
                a => own = Some(a),
            }
            next += 1;
        }
        if utc {
            // `datetime.timezone` (its calls are `timezone(timedelta(0))`): pytz's UTC class.
            d.pending = None;
            d.out.global("pytz", "_UTC");
        } else {
            d.step(&o, own)?;
        }
        if d.out.buf.len() > policy.limits.max_output {
            return Err(d.err(ErrorKind::LimitExceeded));
        }
    }
    Ok(d.out.buf)
}

impl<'a> Downgrade<'a> {
    fn err(&self, kind: ErrorKind) -> TranscodeError {
        TranscodeError::new(kind, self.at.0, Some(self.at.1))
    }

    /// The next output memo id. Output ids are counted per PUT, so a stream that re-PUTs one
    /// index many times gets more ids than it has slots: the memo limit applies to them too (so
    /// the output is itself within the limits it was checked against).
    fn fresh_id(&mut self) -> Result<u32, TranscodeError> {
        let id = self.next_id;
        if id as usize >= self.max_memo {
            return Err(self.err(ErrorKind::LimitExceeded));
        }
        self.next_id += 1;
        Ok(id)
    }

    fn define(&mut self, orig: u64, slot: Slot) -> Result<(), TranscodeError> {
        let i = usize::try_from(orig).map_err(|_| self.err(ErrorKind::LimitExceeded))?;
        // Input memo indices usually come 0, 1, 2, ...: appending is the common case.
        if i == self.memo.len() {
            self.memo.push(Some(slot));
            self.memo_len += 1;
            return Ok(());
        }
        if i > self.memo.len() {
            self.memo.resize(i + 1, None);
        }
        if self.memo[i].is_none() {
            self.memo_len += 1;
        }
        self.memo[i] = Some(slot);
        Ok(())
    }

    /// Pushes an inserted global (GLOBAL + PUT the first time, GET after).
    fn ins(&mut self, which: Ins) -> Result<(), TranscodeError> {
        let k = which as usize;
        if let Some(id) = self.inserted[k] {
            self.out.get(id);
            return Ok(());
        }
        self.out.inserted(which);
        let id = self.fresh_id()?;
        self.out.put(id);
        self.inserted[k] = Some(id);
        Ok(())
    }

    fn set_close(&mut self, memo: Option<u64>) -> Result<(), TranscodeError> {
        self.out.raw(&[op::TUPLE1, op::REDUCE]);
        if let Some(orig) = memo {
            let id = self.fresh_id()?;
            self.out.put(id);
            self.define(orig, Slot::New(id))?;
        }
        Ok(())
    }

    /// `bytes` as CPython 3 writes it for protocol < 3: `_codecs.encode(text, 'latin1')`, or
    /// `__builtin__.bytes()` when empty (`save_bytes`).
    fn bytes(&mut self, payload: &[u8]) -> Result<(), TranscodeError> {
        if payload.is_empty() {
            self.ins(Ins::Bytes)?;
            self.out.raw(&[op::EMPTY_TUPLE, op::REDUCE]);
            return Ok(());
        }
        self.ins(Ins::CodecsEncode)?;
        self.out.text_latin1(payload);
        self.ins(Ins::Latin1)?;
        self.out.raw(&[op::TUPLE2, op::REDUCE]);
        Ok(())
    }

    /// A py3 text op for a py2 reader, per the text policy.
    fn text(&mut self, o: &Op<'a>) -> Result<(), TranscodeError> {
        if self.utf8_text {
            let t = strings::text_utf8(o).ok_or_else(|| self.err(ErrorKind::Unsupported))?;
            self.out.py2_str(t.as_bytes());
            return Ok(());
        }
        match o.code {
            op::UNICODE | op::BINUNICODE => self.out.raw(o.raw),
            // Same UTF-8 payload bytes (even surrogatepass ones), protocol-1 framing.
            _ => {
                let n =
                    u32::try_from(o.arg.len()).map_err(|_| self.err(ErrorKind::LimitExceeded))?;
                self.out.byte(op::BINUNICODE);
                self.out.raw(&n.to_le_bytes());
                self.out.raw(o.arg);
            }
        }
        Ok(())
    }

    /// STACK_GLOBAL's module and name (py3-spelled) for a Python 2 reader.
    ///
    /// A name one level deep (a nested class, `Outer.Inner`) has no GLOBAL form before
    /// protocol 4: it is written as CPython's `save_global` writes it there, `getattr(Outer,
    /// 'Inner')`, with `Outer` renamed as `fix_imports` renames a top-level name. `scan/walks.rs`
    /// lists that call as the name it walks to, so the firewall judges the output as it judges
    /// the input. A deeper name would take a walk from a walk's result, which the firewall
    /// denies (`getattr` stays listed): refused, as is a walk from a nested class
    /// (`scan/calls.rs`).
    fn stack_global(&mut self, module: &str, name: &str) -> Result<(), TranscodeError> {
        let Some((outer, attr)) = name.split_once('.') else {
            return self.global(op::GLOBAL, module, name);
        };
        if !global_part_ok(attr) || attr.contains('.') {
            return Err(self.err(ErrorKind::Unsupported));
        }
        self.ins(Ins::Getattr)?;
        self.global(op::GLOBAL, module, outer)?;
        if self.utf8_text {
            self.out.py2_str(attr.as_bytes());
        } else {
            self.out.text(attr);
        }
        self.out.raw(&[op::TUPLE2, op::REDUCE]);
        Ok(())
    }

    /// GLOBAL (or INST: `code`) for a (py3-spelled) module and name, renamed as `fix_imports`
    /// does. A dotted name has no GLOBAL form before protocol 4 (see [`Self::stack_global`]):
    /// refused.
    fn global(&mut self, code: u8, module: &str, name: &str) -> Result<(), TranscodeError> {
        let (m, n) = if self.renames(module, name) {
            compat::py3_to_py2(module, name)
        } else {
            (module.into(), name.into())
        };
        if !global_part_ok(&m) || !global_part_ok(&n) || n.contains('.') {
            return Err(self.err(ErrorKind::Unsupported));
        }
        self.out.named(code, &m, &n);
        Ok(())
    }

    fn op_at(&self, pos: usize) -> Result<Op<'a>, TranscodeError> {
        self.src
            .get(pos..)
            .and_then(|s| Reader::new(s).next())
            .and_then(Result::ok)
            .map(|o| Op { pos, ..o })
            .ok_or_else(|| self.err(ErrorKind::Unsupported))
    }

    /// The text of the text op at `pos` (borrowed from the input unless escapes were decoded).
    fn text_of(&self, pos: usize) -> Result<Cow<'a, str>, TranscodeError> {
        let o = self.op_at(pos)?;
        strings::text_utf8(&o).ok_or_else(|| self.err(ErrorKind::Unsupported))
    }

    fn step(&mut self, o: &Op<'a>, own: Option<Ann>) -> Result<(), TranscodeError> {
        let is_put = matches!(o.code, op::PUT | op::BINPUT | op::LONG_BINPUT | op::MEMOIZE);
        if is_put {
            let orig = match o.code {
                op::MEMOIZE => self.memo_len,
                _ => o
                    .memo_index()
                    .ok_or_else(|| self.err(ErrorKind::BadArgument))?,
            };
            let slot = if own == Some(Ann::DeferMemo) {
                Slot::Deferred
            } else if let Some(p) = self.pending {
                p
            } else {
                let id = self.fresh_id()?;
                self.out.put(id);
                Slot::New(id)
            };
            return self.define(orig, slot);
        }
        if o.code == op::FRAME {
            return Ok(());
        }
        self.pending = None;
        if own == Some(Ann::SkipGone) {
            self.pending = Some(Slot::Gone);
            return Ok(());
        }
        // `array._array_reconstructor(array.array, tc, mformat, bytes)` -> `array.array(tc,
        // [item, ...])`: the items replace the bytes, a 2-tuple the 4-tuple (`scan/arrays.rs`).
        if let Some(ann @ (Ann::ArrayItems { .. } | Ann::ArrayArgs | Ann::ArrayArgsPop { .. })) =
            own
        {
            match ann {
                Ann::ArrayItems { mformat, src } => self.array_list(mformat, src)?,
                Ann::ArrayArgsPop { mformat, src } => {
                    self.out.byte(op::POP);
                    self.array_list(mformat, src)?;
                    self.out.byte(op::TUPLE2);
                }
                _ => self.out.byte(op::TUPLE2),
            }
            self.pending = Some(Slot::Gone);
            return Ok(());
        }
        if own == Some(Ann::Skip) {
            self.pending = Some(match o.code {
                op::GET | op::BINGET | op::LONG_BINGET => self.lookup(o)?,
                _ => Slot::Lazy(o.pos),
            });
            return Ok(());
        }
        match o.code {
            op::PROTO => {}
            op::GET | op::BINGET | op::LONG_BINGET if matches!(own, Some(Ann::Fresh { .. })) => {
                if let Some(Ann::Fresh { src, keep }) = own {
                    // The memoized text has the other rule: this use gets its own copy.
                    let utf8 = self.utf8_text;
                    self.utf8_text = utf8 && !keep;
                    let r = self.op_at(src).and_then(|t| self.text(&t));
                    self.utf8_text = utf8;
                    r?;
                }
            }
            op::GET | op::BINGET | op::LONG_BINGET => {
                let orig = o
                    .memo_index()
                    .ok_or_else(|| self.err(ErrorKind::BadArgument))?;
                match self.lookup(o)? {
                    Slot::New(id) => self.out.get(id),
                    Slot::Lazy(p) => {
                        let lazy = self.op_at(p)?;
                        match lazy.code {
                            op::EMPTY_TUPLE | op::NONE => self.out.byte(lazy.code),
                            op::GLOBAL => self.global_op(&lazy)?,
                            _ => self.text(&lazy)?,
                        }
                        let id = self.fresh_id()?;
                        self.out.put(id);
                        self.define(orig, Slot::New(id))?;
                    }
                    Slot::Deferred | Slot::Gone => return Err(self.err(ErrorKind::Unsupported)),
                }
            }
            op::UNICODE | op::BINUNICODE | op::SHORT_BINUNICODE | op::BINUNICODE8 => {
                let utf8 = self.utf8_text;
                if own == Some(Ann::KeepText) {
                    self.utf8_text = false;
                }
                let r = self.text(o);
                self.utf8_text = utf8;
                r?;
            }
            op::SHORT_BINBYTES | op::BINBYTES | op::BINBYTES8 => match own {
                Some(Ann::ClearFold { byte }) => {
                    let mut state = o.arg.to_vec();
                    if let Some(b) = state.get_mut(usize::from(byte)) {
                        *b &= 0x7f;
                    }
                    self.bytes(&state)?;
                }
                _ => self.bytes(o.arg)?,
            },
            op::BYTEARRAY8 => {
                self.ins(Ins::Bytearray)?;
                if o.arg.is_empty() {
                    self.out.byte(op::EMPTY_TUPLE);
                } else {
                    self.bytes(o.arg)?;
                    self.out.byte(op::TUPLE1);
                }
                self.out.byte(op::REDUCE);
            }
            op::EMPTY_SET => {
                self.ins(Ins::Set)?;
                self.out.byte(op::EMPTY_LIST);
            }
            op::ADDITEMS => self.out.byte(op::APPENDS),
            op::FROZENSET => self.out.raw(&[op::APPENDS, op::TUPLE1, op::REDUCE]),
            op::STACK_GLOBAL => match own {
                Some(Ann::StackGlobal { module, name }) => {
                    let (m, n) = (self.text_of(module)?, self.text_of(name)?);
                    self.stack_global(&m, &n)?;
                }
                _ => return Err(self.err(ErrorKind::Unsupported)),
            },
            // INST names its class as GLOBAL does (what a round trip through Python 3 writes
            // renamed too).
            op::GLOBAL | op::INST => self.global_op(o)?,
            op::NEWOBJ | op::REDUCE if own == Some(Ann::NewobjToObj) => self.out.byte(op::OBJ),
            // `_UTC((timedelta(0),))` -> `_UTC()`, which is `pytz.utc`.
            op::REDUCE if own == Some(Ann::UtcCall) => {
                self.out.raw(&[op::POP, op::EMPTY_TUPLE, op::REDUCE]);
            }
            _ if o.info().proto <= 2 => self.out.raw(o.raw),
            _ => return Err(self.err(ErrorKind::Unsupported)),
        }
        Ok(())
    }

    /// Whether `module.name` is renamed: the writer was not Python 2, `fix_imports` renames
    /// it, and it is not also a Python 2 name unless the value's names are Python 3's
    /// (`compat::renamed_name_is_py2_too`, `Summary::py3_names`).
    fn renames(&self, module: &str, name: &str) -> bool {
        self.rename
            && compat::py3_to_py2(module, name) != (module.into(), name.into())
            && (self.py3_names || !compat::renamed_name_is_py2_too(module, name))
    }

    /// GLOBAL as written, renamed when the writer was Python 3.
    fn global_op(&mut self, o: &Op<'a>) -> Result<(), TranscodeError> {
        let (m, n) = o
            .global_pair()
            .ok_or_else(|| self.err(ErrorKind::BadArgument))?;
        match (std::str::from_utf8(m), std::str::from_utf8(n)) {
            (Ok(m), Ok(n)) if self.renames(m, n) => self.global(o.code, m, n),
            _ => {
                self.out.raw(o.raw);
                Ok(())
            }
        }
    }

    /// The list of an array's items: those of the bytes op at `src` in machine format
    /// `mformat` (`array.rs`).
    fn array_list(&mut self, mformat: u8, src: usize) -> Result<(), TranscodeError> {
        let bytes = self.op_at(src)?.arg;
        if !array::write_items(&mut self.out, mformat, bytes) {
            return Err(self.err(ErrorKind::Unsupported));
        }
        Ok(())
    }

    fn lookup(&self, o: &Op<'a>) -> Result<Slot, TranscodeError> {
        let orig = o
            .memo_index()
            .ok_or_else(|| self.err(ErrorKind::BadArgument))?;
        usize::try_from(orig)
            .ok()
            .and_then(|i| self.memo.get(i).copied().flatten())
            .ok_or_else(|| self.err(ErrorKind::BadMemo))
    }
}
