//! The TOML configuration: raw serde structs (unknown keys rejected), defaults, and `validate()`
//! which reports every problem at once with its TOML path. Compiling routes into a lookup table
//! is [`crate::route`]'s job; this module never touches the network.
//!
//! Layout (see `config/picklebridge.toml` for the annotated reference):
//! ```toml
//! [[listener]]              # one or more
//! address = "127.0.0.1:11311"
//! client = "py2"            # runtime of the clients on this port: "py2" | "py3"
//! [pool.main]               # named pools of memcached servers
//! servers = ["127.0.0.1:11211"]
//! [[route]]                 # per key prefix, longest prefix wins; prefix "" is the default
//! prefix = "session:"
//! pool = "main"
//! mode = "transcode"        # "transcode" | "observe" | "passthrough"
//! [timeouts]  [limits]  [commands]
//! ```
//! `[pool.NAME.tls]` ([`TlsConfig`]) is the one part that reads files: its PEM files are loaded
//! by [`Config::from_toml_str`], so a bad certificate path is a start-up error.
use std::collections::{BTreeMap, HashSet};
use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::path::Path;
use std::time::Duration;

use crate::firewall::{FirewallMode, FirewallRules};
use crate::metrics::AdminConfig;
use crate::telemetry::LogConfig;
use serde::Deserialize;

mod parse;
mod tls;
mod validate;
use parse::{array, renumber, section, LeftOut};
pub use tls::{TlsConfig, TlsMaterial};

/// The whole configuration file.
#[derive(Clone, Debug, Default)]
pub struct Config {
    /// `[[listener]]`: the memcache ports the proxy serves.
    pub listeners: Vec<ListenerConfig>,
    /// `[pool.NAME]`: named pools of memcached servers.
    pub pools: BTreeMap<String, PoolConfig>,
    /// `[[route]]`: policies per key prefix.
    pub routes: Vec<RouteConfig>,
    /// `[timeouts]`.
    pub timeouts: TimeoutsConfig,
    /// `[limits]`.
    pub limits: LimitsConfig,
    /// `[commands]`.
    pub commands: CommandsConfig,
    /// `[log]`: level (`RUST_LOG` overrides) and format (`plain` | `json`).
    pub log: LogConfig,
    /// `[admin]`: the HTTP listener for `/metrics`, `/healthz`, `/readyz`. Present (even empty,
    /// which means `listen = "127.0.0.1:9150"`) to enable it; absent, no admin listener.
    pub admin: Option<AdminConfig>,
    /// `[firewall]`: `deny`/`allow` entries added to the pickle firewall's default deny list for
    /// every route (see [`crate::firewall`]).
    pub firewall: FirewallRules,
    /// `[runtime]`: the proxy process itself (read at start-up).
    pub runtime: RuntimeConfig,
}

/// The top-level keys the file may contain.
const SECTIONS: &[&str] = &[
    "listener", "pool", "route", "timeouts", "limits", "commands", "log", "admin", "firewall",
    "runtime",
];

/// Which Python runtime the clients of a listener run (`"py2"` | `"py3"`).
pub use crate::pickle::Runtime as ClientRuntime;
use crate::pickle::{Global, Py2Text, Py2Utc, Py3Str};

/// `[[listener]]`: one memcache port.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ListenerConfig {
    /// `address = "127.0.0.1:11311"`: IP and port to listen on (port 0 picks a free port).
    pub address: String,
    /// `client = "py2" | "py3"`: the runtime of the clients connecting to this port.
    pub client: ClientRuntime,
    /// `name`: label used in logs and metrics, unique among the listeners. Default:
    /// `"<client>-<port>"`, with the port bound when the address asks for port 0.
    #[serde(default)]
    pub name: Option<String>,
    /// `get_errors = "miss" | "error"`: what a get/gets/gat/gats whose servers all failed
    /// (down, timed out, broken connection) answers. Default `"miss"`.
    #[serde(default)]
    pub get_errors: GetErrors,
}

/// What a retrieval (get, gets, gat, gats) answers when every server it went to failed: the
/// proxy's own failure, not a reply memcached sent (those pass as sent). Keys of a failed
/// server in a multi-get that other servers answered are misses either way.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum GetErrors {
    /// `END`: every key a miss, as mcrouter answers by default. python-memcached's
    /// `get_multi` reads lines until `END`: after an error line it waits out its socket
    /// timeout (3 s) and marks the server dead.
    #[default]
    Miss,
    /// `SERVER_ERROR upstream ...` (pymemcache raises it).
    Error,
}

