//! `picklebridge serve`: load the configuration (file and/or quick-start flags), bind, run the
//! proxy until SIGTERM/SIGINT, reload routes on SIGHUP.
//!
//! ```text
//! picklebridge serve --config config/picklebridge.toml
//! picklebridge serve --listen 127.0.0.1:11312 --client py3 --upstream 127.0.0.1:11211
//! picklebridge serve --listen 127.0.0.1:11311 --client py2 --listen 127.0.0.1:11312 --client py3 \
//!                    --upstream 10.0.0.1:11211 --upstream 10.0.0.2:11211
//! ```
//! A bad configuration exits 64 (EX_USAGE) listing every problem; a listener that cannot be
//! bound exits 69 (EX_UNAVAILABLE); 71 (EX_OSERR) when the runtime's threads or the signal
//! handlers cannot be set up, or when the hard open-file limit is below what the configuration
//! needs (as memcached for `-c`; the soft limit is raised to it), 70 (EX_SOFTWARE) when the
//! metrics cannot be registered.
//! SIGTERM or SIGINT drains connections for up to `shutdown_grace_ms` and exits 0 at most
//! `RUNTIME_SHUTDOWN` later, even with DNS lookups still waiting for an answer; a SIGINT
//! during the drain (Ctrl-C again) exits at once with 130, as if it had killed the process.
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use tokio::sync::watch;

use crate::config::{ClientRuntime, Config, ConfigError, ListenerConfig, Problem, TlsConfig};
use crate::metrics::Metrics;
use crate::route::RouteTable;
use crate::telemetry::{self, LogFormat};

/// Arguments of `picklebridge serve`.
#[derive(Clone, Debug, clap::Args)]
pub struct Args {
    /// Configuration file (TOML). See config/picklebridge.toml.
    #[arg(long, value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// Listen on this IP:port (repeatable; pairs with the --client given in the same position,
    /// or with the only --client).
    #[arg(long, value_name = "IP:PORT")]
    pub listen: Vec<String>,
    /// Runtime of the clients of the --listen in the same position: py2 | py3.
    #[arg(long, value_name = "py2|py3", value_parser = parse_client)]
    pub client: Vec<ClientRuntime>,
    /// memcached server host:port (repeatable, in the order the Python clients list them).
    /// With --config, replaces the servers of the default route's pool.
    #[arg(long, value_name = "HOST:PORT")]
    pub upstream: Vec<String>,
    /// Serve /metrics, /healthz and /readyz on this IP:port (overrides `listen` of the
    /// config's `[admin]` table).
    #[arg(long, value_name = "IP:PORT")]
    pub admin: Option<std::net::SocketAddr>,
}

fn parse_client(s: &str) -> Result<ClientRuntime, String> {
    match s {
        "py2" => Ok(ClientRuntime::Py2),
        "py3" => Ok(ClientRuntime::Py3),
        _ => Err(format!("`{s}`: expected py2 or py3")),
    }
}

/// Builds the configuration from the file and the flags, validated.
///
/// # Errors
/// Every problem of the file and the flags.
pub fn build_config(args: &Args) -> Result<Config, ConfigError> {
    let source = args
        .config
        .as_ref()
        .map(|p| p.display().to_string())
        .unwrap_or_else(|| "<command line>".into());
    let fail = |problems: Vec<Problem>| ConfigError {
        source_name: source.clone(),
        problems,
    };
    let mut flag_problems = Vec::new();
    let clients: Vec<ClientRuntime> = match (args.listen.len(), args.client.len()) {
        (n, m) if n == m => args.client.clone(),
        (n, 1) => vec![args.client[0]; n],
        (n, m) => {
            flag_problems.push(Problem {
                path: "--client".into(),
                message: format!(
                    "{n} --listen but {m} --client: give one --client, or one per --listen"
                ),
            });
            Vec::new()
        }
    };
    let listeners: Vec<(String, ClientRuntime)> =
        args.listen.iter().cloned().zip(clients).collect();
    let mut config = match &args.config {
        Some(path) => Config::load(path)?,
        None => {
            if args.listen.is_empty() || args.upstream.is_empty() {
                flag_problems.push(Problem {
                    path: String::new(),
                    message: "give --config FILE, or --listen IP:PORT --client py2|py3 --upstream HOST:PORT".into(),
                });
                return Err(fail(flag_problems));
            }
            Config::quick(&[], &args.upstream)
        }
    };
    if args.config.is_some() && !args.upstream.is_empty() {
        let routes = config.effective_routes();
        let pool = routes
            .iter()
            .find(|r| r.prefix.is_empty())
            .map(|r| r.pool.clone());
        if let Some(pool) = pool.and_then(|p| config.pools.get_mut(&p)) {
            pool.servers = args.upstream.clone();
        }
    }
    if let Some(listen) = args.admin {
        config.admin = Some(crate::metrics::AdminConfig { listen });
    }
    for (address, client) in listeners {
        config.listeners.push(ListenerConfig {
            address,
            client,
            name: None,
            get_errors: crate::config::GetErrors::default(),
        });
    }
    let unpaired = !flag_problems.is_empty();
    let mut checks = config.validate();
    if unpaired {
        // The --listen flags were left out for the --client count: not a missing listener.
        checks.retain(|p| p.path != "listener");
    }
    flag_problems.extend(checks);
    if flag_problems.is_empty() {
        Ok(config)
    } else {
        Err(fail(flag_problems))
    }
}

