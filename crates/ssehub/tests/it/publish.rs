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

async fn post_raw(hub: &TestHub, content_type: &str, body: String) -> (u16, serde_json::Value) {
    let response = hub
        .http
        .post(hub.url("/publish"))
        .header("content-type", content_type)
        .body(body)
        .send()
        .await
        .unwrap();
    let status = response.status().as_u16();
    (
        status,
        response.json().await.unwrap_or(serde_json::Value::Null),
    )
}

/// A batch (a JSON array, or NDJSON) publishes each event in order and answers each one's
/// id and deliveries; a batch larger than one lock's chunk stays in order.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_batch_publishes_every_event_in_order() {
    let hub = TestHub::start().await;
    let mut a = hub.subscribe("/events/a", &[]).await;
    let mut both = hub.subscribe("/events?topic=a,b", &[]).await;
    hub.wait_subscribers("a", 2).await;
    let batch = json!([
        {"topic": "a", "data": "1"},
        {"topic": "b", "data": "2", "event": "named"},
        {"topic": ["a", "b"], "data": "3", "id": "custom-3"},
    ]);
    let (status, answer) = post_raw(&hub, "application/json", batch.to_string()).await;
    assert_eq!(status, 200, "{answer}");
    let answers = answer.as_array().unwrap();
    assert_eq!(answers.len(), 3);
    let delivered: Vec<u64> = answers
        .iter()
        .map(|a| a["delivered"].as_u64().unwrap())
        .collect();
    assert_eq!(delivered, [2, 1, 2]);
    assert_eq!(answers[2]["id"], "custom-3");
    for (n, expect) in ["1", "3"].iter().enumerate() {
        let e = a.event().await;
        assert_eq!(e.data, *expect, "event {n} on a");
    }
    let seen: Vec<(String, String, String)> =
        [both.event().await, both.event().await, both.event().await]
            .into_iter()
            .map(|e| (e.event, e.data, e.id))
            .collect();
    assert_eq!(seen[0].1, "1");
    assert_eq!((seen[1].0.as_str(), seen[1].1.as_str()), ("named", "2"));
    assert_eq!((seen[2].1.as_str(), seen[2].2.as_str()), ("3", "custom-3"));
    assert_eq!(seen[0].2, answers[0]["id"].as_str().unwrap());

    // NDJSON, blank lines and CRLF line ends allowed; 1,000 events cross several chunks.
    let mut ndjson = String::from("\r\n");
    for i in 0..1000 {
        ndjson.push_str(&format!("{{\"topic\":\"a\",\"data\":\"n{i}\"}}\r\n"));
        if i % 100 == 0 {
            ndjson.push('\n');
        }
    }
    let (status, answer) = post_raw(&hub, "application/x-ndjson", ndjson).await;
    assert_eq!(status, 200, "{answer}");
    assert_eq!(answer.as_array().unwrap().len(), 1000);
    for i in 0..1000 {
        assert_eq!(a.event().await.data, format!("n{i}"));
    }
}

