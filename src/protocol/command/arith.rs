//! incr / decr: `incr <key> <value> [noreply]\r\n`.
//!
//! The delta must parse as an unsigned 64-bit decimal (`safe_strtoull`), else
//! `CLIENT_ERROR invalid numeric delta argument`. Non-numeric values, 64-bit wrap on incr and
//! the clamp to 0 on decr are decided by the server holding the item, so they are forwarded.

use bytes::{BufMut, Bytes, BytesMut};

use crate::protocol::error::{Reject, BAD_DELTA, BAD_FORMAT};
use crate::protocol::token::{put_u64, strtoull, Line};
use crate::protocol::{Limits, Request, Src};

/// incr or decr.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ArithCmd {
    /// Add, wrapping at 2^64.
    Incr,
    /// Subtract, clamping at 0.
    Decr,
}

impl ArithCmd {
    /// The command word.
    pub fn as_str(self) -> &'static str {
        match self {
            ArithCmd::Incr => "incr",
            ArithCmd::Decr => "decr",
        }
    }
}

/// An incr/decr request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Arith {
    /// The command.
    pub cmd: ArithCmd,
    /// The key.
    pub key: Bytes,
    /// The delta.
    pub delta: u64,
    /// `noreply` was given.
    pub noreply: bool,
}

/// Parses an incr/decr line (dispatch checked 4 or 5 tokens).
pub(crate) fn parse(src: Src<'_>, line: &Line, limits: &Limits) -> Request {
    let buf = src.buf;
    let cmd = if line.token(buf, 0) == b"incr" {
        ArithCmd::Incr
    } else {
        ArithCmd::Decr
    };
    let noreply = line.noreply(buf);
    let (s, e) = line.tokens()[1];
    if e - s > limits.max_key_len {
        return Request::Reject(Reject::unless_noreply(BAD_FORMAT, noreply));
    }
    let Some(delta) = strtoull(line.token(buf, 2)) else {
        return Request::Reject(Reject::unless_noreply(BAD_DELTA, noreply));
    };
    Request::Arith(Arith {
        cmd,
        key: src.slice(s, e),
        delta,
        noreply,
    })
}

/// `incr k 5\r\n`.
pub(crate) fn compose(a: &Arith, dst: &mut BytesMut) {
    dst.reserve(a.key.len() + 32);
    dst.put_slice(a.cmd.as_str().as_bytes());
    dst.put_u8(b' ');
    dst.put_slice(&a.key);
    dst.put_u8(b' ');
    put_u64(dst, a.delta);
    dst.put_slice(b"\r\n");
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::command::testutil::{assert_prefixes_incomplete, assert_reject, upstream};

    #[test]
    fn good_requests() {
        let table: &[(&[u8], &[u8])] = &[
            (b"incr k 1\r\n", b"incr k 1\r\n"),
            (
                b"decr k 18446744073709551615\r\n",
                b"decr k 18446744073709551615\r\n",
            ),
            (b"incr k 01 noreply\r\n", b"incr k 1\r\n"),
            // "incr k 1 2": the 4th token is not noreply and is ignored.
            (b"incr k 1 2\r\n", b"incr k 1\r\n"),
        ];
        for &(input, composed) in table {
            assert_eq!(upstream(input), composed);
        }
    }

    #[test]
    fn bad_requests() {
        let table: &[(&[u8], Option<&str>)] = &[
            (b"incr k\r\n", Some("ERROR")),
            (b"incr k 1 noreply x\r\n", Some("ERROR")),
            (b"incr k abc\r\n", Some(BAD_DELTA)),
            (b"incr k -1\r\n", Some(BAD_DELTA)),
            (b"decr k 18446744073709551616\r\n", Some(BAD_DELTA)),
            (b"incr k noreply\r\n", None),
            (b"incr k x noreply\r\n", None),
        ];
        for &(input, reply) in table {
            assert_reject(input, reply, 0);
        }
    }

    #[test]
    fn prefixes_are_incomplete() {
        assert_prefixes_incomplete(b"decr counter 7 noreply\r\n");
    }
}
