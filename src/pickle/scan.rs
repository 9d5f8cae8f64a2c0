//! Pass 1: reads and validates the whole pickle once (reader + machine), builds the [`Summary`],
//! and, for a target, the [`Plan`] that pass 2 (`downgrade.rs` / `py3.rs`) follows: which ops
//! to skip, which py2 `str`s are binary state, where a set built with ADDITEMS is complete, which
//! NEWOBJ builds a classic class. Also checks for key collisions in the target.
//!
//! No value tree: each stack item is a small [`Slot`] tag pointing back at input offsets.

mod arrays;
mod calls;
mod collide;
mod utc;
mod walks;

use std::cell::RefCell;
use std::collections::{HashMap, HashSet};

use super::bigint;
use super::compat;
use super::error::{ErrorKind, TranscodeError};
use super::machine::Machine;
use super::opcode as op;
use super::reader::{Op, Reader};
use super::strings::{self, Py3Form};
use super::{
    Global, Globals, Policy, Py2Text, Py2Utc, Py3Str, Runtime, Summary, Writer, COMPUTED_GLOBAL,
    MAX_SUMMARY_GLOBALS,
};

/// What pass 2 must do at an input offset, beyond the default rewrite of the op there.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Ann {
    /// Before the op: a set begun by EMPTY_SET is complete; close `set(list)` and PUT its memo.
    SetClose { memo: Option<u64> },
    /// Before the op: a frozenset's MARK; emit `frozenset` and EMPTY_LIST first.
    FrozensetStart,
    /// Before the op: a classic-class instance starts here (MARK for OBJ).
    MarkBefore,
    /// Do not emit this op (its value is folded into a later op); a memo PUT of it is lazy.
    Skip,
    /// This memo PUT belongs to a set still being built: deferred to its SetClose.
    DeferMemo,
    /// This py2 `str` is binary state: `bytes` for a py3 reader whatever the policy.
    AsBytes,
    /// An argument of `_codecs.encode` / `bytearray` (text, encoding name): stays unicode for
    /// py2 readers, and an ASCII py2 `str` stays `str` for py3 readers.
    KeepText,
    /// STACK_GLOBAL whose module and name are the text ops at these offsets.
    StackGlobal { module: usize, name: usize },
    /// NEWOBJ of a classic class, or the REDUCE of `copy_reg._reconstructor(cls, object, None)`
    /// for one: write OBJ.
    NewobjToObj,
    /// Do not emit this op; its value (a temporary tuple) must never be fetched from the memo.
    SkipGone,
    /// This bytes op is the state of a `datetime`/`time` with `fold=1` (protocol 4+): clear the
    /// fold bit (0x80) of this byte for Python 2, as CPython's own protocol-2 pickle drops fold.
    ClearFold { byte: u8 },
    /// This GET fetches a string (the op at `src`) for a use whose text rule differs from the
    /// rule of the memoized string (`keep`: a [`Ann::KeepText`] use of a converted string, or
    /// the reverse): write the string afresh, converted or kept as `keep` says, instead.
    Fresh { src: usize, keep: bool },
    /// This GLOBAL / STACK_GLOBAL names the UTC class to convert under `py2_utc = pytz`
    /// (`datetime.timezone` for a py2 reader, `pytz._UTC` for a py3 reader): write the
    /// target's instead (`pytz._UTC`, `datetime.timezone`).
    UtcGlobal,
    /// The REDUCE that calls it (with `(timedelta(0),)` or `()`): write the target's arguments.
    UtcCall,
    /// The op that pushes the bytes (the bytes op at `src`, or a GET of it) of
    /// `array._array_reconstructor(array.array, typecode, mformat, bytes)` (`scan/arrays.rs`):
    /// write their items as a list instead (`array.rs`), never memoized.
    ArrayItems { mformat: u8, src: usize },
    /// The TUPLE of that call's arguments: TUPLE2 of `(typecode, list)` (its MARK and the
    /// mformat are skipped), never memoized.
    ArrayArgs,
    /// The same where the bytes op is also fetched from the memo elsewhere, so it is written
    /// as it stands: POP the bytes, write the list of the items at `src`, then TUPLE2.
    ArrayArgsPop { mformat: u8, src: usize },
}

impl Ann {
    /// Anns that go before the op at their offset sort first.
    pub(crate) fn order(&self) -> u8 {
        match self {
            Ann::SetClose { .. } => 0,
            Ann::FrozensetStart | Ann::MarkBefore => 1,
            _ => 2,
        }
    }
}

/// Annotations sorted by (offset, order).
#[derive(Debug, Default)]
pub(crate) struct Plan {
    pub(crate) anns: Vec<(usize, Ann)>,
}

impl Plan {
    /// Whether the rewrite converts a UTC class (`py2_utc = pytz`).
    pub(crate) fn converts_utc(&self) -> bool {
        self.anns.iter().any(|(_, a)| matches!(a, Ann::UtcGlobal))
    }
}

/// Everything pass 1 learns.
#[derive(Debug)]
pub(crate) struct Scan {
    pub(crate) summary: Summary,
    pub(crate) plan: Plan,
    /// Whether the target needs any change at all (else the outcome is Unchanged).
    pub(crate) needs_change: bool,
    /// A global only Python 3 names (see [`Summary::py3_names`]).
    pub(crate) renames: bool,
}

