//! Subscriber tests: pure helpers, then the connection policy against a scripted fake hub.

use super::*;

#[test]
fn content_type_essence() {
    for ok in [
        "text/event-stream",
        "text/event-stream;",
        "text/event-stream; charset=utf-8",
        "Text/Event-Stream",
        " text/event-stream ;x=y",
    ] {
        assert!(is_event_stream(&HeaderValue::from_static(ok)), "{ok}");
    }
    for bad in [
        "text/x-bogus",
        "x bogus",
        "",
        "text/event-streams",
        "text/plain",
    ] {
        assert!(!is_event_stream(&HeaderValue::from_static(bad)), "{bad}");
    }
}

#[test]
fn events_url_lists_every_topic() {
    let c = Client::new("http://h:1").unwrap();
    let mut s = Subscription::new(["a", "b c", "x&y"]);
    assert_eq!(
        c.events_url(&s).unwrap().as_str(),
        "http://h:1/events?topic=a&topic=b+c&topic=x%26y"
    );
    s.presence = true;
    assert_eq!(
        c.events_url(&s).unwrap().as_str(),
        "http://h:1/events?topic=a&topic=b+c&topic=x%26y&presence=1"
    );
}

#[tokio::test]
async fn an_unsendable_last_event_id_is_a_terminal_error() {
    let c = Client::new("http://127.0.0.1:9").unwrap();
    let mut sub = c.subscribe(Subscription {
        last_event_id: Some("a\nb".into()),
        ..Subscription::new(["t"])
    });
    let e = sub.next().await.unwrap().unwrap_err();
    assert!(e.is_builder(), "{e}");
    assert!(sub.next().await.is_none());
    assert_eq!(sub.attempts(), 0);
}

// The connection policy against a scripted fake hub.

use crate::fake_hub::{answer, stream, FakeHub, Reply};

fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

/// A subscription to `t` with short waits, so the tests run in milliseconds.
fn quick() -> Subscription {
    Subscription {
        initial_retry: ms(10),
        max_backoff: ms(200),
        idle_timeout: Some(Duration::from_secs(5)),
        ..Subscription::new(["t"])
    }
}

fn event(id: &str, event: &str, data: &str) -> SubEvent {
    SubEvent {
        id: id.into(),
        event: event.into(),
        data: data.into(),
    }
}

/// A request header's value (the fake hub lower-cases heads).
fn header<'a>(request: &'a str, name: &str) -> Option<&'a str> {
    request.lines().find_map(|line| {
        let (n, v) = line.split_once(':')?;
        (n == name).then(|| v.trim())
    })
}

/// Every item until the subscription ends.
async fn drain(sub: &mut Subscriber) -> Vec<Result<SubEvent, Error>> {
    let mut items = Vec::new();
    let all = async {
        while let Some(item) = sub.next().await {
            items.push(item);
        }
    };
    tokio::time::timeout(Duration::from_secs(20), all)
        .await
        .expect("the subscription did not end");
    items
}

fn events(items: Vec<Result<SubEvent, Error>>) -> Vec<SubEvent> {
    items.into_iter().map(|i| i.unwrap()).collect()
}

#[tokio::test]
async fn reconnects_after_end_of_stream_with_last_event_id() {
    let hub = FakeHub::start(vec![
        Reply::Close(stream(
            ": ok\nretry: 20\n\nid: 1\ndata: a\n\nid: 2\ndata: partial",
        )),
        Reply::Close(stream("data: b\n\nid: 3\nevent: x\ndata: c\n\n")),
    ])
    .await;
    let mut sub = Client::new(&hub.url).unwrap().subscribe(quick());
    let got = events(drain(&mut sub).await);
    assert_eq!(
        got,
        [
            event("1", "message", "a"),
            // The partial event of the dropped connection is gone; the id carries over.
            event("1", "message", "b"),
            event("3", "x", "c"),
        ]
    );
    let requests = hub.requests();
    assert_eq!(requests.len(), 3);
    assert!(requests[0].starts_with("get /events?topic=t http/1.1\r\n"));
    assert_eq!(header(&requests[0], "accept"), Some("text/event-stream"));
    assert_eq!(header(&requests[0], "cache-control"), Some("no-cache"));
    assert_eq!(header(&requests[0], "last-event-id"), None);
    assert_eq!(header(&requests[1], "last-event-id"), Some("1"));
    assert_eq!(header(&requests[2], "last-event-id"), Some("3"));
    assert_eq!(sub.retry(), ms(20));
    assert_eq!((sub.attempts(), sub.connections()), (3, 2));
    assert!(sub.is_closed());
    assert_eq!(sub.last_event_id(), "3");
}

