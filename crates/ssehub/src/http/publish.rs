//! `POST /publish` and `DELETE /topics/{topic}`: decode, validate, publish, answer.

use std::borrow::Cow;
use std::fmt;
use std::net::SocketAddr;
use std::sync::Arc;

use axum::extract::rejection::BytesRejection;
use axum::extract::{ConnectInfo, FromRequest, Path, Request, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use bytes::Bytes;
use serde::de::{self, Deserialize, Deserializer, MapAccess, SeqAccess, Visitor};
use serde_json::Value;
use ssehub_core::{EventName, NewEvent, StoreError, Topic, WireId};

use crate::auth;
use crate::error::{disk_full, ApiError, DISK_FULL};
use crate::form;
use crate::hub::{Hub, Published};
use crate::metrics::Metrics;

/// The event name of the final event a `DELETE /topics/{topic}` sends.
pub const CLOSE_EVENT: &str = "ssehub-close";

/// A publish request's fields before validation; JSON and form bodies both decode to it.
/// Text borrows from the body where it can (a JSON string without escapes).
#[derive(Default, Debug, PartialEq, Eq)]
struct Fields<'a> {
    topics: Vec<Cow<'a, str>>,
    event: Option<Cow<'a, str>>,
    data: Cow<'a, str>,
    id: Option<Cow<'a, str>>,
    retry: Option<Cow<'a, str>>,
    close: bool,
    private: bool,
}

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
            Ok(Json(published).into_response())
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
        .map(|v| {
            v.split(';')
                .next()
                .unwrap_or("")
                .trim()
                .to_ascii_lowercase()
        });
    let items: Result<Vec<&[u8]>, ApiError> = match content_type.as_deref() {
        Some("application/x-ndjson") => Ok(body
            .split(|b| *b == b'\n')
            .map(|line| line.strip_suffix(b"\r").unwrap_or(line))
            .filter(|line| !line.iter().all(u8::is_ascii_whitespace))
            .collect()),
        Some("application/json") if body.trim_ascii_start().starts_with(b"[") => {
            serde_json::from_slice::<Vec<&serde_json::value::RawValue>>(body)
                .map(|raw| raw.into_iter().map(|r| r.get().as_bytes()).collect())
                .map_err(|e| {
                    ApiError::new(
                        StatusCode::BAD_REQUEST,
                        format!("malformed JSON batch: {e}"),
                    )
                })
        }
        _ => return None,
    };
    Some(items.and_then(|items| {
        if items.is_empty() {
            return Err(ApiError::new(
                StatusCode::BAD_REQUEST,
                "an empty batch: send one or more publish objects",
            ));
        }
        items
            .into_iter()
            .enumerate()
            .map(|(i, item)| {
                decode_json(item)
                    .and_then(|fields| validate(hub, fields))
                    .map_err(|mut e| {
                        e.message = format!("event {i} of the batch: {}", e.message);
                        e
                    })
            })
            .collect()
    }))
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

fn decode<'a>(headers: &HeaderMap, body: &'a [u8]) -> Result<Fields<'a>, ApiError> {
    let content_type = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .map(|v| v.split(';').next().unwrap_or("").trim());
    match content_type {
        Some(t) if t.eq_ignore_ascii_case("application/json") => decode_json(body),
        Some(t) if t.eq_ignore_ascii_case("application/x-www-form-urlencoded") => {
            decode_form(body)
        }
        other => Err(ApiError::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            format!(
                "unsupported content type {:?}: send application/json or application/x-www-form-urlencoded",
                other.unwrap_or("").to_ascii_lowercase()
            ),
        )),
    }
}

fn decode_json(body: &[u8]) -> Result<Fields<'_>, ApiError> {
    let text = std::str::from_utf8(body).map_err(|e| {
        ApiError::new(
            StatusCode::BAD_REQUEST,
            format!("body is not valid UTF-8: {e}"),
        )
    })?;
    // The usual body in one pass, without a `Value` tree; anything else (and every error)
    // goes the general way below, which decides and words it.
    if let Ok(Usual(fields)) = serde_json::from_str::<Usual<'_>>(text) {
        return Ok(fields);
    }
    decode_json_value(text)
}

/// The general JSON decoder: the body as a `Value`, then field by field. Numbers are
/// accepted for the text fields, and any JSON for `data` (sent as its compact text).
fn decode_json_value(text: &str) -> Result<Fields<'static>, ApiError> {
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
        Some(Value::String(t)) => fields.topics.push(t.into()),
        Some(Value::Array(list)) => {
            for t in list {
                let Value::String(t) = t else {
                    return Err(ApiError::field(
                        "topic",
                        "topic must be a string or a list of strings",
                    ));
                };
                fields.topics.push(t.into());
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
        Some(Value::String(s)) => Some(s.into()),
        Some(Value::Number(n)) => Some(n.to_string().into()),
        Some(_) => return Err(retry_error()),
    };
    fields.data = match map.remove("data") {
        None | Some(Value::Null) => Cow::Borrowed(""),
        Some(Value::String(s)) => s.into(),
        Some(other) => other.to_string().into(),
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
fn json_text(
    value: Option<Value>,
    field: &'static str,
) -> Result<Option<Cow<'static, str>>, ApiError> {
    match value {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s.into())),
        Some(Value::Number(n)) => Ok(Some(n.to_string().into())),
        Some(_) => Err(ApiError::field(field, format!("{field} must be a string"))),
    }
}

