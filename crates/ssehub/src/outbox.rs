//! The outbox: one subscriber's bounded queue between the publisher and its socket.
//!
//! Publishers push shared pointers (never copies of the event bytes); the subscriber's stream
//! drains everything queued in one go, so one socket write can carry many events. The queue
//! is bounded in bytes: a subscriber that does not read fast enough is closed with
//! [`CloseReason::Overflow`] and its queue dropped — its client reconnects with
//! `Last-Event-ID` and catches up from the history, so a slow reader never holds memory or
//! slows anyone else.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex, MutexGuard};
use std::task::Waker;

use bytes::Bytes;
use ssehub_core::{Event, EventId};

/// Something queued for a subscriber.
#[derive(Clone, Debug)]
pub enum Item {
    /// A stored event; its bytes are shared with every other subscriber.
    Event(Arc<Event>),
    /// Bytes that are not part of the history: heartbeats, presence, control events.
    Raw(Bytes),
}

impl Item {
    pub fn bytes(&self) -> &Bytes {
        match self {
            Item::Event(e) => &e.encoded,
            Item::Raw(b) => b,
        }
    }
}

/// Why an outbox stopped taking items.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CloseReason {
    /// The buffer limit was reached: the subscriber reads too slowly.
    Overflow,
    /// Every topic of the subscription was closed; the stream ends after what is queued.
    TopicsClosed,
    /// The hub is shutting down; the stream ends after what is queued.
    Shutdown,
    /// The subscriber's token expired (or its stream lifetime is over).
    Expired,
}

/// Every subscriber has one, so it is kept small: the limit sits in the lock's padding.
pub struct Outbox {
    inner: Mutex<Inner>,
}

struct Inner {
    items: VecDeque<Item>,
    bytes: usize,
    /// The buffer limit in bytes (at most 4 GiB).
    limit: u32,
    /// Id of the newest event queued: an event on several topics the subscriber follows is
    /// pushed once per topic, and queued once.
    last: EventId,
    closed: Option<CloseReason>,
    /// A heartbeat is owed to an idle stream: a flag, not a queued item, so a heartbeat to
    /// every idle stream allocates nothing.
    beat: bool,
    /// The stream waiting for items, if it is waiting.
    waker: Option<Waker>,
}

/// What [`Outbox::drain`] found.
pub enum Drained {
    Items(VecDeque<Item>),
    /// Nothing queued but a heartbeat (the caller has the bytes).
    Heartbeat,
    /// Nothing queued; the waker is registered.
    Empty,
    /// Nothing queued and nothing will come.
    Closed(CloseReason),
}

