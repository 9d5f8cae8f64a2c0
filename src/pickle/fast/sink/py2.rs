//! The Python 2 reader's writer: protocol 2 as `downgrade.rs` writes it, byte for byte.

use super::super::super::opcode as op;
use super::super::super::scan::Ann;
use super::super::super::writer::{Ins, Out};
use super::super::decode::{memo_index, next, FOp};
use super::super::globals::{Known, KnownGlobals};
use super::super::scan::PLAIN;
use super::{Runs, Sink};

/// Protocol 2 for a Python 2 reader, written as `downgrade.rs` writes it (byte for byte): PROTO
/// 2 first, FRAMEs dropped, short/8-byte text -> BINUNICODE (or a py2 `str` under the `utf8`
/// text policy), bytes -> `_codecs.encode(<latin-1 text>, 'latin1')` and the other globals
/// CPython inserts (memoized once), globals renamed as `fix_imports` does, STACK_GLOBAL -> GLOBAL
/// in place of its two string ops, and memo ids renumbered in output order.
///
/// It assumes a pickle not written by Python 2 (names renamed, text policy applied); the caller
/// checks that against the scan's verdict. Sets need the scan's plan (where each set is
/// complete): without one it stops at the first set, and the caller runs it again with the
/// plan of the first pass. At protocol 0 text under `utf8` it stops for good, and the caller
/// has `downgrade.rs` write the value.
pub(in super::super) struct Py2Sink<'o> {
    runs: Runs<'o>,
    utf8: bool,
    max_memo: usize,
    next_id: u32,
    /// Per input memo index, where it lives in the output (see [`NEW_MASK`]); unused while
    /// `identity` holds.
    memo: &'o mut Vec<u32>,
    /// Every input index so far was PUT in order (0, 1, 2, ...) and nothing was inserted or
    /// taken back: output ids equal input ones (the common case, kept without a map).
    identity: bool,
    /// Input memo indices defined so far (MEMOIZE's index).
    memo_len: usize,
    /// Output ids of the globals and constant inserted so far (see [`Ins`]).
    inserted: [Option<u32>; Ins::COUNT],
    /// Counts the ops that are not PUTs or FRAMEs (from 1).
    seq: u32,
    /// The last two text ops or GETs, as a STACK_GLOBAL may take them back (when they are the
    /// last two ops by `seq`).
    recent: [Recent; 2],
    /// The scan's plan for sets (where each closes, which PUTs wait for that), sorted.
    plan: &'o [(usize, Ann)],
    /// Met a construct it does not write (see above): stopped writing.
    pub(in super::super) handed_over: bool,
    /// Renamed a global (right only if Python 2 did not write the pickle).
    pub(in super::super) renamed: bool,
}

/// Output slot encoding: an output id, or (with [`LAZY`]) the offset of a text op folded into a
/// GLOBAL, written out on its first GET as `downgrade.rs` does; [`NONE`]: never PUT;
/// [`DEFERRED`]: a set still being built (PUT where it closes).
const LAZY: u32 = 1 << 31;
const NONE: u32 = u32::MAX;
const DEFERRED: u32 = u32::MAX - 1;
/// Output ids stay below this (the memo limit is far lower).
const NEW_MASK: u32 = LAZY - 1;

/// Where a text op or GET began in the output and what its PUTs defined, so that a
/// STACK_GLOBAL can take it back.
#[derive(Clone, Copy)]
struct Recent {
    /// Which op it is (see [`Py2Sink::seq`]).
    seq: u32,
    pos: u32,
    out_at: u32,
    next_id: u32,
    /// For a GET: the slot it fetched (before a folded text was written out).
    fetched: u32,
    /// Input indices PUT right after the op; `puts_len` past 2 means too many to take back.
    puts: [u32; 2],
    puts_len: u32,
}

impl Recent {
    const EMPTY: Recent = Recent {
        seq: 0,
        pos: u32::MAX,
        out_at: 0,
        next_id: 0,
        fetched: NONE,
        puts: [0; 2],
        puts_len: 0,
    };
}

impl<'o> Py2Sink<'o> {
    /// A writer; `plan`: the first pass's plan, to write sets (see above).
    pub(in super::super) fn new(
        out: &'o mut Out,
        memo: &'o mut Vec<u32>,
        utf8: bool,
        max_memo: usize,
        plan: Option<&'o [(usize, Ann)]>,
    ) -> Self {
        out.raw(&[op::PROTO, 2]);
        memo.clear();
        Py2Sink {
            runs: Runs { out, from: 0 },
            utf8,
            max_memo,
            next_id: 0,
            memo,
            identity: true,
            memo_len: 0,
            inserted: [None; Ins::COUNT],
            seq: 0,
            recent: [Recent::EMPTY; 2],
            plan: plan.unwrap_or(&[]),
            handed_over: false,
            renamed: false,
        }
    }