/// Runs the subcommand.
pub fn run(args: Args) -> ExitCode {
    let config = match build_config(&args) {
        Ok(c) => c,
        Err(e) => {
            let format = args.config.as_deref().map(telemetry::format_of_file);
            let format = format.unwrap_or_default();
            telemetry::fatal(format, &e, "invalid configuration", &e.one_line());
            return ExitCode::from(super::EX_USAGE);
        }
    };
    let format = config.log.format;
    if let Err(e) = telemetry::init(&config.log) {
        fatal(format, "cannot set up logging", &e);
        return ExitCode::from(super::EX_USAGE);
    }
    // Before any socket: past the soft limit, accept fails with EMFILE and clients wait unanswered.
    match crate::fd_limit::ensure(crate::fd_limit::Budget::of(&config)) {
        Ok(r) if r.to != r.from => {
            tracing::info!(
                from = r.from,
                to = r.to,
                hard = r.hard,
                "open-file limit raised"
            );
        }
        Ok(r) => tracing::debug!(soft = r.to, hard = r.hard, "open-file limit"),
        Err(e) => {
            fatal(format, "open-file limit too low", &e);
            return ExitCode::from(super::EX_OSERR);
        }
    }
    let mut builder = tokio::runtime::Builder::new_multi_thread();
    if config.runtime.workers > 0 {
        builder.worker_threads(config.runtime.workers);
    }
    let runtime = match builder.enable_all().build() {
        Ok(rt) => rt,
        Err(e) => {
            let e = format!("cannot start the async runtime: {e}");
            fatal(format, "cannot start the async runtime", &e);
            return ExitCode::from(super::EX_OSERR);
        }
    };
    let code = runtime.block_on(serve(args, config));
    // Dropping the runtime would wait for every blocking task, and a DNS lookup (getaddrinfo,
    // run on the blocking pool by `lookup_host`) cannot be cancelled: with a resolver that does
    // not answer, the process outlived `shutdown_grace_ms` by the resolver's timeouts (9.5 s
    // with `timeout:5 attempts:2`). The drain is over here; what is still running is abandoned
    // at exit.
    runtime.shutdown_timeout(RUNTIME_SHUTDOWN);
    code
}

/// How long, after the drain, the runtime may take to drop its remaining tasks before the
/// process exits anyway (blocking tasks still running are abandoned).
const RUNTIME_SHUTDOWN: std::time::Duration = std::time::Duration::from_millis(250);

/// [`telemetry::fatal`] printing `picklebridge: {error}` in plain format; `message` is the JSON
/// event's message.
fn fatal(format: LogFormat, message: &str, error: &dyn std::fmt::Display) {
    let error = error.to_string();
    telemetry::fatal(
        format,
        &format_args!("picklebridge: {error}"),
        message,
        &error,
    );
}

