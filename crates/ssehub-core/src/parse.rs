//! The incremental SSE parser (WHATWG HTML §9.2.5–9.2.6).
//!
//! Spec-exact and byte-level:
//!
//! * one leading BOM (`EF BB BF`) is stripped, only at stream offset 0, even when it arrives
//!   split across chunks; a later BOM is content;
//! * lines end at CRLF, LF or a lone CR. A CR that is the last byte of a chunk ends its line at
//!   once (no waiting for the next chunk); an LF starting the next chunk is then swallowed;
//! * every line is decoded as UTF-8 with U+FFFD for invalid sequences. CR and LF never occur
//!   inside a UTF-8 sequence, so splitting at the byte level first and decoding each complete
//!   line gives exactly what decoding the whole stream would, and characters split across
//!   chunks decode intact;
//! * fields, comments, `retry` and dispatch follow §9.2.6 literally (see [`Parser::feed`]);
//! * an unterminated line and an undispatched block are never reported: [`Parser::finish`]
//!   discards them at end of stream.
//!
//! Every byte is looked at a bounded number of times (a partial line is appended to a buffer,
//! never rescanned), so parsing is linear in the input whatever the chunking. No input makes it
//! panic.
//!
//! # Size limit
//!
//! [`Parser::with_max_event_size`] bounds the memory one block may use: a line longer than the
//! limit (in bytes, terminator excluded) is dropped without being buffered, and a `data` line
//! that would grow the data buffer past the limit empties that buffer. Either way the whole
//! block is *discarded*: at its blank line no event is dispatched (the event type is cleared as
//! usual; `id`, `retry` and comment lines of the block that fit are still processed, so the last
//! event ID is still committed). Each such block is counted once in
//! [`Parser::discarded_oversize`]. The default is no limit.

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

const BOM: [u8; 3] = [0xEF, 0xBB, 0xBF];

/// Line buffers grown past this are released after use instead of being kept for reuse.
const KEEP_CAPACITY: usize = 64 * 1024;

/// Parses an event stream fed in chunks of any size.
#[derive(Debug)]
pub struct Parser {
    /// How many bytes of the leading BOM have been seen at the start of the stream;
    /// `None` once the stream start is behind us.
    bom_seen: Option<usize>,
    /// The previous chunk ended with a CR: an LF starting the next chunk belongs to it.
    after_cr: bool,
    /// The bytes of the current, still unterminated line.
    line: Vec<u8>,
    /// The current line is over the size limit: its remaining bytes are dropped.
    skipping_line: bool,
    /// The current block went over the size limit: it will not be dispatched.
    block_oversize: bool,
    data: String,
    event_type: String,
    /// The last event ID *buffer* (set by `id:` lines).
    id_buffer: String,
    /// The last event ID *string* (committed at every blank line).
    last_event_id: String,
    retry: Option<u64>,
    max_size: usize,
    discarded_oversize: u64,
}

impl Default for Parser {
    fn default() -> Parser {
        Parser {
            bom_seen: Some(0),
            after_cr: false,
            line: Vec::new(),
            skipping_line: false,
            block_oversize: false,
            data: String::new(),
            event_type: String::new(),
            id_buffer: String::new(),
            last_event_id: String::new(),
            retry: None,
            max_size: usize::MAX,
            discarded_oversize: 0,
        }
    }
}

impl Parser {
    pub fn new() -> Parser {
        Parser::default()
    }

    /// Limits the size of one block (see the module docs): lines longer than `bytes` and data
    /// buffers that would grow past `bytes` make the block be discarded and counted in
    /// [`Parser::discarded_oversize`].
    pub fn with_max_event_size(mut self, bytes: usize) -> Parser {
        self.max_size = bytes;
        self
    }

    /// Starts with a known last event ID (e.g. a client resuming with the id it had before
    /// a restart). Events dispatched without an `id:` line of their own carry it.
    pub fn with_last_event_id(mut self, id: &str) -> Parser {
        self.id_buffer = id.to_owned();
        self.last_event_id = id.to_owned();
        self
    }

