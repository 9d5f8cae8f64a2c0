//! The compiled route table: key -> [`Route`] by longest matching prefix, and key -> server by the
//! pool's distribution. Immutable once built; SIGHUP reload builds a new table and swaps an
//! `Arc<RouteTable>`. Sans-IO.
use std::sync::Arc;

use crate::config::{Config, Mode, OnUnreadable, StoreProtocol};
use crate::firewall::Firewall;
use crate::metrics::{Metrics, RouteMetrics};
use crate::pickle::{Global, Policy, Py2Text, Runtime};
use crate::value::ValueFlags;

/// Index of a pool in [`RouteTable::pools`] (and in the runtime's upstream pools).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct PoolId(pub usize);

/// One compiled route.
#[derive(Clone, Debug)]
pub struct Route {
    /// Name used in logs and metric labels.
    pub name: String,
    /// Key prefix (bytes); empty for the default route.
    pub prefix: Vec<u8>,
    /// The pool serving these keys.
    pub pool: PoolId,
    /// transcode / observe / passthrough.
    pub mode: Mode,
    /// Flag bits recognizing pickles and zlib.
    pub flags: ValueFlags,
    /// Protocol values are stored with.
    pub store: StoreProtocol,
    /// What to do with unreadable fetched values.
    pub on_unreadable: OnUnreadable,
    /// Metric handles of this route.
    pub metrics: RouteMetrics,
    /// The pickle firewall applied to fetched values.
    pub firewall: Firewall,
    /// Transcoder policy for a Py2 reader and for a Py3 reader (index [`policy_index`]).
    policies: [Policy; 2],
    /// Transcoder policy of stores (`store_protocol = 2`): the Py2 reader's, text kept.
    store_policy: Policy,
}

fn policy_index(target: Runtime) -> usize {
    match target {
        Runtime::Py2 => 0,
        Runtime::Py3 => 1,
    }
}

impl Route {
    /// The transcoder policy for values read by (or stored for) `target`.
    pub fn policy(&self, target: Runtime) -> &Policy {
        &self.policies[policy_index(target)]
    }

    /// The transcoder policy values are stored with (`store_protocol = 2`): protocol 2 for
    /// Python 2 hosts reading memcached directly, with text kept as `unicode` whatever
    /// `py2_text` says, so the stored value still loads in Python 3 as it was written (UTF-8
    /// `str` would be `bytes`, or fail, there) and a Python 2 value holding only `unicode` (whose
    /// writer nothing in it shows) is stored as sent. `py2_text = utf8` applies when values are
    /// served to Python 2 readers. A value whose protocol-2 form Python 3 loads differently
    /// (`fold=1`, `FileNotFoundError`...: [`Policy::lossless_for_py3`]) is stored as sent too.
    pub fn store_policy(&self) -> &Policy {
        &self.store_policy
    }
}

/// Routes by descending prefix length, plus the pool names they refer to.
#[derive(Clone, Debug)]
pub struct RouteTable {
    routes: Vec<Arc<Route>>,
    pools: Vec<String>,
}

impl RouteTable {
    /// Compiles the routes of a validated configuration. Pools are numbered in the order of
    /// `config.pools` (sorted by name), the order [`crate::upstream`] builds them in.
    pub fn compile(config: &Config, metrics: &Metrics) -> RouteTable {
        let pools: Vec<String> = config.pools.keys().cloned().collect();
        let mut routes: Vec<Arc<Route>> = config
            .effective_routes()
            .iter()
            .map(|r| {
                // Validated by Config::validate: every entry parses.
                let classic: Arc<[Global]> = r
                    .py2_classic
                    .iter()
                    .filter_map(|g| g.parse().ok())
                    .collect();
                let name = r.display_name();
                // Validated by Config::validate: the entries parse.
                let rules = config.firewall.merged(&r.firewall_rules());
                let policy = |target| {
                    let mut p = Policy::for_target(target);
                    p.py2_text = r.py2_text;
                    p.py3_str = r.py3_str;
                    p.py2_classic = classic.clone();
                    p.py2_utc = r.py2_utc;
                    p
                };
                let firewall = Firewall::new(r.firewall, &rules)
                    .unwrap_or_else(|_| Firewall::with_defaults(r.firewall));
                Arc::new(Route {
                    firewall,
                    metrics: metrics.route(&name, &r.pool, r.mode.as_str()),
                    name,
                    prefix: r.prefix.as_bytes().to_vec(),
                    pool: PoolId(pools.iter().position(|p| *p == r.pool).unwrap_or(0)),
                    mode: r.mode,
                    flags: ValueFlags {
                        pickle_mask: r.pickle_flag,
                        zlib_flag: r.zlib_flag,
                        text_flag: r.text_flag,
                    },
                    store: r.store_protocol(),
                    on_unreadable: r.on_unreadable,
                    policies: [Runtime::Py2, Runtime::Py3].map(&policy),
                    store_policy: Policy {
                        py2_text: Py2Text::Keep,
                        lossless_for_py3: true,
                        ..policy(Runtime::Py2)
                    },
                })
            })
            .collect();
        // Longest prefix first, so the first match is the longest; the default ("") is last.
        routes.sort_by_key(|r| std::cmp::Reverse(r.prefix.len()));
        RouteTable { routes, pools }
    }

