//! The publish rate limit per client address: a burst over it gets 429 with Retry-After and
//! is not stored; what was accepted is delivered and replayed; another address has its own
//! allowance; refusals are counted in /metrics.

use std::net::IpAddr;

use serde_json::{json, Value};
use ssehub::Config;

use crate::support::{metric, TestHub};

fn limited(rate: u64, burst: u64) -> Config {
    Config {
        publish_rate: rate,
        publish_burst: burst,
        ..Config::default()
    }
}

/// A client whose connections come from `ip` (any 127/8 address is loopback on Linux).
fn client_from(ip: [u8; 4]) -> reqwest::Client {
    reqwest::Client::builder()
        .local_address(IpAddr::from(ip))
        .build()
        .expect("client")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_burst_over_the_limit_is_refused_and_nothing_accepted_is_lost() {
    let hub = TestHub::with_config(limited(1, 5)).await;
    let mut live = hub.subscribe("/events/r", &[]).await;
    hub.wait_subscribers("r", 1).await;

    let mut accepted = Vec::new();
    let mut refused = 0;
    for i in 0..20 {
        let response = hub
            .http
            .post(hub.url("/publish"))
            .json(&json!({"topic": "r", "data": format!("n{i}")}))
            .send()
            .await
            .expect("publish");
        match response.status().as_u16() {
            200 => {
                let body: Value = response.json().await.expect("json");
                accepted.push((body["id"].as_str().expect("id").to_owned(), format!("n{i}")));
            }
            429 => {
                refused += 1;
                let retry = response.headers()["retry-after"]
                    .to_str()
                    .unwrap()
                    .to_owned();
                assert_eq!(retry, "1", "1/s: a token is at most a second away");
                let body: Value = response.json().await.expect("json error");
                let error = body["error"].as_str().expect("error");
                assert!(error.contains("too many publish requests"), "{error}");
            }
            other => panic!("publish {i}: status {other}"),
        }
    }
    // The bucket starts full: the burst goes through, then the rate applies.
    let first: Vec<&str> = accepted.iter().take(5).map(|(_, d)| d.as_str()).collect();
    assert_eq!(first, ["n0", "n1", "n2", "n3", "n4"]);
    assert!(
        refused > 0,
        "20 publishes at once over 1/s with a burst of 5"
    );

    // Another address is not affected by this one's empty bucket.
    let other = client_from([127, 0, 0, 2])
        .post(hub.url("/publish"))
        .json(&json!({"topic": "r", "data": "other"}))
        .send()
        .await
        .expect("publish from 127.0.0.2");
    assert_eq!(other.status(), 200);
    let other_id = other.json::<Value>().await.unwrap()["id"]
        .as_str()
        .unwrap()
        .to_owned();

    // Live: exactly the accepted events, in order, then the other address's.
    let mut want: Vec<(String, String)> = accepted.clone();
    want.push((other_id, "other".to_owned()));
    for (id, data) in &want {
        let e = live.event().await;
        assert_eq!((&e.id, &e.data), (id, data));
    }
    // Replay: the refused ones were never stored.
    let mut replay = hub
        .subscribe("/events/r", &[("Last-Event-ID", accepted[0].0.as_str())])
        .await;
    for (id, data) in &want[1..] {
        let e = replay.event().await;
        assert_eq!((&e.id, &e.data), (id, data));
    }
    replay
        .quiet_for(std::time::Duration::from_millis(200))
        .await;

    let text = hub.metrics().await;
    assert_eq!(metric(&text, "ssehub_publish_rate_limited_total "), refused);
    assert_eq!(
        metric(&text, "ssehub_events_published_total "),
        want.len() as u64
    );
    assert_eq!(metric(&text, "ssehub_publish_rejected_total "), 0);
    assert_eq!(metric(&text, "ssehub_limit{name=\"publish_rate\"} "), 1);
    assert_eq!(metric(&text, "ssehub_limit{name=\"publish_burst\"} "), 5);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_publish_route_shares_the_allowance_and_subscribing_is_not_limited() {
    let hub = TestHub::with_config(limited(1, 1)).await;
    let mercure = |topic: &'static str| {
        hub.http
            .post(hub.url("/.well-known/mercure"))
            .form(&[("topic", topic), ("data", "x")])
            .send()
    };
    let first = mercure("https://e.example/m").await.expect("post");
    assert_eq!(first.status(), 200);
    // The Mercure endpoint answers its refusal in plain text, as its other errors.
    let mut refusal = None;
    for _ in 0..10 {
        let r = mercure("https://e.example/m").await.expect("post");
        if r.status() == 429 {
            refusal = Some(r);
            break;
        }
    }
    let refusal = refusal.expect("a 429 within 10 publishes at 1/s, burst 1");
    assert_eq!(refusal.headers()["retry-after"], "1");
    assert!(refusal.headers()["content-type"]
        .to_str()
        .unwrap()
        .starts_with("text/plain"));
    assert!(refusal
        .text()
        .await
        .unwrap()
        .contains("too many publish requests"));

    // DELETE /topics/{t} publishes too, from the same bucket: refused in JSON.
    let mut refused_delete = false;
    for _ in 0..10 {
        let r = hub
            .http
            .delete(hub.url("/topics/d"))
            .send()
            .await
            .expect("delete");
        if r.status() == 429 {
            assert_eq!(r.headers()["retry-after"], "1");
            let body: Value = r.json().await.expect("json error");
            assert!(body["error"].is_string(), "{body}");
            refused_delete = true;
            break;
        }
    }
    assert!(
        refused_delete,
        "a DELETE within 10 at 1/s, burst 1 is refused"
    );

    // Reads and subscriptions from the limited address go on.
    let mut stream = hub.subscribe("/events/d", &[]).await;
    assert_eq!(stream.status, 200);
    let topic = hub.get_json("/topics/d").await;
    assert_eq!(topic["topic"], "d");
    let mercure_sub = hub
        .http
        .get(hub.url("/.well-known/mercure?topic=https://e.example/m"))
        .send()
        .await
        .expect("mercure subscribe");
    assert_eq!(mercure_sub.status(), 200);
    drop(stream.item().await);
}
