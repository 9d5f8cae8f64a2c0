//! touch: `touch <key> <exptime> [noreply]\r\n`, replies `TOUCHED` or `NOT_FOUND`.

use bytes::{BufMut, Bytes, BytesMut};

use crate::protocol::error::{Reject, BAD_EXPTIME, BAD_FORMAT};
use crate::protocol::token::{put_i32, strtol, Line};
use crate::protocol::{Limits, Request, Src};

/// A touch request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Touch {
    /// The key.
    pub key: Bytes,
    /// Exptime as memcached's `safe_strtol` reads it (forwarded in decimal).
    pub exptime: i32,
    /// `noreply` was given.
    pub noreply: bool,
}

/// Parses a touch line (dispatch checked 4 or 5 tokens).
pub(crate) fn parse(src: Src<'_>, line: &Line, limits: &Limits) -> Request {
    let buf = src.buf;
    let noreply = line.noreply(buf);
    let (s, e) = line.tokens()[1];
    if e - s > limits.max_key_len {
        return Request::Reject(Reject::unless_noreply(BAD_FORMAT, noreply));
    }
    let Some(exptime) = strtol(line.token(buf, 2)) else {
        return Request::Reject(Reject::unless_noreply(BAD_EXPTIME, noreply));
    };
    Request::Touch(Touch {
        key: src.slice(s, e),
        exptime,
        noreply,
    })
}

/// `touch k 10\r\n`.
pub(crate) fn compose(t: &Touch, dst: &mut BytesMut) {
    dst.reserve(t.key.len() + 20);
    dst.put_slice(b"touch ");
    dst.put_slice(&t.key);
    dst.put_u8(b' ');
    put_i32(dst, t.exptime);
    dst.put_slice(b"\r\n");
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::command::testutil::{assert_prefixes_incomplete, assert_reject, upstream};

    #[test]
    fn good_requests() {
        let table: &[(&[u8], &[u8])] = &[
            (b"touch k 10\r\n", b"touch k 10\r\n"),
            (b"touch k -1 noreply\r\n", b"touch k -1\r\n"),
            (b"touch k 1 x\r\n", b"touch k 1\r\n"),
            (
                b"touch k 000000000000000000000000000007\r\n",
                b"touch k 7\r\n",
            ),
        ];
        for &(input, composed) in table {
            assert_eq!(upstream(input), composed);
        }
    }

    #[test]
    fn bad_requests() {
        let table: &[(&[u8], Option<&str>)] = &[
            (b"touch k\r\n", Some("ERROR")),
            (b"touch k x\r\n", Some(BAD_EXPTIME)),
            (b"touch k noreply\r\n", None),
            (b"touch k 1 2 3\r\n", Some("ERROR")),
        ];
        for &(input, reply) in table {
            assert_reject(input, reply, 0);
        }
    }

    #[test]
    fn prefixes_are_incomplete() {
        assert_prefixes_incomplete(b"touch k 10 noreply\r\n");
    }
}
