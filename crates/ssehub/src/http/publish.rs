//! `POST /publish` and `DELETE /topics/{topic}`: decode, validate, publish, answer.

use std::net::SocketAddr;
use std::sync::Arc;

use axum::extract::rejection::BytesRejection;
use axum::extract::{ConnectInfo, Path, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::Json;
use bytes::Bytes;
use serde_json::Value;
use ssehub_core::{EventName, NewEvent, StoreError, Topic, WireId};

use crate::auth;
use crate::form;
use crate::http::error::ApiError;
use crate::hub::{Hub, Published};
use crate::metrics::Metrics;

/// The event name of the final event a `DELETE /topics/{topic}` sends.
pub const CLOSE_EVENT: &str = "ssehub-close";

/// A publish request's fields before validation; JSON and form bodies both decode to it.
#[derive(Default, Debug)]
struct Fields {
    topics: Vec<String>,
    event: Option<String>,
    data: String,
    id: Option<String>,
    retry: Option<String>,
    close: bool,
    private: bool,
}

pub async fn publish(
    State(hub): State<Arc<Hub>>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<Json<Published>, ApiError> {
    // Auth first: a request without a valid token learns nothing about its body.
    let result = auth::publisher(&hub, peer, &headers, None)
        .map_err(ApiError::from)
        .and_then(|grants| {
            let new = decode(&hub, &headers, body).and_then(|fields| validate(&hub, fields))?;
            auth::check_publish(grants.as_ref(), &new.topics)?;
            Ok(new)
        });
    let new = result.inspect_err(|_| Metrics::add(&hub.metrics.publish_rejected, 1))?;
    publish_event(&hub, new).await
}

pub async fn close_topic(
    State(hub): State<Arc<Hub>>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    Path(topic): Path<String>,
) -> Result<Json<Published>, ApiError> {
    let grants = auth::publisher(&hub, peer, &headers, None)?;
    let topic = parse_topic(&topic)?;
    auth::check_publish(grants.as_ref(), std::slice::from_ref(&topic))?;
    let mut new = NewEvent::new(vec![topic], "");
    new.name = Some(EventName::new(CLOSE_EVENT).expect("valid name"));
    new.close = true;
    publish_event(&hub, new).await
}

async fn publish_event(hub: &Arc<Hub>, new: NewEvent) -> Result<Json<Published>, ApiError> {
    let published = hub.publish(new).await.map_err(|e| match e {
        StoreError::Unavailable(why) => {
            tracing::warn!(%why, "publish refused: store unavailable");
            ApiError::unavailable("the event store is unavailable; nothing was published", 1)
        }
        other => ApiError::internal(&other),
    })?;
    Ok(Json(published))
}

pub fn parse_topic(name: &str) -> Result<Topic, ApiError> {
    Topic::new(name).map_err(|e| ApiError::field("topic", format!("invalid topic {name:?}: {e}")))
}

fn decode(
    hub: &Hub,
    headers: &HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<Fields, ApiError> {
    let body = body.map_err(|rejection| {
        if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE {
            ApiError::new(
                StatusCode::PAYLOAD_TOO_LARGE,
                format!(
                    "request body is larger than {} bytes",
                    hub.config.max_payload
                ),
            )
        } else {
            ApiError::new(rejection.status(), rejection.body_text())
        }
    })?;
    let content_type = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .map(|v| {
            v.split(';')
                .next()
                .unwrap_or("")
                .trim()
                .to_ascii_lowercase()
        });
    match content_type.as_deref() {
        Some("application/json") => decode_json(&body),
        Some("application/x-www-form-urlencoded") => decode_form(&body),
        other => Err(ApiError::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            format!(
                "unsupported content type {:?}: send application/json or application/x-www-form-urlencoded",
                other.unwrap_or("")
            ),
        )),
    }
}

fn decode_json(body: &[u8]) -> Result<Fields, ApiError> {
    let text = std::str::from_utf8(body).map_err(|e| {
        ApiError::new(
            StatusCode::BAD_REQUEST,
            format!("body is not valid UTF-8: {e}"),
        )
    })?;
    let value: Value = serde_json::from_str(text)
        .map_err(|e| ApiError::new(StatusCode::BAD_REQUEST, format!("malformed JSON: {e}")))?;
    let Value::Object(mut map) = value else {
        return Err(ApiError::new(
            StatusCode::BAD_REQUEST,
            "body must be a JSON object",
        ));
    };
    let mut fields = Fields::default();
    match map.remove("topic") {
        None | Some(Value::Null) => {}
        Some(Value::String(t)) => fields.topics.push(t),
        Some(Value::Array(list)) => {
            for t in list {
                let Value::String(t) = t else {
                    return Err(ApiError::field(
                        "topic",
                        "topic must be a string or a list of strings",
                    ));
                };
                fields.topics.push(t);
            }
        }
        Some(_) => {
            return Err(ApiError::field(
                "topic",
                "topic must be a string or a list of strings",
            ))
        }
    }
    fields.event = json_text(map.remove("event"), "event")?;
    fields.id = json_text(map.remove("id"), "id")?;
    fields.retry = match map.remove("retry") {
        None | Some(Value::Null) => None,
        Some(Value::String(s)) => Some(s),
        Some(Value::Number(n)) => Some(n.to_string()),
        Some(_) => return Err(retry_error()),
    };
    fields.data = match map.remove("data") {
        None | Some(Value::Null) => String::new(),
        Some(Value::String(s)) => s,
        Some(other) => other.to_string(),
    };
    fields.close = match map.remove("close") {
        None | Some(Value::Null) | Some(Value::Bool(false)) => false,
        Some(Value::Bool(true)) => true,
        Some(_) => return Err(ApiError::field("close", "close must be true or false")),
    };
    fields.private = match map.remove("private") {
        None | Some(Value::Null) | Some(Value::Bool(false)) => false,
        Some(Value::Bool(true)) => true,
        Some(_) => return Err(ApiError::field("private", "private must be true or false")),
    };
    Ok(fields)
}

/// A string field that may also be given as a number.
fn json_text(value: Option<Value>, field: &'static str) -> Result<Option<String>, ApiError> {
    match value {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s)),
        Some(Value::Number(n)) => Ok(Some(n.to_string())),
        Some(_) => Err(ApiError::field(field, format!("{field} must be a string"))),
    }
}

