//! Pass 1, `array.array` at protocols 3-5 for a Python 2 reader: plans the rewrite of
//! `array._array_reconstructor(array.array, typecode, mformat, bytes)` into
//! `array.array(typecode, [item, ...])`, what CPython 3's own protocol-2 pickle writes
//! (`src/pickle/array.rs` has the machine formats). Only the exact op sequence CPython writes,
//! of `array.array` itself, is rewritten; anything else keeps the py3-only global and is
//! refused `py3_only_global`.

use super::*;
use crate::pickle::array;

impl<'a, 'p> Scanner<'a, 'p> {
    /// Counts a push of global `idx` when it is `array._array_reconstructor` (each must be
    /// consumed by a call [`Scanner::array_call`] rewrites).
    pub(super) fn array_pushed(&mut self, idx: u32) {
        if self.target() == Some(Runtime::Py2)
            && self
                .globals
                .get(idx as usize)
                .is_some_and(|g| g.array_reconstructor)
        {
            self.array_pushes += 1;
        }
    }

    /// REDUCE of `array._array_reconstructor` (a Python 2 reader): plans the rewrite, or
    /// refuses `py3_only_global` when the call is not one it converts with certainty.
    ///
    /// CPython 3 writes (`array_array___reduce_ex___impl`, protocol >= 3):
    /// `reconstructor MARK cls typecode mformat bytes TUPLE REDUCE`, `cls` being `array.array`
    /// (GLOBAL, STACK_GLOBAL or a GET), and BUILD with the instance dict after it when there
    /// is one. A subclass is refused: its protocol-2 form `cls(typecode, list)` calls its own
    /// `__new__` and `__init__`, which the reconstructor bypasses, and the pickle does not say
    /// what they do.
    pub(super) fn array_call(&mut self, func: Slot, args: Slot) -> Result<(), TranscodeError> {
        let Slot::Global { idx, via: rv } = func else {
            return Ok(());
        };
        if !self
            .globals
            .get(idx as usize)
            .is_some_and(|g| g.array_reconstructor)
        {
            return Ok(());
        }
        let refuse = || Err(self.m.err(ErrorKind::Py3OnlyGlobal));
        // Each call skips the op that pushed its reconstructor; a DUP's copy names the same
        // op (only a hand-made pickle has one), which cannot be skipped twice.
        if self.array_vias.contains(&rv) {
            return refuse();
        }
        let Some(plan) = self.array_plan(args) else {
            return refuse();
        };
        self.array_vias.insert(rv);
        // The output holds the class, the typecode, the list and a batch of items above the
        // stack the call leaves.
        let max = self.policy.map_or(usize::MAX, |p| p.limits.max_stack);
        if self.m.len() + 3 + array::BATCH > max {
            return Err(self.m.err(ErrorKind::LimitExceeded));
        }
        // The reconstructor itself: STACK_GLOBAL's own rewrite (its strings are skipped
        // already, and its ann is among the last few) gives way to skipping it.
        let own = match self.src.get(rv) {
            Some(&op::STACK_GLOBAL) => self
                .anns
                .iter()
                .rposition(|&(p, a)| p == rv && matches!(a, Ann::StackGlobal { .. })),
            _ => None,
        };
        match own {
            Some(i) => self.anns[i].1 = Ann::Skip,
            None => self.anns.push((rv, Ann::Skip)),
        }
        self.anns.push((plan.mark, Ann::Skip));
        self.anns.push((plan.mformat_op, Ann::Skip));
        self.array_items
            .push((plan.bytes_push, plan.bytes_op, plan.tuple, plan.mformat));
        // The typecode stays text, as in `array('i', [1])` (see `compat::text_args`).
        if self.keeps_matter() == Some(Runtime::Py2) {
            self.kept_uses.push(plan.typecode);
        }
        self.array_calls += 1;
        Ok(())
    }

