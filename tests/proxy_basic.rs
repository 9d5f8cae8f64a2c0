//! The proxy end to end with a real memcached: commands round-trip, replies match memcached.
mod common;

use common::servers::{show, Client, Memcached, Proxy};
use picklebridge::config::ClientRuntime;

#[test]
fn set_get_delete_round_trip_through_the_proxy() {
    let mc = Memcached::start();
    let proxy = Proxy::quick(&[ClientRuntime::Py3], &[mc.addr_string()]);
    let mut c = Client::connect(proxy.addr(0)).unwrap();
    assert_eq!(c.call(b"set k 5 0 3\r\nabc\r\n", b"\r\n"), b"STORED\r\n");
    assert_eq!(
        c.call(b"get k\r\n", b"END\r\n"),
        b"VALUE k 5 3\r\nabc\r\nEND\r\n"
    );
    assert_eq!(c.call(b"delete k\r\n", b"\r\n"), b"DELETED\r\n");
    assert_eq!(c.call(b"get k\r\n", b"END\r\n"), b"END\r\n");
    // The value is really in memcached.
    assert_eq!(c.call(b"set k2 0 0 2\r\nhi\r\n", b"\r\n"), b"STORED\r\n");
    let mut direct = Client::connect(mc.addr()).unwrap();
    let got = direct.call(b"get k2\r\n", b"END\r\n");
    assert_eq!(got, b"VALUE k2 0 2\r\nhi\r\nEND\r\n", "{}", show(&got));
}

#[test]
fn graceful_shutdown_stops_accepting() {
    let mc = Memcached::start();
    let mut proxy = Proxy::quick(&[ClientRuntime::Py2], &[mc.addr_string()]);
    let addr = proxy.addr(0);
    let mut c = Client::connect(addr).unwrap();
    assert_eq!(c.call(b"version\r\n", b"\r\n")[..8], *b"VERSION ");
    proxy.shutdown();
    assert!(proxy.is_stopped());
    assert!(c.is_closed(), "an idle connection is closed at shutdown");
    assert!(Client::connect(addr).is_err(), "no longer accepting");
}
