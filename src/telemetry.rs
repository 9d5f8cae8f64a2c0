//! Logging setup: one [`init`] installing a `tracing` subscriber from the `[log]` section
//! ([`LogConfig`]), with `RUST_LOG` overriding the configured level, plain or JSON lines on
//! stderr; [`fatal`] for the errors that stop the start, in the same format; and
//! [`RateLimiter`] / [`warn_refused`] for per-value warnings that must not flood the log.
//! Never logs value bytes; keys only at trace level (../shared/STYLE.md rule 18).

use std::sync::Mutex;
use std::time::{Duration, Instant};

use tracing_subscriber::EnvFilter;

/// The `[log]` section of the configuration.
#[derive(Clone, Debug, PartialEq, Eq, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LogConfig {
    /// Filter in `tracing` directive syntax: a level (`error`, `warn`, `info`, `debug`, `trace`)
    /// or per-module directives such as `info,picklebridge::handler=debug`. Default `info`.
    /// The `RUST_LOG` environment variable, when set, replaces it.
    #[serde(default = "default_level")]
    pub level: String,
    /// Line format: `plain` (human-readable) or `json` (one object per line). Default `plain`.
    #[serde(default)]
    pub format: LogFormat,
}

/// Log line format.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    /// Human-readable lines.
    #[default]
    Plain,
    /// One JSON object per line, for log shippers.
    Json,
}

fn default_level() -> String {
    "info".to_owned()
}

impl Default for LogConfig {
    fn default() -> Self {
        LogConfig {
            level: default_level(),
            format: LogFormat::Plain,
        }
    }
}

/// Why logging could not be set up.
#[derive(Debug, thiserror::Error)]
pub enum TelemetryError {
    /// The `level` (or `RUST_LOG`) is not a valid filter.
    #[error("invalid log filter {filter:?}: {message}")]
    Filter {
        /// The filter text.
        filter: String,
        /// What the parser said.
        message: String,
    },
    /// A global subscriber was already installed (e.g. `init` called twice).
    #[error("a tracing subscriber is already installed")]
    AlreadyInstalled,
}

impl LogConfig {
    /// Checks that `level` parses as a filter, for the configuration's `validate()`.
    ///
    /// # Errors
    /// [`TelemetryError::Filter`] with the parser's message.
    pub fn validate(&self) -> Result<(), TelemetryError> {
        parse_config_filter(&self.level).map(drop)
    }
}

const LEVELS: &[&str] = &["off", "error", "warn", "info", "debug", "trace"];

/// Like [`parse_filter`], but a bare word must be a level: in directive syntax `inof` would mean
/// "everything from target `inof`", silently turning a typo into an empty log.
fn parse_config_filter(filter: &str) -> Result<EnvFilter, TelemetryError> {
    for directive in filter.split(',').map(str::trim) {
        let bare = !directive.is_empty() && !directive.contains(['=', '[']);
        if bare && !LEVELS.contains(&directive.to_ascii_lowercase().as_str()) {
            return Err(TelemetryError::Filter {
                filter: filter.to_owned(),
                message: format!(
                    "{directive:?} is not a level (off, error, warn, info, debug, trace); \
                     per-target levels are written target=level"
                ),
            });
        }
    }
    parse_filter(filter)
}

fn parse_filter(filter: &str) -> Result<EnvFilter, TelemetryError> {
    EnvFilter::builder()
        .parse(filter)
        .map_err(|e| TelemetryError::Filter {
            filter: filter.to_owned(),
            message: e.to_string(),
        })
}

/// Installs the global subscriber: the filter is `RUST_LOG` if set and non-empty, else
/// `config.level`; output goes to stderr as plain or JSON lines.
///
/// # Errors
/// [`TelemetryError::Filter`] for a bad filter, [`TelemetryError::AlreadyInstalled`] if called
/// twice.
pub fn init(config: &LogConfig) -> Result<(), TelemetryError> {
    let filter = match std::env::var("RUST_LOG") {
        Ok(env) if !env.trim().is_empty() => parse_filter(&env)?,
        _ => parse_config_filter(&config.level)?,
    };
    // Colours only for a person at a terminal: a file, a pipe or journald gets plain text (and
    // `NO_COLOR`, https://no-color.org, turns them off there too).
    let ansi = std::io::IsTerminal::is_terminal(&std::io::stderr())
        && std::env::var_os("NO_COLOR").map_or(true, |v| v.is_empty());
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(ansi)
        .with_writer(std::io::stderr);
    let installed = match config.format {
        LogFormat::Plain => builder.try_init(),
        LogFormat::Json => builder.json().flatten_event(true).try_init(),
    };
    installed.map_err(|_| TelemetryError::AlreadyInstalled)
}

/// Reports an error that ends the process before or while it starts, on stderr whatever the
/// log filter says: `plain` as the text itself (for a person starting the proxy), `json` as one
/// JSON object on one line, shaped like the log's events (`level`, `message`, `error`), so a
/// shipper reading the log does not get plain text in it. Works with or without [`init`].
pub fn fatal(format: LogFormat, plain: &dyn std::fmt::Display, message: &str, error: &str) {
    match format {
        LogFormat::Plain => eprintln!("{plain}"),
        LogFormat::Json => {
            let subscriber = tracing_subscriber::fmt()
                .json()
                .flatten_event(true)
                .with_ansi(false)
                .with_writer(std::io::stderr)
                .finish();
            tracing::subscriber::with_default(subscriber, || {
                tracing::error!(error = %error, "{message}");
            });
        }
    }
}

