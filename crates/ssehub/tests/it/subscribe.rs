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
    let metrics = hub
        .http
        .get(hub.url("/metrics"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
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
