//! Values through the route policies: stores transcode by the route's store policy, fetches for
//! the listener's runtime; `observe` only analyzes and counts, `passthrough` neither rewrites nor
//! counts. In every mode the pickle firewall reads fetched pickles, unless it is `allow`.
//! Whatever happens, a value is forwarded either unchanged or completely rewritten.
use std::time::{Duration, Instant};

use bytes::{BufMut, Bytes, BytesMut};

use super::{Ctx, FlagsAsked};
use crate::config::{Config, Mode, OnUnreadable, StoreProtocol};
use crate::firewall::{FirewallMode, Judgement};
use crate::metrics::{Direction, FirewallAction, ReplyOutcome};
use crate::pickle::opcode::{info, ArgKind};
use crate::pickle::{ErrorKind, Policy, Runtime};
use crate::protocol::{
    client_flags, item_room, Meta, MetaCmd, Request, Response, StorageCmd, Value,
};
use crate::route::{Route, RouteTable};
use crate::server::Shared;
use crate::value::{
    convert_bare, transcode_value, Envelope, Flags, Mismatch, Refusal, ValueJob, ValueOutcome,
    ValueResult,
};

/// Runs one value through `policy`, one of the route's (`rewrite` false only analyzes), and
/// how long that took. Values whose flags say they are not pickles are not looked at, and no
/// clock is read for them (most values of many caches).
fn run(
    route: &Route,
    policy: &Policy,
    rewrite: bool,
    data: &Bytes,
    flags: u32,
    config: &Config,
    max_output: usize,
) -> (ValueResult, Duration) {
    let job = ValueJob {
        flags: route.flags,
        policy,
        rewrite,
        max_inflated: config.limits.max_inflated,
        max_output,
    };
    let pickled = route.flags.classify(Flags(flags)) != Envelope::Plain;
    let started = pickled.then(Instant::now);
    let r = transcode_value(data, Flags(flags), &job);
    (r, started.map_or(Duration::ZERO, |s| s.elapsed()))
}

/// Transcodes the data of a storage request by the route's store policy (`store_protocol = 2`:
/// downgraded so Py2 readers of memcached can load it). append/prepend and `ms` in append or
/// prepend mode go through untouched: they carry a fragment, not a pickle.
pub fn transcode_store(req: Request, route: &Route, shared: &Shared) -> Request {
    let config = &shared.config;
    let record = |r: &ValueResult, len, elapsed| {
        route
            .metrics
            .record(Direction::Store, Runtime::Py2, r, len, elapsed);
        if let ValueOutcome::Refused(refusal) = r.outcome {
            crate::telemetry::warn_refused(
                &shared.refusal_log,
                "store",
                &route.name,
                &key_prefix(&route.prefix),
                refusal.as_str(),
            );
        }
    };
    if route.mode == Mode::Passthrough {
        return req;
    }
    let rewrite = route.mode == Mode::Transcode && route.store == StoreProtocol::Two;
    // memcached counts its item header, the key, the flags, the CRLF and the cas against
    // `-I`: a rewrite that fits `item_size` only without them would be refused there, where
    // the original may fit. Such rewrites are not made. (An `ms` key is counted as sent, which
    // for a base64 key is more than memcached counts.)
    let item = |key: &[u8], flags: u32| item_room(config.limits.item_size, key.len(), flags);
    match req {
        Request::Storage(mut s) if !matches!(s.cmd, StorageCmd::Append | StorageCmd::Prepend) => {
            let max = item(&s.key, s.flags);
            let policy = route.store_policy();
            let (r, elapsed) = run(route, policy, rewrite, &s.data, s.flags, config, max);
            record(&r, s.data.len(), elapsed);
            if let ValueOutcome::Rewritten(new) = r.outcome {
                s.data = new;
            }
            Request::Storage(s)
        }
        Request::Meta(mut m) if m.cmd == MetaCmd::Set && !meta_appends(&m) => {
            let (Some(data), flags) = (m.data.clone(), meta_client_flags(&m.flags, b'F')) else {
                return Request::Meta(m);
            };
            let (r, elapsed) = run(
                route,
                route.store_policy(),
                rewrite,
                &data,
                flags.unwrap_or(0),
                config,
                item(&m.key, flags.unwrap_or(0)),
            );
            record(&r, data.len(), elapsed);
            if let ValueOutcome::Rewritten(new) = r.outcome {
                m.data = Some(new);
            }
            Request::Meta(m)
        }
        other => other,
    }
}