impl ListenerConfig {
    /// The configured name, or `"<client>-<port>"` with the port of `address` (`0` for "any";
    /// the name a listener serves under is [`ListenerConfig::bound_name`]).
    pub fn display_name(&self) -> String {
        let port = self.address.rsplit(':').next().unwrap_or("0");
        self.name
            .clone()
            .unwrap_or_else(|| format!("{}-{port}", self.client.as_str()))
    }

    /// The configured name, or `"<client>-<port>"` with the port `bound` holds: two listeners
    /// asking for port 0 get two names (their metrics would merge under one label otherwise).
    pub fn bound_name(&self, bound: SocketAddr) -> String {
        self.name
            .clone()
            .unwrap_or_else(|| format!("{}-{}", self.client.as_str(), bound.port()))
    }
}

/// How keys are spread over the servers of a pool.
#[derive(Clone, Copy, Debug, Default, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "kebab-case")]
pub enum Distribution {
    /// python-memcached's own server selection (`cmemcache_hash`):
    /// `(((crc32(key) & 0xffffffff) >> 16) & 0x7fff) or 1`, modulo the number of servers, so that
    /// hosts still talking to memcached directly with python-memcached find the same keys.
    #[default]
    PythonMemcached,
}

/// `[pool.NAME]`: a set of memcached servers.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PoolConfig {
    /// `servers = ["host:port", ...]`: memcached servers, in the order the Python clients list
    /// them (the order matters for key distribution).
    pub servers: Vec<String>,
    /// `distribution = "python-memcached"` (the default and only choice today).
    #[serde(default)]
    pub distribution: Distribution,
    /// `connections = 2`: persistent pipelined connections per server.
    #[serde(default = "default_connections")]
    pub connections: usize,
    /// `[pool.NAME.tls]`: connect to these servers over TLS (absent: plain TCP).
    #[serde(default)]
    pub tls: Option<TlsConfig>,
}

fn default_connections() -> usize {
    2
}

/// What a route does to values.
#[derive(Clone, Copy, Debug, Default, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum Mode {
    /// Rewrite pickles for the reader (and on store per `store_protocol`).
    #[default]
    Transcode,
    /// Never change a byte; analyze and count what would have broken.
    Observe,
    /// Never change a byte, count nothing; fetched pickles are still read by the firewall
    /// unless the route's `firewall` is `"allow"`.
    Passthrough,
}

impl Mode {
    /// The config spelling (also the `mode` label of `picklebridge_route_info`).
    pub fn as_str(self) -> &'static str {
        match self {
            Mode::Transcode => "transcode",
            Mode::Observe => "observe",
            Mode::Passthrough => "passthrough",
        }
    }
}

/// What to do with a fetched pickle the reader cannot load even after transcoding.
#[derive(Clone, Copy, Debug, Default, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum OnUnreadable {
    /// Serve a miss (python-memcached itself turns unpickling errors into misses).
    #[default]
    Miss,
    /// Serve the stored bytes unchanged.
    Passthrough,
}

/// `store_protocol = 2 | "as-written"` as written in the file.
#[derive(Clone, Debug, Deserialize, PartialEq, Eq)]
#[serde(untagged)]
pub enum StoreProtocolRaw {
    /// A protocol number; only `2` is accepted.
    Number(i64),
    /// A name; only `"as-written"` is accepted.
    Name(String),
}

/// How values are stored.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum StoreProtocol {
    /// Downgrade to protocol 2 on the way in, so Py2 hosts reading memcached directly can load it.
    #[default]
    Two,
    /// Store what the client wrote.
    AsWritten,
}

