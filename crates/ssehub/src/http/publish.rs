//! `POST /publish` and `DELETE /topics/{topic}`: decode, validate, publish, answer.

use std::net::SocketAddr;
use std::sync::Arc;

use axum::extract::rejection::BytesRejection;
use axum::extract::{ConnectInfo, FromRequest, Path, Request, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use bytes::Bytes;
use ssehub_core::{EventName, NewEvent, StoreError, Topic, WireId};

use super::body::{decode, decode_json, decode_usual_batch, retry_error, Fields};
use crate::auth;
use crate::error::{disk_full, ApiError, DISK_FULL};
use crate::hub::{Hub, Published};
use crate::metrics::Metrics;

/// The event name of the final event a `DELETE /topics/{topic}` sends.
pub const CLOSE_EVENT: &str = "ssehub-close";

/// What a publish request carries: one event, or a batch.
enum Decoded {
    One(NewEvent),
    Many(Vec<NewEvent>),
}

pub async fn publish(
    State(hub): State<Arc<Hub>>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    request: Request,
) -> Result<Response, ApiError> {
    // The headers are moved out, not cloned as the `HeaderMap` extractor would; the body is
    // read whatever the outcome (as the `Bytes` extractor does), so the connection stays
    // usable after a refusal.
    let (mut parts, body) = request.into_parts();
    let headers = std::mem::take(&mut parts.headers);
    let body = Bytes::from_request(Request::from_parts(parts, body), &hub).await;
    // Auth first: a request without a valid token learns nothing about its body.
    let result = auth::publisher(&hub, peer, &headers, None)
        .map_err(ApiError::from)
        .and_then(|grants| {
            let body = body_bytes(&hub, body)?;
            if let Some(batch) = decode_batch(&hub, &headers, &body) {
                let batch = batch?;
                for new in &batch {
                    auth::check_publish(grants.as_ref(), &new.topics)?;
                }
                return Ok(Decoded::Many(batch));
            }
            let new = decode_valid(&hub, &headers, &body)?;
            auth::check_publish(grants.as_ref(), &new.topics)?;
            Ok(Decoded::One(new))
        });
    match result.inspect_err(|_| Metrics::add(&hub.metrics.publish_rejected, 1))? {
        Decoded::One(new) => publish_event(&hub, new)
            .await
            .map(IntoResponse::into_response),
        Decoded::Many(batch) => {
            let published = hub.publish_many(batch).await.map_err(store_refusal)?;
            Ok(batch_answer(&published))
        }
    }
}

/// A batch publish body, decoded and validated into its events; `None` when the body is
/// one publish. A batch is a JSON array of publish objects (`application/json`), or
/// `application/x-ndjson` with one publish object per line. Every event is checked before
/// any is published: the first bad one refuses the whole batch, naming its position.
fn decode_batch(
    hub: &Hub,
    headers: &HeaderMap,
    body: &[u8],
) -> Option<Result<Vec<NewEvent>, ApiError>> {
    let content_type = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .map(|v| v.split(';').next().unwrap_or("").trim());
    match content_type {
        Some(t) if t.eq_ignore_ascii_case("application/x-ndjson") => {
            let lines = body
                .split(|b| *b == b'\n')
                .map(|line| line.strip_suffix(b"\r").unwrap_or(line))
                .filter(|line| !line.iter().all(u8::is_ascii_whitespace));
            Some(validate_batch(hub, lines.map(decode_json)))
        }
        Some(t)
            if t.eq_ignore_ascii_case("application/json")
                && body.trim_ascii_start().starts_with(b"[") =>
        {
            // The usual batch in one pass; anything else (and every error) the general way.
            if let Some(all) = decode_usual_batch(body) {
                return Some(validate_batch(hub, all.into_iter().map(Ok)));
            }
            Some(
                decode_batch_general(body)
                    .and_then(|items| validate_batch(hub, items.into_iter().map(decode_json))),
            )
        }
        _ => None,
    }
}

/// The general way for a JSON batch: split into raw items, each then decoded on its own.
fn decode_batch_general(body: &[u8]) -> Result<Vec<&[u8]>, ApiError> {
    serde_json::from_slice::<Vec<&serde_json::value::RawValue>>(body)
        .map(|raw| raw.into_iter().map(|r| r.get().as_bytes()).collect())
        .map_err(|e| {
            ApiError::new(
                StatusCode::BAD_REQUEST,
                format!("malformed JSON batch: {e}"),
            )
        })
}

/// For the fuzz target and the property tests: the one-pass batch decoder gives the general
/// way's fields for every body it takes. Panics where the two differ.
pub(crate) fn check_batch_decoders(body: &[u8]) {
    let Some(one_pass) = decode_usual_batch(body) else {
        return;
    };
    let general = decode_batch_general(body)
        .unwrap_or_else(|e| panic!("{body:?}: taken by the one-pass decoder only: {e:?}"));
    assert_eq!(one_pass.len(), general.len(), "{body:?}");
    for (fields, item) in one_pass.iter().zip(general) {
        let general = decode_json(item)
            .unwrap_or_else(|e| panic!("{item:?}: taken by the one-pass decoder only: {e:?}"));
        assert_eq!(*fields, general, "{body:?}");
    }
}

/// Validates a batch's decoded events in order; the first bad one refuses the batch, its
/// position named.
fn validate_batch<'a>(
    hub: &Hub,
    items: impl Iterator<Item = Result<Fields<'a>, ApiError>>,
) -> Result<Vec<NewEvent>, ApiError> {
    let batch = items
        .enumerate()
        .map(|(i, item)| {
            item.and_then(|fields| validate(hub, fields))
                .map_err(|mut e| {
                    e.message = format!("event {i} of the batch: {}", e.message);
                    e
                })
        })
        .collect::<Result<Vec<_>, _>>()?;
    if batch.is_empty() {
        return Err(ApiError::new(
            StatusCode::BAD_REQUEST,
            "an empty batch: send one or more publish objects",
        ));
    }
    Ok(batch)
}

