//! Meta commands: mg / ms / md / ma / me (mn is [`crate::protocol::Request::MetaNoop`]).
//!
//! protocol.txt: `mg <key> <flags>*\r\n`, `ms <key> <datalen> <flags>*\r\n<data>\r\n`,
//! `md <key> <flags>*\r\n`, `ma <key> <flags>*\r\n`, `me <key>\r\n`.
//!
//! Forwarding strategy: line-level errors memcached decides without the item (missing key, key
//! over 250 bytes, more than 20 tokens, bad `ms` datalen, data blocks too large or not ending in
//! CRLF) are rejected locally with memcached's exact line. Flag errors are left to the upstream,
//! which answers them byte for byte; to keep that exact, `q` is stripped only from requests
//! whose flags pass memcached's `_meta_flag_preparse` (emulated here), because memcached
//! reports flag errors even under `q` but a stripped duplicate `q` would hide one.
//! Quiet mode hides `EN` for mg, `HD` for ms/md, `HD`/`VA` for ma (1.6.18: `NF`, `NS`, `EX`
//! are shown), except an `ma` that creates its item (`N`), whose reply memcached shows: such
//! an `ma` keeps its `q` and goes upstream followed by `mn` ([`Meta::fenced`]).

use bytes::{BufMut, Bytes, BytesMut};

use crate::protocol::error::{Reject, BAD_DATA_CHUNK, BAD_FORMAT, ERROR, TOO_LARGE};
use crate::protocol::token::{put_i32, put_u64, strtol, strtoul, strtoull, Line};
use crate::protocol::{item_too_large, Limits, Parsed, Request, Src, MAX_UPSTREAM_LINE};

/// memcached `MFLAG_MAX_OPT_LENGTH`: more tokens than this is an error.
pub const MAX_META_TOKENS: usize = 20;
/// memcached `MFLAG_MAX_OPAQUE_LENGTH`.
const MAX_OPAQUE_LEN: usize = 32;

/// The proxy's reply to a request whose reply would echo a key with CR or LF
/// (`echoes_unframable_key`); memcached has no such error.
pub const UNFRAMABLE_KEY: &str =
    "CLIENT_ERROR a key with CR or LF cannot be echoed through the proxy";

/// Whether a request's reply would echo a base64 (`b`) key that decodes to bytes with CR or LF:
/// the `k` flag of mg/ms/md/ma, and `me` always. memcached echoes a key stored through its
/// binary protocol raw, and such a reply line ends inside the key, where the proxy, framing by
/// CRLF on an upstream connection other clients share, would hand the rest to the next
/// request. An ASCII key (no `b`) cannot hold CR or LF.
fn echoes_unframable_key(cmd: MetaCmd, key: &[u8], flags: &[&[u8]]) -> bool {
    let has = |c: u8| flags.iter().any(|f| f.first() == Some(&c));
    has(b'b')
        && (cmd == MetaCmd::Debug || has(b'k'))
        && base64_decode(key).is_some_and(|k| k.iter().any(|&b| b == b'\r' || b == b'\n'))
}

/// Which meta command.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum MetaCmd {
    /// mg: meta get.
    Get,
    /// ms: meta set (with a data block).
    Set,
    /// md: meta delete.
    Delete,
    /// ma: meta arithmetic.
    Arith,
    /// me: meta debug.
    Debug,
}

impl MetaCmd {
    /// The two-letter command word.
    pub fn as_str(self) -> &'static str {
        match self {
            MetaCmd::Get => "mg",
            MetaCmd::Set => "ms",
            MetaCmd::Delete => "md",
            MetaCmd::Arith => "ma",
            MetaCmd::Debug => "me",
        }
    }
}

/// A meta request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Meta {
    /// The command.
    pub cmd: MetaCmd,
    /// The key token as sent (base64 when a `b` flag is present).
    pub key: Bytes,
    /// Flag tokens in order, `q` removed when [`Meta::quiet`].
    pub flags: Vec<Bytes>,
    /// The client sent `q`: nominal replies are hidden from it (see module docs).
    pub quiet: bool,
    /// `ma` with `q` and `N`: memcached shows the reply of an item it created and hides the
    /// one of an item that existed, which the reply alone does not tell apart. Forwarded with
    /// its `q` and an `mn` after it; the reply is whatever comes before `MN` (maybe nothing).
    pub fenced: bool,
    /// ms: the data block without CRLF; compose writes its length.
    pub data: Option<Bytes>,
}

impl Meta {
    /// True when the key is base64 (`b` flag).
    pub fn binary_key(&self) -> bool {
        self.flags.iter().any(|f| f.first() == Some(&b'b'))
    }