/// A stack item's tag.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
enum Slot {
    #[default]
    Any,
    /// A py2 `str` op at `src`, pushed by the op at `via` (itself or a GET).
    Py2Str { src: usize, via: usize },
    /// A unicode op at `src`, pushed by `via`.
    Text { src: usize, via: usize },
    /// A bytes op (SHORT_BINBYTES/BINBYTES/BINBYTES8) at `src`.
    Bytes { src: usize },
    /// `_codecs.encode(text, 'latin1')` of the text op at `src` (py3's protocol-2 bytes).
    CodecsBytes { src: usize },
    /// `__builtin__.bytes()`: py3's protocol-2 empty bytes.
    EmptyBytes,
    /// A global (index into the scan's table), pushed by `via`.
    Global { idx: u32, via: usize },
    /// EMPTY_TUPLE pushed by `via`.
    EmptyTuple { via: usize },
    /// A tuple; its first two items if they are interesting, and (with a policy) where all its
    /// items are kept for the collision check ([`Scanner::tuple_items`]; `u32::MAX`: not kept).
    Tuple([Elem; 2], u32),
    /// A number, None or a bool pushed by the op at `pos` (a tuple key's items are compared by
    /// value: `1`, `True` and `1.0` are one key).
    Scalar { pos: usize },
    /// A list, dict or set (index into the container table).
    Container(u32),
    /// A set begun by EMPTY_SET (index into the set table).
    OpenSet(u32),
    /// `datetime.timedelta(0, 0, 0)` (the offset of `datetime.timezone.utc`), noted only while
    /// `py2_utc = pytz` converts for a Python 2 reader.
    ZeroDelta,
    /// The result of a UTC call `py2_utc = pytz` converts.
    Utc,
    /// An object built by a call (REDUCE, NEWOBJ, NEWOBJ_EX, INST, OBJ), with a policy: its
    /// arguments are [`Scanner::objects`]' entry. As a key it may compare by them (a
    /// namedtuple, a subclass of `str` or `tuple`: see `collide.rs`).
    Object(u32),
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
enum Elem {
    #[default]
    Other,
    Py2Str {
        src: usize,
        via: usize,
    },
    Text {
        src: usize,
        via: usize,
    },
    Container(u32),
    Global {
        idx: u32,
        via: usize,
    },
    /// A bytes op at `src`.
    Bytes {
        src: usize,
    },
}

impl Elem {
    fn of(s: &Slot) -> Elem {
        match *s {
            Slot::Py2Str { src, via } => Elem::Py2Str { src, via },
            Slot::Text { src, via } => Elem::Text { src, via },
            Slot::Container(c) => Elem::Container(c),
            Slot::Global { idx, via } => Elem::Global { idx, via },
            Slot::Bytes { src } => Elem::Bytes { src },
            _ => Elem::Other,
        }
    }
}

struct GlobalInfo {
    /// Py3-side spelling as written (py2 spelling for py2-written GLOBALs).
    module: String,
    name: String,
    binary_arg: Option<u8>,
    /// The reader that cannot build its instances, and whether `utf8` lets it
    /// (`compat::unbuildable_for`).
    unbuildable: Option<(Runtime, bool)>,
    classic: bool,
    set_like: bool,
    /// A call to it may build a set from a list argument (`compat::collects_items`).
    collects_items: bool,
    codecs_encode: bool,
    /// `bytes` (`__builtin__.bytes`, py2 spelling: Python 2's `str`).
    bytes_type: bool,
    /// `copy_reg._reconstructor` (py2 spelling).
    reconstructor: bool,
    /// May hand a py2 `str` to `str.__new__` (see `Scanner::str_value_call`).
    str_value: bool,
    /// `copy_reg.__newobj__` (`cls.__new__(cls, *args)`).
    newobj_fn: bool,
    object: bool,
    /// Which of the first two arguments must stay text (see `compat::text_args`).
    keeps_text: [bool; 2],
    /// How its instances compare as keys (`compat::value_key`).
    value_key: Option<compat::ValueKey>,
    /// `getattr` (`walks.rs`).
    getattr: bool,
    /// `array._array_reconstructor` (its calls are rewritten: `scan/arrays.rs`).
    array_reconstructor: bool,
}

struct SetInfo {
    container: u32,
    memo: Option<u64>,
    frozen: bool,
    close_at: usize,
}

/// The global a class slot names, if it is one.
fn global_index(slot: Slot) -> Option<u32> {
    match slot {
        Slot::Global { idx, .. } => Some(idx),
        _ => None,
    }
}

/// An object built by a call (REDUCE, NEWOBJ, NEWOBJ_EX, INST, OBJ), for the collision check.
#[derive(Clone, Copy)]
struct ObjectRec {
    /// Its arguments (a tuple, or `Any` when unknown).
    args: Slot,
    /// The global called (REDUCE's callable, the class of NEWOBJ and the others), if known.
    class: Option<u32>,
}

/// One dict key / set member candidate for the collision check.
struct KeyRec {
    container: u32,
    /// The key's slot (py2 str, text, bytes); hashed only if its container mixes kinds.
    slot: Slot,
}

/// Items kept per list or frozenset for comparing frozenset keys (past this: no digest).
const MAX_KEPT_MEMBERS: usize = 4096;

/// Distinct globals looked up by linear scan before a map is built.
const LINEAR_GLOBALS: usize = 32;

/// How many recent op offsets the pattern checks look back over.
const RECENT: usize = 6;

/// What a container was made as, which decides the ops that may add to it in a value that
/// loads: APPEND(S) a list's, SETITEM(S) a dict's, ADDITEMS a set's; an object built by a call
/// (given SETITEM(S)) may have methods for any of them.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Made {
    List,
    Dict,
    Set,
    Object,
}

impl Made {
    /// Whether adding items with `code` to it can load (an empty batch always does).
    fn takes(self, code: u8) -> bool {
        matches!(
            (self, code),
            (Made::Object, _)
                | (Made::List, op::APPEND | op::APPENDS)
                | (Made::Dict, op::SETITEM | op::SETITEMS)
                | (Made::Set, op::ADDITEMS)
        )
    }
}

/// What the collision check knows of a container.
#[derive(Clone, Copy)]
struct ContainerInfo {
    made: Made,
    /// The mask of str-like key kinds seen (see `key_kind`).
    kinds: u8,
    /// The same kinds as the target will see them (`target_kind`).
    target_kinds: u8,
    /// Items were added that [`Scanner::members`] does not hold (a list filled before any
    /// `set`/`frozenset` global was named): it has no digest as a key.
    unkept: bool,
    /// A list handed to a call that may make a set of it (`compat::collects_items`): its
    /// items are compared as members (it stays a list for what may add to it).
    members: bool,
}

impl ContainerInfo {
    /// A dict or set (or a list given to `set`/`frozenset` or to another class that may
    /// make a set of it), not a plain list.
    fn keyed(&self) -> bool {
        self.made != Made::List || self.members
    }
}

