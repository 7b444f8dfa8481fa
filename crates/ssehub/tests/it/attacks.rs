//! The attack suite: hostile tokens, SSE injection through every publish path, and path and
//! query abuse. Each case gets a clear 4xx and changes nothing: no event is stored, the
//! subscribers see nothing, and the refusal is counted.

use serde_json::{json, Value};
use ssehub::{Config, Dialect, RouteSpec, Routes};

use crate::auth::{b64, hs256, now, publisher_token, secured, PUB_SECRET, SUB_SECRET};
use crate::support::{metric, TestHub, WAIT};

/// The topic's last event id (`null` when nothing was ever published there).
async fn last_id(hub: &TestHub, topic: &str) -> Value {
    hub.get_json(&format!("/topics/{}", topic.replace('/', "%2F")))
        .await["lastEventId"]
        .clone()
}

/// The status code of a raw HTTP/1.1 GET of `target` (for what an HTTP client will not
/// send), or `closed` when the hub closed without an answer.
async fn raw_status(hub: &TestHub, target: &str) -> String {
    let head = format!("GET {target} HTTP/1.1\r\nHost: x\r\n\r\n");
    ssehub_test_support::raw_status(hub.addr, head.as_bytes(), false, WAIT)
        .await
        .expect("an answer or a close")
        .map_or_else(|| "closed".to_owned(), |code| code.to_string())
}

fn alias_routes() -> Routes {
    Routes::compile(&[
        RouteSpec {
            path: "/say/:room".into(),
            method: Some("POST".into()),
            topics: vec!["room/{room}".into()],
            event: Some("said".into()),
            data: Some("{text}".into()),
            ..RouteSpec::default()
        },
        RouteSpec {
            path: "/rooms/:room".into(),
            topics: vec!["room/{room}".into()],
            ..RouteSpec::default()
        },
    ])
    .unwrap()
}

