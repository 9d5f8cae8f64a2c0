//! The fast path: plain data (numbers, py2 `str`, text, tuples, lists, dicts, memo; binary and
//! protocol-0 forms) in one allocation-free validating pass plus, only when something must
//! change, one writing pass.
//!
//! Most cached values are plain data, and the general path (`scan.rs` + the rewriters) spends
//! most of its time on machinery plain data never needs: slot tags that point back at offsets,
//! globals tables, the rewrite plan. This module handles exactly that subset and nothing else:
//! the first opcode outside it (GLOBAL, REDUCE, bytes, sets, protocol-0 text forms, ...), any
//! stack/MARK/memo violation, any limit, and any dict that mixes py2 `str` and text keys (where
//! a collision is possible) make it return `None`, and [`super::transcode`] runs the general
//! path, which reports the error or handles the construct. So every refusal, and every value
//! this path does not fully understand, still comes from one place.
//!
//! Contract: when this returns `Some`, it is equal (outcome bytes and summary) to what the
//! general path returns for the same input and policy. Debug builds check that on every call
//! (so the whole test suite, the fuzz replay and the golden fixtures exercise it), and
//! `fast::tests` compares the two paths directly over the corpus, every prefix and mutations.
//!
//! The working stacks (one byte per stack item and memo slot: what kind of string it is, the
//! only thing a collision check needs) live in a per-thread scratch reused across values, so an
//! unchanged value costs no allocation at all.

use std::borrow::Cow;
use std::cell::RefCell;

use bytes::Bytes;

use super::compat;
use super::downgrade;
use super::opcode as op;
use super::reader;
use super::scan::Ann;
use super::strings::{self, Py3Form};
use super::writer::Out;
use super::{
    Global, Outcome, PickleLimits, Policy, Py2Text, Py3Str, Runtime, Summary, Transcoded, Writer,
    MAX_SUMMARY_GLOBALS,
};

/// Stack and memo tags: a kind in the low 3 bits and, for some kinds, a payload above. Only
/// what a decision needs is told apart: dict keys' string kinds (collisions), and which py2
/// `str` a binary-state constructor gets (`datetime(<state>)` must become `bytes`).
type Tag = u32;
const OTHER: Tag = 0;
/// A py2 `str`; payload: the byte offset of its op (through GETs too).
const PY2_STR: Tag = 1;
/// Text; payload: the byte offset of its op (a STACK_GLOBAL reads module and name from it).
const TEXT: Tag = 2;
/// A global; payload: its index in [`Stacks::globals`].
const GLOBAL: Tag = 3;
/// A tuple whose first or second item is a py2 `str`; payload: index in [`Stacks::tuples`].
const TUPLE: Tag = 4;
/// Python 3 `bytes`.
const BYTES: Tag = 5;
/// For a Python 2 reader: a set begun by EMPTY_SET, still open (items may be added); payload:
/// index in [`Stacks::sets`].
const OPEN_SET: Tag = 6;

/// An open set for a Python 2 reader (see `scan.rs`'s `SetInfo`): `downgrade.rs` writes it
/// as `__builtin__.set([...])`, closed (and memoized) where it is complete.
#[derive(Clone, Copy)]
struct SetInfo {
    memo: Option<u64>,
    /// Fetched from the memo before it was complete: not rewritable in place.
    frozen: bool,
    close_at: usize,
}
/// A memo slot never PUT.
const UNDEF: Tag = Tag::MAX;

#[inline(always)]
fn kind(t: Tag) -> Tag {
    t & 7
}

#[inline(always)]
fn payload(t: Tag) -> usize {
    (t >> 3) as usize
}

/// What the scan keeps of a distinct global.
#[derive(Clone, Copy)]
struct GlobalInfo {
    /// Which argument is binary state (see `compat::BINARY_STATE`).
    binary_arg: Option<u8>,
    /// Spelled as only Python 3 writes it (writer evidence).
    py3_name: bool,
    /// `fix_imports` renames it for protocol 2.
    renamed: bool,
    py3_only: bool,
}

/// Working stacks kept per thread between values.
#[derive(Default)]
struct Scratch {
    stacks: Stacks,
    /// Offsets of the py2 `str`s that are binary state (`bytes` for a py3 reader), sorted.
    as_bytes: Vec<u32>,
    /// Rewrites up to [`SCRATCH_OUT`] bytes are written here, then copied out at their size.
    out: Vec<u8>,
}

