//! Entry points for the fuzz targets in `fuzz/` and the property tests: each runs one parser
//! of network input the way a request reaches it, with no socket. Not part of the API.
//!
//! Functions that open streams need a tokio runtime entered (`Runtime::enter`).

use std::net::SocketAddr;
use std::sync::Arc;

use axum::http::{header, HeaderMap, HeaderName, HeaderValue};
use bytes::Bytes;
use ssehub_core::{MemoryStore, NewEvent, Retention};

use crate::config::{Config, Dialect};
use crate::hub::Hub;
use crate::mercure;
use crate::open::Opened;
use crate::selector::{self, MatchKind};
use crate::server::{self, Answer};

/// The address requests come from: loopback, so open publishing is allowed.
const PEER: SocketAddr = SocketAddr::new(std::net::IpAddr::V4(std::net::Ipv4Addr::LOCALHOST), 1);

/// A hub on a memory store with the default config; `dialect` is Mercure's (1 when false).
/// With `subscriber_key`, subscribers may be anonymous but a token they send is verified
/// against that HMAC secret, the page at `http://o` may use the hub cross-origin, and the
/// limits are small (1 KiB request heads, 4 topics) so inputs reach them.
pub fn hub(dialect_v0: bool, subscriber_key: Option<&[u8]>) -> Arc<Hub> {
    let mut config = Config {
        mercure_dialect: if dialect_v0 { Dialect::V0 } else { Dialect::V1 },
        ..Config::default()
    };
    if let Some(key) = subscriber_key {
        let verifier = crate::keys::Verifier::new(
            crate::keys::KeyMaterial::Secret(key.to_vec()),
            &crate::keys::parse_algorithms(crate::keys::DEFAULT_ALGORITHMS).expect("defaults"),
        )
        .expect("an HMAC key");
        config.auth.subscriber = Some(Arc::new(verifier));
        config.auth.anonymous = true;
        config.cors_origins = crate::config::CorsOrigins::List(vec!["http://o".to_owned()]);
        config.max_header_bytes = 1024;
        config.max_topics = 4;
    }
    Hub::new(config, Arc::new(MemoryStore::new(Retention::events(16))))
}

/// Lets the hub forget the topics a call made, so a long fuzz run stays small.
pub fn tidy(hub: &Hub) {
    hub.forget_idle_topics();
}

/// Reads `input` as the direct path reads a request head, arriving in pieces cut at `cuts`:
/// stops where `read_head` stops, then answers as the direct path does. `None` when the
/// connection would go to hyper (or is the HTTP/2 preface); else the response bytes the
/// direct path writes first (a stream's head, or a whole fixed answer).
pub fn request_head(hub: &Arc<Hub>, input: &[u8], cuts: &[usize]) -> Option<Vec<u8>> {
    let max = hub.config.max_header_bytes;
    let mut points: Vec<usize> = cuts.iter().map(|c| c % (input.len() + 1)).collect();
    points.push(input.len());
    points.sort_unstable();
    let mut head = Vec::new();
    let mut at = 0;
    for point in points {
        if server::head_read(&head, max) {
            break;
        }
        head.extend_from_slice(&input[at..point]);
        at = point;
    }
    if head.starts_with(server::H2_PREFACE) {
        return None;
    }
    match server::direct_stream(hub, PEER, &head)? {
        Answer::Stream { head, body } => {
            drop(body);
            Some(head)
        }
        Answer::Fixed(bytes) => Some(bytes),
    }
}

/// A `POST /publish` body with this `Content-Type`, decoded and validated as the route does.
pub fn publish_body(hub: &Hub, content_type: &[u8], body: &[u8]) -> Result<NewEvent, u16> {
    let headers = one_header(header::CONTENT_TYPE, content_type);
    crate::http::decode_publish(hub, &headers, body).map_err(|e| e.status.as_u16())
}

/// A batch publish body: the one-pass decoder of a JSON array gives the fields the general
/// way gives (panics where the two differ).
pub fn publish_batch(body: &[u8]) {
    crate::http::check_batch_decoders(body);
}

