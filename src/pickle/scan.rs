//! Pass 1: reads and validates the whole pickle once (reader + machine), builds the [`Summary`],
//! and, for a target, the [`Plan`] that pass 2 (`downgrade.rs` / `py3.rs`) follows: which ops
//! to skip, which py2 `str`s are binary state, where a set built with ADDITEMS is complete, which
//! NEWOBJ builds a classic class. Also checks for key collisions in the target.
//!
//! No value tree: each stack item is a small [`Slot`] tag pointing back at input offsets.

use std::borrow::Cow;
use std::collections::HashMap;
use std::hash::{DefaultHasher, Hash, Hasher};

use super::compat;
use super::error::{ErrorKind, TranscodeError};
use super::machine::Machine;
use super::opcode as op;
use super::reader::{Op, Reader};
use super::strings::{self, Py3Form};
use super::{
    Global, Policy, Py2Text, Runtime, Summary, Writer, COMPUTED_GLOBAL, MAX_SUMMARY_GLOBALS,
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
}

impl Ann {
    /// Anns that go before the op at their offset sort first.
    fn order(&self) -> u8 {
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

/// Everything pass 1 learns.
#[derive(Debug)]
pub(crate) struct Scan {
    pub(crate) summary: Summary,
    pub(crate) plan: Plan,
    /// Whether the target needs any change at all (else the outcome is Unchanged).
    pub(crate) needs_change: bool,
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
    /// A global (index into the scan's table), pushed by `via`.
    Global { idx: u32, via: usize },
    /// EMPTY_TUPLE pushed by `via`.
    EmptyTuple { via: usize },
    /// A tuple; its first two items if they are interesting.
    Tuple([Elem; 2]),
    /// A list, dict or set (index into the container table).
    Container(u32),
    /// A set begun by EMPTY_SET (index into the set table).
    OpenSet(u32),
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
enum Elem {
    #[default]
    Other,
    Py2Str(usize),
    Text(usize),
    Container(u32),
    Global {
        idx: u32,
        via: usize,
    },
}

impl Elem {
    fn of(s: &Slot) -> Elem {
        match *s {
            Slot::Py2Str { src, .. } => Elem::Py2Str(src),
            Slot::Text { src, .. } => Elem::Text(src),
            Slot::Container(c) => Elem::Container(c),
            Slot::Global { idx, via } => Elem::Global { idx, via },
            _ => Elem::Other,
        }
    }
}

struct GlobalInfo {
    /// Py3-side spelling as written (py2 spelling for py2-written GLOBALs).
    module: String,
    name: String,
    binary_arg: Option<u8>,
    classic: bool,
    set_like: bool,
    codecs_encode: bool,
    /// `copy_reg._reconstructor` / `__builtin__.object` (py2 spelling).
    reconstructor: bool,
    object: bool,
    /// Which of the first two arguments must stay text (see `compat::text_args`).
    keeps_text: [bool; 2],
}

struct SetInfo {
    container: u32,
    memo: Option<u64>,
    frozen: bool,
    close_at: usize,
}

/// One dict key / set member candidate for the collision check.
struct KeyRec {
    container: u32,
    /// The key's slot (py2 str, text, bytes); hashed only if its container mixes kinds.
    slot: Slot,
}

/// Distinct globals looked up by linear scan before a map is built.
const LINEAR_GLOBALS: usize = 32;

/// How many recent op offsets the pattern checks look back over.
const RECENT: usize = 6;

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
    /// Per container: keyed (dict/set) and the mask of str-like key kinds seen (see `key_kind`).
    containers: Vec<(bool, u8)>,
    keys: Vec<KeyRec>,
    anns: Vec<(usize, Ann)>,
    scratch: Vec<Slot>,
    summary: Summary,
    ev_py2: bool,
    ev_py3: bool,
    has_text: bool,
    /// Offsets of distinct text ops (not GETs of them) and of those that must stay unicode.
    text_ops: usize,
    kept_text: Vec<usize>,
    /// py2 `str` ops the py3 policy changes, and whether they are ASCII.
    py2_str_changes: Vec<(usize, bool)>,
    renames: bool,
    classic_rewrite: bool,
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
            globals: Vec::new(),
        },
        ev_py2: false,
        ev_py3: false,
        has_text: false,
        text_ops: 0,
        kept_text: Vec::new(),
        py2_str_changes: Vec::new(),
        renames: false,
        classic_rewrite: false,
    };
    for item in Reader::new(src) {
        let op = item?;
        s.m.at(op.pos, op.code);
        s.step(&op)?;
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

    fn refuse(&self, kind: ErrorKind) -> Result<(), TranscodeError> {
        if self.policy.is_some() {
            return Err(self.m.err(kind));
        }
        Ok(())
    }

    fn new_container(&mut self, keyed: bool) -> u32 {
        self.containers.push((keyed, 0));
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
                self.m.push(top)?;
            }
            op::PUT | op::BINPUT | op::LONG_BINPUT | op::MEMOIZE => self.memo_put(o)?,
            op::GET | op::BINGET | op::LONG_BINGET => {
                let idx = o
                    .memo_index()
                    .ok_or_else(|| self.m.err(ErrorKind::BadArgument))?;
                let mut slot = *self.m.get(idx)?;
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
                self.m.push(Slot::Bytes { src: pos })?
            }
            op::EMPTY_TUPLE => self.m.push(Slot::EmptyTuple { via: pos })?,
            op::TUPLE1 | op::TUPLE2 | op::TUPLE3 => {
                let n = usize::from(o.code - op::TUPLE1 + 1);
                let mut elems = [Elem::Other; 3];
                for i in (0..n).rev() {
                    elems[i] = Elem::of(&self.m.pop()?);
                }
                self.m.push(Slot::Tuple([elems[0], elems[1]]))?;
            }
            op::TUPLE => {
                let items = self.m.mark_items()?;
                let t = Slot::Tuple([
                    items.first().map(Elem::of).unwrap_or_default(),
                    items.get(1).map(Elem::of).unwrap_or_default(),
                ]);
                self.pop_mark()?;
                self.m.push(t)?;
            }
            op::EMPTY_LIST => {
                let c = self.new_container(false);
                self.m.push(Slot::Container(c))?;
            }
            op::EMPTY_DICT => {
                let c = self.new_container(true);
                self.m.push(Slot::Container(c))?;
            }
            op::LIST | op::DICT | op::FROZENSET => {
                let keyed = o.code != op::LIST;
                let c = self.new_container(keyed);
                let step = if o.code == op::DICT { 2 } else { 1 };
                self.take_mark_items()?;
                self.record_keys(c, step);
                if o.code == op::FROZENSET && self.target() == Some(Runtime::Py2) {
                    let mark = self.mark_pos.last().copied().unwrap_or(0);
                    self.anns.push((mark, Ann::FrozensetStart));
                }
                self.pop_mark()?;
                self.m.push(Slot::Container(c))?;
            }
            op::EMPTY_SET => {
                let c = self.new_container(true);
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
                if let Slot::Container(c) = self.m.peek()? {
                    self.record_keys(c, n);
                }
            }
            op::APPENDS | op::SETITEMS | op::ADDITEMS => {
                self.take_mark_items()?;
                self.pop_mark()?;
                let step = if o.code == op::SETITEMS { 2 } else { 1 };
                match self.m.peek()? {
                    Slot::Container(c)
                        if o.code != op::ADDITEMS || self.target() != Some(Runtime::Py2) =>
                    {
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
                self.generic(o)?;
            }
            op::OBJ => {
                self.ev_py2 = true;
                if self.m.mark_items()?.is_empty() {
                    return Err(self.m.err(ErrorKind::StackUnderflow));
                }
                self.pop_mark()?;
                self.m.push(Slot::Any)?;
            }
            op::PERSID | op::BINPERSID => {
                self.refuse(ErrorKind::PersistentId)?;
                self.generic(o)?;
            }
            op::EXT1 | op::EXT2 | op::EXT4 => {
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

    fn take_mark_items(&mut self) -> Result<(), TranscodeError> {
        self.scratch.clear();
        let items = self.m.mark_items()?;
        self.scratch.extend_from_slice(items);
        Ok(())
    }

    fn memo_put(&mut self, o: &Op<'a>) -> Result<(), TranscodeError> {
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

    fn global_op(&mut self, o: &Op<'a>) -> Result<(), TranscodeError> {
        let (m, n) = o
            .global_pair()
            .ok_or_else(|| self.m.err(ErrorKind::BadArgument))?;
        let (m, n) = match (std::str::from_utf8(m), std::str::from_utf8(n)) {
            (Ok(m), Ok(n)) => (m, n),
            _ => return Err(self.m.err(ErrorKind::BadArgument)),
        };
        let idx = self.intern_global(m, n)?;
        if o.code == op::INST {
            self.ev_py2 = true;
            self.pop_mark()?;
            self.m.push(Slot::Any)
        } else {
            self.m.push(Slot::Global { idx, via: o.pos })
        }
    }

    fn stack_global(&mut self, o: &Op<'a>) -> Result<(), TranscodeError> {
        let name = self.m.pop()?;
        let module = self.m.pop()?;
        let (Slot::Text { src: ms, via: mv }, Slot::Text { src: ns, via: nv }) = (module, name)
        else {
            // Python 3 also takes py2 `str` ops (decoded as ASCII) here; anything else is a
            // string computed at load time: listed as the computed-global sentinel.
            let (m, n) = (self.str_of(&module), self.str_of(&name));
            let idx = match (m, n) {
                (Some(m), Some(n)) => self.intern_global(&m, &n)?,
                _ => self.intern_global(COMPUTED_GLOBAL.0, COMPUTED_GLOBAL.1)?,
            };
            if self.target() == Some(Runtime::Py2) {
                return Err(self.m.err(ErrorKind::Unsupported));
            }
            return self.m.push(Slot::Global { idx, via: o.pos });
        };
        let (Some(m), Some(n)) = (self.text_at(ms), self.text_at(ns)) else {
            return Err(self.m.err(ErrorKind::BadArgument));
        };
        let idx = self.intern_global(&m, &n)?;
        if self.target() == Some(Runtime::Py2) {
            // Only the adjacent form CPython writes (module, name, STACK_GLOBAL, memo PUTs between).
            if self.recent[RECENT - 2..] != [mv, nv] {
                return Err(self.m.err(ErrorKind::Unsupported));
            }
            self.anns.push((mv, Ann::Skip));
            self.anns.push((nv, Ann::Skip));
            self.anns.push((
                o.pos,
                Ann::StackGlobal {
                    module: ms,
                    name: ns,
                },
            ));
        }
        self.m.push(Slot::Global { idx, via: o.pos })
    }

    /// The `str` Python 3 would see for a text or py2 `str` (ASCII only) stack item.
    fn str_of(&self, slot: &Slot) -> Option<String> {
        match *slot {
            Slot::Text { src, .. } => self.text_at(src),
            Slot::Py2Str { src, .. } => {
                let o = Reader::new(self.src.get(src..)?).next()?.ok()?;
                let b = strings::py2_str_bytes(&o)?;
                b.is_ascii()
                    .then(|| String::from_utf8_lossy(&b).into_owned())
            }
            _ => None,
        }
    }

    fn text_at(&self, pos: usize) -> Option<String> {
        let o = Reader::new(self.src.get(pos..)?).next()?.ok()?;
        strings::text_utf8(&o).map(Cow::into_owned)
    }

    fn intern_global(&mut self, m: &str, n: &str) -> Result<u32, TranscodeError> {
        // Few distinct globals per value: a linear scan without allocating, a map past that.
        if self.globals.len() <= LINEAR_GLOBALS {
            if let Some(i) = self
                .globals
                .iter()
                .position(|g| g.module == m && g.name == n)
            {
                return Ok(i as u32);
            }
        } else if let Some(&i) = self.global_ix.get(&(m.to_owned(), n.to_owned())) {
            return Ok(i);
        }
        if m == "builtins" || m == "copyreg" || (m == "_codecs" && n == "encode") {
            self.ev_py3 = true;
        }
        let py3_only = compat::is_py3_only(m, n);
        if py3_only {
            self.summary.py3_only_global = true;
            if self.target() == Some(Runtime::Py2) {
                return Err(self.m.err(ErrorKind::Py3OnlyGlobal));
            }
        }
        let (m2, n2) = compat::py3_to_py2(m, n);
        if m2 != m || n2 != n {
            self.renames = true;
        }
        let classic = self
            .policy
            .is_some_and(|p| p.py2_classic.iter().any(|g| g.module == m2 && g.name == n2));
        let set_like = matches!((&*m2, &*n2), ("__builtin__", "set" | "frozenset"));
        let info = GlobalInfo {
            module: m.to_owned(),
            name: n.to_owned(),
            binary_arg: compat::binary_state_arg(m, n),
            classic,
            set_like,
            codecs_encode: m == "_codecs" && n == "encode",
            reconstructor: (&*m2, &*n2) == ("copy_reg", "_reconstructor"),
            object: (&*m2, &*n2) == ("__builtin__", "object"),
            keeps_text: compat::text_args(&m2, &n2),
        };
        if self.summary.globals.len() < MAX_SUMMARY_GLOBALS {
            self.summary
                .globals
                .push(Global::new(&info.module, &info.name));
        }
        self.globals.push(info);
        let i = (self.globals.len() - 1) as u32;
        if self.globals.len() > LINEAR_GLOBALS {
            if self.global_ix.is_empty() {
                for (j, g) in self.globals.iter().enumerate() {
                    self.global_ix
                        .insert((g.module.clone(), g.name.clone()), j as u32);
                }
            }
            self.global_ix.insert((m.to_owned(), n.to_owned()), i);
        }
        Ok(i)
    }

    fn reduce(&mut self, o: &Op<'a>) -> Result<(), TranscodeError> {
        let args = self.m.pop()?;
        let func = self.m.pop()?;
        if self.target() == Some(Runtime::Py2) {
            self.classic_reconstructor(o, func, args)?;
        }
        let mut result = Slot::Any;
        if let (Slot::Global { idx, .. }, Slot::Tuple(elems)) = (func, args) {
            if let Some(g) = self.globals.get(idx as usize) {
                if let Some(k) = g.binary_arg {
                    if let Some(Elem::Py2Str(pos)) = elems.get(usize::from(k)) {
                        self.summary.py2_binary_state = true;
                        if self.target() == Some(Runtime::Py3) {
                            self.anns.push((*pos, Ann::AsBytes));
                        }
                    }
                }
                if g.set_like {
                    if let Elem::Container(c) = elems[0] {
                        if let Some(k) = self.containers.get_mut(c as usize) {
                            k.0 = true;
                        }
                    }
                }
                for (e, keep) in elems.iter().zip(g.keeps_text) {
                    if let (Elem::Text(src) | Elem::Py2Str(src), true) = (*e, keep) {
                        self.anns.push((src, Ann::KeepText));
                        self.kept_text.push(src);
                    }
                }
                if g.codecs_encode {
                    if let Elem::Text(src) = elems[0] {
                        result = Slot::CodecsBytes { src };
                    }
                }
            }
        }
        self.m.push(result)
    }

    /// `copy_reg._reconstructor(cls, object, None)` (how Python 3 pickles instances for protocol
    /// 0/1) of a classic class becomes `MARK cls OBJ`, as Python 2's `save_inst` writes it. Only
    /// the exact op sequence Python 3 writes is rewritten; anything else is refused.
    fn classic_reconstructor(
        &mut self,
        o: &Op<'a>,
        func: Slot,
        args: Slot,
    ) -> Result<(), TranscodeError> {
        let (Slot::Global { idx: f, via: rv }, Slot::Tuple([cls, obj])) = (func, args) else {
            return Ok(());
        };
        let Elem::Global { idx: c, via: cv } = cls else {
            return Ok(());
        };
        let g = |i: u32| self.globals.get(i as usize);
        if !g(f).is_some_and(|g| g.reconstructor) || !g(c).is_some_and(|g| g.classic) {
            return Ok(());
        }
        let code = |pos: usize| self.src.get(pos).copied();
        let r = &self.recent;
        // The six ops before REDUCE: _reconstructor, MARK, cls, object, NONE, TUPLE.
        let ok = matches!(obj, Elem::Global { idx, via } if g(idx).is_some_and(|g| g.object) && via == r[3])
            && r[0] == rv
            && code(r[1]) == Some(op::MARK)
            && r[2] == cv
            && code(r[4]) == Some(op::NONE)
            && code(r[5]) == Some(op::TUPLE);
        if !ok {
            return Err(self.m.err(ErrorKind::Unsupported));
        }
        self.anns.push((rv, Ann::Skip));
        self.anns.push((r[3], Ann::Skip));
        self.anns.push((r[4], Ann::Skip));
        self.anns.push((r[5], Ann::SkipGone));
        self.anns.push((o.pos, Ann::NewobjToObj));
        self.classic_rewrite = true;
        Ok(())
    }

    /// BUILD: the ASCII py2 `str` keys of a state dict are attribute names, which stay `str`
    /// for a py3 reader whatever `py3_str` says (`bytes` attribute names break every object).
    fn build(&mut self) -> Result<(), TranscodeError> {
        let state = self.m.pop()?;
        self.m.pop()?;
        if self.target() == Some(Runtime::Py3) {
            let dicts = match state {
                Slot::Container(c) => [Some(c), None],
                Slot::Tuple([a, b]) => {
                    let c = |e: Elem| match e {
                        Elem::Container(c) => Some(c),
                        _ => None,
                    };
                    [c(a), c(b)]
                }
                _ => [None, None],
            };
            let oldest = dicts.iter().flatten().min().copied();
            if let Some(oldest) = oldest {
                // Keys recorded since the oldest state dict was created, newest first.
                for k in self.keys.iter().rev().take_while(|k| k.container >= oldest) {
                    if let (true, Slot::Py2Str { src: pos, .. }) =
                        (dicts.contains(&Some(k.container)), k.slot)
                    {
                        self.anns.push((pos, Ann::KeepText));
                        self.kept_text.push(pos);
                    }
                }
            }
        }
        self.m.push(Slot::Any)
    }

    fn newobj(&mut self, o: &Op<'a>) -> Result<(), TranscodeError> {
        let args = self.m.pop()?;
        let cls = self.m.pop()?;
        if let Slot::Global { idx, via } = cls {
            let classic = self.globals.get(idx as usize).is_some_and(|g| g.classic);
            if classic && self.target() == Some(Runtime::Py2) {
                let Slot::EmptyTuple { via: tv } = args else {
                    return Err(self.m.err(ErrorKind::Unsupported));
                };
                if self.recent[RECENT - 2..] != [via, tv] {
                    return Err(self.m.err(ErrorKind::Unsupported));
                }
                self.anns.push((via, Ann::MarkBefore));
                self.anns.push((tv, Ann::Skip));
                self.anns.push((o.pos, Ann::NewobjToObj));
                self.classic_rewrite = true;
            }
        }
        self.m.push(Slot::Any)
    }

    /// Records the str-like items of `self.scratch` (every `step`-th: dict keys) for container `c`.
    fn record_keys(&mut self, c: u32, step: usize) {
        if self.policy.is_none() {
            return;
        }
        for i in (0..self.scratch.len()).step_by(step) {
            let slot = self.scratch[i];
            if let Some(kind) = key_kind(&slot) {
                if let Some(info) = self.containers.get_mut(c as usize) {
                    info.1 |= 1 << kind;
                }
                self.keys.push(KeyRec { container: c, slot });
            }
        }
    }

    fn finish(mut self) -> Result<Scan, TranscodeError> {
        let writer = match (self.ev_py2, self.ev_py3) {
            (true, false) => Writer::Py2,
            (false, true) => Writer::Py3,
            _ => Writer::Unknown,
        };
        self.summary.writer = writer;
        self.summary.py3_text = self.has_text && writer != Writer::Py2;
        self.check_collisions()?;
        self.kept_text.sort_unstable();
        self.kept_text.dedup();
        let converts_text = self.text_ops > self.kept_text.len();
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
                    || (writer != Writer::Py2
                        && (self.renames || (p.py2_text == Py2Text::Utf8 && converts_text)))
            }
            Some(_) => {
                let kept = &self.kept_text;
                self.py2_str_changes
                    .iter()
                    .any(|&(pos, ascii)| !ascii || kept.binary_search(&pos).is_err())
                    || self.anns.iter().any(|(_, a)| *a == Ann::AsBytes)
            }
        };
        Ok(Scan {
            summary: self.summary,
            plan: Plan { anns: self.anns },
            needs_change,
        })
    }

    /// Distinct keys can only become equal when one container mixes kinds (py2 str, text,
    /// bytes): only those keys are decoded and hashed.
    fn check_collisions(&mut self) -> Result<(), TranscodeError> {
        let Some(policy) = self.policy else {
            return Ok(());
        };
        let containers = &self.containers;
        let mixed = |c: u32| {
            containers
                .get(c as usize)
                .is_some_and(|&(keyed, kinds)| keyed && kinds.count_ones() >= 2)
        };
        let mut hashed: Vec<(u32, u64, u64)> = self
            .keys
            .iter()
            .filter(|k| mixed(k.container))
            .filter_map(|k| key_hashes(self.src, &k.slot, policy).map(|(s, t)| (k.container, t, s)))
            .collect();
        hashed.sort_unstable();
        for w in hashed.windows(2) {
            if w[0].0 == w[1].0 && w[0].1 == w[1].1 && w[0].2 != w[1].2 {
                return Err(TranscodeError::new(ErrorKind::Collision, 0, None));
            }
        }
        Ok(())
    }
}

/// The source kind of a str-like key: 0 py2 `str`, 1 text, 2 bytes; `None` for other values.
fn key_kind(slot: &Slot) -> Option<u8> {
    match slot {
        Slot::Py2Str { .. } => Some(0),
        Slot::Text { .. } => Some(1),
        Slot::Bytes { .. } | Slot::CodecsBytes { .. } => Some(2),
        _ => None,
    }
}

/// Hashes of a str-like key as the source runtime sees it and as the target will.
fn key_hashes(src: &[u8], slot: &Slot, policy: &Policy) -> Option<(u64, u64)> {
    let at = |pos: usize| Reader::new(src.get(pos..)?).next()?.ok();
    // (source kind, content); kinds: 0 py2 str, 1 text, 2 bytes.
    let (kind, content): (u8, Vec<u8>) = match *slot {
        Slot::Py2Str { src: p, .. } => (0, strings::py2_str_bytes(&at(p)?)?.into_owned()),
        Slot::Text { src: p, .. } => (1, strings::text_utf8(&at(p)?)?.as_bytes().to_vec()),
        Slot::Bytes { src: p } => (2, at(p)?.arg.to_vec()),
        Slot::CodecsBytes { src: p } => {
            let text = strings::text_utf8(&at(p)?)?.into_owned();
            let bytes: Option<Vec<u8>> = text
                .chars()
                .map(|c| u8::try_from(u32::from(c)).ok())
                .collect();
            (2, bytes?)
        }
        _ => return None,
    };
    // Target view: ("s" py2 str | "u" unicode/str | "b" py3 bytes, content as UTF-8 or raw).
    let (tkind, tcontent): (u8, Cow<'_, [u8]>) = match (policy.target, kind) {
        (Runtime::Py2, 1) => match policy.py2_text {
            Py2Text::Utf8 => (b's', Cow::Borrowed(&content[..])),
            Py2Text::Keep if content.is_ascii() => (b's', Cow::Borrowed(&content[..])),
            Py2Text::Keep => (b'u', Cow::Borrowed(&content[..])),
        },
        (Runtime::Py2, _) => (b's', Cow::Borrowed(&content[..])),
        (Runtime::Py3, 0) => match strings::py3_form(&content, policy.py3_str) {
            Py3Form::Keep => (b'u', Cow::Borrowed(&content[..])),
            Py3Form::Text(t) => (b'u', Cow::Owned(t.as_bytes().to_vec())),
            Py3Form::Bytes => (b'b', Cow::Borrowed(&content[..])),
        },
        (Runtime::Py3, 1) => (b'u', Cow::Borrowed(&content[..])),
        (Runtime::Py3, _) => (b'b', Cow::Borrowed(&content[..])),
    };
    let hash = |k: u8, c: &[u8]| {
        let mut h = DefaultHasher::new();
        (k, c).hash(&mut h);
        h.finish()
    };
    Some((hash(kind, &content), hash(tkind, &tcontent)))
}
