//! The fast path: one allocation-free validating pass over the opcodes CPython writes for
//! everyday values, which also writes the value when something must change (a second pass
//! only in the cases below).
//!
//! The general path (`scan.rs` + the rewriters) models every opcode with slot tags that point
//! back at offsets, a globals table and a rewrite plan, and allocates for each of them per value.
//! Most cached values need far less: numbers, py2 `str`, text, bytes, tuples, lists, dicts,
//! sets, memo PUTs/GETs, globals and the calls that use them (REDUCE, BUILD, NEWOBJ, classic
//! INST/OBJ), in binary and protocol-0 forms. This module validates those with compact `u32`
//! tags on per-thread scratch stacks and decides the outcome itself:
//! - Python 3 readers: py2 `str`s are rewritten in the validating pass (binary state of
//!   datetime & co. as `bytes`, patched in place when its REDUCE comes; a second pass when that
//!   cannot be done in place), everything else is copied in runs, nothing before the first
//!   change.
//! - Python 2 readers: protocol 3+ input is written in the validating pass itself, byte for
//!   byte as `downgrade.rs` writes it (globals renamed, STACK_GLOBAL folded, bytes as
//!   `_codecs.encode`, memo ids renumbered), with a second such pass for sets; input that turns
//!   out to be Python 2's, and protocol 0-2 input that changes, is written by `downgrade.rs`,
//!   the general path's own writer, following the plan this scan makes.
//!
//! It returns `None` (and [`super::transcode`] runs the general path) at the first opcode or
//! construct it does not decide with certainty: any stack/MARK/memo violation or limit, dicts
//! and sets whose keys of different string kinds share a content (collisions are possible; see
//! `scan/keys.rs`), classic-class rewrites, text-keeping constructors under the policies where
//! that matters, refusals. So every refusal still comes from the general path.
//!
//! Contract: when this returns `Some`, it is equal (outcome bytes and summary) to what the
//! general path returns for the same input and policy. Debug builds check that on every call (so
//! the whole test suite, the fuzz targets and their replay and the golden fixtures exercise it),
//! and `fast::tests` compares the two paths directly over the corpus, every prefix and mutants.
//!
//! Layout: `decode.rs` (reading one op of the subset), `scan.rs` (the validating pass and its
//! tags; `scan/run.rs` its inner loop over the commonest ops), `sink.rs` (what the pass does
//! with each op: nothing, or write it for a reader: `sink/py2.rs`, `sink/py3.rs`).

mod decode;
mod globals;
mod scan;
mod sink;

use std::cell::RefCell;

use bytes::Bytes;

use super::downgrade;
use super::opcode as op;
use super::scan::Ann;
use super::writer::Out;
use super::{Outcome, PickleLimits, Policy, Py2Text, Runtime, Summary, Transcoded, Writer};
use scan::{scan, Facts, Stacks};
use sink::{NoSink, Py2Sink, Py3Log, Py3Sink};

/// Working stacks kept per thread between values.
#[derive(Default)]
struct Scratch {
    stacks: Stacks,
    /// Offsets of the py2 `str`s that are binary state (`bytes` for a py3 reader), sorted.
    as_bytes: Vec<u32>,
    /// Rewrites up to [`SCRATCH_OUT`] bytes are written here, then copied out at their size.
    out: Vec<u8>,
    /// The fused Python 2 writer's memo map (input index -> output slot).
    memo: Vec<u32>,
    /// The first pass's plan while a second pass writes sets.
    plan: Vec<(usize, Ann)>,
    /// The Python 3 writer's notes (see [`Py3Sink`]).
    py3: Py3Log,
}

/// Rewrites estimated larger than this get their own buffer, handed over without a copy.
const SCRATCH_OUT: usize = 64 << 10;

/// Entries kept between values; a huge value's buffers are trimmed back to this afterwards.
const KEEP: usize = 1 << 16;

impl Scratch {
    fn reset(&mut self) {
        self.stacks.trim(KEEP);
        reuse(&mut self.as_bytes, KEEP);
        reuse(&mut self.out, 2 * SCRATCH_OUT);
        reuse(&mut self.memo, KEEP);
        reuse(&mut self.plan, KEEP);
        self.py3.reset(KEEP);
    }
}

