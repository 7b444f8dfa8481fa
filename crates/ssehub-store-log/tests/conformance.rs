//! The store conformance suite of ssehub-core, run against the log store under every sync
//! mode and with segments small enough that the suite crosses and deletes segment files.

mod common;

use std::cell::Cell;
use std::time::Duration;

use common::{options, TempDir};
use ssehub_core::conformance;
use ssehub_store_log::{LogStore, SyncMode, DEFAULT_SEGMENT_BYTES};

fn run(sync: SyncMode, segment_bytes: u64) {
    let root = TempDir::new("conformance");
    let n = Cell::new(0);
    conformance::check(&|retention| {
        n.set(n.get() + 1);
        let dir = root.path().join(n.get().to_string());
        Box::new(LogStore::open(&dir, options(retention, sync, segment_bytes)).expect("open"))
    });
}

const BATCH: SyncMode = SyncMode::Batch {
    max_delay: Duration::from_millis(2),
    max_events: 16,
};

#[test]
fn conformance_sync_always() {
    run(SyncMode::Always, DEFAULT_SEGMENT_BYTES);
}

#[test]
fn conformance_sync_batch() {
    run(BATCH, DEFAULT_SEGMENT_BYTES);
}

#[test]
fn conformance_sync_never() {
    run(SyncMode::Never, DEFAULT_SEGMENT_BYTES);
}

#[test]
fn conformance_small_segments() {
    run(SyncMode::Never, 200);
    run(BATCH, 200);
}
