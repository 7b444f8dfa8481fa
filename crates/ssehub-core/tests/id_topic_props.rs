//! Property tests of the id and topic parsers, which read client input (`Last-Event-ID`,
//! publish fields, topic names, pattern settings): any text is refused or accepted without a
//! panic, and what is accepted round-trips and is safe on the wire.

use proptest::prelude::*;
use ssehub_core::{EventId, EventName, Topic, TopicPattern, WireId};

/// Text that looks like ids, topics and patterns often enough to reach every branch.
fn id_or_topic_ish() -> impl Strategy<Value = String> {
    let piece = prop_oneof![
        "[0-9]{1,22}",
        Just("-".to_owned()),
        Just("+".to_owned()),
        Just("/".to_owned()),
        Just("*".to_owned()),
        Just("**".to_owned()),
        Just("?".to_owned()),
        Just(",".to_owned()),
        Just(" ".to_owned()),
        Just("\r\n".to_owned()),
        Just("\0".to_owned()),
        "[a-z]{1,4}",
        any::<char>().prop_map(String::from),
    ];
    prop::collection::vec(piece, 0..12).prop_map(|p| p.concat())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(1000))]

    #[test]
    fn event_ids_parse_or_refuse(text in prop_oneof![id_or_topic_ish(), any::<String>()]) {
        if let Ok(id) = text.parse::<EventId>() {
            prop_assert_eq!(id.to_string().parse::<EventId>(), Ok(id));
            prop_assert!(text.bytes().all(|b| b.is_ascii_digit() || b == b'-'));
        }
    }

    #[test]
    fn every_event_id_round_trips(ms in any::<u64>(), seq in any::<u64>()) {
        let id = EventId::new(ms, seq);
        prop_assert_eq!(id.to_string().parse::<EventId>(), Ok(id));
    }

    #[test]
    fn wire_fields_cannot_break_the_stream(text in prop_oneof![id_or_topic_ish(), any::<String>()]) {
        if let Ok(id) = WireId::new(&text) {
            prop_assert_eq!(id.as_str(), text.as_str());
            prop_assert!(!text.contains(['\r', '\n', '\0']));
        }
        if let Ok(name) = EventName::new(&text) {
            prop_assert!(!name.as_str().contains(['\r', '\n', '\0']));
        }
    }

    #[test]
    fn topics_and_patterns(pattern in id_or_topic_ish(), topic in id_or_topic_ish()) {
        let topic = Topic::new(&topic).ok();
        if let Some(topic) = &topic {
            prop_assert!(!topic.as_str().is_empty());
            prop_assert!(!topic.as_str().contains(|c: char| c == ',' || c.is_whitespace() || c.is_control()));
        }
        if let Ok(pattern) = TopicPattern::new(&pattern) {
            if let Some(topic) = &topic {
                let _ = pattern.matches(topic.as_str());
            }
            if !pattern.as_str().contains(['*', '?']) {
                prop_assert!(pattern.matches(pattern.as_str()), "{:?}", pattern.as_str());
            }
        }
    }
}