#[tokio::test]
async fn stops_quietly_on_204() {
    let hub = FakeHub::start(vec![]).await;
    let mut sub = Client::new(&hub.url).unwrap().subscribe(quick());
    assert!(drain(&mut sub).await.is_empty());
    assert_eq!((sub.attempts(), sub.connections()), (1, 0));
    assert!(sub.is_closed());
}

#[tokio::test]
async fn other_non_200_answers_are_terminal() {
    for status in [
        "400 Bad Request",
        "404 Not Found",
        "429 Too Many Requests",
        "500 Internal Server Error",
        "503 Service Unavailable",
        "205 Reset Content",
    ] {
        let body = r#"{"error":"nope","field":"topic"}"#;
        let hub = FakeHub::start(vec![Reply::Close(answer(
            status,
            "Content-Type: application/json\r\n",
            body,
        ))])
        .await;
        let mut sub = Client::new(&hub.url).unwrap().subscribe(quick());
        let mut items = drain(&mut sub).await;
        assert_eq!(items.len(), 1, "{status}");
        let e = items.remove(0).unwrap_err();
        assert!(e.is_status(), "{status}: {e}");
        assert_eq!(
            e.status().map(|s| s.to_string()),
            Some(status[..3].to_string())
        );
        assert_eq!(e.hub_error(), Some("nope"));
        assert_eq!(e.hub_field(), Some("topic"));
        assert_eq!(sub.attempts(), 1, "{status}");
    }
}

#[tokio::test]
async fn server_errors_are_retried_when_asked() {
    let hub = FakeHub::start(vec![
        Reply::Close(answer("503 Service Unavailable", "Retry-After: 0\r\n", "")),
        Reply::Close(answer("429 Too Many Requests", "", "")),
        Reply::Close(answer("502 Bad Gateway", "", "<html>")),
        Reply::Close(stream("id: 7\ndata: ok\n\n")),
    ])
    .await;
    let mut sub = Client::new(&hub.url).unwrap().subscribe(Subscription {
        retry_server_errors: true,
        ..quick()
    });
    assert_eq!(events(drain(&mut sub).await), [event("7", "message", "ok")]);
    assert_eq!((sub.attempts(), sub.connections()), (5, 1));
    // 4xx other than 429 still stops.
    let hub = FakeHub::start(vec![Reply::Close(answer("401 Unauthorized", "", ""))]).await;
    let mut sub = Client::new(&hub.url).unwrap().subscribe(Subscription {
        retry_server_errors: true,
        ..quick()
    });
    let items = drain(&mut sub).await;
    assert_eq!(items.len(), 1);
    assert_eq!(items[0].as_ref().unwrap_err().status(), Some(401));
}

#[tokio::test]
async fn a_200_that_is_not_an_event_stream_is_terminal() {
    for headers in ["Content-Type: text/plain\r\n", ""] {
        let hub =
            FakeHub::start(vec![Reply::Close(answer("200 OK", headers, "data: x\n\n"))]).await;
        let mut sub = Client::new(&hub.url).unwrap().subscribe(quick());
        let items = drain(&mut sub).await;
        assert_eq!(items.len(), 1);
        let e = items[0].as_ref().unwrap_err();
        assert!(e.is_content_type(), "{headers:?}: {e}");
        assert_eq!((sub.attempts(), sub.connections()), (1, 0));
    }
}