/// Unsigned tokens (`alg: none` in any spelling), expired and not-yet-valid tokens, a wrong
/// key, an HMAC token keyed with garbage, and an oversized token: every publish path and the
/// subscribe path answer 401 (431 for a head over the limit), and nothing is published.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hostile_tokens_are_refused_on_every_path() {
    let hub = TestHub::with_config(Config {
        routes: alias_routes(),
        ..secured(false)
    })
    .await;
    let grants = json!({"mercure": {"publish": ["room/a"], "subscribe": ["room/a"]}});
    let mut tokens = Vec::new();
    for alg in ["none", "None", "NONE", "nOnE"] {
        let header = b64(format!(r#"{{"alg":"{alg}","typ":"JWT"}}"#).as_bytes());
        let body = b64(grants.to_string().as_bytes());
        tokens.push((format!("alg {alg}"), format!("{header}.{body}.")));
        let forged = hs256(PUB_SECRET, grants.clone());
        let signature = forged.rsplit('.').next().unwrap();
        tokens.push((
            format!("alg {alg} with a signature"),
            format!("{header}.{body}.{signature}"),
        ));
    }
    let mut expired = grants.clone();
    expired["exp"] = json!(now() - 10);
    tokens.push(("expired".into(), hs256(PUB_SECRET, expired)));
    let mut early = grants.clone();
    early["nbf"] = json!(now() + 3600);
    tokens.push(("not yet valid".into(), hs256(PUB_SECRET, early)));
    tokens.push(("another key".into(), hs256("not-the-key", grants.clone())));
    tokens.push(("garbage".into(), "a.b.c".into()));
    tokens.push(("empty".into(), String::new()));

    for (what, token) in &tokens {
        let bearer = format!("Bearer {token}");
        let native = hub
            .http
            .post(hub.url("/publish"))
            .header("authorization", &bearer)
            .json(&json!({"topic": "room/a", "data": "x"}))
            .send()
            .await
            .unwrap();
        assert_eq!(native.status(), 401, "native publish, {what}");
        let mercure = hub
            .http
            .post(hub.url("/.well-known/mercure"))
            .header("authorization", &bearer)
            .form(&[("topic", "room/a"), ("data", "x")])
            .send()
            .await
            .unwrap();
        assert_eq!(mercure.status(), 401, "Mercure publish, {what}");
        let alias = hub
            .http
            .post(hub.url("/say/a"))
            .header("authorization", &bearer)
            .json(&json!({"text": "x"}))
            .send()
            .await
            .unwrap();
        assert_eq!(alias.status(), 401, "alias publish, {what}");
        for path in [
            "/events/room%2Fa",
            "/rooms/a",
            "/.well-known/mercure?topic=room/a",
        ] {
            let subscribe = hub
                .http
                .get(hub.url(path))
                .header("authorization", &bearer)
                .send()
                .await
                .unwrap();
            assert_eq!(subscribe.status(), 401, "subscribe {path}, {what}");
        }
    }
    // A token larger than the request head limit: 431, before any parsing.
    let huge = format!("Bearer {}", "a".repeat(20_000));
    let response = hub
        .http
        .post(hub.url("/publish"))
        .header("authorization", huge)
        .json(&json!({"topic": "room/a", "data": "x"}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 431);
    assert_eq!(
        last_id(&hub, "room/a").await,
        Value::Null,
        "nothing was published"
    );
    // A good token still works, so the refusals above were the tokens'.
    let ok = hub
        .http
        .post(hub.url("/say/a"))
        .bearer_auth(publisher_token(&["room/a"]))
        .json(&json!({"text": "fine"}))
        .send()
        .await
        .unwrap();
    assert_eq!(ok.status(), 200);
    let metrics = hub.metrics().await;
    assert_eq!(
        metric(&metrics, "ssehub_publish_rejected_total "),
        3 * tokens.len() as u64
    );
}

/// Dialect 1 with an issuer: a token from another issuer, or with none, is refused.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dialect_1_refuses_a_wrong_issuer() {
    let hub = TestHub::with_config(Config {
        mercure_dialect: Dialect::V1,
        mercure_issuer: Some("https://auth.example".into()),
        ..secured(false)
    })
    .await;
    let token = |iss: Option<&str>| {
        let mut claims = json!({
            "exp": now() + 60,
            "aud": format!("http://{}/.well-known/mercure", hub.addr),
            "authorization_details": [{
                "type": "https://mercure.rocks/authorization-detail",
                "actions": ["subscribe"],
                "topics": [{"match": "https://example.com/a", "match_type": "exact"}],
            }]
        });
        if let Some(iss) = iss {
            claims["iss"] = json!(iss);
        }
        let mut header = jsonwebtoken::Header::new(jsonwebtoken::Algorithm::HS256);
        header.typ = Some("at+jwt".into());
        jsonwebtoken::encode(
            &header,
            &claims,
            &jsonwebtoken::EncodingKey::from_secret(SUB_SECRET.as_bytes()),
        )
        .unwrap()
    };
    let status = |token: String| {
        let request = hub
            .http
            .get(hub.url("/.well-known/mercure?match=https://example.com/a"))
            .bearer_auth(token);
        async move {
            let response = request.send().await.unwrap();
            let status = response.status().as_u16();
            if status != 200 {
                eprintln!("{status}: {}", response.text().await.unwrap());
            }
            status
        }
    };
    assert_eq!(status(token(Some("https://evil.example"))).await, 401);
    assert_eq!(status(token(None)).await, 401);
    assert_eq!(status(token(Some("https://auth.example"))).await, 200);
}

/// CR, LF, CRLF and NUL in event names, ids, topics and retry through the native JSON and
/// form bodies, the Mercure form and a route alias: a 400 naming the field, nothing
/// stored. In data they cannot inject a field: a subscriber gets one event whose data has
/// the line breaks (normalised to LF, as the SSE format defines) and the NUL as sent.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn line_breaks_and_nul_cannot_inject_sse_fields() {
    let hub = TestHub::with_config(Config {
        routes: alias_routes(),
        ..Config::default()
    })
    .await;
    let mut refused = 0;
    for bad in ["a\rb", "a\nb", "a\r\nb", "a\0b", "x\n\nevent: evil"] {
        for field in ["event", "id", "topic", "retry"] {
            let mut body = json!({"topic": "inj", "data": "x"});
            body[field] = json!(bad);
            let (status, answer) = hub.post_json(body).await;
            assert_eq!(status, 400, "JSON {field}={bad:?}: {answer}");
            assert_eq!(answer["field"], field, "{answer}");
            let mut form = vec![("topic", "inj"), ("data", "x")];
            form.retain(|(n, _)| *n != field);
            form.push((field, bad));
            let response = hub
                .http
                .post(hub.url("/publish"))
                .form(&form)
                .send()
                .await
                .unwrap();
            assert_eq!(response.status(), 400, "form {field}={bad:?}");
            refused += 2;
        }
        for field in ["topic", "type", "id", "retry"] {
            let mut form = vec![("topic", "inj"), ("data", "x")];
            if field == "topic" {
                form.clear();
                form.push(("data", "x"));
            }
            form.push((field, bad));
            let response = hub
                .http
                .post(hub.url("/.well-known/mercure"))
                .form(&form)
                .send()
                .await
                .unwrap();
            assert_eq!(response.status(), 400, "Mercure {field}={bad:?}");
            refused += 1;
        }
        // A route's topic from a path parameter.
        let path = format!(
            "/say/{}",
            bad.replace('\r', "%0D")
                .replace('\n', "%0A")
                .replace('\0', "%00")
                .replace(' ', "%20")
        );
        let response = hub
            .http
            .post(hub.url(&path))
            .json(&json!({"text": "x"}))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 400, "alias {path}");
        refused += 1;
    }
    assert_eq!(last_id(&hub, "inj").await, Value::Null);
    assert_eq!(
        metric(&hub.metrics().await, "ssehub_publish_rejected_total "),
        refused
    );

    // In data: one event each, the breaks normalised, nothing injected.
    let mut native = hub.subscribe("/events/room%2Fd", &[]).await;
    hub.wait_subscribers("room/d", 1).await;
    let sent = [
        "a\rb",
        "a\nb",
        "a\r\nb",
        "a\0b",
        "x\n\nevent: evil\nid: 666",
    ];
    for data in sent {
        let (status, _) = hub
            .post_json(json!({"topic": "room/d", "data": data}))
            .await;
        assert_eq!(status, 200);
        let form = hub
            .http
            .post(hub.url("/.well-known/mercure"))
            .form(&[("topic", "room/d"), ("data", data)])
            .send()
            .await
            .unwrap();
        assert_eq!(form.status(), 200);
        let alias = hub
            .http
            .post(hub.url("/say/d"))
            .json(&json!({"text": data}))
            .send()
            .await
            .unwrap();
        assert_eq!(alias.status(), 200);
    }
    for data in sent {
        let expected = data.replace("\r\n", "\n").replace('\r', "\n");
        for name in ["message", "message", "said"] {
            let e = native.event().await;
            assert_eq!(
                (e.event.as_str(), e.data.as_str()),
                (name, expected.as_str())
            );
            assert_ne!(e.id, "666");
        }
    }
}