/// `[[route]]`: a policy for keys starting with `prefix`.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RouteConfig {
    /// `name`: label in logs and metrics. Default: the prefix, or `"default"` for prefix `""`.
    #[serde(default)]
    pub name: Option<String>,
    /// `prefix = "session:"`: keys starting with these bytes take this route; the longest matching
    /// prefix wins; `""` is the default route.
    pub prefix: String,
    /// `pool`: name of the `[pool.NAME]` serving these keys.
    pub pool: String,
    /// `mode = "transcode" | "observe" | "passthrough"` (default `"transcode"`).
    #[serde(default)]
    pub mode: Mode,
    /// `pickle_flag = 1`: flag bits marking a pickled value (any bit set means pickle).
    #[serde(default = "default_pickle_flag")]
    pub pickle_flag: u32,
    /// `zlib_flag = 8`: flag bit marking a zlib-compressed pickle; `0` disables inflating.
    #[serde(default = "default_zlib_flag")]
    pub zlib_flag: u32,
    /// `text_flag = 16`: the flag bit marking UTF-8 text stored unpickled (python-memcached's
    /// and pymemcache's `FLAG_TEXT`); `0` (default) serves such strings as stored. When set,
    /// bare strings are converted by `py2_text` / `py3_str` as inside pickles (`value::bare`).
    #[serde(default)]
    pub text_flag: u32,
    /// `py2_text = "keep" | "utf8"`: what py3 text (`str`) becomes for Py2 readers: `unicode`
    /// (`keep`, default) or a UTF-8 py2 `str` (`utf8`). See the transcoder's `Py2Text`.
    #[serde(default)]
    pub py2_text: Py2Text,
    /// `py3_str = "utf8-or-bytes" | "bytes" | "latin1"`: what a py2 `str` becomes for Py3
    /// readers (default `utf8-or-bytes`: `str` when valid UTF-8, else `bytes`). See `Py3Str`.
    #[serde(default)]
    pub py3_str: Py3Str,
    /// `py2_classic = ["module.Class", ...]`: old-style classes to write with INST/OBJ for py2.
    #[serde(default)]
    pub py2_classic: Vec<String>,
    /// `py2_utc = "none" | "pytz"`: the UTC `tzinfo` Python 2 readers have (default `none`:
    /// Python 3's `datetime.timezone.utc` is refused for them). `pytz` converts between
    /// `timezone.utc` and `pytz.utc` for each reader. See the transcoder's `Py2Utc`.
    #[serde(default)]
    pub py2_utc: Py2Utc,
    /// `store_protocol = 2 | "as-written"` (default `2`).
    #[serde(default)]
    pub store_protocol: Option<StoreProtocolRaw>,
    /// `on_unreadable = "miss" | "passthrough"` (default `"miss"`).
    #[serde(default)]
    pub on_unreadable: OnUnreadable,
    /// `firewall = "block" | "observe" | "allow"` (default `"block"`): what to do with a
    /// fetched pickle that references a denied global (os.system, subprocess.*, eval, ...):
    /// serve a miss, serve it and log, or do not check. Applies in every mode, `passthrough` included.
    #[serde(default)]
    pub firewall: FirewallMode,
    /// `firewall_deny = ["module.name", "module.*"]`: extra denied globals for this route.
    #[serde(default)]
    pub firewall_deny: Vec<String>,
    /// `firewall_allow = ["module.name"]`: globals let through although denied by default.
    #[serde(default)]
    pub firewall_allow: Vec<String>,
    /// `firewall_only = ["myapp.*", "module.Class"]`: when this list or `[firewall] only` has
    /// entries, a global passes only if one names it (or the value types of the standard
    /// library the firewall knows); the deny rules still apply first.
    #[serde(default)]
    pub firewall_only: Vec<String>,
}

fn default_pickle_flag() -> u32 {
    1
}
fn default_zlib_flag() -> u32 {
    8
}

impl RouteConfig {
    /// A default-policy route for `prefix` on `pool`.
    pub fn new(prefix: &str, pool: &str) -> RouteConfig {
        RouteConfig {
            name: None,
            prefix: prefix.to_string(),
            pool: pool.to_string(),
            mode: Mode::default(),
            pickle_flag: 1,
            zlib_flag: 8,
            text_flag: 0,
            py2_text: Py2Text::default(),
            py3_str: Py3Str::default(),
            py2_classic: Vec::new(),
            py2_utc: Py2Utc::default(),
            store_protocol: None,
            on_unreadable: OnUnreadable::default(),
            firewall: FirewallMode::default(),
            firewall_deny: Vec::new(),
            firewall_allow: Vec::new(),
            firewall_only: Vec::new(),
        }
    }

    /// The configured name, or the prefix (`"default"` for the empty prefix).
    pub fn display_name(&self) -> String {
        match (&self.name, self.prefix.as_str()) {
            (Some(n), _) => n.clone(),
            (None, "") => "default".to_string(),
            (None, p) => p.to_string(),
        }
    }

