//! What `wait_durable` waits for under each sync mode: batch fsyncs when `max_events`
//! appends wait or `max_delay` has passed, always fsyncs at once, never returns at once.

mod common;

use std::sync::mpsc;
use std::time::{Duration, Instant};

use common::{append, no_retention, open, options, read_all, TempDir};
use ssehub_core::{EventId, NewEvent, Store};
use ssehub_store_log::SyncMode;

#[test]
fn batch_fsyncs_when_max_events_are_waiting() {
    let dir = TempDir::new("batch-events");
    let sync = SyncMode::Batch {
        max_delay: Duration::from_secs(3600),
        max_events: 4,
    };
    let store = open(dir.path(), options(no_retention(), sync, 1 << 20));
    let ids: Vec<EventId> = (0..3).map(|i| append(&store, &i.to_string())).collect();
    let (tx, rx) = mpsc::channel();
    std::thread::scope(|s| {
        s.spawn(|| {
            store.wait_durable(ids[2]).unwrap();
            tx.send(()).unwrap();
        });
        assert!(
            rx.recv_timeout(Duration::from_millis(200)).is_err(),
            "no fsync before the batch is full"
        );
        append(&store, "fourth");
        rx.recv_timeout(Duration::from_secs(10))
            .expect("the fourth append completes the batch");
    });
}

#[test]
fn batch_fsyncs_after_max_delay() {
    let dir = TempDir::new("batch-delay");
    let sync = SyncMode::Batch {
        max_delay: Duration::from_millis(80),
        max_events: 1_000_000,
    };
    let store = open(dir.path(), options(no_retention(), sync, 1 << 20));
    let started = Instant::now();
    let id = append(&store, "one");
    store.wait_durable(id).unwrap();
    assert!(
        started.elapsed() >= Duration::from_millis(75),
        "waited {:?}",
        started.elapsed()
    );
    // Already durable: returns at once.
    let again = Instant::now();
    store.wait_durable(id).unwrap();
    assert!(again.elapsed() < Duration::from_millis(75));
}

#[test]
fn concurrent_publishers_share_fsyncs_under_every_mode() {
    for sync in [
        SyncMode::Always,
        SyncMode::Batch {
            max_delay: Duration::from_millis(2),
            max_events: 64,
        },
        SyncMode::Never,
    ] {
        let dir = TempDir::new("concurrent");
        let store = open(dir.path(), options(no_retention(), sync, 16 << 10));
        std::thread::scope(|s| {
            for t in 0..8 {
                let store = &store;
                s.spawn(move || {
                    let mut last = EventId::ZERO;
                    for i in 0..100 {
                        let id = append(store, &format!("{t}-{i}"));
                        assert!(id > last);
                        store.wait_durable(id).unwrap();
                        last = id;
                    }
                });
            }
        });
        let all = read_all(&store, 1000);
        assert_eq!(all.len(), 800, "{sync:?}");
        assert!(all.windows(2).all(|w| w[0].id < w[1].id));
        store.sync().unwrap();
    }
}

#[test]
fn waiting_for_an_id_not_yet_appended_does_not_hang() {
    let dir = TempDir::new("future-wait");
    let sync = SyncMode::Batch {
        max_delay: Duration::from_millis(1),
        max_events: 8,
    };
    let store = open(dir.path(), options(no_retention(), sync, 1 << 20));
    store.wait_durable(EventId::new(u64::MAX, 0)).unwrap();
    let id = append(&store, "x");
    store
        .wait_durable(EventId::new(id.ms + 1_000_000, 0))
        .unwrap();
}

