//! The auth settings as a deployment gives them: the reference Mercure hub's environment
//! variables (`MERCURE_PUBLISHER_JWT_KEY`, `MERCURE_SUBSCRIBER_JWT_KEY`,
//! `MERCURE_EXTRA_DIRECTIVES`) on a real hub process, and refusals naming the key.

mod common;

use common::HubProcess;
use jsonwebtoken::{encode, EncodingKey, Header};

/// `ssehub serve --memory` with these further arguments and environment.
fn start(args: &[&str], env: &[(&str, &str)]) -> HubProcess {
    common::serve_process(["--memory"].iter().chain(args), env)
}

/// `ssehub serve --memory` with these further arguments, expected to refuse to start.
fn refused(args: &[&str], env: &[(&str, &str)]) -> String {
    let mut all = vec!["serve", "--listen", "127.0.0.1:0", "--memory"];
    all.extend_from_slice(args);
    common::refused(&all, env)
}

fn token(secret: &str, claims: serde_json::Value) -> String {
    encode(
        &Header::default(),
        &claims,
        &EncodingKey::from_secret(secret.as_bytes()),
    )
    .unwrap()
}

async fn status(request: reqwest::RequestBuilder) -> u16 {
    request.send().await.unwrap().status().as_u16()
}

#[tokio::test]
async fn mercure_environment_variables_configure_the_hub() {
    let hub = start(
        &[],
        &[
            ("MERCURE_PUBLISHER_JWT_KEY", "pub-key"),
            ("MERCURE_SUBSCRIBER_JWT_KEY", "sub-key"),
            ("MERCURE_EXTRA_DIRECTIVES", "anonymous\nsubscriptions"),
        ],
    );
    let http = reqwest::Client::new();
    let publish = || {
        http.post(format!("{}/.well-known/mercure", hub.url))
            .form(&[("topic", "https://example.com/a"), ("data", "x")])
    };
    assert_eq!(status(publish()).await, 401);
    let good = token(
        "pub-key",
        serde_json::json!({"mercure": {"publish": ["*"]}}),
    );
    assert_eq!(status(publish().bearer_auth(&good)).await, 200);
    // anonymous: a subscriber without a token is let in.
    let subscribe = http
        .get(format!("{}/.well-known/mercure?topic=a", hub.url))
        .send()
        .await
        .unwrap();
    assert_eq!(subscribe.status().as_u16(), 200);
    drop(subscribe);
    // subscriptions: the API is served (and wants a subscriber token).
    let api = http
        .get(format!("{}/.well-known/mercure/subscriptions", hub.url))
        .send()
        .await
        .unwrap();
    assert_eq!(api.status().as_u16(), 401);

    // SSEHUB_* beats MERCURE_*.
    let hub = start(
        &[],
        &[
            ("MERCURE_PUBLISHER_JWT_KEY", "mercure-key"),
            ("SSEHUB_PUBLISHER_JWT_KEY", "ssehub-key"),
            ("MERCURE_SUBSCRIBER_JWT_KEY", "sub-key"),
        ],
    );
    let mercure_signed = token(
        "mercure-key",
        serde_json::json!({"mercure": {"publish": ["*"]}}),
    );
    let response = http
        .post(format!("{}/publish", hub.url))
        .bearer_auth(mercure_signed)
        .json(&serde_json::json!({"topic": "a"}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status().as_u16(), 401);
    // No anonymous here: a subscriber needs a token.
    assert_eq!(status(http.get(format!("{}/events/a", hub.url))).await, 401);
}

#[test]
fn bad_auth_settings_are_refused_naming_the_key() {
    let err = refused(&["--jwt-algorithms", "HS256,none"], &[]);
    assert!(err.contains("jwt_algorithms"), "{err}");
    let err = refused(&["--subscriber-jwt-key", "/no/such/key.pem"], &[]);
    assert!(err.contains("subscriber_jwt_key"), "{err}");
    let err = refused(&["--mercure-dialect", "2"], &[]);
    assert!(err.contains("mercure_dialect"), "{err}");
    let err = refused(
        &["--publisher-jwt-key", "secret", "--jwt-algorithms", "RS256"],
        &[],
    );
    assert!(err.contains("publisher_jwt_key"), "{err}");
    let err = refused(&[], &[("MERCURE_EXTRA_DIRECTIVES", "heartbeat soon")]);
    assert!(err.contains("MERCURE_EXTRA_DIRECTIVES"), "{err}");
}