    /// The route's own firewall entries.
    pub fn firewall_rules(&self) -> FirewallRules {
        FirewallRules {
            deny: self.firewall_deny.clone(),
            allow: self.firewall_allow.clone(),
            only: self.firewall_only.clone(),
        }
    }

    /// The validated store protocol (invalid values were reported by `validate`).
    pub fn store_protocol(&self) -> StoreProtocol {
        match &self.store_protocol {
            Some(StoreProtocolRaw::Name(n)) if n == "as-written" => StoreProtocol::AsWritten,
            _ => StoreProtocol::Two,
        }
    }
}

/// `[timeouts]`, in milliseconds.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TimeoutsConfig {
    /// `connect_ms = 1000`: connecting to a memcached server.
    #[serde(default = "default_1000")]
    pub connect_ms: u64,
    /// `request_ms = 1000`: from sending a request upstream to its complete reply. Past it the
    /// client gets `SERVER_ERROR` and the upstream connection is dropped.
    #[serde(default = "default_1000")]
    pub request_ms: u64,
    /// `shutdown_grace_ms = 5000`: how long SIGTERM waits for in-flight requests.
    #[serde(default = "default_5000")]
    pub shutdown_grace_ms: u64,
}

fn default_1000() -> u64 {
    1000
}
fn default_5000() -> u64 {
    5000
}

impl Default for TimeoutsConfig {
    fn default() -> Self {
        TimeoutsConfig {
            connect_ms: 1000,
            request_ms: 1000,
            shutdown_grace_ms: 5000,
        }
    }
}

impl TimeoutsConfig {
    /// The connect timeout.
    pub fn connect(&self) -> Duration {
        Duration::from_millis(self.connect_ms)
    }
    /// The request timeout.
    pub fn request(&self) -> Duration {
        Duration::from_millis(self.request_ms)
    }
    /// The shutdown grace period.
    pub fn shutdown_grace(&self) -> Duration {
        Duration::from_millis(self.shutdown_grace_ms)
    }
}

/// `[limits]`.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LimitsConfig {
    /// `item_size = 1048576`: largest value accepted (memcached's `-I`, default 1 MiB). Should
    /// match the memcached servers' setting.
    #[serde(default = "default_item_size")]
    pub item_size: usize,
    /// `max_connections = 4096`: client connections served at once; more are accepted and
    /// closed immediately. `serve` raises the soft open-file limit to fit them
    /// ([`crate::fd_limit`]).
    #[serde(default = "default_max_connections")]
    pub max_connections: usize,
    /// `idle_timeout_s = 0`: close client connections idle this long; `0` never does. At most
    /// [`MAX_TIMEOUT_S`].
    #[serde(default)]
    pub idle_timeout_s: u64,
    /// `max_pending = 1024`: requests of one client connection awaiting their replies; past it
    /// the proxy stops reading that client (back pressure).
    #[serde(default = "default_max_pending")]
    pub max_pending: usize,
    /// `max_pending_bytes = 134217728`: bytes one client connection may make the proxy hold for
    /// its requests and replies (each request reserves its largest possible reply, every key an
    /// `item_size` value, before it is sent upstream); past it the proxy stops reading that
    /// client. At least `item_size`.
    #[serde(default = "default_max_pending_bytes")]
    pub max_pending_bytes: usize,
    /// `write_stall_timeout_s = 30`: close a client that has not read any of its pending
    /// replies for this long (its requests already stopped being read); `0` never does, as
    /// memcached. At most [`MAX_TIMEOUT_S`].
    #[serde(default = "default_write_stall")]
    pub write_stall_timeout_s: u64,
    /// `max_inflated = 33554432`: largest size a zlib-compressed pickle (or bare string, with
    /// `text_flag`) may inflate to.
    #[serde(default = "default_max_inflated")]
    pub max_inflated: usize,
}

fn default_item_size() -> usize {
    1 << 20
}
/// Largest `max_connections` (one permit and one file descriptor each; a semaphore of more would
/// not drain at shutdown).
pub const MAX_CONNECTIONS: usize = 1_000_000;

/// The longest `idle_timeout_s` and `write_stall_timeout_s`: ten years (`0` turns either off).
pub const MAX_TIMEOUT_S: u64 = 10 * 365 * 24 * 3600;

