//! Retention by count, bytes and age: the index is trimmed, whole segment files are deleted,
//! and disk use stays bounded over a long run. Readers keep working while files go.

mod common;

use std::time::Duration;

use common::{append, disk_use, no_retention, open, options, read_all, segments, TempDir};
use ssehub_core::{Locate, Retention, Store};
use ssehub_store_log::SyncMode;

const SEG: u64 = 4096;

#[test]
fn count_retention_deletes_segments_and_bounds_disk_use() {
    let dir = TempDir::new("ret-count");
    let store = open(
        dir.path(),
        options(Retention::events(100), SyncMode::Never, SEG),
    );
    let mut ids = Vec::new();
    let mut peak = 0;
    for i in 0..20_000 {
        ids.push(append(&store, &format!("event {i:05}")));
        if i % 500 == 0 {
            peak = peak.max(disk_use(dir.path()));
            assert_eq!(store.disk_bytes(), disk_use(dir.path()));
        }
    }
    let s = store.stats();
    assert_eq!(s.events, 100);
    assert_eq!(s.oldest, Some(ids[19_900]));
    assert!(store.floor() >= ids[19_899] && store.floor() < ids[19_900]);
    // 100 records of ~60 bytes fit in 2 segments; one more may be partly trimmed.
    assert!(
        segments(dir.path()).len() <= 3,
        "{} segments",
        segments(dir.path()).len()
    );
    assert!(peak <= 3 * SEG, "peak disk use {peak}");
    assert_eq!(
        store.locate(&ids[100].to_string()).unwrap(),
        Locate::Expired
    );
    let data: Vec<String> = read_all(&store, 33)
        .iter()
        .map(|e| e.data.clone())
        .collect();
    assert_eq!(data.len(), 100);
    assert_eq!(data[0], "event 19900");
}

#[test]
fn byte_retention_bounds_disk_use() {
    let dir = TempDir::new("ret-bytes");
    let limit = 20_000;
    let store = open(
        dir.path(),
        options(
            Retention {
                max_events: None,
                max_age: None,
                max_bytes: Some(limit),
            },
            SyncMode::Never,
            SEG,
        ),
    );
    // Small events: a record's framing is a large part of its size on disk.
    for i in 0..5_000 {
        append(&store, &i.to_string());
        assert!(
            disk_use(dir.path()) <= limit,
            "disk use {} after {i} appends",
            disk_use(dir.path())
        );
        assert_eq!(disk_use(dir.path()), store.disk_bytes());
    }
    // Whole segments go: what is kept is the limit less at most a segment.
    assert!(
        store.disk_bytes() > limit - SEG,
        "keeps as much as fits: {}",
        store.disk_bytes()
    );
    let s = store.stats();
    assert_eq!(s.events, read_all(&store, 1000).len() as u64);
    assert_eq!(
        read_all(&store, 1000).last().unwrap().data,
        "4999",
        "the newest events are the ones kept"
    );
}

#[test]
fn age_retention_trims_on_append_and_when_idle() {
    let dir = TempDir::new("ret-age");
    let age = Retention {
        max_events: None,
        max_age: Some(Duration::from_millis(200)),
        max_bytes: None,
    };
    let store = open(dir.path(), options(age, SyncMode::Never, 512));
    let old: Vec<_> = (0..100)
        .map(|i| append(&store, &format!("old {i}")))
        .collect();
    assert!(segments(dir.path()).len() > 5);
    std::thread::sleep(Duration::from_millis(300));
    let fresh = append(&store, "fresh");
    assert_eq!(store.stats().events, 1);
    assert_eq!(store.stats().oldest, Some(fresh));
    assert_eq!(store.locate(&old[98].to_string()).unwrap(), Locate::Expired);
    assert_eq!(
        store.locate(&old[99].to_string()).unwrap(),
        Locate::Found(old[99]),
        "the floor"
    );
    assert!(
        segments(dir.path()).len() <= 2,
        "{} segments",
        segments(dir.path()).len()
    );

    // Nobody appends: the background thread trims (it runs about once a second).
    (0..50).for_each(|i| {
        append(&store, &format!("more {i}"));
    });
    let deadline = std::time::Instant::now() + Duration::from_secs(5);
    while store.stats().events > 0 {
        assert!(
            std::time::Instant::now() < deadline,
            "idle store not trimmed by age"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    assert!(segments(dir.path()).len() <= 2);
}

#[test]
fn tighter_retention_at_reopen_deletes_segments() {
    let dir = TempDir::new("ret-reopen");
    let ids: Vec<_> = {
        let store = open(dir.path(), options(no_retention(), SyncMode::Never, SEG));
        (0..1000).map(|i| append(&store, &i.to_string())).collect()
    };
    let before = segments(dir.path()).len();
    let store = open(
        dir.path(),
        options(Retention::events(10), SyncMode::Never, SEG),
    );
    let r = store.recovery();
    assert_eq!(r.records, 1000);
    assert_eq!(r.retained, 10);
    assert!(!r.removed_segments.is_empty());
    assert_eq!(
        segments(dir.path()).len(),
        before - r.removed_segments.len()
    );
    assert_eq!(store.stats().oldest, Some(ids[990]));
    assert_eq!(
        store.locate(&ids[500].to_string()).unwrap(),
        Locate::Expired
    );
}

#[test]
fn readers_keep_reading_while_segments_are_deleted() {
    let dir = TempDir::new("ret-readers");
    let store = open(
        dir.path(),
        options(Retention::events(300), SyncMode::Never, 1024),
    );
    let done = std::sync::atomic::AtomicBool::new(false);
    std::thread::scope(|s| {
        s.spawn(|| {
            for i in 0..20_000 {
                append(&store, &format!("event {i}"));
            }
            done.store(true, std::sync::atomic::Ordering::Relaxed);
        });
        s.spawn(|| {
            let mut pages = 0;
            while !done.load(std::sync::atomic::Ordering::Relaxed) {
                let mut after = store.floor();
                loop {
                    let page = store
                        .read(after, &|_| true, 50)
                        .expect("read while trimming");
                    assert!(page.events.windows(2).all(|w| w[0].id < w[1].id));
                    assert!(page.events.iter().all(|e| e.id > after));
                    after = page.through;
                    pages += 1;
                    if page.at_head {
                        break;
                    }
                }
            }
            assert!(pages > 0);
        });
    });
    assert_eq!(store.stats().events, 300);
}
