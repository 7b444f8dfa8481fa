//! A subscriber's response body: the opening bytes, then the replay read page by page from
//! the store, then the live feed from its outbox — joined without a gap or a duplicate.

use std::collections::VecDeque;
use std::convert::Infallible;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use bytes::Bytes;
use http_body::{Body, Frame};
use ssehub_core::EventId;

use crate::hub::{Hub, Subscription};
use crate::metrics::Metrics;
use crate::outbox::{CloseReason, Drained, Item};
use crate::selection::Selection;

/// Events scanned per replay page: large enough that a page fills a socket write, small
/// enough that a replay of any length holds little memory and never blocks the runtime long.
const REPLAY_PAGE: usize = 512;

/// Kept small (see `an_idle_stream_stays_small`): an idle stream holds the hub, its
/// subscription and a position; what it needs only at the start lives in a box freed once
/// the opening bytes are written and the replay has caught up.
pub struct EventStream {
    hub: Arc<Hub>,
    /// `None` for a replay-only stream (closed topics): it ends when the replay does.
    subscription: Option<Subscription>,
    start: Option<Box<Start>>,
    /// Live events at or before this position were already written by the replay.
    through: EventId,
}

/// The part of a stream before it goes live.
struct Start {
    opening: Option<Bytes>,
    replay: Option<Replay>,
}

struct Replay {
    after: EventId,
    selection: Arc<Selection>,
}

impl EventStream {
    /// `replay_after`: replay the history after this position before going live.
    pub fn new(
        hub: Arc<Hub>,
        subscription: Option<Subscription>,
        opening: Bytes,
        selection: Arc<Selection>,
        replay_after: Option<EventId>,
    ) -> EventStream {
        let start = Start {
            opening: Some(opening),
            replay: replay_after.map(|after| Replay { after, selection }),
        };
        EventStream {
            hub,
            subscription,
            start: Some(Box::new(start)),
            // The client has what is at or before its position: a live event there (a
            // cluster node's reader catching up to an id the client got from this node's
            // publish answer) is not written again.
            through: replay_after.unwrap_or(EventId::ZERO),
        }
    }

    /// The opening bytes, if they were not taken yet, counted as written: a caller that
    /// writes its own response head takes them to send both in one write.
    pub fn take_opening(&mut self) -> Option<Bytes> {
        let opening = self.start.as_mut()?.opening.take();
        self.settle();
        if let Some(bytes) = &opening {
            Metrics::add(&self.hub.metrics.bytes_written, bytes.len() as u64);
        }
        opening
    }

    /// Frees the start once nothing is left in it.
    fn settle(&mut self) {
        if self
            .start
            .as_ref()
            .is_some_and(|s| s.opening.is_none() && s.replay.is_none())
        {
            self.start = None;
        }
    }

    /// Next replay page as one buffer; `None` once the replay has caught up with the store.
    fn replay_page(&mut self) -> Option<Bytes> {
        loop {
            let replay = self.start.as_mut()?.replay.as_mut()?;
            let selection = &replay.selection;
            let filter = |e: &ssehub_core::Event| selection.selects(e);
            let page = match self.hub.store.read(replay.after, &filter, REPLAY_PAGE) {
                Ok(page) => page,
                Err(e) => {
                    // Ending the stream makes the client reconnect and retry from its id.
                    tracing::error!(error = %e, "replay read failed; ending the stream");
                    self.start = None;
                    self.subscription = None;
                    return None;
                }
            };
            replay.after = page.through;
            self.through = self.through.max(page.through);
            if page.at_head {
                if let Some(start) = self.start.as_mut() {
                    start.replay = None;
                }
                self.settle();
            }
            if !page.events.is_empty() {
                Metrics::add(&self.hub.metrics.replayed, page.events.len() as u64);
                let len = page.events.iter().map(|e| e.encoded.len()).sum();
                let mut buf = Vec::with_capacity(len);
                for e in &page.events {
                    buf.extend_from_slice(&e.encoded);
                }
                return Some(Bytes::from(buf));
            }
        }
    }

    /// Joins the drained items into one buffer, skipping events the replay already wrote.
    fn join(&self, items: VecDeque<Item>) -> Option<Bytes> {
        let fresh = |item: &&Item| match item {
            Item::Event(e) => e.id > self.through,
            Item::Raw(_) => true,
        };
        let mut live = items.iter().filter(fresh);
        let first = live.next()?;
        let Some(second) = live.next() else {
            return Some(first.bytes().clone());
        };
        let mut buf = Vec::with_capacity(items.iter().map(|i| i.bytes().len()).sum());
        for item in [first, second].into_iter().chain(live) {
            buf.extend_from_slice(item.bytes());
        }
        Some(Bytes::from(buf))
    }

    /// True when the subscriber's outbox overflowed (its stream must end); otherwise
    /// registers `waker` to learn of an overflow while a write is blocked.
    pub fn overflowed(&self, waker: &std::task::Waker) -> bool {
        self.subscription
            .as_ref()
            .is_some_and(|s| s.subscriber.outbox.overflowed(waker))
    }

    fn written(&self, bytes: Bytes) -> Poll<Option<Result<Frame<Bytes>, Infallible>>> {
        Metrics::add(&self.hub.metrics.bytes_written, bytes.len() as u64);
        Poll::Ready(Some(Ok(Frame::data(bytes))))
    }
}

impl Body for EventStream {
    type Data = Bytes;
    type Error = Infallible;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Infallible>>> {
        let this = self.get_mut();
        if let Some(opening) = this.take_opening() {
            return Poll::Ready(Some(Ok(Frame::data(opening))));
        }
        if let Some(page) = this.replay_page() {
            return this.written(page);
        }
        let Some(subscription) = &this.subscription else {
            return Poll::Ready(None);
        };
        loop {
            match subscription.subscriber.outbox.drain(cx.waker()) {
                Drained::Items(items) => {
                    if let Some(bytes) = this.join(items) {
                        return this.written(bytes);
                    }
                }
                Drained::Heartbeat => return this.written(this.hub.heartbeat_bytes()),
                Drained::Empty => return Poll::Pending,
                Drained::Closed(reason) => {
                    if reason == CloseReason::Overflow {
                        tracing::debug!(
                            subscriber = subscription.subscriber.id,
                            "stream ended: overflow"
                        );
                    }
                    return Poll::Ready(None);
                }
            }
        }
    }

    fn is_end_stream(&self) -> bool {
        false
    }
}