fn decode_form(body: &[u8]) -> Result<Fields, ApiError> {
    let pairs =
        form::parse(body).map_err(|e| ApiError::new(StatusCode::BAD_REQUEST, e.to_string()))?;
    let mut fields = Fields::default();
    for (name, value) in pairs {
        match name.as_str() {
            "topic" => fields.topics.push(value),
            "event" => fields.event = Some(value),
            "data" => fields.data = value,
            "id" => fields.id = Some(value),
            "retry" => fields.retry = Some(value),
            "private" => {
                fields.private = match value.as_str() {
                    "true" | "1" | "on" | "" => true,
                    "false" | "0" => false,
                    _ => return Err(ApiError::field("private", "private must be true or false")),
                }
            }
            "close" => {
                fields.close = match value.as_str() {
                    "true" | "1" | "on" => true,
                    "false" | "0" | "" => false,
                    _ => return Err(ApiError::field("close", "close must be true or false")),
                }
            }
            _ => {}
        }
    }
    Ok(fields)
}

fn retry_error() -> ApiError {
    ApiError::field("retry", "retry must be a whole number of milliseconds")
}

fn validate(hub: &Hub, fields: Fields) -> Result<NewEvent, ApiError> {
    if fields.topics.is_empty() {
        return Err(ApiError::field("topic", "missing topic"));
    }
    if fields.topics.len() > hub.config.max_topics {
        return Err(ApiError::field(
            "topic",
            format!(
                "too many topics: at most {} per publish",
                hub.config.max_topics
            ),
        ));
    }
    let topics = fields
        .topics
        .iter()
        .map(|t| parse_topic(t))
        .collect::<Result<Vec<_>, _>>()?;
    let field_error = |e: ssehub_core::FieldError| ApiError::field(e.field, e.reason);
    let mut new = NewEvent::new(topics, fields.data);
    new.name = fields
        .event
        .as_deref()
        .map(EventName::new)
        .transpose()
        .map_err(field_error)?;
    new.custom_id = fields
        .id
        .as_deref()
        .map(WireId::new)
        .transpose()
        .map_err(field_error)?;
    new.retry = match fields.retry {
        None => None,
        Some(r) if !r.is_empty() && r.len() <= 12 && r.bytes().all(|b| b.is_ascii_digit()) => {
            Some(r.parse().map_err(|_| retry_error())?)
        }
        Some(_) => return Err(retry_error()),
    };
    new.close = fields.close;
    new.private = fields.private;
    Ok(new)
}

/// Fuzzing the publish decoder: any body, in either content type, is decoded and validated
/// without panicking, and what passes validation can go on the wire unchanged.
#[cfg(test)]
mod fuzz {
    use super::*;
    use crate::config::Config;
    use proptest::prelude::*;
    use ssehub_core::{MemoryStore, Retention};

    fn hub() -> Arc<Hub> {
        Hub::new(
            Config::default(),
            Arc::new(MemoryStore::new(Retention::events(1))),
        )
    }

    fn check(hub: &Hub, decoded: Result<Fields, ApiError>) {
        let Ok(fields) = decoded else { return };
        if let Ok(new) = validate(hub, fields) {
            assert!(!new.topics.is_empty() && new.topics.len() <= hub.config.max_topics);
            for name in new
                .name
                .iter()
                .map(EventName::as_str)
                .chain(new.custom_id.iter().map(WireId::as_str))
            {
                assert!(
                    !name.contains(['\r', '\n', '\0']),
                    "{name:?} would break the stream"
                );
            }
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(2000))]

        #[test]
        fn any_bytes_as_json_or_form(body in proptest::collection::vec(any::<u8>(), 0..512)) {
            let hub = hub();
            check(&hub, decode_json(&body));
            check(&hub, decode_form(&body));
        }

        #[test]
        fn json_shaped_bodies(
            topic in prop_oneof![Just(serde_json::json!("t")), any::<String>().prop_map(serde_json::Value::from), Just(serde_json::json!(["a", "b"])), Just(serde_json::json!(5))],
            event in proptest::option::of(any::<String>()),
            id in proptest::option::of(any::<String>()),
            retry in proptest::option::of(prop_oneof![any::<i64>().prop_map(serde_json::Value::from), any::<String>().prop_map(serde_json::Value::from), any::<f64>().prop_map(serde_json::Value::from)]),
            data in any::<String>(),
        ) {
            let body = serde_json::json!({"topic": topic, "event": event, "id": id, "retry": retry, "data": data});
            let hub = hub();
            check(&hub, decode_json(body.to_string().as_bytes()));
        }

        #[test]
        fn form_shaped_bodies(pairs in proptest::collection::vec(("(topic|event|id|retry|data|close|x)", any::<String>()), 0..8)) {
            let body: String = pairs
                .iter()
                .map(|(k, v)| format!("{k}={}", percent_encoding::utf8_percent_encode(v, percent_encoding::NON_ALPHANUMERIC)))
                .collect::<Vec<_>>()
                .join("&");
            let hub = hub();
            check(&hub, decode_form(body.as_bytes()));
        }
    }
}
