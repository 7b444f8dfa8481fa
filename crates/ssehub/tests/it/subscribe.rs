//! Subscribing: the three ways to name topics, the response head, the opening bytes,
//! heartbeats, and cleanup when a client goes away.

use std::time::Duration;

use ssehub::Config;
use ssehub_core::ParserItem;

use crate::support::{TestHub, WAIT};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn answers_with_sse_headers_and_retry_before_any_event() {
    let hub = TestHub::with_config(Config {
        retry: Duration::from_millis(2000),
        ..Config::default()
    })
    .await;
    let mut sse = hub.subscribe("/events/news", &[]).await;
    assert_eq!(sse.status, 200);
    assert_eq!(sse.header("content-type"), Some("text/event-stream"));
    assert_eq!(sse.header("cache-control"), Some("no-cache"));
    assert_eq!(sse.header("x-accel-buffering"), Some("no"));
    // The opening arrives before anything is published: EventSource.onopen fires at once.
    assert_eq!(sse.item().await, Some(ParserItem::Comment(" ok".into())));
    match sse.item().await {
        Some(ParserItem::Retry(ms)) => {
            assert!((2000..=2200).contains(&ms), "retry {ms} is 2000 + jitter")
        }
        other => panic!("expected retry, got {other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn topics_by_path_repeated_query_and_comma_list() {
    let hub = TestHub::start().await;
    let mut by_path = hub.subscribe("/events/a", &[]).await;
    let mut repeated = hub.subscribe("/events?topic=a&topic=b", &[]).await;
    let mut comma = hub.subscribe("/events?topic=b,a", &[]).await;
    hub.wait_subscribers("a", 3).await;
    hub.wait_subscribers("b", 2).await;
    hub.publish("a", "for a").await;
    hub.publish("b", "for b").await;
    assert_eq!(by_path.event().await.data, "for a");
    for sse in [&mut repeated, &mut comma] {
        assert_eq!(sse.event().await.data, "for a");
        assert_eq!(sse.event().await.data, "for b");
    }
    by_path.quiet_for(Duration::from_millis(100)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_that_leaves_is_cleaned_up() {
    let hub = TestHub::start().await;
    let first = hub.subscribe("/events/gone", &[]).await;
    let second = hub.subscribe("/events?topic=gone,other", &[]).await;
    hub.wait_subscribers("gone", 2).await;
    drop(first);
    hub.wait_subscribers("gone", 1).await;
    drop(second);
    hub.wait_subscribers("gone", 0).await;
    hub.wait_subscribers("other", 0).await;
    let metrics = hub.metrics().await;
    assert!(metrics.contains("\nssehub_connections 0\n"), "{metrics}");
    assert!(
        metrics.contains("\nssehub_connections_total 2\n"),
        "{metrics}"
    );
}

#[tokio::test(start_paused = true)]
async fn heartbeat_at_the_configured_interval() {
    let hub = TestHub::with_config(Config {
        heartbeat: Duration::from_secs(15),
        ..Config::default()
    })
    .await;
    let start = tokio::time::Instant::now();
    let mut sse = hub.subscribe("/events/quiet", &[]).await;
    let mut beats = Vec::new();
    while beats.len() < 2 {
        match sse.item_no_timeout().await {
            Some(ParserItem::Comment(c)) if c == " heartbeat" => beats.push(start.elapsed()),
            Some(_) => {}
            None => panic!("stream ended"),
        }
    }
    // Paused time: the clock only moves when everything waits, so these are exact.
    assert_eq!(beats[0].as_secs(), 15, "{beats:?}");
    assert_eq!(beats[1].as_secs(), 30, "{beats:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn too_many_connections_get_503_with_retry_after() {
    let hub = TestHub::with_config(Config {
        max_connections: 2,
        ..Config::default()
    })
    .await;
    let _a = hub.subscribe("/events/x", &[]).await;
    let _b = hub.subscribe("/events/x", &[]).await;
    let refused = hub.http.get(hub.url("/events/x")).send().await.unwrap();
    assert_eq!(refused.status(), 503);
    assert_eq!(refused.headers()["retry-after"], "5");
    let body: serde_json::Value = refused.json().await.unwrap();
    assert_eq!(body["error"], "too many connections");
    let _ = WAIT;
}

/// Sends `prelude` (complete requests whose answers are read first, keeping the connection)
/// then `request`, and returns what the hub answered to `request` within a short wait.
pub(crate) async fn raw_exchange(
    addr: std::net::SocketAddr,
    prelude: Option<&str>,
    request: &str,
) -> String {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut socket = tokio::net::TcpStream::connect(addr).await.unwrap();
    if let Some(first) = prelude {
        socket.write_all(first.as_bytes()).await.unwrap();
        let mut seen = Vec::new();
        // The prelude's answer is small and has a content-length: read until its body is in.
        loop {
            let mut buf = [0u8; 4096];
            let n = socket.read(&mut buf).await.unwrap();
            seen.extend_from_slice(&buf[..n]);
            let text = String::from_utf8_lossy(&seen);
            if let Some((head, body)) = text.split_once("\r\n\r\n") {
                let len: usize = head
                    .lines()
                    .find_map(|l| {
                        l.to_ascii_lowercase()
                            .strip_prefix("content-length: ")
                            .map(|v| v.parse().unwrap())
                    })
                    .unwrap();
                if body.len() >= len {
                    break;
                }
            }
        }
    }
    socket.write_all(request.as_bytes()).await.unwrap();
    let mut seen = Vec::new();
    let _ = tokio::time::timeout(Duration::from_millis(300), async {
        let mut buf = [0u8; 4096];
        while let Ok(n) = socket.read(&mut buf).await {
            if n == 0 {
                break;
            }
            seen.extend_from_slice(&buf[..n]);
        }
    })
    .await;
    String::from_utf8(seen).unwrap()
}

pub(crate) fn header<'a>(answer: &'a str, name: &str) -> Option<&'a str> {
    let head = answer.split("\r\n\r\n").next().unwrap();
    head.lines().find_map(|l| {
        let (n, v) = l.split_once(": ")?;
        n.eq_ignore_ascii_case(name).then_some(v)
    })
}

/// A subscribe request that opens a connection takes the direct path; one that follows
/// another request on a kept-alive connection goes through the router. Both answer alike.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn direct_and_routed_paths_answer_alike() {
    let origin = "http://app.test";
    let config = Config {
        cors_origins: ssehub::CorsOrigins::List(vec![origin.into()]),
        ..Config::default()
    };
    let hub = TestHub::with_config(config).await;
    let keep_alive = "GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n";
    for (request, status) in [
        (
            format!("GET /events/a%20b HTTP/1.1\r\nHost: x\r\nOrigin: {origin}\r\n\r\n"),
            "400",
        ),
        (
            format!("GET /events?topic=p,q HTTP/1.1\r\nHost: x\r\nOrigin: {origin}\r\n\r\n"),
            "200",
        ),
        (
            format!("GET /events/%E2%9C%94 HTTP/1.1\r\nHost: x\r\nOrigin: {origin}\r\n\r\n"),
            "200",
        ),
    ] {
        let direct = raw_exchange(hub.addr, None, &request).await;
        let routed = raw_exchange(hub.addr, Some(keep_alive), &request).await;
        for answer in [&direct, &routed] {
            assert!(
                answer.starts_with(&format!("HTTP/1.1 {status}")),
                "{answer}"
            );
            assert_eq!(
                header(answer, "access-control-allow-origin"),
                Some(origin),
                "{answer}"
            );
            assert_eq!(
                header(answer, "access-control-allow-credentials"),
                Some("true"),
                "{answer}"
            );
        }
        if status == "200" {
            for answer in [&direct, &routed] {
                assert_eq!(header(answer, "content-type"), Some("text/event-stream"));
                assert_eq!(header(answer, "cache-control"), Some("no-cache"));
                assert_eq!(header(answer, "x-accel-buffering"), Some("no"));
                assert!(answer.contains(": ok\nretry: "), "{answer}");
            }
        } else {
            let body = |a: &str| a.split("\r\n\r\n").nth(1).unwrap().to_owned();
            assert!(
                body(&routed).ends_with(&body(&direct)) || body(&routed).contains(&body(&direct)),
                "{direct}\n---\n{routed}"
            );
            assert_eq!(header(&direct, "content-type"), Some("application/json"));
        }
    }
    // A topic with a slash in the path is not a topic route at all.
    let nested = raw_exchange(
        hub.addr,
        None,
        "GET /events/a/b HTTP/1.1\r\nHost: x\r\n\r\n",
    )
    .await;
    assert!(nested.starts_with("HTTP/1.1 404"), "{nested}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connections_per_address_are_limited_with_429() {
    let hub = TestHub::with_config(Config {
        max_connections_per_ip: 2,
        ..Config::default()
    })
    .await;
    let a = hub.subscribe("/events/ip", &[]).await;
    let b = hub.subscribe("/events/ip", &[]).await;
    let refused = raw_exchange(hub.addr, None, "GET /events/ip HTTP/1.1\r\nHost: x\r\n\r\n").await;
    assert!(refused.starts_with("HTTP/1.1 429"), "{refused}");
    assert_eq!(header(&refused, "retry-after"), Some("5"));
    assert!(
        refused.contains("too many connections from this address"),
        "{refused}"
    );
    drop(a);
    // The place is free again once a connection closes.
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        let answer =
            raw_exchange(hub.addr, None, "GET /events/ip HTTP/1.1\r\nHost: x\r\n\r\n").await;
        if answer.starts_with("HTTP/1.1 200") {
            break;
        }
        assert!(tokio::time::Instant::now() < deadline, "{answer}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    drop(b);
    // Streams that just closed may still hold their places for a moment.
    let metrics = loop {
        let answer = raw_exchange(
            hub.addr,
            None,
            "GET /metrics HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
        )
        .await;
        if answer.starts_with("HTTP/1.1 200") {
            break answer;
        }
        assert!(tokio::time::Instant::now() < deadline, "{answer}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    let refused: u64 = metrics
        .lines()
        .find_map(|l| l.strip_prefix("ssehub_connections_refused_per_ip_total "))
        .and_then(|v| v.parse().ok())
        .expect("the per-address refusals are counted");
    assert!(refused >= 1, "{metrics}");
}
