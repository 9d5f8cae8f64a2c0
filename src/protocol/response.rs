//! Upstream replies: framed by the request they answer, composed back for the client.
//!
//! protocol.txt: a retrieval reply is `VALUE <key> <flags> <bytes> [<cas unique>]\r\n<data
//! block>\r\n` repeated, then `END\r\n`; `mg`/`ma` with `v` answer `VA <size> <flags>*\r\n
//! <data>\r\n`; stats answer `STAT ...` lines up to `END`; everything else is one line,
//! including `ERROR`, `CLIENT_ERROR <msg>` and `SERVER_ERROR <msg>` for any command.

use bytes::{BufMut, Bytes, BytesMut};

use crate::protocol::error::ProtocolError;
use crate::protocol::token::put_u64;
use crate::protocol::{MetaCmd, Parsed, Request, Src};

/// Longest single reply line accepted before the upstream is declared broken.
const MAX_REPLY_LINE: usize = 64 * 1024;
/// Largest key dump accepted (memcached 1.6.18 cuts `stats cachedump` at 2 MiB; `stats detail
/// dump` has one line per key prefix).
const MAX_DUMP: usize = 64 * 1024 * 1024;
/// Largest data block accepted in a reply (memcached's own bound on item sizes).
const MAX_REPLY_VALUE: usize = i32::MAX as usize;

/// One `VALUE` block of a retrieval reply.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Value {
    /// The key.
    pub key: Bytes,
    /// Client flags.
    pub flags: u32,
    /// The cas unique (gets/gats).
    pub cas: Option<u64>,
    /// The data block without CRLF; compose writes its (possibly new) length.
    pub data: Bytes,
}

/// An upstream reply.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Response {
    /// Retrieval reply: zero or more values, then `END`.
    Values(Vec<Value>),
    /// `VA <size><flags>` with its data block (mg, ma with `v`).
    MetaValue {
        /// The header after the size, with its leading space (`" f0 c44"`), or empty.
        flags: Bytes,
        /// The data block without CRLF.
        data: Bytes,
    },
    /// A single line without CRLF (`STORED`, `HD c5`, `42`, `CLIENT_ERROR ...`).
    Line(Bytes),
    /// A multi-line block sent verbatim, terminator included (stats).
    Block(Bytes),
}

impl Request {
    /// Whether the client gets to see `resp`: false for every reply to a `noreply` request,
    /// and for the nominal replies a meta `q` hides: `EN` for mg, `HD` for ms/md, and any
    /// success (`HD` or `VA`) for ma (memcached 1.6.18 skips the whole `OK` branch of ma).
    pub fn client_sees(&self, resp: &Response) -> bool {
        if self.noreply() {
            return false;
        }
        let Request::Meta(m) = self else {
            return true;
        };
        if !m.quiet {
            return true;
        }
        let line = match resp {
            Response::Line(line) => line,
            Response::MetaValue { .. } => return m.cmd != MetaCmd::Arith,
            _ => return true,
        };
        let code: &[u8] = match m.cmd {
            MetaCmd::Get => b"EN",
            MetaCmd::Set | MetaCmd::Delete | MetaCmd::Arith => b"HD",
            MetaCmd::Debug => return true,
        };
        !(line.starts_with(code) && (line.len() == 2 || line[2] == b' '))
    }
}

/// Parses the reply to `req` from the start of `buf`.
///
/// # Errors
/// [`ProtocolError::BadResponse`] when the bytes cannot be a memcached reply to `req`
/// (including any reply to `quit` or to a locally rejected request).
pub fn parse_response(req: &Request, buf: &Bytes) -> Result<Parsed<Response>, ProtocolError> {
    parse_src(
        req,
        Src {
            buf,
            bytes: Some(buf),
        },
    )
}

