//! Opcode-level pickle transcoder between Python 2 and Python 3 readers.
//!
//! Sans-IO: takes one pickled value as [`Bytes`], never does I/O, never imports or executes
//! anything and never builds a Python value tree. [`transcode`] returns the very same `Bytes`
//! when nothing needs to change ([`Outcome::Unchanged`]), new bytes when a rewrite was needed
//! ([`Outcome::Rewritten`]), or a typed [`Reason`] when the value cannot be converted with
//! certainty ([`Outcome::Refused`]; the caller forwards the original and counts the reason).
//!
//! Layout:
//! - `opcode.rs`: the 68 opcodes of protocols 0-5 (pickletools), one line each.
//! - `reader.rs`: zero-copy [`Op`] iterator with byte offsets and bounds-checked arguments.
//! - `machine.rs`: stack / MARK / memo discipline over small tags.
//! - `fast.rs` (+ `fast/{decode,scan,sink}.rs`): the fast path for everyday values, one
//!   allocation-free validating pass; falls back to the general path below.
//! - `scan.rs` (+ `scan/calls.rs`, `scan/collide.rs`): pass 1 — validation, [`Summary`], key
//!   collisions, and the plan of rewrites for a target.
//! - `downgrade.rs`: pass 2 for Python 2 readers (protocol 3/4/5 -> 2, names, text policy).
//! - `py3.rs`: pass 2 for Python 3 readers (py2 `str` -> `str`/`bytes`).
//! - `strings.rs`, `compat.rs`, `writer.rs`: string rules, name tables, opcode encodings.
//! - `error.rs`: [`TranscodeError`] (kind, offset, opcode) and its [`Reason`].

use std::sync::Arc;

use bytes::Bytes;

mod array;
mod bigint;
pub(crate) mod compat;
mod downgrade;
mod error;
mod fast;
mod machine;
pub mod opcode;
mod py3;
pub mod reader;
mod scan;
pub(crate) mod strings;
mod writer;

pub use reader::{Op, Reader};

pub use error::{ErrorKind, TranscodeError};

/// The Python runtime that reads a value.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Runtime {
    /// CPython 2.7.
    Py2,
    /// CPython 3.
    Py3,
}

impl Runtime {
    /// `"py2"` or `"py3"` (metric label, config value).
    pub fn as_str(self) -> &'static str {
        match self {
            Runtime::Py2 => "py2",
            Runtime::Py3 => "py3",
        }
    }
}

/// What py3 text (`str`, read back as `unicode` in Python 2) becomes for a Python 2 reader.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, serde::Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Py2Text {
    /// Stays `unicode` (the same output then also loads in Python 3 to the original).
    #[default]
    Keep,
    /// Becomes a UTF-8 encoded py2 `str`, so `{'a': '爱'}` compares equal in Python 2 code.
    Utf8,
}

/// What a py2 `str` (STRING / BINSTRING / SHORT_BINSTRING) becomes for a Python 3 reader.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, serde::Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Py3Str {
    /// `str` when the bytes are valid UTF-8, else `bytes`.
    #[default]
    Utf8OrBytes,
    /// Always `bytes`.
    Bytes,
    /// `str` decoded as latin-1 (every byte string maps, nothing fails).
    Latin1,
}

/// Which UTC `tzinfo` Python 2 readers use. Python 2's standard library has none, so an aware
/// datetime Python 3 wrote (`datetime.timezone.utc`, what Django 4.x's `timezone.now()` gives
/// under `USE_TZ = True`) cannot load there as it is.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, serde::Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Py2Utc {
    /// None: `datetime.timezone` is refused for Python 2 readers (`py3_only_global`), and
    /// `pytz.utc` reaches Python 3 readers as it is (they need pytz).
    #[default]
    None,
    /// `pytz.utc` (what Django 1.11's `timezone.now()` gives): Python 3's `timezone.utc`
    /// becomes `pytz.utc` for Python 2 readers, and `pytz.utc` becomes `timezone.utc` for
    /// Python 3 readers, whoever wrote the value. Other offsets and named zones are not
    /// converted.
    Pytz,
}

/// A global (`module.name`) referenced by a pickle.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Global {
    /// The module, e.g. `datetime`.
    pub module: Arc<str>,
    /// The (possibly dotted) name within the module, e.g. `datetime`.
    pub name: Arc<str>,
}

