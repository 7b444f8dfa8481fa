//! Route aliases (`[[route]]`) over real sockets: the demo's seed URLs and publish calls in
//! the seeds' wire shapes, and a user's own routes with path parameters, query selectors,
//! welcome events, replay, auth, CORS, limits and bad input.

use std::collections::HashSet;
use std::time::Duration;

use futures_util::StreamExt;
use serde_json::{json, Value};
use ssehub::{Config, CorsOrigins, RouteSpec, Routes, WelcomeSpec};
use ssehub_core::ParserItem;

use crate::auth::{publisher_token, secured, subscriber_token};
use crate::support::{TestHub, WAIT};

fn demo() -> Config {
    Config {
        demo: true,
        ..Config::default()
    }
}

/// The first bytes of a stream, as a client such as curl prints them.
async fn first_bytes(hub: &TestHub, path: &str, at_least: usize) -> String {
    let response = hub.http.get(hub.url(path)).send().await.unwrap();
    assert_eq!(response.status(), 200);
    let mut body = response.bytes_stream();
    let mut text = Vec::new();
    while text.len() < at_least {
        let chunk = tokio::time::timeout(WAIT, body.next())
            .await
            .expect("stream stalled")
            .expect("stream ended")
            .unwrap();
        text.extend_from_slice(&chunk);
    }
    String::from_utf8(text).unwrap()
}