#[tokio::test]
async fn a_silent_connection_is_dropped_after_the_idle_timeout() {
    let hub = FakeHub::start(vec![
        Reply::Hold(stream(": ok\n\nid: 1\ndata: a\n\n")),
        Reply::Close(stream("id: 2\ndata: b\n\n")),
    ])
    .await;
    let mut sub = Client::new(&hub.url).unwrap().subscribe(Subscription {
        idle_timeout: Some(ms(300)),
        ..quick()
    });
    assert_eq!(
        events(drain(&mut sub).await),
        [event("1", "message", "a"), event("2", "message", "b")]
    );
    assert_eq!(header(&hub.requests()[1], "last-event-id"), Some("1"));
    assert_eq!((sub.attempts(), sub.connections()), (3, 2));
}

#[tokio::test]
async fn gives_up_after_max_failed_attempts_when_nothing_listens() {
    let port = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.local_addr().unwrap().port()
    };
    let mut sub = Client::new(&format!("http://127.0.0.1:{port}"))
        .unwrap()
        .subscribe(Subscription {
            max_failed_attempts: Some(3),
            ..quick()
        });
    let items = drain(&mut sub).await;
    assert_eq!(items.len(), 1);
    let e = items[0].as_ref().unwrap_err();
    assert!(e.is_network(), "{e}");
    assert_eq!((sub.attempts(), sub.connections()), (3, 0));
}

#[tokio::test]
async fn a_resumed_stream_sends_the_id_and_skips_a_bom() {
    let hub = FakeHub::start(vec![Reply::Close(stream("\u{FEFF}data: x\n\n"))]).await;
    let mut sub = Client::new(&hub.url).unwrap().subscribe(Subscription {
        last_event_id: Some("5".into()),
        ..quick()
    });
    assert_eq!(events(drain(&mut sub).await), [event("5", "message", "x")]);
    let requests = hub.requests();
    assert_eq!(header(&requests[0], "last-event-id"), Some("5"));
    assert_eq!(header(&requests[1], "last-event-id"), Some("5"));
}

#[tokio::test]
async fn data_less_blocks_move_the_id() {
    let hub = FakeHub::start(vec![
        Reply::Close(stream("id: 9\n\n")),
        // An empty id resets it: the next request sends none.
        Reply::Close(stream("id: 10\ndata: a\n\nid\n\n")),
    ])
    .await;
    let mut sub = Client::new(&hub.url).unwrap().subscribe(quick());
    assert_eq!(events(drain(&mut sub).await), [event("10", "message", "a")]);
    let requests = hub.requests();
    assert_eq!(header(&requests[1], "last-event-id"), Some("9"));
    assert_eq!(header(&requests[2], "last-event-id"), None);
}

