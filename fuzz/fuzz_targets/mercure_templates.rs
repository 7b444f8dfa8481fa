//! Mercure selectors: URI templates, URL patterns (with and without a base) and exact
//! selectors, parsed from any text and matched against any topic. Never panics.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Some((&selector, rest)) = data.split_first() else {
        return;
    };
    let text = String::from_utf8_lossy(rest);
    // Selector, NUL, topic.
    let (pattern, topic) = text
        .split_once('\0')
        .unwrap_or((&text, "https://example.com/a/b"));
    // Selectors match the hub's name for a topic, as published.
    let Ok(topic) = ssehub::fuzzing::hub_topic(topic) else {
        return;
    };
    let topic = topic.as_str();
    let base = (selector & 1 == 1).then_some("https://hub.example.com");
    match selector >> 1 & 3 {
        0 => {
            if let Ok(Some(matched)) = ssehub::fuzzing::template_matches(pattern, topic) {
                // A template always matches itself when it is literal text only; with
                // expressions it need not, so only the call matters.
                let _ = matched;
            }
        }
        1 => {
            let _ = ssehub::fuzzing::urlpattern_matches(pattern, base, topic);
        }
        kind => {
            let matched = ssehub::fuzzing::selector_matches(pattern, kind - 2, base, topic);
            let same = ssehub::fuzzing::hub_topic(pattern).is_ok_and(|p| p == topic);
            if kind == 3 && same {
                // An exact selector selects its own topic.
                assert_eq!(matched, Ok(true), "{pattern:?}");
            }
        }
    }
});