/// Parses the reply to `req` from a read buffer, splitting the consumed bytes off (zero-copy).
///
/// # Errors
/// As [`parse_response`].
pub fn parse_response_buf(
    req: &Request,
    buf: &mut BytesMut,
) -> Result<Option<Response>, ProtocolError> {
    let consumed = match parse_src(req, Src { buf, bytes: None })? {
        Parsed::Incomplete => return Ok(None),
        Parsed::Complete { consumed, .. } => consumed,
    };
    let frame = buf.split_to(consumed).freeze();
    match parse_response(req, &frame)? {
        Parsed::Complete { value, .. } => Ok(Some(value)),
        Parsed::Incomplete => Err(bad(consumed, "reply framing changed")),
    }
}

fn bad(offset: usize, what: &'static str) -> ProtocolError {
    ProtocolError::BadResponse { offset, what }
}

/// The line starting at `pos`: `(content_end, next_pos)`, CRLF required.
fn line_at(buf: &[u8], pos: usize) -> Result<Option<(usize, usize)>, ProtocolError> {
    match buf[pos..].iter().position(|&b| b == b'\n') {
        Some(i) if i > 0 && buf[pos + i - 1] == b'\r' => Ok(Some((pos + i - 1, pos + i + 1))),
        Some(_) => Err(bad(pos, "reply line not terminated by CRLF")),
        None if buf.len() - pos > MAX_REPLY_LINE => Err(bad(pos, "reply line too long")),
        None => Ok(None),
    }
}

/// Where the size token of a `VA <size> <flags>*` line ends (counted after `VA `), and the data
/// size it gives.
fn va_size(line: &[u8]) -> Result<(usize, usize), ProtocolError> {
    let head = &line[3..];
    let size_end = head.iter().position(|&b| b == b' ').unwrap_or(head.len());
    let len = number(&head[..size_end]).ok_or_else(|| bad(3, "bad VA size"))?;
    let len = usize::try_from(len).map_err(|_| bad(3, "bad VA size"))?;
    Ok((size_end, len))
}

/// Canonical unsigned decimal, as memcached prints numbers (no sign, no leading zeros), so
/// that a parsed reply composes back to the same bytes.
fn number(tok: &[u8]) -> Option<u64> {
    if tok.is_empty() || tok.len() > 20 || !tok.iter().all(u8::is_ascii_digit) {
        return None;
    }
    if tok.len() > 1 && tok[0] == b'0' {
        return None;
    }
    std::str::from_utf8(tok).ok()?.parse().ok()
}

/// Data block of `len` bytes at `pos` followed by CRLF: `Some(next_pos)`, None if short.
fn data_at(buf: &[u8], pos: usize, len: usize) -> Result<Option<usize>, ProtocolError> {
    if len > MAX_REPLY_VALUE {
        return Err(bad(pos, "value length out of range"));
    }
    let end = pos + len + 2;
    if buf.len() < end {
        return Ok(None);
    }
    if &buf[pos + len..end] != b"\r\n" {
        return Err(bad(pos + len, "data block not terminated by CRLF"));
    }
    Ok(Some(end))
}

