//! `GET /stats/stream`: the dashboard's feed of the hub's figures, over real sockets.

use std::collections::HashMap;
use std::time::Duration;

use serde_json::Value;
use ssehub_core::ParserItem;

use crate::support::{Sse, TestHub};

/// The next `stats` sample of `sse`, parsed.
async fn sample(sse: &mut Sse) -> Value {
    let e = sse.event().await;
    assert_eq!(e.event, "stats", "{e:?}");
    assert_eq!(
        e.id, "",
        "a sample has no id: it is not an event of the history"
    );
    serde_json::from_str(&e.data).expect("a sample is JSON")
}

/// Samples until `done` holds for one; panics after 10 samples.
async fn sample_until(sse: &mut Sse, done: impl Fn(&Value) -> bool) -> Value {
    for _ in 0..10 {
        let s = sample(sse).await;
        if done(&s) {
            return s;
        }
    }
    panic!("no sample met the condition in 10 s");
}

/// `/metrics` as name → value, for the series without labels.
fn parse_metrics(text: &str) -> HashMap<String, f64> {
    text.lines()
        .filter(|l| !l.starts_with('#') && !l.contains('{'))
        .filter_map(|l| l.split_once(' '))
        .filter_map(|(name, v)| Some((name.strip_prefix("ssehub_")?.to_owned(), v.parse().ok()?)))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_stream_carries_the_figures_of_metrics() {
    let hub = TestHub::start().await;
    for i in 0..3 {
        hub.publish("a", &i.to_string()).await;
    }
    let _s1 = hub.subscribe("/events/a", &[]).await;
    let _s2 = hub.subscribe("/events?topic=a,b", &[]).await;
    hub.wait_subscribers("a", 2).await;
    hub.publish("a", "after").await;

    let mut stats = hub.subscribe("/stats/stream", &[]).await;
    assert_eq!(stats.status, 200);
    assert_eq!(stats.header("content-type"), Some("text/event-stream"));
    assert_eq!(stats.header("cache-control"), Some("no-cache"));
    // The opening: a comment and the reconnect delay, then the current figures at once.
    assert!(matches!(stats.item().await, Some(ParserItem::Comment(_))));
    assert!(matches!(stats.item().await, Some(ParserItem::Retry(2000))));
    let first = sample(&mut stats).await;
    assert_eq!(first["connections"], 2, "{first}");
    assert_eq!(first["events_published_total"], 4, "{first}");
    assert_eq!(first["events_delivered_total"], 2, "{first}");
    assert_eq!(first["topics"], 2, "{first}");
    assert_eq!(first["history_events"], 4, "{first}");
    assert_eq!(first["cluster_nodes"], 1, "{first}");
    assert_eq!(first["cluster"], false, "{first}");
    assert!(
        first["fsync_avg_seconds"].is_null(),
        "a memory store does not fsync"
    );

    // Nothing moves while idle: every figure the sample shares with /metrics is equal.
    let s = sample(&mut stats).await;
    let metrics = parse_metrics(&hub.metrics().await);
    let mut compared = 0;
    for (name, value) in s.as_object().expect("object") {
        if let (Some(m), Some(v)) = (metrics.get(name), value.as_f64()) {
            assert_eq!(*m, v, "{name}: /metrics {m}, stream {v}");
            compared += 1;
        }
    }
    assert!(compared >= 18, "only {compared} figures in common: {s}");
    for name in [
        "connections",
        "events_published_total",
        "bytes_written_total",
        "slow_consumer_drops_total",
        "history_bytes",
        "store_fsync_seconds_count",
        "cluster_nodes",
    ] {
        assert!(metrics.contains_key(name), "/metrics lacks {name}");
        assert!(s.get(name).is_some(), "the stream lacks {name}");
    }
    assert!(s["interval_seconds"].as_f64().unwrap() > 0.5, "{s}");
    assert_eq!(s["rates"]["events_published"], 0.0, "idle: {s}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rates_add_up_to_the_counters() {
    let hub = TestHub::start().await;
    let _sub = hub.subscribe("/events/r", &[]).await;
    hub.wait_subscribers("r", 1).await;
    let mut stats = hub.subscribe("/stats/stream", &[]).await;
    let first = sample(&mut stats).await;
    let publisher = {
        let http = hub.http.clone();
        let url = hub.url("/publish");
        tokio::spawn(async move {
            for i in 0..30 {
                let body = serde_json::json!({"topic": "r", "data": i.to_string()});
                let r = http.post(&url).json(&body).send().await.expect("publish");
                assert_eq!(r.status(), 200);
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        })
    };
    // Each rate times its interval is that interval's increase, so the sum over the
    // samples is the whole increase since the first, however the publishes fell.
    let (mut published, mut delivered, mut bytes) = (0.0, 0.0, 0.0);
    let mut samples = 0;
    let last = loop {
        samples += 1;
        assert!(samples < 20, "30 publishes took 20 samples");
        let s = sample(&mut stats).await;
        let dt = s["interval_seconds"].as_f64().unwrap();
        published += s["rates"]["events_published"].as_f64().unwrap() * dt;
        delivered += s["rates"]["events_delivered"].as_f64().unwrap() * dt;
        bytes += s["rates"]["bytes_written"].as_f64().unwrap() * dt;
        if s["events_published_total"] == 30 {
            break s;
        }
    };
    publisher.await.expect("publisher");
    let increase = |name: &str| last[name].as_f64().unwrap() - first[name].as_f64().unwrap();
    assert!(samples >= 2, "the publishes spread over several samples");
    assert!((published - 30.0).abs() < 1e-6, "published {published}");
    assert!((delivered - 30.0).abs() < 1e-6, "delivered {delivered}");
    assert!(
        (bytes - increase("bytes_written_total")).abs() < 1e-3,
        "bytes {bytes} against {}",
        increase("bytes_written_total")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_watcher_is_not_a_subscriber_and_samples_are_not_history() {
    let hub = TestHub::start().await;
    let mut a = hub.subscribe("/stats/stream", &[]).await;
    let mut b = hub.subscribe("/stats/stream", &[]).await;
    for sse in [&mut a, &mut b] {
        let s = sample(sse).await;
        assert_eq!(s["connections"], 0, "{s}");
        assert_eq!(s["connections_total"], 0, "{s}");
    }
    // Both watchers share one sampler: they see the same samples (a tick may fall between
    // their first reads, so compare two of each).
    let mut times = Vec::new();
    for sse in [&mut a, &mut b] {
        times.push([
            sample(sse).await["time"].clone(),
            sample(sse).await["time"].clone(),
        ]);
    }
    assert!(times[0].iter().any(|t| times[1].contains(t)), "{times:?}");
    let metrics = parse_metrics(&hub.metrics().await);
    assert_eq!(metrics["history_events"], 0.0);
    assert_eq!(metrics["topics"], 0.0);
    assert_eq!(
        hub.get_json("/topics").await["topics"],
        serde_json::json!([])
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_sampler_stops_with_its_last_watcher_and_starts_again() {
    let hub = TestHub::start().await;
    let mut first = hub.subscribe("/stats/stream", &[]).await;
    sample(&mut first).await;
    drop(first);
    // The hub notices the closed socket when a write to it fails (the second sample after
    // the close, at the latest) and the sampler at its next tick: at most ~3 s. A watcher
    // after that gets a fresh sampler, whose first sample has no interval.
    tokio::time::sleep(Duration::from_millis(4500)).await;
    let mut again = hub.subscribe("/stats/stream", &[]).await;
    let s = sample(&mut again).await;
    assert_eq!(s["interval_seconds"], 0.0, "a fresh sampler: {s}");
    sample_until(&mut again, |s| {
        s["interval_seconds"].as_f64().unwrap() > 0.0
    })
    .await;
}
