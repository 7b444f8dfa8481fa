//! `POST /.well-known/mercure`: a Mercure publish (form-encoded `topic`, `data`, `private`,
//! `id`, `type`, `retry`), answered `200 text/plain` with the event id.

use std::net::SocketAddr;
use std::sync::Arc;

use axum::extract::rejection::BytesRejection;
use axum::extract::{ConnectInfo, RawQuery, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use ssehub_core::{EventName, NewEvent, StoreError, WireId};

use crate::error::DISK_FULL;

use super::{check_text, to_topic, MercureError, HUB_PATH};
use crate::auth;
use crate::config::Dialect;
use crate::form;
use crate::hub::Hub;
use crate::metrics::Metrics;

pub async fn publish(
    State(hub): State<Arc<Hub>>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    let dialect = hub.config.mercure_dialect;
    // Dialect 0 also takes the token from the `authorization` query parameter.
    let query_token = match (dialect, query) {
        (Dialect::V0, Some(q)) => form::parse(q.as_bytes())
            .ok()
            .and_then(|pairs| pairs.into_iter().find(|(n, _)| n == "authorization"))
            .map(|(_, v)| v),
        _ => None,
    };
    let new = match decode(&hub, peer, &headers, query_token.as_deref(), body, dialect) {
        Ok(new) => new,
        Err(error) => {
            Metrics::add(&hub.metrics.publish_rejected, 1);
            return error
                .with_resource_metadata(&headers, dialect)
                .into_response();
        }
    };
    match hub.publish(new).await {
        Ok(published) => (
            StatusCode::OK,
            [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
            published.id,
        )
            .into_response(),
        Err(StoreError::Unavailable(why)) => {
            MercureError::new(StatusCode::SERVICE_UNAVAILABLE, why).into_response()
        }
        Err(StoreError::Full(why)) => {
            let mut response =
                MercureError::new(StatusCode::SERVICE_UNAVAILABLE, why).into_response();
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, header::HeaderValue::from(5));
            response
        }
        Err(e) if crate::error::disk_full(&e) => {
            tracing::error!(error = %e, "publish refused: the store's disk is full");
            let mut response =
                MercureError::new(StatusCode::SERVICE_UNAVAILABLE, DISK_FULL).into_response();
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, header::HeaderValue::from(5));
            response
        }
        Err(e) => {
            tracing::error!(error = %e, "publish failed");
            MercureError::new(StatusCode::INTERNAL_SERVER_ERROR, "internal error").into_response()
        }
    }
}

pub(crate) fn decode(
    hub: &Hub,
    peer: SocketAddr,
    headers: &HeaderMap,
    query_token: Option<&str>,
    body: Result<Bytes, BytesRejection>,
    dialect: Dialect,
) -> Result<NewEvent, MercureError> {
    let body = body.map_err(|rejection| {
        let status = rejection.status();
        if status == StatusCode::PAYLOAD_TOO_LARGE {
            MercureError::new(
                status,
                format!(
                    "request body is larger than {} bytes",
                    hub.config.max_payload
                ),
            )
        } else {
            MercureError::new(status, rejection.body_text())
        }
    })?;
    let content_type = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .map(|v| v.trim().to_ascii_lowercase());
    if content_type.as_deref() != Some("application/x-www-form-urlencoded") {
        return Err(MercureError::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "a Mercure publish is application/x-www-form-urlencoded",
        ));
    }
    let pairs = form::parse(&body).map_err(|e| MercureError::bad_request(e.to_string()))?;
    let grants = auth::publisher(hub, peer, headers, query_token)
        .map_err(|e| MercureError::auth(e, dialect))?;

    let mut topics = Vec::new();
    let mut data = String::new();
    let mut private = false;
    let mut id = None;
    let mut kind = None;
    let mut retry = None;
    for (name, value) in pairs {
        match name.as_str() {
            "topic" => topics.push(value),
            "data" => data = value,
            "private" => private = true,
            "id" => id = Some(value),
            "type" => kind = Some(value),
            "retry" => retry = Some(value),
            _ => {}
        }
    }
    if topics.is_empty() {
        return Err(MercureError::bad_request("missing \"topic\" parameter"));
    }
    if topics.len() > hub.config.max_topics {
        return Err(MercureError::bad_request(format!(
            "too many topics: at most {} per publish",
            hub.config.max_topics
        )));
    }
    let mut hub_topics = Vec::with_capacity(topics.len());
    for topic in &topics {
        if topic == "*" {
            return Err(MercureError::bad_request("\"*\" cannot be published to"));
        }
        if is_reserved(topic) {
            return Err(MercureError::bad_request(format!(
                "topic {topic:?} is in the hub's reserved namespace {HUB_PATH}"
            )));
        }
        hub_topics.push(to_topic(topic).map_err(MercureError::bad_request)?);
    }
    auth::check_publish(grants.as_ref(), &hub_topics)
        .map_err(|e| MercureError::auth(e, dialect))?;

    let mut new = NewEvent::new(hub_topics, data);
    new.private = private;
    if let Some(id) = id {
        if id.starts_with('#') || id == super::subscribe::EARLIEST {
            return Err(MercureError::bad_request(
                "id must not start with '#' and must not be \"earliest\"",
            ));
        }
        check_text(&id).map_err(MercureError::bad_request)?;
        new.custom_id =
            Some(WireId::new(&id).map_err(|e| MercureError::bad_request(e.to_string()))?);
    }
    if let Some(kind) = kind {
        if kind == "mercure" && dialect == Dialect::V1 {
            return Err(MercureError::bad_request("type \"mercure\" is reserved"));
        }
        new.name =
            Some(EventName::new(&kind).map_err(|e| MercureError::bad_request(e.to_string()))?);
    }
    if let Some(retry) = retry {
        let valid =
            !retry.is_empty() && retry.len() <= 12 && retry.bytes().all(|b| b.is_ascii_digit());
        if !valid {
            return Err(MercureError::bad_request(
                "retry must be ASCII digits (milliseconds)",
            ));
        }
        new.retry = retry.parse().ok();
    }
    Ok(new)
}

/// Whether `topic` resolves to the hub's path or below it: only the hub publishes there
/// (subscription events).
fn is_reserved(topic: &str) -> bool {
    let path = match topic.split_once("://") {
        Some((_, rest)) => rest.find('/').map_or("", |i| &rest[i..]),
        None => topic,
    };
    let decoded = percent_encoding::percent_decode_str(path).decode_utf8_lossy();
    let mut segments: Vec<&str> = Vec::new();
    for segment in decoded.split(['?', '#']).next().unwrap_or("").split('/') {
        match segment {
            "." | "" => {}
            ".." => {
                segments.pop();
            }
            s => segments.push(s),
        }
    }
    segments.len() >= 2 && segments[0] == ".well-known" && segments[1] == "mercure"
}

#[cfg(test)]
mod tests {
    use super::is_reserved;

    #[test]
    fn reserved_namespace() {
        assert!(is_reserved("/.well-known/mercure/subscriptions/a/b"));
        assert!(is_reserved("https://hub.example/.well-known/mercure"));
        assert!(is_reserved(
            "https://hub.example/x/../.well-known/%6Dercure/y"
        ));
        assert!(!is_reserved("https://example.com/books/1"));
        assert!(!is_reserved("/.well-known/other"));
    }
}
