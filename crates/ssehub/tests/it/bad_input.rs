//! Bad input: every malformed publish or subscribe gets its status and a JSON error naming
//! the field, and changes nothing: the hub keeps serving and loses no event.

use serde_json::{json, Value};
use ssehub::Config;

use crate::support::TestHub;

struct Case {
    name: &'static str,
    method: &'static str,
    path: &'static str,
    content_type: Option<&'static str>,
    body: Vec<u8>,
    status: u16,
    field: Option<&'static str>,
}

fn publish(name: &'static str, body: Value, status: u16, field: Option<&'static str>) -> Case {
    Case {
        name,
        method: "POST",
        path: "/publish",
        content_type: Some("application/json"),
        body: body.to_string().into_bytes(),
        status,
        field,
    }
}

fn raw(
    name: &'static str,
    content_type: Option<&'static str>,
    body: &[u8],
    status: u16,
    field: Option<&'static str>,
) -> Case {
    Case {
        name,
        method: "POST",
        path: "/publish",
        content_type,
        body: body.to_vec(),
        status,
        field,
    }
}

fn get(name: &'static str, path: &'static str, status: u16, field: Option<&'static str>) -> Case {
    Case {
        name,
        method: "GET",
        path,
        content_type: None,
        body: Vec::new(),
        status,
        field,
    }
}

const MAX_PAYLOAD: usize = 4096;

fn cases() -> Vec<Case> {
    let many: Vec<String> = (0..65).map(|i| format!("t{i}")).collect();
    let nested = format!("{}{}", "[".repeat(1500), "]".repeat(1500));
    vec![
        publish("missing topic", json!({"data": "x"}), 400, Some("topic")),
        publish("empty topic", json!({"topic": ""}), 400, Some("topic")),
        publish("topic with a space", json!({"topic": "a b"}), 400, Some("topic")),
        publish("topic with a newline", json!({"topic": "a\nb"}), 400, Some("topic")),
        publish("topic not a string", json!({"topic": 5}), 400, Some("topic")),
        publish("topic list with a number", json!({"topic": ["a", 1]}), 400, Some("topic")),
        publish("too many topics", json!({"topic": many}), 400, Some("topic")),
        publish("newline in event name", json!({"topic": "t", "event": "a\nb"}), 400, Some("event")),
        publish("CR in event name", json!({"topic": "t", "event": "a\rb"}), 400, Some("event")),
        publish("event named error", json!({"topic": "t", "event": "error"}), 400, Some("event")),
        publish("event not a string", json!({"topic": "t", "event": ["x"]}), 400, Some("event")),
        publish("newline in id", json!({"topic": "t", "id": "a\nb"}), 400, Some("id")),
        publish("NUL in id", json!({"topic": "t", "id": "a\u{0}b"}), 400, Some("id")),
        publish("retry a word", json!({"topic": "t", "retry": "soon"}), 400, Some("retry")),
        publish("retry negative", json!({"topic": "t", "retry": -5}), 400, Some("retry")),
        publish("retry fractional", json!({"topic": "t", "retry": 1.5}), 400, Some("retry")),
        publish("close not a bool", json!({"topic": "t", "close": "yes"}), 400, Some("close")),
        publish("body an array", json!(["t"]), 400, None),
        raw("malformed JSON", Some("application/json"), b"{\"topic\": ", 400, None),
        raw("invalid UTF-8 JSON", Some("application/json"), b"{\"topic\": \"\xff\"}", 400, None),
        raw("deeply nested JSON", Some("application/json"), nested.as_bytes(), 400, None),
        raw("payload over the limit", Some("application/json"), &vec![b' '; MAX_PAYLOAD + 1], 413, None),
        raw("text/plain", Some("text/plain"), b"hello", 415, None),
        raw("no content type", None, b"topic=t", 415, None),
        raw("form with invalid UTF-8", Some("application/x-www-form-urlencoded"), b"topic=t&data=%FF", 400, None),
        raw("form retry a word", Some("application/x-www-form-urlencoded"), b"topic=t&retry=abc", 400, Some("retry")),
        raw("form without topic", Some("application/x-www-form-urlencoded"), b"data=x", 400, Some("topic")),
        get("subscribe without topic", "/events", 400, Some("topic")),
        get("subscribe to a bad topic", "/events?topic=a%20b", 400, Some("topic")),
        get("subscribe with invalid UTF-8", "/events?topic=%FF", 400, None),
        get("subscribe to too many topics", "/events?topic=0,1,2,3,4,5,6,7,8,9,10,11,12,13,14,15,16,17,18,19,20,21,22,23,24,25,26,27,28,29,30,31,32,33,34,35,36,37,38,39,40,41,42,43,44,45,46,47,48,49,50,51,52,53,54,55,56,57,58,59,60,61,62,63,64", 400, Some("topic")),
        get("topic info for a bad topic", "/topics/a%0Ab", 400, Some("topic")),
    ]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_bad_request_gets_a_clear_error_and_changes_nothing() {
    let hub = TestHub::with_config(Config {
        max_payload: MAX_PAYLOAD,
        ..Config::default()
    })
    .await;
    let first = hub.publish("t", "before 1").await;
    hub.publish("t", "before 2").await;
    for case in cases() {
        let mut request = match case.method {
            "GET" => hub.http.get(hub.url(case.path)),
            _ => hub.http.post(hub.url(case.path)).body(case.body.clone()),
        };
        if let Some(ct) = case.content_type {
            request = request.header("content-type", ct);
        }
        let response = request
            .send()
            .await
            .unwrap_or_else(|e| panic!("{}: {e}", case.name));
        assert_eq!(response.status().as_u16(), case.status, "{}", case.name);
        assert_eq!(
            response
                .headers()
                .get("content-type")
                .map(|v| v.to_str().unwrap()),
            Some("application/json"),
            "{}",
            case.name
        );
        let body: Value = response
            .json()
            .await
            .unwrap_or_else(|e| panic!("{}: {e}", case.name));
        let message = body["error"]
            .as_str()
            .unwrap_or_else(|| panic!("{}: no error in {body}", case.name));
        assert!(!message.is_empty(), "{}", case.name);
        assert_eq!(body["field"].as_str(), case.field, "{}: {body}", case.name);
    }
    // Still serving, nothing lost, nothing half-published.
    let mut sse = hub
        .subscribe("/events/t", &[("Last-Event-ID", &first)])
        .await;
    assert_eq!(sse.event().await.data, "before 2");
    hub.publish("t", "after").await;
    assert_eq!(sse.event().await.data, "after");
    let metrics = hub.metrics().await;
    assert!(
        metrics.contains("\nssehub_events_published_total 3\n"),
        "{metrics}"
    );
}
