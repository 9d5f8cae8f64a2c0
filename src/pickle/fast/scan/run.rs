//! The validating pass's inner loop over the ops most of a large value is made of: numbers
//! (protocol 0's INT too), empty lists and tuples, MARK, LIST, APPEND, text, and memo PUTs and
//! GETs (a dict of 1 500 lists is nearly all of them).
//!
//! Each op here is taken only where the main loop would take it as well, with the same effect
//! on the stacks and the same facts; at anything else (another op, a limit, a PUT that is not
//! the memo's next slot, an error) the loop stops before touching the stacks, and the main loop
//! takes that op as always. A loop of its own keeps its handful of variables in registers: in
//! the main loop, with every op's state live, they are reloaded from memory for each op.
//! (Inlined: as a call of its own the state crossing over costs more than it saves on runs
//! of two or three ops.)
//!
//! The sink says which ops it can be passed over for ([`FULL`] or [`PLAIN`]): for validation
//! and the Python 3 writer (nothing to do with these ops) every op here; for the fused Python
//! 2 writer only the plain ones (numbers, MARK, lists, APPEND: copied as they are, counted),
//! and only before its plan's next point.

use super::super::super::opcode as op;
use super::super::decode::{le, memo_index, next, table};
use super::super::sink::Sink;
use super::{kind, Tag, LIST, OPEN_SET, OTHER, TEXT, UNDEF};

/// Longest INT line the inner loop takes, sign included (Python 3's digit limit, see
/// `bigint.rs`; a longer one, such as a minus and 4 300 digits, is left to the general path).
const MAX_INT_LINE: usize = super::super::super::bigint::PY3_MAX_STR_DIGITS;

/// Per opcode byte: 0 when the loop does not take the op, else the op's length when it is
/// fixed, or [`VARIES`].
pub(super) const STEP: [u8; 256] = {
    let t = table([0; 256], &[op::BININT1, op::BINPUT, op::BINGET], 2);
    let t = table(t, &[op::BININT2], 3);
    let t = table(t, &[op::BININT, op::LONG_BINPUT, op::LONG_BINGET], 5);
    let t = table(t, &[op::BINFLOAT], 9);
    let one = [
        op::NONE,
        op::NEWTRUE,
        op::NEWFALSE,
        op::EMPTY_TUPLE,
        op::EMPTY_LIST,
        op::MARK,
        op::LIST,
        op::APPEND,
        op::MEMOIZE,
    ];
    let t = table(t, &one, 1);
    let varies = [
        op::SHORT_BINUNICODE,
        op::BINUNICODE,
        op::INT,
        op::PUT,
        op::GET,
    ];
    table(t, &varies, VARIES)
};

/// Whether a memo op would mix protocol 0's text memo ops (PUT, GET) with binary ones in one
/// value: a text one after a binary op (`max_proto` >= 1), or a binary one after a text one
/// (`text_memo`). Python 2 keys the first by their line and the second by number (`p1` and
/// BINPUT 1 are two slots), Python 3 both by number; no CPython mixes them. The general path
/// refuses such a value.
#[inline(always)]
pub(super) fn mixed_memo(binary: bool, max_proto: u8, text_memo: bool) -> bool {
    if binary {
        text_memo
    } else {
        max_proto >= 1
    }
}

/// In [`STEP`]: the op's length depends on its argument.
pub(super) const VARIES: u8 = 0xff;

/// Which ops a sink lets the loop take without calling it (see `Sink::RUN`): every op here.
pub(crate) const FULL: u8 = 1;
/// Only the plain ones (not memo GETs, not text), and binary memo PUTs where the sink writes
/// them itself (`Sink::put_in_run`).
pub(crate) const PLAIN: u8 = 2;

/// Per opcode byte: [`FULL`] and [`PLAIN`] when the loop takes it for either kind of sink,
/// [`FULL`] when only for the first.
pub(super) const TAKES: [u8; 256] = {
    let mut t = [0u8; 256];
    let mut c = 0;
    while c < 256 {
        if STEP[c] != 0 {
            t[c] = FULL | PLAIN;
        }
        c += 1;
    }
    // (BINPUT, LONG_BINPUT and MEMOIZE are [`PLAIN`] too: `Sink::put_in_run` decides.)
    let full_only = [
        op::PUT,
        op::BINGET,
        op::LONG_BINGET,
        op::GET,
        op::SHORT_BINUNICODE,
        op::BINUNICODE,
    ];
    table(t, &full_only, FULL)
};