    /// The key as stored by memcached: base64-decoded for `b` keys (None if undecodable).
    pub fn decoded_key(&self) -> Option<Bytes> {
        if self.binary_key() {
            base64_decode(&self.key).map(Bytes::from)
        } else {
            Some(self.key.clone())
        }
    }
}

/// Parses `m<c> ...` (dispatch matched a two-byte command starting with `m`).
pub(crate) fn parse(
    src: Src<'_>,
    line: &Line,
    line_len: usize,
    c: u8,
    limits: &Limits,
) -> Parsed<Request> {
    let buf = src.buf;
    let done = |value: Request, consumed: usize| Parsed::Complete { value, consumed };
    let reject = |reply: &'static str| done(Request::Reject(Reject::line(reply)), line_len);
    let cmd = match c {
        b'g' => MetaCmd::Get,
        b's' => MetaCmd::Set,
        b'd' => MetaCmd::Delete,
        b'a' => MetaCmd::Arith,
        b'e' => MetaCmd::Debug,
        b'n' => return done(Request::MetaNoop, line_len),
        _ => return reject(ERROR),
    };
    let nt = line.ntokens();
    let key = line.token(buf, 1);
    if cmd == MetaCmd::Debug {
        if nt < 3 || key.len() > limits.max_key_len {
            return reject(BAD_FORMAT);
        }
        let (ks, ke) = line.tokens()[1];
        let flag_toks: Vec<&[u8]> = line.tokens()[2..]
            .iter()
            .map(|&(s, e)| &buf[s..e])
            .collect();
        if echoes_unframable_key(cmd, key, &flag_toks) {
            return reject(UNFRAMABLE_KEY);
        }
        let meta = Meta {
            cmd,
            key: src.slice(ks, ke),
            flags: src.slices(&line.tokens()[2..]),
            quiet: false,
            fenced: false,
            data: None,
        };
        return done(Request::Meta(meta), line_len);
    }
    if nt < 3 {
        return reject(ERROR);
    }
    if key.len() > limits.max_key_len || (cmd == MetaCmd::Set && nt == 3) {
        return reject(BAD_FORMAT);
    }
    if nt > MAX_META_TOKENS {
        return reject(match cmd {
            MetaCmd::Get => "CLIENT_ERROR options flags are too long",
            _ => "CLIENT_ERROR options flags too long",
        });
    }
    let first_flag = if cmd == MetaCmd::Set { 3 } else { 2 };
    let flag_toks: Vec<&[u8]> = line.tokens()[first_flag..]
        .iter()
        .map(|&(s, e)| &buf[s..e])
        .collect();
    let preparse_ok = preparse(cmd, key, &flag_toks).is_none();
    let quiet = preparse_ok && flag_toks.iter().any(|f| f[0] == b'q');
    let fenced = quiet && cmd == MetaCmd::Arith && flag_toks.iter().any(|f| f[0] == b'N');
    let flags = src.slices(
        line.tokens()[first_flag..]
            .iter()
            .filter(|&&(s, _)| !(quiet && !fenced && buf[s] == b'q')),
    );
    let (ks, ke) = line.tokens()[1];
    let mut meta = Meta {
        cmd,
        key: src.slice(ks, ke),
        flags,
        quiet,
        fenced,
        data: None,
    };
    let unframable = preparse_ok && echoes_unframable_key(cmd, key, &flag_toks);
    if cmd != MetaCmd::Set {
        if unframable {
            return reject(UNFRAMABLE_KEY);
        }
        return done(Request::Meta(meta), line_len);
    }
    let vlen = match strtol(line.token(buf, 2)) {
        Some(v) if (0..=i32::MAX - 2).contains(&v) => v as usize,
        _ => return reject(BAD_FORMAT),
    };
    // The item holds the decoded key (`b`) and the client flags (`F`).
    let nkey = if flag_toks.iter().any(|f| f[0] == b'b') {
        base64_decode(key).map_or(key.len(), |k| k.len())
    } else {
        key.len()
    };
    let client_flags = flag_toks
        .iter()
        .find(|f| f[0] == b'F')
        .and_then(|f| strtoul(&f[1..]))
        .unwrap_or(0);
    if item_too_large(limits, nkey, client_flags, vlen) {
        let reply = ms_line_error(key, &flag_toks).unwrap_or(TOO_LARGE);
        // memcached unlinks the key on a failed allocation in every ms mode, but only when
        // the line itself was valid (a flag error jumps past the allocation).
        let unlink = (reply == TOO_LARGE).then(|| {
            Box::new(Request::Meta(Meta {
                cmd: MetaCmd::Delete,
                key: meta.key.clone(),
                flags: meta
                    .flags
                    .iter()
                    .filter(|f| f.first() == Some(&b'b'))
                    .cloned()
                    .collect(),
                quiet: false,
                fenced: false,
                data: None,
            }))
        });
        let reject = Reject {
            reply: Some(reply),
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
        let reply = ms_line_error(key, &flag_toks).unwrap_or(BAD_DATA_CHUNK);
        return done(Request::Reject(Reject::line(reply)), total);
    }
    if unframable {
        return done(Request::Reject(Reject::line(UNFRAMABLE_KEY)), total);
    }
    meta.data = Some(src.slice(line_len, line_len + vlen));
    done(Request::Meta(meta), total)
}

/// `_meta_flag_preparse`: the error line memcached sends for these flags, if any.
fn preparse(cmd: MetaCmd, key: &[u8], flags: &[&[u8]]) -> Option<&'static str> {
    let mut seen = [false; 127];
    let mut err: Option<&'static str> = None;
    let mut errstr = BAD_FORMAT;
    let mut fail = |msg: Option<&'static str>, errstr: &mut &'static str| {
        if let Some(m) = msg {
            *errstr = m;
        }
        err = Some(*errstr);
    };
    for f in flags {
        let o = f[0];
        if o >= 127 || seen[o as usize] {
            return Some(flag_error(cmd, "CLIENT_ERROR duplicate flag"));
        }
        seen[o as usize] = true;
        let arg = &f[1..];
        let bad_token = Some("CLIENT_ERROR bad token in command line format");
        match o {
            b'b' if base64_decode(key).is_none() => {
                fail(Some("CLIENT_ERROR error decoding key"), &mut errstr)
            }
            b'N' | b'T' | b'R' if strtol(arg).is_none() => fail(bad_token, &mut errstr),
            b'F' if strtoul(arg).is_none() => fail(None, &mut errstr),
            b'C' if strtoull(arg).is_none() => fail(bad_token, &mut errstr),
            b'M' if f.len() != 2 => fail(
                Some("CLIENT_ERROR incorrect length for M token"),
                &mut errstr,
            ),
            b'J' if strtoull(arg).is_none() => fail(
                Some("CLIENT_ERROR invalid numeric initial value"),
                &mut errstr,
            ),
            b'D' if strtoull(arg).is_none() => fail(
                Some("CLIENT_ERROR invalid numeric delta value"),
                &mut errstr,
            ),
            b'b' | b'N' | b'T' | b'R' | b'F' | b'C' | b'M' | b'J' | b'D' => {}
            b'l' | b'O' | b'P' | b'L' | b'k' | b's' | b't' | b'c' | b'f' | b'v' | b'h' | b'u'
            | b'q' | b'I' => {}
            _ => return Some(flag_error(cmd, "CLIENT_ERROR invalid flag")),
        }
    }
    err.map(|e| flag_error(cmd, e))
}

