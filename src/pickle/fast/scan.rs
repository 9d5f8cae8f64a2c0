//! The fast path's validating pass: the unpickling machine's stack, MARKs and memo over `u32`
//! tags (a kind and an offset or table index), the summary, and for Python 2 readers the plan
//! `downgrade.rs` follows. Each validated op is handed to a [`Sink`].

use std::borrow::Cow;

use super::super::bigint;
use super::super::compat;
use super::super::opcode as op;
use super::super::scan::Ann;
use super::super::strings;
use super::super::{PickleLimits, Policy, Py3Str, Runtime, Summary, Writer, MAX_SUMMARY_GLOBALS};
use super::decode::{le, memo_index, next, py2_str_bytes};
use super::globals::KnownGlobals;
use super::reuse;
use super::sink::Sink;
use keys::Keys;
pub(super) use run::{FULL, PLAIN};

mod keys;
mod run;

/// For binary state (the py2 `str` op at `at`, given to the call at `call`): `None` when it
/// may be used elsewhere (memoized by MEMOIZE, or its memo slot fetched before `call`, which
/// is where a GET handing it to the call would be too); else the memo slot it was PUT to, if
/// any, which the caller closes (a later GET then leaves the value to the general path). The
/// ops walked lie between the state and its call: a datetime's own arguments, walked once.
#[inline(always)]
fn sole_use(src: &[u8], at: usize, call: usize) -> Option<Option<usize>> {
    let end = match src.get(at..at + 2)? {
        [op::SHORT_BINSTRING, n] => at + 2 + usize::from(*n),
        _ => next(src, at)?.end,
    };
    // What cPickle writes: the state (not memoized: only one reference holds it), TUPLE1.
    if end + 1 == call && src.get(end) == Some(&op::TUPLE1) {
        return Some(None);
    }
    // What pickle writes: the state, a BINPUT, TUPLE1, maybe a BINPUT, the call.
    match src.get(end..call)? {
        [op::TUPLE1, rest @ ..] | [op::BINPUT, _, op::TUPLE1, rest @ ..]
            if matches!(rest, [] | [op::BINPUT, _]) =>
        {
            return Some(match src[end] {
                op::BINPUT => Some(usize::from(src[end + 1])),
                _ => None,
            });
        }
        // A FRAME before its PUT: left to the general path.
        [op::FRAME, ..] => return None,
        _ => {}
    }
    let put = next(src, end)?;
    let slot = match put.code {
        op::BINPUT | op::LONG_BINPUT | op::PUT => memo_index(src, put)?,
        op::MEMOIZE => return None,
        _ => return Some(None),
    };
    // A second PUT of the same string (a hand-made pickle) could hand it out by a slot this
    // does not close.
    if next(src, put.end)
        .is_some_and(|o| matches!(o.code, op::BINPUT | op::LONG_BINPUT | op::PUT | op::MEMOIZE))
    {
        return None;
    }
    let mut pos = put.end;
    while pos < call {
        let o = next(src, pos)?;
        if matches!(o.code, op::BINGET | op::LONG_BINGET | op::GET) && memo_index(src, o)? == slot {
            return None;
        }
        pos = o.end;
    }
    Some(Some(slot))
}

/// Stack and memo tags: a kind in the low 3 bits and, for some kinds, a payload above. Only
/// what a decision needs is told apart: dict keys' string kinds (collisions), and which py2
/// `str` a binary-state constructor gets (`datetime(<state>)` must become `bytes`).
type Tag = u32;
const OTHER: Tag = 0;
/// A py2 `str`; payload: the byte offset of its op (through GETs too).
const PY2_STR: Tag = 1;
/// Text; payload: the byte offset of its op (a STACK_GLOBAL reads module and name from it).
const TEXT: Tag = 2;
/// A global; payload: its index in [`Stacks::globals`] (distinct globals of the value).
const GLOBAL: Tag = 3;
/// A tuple whose first or second item is a py2 `str`; payload: index in [`Stacks::tuples`].
const TUPLE: Tag = 4;
/// Python 3 `bytes`; payload: the byte offset of its op.
const BYTES: Tag = 5;
/// For a Python 2 reader: a set begun by EMPTY_SET, still open (items may be added); payload:
/// index in [`Stacks::sets`].
const OPEN_SET: Tag = 6;
/// A dict or set (whose keys or members must not collide in the target); payload: index in
/// [`Stacks::keyed`].
const CONTAINER: Tag = 7;