    /// Parses the next chunk of the stream, appending what it completes to `out` in stream
    /// order:
    ///
    /// * a comment line (`:` first) gives [`ParserItem::Comment`] as soon as its line ends;
    /// * `event` sets the event type, `data` appends its value and an LF to the data buffer,
    ///   `id` sets the last event ID buffer unless the value contains NUL (then the line is
    ///   ignored), other field names (compared case-sensitively) are ignored; one space after
    ///   the first colon is removed from the value;
    /// * a valid `retry` (non-empty, ASCII digits only; values above `u64::MAX` clamp to it)
    ///   gives [`ParserItem::Retry`] when its line is processed, not at dispatch;
    /// * a blank line commits the last event ID buffer as the last event ID, then, if the data
    ///   buffer is not empty, drops its final LF and gives [`ParserItem::Event`] with the event
    ///   type (`message` when empty); the data and event type buffers are cleared either way.
    pub fn feed(&mut self, chunk: &[u8], out: &mut Vec<ParserItem>) {
        self.split(chunk, &mut |parser: &mut Parser, line: &[u8]| {
            parser.process_line(line, out)
        });
    }

    /// Ends the stream: the unterminated line and the undispatched block are discarded (an
    /// `id:` among them never becomes the last event ID). The parser is then ready for another
    /// stream, e.g. after a reconnection: [`Parser::last_event_id`] and [`Parser::retry`] are
    /// kept, and a BOM at the start of the next stream is stripped again.
    pub fn finish(&mut self) {
        self.bom_seen = Some(0);
        self.after_cr = false;
        self.line.clear();
        if self.line.capacity() > KEEP_CAPACITY {
            self.line = Vec::new();
        }
        self.skipping_line = false;
        self.block_oversize = false;
        self.data = String::new();
        self.event_type.clear();
        self.id_buffer.clone_from(&self.last_event_id);
    }

    /// The last event ID string: the value committed by the latest blank line (`""` when none);
    /// what a reconnection sends as `Last-Event-ID` when non-empty.
    pub fn last_event_id(&self) -> &str {
        &self.last_event_id
    }

    /// The latest valid `retry:` value seen, in milliseconds.
    pub fn retry(&self) -> Option<u64> {
        self.retry
    }

    /// How many blocks were discarded because they went over the size limit.
    pub fn discarded_oversize(&self) -> u64 {
        self.discarded_oversize
    }

    /// The line splitter alone: BOM stripping, CRLF/LF/CR line ends (a chunk-final CR ends its
    /// line at once), the size limit (an oversize line is dropped) and UTF-8 decoding, with
    /// every terminated line appended to `out` uninterpreted. An unterminated final line is
    /// never reported. Meant for tools and tests; use a parser either for this or for
    /// [`Parser::feed`], not both.
    pub fn split_lines(&mut self, chunk: &[u8], out: &mut Vec<String>) {
        self.split(chunk, &mut |_: &mut Parser, line: &[u8]| {
            out.push(String::from_utf8_lossy(line).into_owned())
        });
    }

    /// Strips the leading BOM, then splits into lines.
    fn split<F: FnMut(&mut Parser, &[u8])>(&mut self, mut chunk: &[u8], on_line: &mut F) {
        if let Some(seen) = self.bom_seen {
            let mut seen = seen;
            loop {
                if seen == BOM.len() {
                    self.bom_seen = None;
                    break;
                }
                let Some((&byte, rest)) = chunk.split_first() else {
                    self.bom_seen = Some(seen);
                    return;
                };
                if byte != BOM[seen] {
                    // Not a BOM after all: what was held back is content.
                    self.bom_seen = None;
                    self.split_lines_raw(&BOM[..seen], on_line);
                    break;
                }
                seen += 1;
                chunk = rest;
            }
        }
        self.split_lines_raw(chunk, on_line);
    }

