//! Ports, and raw HTTP/1.1 over TCP for what an HTTP client will not send.

use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpStream, ToSocketAddrs};

/// A loopback port nothing listens on now (the OS picks it; another process could take it
/// before the caller binds it, which on a test machine does not happen in practice).
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|listener| listener.local_addr())
        .expect("bind an ephemeral port")
        .port()
}

/// Waits until something accepts connections on the loopback `port`; panics naming `what`
/// after `within`.
pub async fn wait_for_port(port: u16, within: Duration, what: &str) {
    crate::wait_until(within, Duration::from_millis(20), || async {
        TcpStream::connect(("127.0.0.1", port))
            .await
            .map(drop)
            .map_err(|e| format!("{what} does not accept connections on port {port}: {e}"))
    })
    .await;
}

/// Sends `request` (raw bytes: a head, a body, or junk) on a new connection, optionally
/// half-closes it, and reads the answer's status line: `Ok(Some(code))`, or `Ok(None)` when
/// the peer closed (or reset) without one. `Err` when neither happened within `within`.
pub async fn raw_status(
    addr: impl ToSocketAddrs,
    request: &[u8],
    half_close: bool,
    within: Duration,
) -> Result<Option<u16>, tokio::time::error::Elapsed> {
    let mut socket = TcpStream::connect(addr).await.expect("connect");
    // The peer may answer and close before it read all of it: write errors are not failures.
    let _ = socket.write_all(request).await;
    if half_close {
        let _ = socket.shutdown().await;
    }
    let mut head = Vec::new();
    tokio::time::timeout(within, async {
        let mut buf = [0u8; 1024];
        while !head.windows(2).any(|w| w == b"\r\n") {
            match socket.read(&mut buf).await {
                Ok(0) | Err(_) => break,
                Ok(n) => head.extend_from_slice(&buf[..n]),
            }
        }
    })
    .await?;
    let line = String::from_utf8_lossy(&head);
    Ok(line.split(' ').nth(1).and_then(|code| code.parse().ok()))
}
