//! Property tests of the parsers of network input that `fuzz/` fuzzes without the HTTP stack:
//! the direct path's request head, subscription queries, Mercure selectors and token
//! extraction. Every build runs a few thousand cases; `fuzz/README.md` runs them for longer.

use std::sync::{Arc, OnceLock};

use axum::http::{HeaderMap, HeaderValue};
use proptest::prelude::*;
use proptest::sample::Index;
use ssehub::fuzzing;
use ssehub::Hub;

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap()
}

/// The status code of a direct-path answer, checking it is a well-formed response head.
fn status_of(answer: &[u8]) -> u16 {
    let end = answer
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .expect("the answer has a blank line");
    let head = std::str::from_utf8(&answer[..end]).expect("an ASCII head");
    assert!(head.starts_with("HTTP/1.1 "), "{head:?}");
    assert!(!head.replace("\r\n", "").contains(['\r', '\n']), "{head:?}");
    head[9..12].parse().expect("a status code")
}

fn refused_well(status: u16) -> bool {
    (400..500).contains(&status)
}

/// Bytes shaped like a request head often enough to reach the direct path's branches.
fn head_ish() -> impl Strategy<Value = Vec<u8>> {
    let piece = prop_oneof![
        Just(&b"GET "[..]),
        Just(&b"POST "[..]),
        Just(&b"/events"[..]),
        Just(&b"/events/"[..]),
        Just(&b"?topic="[..]),
        Just(&b"&lastEventId="[..]),
        Just(&b"&presence"[..]),
        Just(&b"%"[..]),
        Just(&b"%C3%A9"[..]),
        Just(&b"%FF"[..]),
        Just(&b","[..]),
        Just(&b" HTTP/1.1"[..]),
        Just(&b"\r\n"[..]),
        Just(&b"\n"[..]),
        Just(&b"Host: h"[..]),
        Just(&b"Origin: http://o"[..]),
        Just(&b"Last-Event-ID: "[..]),
        Just(&b"Authorization: Bearer "[..]),
        Just(&b"Cookie: mercureAuthorization="[..]),
        Just(&b": "[..]),
        Just(&b"0-0"[..]),
        Just(&b"a"[..]),
        Just(&b"\0"[..]),
        Just(&b"\xff"[..]),
        Just(&b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"[..]),
    ];
    prop::collection::vec(piece, 0..24).prop_map(|p| p.concat())
}

/// Two hubs made once: Mercure dialect 0 with open subscribing, and dialect 1 with a
/// subscriber key (anonymous allowed), so tokens that are sent get verified.
fn hubs() -> &'static [Arc<Hub>; 2] {
    static HUBS: OnceLock<[Arc<Hub>; 2]> = OnceLock::new();
    HUBS.get_or_init(|| {
        [
            fuzzing::hub(true, None),
            fuzzing::hub(false, Some(b"prop-key")),
        ]
    })
}

/// One runtime for the streams the cases open.
fn shared_runtime() -> &'static tokio::runtime::Runtime {
    static RUNTIME: OnceLock<tokio::runtime::Runtime> = OnceLock::new();
    RUNTIME.get_or_init(runtime)
}