impl Global {
    /// Builds a global from its two parts. Clones share the strings (the fast path hands out
    /// the globals it knows without copying them).
    pub fn new(module: impl Into<Arc<str>>, name: impl Into<Arc<str>>) -> Global {
        Global {
            module: module.into(),
            name: name.into(),
        }
    }
}

impl std::fmt::Display for Global {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}.{}", self.module, self.name)
    }
}

/// The distinct globals of a value ([`Summary::globals`]), read as a slice. Shared: a clone
/// costs a reference count, and the fast path hands consecutive values of one shape (the same
/// classes) the same list instead of building one per value.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Globals(Option<Arc<[Global]>>);

impl Globals {
    /// A non-empty list as it is.
    pub(crate) fn shared(list: Arc<[Global]>) -> Globals {
        Globals((!list.is_empty()).then_some(list))
    }
}

impl std::ops::Deref for Globals {
    type Target = [Global];

    fn deref(&self) -> &[Global] {
        self.0.as_deref().unwrap_or_default()
    }
}

impl From<Vec<Global>> for Globals {
    fn from(list: Vec<Global>) -> Globals {
        Globals((!list.is_empty()).then(|| list.into()))
    }
}

impl PartialEq<Vec<Global>> for Globals {
    fn eq(&self, other: &Vec<Global>) -> bool {
        **self == **other
    }
}

impl std::str::FromStr for Global {
    type Err = String;

    /// Parses `module.Class` (split at the last dot; `a.b.Class` is module `a.b`).
    fn from_str(s: &str) -> Result<Global, String> {
        match s.rsplit_once('.') {
            Some((m, n)) if !m.is_empty() && !n.is_empty() && !s.contains(char::is_whitespace) => {
                Ok(Global::new(m, n))
            }
            _ => Err(format!("expected module.Class, got {s:?}")),
        }
    }
}

/// Limits that make hostile input refuse with [`Reason::LimitExceeded`] instead of exhausting memory.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PickleLimits {
    /// Most open MARKs at once (nesting depth).
    pub max_depth: usize,
    /// Most items on the unpickling stack at once.
    pub max_stack: usize,
    /// Highest memo index accepted (also bounds the memo table size).
    pub max_memo: usize,
    /// Largest rewritten output in bytes.
    pub max_output: usize,
}

impl Default for PickleLimits {
    fn default() -> Self {
        PickleLimits {
            max_depth: 10_000,
            max_stack: 1 << 20,
            max_memo: 1 << 20,
            max_output: 64 << 20,
        }
    }
}

/// How to transcode a value for one reader.
#[derive(Clone, Debug)]
pub struct Policy {
    /// The runtime that reads the value.
    pub target: Runtime,
    /// Py3 text for a py2 reader.
    pub py2_text: Py2Text,
    /// Py2 `str` for a py3 reader.
    pub py3_str: Py3Str,
    /// Classes that are old-style (classic) in Python 2: written with INST/OBJ + BUILD for py2.
    pub py2_classic: Arc<[Global]>,
    /// The UTC `tzinfo` of Python 2 readers (for both targets: see [`Py2Utc`]).
    pub py2_utc: Py2Utc,
    /// Resource limits.
    pub limits: PickleLimits,
    /// A Python 2 target's output must also load in Python 3 as the input does (the store
    /// policy): a downgrade that changes the value for Python 3, as CPython 3's own protocol-2
    /// pickle does, is refused [`Reason::LossyForPy3`]: a `datetime`/`time` with `fold=1`
    /// (protocol 2 has no place for fold) and Python 3's `OSError` subclasses and
    /// `ModuleNotFoundError` (Python 2's `OSError` and `ImportError`, read back as such); and
    /// under `py2_utc = pytz`, a `pytz.utc` made of `timezone.utc` in a value that a Python 3
    /// reader's rewrite would refuse (so not turn back).
    pub lossless_for_py3: bool,
}

impl Policy {
    /// The default policy for a reader: `keep`, `utf8-or-bytes`, no classic classes, default limits.
    pub fn for_target(target: Runtime) -> Policy {
        Policy {
            target,
            py2_text: Py2Text::default(),
            py3_str: Py3Str::default(),
            py2_classic: Arc::from(Vec::new()),
            py2_utc: Py2Utc::default(),
            limits: PickleLimits::default(),
            lossless_for_py3: false,
        }
    }