/// Whether the op at `pos` is one the loop takes for a sink of kind `sink` ([`FULL`] or
/// [`PLAIN`]; 0: none) and, when its length is fixed, the one after it too (for a single op
/// the setting up costs more than it saves): cheap, and only a hint.
#[inline(always)]
pub(super) fn worth(src: &[u8], pos: usize, sink: u8) -> bool {
    let takes = |c: u8| match sink {
        // `TAKES & FULL`, from the table read next anyway.
        FULL => STEP[usize::from(c)] != 0,
        _ => TAKES[usize::from(c)] & sink != 0,
    };
    match src.get(pos) {
        Some(&c) if takes(c) => match STEP[usize::from(c)] {
            VARIES => true,
            n => src.get(pos + usize::from(n)).is_some_and(|&c| takes(c)),
        },
        _ => false,
    }
}

/// The main loop's scalar state the inner loop carries on.
#[derive(Clone, Copy)]
pub(super) struct State {
    pub(super) pos: usize,
    pub(super) memo_len: usize,
    pub(super) max_proto: u8,
    /// Offsets of the last two ops that are not memo PUTs or FRAME.
    pub(super) recent: [usize; 2],
    pub(super) has_text: bool,
    /// A text memo op (PUT, GET) was taken (see [`mixed_memo`]).
    pub(super) text_memo: bool,
    /// Ops taken that are not memo PUTs (the fused writer counts them).
    pub(super) taken: u32,
}

/// Where the loop stops at the latest.
#[derive(Clone, Copy)]
pub(super) struct Bounds {
    /// The stack's room (see the main loop's `room`).
    pub(super) room: usize,
    /// An input offset where the sink has something to do (`Sink::run_until`).
    pub(super) until: usize,
    /// The policy's limits on open MARKs and on memo indices.
    pub(super) max_depth: usize,
    pub(super) max_memo: usize,
}

