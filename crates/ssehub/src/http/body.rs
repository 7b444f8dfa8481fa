//! Publish bodies into fields: JSON (the usual shape in one borrowing pass, anything else
//! through a `Value`) and urlencoded forms. Validation into an event is `publish.rs`'s.

use std::borrow::Cow;
use std::fmt;

use axum::http::{header, HeaderMap, StatusCode};
use serde::de::{self, Deserialize, Deserializer, MapAccess, SeqAccess, Visitor};
use serde_json::Value;

use crate::error::ApiError;
use crate::form;

/// A publish request's fields before validation; JSON and form bodies both decode to it.
/// Text borrows from the body where it can (a JSON string without escapes).
#[derive(Default, Debug, PartialEq, Eq)]
pub(super) struct Fields<'a> {
    pub(super) topics: Vec<Cow<'a, str>>,
    pub(super) event: Option<Cow<'a, str>>,
    pub(super) data: Cow<'a, str>,
    pub(super) id: Option<Cow<'a, str>>,
    pub(super) retry: Option<Cow<'a, str>>,
    pub(super) close: bool,
    pub(super) private: bool,
}

pub(super) fn decode<'a>(headers: &HeaderMap, body: &'a [u8]) -> Result<Fields<'a>, ApiError> {
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

pub(super) fn decode_json(body: &[u8]) -> Result<Fields<'_>, ApiError> {
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
pub(super) fn decode_json_value(text: &str) -> Result<Fields<'static>, ApiError> {
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
pub(super) struct Usual<'a>(pub(super) Fields<'a>);

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

/// A JSON array of publish objects of the usual shape ([`Usual`]), decoded in one pass:
/// no split into raw items and no second parse of each. `None` for any other body (another
/// shape, bad JSON, an empty array is `Some(vec![])`); the caller then takes the general way,
/// which decides and words every error, so both give the same fields for any body.
pub(super) fn decode_usual_batch(body: &[u8]) -> Option<Vec<Fields<'_>>> {
    let mut de = serde_json::Deserializer::from_slice(body);
    // A guess at the count from the size (an event of the usual shape is rarely under 64
    // bytes), so that a large batch grows its list once or twice, not a dozen times.
    let capacity = (body.len() / 64).min(MAX_GUESS);
    let fields = de::Deserializer::deserialize_seq(&mut de, BatchVisitor { capacity }).ok()?;
    de.end().ok()?;
    Some(fields)
}

/// The most events [`decode_usual_batch`] reserves room for before it has seen them: ~512 KB
/// of fields, so a body of a few large events does not reserve megabytes for small ones.
const MAX_GUESS: usize = 4_096;

struct BatchVisitor {
    capacity: usize,
}

impl<'de> Visitor<'de> for BatchVisitor {
    type Value = Vec<Fields<'de>>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a list of publish objects")
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
        let mut all = Vec::with_capacity(self.capacity);
        while let Some(Usual(fields)) = seq.next_element::<Usual<'de>>()? {
            all.push(fields);
        }
        Ok(all)
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

pub(super) fn decode_form(body: &[u8]) -> Result<Fields<'static>, ApiError> {
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

pub(super) fn retry_error() -> ApiError {
    ApiError::field("retry", "retry must be a whole number of milliseconds")
}
