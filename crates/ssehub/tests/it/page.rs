//! The built-in page, `--public-dir`, the demo publishers, health and metrics.

use std::collections::HashSet;

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
async fn serves_the_javascript_client() {
    let hub = TestHub::start().await;
    let response = hub.http.get(hub.url("/ssehub.js")).send().await.unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(
        response.headers()["content-type"],
        "application/javascript; charset=utf-8"
    );
    assert_eq!(response.headers()["cache-control"], "public, max-age=3600");
    let script = response.text().await.unwrap();
    let built = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../clients/js/dist/ssehub.js"
    ))
    .unwrap();
    assert_eq!(script, built, "the hub serves clients/js/dist/ssehub.js");
    assert!(
        script.contains("root.ssehub = ssehub"),
        "it defines the ssehub global"
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
async fn demo_publishes_the_seed_examples_in_their_wire_shapes() {
    let hub = TestHub::with_config(Config {
        demo: true,
        ..Config::default()
    })
    .await;
    // One stream per source, all opened first so that every one is filling while the
    // others are read.
    let mut counter = hub.subscribe("/events/counter", &[]).await;
    let mut random = hub.subscribe("/events/random", &[]).await;
    let mut analytics = hub.subscribe("/events/analytics", &[]).await;
    let mut clock = hub.subscribe("/events/clock", &[]).await;
    let mut ticker = hub.subscribe("/events/ticker", &[]).await;
    let mut weather = hub.subscribe("/events?topic=ticker/weather", &[]).await;

    // Seeds 002 and 003: the counter and the random number are unnamed messages.
    let first = counter.event().await;
    let second = counter.event().await;
    assert_eq!(first.event, "message", "{first:?}");
    assert_eq!(
        second.data.parse::<u64>().unwrap(),
        first.data.parse::<u64>().unwrap() + 1,
        "the counter counts"
    );
    let r = random.event().await;
    assert_eq!(r.event, "message", "{r:?}");
    assert!(
        (1..=1000).contains(&r.data.parse::<u32>().unwrap()),
        "{r:?}"
    );
    // Seed 001: analytics, an unnamed JSON object with the article's fields.
    let a = analytics.event().await;
    assert_eq!(a.event, "message", "{a:?}");
    let v: serde_json::Value = serde_json::from_str(&a.data).unwrap();
    assert!(v["activeUsers"].as_u64().unwrap() >= 1, "counts us: {v}");
    assert!(v["requests"].is_u64() && v["uptime"].is_number(), "{v}");
    // Seed 000: current-date every 5 s.
    let c = clock.event().await;
    assert_eq!(c.event, "current-date");
    assert!(c.data.ends_with('Z') && c.data.len() == 20, "{c:?}");
    // Seed 003: news as text, weather and stock as JSON objects, on one stream.
    let mut names = HashSet::new();
    while names.len() < 3 {
        let e = ticker.event().await;
        match e.event.as_str() {
            "news" => assert!(serde_json::from_str::<serde_json::Value>(&e.data).is_err()),
            "weather" | "stock" => {
                let v: serde_json::Value = serde_json::from_str(&e.data).unwrap();
                assert!(v.is_object(), "{e:?}");
            }
            other => panic!("unexpected ticker event {other}"),
        }
        names.insert(e.event);
    }
    // One channel per type: only weather on ticker/weather.
    let w = weather.event().await;
    assert_eq!(w.event, "weather", "{w:?}");
    let v: serde_json::Value = serde_json::from_str(&w.data).unwrap();
    assert!(v["temperature"].is_string() && v["wind"].is_string(), "{v}");
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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn seed_urls_are_not_served_without_demo() {
    let hub = TestHub::start().await;
    let status = hub
        .http
        .get(hub.url("/random"))
        .send()
        .await
        .unwrap()
        .status();
    assert_eq!(status, 404);
}
