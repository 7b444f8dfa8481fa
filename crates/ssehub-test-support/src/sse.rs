//! An SSE stream read incrementally with the core parser, each wait bounded.

use std::collections::VecDeque;
use std::pin::Pin;
use std::time::Duration;

use bytes::Bytes;
use futures_util::{Stream, StreamExt};
use ssehub_core::{ParsedEvent, Parser, ParserItem};

/// The events, comments and retry lines of a response body, as the core parser gives them
/// (the parser the client uses, so tests read the stream the way subscribers do).
pub struct EventStream {
    body: Pin<Box<dyn Stream<Item = Result<Bytes, ()>> + Send>>,
    parser: Parser,
    /// Parsed from chunks already read, not yet taken.
    pending: VecDeque<ParserItem>,
    /// How long one item may take before the test fails.
    wait: Duration,
    /// The body ended or broke; what is in `pending` is all there is.
    ended: bool,
}

impl EventStream {
    /// Reads `body` (a response's byte stream); each item may take `wait` at most.
    pub fn new<S, E>(body: S, wait: Duration) -> EventStream
    where
        S: Stream<Item = Result<Bytes, E>> + Send + 'static,
    {
        EventStream {
            body: Box::pin(body.map(|chunk| chunk.map_err(drop))),
            parser: Parser::new(),
            pending: VecDeque::new(),
            wait,
            ended: false,
        }
    }

    /// Whether the body ended (or broke) and everything parsed from it was taken.
    pub fn ended(&self) -> bool {
        self.ended && self.pending.is_empty()
    }

    /// The next item, `None` once the body ended or broke. Panics after the wait.
    pub async fn item(&mut self) -> Option<ParserItem> {
        tokio::time::timeout(self.wait, self.item_no_timeout())
            .await
            .expect("timed out waiting for the stream")
    }

    /// [`EventStream::item`] without the wait, for a caller that bounds it itself.
    pub async fn item_no_timeout(&mut self) -> Option<ParserItem> {
        loop {
            if let Some(item) = self.pending.pop_front() {
                return Some(item);
            }
            if self.ended {
                return None;
            }
            match self.body.next().await {
                Some(Ok(chunk)) => {
                    let mut out = Vec::new();
                    self.parser.feed(&chunk, &mut out);
                    self.pending.extend(out);
                }
                Some(Err(())) | None => {
                    self.parser.finish();
                    self.ended = true;
                }
            }
        }
    }

    /// The next event, skipping comments and retry lines; `None` at the end of the body.
    pub async fn next_event(&mut self) -> Option<ParsedEvent> {
        loop {
            if let ParserItem::Event(event) = self.item().await? {
                return Some(event);
            }
        }
    }

    /// The next event. Panics at the end of the body.
    pub async fn event(&mut self) -> ParsedEvent {
        self.next_event()
            .await
            .expect("stream ended while an event was expected")
    }

    /// The events up to the end of the body.
    pub async fn rest(&mut self) -> Vec<ParsedEvent> {
        let mut events = Vec::new();
        while let Some(event) = self.next_event().await {
            events.push(event);
        }
        events
    }

    /// Reads until `n` events other than the hub's control events (named `ssehub-…`)
    /// arrived: (the control events, the other events), oldest first. Panics at the end.
    pub async fn split_control(&mut self, n: usize) -> (Vec<ParsedEvent>, Vec<ParsedEvent>) {
        let (mut control, mut events) = (Vec::new(), Vec::new());
        while events.len() < n {
            let event = self.event().await;
            if event.event.starts_with("ssehub-") {
                control.push(event);
            } else {
                events.push(event);
            }
        }
        (control, events)
    }

    /// Panics if an event arrives within `quiet` (comments and retry lines may).
    pub async fn quiet_for(&mut self, quiet: Duration) {
        let got = tokio::time::timeout(quiet, async {
            loop {
                match self.item_no_timeout().await {
                    Some(ParserItem::Event(event)) => return Some(event),
                    Some(_) => {}
                    None => return None,
                }
            }
        })
        .await;
        if let Ok(Some(event)) = got {
            panic!("unexpected event {event:?}");
        }
    }
}
