//! CORS: configured origins, credentials, the preflight, and the stream itself.

use ssehub::{Config, CorsOrigins};

use crate::support::TestHub;

const APP: &str = "http://app.example.test:3000";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn listed_origin_is_echoed_with_credentials_on_preflight_and_stream() {
    let config = Config {
        cors_origins: CorsOrigins::List(vec![APP.into()]),
        ..Config::default()
    };
    let hub = TestHub::with_config(config).await;
    let preflight = hub
        .http
        .request(reqwest::Method::OPTIONS, hub.url("/events/x"))
        .header("origin", APP)
        .header("access-control-request-method", "GET")
        .header("access-control-request-headers", "last-event-id")
        .send()
        .await
        .unwrap();
    assert!(preflight.status().is_success(), "{}", preflight.status());
    let h = preflight.headers();
    assert_eq!(h["access-control-allow-origin"], APP);
    assert_eq!(h["access-control-allow-credentials"], "true");
    assert!(h["access-control-allow-headers"]
        .to_str()
        .unwrap()
        .contains("last-event-id"));

    let mut sse = hub.subscribe("/events/x", &[("origin", APP)]).await;
    assert_eq!(sse.header("access-control-allow-origin"), Some(APP));
    assert_eq!(sse.header("access-control-allow-credentials"), Some("true"));
    assert!(sse
        .header("vary")
        .is_some_and(|v| v.to_ascii_lowercase().contains("origin")));
    hub.wait_subscribers("x", 1).await;
    hub.publish("x", "cross-origin").await;
    assert_eq!(sse.event().await.data, "cross-origin");

    let other = hub
        .subscribe("/events/x", &[("origin", "http://evil.test")])
        .await;
    assert_eq!(
        other.header("access-control-allow-origin"),
        None,
        "unlisted origins get no CORS grant"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn star_allows_any_origin_without_credentials_and_none_sends_nothing() {
    let star = TestHub::with_config(Config {
        cors_origins: CorsOrigins::Any,
        ..Config::default()
    })
    .await;
    let sse = star.subscribe("/events/x", &[("origin", APP)]).await;
    assert_eq!(sse.header("access-control-allow-origin"), Some("*"));
    assert_eq!(sse.header("access-control-allow-credentials"), None);

    let closed = TestHub::start().await;
    let sse = closed.subscribe("/events/x", &[("origin", APP)]).await;
    assert_eq!(sse.header("access-control-allow-origin"), None);
}
