//! Helpers shared by the integration tests: temporary directories and small event makers.

#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};

use ssehub_core::{Event, EventId, NewEvent, Retention, Store, Topic};
use ssehub_store_log::{LogOptions, LogStore, SyncMode};

/// A directory under the system temporary directory, removed on drop.
pub struct TempDir(PathBuf);

impl TempDir {
    pub fn new(tag: &str) -> TempDir {
        static NEXT: AtomicUsize = AtomicUsize::new(0);
        let n = NEXT.fetch_add(1, Ordering::Relaxed);
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.subsec_nanos());
        let path = std::env::temp_dir().join(format!(
            "ssehub-store-log-{tag}-{}-{n}-{nanos}",
            std::process::id()
        ));
        std::fs::create_dir_all(&path).expect("create temp dir");
        TempDir(path)
    }

    pub fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

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

/// The segment files in `dir`, oldest first.
pub fn segments(dir: &Path) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = std::fs::read_dir(dir)
        .expect("read dir")
        .map(|e| e.expect("entry").path())
        .filter(|p| p.extension().is_some_and(|e| e == "log"))
        .collect();
    v.sort();
    v
}

pub fn disk_use(dir: &Path) -> u64 {
    segments(dir)
        .iter()
        .map(|p| std::fs::metadata(p).expect("metadata").len())
        .sum()
}
