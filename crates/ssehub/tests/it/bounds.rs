//! Bounded memory where the network can grow a map: the topic table stops at
//! `max_hub_topics` with a clear error, idle topics are forgotten so churn never reaches the
//! bound, a stream with too many topics is refused, and dashboard watchers share
//! `max_connections` (docs/operations.md, "Bounded memory").

use serde_json::{json, Value};
use ssehub::Config;

use crate::support::{metric, TestHub};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_topic_table_stops_at_max_hub_topics_with_a_clear_error() {
    let hub = TestHub::with_config(Config {
        max_hub_topics: 10,
        history: 1000,
        ..Config::default()
    })
    .await;
    for t in 0..10 {
        hub.publish(&format!("t{t}"), "kept").await;
    }
    // An eleventh topic: the ten still have retained events, so none can be forgotten.
    let (status, answer) = hub.post_json(json!({"topic": "t10", "data": "x"})).await;
    assert_eq!(status, 503, "{answer}");
    assert!(
        answer["error"].as_str().unwrap().contains("max_hub_topics"),
        "{answer}"
    );
    let mercure = hub
        .http
        .post(hub.url("/.well-known/mercure"))
        .form(&[("topic", "t11"), ("data", "x")])
        .send()
        .await
        .unwrap();
    assert_eq!(mercure.status(), 503);
    assert!(mercure.headers().contains_key("retry-after"));
    let subscribe = hub.http.get(hub.url("/events/t12")).send().await.unwrap();
    assert_eq!(subscribe.status(), 503);
    assert!(subscribe.headers().contains_key("retry-after"));
    // Known topics keep working.
    hub.publish("t3", "still fine").await;
    let mut known = hub.subscribe("/events/t3", &[]).await;
    assert_eq!(known.status, 200);
    hub.wait_subscribers("t3", 1).await;
    hub.publish("t3", "live").await;
    assert_eq!(known.event().await.data, "live");
    let topics = hub.get_json("/topics").await;
    assert_eq!(topics["topics"].as_array().unwrap().len(), 10);
    let metrics = hub.metrics().await;
    assert_eq!(metric(&metrics, "ssehub_topics_refused_total "), 3);
    assert_eq!(
        metric(&metrics, "ssehub_limit{name=\"max_hub_topics\"} "),
        10
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn topics_whose_events_are_gone_are_forgotten_so_churn_never_hits_the_bound() {
    let hub = TestHub::with_config(Config {
        max_hub_topics: 20,
        history: 5,
        ..Config::default()
    })
    .await;
    for t in 0..500 {
        hub.publish(&format!("churn/{t}"), "x").await;
    }
    let topics = hub.get_json("/topics").await;
    let listed = topics["topics"].as_array().unwrap().len();
    assert!(listed <= 20, "{listed} topics kept");
    assert_eq!(
        metric(&hub.metrics().await, "ssehub_topics_refused_total "),
        0
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stream_of_a_thousand_topics_is_refused_at_max_topics() {
    let hub = TestHub::start().await;
    let topics: Vec<String> = (0..1000).map(|t| format!("k{t}")).collect();
    let response = hub
        .http
        .get(hub.url(&format!("/events?topic={}", topics.join(","))))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 400);
    let why: Value = response.json().await.unwrap();
    assert!(
        why["error"].as_str().unwrap().contains("at most 64"),
        "{why}"
    );
    assert_eq!(hub.get_json("/topics").await["topics"], json!([]));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dashboard_watchers_share_max_connections() {
    let hub = TestHub::with_config(Config {
        max_connections: 2,
        ..Config::default()
    })
    .await;
    let mut first = hub.subscribe("/stats/stream", &[]).await;
    let mut second = hub.subscribe("/stats/stream", &[]).await;
    assert_eq!((first.status, second.status), (200, 200));
    assert_eq!(first.event().await.event, "stats");
    assert_eq!(second.event().await.event, "stats");
    let third = hub.http.get(hub.url("/stats/stream")).send().await.unwrap();
    assert_eq!(third.status(), 503);
    drop(first);
    // Once a watcher leaves, a new one is let in.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
    loop {
        let again = hub.http.get(hub.url("/stats/stream")).send().await.unwrap();
        if again.status() == 200 {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "no room after a watcher left"
        );
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
}
