//! What the fast path knows of each global: the name tables' verdicts (`compat.rs`), looked up
//! once per distinct `module.name` per thread and kept between values. Most cached values of a
//! fleet reference the same few dozen classes, and the tables are sorted string arrays: a
//! lookup there costs more than validating the rest of a small pickle.

use std::sync::Arc;

use super::super::compat;
use super::super::writer::global_part_ok;
use super::super::{Global, Globals, Policy, Py2Text, Py2Utc, Py3Str, Runtime};

/// The verdicts on one global that do not depend on the policy.
pub(super) struct Known {
    /// As spelled in the pickle (the summary lists it so).
    pub(super) global: Global,
    /// As CPython's `fix_imports` writes it for protocol 2 (equal to `global` when not renamed).
    pub(super) py2: Global,
    /// As Python 3's unpickler reads it at protocols 0-2 (`compat::py2_to_py3`).
    pub(super) py3: Global,
    /// [`hash`] of `py2` and of `py3`, for telling two globals a reader takes as one.
    pub(super) py2_hash: usize,
    pub(super) py3_hash: usize,
    /// `py3` differs from `global`.
    pub(super) py3_renamed: bool,
    /// Does not exist in Python 2 (`compat::is_py3_only`).
    pub(super) py3_only: bool,
    /// Python 2 cannot import it as spelled: `py3_only`, or a Python 3 name that `fix_imports`
    /// renames (`builtins.KeyError` at protocol 3+, or at 0-2 with `fix_imports=False`).
    pub(super) missing_in_py2: bool,
    /// Does not exist in Python 3 (`compat::is_py2_only`).
    pub(super) py2_only: bool,
    /// The reader that cannot build its instances (`compat::unbuildable_for`): the general
    /// path's for that reader.
    unbuildable: Option<Runtime>,
    /// Spelled as only Python 3 writes it (writer evidence).
    pub(super) py3_name: bool,
    /// `fix_imports` renames it for protocol 2.
    pub(super) renamed: bool,
    /// Renamed only when the value's names are Python 3's
    /// (`compat::renamed_name_is_py2_too`, `Summary::py3_names`).
    pub(super) renamed_if_py3: bool,
    /// Always the general path's: `set`/`frozenset` (their list argument holds keys),
    /// `_codecs.encode` (its result is `bytes`), binary state past the second argument,
    /// `getattr` (its calls are listed as the dotted names they walk to: `scan/walks.rs`).
    general: bool,
    /// Its constructor keeps text arguments as text (`compat::text_args`).
    keeps_text: bool,
    /// `array.array` (the typecode decides what a reader can take: Python 2 lacks `q`, Python
    /// 3 lacks `c`).
    pub(super) array: bool,
    /// `collections.OrderedDict` (Python 2 passes its keys inside a list of pairs).
    pub(super) pair_keys: bool,
    /// `pytz._UTC`, which `py2_utc = pytz` converts for Python 3 readers.
    pytz_utc: bool,
    /// A call to it may build a set from a list argument (`compat::collects_items`).
    pub(super) collects_items: bool,
    /// Which argument is binary state (`compat::BINARY_STATE`).
    pub(super) binary_arg: Option<u8>,
    /// `datetime.date`, `time` or `datetime` (whose state Python 2 takes only as `str`).
    pub(super) datetime: bool,
    /// Bit 0 `decimal.Decimal`, bit 1 `fractions.Fraction` or `complex` (numbers that only
    /// Python 3 finds equal to one another, `compat::ValueKey`), 0 anything else.
    pub(super) number: u8,
    /// May hand a py2 `str` to `str.__new__`: `copy_reg._reconstructor` (a `str` subclass at
    /// protocols 0 and 1 is given its value), `copy_reg.__newobj__`, `str`, `unicode`.
    pub(super) str_value: bool,
    /// Python 3 reads the protocol-2 name back as another class
    /// (`compat::py2_name_loses_py3_class`).
    loses_py3_class: bool,
    /// `py2` is one of Python 2's old-style standard-library classes (`compat::is_py2_classic`):
    /// the general path's for a Python 2 reader, as a route's `py2_classic` classes are.
    py2_classic: bool,
    /// `py2` can be written as a protocol-2 GLOBAL (non-empty newline-free ASCII parts, no
    /// dotted name: `downgrade.rs` writes a nested class as a `getattr` call, refuses the rest).
    pub(super) py2_writable: bool,
}