/// A JSON publish body of the usual shape, decoded in one pass with its strings borrowed:
/// `topic` a string, a list of strings or null; `event`, `id`, `retry`, `data` strings or
/// null; `close`, `private` booleans or null; other keys anything; a repeated key counts
/// once, its last value (as in a `Value` object). Any other shape fails, and the caller
/// falls back to [`decode_json_value`], so both give the same fields for any body.
struct Usual<'a>(Fields<'a>);

impl<'de> Deserialize<'de> for Usual<'de> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_map(UsualVisitor)
    }
}

struct UsualVisitor;

impl<'de> Visitor<'de> for UsualVisitor {
    type Value = Usual<'de>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a publish object")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Usual<'de>, A::Error> {
        let mut fields = Fields::default();
        while let Some(key) = map.next_key::<Text<'de>>()? {
            match &*key.0 {
                "topic" => fields.topics = map.next_value::<Topics<'de>>()?.0,
                "event" => fields.event = map.next_value::<Option<Text<'de>>>()?.map(|t| t.0),
                "id" => fields.id = map.next_value::<Option<Text<'de>>>()?.map(|t| t.0),
                "retry" => fields.retry = map.next_value::<Option<Text<'de>>>()?.map(|t| t.0),
                "data" => {
                    fields.data = map
                        .next_value::<Option<Text<'de>>>()?
                        .map_or(Cow::Borrowed(""), |t| t.0);
                }
                "close" => fields.close = map.next_value::<Option<bool>>()?.unwrap_or(false),
                "private" => fields.private = map.next_value::<Option<bool>>()?.unwrap_or(false),
                // Parsed as the general decoder does, so a body one refuses the other does.
                _ => drop(map.next_value::<Value>()?),
            }
        }
        Ok(Usual(fields))
    }
}

/// A JSON string, borrowed from the body when it holds no escapes.
struct Text<'a>(Cow<'a, str>);

impl<'de> Deserialize<'de> for Text<'de> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_str(TextVisitor)
    }
}

struct TextVisitor;

impl<'de> Visitor<'de> for TextVisitor {
    type Value = Text<'de>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a string")
    }

    fn visit_borrowed_str<E: de::Error>(self, v: &'de str) -> Result<Text<'de>, E> {
        Ok(Text(Cow::Borrowed(v)))
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<Text<'de>, E> {
        Ok(Text(Cow::Owned(v.to_owned())))
    }

    fn visit_string<E: de::Error>(self, v: String) -> Result<Text<'de>, E> {
        Ok(Text(Cow::Owned(v)))
    }
}

/// `topic`: a string, a list of strings, or null (none).
struct Topics<'a>(Vec<Cow<'a, str>>);

impl<'de> Deserialize<'de> for Topics<'de> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_any(TopicsVisitor)
    }
}

struct TopicsVisitor;

impl<'de> Visitor<'de> for TopicsVisitor {
    type Value = Topics<'de>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a topic or a list of topics")
    }

    fn visit_unit<E: de::Error>(self) -> Result<Topics<'de>, E> {
        Ok(Topics(Vec::new()))
    }

    fn visit_borrowed_str<E: de::Error>(self, v: &'de str) -> Result<Topics<'de>, E> {
        Ok(Topics(vec![Cow::Borrowed(v)]))
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<Topics<'de>, E> {
        Ok(Topics(vec![Cow::Owned(v.to_owned())]))
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Topics<'de>, A::Error> {
        let mut topics = Vec::with_capacity(seq.size_hint().unwrap_or(1));
        while let Some(t) = seq.next_element::<Text<'de>>()? {
            topics.push(t.0);
        }
        Ok(Topics(topics))
    }
}

fn decode_form(body: &[u8]) -> Result<Fields<'static>, ApiError> {
    let pairs =
        form::parse(body).map_err(|e| ApiError::new(StatusCode::BAD_REQUEST, e.to_string()))?;
    let mut fields = Fields::default();
    for (name, value) in pairs {
        match name.as_str() {
            "topic" => fields.topics.push(value.into()),
            "event" => fields.event = Some(value.into()),
            "data" => fields.data = value.into(),
            "id" => fields.id = Some(value.into()),
            "retry" => fields.retry = Some(value.into()),
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