    /// The route for `key`: the longest prefix of `key` among the routes.
    pub fn route(&self, key: &[u8]) -> &Arc<Route> {
        // The default route (prefix "") matches every key, so it is not compared (once or more
        // per request): `compile` always adds it, and it sorts last.
        let (prefixed, default) = self.routes.split_at(self.routes.len() - 1);
        prefixed
            .iter()
            .find(|r| key.starts_with(&r.prefix))
            .unwrap_or(&default[0])
    }

    /// The default route (prefix `""`).
    pub fn default_route(&self) -> &Arc<Route> {
        &self.routes[self.routes.len() - 1]
    }

    /// Every route, longest prefix first.
    pub fn routes(&self) -> &[Arc<Route>] {
        &self.routes
    }

    /// Pool names, indexed by [`PoolId`].
    pub fn pools(&self) -> &[String] {
        &self.pools
    }
}

/// python-memcached's `cmemcache_hash`: `(((crc32(key) & 0xffffffff) >> 16) & 0x7fff) or 1`.
pub fn python_memcached_hash(key: &[u8]) -> u32 {
    let h = (crc32fast::hash(key) >> 16) & 0x7fff;
    if h == 0 {
        1
    } else {
        h
    }
}

/// The server index for `key` in a pool of `servers` servers (python-memcached's
/// `self.buckets[serverhash % len(self.buckets)]`, all weights 1). `servers` must be > 0.
pub fn server_index(key: &[u8], servers: usize) -> usize {
    if servers <= 1 {
        return 0;
    }
    python_memcached_hash(key) as usize % servers
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pickle::{Py2Text, Py2Utc, Py3Str};

    #[test]
    fn hash_matches_python_memcached() {
        // python3 -c "import binascii; print((((binascii.crc32(k) & 0xffffffff) >> 16) & 0x7fff) or 1)"
        let cases: [(&[u8], u32); 5] = [
            (b"foo", 3187),
            (b"bar", 30463),
            (b"session:abc", 17413),
            (b"", 1),
            (b"key1", 11356),
        ];
        for (k, h) in cases {
            assert_eq!(python_memcached_hash(k), h, "{k:?}");
        }
        assert_eq!(server_index(b"key1", 2), 0);
        assert_eq!(server_index(b"key2", 2), 1);
        assert_eq!(server_index(b"key2", 3), 0);
        assert_eq!(server_index(b"key2", 1), 0);
    }

    #[test]
    fn longest_prefix_wins() {
        let text = r#"
[[listener]]
address = "127.0.0.1:1"
client = "py3"
[pool.a]
servers = ["127.0.0.1:2"]
[pool.b]
servers = ["127.0.0.1:3"]
[[route]]
prefix = ""
pool = "a"
[[route]]
prefix = "s:"
pool = "b"
mode = "observe"
[[route]]
prefix = "s:long:"
pool = "a"
mode = "passthrough"
py2_text = "utf8"
py3_str = "latin1"
py2_utc = "pytz"
"#;
        let c = Config::from_toml_str(text, "t").unwrap();
        let metrics = Metrics::register(&prometheus::Registry::new()).unwrap();
        let t = RouteTable::compile(&c, &metrics);
        assert_eq!(t.pools(), ["a", "b"]);
        assert_eq!(t.route(b"x").name, "default");
        assert_eq!(t.route(b"s:1").name, "s:");
        assert_eq!(t.route(b"s:1").pool, PoolId(1));
        assert_eq!(t.route(b"s:long:1").mode, Mode::Passthrough);
        assert_eq!(t.route(b"s:lon").mode, Mode::Observe);
        assert_eq!(t.route(b"s").name, "default");
        assert_eq!(t.default_route().prefix, b"");
        assert_eq!(t.route(b"x").policy(Runtime::Py2).target, Runtime::Py2);
        assert_eq!(t.route(b"x").policy(Runtime::Py3).target, Runtime::Py3);
        // The route's policy keys reach both readers' policies.
        for target in [Runtime::Py2, Runtime::Py3] {
            let p = t.route(b"s:long:1").policy(target);
            assert_eq!(
                (p.py2_text, p.py3_str, p.py2_utc),
                (Py2Text::Utf8, Py3Str::Latin1, Py2Utc::Pytz)
            );
            assert_eq!(t.route(b"x").policy(target).py2_utc, Py2Utc::None);
        }
        // Stores are for Python 2 hosts reading memcached directly, text kept as `unicode`.
        let p = t.route(b"s:long:1").store_policy();
        assert_eq!(
            (p.target, p.py2_text, p.py2_utc),
            (Runtime::Py2, Py2Text::Keep, Py2Utc::Pytz)
        );
        assert!(p.lossless_for_py3);
        assert!(!t.route(b"s:long:1").policy(Runtime::Py2).lossless_for_py3);
    }
}