    fn split_lines_raw<F: FnMut(&mut Parser, &[u8])>(&mut self, chunk: &[u8], on_line: &mut F) {
        let mut rest = chunk;
        if self.after_cr {
            match rest.split_first() {
                None => return,
                Some((&b'\n', tail)) => {
                    self.after_cr = false;
                    rest = tail;
                }
                Some(_) => self.after_cr = false,
            }
        }
        while let Some(end) = rest.iter().position(|&b| b == b'\n' || b == b'\r') {
            let terminator = rest[end];
            self.end_line(&rest[..end], on_line);
            rest = &rest[end + 1..];
            if terminator == b'\r' {
                match rest.first() {
                    None => self.after_cr = true,
                    Some(&b'\n') => rest = &rest[1..],
                    Some(_) => {}
                }
            }
        }
        self.push_partial(rest);
    }

    /// Buffers the start of a line that has not ended yet.
    fn push_partial(&mut self, bytes: &[u8]) {
        if bytes.is_empty() || self.skipping_line {
            return;
        }
        if bytes.len() > self.max_size - self.line.len() {
            self.skipping_line = true;
            self.line.clear();
            self.mark_oversize();
        } else {
            self.line.extend_from_slice(bytes);
        }
    }

    /// Completes the current line with `tail` and hands it on.
    fn end_line<F: FnMut(&mut Parser, &[u8])>(&mut self, tail: &[u8], on_line: &mut F) {
        if self.skipping_line {
            self.skipping_line = false;
            return;
        }
        if tail.len() > self.max_size - self.line.len() {
            self.line.clear();
            self.mark_oversize();
            return;
        }
        if self.line.is_empty() {
            on_line(self, tail);
        } else {
            let mut line = std::mem::take(&mut self.line);
            line.extend_from_slice(tail);
            on_line(self, &line);
            line.clear();
            if line.capacity() <= KEEP_CAPACITY {
                self.line = line;
            }
        }
    }

    fn mark_oversize(&mut self) {
        if !self.block_oversize {
            self.block_oversize = true;
            self.discarded_oversize += 1;
        }
        self.data = String::new();
    }

    /// Interprets one complete line (§9.2.6).
    fn process_line(&mut self, line: &[u8], out: &mut Vec<ParserItem>) {
        if line.is_empty() {
            self.dispatch(out);
            return;
        }
        let (field, value) = match line.iter().position(|&b| b == b':') {
            Some(0) => {
                out.push(ParserItem::Comment(lossy(&line[1..])));
                return;
            }
            Some(colon) => {
                let value = &line[colon + 1..];
                (&line[..colon], value.strip_prefix(b" ").unwrap_or(value))
            }
            None => (line, &[][..]),
        };
        match field {
            b"event" => self.event_type = lossy(value),
            b"data" => {
                if self.block_oversize {
                    return;
                }
                let value = String::from_utf8_lossy(value);
                if value.len() >= self.max_size - self.data.len().min(self.max_size) {
                    // `data.len() + value.len() + 1 > max_size`, without overflow.
                    self.mark_oversize();
                } else {
                    self.data.push_str(&value);
                    self.data.push('\n');
                }
            }
            // An id containing NUL is ignored entirely.
            b"id" if !value.contains(&0) => self.id_buffer = lossy(value),
            b"retry" => {
                if let Some(ms) = parse_retry(value) {
                    self.retry = Some(ms);
                    out.push(ParserItem::Retry(ms));
                }
            }
            _ => {}
        }
    }

