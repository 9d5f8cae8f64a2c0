//! The open-file limit (`RLIMIT_NOFILE`) the proxy needs for its configuration, and raising the
//! soft limit to it at start-up, as memcached does for `-c`.
//!
//! Every client connection, upstream connection and listener is a file descriptor. Below the
//! soft limit's worth of them `accept` fails with `EMFILE`: clients past it got no reply at all,
//! `client_connections_rejected_total` stayed 0 (the `max_connections` check never ran), and the
//! proxy could not reconnect to a restarted memcached. systemd's default soft limit is 1024,
//! below the default `max_connections` of 4096; its hard limit is far higher, so raising the soft
//! limit is what most hosts need. When the hard limit is too low too, `serve` refuses to start
//! (memcached exits 71 there as well) rather than run below its configured `max_connections`.
//!
//! This module only computes and sets the limit; it never lowers it.
use std::io;

use rlimit::Resource;

use crate::config::Config;

/// Descriptors kept beyond the ones counted per connection: standard streams, the runtime's
/// epoll and wake-up descriptors, the signal pipe, DNS lookups in flight, files read on SIGHUP,
/// refused clients being sent their `ERROR` line and the accept loop's spare descriptor.
pub const RESERVE: u64 = 64;

/// `watch` streams memcached serves at once (its `WATCHER_LIMIT`): each is a connection of its
/// own to a server, and a `watch` past the limit is refused by memcached, its connection closed.
pub const WATCHERS: usize = 20;

/// The descriptors a configuration can hold open at once, by what holds them.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Budget {
    /// `[limits] max_connections`: client connections, and the upstream connections of
    /// binary-protocol clients, which take one of its permits each (`connection.rs`).
    pub clients: u64,
    /// Every server's `connections`, plus the connections of its own a server opens for key
    /// dumps (at most `ALONE_AT_ONCE`) and `watch` streams (at most [`WATCHERS`]).
    pub upstream: u64,
    /// Memcache listeners, the admin listener and its connections (at most 64).
    pub listeners: u64,
    /// [`RESERVE`].
    pub reserve: u64,
}

impl Budget {
    /// The budget of a validated configuration.
    pub fn of(config: &Config) -> Budget {
        let per_server = |connections: usize| {
            (connections + crate::upstream::pool::ALONE_AT_ONCE + WATCHERS) as u64
        };
        let upstream = config
            .pools
            .values()
            .map(|p| p.servers.len() as u64 * per_server(p.connections))
            .sum();
        let admin = match config.admin {
            Some(_) => 1 + crate::metrics::admin::MAX_CONNECTIONS as u64,
            None => 0,
        };
        Budget {
            clients: config.limits.max_connections as u64,
            upstream,
            listeners: config.listeners.len() as u64 + admin,
            reserve: RESERVE,
        }
    }

    /// Every descriptor of the budget.
    pub fn total(&self) -> u64 {
        self.clients + self.upstream + self.listeners + self.reserve
    }

    /// The largest `max_connections` whose budget fits under `limit` (0 when none does).
    pub fn max_clients_under(&self, limit: u64) -> u64 {
        limit.saturating_sub(self.total() - self.clients)
    }
}

/// Why the limit cannot be made to fit.
#[derive(Debug, thiserror::Error)]
pub enum FdLimitError {
    /// The hard limit is below the budget; only root (or the service manager) can raise it.
    #[error(
        "the open-file limit is too low for this configuration: it needs {need} file descriptors \
         ({clients} for [limits] max_connections, {upstream} upstream, {listeners} for listeners \
         and admin, {reserve} spare) but the hard limit (RLIMIT_NOFILE) is {hard}; raise the hard \
         limit (LimitNOFILE= in a systemd unit, `ulimit -Hn` as root, `--ulimit nofile=` for \
         docker) to at least {need}, or lower [limits] max_connections to at most {max_fit}",
        need = .budget.total(),
        clients = .budget.clients,
        upstream = .budget.upstream,
        listeners = .budget.listeners,
        reserve = .budget.reserve,
    )]
    HardLimitTooLow {
        /// What the configuration needs.
        budget: Budget,
        /// The hard limit found.
        hard: u64,
        /// The largest `max_connections` that would fit.
        max_fit: u64,
    },
    /// `getrlimit`/`setrlimit` failed.
    #[error("cannot read or raise the open-file limit (RLIMIT_NOFILE): {0}")]
    Os(#[from] io::Error),
}