/// The `[log] format` a configuration file asks for, read leniently from a file that may fail
/// to load otherwise (so that its errors can be reported in that format): `plain` when the
/// file cannot be read or parsed, or does not say `format = "json"`.
pub fn format_of_file(path: &std::path::Path) -> LogFormat {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let table: toml::Table = text.parse().unwrap_or_default();
    let format = table.get("log").and_then(|l| l.get("format"));
    match format.and_then(toml::Value::as_str) {
        Some("json") => LogFormat::Json,
        _ => LogFormat::Plain,
    }
}

/// Lets through at most `burst` events per `period` and counts the rest, so a stream of bad
/// values costs a few log lines per period, not one per value.
#[derive(Debug)]
pub struct RateLimiter {
    period: Duration,
    burst: u32,
    state: Mutex<Window>,
}

#[derive(Debug)]
struct Window {
    start: Option<Instant>,
    allowed: u32,
    suppressed: u64,
}

impl RateLimiter {
    /// A limiter allowing `burst` events per `period`.
    pub fn new(period: Duration, burst: u32) -> Self {
        RateLimiter {
            period,
            burst,
            state: Mutex::new(Window {
                start: None,
                allowed: 0,
                suppressed: 0,
            }),
        }
    }

    /// Registers an event at `now`. `Some(n)` means "log it", with `n` events suppressed since
    /// the last one logged; `None` means "drop it" (it is counted).
    pub fn check_at(&self, now: Instant) -> Option<u64> {
        // A poisoned lock only means another thread panicked mid-update of three integers.
        let mut w = self.state.lock().unwrap_or_else(|p| p.into_inner());
        let expired = match w.start {
            None => true,
            Some(s) => now.saturating_duration_since(s) >= self.period,
        };
        if expired {
            w.start = Some(now);
            w.allowed = 0;
        }
        if w.allowed < self.burst {
            w.allowed += 1;
            Some(std::mem::take(&mut w.suppressed))
        } else {
            w.suppressed += 1;
            None
        }
    }

    /// [`RateLimiter::check_at`] with the current time.
    pub fn check(&self) -> Option<u64> {
        self.check_at(Instant::now())
    }
}

impl Default for RateLimiter {
    /// 10 events per minute.
    fn default() -> Self {
        RateLimiter::new(Duration::from_secs(60), 10)
    }
}

/// Logs, rate-limited, that a value was refused by the transcoder and forwarded unchanged
/// (served as memcached holds it, or stored as the client sent it): names the direction
/// (`fetch`, `store`), the route, its configured key prefix and the reason; never the key or
/// the value.
pub fn warn_refused(
    limiter: &RateLimiter,
    direction: &str,
    route: &str,
    key_prefix: &str,
    reason: &str,
) {
    if let Some(suppressed) = limiter.check() {
        tracing::warn!(
            direction,
            route,
            key_prefix,
            reason,
            suppressed,
            "transcoder refused a value; forwarded unchanged"
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_format_of_a_file_that_does_not_load_is_read_leniently() {
        let dir = tempfile::tempdir().unwrap();
        let file = |name: &str, text: &str| {
            let path = dir.path().join(name);
            std::fs::write(&path, text).unwrap();
            path
        };
        let json = file(
            "a.toml",
            "[[listener]]\nmode = 1\n[log]\nformat = \"json\"\n",
        );
        assert_eq!(format_of_file(&json), LogFormat::Json);
        let typo = file("b.toml", "[log]\nformat = \"jsn\"\n");
        assert_eq!(format_of_file(&typo), LogFormat::Plain);
        let broken = file("c.toml", "[log\nformat = \"json\"\n");
        assert_eq!(format_of_file(&broken), LogFormat::Plain);
        assert_eq!(format_of_file(&dir.path().join("none")), LogFormat::Plain);
    }

    #[test]
    fn log_config_defaults_and_rejects_unknown_keys() {
        let c: LogConfig = toml::from_str("").unwrap();
        assert_eq!(c, LogConfig::default());
        assert_eq!(c.level, "info");
        let c: LogConfig = toml::from_str("level = \"debug\"\nformat = \"json\"").unwrap();
        assert_eq!((c.level.as_str(), c.format), ("debug", LogFormat::Json));
        assert!(toml::from_str::<LogConfig>("levle = \"debug\"").is_err());
        assert!(toml::from_str::<LogConfig>("format = \"xml\"").is_err());
    }

    #[test]
    fn validate_reports_bad_filters() {
        let ok = LogConfig {
            level: "warn,picklebridge::handler=trace".into(),
            ..LogConfig::default()
        };
        assert!(ok.validate().is_ok());
        let bad = LogConfig {
            level: "loud".into(),
            ..LogConfig::default()
        };
        let err = bad.validate().unwrap_err().to_string();
        assert!(err.contains("\"loud\""), "{err}");
    }

    #[test]
    fn rate_limiter_allows_a_burst_per_period_and_reports_suppressed() {
        let t0 = Instant::now();
        let l = RateLimiter::new(Duration::from_secs(10), 2);
        assert_eq!(l.check_at(t0), Some(0));
        assert_eq!(l.check_at(t0), Some(0));
        assert_eq!(l.check_at(t0 + Duration::from_secs(1)), None);
        assert_eq!(l.check_at(t0 + Duration::from_secs(9)), None);
        assert_eq!(l.check_at(t0 + Duration::from_secs(10)), Some(2));
        assert_eq!(l.check_at(t0 + Duration::from_secs(10)), Some(0));
        assert_eq!(l.check_at(t0 + Duration::from_secs(11)), None);
    }
}
