//! Publishing: JSON and form bodies, the answer, fields on the wire, several topics.

use std::time::Duration;

use serde_json::json;

use crate::support::TestHub;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn json_publish_reaches_subscribers_with_every_field() {
    let hub = TestHub::start().await;
    let mut a = hub.subscribe("/events/news", &[]).await;
    let mut b = hub.subscribe("/events/news", &[]).await;
    hub.wait_subscribers("news", 2).await;
    let (status, answer) = hub
        .post_json(
            json!({"topic": "news", "event": "headline", "data": "line 1\nline 2", "retry": 5000}),
        )
        .await;
    assert_eq!(status, 200, "{answer}");
    assert_eq!(answer["delivered"], 2);
    let id = answer["id"].as_str().unwrap();
    for sse in [&mut a, &mut b] {
        let e = sse.event().await;
        assert_eq!(
            (e.event.as_str(), e.data.as_str(), e.id.as_str()),
            ("headline", "line 1\nline 2", id)
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn form_publish_with_repeated_topics() {
    let hub = TestHub::start().await;
    let mut sse = hub.subscribe("/events?topic=x,y", &[]).await;
    let mut only_y = hub.subscribe("/events/y", &[]).await;
    hub.wait_subscribers("y", 2).await;
    let response = hub
        .http
        .post(hub.url("/publish"))
        .header("content-type", "application/x-www-form-urlencoded")
        .body("topic=x&topic=y&event=note&data=hello+there%21&id=my-id-1")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let answer: serde_json::Value = response.json().await.unwrap();
    assert_eq!(
        answer,
        json!({"id": "my-id-1", "delivered": 2}),
        "one delivery per subscriber, not per topic"
    );
    let e = sse.event().await;
    assert_eq!(
        (e.event.as_str(), e.data.as_str(), e.id.as_str()),
        ("note", "hello there!", "my-id-1")
    );
    // An event on two topics the subscriber follows arrives once.
    sse.quiet_for(Duration::from_millis(150)).await;
    assert_eq!(only_y.event().await.data, "hello there!");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn json_data_that_is_not_a_string_is_sent_as_json_text() {
    let hub = TestHub::start().await;
    let mut sse = hub.subscribe("/events/j", &[]).await;
    hub.wait_subscribers("j", 1).await;
    hub.post_json(json!({"topic": "j", "data": {"price": 10.5, "tags": ["a"]}}))
        .await;
    hub.post_json(json!({"topic": "j"})).await;
    assert_eq!(sse.event().await.data, r#"{"price":10.5,"tags":["a"]}"#);
    let empty = sse.event().await;
    assert_eq!(
        (empty.event.as_str(), empty.data.as_str()),
        ("message", ""),
        "no data still dispatches"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_payload_cannot_inject_fields() {
    let hub = TestHub::start().await;
    let mut sse = hub.subscribe("/events/inj", &[]).await;
    hub.wait_subscribers("inj", 1).await;
    let hostile = "x\n\nid: 999\nevent: admin\ndata: pwned\r\rretry: 1";
    let id = hub.publish("inj", hostile).await;
    let e = sse.event().await;
    assert_eq!(
        e.data,
        "x\n\nid: 999\nevent: admin\ndata: pwned\n\nretry: 1"
    );
    assert_eq!((e.event.as_str(), e.id.as_str()), ("message", id.as_str()));
    sse.quiet_for(Duration::from_millis(100)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ids_increase_in_publish_order() {
    let hub = TestHub::start().await;
    let mut last: Option<ssehub_core::EventId> = None;
    for i in 0..200 {
        let id: ssehub_core::EventId = hub.publish("order", &i.to_string()).await.parse().unwrap();
        assert!(last.is_none_or(|l| id > l), "{id} after {last:?}");
        last = Some(id);
    }
}