/// What [`ensure`] did: the soft limit before and after, and the hard limit.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Raised {
    /// Soft limit found.
    pub from: u64,
    /// Soft limit now (equal to `from` when it was already enough).
    pub to: u64,
    /// Hard limit.
    pub hard: u64,
}

/// The soft limit to set for `budget` given the current `(soft, hard)` limits: `soft` when it is
/// enough already, else the budget's total.
///
/// # Errors
/// [`FdLimitError::HardLimitTooLow`] when the budget is over `hard`.
pub fn plan(budget: Budget, soft: u64, hard: u64) -> Result<u64, FdLimitError> {
    let need = budget.total();
    if need <= soft {
        Ok(soft)
    } else if need <= hard {
        Ok(need)
    } else {
        Err(FdLimitError::HardLimitTooLow {
            budget,
            hard,
            max_fit: budget.max_clients_under(hard),
        })
    }
}

/// Raises the process's soft `RLIMIT_NOFILE` to `budget` when it is lower (never lowers it).
///
/// # Errors
/// [`FdLimitError::HardLimitTooLow`], or the system call's error.
pub fn ensure(budget: Budget) -> Result<Raised, FdLimitError> {
    let (soft, hard) = Resource::NOFILE.get()?;
    let to = plan(budget, soft, hard)?;
    if to != soft {
        Resource::NOFILE.set(to, hard)?;
    }
    Ok(Raised {
        from: soft,
        to,
        hard,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn budget(clients: u64) -> Budget {
        Budget {
            clients,
            upstream: 6,
            listeners: 2,
            reserve: RESERVE,
        }
    }

    #[test]
    fn the_default_configuration_counts_every_holder() {
        let mut config = Config::quick(
            &[("127.0.0.1:0".into(), crate::config::ClientRuntime::Py3)],
            &["127.0.0.1:11211".into(), "127.0.0.1:11212".into()],
        );
        config.admin = Some(crate::metrics::AdminConfig {
            listen: "127.0.0.1:0".parse().unwrap(),
        });
        let b = Budget::of(&config);
        assert_eq!(b.clients, 4096);
        assert_eq!(
            b.upstream,
            2 * (2 + 4 + 20),
            "2 servers, 2 connections, 4 alone and 20 watchers each"
        );
        assert_eq!(b.listeners, 1 + 1 + 64);
        assert_eq!(b.total(), 4096 + 52 + 66 + RESERVE);
    }

    #[test]
    fn the_soft_limit_is_raised_only_when_short_and_only_up_to_the_hard_one() {
        let need = budget(4096).total();
        assert_eq!(plan(budget(4096), 1024, 524_288).unwrap(), need);
        assert_eq!(plan(budget(4096), need, need).unwrap(), need);
        assert_eq!(
            plan(budget(100), 65_536, 65_536).unwrap(),
            65_536,
            "never lowered"
        );
        let e = plan(budget(4096), 128, 1024).unwrap_err();
        let FdLimitError::HardLimitTooLow { hard, max_fit, .. } = e else {
            panic!("{e}")
        };
        assert_eq!((hard, max_fit), (1024, 1024 - 8 - RESERVE));
        assert!(plan(budget(max_fit), 128, 1024).is_ok(), "max_fit fits");
        let text = plan(budget(4096), 128, 1024).unwrap_err().to_string();
        for part in [
            &need.to_string(),
            "hard limit (RLIMIT_NOFILE) is 1024",
            "max_connections to at most 952",
        ] {
            assert!(text.contains(part), "{part:?} in {text}");
        }
    }
}