#[tokio::test]
async fn control_events_and_presence_come_through_by_name() {
    let hub = FakeHub::start(vec![Reply::Close(stream(
        "id: 4\ndata: x\n\nevent: ssehub-reset\ndata: {\"reason\":\"expired\"}\n\n\
         event: ssehub-presence\ndata: {\"topic\":\"a\"}\n\n",
    ))])
    .await;
    let mut sub = Client::new(&hub.url).unwrap().subscribe(Subscription {
        presence: true,
        ..Subscription {
            topics: vec!["a".into(), "b".into()],
            ..quick()
        }
    });
    let got = events(drain(&mut sub).await);
    assert_eq!(
        got,
        [
            event("4", "message", "x"),
            event("4", RESET_EVENT, r#"{"reason":"expired"}"#),
            event("4", PRESENCE_EVENT, r#"{"topic":"a"}"#),
        ]
    );
    assert!(!got[0].is_control() && got[1].is_control() && got[2].is_control());
    assert!(hub.requests()[0].starts_with("get /events?topic=a&topic=b&presence=1 http/1.1"));
}

#[tokio::test]
async fn streams_that_end_before_they_are_healthy_back_off() {
    let hub = FakeHub::start(vec![
        Reply::Close(stream(": ok\n\n")),
        Reply::Close(stream(": ok\n\n")),
        Reply::Close(stream(": ok\n\n")),
    ])
    .await;
    let mut sub = Client::new(&hub.url).unwrap().subscribe(quick());
    let started = Instant::now();
    assert!(drain(&mut sub).await.is_empty());
    // Waits of at least 10, 20 and 40 ms after the three unhealthy streams.
    assert!(started.elapsed() >= ms(70), "{:?}", started.elapsed());
    assert_eq!(sub.failures, 3);
    assert_eq!((sub.attempts(), sub.connections()), (4, 3));
}

#[tokio::test]
async fn a_stream_that_delivered_an_event_resets_the_back_off() {
    let hub = FakeHub::start(vec![
        Reply::Close(stream(": ok\n\n")),
        Reply::Close(stream("id: 1\ndata: a\n\n")),
    ])
    .await;
    let mut sub = Client::new(&hub.url).unwrap().subscribe(quick());
    assert_eq!(events(drain(&mut sub).await), [event("1", "message", "a")]);
    assert_eq!(sub.failures, 0);
}

#[tokio::test]
async fn into_stream_yields_the_same_items() {
    use futures_util::StreamExt;
    let hub = FakeHub::start(vec![Reply::Close(stream("data: a\n\ndata: b\n\n"))]).await;
    let sub = Client::new(&hub.url).unwrap().subscribe(quick());
    let got: Vec<_> = sub.into_stream().map(Result::unwrap).collect().await;
    assert_eq!(got, [event("", "message", "a"), event("", "message", "b")]);
}

#[tokio::test]
async fn close_ends_the_subscription() {
    let hub = FakeHub::start(vec![Reply::Hold(stream("data: a\n\ndata: b\n\n"))]).await;
    let mut sub = Client::new(&hub.url).unwrap().subscribe(quick());
    assert_eq!(sub.next().await.unwrap().unwrap().data, "a");
    sub.close();
    assert!(sub.next().await.is_none());
    assert!(sub.is_closed());
}

#[tokio::test]
async fn reconnects_can_be_reported_without_ending_the_subscription() {
    let port = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.local_addr().unwrap().port()
    };
    let mut sub = Client::new(&format!("http://127.0.0.1:{port}"))
        .unwrap()
        .subscribe(Subscription {
            report_reconnects: true,
            max_failed_attempts: Some(2),
            ..quick()
        });
    for _ in 0..2 {
        let e = sub.next().await.unwrap().unwrap_err();
        assert!(e.is_network(), "{e}");
        assert!(!sub.is_closed());
    }
    let e = sub.next().await.unwrap().unwrap_err();
    assert!(e.to_string().contains("gave up after 2"), "{e}");
    assert!(sub.is_closed());
    assert!(sub.next().await.is_none());

    let hub = FakeHub::start(vec![
        Reply::Close(stream("id: 1\ndata: a\n\n")),
        Reply::Close(stream(": ok\n\n")),
    ])
    .await;
    let mut sub = Client::new(&hub.url).unwrap().subscribe(Subscription {
        report_reconnects: true,
        ..quick()
    });
    let items = drain(&mut sub).await;
    assert_eq!(items.len(), 3, "{items:?}");
    assert_eq!(items[0].as_ref().unwrap(), &event("1", "message", "a"));
    assert!(items[1].as_ref().unwrap_err().is_network());
    assert!(items[2].as_ref().unwrap_err().is_network());
}

#[tokio::test]
async fn an_absurd_retry_does_not_overflow_the_clock() {
    let hub = FakeHub::start(vec![Reply::Close(stream(
        "retry: 99999999999999999999999\n\nid: 1\ndata: a\n\n",
    ))])
    .await;
    let mut sub = Client::new(&hub.url).unwrap().subscribe(quick());
    assert_eq!(sub.next().await.unwrap().unwrap().data, "a");
    assert_eq!(sub.retry(), Duration::from_millis(u64::MAX));
    // The stream ends; the next attempt is scheduled (capped) instead of panicking.
    let next = tokio::time::timeout(ms(200), sub.next()).await;
    assert!(next.is_err(), "still waiting to reconnect");
    assert!(sub.next_attempt.is_some());
    sub.failures = 5;
    sub.schedule(Some(Duration::MAX));
}
