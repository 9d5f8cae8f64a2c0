//! What the Linux kernel says of a TCP connection's queues (`/proc/net/tcp` and
//! `/proc/net/tcp6`): whether every byte one end sent has been read by the process at the other
//! end. Tests use it instead of "sleep so that the proxy has read what was sent": a bounded
//! wait that proves the read, however slow the scheduler. Reads the kernel's tables only; never
//! touches the sockets.
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::time::Duration;

use super::wait::poll_until;

/// The two queues `/proc/net/tcp` shows for one connected socket.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Queues {
    /// `tx_queue`: bytes written and not yet acknowledged by the peer's kernel.
    pub tx: u64,
    /// `rx_queue`: bytes the kernel received and the owning process has not read yet.
    pub rx: u64,
}

/// `st` of a socket in TIME_WAIT: listed with empty queues, whatever was left unread.
const TIME_WAIT: &str = "06";
/// `st` of a listening socket, whose queue columns count connections, not bytes.
const LISTEN: &str = "0A";

/// The queues of the open socket whose local address is `local` and remote address `remote`,
/// if the kernel lists one (in either table: an IPv4 address may show IPv4-mapped in `tcp6`).
pub fn queues(local: SocketAddr, remote: SocketAddr) -> Option<Queues> {
    let want = (canonical(local), canonical(remote));
    ["/proc/net/tcp", "/proc/net/tcp6"]
        .iter()
        .filter_map(|path| std::fs::read_to_string(path).ok())
        .flat_map(|table| {
            table
                .lines()
                .skip(1)
                .filter_map(parse_line)
                .collect::<Vec<_>>()
        })
        .find(|(l, r, _)| (canonical(*l), canonical(*r)) == want)
        .map(|(_, _, q)| q)
}

/// Waits, for at most `timeout`, until everything `local` sent to `remote` on their connection
/// has been read by the process owning `remote`'s socket: the sender's `tx_queue` is 0 (the
/// peer's kernel acknowledged it all), then, on a later look, the peer's `rx_queue` is 0 (its
/// process read it all). In that order, as acknowledged bytes only move from the one queue to
/// the other: one look at both could see them in neither. Both sockets must stay open
/// meanwhile.
///
/// # Errors
///
/// After `timeout`, what was last seen of both queues.
pub fn wait_read_by_peer(
    local: SocketAddr,
    remote: SocketAddr,
    timeout: Duration,
) -> Result<(), String> {
    let mut seen = (None, None);
    let done = poll_until(timeout, || {
        seen = (queues(local, remote), queues(remote, local));
        (seen.0.map(|q| q.tx) == Some(0) && seen.1.map(|q| q.rx) == Some(0)).then_some(())
    });
    done.ok_or_else(|| {
        let show = |q: Option<Queues>, which: fn(Queues) -> u64| {
            q.map_or("(socket not listed)".to_string(), |q| which(q).to_string())
        };
        format!(
            "after {timeout:?}, the bytes {local} sent are not all read by {remote}: \
             sender tx_queue {} (unacknowledged), receiver rx_queue {} (unread)",
            show(seen.0, |q| q.tx),
            show(seen.1, |q| q.rx),
        )
    })
}

/// One row of `/proc/net/tcp{,6}`, e.g.
/// `1: 0100007F:B4D3 0100007F:EBEA 01 00000000:00000009 ...` (`sl local_address rem_address st
/// tx_queue:rx_queue ...`), unless it is a listening or TIME_WAIT socket.
fn parse_line(line: &str) -> Option<(SocketAddr, SocketAddr, Queues)> {
    let mut fields = line.split_whitespace().skip(1);
    let (local, remote, state, queues) = (
        fields.next()?,
        fields.next()?,
        fields.next()?,
        fields.next()?,
    );
    if state == TIME_WAIT || state == LISTEN {
        return None;
    }
    let (tx, rx) = queues.split_once(':')?;
    Some((
        parse_addr(local)?,
        parse_addr(remote)?,
        Queues {
            tx: u64::from_str_radix(tx, 16).ok()?,
            rx: u64::from_str_radix(rx, 16).ok()?,
        },
    ))
}

/// `0100007F:1F90` (127.0.0.1:8080): the address as the kernel's 32-bit words printed in host
/// byte order (one for IPv4, four for IPv6), the port as a number.
fn parse_addr(field: &str) -> Option<SocketAddr> {
    let (ip, port) = field.split_once(':')?;
    let mut bytes = Vec::with_capacity(16);
    for i in (0..ip.len()).step_by(8) {
        let word = u32::from_str_radix(ip.get(i..i + 8)?, 16).ok()?;
        bytes.extend_from_slice(&word.to_ne_bytes());
    }
    let ip = match bytes.len() {
        4 => IpAddr::V4(Ipv4Addr::from(<[u8; 4]>::try_from(bytes).ok()?)),
        16 => IpAddr::V6(Ipv6Addr::from(<[u8; 16]>::try_from(bytes).ok()?)),
        _ => return None,
    };
    Some(SocketAddr::new(ip, u16::from_str_radix(port, 16).ok()?))
}

/// The address with an IPv4-mapped IPv6 address as the IPv4 one.
fn canonical(addr: SocketAddr) -> SocketAddr {
    SocketAddr::new(addr.ip().to_canonical(), addr.port())
}