struct Scanner<'a, 'p> {
    src: &'a [u8],
    policy: Option<&'p Policy>,
    m: Machine<Slot>,
    mark_pos: Vec<usize>,
    /// Offsets of the last ops that were not memo PUTs or FRAME, oldest first.
    recent: [usize; RECENT],
    globals: Vec<GlobalInfo>,
    global_ix: HashMap<(String, String), u32>,
    sets: Vec<SetInfo>,
    containers: Vec<ContainerInfo>,
    keys: Vec<KeyRec>,
    anns: Vec<(usize, Ann)>,
    scratch: Vec<Slot>,
    summary: Summary,
    /// [`Summary::globals`], listed as they come.
    summary_globals: Vec<Global>,
    ev_py2: bool,
    ev_py3: bool,
    has_text: bool,
    /// A py2 `str` op appears.
    has_py2_str: bool,
    /// A py3 `bytes` (any form) appears.
    has_bytes: bool,
    /// Per list (with a policy): its first item, and the first items of the lists and tuples it
    /// holds: the keys of `OrderedDict([[key, value], ...])` (how Python 2 pickles one) or of
    /// another class given pairs (`OrderedDict(self.items())` in a `__reduce__`).
    list_first: HashMap<u32, Slot>,
    pair_firsts: HashMap<u32, Vec<Slot>>,
    /// `set` or `frozenset` was named: lists from now on keep their `members`.
    set_global_seen: bool,
    /// The items of each tuple (with a policy): spans into `tuple_items`.
    tuple_spans: Vec<(u32, u32)>,
    tuple_items: Vec<Slot>,
    /// Tuple, frozenset, object and global keys (compared as a whole, see `collide.rs`).
    composite_keys: Vec<KeyRec>,
    /// Each [`Slot::Object`]: its arguments and class.
    objects: Vec<ObjectRec>,
    /// `uuid.UUID` was named: dicts from now on keep the value of an `int` key, and objects
    /// of that class the `int` of their state (see `collide.rs`).
    uuid_seen: bool,
    /// Per dict (once `uuid_seen`): the value last set for a key `'int'` (or `u'int'`).
    int_items: HashMap<u32, Slot>,
    /// Per UUID object: the `int` its BUILD state set (`None`: unknown, or built twice).
    uuid_ints: HashMap<u32, Option<Slot>>,
    /// Digits of the INT/LONG lines rewritten in binary for a Python 3 reader (`bigint.rs`).
    long_digits: usize,
    /// Memo ops seen: 1 text (PUT, GET), 2 binary (see `memo_kind`).
    memo_kinds: u8,
    /// The items of lists and frozensets (with a policy, up to [`MAX_KEPT_MEMBERS`]; `None`
    /// past that): a frozenset key's members, from FROZENSET or `frozenset(list)`.
    members: HashMap<u32, Option<Vec<Slot>>>,
    /// For Python 2 readers: bytes ops whose fold bit is cleared, and bytes ops fetched by GET
    /// (a cleared state must not be seen anywhere else).
    folds: Vec<usize>,
    bytes_gets: Vec<usize>,
    /// For Python 3 readers: (py2 `str` op, op that pushed it: itself or a GET) of each use as
    /// binary state (`bytes`), and of each GET of a py2 `str` (a binary state that has a use of
    /// another kind is refused).
    binary_uses: Vec<(usize, usize)>,
    py2_str_gets: Vec<(usize, usize)>,
    /// How many distinct text ops (not GETs of them) there are.
    text_ops: usize,
    /// (string op, op that pushed it: itself or a GET) of each use that keeps the string's
    /// type (`Ann::KeepText`), and of each GET of a string whose rule may differ per use.
    kept_uses: Vec<(usize, usize)>,
    string_gets: Vec<(usize, usize)>,
    /// Under `py3_str = bytes`: the dict of each BUILD's state (its keys stay `str`), and the
    /// container of each GET (see `state_dict_has_other_use`).
    state_dicts: Vec<u32>,
    fetched_containers: Vec<u32>,
    /// (container, text op, op that pushed it) of text items of lists and sets, recorded
    /// only under `py2_text = utf8`.
    item_texts: Vec<(u32, usize, usize)>,
    /// py2 `str` ops the py3 policy changes, and whether they are ASCII.
    py2_str_changes: Vec<(usize, bool)>,
    /// `target_kind` of each py2 `str` op asked about, by offset: a long string fetched from
    /// the memo many times is decoded once.
    target_kinds: RefCell<HashMap<usize, Option<u8>>>,
    /// A global `fix_imports` renames that is not also a Python 2 name
    /// (`compat::renamed_name_is_py2_too`): the names are Python 3's.
    renames: bool,
    classic_rewrite: bool,
    /// What `py2_utc = pytz` converts (`utc.rs`).
    utc: utc::UtcScan,
    /// How `getattr` is used (`walks.rs`).
    walks: walks::WalkScan,
    /// For a Python 2 reader: how often `array._array_reconstructor` was pushed (GLOBAL,
    /// STACK_GLOBAL, GET, DUP, INST), and how many of those calls are rewritten as
    /// `array.array(typecode, list)`. Any other use is refused `py3_only_global` at the end.
    array_pushes: usize,
    array_calls: usize,
    /// The ops that pushed the reconstructor of each rewritten call.
    array_vias: HashSet<usize>,
    /// Each rewritten call's bytes: (op that pushed them, bytes op, TUPLE, mformat); planned
    /// at the end, when every GET of the bytes is known.
    array_items: Vec<(usize, usize, usize, u8)>,
    /// The last TUPLE and the MARK it closed (offsets).
    last_tuple: (usize, usize),
}

