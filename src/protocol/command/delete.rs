//! delete: `delete <key> [noreply]\r\n`, plus the legacy hold time `delete <key> 0`.
//!
//! memcached 1.6.18 (`process_delete_command`), verified: with more than the key, the only
//! accepted forms are `delete k 0`, `delete k noreply` and `delete k 0 noreply`; anything else
//! (e.g. `delete k 1`) is `CLIENT_ERROR bad command line format.  Usage: delete <key>
//! [noreply]` (two spaces), suppressed when the last token is `noreply`.

use bytes::{BufMut, Bytes, BytesMut};

use crate::protocol::error::{Reject, BAD_FORMAT, DELETE_USAGE};
use crate::protocol::token::Line;
use crate::protocol::{Limits, Request, Src};

/// A delete request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Delete {
    /// The key.
    pub key: Bytes,
    /// `noreply` was given.
    pub noreply: bool,
}

/// Parses a delete line (dispatch checked 3..=5 tokens).
pub(crate) fn parse(src: Src<'_>, line: &Line, limits: &Limits) -> Request {
    let buf = src.buf;
    let nt = line.ntokens();
    let mut noreply = false;
    if nt > 3 {
        let hold_is_zero = line.token(buf, 2) == b"0";
        noreply = line.noreply(buf);
        let valid = (nt == 4 && (hold_is_zero || noreply)) || (nt == 5 && hold_is_zero && noreply);
        if !valid {
            return Request::Reject(Reject::unless_noreply(DELETE_USAGE, noreply));
        }
    }
    let (s, e) = line.tokens()[1];
    if e - s > limits.max_key_len {
        return Request::Reject(Reject::unless_noreply(BAD_FORMAT, noreply));
    }
    Request::Delete(Delete {
        key: src.slice(s, e),
        noreply,
    })
}

/// `delete k\r\n` (hold time and `noreply` dropped).
pub(crate) fn compose(d: &Delete, dst: &mut BytesMut) {
    dst.reserve(d.key.len() + 9);
    dst.put_slice(b"delete ");
    dst.put_slice(&d.key);
    dst.put_slice(b"\r\n");
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::command::testutil::{assert_prefixes_incomplete, assert_reject, upstream};

    #[test]
    fn good_requests() {
        let table: &[(&[u8], &[u8])] = &[
            (b"delete k\r\n", b"delete k\r\n"),
            (b"delete k 0\r\n", b"delete k\r\n"),
            (b"delete k noreply\r\n", b"delete k\r\n"),
            (b"delete k 0 noreply\r\n", b"delete k\r\n"),
            (b"delete noreply\r\n", b"delete noreply\r\n"),
        ];
        for &(input, composed) in table {
            assert_eq!(upstream(input), composed);
        }
    }

    #[test]
    fn bad_requests() {
        let long = format!("delete {}\r\n", "k".repeat(251));
        let long_nr = format!("delete {} noreply\r\n", "k".repeat(251));
        let table: &[(&[u8], Option<&str>)] = &[
            (b"delete\r\n", Some("ERROR")),
            (b"delete a b c d\r\n", Some("ERROR")),
            (b"delete k 1\r\n", Some(DELETE_USAGE)),
            (b"delete k 0 x\r\n", Some(DELETE_USAGE)),
            (b"delete k noreply 0\r\n", Some(DELETE_USAGE)),
            (b"delete k x noreply\r\n", None),
            (long.as_bytes(), Some(BAD_FORMAT)),
            (long_nr.as_bytes(), None),
        ];
        for &(input, reply) in table {
            assert_reject(input, reply, 0);
        }
    }

    #[test]
    fn prefixes_are_incomplete() {
        assert_prefixes_incomplete(b"delete k 0 noreply\r\n");
    }
}
