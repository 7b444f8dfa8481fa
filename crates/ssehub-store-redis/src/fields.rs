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

/// Entries of an `XRANGE` reply: `[[id, [field, value, ...]], ...]`.
pub fn entries(reply: &Value) -> Vec<(EventId, NewEvent)> {
    items(reply)
        .iter()
        .filter_map(|entry| {
            let [id, list] = items(entry) else {
                return None;
            };
            let id: EventId = text(id)?.parse().ok()?;
            Some((id, decode(id, items(list))?))
        })
        .collect()
}

/// Entries of an `XREAD` reply for one stream: `[[key, [entries]]]` (RESP2) or a map.
pub fn read_entries(reply: &Value) -> Vec<(EventId, NewEvent)> {
    match reply {
        Value::Nil => Vec::new(),
        Value::Map(pairs) => pairs.iter().flat_map(|(_, list)| entries(list)).collect(),
        other => items(other)
            .iter()
            .flat_map(|stream| match items(stream) {
                [_, list] => entries(list),
                _ => Vec::new(),
            })
            .collect(),
    }
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