/// `ms` with mode `MA` (append) or `MP` (prepend).
fn meta_appends(m: &Meta) -> bool {
    m.flags
        .iter()
        .any(|f| f.len() == 2 && f[0] == b'M' && matches!(f[1], b'A' | b'a' | b'P' | b'p'))
}

/// The client flags in a meta flag token list (`F<n>` in ms requests, `f<n>` in replies), read
/// as memcached reads them (a number past 32 bits wraps, as for `set`).
fn meta_client_flags<T: AsRef<[u8]>>(
    flags: impl IntoIterator<Item = T>,
    letter: u8,
) -> Option<u32> {
    flags
        .into_iter()
        .find(|f| f.as_ref().first() == Some(&letter))
        .and_then(|f| client_flags(&f.as_ref()[1..]))
}

/// Whether a refused fetched value would fail to load in its reader (then `on_unreadable`
/// applies). Unparseable values are never guessed about: they go through.
fn unreadable(r: &ValueResult, reader: Runtime) -> bool {
    matches!(r.outcome, ValueOutcome::Refused(_))
        && r.summary
            .as_ref()
            .is_some_and(|s| Mismatch::of(s, reader).any(Mismatch::breaks_loading))
}

/// A value whose client flags the proxy could not learn (see `FlagsAsked::Unknowable`): served
/// as memcached returns it, unless it is a pickle the firewall blocks (it is read as one
/// whatever its flags; bytes that are not a pickle pass as they would for a non-pickle flag).
fn fetch_unflagged(ctx: &Ctx, route: &Route, data: Bytes) -> Option<Bytes> {
    if route.firewall.mode() == FirewallMode::Allow {
        return Some(data);
    }
    let config = &ctx.shared.config;
    let as_pickle = route.flags.pickle_mask;
    let (r, _) = run(
        route,
        route.policy(ctx.info.runtime),
        false,
        &data,
        as_pickle,
        config,
        usize::MAX,
    );
    firewall_passes(ctx, route, &r, &data).then_some(data)
}

/// Applies the fetch policy to one value: `Some((data, flags))` to forward (possibly
/// unchanged), `None` to serve a miss.
fn fetch_one(ctx: &Ctx, route: &Route, data: &Bytes, flags: u32) -> Option<(Bytes, u32)> {
    let checked = route.firewall.mode() != FirewallMode::Allow;
    if route.mode == Mode::Passthrough && !checked {
        return Some((data.clone(), flags));
    }
    let reader = ctx.info.runtime;
    let rewrite = route.mode == Mode::Transcode;
    let config = &ctx.shared.config;
    let policy = route.policy(reader);
    let (r, elapsed) = run(route, policy, rewrite, data, flags, config, usize::MAX);
    if matches!(r.outcome, ValueOutcome::NotPickle) {
        return Some(fetch_bare(ctx, route, data, flags));
    }
    if route.mode != Mode::Passthrough {
        route
            .metrics
            .record(Direction::Fetch, reader, &r, data.len(), elapsed);
        if let ValueOutcome::Refused(refusal) = r.outcome {
            crate::telemetry::warn_refused(
                &ctx.shared.refusal_log,
                "fetch",
                &route.name,
                &key_prefix(&route.prefix),
                refusal.as_str(),
            );
        }
    }
    if !firewall_passes(ctx, route, &r, data) {
        return None;
    }
    if route.mode == Mode::Passthrough {
        return Some((data.clone(), flags));
    }
    if rewrite && route.on_unreadable == OnUnreadable::Miss && unreadable(&r, reader) {
        route.metrics.unreadable_miss();
        return None;
    }
    match r.outcome {
        ValueOutcome::Rewritten(new) => Some((new, flags)),
        _ => Some((data.clone(), flags)),
    }
}