/// The answer to a batch: `[{"id", "delivered"}, ...]`, written into a buffer of its final
/// size (the ids' lengths are known; a custom id that needs escaping grows it once).
fn batch_answer(published: &[Published]) -> Response {
    const FRAME: usize = r#"{"id":"","delivered":},"#.len();
    let size = 2 + published
        .iter()
        .map(|p| FRAME + p.id.len() + p.delivered.checked_ilog10().unwrap_or(0) as usize + 1)
        .sum::<usize>();
    let mut body = Vec::with_capacity(size);
    serde_json::to_writer(&mut body, published).expect("a list of ids and counts serializes");
    (
        [(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        )],
        Bytes::from(body),
    )
        .into_response()
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
    publish_new(hub, new).await.map(Json)
}

/// Publishes `new`, a store failure worded for the client.
pub(crate) async fn publish_new(hub: &Arc<Hub>, new: NewEvent) -> Result<Published, ApiError> {
    hub.publish(new).await.map_err(store_refusal)
}

/// A store failure worded for the client.
fn store_refusal(e: StoreError) -> ApiError {
    match e {
        StoreError::Unavailable(why) => {
            tracing::warn!(%why, "publish refused: store unavailable");
            ApiError::unavailable("the event store is unavailable; nothing was published", 1)
        }
        StoreError::Full(why) => {
            tracing::warn!(%why, "publish refused at a capacity limit");
            ApiError::unavailable(why, 5)
        }
        other if disk_full(&other) => {
            tracing::error!(error = %other, "publish refused: the store's disk is full");
            ApiError::unavailable(DISK_FULL, 5)
        }
        other => ApiError::internal(&other),
    }
}

pub fn parse_topic(name: &str) -> Result<Topic, ApiError> {
    Topic::new(name).map_err(|e| ApiError::field("topic", format!("invalid topic {name:?}: {e}")))
}

/// The request body, or the 413 (over `max_payload`) or 400 that reading it gave.
pub(crate) fn body_bytes(
    hub: &Hub,
    body: Result<Bytes, BytesRejection>,
) -> Result<Bytes, ApiError> {
    body.map_err(|rejection| {
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
    })
}

/// A publish body decoded (by its content type) and validated into the event it publishes.
pub(crate) fn decode_valid(
    hub: &Hub,
    headers: &HeaderMap,
    body: &[u8],
) -> Result<NewEvent, ApiError> {
    decode(headers, body).and_then(|fields| validate(hub, fields))
}