#[test]
fn direct_path_answers_known_heads() {
    let rt = runtime();
    let _guard = rt.enter();
    let hub = fuzzing::hub(true, None);
    let answer = |head: &[u8]| fuzzing::request_head(&hub, head, &[]).map(|a| status_of(&a));
    assert_eq!(
        answer(b"GET /events?topic=a HTTP/1.1\r\nHost: h\r\n\r\n"),
        Some(200)
    );
    assert_eq!(answer(b"GET /events/a%20b HTTP/1.1\r\n\r\n"), Some(400));
    assert_eq!(answer(b"GET /events/%FF HTTP/1.1\r\n\r\n"), Some(400));
    assert_eq!(answer(b"GET /events HTTP/1.1\r\n\r\n"), Some(400));
    // Not for the direct path: hyper answers these.
    assert_eq!(answer(b"POST /events?topic=a HTTP/1.1\r\n\r\n"), None);
    assert_eq!(answer(b"GET /topics HTTP/1.1\r\n\r\n"), None);
    assert_eq!(answer(b"GET /events?topic=a HTTP/1.1\r\n"), None);
    assert_eq!(answer(b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"), None);
    // Pieces do not matter.
    let head = b"GET /events?topic=a HTTP/1.1\r\nHost: h\r\n\r\n";
    assert_eq!(
        fuzzing::request_head(&hub, head, &[3, 20, 40]).map(|a| status_of(&a)),
        Some(200)
    );
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(1500))]

    #[test]
    fn direct_path_never_panics(
        head in prop_oneof![head_ish(), prop::collection::vec(any::<u8>(), 0..256)],
        cuts in prop::collection::vec(any::<Index>(), 0..4),
        keyed in any::<bool>(),
    ) {
        let _guard = shared_runtime().enter();
        let [open, with_key] = hubs();
        let hub = if keyed { with_key } else { open };
        fuzzing::tidy(hub);
        let cuts: Vec<usize> = cuts.iter().map(|c| c.index(head.len() + 1)).collect();
        let whole = fuzzing::request_head(hub, &head, &[]).map(|a| status_of(&a));
        if let Some(status) = whole {
            prop_assert!(status == 200 || status == 204 || refused_well(status), "{}", status);
        }
        let pieces = fuzzing::request_head(hub, &head, &cuts).map(|a| status_of(&a));
        // Arriving in pieces, the head may be cut short where a prefix already cannot be a
        // request; a complete head is answered alike.
        if head.windows(4).filter(|w| w == b"\r\n\r\n").count() == 1 && head.ends_with(b"\r\n\r\n") {
            prop_assert_eq!(pieces, whole);
        }
    }

    #[test]
    fn subscription_queries_never_panic(
        query in prop_oneof!["[a-zA-Z_=&%,0-9.:/{}*?#+-]{0,40}", any::<String>()],
        extra in prop_oneof!["[0-9-]{0,12}", any::<String>()],
        which in 0u8..16,
    ) {
        let _guard = shared_runtime().enter();
        let _ = fuzzing::form(query.as_bytes());
        let [v0, v1] = hubs();
        let hub = if which & 4 == 0 { v0 } else { v1 };
        fuzzing::tidy(hub);
        let path_topic = (which & 1 == 1).then_some(extra.as_str()).filter(|t| !t.is_empty());
        let last_id = (which & 2 == 2).then_some(extra.as_bytes());
        if let Err(status) = fuzzing::subscribe(hub, path_topic, Some(&query), last_id) {
            prop_assert!(refused_well(status), "{}", status);
        }
        let mut headers = HeaderMap::new();
        if let Ok(value) = HeaderValue::from_str(&extra) {
            headers.insert(if which & 8 == 0 { "last-event-id" } else { "authorization" }, value);
        }
        let status = fuzzing::mercure_subscribe(hub, Some(&query), &headers);
        prop_assert!(status == 200 || refused_well(status), "{}", status);
    }

    #[test]
    fn selectors_never_panic(
        selector in prop_oneof![
            "[a-z:/.{}?#+*&=,;()\\\\-]{0,40}",
            "https://ex\\.com/[a-z{}/:*?#+]{0,24}",
            any::<String>()
        ],
        topic in prop_oneof!["https://ex\\.com/[a-z/0-9?=#]{0,24}", any::<String>()],
        kind in 0u8..3,
        with_base in any::<bool>(),
    ) {
        let base = with_base.then_some("https://hub.example.com");
        let _ = fuzzing::template_matches(&selector, &topic);
        let _ = fuzzing::urlpattern_matches(&selector, base, &topic);
        if let Ok(topic) = fuzzing::hub_topic(&topic) {
            let matched = fuzzing::selector_matches(&selector, kind, base, &topic);
            if kind == 1 && fuzzing::hub_topic(&selector).is_ok_and(|s| s == topic) {
                prop_assert_eq!(matched, Ok(true));
            }
        }
    }

    #[test]
    fn tokens_are_found_without_panics(
        auth in prop::collection::vec(any::<u8>(), 0..40),
        cookie in "[ -~]{0,60}",
        query in proptest::option::of(any::<String>()),
        v0 in any::<bool>(),
    ) {
        let mut headers = HeaderMap::new();
        if let Ok(value) = HeaderValue::from_bytes(&auth) {
            headers.insert("authorization", value);
        }
        if let Ok(value) = HeaderValue::from_str(&cookie) {
            headers.insert("cookie", value);
        }
        let _ = fuzzing::find_token(&headers, v0, query.as_deref());
    }
}