/// A value that is no pickle by its flags: a string stored unpickled is converted for the
/// reader when the route names its text flag (`value::bare`), in `transcode` mode only.
fn fetch_bare(ctx: &Ctx, route: &Route, data: &Bytes, flags: u32) -> (Bytes, u32) {
    if route.mode != Mode::Transcode {
        return (data.clone(), flags);
    }
    let reader = ctx.info.runtime;
    let max_inflated = ctx.shared.config.limits.max_inflated;
    match convert_bare(
        data,
        Flags(flags),
        route.flags,
        route.policy(reader),
        max_inflated,
    ) {
        Ok(Some(c)) => {
            route.metrics.bare_string_converted(reader);
            (c.data.unwrap_or_else(|| data.clone()), c.flags.0)
        }
        Ok(None) => (data.clone(), flags),
        Err(refusal) => {
            route.metrics.bare_string_refused(refusal);
            (data.clone(), flags)
        }
    }
}

/// The route's configured prefix for logs (never a key from traffic).
fn key_prefix(prefix: &[u8]) -> String {
    String::from_utf8_lossy(prefix).into_owned()
}

/// The pickle firewall's verdict on a fetched pickle: `false` to serve a miss. Logs and counts
/// blocked and observed values (route and global name, never value bytes).
fn firewall_passes(ctx: &Ctx, route: &Route, r: &ValueResult, data: &Bytes) -> bool {
    if r.summary.is_none() && !may_execute(route, r, data, ctx.shared.config.limits.max_inflated) {
        // Unparseable, but Python would fail before importing or calling anything (e.g. bytes
        // that merely carry the pickle flag): nothing to block, forwarded as refused.
        return true;
    }
    let log = |action: &str, f: &crate::firewall::Finding<'_>| {
        if ctx.shared.firewall_log.check().is_some() {
            tracing::warn!(route = %route.name, global = %f.global_name(), rule = f.rule_str(), action, "pickle firewall");
        }
    };
    let refused = match r.outcome {
        ValueOutcome::Refused(Refusal::Pickle(reason)) => Some(reason),
        _ => None,
    };
    match route.firewall.judge_summary(r.summary.as_ref(), refused) {
        Judgement::Pass => true,
        Judgement::Observe(f) => {
            route.metrics.unsafe_global(FirewallAction::Observed);
            log("observed", &f);
            true
        }
        Judgement::Block(f) => {
            route.metrics.unsafe_global(FirewallAction::Blocked);
            log("blocked", &f);
            false
        }
    }
}

/// Opcodes that reach an object the pickle does not build itself (a global whose name is not
/// in the opcode's argument: STACK_GLOBAL, the extension registry, persistent ids). Nothing
/// can be called without first getting an object this way or through GLOBAL/INST.
const OPAQUE_GLOBAL_OPS: &[u8] = &[0x93, 0x82, 0x83, 0x84, b'P', b'Q'];

/// For a value the transcoder could not parse: whether unpickling it could reach a denied (or
/// unknowable) global before failing, Python running every opcode up to the one it fails on.
/// Conservative: the reader must fail no earlier than Python does, and its line arguments are
/// stricter than CPython's (`I0x10`, `I+5`, `L1_0L`, `p01`, `S'x' ` load in one runtime or
/// both), so a line op whose argument it refuses is passed over by its newline, not taken as
/// the end; a GLOBAL or INST it refuses counts as executing.
fn may_execute(route: &Route, r: &ValueResult, data: &Bytes, max_inflated: usize) -> bool {
    let inflated;
    let pickle: &[u8] = match r.outcome {
        // Python's client fails at zlib.decompress: the pickle is never loaded.
        ValueOutcome::Refused(Refusal::ZlibCorrupt) => return false,
        // Python's zlib.decompress has no such limit: the client inflates and loads what the
        // proxy did not read, so nothing can be vouched for.
        ValueOutcome::Refused(Refusal::InflateTooLarge) => return true,
        _ if r.compressed => match crate::value::compress::inflate(data, max_inflated) {
            Ok(v) => {
                inflated = v;
                &inflated
            }
            Err(_) => return false,
        },
        _ => data,
    };
    let mut from = 0;
    // Each pass reads on from `from`; a pass ends at an error, so there are at most as many
    // passes as newlines.
    'passes: loop {
        for op in crate::pickle::Reader::new(&pickle[from..]) {
            match op {
                Ok(op) if OPAQUE_GLOBAL_OPS.contains(&op.code) => return true,
                Ok(op) if op.code == b'c' || op.code == b'i' => {
                    let Some((module, name)) = op.global_pair() else {
                        return true;
                    };
                    let global = crate::pickle::Global::new(
                        String::from_utf8_lossy(module),
                        String::from_utf8_lossy(name),
                    );
                    if route.firewall.rule_for(&global).is_some() {
                        return true;
                    }
                }
                Ok(_) => {}
                Err(e) if e.kind == ErrorKind::BadArgument => match e.opcode.and_then(info) {
                    Some(op) if op.arg == ArgKind::TwoLines => return true,
                    Some(op) if matches!(op.arg, ArgKind::Line | ArgKind::QuotedLine) => {
                        let at = from + e.offset;
                        match pickle[at..].iter().position(|&b| b == b'\n') {
                            Some(nl) => {
                                from = at + nl + 1;
                                continue 'passes;
                            }
                            None => return false,
                        }
                    }
                    // A negative length: Python stops there too.
                    _ => return false,
                },
                // Truncated, an unknown opcode or protocol: Python stops there too.
                Err(_) => return false,
            }
        }
        // Read to the end without a framing error but still unparseable (stack discipline):
        // no executing opcode was seen at all.
        return false;
    }
}

