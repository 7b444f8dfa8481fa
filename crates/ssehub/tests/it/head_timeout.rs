//! `head_timeout`: a connection that sends no request head, or half of one, is closed once
//! the configured time is up (plain HTTP, the keep-alive path through hyper, and TLS).

use std::time::{Duration, Instant};

use ssehub::{Config, TlsConfig};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::support::TestHub;

const HEAD_TIMEOUT: Duration = Duration::from_secs(1);

async fn hub(tls: Option<TlsConfig>) -> TestHub {
    TestHub::with_config(Config {
        head_timeout: HEAD_TIMEOUT,
        tls,
        ..Config::default()
    })
    .await
}

/// Asserts the hub keeps `socket` open at 0.3 s after `since`, then closes it (EOF or a
/// reset) before a generous bound; the hub must send nothing but, for a head it began to
/// parse, an error answer.
async fn closed_after_the_timeout(mut socket: TcpStream, since: Instant) {
    let mut buf = [0u8; 1024];
    let early = tokio::time::timeout(Duration::from_millis(300), socket.read(&mut buf)).await;
    assert!(early.is_err(), "closed or answered before 0.3 s: {early:?}");
    let closed = tokio::time::timeout(Duration::from_secs(6), async {
        loop {
            match socket.read(&mut buf).await {
                Ok(0) | Err(_) => return,
                Ok(_) => {}
            }
        }
    })
    .await;
    let elapsed = since.elapsed();
    assert!(closed.is_ok(), "still open {elapsed:?} after connecting");
    assert!(
        elapsed >= HEAD_TIMEOUT,
        "closed after {elapsed:?}, before the timeout"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_connection_that_sends_nothing_or_half_a_head_is_closed() {
    let hub = hub(None).await;
    // Nothing at all.
    let since = Instant::now();
    let silent = TcpStream::connect(hub.addr).await.expect("connect");
    closed_after_the_timeout(silent, since).await;
    // Half a head on the direct path.
    let since = Instant::now();
    let mut half = TcpStream::connect(hub.addr).await.expect("connect");
    half.write_all(b"GET /events/t HTTP/1.1\r\nHost: x\r\n")
        .await
        .unwrap();
    closed_after_the_timeout(half, since).await;
    // The hub still serves.
    let health = hub.get_json("/healthz").await;
    assert_eq!(health["status"], "ok");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_keep_alive_connection_with_half_a_second_head_is_closed() {
    let hub = hub(None).await;
    let mut socket = TcpStream::connect(hub.addr).await.expect("connect");
    socket
        .write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
        .await
        .unwrap();
    // Read the whole first answer (its body is the last thing in it).
    let mut answer = Vec::new();
    let mut buf = [0u8; 1024];
    while !answer.ends_with(b"}") {
        let n = tokio::time::timeout(Duration::from_secs(5), socket.read(&mut buf))
            .await
            .expect("answer")
            .expect("read");
        assert!(n > 0, "closed before answering");
        answer.extend_from_slice(&buf[..n]);
    }
    assert!(answer.starts_with(b"HTTP/1.1 200"), "{answer:?}");
    let since = Instant::now();
    socket
        .write_all(b"GET /healthz HTTP/1.1\r\n")
        .await
        .unwrap();
    closed_after_the_timeout(socket, since).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_tls_connection_that_never_says_hello_is_closed() {
    let (cert, key) = crate::http2::self_signed();
    let tls = TlsConfig::from_pem(cert.as_bytes(), key.as_bytes()).expect("tls config");
    let hub = hub(Some(tls)).await;
    let since = Instant::now();
    let socket = TcpStream::connect(hub.addr).await.expect("connect");
    closed_after_the_timeout(socket, since).await;
}