    /// A blank line (§9.2.6 "dispatch the event").
    fn dispatch(&mut self, out: &mut Vec<ParserItem>) {
        if self.last_event_id != self.id_buffer {
            self.last_event_id.clone_from(&self.id_buffer);
        }
        if self.block_oversize {
            self.block_oversize = false;
            self.data.clear();
            self.event_type.clear();
            return;
        }
        if self.data.is_empty() {
            self.event_type.clear();
            return;
        }
        let mut data = std::mem::take(&mut self.data);
        data.pop(); // the LF appended after the last `data` value
        let event = if self.event_type.is_empty() {
            "message".to_owned()
        } else {
            std::mem::take(&mut self.event_type)
        };
        out.push(ParserItem::Event(ParsedEvent {
            event,
            data,
            id: self.last_event_id.clone(),
        }));
    }
}

fn lossy(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// A `retry` value: non-empty, ASCII digits only, base 10, clamped to `u64::MAX`.
fn parse_retry(value: &[u8]) -> Option<u64> {
    if value.is_empty() || !value.iter().all(u8::is_ascii_digit) {
        return None;
    }
    Some(value.iter().fold(0u64, |n, &d| {
        n.saturating_mul(10).saturating_add(u64::from(d - b'0'))
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ev(event: &str, data: &str, id: &str) -> ParserItem {
        ParserItem::Event(ParsedEvent {
            event: event.into(),
            data: data.into(),
            id: id.into(),
        })
    }

    fn feed_chunks(parser: &mut Parser, chunks: &[&[u8]]) -> Vec<ParserItem> {
        let mut out = Vec::new();
        for chunk in chunks {
            parser.feed(chunk, &mut out);
        }
        out
    }

    fn parse_chunks(chunks: &[&[u8]]) -> Vec<ParserItem> {
        feed_chunks(&mut Parser::new(), chunks)
    }

    #[test]
    fn cr_at_chunk_end_ends_the_line_at_once() {
        let mut p = Parser::new();
        let mut out = Vec::new();
        p.feed(b"data: a\r", &mut out);
        assert!(out.is_empty());
        p.feed(b"\r", &mut out);
        assert_eq!(
            out,
            [ev("message", "a", "")],
            "dispatched without waiting for more"
        );
        out.clear();
        // The LF after the chunk-final CR is half of a CRLF, not a second blank line.
        p.feed(b"\ndata: b\r", &mut out);
        p.feed(b"", &mut out);
        p.feed(b"\n", &mut out);
        assert!(out.is_empty());
        p.feed(b"\n", &mut out);
        assert_eq!(out, [ev("message", "b", "")]);
    }

    #[test]
    fn cr_then_other_byte_across_chunks() {
        assert_eq!(
            parse_chunks(&[b"data: a\r", b"data: b\r", b"\r"]),
            [ev("message", "a\nb", "")]
        );
        assert_eq!(parse_chunks(&[b"\r\r\n\n"]), []);
        assert_eq!(
            parse_chunks(&[b"data\r\r\n\ndata:x\r", b"\r"]),
            [ev("message", "", ""), ev("message", "x", "")]
        );
    }

    #[test]
    fn bom_only_at_stream_start_even_split() {
        let want = [ev("message", "hi", "")];
        assert_eq!(parse_chunks(&[b"\xEF\xBB\xBFdata: hi\n\n"]), want);
        assert_eq!(
            parse_chunks(&[b"\xEF", b"\xBB", b"", b"\xBF", b"data: hi\n\n"]),
            want
        );
        assert_eq!(parse_chunks(&[b"\xEF\xBB", b"\xBFdata: hi\n\n"]), want);
        // A second BOM makes the field name "\u{FEFF}data": unknown, ignored.
        assert_eq!(
            parse_chunks(&[b"\xEF\xBB\xBF", b"\xEF\xBB\xBFdata: hi\n\n"]),
            []
        );
        assert_eq!(
            parse_chunks(&[b"data: a\n\n\xEF\xBB\xBFdata: b\n\n"]),
            [ev("message", "a", "")]
        );
        // Inside a value it is content.
        assert_eq!(
            parse_chunks(&[b"data: \xEF\xBB\xBF\n\n"]),
            [ev("message", "\u{FEFF}", "")]
        );
    }

    #[test]
    fn broken_bom_prefix_is_content() {
        // EF BB then not BF: the held-back bytes are an invalid sequence, one U+FFFD.
        let mut lines = Vec::new();
        let mut p = Parser::new();
        p.split_lines(b"\xEF", &mut lines);
        p.split_lines(b"\xBBx\n", &mut lines);
        p.split_lines(b"\xEF\xBB\xBFy\n", &mut lines);
        assert_eq!(lines, ["\u{FFFD}x", "\u{FEFF}y"]);
        // A BOM prefix cut short by a line end.
        assert_eq!(
            parse_chunks(&[b"\xEF", b"\n", b"data: z\n\n"]),
            [ev("message", "z", "")]
        );
    }

    #[test]
    fn utf8_split_and_invalid() {
        let euro = "€".as_bytes();
        let mut chunks: Vec<&[u8]> = vec![b"data: "];
        chunks.extend(euro.chunks(1));
        chunks.push(b"\xFF\xC3\n\n");
        assert_eq!(
            parse_chunks(&chunks),
            [ev("message", "€\u{FFFD}\u{FFFD}", "")]
        );
        // A truncated sequence before a line end is one replacement character.
        assert_eq!(
            parse_chunks(&[b"data: \xE2\x82\ndata: x\n\n"]),
            [ev("message", "\u{FFFD}\nx", "")]
        );
    }

    #[test]
    fn nul_in_id_ignores_the_line() {
        let items =
            parse_chunks(&[b"id: 1\ndata: a\n\nid: x\0y\ndata: b\n\nid: \0\n\nid\ndata: c\n\n"]);
        assert_eq!(
            items,
            [
                ev("message", "a", "1"),
                ev("message", "b", "1"),
                ev("message", "c", "")
            ]
        );
        let mut p = Parser::new();
        feed_chunks(&mut p, &[b"id: 5\n\nid: a\0\n\n"]);
        assert_eq!(p.last_event_id(), "5");
        // NUL is fine in data.
        assert_eq!(
            parse_chunks(&[b"data: a\0b\n\n"]),
            [ev("message", "a\0b", "")]
        );
    }

    #[test]
    fn id_commits_at_every_blank_line_only() {
        let mut p = Parser::new();
        let items = feed_chunks(&mut p, &[b"id: 42\n\n"]);
        assert_eq!(items, []);
        assert_eq!(p.last_event_id(), "42");
        feed_chunks(&mut p, &[b"id: 43\ndata: x\n"]);
        assert_eq!(
            p.last_event_id(),
            "42",
            "not committed before the blank line"
        );
        p.finish();
        assert_eq!(
            p.last_event_id(),
            "42",
            "an unterminated block never commits"
        );
        // The next stream starts from the committed id, not the discarded one.
        assert_eq!(
            feed_chunks(&mut p, &[b"data: y\n\n"]),
            [ev("message", "y", "42")]
        );
    }

    #[test]
    fn retry_edge_cases() {
        let items = parse_chunks(&[
            b"retry: 03000\nretry:1000x\nretry: 12 \nretry:  5\nretry:+5\nretry:-1\n",
            b"retry\nretry:\n",
            b"retry: 99999999999999999999999999\nretry:0\nRetry: 7\nretry: 1\xC2\xB2\n",
        ]);
        assert_eq!(
            items,
            [
                ParserItem::Retry(3000),
                ParserItem::Retry(u64::MAX),
                ParserItem::Retry(0)
            ]
        );
        // Applied when processed: a retry-only block still counts, before any dispatch.
        let mut p = Parser::new();
        let mut out = Vec::new();
        p.feed(b"retry: 5000\n", &mut out);
        assert_eq!(out, [ParserItem::Retry(5000)]);
        assert_eq!(p.retry(), Some(5000));
        p.feed(b"\ndata: x\n\n", &mut out);
        assert_eq!(out, [ParserItem::Retry(5000), ev("message", "x", "")]);
    }

    #[test]
    fn field_parsing() {
        let items = parse_chunks(&[
            b"data:  two\ndata:\tx\ndata: a:b\ndata\nData: no\n data: no\nfoo: bar\n\n",
            b"event:\ndata: y\n\nevent: add\n\ndata: z\n\n: c1\n:c2\n:\n",
            b"event: e\ndata: w\n\n",
        ]);
        assert_eq!(
            items,
            [
                ev("message", " two\n\tx\na:b\n", ""),
                ev("message", "y", ""),
                ev("message", "z", ""),
                ParserItem::Comment(" c1".into()),
                ParserItem::Comment("c2".into()),
                ParserItem::Comment(String::new()),
                ev("e", "w", ""),
            ]
        );
    }

    #[test]
    fn unterminated_block_is_discarded() {
        let mut p = Parser::new();
        let items = feed_chunks(&mut p, &[b"data: kept\n\ndata: lost\n"]);
        p.finish();
        assert_eq!(items, [ev("message", "kept", "")]);
        assert_eq!(
            feed_chunks(&mut p, &[b"\n"]),
            [],
            "finish cleared the data buffer"
        );
    }

    #[test]
    fn finish_rearms_bom_and_forgets_pending_cr() {
        let mut p = Parser::new();
        feed_chunks(&mut p, &[b"data: a\r"]);
        p.finish();
        // New stream: its leading BOM is stripped and a leading LF is a blank line of its own.
        let items = feed_chunks(&mut p, &[b"\xEF\xBB\xBFdata: b\n", b"\n"]);
        assert_eq!(items, [ev("message", "b", "")]);
    }

    #[test]
    fn with_last_event_id_seeds_the_id() {
        let mut p = Parser::new().with_last_event_id("7");
        assert_eq!(p.last_event_id(), "7");
        assert_eq!(
            feed_chunks(&mut p, &[b"data: a\n\n"]),
            [ev("message", "a", "7")]
        );
    }

    #[test]
    fn oversize_line_drops_the_block() {
        let mut p = Parser::new().with_max_event_size(8);
        let mut out = Vec::new();
        for b in b"id: 1\ndata: 0123456789\ndata: ok\n\ndata: ok\n\n:0123456789\n\n" {
            p.feed(&[*b], &mut out);
        }
        assert_eq!(out, [ev("message", "ok", "1")]);
        assert_eq!(
            p.last_event_id(),
            "1",
            "the id of a discarded block is still committed"
        );
        assert_eq!(p.discarded_oversize(), 2);
        // Exactly at the limit is fine, one past it is not (line and data buffer alike).
        let mut p = Parser::new().with_max_event_size(8);
        let items = feed_chunks(
            &mut p,
            &[b"data:123\n\ndata:1234\n\ndata:12\ndata:12\n\ndata:123\ndata:123\ndata:123\n\n"],
        );
        assert_eq!(
            items,
            [ev("message", "123", ""), ev("message", "12\n12", "")]
        );
        assert_eq!(p.discarded_oversize(), 2);
    }

    #[test]
    fn zero_limit_never_panics() {
        let mut p = Parser::new().with_max_event_size(0);
        assert_eq!(feed_chunks(&mut p, &[b"data\n\nx\r\n\r", b"\n"]), []);
        assert_eq!(p.discarded_oversize(), 2);
    }

    #[test]
    fn split_lines_reports_terminated_lines_only() {
        let mut p = Parser::new();
        let mut lines = Vec::new();
        for chunk in [
            &b"a\rb\nc\r"[..],
            b"\nd\r",
            b"\r\n",
            b"\xE2\x80\xA8x\xC2\x85\ntail",
        ] {
            p.split_lines(chunk, &mut lines);
        }
        assert_eq!(lines, ["a", "b", "c", "d", "", "\u{2028}x\u{85}"]);
    }
}