/// An open set for a Python 2 reader (the general path's `SetInfo` in `pickle/scan.rs`):
/// `downgrade.rs` writes it as `__builtin__.set([...])`, closed (and memoized) where it is
/// complete.
#[derive(Clone, Copy)]
struct SetInfo {
    memo: Option<u64>,
    /// Fetched from the memo before it was complete: not rewritable in place.
    frozen: bool,
    close_at: usize,
    /// The string kinds of its members (see [`key_kinds`]).
    kinds: u8,
}

/// A list (made by EMPTY_LIST or LIST): an [`OTHER`] told apart, as only lists take APPEND(S).
const LIST: Tag = OTHER | 1 << 3;
/// A tuple made by TUPLE1-3 or TUPLE holding none of the items [`TUPLE`] tells apart: an
/// [`OTHER`] told apart, as a key it is compared as a whole (see [`COMPOSITE`]).
const PLAIN_TUPLE: Tag = OTHER | 2 << 3;
/// An object built by a call (REDUCE, NEWOBJ, NEWOBJ_EX, INST, OBJ): an [`OTHER`] told apart,
/// as a key it may compare by its arguments or equal a string (see [`Keys::object_key`]).
const OBJECT: Tag = OTHER | 3 << 3;

/// A memo slot never PUT (never a real tag: a [`CONTAINER`] index stays below 2^29 - 1).
const UNDEF: Tag = Tag::MAX;

#[inline(always)]
fn kind(t: Tag) -> Tag {
    t & 7
}

#[inline(always)]
fn payload(t: Tag) -> usize {
    (t >> 3) as usize
}

/// The validating pass's model of the unpickling machine.
#[derive(Default)]
pub(super) struct Stacks {
    stack: Vec<Tag>,
    /// Stack lengths at each open MARK.
    marks: Vec<u32>,
    memo: Vec<Tag>,
    /// The value's distinct globals, as entries of `known`.
    globals: Vec<u32>,
    /// Kept between values.
    known: KnownGlobals,
    tuples: Vec<[Tag; 2]>,
    /// For a Python 2 reader: the plan `downgrade.rs` follows (STACK_GLOBAL in place, sets).
    pub(super) anns: Vec<(usize, Ann)>,
    sets: Vec<SetInfo>,
    /// Per dict/set: the string kinds of its keys or members (see [`key_kinds`]).
    keyed: Vec<u8>,
    /// The keys of dicts and sets, compared where one mixes string kinds.
    keys: Keys,
}

impl Stacks {
    /// Empties every stack, giving back what a huge value grew past `keep` entries.
    pub(super) fn trim(&mut self, keep: usize) {
        reuse(&mut self.stack, keep);
        reuse(&mut self.memo, keep);
        reuse(&mut self.marks, keep);
        reuse(&mut self.tuples, keep);
        reuse(&mut self.anns, keep);
        reuse(&mut self.sets, keep);
        reuse(&mut self.keyed, keep);
        self.keys.trim(keep);
        reuse(&mut self.globals, keep);
        self.known.trim();
    }
}

/// What the validating pass learns.
pub(super) struct Facts {
    pub(super) summary: Summary,
    pub(super) has_text: bool,
    /// A py2 `str` whose form changes for a py3 reader under the policy.
    pub(super) py3_change: bool,
    /// A global that `fix_imports` renames for protocol 2 and that is not also a Python 2
    /// name (`compat::renamed_name_is_py2_too`).
    pub(super) renames: bool,
}