/// The validating pass's model of the unpickling machine.
#[derive(Default)]
struct Stacks {
    stack: Vec<Tag>,
    /// Stack lengths at each open MARK.
    marks: Vec<u32>,
    memo: Vec<Tag>,
    globals: Vec<GlobalInfo>,
    tuples: Vec<[Tag; 2]>,
    /// For a Python 2 reader: the plan `downgrade.rs` follows (STACK_GLOBAL in place, sets).
    anns: Vec<(usize, Ann)>,
    sets: Vec<SetInfo>,
}

/// Rewrites estimated larger than this get their own buffer, handed over without a copy.
const SCRATCH_OUT: usize = 64 << 10;

/// Entries kept between values; a huge value's buffers are trimmed back to this afterwards.
const KEEP: usize = 1 << 16;

impl Scratch {
    fn reset(&mut self) {
        let t = &mut self.stacks;
        for v in [&mut t.stack, &mut t.memo, &mut self.as_bytes] {
            v.clear();
            v.shrink_to(KEEP);
        }
        t.tuples.clear();
        t.tuples.shrink_to(KEEP);
        t.anns.clear();
        t.anns.shrink_to(KEEP);
        t.sets.clear();
        t.sets.shrink_to(KEEP);
        t.marks.clear();
        t.marks.shrink_to(KEEP);
        self.out.clear();
        self.out.shrink_to(2 * SCRATCH_OUT);
    }
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

/// One opcode of the subset: its byte, its argument's span and where the next op starts.
#[derive(Clone, Copy)]
struct FOp {
    code: u8,
    /// The argument: the payload of length-prefixed kinds, the line (no `\n`) of line kinds.
    arg: usize,
    arg_end: usize,
    end: usize,
}

impl FOp {
    #[inline(always)]
    fn arg<'s>(&self, src: &'s [u8]) -> &'s [u8] {
        &src[self.arg..self.arg_end]
    }
}

/// How [`next`] reads the argument of each opcode byte: `OUT` (not in the subset), a fixed
/// width (0-8), a length prefix of 1, 4 or 8 bytes (`LEN | width`; `LEN_I4` refuses a
/// negative int4 length), or a protocol-0 line ending in `\n` (`LINE`, syntax checked as the
/// reader does).
const OUT: u8 = 0xff;
const LEN: u8 = 0x10;
const LEN_I4: u8 = 0x20;
const LINE: u8 = 0x40;
const TWO_LINES: u8 = 0x80;

const ARG: [u8; 256] = {
    let mut t = [OUT; 256];
    let fixed0 = [
        op::NONE,
        op::NEWTRUE,
        op::NEWFALSE,
        op::STOP,
        op::MARK,
        op::EMPTY_TUPLE,
        op::EMPTY_LIST,
        op::EMPTY_DICT,
        op::TUPLE1,
        op::TUPLE2,
        op::TUPLE3,
        op::TUPLE,
        op::LIST,
        op::DICT,
        op::APPEND,
        op::APPENDS,
        op::SETITEM,
        op::SETITEMS,
        op::MEMOIZE,
        op::REDUCE,
        op::BUILD,
        op::NEWOBJ,
        op::OBJ,
        op::EMPTY_SET,
        op::ADDITEMS,
        op::FROZENSET,
        op::NEWOBJ_EX,
        op::STACK_GLOBAL,
    ];
    let mut i = 0;
    while i < fixed0.len() {
        t[fixed0[i] as usize] = 0;
        i += 1;
    }
    t[op::PROTO as usize] = 1;
    t[op::BININT1 as usize] = 1;
    t[op::BINGET as usize] = 1;
    t[op::BINPUT as usize] = 1;
    t[op::BININT2 as usize] = 2;
    t[op::BININT as usize] = 4;
    t[op::LONG_BINGET as usize] = 4;
    t[op::LONG_BINPUT as usize] = 4;
    t[op::BINFLOAT as usize] = 8;
    t[op::FRAME as usize] = 8;
    t[op::SHORT_BINUNICODE as usize] = LEN | 1;
    t[op::SHORT_BINSTRING as usize] = LEN | 1;
    t[op::LONG1 as usize] = LEN | 1;
    t[op::BINUNICODE as usize] = LEN | 4;
    t[op::BINSTRING as usize] = LEN_I4 | 4;
    t[op::BINUNICODE8 as usize] = LEN | 8;
    t[op::LONG4 as usize] = LEN_I4 | 4;
    t[op::GLOBAL as usize] = TWO_LINES;
    t[op::SHORT_BINBYTES as usize] = LEN | 1;
    t[op::BINBYTES as usize] = LEN | 4;
    t[op::BINBYTES8 as usize] = LEN | 8;
    t[op::BYTEARRAY8 as usize] = LEN | 8;
    t[op::INST as usize] = TWO_LINES;
    let lines = [
        op::INT,
        op::LONG,
        op::FLOAT,
        op::STRING,
        op::UNICODE,
        op::GET,
        op::PUT,
    ];
    let mut i = 0;
    while i < lines.len() {
        t[lines[i] as usize] = LINE;
        i += 1;
    }
    t
};