/// Runs pass 1. `policy` is `None` for [`super::analyze`] (no plan, no refusals of valid input).
///
/// # Errors
/// Reader/machine errors; with a policy also the refusals (persistent ids, extensions, buffers,
/// NEWOBJ_EX and py3-only globals for py2, collisions, unsupported constructs).
pub(crate) fn scan(src: &[u8], policy: Option<&Policy>) -> Result<Scan, TranscodeError> {
    let limits = policy.map(|p| p.limits).unwrap_or_default();
    let mut s = Scanner {
        src,
        policy,
        m: Machine::new(limits),
        mark_pos: Vec::new(),
        recent: [usize::MAX; RECENT],
        globals: Vec::new(),
        global_ix: HashMap::new(),
        sets: Vec::new(),
        containers: Vec::new(),
        keys: Vec::new(),
        anns: Vec::new(),
        scratch: Vec::new(),
        summary: Summary {
            declared_protocol: None,
            max_protocol: 0,
            writer: Writer::Unknown,
            py2_str_non_ascii: false,
            py2_binary_state: false,
            py3_text: false,
            py3_only_global: false,
            py2_only_global: false,
            globals: Globals::default(),
            globals_complete: true,
        },
        summary_globals: Vec::new(),
        ev_py2: false,
        ev_py3: false,
        has_bytes: false,
        has_py2_str: false,
        list_first: HashMap::new(),
        set_global_seen: false,
        pair_firsts: HashMap::new(),
        tuple_spans: Vec::new(),
        tuple_items: Vec::new(),
        composite_keys: Vec::new(),
        objects: Vec::new(),
        uuid_seen: false,
        int_items: HashMap::new(),
        uuid_ints: HashMap::new(),
        long_digits: 0,
        memo_kinds: 0,
        members: HashMap::new(),
        folds: Vec::new(),
        binary_uses: Vec::new(),
        py2_str_gets: Vec::new(),
        bytes_gets: Vec::new(),
        has_text: false,
        text_ops: 0,
        kept_uses: Vec::new(),
        string_gets: Vec::new(),
        state_dicts: Vec::new(),
        fetched_containers: Vec::new(),
        item_texts: Vec::new(),
        py2_str_changes: Vec::new(),
        target_kinds: RefCell::default(),
        renames: false,
        classic_rewrite: false,
        utc: utc::UtcScan::new(policy),
        walks: walks::WalkScan::default(),
        array_pushes: 0,
        array_calls: 0,
        array_vias: HashSet::new(),
        array_items: Vec::new(),
        last_tuple: (usize::MAX, usize::MAX),
    };
    // For a Python 2 reader the rewrite holds more on the stack than the input: a set or
    // frozenset is `set` + a list while open, bytes briefly `_codecs.encode` + text + 'latin1'
    // (+ `bytearray`), a nested class briefly `getattr` + the outer class + the name (where the
    // input had two strings). Counted conservatively (sets never closed, the brief ones as the
    // larger for the rest of the value), so the output is within `max_stack` too.
    let py2_limit = s
        .policy
        .filter(|p| p.target == Runtime::Py2)
        .map(|p| p.limits.max_stack);
    let (mut open_sets, mut brief_extra) = (0usize, 0usize);
    for item in Reader::new(src) {
        let op = item?;
        s.m.at(op.pos, op.code);
        s.step(&op)?;
        if let Some(max) = py2_limit {
            match op.code {
                op::EMPTY_SET | op::FROZENSET => open_sets += 1,
                op::SHORT_BINBYTES | op::BINBYTES | op::BINBYTES8 | op::BYTEARRAY8 => {
                    brief_extra = 3
                }
                op::STACK_GLOBAL if s.nested_global_on_top() => brief_extra = brief_extra.max(2),
                _ => {}
            }
            if s.m.len() + open_sets + brief_extra > max {
                return Err(s.m.err(ErrorKind::LimitExceeded));
            }
        }
        if !matches!(
            op.code,
            op::PUT | op::BINPUT | op::LONG_BINPUT | op::MEMOIZE | op::FRAME
        ) {
            s.recent.rotate_left(1);
            s.recent[RECENT - 1] = op.pos;
        }
    }
    s.finish()
}

impl<'a, 'p> Scanner<'a, 'p> {
    fn target(&self) -> Option<Runtime> {
        self.policy.map(|p| p.target)
    }

    /// An op pushed global `idx` (GLOBAL, INST, STACK_GLOBAL, DUP; a GET is told apart, see
    /// `utc_fetched`): counted for the rewrites that must meet every use of a global (the UTC
    /// class, `getattr` walks, the array reconstructor).
    fn global_pushed(&mut self, idx: u32) {
        self.utc_pushed(idx);
        self.walk_pushed(idx);
        self.array_pushed(idx);
    }

    /// Whether the top of the stack is a global with a dotted name (a nested class, which a
    /// Python 2 reader's rewrite writes as a `getattr` call: `downgrade.rs` `stack_global`).
    fn nested_global_on_top(&self) -> bool {
        match self.m.peek() {
            Ok(Slot::Global { idx, .. }) => self
                .globals
                .get(idx as usize)
                .is_some_and(|g| g.name.contains('.')),
            _ => false,
        }
    }

    /// A Python 2 target whose output must load in Python 3 as the input does (stores).
    fn lossless_for_py3(&self) -> bool {
        self.policy
            .is_some_and(|p| p.target == Runtime::Py2 && p.lossless_for_py3)
    }

    fn refuse(&self, kind: ErrorKind) -> Result<(), TranscodeError> {
        if self.policy.is_some() {
            return Err(self.m.err(kind));
        }
        Ok(())
    }

    /// An INT or LONG line of more digits than Python 3 reads (`bigint.rs`): written as LONG1 or
    /// LONG4 for a Python 3 reader, within a per-value budget.
    fn long_line(&mut self, o: &Op<'a>) -> Result<(), TranscodeError> {
        let n = bigint::digits(o.arg).len();
        if n <= bigint::PY3_MAX_STR_DIGITS || self.target() != Some(Runtime::Py3) {
            return Ok(());
        }
        self.long_digits += n;
        if self.long_digits > bigint::MAX_CONVERTED_DIGITS {
            return Err(self.m.err(ErrorKind::LimitExceeded));
        }
        Ok(())
    }

    /// The slot of an object built from `args`: [`Slot::Object`] with a policy (the collision
    /// check's), else `Any`.
    fn object(&mut self, args: Slot, class: Option<u32>) -> Slot {
        match (self.policy, u32::try_from(self.objects.len())) {
            (Some(_), Ok(id)) => {
                self.objects.push(ObjectRec { args, class });
                Slot::Object(id)
            }
            _ => Slot::Any,
        }
    }