/// Empties `v` for the next value, giving back what a huge value grew past `keep` entries
/// (the shrinking kept out of line: it is rare, and every value passes here).
#[inline(always)]
pub(super) fn reuse<T: Copy>(v: &mut Vec<T>, keep: usize) {
    v.clear();
    if v.capacity() > keep {
        shrink(v, keep);
    }
}

#[cold]
#[inline(never)]
fn shrink<T>(v: &mut Vec<T>, keep: usize) {
    v.shrink_to(keep);
}

thread_local! {
    static SCRATCH: RefCell<Scratch> = RefCell::new(Scratch::default());
}

fn with_scratch<R>(f: impl FnOnce(&mut Scratch) -> R) -> R {
    SCRATCH.with(|cell| match cell.try_borrow_mut() {
        Ok(mut s) => {
            s.reset();
            f(&mut s)
        }
        // Not reachable (nothing here re-enters), but never panic for it.
        Err(_) => f(&mut Scratch::default()),
    })
}

/// The summary of a plain-data pickle, or `None` (the general path decides).
pub(crate) fn analyze(src: &[u8]) -> Option<Summary> {
    with_scratch(|s| scan(src, None, &mut s.stacks, None, &mut NoSink)).map(|f| f.summary)
}

/// Transcodes a plain-data pickle, or `None` (the general path decides).
pub(crate) fn transcode(src: &Bytes, policy: &Policy) -> Option<Transcoded> {
    with_scratch(|s| match policy.target {
        Runtime::Py2 => to_py2(src, policy, s),
        Runtime::Py3 => to_py3(src, policy, s),
    })
}

fn done(facts: Facts, out: Option<Bytes>) -> Transcoded {
    Transcoded {
        outcome: match out {
            None => Outcome::Unchanged,
            Some(out) => Outcome::Rewritten(out),
        },
        summary: Some(facts.summary),
    }
}

/// For a Python 2 reader. A pickle that declares protocol 3+ always changes (PROTO 2 at
/// least), so it is validated and written in one fused pass (two with sets); anything else is
/// validated first and written in a second pass only if it turns out to need it.
fn to_py2(src: &[u8], policy: &Policy, s: &mut Scratch) -> Option<Transcoded> {
    let utf8_policy = policy.py2_text == Py2Text::Utf8;
    let fused = src.first() == Some(&op::PROTO) && src.get(1).is_some_and(|&p| p > 2);
    let (facts, mut out) = if fused {
        // Text policy as for a pickle not written by Python 2 (checked below). The writer
        // stops at the first set (a second pass writes them, with this pass's plan).
        let mut facts = None;
        let out = fused_py2(src, policy, s, None, &mut facts);
        (facts?, out)
    } else {
        let facts = scan(src, Some(policy), &mut s.stacks, None, &mut NoSink)?;
        (facts, None)
    };
    let summary = &facts.summary;
    let utf8 = policy.utf8_text_for(summary.writer);
    let change = summary.max_protocol > 2
        || summary.declared_protocol.is_some_and(|d| d > 2)
        || (summary.writer != Writer::Py2 && facts.renames)
        || (utf8 && facts.has_text);
    if !change {
        return Some(done(facts, None));
    }
    if fused && out.is_none() && !s.stacks.anns.is_empty() {
        // Sets: a second pass follows this pass's plan (kept aside while the pass makes its
        // own, the same).
        let mut plan = std::mem::take(&mut s.plan);
        std::mem::swap(&mut s.stacks.anns, &mut plan);
        let mut again = None;
        out = fused_py2(src, policy, s, Some(&plan), &mut again);
        s.plan = plan;
        // A pass that stopped part-way (its writer gave up) left its plan unfinished, which
        // `downgrade.rs` below must not follow: the general path decides.
        again.as_ref()?;
    }
    // The fused writer assumed a pickle not written by Python 2 (names renamed, text policy).
    if let Some((out, renamed)) = out {
        let py2_wrote = summary.writer == Writer::Py2;
        if !(py2_wrote && (renamed || (utf8_policy && facts.has_text))) {
            return Some(done(facts, Some(out)));
        }
    }
    // What the fused writer could not take for granted: `downgrade.rs` with the plan of this
    // scan (the general path's refusals stay the general path's: a writer error falls back to
    // it).
    let py3_names = facts.summary.py3_names(facts.renames);
    let out = downgrade::downgrade(src, &facts.summary, &s.stacks.anns, py3_names, policy).ok()?;
    Some(done(facts, Some(Bytes::from(out))))
}