/// A little-endian unsigned integer of `n` (1, 4 or 8) bytes at `at`.
#[inline(always)]
fn le(src: &[u8], at: usize, n: usize) -> Option<u64> {
    match n {
        1 => src.get(at).map(|&b| u64::from(b)),
        4 => Some(u64::from(u32::from_le_bytes(
            src.get(at..at + 4)?.try_into().ok()?,
        ))),
        8 => Some(u64::from_le_bytes(src.get(at..at + 8)?.try_into().ok()?)),
        _ => None,
    }
}

/// The memo index of a GET/PUT op (any of the three widths).
#[inline(always)]
fn memo_index(src: &[u8], o: FOp) -> Option<usize> {
    let idx = match o.code {
        op::BINGET | op::BINPUT => u64::from(src[o.arg]),
        op::LONG_BINGET | op::LONG_BINPUT => le(src, o.arg, 4)?,
        _ => reader::parse_decimal(o.arg(src))?,
    };
    usize::try_from(idx).ok()
}

/// The bytes of a py2 `str` op (protocol 0's quoted, escaped form decoded as CPython does).
#[inline(always)]
fn py2_str_bytes(src: &[u8], o: FOp) -> Option<Cow<'_, [u8]>> {
    match o.code {
        op::STRING => strings::decode_string_escape(o.arg(src)),
        _ => Some(Cow::Borrowed(o.arg(src))),
    }
}

/// Decodes the op at `pos`; `None` when it is outside the subset or truncated.
#[inline(always)]
fn next(src: &[u8], pos: usize) -> Option<FOp> {
    let code = *src.get(pos)?;
    let at = pos + 1;
    let kind = ARG[usize::from(code)];
    let (arg, len) = if kind <= 8 {
        (at, usize::from(kind))
    } else if kind == OUT {
        return None;
    } else if kind == TWO_LINES {
        // `module\nname\n`, both non-empty; the argument spans both (inner `\n` included).
        let rest = src.get(at..)?;
        let first = rest.iter().position(|&b| b == b'\n')?;
        let second = rest[first + 1..].iter().position(|&b| b == b'\n')?;
        if first == 0 || second == 0 {
            return None;
        }
        let arg_end = at + first + 1 + second;
        return Some(FOp {
            code,
            arg: at,
            arg_end,
            end: arg_end + 1,
        });
    } else if kind == LINE {
        let nl = src.get(at..)?.iter().position(|&b| b == b'\n')?;
        let arg_end = at + nl;
        let line = &src[at..arg_end];
        let ok = match code {
            // GET/PUT lines are parsed (and so checked) by `memo_index` before anything uses
            // them; INT's `-?[0-9]+` is checked here, the rarer forms by the reader's rules.
            op::GET | op::PUT => true,
            op::INT => {
                let digits = line.strip_prefix(b"-").unwrap_or(line);
                !digits.is_empty() && digits.iter().all(u8::is_ascii_digit)
            }
            _ => reader::line_ok(code, line),
        };
        if !ok {
            return None;
        }
        return Some(FOp {
            code,
            arg: at,
            arg_end,
            end: arg_end + 1,
        });
    } else {
        let width = usize::from(kind & 0x0f);
        let n = le(src, at, width)?;
        if kind & LEN_I4 != 0 && n > i32::MAX as u64 {
            return None;
        }
        (at + width, usize::try_from(n).ok()?)
    };
    let end = arg.checked_add(len)?;
    if end > src.len() {
        return None;
    }
    Some(FOp {
        code,
        arg,
        arg_end: end,
        end,
    })
}

/// What the validating pass learns.
struct Facts {
    summary: Summary,
    has_text: bool,
    /// A py2 `str` whose form changes for a py3 reader under the policy.
    py3_change: bool,
    /// Every PUT went to the next index (0, 1, 2, ...), so output memo ids equal input ones.
    memo_in_order: bool,
    /// A global that `fix_imports` renames for protocol 2.
    renames: bool,
}

