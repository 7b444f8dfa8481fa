//! The SSE wire parser: any bytes, fed in any pieces, never panic and parse as they do fed
//! whole; events the encoder writes (from validated names and ids) parse back to themselves.
#![no_main]

use libfuzzer_sys::arbitrary::Unstructured;
use libfuzzer_sys::fuzz_target;
use ssehub_core::{encode_event, EventName, Frame, ParsedEvent, Parser, ParserItem, WireId};

fn parser(limit: u8) -> Parser {
    match limit {
        0..=127 => Parser::new(),
        n => Parser::new().with_max_event_size(usize::from(n) * 4),
    }
}

fn run(mut parser: Parser, stream: &[u8], cuts: &[usize]) -> (Vec<ParserItem>, String, u64) {
    let mut items = Vec::new();
    let mut at = 0;
    for &cut in cuts {
        parser.feed(&stream[at..cut], &mut items);
        at = cut;
    }
    parser.feed(&stream[at..], &mut items);
    parser.finish();
    (
        items,
        parser.last_event_id().to_owned(),
        parser.discarded_oversize(),
    )
}

fuzz_target!(|data: &[u8]| {
    let mut u = Unstructured::new(data);
    let limit: u8 = u.arbitrary().unwrap_or(0);
    let ncuts = u.int_in_range(0..=8).unwrap_or(0);
    let mut cuts = Vec::new();
    for _ in 0..ncuts {
        cuts.push(usize::from(u.arbitrary::<u16>().unwrap_or(0)));
    }
    let encode: bool = u.arbitrary().unwrap_or(false);
    if !encode {
        let stream = u.take_rest();
        let mut cuts: Vec<usize> = cuts.iter().map(|c| c % (stream.len() + 1)).collect();
        cuts.sort_unstable();
        let whole = run(parser(limit), stream, &[]);
        assert_eq!(
            run(parser(limit), stream, &cuts),
            whole,
            "chunking changed the parse"
        );
        return;
    }
    // Encode a few events built from the input, then parse them back.
    let mut stream = Vec::new();
    let mut want = Vec::new();
    let mut last_id = String::new();
    for _ in 0..u.int_in_range(1..=3).unwrap_or(1) {
        let event: Option<&str> = u.arbitrary().unwrap_or(None);
        let id: Option<&str> = u.arbitrary().unwrap_or(None);
        let retry: Option<u64> = u.arbitrary().unwrap_or(None);
        let data: &str = u.arbitrary().unwrap_or("");
        let event = event.and_then(|e| EventName::new(e).ok());
        let id = id.and_then(|i| WireId::new(i).ok());
        let frame = Frame {
            id: id.as_ref().map(WireId::as_str),
            event: event.as_ref().map(EventName::as_str),
            retry,
            data,
        };
        encode_event(&frame, &mut stream);
        if let Some(id) = &id {
            last_id = id.as_str().to_owned();
        }
        if let Some(ms) = retry {
            want.push(ParserItem::Retry(ms));
        }
        want.push(ParserItem::Event(ParsedEvent {
            event: event.map_or_else(|| "message".to_owned(), |e| e.as_str().to_owned()),
            data: data.replace("\r\n", "\n").replace('\r', "\n"),
            id: last_id.clone(),
        }));
    }
    let mut cuts: Vec<usize> = cuts.iter().map(|c| c % (stream.len() + 1)).collect();
    cuts.sort_unstable();
    let (items, final_id, _) = run(Parser::new(), &stream, &cuts);
    assert_eq!(items, want, "encoded {stream:?}");
    assert_eq!(final_id, last_id);
});
