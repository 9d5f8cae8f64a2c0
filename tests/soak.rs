//! No-data-loss soak (bounded): real CPython 2.7 and 3 clients (python-memcached, highest pickle
//! protocol) write and read random pickled values for a shared key space through the proxy's
//! py2 and py3 listeners while memcached is restarted twice. Every read must be a miss or a value
//! written for that key, equal under the route policy (py3 text may read as `unicode` in py2,
//! py2 UTF-8 `str` as text in py3) — never corrupted, unreadable, or another key's. The checks
//! run inside each client (`tests/soak_client.py`); counts are printed at the end.

mod common;

use std::time::{Duration, Instant};

use common::python::{run, Py};
use common::servers::{Memcached, Proxy};
use picklebridge::config::ClientRuntime;

/// Client run time; memcached restarts at a third and two thirds of it.
const SECONDS: u64 = 24;
const CLIENTS_PER_RUNTIME: u64 = 3;

#[test]
fn py2_and_py3_clients_never_read_a_wrong_value_across_memcached_restarts() {
    let mut mc = Memcached::start();
    let proxy = Proxy::quick(
        &[ClientRuntime::Py2, ClientRuntime::Py3],
        &[mc.addr_string()],
    );
    let mut clients = Vec::new();
    for (listener, py) in [(0, Py::Py2), (1, Py::Py3)] {
        for i in 0..CLIENTS_PER_RUNTIME {
            let addr = proxy.addr(listener).to_string();
            let id = (listener as u64) * 10 + i + 1;
            clients.push(std::thread::spawn(move || {
                let args = [
                    "tests/soak_client.py".to_string(),
                    addr,
                    id.to_string(),
                    SECONDS.to_string(),
                    (0x50a6 + id).to_string(),
                ];
                let args: Vec<&str> = args.iter().map(String::as_str).collect();
                let out = run(py, &args, b"", Duration::from_secs(SECONDS + 60));
                (py, id, out)
            }));
        }
    }
    let start = Instant::now();
    for restart_at in [SECONDS / 3, 2 * SECONDS / 3] {
        // The fault schedule itself: wait for the planned moment, then restart memcached.
        let at = Duration::from_secs(restart_at);
        std::thread::sleep(at.saturating_sub(start.elapsed()));
        mc.restart();
        eprintln!("soak: memcached restarted at {:?}", start.elapsed());
    }
    let mut totals = [0u64; 5];
    let names = ["sets", "set_failed", "gets", "hits", "misses"];
    for client in clients {
        let (py, id, out) = client.join().expect("client thread");
        out.assert_ok(&format!("{} soak client {id}", py.as_str()));
        let line = out.stdout_str();
        let counts: serde_json::Value = serde_json::from_str(line.trim())
            .unwrap_or_else(|e| panic!("client {id} printed {line:?}: {e}"));
        eprintln!("soak: {} client {id}: {}", py.as_str(), line.trim());
        for (total, name) in totals.iter_mut().zip(names) {
            *total += counts[name].as_u64().expect("count");
        }
    }
    eprintln!(
        "soak: {} clients, {}",
        2 * CLIENTS_PER_RUNTIME,
        names
            .iter()
            .zip(totals)
            .map(|(n, t)| format!("{n}={t}"))
            .collect::<Vec<_>>()
            .join(" ")
    );
    let [sets, _, gets, hits, misses] = totals;
    assert!(sets > 100 && gets > 100, "too little traffic: {totals:?}");
    assert!(
        hits > 0 && misses > 0,
        "expected both hits and misses: {totals:?}"
    );
}