/// The validating pass, handing each validated op to `sink` (which may write it for a reader
/// in the same pass). `None`: outside the subset, invalid, or a possible key collision.
fn scan<S: Sink>(
    src: &[u8],
    policy: Option<&Policy>,
    stacks: &mut Stacks,
    mut as_bytes: Option<&mut Vec<u32>>,
    sink: &mut S,
) -> Option<Facts> {
    let default_limits = PickleLimits::default();
    let limits = policy.map_or(&default_limits, |p| &p.limits);
    let target = policy.map(|p| p.target);
    let py3_str = policy
        .filter(|p| p.target == Runtime::Py3)
        .map(|p| p.py3_str);
    let Stacks {
        stack,
        marks,
        memo,
        globals,
        tuples,
        anns,
        sets,
    } = stacks;
    stack.clear();
    marks.clear();
    memo.clear();
    globals.clear();
    tuples.clear();
    anns.clear();
    sets.clear();
    // Tags carry byte offsets in 29 bits.
    if src.len() > (Tag::MAX >> 3) as usize {
        return None;
    }
    let mut summary_globals: Vec<Global> = Vec::new();
    let (mut py3_names, mut renames, mut py3_only, mut binary_state) = (false, false, false, false);
    let mut declared = None;
    let mut max_proto = 0u8;
    // Writer evidence for Python 2: py2 `str` opcodes, classic instances (INST/OBJ).
    let (mut py2_ops, mut non_ascii, mut has_text, mut py3_change) = (false, false, false, false);
    let (mut py2_keys, mut text_keys, mut bytes_keys) = (false, false, false);
    // Protocol 3+ values as a Python 3 reader (or `analyze`) takes them.
    let py3_side = target != Some(Runtime::Py2);
    // Offsets of the last two ops that are not memo PUTs or FRAME.
    let mut recent = [usize::MAX; 2];
    let mut memo_len = 0usize;
    let mut puts = 0usize;
    let mut memo_in_order = true;
    let mut pos = 0;
    macro_rules! fence {
        () => {
            marks.last().map_or(0, |&m| m as usize)
        };
    }
    macro_rules! push {
        ($tag:expr) => {{
            if stack.len() >= limits.max_stack {
                return None;
            }
            stack.push($tag);
        }};
    }
    // Pops `n` items above the topmost MARK.
    macro_rules! pop {
        ($n:expr) => {{
            let n: usize = $n;
            if stack.len() < fence!() + n {
                return None;
            }
            stack.truncate(stack.len() - n);
        }};
    }
    // Pops the topmost MARK; yields the stack length where its items start.
    macro_rules! pop_mark {
        () => {
            marks.pop()? as usize
        };
    }
    // Records the kinds of every `step`-th item from `from` (dict keys).
    macro_rules! keys {
        ($from:expr, $step:expr) => {{
            for &t in stack[$from..].iter().step_by($step) {
                py2_keys |= kind(t) == PY2_STR;
                text_keys |= kind(t) == TEXT;
                bytes_keys |= kind(t) == BYTES;
            }
        }};
    }
    loop {
        let o = next(src, pos)?;
        let proto = match o.code {
            op::PROTO => {
                let p = src[o.arg];
                if p > 5 {
                    return None;
                }
                declared.get_or_insert(p);
                2
            }
            op::FRAME => 4,
            op::STOP => {
                if stack.len() != 1 || !marks.is_empty() || o.end != src.len() {
                    return None;
                }
                sink.finish(src);
                break;
            }
            op::MARK => {
                if marks.len() >= limits.max_depth {
                    return None;
                }
                marks.push(u32::try_from(stack.len()).ok()?);
                0
            }
            op::NONE => {
                push!(OTHER);
                0
            }
            op::NEWTRUE | op::NEWFALSE | op::LONG1 | op::LONG4 => {
                push!(OTHER);
                2
            }
            op::INT | op::LONG | op::FLOAT => {
                push!(OTHER);
                0
            }
            op::BININT | op::BININT1 | op::BININT2 | op::BINFLOAT => {
                push!(OTHER);
                1
            }
            op::EMPTY_TUPLE | op::EMPTY_LIST | op::EMPTY_DICT => {
                push!(OTHER);
                1
            }
            op::TUPLE1 | op::TUPLE2 | op::TUPLE3 => {
                let n = usize::from(o.code - op::TUPLE1 + 1);
                if stack.len() < fence!() + n {
                    return None;
                }
                let first = stack.len() - n;
                let t = tuple_tag(tuples, &stack[first..]);
                stack.truncate(first);
                push!(t);
                2
            }
            op::TUPLE | op::LIST | op::DICT => {
                let m = pop_mark!();
                let t = match o.code {
                    op::TUPLE => tuple_tag(tuples, &stack[m..]),
                    op::DICT => {
                        keys!(m, 2);
                        OTHER
                    }
                    _ => OTHER,
                };
                stack.truncate(m);
                push!(t);
                0
            }
            op::GLOBAL | op::INST => {
                let arg = o.arg(src);
                let nl = arg.iter().position(|&b| b == b'\n')?;
                let m = std::str::from_utf8(&arg[..nl]).ok()?;
                let n = std::str::from_utf8(&arg[nl + 1..]).ok()?;
                let idx = global_index(&mut summary_globals, globals, m, n, policy)?;
                let g = &globals[idx];
                py3_names |= g.py3_name;
                renames |= g.renamed;
                py3_only |= g.py3_only;
                if o.code == op::INST {
                    // A classic instance of the class, from the items above the MARK.
                    py2_ops = true;
                    let m = pop_mark!();
                    stack.truncate(m);
                    push!(OTHER);
                } else {
                    push!(GLOBAL | (idx as Tag) << 3);
                }
                0
            }
            op::OBJ => {
                // A classic instance: class and arguments above the MARK (at least the class).
                py2_ops = true;
                let m = pop_mark!();
                if stack.len() <= m {
                    return None;
                }
                stack.truncate(m);
                push!(OTHER);
                1
            }
            op::REDUCE => {
                if stack.len() < fence!() + 2 {
                    return None;
                }
                let args = stack.pop()?;
                let func = stack.pop()?;
                if kind(func) == GLOBAL && kind(args) == TUPLE {
                    let k = globals.get(payload(func))?.binary_arg;
                    let elems = *tuples.get(payload(args))?;
                    if let Some(&e) = k.and_then(|k| elems.get(usize::from(k))) {
                        if kind(e) == PY2_STR {
                            binary_state = true;
                            if target == Some(Runtime::Py3) {
                                if let Some(v) = as_bytes.as_deref_mut() {
                                    v.push(payload(e) as u32);
                                }
                            }
                        }
                    }
                }
                push!(OTHER);
                0
            }
            op::BUILD | op::NEWOBJ => {
                // BUILD's state dict keys stay `str` for a py3 reader under `bytes`: the
                // general path tracks them.
                if o.code == op::BUILD && py3_str == Some(Py3Str::Bytes) {
                    return None;
                }
                pop!(2);
                push!(OTHER);
                if o.code == op::BUILD {
                    0
                } else {
                    2
                }
            }
            op::APPEND | op::SETITEM => {
                let n = if o.code == op::APPEND { 1 } else { 2 };
                if o.code == op::SETITEM && stack.len() >= fence!() + 2 {
                    keys!(stack.len() - 2, 2);
                }
                pop!(n);
                // The container must still be there (and not be a set being built).
                if stack.len() <= fence!() || kind(*stack.last()?) == OPEN_SET {
                    return None;
                }
                0
            }
            op::APPENDS | op::SETITEMS => {
                let m = pop_mark!();
                if o.code == op::SETITEMS {
                    keys!(m, 2);
                }
                stack.truncate(m);
                if stack.len() <= fence!() || kind(*stack.last()?) == OPEN_SET {
                    return None;
                }
                1
            }
            op::SHORT_BINSTRING | op::BINSTRING | op::STRING => {
                let bytes = py2_str_bytes(src, o)?;
                let ascii = bytes.is_ascii();
                py2_ops = true;
                non_ascii |= !ascii;
                py3_change |= match py3_str {
                    Some(Py3Str::Bytes) => true,
                    Some(_) => !ascii,
                    None => false,
                };
                push!(PY2_STR | (pos as Tag) << 3);
                if o.code == op::STRING {
                    0
                } else {
                    1
                }
            }
            op::BINUNICODE | op::UNICODE => {
                has_text = true;
                push!(TEXT | (pos as Tag) << 3);
                if o.code == op::UNICODE {
                    0
                } else {
                    1
                }
            }
            op::SHORT_BINUNICODE | op::BINUNICODE8 => {
                has_text = true;
                push!(TEXT | (pos as Tag) << 3);
                4
            }
            // Sets as Python 3 writes them; for a Python 2 reader the general path plans them.
            // Python 3's bytes; for a Python 2 reader `downgrade.rs` writes them as CPython
            // does (no plan needed).
            op::SHORT_BINBYTES | op::BINBYTES | op::BINBYTES8 | op::BYTEARRAY8 => {
                push!(if o.code == op::BYTEARRAY8 {
                    OTHER
                } else {
                    BYTES
                });
                match o.code {
                    op::SHORT_BINBYTES | op::BINBYTES => 3,
                    op::BINBYTES8 => 4,
                    _ => 5,
                }
            }
            op::EMPTY_SET => {
                if py3_side {
                    push!(OTHER);
                } else {
                    sets.push(SetInfo {
                        memo: None,
                        frozen: false,
                        close_at: o.end,
                    });
                    push!(OPEN_SET | ((sets.len() - 1) as Tag) << 3);
                }
                4
            }
            op::ADDITEMS => {
                let m = pop_mark!();
                keys!(m, 1);
                stack.truncate(m);
                if stack.len() <= fence!() {
                    return None;
                }
                if !py3_side {
                    // Only into a set that is still open (the general path refuses the rest).
                    let top = *stack.last()?;
                    if kind(top) != OPEN_SET {
                        return None;
                    }
                    let set = sets.get_mut(payload(top))?;
                    if set.frozen {
                        return None;
                    }
                    set.close_at = o.end;
                }
                4
            }
            op::FROZENSET if py3_side => {
                let m = pop_mark!();
                keys!(m, 1);
                stack.truncate(m);
                push!(OTHER);
                4
            }
            op::NEWOBJ_EX if py3_side => {
                pop!(3);
                push!(OTHER);
                4
            }
            op::STACK_GLOBAL => {
                if stack.len() < fence!() + 2 {
                    return None;
                }
                let name = stack.pop()?;
                let module = stack.pop()?;
                // Module and name from text ops (what CPython writes); py2 `str`s and computed
                // strings are the general path's.
                if kind(module) != TEXT || kind(name) != TEXT {
                    return None;
                }
                let m = text_at(src, payload(module))?;
                let n = text_at(src, payload(name))?;
                if !py3_side {
                    // `downgrade.rs` writes GLOBAL in place of the two string ops right before
                    // (memo PUTs between), the form CPython writes; the plan says where.
                    let pushes_one = |p: usize| {
                        matches!(
                            src.get(p),
                            Some(
                                &(op::SHORT_BINUNICODE
                                    | op::BINUNICODE
                                    | op::BINUNICODE8
                                    | op::UNICODE
                                    | op::BINGET
                                    | op::LONG_BINGET
                                    | op::GET)
                            )
                        )
                    };
                    if !pushes_one(recent[0]) || !pushes_one(recent[1]) {
                        return None;
                    }
                    anns.push((recent[0], Ann::Skip));
                    anns.push((recent[1], Ann::Skip));
                    anns.push((
                        pos,
                        Ann::StackGlobal {
                            module: payload(module),
                            name: payload(name),
                        },
                    ));
                }
                let idx = global_index(&mut summary_globals, globals, m, n, policy)?;
                let g = &globals[idx];
                py3_names |= g.py3_name;
                renames |= g.renamed;
                py3_only |= g.py3_only;
                push!(GLOBAL | (idx as Tag) << 3);
                4
            }
            op::BINGET | op::LONG_BINGET | op::GET => {
                let idx = memo_index(src, o)?;
                match memo.get(idx) {
                    Some(&t) if kind(t) == OPEN_SET => {
                        // Fetched before it is complete: the set is frozen as it is.
                        sets.get_mut(payload(t))?.frozen = true;
                        push!(OTHER);
                    }
                    Some(&t) if t != UNDEF => push!(t),
                    _ => return None,
                }
                if o.code == op::GET {
                    0
                } else {
                    1
                }
            }
            op::BINPUT | op::LONG_BINPUT | op::PUT | op::MEMOIZE => {
                let idx = match o.code {
                    op::MEMOIZE => memo_len,
                    _ => memo_index(src, o)?,
                };
                if stack.len() <= fence!() || idx >= limits.max_memo {
                    return None;
                }
                let top = *stack.last()?;
                if kind(top) == OPEN_SET {
                    // The set's memo slot is written when it closes (after its REDUCE).
                    let set = sets.get_mut(payload(top))?;
                    if set.frozen || set.memo.is_some() {
                        return None;
                    }
                    set.memo = Some(idx as u64);
                    set.close_at = o.end;
                    anns.push((pos, Ann::DeferMemo));
                }
                memo_in_order &= idx == puts;
                puts += 1;
                if idx == memo.len() {
                    memo.push(top);
                    memo_len += 1;
                } else {
                    if idx > memo.len() {
                        memo.resize(idx + 1, UNDEF);
                    }
                    if memo[idx] == UNDEF {
                        memo_len += 1;
                    }
                    memo[idx] = top;
                }
                match o.code {
                    op::MEMOIZE => 4,
                    op::PUT => 0,
                    _ => 1,
                }
            }
            _ => return None,
        };
        max_proto = max_proto.max(proto);
        sink.op(src, pos, o)?;
        if !matches!(
            o.code,
            op::PUT | op::BINPUT | op::LONG_BINPUT | op::MEMOIZE | op::FRAME
        ) {
            recent = [recent[1], pos];
        }
        pos = o.end;
    }
    if u8::from(py2_keys) + u8::from(text_keys) + u8::from(bytes_keys) > 1 {
        return None;
    }
    if !sets.is_empty() {
        // Each set closes where it is complete; the plan in offset order, as `scan.rs` sorts it.
        for set in sets.iter() {
            anns.push((set.close_at, Ann::SetClose { memo: set.memo }));
        }
        anns.sort_by_key(|(pos, a)| (*pos, a.order()));
    }
    // Writer evidence, as the general path sees it in this subset: py2 `str` opcodes vs
    // protocol-3+ opcodes and py3 module names.
    let writer = match (py2_ops, max_proto >= 3 || py3_names) {
        (true, false) => Writer::Py2,
        (false, true) => Writer::Py3,
        _ => Writer::Unknown,
    };
    Some(Facts {
        summary: Summary {
            declared_protocol: declared,
            max_protocol: max_proto,
            writer,
            py2_str_non_ascii: non_ascii,
            py2_binary_state: binary_state,
            py3_text: has_text && writer != Writer::Py2,
            py3_only_global: py3_only,
            // Past MAX_SUMMARY_GLOBALS distinct globals the general path decides.
            globals: summary_globals,
            globals_complete: true,
        },
        has_text,
        py3_change,
        memo_in_order,
        renames,
    })
}

