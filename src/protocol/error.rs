//! Protocol errors and locally answered requests.
//!
//! Two different things live here and must not be confused:
//! - [`Reject`]: a request memcached answers with an error line but survives (the connection
//!   stays open). It is a *value* of [`crate::protocol::Request`], never an `Err`.
//! - [`ProtocolError`]: conditions after which memcached closes the connection (request side),
//!   or an upstream reply that cannot be framed (response side).

use bytes::BufMut;

/// A request memcached rejects with a fixed reply while keeping the connection.
///
/// The proxy answers it locally: it discards `swallow` further bytes of client input (the data
/// block memcached swallows after e.g. `SERVER_ERROR object too large for cache`; they may not
/// have arrived yet), then writes `reply` (memcached writes the reply after swallowing).
///
/// When `side_effect` is set the proxy must also forward that request upstream, before the
/// reply, and discard its reply, whatever it is: what memcached did before it met the error.
/// memcached 1.6.18 deletes the existing item when a `set` (not add/replace/append/prepend/cas)
/// or any `ms` is too large ("Avoid stale data persisting in cache because we failed alloc"),
/// so the old value must not survive behind the proxy either; and a get/gets/gat/gats has
/// fetched (gat/gats: touched) its keys before one over 250 bytes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reject {
    /// The reply line without CRLF, or `None` when `noreply` suppresses it.
    pub reply: Option<&'static str>,
    /// Bytes of client input after the consumed request to discard unread.
    pub swallow: usize,
    /// A request to forward upstream with its reply discarded (a delete of the key, or the
    /// retrieval of the keys before a bad one).
    pub side_effect: Option<Box<crate::protocol::Request>>,
}

impl Reject {
    /// A rejection with `reply` shown, nothing swallowed.
    pub(crate) fn line(reply: &'static str) -> Reject {
        Reject {
            reply: Some(reply),
            swallow: 0,
            side_effect: None,
        }
    }

    /// A rejection whose reply is suppressed when `noreply` is set (memcached's `out_string`).
    pub(crate) fn unless_noreply(reply: &'static str, noreply: bool) -> Reject {
        Reject {
            reply: (!noreply).then_some(reply),
            swallow: 0,
            side_effect: None,
        }
    }

    /// Writes the exact reply memcached sends (nothing when suppressed).
    pub fn write_reply(&self, dst: &mut impl BufMut) {
        if let Some(line) = self.reply {
            dst.put_slice(line.as_bytes());
            dst.put_slice(b"\r\n");
        }
    }
}

/// `ERROR`: unknown command or wrong number of tokens.
pub const ERROR: &str = "ERROR";
/// memcached's generic bad-argument reply.
pub const BAD_FORMAT: &str = "CLIENT_ERROR bad command line format";
/// Storage data block not terminated by CRLF at the declared length.
pub const BAD_DATA_CHUNK: &str = "CLIENT_ERROR bad data chunk";
/// Value larger than the item size limit.
pub const TOO_LARGE: &str = "SERVER_ERROR object too large for cache";
/// Unparseable exptime in touch / gat / flush_all.
pub const BAD_EXPTIME: &str = "CLIENT_ERROR invalid exptime argument";
/// Unparseable incr/decr delta.
pub const BAD_DELTA: &str = "CLIENT_ERROR invalid numeric delta argument";
/// `delete k <anything but 0>`.
pub const DELETE_USAGE: &str =
    "CLIENT_ERROR bad command line format.  Usage: delete <key> [noreply]";
/// A multi-get with more keys than [`crate::protocol::Limits::max_keys_per_get`]; memcached
/// sends this line when it cannot build a get response.
pub const GET_TOO_BIG: &str = "SERVER_ERROR out of memory writing get response";

/// A connection-fatal protocol condition.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ProtocolError {
    /// No newline within `limit` bytes: memcached closes the connection without a reply. Also
    /// a stats or administration line longer than [`super::MAX_UPSTREAM_LINE`], which memcached
    /// closes the connection on when one read cuts it.
    #[error("request line longer than {limit} bytes")]
    LineTooLong {
        /// The limit that was exceeded.
        limit: usize,
    },
    /// An unknown command whose last token starts with `HTTP/` (`GET / HTTP/1.0`): memcached
    /// hangs up on it without a reply, taking it for a stray HTTP client.
    #[error("unknown command that looks like an HTTP request")]
    HttpRequest,
    /// An upstream reply that does not frame as a memcached reply to the request.
    #[error("malformed upstream reply at byte {offset}: {what}")]
    BadResponse {
        /// Offset into the reply buffer where framing failed.
        offset: usize,
        /// What was expected.
        what: &'static str,
    },
}

impl ProtocolError {
    /// Writes what memcached sends before closing: nothing for every request-side condition.
    pub fn write_reply(&self, _dst: &mut impl BufMut) {}

    /// A short, stable name for metrics labels.
    pub fn kind(&self) -> &'static str {
        match self {
            ProtocolError::LineTooLong { .. } => "line_too_long",
            ProtocolError::HttpRequest => "http_request",
            ProtocolError::BadResponse { .. } => "bad_response",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reject_writes_exact_line_or_nothing() {
        let mut out = Vec::new();
        Reject::line(ERROR).write_reply(&mut out);
        Reject::unless_noreply(BAD_FORMAT, true).write_reply(&mut out);
        Reject::unless_noreply(BAD_FORMAT, false).write_reply(&mut out);
        assert_eq!(out, b"ERROR\r\nCLIENT_ERROR bad command line format\r\n");
    }
}