    /// The items above the innermost MARK, past the first `skip`, as a tuple's slot (TUPLE, and
    /// the arguments of INST and OBJ).
    fn mark_tuple(&mut self, skip: usize, pos: usize) -> Result<Slot, TranscodeError> {
        let mut items = std::mem::take(&mut self.scratch);
        items.clear();
        items.extend(self.m.mark_items()?.iter().skip(skip).copied());
        let t = self.tuple_slot(&items, pos);
        self.scratch = items;
        Ok(t)
    }

    /// A tuple's slot for `items`: its first two items, and all of them kept for the collision
    /// check; the empty tuple pushed by the op at `pos` when there are none.
    fn tuple_slot(&mut self, items: &[Slot], pos: usize) -> Slot {
        if items.is_empty() {
            return Slot::EmptyTuple { via: pos };
        }
        let elems = [
            items.first().map(Elem::of).unwrap_or_default(),
            items.get(1).map(Elem::of).unwrap_or_default(),
        ];
        Slot::Tuple(elems, self.keep_tuple(items))
    }

    /// Whether object `id` may be a set given its members by APPEND(S): its class may collect
    /// its items (a `__reduce__` with list items: `compat::collects_items`), and so may an
    /// unknown class (not a global). Those items are then checked as members.
    fn collects(&self, id: u32) -> bool {
        self.objects
            .get(id as usize)
            .and_then(|o| o.class)
            .and_then(|c| self.globals.get(c as usize))
            .map_or(true, |g| g.collects_items)
    }

    /// APPEND(S) of `self.scratch` into an object that may be a set: its string items are
    /// recorded as the members of a keyed container that replaces it. Only strings: a list
    /// subclass is given its items the same way, and its tuples and objects would be members
    /// without a digest, refused in any value with two string kinds.
    fn set_like_items(&mut self) -> Result<(), TranscodeError> {
        self.scratch
            .retain(|slot| collide::key_kind(slot).is_some());
        if !self.scratch.is_empty() {
            let c = self.keyed_object()?;
            self.record_keys(c, 1);
        }
        Ok(())
    }

    /// Keeps only the string items of `self.scratch` when container `c` stands for an object
    /// built by a call (its later APPEND(S) batches: see `set_like_items`).
    fn object_items_only_strings(&mut self, c: u32) {
        if self
            .containers
            .get(c as usize)
            .is_some_and(|info| info.made == Made::Object)
        {
            self.scratch
                .retain(|slot| collide::key_kind(slot).is_some());
        }
    }

    /// The object on top of the stack (built by a call, so of unknown type) is given SETITEM(S):
    /// it becomes a keyed container there (later batches on the stack add to the same one).
    fn keyed_object(&mut self) -> Result<u32, TranscodeError> {
        let c = self.new_container(Made::Object);
        self.m.pop()?;
        self.m.push(Slot::Container(c))?;
        Ok(c)
    }

    /// Refuses adding items with `code` to container `c` when it was made as a list, dict or
    /// set that has no such method (CPython fails to load that value; only fuzzing makes one).
    fn takes(&self, c: u32, code: u8) -> Result<(), TranscodeError> {
        match self.containers.get(c as usize) {
            Some(info) if !info.made.takes(code) => Err(self.m.err(ErrorKind::Unsupported)),
            _ => Ok(()),
        }
    }

    fn new_container(&mut self, made: Made) -> u32 {
        self.containers.push(ContainerInfo {
            made,
            kinds: 0,
            target_kinds: 0,
            unkept: false,
            members: false,
        });
        (self.containers.len() - 1) as u32
    }

