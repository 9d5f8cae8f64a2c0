//! What the validating pass does with each op: nothing ([`NoSink`]), or write it for a reader
//! ([`Py2Sink`], [`Py3Sink`]), copying runs of unchanged ops in one go each.

use super::super::opcode as op;
use super::super::scan::Ann;
use super::super::strings::{self, Py3Form};
use super::super::writer::{Ins, Out};
use super::super::Py3Str;
use super::decode::{memo_index, next, py2_str_bytes, FOp};
use super::globals::{Known, KnownGlobals};
use super::reuse;
use super::scan::{FULL, PLAIN};

/// What the validating pass does with each op once it is validated.
pub(super) trait Sink {
    /// Which ops the scan's inner loop (`scan/run.rs`) may take without calling [`Sink::op`]
    /// for them (it calls nothing else for those ops): none (0), [`FULL`] or [`PLAIN`].
    const RUN: u8 = 0;

    /// Up to which input offset the inner loop may take them (from where it is called).
    #[inline(always)]
    fn run_until(&self) -> usize {
        usize::MAX
    }

    /// The inner loop took `n` ops that are not memo PUTs.
    #[inline(always)]
    fn took(&mut self, _n: u32) {}

    /// For a [`PLAIN`] sink: writes the memo PUT at `pos` (valid, of input index `idx`,
    /// ending at `end`) as [`Sink::op`] would, `taken` plain ops after the last [`Sink::took`],
    /// and says so; or does nothing and says so (the main loop then calls [`Sink::op`]).
    #[inline(always)]
    fn put_in_run(&mut self, _: &[u8], _: usize, _: usize, _: usize, _taken: u32) -> bool {
        false
    }

    /// The op at `pos` is valid so far; `None` gives up (the general path decides).
    fn op(&mut self, src: &[u8], pos: usize, o: FOp) -> Option<()>;
    /// A GLOBAL, INST or STACK_GLOBAL op (valid so far) naming entry `e` of `known`.
    #[inline(always)]
    fn global(
        &mut self,
        src: &[u8],
        pos: usize,
        o: FOp,
        _known: &KnownGlobals,
        _e: u32,
    ) -> Option<()> {
        self.op(src, pos, o)
    }

    /// A FRAME op (before [`Sink::op`] is called for it).
    #[inline(always)]
    fn frame(&mut self, _src: &[u8], _pos: usize, _o: FOp) {}

    /// A py2 `str` op holding `bytes` (`ascii` or not), before [`Sink::op`] is called for it.
    #[inline(always)]
    fn py2_str(
        &mut self,
        _src: &[u8],
        _pos: usize,
        _o: FOp,
        _bytes: &[u8],
        _ascii: bool,
    ) -> Option<()> {
        Some(())
    }

    /// The py2 `str` op at `pos` (seen earlier) is the binary state of a constructor
    /// (datetime & co.): a Python 3 reader must get `bytes` there.
    #[inline(always)]
    fn binary_state(&mut self, _src: &[u8], _pos: usize) -> Option<()> {
        Some(())
    }

    /// STOP was reached and the whole pickle is valid.
    fn finish(&mut self, src: &[u8]);
}

/// Validation only.
pub(super) struct NoSink;

impl Sink for NoSink {
    const RUN: u8 = FULL;

    #[inline(always)]
    fn op(&mut self, _: &[u8], _: usize, _: FOp) -> Option<()> {
        Some(())
    }

    #[inline(always)]
    fn finish(&mut self, _: &[u8]) {}
}

/// Copies runs of ops that stay as they are in one go each.
struct Runs<'o> {
    out: &'o mut Out,
    /// Start of the pending run of unchanged input.
    from: usize,
}