impl Outbox {
    pub fn new(limit: usize) -> Outbox {
        Outbox {
            inner: Mutex::new(Inner {
                items: VecDeque::new(),
                bytes: 0,
                limit: u32::try_from(limit).unwrap_or(u32::MAX),
                last: EventId::ZERO,
                closed: None,
                beat: false,
                waker: None,
            }),
        }
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Queues `event` unless it is queued already or the outbox is closed. Returns whether it
    /// was queued, and `Err(Overflow)` when this push closed the outbox.
    pub fn push_event(&self, event: &Arc<Event>) -> Result<bool, CloseReason> {
        let mut inner = self.lock();
        if inner.closed.is_some() || event.id <= inner.last {
            return Ok(false);
        }
        inner.last = event.id;
        Self::push(&mut inner, Item::Event(event.clone())).map(|()| true)
    }

    /// Queues bytes outside the history (heartbeat, presence).
    pub fn push_raw(&self, bytes: Bytes) -> Result<(), CloseReason> {
        let mut inner = self.lock();
        if inner.closed.is_some() {
            return Ok(());
        }
        Self::push(&mut inner, Item::Raw(bytes))
    }

    /// Owes the stream a heartbeat. An idle stream gets a flag; one with items queued gets
    /// nothing, as what it is about to write keeps the connection alive as well.
    pub fn push_heartbeat(&self) {
        let mut inner = self.lock();
        if inner.closed.is_none() && inner.items.is_empty() {
            inner.beat = true;
            Self::wake(&mut inner);
        }
    }

    fn push(inner: &mut Inner, item: Item) -> Result<(), CloseReason> {
        let len = item.bytes().len();
        if inner.bytes + len > inner.limit as usize {
            inner.items.clear();
            inner.bytes = 0;
            inner.closed = Some(CloseReason::Overflow);
            Self::wake(inner);
            return Err(CloseReason::Overflow);
        }
        inner.bytes += len;
        inner.items.push_back(item);
        Self::wake(inner);
        Ok(())
    }

    fn wake(inner: &mut Inner) {
        if let Some(w) = inner.waker.take() {
            w.wake();
        }
    }

    /// Stops taking items; what is queued is still delivered (except after an overflow).
    pub fn close(&self, reason: CloseReason) {
        let mut inner = self.lock();
        if inner.closed.is_none() {
            inner.closed = Some(reason);
        }
        Self::wake(&mut inner);
    }

    /// True once the outbox has overflowed; otherwise registers `waker`, which the
    /// overflow will wake.
    pub fn overflowed(&self, waker: &Waker) -> bool {
        let mut inner = self.lock();
        if inner.closed == Some(CloseReason::Overflow) {
            return true;
        }
        match &inner.waker {
            Some(w) if w.will_wake(waker) => {}
            _ => inner.waker = Some(waker.clone()),
        }
        false
    }

    /// Takes everything queued, or registers `waker` to be woken by the next push.
    pub fn drain(&self, waker: &Waker) -> Drained {
        let mut inner = self.lock();
        if !inner.items.is_empty() {
            inner.bytes = 0;
            inner.beat = false;
            // Take the whole queue, allocation and all: no copy, and an idle outbox keeps no
            // capacity from its last burst.
            return Drained::Items(std::mem::take(&mut inner.items));
        }
        if let Some(reason) = inner.closed {
            return Drained::Closed(reason);
        }
        if std::mem::take(&mut inner.beat) {
            return Drained::Heartbeat;
        }
        match &inner.waker {
            Some(w) if w.will_wake(waker) => {}
            _ => inner.waker = Some(waker.clone()),
        }
        Drained::Empty
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ssehub_core::{NewEvent, Topic};
    use std::task::Waker;

    fn event(ms: u64, data: &str) -> Arc<Event> {
        let topics = vec![Topic::new("t").unwrap()];
        Arc::new(Event::assign(
            EventId::new(ms, 0),
            NewEvent::new(topics, data),
        ))
    }

    fn items(outbox: &Outbox) -> VecDeque<Item> {
        match outbox.drain(Waker::noop()) {
            Drained::Items(items) => items,
            _ => VecDeque::new(),
        }
    }

    #[test]
    fn queues_an_event_once() {
        let outbox = Outbox::new(1 << 20);
        let e = event(1, "x");
        assert_eq!(outbox.push_event(&e), Ok(true));
        assert_eq!(outbox.push_event(&e), Ok(false));
        assert_eq!(items(&outbox).len(), 1);
    }

    #[test]
    fn overflow_closes_and_drops_the_queue() {
        let outbox = Outbox::new(40);
        assert_eq!(outbox.push_event(&event(1, "0123456789")), Ok(true));
        assert_eq!(
            outbox.push_event(&event(2, "0123456789")),
            Err(CloseReason::Overflow)
        );
        assert!(matches!(
            outbox.drain(Waker::noop()),
            Drained::Closed(CloseReason::Overflow)
        ));
        assert_eq!(outbox.push_event(&event(3, "x")), Ok(false));
    }

    #[test]
    fn a_heartbeat_is_a_flag_on_an_idle_outbox_and_nothing_behind_items() {
        let outbox = Outbox::new(1 << 20);
        outbox.push_heartbeat();
        assert!(matches!(outbox.drain(Waker::noop()), Drained::Heartbeat));
        assert!(matches!(outbox.drain(Waker::noop()), Drained::Empty));
        outbox.push_event(&event(1, "x")).unwrap();
        outbox.push_heartbeat();
        assert_eq!(items(&outbox).len(), 1);
        assert!(matches!(outbox.drain(Waker::noop()), Drained::Empty));
        outbox.close(CloseReason::Shutdown);
        outbox.push_heartbeat();
        assert!(matches!(
            outbox.drain(Waker::noop()),
            Drained::Closed(CloseReason::Shutdown)
        ));
    }

    #[test]
    fn close_delivers_what_is_queued_first() {
        let outbox = Outbox::new(1 << 20);
        outbox.push_event(&event(1, "x")).unwrap();
        outbox.close(CloseReason::TopicsClosed);
        assert_eq!(items(&outbox).len(), 1);
        assert!(matches!(
            outbox.drain(Waker::noop()),
            Drained::Closed(CloseReason::TopicsClosed)
        ));
    }
}