    fn step(&mut self, o: &Op<'a>) -> Result<(), TranscodeError> {
        let info = o.info();
        self.summary.max_protocol = self.summary.max_protocol.max(info.proto);
        if info.proto >= 3 {
            self.ev_py3 = true;
        }
        let pos = o.pos;
        match o.code {
            op::PROTO => {
                if self.summary.declared_protocol.is_none() {
                    self.summary.declared_protocol = o.arg.first().copied();
                }
            }
            op::FRAME => {}
            // The most common ops push one opaque value: no need for the table's stack effect.
            op::BININT
            | op::BININT1
            | op::BININT2
            | op::BINFLOAT
            | op::NONE
            | op::NEWTRUE
            | op::NEWFALSE
            | op::LONG1
            | op::FLOAT => self.m.push(Slot::Scalar { pos })?,
            op::INT | op::LONG => {
                self.long_line(o)?;
                self.m.push(Slot::Scalar { pos })?;
            }
            op::MARK => {
                self.m.mark()?;
                self.mark_pos.push(pos);
            }
            op::STOP => {
                self.m.stop()?;
            }
            op::POP => {
                if self.m.at_fence() && self.m.has_mark() {
                    self.pop_mark()?;
                } else {
                    self.m.pop()?;
                }
            }
            op::POP_MARK => self.pop_mark()?,
            op::DUP => {
                let top = self.m.peek()?;
                if matches!(top, Slot::OpenSet(_)) && self.target() == Some(Runtime::Py2) {
                    return Err(self.m.err(ErrorKind::Unsupported));
                }
                if let Slot::Global { idx, .. } = top {
                    // A copy of the UTC class is one more use of it; so of `getattr`.
                    self.global_pushed(idx);
                }
                // A string's uses are told apart by the op that pushed each (itself or a GET,
                // see "the rules apply per use"); a copy would be the same use twice. No
                // CPython writes DUP.
                if self.policy.is_some()
                    && matches!(
                        top,
                        Slot::Py2Str { .. } | Slot::Text { .. } | Slot::Bytes { .. }
                    )
                {
                    return Err(self.m.err(ErrorKind::Unsupported));
                }
                self.m.push(top)?;
            }
            op::PUT | op::BINPUT | op::LONG_BINPUT | op::MEMOIZE => self.memo_put(o)?,
            op::GET | op::BINGET | op::LONG_BINGET => {
                self.memo_kind(o.code)?;
                let idx = o
                    .memo_index()
                    .ok_or_else(|| self.m.err(ErrorKind::BadArgument))?;
                let mut slot = *self.m.get(idx)?;
                if let Slot::Global { idx, .. } = slot {
                    // A fetched UTC class is not a push its calls convert (`utc_fetched`).
                    self.utc_fetched(idx)?;
                    self.walk_pushed(idx);
                    self.array_pushed(idx);
                }
                match (slot, self.target()) {
                    (Slot::Bytes { src }, Some(Runtime::Py2)) => self.bytes_gets.push(src),
                    (Slot::Py2Str { src, .. }, Some(Runtime::Py3)) => {
                        self.py2_str_gets.push((src, pos));
                    }
                    _ => {}
                }
                // A GET of a string of the kind the target's text policy converts.
                match (slot, self.keeps_matter()) {
                    (Slot::Text { src, .. }, Some(Runtime::Py2))
                    | (Slot::Py2Str { src, .. }, Some(Runtime::Py3)) => {
                        self.string_gets.push((src, pos));
                    }
                    (Slot::Container(c), Some(Runtime::Py3)) => self.fetched_containers.push(c),
                    _ => {}
                }
                match &mut slot {
                    Slot::Py2Str { via, .. }
                    | Slot::Text { via, .. }
                    | Slot::Global { via, .. } => *via = pos,
                    Slot::EmptyTuple { via } => *via = pos,
                    Slot::OpenSet(set) => {
                        let set = *set as usize;
                        if let Some(info) = self.sets.get_mut(set) {
                            info.frozen = true;
                            slot = Slot::Container(info.container);
                        }
                    }
                    _ => {}
                }
                self.m.push(slot)?;
            }
            op::STRING | op::BINSTRING | op::SHORT_BINSTRING => {
                self.ev_py2 = true;
                self.has_py2_str = true;
                let bytes =
                    strings::py2_str_bytes(o).ok_or_else(|| self.m.err(ErrorKind::BadArgument))?;
                if !bytes.is_ascii() {
                    self.summary.py2_str_non_ascii = true;
                }
                if let Some(p) = self.policy.filter(|p| p.target == Runtime::Py3) {
                    if strings::py3_form(&bytes, p.py3_str) != Py3Form::Keep {
                        self.py2_str_changes.push((pos, bytes.is_ascii()));
                    }
                }
                self.m.push(Slot::Py2Str { src: pos, via: pos })?;
            }
            op::UNICODE | op::BINUNICODE | op::SHORT_BINUNICODE | op::BINUNICODE8 => {
                self.has_text = true;
                self.text_ops += 1;
                self.m.push(Slot::Text { src: pos, via: pos })?;
            }
            op::SHORT_BINBYTES | op::BINBYTES | op::BINBYTES8 => {
                self.has_bytes = true;
                self.m.push(Slot::Bytes { src: pos })?
            }
            op::EMPTY_TUPLE => self.m.push(Slot::EmptyTuple { via: pos })?,
            op::TUPLE1 | op::TUPLE2 | op::TUPLE3 => {
                let n = usize::from(o.code - op::TUPLE1 + 1);
                let mut items = [Slot::Any; 3];
                for i in (0..n).rev() {
                    items[i] = self.m.pop()?;
                }
                let t = self.tuple_slot(&items[..n], pos);
                self.m.push(t)?;
            }
            op::TUPLE => {
                // `MARK TUPLE` with nothing marked is the empty tuple (protocols 0 and 1).
                let t = self.mark_tuple(0, pos)?;
                self.last_tuple = (pos, self.mark_pos.last().copied().unwrap_or(usize::MAX));
                self.pop_mark()?;
                self.m.push(t)?;
            }
            op::EMPTY_LIST => {
                let c = self.new_container(Made::List);
                self.m.push(Slot::Container(c))?;
            }
            op::EMPTY_DICT => {
                let c = self.new_container(Made::Dict);
                self.m.push(Slot::Container(c))?;
            }
            op::LIST | op::DICT | op::FROZENSET => {
                let c = self.new_container(match o.code {
                    op::LIST => Made::List,
                    op::DICT => Made::Dict,
                    _ => Made::Set,
                });
                let step = if o.code == op::DICT { 2 } else { 1 };
                self.take_mark_items(step)?;
                self.record_keys(c, step);
                if o.code == op::FROZENSET && self.target() == Some(Runtime::Py2) {
                    let mark = self.mark_pos.last().copied().unwrap_or(0);
                    self.anns.push((mark, Ann::FrozensetStart));
                }
                self.pop_mark()?;
                self.m.push(Slot::Container(c))?;
            }
            op::EMPTY_SET => {
                let c = self.new_container(Made::Set);
                if self.target() == Some(Runtime::Py2) {
                    self.sets.push(SetInfo {
                        container: c,
                        memo: None,
                        frozen: false,
                        close_at: o.end(),
                    });
                    self.m.push(Slot::OpenSet((self.sets.len() - 1) as u32))?;
                } else {
                    self.m.push(Slot::Container(c))?;
                }
            }
            op::APPEND | op::SETITEM => {
                let n = if o.code == op::APPEND { 1 } else { 2 };
                self.scratch.clear();
                for _ in 0..n {
                    let v = self.m.pop()?;
                    self.scratch.push(v);
                }
                self.scratch.reverse();
                match self.m.peek()? {
                    Slot::Container(c) => {
                        self.takes(c, o.code)?;
                        if n == 1 {
                            self.object_items_only_strings(c);
                        }
                        self.record_keys(c, n)
                    }
                    Slot::OpenSet(_) => return Err(self.m.err(ErrorKind::Unsupported)),
                    // A dict-like object (OrderedDict, defaultdict, a subclass): its keys are
                    // checked like a dict's from now on.
                    Slot::Any | Slot::Object(_) if o.code == op::SETITEM => {
                        let c = self.keyed_object()?;
                        self.record_keys(c, n);
                    }
                    // An object that may be a set (`append = add`, given its members as list
                    // items by a `__reduce__`): its string items are checked like a set's
                    // members (see `set_like_items`).
                    Slot::Object(id) if self.collects(id) => self.set_like_items()?,
                    _ => {}
                }
            }
            op::APPENDS | op::SETITEMS | op::ADDITEMS => {
                let step = if o.code == op::SETITEMS { 2 } else { 1 };
                self.take_mark_items(step)?;
                self.pop_mark()?;
                match self.m.peek()? {
                    Slot::Container(c)
                        if o.code != op::ADDITEMS || self.target() != Some(Runtime::Py2) =>
                    {
                        if !self.scratch.is_empty() {
                            self.takes(c, o.code)?;
                        }
                        if o.code == op::APPENDS {
                            self.object_items_only_strings(c);
                        }
                        self.record_keys(c, step)
                    }
                    Slot::OpenSet(set) => {
                        let e = self.m.err(ErrorKind::Unsupported);
                        let info = self.sets.get_mut(set as usize).ok_or(e)?;
                        if info.frozen || o.code != op::ADDITEMS {
                            return Err(e);
                        }
                        info.close_at = o.end();
                        let c = info.container;
                        self.record_keys(c, 1);
                    }
                    _ if o.code == op::ADDITEMS && self.target() == Some(Runtime::Py2) => {
                        return Err(self.m.err(ErrorKind::Unsupported));
                    }
                    // A dict-like object (see SETITEM).
                    Slot::Any | Slot::Object(_) if o.code == op::SETITEMS => {
                        let c = self.keyed_object()?;
                        self.record_keys(c, step);
                    }
                    // A set-like object (see APPEND).
                    Slot::Object(id) if o.code == op::APPENDS && self.collects(id) => {
                        self.set_like_items()?
                    }
                    _ => {}
                }
            }
            op::GLOBAL | op::INST => self.global_op(o)?,
            op::STACK_GLOBAL => self.stack_global(o)?,
            op::REDUCE => self.reduce(o)?,
            op::NEWOBJ => self.newobj(o)?,
            op::BUILD => self.build()?,
            op::NEWOBJ_EX => {
                if self.target() == Some(Runtime::Py2) {
                    return Err(self.m.err(ErrorKind::NewobjEx));
                }
                let kwargs = self.m.pop()?;
                let args = self.m.pop()?;
                let cls = self.m.pop()?;
                let args = self.tuple_slot(&[args, kwargs], o.pos);
                let result = self.object(args, global_index(cls));
                self.m.push(result)?;
            }
            op::OBJ => {
                self.ev_py2 = true;
                if self.m.mark_items()?.is_empty() {
                    return Err(self.m.err(ErrorKind::StackUnderflow));
                }
                // The class, then its `__getinitargs__`.
                let cls = self.m.mark_items()?.first().copied().and_then(global_index);
                let args = self.mark_tuple(1, o.pos)?;
                self.pop_mark()?;
                let result = self.object(args, cls);
                self.m.push(result)?;
            }
            op::PERSID | op::BINPERSID => {
                self.refuse(ErrorKind::PersistentId)?;
                self.generic(o)?;
            }
            op::EXT1 | op::EXT2 | op::EXT4 => {
                // The global lives in the reader's copyreg registry: not nameable from here.
                self.summary.globals_complete = false;
                self.refuse(ErrorKind::Extension)?;
                self.generic(o)?;
            }
            op::NEXT_BUFFER | op::READONLY_BUFFER => {
                self.refuse(ErrorKind::OutOfBandBuffer)?;
                self.generic(o)?;
            }
            _ => self.generic(o)?,
        }
        Ok(())
    }

