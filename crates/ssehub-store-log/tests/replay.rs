//! Replay at scale: 100k events come back page by page, each page bounded in events and
//! bytes whatever the caller asks, and a Last-Event-ID in the middle resumes right after it.

mod common;

use common::{no_retention, open, options, topic, TempDir};
use ssehub_core::{Locate, NewEvent, Store};
use ssehub_store_log::{SyncMode, MAX_PAGE_BYTES, MAX_PAGE_EVENTS};

#[test]
fn a_replay_of_100k_events_is_paged() {
    let dir = TempDir::new("replay");
    let store = open(
        dir.path(),
        options(no_retention(), SyncMode::Never, 8 << 20),
    );
    let n = 100_000;
    let ids: Vec<_> = (0..n)
        .map(|i| {
            store
                .append(NewEvent::new(
                    topic(if i % 10 == 0 { "ten" } else { "rest" }),
                    format!("{i}"),
                ))
                .unwrap()
                .id
        })
        .collect();

    // Pages of the size asked for, every event once, in order.
    let mut after = store.floor();
    let mut seen = 0;
    let mut pages = 0;
    loop {
        let page = store.read(after, &|_| true, 1000).unwrap();
        pages += 1;
        if !page.at_head {
            assert_eq!(page.events.len(), 1000, "page {pages}");
        }
        for e in &page.events {
            assert_eq!(e.id, ids[seen]);
            assert_eq!(e.data, seen.to_string());
            seen += 1;
        }
        after = page.through;
        if page.at_head {
            break;
        }
    }
    assert_eq!(seen, n);
    assert_eq!(pages, 100);

    // Asking for everything at once still gets bounded pages.
    let page = store.read(store.floor(), &|_| true, usize::MAX).unwrap();
    assert_eq!(page.events.len(), MAX_PAGE_EVENTS);
    assert!(!page.at_head);
    assert_eq!(page.through, ids[MAX_PAGE_EVENTS - 1]);

    // A filter scans the same positions and returns what matches.
    let page = store
        .read(store.floor(), &|e| e.has_topic("ten"), 5000)
        .unwrap();
    assert_eq!(page.events.len(), 500);
    assert_eq!(page.through, ids[4999]);

    // Resume from the middle: located by binary search, replay starts right after it.
    let mid = ids[n / 2];
    assert_eq!(store.locate(&mid.to_string()).unwrap(), Locate::Found(mid));
    let page = store.read(mid, &|_| true, 3).unwrap();
    assert_eq!(
        page.events.iter().map(|e| e.id).collect::<Vec<_>>(),
        ids[n / 2 + 1..n / 2 + 4]
    );
    // An id between two events (never handed out) resumes at the next one.
    let between = ssehub_core::EventId::new(mid.ms, mid.seq + 1_000_000);
    if between < ids[n / 2 + 1] {
        let page = store.read(between, &|_| true, 1).unwrap();
        assert_eq!(page.events[0].id, ids[n / 2 + 1]);
    }
}

#[test]
fn pages_of_large_events_are_bounded_in_bytes() {
    let dir = TempDir::new("replay-bytes");
    let store = open(
        dir.path(),
        options(no_retention(), SyncMode::Never, 4 << 20),
    );
    let body = "y".repeat(64 << 10);
    for _ in 0..300 {
        store
            .append(NewEvent::new(topic("big"), body.clone()))
            .unwrap();
    }
    let mut after = store.floor();
    let mut total = 0;
    loop {
        let page = store.read(after, &|_| true, usize::MAX).unwrap();
        let bytes: usize = page.events.iter().map(|e| e.data.len() + 100).sum();
        assert!(
            bytes as u64 <= MAX_PAGE_BYTES + (65 << 10),
            "page of {bytes} bytes"
        );
        assert!(!page.events.is_empty());
        total += page.events.len();
        after = page.through;
        if page.at_head {
            break;
        }
    }
    assert_eq!(total, 300);
}
