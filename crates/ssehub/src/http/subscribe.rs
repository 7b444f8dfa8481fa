//! `GET /events` and `GET /events/{topic}`: open a subscriber stream.

use std::net::SocketAddr;
use std::sync::Arc;

use axum::body::Body;
use axum::extract::{ConnectInfo, Path, RawQuery, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use ssehub_core::Topic;

use crate::auth::{self, Grants};
use crate::error::ApiError;
use crate::form;
use crate::http::publish::parse_topic;
use crate::hub::Hub;
use crate::open::{open_with, Cursor, Opened, Opening};
use crate::selection::Selection;

/// A subscribe request, decoded from the path, query and headers.
struct Request {
    topics: Vec<Topic>,
    last_event_id: Option<String>,
    presence: bool,
}

/// The response headers of a stream, besides CORS.
pub const STREAM_HEADERS: [(&str, &str); 3] = [
    ("content-type", "text/event-stream"),
    ("cache-control", "no-cache"),
    ("x-accel-buffering", "no"),
];

pub async fn events(
    State(hub): State<Arc<Hub>>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    prepare(&hub, peer, None, query.as_deref(), &headers).map(into_response)
}

pub async fn events_topic(
    State(hub): State<Arc<Hub>>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    Path(topic): Path<String>,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    prepare(&hub, peer, Some(&topic), query.as_deref(), &headers).map(into_response)
}

pub(crate) fn into_response(opened: Opened) -> Response {
    match opened {
        Opened::NoContent => StatusCode::NO_CONTENT.into_response(),
        Opened::Stream(stream) => stream_response(Body::new(stream)),
    }
}

/// A 200 with an event stream's headers.
pub(crate) fn stream_response(body: Body) -> Response {
    let mut response = body.into_response();
    for (name, value) in STREAM_HEADERS {
        response
            .headers_mut()
            .insert(name, header::HeaderValue::from_static(value));
    }
    response
}

/// Decodes a subscribe request and opens its stream. Shared by the axum route and the
/// direct stream path in `server/direct.rs`, so both answer alike.
pub fn prepare(
    hub: &Arc<Hub>,
    peer: SocketAddr,
    path_topic: Option<&str>,
    query: Option<&str>,
    headers: &HeaderMap,
) -> Result<Opened, ApiError> {
    // `peer` is for per-client limits.
    let _ = peer;
    // With a subscriber key, the same rules as Mercure: a valid token (or `anonymous`),
    // whose grants open private events; checked before the request is decoded.
    let grants = auth::subscriber(hub, headers, None)?;
    let request = decode(hub, path_topic, query, headers)?;
    open(hub.clone(), request, grants, &Opening::Native)
}

/// Opens a route alias's stream of `topics` (already checked against `max_topics`), with
/// the subscriber auth, replay and limits of the native API and the route's opening.
pub(crate) fn open_route(
    hub: &Arc<Hub>,
    topics: Vec<Topic>,
    query: Option<&str>,
    headers: &HeaderMap,
    opening: &Opening<'_>,
) -> Result<Opened, ApiError> {
    let grants = auth::subscriber(hub, headers, None)?;
    let pairs = form::parse(query.unwrap_or("").as_bytes())
        .map_err(|e| ApiError::new(StatusCode::BAD_REQUEST, e.to_string()))?;
    let query_id = pairs
        .iter()
        .find(|(name, _)| name == "lastEventId")
        .map(|(_, v)| v.clone());
    let request = Request {
        topics,
        last_event_id: last_event_id(headers, query_id),
        presence: false,
    };
    open(hub.clone(), request, grants, opening)
}

/// The client's `Last-Event-ID` header, else its `lastEventId` query parameter.
fn last_event_id(headers: &HeaderMap, query_id: Option<String>) -> Option<String> {
    let header_id = headers
        .get("last-event-id")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    header_id.or(query_id).filter(|id| !id.is_empty())
}

fn decode(
    hub: &Hub,
    path_topic: Option<&str>,
    query: Option<&str>,
    headers: &HeaderMap,
) -> Result<Request, ApiError> {
    let pairs = form::parse(query.unwrap_or("").as_bytes())
        .map_err(|e| ApiError::new(StatusCode::BAD_REQUEST, e.to_string()))?;
    let mut names: Vec<&str> = path_topic.into_iter().collect();
    let mut query_id = None;
    let mut presence = false;
    for (name, value) in &pairs {
        match name.as_str() {
            "topic" => {
                names.extend(value.split(','));
                if names.len() > hub.config.max_topics {
                    break;
                }
            }
            "lastEventId" => query_id = Some(value.clone()),
            "presence" => presence = matches!(value.as_str(), "1" | "true" | "on" | ""),
            _ => {}
        }
    }
    if names.is_empty() {
        return Err(ApiError::field(
            "topic",
            "missing topic: use /events?topic=NAME or /events/NAME",
        ));
    }
    if names.len() > hub.config.max_topics {
        return Err(ApiError::field(
            "topic",
            format!(
                "too many topics: at most {} per subscription",
                hub.config.max_topics
            ),
        ));
    }
    let mut topics = Vec::with_capacity(names.len());
    for name in names {
        let topic = parse_topic(name)?;
        if !topics.contains(&topic) {
            topics.push(topic);
        }
    }
    Ok(Request {
        topics,
        last_event_id: last_event_id(headers, query_id),
        presence,
    })
}

fn open(
    hub: Arc<Hub>,
    request: Request,
    grants: Option<Grants>,
    opening: &Opening<'_>,
) -> Result<Opened, ApiError> {
    let mut selection = Selection::topics(request.topics);
    if let Some(grants) = &grants {
        selection.private = grants.private_access();
    }
    selection.set_deadline(auth::deadline(&hub.config, grants.as_ref()));
    let selection = Arc::new(selection);
    let cursor = request
        .last_event_id
        .as_deref()
        .map_or(Cursor::Live, Cursor::After);
    open_with(hub, selection, cursor, request.presence, opening)
}
