//! Publish bodies: any bytes under any content type go through the decode and validation the
//! native (`POST /publish`) and Mercure routes use; what passes can go on the wire unchanged.
//! As a batch, the one-pass JSON array decoder gives the general way's fields for every body
//! it takes.
#![no_main]

use libfuzzer_sys::fuzz_target;
use ssehub::Hub;
use ssehub_core::NewEvent;
use ssehub_fuzz::world;

fn check(hub: &Hub, new: Result<NewEvent, u16>) {
    match new {
        Ok(new) => {
            assert!(!new.topics.is_empty() && new.topics.len() <= hub.config.max_topics);
            let fields = new.name.iter().map(|n| n.as_str());
            for text in fields.chain(new.custom_id.iter().map(|i| i.as_str())) {
                assert!(
                    !text.contains(['\r', '\n', '\0']),
                    "{text:?} would break the stream"
                );
            }
        }
        Err(status) => assert!((400..500).contains(&status), "status {status}"),
    }
}

fuzz_target!(|data: &[u8]| {
    let Some((&selector, body)) = data.split_first() else {
        return;
    };
    // Bit 2 picks the Mercure dialect (0 or 1).
    let hub = world().hub(selector >> 2 & 1);
    let content_type: &[u8] = match selector & 3 {
        0 => b"application/json",
        1 => b"application/x-www-form-urlencoded",
        2 => b"APPLICATION/JSON; charset=utf-8",
        _ => {
            // The content type itself from the input, up to the first NUL.
            let split = body.iter().position(|&b| b == 0).unwrap_or(0);
            let (ct, rest) = body.split_at(split);
            check(hub, ssehub::fuzzing::publish_body(hub, ct, rest));
            check(hub, ssehub::fuzzing::mercure_publish(hub, ct, rest));
            return;
        }
    };
    check(hub, ssehub::fuzzing::publish_body(hub, content_type, body));
    // The same bytes as a batch: both JSON array decoders agree on what they take.
    ssehub::fuzzing::publish_batch(body);
    let form = b"application/x-www-form-urlencoded";
    check(hub, ssehub::fuzzing::mercure_publish(hub, form, body));
});