/// md and ma replace every preparse error with one message.
fn flag_error(cmd: MetaCmd, msg: &'static str) -> &'static str {
    match cmd {
        MetaCmd::Delete | MetaCmd::Arith => "CLIENT_ERROR invalid or duplicate flag",
        _ => msg,
    }
}

/// The error memcached sends for an `ms` line before reading its data, if any.
fn ms_line_error(key: &[u8], flags: &[&[u8]]) -> Option<&'static str> {
    if let Some(e) = preparse(MetaCmd::Set, key, flags) {
        return Some(e);
    }
    let mode = flags
        .iter()
        .find(|f| f[0] == b'M')
        .and_then(|f| f.get(1).copied());
    if mode.is_some_and(|m| !matches!(m, b'E' | b'A' | b'P' | b'R' | b'S')) {
        return Some("CLIENT_ERROR invalid mode for ms M token");
    }
    if flags
        .iter()
        .any(|f| f[0] == b'O' && f.len() > MAX_OPAQUE_LEN)
    {
        return Some("CLIENT_ERROR opaque token too long");
    }
    None
}

/// Base64 as memcached decodes keys: characters outside the alphabet are skipped, the count of
/// alphabet characters must be a non-zero multiple of 4, `=` pads the last group.
pub(crate) fn base64_decode(src: &[u8]) -> Option<Vec<u8>> {
    fn val(c: u8) -> Option<u8> {
        match c {
            b'A'..=b'Z' => Some(c - b'A'),
            b'a'..=b'z' => Some(c - b'a' + 26),
            b'0'..=b'9' => Some(c - b'0' + 52),
            b'+' => Some(62),
            b'/' => Some(63),
            b'=' => Some(0),
            _ => None,
        }
    }
    let chars: Vec<u8> = src.iter().copied().filter(|&c| val(c).is_some()).collect();
    if chars.is_empty() || chars.len() % 4 != 0 {
        return None;
    }
    let mut out = Vec::with_capacity(chars.len() / 4 * 3);
    for group in chars.chunks(4) {
        let pad = group.iter().filter(|&&c| c == b'=').count();
        let v: u32 = group
            .iter()
            .fold(0, |acc, &c| (acc << 6) | u32::from(val(c).unwrap_or(0)));
        let bytes = [(v >> 16) as u8, (v >> 8) as u8, v as u8];
        match pad {
            0 => out.extend_from_slice(&bytes),
            1 => out.extend_from_slice(&bytes[..2]),
            2 => out.push(bytes[0]),
            _ => return None,
        }
        if pad > 0 {
            break;
        }
    }
    Some(out)
}

