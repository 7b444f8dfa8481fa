//! The Mercure endpoint against a real hub: topic selectors (exact, URI template, `*`,
//! alternate topics), the publish form and its answer, custom ids, replay with the
//! `Last-Event-ID` header / `lastEventID` query / `earliest`, the response cursor header,
//! one hub for native and Mercure clients, the subscriptions API and events, dialect 1,
//! heartbeats and CORS.

use std::time::Duration;

use serde_json::{json, Value};
use ssehub::{Config, CorsOrigins, Dialect};
use ssehub_core::ParserItem;

use crate::auth::{hs256, now, secured, subscriber_token, SUB_SECRET};
use crate::support::{Sse, TestHub};

/// A topic as one path segment of `/topics/{topic}`.
pub fn enc(topic: &str) -> String {
    topic
        .replace('%', "%25")
        .replace('/', "%2F")
        .replace(':', "%3A")
        .replace('{', "%7B")
        .replace('}', "%7D")
}

/// A query-string value.
fn q(value: &str) -> String {
    let mut out = String::new();
    for b in value.bytes() {
        if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

async fn publish(
    hub: &TestHub,
    form: &[(&str, &str)],
) -> (u16, String, reqwest::header::HeaderMap) {
    let response = hub
        .http
        .post(hub.url("/.well-known/mercure"))
        .form(form)
        .send()
        .await
        .unwrap();
    let status = response.status().as_u16();
    let headers = response.headers().clone();
    (status, response.text().await.unwrap(), headers)
}

async fn subscribe(hub: &TestHub, selectors: &[&str], headers: &[(&str, &str)]) -> Sse {
    let query: Vec<String> = selectors
        .iter()
        .map(|s| format!("topic={}", q(s)))
        .collect();
    hub.subscribe(
        &format!("/.well-known/mercure?{}", query.join("&")),
        headers,
    )
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn selectors_exact_template_wildcard_and_alternate_topics() {
    let hub = TestHub::start().await;
    let mut exact = subscribe(&hub, &["https://example.com/books/1"], &[]).await;
    let mut template = subscribe(&hub, &["https://example.com/books/{id}"], &[]).await;
    let mut any = subscribe(&hub, &["*"], &[]).await;
    let mut other = subscribe(&hub, &["https://example.com/users/{id}"], &[]).await;
    let mut alternate = subscribe(&hub, &["https://example.com/authors/{name}"], &[]).await;
    let mut two = subscribe(
        &hub,
        &[
            "https://example.com/books/1",
            "https://example.com/books/{id}",
        ],
        &[],
    )
    .await;
    assert_eq!(exact.status, 200);
    assert_eq!(exact.header("content-type"), Some("text/event-stream"));

    let (status, first, headers) = publish(
        &hub,
        &[("topic", "https://example.com/books/1"), ("data", "one")],
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(
        headers.get("content-type").unwrap(),
        "text/plain; charset=utf-8"
    );
    let (_, second, _) = publish(
        &hub,
        &[
            ("topic", "https://example.com/books/2"),
            ("topic", "https://example.com/authors/dunglas"),
            ("data", "two"),
        ],
    )
    .await;

    let got = |e: ssehub_core::ParsedEvent| (e.id, e.data);
    assert_eq!(got(exact.event().await), (first.clone(), "one".into()));
    for sse in [&mut template, &mut any, &mut two] {
        assert_eq!(got(sse.event().await), (first.clone(), "one".into()));
        assert_eq!(got(sse.event().await), (second.clone(), "two".into()));
    }
    assert_eq!(got(alternate.event().await), (second.clone(), "two".into()));
    for sse in [&mut exact, &mut other, &mut alternate, &mut two] {
        sse.quiet_for(Duration::from_millis(150)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn publish_fields_custom_ids_and_bad_input() {
    let hub = TestHub::start().await;
    let mut sse = subscribe(&hub, &["urn:example:x"], &[]).await;
    let id = "urn:uuid:[\"custom\"]/1";
    let (status, body, _) = publish(
        &hub,
        &[
            ("topic", "urn:example:x"),
            ("data", "line 1\n\n        line 3"),
            ("id", id),
            ("type", "update"),
            ("retry", "1234"),
            ("ignored", "field"),
        ],
    )
    .await;
    assert_eq!((status, body.as_str()), (200, id));
    let event = sse.event().await;
    assert_eq!(event.id, id);
    assert_eq!(event.event, "update");
    assert_eq!(event.data, "line 1\n\n        line 3");

    let bad: Vec<Vec<(&str, &str)>> = vec![
        vec![("data", "no topic")],
        vec![("topic", "*")],
        vec![("topic", "/.well-known/mercure/subscriptions/x/y")],
        vec![("topic", "https://hub.example/.well-known/mercure")],
        vec![("topic", "a"), ("id", "#fragment")],
        vec![("topic", "a"), ("id", "earliest")],
        vec![("topic", "a"), ("retry", "12a")],
        vec![("topic", "a\u{1}b")],
    ];
    for form in bad {
        let (status, body, headers) = publish(&hub, &form).await;
        assert_eq!(status, 400, "{form:?}: {body}");
        assert_eq!(
            headers.get("content-type").unwrap(),
            "text/plain; charset=utf-8"
        );
    }
    let json = hub
        .http
        .post(hub.url("/.well-known/mercure"))
        .json(&json!({"topic": "a"}))
        .send()
        .await
        .unwrap();
    assert_eq!(json.status().as_u16(), 415);
    assert_eq!(hub.subscribe("/.well-known/mercure", &[]).await.status, 400);
    sse.quiet_for(Duration::from_millis(100)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replay_with_header_query_and_earliest() {
    let hub = TestHub::start().await;
    let topic = "https://example.com/r";
    let mut ids = Vec::new();
    for data in ["a", "b", "c"] {
        ids.push(publish(&hub, &[("topic", topic), ("data", data)]).await.1);
    }
    publish(
        &hub,
        &[("topic", "https://example.com/elsewhere"), ("data", "x")],
    )
    .await;
    let path = format!("/.well-known/mercure?topic={}", q(topic));

    let mut by_header = hub.subscribe(&path, &[("last-event-id", &ids[0])]).await;
    assert_eq!(by_header.header("last-event-id"), Some(ids[0].as_str()));
    assert_eq!(by_header.event().await.data, "b");
    assert_eq!(by_header.event().await.data, "c");

    let with_query = format!("{path}&lastEventID={}", q(&ids[1]));
    let mut by_query = hub.subscribe(&with_query, &[]).await;
    assert_eq!(by_query.header("last-event-id"), Some(ids[1].as_str()));
    assert_eq!(by_query.event().await.data, "c");
    // The header wins over the query parameter.
    let mut both = hub
        .subscribe(&with_query, &[("last-event-id", &ids[0])])
        .await;
    assert_eq!(both.event().await.data, "b");

    let mut earliest = hub
        .subscribe(&format!("{path}&lastEventID=earliest"), &[])
        .await;
    assert_eq!(earliest.header("last-event-id"), Some("earliest"));
    let datas: Vec<String> = vec![
        earliest.event().await.data,
        earliest.event().await.data,
        earliest.event().await.data,
    ];
    assert_eq!(datas, ["a", "b", "c"]);

    // An unknown id: the cursor header says `earliest`, the whole retained history for
    // the selectors follows, after ssehub's missed-events signal.
    let mut unknown = hub
        .subscribe(&path, &[("last-event-id", "no-such-id")])
        .await;
    assert_eq!(unknown.header("last-event-id"), Some("earliest"));
    let signal = unknown.event().await;
    assert_eq!(signal.event, ssehub::RESET_EVENT);
    assert_eq!(unknown.event().await.data, "a");

    // Live events follow the replay with no gap.
    publish(&hub, &[("topic", topic), ("data", "d")]).await;
    assert_eq!(by_query.event().await.data, "d");
    // No cursor: no replay.
    let mut fresh = hub.subscribe(&path, &[]).await;
    assert_eq!(fresh.header("last-event-id"), None);
    publish(&hub, &[("topic", topic), ("data", "e")]).await;
    assert_eq!(fresh.event().await.data, "e");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn native_and_mercure_clients_share_one_hub() {
    let hub = TestHub::start().await;
    let mut native = hub.subscribe("/events/news", &[]).await;
    let mut mercure = subscribe(&hub, &["news"], &[]).await;
    let mut mercure_template = subscribe(&hub, &["https://example.com/items/{id}"], &[]).await;
    hub.wait_subscribers("news", 2).await;

    publish(&hub, &[("topic", "news"), ("data", "from mercure")]).await;
    hub.publish("news", "from native").await;
    hub.publish("https://example.com/items/7", "native item")
        .await;
    for sse in [&mut native, &mut mercure] {
        assert_eq!(sse.event().await.data, "from mercure");
        assert_eq!(sse.event().await.data, "from native");
    }
    assert_eq!(mercure_template.event().await.data, "native item");

    // A Mercure topic with a comma and a space is carried percent-encoded.
    let odd = "https://example.com/a,b c";
    let mut mercure_odd = subscribe(&hub, &[odd], &[]).await;
    let mut native_odd = hub
        .subscribe(
            &format!("/events/{}", enc("https://example.com/a%2Cb%20c")),
            &[],
        )
        .await;
    hub.wait_subscribers(&enc("https://example.com/a%2Cb%20c"), 2)
        .await;
    let (status, _, _) = publish(&hub, &[("topic", odd), ("data", "odd")]).await;
    assert_eq!(status, 200);
    assert_eq!(mercure_odd.event().await.data, "odd");
    assert_eq!(native_odd.event().await.data, "odd");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn subscriptions_api_and_events() {
    let hub = TestHub::with_config(Config {
        mercure_subscriptions: true,
        ..secured(true)
    })
    .await;
    let watcher_token =
        subscriber_token(&["/.well-known/mercure/subscriptions{/topic}{/subscriber}"]);
    let watch = format!("Bearer {watcher_token}");
    let mut watcher = hub
        .subscribe(
            "/.well-known/mercure?topic=%2F.well-known%2Fmercure%2Fsubscriptions%7B%2Ftopic%7D%7B%2Fsubscriber%7D",
            &[("authorization", &watch)],
        )
        .await;
    assert_eq!(watcher.status, 200);
    let topic = "https://example.com/books/{id}";
    let token = hs256(
        SUB_SECRET,
        json!({"mercure": {"subscribe": [topic], "payload": {"user": "alice"}}}),
    );
    let auth = format!("Bearer {token}");
    let subscriber = subscribe(&hub, &[topic], &[("authorization", &auth)]).await;

    // The watcher sees the watcher's own subscription first, then the new one.
    let mut event: Value;
    loop {
        event = serde_json::from_str(&watcher.event().await.data).unwrap();
        if event["topic"] == topic {
            break;
        }
    }
    assert_eq!(event["@context"], "https://mercure.rocks/");
    assert_eq!(event["type"], "Subscription");
    assert_eq!(event["active"], true);
    assert_eq!(event["payload"], json!({"user": "alice"}));
    let id = event["subscriber"].as_str().unwrap().to_owned();
    assert!(id.starts_with("urn:uuid:"), "{id}");
    let resource = event["id"].as_str().unwrap().to_owned();
    assert_eq!(
        resource,
        format!("/.well-known/mercure/subscriptions/{}/{}", q(topic), q(&id))
    );

    // The API, authorized like a private topic.
    let get = |path: String, token: Option<String>| {
        let mut request = hub.http.get(hub.url(&path));
        if let Some(t) = token {
            request = request.bearer_auth(t);
        }
        async move {
            let response = request.send().await.unwrap();
            let status = response.status().as_u16();
            let ct = response
                .headers()
                .get("content-type")
                .map(|v| v.to_str().unwrap().to_owned());
            (status, ct, response.text().await.unwrap())
        }
    };
    let all = "/.well-known/mercure/subscriptions".to_owned();
    assert_eq!(get(all.clone(), None).await.0, 401);
    assert_eq!(
        get(all.clone(), Some(subscriber_token(&["x"]))).await.0,
        403
    );
    let (status, ct, body) = get(all.clone(), Some(watcher_token.clone())).await;
    assert_eq!((status, ct.as_deref()), (200, Some("application/ld+json")));
    let list: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(list["type"], "Subscriptions");
    assert_eq!(list["id"], "/.well-known/mercure/subscriptions");
    assert!(list["lastEventID"].is_string());
    let subs = list["subscriptions"].as_array().unwrap();
    assert_eq!(subs.len(), 2, "{list}");
    assert!(subs.iter().any(|s| s["subscriber"] == id.as_str()));

    let by_topic = format!("/.well-known/mercure/subscriptions/{}", q(topic));
    let (_, _, body) = get(by_topic, Some(watcher_token.clone())).await;
    let list: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(list["subscriptions"].as_array().unwrap().len(), 1, "{list}");
    let (status, _, body) = get(resource.clone(), Some(watcher_token.clone())).await;
    assert_eq!(status, 200);
    let one: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(one["id"], resource.as_str());
    assert_eq!(one["payload"], json!({"user": "alice"}));
    let missing = format!("/.well-known/mercure/subscriptions/{}/nobody", q(topic));
    assert_eq!(get(missing, Some(watcher_token.clone())).await.0, 404);

    drop(subscriber);
    loop {
        let gone: Value = serde_json::from_str(&watcher.event().await.data).unwrap();
        if gone["subscriber"] == id.as_str() {
            assert_eq!(gone["active"], false);
            break;
        }
    }
    // Subscription events are private: an anonymous `*` subscriber never sees them.
    let mut anonymous = subscribe(&hub, &["*"], &[]).await;
    let _ = subscribe(&hub, &["z"], &[]).await;
    anonymous.quiet_for(Duration::from_millis(200)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dialect_1_match_parameters_access_tokens_and_headers() {
    // A subscriber key; publishing stays open to loopback.
    let mut config = secured(false);
    config.auth.publisher = None;
    let hub = TestHub::with_config(Config {
        mercure_dialect: Dialect::V1,
        mercure_subscriptions: true,
        ..config
    })
    .await;
    let claims = json!({
        "exp": now() + 60,
        "aud": format!("http://{}/.well-known/mercure", hub.addr),
        "authorization_details": [{
            "type": "https://mercure.rocks/authorization-detail",
            "actions": ["subscribe"],
            "topics": [{"match": "https://example.com/private/:id", "match_type": "urlpattern"}],
        }]
    });
    let mut header = jsonwebtoken::Header::new(jsonwebtoken::Algorithm::HS256);
    header.typ = Some("at+jwt".into());
    let token = jsonwebtoken::encode(
        &header,
        &claims,
        &jsonwebtoken::EncodingKey::from_secret(SUB_SECRET.as_bytes()),
    )
    .unwrap();
    let auth = format!("Bearer {token}");
    let cookie = format!("__Secure-mercure_access_token={token}");

    // A plain JWT (typ JWT) is not an access token.
    let plain = format!("Bearer {}", hs256(SUB_SECRET, claims.clone()));
    let refused = hub
        .subscribe("/.well-known/mercure?match=a", &[("authorization", &plain)])
        .await;
    assert_eq!(refused.status, 401);
    assert!(refused
        .header("www-authenticate")
        .unwrap()
        .contains("error=\"invalid_token\""));
    // The audience must be this hub's resource identifier.
    let mut elsewhere = claims.clone();
    elsewhere["aud"] = json!("https://other.example/.well-known/mercure");
    let other_aud = jsonwebtoken::encode(
        &header,
        &elsewhere,
        &jsonwebtoken::EncodingKey::from_secret(SUB_SECRET.as_bytes()),
    )
    .unwrap();
    let refused = hub
        .subscribe(
            "/.well-known/mercure?match=a",
            &[("authorization", &format!("Bearer {other_aud}"))],
        )
        .await;
    assert_eq!(refused.status, 401);
    let unknown = hub
        .subscribe(
            "/.well-known/mercure?match_regex=a",
            &[("authorization", &auth)],
        )
        .await;
    assert_eq!(unknown.status, 400);
    let old_style = hub
        .subscribe("/.well-known/mercure?topic=a", &[("authorization", &auth)])
        .await;
    assert_eq!(old_style.status, 400);

    let mut exact = hub
        .subscribe(
            "/.well-known/mercure?match=https%3A%2F%2Fexample.com%2Fprivate%2F1",
            &[("cookie", &cookie)],
        )
        .await;
    assert_eq!(exact.status, 200);
    let mut pattern = hub
        .subscribe(
            "/.well-known/mercure?match_urlpattern=https%3A%2F%2Fexample.com%2F*",
            &[("authorization", &auth), ("last-event-id", "earliest")],
        )
        .await;
    assert_eq!(pattern.header("mercure-last-event-id"), Some("earliest"));
    assert_eq!(pattern.header("last-event-id"), None);

    for (topic, data) in [
        ("https://example.com/private/1", "private one"),
        ("https://example.com/private/a/b", "not granted"),
        ("https://example.com/public", "public"),
    ] {
        let mut form = vec![("topic", topic), ("data", data)];
        if data != "public" {
            form.push(("private", ""));
        }
        assert_eq!(publish(&hub, &form).await.0, 200);
    }
    assert_eq!(exact.event().await.data, "private one");
    exact.quiet_for(Duration::from_millis(100)).await;
    assert_eq!(pattern.event().await.data, "private one");
    assert_eq!(pattern.event().await.data, "public");
    // The QUERY method: parameters in the body, joined with the query string's.
    let response = hub
        .http
        .request(
            reqwest::Method::from_bytes(b"QUERY").unwrap(),
            hub.url("/.well-known/mercure?last_event_id=earliest"),
        )
        .header("content-type", "application/x-www-form-urlencoded")
        .header("authorization", &auth)
        .body("match=https%3A%2F%2Fexample.com%2Fpublic&last_event_id=ignored")
        .send()
        .await
        .unwrap();
    let mut by_query = Sse::new(response);
    assert_eq!(by_query.status, 200);
    assert_eq!(by_query.header("mercure-last-event-id"), Some("earliest"));
    assert_eq!(by_query.event().await.data, "public");

    // Protected-resource metadata, and 401s that point at it.
    let metadata: Value = hub
        .get_json("/.well-known/oauth-protected-resource/.well-known/mercure")
        .await;
    assert_eq!(
        metadata["resource"],
        format!("http://{}/.well-known/mercure", hub.addr)
    );
    assert_eq!(metadata["mercure_cookie"], "__Secure-mercure_access_token");
    assert_eq!(
        metadata["mercure_matcher_types_supported"],
        json!(["exact", "urlpattern"])
    );
    let anonymous = hub.subscribe("/.well-known/mercure?match=a", &[]).await;
    assert_eq!(anonymous.status, 401);
    assert_eq!(
        anonymous.header("www-authenticate").unwrap(),
        format!(
            "Bearer resource_metadata=\"http://{}/.well-known/oauth-protected-resource/.well-known/mercure\"",
            hub.addr
        )
    );

    // Relative URL patterns and relative topics resolve against the hub's origin.
    let mut relative = hub
        .subscribe(
            "/.well-known/mercure?match_urlpattern=%2Fnews%2F%3Aid",
            &[("authorization", &auth)],
        )
        .await;
    let here = format!("http://{}/news/1", hub.addr);
    for topic in ["/news/0", here.as_str(), "https://elsewhere.example/news/2"] {
        assert_eq!(
            publish(&hub, &[("topic", topic), ("data", topic)]).await.0,
            200
        );
    }
    assert_eq!(relative.event().await.data, "/news/0");
    assert_eq!(relative.event().await.data, here);
    relative.quiet_for(Duration::from_millis(100)).await;

    // `type=mercure` is reserved in dialect 1.
    let (status, _, _) = publish(&hub, &[("topic", "x"), ("type", "mercure")]).await;
    assert_eq!(status, 400);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn heartbeats_and_cors() {
    let hub = TestHub::with_config(Config {
        heartbeat: Duration::from_millis(200),
        cors_origins: CorsOrigins::List(vec!["http://app.example".into()]),
        ..Config::default()
    })
    .await;
    let mut sse = hub
        .subscribe(
            "/.well-known/mercure?topic=a",
            &[("origin", "http://app.example")],
        )
        .await;
    assert_eq!(
        sse.header("access-control-allow-origin"),
        Some("http://app.example")
    );
    assert_eq!(sse.header("access-control-allow-credentials"), Some("true"));
    let mut saw_heartbeat = false;
    for _ in 0..5 {
        if let Some(ParserItem::Comment(c)) = sse.item().await {
            if c.contains("heartbeat") {
                saw_heartbeat = true;
                break;
            }
        }
    }
    assert!(saw_heartbeat);
    let preflight = hub
        .http
        .request(reqwest::Method::OPTIONS, hub.url("/.well-known/mercure"))
        .header("origin", "http://app.example")
        .header("access-control-request-method", "POST")
        .header("access-control-request-headers", "authorization")
        .send()
        .await
        .unwrap();
    assert!(preflight.status().is_success());
    assert_eq!(
        preflight.headers()["access-control-allow-origin"],
        "http://app.example"
    );
}

/// A Mercure subscription that opens a connection takes the direct stream path (answered
/// close-delimited, no chunked framing); one after another request on a kept-alive
/// connection goes through the router. Both answer alike: status, headers, cursor header,
/// CORS grant, opening; a refused subscription gets the router's Mercure error either way.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn direct_and_routed_mercure_subscriptions_answer_alike() {
    use crate::subscribe::{header, raw_exchange};
    let origin = "http://app.test";
    let hub = TestHub::with_config(Config {
        cors_origins: CorsOrigins::List(vec![origin.into()]),
        ..secured(false)
    })
    .await;
    let token = subscriber_token(&["https://example.com/books/{id}"]);
    let (status, known, _) = {
        let publisher = crate::auth::publisher_token(&["*"]);
        let response = hub
            .http
            .post(hub.url("/.well-known/mercure"))
            .bearer_auth(publisher)
            .form(&[("topic", "https://example.com/books/1"), ("data", "one")])
            .send()
            .await
            .unwrap();
        let status = response.status().as_u16();
        (status, response.text().await.unwrap(), ())
    };
    assert_eq!(status, 200);
    let topic = q("https://example.com/books/{id}");
    let keep_alive = "GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n";
    let request = |extra: &str, query: &str| {
        format!(
            "GET /.well-known/mercure?{query} HTTP/1.1\r\nHost: x\r\nOrigin: {origin}\r\n\
             Authorization: Bearer {token}\r\n{extra}\r\n"
        )
    };
    for (request, status, cursor) in [
        (request("", &format!("topic={topic}")), "200", None),
        (
            request("Last-Event-ID: earliest\r\n", &format!("topic={topic}")),
            "200",
            Some("earliest"),
        ),
        (
            request("", &format!("topic={topic}&lastEventID={}", q(&known))),
            "200",
            Some(known.as_str()),
        ),
        (
            request("Last-Event-ID: no-such-id\r\n", &format!("topic={topic}")),
            "200",
            Some("earliest"),
        ),
        (request("", "nothing=1"), "400", None),
        (
            format!("GET /.well-known/mercure?topic={topic} HTTP/1.1\r\nHost: x\r\n\r\n"),
            "401",
            None,
        ),
    ] {
        let direct = raw_exchange(hub.addr, None, &request).await;
        let routed = raw_exchange(hub.addr, Some(keep_alive), &request).await;
        for answer in [&direct, &routed] {
            assert!(
                answer.starts_with(&format!("HTTP/1.1 {status}")),
                "{answer}"
            );
            assert_eq!(header(answer, "last-event-id"), cursor, "{answer}");
        }
        if status == "200" {
            // The direct path's mark: close-delimited, where hyper frames chunks.
            assert_eq!(header(&direct, "transfer-encoding"), None, "{direct}");
            assert_eq!(header(&routed, "transfer-encoding"), Some("chunked"));
            for answer in [&direct, &routed] {
                assert_eq!(header(answer, "content-type"), Some("text/event-stream"));
                assert_eq!(
                    header(answer, "cache-control"),
                    Some("private, no-cache, no-store, must-revalidate, max-age=0")
                );
                assert_eq!(header(answer, "x-accel-buffering"), Some("no"));
                assert_eq!(header(answer, "access-control-allow-origin"), Some(origin));
                assert!(answer.contains(": ok\nretry: "), "{answer}");
            }
            let replayed = |a: &str| a.contains("data: one\n");
            assert_eq!(replayed(&direct), cursor == Some("earliest"), "{direct}");
            assert_eq!(replayed(&routed), replayed(&direct), "{routed}");
        } else {
            let body = |a: &str| a.split("\r\n\r\n").nth(1).unwrap_or("").to_owned();
            assert!(
                body(&routed).contains(body(&direct).trim()),
                "{direct}\n---\n{routed}"
            );
            assert_eq!(
                header(&direct, "content-type"),
                header(&routed, "content-type")
            );
            assert_eq!(
                header(&direct, "www-authenticate"),
                header(&routed, "www-authenticate")
            );
        }
    }
}
