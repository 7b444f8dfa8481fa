//! The built-in page, `--public-dir`, the demo publishers, health and metrics.

use std::collections::HashSet;
use std::time::Duration;

use ssehub::Config;

use crate::support::TestHub;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serves_the_built_in_page() {
    let hub = TestHub::start().await;
    let response = hub.http.get(hub.url("/")).send().await.unwrap();
    assert_eq!(response.status(), 200);
    assert!(response.headers()["content-type"]
        .to_str()
        .unwrap()
        .starts_with("text/html"));
    let html = response.text().await.unwrap();
    assert!(
        html.contains("new EventSource(") && html.contains("publish-form"),
        "the page subscribes and publishes"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn public_dir_replaces_the_page() {
    let dir = std::env::temp_dir().join(format!("ssehub-public-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("index.html"), "<h1>mine</h1>").unwrap();
    std::fs::write(dir.join("app.js"), "console.log(1)").unwrap();
    let hub = TestHub::with_config(Config {
        public_dir: Some(dir.clone()),
        ..Config::default()
    })
    .await;
    assert_eq!(
        hub.http
            .get(hub.url("/"))
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap(),
        "<h1>mine</h1>"
    );
    assert_eq!(
        hub.http
            .get(hub.url("/app.js"))
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap(),
        "console.log(1)"
    );
    assert_eq!(
        hub.http
            .get(hub.url("/missing.js"))
            .send()
            .await
            .unwrap()
            .status(),
        404
    );
    // The API still answers beside the files.
    assert_eq!(hub.get_json("/healthz").await["status"], "ok");
    std::fs::remove_dir_all(dir).unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn demo_publishes_the_seed_examples() {
    let hub = TestHub::with_config(Config {
        demo: true,
        ..Config::default()
    })
    .await;
    let mut sse = hub
        .subscribe("/events?topic=clock,counter,random,analytics,ticker", &[])
        .await;
    let mut names: HashSet<String> = HashSet::new();
    let wanted = ["current-date", "counter", "random", "analytics"];
    let deadline = tokio::time::Instant::now() + Duration::from_secs(12);
    while !wanted.iter().all(|w| names.contains(*w))
        || !names
            .iter()
            .any(|n: &String| ["news", "weather", "stock"].contains(&n.as_str()))
    {
        assert!(
            tokio::time::Instant::now() < deadline,
            "demo events seen: {names:?}"
        );
        let e = sse.event().await;
        match e.event.as_str() {
            "counter" => assert!(e.data.parse::<u64>().is_ok(), "{e:?}"),
            "random" => assert!(
                (1..=1000).contains(&e.data.parse::<u32>().unwrap()),
                "{e:?}"
            ),
            "analytics" => {
                let v: serde_json::Value = serde_json::from_str(&e.data).unwrap();
                assert!(
                    v["connections"].as_u64().unwrap() >= 1,
                    "analytics counts this subscriber: {v}"
                );
            }
            "current-date" => assert!(e.data.ends_with('Z') && e.data.len() == 20, "{e:?}"),
            _ => {}
        }
        names.insert(e.event);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn healthz_and_metrics() {
    let hub = TestHub::start().await;
    assert_eq!(
        hub.get_json("/healthz").await,
        serde_json::json!({"status": "ok"})
    );
    let mut sse = hub.subscribe("/events/m", &[]).await;
    hub.wait_subscribers("m", 1).await;
    hub.publish("m", "x").await;
    sse.event().await;
    let response = hub.http.get(hub.url("/metrics")).send().await.unwrap();
    assert!(response.headers()["content-type"]
        .to_str()
        .unwrap()
        .starts_with("text/plain"));
    let text = response.text().await.unwrap();
    for line in [
        "ssehub_connections 1",
        "ssehub_events_published_total 1",
        "ssehub_events_delivered_total 1",
        "ssehub_topic_subscribers{topic=\"m\"} 1",
        "ssehub_slow_consumer_drops_total 0",
        "ssehub_limit{name=\"max_connections\"} 100000",
    ] {
        assert!(
            text.lines().any(|l| l == line),
            "missing {line:?} in\n{text}"
        );
    }
    let bytes: u64 = text
        .lines()
        .find_map(|l| l.strip_prefix("ssehub_bytes_written_total "))
        .unwrap()
        .parse()
        .unwrap();
    assert!(bytes > 0);
}
