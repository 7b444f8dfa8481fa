//! How an event is stored in a stream entry, and reading entries back from Redis replies.
//!
//! Fields: `t` topics (space-separated: topics never contain whitespace), `d` data, and when
//! present `e` event name, `i` publisher's id, `r` retry, `c` closing, `p` private.

use redis::Value;
use ssehub_core::{EventId, EventName, NewEvent, Topic, WireId};

pub fn write(cmd: &mut redis::Cmd, new: &NewEvent) {
    let topics: Vec<&str> = new.topics.iter().map(Topic::as_str).collect();
    cmd.arg("t").arg(topics.join(" ")).arg("d").arg(&new.data);
    if let Some(name) = &new.name {
        cmd.arg("e").arg(name.as_str());
    }
    if let Some(id) = &new.custom_id {
        cmd.arg("i").arg(id.as_str());
    }
    if let Some(retry) = new.retry {
        cmd.arg("r").arg(retry);
    }
    if new.close {
        cmd.arg("c").arg("1");
    }
    if new.private {
        cmd.arg("p").arg("1");
    }
}

fn text(value: &Value) -> Option<String> {
    match value {
        Value::BulkString(bytes) => String::from_utf8(bytes.clone()).ok(),
        Value::SimpleString(s) => Some(s.clone()),
        Value::VerbatimString { text, .. } => Some(text.clone()),
        _ => None,
    }
}

fn items(value: &Value) -> &[Value] {
    match value {
        Value::Array(items) | Value::Set(items) => items,
        _ => &[],
    }
}

/// Decodes one entry's field list; `None` (with a log line) for an entry no hub wrote.
fn decode(id: EventId, list: &[Value]) -> Option<NewEvent> {
    let mut new = NewEvent::new(Vec::new(), String::new());
    for pair in list.chunks(2) {
        let [name, value] = pair else { continue };
        let (Some(name), Some(value)) = (text(name), text(value)) else {
            continue;
        };
        match name.as_str() {
            "t" => {
                new.topics = value
                    .split(' ')
                    .filter_map(|t| Topic::new(t).ok())
                    .collect()
            }
            "d" => new.data = value,
            "e" => new.name = EventName::new(&value).ok(),
            "i" => new.custom_id = WireId::new(&value).ok(),
            "r" => new.retry = value.parse().ok(),
            "c" => new.close = value == "1",
            "p" => new.private = value == "1",
            _ => {}
        }
    }
    if new.topics.is_empty() {
        tracing::warn!(%id, "stream entry without topics skipped");
        return None;
    }
    Some(new)
}

/// The entries of a reply that decode, and the id of its last entry whether or not it
/// decoded: a reader moves on past entries no hub wrote instead of reading them again.
#[derive(Default)]
pub struct Entries {
    pub decoded: Vec<(EventId, NewEvent)>,
    pub last: Option<EventId>,
}

/// Entries of an `XRANGE` reply: `[[id, [field, value, ...]], ...]`.
pub fn entries(reply: &Value) -> Entries {
    let mut out = Entries::default();
    for entry in items(reply) {
        let [id, list] = items(entry) else { continue };
        let Some(id) = text(id).and_then(|t| t.parse::<EventId>().ok()) else {
            continue;
        };
        out.last = Some(id);
        if let Some(new) = decode(id, items(list)) {
            out.decoded.push((id, new));
        }
    }
    out
}

/// Entries of an `XREAD` reply for one stream: `[[key, [entries]]]` (RESP2) or a map.
pub fn read_entries(reply: &Value) -> Entries {
    let lists: Vec<&Value> = match reply {
        Value::Nil => Vec::new(),
        Value::Map(pairs) => pairs.iter().map(|(_, list)| list).collect(),
        other => items(other)
            .iter()
            .filter_map(|stream| match items(stream) {
                [_, list] => Some(list),
                _ => None,
            })
            .collect(),
    };
    let mut out = Entries::default();
    for list in lists {
        let Entries { decoded, last } = entries(list);
        out.decoded.extend(decoded);
        out.last = last.or(out.last);
    }
    out
}

/// A field of an `XINFO STREAM` reply (flat list or map).
pub fn info_field(reply: &Value, name: &str) -> Option<String> {
    match reply {
        Value::Map(pairs) => pairs
            .iter()
            .find(|(k, _)| text(k).as_deref() == Some(name))
            .and_then(|(_, v)| text(v)),
        other => items(other)
            .chunks(2)
            .find(|pair| pair.first().and_then(text).as_deref() == Some(name))
            .and_then(|pair| pair.get(1).and_then(text)),
    }
}