/// Encoded slashes and dots, repeated parameters, oversized URLs and invalid UTF-8: each a
/// clear answer, the topic taken literally (a topic is a name, never a path on disk).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn path_and_query_abuse_gets_clear_answers() {
    let hub = TestHub::with_config(Config {
        routes: alias_routes(),
        ..Config::default()
    })
    .await;
    let status = |path: String| {
        let request = hub.http.get(hub.url(&path));
        async move {
            let response = request.send().await.unwrap();
            let status = response.status().as_u16();
            let body = if status == 200 {
                String::new()
            } else {
                response.text().await.unwrap()
            };
            (status, body)
        }
    };
    // Dots and encoded slashes are part of the topic's name.
    let mut dots = hub.subscribe("/events/..%2F..%2Fetc%2Fpasswd", &[]).await;
    hub.wait_subscribers("../../etc/passwd", 1).await;
    hub.publish("../../etc/passwd", "just a name").await;
    assert_eq!(dots.event().await.data, "just a name");
    // Repeated parameters name each topic once.
    let mut repeated = hub
        .subscribe("/events?topic=r&topic=r&topic=r,r", &[])
        .await;
    hub.wait_subscribers("r", 1).await;
    hub.publish("r", "once").await;
    assert_eq!(repeated.event().await.data, "once");
    repeated
        .quiet_for(std::time::Duration::from_millis(200))
        .await;
    // A 64 KiB URL (longer than an HTTP client will send): over the head limit.
    let long = "a".repeat(65_536);
    let code = raw_status(&hub, &format!("/events/{long}")).await;
    assert_eq!(code, "431", "a long subscribe URL");
    let code = raw_status(&hub, &format!("/rooms/{long}")).await;
    assert_eq!(code, "431", "a long route URL");
    // Invalid UTF-8 anywhere a name is read.
    for path in [
        "/events/%FF",
        "/events?topic=%FF",
        "/events?topic=a&lastEventId=%FF",
        "/rooms/%FF",
        "/.well-known/mercure?topic=%FF",
    ] {
        let (code, body) = status(path.to_owned()).await;
        assert_eq!(code, 400, "{path}: {body}");
        assert!(body.contains("UTF-8"), "{path}: {body}");
    }
    // Control characters in a topic by path or query.
    for path in ["/events/a%0Ab", "/events?topic=a%00b", "/rooms/a%0Db"] {
        assert_eq!(status(path.to_owned()).await.0, 400, "{path}");
    }
}