/// One validating pass writing for a Python 2 reader (see [`Py2Sink`]): the output and whether
/// it renamed a global, or `None` when the writer stopped or gave up; the scan's facts go to
/// `facts`.
fn fused_py2(
    src: &[u8],
    policy: &Policy,
    s: &mut Scratch,
    plan: Option<&[(usize, Ann)]>,
    facts: &mut Option<Facts>,
) -> Option<(Bytes, bool)> {
    let limits = &policy.limits;
    let utf8 = policy.py2_text == Py2Text::Utf8;
    let mut renamed = false;
    let out = write(src, limits, &mut s.out, |out| {
        let mut sink = Py2Sink::new(out, &mut s.memo, utf8, limits.max_memo, plan);
        *facts = scan(src, Some(policy), &mut s.stacks, None, &mut sink);
        renamed = sink.renamed;
        (facts.is_some() && !sink.handed_over).then_some(())
    })?;
    Some((out, renamed))
}

/// For a Python 3 reader: validated and written in one pass (see [`Py3Sink`]: nothing is
/// copied unless a py2 `str` changes form, which most values a Python 3 reader gets never do),
/// or in a second pass when binary state could not be turned into `bytes` where it was written.
fn to_py3(src: &[u8], policy: &Policy, s: &mut Scratch) -> Option<Transcoded> {
    let limits = &policy.limits;
    let mut out = Out {
        buf: std::mem::take(&mut s.out),
    };
    out.buf.clear();
    let mut sink = Py3Sink::new(&mut out, policy.py3_str, &[], &mut s.py3);
    let facts = scan(
        src,
        Some(policy),
        &mut s.stacks,
        Some(&mut s.as_bytes),
        &mut sink,
    );
    let (changed, gave_up) = (sink.changed(), sink.gave_up);
    let written = match &facts {
        Some(f) if f.py3_change || !s.as_bytes.is_empty() => {
            debug_assert!(changed, "a change the writer did not make");
            (!gave_up).then(|| keep_output(&mut out.buf, limits))
        }
        _ => None,
    };
    s.out = out.buf;
    let facts = facts?;
    if !facts.py3_change && s.as_bytes.is_empty() {
        return Some(done(facts, None));
    }
    if let Some(out) = written {
        return Some(done(facts, Some(out?)));
    }
    s.as_bytes.sort_unstable();
    s.as_bytes.dedup();
    let out = write(src, limits, &mut s.out, |out| {
        let mut sink = Py3Sink::new(out, policy.py3_str, &s.as_bytes, &mut s.py3);
        scan(src, Some(policy), &mut s.stacks, None, &mut sink)?;
        (!sink.gave_up).then_some(())
    })?;
    Some(done(facts, Some(out)))
}

/// The finished output in the scratch buffer `buf` as `Bytes`: copied out at its size, or, past
/// [`SCRATCH_OUT`], the buffer itself (the scratch starts a new one). `None` past `max_output`.
fn keep_output(buf: &mut Vec<u8>, limits: &PickleLimits) -> Option<Bytes> {
    if buf.len() > limits.max_output {
        return None;
    }
    if buf.len() > SCRATCH_OUT {
        return Some(Bytes::from(std::mem::take(buf)));
    }
    Some(Bytes::copy_from_slice(buf))
}

/// Runs a writer into the scratch buffer (then one allocation of the exact size) or, for large
/// values, into a buffer of its own. `None` when the writer gives up or passes `max_output`.
fn write(
    src: &[u8],
    limits: &PickleLimits,
    scratch: &mut Vec<u8>,
    write: impl FnOnce(&mut Out) -> Option<()>,
) -> Option<Bytes> {
    let estimate = src.len() + src.len() / 4 + 16;
    if estimate > SCRATCH_OUT {
        let mut out = Out::for_input(src.len(), limits.max_output);
        write(&mut out)?;
        return (out.buf.len() <= limits.max_output).then(|| Bytes::from(out.buf));
    }
    let mut out = Out {
        buf: std::mem::take(scratch),
    };
    out.buf.clear();
    let done = write(&mut out).is_some() && out.buf.len() <= limits.max_output;
    let bytes = done.then(|| Bytes::copy_from_slice(&out.buf));
    *scratch = out.buf;
    bytes
}

#[cfg(test)]
mod tests;
