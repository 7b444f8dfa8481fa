//! Graceful shutdown: open streams end cleanly and do not hold the hub up.

use std::time::Duration;

use ssehub::Config;

use crate::support::TestHub;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_ends_open_streams_and_returns() {
    let hub = TestHub::with_config(Config {
        shutdown_grace: Duration::from_secs(30),
        ..Config::default()
    })
    .await;
    let mut sse = hub.subscribe("/events/s", &[]).await;
    let mut other = hub.subscribe("/events?topic=s,t", &[]).await;
    // A dashboard's stats stream is no subscriber, and must not hold shutdown either.
    let mut stats = hub.subscribe("/stats/stream", &[]).await;
    hub.wait_subscribers("s", 2).await;
    hub.publish("s", "last words").await;
    let started = tokio::time::Instant::now();
    let result = tokio::time::timeout(Duration::from_secs(25), hub.stop())
        .await
        .expect("shutdown hung");
    assert!(result.is_ok(), "{result:?}");
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "streams must not wait for the grace period"
    );
    for s in [&mut sse, &mut other] {
        let events = s.rest().await;
        assert_eq!(
            events.len(),
            1,
            "queued events are written before the stream ends"
        );
        assert!(s.ended());
    }
    stats.rest().await;
    assert!(stats.ended(), "the stats stream ends with the hub");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_slow_subscriber_is_ended_and_others_keep_receiving() {
    let hub = TestHub::with_config(Config {
        subscriber_buffer: 512 * 1024,
        ..Config::default()
    })
    .await;
    // A raw socket that subscribes and then never reads.
    use tokio::io::AsyncWriteExt;
    // A small receive window, so the kernel cannot absorb the flood for it.
    let socket = tokio::net::TcpSocket::new_v4().unwrap();
    socket.set_recv_buffer_size(4096).unwrap();
    let mut stalled = socket.connect(hub.addr).await.unwrap();
    stalled
        .write_all(b"GET /events/flood HTTP/1.1\r\nHost: x\r\n\r\n")
        .await
        .unwrap();
    let mut healthy = hub.subscribe("/events/flood", &[]).await;
    hub.wait_subscribers("flood", 2).await;
    // 2000 x 4 KiB is more than the kernel buffers (4 MiB send, 4 KiB receive) and the
    // outbox can hold for the stalled client; the healthy one may lag by 128 events.
    let payload = "x".repeat(4 * 1024);
    let reader = tokio::spawn(async move {
        let mut n = 0;
        while n < 2000 {
            healthy.event().await;
            n += 1;
        }
        (n, healthy)
    });
    for _ in 0..2000 {
        hub.publish("flood", &payload).await;
    }
    let (received, _still_open) = reader.await.unwrap();
    assert_eq!(received, 2000, "the healthy subscriber got everything");
    hub.wait_subscribers("flood", 1).await;
    let metrics = hub.metrics().await;
    assert!(
        metrics.contains("\nssehub_slow_consumer_drops_total 1\n"),
        "{metrics}"
    );
    drop(stalled);
}

/// One subscriber that stops reading among a thousand that read: publishing and the
/// thousand are not held up; the stalled one is ended and counted.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_stalled_subscriber_among_a_thousand_healthy_ones() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    const HEALTHY: usize = 1000;
    const EVENTS: usize = 400;
    // Small kernel buffers on both sides of the stalled stream, so 400 KiB overflows it.
    let hub = TestHub::with_config(Config {
        subscriber_buffer: 64 * 1024,
        socket_send_buffer: 16 * 1024,
        ..Config::default()
    })
    .await;
    let socket = tokio::net::TcpSocket::new_v4().unwrap();
    socket.set_recv_buffer_size(4096).unwrap();
    let mut stalled = socket.connect(hub.addr).await.unwrap();
    stalled
        .write_all(b"GET /events/crowd HTTP/1.1\r\nHost: x\r\n\r\n")
        .await
        .unwrap();
    let mut readers = Vec::new();
    for _ in 0..HEALTHY {
        let mut s = tokio::net::TcpStream::connect(hub.addr).await.unwrap();
        s.write_all(b"GET /events/crowd HTTP/1.1\r\nHost: x\r\n\r\n")
            .await
            .unwrap();
        readers.push(tokio::spawn(async move {
            let mut parser = ssehub_core::Parser::new();
            let mut buf = vec![0u8; 16 * 1024];
            let mut items = Vec::new();
            let mut events = 0;
            let mut head_done = false;
            let mut pending = Vec::new();
            while events < EVENTS {
                let n = s.read(&mut buf).await.unwrap();
                assert!(n > 0, "a healthy stream ended after {events} events");
                let mut chunk = &buf[..n];
                if !head_done {
                    pending.extend_from_slice(chunk);
                    let Some(end) = pending.windows(4).position(|w| w == b"\r\n\r\n") else {
                        continue;
                    };
                    head_done = true;
                    parser.feed(&pending[end + 4..], &mut items);
                    chunk = &[];
                }
                parser.feed(chunk, &mut items);
                events += items
                    .drain(..)
                    .filter(|i| matches!(i, ssehub_core::ParserItem::Event(_)))
                    .count();
            }
            (events, s)
        }));
    }
    hub.wait_subscribers("crowd", HEALTHY as u64 + 1).await;
    let payload = "y".repeat(1024);
    for _ in 0..EVENTS {
        hub.publish("crowd", &payload).await;
    }
    let mut still_open = Vec::new();
    for reader in readers {
        let (got, socket) = tokio::time::timeout(Duration::from_secs(60), reader)
            .await
            .expect("healthy reader stalled")
            .unwrap();
        assert_eq!(got, EVENTS);
        still_open.push(socket);
    }
    hub.wait_subscribers("crowd", HEALTHY as u64).await;
    let metrics = hub.metrics().await;
    assert!(
        metrics.contains("\nssehub_slow_consumer_drops_total 1\n"),
        "{metrics}"
    );
    drop(stalled);
}