/// `mg k v f\r\n`, `ms k 5 T0\r\nhello\r\n` (`q` already removed when quiet, but for a
/// fenced `ma`, which is followed by `mn\r\n`). The flags go as sent, unless the line would
/// be longer than [`MAX_UPSTREAM_LINE`]: then each is written short, read the same way
/// ([`put_short_flag`]).
pub(crate) fn compose(m: &Meta, dst: &mut BytesMut) {
    let data_len = m.data.as_ref().map_or(0, Bytes::len);
    let line_len = line_len(m);
    // Room for all of it at once: the line, the data and its CRLF, a fence's `mn`.
    dst.reserve(line_len + data_len + 8);
    put_line(m, line_len, dst);
    if let Some(data) = &m.data {
        dst.put_slice(data);
        dst.put_slice(b"\r\n");
    }
    if m.fenced {
        dst.put_slice(b"mn\r\n");
    }
}

/// The most bytes `m`'s request line takes as sent: "ms <key> <size>" with the size's 10
/// digits at most, the flags, CRLF.
fn line_len(m: &Meta) -> usize {
    let flags_len = m.flags.iter().map(|f| f.len() + 1).sum::<usize>();
    3 + m.key.len() + 11 + flags_len + 2
}

/// The request line of [`compose`], without the data block (nor a fenced request's `mn`).
pub(crate) fn compose_line(m: &Meta, dst: &mut BytesMut) {
    let line_len = line_len(m);
    dst.reserve(line_len);
    put_line(m, line_len, dst);
}

/// Writes the request line, `line_len` being its [`line_len`] (room for it already reserved).
fn put_line(m: &Meta, line_len: usize, dst: &mut BytesMut) {
    let data_len = m.data.as_ref().map_or(0, Bytes::len);
    let shorten = line_len > MAX_UPSTREAM_LINE;
    dst.put_slice(m.cmd.as_str().as_bytes());
    dst.put_u8(b' ');
    dst.put_slice(&m.key);
    if m.cmd == MetaCmd::Set {
        dst.put_u8(b' ');
        put_u64(dst, data_len as u64);
    }
    for f in &m.flags {
        dst.put_u8(b' ');
        if shorten {
            put_short_flag(f, dst);
        } else {
            dst.put_slice(f);
        }
    }
    dst.put_slice(b"\r\n");
}

/// Writes flag `f` in at most 33 bytes that memcached reads as it reads `f`: a number flag's
/// argument in decimal as `_meta_flag_preparse` parses it (`x` when it does not parse: the
/// same error, which depends only on the flag), `O` kept up to one byte past the opaque limit
/// (echoed when valid; the error only compares its length), and any other flag cut to three
/// bytes: `M` is checked for length 2, `me` compares its first flag with `b`, and the other
/// flags' arguments are never read.
fn put_short_flag(f: &[u8], dst: &mut BytesMut) {
    let (o, arg) = (f[0], &f[1..]);
    let parsed = match o {
        b'N' | b'T' | b'R' => strtol(arg).map(|v| {
            dst.put_u8(o);
            put_i32(dst, v);
        }),
        b'F' => strtoul(arg).map(|v| {
            dst.put_u8(o);
            put_u64(dst, u64::from(v));
        }),
        b'C' | b'J' | b'D' => strtoull(arg).map(|v| {
            dst.put_u8(o);
            put_u64(dst, v);
        }),
        b'O' => return dst.put_slice(&f[..f.len().min(MAX_OPAQUE_LEN + 1)]),
        _ => return dst.put_slice(&f[..f.len().min(3)]),
    };
    if parsed.is_none() {
        dst.put_slice(&[o, b'x']);
    }
}

#[cfg(test)]
mod tests;