fn validate(hub: &Hub, fields: Fields<'_>) -> Result<NewEvent, ApiError> {
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
    use crate::http::body::{decode_form, decode_json_value, Usual};
    use proptest::prelude::*;
    use ssehub_core::{MemoryStore, Retention};

    fn hub() -> Arc<Hub> {
        Hub::new(
            Config::default(),
            Arc::new(MemoryStore::new(Retention::events(1))),
        )
    }

    fn check(hub: &Hub, decoded: Result<Fields<'_>, ApiError>) {
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

    /// The one-pass decoder gives the general decoder's fields for every body it takes.
    fn same_as_general(body: &[u8]) {
        let Ok(text) = std::str::from_utf8(body) else {
            return;
        };
        if let Ok(Usual(fields)) = serde_json::from_str::<Usual<'_>>(text) {
            let general = decode_json_value(text)
                .unwrap_or_else(|e| panic!("{text:?}: taken by one decoder only: {e:?}"));
            assert_eq!(fields, general, "{text:?}");
        }
    }

    #[test]
    fn usual_bodies_decode_as_the_general_decoder_does() {
        let taken = [
            r#"{"topic":"a","data":"x"}"#,
            r#"{"topic":["a","b"],"data":"x\ny","event":"e","id":"i","retry":"5"}"#,
            r#"{"topic":"a","topic":"b","data":null,"close":true,"private":false}"#,
            r#"{"to\u0070ic":"\u00e9t\u00e9","extra":{"deep":[1,2.5,null]},"close":null}"#,
            r#"{"topic":null}"#,
            r#"{}"#,
        ];
        for body in taken {
            assert!(serde_json::from_str::<Usual<'_>>(body).is_ok(), "{body}");
            same_as_general(body.as_bytes());
        }
        // Shapes left to the general decoder: it accepts some (numbers as text, JSON as
        // data) and refuses others, with the messages the tests of bad input check.
        let left = [
            r#"{"topic":"a","id":5,"retry":10}"#,
            r#"{"topic":"a","data":{"b":1,"a":2}}"#,
            r#"{"topic":"a","close":"yes"}"#,
            r#"{"topic":5}"#,
            r#"{"topic":"a","x":1e400}"#,
            r#"["a"]"#,
            r#"{"topic":"a""#,
            r#"{"topic":"a"} x"#,
        ];
        for body in left {
            assert!(serde_json::from_str::<Usual<'_>>(body).is_err(), "{body}");
        }
        let fields = decode_json(br#"{"topic":"a","data":{"b":1,"a":2},"id":5}"#).unwrap();
        assert_eq!(fields.data, serde_json::json!({"b": 1, "a": 2}).to_string());
        assert_eq!(fields.id.as_deref(), Some("5"));
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(2000))]

        #[test]
        fn any_bytes_as_json_or_form(body in proptest::collection::vec(any::<u8>(), 0..512)) {
            let hub = hub();
            same_as_general(&body);
            check_batch_decoders(&body);
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
            same_as_general(body.to_string().as_bytes());
            check(&hub, decode_json(body.to_string().as_bytes()));
        }

        /// Arrays of objects of the usual shape and others (numbers as text, JSON data,
        /// escapes, unknown keys, a bad item), so both ways of decoding a batch are taken.
        #[test]
        fn batch_shaped_bodies(items in proptest::collection::vec(prop_oneof![
            any::<String>().prop_map(|d| serde_json::json!({"topic": "t", "data": d})),
            any::<String>().prop_map(|t| serde_json::json!({"topic": [t, "b"], "event": "e", "id": "i\"q"})),
            any::<i64>().prop_map(|n| serde_json::json!({"topic": "t", "id": n, "retry": n})),
            Just(serde_json::json!({"topic": "t", "data": {"b": [1, 2.5, null]}, "x": {"y": 1}})),
            Just(serde_json::json!({"topic": 5})),
            Just(serde_json::json!(["t"])),
            Just(serde_json::json!({"topic": "t\n", "close": true, "private": null})),
        ], 0..8), spaces in any::<bool>()) {
            let list = serde_json::Value::Array(items);
            let body = if spaces { serde_json::to_string_pretty(&list) } else { serde_json::to_string(&list) };
            let body = body.unwrap();
            check_batch_decoders(body.as_bytes());
            let hub = hub();
            let mut headers = HeaderMap::new();
            headers.insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
            let _ = decode_batch(&hub, &headers, body.as_bytes());
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