/// Transcodes every fetched value for the listener's runtime (each by its own key's route),
/// dropping the ones `on_unreadable = "miss"` serves as misses.
pub fn transcode_fetch(ctx: &Ctx, table: &RouteTable, values: &mut Vec<Value>) {
    values.retain_mut(|v| {
        let route = table.route(&v.key);
        match fetch_one(ctx, route, &v.data, v.flags) {
            Some((data, flags)) => {
                v.data = data;
                v.flags = flags;
                true
            }
            None => false,
        }
    });
}

/// Transcodes an `mg ... v` value (`asked`: whether the proxy added the `f` flag, whose token
/// it removes, or could not). `None` means serve a miss.
pub(crate) fn transcode_meta_fetch(
    ctx: &Ctx,
    route: &Route,
    flags: Bytes,
    data: Bytes,
    asked: FlagsAsked,
) -> Option<Response> {
    // The reply's flag tokens, walked twice rather than collected (an allocation per hit).
    let tokens = || flags.split(|&b| b == b' ').filter(|t| !t.is_empty());
    let (data, served) = if asked == FlagsAsked::Unknowable {
        (fetch_unflagged(ctx, route, data)?, None)
    } else {
        let client_flags = meta_client_flags(tokens(), b'f').unwrap_or(0);
        let (data, served) = fetch_one(ctx, route, &data, client_flags)?;
        (data, (served != client_flags).then_some(served))
    };
    let flags = if asked == FlagsAsked::Injected || served.is_some() {
        // Without the injected `f` token, or with the converted flags in the client's own.
        let mut out = BytesMut::with_capacity(flags.len() + 8);
        for t in tokens() {
            match (t.first(), served) {
                (Some(&b'f'), _) if asked == FlagsAsked::Injected => continue,
                (Some(&b'f'), Some(new)) => {
                    out.put_slice(b" f");
                    crate::protocol::put_u64(&mut out, u64::from(new));
                }
                _ => {
                    out.put_u8(b' ');
                    out.put_slice(t);
                }
            }
        }
        out.freeze()
    } else {
        flags
    };
    Some(Response::MetaValue { flags, data })
}

/// The `EN` miss line memcached sends for `mg`, echoing the `O` (opaque), `k` (key) and `b`
/// flags the request asked for.
pub fn compose_meta_miss(m: &Meta, out: &mut BytesMut) {
    out.put_slice(b"EN");
    for f in &m.flags {
        match f.first() {
            Some(b'O') | Some(b'b') => {
                out.put_u8(b' ');
                out.put_slice(f);
            }
            Some(b'k') => {
                out.put_slice(b" k");
                out.put_slice(&m.key);
            }
            _ => {}
        }
    }
    out.put_slice(b"\r\n");
}

/// The `outcome` label of a reply.
pub fn outcome(req: &Request, resp: &Response) -> ReplyOutcome {
    let line: &[u8] = match resp {
        Response::Values(v) if v.is_empty() => return ReplyOutcome::Miss,
        Response::Values(_) | Response::MetaValue { .. } => return ReplyOutcome::Hit,
        Response::Block(_) => return ReplyOutcome::Info,
        Response::Line(l) => l,
    };
    let meta = match req {
        Request::Meta(m) => Some(m.cmd),
        _ => None,
    };
    line_outcome(line, meta)
}

