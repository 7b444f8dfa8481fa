//! Auth against a real hub: tokens made with the jsonwebtoken crate (HS256/384/512, RS256,
//! ES256, EdDSA, a JWKS file), publisher grants (401 vs 403), private events live and on
//! replay, anonymous subscribers, cookie auth with its CSRF check, and token expiry ending
//! a stream. The keys under `keys/` are test-only (made with openssl).

use std::sync::Arc;
use std::time::Duration;

use jsonwebtoken::{encode, Algorithm, EncodingKey, Header};
use serde_json::{json, Value};
use ssehub::{parse_algorithms, AuthConfig, Config, KeyMaterial, Verifier, DEFAULT_ALGORITHMS};

use crate::support::{TestHub, WAIT};

pub const PUB_SECRET: &str = "publisher-secret-for-tests";
pub const SUB_SECRET: &str = "subscriber-secret-for-tests";

fn keys_dir() -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/it/keys")
}

fn key_file(name: &str) -> Vec<u8> {
    std::fs::read(keys_dir().join(name)).expect("test key")
}

pub fn now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

/// An HS256 token over `claims`.
pub fn hs256(secret: &str, claims: Value) -> String {
    encode(
        &Header::new(Algorithm::HS256),
        &claims,
        &EncodingKey::from_secret(secret.as_bytes()),
    )
    .unwrap()
}

pub fn verifier(material: KeyMaterial) -> Option<Arc<Verifier>> {
    let algs = parse_algorithms(DEFAULT_ALGORITHMS).unwrap();
    Some(Arc::new(Verifier::new(material, &algs).unwrap()))
}

/// A config with HMAC keys for publishers and subscribers.
pub fn secured(anonymous: bool) -> Config {
    Config {
        auth: AuthConfig {
            publisher: verifier(KeyMaterial::Secret(PUB_SECRET.into())),
            subscriber: verifier(KeyMaterial::Secret(SUB_SECRET.into())),
            anonymous,
        },
        ..Config::default()
    }
}

/// A publisher token granting `topics`.
pub fn publisher_token(topics: &[&str]) -> String {
    hs256(PUB_SECRET, json!({"mercure": {"publish": topics}}))
}

/// A subscriber token granting `topics` (private events).
pub fn subscriber_token(topics: &[&str]) -> String {
    hs256(SUB_SECRET, json!({"mercure": {"subscribe": topics}}))
}

async fn native_publish(hub: &TestHub, token: Option<&str>, body: Value) -> (u16, Value) {
    let mut request = hub.http.post(hub.url("/publish")).json(&body);
    if let Some(token) = token {
        request = request.bearer_auth(token);
    }
    let response = request.send().await.unwrap();
    let status = response.status().as_u16();
    (status, response.json().await.unwrap_or(Value::Null))
}

