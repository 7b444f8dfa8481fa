//! Query strings: the form/query decoder, then a subscription built from the query (native
//! `GET /events[/topic]?...` with a `Last-Event-ID`, and Mercure's subscribe in both
//! dialects). Never panics; a refusal is a 4xx.
#![no_main]

use axum::http::{HeaderMap, HeaderValue};
use libfuzzer_sys::fuzz_target;
use ssehub_fuzz::world;

fn refused_well(status: u16) {
    assert!((400..500).contains(&status), "status {status}");
}

fuzz_target!(|data: &[u8]| {
    let Some((&selector, rest)) = data.split_first() else {
        return;
    };
    let _ = ssehub::fuzzing::form(rest);
    let world = world();
    let _guard = world.runtime.enter();
    // The first byte picks the hub and what goes where; then the query up to the first NUL;
    // after it, a path topic, a `Last-Event-ID` or an `Authorization` header value.
    let text = String::from_utf8_lossy(rest);
    let (query, extra) = text.split_once('\0').unwrap_or((&text, ""));
    let path_topic = (selector & 1 == 1)
        .then_some(extra)
        .filter(|t| !t.is_empty());
    let last_id = (selector & 2 == 2).then_some(extra.as_bytes());
    let hub = world.hub(selector >> 2);
    if let Err(status) = ssehub::fuzzing::subscribe(hub, path_topic, Some(query), last_id) {
        refused_well(status);
    }
    let mut headers = HeaderMap::new();
    if let Ok(value) = HeaderValue::from_str(extra) {
        let name = if selector & 16 == 0 {
            "last-event-id"
        } else {
            "authorization"
        };
        headers.insert(name, value);
    }
    let status = ssehub::fuzzing::mercure_subscribe(hub, Some(query), &headers);
    if status != 200 {
        refused_well(status);
    }
    ssehub::fuzzing::tidy(hub);
});
