//! [`Config::validate`]: what serde cannot check (references between sections, ranges,
//! duplicates, a pool server that is one of the proxy's own listeners), every problem at once.

use super::*;

impl Config {
    /// Checks everything serde cannot: references, ranges, duplicates. Returns all problems.
    ///
    /// A configuration without a default route (prefix `""`) is accepted when it has exactly
    /// one pool: the default route is then implied (see [`Config::effective_routes`]).
    pub fn validate(&self) -> Vec<Problem> {
        self.validate_parsed(&LeftOut::default())
    }

    /// [`Config::validate`] of what parsed: what was `left_out` for its own problems is not
    /// reported again as missing.
    pub(super) fn validate_parsed(&self, left_out: &LeftOut) -> Vec<Problem> {
        let mut out = Vec::new();
        if self.listeners.is_empty() && !left_out.listeners {
            out.push(problem("listener", "at least one [[listener]] is required"));
        }
        let mut addrs = HashSet::new();
        // Names known before binding: explicit ones, and defaults of a fixed port whose
        // address is fine (a bad or repeated address is reported as such).
        let mut names = BTreeMap::new();
        for (i, l) in self.listeners.iter().enumerate() {
            let fixed = match l.address.parse::<SocketAddr>() {
                Ok(a) if a.port() != 0 && !addrs.insert(a) => {
                    out.push(problem(
                        format!("listener[{i}].address"),
                        "duplicate address",
                    ));
                    false
                }
                Ok(a) => a.port() != 0,
                Err(_) => {
                    out.push(problem(
                        format!("listener[{i}].address"),
                        format!("`{}` is not an IP:port address", l.address),
                    ));
                    false
                }
            };
            if l.name.is_none() && !fixed {
                continue;
            }
            let name = l.display_name();
            if let Some(first) = names.insert(name.clone(), i) {
                let (path, how) = match l.name {
                    Some(_) => (format!("listener[{i}].name"), "name"),
                    None => (format!("listener[{i}]"), "default name"),
                };
                out.push(problem(
                    path,
                    format!("{how} `{name}` is also listener[{first}]'s (the `listener` label of logs and metrics): give each a unique `name`"),
                ));
                names.insert(name, first);
            }
        }
        if self.pools.is_empty() && left_out.pools.is_empty() && !left_out.pool_section {
            out.push(problem("pool", "at least one [pool.NAME] is required"));
        }
        for (name, pool) in &self.pools {
            if pool.servers.is_empty() {
                out.push(problem(
                    format!("pool.{name}.servers"),
                    "must list at least one server",
                ));
            }
            for (j, s) in pool.servers.iter().enumerate() {
                if !valid_host_port(s) {
                    out.push(problem(
                        format!("pool.{name}.servers[{j}]"),
                        format!("`{s}` is not host:port"),
                    ));
                }
            }
            if !(1..=64).contains(&pool.connections) {
                out.push(problem(
                    format!("pool.{name}.connections"),
                    "must be 1..=64",
                ));
            }
            // An explicit server_name is checked when the TLS files are loaded.
            if let Some(tls) = pool.tls.as_ref().filter(|t| t.server_name.is_none()) {
                for (j, s) in pool.servers.iter().enumerate() {
                    if let (true, Err(e)) = (valid_host_port(s), tls.server_name_for(s)) {
                        out.push(problem(format!("pool.{name}.servers[{j}]"), e));
                    }
                }
            }
        }
        self.validate_no_self_loop(&mut out);
        if let Err(e) = self.log.validate() {
            out.push(problem("log.level", e.to_string()));
        }
        if let Some(admin) = self.admin.as_ref().filter(|a| a.listen.port() != 0) {
            if self
                .listeners
                .iter()
                .any(|l| l.address.parse().ok() == Some(admin.listen))
            {
                out.push(problem(
                    "admin.listen",
                    "same address as a memcache listener",
                ));
            }
        }
        for e in self.firewall.validate() {
            out.push(problem("firewall", e.to_string()));
        }
        out.extend(self.validate_routes(left_out));
        self.validate_ranges(&mut out);
        out
    }