async fn serve(args: Args, config: Config) -> ExitCode {
    use tokio::signal::unix::{signal, SignalKind};
    let format = config.log.format;
    // Handlers first: a signal that arrives once the ports are open must be handled gracefully
    // (the default action of SIGTERM and SIGHUP is to terminate).
    let (term, int, hup) = match (
        signal(SignalKind::terminate()),
        signal(SignalKind::interrupt()),
        signal(SignalKind::hangup()),
    ) {
        (Ok(t), Ok(i), Ok(h)) => (t, i, h),
        (t, i, h) => {
            let e = [t.err(), i.err(), h.err()].into_iter().flatten().next();
            let e = e.map_or_else(String::new, |e| format!(": {e}"));
            let e = format!("cannot install signal handlers{e}");
            fatal(format, "cannot install signal handlers", &e);
            return ExitCode::from(super::EX_OSERR);
        }
    };
    let listeners = match crate::server::bind(&config).await {
        Ok(l) => l,
        Err(e) => {
            fatal(format, "cannot listen", &e);
            return ExitCode::from(super::EX_UNAVAILABLE);
        }
    };
    let registry = prometheus::Registry::new();
    let metrics = match Metrics::register(&registry) {
        Ok(m) => m,
        Err(e) => {
            let e = format!("cannot register metrics: {e}");
            fatal(format, "cannot register metrics", &e);
            return ExitCode::from(super::EX_SOFTWARE);
        }
    };
    let admin = match &config.admin {
        None => None,
        Some(a) => match tokio::net::TcpListener::bind(a.listen).await {
            Ok(socket) => {
                tracing::info!(address = %a.listen, "admin listener (/metrics, /healthz, /readyz)");
                if !a.listen.ip().is_loopback() {
                    tracing::warn!(address = %a.listen, "admin listener is not on a loopback address");
                }
                Some(crate::server::Admin { socket, registry })
            }
            Err(e) => {
                let error = format!("cannot listen on {} (admin): {e}", a.listen);
                fatal(format, "cannot listen (admin)", &error);
                return ExitCode::from(super::EX_UNAVAILABLE);
            }
        },
    };
    let workers = tokio::runtime::Handle::current().metrics().num_workers();
    tracing::info!(workers, "runtime");
    let table = Arc::new(RouteTable::compile(&config, &metrics));
    for (name, pool) in &config.pools {
        tracing::info!(pool = %name, servers = ?pool.servers, tls = pool.tls.is_some(), "pool");
        for server in &pool.servers {
            warn_if_unresolved(name, server, config.timeouts.connect());
        }
    }
    for r in table.routes() {
        tracing::info!(route = %r.name, prefix = %String::from_utf8_lossy(&r.prefix), mode = r.mode.as_str(), "route");
    }
    let (routes_tx, routes_rx) = watch::channel(table);
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel();
    tokio::spawn(on_stop_signals(term, int, stop_tx));
    let reload = tokio::spawn(reload_on_sighup(
        hup,
        args,
        config.clone(),
        routes_tx,
        metrics.clone(),
    ));
    crate::server::run(listeners, config, routes_rx, metrics, admin, async {
        let _ = stop_rx.await;
    })
    .await;
    reload.abort();
    tracing::info!("stopped");
    ExitCode::SUCCESS
}

/// Start-up check of an upstream given by name: a `host:port` whose host does not resolve is
/// logged once, naming pool and server. Not fatal: the server's connection tasks retry
/// resolution on every connect attempt (with back-off, counted in
/// `upstream_connect_failures_total`) and its keys get `SERVER_ERROR` until the name resolves,
/// so a DNS outage at start-up neither stops the proxy nor needs a restart to recover from.
fn warn_if_unresolved(pool: &str, server: &str, bound: std::time::Duration) {
    if server.parse::<std::net::SocketAddr>().is_ok() {
        return;
    }
    let (pool, server) = (pool.to_owned(), server.to_owned());
    tokio::spawn(async move {
        let lookup = tokio::time::timeout(bound, tokio::net::lookup_host(&server)).await;
        let error = match lookup.map(|r| r.map(|mut addrs| addrs.next().is_some())) {
            Ok(Ok(true)) => return,
            Ok(Ok(false)) => "no addresses".to_owned(),
            Ok(Err(e)) => e.to_string(),
            Err(_) => format!("no answer within {} ms", bound.as_millis()),
        };
        tracing::warn!(
            pool = %pool,
            server = %server,
            error = %error,
            "upstream server name does not resolve: its keys get SERVER_ERROR until it does (retried on every reconnect)"
        );
    });
}