async fn post(hub: &TestHub, path: &str, body: Value) -> (u16, Value) {
    let response = hub
        .http
        .post(hub.url(path))
        .json(&body)
        .send()
        .await
        .unwrap();
    let status = response.status().as_u16();
    (status, response.json().await.unwrap_or(Value::Null))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn demo_serves_the_seeds_own_subscribe_urls() {
    let hub = TestHub::with_config(demo()).await;
    // Seed 003's curl: `curl -H Accept:text/event-stream .../random` prints only `data: N`.
    let random = first_bytes(&hub, "/random", 8).await;
    let line = random.lines().next().unwrap();
    let n: u32 = line
        .strip_prefix("data: ")
        .unwrap_or_else(|| panic!("{random:?}"))
        .parse()
        .unwrap();
    assert!((1..=1000).contains(&n), "{random:?}");
    assert!(
        !random.contains("id:") && !random.contains("retry:"),
        "{random:?}"
    );
    let mut filtered = hub.subscribe("/latest?type=weather,stockprice", &[]).await;
    let mut all = hub.subscribe("/latest", &[]).await;
    let mut news = hub.subscribe("/latest/news", &[]).await;
    let mut analytics = hub.subscribe("/analytics", &[]).await;
    let mut kinds = HashSet::new();
    while kinds.len() < 2 {
        let e = filtered.event().await;
        assert!(["weather", "stock"].contains(&e.event.as_str()), "{e:?}");
        kinds.insert(e.event);
    }
    let mut kinds = HashSet::new();
    while kinds.len() < 3 {
        kinds.insert(all.event().await.event);
    }
    let n = news.event().await;
    assert_eq!(n.event, "news", "only news on /latest/news: {n:?}");
    let a = analytics.event().await;
    let v: Value = serde_json::from_str(&a.data).unwrap();
    assert!(v["activeUsers"].as_u64().unwrap() >= 1, "{v}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn seed_000_welcome_carries_the_position_and_a_resume_misses_nothing() {
    let hub = TestHub::with_config(demo()).await;
    let mut clock = hub.subscribe("/subscribe", &[]).await;
    let connected = clock.event().await;
    assert_eq!(connected.event, "connected");
    assert_eq!(connected.data, "You are now subscribed!");
    assert!(!connected.id.is_empty(), "the welcome has an id");
    drop(clock);
    // Published while the page is away: the reconnect resumes from the welcome's id.
    hub.publish("clock", "while away").await;
    let mut again = hub
        .subscribe("/subscribe", &[("last-event-id", &connected.id)])
        .await;
    let welcome = again.event().await;
    assert_eq!(welcome.event, "connected");
    assert_eq!(
        welcome.id, connected.id,
        "a resumed welcome keeps the client's id"
    );
    let missed = again.event().await;
    assert_eq!(missed.data, "while away");
    let later = again.event().await;
    assert_eq!(later.event, "current-date", "{later:?}");
    assert_ne!(later.data, "while away", "no duplicate");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn seeds_001_and_002_share_bare_events_and_its_publish_calls() {
    let hub = TestHub::with_config(demo()).await;
    // Seed 002: `retry: 10000` is the first thing on the stream.
    let opening = first_bytes(&hub, "/events", 15).await;
    assert!(opening.starts_with("retry: 10000\n\n"), "{opening:?}");
    let mut events = hub.subscribe("/events", &[]).await;
    assert_eq!(events.item().await, Some(ParserItem::Retry(10_000)));
    let online = events.event().await;
    assert_eq!(online.event, "user-online");
    let online: Value = serde_json::from_str(&online.data).unwrap();
    assert!(online["clientId"].as_u64().unwrap() > 0);
    let count = events.event().await;
    assert_eq!(count.event, "user-count");
    let count: Value = serde_json::from_str(&count.data).unwrap();
    assert!(count["count"].is_u64(), "{count}");
    hub.wait_subscribers("broadcast", 1).await;

    // Seed 001: `POST /broadcast {message}` answers how many it was sent to.
    let (status, answer) = post(&hub, "/broadcast", json!({"message": "hello all"})).await;
    assert_eq!((status, answer), (200, json!({"sent": 1})));
    // Seed 001: `POST /notify {title, message}` sends a `notification` JSON event.
    let (status, answer) = post(&hub, "/notify", json!({"title": "T", "message": "M"})).await;
    assert_eq!((status, answer), (200, json!({"ok": true})));
    let mut seen = Vec::new();
    while seen.len() < 2 {
        let e = events.event().await;
        match e.event.as_str() {
            // Seed 002's counter, an unnamed message every second.
            "message" if e.data.parse::<u64>().is_ok() => {}
            "message" => seen.push(("message".to_owned(), Value::String(e.data))),
            "notification" => {
                seen.push((e.event, serde_json::from_str(&e.data).unwrap()));
            }
            other => panic!("unexpected {other}: {e:?}"),
        }
    }
    assert_eq!(seen[0], ("message".into(), json!("hello all")));
    assert_eq!(
        seen[1],
        ("notification".into(), json!({"title": "T", "message": "M"}))
    );

    // The native API keeps `/events?topic=`.
    let native = first_bytes(&hub, "/events?topic=counter", 5).await;
    assert!(native.starts_with(": ok\n"), "{native:?}");
    // A counter tick arrives on the seed 002 stream too.
    loop {
        let e = events.event().await;
        if e.event == "message" && e.data.parse::<u64>().is_ok() {
            break;
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn seed_001_per_user_notifications_reach_only_their_user() {
    let hub = TestHub::with_config(demo()).await;
    let mut alice = hub.subscribe("/events/user-123", &[]).await;
    let mut bob = hub.subscribe("/events/user-456", &[]).await;
    hub.wait_subscribers("user-123", 1).await;
    hub.wait_subscribers("user-456", 1).await;
    let (status, answer) = post(&hub, "/notify/user-123", json!({"title": "for alice"})).await;
    assert_eq!((status, answer), (200, json!({"ok": true})));
    let e = alice.event().await;
    assert_eq!(e.event, "message");
    assert_eq!(
        serde_json::from_str::<Value>(&e.data).unwrap(),
        json!({"title": "for alice"})
    );
    bob.quiet_for(Duration::from_millis(300)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn seed_urls_are_not_served_without_demo() {
    let hub = TestHub::start().await;
    for path in ["/random", "/subscribe", "/latest/news"] {
        let status = hub.http.get(hub.url(path)).send().await.unwrap().status();
        assert_eq!(status, 404, "{path}");
    }
    let status = hub
        .http
        .post(hub.url("/broadcast"))
        .json(&json!({"message": "x"}))
        .send()
        .await
        .unwrap()
        .status();
    assert_eq!(status, 404);
    // Without routes, bare `/events` is still the native error.
    let status = hub
        .http
        .get(hub.url("/events"))
        .send()
        .await
        .unwrap()
        .status();
    assert_eq!(status, 400);
}

/// A user's own routes: an Express app's per-user channel, a filter endpoint and its
/// publish call, as a `[[route]]` set would give them.
fn user_routes() -> Routes {
    Routes::compile(&[
        RouteSpec {
            path: "/events/:userId".into(),
            topics: vec!["user/{userId}".into()],
            welcome: vec![WelcomeSpec {
                event: None,
                data: "Connected".into(),
                id: false,
            }],
            ..RouteSpec::default()
        },
        RouteSpec {
            path: "/feed".into(),
            topics: vec!["feed/{kind}".into()],
            retry: Some(2500),
            ..RouteSpec::default()
        },
        RouteSpec {
            path: "/rooms/{room}/say".into(),
            method: Some("POST".into()),
            topics: vec!["room/{room}".into()],
            event: Some("said".into()),
            data: Some(r#"{"who": {who:json}, "text": {text:json}, "room": {room:json}}"#.into()),
            reply: Some(
                r#"{"ok": true, "id": "{id}", "to": {delivered}, "room": "{room}"}"#.into(),
            ),
            ..RouteSpec::default()
        },
        RouteSpec {
            path: "/notify/:userId".into(),
            method: Some("post".into()),
            topics: vec!["user/{userId}".into()],
            ..RouteSpec::default()
        },
    ])
    .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_users_routes_map_paths_and_queries_onto_topics_with_history() {
    let hub = TestHub::with_config(Config {
        routes: user_routes(),
        ..Config::default()
    })
    .await;
    // The route shadows the native `/events/{topic}`: topic `user/ann`, greeted.
    let mut ann = hub.subscribe("/events/ann", &[]).await;
    let hello = ann.event().await;
    assert_eq!(
        (hello.event.as_str(), hello.data.as_str(), hello.id.as_str()),
        ("message", "Connected", "")
    );
    hub.wait_subscribers("user/ann", 1).await;
    let first = hub.publish("user/ann", "native publish").await;
    let (status, answer) = post(&hub, "/notify/ann", json!({"n": 2})).await;
    assert_eq!(status, 200, "{answer}");
    assert!(
        answer["id"].is_string() && answer["delivered"] == 1,
        "native answer: {answer}"
    );
    assert_eq!(ann.event().await.data, "native publish");
    let second = ann.event().await;
    assert_eq!(second.data, r#"{"n":2}"#, "the body as sent");
    // History applies: a resume from the first event replays the second.
    drop(ann);
    let mut back = hub
        .subscribe("/events/ann", &[("last-event-id", &first)])
        .await;
    assert_eq!(back.event().await.data, "Connected");
    assert_eq!(back.event().await.data, r#"{"n":2}"#);

    // Query selectors: `?kind=a,b` is two topics; the retry is the route's.
    let mut feed = hub.subscribe("/feed?kind=a,b", &[]).await;
    assert_eq!(feed.item().await, Some(ParserItem::Retry(2500)));
    hub.wait_subscribers("feed/b", 1).await;
    hub.publish("feed/c", "not selected").await;
    hub.publish("feed/b", "b").await;
    assert_eq!(feed.event().await.data, "b");

    // A publish route with a path parameter, body fields and its own reply.
    let mut room = hub.subscribe("/events?topic=room/kitchen", &[]).await;
    hub.wait_subscribers("room/kitchen", 1).await;
    let (status, answer) = post(
        &hub,
        "/rooms/kitchen/say",
        json!({"who": "Ann", "text": "hi\nthere"}),
    )
    .await;
    assert_eq!(status, 200, "{answer}");
    assert_eq!(
        (
            answer["ok"].clone(),
            answer["to"].clone(),
            answer["room"].clone()
        ),
        (json!(true), json!(1), json!("kitchen"))
    );
    let said = room.event().await;
    assert_eq!(said.event, "said");
    assert_eq!(said.id, answer["id"].as_str().unwrap());
    assert_eq!(
        serde_json::from_str::<Value>(&said.data).unwrap(),
        json!({"who": "Ann", "text": "hi\nthere", "room": "kitchen"})
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_requests_on_routes_get_clear_errors_and_publish_nothing() {
    let hub = TestHub::with_config(Config {
        routes: user_routes(),
        max_payload: 1024,
        max_topics: 3,
        ..Config::default()
    })
    .await;
    let missing = hub.http.get(hub.url("/feed")).send().await.unwrap();
    assert_eq!(missing.status(), 400);
    let why: Value = missing.json().await.unwrap();
    assert!(why["error"].as_str().unwrap().contains("\"kind\""), "{why}");
    let many = hub
        .http
        .get(hub.url("/feed?kind=a,b,c,d"))
        .send()
        .await
        .unwrap();
    assert_eq!(many.status(), 400);
    let bad_topic = hub
        .http
        .get(hub.url("/feed?kind=a%20b"))
        .send()
        .await
        .unwrap();
    assert_eq!(bad_topic.status(), 400, "a topic with a space is refused");

    let (status, why) = post(&hub, "/rooms/kitchen/say", json!({"who": "Ann"})).await;
    assert_eq!(status, 400);
    assert!(why["error"].as_str().unwrap().contains("\"text\""), "{why}");
    let not_json = hub
        .http
        .post(hub.url("/rooms/kitchen/say"))
        .body("who=Ann&text=hi")
        .header("content-type", "text/plain")
        .send()
        .await
        .unwrap();
    assert_eq!(not_json.status(), 400);
    let form = hub
        .http
        .post(hub.url("/rooms/kitchen/say"))
        .form(&[("who", "Ann"), ("text", "by form")])
        .send()
        .await
        .unwrap();
    assert_eq!(form.status(), 200, "a form body works too");
    let big = hub
        .http
        .post(hub.url("/notify/ann"))
        .body("x".repeat(2048))
        .send()
        .await
        .unwrap();
    assert_eq!(big.status(), 413);
    let bad_utf8 = hub
        .http
        .post(hub.url("/notify/ann"))
        .body(vec![0xff, 0xfe])
        .send()
        .await
        .unwrap();
    assert_eq!(bad_utf8.status(), 400);
    let topics = hub.get_json("/topics/user%2Fann").await;
    assert_eq!(
        topics["lastEventId"],
        Value::Null,
        "nothing was published to ann: {topics}"
    );
    let metrics = hub.metrics().await;
    assert!(
        metrics.contains("ssehub_publish_rejected_total 4"),
        "{metrics}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn routes_keep_the_hubs_auth_cors_and_rate_limit() {
    let hub = TestHub::with_config(Config {
        routes: user_routes(),
        cors_origins: CorsOrigins::List(vec!["https://app.example".into()]),
        publish_rate: 1,
        publish_burst: 2,
        ..secured(false)
    })
    .await;
    // Subscribers need a token, as on the native API.
    let status = hub
        .http
        .get(hub.url("/events/ann"))
        .send()
        .await
        .unwrap()
        .status();
    assert_eq!(status, 401);
    let token = subscriber_token(&["user/ann"]);
    let mut ann = hub
        .subscribe(
            "/events/ann",
            &[("authorization", &format!("Bearer {token}"))],
        )
        .await;
    assert_eq!(ann.status, 200);
    assert_eq!(ann.event().await.data, "Connected");
    // Publishers need a token granting the topic the route maps to.
    let say = |token: Option<String>| {
        let mut request = hub
            .http
            .post(hub.url("/rooms/kitchen/say"))
            .header("origin", "https://app.example")
            .json(&json!({"who": "a", "text": "b"}));
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        request.send()
    };
    let refused = say(None).await.unwrap();
    assert_eq!(refused.status(), 401);
    let forbidden = say(Some(publisher_token(&["room/hall"]))).await.unwrap();
    assert_eq!(forbidden.status(), 403);
    // The burst of 2 is spent by now; the rate limit answers 429 with Retry-After.
    let limited = say(Some(publisher_token(&["room/kitchen"]))).await.unwrap();
    assert_eq!(limited.status(), 429);
    assert!(limited.headers().contains_key("retry-after"));
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let ok = say(Some(publisher_token(&["room/kitchen"]))).await.unwrap();
    assert_eq!(ok.status(), 200);
    assert_eq!(
        ok.headers()["access-control-allow-origin"],
        "https://app.example"
    );
    // A preflight from the allowed origin is answered for the route.
    let preflight = hub
        .http
        .request(reqwest::Method::OPTIONS, hub.url("/rooms/kitchen/say"))
        .header("origin", "https://app.example")
        .header("access-control-request-method", "POST")
        .send()
        .await
        .unwrap();
    assert_eq!(
        preflight.headers()["access-control-allow-origin"],
        "https://app.example"
    );
}