fn default_max_connections() -> usize {
    4096
}
fn default_max_pending() -> usize {
    1024
}
fn default_max_pending_bytes() -> usize {
    128 << 20
}
fn default_write_stall() -> u64 {
    30
}
fn default_max_inflated() -> usize {
    32 << 20
}

impl Default for LimitsConfig {
    fn default() -> Self {
        LimitsConfig {
            item_size: default_item_size(),
            max_connections: default_max_connections(),
            idle_timeout_s: 0,
            max_pending: default_max_pending(),
            max_pending_bytes: default_max_pending_bytes(),
            write_stall_timeout_s: default_write_stall(),
            max_inflated: default_max_inflated(),
        }
    }
}

/// `[commands]`.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CommandsConfig {
    /// `flush_all = true`: forward `flush_all` to every server of every pool (Django's
    /// `cache.clear()` needs it). `false` answers it with
    /// `SERVER_ERROR flush_all disabled by configuration`.
    #[serde(default = "default_true")]
    pub flush_all: bool,
}

fn default_true() -> bool {
    true
}

impl Default for CommandsConfig {
    fn default() -> Self {
        CommandsConfig { flush_all: true }
    }
}

/// `[runtime]`.
#[derive(Clone, Debug, PartialEq, Eq, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RuntimeConfig {
    /// `workers = 0`: threads serving client and upstream connections; 0 = one per CPU core.
    /// A sidecar sharing its host's cores with the application may do better with 1 (README,
    /// "Performance"). Read at start-up only.
    #[serde(default)]
    pub workers: usize,
}

/// The most `[runtime] workers` may ask for.
pub const MAX_WORKERS: usize = 256;

/// One problem found in a configuration, with the TOML path it concerns.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Problem {
    /// TOML path, e.g. `route[2].pool`; empty for the whole file.
    pub path: String,
    /// What is wrong.
    pub message: String,
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.path.is_empty() {
            write!(f, "{}", self.message)
        } else {
            write!(f, "{}: {}", self.path, self.message)
        }
    }
}

/// Every problem found in a configuration.
#[derive(Debug, thiserror::Error)]
pub struct ConfigError {
    /// Where the configuration came from (file name or `"<flags>"`).
    pub source_name: String,
    /// The problems, in file order.
    pub problems: Vec<Problem>,
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}: {} problem(s)",
            self.source_name,
            self.problems.len()
        )?;
        for p in &self.problems {
            write!(f, "\n  {p}")?;
        }
        Ok(())
    }
}

impl ConfigError {
    /// The error on one line, problems joined with `; ` (its `Display` puts each on a line of
    /// its own, for people): what a log event carries, one line per event for line-based
    /// shippers.
    pub fn one_line(&self) -> String {
        let problems: Vec<String> = self.problems.iter().map(Problem::to_string).collect();
        format!(
            "{}: {} problem(s): {}",
            self.source_name,
            self.problems.len(),
            problems.join("; ")
        )
    }
}

fn problem(path: impl Into<String>, message: impl Into<String>) -> Problem {
    Problem {
        path: path.into(),
        message: message.into(),
    }
}