/// The `outcome` label of a one-line reply; `meta` is the meta command it answers (for `HD`).
/// Also for the lines the proxy writes itself (errors, `OK`, `MN`).
pub fn line_outcome(line: &[u8], meta: Option<MetaCmd>) -> ReplyOutcome {
    let word = line.split(|&b| b == b' ').next().unwrap_or_default();
    match word {
        b"STORED" => ReplyOutcome::Stored,
        b"NOT_STORED" | b"NS" => ReplyOutcome::NotStored,
        b"EXISTS" | b"EX" => ReplyOutcome::Exists,
        b"NOT_FOUND" | b"NF" => ReplyOutcome::NotFound,
        b"DELETED" => ReplyOutcome::Deleted,
        b"TOUCHED" => ReplyOutcome::Touched,
        b"OK" | b"MN" | b"RESET" => ReplyOutcome::Ok,
        b"EN" => ReplyOutcome::Miss,
        b"ERROR" => ReplyOutcome::Error,
        b"CLIENT_ERROR" => ReplyOutcome::ClientError,
        b"SERVER_ERROR" => ReplyOutcome::ServerError,
        b"VERSION" | b"ME" => ReplyOutcome::Info,
        b"HD" => match meta {
            Some(MetaCmd::Set) => ReplyOutcome::Stored,
            Some(MetaCmd::Delete) => ReplyOutcome::Deleted,
            Some(MetaCmd::Get) => ReplyOutcome::Hit,
            _ => ReplyOutcome::Ok,
        },
        w if !w.is_empty() && w.iter().all(u8::is_ascii_digit) => ReplyOutcome::Number,
        _ => ReplyOutcome::Info,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    use crate::protocol::request_of as req;

    #[test]
    fn reply_outcomes() {
        let line = |s: &'static [u8]| Response::Line(Bytes::from_static(s));
        let cases: &[(&[u8], Response, ReplyOutcome)] = &[
            (
                b"set a 0 0 1\r\nx\r\n",
                line(b"STORED"),
                ReplyOutcome::Stored,
            ),
            (
                b"add a 0 0 1\r\nx\r\n",
                line(b"NOT_STORED"),
                ReplyOutcome::NotStored,
            ),
            (b"incr a 1\r\n", line(b"5"), ReplyOutcome::Number),
            (b"ms a 1\r\nx\r\n", line(b"HD"), ReplyOutcome::Stored),
            (b"md a\r\n", line(b"HD"), ReplyOutcome::Deleted),
            (b"mg a\r\n", line(b"EN"), ReplyOutcome::Miss),
            (
                b"get a\r\n",
                Response::Values(Vec::new()),
                ReplyOutcome::Miss,
            ),
            (
                b"get a\r\n",
                line(b"SERVER_ERROR x"),
                ReplyOutcome::ServerError,
            ),
        ];
        for (request, resp, want) in cases {
            assert_eq!(
                outcome(&req(request), resp),
                *want,
                "{}",
                request.escape_ascii()
            );
        }
    }

    #[test]
    fn meta_miss_echoes_opaque_key_and_base64_flags() {
        let Request::Meta(m) = req(b"mg a2V5 b v k Oxyz t\r\n") else {
            panic!()
        };
        let mut out = BytesMut::new();
        compose_meta_miss(&m, &mut out);
        assert_eq!(&out[..], b"EN b ka2V5 Oxyz\r\n");
    }

    #[test]
    fn meta_set_modes_and_client_flags() {
        let Request::Meta(m) = req(b"ms k 1 MA F5\r\nx\r\n") else {
            panic!()
        };
        assert!(meta_appends(&m));
        assert_eq!(meta_client_flags(&m.flags, b'F'), Some(5));
        let Request::Meta(m) = req(b"ms k 1 MS\r\nx\r\n") else {
            panic!()
        };
        assert!(!meta_appends(&m));
        assert_eq!(meta_client_flags(&m.flags, b'F'), None);
        // Past 32 bits memcached keeps the low 32 (stores flags 1 here), as for `set`.
        let Request::Meta(m) = req(b"ms k 1 F4294967297\r\nx\r\n") else {
            panic!()
        };
        assert_eq!(meta_client_flags(&m.flags, b'F'), Some(1));
    }
}