/// The first SIGTERM or SIGINT tells `stop` (the proxy drains its connections). A SIGINT while
/// it drains ends the process at once with 130 (128 + SIGINT), as the signal's default action
/// would: whoever pressed Ctrl-C twice does not want to wait out the grace period. A repeated
/// SIGTERM does not: a supervisor that forwards SIGTERM to a process group can deliver it twice,
/// and the drain is what it asked for (SIGKILL still ends it).
async fn on_stop_signals(
    mut term: tokio::signal::unix::Signal,
    mut int: tokio::signal::unix::Signal,
    stop: tokio::sync::oneshot::Sender<()>,
) {
    tokio::select! {
        _ = term.recv() => tracing::info!("SIGTERM received"),
        _ = int.recv() => tracing::info!("SIGINT received"),
    }
    let _ = stop.send(());
    loop {
        tokio::select! {
            Some(()) = term.recv() => tracing::info!("SIGTERM received again: still draining (SIGINT or SIGKILL ends it at once)"),
            Some(()) = int.recv() => break,
            // Both streams ended: the runtime is going down.
            else => return,
        }
    }
    tracing::warn!("SIGINT received while draining: exiting without waiting for connections");
    std::process::exit(128 + 2);
}

/// On SIGHUP: re-read the file, validate, and swap the route table (routes and the firewall's
/// entries) and re-read the TLS files. A bad file, or one whose pools differ from the running
/// ones, keeps the old table and logs why. Sections read only at start-up that differ in the
/// file are named in a warning: they take effect at the next restart.
async fn reload_on_sighup(
    mut hup: tokio::signal::unix::Signal,
    args: Args,
    running: Config,
    routes: watch::Sender<Arc<RouteTable>>,
    metrics: Metrics,
) {
    while hup.recv().await.is_some() {
        match build_config(&args) {
            Ok(new) if same_pools(&running, &new) => {
                // The TLS files were re-read by build_config: connections opened from now on
                // use them (certificate rotation without a restart).
                for (old, new) in running.pools.values().zip(new.pools.values()) {
                    if let (Some(old), Some(new)) = (&old.tls, &new.tls) {
                        old.material.replace_from(&new.material);
                    }
                }
                let table = Arc::new(RouteTable::compile(&new, &metrics));
                tracing::info!(routes = table.routes().len(), "routes reloaded");
                let pending = restart_only_changes(&running, &new);
                if !pending.is_empty() {
                    tracing::warn!(
                        sections = pending.join(", "),
                        "changed in the file but read only at start-up: they take effect at the next restart"
                    );
                }
                let _ = routes.send(table);
                metrics.config_reloaded();
            }
            Ok(_) => {
                tracing::error!("reload rejected: pools, servers, connections or TLS settings changed (restart to change them); keeping the old routes");
                metrics.config_reload_failed();
            }
            Err(e) => {
                tracing::error!(error = %e.one_line(), "reload failed; keeping the old routes");
                metrics.config_reload_failed();
            }
        }
    }
}

/// The sections of a reloaded configuration that differ from the running one but are read only
/// at start-up (listeners, timeouts, limits, commands, log, admin, runtime).
fn restart_only_changes(running: &Config, new: &Config) -> Vec<&'static str> {
    [
        ("listener", running.listeners == new.listeners),
        ("timeouts", running.timeouts == new.timeouts),
        ("limits", running.limits == new.limits),
        ("commands", running.commands == new.commands),
        ("log", running.log == new.log),
        ("admin", running.admin == new.admin),
        ("runtime", running.runtime == new.runtime),
    ]
    .into_iter()
    .filter(|(_, same)| !same)
    .map(|(name, _)| name)
    .collect()
}