/// The tag of a tuple of `items`: [`TUPLE`] when its first or second item is a py2 `str`
/// (what a binary-state constructor is given), else [`OTHER`].
#[inline(always)]
fn tuple_tag(tuples: &mut Vec<[Tag; 2]>, items: &[Tag]) -> Tag {
    let e0 = items.first().copied().unwrap_or(OTHER);
    let e1 = items.get(1).copied().unwrap_or(OTHER);
    if kind(e0) != PY2_STR && kind(e1) != PY2_STR {
        return OTHER;
    }
    tuples.push([e0, e1]);
    TUPLE | ((tuples.len() - 1) as Tag) << 3
}

/// The index of global `m.n` in the scan's tables, adding it (and checking it with
/// [`new_global`]) when it is new.
fn global_index(
    summary: &mut Vec<Global>,
    globals: &mut Vec<GlobalInfo>,
    m: &str,
    n: &str,
    policy: Option<&Policy>,
) -> Option<usize> {
    if let Some(i) = summary.iter().position(|g| g.module == m && g.name == n) {
        return Some(i);
    }
    if summary.len() >= MAX_SUMMARY_GLOBALS {
        return None;
    }
    globals.push(new_global(m, n, policy)?);
    summary.push(Global::new(m, n));
    Some(globals.len() - 1)
}