#[test]
fn tokens_come_from_the_header_then_the_cookie_then_the_query() {
    let mut headers = HeaderMap::new();
    headers.insert(
        "cookie",
        HeaderValue::from_static("a=b; mercureAuthorization=\"c\""),
    );
    assert_eq!(
        fuzzing::find_token(&headers, true, Some("q")),
        Some("c".into())
    );
    assert_eq!(
        fuzzing::find_token(&headers, false, Some("q")),
        Some("q".into())
    );
    headers.insert("authorization", HeaderValue::from_static("bearer  t "));
    assert_eq!(fuzzing::find_token(&headers, true, None), Some("t".into()));
}

/// A hub with the demo's routes and a user's (path parameters into topics, body fields
/// into data, a reply template), for the route-alias property below.
fn routed_hub() -> &'static Arc<Hub> {
    static HUB: OnceLock<Arc<Hub>> = OnceLock::new();
    HUB.get_or_init(|| {
        let routes = ssehub::Routes::compile(&[
            ssehub::RouteSpec {
                path: "/rooms/:room".into(),
                topics: vec!["room/{room}".into(), "kind/{kind}".into()],
                defaults: [("kind".to_owned(), "all".to_owned())].into(),
                welcome: vec![ssehub::WelcomeSpec {
                    event: Some("hi".into()),
                    data: "{room} {kind:json} {subscribers}".into(),
                    id: true,
                }],
                ..Default::default()
            },
            ssehub::RouteSpec {
                path: "/say/:room".into(),
                method: Some("POST".into()),
                topics: vec!["room/{room}".into()],
                data: Some(r#"{"text": {text:json}, "raw": "{text}"}"#.into()),
                reply: Some(r#"{"to": {delivered}, "room": "{room}"}"#.into()),
                ..Default::default()
            },
        ])
        .unwrap();
        let config = ssehub::Config {
            demo: true,
            routes,
            max_topics: 8,
            ..ssehub::Config::default()
        };
        let store = Arc::new(ssehub_core::MemoryStore::new(
            ssehub_core::Retention::events(64),
        ));
        Hub::new(config, store)
    })
}

/// A path segment or query value shaped to reach the templates' edges.
fn piece() -> impl Strategy<Value = String> {
    prop_oneof![
        "[a-z0-9%,{}:/.\\-]{0,12}",
        Just("%0A".to_owned()),
        Just("%FF".to_owned()),
        Just("%00".to_owned()),
        Just("a,b,c,d,e,f,g,h,i".to_owned()),
        any::<String>().prop_map(|s| s
            .chars()
            .filter(|c| !c.is_control() && *c != '/' && *c != '?' && *c != '#' && *c != ' ')
            .collect()),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(600))]

    /// Route aliases never panic and never answer 5xx, whatever the path parameters, query
    /// selectors or body: a stream (200), a publish (200), or a clear 4xx.
    #[test]
    fn route_aliases_never_panic(
        route in 0usize..6,
        segment in piece(),
        query in piece(),
        body in prop_oneof![
            any::<Vec<u8>>(),
            "\\{\"text\": \"[a-z\\n\\r\"{}]{0,10}\"\\}".prop_map(String::into_bytes),
            Just(b"{\"message\": [1, {\"a\": null}]}".to_vec()),
            Just(b"text=a%0Ab&title=%FF".to_vec()),
        ],
        form in any::<bool>(),
    ) {
        use tower::ServiceExt;
        let hub = routed_hub().clone();
        let (method, uri) = match route {
            0 => ("GET", format!("/rooms/{segment}?kind={query}")),
            1 => ("POST", format!("/say/{segment}")),
            2 => ("GET", format!("/latest?type={query}")),
            3 => ("GET", format!("/latest/{segment}")),
            4 => ("POST", format!("/notify/{segment}")),
            _ => ("POST", "/notify".to_owned()),
        };
        let Ok(uri) = uri.parse::<axum::http::Uri>() else {
            return Ok(());
        };
        let content_type = if form { "application/x-www-form-urlencoded" } else { "application/json" };
        let mut request = axum::http::Request::builder()
            .method(method)
            .uri(uri)
            .header("content-type", content_type)
            .body(axum::body::Body::from(body))
            .unwrap();
        let peer: std::net::SocketAddr = "127.0.0.1:1".parse().unwrap();
        request.extensions_mut().insert(axum::extract::ConnectInfo(peer));
        let status = shared_runtime().block_on(async move {
            let response = ssehub::router(hub).oneshot(request).await.unwrap();
            response.status().as_u16()
        });
        prop_assert!(status == 200 || status == 204 || refused_well(status), "{}", status);
    }
}