async fn mercure_publish(
    hub: &TestHub,
    headers: &[(&str, String)],
    form: &[(&str, &str)],
) -> (u16, String) {
    let mut request = hub.http.post(hub.url("/.well-known/mercure")).form(form);
    for (name, value) in headers {
        request = request.header(*name, value);
    }
    let response = request.send().await.unwrap();
    (
        response.status().as_u16(),
        response.text().await.unwrap_or_default(),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn publishers_need_a_token_that_grants_every_topic() {
    let hub = TestHub::with_config(secured(true)).await;
    let body = json!({"topic": "a", "data": "x"});
    assert_eq!(native_publish(&hub, None, body.clone()).await.0, 401);
    let forged = hs256("wrong-secret", json!({"mercure": {"publish": ["*"]}}));
    assert_eq!(
        native_publish(&hub, Some(&forged), body.clone()).await.0,
        401
    );
    let expired = hs256(
        PUB_SECRET,
        json!({"exp": now() - 10, "mercure": {"publish": ["*"]}}),
    );
    let (status, answer) = native_publish(&hub, Some(&expired), body.clone()).await;
    assert_eq!(status, 401);
    assert!(
        answer["error"].as_str().unwrap().contains("expired"),
        "{answer}"
    );
    let only_b = publisher_token(&["b"]);
    assert_eq!(
        native_publish(&hub, Some(&only_b), body.clone()).await.0,
        403
    );
    let both = json!({"topic": ["a", "b"], "data": "x"});
    let only_a = publisher_token(&["a"]);
    assert_eq!(native_publish(&hub, Some(&only_a), both).await.0, 403);
    assert_eq!(
        native_publish(&hub, Some(&only_a), body.clone()).await.0,
        200
    );
    let template = publisher_token(&["https://example.com/books/{id}"]);
    let book = json!({"topic": "https://example.com/books/1", "data": "x"});
    assert_eq!(native_publish(&hub, Some(&template), book).await.0, 200);
    // A subscriber's key does not sign for publishers.
    let sub_signed = hs256(SUB_SECRET, json!({"mercure": {"publish": ["*"]}}));
    assert_eq!(native_publish(&hub, Some(&sub_signed), body).await.0, 401);

    // The same rules on the Mercure endpoint.
    let form = [("topic", "a"), ("data", "x")];
    assert_eq!(mercure_publish(&hub, &[], &form).await.0, 401);
    let bearer = |t: &str| vec![("authorization", format!("Bearer {t}"))];
    assert_eq!(mercure_publish(&hub, &bearer(&only_b), &form).await.0, 403);
    assert_eq!(mercure_publish(&hub, &bearer(&expired), &form).await.0, 401);
    assert_eq!(mercure_publish(&hub, &bearer(&only_a), &form).await.0, 200);
    // DELETE /topics/{t} is a publish too.
    let response = hub.http.delete(hub.url("/topics/a")).send().await.unwrap();
    assert_eq!(response.status().as_u16(), 401);
    let response = hub
        .http
        .delete(hub.url("/topics/a"))
        .bearer_auth(&only_a)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status().as_u16(), 200);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_a_publisher_key_loopback_publishes_freely() {
    // The hub listens on 127.0.0.1: the tests are loopback clients.
    let hub = TestHub::start().await;
    assert_eq!(
        native_publish(&hub, None, json!({"topic": "a", "data": "x"}))
            .await
            .0,
        200
    );
    // Tokens are not even looked at.
    assert_eq!(
        native_publish(&hub, Some("garbage"), json!({"topic": "a"}))
            .await
            .0,
        200
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn subscribers_need_a_token_unless_anonymous_and_a_bad_token_is_never_anonymous() {
    let strict = TestHub::with_config(secured(false)).await;
    let sse = strict.subscribe("/events/a", &[]).await;
    assert_eq!(sse.status, 401);
    let sse = strict.subscribe("/.well-known/mercure?topic=a", &[]).await;
    assert_eq!(sse.status, 401);
    assert_eq!(sse.header("www-authenticate"), Some("Bearer"));
    let token = subscriber_token(&[]);
    let auth = format!("Bearer {token}");
    let sse = strict
        .subscribe("/events/a", &[("authorization", &auth)])
        .await;
    assert_eq!(sse.status, 200);

    // The 0.x query parameter (Mercure endpoint only; never on the native API).
    let by_query = strict
        .subscribe(
            &format!("/.well-known/mercure?topic=a&authorization={token}"),
            &[],
        )
        .await;
    assert_eq!(by_query.status, 200);
    let native_query = strict
        .subscribe(&format!("/events/a?authorization={token}"), &[])
        .await;
    assert_eq!(native_query.status, 401);
    let publish_token = publisher_token(&["a"]);
    let response = strict
        .http
        .post(strict.url(&format!(
            "/.well-known/mercure?authorization={publish_token}"
        )))
        .form(&[("topic", "a"), ("data", "x")])
        .send()
        .await
        .unwrap();
    assert_eq!(response.status().as_u16(), 200);

    let lenient = TestHub::with_config(secured(true)).await;
    assert_eq!(lenient.subscribe("/events/a", &[]).await.status, 200);
    for bad in [
        "Bearer not-a-token".to_owned(),
        format!(
            "Bearer {}",
            hs256(SUB_SECRET, json!({"exp": now() - 5, "mercure": {}}))
        ),
    ] {
        let sse = lenient
            .subscribe("/events/a", &[("authorization", &bad)])
            .await;
        assert_eq!(sse.status, 401, "{bad}");
        let sse = lenient
            .subscribe("/.well-known/mercure?topic=a", &[("authorization", &bad)])
            .await;
        assert_eq!(sse.status, 401, "{bad}");
        let cookie = format!("mercureAuthorization={}", &bad[7..]);
        let sse = lenient
            .subscribe("/.well-known/mercure?topic=a", &[("cookie", &cookie)])
            .await;
        assert_eq!(
            sse.status, 401,
            "an expired cookie is refused, not downgraded"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn private_events_reach_only_granted_subscribers_live_and_on_replay() {
    let hub = TestHub::with_config(secured(true)).await;
    let granted = format!(
        "Bearer {}",
        subscriber_token(&["https://example.com/users/{id}"])
    );
    let other = format!(
        "Bearer {}",
        subscriber_token(&["https://example.com/other"])
    );
    let topic = "https://example.com/users/1";
    let path = format!("/.well-known/mercure?topic={topic}");
    let mut with_grant = hub.subscribe(&path, &[("authorization", &granted)]).await;
    let mut native_with_grant = hub
        .subscribe(
            &format!("/events?topic={topic}"),
            &[("authorization", &granted)],
        )
        .await;
    let mut without = hub.subscribe(&path, &[("authorization", &other)]).await;
    let mut anonymous = hub.subscribe(&path, &[]).await;
    hub.wait_subscribers(&crate::mercure::enc(topic), 4).await;

    let token = publisher_token(&["*"]);
    let bearer = vec![("authorization", format!("Bearer {token}"))];
    let (status, private_id) = mercure_publish(
        &hub,
        &bearer,
        &[("topic", topic), ("data", "secret"), ("private", "on")],
    )
    .await;
    assert_eq!(status, 200);
    let (_, public_id) =
        mercure_publish(&hub, &bearer, &[("topic", topic), ("data", "public")]).await;
    // Native private publish.
    let (status, _) = native_publish(
        &hub,
        Some(&token),
        json!({"topic": topic, "data": "native secret", "private": true}),
    )
    .await;
    assert_eq!(status, 200);

    for sse in [&mut with_grant, &mut native_with_grant] {
        let first = sse.event().await;
        assert_eq!(
            (first.data.as_str(), first.id.as_str()),
            ("secret", private_id.as_str())
        );
        assert_eq!(sse.event().await.data, "public");
        assert_eq!(sse.event().await.data, "native secret");
    }
    for sse in [&mut without, &mut anonymous] {
        let only = sse.event().await;
        assert_eq!(
            (only.data.as_str(), only.id.as_str()),
            ("public", public_id.as_str())
        );
        sse.quiet_for(Duration::from_millis(200)).await;
    }

    // Replay from before the private event: the same filter.
    let mut replay = hub
        .subscribe(
            &path,
            &[("authorization", &other), ("last-event-id", "earliest")],
        )
        .await;
    assert_eq!(replay.event().await.data, "public");
    replay.quiet_for(Duration::from_millis(200)).await;
    let mut replay = hub
        .subscribe(
            &path,
            &[("authorization", &granted), ("last-event-id", "earliest")],
        )
        .await;
    assert_eq!(replay.event().await.data, "secret");
    assert_eq!(replay.event().await.data, "public");
    assert_eq!(replay.event().await.data, "native secret");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn asymmetric_keys_and_jwks() {
    let claims = json!({"mercure": {"publish": ["*"]}});
    let cases: Vec<(KeyMaterial, Algorithm, EncodingKey)> = vec![
        (
            KeyMaterial::Pem(key_file("rsa-public.pem")),
            Algorithm::RS256,
            EncodingKey::from_rsa_pem(&key_file("rsa-private.pem")).unwrap(),
        ),
        (
            KeyMaterial::Pem(key_file("ec-public.pem")),
            Algorithm::ES256,
            EncodingKey::from_ec_pem(&key_file("ec-private.pem")).unwrap(),
        ),
        (
            KeyMaterial::Pem(key_file("ed-public.pem")),
            Algorithm::EdDSA,
            EncodingKey::from_ed_pem(&key_file("ed-private.pem")).unwrap(),
        ),
        (
            KeyMaterial::Jwks(String::from_utf8(key_file("jwks.json")).unwrap()),
            Algorithm::RS256,
            EncodingKey::from_rsa_pem(&key_file("rsa-private.pem")).unwrap(),
        ),
    ];
    for (material, alg, signing) in cases {
        let hub = TestHub::with_config(Config {
            auth: AuthConfig {
                publisher: verifier(material),
                ..AuthConfig::default()
            },
            ..Config::default()
        })
        .await;
        let mut header = Header::new(alg);
        header.kid = Some("rsa-1".into());
        let token = encode(&header, &claims, &signing).unwrap();
        let body = json!({"topic": "a", "data": "x"});
        assert_eq!(
            native_publish(&hub, Some(&token), body.clone()).await.0,
            200,
            "{alg:?}"
        );
        // Algorithm confusion: an HMAC token keyed with the public key's bytes.
        let confused = hs256(
            std::str::from_utf8(&key_file("rsa-public.pem")).unwrap(),
            claims.clone(),
        );
        assert_eq!(
            native_publish(&hub, Some(&confused), body.clone()).await.0,
            401
        );
        // An unsigned token (alg "none").
        let unsigned = format!(
            "{}.{}.",
            b64(br#"{"alg":"none","typ":"JWT"}"#),
            b64(claims.to_string().as_bytes())
        );
        assert_eq!(native_publish(&hub, Some(&unsigned), body).await.0, 401);
    }
}

pub fn b64(bytes: &[u8]) -> String {
    const A: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    let mut out = String::new();
    for chunk in bytes.chunks(3) {
        let n = chunk
            .iter()
            .enumerate()
            .fold(0u32, |n, (i, b)| n | (u32::from(*b) << (16 - 8 * i)));
        for i in 0..=chunk.len() {
            out.push(A[((n >> (18 - 6 * i)) & 63) as usize] as char);
        }
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cookie_publishing_checks_the_origin() {
    let hub = TestHub::with_config(Config {
        cors_origins: ssehub::CorsOrigins::List(vec!["http://app.example".into()]),
        ..secured(true)
    })
    .await;
    let cookie = format!("mercureAuthorization={}", publisher_token(&["*"]));
    let form = [("topic", "a"), ("data", "x")];
    let with = |extra: &[(&'static str, &str)]| {
        let mut headers = vec![("cookie", cookie.clone())];
        headers.extend(extra.iter().map(|(n, v)| (*n, v.to_string())));
        headers
    };
    assert_eq!(mercure_publish(&hub, &with(&[]), &form).await.0, 403);
    let evil = with(&[("origin", "http://evil.example")]);
    assert_eq!(mercure_publish(&hub, &evil, &form).await.0, 403);
    let allowed = with(&[("origin", "http://app.example")]);
    assert_eq!(mercure_publish(&hub, &allowed, &form).await.0, 200);
    let referer = with(&[("referer", "http://app.example/page?x=1")]);
    assert_eq!(mercure_publish(&hub, &referer, &form).await.0, 200);
    // A bearer header is not ambient: no origin check.
    let bearer = vec![(
        "authorization",
        format!("Bearer {}", publisher_token(&["*"])),
    )];
    assert_eq!(mercure_publish(&hub, &bearer, &form).await.0, 200);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stream_ends_when_its_token_expires() {
    let hub = TestHub::with_config(secured(false)).await;
    let exp = now() + 2;
    let token = hs256(
        SUB_SECRET,
        json!({"exp": exp, "mercure": {"subscribe": ["*"]}}),
    );
    let auth = format!("Bearer {token}");
    let started = std::time::Instant::now();
    let mut mercure = hub
        .subscribe("/.well-known/mercure?topic=t", &[("authorization", &auth)])
        .await;
    let mut native = hub
        .subscribe("/events/t", &[("authorization", &auth)])
        .await;
    assert_eq!((mercure.status, native.status), (200, 200));
    for sse in [&mut mercure, &mut native] {
        let rest = tokio::time::timeout(WAIT, sse.rest()).await;
        assert!(rest.is_ok(), "the stream outlived its token");
    }
    let lived = started.elapsed();
    assert!(lived <= Duration::from_secs(3), "ended after {lived:?}");
    hub.wait_subscribers("t", 0).await;
    // Coming back with the same token once it has expired: 401, no anonymous downgrade.
    // (A stream may end up to one expiry tick, a second, before `exp`.)
    while now() <= exp {
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let again = hub
        .subscribe("/events/t", &[("authorization", &auth)])
        .await;
    assert_eq!(again.status, 401);
}
