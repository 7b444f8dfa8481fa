//! `GET /events` and `GET /events/{topic}`: open a subscriber stream.

use std::net::SocketAddr;
use std::sync::Arc;

use axum::body::Body;
use axum::extract::{ConnectInfo, Path, RawQuery, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use ssehub_core::{encode_event, wire_id_text, EventId, Frame, Locate, Topic};

use crate::auth::{self, Grants};
use crate::form;
use crate::http::error::ApiError;
use crate::http::publish::parse_topic;
use crate::hub::{Hub, SubscribeError};
use crate::selection::Selection;
use crate::stream::EventStream;

/// The control event that tells a resuming client its replay is not complete.
pub const RESET_EVENT: &str = "ssehub-reset";

/// A subscribe request, decoded from the path, query and headers.
struct Request {
    topics: Vec<Topic>,
    last_event_id: Option<String>,
    presence: bool,
}

/// What a subscribe request opens.
pub enum Opened {
    Stream(EventStream),
    /// Every topic is closed and the client is owed nothing: 204, so `EventSource` stops.
    NoContent,
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
/// direct stream path in `server.rs`, so both answer alike.
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
    selection.deadline = auth::deadline(&hub.config, grants.as_ref());
    let selection = Arc::new(selection);
    let cursor = request
        .last_event_id
        .as_deref()
        .map_or(Cursor::Live, Cursor::After);
    open_with(hub, selection, cursor, request.presence, opening)
}

/// How a stream opens.
pub(crate) enum Opening<'a> {
    /// The native API's: an `: ok` comment, then the hub's `retry` with up to 10 % jitter.
    Native,
    /// A route alias's: `retry` as given (0: none; `None`: the hub's), then its welcome
    /// events, which `welcome` writes given the stream's position as its wire id.
    Route {
        retry: Option<u64>,
        welcome: Option<&'a WriteWelcome<'a>>,
    },
}

/// Writes a route's welcome events into the opening, given the stream's position.
pub(crate) type WriteWelcome<'a> = dyn Fn(&mut Vec<u8>, &str) + 'a;

/// Where a stream's replay starts.
#[derive(Clone, Copy, Debug)]
pub enum Cursor<'a> {
    /// No replay: live events only.
    Live,
    /// After the client's `Last-Event-ID`; an `ssehub-reset` first when the store cannot
    /// replay completely from there.
    After(&'a str),
    /// The whole retained history, with no reset (Mercure's `earliest`).
    Earliest,
}

/// Opens a stream for any selection (the native API's topics, or Mercure selectors): the
/// opening bytes, the replay from `cursor`, and the live subscription.
pub fn open_selection(
    hub: Arc<Hub>,
    selection: Arc<Selection>,
    cursor: Cursor<'_>,
    presence: bool,
) -> Result<Opened, ApiError> {
    open_with(hub, selection, cursor, presence, &Opening::Native)
}

fn open_with(
    hub: Arc<Hub>,
    selection: Arc<Selection>,
    cursor: Cursor<'_>,
    presence: bool,
    how: &Opening<'_>,
) -> Result<Opened, ApiError> {
    let hub_retry = hub.config.retry.as_millis() as u64;
    let (mut opening, retry) = match how {
        Opening::Native => (
            b": ok\n".to_vec(),
            hub_retry + fastrand::u64(0..=hub_retry / 10),
        ),
        Opening::Route { retry, .. } => (Vec::new(), retry.unwrap_or(hub_retry)),
    };
    if retry > 0 {
        opening.extend_from_slice(format!("retry: {retry}\n\n").as_bytes());
    }
    let mut replay_after = match cursor {
        Cursor::Live => None,
        Cursor::Earliest => Some(hub.store.replay_start()),
        Cursor::After(id) => {
            let located = hub
                .store
                .locate_for(id, selection.scope())
                .map_err(|e| ApiError::internal(&e))?;
            match located {
                Locate::Found(position) => Some(position),
                Locate::Expired => Some(reset(&hub, &mut opening, "expired", id)),
                Locate::Unknown => Some(reset(&hub, &mut opening, "unknown", id)),
            }
        }
    };
    if let Opening::Route {
        welcome: Some(welcome),
        ..
    } = how
    {
        // A welcome carries the stream's position: the client's own id when it resumes,
        // else the head of the history read now, before the subscription is registered,
        // so an event published in between is replayed after the welcome, not lost.
        let position = match cursor {
            Cursor::After(id) => id.to_owned(),
            Cursor::Live | Cursor::Earliest => {
                let head = replay_after.unwrap_or_else(|| {
                    let stats = hub.store.stats();
                    stats.newest.unwrap_or_else(|| hub.store.floor())
                });
                replay_after = Some(head);
                wire_id_text(head, None)
            }
        };
        welcome(&mut opening, &position);
    }
    let subscription = match hub.subscribe(selection.clone(), presence) {
        Ok(subscription) => Some(subscription),
        Err(SubscribeError::AllClosed) => {
            // The client may still be owed the events up to the closing one.
            let owed = replay_after
                .map(|after| has_events_after(&hub, after, &selection))
                .transpose()?;
            if owed != Some(true) {
                return Ok(Opened::NoContent);
            }
            None
        }
        Err(SubscribeError::TooManyTopics) => {
            return Err(ApiError::unavailable(hub.topic_limit_message(), 5));
        }
        Err(SubscribeError::TooManyConnections) => {
            return Err(ApiError::unavailable("too many connections", 5));
        }
        Err(SubscribeError::ShuttingDown) => {
            return Err(ApiError::unavailable("the hub is shutting down", 1));
        }
    };
    Ok(Opened::Stream(EventStream::new(
        hub.clone(),
        subscription,
        opening.into(),
        selection,
        replay_after,
    )))
}

/// Writes the reset control event into `opening` and returns where the replay starts: the
/// oldest event the store still has.
fn reset(hub: &Hub, opening: &mut Vec<u8>, reason: &str, sent: &str) -> EventId {
    let data = serde_json::json!({ "reason": reason, "lastEventId": sent }).to_string();
    encode_event(
        &Frame {
            event: Some(RESET_EVENT),
            data: &data,
            ..Frame::default()
        },
        opening,
    );
    hub.store.replay_start()
}

fn has_events_after(
    hub: &Hub,
    mut after: EventId,
    selection: &Selection,
) -> Result<bool, ApiError> {
    let filter = |e: &ssehub_core::Event| selection.selects(e);
    loop {
        let page = hub
            .store
            .read(after, &filter, 1024)
            .map_err(|e| ApiError::internal(&e))?;
        if !page.events.is_empty() {
            return Ok(true);
        }
        if page.at_head {
            return Ok(false);
        }
        after = page.through;
    }
}
