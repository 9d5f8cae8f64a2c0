//! Reading one op of the fast path's subset: a table from opcode byte to argument kind, bounds
//! checked lengths, protocol-0 lines checked as the reader checks them. `None` for anything else.

use std::borrow::Cow;

use super::super::opcode as op;
use super::super::reader;
use super::super::strings;

/// One opcode of the subset: its byte, its argument's span and where the next op starts.
#[derive(Clone, Copy)]
pub(super) struct FOp {
    pub(super) code: u8,
    /// The argument: the payload of length-prefixed kinds, the line (no `\n`) of line kinds.
    pub(super) arg: usize,
    pub(super) arg_end: usize,
    pub(super) end: usize,
}

impl FOp {
    #[inline(always)]
    pub(super) fn arg<'s>(&self, src: &'s [u8]) -> &'s [u8] {
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
    t = table(t, &fixed0, 0);
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
    table(t, &lines, LINE)
};

/// `t` with `value` for each opcode byte of `ops` (opcode tables are built in const context).
pub(super) const fn table(mut t: [u8; 256], ops: &[u8], value: u8) -> [u8; 256] {
    let mut i = 0;
    while i < ops.len() {
        t[ops[i] as usize] = value;
        i += 1;
    }
    t
}

/// A little-endian unsigned integer of `n` (1, 4 or 8) bytes at `at`.
#[inline(always)]
pub(super) fn le(src: &[u8], at: usize, n: usize) -> Option<u64> {
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
pub(super) fn memo_index(src: &[u8], o: FOp) -> Option<usize> {
    let idx = match o.code {
        op::BINGET | op::BINPUT => u64::from(src[o.arg]),
        op::LONG_BINGET | op::LONG_BINPUT => le(src, o.arg, 4)?,
        _ => reader::parse_decimal(o.arg(src))?,
    };
    usize::try_from(idx).ok()
}

/// The bytes of a py2 `str` op (protocol 0's quoted, escaped form decoded as CPython does).
#[inline(always)]
pub(super) fn py2_str_bytes(src: &[u8], o: FOp) -> Option<Cow<'_, [u8]>> {
    match o.code {
        op::STRING => strings::decode_string_escape(o.arg(src)),
        _ => Some(Cow::Borrowed(o.arg(src))),
    }
}

/// Decodes the op at `pos`; `None` when it is outside the subset or truncated.
#[inline(always)]
pub(super) fn next(src: &[u8], pos: usize) -> Option<FOp> {
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
            op::INT => reader::int_line_ok(line),
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