/// A JSON batch of the usual shape is decoded in one pass, any other shape the general way:
/// both publish the same events. Regression for the one-pass batch decoder: an unusual item
/// after usual ones (a number as id, JSON as data, escapes) still publishes, in order; the
/// answer escapes a custom id that needs it; a malformed item after good ones refuses the
/// batch with its position and publishes nothing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_batch_of_any_shape_publishes_the_same_events() {
    let hub = TestHub::start().await;
    let mut sse = hub.subscribe("/events/m", &[]).await;
    hub.wait_subscribers("m", 1).await;
    let usual = r#"[{"topic":"m","data":"a\"b"}, {"topic":["m"],"data":"\u00e9","id":"q\"id"}]"#;
    let (status, answer) = post_raw(&hub, "application/json", usual.into()).await;
    assert_eq!(status, 200, "{answer}");
    assert_eq!(answer[1], json!({"id": "q\"id", "delivered": 1}));
    let unusual = r#"[{"topic":"m","data":"c"}, {"topic":"m","id":7,"data":{"k":[1,null]}}]"#;
    let (status, answer) = post_raw(&hub, "application/json", unusual.into()).await;
    assert_eq!(status, 200, "{answer}");
    assert_eq!(answer[1]["id"], "7");
    let seen: Vec<(String, String)> = [
        sse.event().await,
        sse.event().await,
        sse.event().await,
        sse.event().await,
    ]
    .into_iter()
    .map(|e| (e.data, e.id))
    .collect();
    assert_eq!(seen[0].0, "a\"b");
    assert_eq!(seen[1], ("é".to_owned(), "q\"id".to_owned()));
    assert_eq!(seen[2].0, "c");
    assert_eq!(seen[3], (r#"{"k":[1,null]}"#.to_owned(), "7".to_owned()));

    for (bad, why) in [
        (
            r#"[{"topic":"m","data":"x"}, {"topic":5}]"#,
            "topic must be",
        ),
        (
            r#"[{"topic":"m","data":"x"}, 3]"#,
            "body must be a JSON object",
        ),
        (
            r#"[{"topic":"m","data":"x"}] trailing"#,
            "malformed JSON batch",
        ),
        (r#"[{"topic":"m","data":"x"},]"#, "malformed JSON batch"),
    ] {
        let (status, answer) = post_raw(&hub, "application/json", bad.into()).await;
        assert_eq!(status, 400, "{bad}: {answer}");
        let error = answer["error"].as_str().unwrap();
        assert!(error.contains(why), "{bad}: {error}");
    }
    let stats = hub.get_json("/topics").await;
    let last = stats["topics"][0]["lastEventId"]
        .as_str()
        .unwrap()
        .to_owned();
    assert_eq!(last, "7", "nothing after the good batches was published");
    sse.quiet_for(Duration::from_millis(150)).await;

    // A large batch of small events: 5,000 (more than the decoder's first guess of the
    // count for their size, and than one lock's chunk), every answer in order.
    let big: Vec<_> = (0..5000)
        .map(|i| json!({"topic": "m", "data": i.to_string()}))
        .collect();
    let (status, answer) = post_raw(&hub, "application/json", json!(big).to_string()).await;
    assert_eq!(status, 200, "{answer}");
    let answers = answer.as_array().unwrap();
    assert_eq!(answers.len(), 5000);
    for (i, a) in answers.iter().enumerate() {
        let e = sse.event().await;
        assert_eq!(e.data, i.to_string());
        assert_eq!(a["id"].as_str().unwrap(), e.id);
    }
}

/// One bad event refuses the whole batch, naming its position; nothing is published. An
/// empty or malformed batch is a 400 too, and the topic limit holds for a batch as a whole.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_batch_with_one_bad_event_publishes_nothing() {
    let hub = TestHub::with_config(ssehub::Config {
        max_hub_topics: 3,
        ..ssehub::Config::default()
    })
    .await;
    let bad = json!([
        {"topic": "x", "data": "fine"},
        {"topic": "bad topic", "data": "x"},
    ]);
    let (status, answer) = post_raw(&hub, "application/json", bad.to_string()).await;
    assert_eq!(status, 400);
    assert!(
        answer["error"]
            .as_str()
            .unwrap()
            .starts_with("event 1 of the batch"),
        "{answer}"
    );
    assert_eq!(answer["field"], "topic");
    let (status, answer) = post_raw(
        &hub,
        "application/x-ndjson",
        "{\"topic\":\"x\"}\nnot json\n".into(),
    )
    .await;
    assert_eq!(status, 400, "{answer}");
    assert!(answer["error"]
        .as_str()
        .unwrap()
        .starts_with("event 1 of the batch"));
    assert_eq!(post_raw(&hub, "application/json", "[]".into()).await.0, 400);
    assert_eq!(
        post_raw(&hub, "application/json", "[{\"topic\":".into())
            .await
            .0,
        400
    );
    let too_many = json!([
        {"topic": "t1", "data": "x"}, {"topic": "t2", "data": "x"},
        {"topic": "t3", "data": "x"}, {"topic": "t4", "data": "x"},
    ]);
    let (status, answer) = post_raw(&hub, "application/json", too_many.to_string()).await;
    assert_eq!(status, 503, "{answer}");
    let topics = hub.get_json("/topics").await;
    assert_eq!(topics["topics"], json!([]), "nothing was published");
}
