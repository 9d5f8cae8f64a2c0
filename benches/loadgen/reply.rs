//! Sans-IO parser of the memcached replies the load generator expects (`get`/`set` only).
//!
//! protocol.txt, "Retrieval command": each item is sent as
//! `VALUE <key> <flags> <bytes> [<cas unique>]\r\n<data block>\r\n`, and after all the items
//! the server sends `END\r\n`. "Storage commands": `STORED\r\n` on success.

/// A complete reply to one request.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Reply {
    /// VALUE blocks seen.
    pub values: usize,
    /// VALUE blocks whose length differed from the expected one.
    pub wrong_len: usize,
    /// VALUE blocks whose data starts with `\x80\x04` (a protocol-4 pickle, not rewritten).
    pub proto4: usize,
    /// `STORED` was received.
    pub stored: bool,
    /// An error line (`ERROR`, `CLIENT_ERROR ..`, `SERVER_ERROR ..`) or anything unexpected.
    pub error: bool,
    /// The first 80 bytes of that line (empty when there was none).
    pub error_line: String,
}

/// Outcome of parsing the front of a buffer.
#[derive(Debug, PartialEq, Eq)]
pub enum Parsed {
    /// A whole reply and the bytes it used.
    Complete { reply: Reply, consumed: usize },
    /// More bytes are needed.
    Incomplete,
}

/// Finds the first `\r\n` at or after `from`; returns the index of `\r`.
fn line_end(buf: &[u8], from: usize) -> Option<usize> {
    buf.get(from..)?
        .windows(2)
        .position(|w| w == b"\r\n")
        .map(|p| from + p)
}

/// Parses one reply from the front of `buf`. A get reply runs to `END`; any other reply is one
/// line. `value_len` is the expected data length, if fixed.
pub fn parse(buf: &[u8], value_len: Option<usize>) -> Parsed {
    let mut reply = Reply::default();
    let mut pos = 0;
    loop {
        let Some(end) = line_end(buf, pos) else {
            return Parsed::Incomplete;
        };
        let line = &buf[pos..end];
        let next = end + 2;
        if line == b"END" {
            return Parsed::Complete {
                reply,
                consumed: next,
            };
        }
        if line == b"STORED" && pos == 0 {
            reply.stored = true;
            return Parsed::Complete {
                reply,
                consumed: next,
            };
        }
        let Some(n) = value_header_len(line) else {
            // An error line or something this generator never asks for: one line, counted.
            reply.error = true;
            reply.error_line = String::from_utf8_lossy(&line[..line.len().min(80)]).into_owned();
            return Parsed::Complete {
                reply,
                consumed: next,
            };
        };
        let data_end = next + n;
        if buf.len() < data_end + 2 {
            return Parsed::Incomplete;
        }
        if &buf[data_end..data_end + 2] != b"\r\n" {
            reply.error = true;
            return Parsed::Complete {
                reply,
                consumed: data_end,
            };
        }
        reply.values += 1;
        if value_len.is_some_and(|want| want != n) {
            reply.wrong_len += 1;
        }
        if buf[next..data_end].starts_with(&[0x80, 0x04]) {
            reply.proto4 += 1;
        }
        pos = data_end + 2;
    }
}

/// The `<bytes>` field of a `VALUE <key> <flags> <bytes> [<cas>]` line.
fn value_header_len(line: &[u8]) -> Option<usize> {
    let rest = line.strip_prefix(b"VALUE ")?;
    let mut fields = rest.split(|&b| b == b' ');
    let (_key, _flags) = (fields.next()?, fields.next()?);
    std::str::from_utf8(fields.next()?).ok()?.parse().ok()
}

/// Self-checks run by the smoke mode: every strict prefix is incomplete, the whole is complete,
/// pipelined replies split correctly, error lines are counted.
pub fn self_check() {
    let get: &[u8] = b"VALUE k1 0 5\r\nhello\r\nVALUE k2 1 3 99\r\n\x80\x04.\r\nEND\r\n";
    for i in 0..get.len() {
        assert_eq!(parse(&get[..i], None), Parsed::Incomplete, "prefix {i}");
    }
    let Parsed::Complete { reply, consumed } = parse(get, Some(5)) else {
        panic!("complete get reply not parsed");
    };
    assert_eq!(consumed, get.len());
    assert_eq!((reply.values, reply.wrong_len, reply.proto4), (2, 1, 1));
    let mut piped = b"STORED\r\n".to_vec();
    piped.extend_from_slice(b"END\r\nSERVER_ERROR out of memory\r\nEND\r\n");
    let mut pos = 0;
    let mut seen = Vec::new();
    for _ in 0..4 {
        let Parsed::Complete { reply, consumed } = parse(&piped[pos..], None) else {
            panic!("pipelined reply at {pos} incomplete");
        };
        seen.push((reply.stored, reply.values, reply.error));
        pos += consumed;
    }
    assert_eq!(pos, piped.len());
    let want = [
        (true, 0, false),
        (false, 0, false),
        (false, 0, true),
        (false, 0, false),
    ];
    assert_eq!(seen, want);
}