/// The validating pass, handing each validated op to `sink` (which may write it for a reader
/// in the same pass). `None`: outside the subset, invalid, or a possible key collision.
pub(super) fn scan<S: Sink>(
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
        known,
        tuples,
        anns,
        sets,
        keyed,
        keys,
    } = stacks;
    stack.clear();
    marks.clear();
    memo.clear();
    globals.clear();
    tuples.clear();
    anns.clear();
    sets.clear();
    keyed.clear();
    keys.clear();
    // Tags carry byte offsets in 29 bits.
    if src.len() > (Tag::MAX >> 3) as usize {
        return None;
    }
    let (mut py3_names, mut py3_only, mut binary_state) = (false, false, false);
    let mut py2_only = false;
    let mut declared = None;
    let mut max_proto = 0u8;
    // Writer evidence for Python 2: py2 `str` opcodes, classic instances (INST/OBJ).
    let (mut py2_ops, mut non_ascii, mut has_text, mut py3_change) = (false, false, false, false);
    let mut text_memo = false;
    // `pair_keys`: keys or members the general path finds inside lists (an OrderedDict's pairs,
    // a list handed alone to a class that may make a set of it).
    let (mut has_bytes, mut pair_keys) = (false, false);
    // For a Python 2 reader the rewrite adds to the stack (an open set's global, bytes'
    // `_codecs.encode` arguments; `scan.rs` counts them the same way): the stack's room is
    // `max_stack` less those, so the rewrite stays within the limits it was checked against.
    let (mut py2_open_sets, mut py2_bytes_extra) = (0usize, 0usize);
    let mut room = limits.max_stack;
    // Protocol 3+ values as a Python 3 reader (or `analyze`) takes them.
    let py3_side = target != Some(Runtime::Py2);
    // Offsets of the last two ops that are not memo PUTs or FRAME.
    let mut recent = [usize::MAX; 2];
    let mut memo_len = 0usize;
    let mut pos = 0;
    // The global a GLOBAL or STACK_GLOBAL op names (an entry of `known`), for the sink.
    let mut named: Option<u32>;
    macro_rules! fence {
        () => {
            marks.last().map_or(0, |&m| m as usize)
        };
    }
    macro_rules! push {
        ($tag:expr) => {{
            if stack.len() >= room {
                return None;
            }
            stack.push($tag);
        }};
    }
    // The stack's room after the Python 2 rewrite's additions changed.
    macro_rules! py2_room {
        () => {{
            room = limits
                .max_stack
                .checked_sub(py2_open_sets + py2_bytes_extra)?;
            if stack.len() > room {
                return None;
            }
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
    // Pops the top two items above the topmost MARK; yields them bottom first.
    macro_rules! pop_pair {
        () => {{
            if stack.len() < fence!() + 2 {
                return None;
            }
            let top = stack.pop()?;
            (stack.pop()?, top)
        }};
    }
    // Pops the topmost MARK; yields the stack length where its items start.
    macro_rules! pop_mark {
        () => {
            marks.pop()? as usize
        };
    }
    // Adds the string kinds of every `step`-th item from `from` (keys, members) to the dict or
    // set below them (after they are popped), as `scan.rs` records them.
    // SETITEM(S) into an object built by a call (OrderedDict, defaultdict, dict subclasses)
    // makes it a keyed container from there on, as `scan.rs` does.
    macro_rules! keys_into_top {
        ($kinds:expr, $dict_op:expr) => {{
            let kinds: u8 = $kinds;
            match stack.last() {
                Some(&t) if kind(t) == CONTAINER => *keyed.get_mut(payload(t))? |= kinds,
                Some(&t) if kind(t) == OPEN_SET => sets.get_mut(payload(t))?.kinds |= kinds,
                Some(&t) if $dict_op && (t == OTHER || t == OBJECT) => {
                    let c = new_container!(kinds);
                    *stack.last_mut()? = c;
                }
                _ => {}
            }
        }};
    }
    macro_rules! new_container {
        ($kinds:expr) => {{
            keyed.push($kinds);
            CONTAINER | ((keyed.len() - 1) as Tag) << 3
        }};
    }
    loop {
        if run::worth(src, pos, S::RUN) {
            let state = run::State {
                pos,
                memo_len,
                max_proto,
                recent,
                has_text,
                text_memo,
                taken: 0,
            };
            let bounds = run::Bounds {
                room,
                until: sink.run_until(),
                max_depth: limits.max_depth,
                max_memo: limits.max_memo,
            };
            let state = match S::RUN {
                FULL => run::run::<FULL, S>(src, state, stack, marks, memo, bounds, sink),
                _ => run::run::<PLAIN, S>(src, state, stack, marks, memo, bounds, sink),
            };
            (pos, memo_len, max_proto, recent, has_text, text_memo) = (
                state.pos,
                state.memo_len,
                state.max_proto,
                state.recent,
                state.has_text,
                state.text_memo,
            );
            sink.took(state.taken);
        }
        let o = next(src, pos)?;
        named = None;
        let proto = match o.code {
            op::PROTO => {
                let p = src[o.arg];
                if p > 5 {
                    return None;
                }
                declared.get_or_insert(p);
                2
            }
            op::FRAME => {
                if le(src, o.arg, 8)? > (src.len() - o.end) as u64 {
                    // More than is left: truncated (the general path says so).
                    return None;
                }
                sink.frame(src, pos, o);
                4
            }
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
                // More digits than Python 3 reads from a line: the general path writes it in
                // binary (`bigint.rs`).
                if o.code != op::FLOAT
                    && py3_str.is_some()
                    && o.arg_end - o.arg > bigint::PY3_MAX_STR_DIGITS
                {
                    return None;
                }
                push!(OTHER);
                0
            }
            op::BININT | op::BININT1 | op::BININT2 | op::BINFLOAT => {
                push!(OTHER);
                1
            }
            op::EMPTY_TUPLE => {
                push!(OTHER);
                1
            }
            op::EMPTY_LIST => {
                push!(LIST);
                1
            }
            op::EMPTY_DICT => {
                let t = new_container!(0);
                push!(t);
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
                        // An odd number of items: the general path refuses it.
                        if (stack.len() - m) % 2 != 0 {
                            return None;
                        }
                        let kinds = key_kinds(&stack[m..], 2);
                        let t = new_container!(kinds);
                        let batch = keys.open(&stack[m..], 2);
                        keys.close(batch, t);
                        t
                    }
                    _ => LIST,
                };
                stack.truncate(m);
                push!(t);
                0
            }
            op::GLOBAL | op::INST => {
                let arg = o.arg(src);
                let nl = arg.iter().position(|&b| b == b'\n')?;
                let (idx, g) = global_index(known, globals, &arg[..nl], &arg[nl + 1..], policy)?;
                named = Some(globals[idx]);
                py3_names |= g.py3_name;
                py3_only |= g.missing_in_py2;
                py2_only |= g.py2_only;
                if o.code == op::INST {
                    // A classic instance of the class, from the items above the MARK.
                    py2_ops = true;
                    let m = pop_mark!();
                    stack.truncate(m);
                    push!(OBJECT);
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
                push!(OBJECT);
                1
            }
            op::REDUCE => {
                let (func, args) = pop_pair!();
                let g = match kind(func) {
                    GLOBAL => Some(known.entry(*globals.get(payload(func))?)),
                    _ => None,
                };
                // (A plain tuple may hold a list that becomes a set's members: the general path
                // compares them when the value holds strings of two kinds, checked at the end.)
                // A tuple handed alone (or first) holding strings: `set((a, b))`,
                // `OrderedDict(((k, v), ...))`, checked there too.
                let tuple_first = kind(args) == TUPLE
                    && kind(tuples.get(payload(args)).map_or(OTHER, |t| t[0])) == TUPLE;
                pair_keys |= g.is_some_and(|g| {
                    g.pair_keys || (g.collects_items && (args == PLAIN_TUPLE || tuple_first))
                });
                // `copy_reg._reconstructor(cls, base, <py2 str>)` and the like: a `str`
                // subclass's value, which must not become `bytes` (the general path's to judge).
                if target == Some(Runtime::Py3)
                    && kind(args) == TUPLE
                    && g.is_some_and(|g| g.str_value)
                {
                    return None;
                }
                if let (Some(g), TUPLE) = (g, kind(args)) {
                    let elems = *tuples.get(payload(args))?;
                    // An array whose typecode Python 2 lacks (`q`) is the general path's (a
                    // refusal for a py2 reader, a summary flag); so is one it cannot read here.
                    if g.array {
                        let code = match kind(elems[0]) {
                            TEXT => text_at(src, payload(elems[0])).map(Cow::Borrowed),
                            PY2_STR => py2_str_bytes(src, next(src, payload(elems[0]))?),
                            _ => None,
                        };
                        if code.map_or(true, |c| compat::is_py3_only_typecode(&c)) {
                            return None;
                        }
                    }
                    if let Some(&e) = g.binary_arg.and_then(|k| elems.get(usize::from(k))) {
                        // A text state of `date`/`time`/`datetime` (by hand): the general path
                        // refuses it for a Python 2 reader.
                        if kind(e) == TEXT && g.datetime && target == Some(Runtime::Py2) {
                            return None;
                        }
                        // So does a py2 `str` state with the fold bit (by hand, as above).
                        if kind(e) == PY2_STR && g.datetime && target == Some(Runtime::Py2) {
                            let state = py2_str_bytes(src, next(src, payload(e))?)?;
                            if may_fold(&state) {
                                return None;
                            }
                        }
                        if kind(e) == PY2_STR {
                            // Only a state Python 3 cannot decode as ASCII fails there for
                            // the datetime classes (the general path says why).
                            if !binary_state {
                                binary_state = !g.datetime || state_non_ascii(src, payload(e));
                            }
                            if target == Some(Runtime::Py3) {
                                // Used nowhere else, as the general path requires (a GET of it
                                // before this op: none; after: its memo slot is closed).
                                let slot = sole_use(src, payload(e), pos)?;
                                if let Some(t) = slot.and_then(|i| memo.get_mut(i)) {
                                    *t = UNDEF;
                                }
                                if let Some(v) = as_bytes.as_deref_mut() {
                                    v.push(payload(e) as u32);
                                }
                                sink.binary_state(src, payload(e))?;
                            }
                        }
                    }
                }
                push!(OBJECT);
                0
            }
            op::BUILD | op::NEWOBJ => {
                // BUILD's state dict keys stay `str` for a py3 reader under `bytes`: the
                // general path tracks them.
                if o.code == op::BUILD && py3_str == Some(Py3Str::Bytes) {
                    return None;
                }
                // BUILD leaves its object (an object stays one), NEWOBJ makes one.
                let built = stack
                    .len()
                    .checked_sub(2)
                    .and_then(|i| stack.get(i))
                    .copied();
                // `cls.__new__(cls, <py2 str>, ...)`: a `str` subclass's value, which must not
                // become `bytes` (the general path's to judge).
                if let (op::NEWOBJ, Some(policy), TUPLE) = (o.code, py3_str, kind(*stack.last()?)) {
                    let first = tuples.get(payload(*stack.last()?))?[0];
                    if kind(first) == PY2_STR && becomes_bytes(src, payload(first), policy)? {
                        return None;
                    }
                }
                pop!(2);
                push!(match (o.code, built) {
                    (op::BUILD, Some(t)) if t != OBJECT => OTHER,
                    _ => OBJECT,
                });
                if o.code == op::BUILD {
                    0
                } else {
                    2
                }
            }
            // Into a list or an object (a dict or set has no `append`: the general path's).
            // Strings given to an object may be a set's members (a `__reduce__` with list
            // items): the general path checks them as such.
            op::APPEND => {
                if stack.len() < fence!() + 2 {
                    return None;
                }
                let items = stack.len() - 1;
                let top = stack[items - 1];
                if !appendable(top) || (top != LIST && key_kinds(&stack[items..], 1) & STRINGS != 0)
                {
                    return None;
                }
                pop!(1);
                0
            }
            op::APPENDS => {
                let m = pop_mark!();
                if m <= fence!() {
                    return None;
                }
                let top = stack[m - 1];
                if !appendable(top) || (top != LIST && key_kinds(&stack[m..], 1) & STRINGS != 0) {
                    return None;
                }
                stack.truncate(m);
                1
            }
            op::SETITEM => {
                if stack.len() < fence!() + 2 {
                    return None;
                }
                let kinds = key_kinds(&stack[stack.len() - 2..], 2);
                let batch = keys.open(&stack[stack.len() - 2..], 2);
                pop!(2);
                // The container must still be there, and take these items.
                if stack.len() <= fence!() || !takes(*stack.last()?, o.code, keyed) {
                    return None;
                }
                keys_into_top!(kinds, true);
                keys.close(batch, *stack.last()?);
                0
            }
            op::SETITEMS => {
                let m = pop_mark!();
                if (stack.len() - m) % 2 != 0 {
                    return None;
                }
                let kinds = key_kinds(&stack[m..], 2);
                let batch = keys.open(&stack[m..], 2);
                stack.truncate(m);
                if stack.len() <= fence!() || !takes(*stack.last()?, o.code, keyed) {
                    return None;
                }
                keys_into_top!(kinds, true);
                keys.close(batch, *stack.last()?);
                1
            }
            op::SHORT_BINSTRING | op::BINSTRING | op::STRING => {
                let bytes = py2_str_bytes(src, o)?;
                let ascii = bytes.is_ascii();
                sink.py2_str(src, pos, o, &bytes, ascii)?;
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
            // Python 3's bytes; for a Python 2 reader `downgrade.rs` writes them as CPython
            // does (no plan needed).
            op::SHORT_BINBYTES | op::BINBYTES | op::BINBYTES8 | op::BYTEARRAY8 => {
                has_bytes |= o.code != op::BYTEARRAY8;
                // What could be a `datetime` (10 bytes, month byte) or `time` (6 bytes, hour
                // byte) state with the fold bit: the general path clears it for Python 2.
                let state = o.arg(src);
                if !py3_side && may_fold(state) {
                    return None;
                }
                push!(if o.code == op::BYTEARRAY8 {
                    OTHER
                } else {
                    BYTES | (pos as Tag) << 3
                });
                if !py3_side {
                    py2_bytes_extra = 3;
                    py2_room!();
                }
                match o.code {
                    op::SHORT_BINBYTES | op::BINBYTES => 3,
                    op::BINBYTES8 => 4,
                    _ => 5,
                }
            }
            op::EMPTY_SET => {
                if py3_side {
                    let t = new_container!(SET_MADE);
                    push!(t);
                } else {
                    sets.push(SetInfo {
                        memo: None,
                        frozen: false,
                        close_at: o.end,
                        kinds: 0,
                    });
                    push!(OPEN_SET | ((sets.len() - 1) as Tag) << 3);
                    py2_open_sets += 1;
                    py2_room!();
                }
                4
            }
            op::ADDITEMS => {
                let m = pop_mark!();
                let kinds = key_kinds(&stack[m..], 1);
                let batch = keys.open(&stack[m..], 1);
                stack.truncate(m);
                if stack.len() <= fence!() || !takes(*stack.last()?, o.code, keyed) {
                    return None;
                }
                keys_into_top!(kinds, false);
                keys.close(batch, *stack.last()?);
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
                let kinds = key_kinds(&stack[m..], 1);
                let t = new_container!(kinds | SET_MADE);
                let batch = keys.open(&stack[m..], 1);
                keys.close(batch, t);
                stack.truncate(m);
                push!(t);
                4
            }
            op::NEWOBJ_EX if py3_side => {
                pop!(3);
                push!(OBJECT);
                4
            }
            op::STACK_GLOBAL => {
                let (module, name) = pop_pair!();
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
                let (idx, g) = global_index(known, globals, m, n, policy)?;
                named = Some(globals[idx]);
                py3_names |= g.py3_name;
                py3_only |= g.missing_in_py2;
                py2_only |= g.py2_only;
                push!(GLOBAL | (idx as Tag) << 3);
                4
            }
            op::BINGET | op::LONG_BINGET | op::GET => {
                let binary = !matches!(o.code, op::PUT | op::GET);
                if run::mixed_memo(binary, max_proto, text_memo) {
                    return None;
                }
                text_memo |= !binary;
                let idx = memo_index(src, o)?;
                match memo.get(idx) {
                    Some(&t) if kind(t) == OPEN_SET => {
                        // Fetched before it is complete: the set is frozen as it is (adding to
                        // it later is left to the general path).
                        sets.get_mut(payload(t))?.frozen = true;
                        push!(t);
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
                let binary = !matches!(o.code, op::PUT | op::GET);
                if run::mixed_memo(binary, max_proto, text_memo) {
                    return None;
                }
                text_memo |= !binary;
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
        match named {
            Some(e) => sink.global(src, pos, o, known, e)?,
            None => sink.op(src, pos, o)?,
        }
        if !matches!(
            o.code,
            op::PUT | op::BINPUT | op::LONG_BINPUT | op::MEMOIZE | op::FRAME
        ) {
            recent = [recent[1], pos];
        }
        pos = o.end;
    }
    // The string kinds of the value (py2 `str`, text, bytes): keys can only collide across two.
    let string_kinds = usize::from(py2_ops) + usize::from(has_text) + usize::from(has_bytes);
    // Python 2's `OrderedDict([[k, v], ...])`, or a list handed alone to a class that may
    // make a set of it, in a value with strings of two kinds: the general path checks their
    // keys (the first items of lists; the list's items).
    if pair_keys && string_kinds > 1 {
        return None;
    }
    // Distinct keys can only become equal within a dict or set that mixes string kinds, and
    // only when their contents are equal (see `keys.rs`).
    let mixed = |k: &u8| (k & 7).count_ones() > 1;
    let mixed = keyed.iter().any(mixed) || sets.iter().any(|s| mixed(&s.kinds));
    // Tuple or frozenset keys in a value with strings of two kinds (a py2 `str` that changes
    // form for a Python 3 reader counting as one more) are compared as a whole; only in a
    // container with another such key.
    let converted = target == Some(Runtime::Py3) && py3_change;
    let composite = string_kinds + usize::from(converted) > 1
        && keyed
            .iter()
            .chain(sets.iter().map(|s| &s.kinds))
            .any(|k| k & COMPOSITE != 0);
    // An object key or member in a value with strings of two kinds: the general path compares
    // the strings of its arguments and its container's string keys.
    let objects = string_kinds + usize::from(converted) > 1 && keys.object_key(keyed, sets);
    // Globals as keys that may meet: see `globals_meet`.
    let globals_meet = globals.len() > 1 && globals_meet(known, globals, target);
    // Where the keys may meet, the general path compares them as the target will see them.
    if objects
        || globals_meet
        || (mixed && !keys.distinct(src, py3_str == Some(Py3Str::Latin1), keyed, sets))
        || (composite && !keys.one_composite_each(keyed, sets))
    {
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
            py2_only_global: py2_only,
            // Past MAX_SUMMARY_GLOBALS distinct globals the general path decides.
            globals: known.list(globals),
            globals_complete: true,
        },
        has_text,
        py3_change,
        // From the value's distinct globals, after the loop (kept out of its per-op work).
        renames: globals.iter().any(|&e| {
            let k = known.entry(e);
            k.renamed && !k.renamed_if_py3
        }),
    })
}

/// Whether two of the value's distinct globals may make keys that meet in the reader, which the
/// general path judges (`collide.rs`): two the reader looks up as one (`__builtin__.str` and
/// `__builtin__.unicode` for Python 3, `FileNotFoundError` and `OSError` for Python 2), or for
/// Python 3 a `Decimal` next to a `Fraction` or `complex` (numbers of one value that only
/// Python 3 finds equal).
#[inline(never)]
fn globals_meet(known: &KnownGlobals, globals: &[u32], target: Option<Runtime>) -> bool {
    let py2 = target == Some(Runtime::Py2);
    // (hash, name) as the reader looks it up, and whether that differs from the spelling (two
    // distinct spellings the reader keeps are two names: one of a meeting pair is renamed).
    let name = |e: u32| {
        let k = known.entry(e);
        if py2 {
            (k.py2_hash, &k.py2, k.renamed)
        } else {
            (k.py3_hash, &k.py3, k.py3_renamed)
        }
    };
    let mut numbers = 0;
    for &a in globals {
        numbers |= known.entry(a).number;
        let (ha, na, renamed) = name(a);
        if renamed
            && globals.iter().any(|&b| {
                let (hb, nb, _) = name(b);
                b != a && ha == hb && na == nb
            })
        {
            return true;
        }
    }
    target == Some(Runtime::Py3) && numbers == 0b11
}

/// A tuple (holding a string, bytes, tuple or dict/set) or frozenset key: `scan.rs` compares
/// those as a whole.
const COMPOSITE: u8 = 8;
/// [`key_kinds`]' string bits: py2 `str`, text, bytes.
const STRINGS: u8 = 7;
/// In a [`CONTAINER`]'s kinds: a set or frozenset (made by EMPTY_SET or FROZENSET).
const SET_MADE: u8 = 16;

/// Whether `top` takes APPEND(S) as a value that loads would: a list or an object (any
/// [`CONTAINER`], a SETITEM(S)'d object included, is the general path's to judge; see
/// [`takes`]).
#[inline(always)]
fn appendable(top: Tag) -> bool {
    kind(top) != CONTAINER && kind(top) != OPEN_SET
}

/// Whether `top` takes the items of SETITEM(S) or ADDITEMS (`code`) as a value that loads
/// would: SETITEM(S) dicts, ADDITEMS sets (`scan.rs` refuses the rest as `Made::takes` says);
/// anything else (an object built by a call) is the general path's to judge, and so are sets
/// being built for a Python 2 reader.
#[inline(always)]
fn takes(top: Tag, code: u8, keyed: &[u8]) -> bool {
    let set =
        || kind(top) == CONTAINER && keyed.get(payload(top)).is_some_and(|k| k & SET_MADE != 0);
    match code {
        op::SETITEM | op::SETITEMS => top != LIST && kind(top) != OPEN_SET && !set(),
        // ADDITEMS: a set made for a Python 3 reader, or one being built for a Python 2 reader
        // (checked by the caller).
        _ => kind(top) == OPEN_SET || set(),
    }
}

/// The string kinds of every `step`-th item: bit 0 py2 `str`, bit 1 text, bit 2 bytes (the
/// kinds a key collision can cross), and [`COMPOSITE`].
#[inline(always)]
fn key_kinds(items: &[Tag], step: usize) -> u8 {
    // By kind: py2 `str`, text, bytes; a tuple, dict or set is compared as a whole (a set being
    // built for a Python 2 reader, as a member, too: a value only made by hand, sets are not
    // hashable). A table, not a `match`: this runs for every key of every value.
    const BITS: [u8; 8] = {
        let mut bits = [0; 8];
        bits[PY2_STR as usize] = 1;
        bits[TEXT as usize] = 2;
        bits[BYTES as usize] = 4;
        bits[TUPLE as usize] = COMPOSITE;
        bits[CONTAINER as usize] = COMPOSITE;
        bits[OPEN_SET as usize] = COMPOSITE;
        bits
    };
    let mut kinds = 0;
    for &t in items.iter().step_by(step) {
        kinds |= BITS[kind(t) as usize];
    }
    kinds
}

/// Whether the py2 `str` op at `pos` becomes `bytes` for a Python 3 reader under `policy`.
#[cold]
fn becomes_bytes(src: &[u8], pos: usize, policy: Py3Str) -> Option<bool> {
    let bytes = py2_str_bytes(src, next(src, pos)?)?;
    Some(strings::py3_form(&bytes, policy) == strings::Py3Form::Bytes)
}

/// The tag of a tuple of `items`: [`TUPLE`] when an item is a string, bytes, tuple, dict/set
/// or object (its first two items are kept: what a binary-state constructor is given; as a
/// key, what is inside is the general path's to compare), else [`PLAIN_TUPLE`].
#[inline(always)]
fn tuple_tag(tuples: &mut Vec<[Tag; 2]>, items: &[Tag]) -> Tag {
    if !items
        .iter()
        .any(|&t| matches!(kind(t), PY2_STR | TEXT | BYTES | TUPLE | CONTAINER) || t == OBJECT)
    {
        return PLAIN_TUPLE;
    }
    let e0 = items.first().copied().unwrap_or(OTHER);
    let e1 = items.get(1).copied().unwrap_or(OTHER);
    tuples.push([e0, e1]);
    TUPLE | ((tuples.len() - 1) as Tag) << 3
}

/// The index of global `m.n` among the value's distinct globals (adding it when it is new and
/// the fast path decides values that use it), and what is known of it.
#[inline]
fn global_index<'k>(
    known: &'k mut KnownGlobals,
    globals: &mut Vec<u32>,
    m: &[u8],
    n: &[u8],
    policy: Option<&Policy>,
) -> Option<(usize, &'k super::globals::Known)> {
    let e = known.get(m, n)?;
    let idx = match globals.iter().position(|&g| g == e) {
        Some(i) => i,
        None => {
            if globals.len() >= MAX_SUMMARY_GLOBALS || !known.entry(e).fast_ok(policy) {
                return None;
            }
            globals.push(e);
            globals.len() - 1
        }
    };
    Some((idx, known.entry(e)))
}

/// The payload of the text op at `pos` (BINUNICODE family; protocol 0's escaped form is left to
/// the general path). Its UTF-8 is checked where the global is first met (`KnownGlobals::get`).
fn text_at(src: &[u8], pos: usize) -> Option<&[u8]> {
    let o = next(src, pos)?;
    if o.code == op::UNICODE {
        return None;
    }
    Some(o.arg(src))
}

/// Whether the py2 `str` at `pos` holds a byte >= 0x80 (a datetime state Python 3 cannot
/// decode as ASCII; the general path says why). Unreadable: as if it did.
fn state_non_ascii(src: &[u8], pos: usize) -> bool {
    next(src, pos)
        .and_then(|o| py2_str_bytes(src, o))
        .map_or(true, |b| !b.is_ascii())
}

/// Whether `state` could be a `datetime` (10 bytes, month byte) or `time` (6 bytes, hour byte)
/// state with the fold bit set, which the general path judges for Python 2 readers.
fn may_fold(state: &[u8]) -> bool {
    [compat::DATETIME_FOLD, compat::TIME_FOLD]
        .into_iter()
        .any(|place| compat::fold_set(state, place))
}