fn parse_src(req: &Request, src: Src<'_>) -> Result<Parsed<Response>, ProtocolError> {
    if let Request::Stats(s) = req {
        if s.dumps_keys() {
            return parse_dump(src);
        }
    }
    let buf = src.buf;
    let Some((end, next)) = line_at(buf, 0)? else {
        return Ok(Parsed::Incomplete);
    };
    let line = &buf[..end];
    let single = || Parsed::Complete {
        value: Response::Line(src.slice(0, end)),
        consumed: next,
    };
    match req {
        Request::Quit | Request::Reject(_) => Err(bad(0, "no reply expected")),
        // Whatever memcached sent before the `MN` of the `mn` behind it (nothing, one line, or
        // `VA` and its number), verbatim; the `MN` is consumed with it.
        Request::Meta(m) if m.fenced => {
            let reply_end = if line == b"MN" {
                0
            } else if line.starts_with(b"VA ") {
                let (_, len) = va_size(line)?;
                match data_at(buf, next, len)? {
                    None => return Ok(Parsed::Incomplete),
                    Some(after) => after,
                }
            } else {
                next
            };
            let Some((mn_end, after)) = line_at(buf, reply_end)? else {
                return Ok(Parsed::Incomplete);
            };
            if &buf[reply_end..mn_end] != b"MN" {
                return Err(bad(reply_end, "expected MN after a fenced ma"));
            }
            Ok(Parsed::Complete {
                value: Response::Block(src.slice(0, reply_end)),
                consumed: after,
            })
        }
        Request::Retrieval(r) if line == b"END" || line.starts_with(b"VALUE ") => {
            parse_values(src, r.keys.len())
        }
        Request::Meta(m)
            if matches!(m.cmd, MetaCmd::Get | MetaCmd::Arith) && line.starts_with(b"VA ") =>
        {
            let (size_end, len) = va_size(line)?;
            Ok(match data_at(buf, next, len)? {
                None => Parsed::Incomplete,
                Some(consumed) => Parsed::Complete {
                    value: Response::MetaValue {
                        flags: src.slice(3 + size_end, end),
                        data: src.slice(next, next + len),
                    },
                    consumed,
                },
            })
        }
        // memcached 1.6.18 answers these without END: `STAT sizes_status enabled|disabled`,
        // or `STAT sizes_status error` and a `STAT sizes_error <why>` line
        // (items.c, item_stats_sizes_enable/disable). Read as `STAT ... END`, the next
        // request's reply would be taken as their end.
        Request::Stats(s) if s.toggles_sizes() && line.starts_with(b"STAT ") => {
            if line != b"STAT sizes_status error" {
                return Ok(Parsed::Complete {
                    value: Response::Block(src.slice(0, next)),
                    consumed: next,
                });
            }
            Ok(match line_at(buf, next)? {
                None => Parsed::Incomplete,
                Some((_, after)) => Parsed::Complete {
                    value: Response::Block(src.slice(0, after)),
                    consumed: after,
                },
            })
        }
        Request::Stats(_)
            if line == b"END"
                || line.starts_with(b"STAT ")
                || line.starts_with(b"ITEM ")
                || line.starts_with(b"PREFIX ") =>
        {
            let mut pos = 0;
            loop {
                let Some((end, next)) = line_at(buf, pos)? else {
                    return Ok(Parsed::Incomplete);
                };
                if &buf[pos..end] == b"END" {
                    return Ok(Parsed::Complete {
                        value: Response::Block(src.slice(0, next)),
                        consumed: next,
                    });
                }
                pos = next;
            }
        }
        _ => Ok(single()),
    }
}

/// A key dump (`stats cachedump`, `stats detail dump`): `ITEM <key> ...` or `PREFIX <prefix>
/// ...` lines up to the first `END` line, verbatim, or one line (an error). A key stored through
/// the binary protocol is listed raw and may hold CR, LF, even `END` lines: the block ends at
/// the first `END\r\n` at the start of the reply or after an LF, where a client reading
/// memcached line by line stops too. Such a reply is read on a connection of its own
/// ([`crate::upstream::Server::send_alone`]), dropped after it with whatever followed.
fn parse_dump(src: Src<'_>) -> Result<Parsed<Response>, ProtocolError> {
    let buf = src.buf;
    let Some(first_lf) = buf.iter().position(|&b| b == b'\n') else {
        return match buf.len() > MAX_REPLY_LINE {
            true => Err(bad(0, "reply line too long")),
            false => Ok(Parsed::Incomplete),
        };
    };
    let listing = buf.starts_with(b"ITEM ") || buf.starts_with(b"PREFIX ");
    if !listing && !buf.starts_with(b"END\r\n") {
        let Some((end, next)) = line_at(buf, 0)? else {
            return Ok(Parsed::Incomplete);
        };
        return Ok(Parsed::Complete {
            value: Response::Line(src.slice(0, end)),
            consumed: next,
        });
    }
    let mut pos = 0;
    let mut lf = Some(first_lf);
    loop {
        if buf[pos..].starts_with(b"END\r\n") {
            let consumed = pos + 5;
            return Ok(Parsed::Complete {
                value: Response::Block(src.slice(0, consumed)),
                consumed,
            });
        }
        match lf {
            Some(i) => pos = i + 1,
            None if buf.len() > MAX_DUMP => return Err(bad(pos, "key dump too long")),
            None => return Ok(Parsed::Incomplete),
        }
        lf = buf[pos..].iter().position(|&b| b == b'\n').map(|i| pos + i);
    }
}