/// Takes ops from `s.pos` on, up to `until`, while they are ones this loop takes for a sink of
/// kind `SINK` ([`FULL`] or [`PLAIN`]); returns the state at the first op it leaves to the
/// main loop (or at the end of the input).
#[inline(always)]
pub(super) fn run<const SINK: u8, S: Sink>(
    src: &[u8],
    s: State,
    stack: &mut Vec<Tag>,
    marks: &mut Vec<u32>,
    memo: &mut Vec<Tag>,
    bounds: Bounds,
    sink: &mut S,
) -> State {
    let Bounds {
        room,
        until,
        max_depth,
        max_memo,
    } = bounds;
    let mut fence = marks.last().map_or(0, |&m| m as usize);
    // The state in locals (registers) while the loop runs.
    let State {
        mut pos,
        mut memo_len,
        mut max_proto,
        mut recent,
        mut has_text,
        mut text_memo,
        mut taken,
    } = s;
    macro_rules! stop {
        () => {
            return State {
                pos,
                memo_len,
                max_proto,
                recent,
                has_text,
                text_memo,
                taken,
            }
        };
    }
    loop {
        let Some(&code) = src.get(pos) else { stop!() };
        if SINK == PLAIN && pos >= until {
            stop!();
        }
        // The ops a plain sink does not let go, as `TAKES` lists them: checked per arm on
        // constants (a lookup of `TAKES` per op costs the fused writer 5-10 %).
        macro_rules! full_only {
            () => {
                if SINK != FULL {
                    stop!();
                }
            };
        }
        // The argument's bytes (fixed widths), bounds checked.
        let arg = |n: usize| src.get(pos + 1..pos + 1 + n);
        macro_rules! push {
            ($tag:expr) => {{
                if stack.len() >= room {
                    stop!();
                }
                stack.push($tag);
            }};
        }
        // A PUT's or GET's memo index, protocol and end (protocol 0's from its line).
        // Text and binary memo ops in one value (see `mixed_memo`): the main loop's.
        macro_rules! memo_arg {
            () => {{
                let binary = code != op::PUT && code != op::GET;
                if mixed_memo(binary, max_proto, text_memo) {
                    stop!();
                }
                text_memo |= !binary;
                match code {
                    op::BINPUT | op::BINGET => match arg(1) {
                        Some(a) => (usize::from(a[0]), 1, pos + 2),
                        None => stop!(),
                    },
                    op::LONG_BINPUT | op::LONG_BINGET => match le(src, pos + 1, 4) {
                        Some(i) => (i as usize, 1, pos + 5),
                        None => stop!(),
                    },
                    _ => match next(src, pos).and_then(|o| Some((memo_index(src, o)?, o.end))) {
                        Some((idx, end)) => (idx, 0, end),
                        None => stop!(),
                    },
                }
            }};
        }
        // (op's protocol, end, whether it is a memo PUT)
        let (proto, end, put) = match code {
            op::NONE => {
                push!(OTHER);
                (0, pos + 1, false)
            }
            op::NEWTRUE | op::NEWFALSE => {
                push!(OTHER);
                (2, pos + 1, false)
            }
            op::BININT1 | op::BININT2 | op::BININT | op::BINFLOAT => {
                let width = match code {
                    op::BININT1 => 1,
                    op::BININT2 => 2,
                    op::BININT => 4,
                    _ => 8,
                };
                if arg(width).is_none() {
                    stop!();
                }
                push!(OTHER);
                (1, pos + 1 + width, false)
            }
            op::EMPTY_TUPLE => {
                push!(OTHER);
                (1, pos + 1, false)
            }
            op::EMPTY_LIST => {
                push!(LIST);
                (1, pos + 1, false)
            }
            op::MARK => {
                if marks.len() >= max_depth {
                    stop!();
                }
                let Ok(at) = u32::try_from(stack.len()) else {
                    stop!();
                };
                marks.push(at);
                fence = stack.len();
                (0, pos + 1, false)
            }
            op::LIST => {
                // The items above the MARK become one list.
                let Some(&m) = marks.last() else { stop!() };
                let m = m as usize;
                if m.min(stack.len()) >= room {
                    stop!();
                }
                marks.pop();
                fence = marks.last().map_or(0, |&m| m as usize);
                stack.truncate(m);
                stack.push(LIST);
                (0, pos + 1, false)
            }
            op::INT => {
                // Checked as the main loop's `next` checks it; a line too long for Python 3
                // is the main loop's (`bigint.rs`).
                let Some(o) = next(src, pos).filter(|o| o.arg_end - o.arg <= MAX_INT_LINE) else {
                    stop!()
                };
                push!(OTHER);
                (0, o.end, false)
            }
            op::APPEND => {
                // An item above the MARK, and below it a list still above the MARK (an
                // object is the main loop's: it may be a set given string members).
                let n = stack.len();
                if n < fence + 2 || stack[n - 2] != LIST {
                    stop!();
                }
                stack.truncate(n - 1);
                (0, pos + 1, false)
            }
            op::BINPUT | op::LONG_BINPUT | op::MEMOIZE | op::PUT => {
                if code == op::PUT {
                    full_only!();
                }
                let (idx, proto, end) = match code {
                    op::MEMOIZE if !mixed_memo(true, max_proto, text_memo) => {
                        (memo_len, 4, pos + 1)
                    }
                    op::MEMOIZE => stop!(),
                    _ => memo_arg!(),
                };
                // Only the memo's next slot, from an item above the MARK that is not a set
                // being built (the main loop takes the rest).
                let Some(&top) = stack.last() else {
                    stop!();
                };
                if stack.len() <= fence
                    || idx >= max_memo
                    || idx != memo.len()
                    || kind(top) == OPEN_SET
                {
                    stop!();
                }
                // A writer that takes PUTs writes this one, or leaves it to the main loop.
                if SINK == PLAIN && !sink.put_in_run(src, pos, end, idx, taken) {
                    stop!();
                }
                memo.push(top);
                memo_len += 1;
                (proto, end, true)
            }
            op::BINGET | op::LONG_BINGET | op::GET => {
                full_only!();
                let (idx, proto, end) = memo_arg!();
                match memo.get(idx) {
                    Some(&t) if t != UNDEF && kind(t) != OPEN_SET => push!(t),
                    _ => stop!(),
                }
                (proto, end, false)
            }
            op::SHORT_BINUNICODE | op::BINUNICODE => {
                full_only!();
                let (len, width, proto) = match code {
                    op::SHORT_BINUNICODE => match arg(1) {
                        Some(a) => (usize::from(a[0]), 1, 4),
                        None => stop!(),
                    },
                    _ => match le(src, pos + 1, 4) {
                        Some(n) => (n as usize, 4, 1),
                        None => stop!(),
                    },
                };
                let end = pos + 1 + width + len;
                if end > src.len() {
                    stop!();
                }
                push!(TEXT | (pos as Tag) << 3);
                has_text = true;
                (proto, end, false)
            }
            _ => stop!(),
        };
        max_proto = max_proto.max(proto);
        if !put {
            recent = [recent[1], pos];
            if SINK == PLAIN {
                taken += 1;
            }
        }
        pos = end;
    }
}