    fn fresh_id(&mut self) -> Option<u32> {
        let id = self.next_id;
        if id as usize >= self.max_memo || id >= NEW_MASK {
            return None;
        }
        self.next_id += 1;
        Some(id)
    }

    /// Leaves the identity mapping: from now on `memo` maps every index.
    #[cold]
    fn mapped(&mut self) {
        if self.identity {
            self.identity = false;
            // Indices 0..memo_len were PUT so far, each with its own id (`next_id` may already
            // count the PUT being written).
            self.memo.clear();
            self.memo.extend(0..self.memo_len as u32);
        }
    }

    /// Sets input index `idx` to `slot`.
    #[inline(always)]
    fn define(&mut self, idx: usize, slot: u32) {
        if idx == self.memo.len() {
            self.memo.push(slot);
            self.memo_len += 1;
            return;
        }
        if idx > self.memo.len() {
            self.memo.resize(idx + 1, NONE);
        }
        if self.memo[idx] == NONE {
            self.memo_len += 1;
        }
        self.memo[idx] = slot;
    }

    /// An inserted global: GLOBAL + PUT the first time, GET after.
    fn ins(&mut self, which: Ins) -> Option<()> {
        let k = which as usize;
        if let Some(id) = self.inserted[k] {
            self.runs.out.get(id);
            return Some(());
        }
        self.mapped();
        self.runs.out.inserted(which);
        let id = self.fresh_id()?;
        self.runs.out.put(id);
        self.inserted[k] = Some(id);
        Some(())
    }

    /// `bytes` as CPython 3 writes it for protocol < 3 (`downgrade.rs` `bytes`).
    fn bytes(&mut self, payload: &[u8]) -> Option<()> {
        if payload.is_empty() {
            self.ins(Ins::Bytes)?;
            self.runs.out.raw(&[op::EMPTY_TUPLE, op::REDUCE]);
            return Some(());
        }
        self.ins(Ins::CodecsEncode)?;
        self.runs.out.text_latin1(payload);
        self.ins(Ins::Latin1)?;
        self.runs.out.raw(&[op::TUPLE2, op::REDUCE]);
        Some(())
    }

    /// A binary text op's payload for a Python 2 reader (under `utf8`, text that is not valid
    /// UTF-8 is the general path's).
    fn text(&mut self, payload: &[u8]) -> Option<()> {
        let out = &mut *self.runs.out;
        if self.utf8 {
            out.py2_str(std::str::from_utf8(payload).ok()?.as_bytes());
        } else {
            out.byte(op::BINUNICODE);
            out.raw(&u32::try_from(payload.len()).ok()?.to_le_bytes());
            out.raw(payload);
        }
        Some(())
    }

    /// GLOBAL (or INST: `code`) for a Python 2 reader (`downgrade.rs` `global`: names it
    /// cannot write there are the general path's).
    fn global(&mut self, code: u8, known: &Known) -> Option<()> {
        if !known.py2_writable {
            return None;
        }
        self.runs
            .out
            .named(code, &known.py2.module, &known.py2.name);
        Some(())
    }

    /// Takes back the two ops before a STACK_GLOBAL (their output, the ids they took, what they
    /// did to the memo map); their PUTs then hold what `downgrade.rs` gives a skipped op: the
    /// text op itself (written on a later GET) or the slot a GET fetched.
    fn take_back(&mut self, src: &[u8], pos: usize, end: usize) -> Option<()> {
        self.mapped();
        let [first, second] = self.recent;
        // The scan checked that the two ops before are text ops or GETs.
        if second.seq != self.seq
            || first.seq.wrapping_add(1) != second.seq
            || first.puts_len > 2
            || second.puts_len > 2
            || first.out_at == u32::MAX
        {
            return None;
        }
        self.runs.cut(src, pos, end);
        self.runs.out.buf.truncate(first.out_at as usize);
        self.next_id = first.next_id;
        let mut slots = [NONE; 2];
        for (r, slot) in [second, first].into_iter().zip(&mut slots) {
            let o = next(src, r.pos as usize)?;
            *slot = match o.code {
                op::BINGET | op::LONG_BINGET | op::GET => {
                    // A slot made by the taken-back ops themselves has no output any more.
                    if r.fetched & LAZY == 0 && r.fetched >= first.next_id {
                        return None;
                    }
                    // Undoes the write-out of a folded text.
                    *self.memo.get_mut(memo_index(src, o)?)? = r.fetched;
                    r.fetched
                }
                _ => LAZY | r.pos,
            };
        }
        for (r, slot) in [(first, slots[1]), (second, slots[0])] {
            for &idx in &r.puts[..r.puts_len as usize] {
                *self.memo.get_mut(idx as usize)? = slot;
            }
        }
        Some(())
    }