    /// Applies the table's stack effect with `Any` results.
    fn generic(&mut self, o: &Op<'a>) -> Result<(), TranscodeError> {
        let info = o.info();
        if info.mark {
            self.pop_mark()?;
        }
        for _ in 0..info.pops {
            self.m.pop()?;
        }
        for _ in 0..info.pushes {
            self.m.push(Slot::Any)?;
        }
        Ok(())
    }

    fn pop_mark(&mut self) -> Result<(), TranscodeError> {
        self.m.pop_mark()?;
        self.mark_pos.pop();
        Ok(())
    }

    /// Copies the items above the topmost MARK into `scratch`; `step` 2 takes them as pairs.
    fn take_mark_items(&mut self, step: usize) -> Result<(), TranscodeError> {
        self.scratch.clear();
        let items = match step {
            2 => self.m.mark_pairs()?,
            _ => self.m.mark_items()?,
        };
        self.scratch.extend_from_slice(items);
        Ok(())
    }

    /// Protocol 0's text memo ops (PUT, GET) and binary ones in one value: Python 2 keys the first
    /// by their line and the second by number (`p1` and BINPUT 1 are two slots), Python 3 both
    /// by number. No CPython mixes them: refused.
    fn memo_kind(&mut self, code: u8) -> Result<(), TranscodeError> {
        let text = matches!(code, op::PUT | op::GET);
        self.memo_kinds |= if text { 1 } else { 2 };
        if self.memo_kinds == 3 {
            return Err(self.m.err(ErrorKind::Unsupported));
        }
        Ok(())
    }

    fn memo_put(&mut self, o: &Op<'a>) -> Result<(), TranscodeError> {
        self.memo_kind(o.code)?;
        let idx = match o.code {
            op::MEMOIZE => self.m.memo_len() as u64,
            _ => o
                .memo_index()
                .ok_or_else(|| self.m.err(ErrorKind::BadArgument))?,
        };
        if let Slot::OpenSet(set) = self.m.peek().map_err(|_| self.m.err(ErrorKind::BadMemo))? {
            let e = self.m.err(ErrorKind::Unsupported);
            let info = self.sets.get_mut(set as usize).ok_or(e)?;
            if info.frozen || info.memo.is_some() {
                return Err(e);
            }
            info.memo = Some(idx);
            info.close_at = o.end();
            self.anns.push((o.pos, Ann::DeferMemo));
        }
        self.m.put(idx)
    }

    /// Whether a string's use can keep its type while another use converts it: py3 text for
    /// a py2 reader under `py2_text = utf8`, ASCII py2 `str` for a py3 reader under
    /// `py3_str = bytes`.
    /// Returns the target when it does.
    pub(super) fn keeps_matter(&self) -> Option<Runtime> {
        let p = self.policy?;
        let matters = match p.target {
            Runtime::Py2 => p.py2_text == Py2Text::Utf8,
            Runtime::Py3 => p.py3_str == Py3Str::Bytes,
        };
        matters.then_some(p.target)
    }