impl Runs<'_> {
    /// Copies the pending run up to `pos` (the op there is rewritten or dropped) and restarts
    /// the run at `end`.
    #[inline(always)]
    fn cut(&mut self, src: &[u8], pos: usize, end: usize) {
        let run = &src[self.from..pos];
        self.out.raw(run);
        self.from = end;
    }
}

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
pub(super) struct Py2Sink<'o> {
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
    pub(super) handed_over: bool,
    /// Renamed a global (right only if Python 2 did not write the pickle).
    pub(super) renamed: bool,
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
    pub(super) fn new(
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

/// What the Python 3 writer notes while it writes (kept per thread between values).
#[derive(Default)]
pub(super) struct Py3Log {
    /// FRAMEs met before writing began (dropped when it begins).
    frames: Vec<u32>,
    /// After each cut: where the input run restarts and the output length there (input and
    /// output offsets of everything copied since).
    cuts: Vec<(u32, u32)>,
    /// py2 `str` ops in the pending run that become `bytes` by their opcode alone.
    patches: Vec<u32>,
}

impl Py3Log {
    pub(super) fn reset(&mut self, keep: usize) {
        reuse(&mut self.frames, keep);
        reuse(&mut self.cuts, keep);
        reuse(&mut self.patches, keep);
    }
}

/// The input for a Python 3 reader (what `py3.rs` writes): FRAMEs dropped, py2 `str`s per the
/// `py3_str` policy, except binary state (datetime & co.), which is always `bytes`.
///
/// Written in the validating pass itself, lazily: nothing is copied before the first op that
/// changes (FRAMEs met until then are noted and dropped then), so a value that needs nothing
/// costs nothing here. Which py2 `str` is binary state is only known at the REDUCE that gets
/// it, after the `str` was written: [`Sink::binary_state`] turns what was written into
/// `bytes` where that keeps its size (SHORT_BINSTRING -> SHORT_BINBYTES, a long BINSTRING ->
/// BINBYTES, or not yet copied); anything else gives up, and a second pass writes the value
/// knowing every binary-state offset up front (`as_bytes`).
pub(super) struct Py3Sink<'o> {
    runs: Runs<'o>,
    policy: Py3Str,
    /// Second pass: the offsets of binary-state py2 `str`s (always `bytes`), sorted; consumed
    /// front to back. Empty in the first pass.
    as_bytes: &'o [u32],
    /// Writing has begun (an op changed).
    active: bool,
    log: &'o mut Py3Log,
    /// A binary-state `str` could not be turned into `bytes` where it was written: this pass
    /// stopped writing, the caller writes the value again.
    pub(super) gave_up: bool,
    /// The last py2 `str` written as `bytes` (what a REDUCE right after mostly asks about).
    last_bytes: usize,
}

impl<'o> Py3Sink<'o> {
    pub(super) fn new(
        out: &'o mut Out,
        policy: Py3Str,
        as_bytes: &'o [u32],
        log: &'o mut Py3Log,
    ) -> Self {
        log.frames.clear();
        log.cuts.clear();
        log.patches.clear();
        Py3Sink {
            runs: Runs { out, from: 0 },
            policy,
            as_bytes,
            active: false,
            log,
            gave_up: false,
            last_bytes: usize::MAX,
        }
    }

    /// Whether anything was written (the value changes).
    pub(super) fn changed(&self) -> bool {
        self.active
    }

    /// Writing begins: what was copied so far is the input less its FRAMEs.
    #[inline(never)]
    fn activate(&mut self, src: &[u8]) {
        self.active = true;
        self.runs.out.buf.reserve(src.len() + 16);
        for i in 0..self.log.frames.len() {
            let f = self.log.frames[i] as usize;
            self.cut(src, f, f + 9, |_| {});
        }
    }

    /// Copies the pending run up to `pos` and restarts it at `end`; the op between is dropped,
    /// or rewritten by `write`. Notes where the run restarts in the input and the output.
    #[inline(always)]
    fn cut(&mut self, src: &[u8], pos: usize, end: usize, write: impl FnOnce(&mut Out)) {
        self.copy_run(src, pos, end);
        write(self.runs.out);
        // Offsets fit in u32: inputs past 2^29 bytes are not scanned.
        self.log
            .cuts
            .push((end as u32, self.runs.out.buf.len() as u32));
    }

    /// Copies the pending run up to `pos` (restarting it at `end`) with its patched opcodes.
    #[inline(always)]
    fn copy_run(&mut self, src: &[u8], pos: usize, end: usize) {
        let (from, base) = (self.runs.from, self.runs.out.buf.len());
        self.runs.cut(src, pos, end);
        if !self.log.patches.is_empty() {
            self.patch(src, from, base);
        }
    }

    /// The run copied from input offset `from` to output offset `base` gets its patches: each
    /// py2 `str` op there becomes the `bytes` op of the same layout.
    #[inline(never)]
    fn patch(&mut self, src: &[u8], from: usize, base: usize) {
        let buf = &mut self.runs.out.buf;
        for &p in self.log.patches.iter() {
            let w = base + (p as usize - from);
            if let Some(b) = buf.get_mut(w) {
                *b = match src[p as usize] {
                    op::SHORT_BINSTRING => op::SHORT_BINBYTES,
                    _ => op::BINBYTES,
                };
            }
        }
        self.log.patches.clear();
    }