    /// A pool server that is one of the proxy's own listeners: each request would come back in
    /// as a new request, and again, until the request timeout (a review saw one `get` become 513).
    /// Servers given by name are not resolved for this.
    fn validate_no_self_loop(&self, out: &mut Vec<Problem>) {
        let listeners: Vec<(usize, SocketAddr)> = (self.listeners.iter().enumerate())
            .filter_map(|(i, l)| Some((i, l.address.parse().ok()?)))
            .collect();
        for (name, pool) in &self.pools {
            for (j, s) in pool.servers.iter().enumerate() {
                let Ok(server) = s.parse::<SocketAddr>() else {
                    continue;
                };
                if let Some((i, l)) = listeners.iter().find(|(_, l)| loops_back(server, *l)) {
                    out.push(problem(
                        format!("pool.{name}.servers[{j}]"),
                        format!("`{s}` is this proxy's own listener[{i}] ({l}): requests would loop back into it"),
                    ));
                }
            }
        }
    }

    fn validate_routes(&self, left_out: &LeftOut) -> Vec<Problem> {
        let mut out = Vec::new();
        let mut prefixes = HashSet::new();
        let mut names = HashSet::new();
        for (i, r) in self.routes.iter().enumerate() {
            let path = |field: &str| format!("route[{i}].{field}");
            if !prefixes.insert(r.prefix.as_str()) {
                out.push(problem(
                    path("prefix"),
                    format!("duplicate prefix `{}`", r.prefix),
                ));
            }
            if r.prefix.bytes().any(|b| b <= b' ' || b == 0x7f) {
                out.push(problem(
                    path("prefix"),
                    "keys cannot contain spaces or control characters",
                ));
            }
            if !names.insert(r.display_name()) {
                out.push(problem(
                    path("name"),
                    format!("duplicate route name `{}`", r.display_name()),
                ));
            }
            let known = left_out.pool_section || left_out.pools.contains(&r.pool);
            if !self.pools.contains_key(&r.pool) && !known {
                out.push(problem(path("pool"), format!("no pool named `{}`", r.pool)));
            }
            for e in r.firewall_rules().validate() {
                out.push(problem(format!("route[{i}]"), format!("firewall_{e}")));
            }
            if r.pickle_flag == 0 {
                out.push(problem(
                    path("pickle_flag"),
                    "must have at least one bit set",
                ));
            }
            if r.zlib_flag & r.pickle_flag != 0 {
                out.push(problem(path("zlib_flag"), "must not overlap pickle_flag"));
            }
            if r.text_flag != 0 && !r.text_flag.is_power_of_two() {
                out.push(problem(path("text_flag"), "must be 0 or a single bit"));
            } else if matches!(r.text_flag, 1 | 2 | 4 | 8) {
                // Integers would be served as text and text parsed as an integer, a value
                // given the zlib bit would be inflated by its reader, whatever the route says.
                out.push(problem(
                    path("text_flag"),
                    "1, 2, 4 and 8 mark pickles, integers, longs and zlib in python-memcached and pymemcache (their text bit is 16)",
                ));
            } else if r.text_flag & (r.pickle_flag | r.zlib_flag) != 0 {
                out.push(problem(
                    path("text_flag"),
                    "must not overlap pickle_flag or zlib_flag",
                ));
            }
            for (j, g) in r.py2_classic.iter().enumerate() {
                if g.parse::<Global>().is_err() {
                    out.push(problem(
                        format!("route[{i}].py2_classic[{j}]"),
                        format!("`{g}`: expected \"module.Class\""),
                    ));
                }
            }
            match &r.store_protocol {
                None | Some(StoreProtocolRaw::Number(2)) => {}
                Some(StoreProtocolRaw::Name(n)) if n == "as-written" => {}
                Some(other) => out.push(problem(
                    path("store_protocol"),
                    format!("{other:?}: expected 2 or \"as-written\""),
                )),
            }
        }
        let pools = self.pools.len() + left_out.pools.len();
        let has_default = left_out.default_route || self.routes.iter().any(|r| r.prefix.is_empty());
        if !has_default && pools > 1 {
            out.push(problem(
                "route",
                "no default route: add a [[route]] with prefix = \"\" (required with several pools)",
            ));
        }
        out
    }