impl Known {
    fn new(m: &str, n: &str) -> Known {
        let (m2, n2) = compat::py3_to_py2(m, n);
        let renamed = m2 != m || n2 != n;
        let (m3, n3) = compat::py2_to_py3(m, n);
        let binary_arg = compat::binary_state_arg(m, n);
        let py3_only = compat::is_py3_only(m, n);
        let py2_too = renamed && compat::renamed_name_is_py2_too(m, n);
        Known {
            general: matches!(
                (&*m2, &*n2),
                ("__builtin__", "set" | "frozenset" | "bytes" | "getattr") | ("_codecs", "encode")
            ) || binary_arg.is_some_and(|k| k > 1),
            keeps_text: compat::text_args(&m2, &n2) != [false, false]
                || compat::has_text_state(&m2, &n2),
            array: (m, n) == ("array", "array"),
            pair_keys: (m, n) == ("collections", "OrderedDict"),
            pytz_utc: (m, n) == ("pytz", "_UTC"),
            collects_items: compat::collects_items(&m2, &n2),
            py3_only,
            missing_in_py2: py3_only || (renamed && !py2_too),
            py2_only: compat::is_py2_only(m, n),
            unbuildable: compat::unbuildable_for(m, n).map(|u| u.0),
            py3_name: m == "builtins" || m == "copyreg",
            renamed,
            renamed_if_py3: py2_too,
            binary_arg,
            datetime: compat::datetime_fold_byte(m, n).is_some(),
            number: match compat::value_key(&m2, &n2) {
                Some(compat::ValueKey::Decimal) => 0b01,
                Some(compat::ValueKey::Number) => 0b10,
                _ => 0,
            },
            str_value: compat::gives_str_value(&m2, &n2),
            loses_py3_class: compat::py2_name_loses_py3_class(m, n),
            py2_classic: compat::is_py2_classic(&m2, &n2),
            py2_writable: global_part_ok(&m2) && global_part_ok(&n2) && !n2.contains('.'),
            py2_hash: hash(m2.as_bytes(), n2.as_bytes()),
            py2: Global::new(m2, n2),
            py3_hash: hash(m3.as_bytes(), n3.as_bytes()),
            py3_renamed: m3 != m || n3 != n,
            py3: Global::new(m3, n3),
            global: Global::new(m, n),
        }
    }

    /// Whether the fast path decides values that use this global under `policy` (`analyze`
    /// has none): refusals (py3-only for a py2 reader, py2-only for a py3 reader, a class
    /// `lossless_for_py3` refuses), classic classes, constructors whose text arguments keep
    /// their type under the policy at hand, `pytz.utc` for a Python 3 reader under
    /// `py2_utc = pytz`, and for a Python 2 reader a name its writer cannot write as a GLOBAL
    /// (a nested class: the general path counts its `getattr` call against the limits) are the
    /// general path's.
    pub(super) fn fast_ok(&self, policy: Option<&Policy>) -> bool {
        let Some(p) = policy else {
            return !self.general;
        };
        let text_policy = match p.target {
            Runtime::Py2 => p.py2_text == Py2Text::Utf8,
            Runtime::Py3 => p.py3_str == Py3Str::Bytes,
        };
        !(self.general
            || (self.py3_only && p.target == Runtime::Py2)
            || (self.py2_only && p.target == Runtime::Py3)
            || self.unbuildable == Some(p.target)
            || (self.keeps_text && text_policy)
            || (self.array && p.target == Runtime::Py3)
            || (self.pytz_utc && p.target == Runtime::Py3 && p.py2_utc == Py2Utc::Pytz)
            || (self.loses_py3_class && p.target == Runtime::Py2 && p.lossless_for_py3)
            || (p.target == Runtime::Py2
                && (self.py2_classic || p.py2_classic.contains(&self.py2) || !self.py2_writable)))
    }
}