#[test]
fn on_durable_calls_back_after_the_covering_fsync() {
    for sync in [
        SyncMode::Always,
        SyncMode::Batch {
            max_delay: Duration::from_millis(2),
            max_events: 16,
        },
        SyncMode::Never,
    ] {
        let dir = TempDir::new("on-durable");
        let store = std::sync::Arc::new(open(dir.path(), options(no_retention(), sync, 8 << 10)));
        let (tx, rx) = mpsc::channel();
        for i in 0..300 {
            let id = append(&*store, &i.to_string());
            let tx = tx.clone();
            store.on_durable(id, move |r| tx.send((id, r.is_ok())).unwrap());
        }
        let mut got: Vec<(EventId, bool)> = (0..300)
            .map(|_| {
                rx.recv_timeout(Duration::from_secs(10))
                    .expect("every callback is called")
            })
            .collect();
        assert!(got.iter().all(|(_, ok)| *ok), "{sync:?}");
        got.sort();
        got.dedup();
        assert_eq!(got.len(), 300, "{sync:?}: each callback once");

        // A callback may append and register another: it runs without the store's locks.
        let (tx2, rx2) = mpsc::channel();
        let id = append(&*store, "first");
        let s2 = store.clone();
        store.on_durable(id, move |_| {
            let next = s2
                .append(NewEvent::new(common::topic("a"), "from a callback"))
                .unwrap()
                .id;
            s2.on_durable(next, move |r| tx2.send(r.is_ok()).unwrap());
        });
        assert!(rx2
            .recv_timeout(Duration::from_secs(10))
            .expect("chained callback"));
    }
}

#[test]
fn pending_callbacks_are_called_when_the_store_closes() {
    let dir = TempDir::new("on-durable-drop");
    let sync = SyncMode::Batch {
        max_delay: Duration::from_secs(3600),
        max_events: 1_000_000,
    };
    let store = open(dir.path(), options(no_retention(), sync, 1 << 20));
    let (tx, rx) = mpsc::channel();
    let id = append(&store, "x");
    store.on_durable(id, move |r| tx.send(r.is_ok()).unwrap());
    assert!(
        rx.recv_timeout(Duration::from_millis(100)).is_err(),
        "not before the batch is due"
    );
    drop(store);
    assert!(rx
        .recv_timeout(Duration::from_secs(5))
        .expect("called at close"));
}

#[test]
fn default_batch_never_waits_for_a_window() {
    // Leader-follower group commit: a sequential publisher's wait starts its fsync at once
    // instead of sleeping until a window closes (which cost ~2 ms per publish before).
    let dir = TempDir::new("batch-leader");
    let store = open(
        dir.path(),
        options(no_retention(), SyncMode::default(), 1 << 20),
    );
    for i in 0..50 {
        let id = append(&store, &i.to_string());
        store.wait_durable(id).unwrap();
    }
    assert_eq!(store.idle_waits(), 0, "no wait without an fsync running");

    // The counter does see a window: with one, each lone wait sleeps until it closes.
    let dir = TempDir::new("batch-window");
    let sync = SyncMode::Batch {
        max_delay: Duration::from_millis(100),
        max_events: 256,
    };
    let store = open(dir.path(), options(no_retention(), sync, 1 << 20));
    for i in 0..3 {
        let id = append(&store, &i.to_string());
        store.wait_durable(id).unwrap();
    }
    assert!(store.idle_waits() >= 3, "{}", store.idle_waits());
}

#[test]
fn sync_stats_count_and_time_every_fsync() {
    let dir = TempDir::new("sync-stats");
    let store = open(
        dir.path(),
        options(no_retention(), SyncMode::Always, 1 << 20),
    );
    let before = store.sync_stats();
    for i in 0..3 {
        let id = append(&store, &i.to_string());
        store.wait_durable(id).unwrap();
    }
    let after = store.sync_stats();
    assert_eq!(
        after.fsyncs - before.fsyncs,
        3,
        "one fsync per waited append"
    );
    assert!(after.fsync_nanos > before.fsync_nanos, "{after:?}");
    // Already durable: no fsync, nothing counted.
    store.wait_durable(EventId::ZERO).unwrap();
    assert_eq!(store.sync_stats(), after);

    let never = TempDir::new("sync-stats-never");
    let store = open(
        never.path(),
        options(no_retention(), SyncMode::Never, 1 << 20),
    );
    let id = append(&store, "x");
    store.wait_durable(id).unwrap();
    assert_eq!(
        store.sync_stats().fsyncs,
        0,
        "SyncMode::Never does not fsync"
    );
}
