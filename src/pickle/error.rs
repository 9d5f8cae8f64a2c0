//! Errors of the pickle reader: what went wrong, at which byte offset, on which opcode.
//!
//! An error never escapes [`super::transcode`]: it becomes an [`super::Outcome::Refused`] with the
//! [`super::Reason`] that [`TranscodeError::reason`] maps it to. [`super::analyze`] returns it.

use super::Reason;

/// Why a pickle could not be read or rewritten.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ErrorKind {
    /// The input ends before STOP (or inside an opcode's argument).
    Truncated,
    /// Bytes follow the STOP opcode.
    TrailingData,
    /// A byte that is not an opcode of protocols 0-5.
    UnknownOpcode,
    /// An argument that does not parse (bad decimal line, bad quoting, negative length...).
    BadArgument,
    /// The stack or MARK discipline is violated (pop below a MARK, a MARK-taking op without one...).
    StackUnderflow,
    /// STOP while the stack does not hold exactly one value, or MARKs are left open.
    UnbalancedStack,
    /// DICT or SETITEMS over an odd number of items: CPython 3 raises, `cPickle` drops the last
    /// item of a DICT, so no reader loads it as written.
    OddItems,
    /// A GET of a memo index never PUT, or a PUT on an empty stack.
    BadMemo,
    /// PROTO with a protocol above 5.
    UnsupportedProtocol,
    /// A configured limit (stack depth, memo size, output size) would be exceeded.
    LimitExceeded,
    /// PERSID / BINPERSID: persistent ids need the writer's own loader.
    PersistentId,
    /// EXT1/EXT2/EXT4: the copyreg extension registry is process-local.
    Extension,
    /// NEXT_BUFFER / READONLY_BUFFER: protocol-5 out-of-band buffers are not in the value.
    OutOfBandBuffer,
    /// NEWOBJ_EX has no faithful protocol-2 form here.
    NewobjEx,
    /// A global that does not exist in Python 2 (see the py3-only table).
    Py3OnlyGlobal,
    /// A global that does not exist in Python 3 (see the py2-only table).
    Py2OnlyGlobal,
    /// Distinct keys or set members would become equal in the target runtime.
    Collision,
    /// A construct that is valid but that the rewriter does not handle with certainty.
    Unsupported,
    /// A rewrite Python 3 would load differently (a policy with `lossless_for_py3`).
    LossyForPy3,
}

/// A pickle error with the byte offset of the opcode and the opcode byte.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{} at offset {offset}{}", kind.describe(), opcode_suffix(*opcode))]
pub struct TranscodeError {
    /// What went wrong.
    pub kind: ErrorKind,
    /// Byte offset of the opcode (the end of input when the input ends where an opcode is due).
    pub offset: usize,
    /// The opcode byte being processed, when there is one.
    pub opcode: Option<u8>,
}

fn opcode_suffix(op: Option<u8>) -> String {
    match op {
        Some(code) => match super::opcode::info(code) {
            Some(info) => format!(" (opcode {} 0x{code:02x})", info.name),
            None => format!(" (byte 0x{code:02x})"),
        },
        None => String::new(),
    }
}

impl ErrorKind {
    fn describe(self) -> &'static str {
        match self {
            ErrorKind::Truncated => "truncated pickle",
            ErrorKind::TrailingData => "data after STOP",
            ErrorKind::UnknownOpcode => "unknown opcode",
            ErrorKind::BadArgument => "bad opcode argument",
            ErrorKind::StackUnderflow => "stack underflow",
            ErrorKind::UnbalancedStack => "unbalanced stack at STOP",
            ErrorKind::OddItems => "odd number of items for DICT or SETITEMS",
            ErrorKind::BadMemo => "bad memo reference",
            ErrorKind::UnsupportedProtocol => "unsupported pickle protocol",
            ErrorKind::LimitExceeded => "limit exceeded",
            ErrorKind::PersistentId => "persistent id",
            ErrorKind::Extension => "extension registry code",
            ErrorKind::OutOfBandBuffer => "out-of-band buffer",
            ErrorKind::NewobjEx => "NEWOBJ_EX",
            ErrorKind::Py3OnlyGlobal => "global that does not exist in Python 2",
            ErrorKind::Py2OnlyGlobal => "global that does not exist in Python 3",
            ErrorKind::Collision => "distinct keys collide in the target",
            ErrorKind::Unsupported => "construct not handled by the rewriter",
            ErrorKind::LossyForPy3 => "protocol-2 form that Python 3 loads differently",
        }
    }
}

impl TranscodeError {
    /// Builds an error.
    pub(crate) fn new(kind: ErrorKind, offset: usize, opcode: Option<u8>) -> Self {
        TranscodeError {
            kind,
            offset,
            opcode,
        }
    }

    /// The closed-set [`Reason`] a caller reports (and counts) for this error.
    pub fn reason(&self) -> Reason {
        match self.kind {
            ErrorKind::Truncated => Reason::Truncated,
            ErrorKind::TrailingData => Reason::TrailingData,
            ErrorKind::UnknownOpcode
            | ErrorKind::BadArgument
            | ErrorKind::StackUnderflow
            | ErrorKind::UnbalancedStack
            | ErrorKind::OddItems
            | ErrorKind::BadMemo => Reason::Malformed,
            ErrorKind::UnsupportedProtocol => Reason::UnsupportedProtocol,
            ErrorKind::LimitExceeded => Reason::LimitExceeded,
            ErrorKind::PersistentId => Reason::PersistentId,
            ErrorKind::Extension => Reason::Extension,
            ErrorKind::OutOfBandBuffer => Reason::OutOfBandBuffer,
            ErrorKind::NewobjEx => Reason::NewobjEx,
            ErrorKind::Py3OnlyGlobal => Reason::Py3OnlyGlobal,
            ErrorKind::Py2OnlyGlobal => Reason::Py2OnlyGlobal,
            ErrorKind::Collision => Reason::Collision,
            ErrorKind::Unsupported => Reason::Unsupported,
            ErrorKind::LossyForPy3 => Reason::LossyForPy3,
        }
    }
}