/// A Mercure publish body with this `Content-Type`, decoded and validated as the route does
/// (the hub's dialect; open publishing from loopback).
pub fn mercure_publish(hub: &Hub, content_type: &[u8], body: &[u8]) -> Result<NewEvent, u16> {
    let headers = one_header(header::CONTENT_TYPE, content_type);
    let body = Ok(Bytes::copy_from_slice(body));
    mercure::decode_publish(hub, PEER, &headers, None, body, hub.config.mercure_dialect)
        .map_err(|e| e.status.as_u16())
}

/// A native subscribe request (`/events/{path_topic}?{query}` with a `Last-Event-ID`):
/// `Ok(true)` for a stream, `Ok(false)` for 204, else the error status.
pub fn subscribe(
    hub: &Arc<Hub>,
    path_topic: Option<&str>,
    query: Option<&str>,
    last_event_id: Option<&[u8]>,
) -> Result<bool, u16> {
    let headers = match last_event_id {
        Some(id) => one_header(HeaderName::from_static("last-event-id"), id),
        None => HeaderMap::new(),
    };
    match crate::http::prepare_stream(hub, PEER, path_topic, query, &headers) {
        Ok(Opened::Stream(_)) => Ok(true),
        Ok(Opened::NoContent) => Ok(false),
        Err(e) => Err(e.status.as_u16()),
    }
}

/// A Mercure subscribe query with these headers: the response status.
pub fn mercure_subscribe(hub: &Arc<Hub>, query: Option<&str>, headers: &HeaderMap) -> u16 {
    match mercure::open_subscription(hub, query, headers) {
        Ok(response) => response.status().as_u16(),
        Err(e) => e.status.as_u16(),
    }
}

/// The token a request carries in `headers` (`Authorization`, the cookie) or the query
/// parameter the route found, as the hub finds it.
pub fn find_token(headers: &HeaderMap, dialect_v0: bool, query: Option<&str>) -> Option<String> {
    let dialect = if dialect_v0 { Dialect::V0 } else { Dialect::V1 };
    crate::auth::find_token(headers, dialect, query).map(|(token, _)| token)
}

/// A query string or form body as the hub decodes it.
pub fn form(input: &[u8]) -> Result<Vec<(String, String)>, String> {
    crate::form::parse(input).map_err(|e| e.to_string())
}

/// A Mercure topic as the hub names it (the name selectors are matched against).
pub fn hub_topic(topic: &str) -> Result<String, String> {
    mercure::to_topic(topic).map(|t| t.as_str().to_owned())
}

/// A URI template: `Ok(None)` when it has no expression, else whether it matches `topic`.
pub fn template_matches(template: &str, topic: &str) -> Result<Option<bool>, String> {
    Ok(selector::UriTemplate::parse(template)?.map(|t| t.matches(topic)))
}

/// A URL pattern (relative ones resolved against `base`): whether it matches `topic`.
pub fn urlpattern_matches(pattern: &str, base: Option<&str>, topic: &str) -> Result<bool, String> {
    Ok(selector::UrlPattern::parse(pattern, base)?.matches(topic))
}

/// A subscription selector read as `kind` (0 topic/template, 1 exact, else URL pattern):
/// whether it selects `topic`.
pub fn selector_matches(
    selector: &str,
    kind: u8,
    base: Option<&str>,
    topic: &str,
) -> Result<bool, String> {
    let kind = match kind {
        0 => MatchKind::Topic,
        1 => MatchKind::Exact,
        _ => MatchKind::UrlPattern,
    };
    Ok(selector::matcher_at(selector, kind, base)?.matches(topic))
}

/// Headers with one entry, or none when `value` is no valid header value.
fn one_header(name: HeaderName, value: &[u8]) -> HeaderMap {
    let mut headers = HeaderMap::new();
    if let Ok(value) = HeaderValue::from_bytes(value) {
        headers.insert(name, value);
    }
    headers
}
