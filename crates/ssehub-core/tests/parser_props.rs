//! Property tests of the SSE parser: chunking never matters and never panics, and whatever the
//! encoder writes parses back to the same event.

use proptest::prelude::*;
use proptest::sample::Index;
use ssehub_core::{encode_event, Frame, ParsedEvent, Parser, ParserItem};

/// Feeds `stream` cut at `cuts` (indices into the stream, any order), then ends the stream.
fn parse_split(parser: Parser, stream: &[u8], cuts: &[Index]) -> (Vec<ParserItem>, String, u64) {
    let mut parser = parser;
    let mut points: Vec<usize> = cuts.iter().map(|c| c.index(stream.len() + 1)).collect();
    points.sort_unstable();
    let mut items = Vec::new();
    let mut at = 0;
    for point in points {
        parser.feed(&stream[at..point], &mut items);
        at = point;
    }
    parser.feed(&stream[at..], &mut items);
    parser.finish();
    (
        items,
        parser.last_event_id().to_owned(),
        parser.discarded_oversize(),
    )
}

/// Bytes that look like an event stream often enough to reach every state: field names,
/// colons, spaces, every line ending, BOM pieces, NUL, digits and invalid UTF-8.
fn sse_ish_bytes() -> impl Strategy<Value = Vec<u8>> {
    let token = prop_oneof![
        Just(&b"data"[..]),
        Just(&b"id"[..]),
        Just(&b"event"[..]),
        Just(&b"retry"[..]),
        Just(&b":"[..]),
        Just(&b" "[..]),
        Just(&b"\r"[..]),
        Just(&b"\n"[..]),
        Just(&b"\r\n"[..]),
        Just(&b"\xEF\xBB\xBF"[..]),
        Just(&b"\xEF"[..]),
        Just(&b"\xBB"[..]),
        Just(&b"\0"[..]),
        Just(&b"99999999999999999999999"[..]),
        Just(&b"42"[..]),
        Just(&b"\xE2\x82\xAC"[..]),
        Just(&b"\xE2\x82"[..]),
        Just(&b"\xFF"[..]),
    ];
    let piece = prop_oneof![
        3 => token.prop_map(<[u8]>::to_vec),
        1 => prop::collection::vec(any::<u8>(), 0..4),
    ];
    prop::collection::vec(piece, 0..80).prop_map(|pieces| pieces.concat())
}

fn bytes() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![prop::collection::vec(any::<u8>(), 0..200), sse_ish_bytes()]
}

fn cuts() -> impl Strategy<Value = Vec<Index>> {
    prop::collection::vec(any::<Index>(), 0..24)
}

/// An `id`/`event` value the encoder accepts: non-empty, no CR, LF or NUL.
fn field_value() -> impl Strategy<Value = String> {
    let ch = prop_oneof![
        4 => any::<char>(),
        1 => Just(' '),
        1 => Just(':'),
        1 => Just('\u{FEFF}'),
    ];
    prop::collection::vec(
        ch.prop_filter("no CR, LF or NUL", |c| !matches!(c, '\r' | '\n' | '\0')),
        1..12,
    )
    .prop_map(|chars| chars.into_iter().collect())
}

/// Any payload, heavy on line breaks, spaces and colons.
fn data_value() -> impl Strategy<Value = String> {
    let ch = prop_oneof![
        4 => any::<char>(),
        2 => Just('\n'),
        2 => Just('\r'),
        1 => Just(' '),
        1 => Just(':'),
        1 => Just('\0'),
    ];
    prop::collection::vec(ch, 0..40).prop_map(|chars| chars.into_iter().collect())
}

#[derive(Debug, Clone)]
struct OwnedFrame {
    id: Option<String>,
    event: Option<String>,
    retry: Option<u64>,
    data: String,
}

fn frame() -> impl Strategy<Value = OwnedFrame> {
    (
        prop::option::of(field_value()),
        prop::option::of(field_value()),
        prop::option::of(prop_oneof![any::<u64>(), 0..10_000u64]),
        data_value(),
    )
        .prop_map(|(id, event, retry, data)| OwnedFrame {
            id,
            event,
            retry,
            data,
        })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 1024, ..ProptestConfig::default() })]

    /// (a) Any bytes, any chunking: no panic, and the same items as feeding it whole.
    #[test]
    fn chunking_never_matters(
        stream in bytes(),
        cuts in cuts(),
        limit in prop::option::of(0usize..48),
    ) {
        let parser = || match limit {
            Some(n) => Parser::new().with_max_event_size(n),
            None => Parser::new(),
        };
        let whole = parse_split(parser(), &stream, &[]);
        let split = parse_split(parser(), &stream, &cuts);
        prop_assert_eq!(&split, &whole);
        let mut bytewise = parser();
        let mut items = Vec::new();
        for byte in &stream {
            bytewise.feed(std::slice::from_ref(byte), &mut items);
        }
        bytewise.finish();
        prop_assert_eq!(
            (items, bytewise.last_event_id().to_owned(), bytewise.discarded_oversize()),
            whole
        );
    }

    /// (b) Whatever the encoder writes parses back: data with CRLF and lone CR turned into LF,
    /// the same id (persisting across frames without one) and type, and the retry item first.
    #[test]
    fn encode_then_parse_round_trips(
        frames in prop::collection::vec(frame(), 1..5),
        cuts in cuts(),
    ) {
        let mut stream = Vec::new();
        let mut want = Vec::new();
        let mut last_id = String::new();
        for f in &frames {
            let frame = Frame {
                id: f.id.as_deref(),
                event: f.event.as_deref(),
                retry: f.retry,
                data: &f.data,
            };
            encode_event(&frame, &mut stream);
            if let Some(id) = &f.id {
                last_id.clone_from(id);
            }
            if let Some(ms) = f.retry {
                want.push(ParserItem::Retry(ms));
            }
            want.push(ParserItem::Event(ParsedEvent {
                event: f.event.clone().unwrap_or_else(|| "message".to_owned()),
                data: f.data.replace("\r\n", "\n").replace('\r', "\n"),
                id: last_id.clone(),
            }));
        }
        let (items, final_id, _) = parse_split(Parser::new(), &stream, &cuts);
        prop_assert_eq!(items, want);
        prop_assert_eq!(final_id, last_id);
    }
}
