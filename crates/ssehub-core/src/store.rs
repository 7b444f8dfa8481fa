//! The store: where the history lives. The seam between the hub and its storage engines.
//!
//! The hub calls a store from one place per operation (publish appends, subscribe locates
//! and reads) and holds no lock of its own while a read runs. Every implementation runs the
//! suite in [`crate::conformance`].

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use crate::event::{Event, NewEvent};
use crate::id::EventId;
use crate::topic::Topic;

/// How much history a store keeps. `None` means no bound of that kind.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Retention {
    /// Most events kept (over all topics).
    pub max_events: Option<u64>,
    /// Oldest event kept.
    pub max_age: Option<Duration>,
    /// Most bytes of encoded events kept.
    pub max_bytes: Option<u64>,
}

impl Retention {
    pub fn events(n: u64) -> Retention {
        Retention {
            max_events: Some(n),
            max_age: None,
            max_bytes: None,
        }
    }
}

/// Where a client's `Last-Event-ID` puts it in the history.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Locate {
    /// Every retained event after this position is what the client has not seen; nothing
    /// it has not seen was dropped.
    Found(EventId),
    /// The id is older than the retained history: events the client has not seen may have
    /// been dropped. Replay starts at the oldest retained event.
    Expired,
    /// The store has never known this id.
    Unknown,
}

/// One page of a replay.
#[derive(Clone, Debug, Default)]
pub struct ReadBatch {
    /// Matching events, oldest first.
    pub events: Vec<Arc<Event>>,
    /// The position scanned through: the next page starts after it.
    pub through: EventId,
    /// True when the page reached the newest event in the store.
    pub at_head: bool,
}

/// Figures a store reports for `/metrics` and `/topics`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct StoreStats {
    pub events: u64,
    pub bytes: u64,
    pub oldest: Option<EventId>,
    pub newest: Option<EventId>,
}

/// A store's fsyncs since it opened, for `/metrics` and the dashboard: a count and a sum, so
/// a reader that samples twice gets the mean latency between its samples. A store that
/// never fsyncs (memory, a cluster's mirror) reports zeros.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct SyncStats {
    pub fsyncs: u64,
    /// Time spent in those fsyncs, in nanoseconds.
    pub fsync_nanos: u64,
}

/// A store failed. The publish or subscribe that hit it gets a 5xx; nothing is half-done.
#[derive(Debug)]
pub enum StoreError {
    Io(std::io::Error),
    /// Stored data did not decode; names the file or key at fault.
    Corrupt(String),
    Unavailable(String),
    /// A capacity limit was reached (the hub's topic table, say): retry later; nothing was
    /// done. Names the limit.
    Full(String),
}

impl fmt::Display for StoreError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            StoreError::Io(e) => write!(f, "store i/o error: {e}"),
            StoreError::Corrupt(what) => write!(f, "store data is corrupt: {what}"),
            StoreError::Unavailable(why) => write!(f, "store unavailable: {why}"),
            StoreError::Full(why) => write!(f, "at capacity: {why}"),
        }
    }
}

impl std::error::Error for StoreError {}

impl From<std::io::Error> for StoreError {
    fn from(e: std::io::Error) -> Self {
        StoreError::Io(e)
    }
}

/// A history of events in id order.
///
/// Contract (checked by [`crate::conformance::check`]):
/// - `append` gives each event an id greater than every id given before, also across a
///   restart of a persistent store, and returns the stored event;
/// - `read` returns, oldest first, the retained events after `after` that `filter` accepts,
///   scanning at most `scan_limit` events, so that a reader can page through any history;
/// - `locate` maps a client's `Last-Event-ID` (a position or a publisher's custom id) to a
///   position, telling apart "complete from here", "you missed events" and "never seen".
pub trait Store: Send + Sync + 'static {
    fn append(&self, event: NewEvent) -> Result<Arc<Event>, StoreError>;

    fn read(
        &self,
        after: EventId,
        filter: &dyn Fn(&Event) -> bool,
        scan_limit: usize,
    ) -> Result<ReadBatch, StoreError>;

    fn locate(&self, last_event_id: &str) -> Result<Locate, StoreError>;

    /// Like [`Store::locate`], for a subscriber that can only receive events on `topics`
    /// (`None`: any topic, as for a pattern). A store whose topics are kept for different
    /// times ([`crate::ClassedStore`]) answers `Expired` only when history the subscriber
    /// could want is gone, not when another topic's shorter retention trimmed past the id.
    fn locate_for(
        &self,
        last_event_id: &str,
        topics: Option<&[Topic]>,
    ) -> Result<Locate, StoreError> {
        let _ = topics;
        self.locate(last_event_id)
    }

    /// The position from which every later event is retained: a replay after any id at or
    /// past it is complete.
    fn floor(&self) -> EventId;

    /// Where a replay of the whole retained history starts: every retained event is after
    /// it. The floor for a store with one retention; the lowest floor of its classes for a
    /// [`crate::ClassedStore`] (whose floor is the highest).
    fn replay_start(&self) -> EventId {
        self.floor()
    }

    /// Appends like [`Store::append`], with an id greater than `after` as well as every id
    /// this store gave before: how a [`crate::ClassedStore`] keeps one id sequence over
    /// several stores. A store that cannot take part in one refuses.
    fn append_after(&self, event: NewEvent, after: EventId) -> Result<Arc<Event>, StoreError> {
        let _ = (event, after);
        Err(StoreError::Unavailable(
            "this store cannot hold a retention class".into(),
        ))
    }

    /// Appends `events` in order, as [`Store::append`] does each: the stored events, and the
    /// error that stopped the batch part-way, if any (the events before it are stored). A
    /// store that can write many records at once (the log: one write for the lot) does.
    fn append_batch(&self, events: Vec<NewEvent>) -> (Vec<Arc<Event>>, Result<(), StoreError>) {
        let mut stored = Vec::with_capacity(events.len());
        for new in events {
            match self.append(new) {
                Ok(event) => stored.push(event),
                Err(e) => return (stored, Err(e)),
            }
        }
        (stored, Ok(()))
    }

    fn stats(&self) -> StoreStats;

    /// Fsyncs so far and the time they took; zeros for a store that does not fsync.
    fn sync_stats(&self) -> SyncStats {
        SyncStats::default()
    }

    /// Blocks until the event `id` (and every event before it) is as durable as the store's
    /// sync setting promises. The hub calls it off the async runtime before answering a
    /// publish, so group commit can batch many publishes into one fsync.
    fn wait_durable(&self, id: EventId) -> Result<(), StoreError> {
        let _ = id;
        Ok(())
    }

    /// Calls `done` once `id` is durable: at once for stores that have nothing to wait
    /// for, later (from the store's own thread) for group commit. The hub awaits this
    /// instead of blocking a thread per publish.
    fn on_durable(&self, id: EventId, done: DurableCallback) {
        done(self.wait_durable(id));
    }

    /// True when every appended event is at once as durable as the store promises (memory):
    /// [`Store::on_durable`] would call back before returning, so the hub answers a publish
    /// without setting up the wait.
    fn durable_at_append(&self) -> bool {
        false
    }
}

/// What [`Store::on_durable`] calls when the event is durable, or the store failed.
pub type DurableCallback = Box<dyn FnOnce(Result<(), StoreError>) + Send>;
