//! The direct HTTP/1 stream path: any bytes, arriving in any pieces, as the first request on
//! a connection. The head is read where the server stops reading, then answered as the
//! direct path answers (a stream, a fixed answer, or a hand-over to hyper). Never panics; an
//! answer is a well-formed response head.
#![no_main]

use libfuzzer_sys::arbitrary::Unstructured;
use libfuzzer_sys::fuzz_target;
use ssehub_fuzz::world;

fuzz_target!(|data: &[u8]| {
    let mut u = Unstructured::new(data);
    let pick: u8 = u.arbitrary().unwrap_or(0);
    let ncuts = u.int_in_range(0..=4).unwrap_or(0);
    let mut cuts = Vec::new();
    for _ in 0..ncuts {
        cuts.push(usize::from(u.arbitrary::<u16>().unwrap_or(0)));
    }
    let head = u.take_rest();
    let world = world();
    let _guard = world.runtime.enter();
    let hub = world.hub(pick);
    if let Some(answer) = ssehub::fuzzing::request_head(hub, head, &cuts) {
        let end = answer
            .windows(4)
            .position(|w| w == b"\r\n\r\n")
            .expect("the answer has a blank line");
        let status = &answer[..end];
        assert!(status.starts_with(b"HTTP/1.1 "), "{answer:?}");
        let code: u16 = std::str::from_utf8(&status[9..12])
            .unwrap()
            .parse()
            .unwrap();
        assert!(
            code == 200 || code == 204 || (400..500).contains(&code),
            "status {code}"
        );
        for line in status.split(|&b| b == b'\n') {
            assert!(line.ends_with(b"\r") || line == &status[status.len() - line.len()..]);
        }
    }
    ssehub::fuzzing::tidy(hub);
});