    /// What the plan says before the op at `pos`: sets complete there are closed (`set(list)`,
    /// then their deferred PUT); returns whether the op is a set's deferred PUT.
    #[inline]
    fn planned(&mut self, src: &[u8], pos: usize) -> Option<bool> {
        let mut deferred = false;
        while let Some(&(at, ann)) = self.plan.first() {
            if at > pos {
                break;
            }
            self.plan = &self.plan[1..];
            if at < pos {
                continue;
            }
            match ann {
                Ann::SetClose { memo } => {
                    self.runs.cut(src, pos, pos);
                    self.runs.out.raw(&[op::TUPLE1, op::REDUCE]);
                    if let Some(idx) = memo {
                        let id = self.fresh_id()?;
                        self.runs.out.put(id);
                        self.mapped();
                        self.define(usize::try_from(idx).ok()?, id);
                    }
                }
                Ann::DeferMemo => deferred = true,
                _ => {}
            }
        }
        Some(deferred)
    }

    /// A GET for a Python 2 reader: the output id, or the folded text written out and memoized.
    fn fetch(&mut self, src: &[u8], idx: usize) -> Option<()> {
        if self.identity {
            // Indices 0..memo_len are defined, each with its own id.
            let id = u32::try_from(idx).ok().filter(|_| idx < self.memo_len)?;
            self.recent[1].fetched = id;
            self.runs.out.get(id);
            return Some(());
        }
        let slot = *self.memo.get(idx)?;
        self.recent[1].fetched = slot;
        if slot == NONE || slot == DEFERRED {
            return None;
        }
        if slot & LAZY == 0 {
            self.runs.out.get(slot);
            return Some(());
        }
        // A binary text op (the scan folds no other kind).
        let lazy = next(src, (slot & NEW_MASK) as usize)?;
        if lazy.code == op::UNICODE {
            return None;
        }
        self.text(lazy.arg(src))?;
        let id = self.fresh_id()?;
        self.runs.out.put(id);
        self.define(idx, id);
        Some(())
    }
}