/// Whether a reloaded configuration has the pools, servers, connection counts and TLS settings
/// of the running one (those need a restart to change).
fn same_pools(running: &Config, new: &Config) -> bool {
    let tls_same = |a: &Option<TlsConfig>, b: &Option<TlsConfig>| match (a, b) {
        (None, None) => true,
        (Some(a), Some(b)) => a.same_settings(b),
        _ => false,
    };
    running.pools.len() == new.pools.len()
        && running
            .pools
            .iter()
            .zip(&new.pools)
            .all(|((n1, p1), (n2, p2))| {
                n1 == n2
                    && p1.servers == p2.servers
                    && p1.connections == p2.connections
                    && tls_same(&p1.tls, &p2.tls)
            })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(
        config: Option<&str>,
        listen: &[&str],
        client: &[ClientRuntime],
        upstream: &[&str],
    ) -> Args {
        Args {
            config: config.map(PathBuf::from),
            listen: listen.iter().map(|s| s.to_string()).collect(),
            client: client.to_vec(),
            upstream: upstream.iter().map(|s| s.to_string()).collect(),
            admin: None,
        }
    }

    #[test]
    fn quick_start_flags() {
        use ClientRuntime::*;
        let c = build_config(&args(
            None,
            &["127.0.0.1:1", "127.0.0.1:2"],
            &[Py2, Py3],
            &["127.0.0.1:11211"],
        ))
        .unwrap();
        assert_eq!(c.listeners.len(), 2);
        assert_eq!(c.listeners[1].client, Py3);
        let c = build_config(&args(
            None,
            &["127.0.0.1:1", "127.0.0.1:2"],
            &[Py3],
            &["a:1", "b:2"],
        ))
        .unwrap();
        assert!(c.listeners.iter().all(|l| l.client == Py3));
        assert_eq!(c.pools["default"].servers, ["a:1", "b:2"]);
        let e = build_config(&args(
            None,
            &["127.0.0.1:1", "x", "127.0.0.1:3"],
            &[Py2, Py3],
            &[],
        ))
        .unwrap_err();
        assert!(e.problems.len() >= 2, "{e}");
        assert!(build_config(&args(None, &[], &[], &[])).is_err());
        // Unpaired --client flags are one problem, not also a missing listener.
        let e = build_config(&args(
            None,
            &["127.0.0.1:1"],
            &[Py2, Py3, Py2],
            &["127.0.0.1:11211"],
        ))
        .unwrap_err();
        let paths: Vec<&str> = e.problems.iter().map(|p| p.path.as_str()).collect();
        assert_eq!(paths, ["--client"], "{e}");
        // The proxy in front of itself.
        let e = build_config(&args(
            None,
            &["127.0.0.1:11312"],
            &[Py3],
            &["127.0.0.1:11312"],
        ))
        .unwrap_err();
        assert!(e.problems[0].message.contains("loop back"), "{e}");
    }

    #[test]
    fn upstream_overrides_the_default_pool_of_a_file() {
        let file = concat!(env!("CARGO_MANIFEST_DIR"), "/config/demo.toml");
        let c = build_config(&args(Some(file), &[], &[], &["127.0.0.1:5555"])).unwrap();
        assert_eq!(c.pools["main"].servers, ["127.0.0.1:5555"]);
        assert_eq!(c.listeners.len(), 2);
    }

    #[test]
    fn reload_needs_the_same_pools_servers_and_tls_settings() {
        let plain = Config::quick(&[], &["127.0.0.1:11211".to_string()]);
        let with_ca = |ca: &str| {
            let mut c = plain.clone();
            c.pools.get_mut("default").unwrap().tls = Some(TlsConfig {
                ca_file: PathBuf::from(ca),
                server_name: None,
                cert_file: None,
                key_file: None,
                material: Default::default(),
            });
            c
        };
        assert!(same_pools(&plain, &plain.clone()));
        assert!(same_pools(&with_ca("a.pem"), &with_ca("a.pem")));
        assert!(!same_pools(&plain, &with_ca("a.pem")));
        assert!(!same_pools(&with_ca("a.pem"), &with_ca("b.pem")));
        let mut moved = plain.clone();
        moved.pools.get_mut("default").unwrap().servers = vec!["127.0.0.1:11212".into()];
        assert!(!same_pools(&plain, &moved));
        let mut more = plain.clone();
        more.pools.get_mut("default").unwrap().connections = 4;
        assert!(!same_pools(&plain, &more));
    }

    #[test]
    fn a_reload_names_the_start_up_only_sections_that_changed() {
        let running = Config::quick(&[], &["127.0.0.1:11211".to_string()]);
        assert!(restart_only_changes(&running, &running.clone()).is_empty());
        let mut new = running.clone();
        new.timeouts.request_ms += 1;
        new.limits.max_pending += 1;
        new.commands.flush_all = !new.commands.flush_all;
        new.runtime.workers = 1;
        new.routes[0].mode = crate::config::Mode::Observe;
        assert_eq!(
            restart_only_changes(&running, &new),
            ["timeouts", "limits", "commands", "runtime"],
            "routes reload; these do not"
        );
    }
}
