//! The in-memory store: a bounded ring of recent events, lost when the hub stops.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, RwLock};
use std::time::{SystemTime, UNIX_EPOCH};

use crate::event::{Event, NewEvent};
use crate::id::EventId;
use crate::store::{Locate, ReadBatch, Retention, Store, StoreError, StoreStats};

/// Keeps the newest events in memory, trimmed by [`Retention`].
pub struct MemoryStore {
    retention: Retention,
    inner: RwLock<Inner>,
}

struct Inner {
    /// Retained events, oldest first; ids strictly increasing.
    events: VecDeque<Arc<Event>>,
    /// Publisher-chosen ids of retained events.
    custom: HashMap<Box<str>, EventId>,
    bytes: u64,
    /// Every event after this position is retained. Starts at the creation time, so ids of
    /// an earlier run of the hub read as expired rather than complete.
    floor: EventId,
    /// The last id handed out.
    last: EventId,
}

pub(crate) fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

impl MemoryStore {
    pub fn new(retention: Retention) -> MemoryStore {
        let start = EventId::new(now_ms(), 0);
        MemoryStore {
            retention,
            inner: RwLock::new(Inner {
                events: VecDeque::new(),
                custom: HashMap::new(),
                bytes: 0,
                floor: start,
                last: start,
            }),
        }
    }

    /// An empty store for a mirror of a shared log: every event after `floor` will be
    /// [`inserted`](MemoryStore::insert), so replays from an id at or past it are complete.
    pub fn mirror(retention: Retention, floor: EventId) -> MemoryStore {
        let store = MemoryStore::new(retention);
        {
            let mut inner = store.inner.write().unwrap_or_else(|e| e.into_inner());
            inner.floor = floor;
            inner.last = floor;
        }
        store
    }

    fn trim(&self, inner: &mut Inner, now: u64) {
        let r = &self.retention;
        let age_floor = r
            .max_age
            .map(|age| now.saturating_sub(age.as_millis() as u64));
        while let Some(oldest) = inner.events.front() {
            let over_count = r.max_events.is_some_and(|n| inner.events.len() as u64 > n);
            let over_bytes = r.max_bytes.is_some_and(|n| inner.bytes > n);
            let too_old = age_floor.is_some_and(|f| oldest.id.ms < f);
            if !(over_count || over_bytes || too_old) {
                break;
            }
            let gone = inner.events.pop_front().expect("front exists");
            inner.bytes -= gone.encoded.len() as u64;
            if let Some(custom) = &gone.custom_id {
                if inner.custom.get(custom.as_str()) == Some(&gone.id) {
                    inner.custom.remove(custom.as_str());
                }
            }
            inner.floor = gone.id;
        }
    }

    /// Adds an event whose id was given elsewhere (a cluster's shared log). Events must come
    /// in id order; one at or before the newest is ignored. Returns whether it was added.
    pub fn insert(&self, event: Arc<Event>) -> bool {
        let mut inner = self.inner.write().unwrap_or_else(|e| e.into_inner());
        if event.id <= inner.last {
            return false;
        }
        inner.last = event.id;
        inner.bytes += event.encoded.len() as u64;
        if let Some(custom) = &event.custom_id {
            inner.custom.insert(custom.as_str().into(), event.id);
        }
        inner.events.push_back(event);
        self.trim(&mut inner, now_ms());
        true
    }

    /// Index of the first retained event with an id greater than `after`.
    fn first_after(events: &VecDeque<Arc<Event>>, after: EventId) -> usize {
        events.partition_point(|e| e.id <= after)
    }
}

impl Store for MemoryStore {
    fn append(&self, new: NewEvent) -> Result<Arc<Event>, StoreError> {
        self.append_after(new, EventId::ZERO)
    }

    /// Nothing outlives the process: an event is as durable as it gets once appended.
    fn durable_at_append(&self) -> bool {
        true
    }

    fn append_after(&self, new: NewEvent, after: EventId) -> Result<Arc<Event>, StoreError> {
        let now = now_ms();
        let mut inner = self.inner.write().unwrap_or_else(|e| e.into_inner());
        let id = inner.last.max(after).next(now);
        inner.last = id;
        let event = Arc::new(Event::assign(id, new));
        inner.bytes += event.encoded.len() as u64;
        if let Some(custom) = &event.custom_id {
            inner.custom.insert(custom.as_str().into(), id);
        }
        inner.events.push_back(event.clone());
        self.trim(&mut inner, now);
        Ok(event)
    }

    fn read(
        &self,
        after: EventId,
        filter: &dyn Fn(&Event) -> bool,
        scan_limit: usize,
    ) -> Result<ReadBatch, StoreError> {
        let inner = self.inner.read().unwrap_or_else(|e| e.into_inner());
        let start = Self::first_after(&inner.events, after);
        let end = start.saturating_add(scan_limit).min(inner.events.len());
        let scanned = inner.events.range(start..end);
        let events = scanned.clone().filter(|e| filter(e)).cloned().collect();
        let through = scanned.last().map_or(after.max(inner.floor), |e| e.id);
        Ok(ReadBatch {
            events,
            through,
            at_head: end == inner.events.len(),
        })
    }

    fn locate(&self, last_event_id: &str) -> Result<Locate, StoreError> {
        let inner = self.inner.read().unwrap_or_else(|e| e.into_inner());
        if let Some(id) = inner.custom.get(last_event_id) {
            return Ok(Locate::Found(*id));
        }
        Ok(match last_event_id.parse::<EventId>() {
            Ok(id) if id > inner.last => Locate::Unknown,
            Ok(id) if id >= inner.floor => Locate::Found(id),
            Ok(_) => Locate::Expired,
            Err(_) => Locate::Unknown,
        })
    }

    fn floor(&self) -> EventId {
        self.inner.read().unwrap_or_else(|e| e.into_inner()).floor
    }

    fn stats(&self) -> StoreStats {
        let inner = self.inner.read().unwrap_or_else(|e| e.into_inner());
        StoreStats {
            events: inner.events.len() as u64,
            bytes: inner.bytes,
            oldest: inner.events.front().map(|e| e.id),
            newest: inner.events.back().map(|e| e.id),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn conformance() {
        crate::conformance::check(&|retention| Box::new(MemoryStore::new(retention)));
    }

    #[test]
    fn trims_by_age() {
        let store = MemoryStore::new(Retention {
            max_events: None,
            max_age: Some(Duration::from_millis(0)),
            max_bytes: None,
        });
        let t = vec![crate::Topic::new("a").unwrap()];
        store.append(NewEvent::new(t.clone(), "1")).unwrap();
        std::thread::sleep(Duration::from_millis(5));
        store.append(NewEvent::new(t, "2")).unwrap();
        assert!(store.stats().events <= 1);
    }
}