/// How much of a streamed reply can go on to the client ([`metadump_cut`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StreamCut {
    /// Bytes at the front that are complete lines of the reply.
    pub len: usize,
    /// Whether they end the reply.
    pub ends: bool,
}

/// Frames the reply to `lru_crawler metadump <classes>`, given the bytes not yet passed on
/// (`buf`, which starts at a line start) and whether none were (`first`). memcached 1.6.18
/// answers one line (`BADCLASS invalid class id`, `BUSY currently processing crawler request`,
/// `ERROR metadump not allowed`, `CLIENT_ERROR lru crawler disabled`, ...), or `key=<url-encoded
/// key> exp=... la=...` lines ended by a bare LF, then `END\r\n`. Keys are URL-encoded there,
/// so no key can make an `END` line. Complete lines are passed on as they come.
///
/// # Errors
/// A first line that is neither a listing nor a CRLF-terminated line, or a line past
/// `MAX_REPLY_LINE` without its LF.
pub fn metadump_cut(buf: &[u8], first: bool) -> Result<StreamCut, ProtocolError> {
    let mut pos = 0;
    while let Some(i) = buf[pos..].iter().position(|&b| b == b'\n') {
        let next = pos + i + 1;
        let line = &buf[pos..next];
        let single = first && pos == 0 && !line.starts_with(b"key=");
        if line == b"END\r\n" || single {
            if !line.ends_with(b"\r\n") {
                return Err(bad(pos, "reply line not terminated by CRLF"));
            }
            return Ok(StreamCut {
                len: next,
                ends: true,
            });
        }
        pos = next;
    }
    if buf.len() - pos > MAX_REPLY_LINE {
        return Err(bad(pos, "reply line too long"));
    }
    Ok(StreamCut {
        len: pos,
        ends: false,
    })
}

/// Frames the reply to `watch [<events>]`: memcached 1.6.18 answers one line (`ERROR` for an
/// unknown event, `WATCHER_TOO_MANY log watcher limit reached`, `CLIENT_ERROR watch commands
/// not allowed`, ...), or `OK` and then log lines for as long as the connection lasts: after
/// `OK` every byte is passed on as it comes.
///
/// # Errors
/// A first line not terminated by CRLF, or longer than `MAX_REPLY_LINE`.
pub fn watch_cut(buf: &[u8], first: bool) -> Result<StreamCut, ProtocolError> {
    if !first {
        return Ok(StreamCut {
            len: buf.len(),
            ends: false,
        });
    }
    Ok(match line_at(buf, 0)? {
        None => StreamCut {
            len: 0,
            ends: false,
        },
        Some((end, next)) => StreamCut {
            len: next,
            ends: &buf[..end] != b"OK",
        },
    })
}

