//! Events: what a publisher sends ([`NewEvent`]) and what the store keeps ([`Event`]).

use std::fmt;

use bytes::Bytes;

use crate::encode::{encode_event, Frame};
use crate::id::EventId;
use crate::topic::Topic;

/// Longest event name accepted, in bytes.
pub const MAX_EVENT_NAME_LEN: usize = 128;
/// Longest publisher-chosen id accepted, in bytes.
pub const MAX_WIRE_ID_LEN: usize = 256;

/// A field of a published event that cannot go on the wire as given.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FieldError {
    /// The publish field at fault: `event` or `id`.
    pub field: &'static str,
    pub reason: String,
}

impl fmt::Display for FieldError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.field, self.reason)
    }
}

impl std::error::Error for FieldError {}

fn check_field(field: &'static str, value: &str, max: usize) -> Result<(), FieldError> {
    let fail = |reason: String| Err(FieldError { field, reason });
    if value.is_empty() {
        return fail(format!("{field} is empty"));
    }
    if value.len() > max {
        return fail(format!("{field} is longer than {max} bytes"));
    }
    if value.contains(['\r', '\n']) {
        return fail(format!("{field} contains a line break"));
    }
    if let Some(c) = value.chars().find(|c| c.is_control()) {
        return fail(format!("{field} contains the control character {c:?}"));
    }
    Ok(())
}

/// An event type (`event:` field): no line breaks or control characters, and not `error` or
/// `open`, which a browser would hand to `onerror` / `onopen`.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct EventName(Box<str>);

impl EventName {
    pub fn new(name: &str) -> Result<EventName, FieldError> {
        check_field("event", name, MAX_EVENT_NAME_LEN)?;
        if name == "error" || name == "open" {
            return Err(FieldError {
                field: "event",
                reason: format!("event name {name:?} is reserved: browsers pass it to on{name}"),
            });
        }
        Ok(EventName(name.into()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for EventName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&*self.0, f)
    }
}

/// An id chosen by the publisher (Mercure lets publishers pick ids). Sent as `id:` instead of
/// the position; the store can find the event by it.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct WireId(Box<str>);

impl WireId {
    pub fn new(id: &str) -> Result<WireId, FieldError> {
        check_field("id", id, MAX_WIRE_ID_LEN)?;
        Ok(WireId(id.into()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for WireId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&*self.0, f)
    }
}

/// An event as a publisher hands it to the hub, before it has a position.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NewEvent {
    /// One or more topics; a subscriber of several of them still receives the event once.
    pub topics: Vec<Topic>,
    pub name: Option<EventName>,
    pub data: String,
    pub custom_id: Option<WireId>,
    pub retry: Option<u64>,
    /// The last event of its topics: subscribers' streams end after it.
    pub close: bool,
    /// Delivered only to subscribers authorised for one of its topics.
    pub private: bool,
}

impl NewEvent {
    pub fn new(topics: Vec<Topic>, data: impl Into<String>) -> NewEvent {
        NewEvent {
            topics,
            name: None,
            data: data.into(),
            custom_id: None,
            retry: None,
            close: false,
            private: false,
        }
    }
}

/// Longest text of an [`EventId`]: two 20-digit numbers and the dash.
const POSITION_MAX_LEN: usize = 41;

/// `id` as text (`ms-seq`), written into `buf`: no allocation on the publish path.
fn position_text(id: EventId, buf: &mut [u8; POSITION_MAX_LEN]) -> &str {
    use std::io::Write;
    let mut cursor = std::io::Cursor::new(&mut buf[..]);
    write!(cursor, "{id}").expect("two u64s and a dash fit");
    let len = cursor.position() as usize;
    std::str::from_utf8(&buf[..len]).expect("digits and a dash")
}

/// The id a client sees for the event at `id`: the publisher's own id if it gave one, else
/// the position (`ms-seq`).
pub fn wire_id_text(id: EventId, custom: Option<&WireId>) -> String {
    match custom {
        Some(custom) => custom.as_str().to_owned(),
        None => {
            let mut buf = [0u8; POSITION_MAX_LEN];
            position_text(id, &mut buf).to_owned()
        }
    }
}

/// An event with its position in the history, and its wire encoding, made once and shared by
/// every subscriber it is written to.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Event {
    pub id: EventId,
    pub topics: Vec<Topic>,
    pub name: Option<EventName>,
    pub data: String,
    pub custom_id: Option<WireId>,
    pub retry: Option<u64>,
    pub close: bool,
    pub private: bool,
    /// The complete SSE block for this event.
    pub encoded: Bytes,
}

impl Event {
    /// Gives `new` its position and encodes it.
    pub fn assign(id: EventId, new: NewEvent) -> Event {
        let mut position = [0u8; POSITION_MAX_LEN];
        let wire_id = match &new.custom_id {
            Some(custom) => custom.as_str(),
            None => position_text(id, &mut position),
        };
        let mut out = Vec::new();
        encode_event(
            &Frame {
                id: Some(wire_id),
                event: new.name.as_ref().map(EventName::as_str),
                retry: new.retry,
                data: &new.data,
            },
            &mut out,
        );
        Event {
            id,
            topics: new.topics,
            name: new.name,
            data: new.data,
            custom_id: new.custom_id,
            retry: new.retry,
            close: new.close,
            private: new.private,
            encoded: Bytes::from(out),
        }
    }

    /// The id the client sees (`id:` field, later `Last-Event-ID`).
    pub fn wire_id(&self) -> String {
        wire_id_text(self.id, self.custom_id.as_ref())
    }

    pub fn has_topic(&self, topic: &str) -> bool {
        self.topics.iter().any(|t| t.as_str() == topic)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_and_ids_refuse_what_could_break_the_stream() {
        assert!(EventName::new("headline").is_ok());
        for bad in ["", "a\nb", "a\rb", "a\0b", "error", "open"] {
            assert_eq!(EventName::new(bad).unwrap_err().field, "event", "{bad:?}");
        }
        assert!(WireId::new("urn:uuid:1").is_ok());
        for bad in ["", "a\nb", "a\rb", "a\0b"] {
            assert_eq!(WireId::new(bad).unwrap_err().field, "id", "{bad:?}");
        }
        assert!(WireId::new(&"x".repeat(MAX_WIRE_ID_LEN + 1)).is_err());
    }

    #[test]
    fn encodes_once_with_position_or_custom_id() {
        let t = vec![Topic::new("a").unwrap()];
        let e = Event::assign(EventId::new(5, 1), NewEvent::new(t.clone(), "x"));
        assert_eq!(&e.encoded[..], b"id: 5-1\ndata: x\n\n");
        let mut n = NewEvent::new(t, "y");
        n.custom_id = Some(WireId::new("mine").unwrap());
        n.name = Some(EventName::new("news").unwrap());
        let e = Event::assign(EventId::new(5, 2), n);
        assert_eq!(&e.encoded[..], b"id: mine\nevent: news\ndata: y\n\n");
        assert_eq!(e.wire_id(), "mine");
        let widest = EventId::new(u64::MAX, u64::MAX);
        let mut buf = [0u8; POSITION_MAX_LEN];
        assert_eq!(position_text(widest, &mut buf), widest.to_string());
    }
}