    /// Writes the py2 `str` op at `pos..end` holding `bytes` as `bytes`: where `bytes` has the
    /// same layout (SHORT_BINSTRING -> SHORT_BINBYTES, a BINSTRING past 255 bytes -> BINBYTES,
    /// what `Out::py3_bytes` writes), only its opcode changes, when its run is copied.
    #[inline(always)]
    fn write_bytes(&mut self, src: &[u8], pos: usize, end: usize, bytes: &[u8]) {
        if !self.active {
            self.activate(src);
        }
        self.last_bytes = pos;
        let same_layout = match src[pos] {
            op::SHORT_BINSTRING => true,
            op::BINSTRING => bytes.len() > 255,
            _ => false,
        };
        if same_layout {
            self.log.patches.push(pos as u32);
        } else {
            self.cut(src, pos, end, |out| out.py3_bytes(bytes));
        }
    }

    /// [`Sink::binary_state`] of a py2 `str` not just written as bytes.
    #[inline(never)]
    fn make_bytes(&mut self, src: &[u8], pos: usize) -> Option<()> {
        if pos >= self.runs.from {
            // Not copied yet (or nothing was): written as `bytes` now.
            let o = next(src, pos)?;
            self.write_bytes(src, pos, o.end, &py2_str_bytes(src, o)?);
            return Some(());
        }
        // Copied or written already: where it went in the output.
        let i = self.log.cuts.partition_point(|&(at, _)| at as usize <= pos);
        let (at, out_at) = match i {
            0 => (0, 0),
            _ => self.log.cuts[i - 1],
        };
        let w = out_at as usize + (pos - at as usize);
        let buf = &mut self.runs.out.buf;
        match buf.get(w).copied() {
            Some(op::SHORT_BINBYTES | op::BINBYTES) => {}
            Some(op::SHORT_BINSTRING) => buf[w] = op::SHORT_BINBYTES,
            // A BINSTRING longer than 255 bytes is BINBYTES of the same length.
            Some(op::BINSTRING) if buf.get(w + 1..w + 5).is_some_and(|n| n[1..] != [0, 0, 0]) => {
                buf[w] = op::BINBYTES
            }
            _ => self.gave_up = true,
        }
        Some(())
    }
}

impl Sink for Py3Sink<'_> {
    /// [`Sink::op`] does nothing.
    const RUN: u8 = FULL;

    /// Only FRAMEs and py2 `str`s change (below).
    #[inline(always)]
    fn op(&mut self, _: &[u8], _: usize, _: FOp) -> Option<()> {
        Some(())
    }

    #[inline(always)]
    fn frame(&mut self, src: &[u8], pos: usize, o: FOp) {
        if self.gave_up {
            return;
        }
        if self.active {
            self.cut(src, pos, o.end, |_| {});
        } else {
            self.log.frames.push(pos as u32);
        }
    }

    #[inline(always)]
    fn py2_str(&mut self, src: &[u8], pos: usize, o: FOp, bytes: &[u8], ascii: bool) -> Option<()> {
        if self.gave_up {
            return Some(());
        }
        while self.as_bytes.first().is_some_and(|&p| (p as usize) < pos) {
            self.as_bytes = &self.as_bytes[1..];
        }
        if self.as_bytes.first() == Some(&(pos as u32)) {
            self.write_bytes(src, pos, o.end, bytes);
            return Some(());
        }
        let form = match ascii {
            // What `py3_form` says of ASCII under the text policies.
            true if self.policy != Py3Str::Bytes => return Some(()),
            true => Py3Form::Bytes,
            false => strings::py3_form_non_ascii(bytes, self.policy),
        };
        match form {
            Py3Form::Keep => {}
            Py3Form::Text(t) => {
                if !self.active {
                    self.activate(src);
                }
                self.cut(src, pos, o.end, |out| out.text(&t));
            }
            Py3Form::Bytes => self.write_bytes(src, pos, o.end, bytes),
        }
        Some(())
    }

    fn binary_state(&mut self, src: &[u8], pos: usize) -> Option<()> {
        // Mostly the str just written as bytes.
        if self.gave_up || pos == self.last_bytes {
            return Some(());
        }
        self.make_bytes(src, pos)
    }

    fn finish(&mut self, src: &[u8]) {
        if self.active && !self.gave_up {
            self.copy_run(src, src.len(), src.len());
        }
    }
}