    /// Whether `py2_text = utf8` converts the text of a value `writer` wrote: never what
    /// Python 2 wrote itself (its `unicode` stays `unicode`), whoever the reader.
    pub(crate) fn utf8_text_for(&self, writer: Writer) -> bool {
        self.py2_text == Py2Text::Utf8 && writer != Writer::Py2
    }
}

/// The result of [`transcode`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// Nothing needed changing: forward the original `Bytes` (no copy was made).
    Unchanged,
    /// The rewritten pickle for the target reader.
    Rewritten(Bytes),
    /// The value cannot be converted with certainty; forward the original and count the reason.
    Refused(Reason),
}

macro_rules! reasons {
    ($( $(#[$doc:meta])* $variant:ident = $label:literal, )*) => {
        /// Why a value was refused (a closed set: used as a metric label).
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
        pub enum Reason { $( $(#[$doc])* $variant, )* }

        impl Reason {
            /// Every reason, in declaration order.
            pub const ALL: &'static [Reason] = &[$(Reason::$variant),*];

            /// The snake_case label, e.g. `"newobj_ex"`.
            pub fn as_str(self) -> &'static str {
                match self { $(Reason::$variant => $label,)* }
            }
        }
    };
}

reasons! {
    /// Not a valid pickle: unknown opcode, bad argument, stack/MARK/memo discipline violated.
    Malformed = "malformed",
    /// The input ends before STOP.
    Truncated = "truncated",
    /// Bytes follow STOP.
    TrailingData = "trailing_data",
    /// PROTO above 5.
    UnsupportedProtocol = "unsupported_protocol",
    /// NEWOBJ_EX (keyword arguments to `__new__`) has no protocol-2 form here.
    NewobjEx = "newobj_ex",
    /// PERSID / BINPERSID: needs the writer's persistent_load.
    PersistentId = "persistent_id",
    /// EXT1/EXT2/EXT4: refers to a process-local copyreg extension registry.
    Extension = "extension",
    /// NEXT_BUFFER / READONLY_BUFFER: protocol-5 out-of-band data is not in the value.
    OutOfBandBuffer = "out_of_band_buffer",
    /// A global that does not exist in Python 2 (documented table).
    Py3OnlyGlobal = "py3_only_global",
    /// A global that does not exist in Python 3 (documented table).
    Py2OnlyGlobal = "py2_only_global",
    /// Distinct dict keys or set members would become equal in the target.
    Collision = "collision",
    /// A limit (depth, stack, memo, output size) would be exceeded.
    LimitExceeded = "limit_exceeded",
    /// Valid, but a construct the rewriter does not convert with certainty.
    Unsupported = "unsupported",
    /// The protocol-2 form would load differently in Python 3 (stores only, see
    /// [`Policy::lossless_for_py3`]).
    LossyForPy3 = "lossy_for_py3",
}

impl std::fmt::Display for Reason {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Who wrote a pickle, as far as its opcodes and globals tell.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Writer {
    /// Python 2: py2 `str` opcodes, or INST/OBJ (classic classes). Py2 module names
    /// (`__builtin__`, `copy_reg`) are no evidence: Python 3 writes them too at protocols 0-2.
    Py2,
    /// Python 3: protocol-3+ opcodes, py3 module names, or the `_codecs.encode` bytes form.
    Py3,
    /// Nothing tells.
    Unknown,
}

impl Writer {
    /// `"py2"`, `"py3"` or `"unknown"`.
    pub fn as_str(self) -> &'static str {
        match self {
            Writer::Py2 => "py2",
            Writer::Py3 => "py3",
            Writer::Unknown => "unknown",
        }
    }
}

/// Most globals a [`Summary`] lists (further ones are not recorded, and
/// [`Summary::globals_complete`] is then `false`).
pub const MAX_SUMMARY_GLOBALS: usize = 64;

/// How [`Summary::globals`] lists a STACK_GLOBAL whose module or name is not a string constant of
/// the stream (computed at load time, e.g. by a REDUCE): `<computed>.__computed__`. The dunder
/// name makes any name-based deny rule treat it as unsafe; nothing real is spelled like it.
pub const COMPUTED_GLOBAL: (&str, &str) = ("<computed>", "__computed__");

/// What a value contains, for mismatch metrics and `inspect`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Summary {
    /// PROTO argument; `None` for protocol 0/1 streams without PROTO.
    pub declared_protocol: Option<u8>,
    /// Highest protocol whose opcodes actually appear.
    pub max_protocol: u8,
    /// Who wrote it.
    pub writer: Writer,
    /// A py2 `str` (STRING/BINSTRING/SHORT_BINSTRING) holds a byte >= 0x80.
    pub py2_str_non_ascii: bool,
    /// A py2 `str` is the binary state of a class of the state table that Python 3 cannot load
    /// from it: a `date`/`time`/`datetime` state with a byte >= 0x80 (Python 3 takes an ASCII
    /// one as latin-1 text), any state of the others (`UnicodeDecodeError`, old `array`).
    pub py2_binary_state: bool,
    /// Unicode text written by Python 3 (reads back as `unicode` in Python 2).
    pub py3_text: bool,
    /// References a global Python 2 cannot import as written: one it does not have, or a
    /// Python 3 name `fix_imports` would rename (`builtins.KeyError`: at protocol 3+, or at 0-2
    /// with `fix_imports=False`); or calls `array.array` with a typecode Python 2's array lacks.
    pub py3_only_global: bool,
    /// References a global that does not exist in Python 3, mapped as its unpickler's
    /// `fix_imports` maps Python 2 names or as spelled (`sets.Set`, `__builtin__.cmp`).
    pub py2_only_global: bool,
    /// Distinct globals referenced (GLOBAL, INST, STACK_GLOBAL), in first-seen order, at most
    /// [`MAX_SUMMARY_GLOBALS`]; a STACK_GLOBAL of computed strings is listed as [`COMPUTED_GLOBAL`].
    /// When every use of `getattr` is a call `getattr(Class, 'NAME')` (how CPython 3.11.2
    /// pickles enum members), those calls are listed as the dotted names they walk to
    /// (`module.Class.NAME`) in place of `getattr`.
    pub globals: Globals,
    /// `true` when [`Summary::globals`] lists every global the stream references: `false` once
    /// more than [`MAX_SUMMARY_GLOBALS`] distinct ones appear, or when an EXT1/EXT2/EXT4 op names
    /// a global through the process-local extension registry. The firewall trusts only complete
    /// lists.
    pub globals_complete: bool,
}

impl Summary {
    /// The value's global names are Python 3's, as far as its protocol tells: at protocol 3+
    /// CPython 3 writes its own names; at protocols 0-2 its `fix_imports` writes Python 2's
    /// (unless turned off, which `renames`, a name only Python 3 has, shows).
    pub(crate) fn py3_names(&self, renames: bool) -> bool {
        renames || self.max_protocol > 2 || self.declared_protocol.is_some_and(|d| d > 2)
    }
}

/// The outcome of [`transcode`] plus what was detected on the way.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Transcoded {
    /// Unchanged, rewritten or refused.
    pub outcome: Outcome,
    /// `None` when the input did not parse.
    pub summary: Option<Summary>,
}

/// Transcodes one pickled value for `policy.target`. Never panics, whatever the input.
///
/// Everyday values (numbers, strings, bytes, containers, memo, globals and the calls on them)
/// take the fast path (`fast.rs`): one allocation-free validating pass, then a writing pass only
/// if something must change. Anything else, and every refusal, comes from the general path: pass 1 validates the whole pickle and
/// decides whether anything must change; only then does pass 2 write new bytes (sized once from
/// the input length). Debug builds (all tests, fuzz replay) also run the general path after a
/// fast-path answer and assert both agree, and re-validate every general-path rewrite, so a
/// defect surfaces as a test failure; release builds skip both checks.
pub fn transcode(src: &Bytes, policy: &Policy) -> Transcoded {
    if let Some(fast) = fast::transcode(src, policy) {
        // The fast path must agree with the general one; every debug build checks it.
        #[cfg(debug_assertions)]
        assert_eq!(
            fast,
            transcode_general(src, policy),
            "fast path disagrees with the general path on {src:?}"
        );
        return fast;
    }
    transcode_general(src, policy)
}

/// The general path: every opcode, every rewrite rule, every refusal.
fn transcode_general(src: &Bytes, policy: &Policy) -> Transcoded {
    let scan = match scan::scan(src, Some(policy)) {
        Ok(scan) => scan,
        Err(e) => return refused(src, e),
    };
    if !scan.needs_change {
        return Transcoded {
            outcome: Outcome::Unchanged,
            summary: Some(scan.summary),
        };
    }
    let written = match policy.target {
        Runtime::Py2 => {
            let py3_names = scan.summary.py3_names(scan.renames);
            downgrade::downgrade(src, &scan.summary, &scan.plan.anns, py3_names, policy)
        }
        Runtime::Py3 => py3::normalize(src, &scan, policy),
    };
    let written = match written {
        Ok(out) if scan.plan.converts_utc() => restored_for_py3(out, policy),
        other => other,
    };
    // The writers are correct by construction (golden fixtures, fuzz replay and the unit tests
    // re-read every rewrite in debug builds); a release build skips that third pass.
    let written = if cfg!(debug_assertions) {
        written.and_then(|out| check_output(out, policy))
    } else {
        written
    };
    let outcome = match written {
        Ok(out) => Outcome::Rewritten(Bytes::from(out)),
        Err(e) => Outcome::Refused(e.reason()),
    };
    Transcoded {
        outcome,
        summary: Some(scan.summary),
    }
}

/// The refusal for a pass-1 error; valid-but-refused pickles still get their summary.
fn refused(src: &[u8], e: TranscodeError) -> Transcoded {
    let reason = e.reason();
    let summary = match reason {
        Reason::Malformed
        | Reason::Truncated
        | Reason::TrailingData
        | Reason::UnsupportedProtocol => None,
        _ => analyze(src).ok(),
    };
    Transcoded {
        outcome: Outcome::Refused(reason),
        summary,
    }
}

/// For a rewrite that converted a UTC class (`py2_utc = pytz`) under `lossless_for_py3`:
/// Python 3's `timezone.utc` became `pytz.utc`, which only the proxy's rewrite for a Python 3
/// reader turns back (Python 3 may lack pytz). A value that rewrite refuses (it holds a `Decimal` key beside a `Fraction` one, say) would
/// reach Python 3 readers as `pytz.utc`: refused [`Reason::LossyForPy3`] here, so it is stored
/// as sent.
fn restored_for_py3(out: Vec<u8>, policy: &Policy) -> Result<Vec<u8>, TranscodeError> {
    if policy.target != Runtime::Py2 || !policy.lossless_for_py3 {
        return Ok(out);
    }
    let reader = Policy {
        target: Runtime::Py3,
        lossless_for_py3: false,
        ..policy.clone()
    };
    let out = Bytes::from(out);
    match transcode(&out, &reader).outcome {
        Outcome::Refused(_) => Err(TranscodeError::new(ErrorKind::LossyForPy3, 0, None)),
        Outcome::Unchanged | Outcome::Rewritten(_) => Ok(out.into()),
    }
}

/// Re-reads a rewrite: it must parse, and for Python 2 use only protocol <= 2 opcodes.
fn check_output(out: Vec<u8>, policy: &Policy) -> Result<Vec<u8>, TranscodeError> {
    let summary = scan::scan(&out, None)?.summary;
    if policy.target == Runtime::Py2 && summary.max_protocol > 2 {
        return Err(TranscodeError::new(ErrorKind::Unsupported, 0, None));
    }
    Ok(out)
}

/// Reads and validates a pickle and reports what it contains, without rewriting it.
///
/// # Errors
/// Any [`TranscodeError`] of the reader (malformed, truncated, trailing data, limits).
pub fn analyze(src: &[u8]) -> Result<Summary, TranscodeError> {
    if let Some(summary) = fast::analyze(src) {
        #[cfg(debug_assertions)]
        assert_eq!(
            Ok(&summary),
            scan::scan(src, None).map(|s| s.summary).as_ref(),
            "fast path disagrees with the general path on {src:?}"
        );
        return Ok(summary);
    }
    scan::scan(src, None).map(|s| s.summary)
}

#[cfg(test)]
mod tests;
