//! How an event travels in a JetStream message: its data is the payload, everything else is
//! a header, so the subject never carries a topic and any topic string is safe.
//!
//! Headers: `Ssehub-Topics` (space-separated: topics never contain whitespace or control
//! characters), and when present `Ssehub-Event` event name, `Ssehub-Id` publisher's id,
//! `Ssehub-Retry`, `Ssehub-Close: 1`, `Ssehub-Private: 1`. The event name and the publisher's
//! id may start or end with a space, which a header parser trims: they are written between
//! double quotes and the outer pair is removed on reading, so they come back exactly.

use async_nats::HeaderMap;
use ssehub_core::{EventName, NewEvent, Topic, WireId};

const TOPICS: &str = "Ssehub-Topics";
const NAME: &str = "Ssehub-Event";
const ID: &str = "Ssehub-Id";
const RETRY: &str = "Ssehub-Retry";
const CLOSE: &str = "Ssehub-Close";
const PRIVATE: &str = "Ssehub-Private";

/// The headers for `new` (its data goes as the payload).
pub fn headers(new: &NewEvent) -> HeaderMap {
    let mut headers = HeaderMap::new();
    let topics: Vec<&str> = new.topics.iter().map(Topic::as_str).collect();
    headers.insert(TOPICS, topics.join(" "));
    if let Some(name) = &new.name {
        headers.insert(NAME, format!("\"{}\"", name.as_str()));
    }
    if let Some(id) = &new.custom_id {
        headers.insert(ID, format!("\"{}\"", id.as_str()));
    }
    if let Some(retry) = new.retry {
        headers.insert(RETRY, retry.to_string());
    }
    if new.close {
        headers.insert(CLOSE, "1");
    }
    if new.private {
        headers.insert(PRIVATE, "1");
    }
    headers
}

fn quoted(value: &str) -> &str {
    value
        .strip_prefix('"')
        .and_then(|v| v.strip_suffix('"'))
        .unwrap_or(value)
}

/// The event a message carries; `None` for a message no hub wrote (no topics, or a payload
/// that is not UTF-8).
pub fn decode(headers: Option<&HeaderMap>, payload: &[u8]) -> Option<NewEvent> {
    let headers = headers?;
    let get = |name: &str| headers.get(name).map(|v| v.as_str());
    let topics: Vec<Topic> = get(TOPICS)?
        .split(' ')
        .filter_map(|t| Topic::new(t).ok())
        .collect();
    if topics.is_empty() {
        return None;
    }
    let mut new = NewEvent::new(topics, std::str::from_utf8(payload).ok()?);
    new.name = get(NAME).and_then(|v| EventName::new(quoted(v)).ok());
    new.custom_id = get(ID).and_then(|v| WireId::new(quoted(v)).ok());
    new.retry = get(RETRY).and_then(|v| v.parse().ok());
    new.close = get(CLOSE) == Some("1");
    new.private = get(PRIVATE) == Some("1");
    Some(new)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_field_round_trips_through_the_headers() {
        let mut new = NewEvent::new(
            vec![Topic::new("a/b").unwrap(), Topic::new("é:x*>.y").unwrap()],
            "line one\nline two",
        );
        new.name = Some(EventName::new(" padded \"name\" ").unwrap());
        new.custom_id = Some(WireId::new(" id ").unwrap());
        new.retry = Some(1500);
        new.close = true;
        new.private = true;
        let headers = headers(&new);
        // What the parser of a received message gives back: values trimmed.
        let mut trimmed = HeaderMap::new();
        for (name, values) in headers.iter() {
            for value in values {
                trimmed.append(name.clone(), value.as_str().trim().to_owned());
            }
        }
        assert_eq!(decode(Some(&trimmed), new.data.as_bytes()), Some(new));
    }

    #[test]
    fn a_message_without_topics_is_not_an_event() {
        assert_eq!(decode(None, b"x"), None);
        assert_eq!(decode(Some(&HeaderMap::new()), b"x"), None);
    }
}
