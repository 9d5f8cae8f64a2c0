//! picklebridge: a memcache proxy that lets Python 2 and Python 3 web tiers share one memcached
//! cache, rewriting each pickled value for the runtime of the client that reads it.
//!
//! Module map (sans-IO modules never import tokio and never do I/O):
//! - [`pickle`]: opcode-level pickle transcoder (sans-IO, no value tree).
//! - [`protocol`]: memcache text and meta protocol codec (sans-IO).
//! - [`value`]: what wraps a pickle inside a memcache value: client flag bits, zlib (sans-IO).
//! - [`firewall`]: pickle firewall, deny-list matching on the globals a pickle references (pure).
//! - [`config`], [`route`]: TOML configuration, validated and compiled into a route table.
//! - [`server`], [`connection`], [`handler`], [`upstream`]: the async proxy.
//! - [`fd_limit`]: the open-file limit the configuration needs, raised at start-up.
//! - [`metrics`], [`telemetry`]: Prometheus metrics and the admin HTTP listener; tracing setup.
//! - [`cli`]: the subcommands of the `picklebridge` binary.
#![forbid(unsafe_code)]

pub mod cli;
pub mod config;
pub mod connection;
pub mod fd_limit;
pub mod firewall;
pub mod handler;
pub mod metrics;
pub mod pickle;
pub mod protocol;
pub mod route;
pub mod server;
pub mod telemetry;
pub mod upstream;
pub mod value;
