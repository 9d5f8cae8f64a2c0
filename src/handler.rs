//! Per-connection request pipeline.
//!
//! Interim version until the protocol codec lands: each client connection is spliced byte for
//! byte to the default route's server for an empty key, so `serve` works end to end (and
//! behaves exactly like memcached) while routing, multi-server pools and transcoding are wired
//! in. Values are NOT transcoded yet.
use std::io;
use std::sync::Arc;

use bytes::BytesMut;
use tokio::net::TcpStream;
use tokio::time::timeout;

use crate::server::{ListenerInfo, Shared};
use crate::upstream::Exchange as ExchangeTrait;

/// The upstream exchange type of the proxy (interim: unused by the splice).
pub struct Exchange;

impl ExchangeTrait for Exchange {
    type Reply = ();
    fn parse_reply(&self, _buf: &mut BytesMut) -> Result<Option<()>, ()> {
        Err(())
    }
}

/// Serves one client connection until it closes or the proxy shuts down.
///
/// # Errors
/// I/O errors on either socket.
pub async fn serve(
    mut client: TcpStream,
    _info: &ListenerInfo,
    shared: &Arc<Shared>,
) -> io::Result<()> {
    let table = shared.routes.borrow().clone();
    let pool = shared.upstreams.pool(table.default_route().pool.0);
    let addr = pool.server_for(b"").addr().to_string();
    let connect = timeout(shared.config.timeouts.connect(), TcpStream::connect(&addr)).await;
    let mut upstream = match connect {
        Ok(Ok(s)) => s,
        _ => {
            use tokio::io::AsyncWriteExt;
            client
                .write_all(b"SERVER_ERROR upstream unavailable\r\n")
                .await?;
            return Ok(());
        }
    };
    let mut stop = shared.shutting_down.clone();
    tokio::select! {
        r = tokio::io::copy_bidirectional(&mut client, &mut upstream) => r.map(|_| ()),
        _ = stop.wait_for(|s| *s) => Ok(()),
    }
}
