//! Closed label sets for the metric families. Every label value a family can carry comes either
//! from one of these enums or from a name in the configuration (listener, route, pool, server
//! address): never from traffic (keys, raw prefixes, client addresses), so every family has a
//! bounded number of series. Each enum has `as_str()` (the exact label value) and `ALL`.

/// Declares a closed label enum with its label strings, `as_str`, `ALL` and `COUNT`.
macro_rules! label_enum {
    ($(#[$meta:meta])* $name:ident { $($(#[$vmeta:meta])* $variant:ident => $text:literal,)+ }) => {
        $(#[$meta])*
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
        pub enum $name {
            $($(#[$vmeta])* $variant,)+
        }

        impl $name {
            /// Every value, in declaration order (`ALL[v.index()] == v`).
            pub const ALL: &'static [$name] = &[$($name::$variant,)+];
            /// Number of values.
            pub const COUNT: usize = $name::ALL.len();

            /// The label value written to `/metrics`.
            pub const fn as_str(self) -> &'static str {
                match self {
                    $($name::$variant => $text,)+
                }
            }

            /// Position in [`Self::ALL`], for per-value handle arrays.
            #[allow(dead_code)] // not every enum indexes an array
            pub(crate) const fn index(self) -> usize {
                self as usize
            }
        }

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(self.as_str())
            }
        }
    };
}

label_enum! {
    /// The memcache command of a client request (`command` label).
    Command {
        /// `get`
        Get => "get",
        /// `gets`
        Gets => "gets",
        /// `gat`
        Gat => "gat",
        /// `gats`
        Gats => "gats",
        /// `set`
        Set => "set",
        /// `add`
        Add => "add",
        /// `replace`
        Replace => "replace",
        /// `append`
        Append => "append",
        /// `prepend`
        Prepend => "prepend",
        /// `cas`
        Cas => "cas",
        /// `delete`
        Delete => "delete",
        /// `incr`
        Incr => "incr",
        /// `decr`
        Decr => "decr",
        /// `touch`
        Touch => "touch",
        /// `flush_all`
        FlushAll => "flush_all",
        /// `version`
        Version => "version",
        /// `verbosity`
        Verbosity => "verbosity",
        /// `stats`
        Stats => "stats",
        /// `quit`
        Quit => "quit",
        /// meta get `mg`
        MetaGet => "mg",
        /// meta set `ms`
        MetaSet => "ms",
        /// meta delete `md`
        MetaDelete => "md",
        /// meta arithmetic `ma`
        MetaArithmetic => "ma",
        /// meta no-op `mn`
        MetaNoop => "mn",
        /// meta debug `me`
        MetaDebug => "me",
        /// A well-formed command not listed above (answered or forwarded as memcached would).
        Other => "other",
        /// A request the proxy rejects as memcached would: unknown or malformed (`ERROR`,
        /// `CLIENT_ERROR`), or refused whole (`SERVER_ERROR object too large for cache`, a get
        /// of too many keys).
        Invalid => "invalid",
    }
}

impl Command {
    /// True for retrievals, whose replies are counted per key as `hit`/`miss`.
    pub const fn is_retrieval(self) -> bool {
        matches!(
            self,
            Command::Get | Command::Gets | Command::Gat | Command::Gats | Command::MetaGet
        )
    }

    /// True for storage commands (memcached's `cmd_set`).
    pub const fn is_storage(self) -> bool {
        matches!(
            self,
            Command::Set
                | Command::Add
                | Command::Replace
                | Command::Append
                | Command::Prepend
                | Command::Cas
                | Command::MetaSet
        )
    }
}

label_enum! {
    /// What the proxy answered (`outcome` label of `picklebridge_replies_total`). Retrievals count
    /// one `hit` or `miss` per requested key, like memcached's `get_hits`/`get_misses`.
    ReplyOutcome {
        /// A key was found (`VALUE` block, meta `VA`/`HD` on `mg`).
        Hit => "hit",
        /// A key was not found (or served as a miss by `on_unreadable = "miss"`), meta `EN`.
        Miss => "miss",
        /// `STORED` / meta `HD` on `ms`.
        Stored => "stored",
        /// `NOT_STORED` / meta `NS`.
        NotStored => "not_stored",
        /// `EXISTS` / meta `EX` (cas conflict).
        Exists => "exists",
        /// `NOT_FOUND` / meta `NF`.
        NotFound => "not_found",
        /// `DELETED` / meta `HD` on `md`.
        Deleted => "deleted",
        /// `TOUCHED`.
        Touched => "touched",
        /// A number (incr/decr result).
        Number => "number",
        /// `OK` (flush_all, verbosity), meta `MN`/`HD` for other commands.
        Ok => "ok",
        /// An informational reply (version, stats, meta debug).
        Info => "info",
        /// `ERROR` (unknown command).
        Error => "error",
        /// `CLIENT_ERROR ...` (bad request).
        ClientError => "client_error",
        /// `SERVER_ERROR ...` sent by memcached itself.
        ServerError => "server_error",
        /// `SERVER_ERROR ...` written by the proxy because an upstream failed (connect, I/O, protocol).
        UpstreamError => "upstream_error",
        /// `SERVER_ERROR ...` written by the proxy because an upstream did not answer in time.
        UpstreamTimeout => "upstream_timeout",
    }
}

label_enum! {
    /// Which way a value travels through the proxy (`direction` label).
    Direction {
        /// Client to memcached (set, add, ms, ...).
        Store => "store",
        /// Memcached to client (get, mg v, ...).
        Fetch => "fetch",
    }
}

label_enum! {
    /// What the transcoder did with one pickled value (`outcome` label of `picklebridge_transcodes_total`).
    TranscodeOutcome {
        /// New bytes were forwarded.
        Rewritten => "rewritten",
        /// The original bytes were forwarded because they already suit the reader.
        Unchanged => "unchanged",
        /// The transcoder could not handle the value with certainty; the original bytes were
        /// forwarded and the reason counted in `picklebridge_transcode_refusals_total`.
        Refused => "refused",
    }
}

label_enum! {
    /// Why a value as stored could not have been loaded by the reading runtime (`kind` label of
    /// `picklebridge_mismatches_total`). Counted in `transcode` and `observe` routes (`passthrough`
    /// counts nothing), so `observe` alone sizes the problem.
    MismatchKind {
        /// Protocol > 2 fetched by a Py2 client (`ValueError: unsupported pickle protocol`).
        ProtocolTooNew => "protocol_too_new",
        /// A py2 `str` holding bytes >= 0x80 fetched by a Py3 client (`UnicodeDecodeError`).
        Py2StrNonAscii => "py2_str_non_ascii",
        /// A py2 `str` used as binary state (datetime, date, time...) fetched by a Py3 client.
        Py2BinaryPayload => "py2_binary_payload",
        /// Py3 text fetched by a Py2 client (reads back as `unicode`, not `str`).
        Py3TextToPy2 => "py3_text_to_py2",
        /// A global that does not exist in Py2 fetched by a Py2 client.
        Py3OnlyGlobal => "py3_only_global",
        /// A global that does not exist in Py3 fetched by a Py3 client.
        Py2OnlyGlobal => "py2_only_global",
    }
}

impl From<crate::value::Mismatch> for MismatchKind {
    fn from(m: crate::value::Mismatch) -> Self {
        use crate::value::Mismatch as M;
        match m {
            M::ProtocolTooNew => MismatchKind::ProtocolTooNew,
            M::Py2StrNonAscii => MismatchKind::Py2StrNonAscii,
            M::Py2BinaryPayload => MismatchKind::Py2BinaryPayload,
            M::Py3TextToPy2 => MismatchKind::Py3TextToPy2,
            M::Py3OnlyGlobal => MismatchKind::Py3OnlyGlobal,
            M::Py2OnlyGlobal => MismatchKind::Py2OnlyGlobal,
        }
    }
}

label_enum! {
    /// What the pickle firewall did with a value referencing a denied global (`action` label).
    FirewallAction {
        /// Served as a miss (route firewall mode `block`).
        Blocked => "blocked",
        /// Served anyway and logged (route firewall mode `observe`).
        Observed => "observed",
    }
}

label_enum! {
    /// Which side of a connection caused an error (`side` label).
    Side {
        /// The client (malformed input, reset, a write stall; an idle timeout is a normal close).
        Client => "client",
        /// An upstream memcached.
        Upstream => "upstream",
        /// The proxy itself.
        Internal => "internal",
    }
}

label_enum! {
    /// A Python runtime (`runtime` label): the clients of a listener.
    Runtime {
        /// CPython 2.7.
        Py2 => "py2",
        /// CPython 3.
        Py3 => "py3",
    }
}

label_enum! {
    /// Which runtime wrote a pickle, as far as its opcodes tell (`writer` label).
    Writer {
        /// Written by Python 2.
        Py2 => "py2",
        /// Written by Python 3.
        Py3 => "py3",
        /// Cannot tell (e.g. protocol 2 with only ints and containers).
        Unknown => "unknown",
    }
}

label_enum! {
    /// The pickle protocol of a value (`protocol` label): the declared `PROTO` argument, or the
    /// highest protocol whose opcodes appear when there is no `PROTO` (protocols 0 and 1).
    PickleProtocol {
        /// Protocol 0 (text).
        P0 => "0",
        /// Protocol 1 (binary, Python 1.x/2.x).
        P1 => "1",
        /// Protocol 2 (Python 2.3+).
        P2 => "2",
        /// Protocol 3 (Python 3.0+, bytes).
        P3 => "3",
        /// Protocol 4 (Python 3.4+, framing).
        P4 => "4",
        /// Protocol 5 (Python 3.8+, out-of-band buffers).
        P5 => "5",
        /// Unparseable, or a protocol number above 5.
        Unknown => "unknown",
    }
}

impl From<crate::pickle::Runtime> for Runtime {
    fn from(r: crate::pickle::Runtime) -> Self {
        match r {
            crate::pickle::Runtime::Py2 => Runtime::Py2,
            crate::pickle::Runtime::Py3 => Runtime::Py3,
        }
    }
}

impl From<crate::pickle::Writer> for Writer {
    fn from(w: crate::pickle::Writer) -> Self {
        match w {
            crate::pickle::Writer::Py2 => Writer::Py2,
            crate::pickle::Writer::Py3 => Writer::Py3,
            crate::pickle::Writer::Unknown => Writer::Unknown,
        }
    }
}

impl PickleProtocol {
    /// Maps a protocol number (None when unknown) to its label; numbers above 5 are `unknown`.
    pub const fn from_number(protocol: Option<u8>) -> PickleProtocol {
        match protocol {
            Some(0) => PickleProtocol::P0,
            Some(1) => PickleProtocol::P1,
            Some(2) => PickleProtocol::P2,
            Some(3) => PickleProtocol::P3,
            Some(4) => PickleProtocol::P4,
            Some(5) => PickleProtocol::P5,
            _ => PickleProtocol::Unknown,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check<T: Copy + std::fmt::Debug>(
        all: &[T],
        as_str: fn(T) -> &'static str,
        index: fn(T) -> usize,
    ) {
        let mut seen = std::collections::HashSet::new();
        for (i, v) in all.iter().enumerate() {
            assert_eq!(index(*v), i, "{v:?}");
            let s = as_str(*v);
            assert!(seen.insert(s), "duplicate label value {s}");
            assert!(
                !s.is_empty()
                    && s.bytes()
                        .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_'),
                "{s}"
            );
        }
    }

    #[test]
    fn label_values_are_unique_snake_case_and_indexed_in_order() {
        check(Command::ALL, Command::as_str, Command::index);
        check(ReplyOutcome::ALL, ReplyOutcome::as_str, ReplyOutcome::index);
        check(Direction::ALL, Direction::as_str, Direction::index);
        check(
            TranscodeOutcome::ALL,
            TranscodeOutcome::as_str,
            TranscodeOutcome::index,
        );
        check(MismatchKind::ALL, MismatchKind::as_str, MismatchKind::index);
        check(Side::ALL, Side::as_str, Side::index);
        check(
            FirewallAction::ALL,
            FirewallAction::as_str,
            FirewallAction::index,
        );
        check(Runtime::ALL, Runtime::as_str, Runtime::index);
        check(Writer::ALL, Writer::as_str, Writer::index);
        check(
            PickleProtocol::ALL,
            PickleProtocol::as_str,
            PickleProtocol::index,
        );
    }

    #[test]
    fn protocol_numbers_map_to_labels() {
        assert_eq!(PickleProtocol::from_number(Some(4)).as_str(), "4");
        assert_eq!(
            PickleProtocol::from_number(Some(6)),
            PickleProtocol::Unknown
        );
        assert_eq!(PickleProtocol::from_number(None), PickleProtocol::Unknown);
        assert_eq!(MismatchKind::Py3TextToPy2.to_string(), "py3_text_to_py2");
        assert!(Command::MetaGet.is_retrieval() && !Command::Delete.is_retrieval());
        assert!(Command::Cas.is_storage() && !Command::Get.is_storage());
    }
}
