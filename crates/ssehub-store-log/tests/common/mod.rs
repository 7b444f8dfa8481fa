//! Helpers shared by the store's integration tests: small event makers, options, reading
//! everything back, disk use. Temporary directories and the segment file listing come from
//! ssehub-test-support, which the other crates' tests use too.

#![allow(dead_code)]

use std::path::Path;

use ssehub_core::{Event, EventId, NewEvent, Retention, Store, Topic};
use ssehub_store_log::{LogOptions, LogStore, SyncMode};
pub use ssehub_test_support::{log_segments as segments, TempDir};

pub fn no_retention() -> Retention {
    Retention {
        max_events: None,
        max_age: None,
        max_bytes: None,
    }
}

pub fn options(retention: Retention, sync: SyncMode, segment_bytes: u64) -> LogOptions {
    let mut o = LogOptions::new(retention);
    o.sync = sync;
    o.segment_bytes = segment_bytes;
    o
}

pub fn open(dir: &Path, o: LogOptions) -> LogStore {
    LogStore::open(dir, o).expect("open store")
}

pub fn topic(name: &str) -> Vec<Topic> {
    vec![Topic::new(name).expect("topic")]
}

pub fn append(store: &dyn Store, data: &str) -> EventId {
    store
        .append(NewEvent::new(topic("a"), data))
        .expect("append")
        .id
}

/// Every retained event, paging with `page`.
pub fn read_all(store: &dyn Store, page: usize) -> Vec<std::sync::Arc<Event>> {
    let mut out = Vec::new();
    let mut after = store.floor();
    loop {
        let batch = store.read(after, &|_| true, page).expect("read");
        assert!(batch.events.len() <= page);
        out.extend(batch.events);
        after = batch.through;
        if batch.at_head {
            return out;
        }
    }
}

pub fn disk_use(dir: &Path) -> u64 {
    segments(dir)
        .iter()
        .map(|p| std::fs::metadata(p).expect("metadata").len())
        .sum()
}
