//! Ids and topics: event ids (`Last-Event-ID`), custom ids and event names, topic names and
//! topic patterns, from any text. Never panics; what parses round-trips.
#![no_main]

use libfuzzer_sys::fuzz_target;
use ssehub_core::{EventId, EventName, Topic, TopicPattern, WireId};

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    if let Ok(id) = text.parse::<EventId>() {
        // The canonical form parses back to the same id (leading zeros are the one way two
        // texts name one id).
        assert_eq!(id.to_string().parse::<EventId>(), Ok(id));
        assert!(text.trim_start_matches('0').len() <= text.len());
    }
    if let Ok(id) = WireId::new(&text) {
        assert_eq!(id.as_str(), text);
        assert!(!id.as_str().contains(['\r', '\n', '\0']));
    }
    if let Ok(name) = EventName::new(&text) {
        assert!(!name.as_str().contains(['\r', '\n', '\0']));
    }
    // The text up to the first NUL is a pattern, the rest a topic.
    let (pattern, topic) = text.split_once('\0').unwrap_or((&text, &text));
    let topic = Topic::new(topic).ok();
    if let Some(topic) = &topic {
        assert!(!topic.as_str().is_empty() && !topic.as_str().contains([',', ' ', '\n']));
    }
    if let Ok(pattern) = TopicPattern::new(pattern) {
        if let Some(topic) = &topic {
            let _ = pattern.matches(topic.as_str());
        }
        // A pattern without wildcards matches its own text.
        if !pattern.as_str().contains(['*', '?', '[']) {
            assert!(pattern.matches(pattern.as_str()), "{pattern:?}");
        }
    }
});
