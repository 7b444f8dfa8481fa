//! `GET /.well-known/mercure`: a Mercure subscription, opened through the hub's shared
//! stream code (`open_selection`), so replay, the live seam, heartbeats, limits and
//! slow-subscriber handling are the native API's.

use std::sync::Arc;

use axum::body::Body;
use axum::extract::{RawQuery, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode};
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use ssehub_core::Locate;

use super::{new_urn_uuid, to_topic, MatchKind, MercureError, SubscriberInfo};
use crate::auth;
use crate::config::Dialect;
use crate::form;
use crate::hub::Hub;
use crate::open::{open_selection, Cursor, Opened};
use crate::selection::Selection;
use crate::selector::{matcher_at, UriTemplate, MAX_TEMPLATE_LEN};

/// The reserved cursor that asks for the whole retained history.
pub const EARLIEST: &str = "earliest";

pub async fn subscribe(
    State(hub): State<Arc<Hub>>,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
) -> Response {
    match open(&hub, query.as_deref(), &headers) {
        Ok(response) => response,
        Err(error) => error
            .with_resource_metadata(&headers, hub.config.mercure_dialect)
            .into_response(),
    }
}

/// Dialect 1 also subscribes with the `QUERY` method: the parameters are form-encoded in the
/// body, joined with the query string's (whose `last_event_id` wins).
pub async fn subscribe_query(
    State(hub): State<Arc<Hub>>,
    method: Method,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    if method.as_str() != "QUERY" || hub.config.mercure_dialect != Dialect::V1 {
        return MercureError::new(StatusCode::METHOD_NOT_ALLOWED, "method not allowed")
            .into_response();
    }
    let Ok(body) = std::str::from_utf8(&body) else {
        return MercureError::bad_request("the QUERY body is not UTF-8").into_response();
    };
    // Later pairs win: the body first, then the query string.
    let joined = match query.as_deref().filter(|q| !q.is_empty()) {
        Some(q) if !body.is_empty() => format!("{body}&{q}"),
        Some(q) => q.to_owned(),
        None => body.to_owned(),
    };
    match open(&hub, Some(&joined), &headers) {
        Ok(response) => response,
        Err(error) => error
            .with_resource_metadata(&headers, Dialect::V1)
            .into_response(),
    }
}

/// The headers of a Mercure stream (the reference hub's), beside the cursor header.
pub const MERCURE_STREAM_HEADERS: [(&str, &str); 3] = [
    ("content-type", "text/event-stream"),
    (
        "cache-control",
        "private, no-cache, no-store, must-revalidate, max-age=0",
    ),
    ("x-accel-buffering", "no"),
];