    fn validate_ranges(&self, out: &mut Vec<Problem>) {
        let t = &self.timeouts;
        for (name, v) in [("connect_ms", t.connect_ms), ("request_ms", t.request_ms)] {
            if !(1..=600_000).contains(&v) {
                out.push(problem(format!("timeouts.{name}"), "must be 1..=600000"));
            }
        }
        if self.runtime.workers > MAX_WORKERS {
            out.push(problem(
                "runtime.workers",
                format!("must be 0 (one per CPU core) to {MAX_WORKERS}"),
            ));
        }
        let l = &self.limits;
        if !(1024..=1 << 30).contains(&l.item_size) {
            out.push(problem("limits.item_size", "must be 1024..=1073741824"));
        }
        if !(1..=MAX_CONNECTIONS).contains(&l.max_connections) {
            out.push(problem(
                "limits.max_connections",
                format!("must be 1..={MAX_CONNECTIONS}"),
            ));
        }
        // A deadline is the last activity plus the timeout: past the clock's range it
        // overflowed, and every client connection panicked at its first request.
        for (name, v) in [
            ("idle_timeout_s", l.idle_timeout_s),
            ("write_stall_timeout_s", l.write_stall_timeout_s),
        ] {
            if v > MAX_TIMEOUT_S {
                out.push(problem(
                    format!("limits.{name}"),
                    format!("must be 0 (never) to {MAX_TIMEOUT_S}"),
                ));
            }
        }
        if l.max_pending == 0 {
            out.push(problem("limits.max_pending", "must be at least 1"));
        }
        if l.max_pending_bytes < l.item_size {
            out.push(problem(
                "limits.max_pending_bytes",
                "must be at least limits.item_size",
            ));
        }
        if l.max_inflated < l.item_size {
            out.push(problem(
                "limits.max_inflated",
                "must be at least limits.item_size",
            ));
        }
    }
}

/// Whether connecting to `server` reaches `listener`: the same address, or a listener on the
/// wildcard address (`0.0.0.0`, or `[::]`, which takes IPv4 too) and a loopback or wildcard
/// server address of its family, on its port. Port 0 is never known before binding.
fn loops_back(server: SocketAddr, listener: SocketAddr) -> bool {
    if listener.port() == 0 || server.port() != listener.port() {
        return false;
    }
    let (s, l) = (server.ip().to_canonical(), listener.ip().to_canonical());
    let local = s.is_loopback() || s.is_unspecified();
    s == l
        || (l.is_unspecified() && local && (s.is_ipv4() == l.is_ipv4() || l.is_ipv6()))
        // Connecting to the unspecified address reaches loopback (`0.0.0.0:P` is
        // `127.0.0.1:P`, `[::]:P` is `[::1]:P`, on Linux).
        || (s.is_unspecified()
            && (l == IpAddr::from(Ipv4Addr::LOCALHOST) || l == IpAddr::from(Ipv6Addr::LOCALHOST))
            && s.is_ipv4() == l.is_ipv4())
}

fn valid_host_port(s: &str) -> bool {
    if s.parse::<SocketAddr>().is_ok() {
        return true;
    }
    match s.rsplit_once(':') {
        Some((host, port)) => {
            !host.is_empty()
                && host
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '.' || c == '-' || c == '_')
                && port.parse::<u16>().is_ok_and(|p| p != 0)
        }
        None => false,
    }
}
