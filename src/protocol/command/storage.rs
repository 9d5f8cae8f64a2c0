//! set / add / replace / append / prepend / cas: a command line plus a data block.
//!
//! protocol.txt: `<command name> <key> <flags> <exptime> <bytes> [noreply]\r\n` and
//! `cas <key> <flags> <exptime> <bytes> <cas unique> [noreply]\r\n`, then `<data block>\r\n`.
//!
//! memcached's order of checks (`process_update_command`), each verified on 1.6.18:
//! 1. token count (6/7, cas 7/8), else `ERROR` and the data line is then parsed as a command;
//! 2. `noreply` from the last token: suppresses every reply below, errors included;
//! 3. key > 250, bad flags/exptime/bytes/cas, bytes < 0 or > INT_MAX-2:
//!    `CLIENT_ERROR bad command line format`, nothing swallowed;
//! 4. item too large (the data with the key and memcached's item overhead, `item_too_large`):
//!    `SERVER_ERROR object too large for cache`, the data block swallowed whatever it holds;
//! 5. exactly `bytes + 2` bytes are read; if they do not end in CRLF:
//!    `CLIENT_ERROR bad data chunk` and parsing resumes right after them.

use bytes::{BufMut, Bytes, BytesMut};

use crate::protocol::error::{Reject, BAD_DATA_CHUNK, BAD_FORMAT, TOO_LARGE};
use crate::protocol::token::{put_i32, put_u64, strtol, strtoul, strtoull, Line};
use crate::protocol::{item_too_large, Delete, Limits, Parsed, Request, Src};

/// Which storage command.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum StorageCmd {
    /// Store unconditionally.
    Set,
    /// Store if absent.
    Add,
    /// Store if present.
    Replace,
    /// Append data to an existing item.
    Append,
    /// Prepend data to an existing item.
    Prepend,
    /// Store if the cas unique still matches.
    Cas,
}

impl StorageCmd {
    /// The command word.
    pub fn as_str(self) -> &'static str {
        match self {
            StorageCmd::Set => "set",
            StorageCmd::Add => "add",
            StorageCmd::Replace => "replace",
            StorageCmd::Append => "append",
            StorageCmd::Prepend => "prepend",
            StorageCmd::Cas => "cas",
        }
    }
}

/// A storage request with its data block.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Storage {
    /// The command.
    pub cmd: StorageCmd,
    /// The key (1..=250 bytes, no spaces).
    pub key: Bytes,
    /// Client flags, truncated to 32 bits exactly as memcached stores them.
    pub flags: u32,
    /// Exptime as memcached's `safe_strtol` reads it, forwarded in decimal: a token padded
    /// with zeros cannot make the upstream line long (see [`crate::protocol::MAX_UPSTREAM_LINE`]).
    pub exptime: i32,
    /// The cas unique (cas only).
    pub cas: Option<u64>,
    /// `noreply` was given.
    pub noreply: bool,
    /// The data block without its trailing CRLF; compose writes its length.
    pub data: Bytes,
}

/// Parses a storage line and its data block (dispatch checked the token count).
pub(crate) fn parse(
    src: Src<'_>,
    line: &Line,
    line_len: usize,
    limits: &Limits,
) -> Parsed<Request> {
    let buf = src.buf;
    let done = |value: Request, consumed: usize| Parsed::Complete { value, consumed };
    let reject = |reply: &'static str, noreply: bool| {
        done(
            Request::Reject(Reject::unless_noreply(reply, noreply)),
            line_len,
        )
    };
    let cmd = match line.token(buf, 0) {
        b"add" => StorageCmd::Add,
        b"replace" => StorageCmd::Replace,
        b"append" => StorageCmd::Append,
        b"prepend" => StorageCmd::Prepend,
        b"cas" => StorageCmd::Cas,
        _ => StorageCmd::Set,
    };
    let noreply = line.noreply(buf);
    let key = line.token(buf, 1);
    if key.len() > limits.max_key_len {
        return reject(BAD_FORMAT, noreply);
    }
    let (Some(flags), Some(exptime), Some(vlen)) = (
        strtoul(line.token(buf, 2)),
        strtol(line.token(buf, 3)),
        strtol(line.token(buf, 4)),
    ) else {
        return reject(BAD_FORMAT, noreply);
    };
    let mut cas = None;
    if cmd == StorageCmd::Cas {
        match strtoull(line.token(buf, 5)) {
            Some(c) => cas = Some(c),
            None => return reject(BAD_FORMAT, noreply),
        }
    }
    if !(0..=i32::MAX - 2).contains(&vlen) {
        return reject(BAD_FORMAT, noreply);
    }
    let vlen = vlen as usize; // non-negative, checked above
    if item_too_large(limits, key.len(), flags, vlen) {
        let (ks, ke) = line.tokens()[1];
        let unlink = (cmd == StorageCmd::Set).then(|| {
            Box::new(Request::Delete(Delete {
                key: src.slice(ks, ke),
                noreply: true,
            }))
        });
        let reject = Reject {
            reply: (!noreply).then_some(TOO_LARGE),
            swallow: vlen + 2,
            side_effect: unlink,
        };
        return done(Request::Reject(reject), line_len);
    }
    let total = line_len + vlen + 2;
    if buf.len() < total {
        return Parsed::Incomplete;
    }
    if &buf[line_len + vlen..total] != b"\r\n" {
        let reject = Reject::unless_noreply(BAD_DATA_CHUNK, noreply);
        return done(Request::Reject(reject), total);
    }
    let (ks, ke) = line.tokens()[1];
    let storage = Storage {
        cmd,
        key: src.slice(ks, ke),
        flags,
        exptime,
        cas,
        noreply,
        data: src.slice(line_len, line_len + vlen),
    };
    done(Request::Storage(storage), total)
}