    /// Which string ops stay as they are ([`Ann::KeepText`] on the op: its own use keeps it),
    /// sorted, and the [`Ann::Fresh`] GETs for uses with the other rule (CPython memoizes one
    /// string object for both, e.g. the interned 'ÿ' that is a dict key and the argument of
    /// `_codecs.encode`). Returns the kept ops and whether a fresh copy is converted.
    fn plan_kept_strings(&mut self) -> (Vec<usize>, bool) {
        self.kept_uses.sort_unstable();
        self.kept_uses.dedup();
        let uses = &self.kept_uses;
        let kept_use = |src: usize, via: usize| uses.binary_search(&(src, via)).is_ok();
        let kept: Vec<usize> = uses
            .iter()
            .filter(|&&(src, via)| src == via)
            .map(|&(src, _)| src)
            .collect();
        let mut fresh_converts = false;
        for &(src, via) in &self.string_gets {
            let keep = kept_use(src, via);
            // (A GET folded into a STACK_GLOBAL is not written at all.)
            let folded = || self.anns.iter().any(|&(p, a)| p == via && a == Ann::Skip);
            if keep != kept_use(src, src) && !folded() {
                fresh_converts |= !keep;
                self.anns.push((via, Ann::Fresh { src, keep }));
            }
        }
        for &src in &kept {
            self.anns.push((src, Ann::KeepText));
        }
        (kept, fresh_converts)
    }

    /// Whether a BUILD state dict is also used otherwise (under `py3_str = bytes`): one dict
    /// in two roles, whose keys would have to stay `str` for the object and become `bytes` as
    /// a plain dict (Python 2 pickles `o.__dict__` itself: `[{'x': o.__dict__}, o]`). A dict
    /// has one use where it is made and one per GET; when BUILDs take fewer than all of them,
    /// one is another role. (Two objects sharing one `__dict__` use it as state twice.)
    fn state_dict_has_other_use(&mut self) -> bool {
        let (states, fetched) = (&mut self.state_dicts, &mut self.fetched_containers);
        states.sort_unstable();
        fetched.sort_unstable();
        let count =
            |v: &[u32], c: u32| v.partition_point(|&x| x <= c) - v.partition_point(|&x| x < c);
        states
            .chunk_by(|a, b| a == b)
            .any(|run| run.len() < 1 + count(fetched, run[0]))
    }

    fn finish(mut self) -> Result<Scan, TranscodeError> {
        let writer = match (self.ev_py2, self.ev_py3) {
            (true, false) => Writer::Py2,
            (false, true) => Writer::Py3,
            _ => Writer::Unknown,
        };
        self.summary.writer = writer;
        self.summary.py3_text = self.has_text && writer != Writer::Py2;
        self.list_walks();
        self.summary.globals = std::mem::take(&mut self.summary_globals).into();
        self.check_collisions()?;
        if self.folds.iter().any(|f| self.bytes_gets.contains(f)) {
            return Err(TranscodeError::new(ErrorKind::Unsupported, 0, None));
        }
        // Binary state becomes `bytes` where it is written, and so wherever the memo hands it
        // out. A string CPython memoized once and used both as binary state and otherwise (the
        // op itself as a list item and a GET as a datetime's state, or the reverse) would need
        // a copy per use, which the writer does not make: refused instead of converted wrongly.
        if !self.binary_uses.is_empty() {
            self.binary_uses.sort_unstable();
            let uses = &self.binary_uses;
            let binary = |src: usize, via: usize| uses.binary_search(&(src, via)).is_ok();
            let has_binary_use = |src: usize| {
                let i = uses.partition_point(|&(s, _)| s < src);
                uses.get(i).is_some_and(|&(s, _)| s == src)
            };
            if uses.iter().any(|&(src, _)| !binary(src, src))
                || self
                    .py2_str_gets
                    .iter()
                    .any(|&(src, via)| has_binary_use(src) && !binary(src, via))
            {
                return Err(TranscodeError::new(ErrorKind::Unsupported, 0, None));
            }
        }
        if self.state_dict_has_other_use() {
            return Err(TranscodeError::new(ErrorKind::Unsupported, 0, None));
        }
        if self.array_pushes != self.array_calls {
            return Err(TranscodeError::new(ErrorKind::Py3OnlyGlobal, 0, None));
        }
        self.plan_array_items();
        self.plan_utc()?;
        let (kept, fresh_converts) = self.plan_kept_strings();
        // (`kept` also holds the py2 `str`s that stay `str`, such as a `Decimal` argument.)
        let is_text = |&&p: &&usize| {
            matches!(
                self.src.get(p).copied(),
                Some(op::UNICODE | op::BINUNICODE | op::SHORT_BINUNICODE | op::BINUNICODE8)
            )
        };
        let converts_text = self.text_ops > kept.iter().filter(is_text).count() || fresh_converts;
        for set in &self.sets {
            self.anns
                .push((set.close_at, Ann::SetClose { memo: set.memo }));
        }
        self.anns.sort_by_key(|(pos, a)| (*pos, a.order()));
        let needs_change = match self.policy {
            None => false,
            Some(p) if p.target == Runtime::Py2 => {
                self.summary.max_protocol > 2
                    || self.summary.declared_protocol.is_some_and(|d| d > 2)
                    || self.classic_rewrite
                    || !self.utc.calls.is_empty()
                    || (writer != Writer::Py2
                        && (self.renames || (p.py2_text == Py2Text::Utf8 && converts_text)))
            }
            Some(_) => {
                self.long_digits > 0
                    || self
                        .py2_str_changes
                        .iter()
                        .any(|&(pos, ascii)| !ascii || kept.binary_search(&pos).is_err())
                    || self
                        .anns
                        .iter()
                        .any(|(_, a)| matches!(a, Ann::AsBytes | Ann::Fresh { .. } | Ann::UtcCall))
            }
        };
        Ok(Scan {
            summary: self.summary,
            plan: Plan { anns: self.anns },
            needs_change,
            renames: self.renames,
        })
    }
}
