//! What the validating pass does with each op: nothing ([`NoSink`]), or write it for a reader
//! ([`Py2Sink`], [`Py3Sink`]), copying runs of unchanged ops in one go each.

use super::super::writer::Out;
use super::decode::FOp;
use super::globals::KnownGlobals;
use super::scan::FULL;
#[cfg(doc)]
use super::scan::PLAIN;

mod py2;
mod py3;

pub(super) use py2::Py2Sink;
pub(super) use py3::{Py3Log, Py3Sink};

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