    /// Where the parts of a convertible call are, or `None`.
    fn array_plan(&self, args: Slot) -> Option<ArrayPlan> {
        let Slot::Tuple(_, id) = args else {
            return None;
        };
        let &[cls, tc, mf, data] = self.tuple_items(id)? else {
            return None;
        };
        let (Slot::Global { idx: c, via: cv }, Slot::Text { src: ts, via: tv }) = (cls, tc) else {
            return None;
        };
        let g = self.globals.get(c as usize)?;
        if (&*g.module, &*g.name) != ("array", "array") {
            return None;
        }
        let typecode = self.text_at(ts)?;
        let &[typecode] = typecode.as_bytes() else {
            return None;
        };
        let (Slot::Scalar { pos: mp }, Slot::Bytes { src: bp }) = (mf, data) else {
            return None;
        };
        let m = self.op_at(mp)?;
        let mformat = match (m.code, m.arg) {
            (op::BININT1, &[b]) => b,
            (op::BININT2, &[lo, 0]) => lo,
            (op::BININT, &[lo, 0, 0, 0]) => lo,
            _ => return None,
        };
        if !array::accepts(typecode, mformat) {
            return None;
        }
        let bytes = self.op_at(bp)?;
        if !array::check(mformat, bytes.arg) {
            return None;
        }
        // The TUPLE is the op before REDUCE, and its MARK is followed by exactly the class
        // (one op, or STACK_GLOBAL's two strings and itself), the typecode, the mformat and
        // the bytes (memo PUTs and FRAMEs aside): each written where it stands, or skipped.
        let (tuple, mark) = self.last_tuple;
        if self.recent[RECENT - 1] != tuple {
            return None;
        }
        let mut ops = Vec::with_capacity(8);
        let mut at = mark;
        while at < tuple && ops.len() <= 8 {
            let o = self.op_at(at)?;
            if !matches!(
                o.code,
                op::PUT | op::BINPUT | op::LONG_BINPUT | op::MEMOIZE | op::FRAME
            ) {
                ops.push(at);
            }
            at += o.raw.len();
        }
        // The bytes are pushed by their own op or, when CPython memoized the same `bytes`
        // object before (`b''`, a one-byte `bytes`: CPython keeps one of each), by a GET.
        let bytes_push = ops.last().copied()?;
        let pushes_bytes = bytes_push == bp
            || matches!(
                self.src.get(bytes_push),
                Some(&(op::GET | op::BINGET | op::LONG_BINGET))
            );
        let tail = [cv, tv, mp, bytes_push];
        let shape_ok = pushes_bytes
            && match ops.as_slice() {
                [first, rest @ ..] if *first == mark => {
                    rest == tail
                        || (rest.len() == 6
                            && rest[2..] == tail
                            && self.src.get(cv) == Some(&op::STACK_GLOBAL))
                }
                _ => false,
            };
        shape_ok.then_some(ArrayPlan {
            mark,
            typecode: (ts, tv),
            mformat_op: mp,
            mformat,
            bytes_op: bp,
            bytes_push,
            tuple,
        })
    }

    /// The anns of each rewritten call's bytes: the op that pushes them becomes the list,
    /// unless it is the bytes op itself and a GET elsewhere fetches it too (CPython's one
    /// `b''`: an empty array beside an empty `bytes`), where the bytes are written as they
    /// stand, for that GET, and the TUPLE pops them and writes the list instead.
    pub(super) fn plan_array_items(&mut self) {
        if self.array_items.is_empty() {
            return;
        }
        self.bytes_gets.sort_unstable();
        for &(push, src, tuple, mformat) in &self.array_items {
            if push == src && self.bytes_gets.binary_search(&src).is_ok() {
                self.anns.push((tuple, Ann::ArrayArgsPop { mformat, src }));
            } else {
                self.anns.push((push, Ann::ArrayItems { mformat, src }));
                self.anns.push((tuple, Ann::ArrayArgs));
            }
        }
    }
}

/// The input offsets of a convertible `_array_reconstructor` call's parts.
struct ArrayPlan {
    mark: usize,
    /// (text op, op that pushed it).
    typecode: (usize, usize),
    mformat_op: usize,
    mformat: u8,
    bytes_op: usize,
    /// The op that pushes the bytes: the bytes op, or a GET of it.
    bytes_push: usize,
    tuple: usize,
}
