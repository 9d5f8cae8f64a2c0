//! The Python 3 reader's writer: py2 `str`s per the policy, binary state as `bytes`, the rest
//! copied as it is.

use super::super::super::opcode as op;
use super::super::super::strings::{self, Py3Form};
use super::super::super::writer::Out;
use super::super::super::Py3Str;
use super::super::decode::{next, py2_str_bytes, FOp};
use super::super::reuse;
use super::super::scan::FULL;
use super::{Runs, Sink};

/// What the Python 3 writer notes while it writes (kept per thread between values).
#[derive(Default)]
pub(in super::super) struct Py3Log {
    /// FRAMEs met before writing began (dropped when it begins).
    frames: Vec<u32>,
    /// After each cut: where the input run restarts and the output length there (input and
    /// output offsets of everything copied since).
    cuts: Vec<(u32, u32)>,
    /// py2 `str` ops in the pending run that become `bytes` by their opcode alone.
    patches: Vec<u32>,
}

impl Py3Log {
    pub(in super::super) fn reset(&mut self, keep: usize) {
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
pub(in super::super) struct Py3Sink<'o> {
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
    pub(in super::super) gave_up: bool,
    /// The last py2 `str` written as `bytes` (what a REDUCE right after mostly asks about).
    last_bytes: usize,
}

impl<'o> Py3Sink<'o> {
    pub(in super::super) fn new(
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
    pub(in super::super) fn changed(&self) -> bool {
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
        // Activated first: that copies up to the last FRAME noted, which may lie past `pos`.
        if !self.active {
            self.activate(src);
        }
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