/// The text of the text op at `pos` (BINUNICODE family; protocol 0's escaped form is left to
/// the general path).
fn text_at(src: &[u8], pos: usize) -> Option<&str> {
    let o = next(src, pos)?;
    if o.code == op::UNICODE {
        return None;
    }
    std::str::from_utf8(o.arg(src)).ok()
}

/// Checks a global against what the fast path leaves to the general path: refusals (py3-only
/// for a py2 reader), classic classes, `set`/`frozenset` (their list argument holds keys),
/// `_codecs.encode` (its result is `bytes`), and constructors whose text arguments keep their
/// type under the policy at hand.
fn new_global(m: &str, n: &str, policy: Option<&Policy>) -> Option<GlobalInfo> {
    let target = policy.map(|p| p.target);
    let py3_only = compat::is_py3_only(m, n);
    if py3_only && target == Some(Runtime::Py2) {
        return None;
    }
    let (m2, n2) = compat::py3_to_py2(m, n);
    if matches!(
        (&*m2, &*n2),
        ("__builtin__", "set" | "frozenset") | ("_codecs", "encode")
    ) {
        return None;
    }
    if let Some(p) = policy {
        if p.target == Runtime::Py2 && p.py2_classic.iter().any(|g| g.module == m2 && g.name == n2)
        {
            return None;
        }
        let keeps_text = compat::text_args(&m2, &n2) != [false, false];
        let text_policy = match p.target {
            Runtime::Py2 => p.py2_text == Py2Text::Utf8,
            Runtime::Py3 => p.py3_str == Py3Str::Bytes,
        };
        if keeps_text && text_policy {
            return None;
        }
    }
    // `array('c', ...)` has no Python 3 typecode: the general path looks at the typecode.
    if target == Some(Runtime::Py3) && (m, n) == ("array", "array") {
        return None;
    }
    let binary_arg = compat::binary_state_arg(m, n);
    if binary_arg.is_some_and(|k| k > 1) {
        return None;
    }
    Some(GlobalInfo {
        binary_arg,
        py3_name: m == "builtins" || m == "copyreg",
        renamed: m2 != m || n2 != n,
        py3_only,
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
/// least), so it is validated and written in one fused pass; anything else is validated first
/// and written in a second pass only if it turns out to need it.
fn to_py2(src: &[u8], policy: &Policy, s: &mut Scratch) -> Option<Transcoded> {
    let limits = &policy.limits;
    let utf8_policy = policy.py2_text == Py2Text::Utf8;
    let fused = src.first() == Some(&op::PROTO) && src.get(1).is_some_and(|&p| p > 2);
    let (facts, out) = if fused {
        // Text policy as for a pickle not written by Python 2 (checked below). The writer
        // hands over to `downgrade.rs` at the first construct it does not write itself.
        let mut facts = None;
        let out = write(src, limits, &mut s.out, |out| {
            let mut sink = Py2Sink::new(out, utf8_policy);
            facts = scan(src, Some(policy), &mut s.stacks, None, &mut sink);
            (facts.is_some() && !sink.handed_over).then_some(())
        });
        (facts?, out)
    } else {
        let facts = scan(src, Some(policy), &mut s.stacks, None, &mut NoSink)?;
        (facts, None)
    };
    let summary = &facts.summary;
    let utf8 = utf8_policy && summary.writer != Writer::Py2;
    let change = summary.max_protocol > 2
        || summary.declared_protocol.is_some_and(|d| d > 2)
        || (summary.writer != Writer::Py2 && facts.renames)
        || (utf8 && facts.has_text);
    if !change {
        return Some(done(facts, None));
    }
    // The fused writer kept input memo ids, right when they already are in output order, and
    // assumed the text policy of a pickle not written by Python 2.
    let fused_ok = facts.memo_in_order && (utf8 == utf8_policy || !facts.has_text);
    if let (Some(out), true) = (out, fused_ok) {
        return Some(done(facts, Some(out)));
    }
    // Globals, bytes, renumbered memo ids: `downgrade.rs` with the plan of this scan (the
    // general path's refusals stay the general path's: a writer error falls back to it).
    let out = downgrade::downgrade(src, facts.summary.writer, &s.stacks.anns, policy).ok()?;
    Some(done(facts, Some(Bytes::from(out))))
}

/// For a Python 3 reader: validated first, written in a second pass only when a py2 `str`
/// changes form (most values a Python 3 reader gets need nothing).
fn to_py3(src: &[u8], policy: &Policy, s: &mut Scratch) -> Option<Transcoded> {
    let limits = &policy.limits;
    let facts = scan(
        src,
        Some(policy),
        &mut s.stacks,
        Some(&mut s.as_bytes),
        &mut NoSink,
    )?;
    if !facts.py3_change && s.as_bytes.is_empty() {
        return Some(done(facts, None));
    }
    s.as_bytes.sort_unstable();
    s.as_bytes.dedup();
    let out = write(src, limits, &mut s.out, |out| {
        let mut sink = Py3Sink {
            runs: Runs { out, from: 0 },
            policy: policy.py3_str,
            as_bytes: &s.as_bytes,
        };
        scan(src, Some(policy), &mut s.stacks, None, &mut sink).map(|_| ())
    })?;
    Some(done(facts, Some(out)))
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

/// What the validating pass does with each op once it is validated.
trait Sink {
    /// The op at `pos` is valid so far; `None` gives up (the general path decides).
    fn op(&mut self, src: &[u8], pos: usize, o: FOp) -> Option<()>;
    /// STOP was reached and the whole pickle is valid.
    fn finish(&mut self, src: &[u8]);
}

/// Validation only.
struct NoSink;

impl Sink for NoSink {
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

/// Protocol 2 for a Python 2 reader (what `downgrade.rs` writes for this subset): PROTO 2
/// first, FRAMEs dropped, MEMOIZE -> BINPUT, short/8-byte text -> BINUNICODE (or a py2 `str`
/// under the `utf8` text policy). Memo ids are the input's (the caller checks their order).
struct Py2Sink<'o> {
    runs: Runs<'o>,
    utf8: bool,
    puts: u32,
    /// Met a construct `downgrade.rs` writes (globals, bytes): stopped writing.
    handed_over: bool,
}

impl<'o> Py2Sink<'o> {
    fn new(out: &'o mut Out, utf8: bool) -> Self {
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

/// The input for a Python 3 reader (what `py3.rs` writes for this subset): FRAMEs dropped,
/// py2 `str`s per the `py3_str` policy.
struct Py3Sink<'o> {
    runs: Runs<'o>,
    policy: Py3Str,
    /// Offsets of binary-state py2 `str`s (always `bytes`), sorted; consumed front to back.
    as_bytes: &'o [u32],
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

#[cfg(test)]
mod tests;