impl Sink for Py2Sink<'_> {
    /// Plain ops (the `_` arm of [`Sink::op`]) are only counted (nothing at all once handed
    /// over), up to the plan's next point.
    const RUN: u8 = PLAIN;

    #[inline(always)]
    fn run_until(&self) -> usize {
        self.plan.first().map_or(usize::MAX, |&(at, _)| at)
    }

    #[inline(always)]
    fn took(&mut self, n: u32) {
        self.seq = self.seq.wrapping_add(n);
    }

    /// Only the common case of [`Sink::op`]'s PUT: output ids still equal input indices, and
    /// not right after a text op or GET (whose PUTs a STACK_GLOBAL may take back).
    #[inline(always)]
    fn put_in_run(&mut self, src: &[u8], pos: usize, end: usize, idx: usize, taken: u32) -> bool {
        if self.handed_over {
            return true;
        }
        if !self.identity
            || idx != self.next_id as usize
            || self.recent[1].seq == self.seq.wrapping_add(taken)
        {
            return false;
        }
        let Some(id) = self.fresh_id() else {
            return false;
        };
        self.runs.cut(src, pos, end);
        self.runs.out.put(id);
        self.memo_len += 1;
        true
    }

    #[inline(always)]
    fn op(&mut self, src: &[u8], pos: usize, o: FOp) -> Option<()> {
        if self.handed_over {
            return Some(());
        }
        let deferred = !self.plan.is_empty() && self.planned(src, pos)?;
        let is_put = matches!(o.code, op::MEMOIZE | op::BINPUT | op::LONG_BINPUT | op::PUT);
        if !is_put && o.code != op::FRAME {
            self.seq = self.seq.wrapping_add(1);
            if matches!(
                o.code,
                op::BINUNICODE
                    | op::SHORT_BINUNICODE
                    | op::BINUNICODE8
                    | op::BINGET
                    | op::LONG_BINGET
                    | op::GET
            ) {
                let r = &self.runs;
                self.recent[0] = self.recent[1];
                // Offsets fit in 32 bits: the scan takes no larger input, and output past 4 GiB
                // is never taken back (`take_back` refuses).
                self.recent[1] = Recent {
                    seq: self.seq,
                    pos: pos as u32,
                    out_at: u32::try_from(r.out.buf.len() + (pos - r.from)).unwrap_or(u32::MAX),
                    next_id: self.next_id,
                    ..Recent::EMPTY
                };
            }
        }
        match o.code {
            op::PROTO | op::FRAME => self.runs.cut(src, pos, o.end),
            // Protocol 0's raw-unicode-escape text as a py2 `str`, sets: `downgrade.rs`.
            op::UNICODE if self.utf8 => self.handed_over = true,
            op::EMPTY_SET => {
                if self.plan.is_empty() {
                    self.handed_over = true;
                } else {
                    self.runs.cut(src, pos, o.end);
                    self.ins(Ins::Set)?;
                    self.runs.out.byte(op::EMPTY_LIST);
                }
            }
            op::ADDITEMS => {
                self.runs.cut(src, pos, o.end);
                self.runs.out.byte(op::APPENDS);
            }
            // The set's PUT waits for its close.
            op::MEMOIZE | op::BINPUT | op::LONG_BINPUT | op::PUT if deferred => {
                let idx = match o.code {
                    op::MEMOIZE => self.memo_len,
                    _ => memo_index(src, o)?,
                };
                self.runs.cut(src, pos, o.end);
                self.mapped();
                self.define(idx, DEFERRED);
            }
            op::MEMOIZE | op::BINPUT | op::LONG_BINPUT | op::PUT => {
                let idx = match o.code {
                    op::MEMOIZE => self.memo_len,
                    _ => memo_index(src, o)?,
                };
                self.runs.cut(src, pos, o.end);
                let id = self.fresh_id()?;
                self.runs.out.put(id);
                let r = &mut self.recent[1];
                if r.seq == self.seq {
                    if let Some(p) = r.puts.get_mut(r.puts_len as usize) {
                        *p = u32::try_from(idx).ok()?;
                    }
                    r.puts_len += 1;
                }
                if self.identity && idx == id as usize {
                    self.memo_len += 1;
                } else {
                    self.mapped();
                    self.define(idx, id);
                }
            }
            op::BINGET | op::LONG_BINGET | op::GET => {
                self.runs.cut(src, pos, o.end);
                self.fetch(src, memo_index(src, o)?)?;
            }
            // BINUNICODE stays as it is (in the run) for `keep`.
            op::BINUNICODE | op::SHORT_BINUNICODE | op::BINUNICODE8
                if self.utf8 || o.code != op::BINUNICODE =>
            {
                self.runs.cut(src, pos, o.end);
                self.text(o.arg(src))?;
            }
            op::SHORT_BINBYTES | op::BINBYTES | op::BINBYTES8 => {
                self.runs.cut(src, pos, o.end);
                self.bytes(o.arg(src))?;
            }
            op::BYTEARRAY8 => {
                self.runs.cut(src, pos, o.end);
                self.ins(Ins::Bytearray)?;
                let payload = o.arg(src);
                if payload.is_empty() {
                    self.runs.out.byte(op::EMPTY_TUPLE);
                } else {
                    self.bytes(payload)?;
                    self.runs.out.byte(op::TUPLE1);
                }
                self.runs.out.byte(op::REDUCE);
            }
            _ => {}
        }
        Some(())
    }

    fn global(
        &mut self,
        src: &[u8],
        pos: usize,
        o: FOp,
        known: &KnownGlobals,
        e: u32,
    ) -> Option<()> {
        let known = known.entry(e);
        if self.handed_over {
            return Some(());
        }
        match o.code {
            op::STACK_GLOBAL => {
                if !self.plan.is_empty() {
                    self.planned(src, pos)?;
                }
                self.take_back(src, pos, o.end)?;
                // The STACK_GLOBAL itself is the last op now.
                self.seq = self.seq.wrapping_add(1);
                self.renamed |= known.renamed;
                self.global(op::GLOBAL, known)
            }
            op::GLOBAL | op::INST if known.renamed => {
                self.op(src, pos, o)?;
                self.runs.cut(src, pos, o.end);
                self.renamed = true;
                self.global(o.code, known)
            }
            _ => self.op(src, pos, o),
        }
    }

    fn finish(&mut self, src: &[u8]) {
        // Sets complete right before STOP (the last byte) close there; a failure there (the
        // memo limit) leaves the value to `downgrade.rs`.
        if !self.handed_over && !self.plan.is_empty() {
            let stop = src.len().saturating_sub(1);
            self.handed_over = self.planned(src, stop).is_none();
        }
        if !self.handed_over {
            self.runs.cut(src, src.len(), src.len());
        }
    }
}