/// A subscription opened, before it is answered: by the axum route ([`open`]) or by the
/// direct stream path (`server/direct.rs`), so both answer alike.
pub(crate) struct MercureOpened {
    pub opened: Opened,
    /// The cursor header (`Last-Event-ID`, or `Mercure-Last-Event-ID` in dialect 1) and
    /// its value, when the request carried a cursor.
    pub cursor: Option<(&'static str, String)>,
}

pub(crate) fn open(
    hub: &Arc<Hub>,
    query: Option<&str>,
    headers: &HeaderMap,
) -> Result<Response, MercureError> {
    let MercureOpened { opened, cursor } = open_stream(hub, query, headers)?;
    let mut response = match opened {
        Opened::NoContent => StatusCode::NO_CONTENT.into_response(),
        Opened::Stream(stream) => {
            let mut response = Body::new(stream).into_response();
            for (name, value) in MERCURE_STREAM_HEADERS {
                response
                    .headers_mut()
                    .insert(name, HeaderValue::from_static(value));
            }
            response
        }
    };
    if let Some((name, value)) = cursor {
        if let Ok(value) = HeaderValue::from_str(&value) {
            response.headers_mut().insert(name, value);
        }
    }
    Ok(response)
}

/// Decodes a subscription request (selectors, token, cursor) and opens its stream.
pub(crate) fn open_stream(
    hub: &Arc<Hub>,
    query: Option<&str>,
    headers: &HeaderMap,
) -> Result<MercureOpened, MercureError> {
    let dialect = hub.config.mercure_dialect;
    let pairs = form::parse(query.unwrap_or("").as_bytes())
        .map_err(|e| MercureError::bad_request(e.to_string()))?;
    let mut selectors: Vec<(MatchKind, String)> = Vec::new();
    let mut query_cursor = None;
    let mut query_token = None;
    for (name, value) in pairs {
        match (dialect, name.as_str()) {
            (Dialect::V0, "topic") => selectors.push((MatchKind::Topic, value)),
            (Dialect::V0, "lastEventID" | "Last-Event-ID" | "Last-Event-Id") => {
                query_cursor = Some(value)
            }
            (Dialect::V0, "authorization") => query_token = Some(value),
            (Dialect::V1, "match" | "match_exact") => selectors.push((MatchKind::Exact, value)),
            (Dialect::V1, "match_urlpattern") => selectors.push((MatchKind::UrlPattern, value)),
            (Dialect::V1, "last_event_id") => query_cursor = Some(value),
            (Dialect::V1, other) if other.to_ascii_lowercase().starts_with("match") => {
                return Err(MercureError::bad_request(format!(
                    "unknown matcher parameter {other:?}: use match, match_exact or match_urlpattern"
                )))
            }
            _ => {}
        }
    }
    if selectors.is_empty() {
        return Err(MercureError::bad_request(match dialect {
            Dialect::V0 => "missing \"topic\" parameter",
            Dialect::V1 => "missing \"match\" parameter",
        }));
    }
    if selectors.len() > hub.config.max_topics {
        return Err(MercureError::bad_request(format!(
            "too many topic selectors: at most {} per subscription",
            hub.config.max_topics
        )));
    }
    let grants = auth::subscriber(hub, headers, query_token.as_deref())
        .map_err(|e| MercureError::auth(e, dialect))?;

    let mut selection = Selection::default();
    let base = auth::audience(&hub.config, headers)
        .and_then(|aud| aud.strip_suffix(super::HUB_PATH).map(str::to_owned));
    for (kind, selector) in &selectors {
        add_selector(&mut selection, *kind, selector, base.as_deref())?;
    }
    if let Some(grants) = &grants {
        selection.private = grants.private_access();
    }
    selection.set_deadline(auth::deadline(&hub.config, grants.as_ref()));
    selection.hook = Some(Arc::new(SubscriberInfo {
        id: new_urn_uuid(),
        selectors,
        payload: grants.and_then(|g| g.payload),
        dialect,
    }));

    let header_cursor = headers
        .get("last-event-id")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    let cursor = header_cursor.or(query_cursor);
    let (replay_from, answer) = match cursor.as_deref() {
        None => (Cursor::Live, None),
        // An empty cursor is no cursor (as EventSource and the reference hub treat it).
        Some("") => (Cursor::Live, None),
        // Everything retained, without a reset, even when retention classes trimmed
        // different topics to different points.
        Some(EARLIEST) => (Cursor::Earliest, Some(EARLIEST)),
        Some(id) => {
            let found = matches!(
                hub.store.locate_for(id, selection.scope()),
                Ok(Locate::Found(_))
            );
            (Cursor::After(id), Some(if found { id } else { EARLIEST }))
        }
    };
    let opened = open_selection(hub.clone(), Arc::new(selection), replay_from, false)
        .map_err(MercureError::from_api)?;
    let name = match dialect {
        Dialect::V0 => "last-event-id",
        Dialect::V1 => "mercure-last-event-id",
    };
    Ok(MercureOpened {
        opened,
        cursor: answer.map(|a| (name, a.to_owned())),
    })
}

fn add_selector(
    selection: &mut Selection,
    kind: MatchKind,
    selector: &str,
    base: Option<&str>,
) -> Result<(), MercureError> {
    if selector.len() > MAX_TEMPLATE_LEN {
        return Err(MercureError::bad_request(format!(
            "topic selector is longer than {MAX_TEMPLATE_LEN} bytes"
        )));
    }
    super::check_text(selector).map_err(MercureError::bad_request)?;
    let is_pattern = selector == "*"
        || kind == MatchKind::UrlPattern
        || (kind == MatchKind::Topic && matches!(UriTemplate::parse(selector), Ok(Some(_))));
    if is_pattern {
        let pattern = matcher_at(selector, kind, base).map_err(MercureError::bad_request)?;
        selection.patterns.push(pattern);
        return Ok(());
    }
    let topic = to_topic(selector).map_err(MercureError::bad_request)?;
    if !selection.topics.contains(&topic) {
        selection.topics.push(topic);
    }
    Ok(())
}