/// Distinct globals kept; past this the cache is emptied before the next value (a hostile
/// stream of fresh names cannot grow it).
const MAX_KNOWN: usize = 4096;
/// Slots of the open-addressing index (a power of two, at least twice [`MAX_KNOWN`]).
const SLOTS: usize = 2 * MAX_KNOWN;

/// The per-thread cache: one entry per distinct spelling, and an index from a hash of the
/// spelling to its entry.
#[derive(Default)]
pub(super) struct KnownGlobals {
    entries: Vec<Known>,
    /// Entry + 1 per slot; 0 is empty. Linear probing; entries are only ever removed all at once.
    index: Vec<u32>,
    /// The last summary list made, and the entries it lists (see [`KnownGlobals::list`]).
    last: (Vec<u32>, Globals),
}

impl KnownGlobals {
    /// The entry for the global spelled as these bytes, looked up or made; `None` when either
    /// part is not UTF-8, or the cache is full (the value is then the general path's, and the
    /// cache starts over before the next one).
    pub(super) fn get(&mut self, m: &[u8], n: &[u8]) -> Option<u32> {
        if self.index.is_empty() {
            self.index = vec![0; SLOTS];
        }
        let mut slot = hash(m, n) & (SLOTS - 1);
        while let Some(e) = self.index[slot].checked_sub(1) {
            let k = &self.entries[e as usize];
            if k.global.module.as_bytes() == m && k.global.name.as_bytes() == n {
                return Some(e);
            }
            slot = (slot + 1) & (SLOTS - 1);
        }
        if self.entries.len() >= MAX_KNOWN {
            return None;
        }
        let known = Known::new(std::str::from_utf8(m).ok()?, std::str::from_utf8(n).ok()?);
        self.entries.push(known);
        let e = u32::try_from(self.entries.len()).ok()?;
        self.index[slot] = e;
        Some(e - 1)
    }

    /// Empties a full cache (between values only: entry ids are held during a value).
    pub(super) fn trim(&mut self) {
        if self.entries.len() >= MAX_KNOWN {
            self.entries.clear();
            self.index.fill(0);
            self.last = Default::default();
        }
    }

    /// The summary's list of these entries (a value's distinct globals, in first-seen order).
    /// Consecutive values of one shape reference the same globals: the last list made is
    /// handed out again (a reference count) instead of a new one (an allocation and two
    /// reference counts per global).
    pub(super) fn list(&mut self, entries: &[u32]) -> Globals {
        if entries.is_empty() {
            return Globals::default();
        }
        if self.last.0 != entries {
            let list: Arc<[Global]> = entries
                .iter()
                .map(|&e| self.entries[e as usize].global.clone())
                .collect();
            self.last.0.clear();
            self.last.0.extend_from_slice(entries);
            self.last.1 = Globals::shared(list);
        }
        self.last.1.clone()
    }

    pub(super) fn entry(&self, e: u32) -> &Known {
        &self.entries[e as usize]
    }
}

/// A hash of both parts from their lengths and their first and last eight bytes (module and
/// class names differ there; equal hashes are told apart by comparing the strings).
#[inline(always)]
fn hash(m: &[u8], n: &[u8]) -> usize {
    let mut h = ((m.len() as u64) << 32 | n.len() as u64).wrapping_mul(0x9e37_79b9_7f4a_7c15);
    for part in [m, n] {
        for word in [ends(part, true), ends(part, false)] {
            h = (h ^ word)
                .wrapping_mul(0x9e37_79b9_7f4a_7c15)
                .rotate_left(29);
        }
    }
    (h >> 32) as usize
}

/// The first (or last) eight bytes of `s` as a word, zero-padded when shorter (fixed-size
/// loads where it is long enough: a copy of a variable length is a call to memcpy).
#[inline(always)]
fn ends(s: &[u8], first: bool) -> u64 {
    let at = if first { 0 } else { s.len().saturating_sub(8) };
    if let Some(w) = s.get(at..at + 8) {
        let mut word = [0u8; 8];
        word.copy_from_slice(w);
        return u64::from_le_bytes(word);
    }
    s.iter().rev().fold(0u64, |w, &b| (w << 8) | u64::from(b))
}