impl Config {
    /// Parses and validates a configuration.
    ///
    /// # Errors
    /// Every syntax error, unknown key, wrong type and failed check, each with its TOML path.
    pub fn from_toml_str(text: &str, source_name: &str) -> Result<Config, ConfigError> {
        let fail = |problems| ConfigError {
            source_name: source_name.to_string(),
            problems,
        };
        let table: toml::Table = text.parse().map_err(|e: toml::de::Error| {
            fail(vec![problem("", e.to_string().trim().to_string())])
        })?;
        let mut problems = Vec::new();
        let mut config = Config::default();
        let mut left_out = LeftOut::default();
        let (mut listener_at, mut route_at) = (Vec::new(), Vec::new());
        for (key, value) in table {
            match key.as_str() {
                "listener" => {
                    let entries = value.as_array().map(Vec::len);
                    (config.listeners, listener_at) = array(value, "listener", &mut problems);
                    left_out.listeners = entries.map_or(true, |n| listener_at.len() < n);
                }
                "route" => {
                    // The prefix of each entry, where it is a string, for `LeftOut`.
                    let prefixes: Vec<Option<String>> = match value.as_array() {
                        Some(items) => items
                            .iter()
                            .map(|r| Some(r.get("prefix")?.as_str()?.to_owned()))
                            .collect(),
                        None => vec![None],
                    };
                    (config.routes, route_at) = array(value, "route", &mut problems);
                    left_out.default_route = prefixes.iter().enumerate().any(|(i, p)| {
                        !route_at.contains(&i) && p.as_deref().map_or(true, str::is_empty)
                    });
                }
                "pool" => match value {
                    toml::Value::Table(pools) => {
                        for (name, mut pool) in pools {
                            let path = format!("pool.{name}");
                            // Its own section, so its problems carry the path `pool.NAME.tls`.
                            let tls = pool.as_table_mut().and_then(|t| t.remove("tls"));
                            let tls = tls.and_then(|t| {
                                section::<TlsConfig>(t, &format!("{path}.tls"), &mut problems)
                            });
                            match section::<PoolConfig>(pool, &path, &mut problems) {
                                Some(mut p) => {
                                    p.tls = tls;
                                    config.pools.insert(name, p);
                                }
                                None => left_out.pools.push(name),
                            }
                        }
                    }
                    _ => {
                        problems.push(problem("pool", "expected tables [pool.NAME]"));
                        left_out.pool_section = true;
                    }
                },
                "timeouts" => {
                    config.timeouts = section(value, "timeouts", &mut problems).unwrap_or_default()
                }
                "limits" => {
                    config.limits = section(value, "limits", &mut problems).unwrap_or_default()
                }
                "commands" => {
                    config.commands = section(value, "commands", &mut problems).unwrap_or_default()
                }
                "log" => config.log = section(value, "log", &mut problems).unwrap_or_default(),
                "admin" => config.admin = section(value, "admin", &mut problems),
                "firewall" => {
                    config.firewall = section(value, "firewall", &mut problems).unwrap_or_default()
                }
                "runtime" => {
                    config.runtime = section(value, "runtime", &mut problems).unwrap_or_default()
                }
                other => problems.push(problem(
                    other,
                    format!("unknown section, expected one of: {}", SECTIONS.join(", ")),
                )),
            }
        }
        for (name, pool) in &config.pools {
            if let Some(tls) = &pool.tls {
                problems.extend(tls.load(&format!("pool.{name}.tls")));
            }
        }
        let mut checks = config.validate_parsed(&left_out);
        renumber(&mut checks, "listener", &listener_at);
        renumber(&mut checks, "route", &route_at);
        problems.extend(checks);
        if problems.is_empty() {
            Ok(config)
        } else {
            Err(fail(problems))
        }
    }

    /// Reads, parses and validates a configuration file.
    ///
    /// # Errors
    /// The file cannot be read, or any problem [`Config::from_toml_str`] reports.
    pub fn load(path: &Path) -> Result<Config, ConfigError> {
        let name = path.display().to_string();
        let text = std::fs::read_to_string(path).map_err(|e| ConfigError {
            source_name: name.clone(),
            problems: vec![problem("", format!("cannot read file: {e}"))],
        })?;
        Config::from_toml_str(&text, &name)
    }

    /// The quick-start configuration: listeners from `(address, client)` pairs and one pool
    /// named `default` of `upstreams`, with a default-policy default route.
    pub fn quick(listeners: &[(String, ClientRuntime)], upstreams: &[String]) -> Config {
        let mut config = Config::default();
        for (address, client) in listeners {
            config.listeners.push(ListenerConfig {
                address: address.clone(),
                client: *client,
                name: None,
                get_errors: GetErrors::default(),
            });
        }
        config.pools.insert(
            "default".to_string(),
            PoolConfig {
                servers: upstreams.to_vec(),
                distribution: Distribution::default(),
                connections: default_connections(),
                tls: None,
            },
        );
        config.routes.push(RouteConfig::new("", "default"));
        config
    }

    /// The routes with the implied default route added when the file has none.
    pub fn effective_routes(&self) -> Vec<RouteConfig> {
        let mut routes = self.routes.clone();
        if !routes.iter().any(|r| r.prefix.is_empty()) {
            if let Some(pool) = self.pools.keys().next() {
                routes.push(RouteConfig::new("", pool));
            }
        }
        routes
    }
}

#[cfg(test)]
mod tests;
