//! The incremental SSE parser (WHATWG HTML §9.2.5–9.2.6). PLACEHOLDER: being written.

/// A dispatched event as a browser would see it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ParsedEvent {
    /// The event type: the `event:` value, or `message` when none was given.
    pub event: String,
    pub data: String,
    /// The last event id string at dispatch (`""` when none).
    pub id: String,
}

/// What the parser reports, in stream order.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ParserItem {
    Event(ParsedEvent),
    /// A comment line's text after the `:` (a leading space kept as sent).
    Comment(String),
    /// A valid `retry:` value, in milliseconds.
    Retry(u64),
}

/// Parses an event stream fed in chunks of any size.
#[derive(Debug, Default)]
pub struct Parser {}

impl Parser {
    pub fn new() -> Parser {
        Parser::default()
    }

    pub fn feed(&mut self, _chunk: &[u8], _out: &mut Vec<ParserItem>) {
        unimplemented!("parser")
    }

    pub fn last_event_id(&self) -> &str {
        ""
    }
}