/// `set k 0 0 5\r\nhello\r\n`, without `noreply`.
pub(crate) fn compose(s: &Storage, dst: &mut BytesMut) {
    dst.reserve(s.key.len() + s.data.len() + 80);
    compose_line(s, dst);
    dst.put_slice(&s.data);
    dst.put_slice(b"\r\n");
}

/// The request line of [`compose`] (`set k 0 0 5\r\n`), without the data block.
pub(crate) fn compose_line(s: &Storage, dst: &mut BytesMut) {
    dst.reserve(s.key.len() + 80);
    dst.put_slice(s.cmd.as_str().as_bytes());
    dst.put_u8(b' ');
    dst.put_slice(&s.key);
    dst.put_u8(b' ');
    put_u64(dst, u64::from(s.flags));
    dst.put_u8(b' ');
    put_i32(dst, s.exptime);
    dst.put_u8(b' ');
    put_u64(dst, s.data.len() as u64);
    if let Some(cas) = s.cas {
        dst.put_u8(b' ');
        put_u64(dst, cas);
    }
    dst.put_slice(b"\r\n");
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::command::testutil::{
        assert_prefixes_incomplete, assert_reject, parse_all, upstream,
    };

    #[test]
    fn good_requests_compose_canonically() {
        let table: &[(&[u8], &[u8])] = &[
            (b"set k 0 0 1\r\nx\r\n", b"set k 0 0 1\r\nx\r\n"),
            (b"set k 5 -1 2 noreply\r\nhi\r\n", b"set k 5 -1 2\r\nhi\r\n"),
            (b"add k 0 0 0\r\n\r\n", b"add k 0 0 0\r\n\r\n"),
            (
                b"replace k 1 1700000000 1\r\nx\r\n",
                b"replace k 1 1700000000 1\r\nx\r\n",
            ),
            (b"append k 0 0 1\r\nx\r\n", b"append k 0 0 1\r\nx\r\n"),
            (b"prepend k 0 0 1\r\nx\r\n", b"prepend k 0 0 1\r\nx\r\n"),
            (b"cas k 0 0 1 99\r\nx\r\n", b"cas k 0 0 1 99\r\nx\r\n"),
            (
                b"cas k 0 0 1 99 noreply\r\nx\r\n",
                b"cas k 0 0 1 99\r\nx\r\n",
            ),
            // memcached truncates flags to 32 bits and accepts +, leading zeros and tabs.
            (b"set k 4294967296 0 1\r\nx\r\n", b"set k 0 0 1\r\nx\r\n"),
            (b"set k 0 0 +01\r\nx\r\n", b"set k 0 0 1\r\nx\r\n"),
            (b"set k 0 0 \t1\r\nx\r\n", b"set k 0 0 1\r\nx\r\n"),
            (b"set k 0 0 1 norepl\r\nx\r\n", b"set k 0 0 1\r\nx\r\n"),
            (b"set k 0 0 2\n\r\n\r\n", b"set k 0 0 2\r\n\r\n\r\n"),
            // The exptime goes up as the number memcached reads (safe_strtol: a long, then
            // 32 bits), so padding cannot lengthen the line.
            (b"set k 0 +0010 1\r\nx\r\n", b"set k 0 10 1\r\nx\r\n"),
            (b"set k 0 -01 1\r\nx\r\n", b"set k 0 -1 1\r\nx\r\n"),
            (b"set k 0 \t5 1\r\nx\r\n", b"set k 0 5 1\r\nx\r\n"),
            (b"set k 0 4294967306 1\r\nx\r\n", b"set k 0 10 1\r\nx\r\n"),
            (b"set k 0 -0 1\r\nx\r\n", b"set k 0 0 1\r\nx\r\n"),
        ];
        for &(input, composed) in table {
            assert_eq!(
                upstream(input),
                composed,
                "{}",
                String::from_utf8_lossy(input)
            );
        }
        match parse_all(b"set k 0 0 2 noreply\r\nhi\r\n") {
            Request::Storage(s) => assert!(s.noreply && &s.data[..] == b"hi"),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn bad_requests() {
        let long = format!("set {} 0 0 1\r\n", "k".repeat(251));
        let long_fits = format!("set {} 0 0 1048268\r\n", "k".repeat(250));
        let table: &[(&[u8], Option<&str>, usize)] = &[
            (b"set k 0 0\r\n", Some("ERROR"), 0),
            (b"set k 0 0 1 noreply x\r\n", Some("ERROR"), 0),
            (b"cas k 0 0 1\r\n", Some("ERROR"), 0),
            (long.as_bytes(), Some(BAD_FORMAT), 0),
            (b"set k x 0 1\r\n", Some(BAD_FORMAT), 0),
            (b"set k -1 0 1\r\n", Some(BAD_FORMAT), 0),
            (b"set k 0 x 1\r\n", Some(BAD_FORMAT), 0),
            (b"set k 0 0 1x\r\n", Some(BAD_FORMAT), 0),
            (b"set k 0 0 -1\r\n", Some(BAD_FORMAT), 0),
            (b"set k 0 0 -1 noreply\r\n", None, 0),
            (b"set k 0 0 noreply\r\n", None, 0),
            (b"set k 0 0 2147483646\r\n", Some(BAD_FORMAT), 0),
            (b"cas k 0 0 1 x\r\n", Some(BAD_FORMAT), 0),
            (b"cas k 0 0 1 -1\r\n", Some(BAD_FORMAT), 0),
            (b"set k 0 0 2000000\r\n", Some(TOO_LARGE), 2_000_002),
            // memcached decides at the line, from the item it would need (the data, the key,
            // flags other than 0, its overhead), whatever data follows.
            (b"set k 0 0 1048517\r\n", Some(TOO_LARGE), 1_048_519),
            (b"set k 1 0 1048513\r\n", Some(TOO_LARGE), 1_048_515),
            (b"cas k 0 0 1048517 1\r\n", Some(TOO_LARGE), 1_048_519),
            (long_fits.as_bytes(), Some(TOO_LARGE), 1_048_270),
            (b"set k 0 0 2000000 noreply\r\n", None, 2_000_002),
            (b"set k 0 0 1\r\nxy\r", Some(BAD_DATA_CHUNK), 0),
            (b"set k 0 0 3 noreply\r\nabcde", None, 0),
        ];
        for &(input, reply, swallow) in table {
            assert_reject(input, reply, swallow);
        }
    }

    /// The largest item memcached 1.6.18 stores at `-I 1m`: its data is read, and a block
    /// that does not end in CRLF is a bad data chunk (one byte more: too large, above).
    #[test]
    fn values_at_the_item_limit_are_read() {
        let limits = Limits::default();
        for line in [
            "set k 0 0 1048516\r\n".to_string(),
            "set k 1 0 1048512\r\n".to_string(),
            format!("set {} 0 0 1048267\r\n", "k".repeat(250)),
        ] {
            let mut buf = BytesMut::from(line.as_bytes());
            let input = buf.clone().freeze();
            assert_eq!(
                crate::protocol::parse_request(&input, &limits),
                Ok(Parsed::Incomplete)
            );
            let vlen: usize = line.trim_end().rsplit(' ').next().unwrap().parse().unwrap();
            buf.resize(line.len() + vlen, b'v');
            buf.extend_from_slice(b"xx");
            assert_reject(&buf, Some(BAD_DATA_CHUNK), 0);
        }
    }

    #[test]
    fn prefixes_are_incomplete_and_pipelines_split() {
        assert_prefixes_incomplete(b"set k 0 0 5\r\nhello\r\n");
        assert_prefixes_incomplete(b"cas k 1 2 3 4 noreply\r\nabc\r\n");
        let buf = Bytes::from_static(b"set a 0 0 1\r\nx\r\nset b 0 0 1\r\ny\r\n");
        let first = crate::protocol::parse_request(&buf, &Limits::default());
        assert!(matches!(first, Ok(Parsed::Complete { consumed: 16, .. })));
    }
}
