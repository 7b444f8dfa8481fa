//! The demo's seed set: the route aliases `--demo` adds, the seed articles' own URLs and
//! publish calls (docs/routes.md, "The demo's routes").

use std::collections::BTreeMap;

use super::{RouteSpec, WelcomeSpec};

/// The seed articles' URLs and publish calls (docs/routes.md, "The demo's routes").
pub(super) fn demo_specs() -> Vec<RouteSpec> {
    let get = |path: &str, topics: &[&str]| RouteSpec {
        path: path.into(),
        topics: topics.iter().map(|t| t.to_string()).collect(),
        ..RouteSpec::default()
    };
    let post = |path: &str, topic: &str, event: Option<&str>, data: &str, reply: &str| RouteSpec {
        path: path.into(),
        method: Some("POST".into()),
        topics: vec![topic.into()],
        event: event.map(Into::into),
        data: Some(data.into()),
        reply: Some(reply.into()),
        ..RouteSpec::default()
    };
    let welcome = |event: &str, data: &str| WelcomeSpec {
        event: Some(event.into()),
        data: data.into(),
        id: true,
    };
    vec![
        // Seed 000: `connected` with an id first, then `current-date` every 5 s.
        RouteSpec {
            welcome: vec![welcome("connected", "You are now subscribed!")],
            ..get("/subscribe", &["clock"])
        },
        // Seeds 001 and 002 share `/events`: 002's `retry: 10000` and counter, 001's
        // `user-online` / `user-count` greeting, broadcasts and notifications.
        RouteSpec {
            retry: Some(10_000),
            welcome: vec![
                welcome("user-online", r#"{"clientId": {now_ms}}"#),
                welcome("user-count", r#"{"count": {subscribers}}"#),
            ],
            ..get("/events", &["counter", "broadcast", "notification"])
        },
        // Seed 003: plain data lines, as its curl session prints them.
        RouteSpec {
            retry: Some(0),
            ids: Some(false),
            ..get("/random", &["random"])
        },
        get("/analytics", &["analytics"]),
        RouteSpec {
            defaults: BTreeMap::from([("type".into(), "news,weather,stockprice".into())]),
            ..get("/latest", &["ticker/{type}"])
        },
        get("/latest/{type}", &["ticker/{type}"]),
        post(
            "/broadcast",
            "broadcast",
            None,
            "{message}",
            r#"{"sent":{delivered}}"#,
        ),
        post(
            "/notify",
            "notification",
            Some("notification"),
            r#"{"title":{title:json},"message":{message:json}}"#,
            r#"{"ok":true}"#,
        ),
        // Seed 001's per-user channel: `/events/{userId}` is the native stream of topic
        // `{userId}`, so publishing there reaches it.
        post(
            "/notify/{userId}",
            "{userId}",
            None,
            "{body}",
            r#"{"ok":true}"#,
        ),
    ]
}