/// `VALUE` blocks up to `END`, for a request of `keys` keys (at most one value each, as
/// memcached answers: room for that many, up to a bound, so a multi-get's list grows once).
fn parse_values(src: Src<'_>, keys: usize) -> Result<Parsed<Response>, ProtocolError> {
    let buf = src.buf;
    // Allocated at the first value: a miss (`END` alone) allocates nothing.
    let mut values = Vec::new();
    let mut pos = 0;
    loop {
        let Some((end, next)) = line_at(buf, pos)? else {
            return Ok(Parsed::Incomplete);
        };
        let line = &buf[pos..end];
        if line == b"END" {
            return Ok(Parsed::Complete {
                value: Response::Values(values),
                consumed: next,
            });
        }
        let Some(header) = line.strip_prefix(b"VALUE ") else {
            return Err(bad(pos, "expected VALUE or END"));
        };
        let mut parts: [&[u8]; 4] = [&[]; 4];
        let mut n = 0;
        for part in header.split(|&b| b == b' ') {
            if n == 4 {
                return Err(bad(pos, "malformed VALUE line"));
            }
            parts[n] = part;
            n += 1;
        }
        if n < 3 || parts[0].is_empty() {
            return Err(bad(pos, "malformed VALUE line"));
        }
        let flags = number(parts[1])
            .and_then(|f| u32::try_from(f).ok())
            .ok_or_else(|| bad(pos, "bad VALUE flags"))?;
        let len = number(parts[2])
            .and_then(|l| usize::try_from(l).ok())
            .ok_or_else(|| bad(pos, "bad VALUE length"))?;
        let cas = match n {
            4 => Some(number(parts[3]).ok_or_else(|| bad(pos, "bad VALUE cas"))?),
            _ => None,
        };
        let Some(after) = data_at(buf, next, len)? else {
            return Ok(Parsed::Incomplete);
        };
        let key_start = pos + 6;
        if src.keeps() {
            if values.capacity() == 0 {
                values.reserve_exact(keys.clamp(1, 64));
            }
            values.push(Value {
                key: src.slice(key_start, key_start + parts[0].len()),
                flags,
                cas,
                data: src.slice(next, next + len),
            });
        }
        pos = after;
    }
}

/// The `VALUE` blocks of `values` for the client, then `END` when `end` (a retrieval the
/// connection split is one reply: `END` follows its last part only).
pub fn compose_values(values: &[Value], end: bool, dst: &mut BytesMut) {
    let size: usize = values.iter().map(|v| v.key.len() + v.data.len() + 64).sum();
    dst.reserve(size + 5);
    for v in values {
        dst.put_slice(b"VALUE ");
        dst.put_slice(&v.key);
        dst.put_u8(b' ');
        put_u64(dst, u64::from(v.flags));
        dst.put_u8(b' ');
        put_u64(dst, v.data.len() as u64);
        if let Some(cas) = v.cas {
            dst.put_u8(b' ');
            put_u64(dst, cas);
        }
        dst.put_slice(b"\r\n");
        dst.put_slice(&v.data);
        dst.put_slice(b"\r\n");
    }
    if end {
        dst.put_slice(b"END\r\n");
    }
}

/// Composes `resp` for the client. VALUE and VA headers carry the data's current length (and
/// an `s` flag of a VA header is updated with it); flags and cas are written unchanged.
pub fn compose_response(resp: &Response, dst: &mut BytesMut) {
    match resp {
        Response::Values(values) => compose_values(values, true, dst),
        Response::MetaValue { flags, data } => {
            dst.reserve(flags.len() + data.len() + 32);
            dst.put_slice(b"VA ");
            put_u64(dst, data.len() as u64);
            for tok in flags.split(|&b| b == b' ').filter(|t| !t.is_empty()) {
                dst.put_u8(b' ');
                if tok[0] == b's' && number(&tok[1..]).is_some() {
                    dst.put_u8(b's');
                    put_u64(dst, data.len() as u64);
                } else {
                    dst.put_slice(tok);
                }
            }
            dst.put_slice(b"\r\n");
            dst.put_slice(data);
            dst.put_slice(b"\r\n");
        }
        Response::Line(line) => {
            dst.reserve(line.len() + 2);
            dst.put_slice(line);
            dst.put_slice(b"\r\n");
        }
        Response::Block(block) => dst.put_slice(block),
    }
}

#[cfg(test)]
#[path = "response_tests.rs"]
mod tests;
