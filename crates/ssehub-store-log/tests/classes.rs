//! Retention classes over log stores: the conformance suites with several classes, the
//! directory layout, and one id sequence across classes and across reopening.

mod common;

use std::cell::Cell;
use std::sync::Arc;
use std::time::Duration;

use common::{no_retention, options, TempDir};
use ssehub_core::{
    conformance, ClassedStore, Locate, NewEvent, Retention, Store, Topic, TopicPattern,
};
use ssehub_store_log::{class_dir, open_classed, LogOptions, LogStore, SyncMode};

const BATCH: SyncMode = SyncMode::Batch {
    max_delay: Duration::from_millis(2),
    max_events: 16,
};

fn pattern(p: &str) -> TopicPattern {
    TopicPattern::new(p).expect("pattern")
}

fn publish(store: &dyn Store, topic: &str, data: &str) -> ssehub_core::EventId {
    store
        .append(NewEvent::new(vec![Topic::new(topic).expect("topic")], data))
        .expect("append")
        .id
}

#[test]
fn conformance_with_log_classes() {
    let root = TempDir::new("classes-conformance");
    let n = Cell::new(0);
    let next_dir = || {
        n.set(n.get() + 1);
        root.path().join(n.get().to_string())
    };
    conformance::check(&|retention| {
        let o = |r: Retention| options(r, BATCH, 200);
        let rules = vec![
            (pattern("x"), o(retention.clone())),
            (pattern("y"), o(retention.clone())),
        ];
        Box::new(
            open_classed(&next_dir(), o(retention), rules)
                .expect("open")
                .store,
        )
    });
    conformance::check_classes(&|default, short, long| {
        let o = |r: Retention| options(r, SyncMode::Never, 200);
        let rules = vec![(pattern("short/*"), o(short)), (pattern("long/*"), o(long))];
        Box::new(
            open_classed(&next_dir(), o(default), rules)
                .expect("open")
                .store,
        )
    });
}

#[test]
fn classes_live_in_their_own_directories_and_ids_survive_reopening() {
    let root = TempDir::new("classes-reopen");
    let dir = root.path().join("data");
    let o = |r: Retention| options(r, BATCH, 300);
    let rules = || {
        vec![
            (pattern("prices/*"), o(Retention::events(5))),
            (pattern("chat/**"), o(no_retention())),
        ]
    };
    let mut last = ssehub_core::EventId::ZERO;
    let mut chat = Vec::new();
    {
        let log = open_classed(&dir, o(Retention::events(1000)), rules()).expect("open");
        assert_eq!(log.opened.len(), 3);
        assert!(log.unused.is_empty());
        for i in 0..40 {
            let p = publish(&log.store, "prices/eur", &i.to_string());
            let c = publish(&log.store, "chat/room/1", &i.to_string());
            assert!(p > last && c > p);
            last = c;
            chat.push(c);
        }
        publish(&log.store, "news", "n");
    }
    {
        let prices = LogStore::open(&class_dir(&dir, &pattern("prices/*")), o(no_retention()))
            .expect("open prices");
        assert_eq!(prices.stats().events, 5, "the short class kept 5");
        let chat_log = LogStore::open(&class_dir(&dir, &pattern("chat/**")), o(no_retention()))
            .expect("open chat");
        assert_eq!(chat_log.stats().events, 40, "the long class kept all");
        assert!(
            chat_log.segment_count() > 1,
            "small segments: several files"
        );
        let default = LogStore::open(&dir, o(no_retention())).expect("open default");
        assert_eq!(default.stats().events, 1, "the default class has the rest");
    }
    // Reopen with the rules reordered: each class keeps its history; ids go on increasing
    // after the newest of all classes, whichever class the next event goes to.
    let reordered = vec![
        (pattern("chat/**"), o(no_retention())),
        (pattern("prices/*"), o(Retention::events(5))),
    ];
    let log = open_classed(&dir, o(Retention::events(1000)), reordered).expect("reopen");
    let next = publish(&log.store, "news", "after");
    assert!(next > last, "{next} after {last}");
    let chat_topic = vec![Topic::new("chat/room/1").expect("topic")];
    assert_eq!(
        log.store
            .locate_for(&chat[0].to_string(), Some(&chat_topic))
            .expect("locate"),
        Locate::Found(chat[0]),
        "the chat subscriber resumes from its oldest event"
    );
    assert_eq!(
        log.store
            .locate_for(&chat[0].to_string(), None)
            .expect("locate"),
        Locate::Expired,
        "a subscriber of any topic lost prices events"
    );
    drop(log);
    // A rule removed: its directory is reported unused, not deleted.
    let log = open_classed(
        &dir,
        o(Retention::events(1000)),
        vec![(pattern("chat/**"), o(no_retention()))],
    )
    .expect("reopen");
    assert_eq!(log.unused, vec![class_dir(&dir, &pattern("prices/*"))]);
    assert!(log.unused[0].is_dir());
}

#[test]
fn durable_callbacks_wait_for_every_class() {
    let root = TempDir::new("classes-durable");
    let o = |sync| {
        let mut o = LogOptions::new(no_retention());
        o.sync = sync;
        o
    };
    let log = open_classed(
        root.path(),
        o(SyncMode::Always),
        vec![(pattern("b"), o(BATCH))],
    )
    .expect("open");
    let store: Arc<ClassedStore> = Arc::new(log.store);
    let (tx, rx) = std::sync::mpsc::channel();
    for topic in ["a", "b", "a"] {
        let id = publish(&*store, topic, "x");
        let tx = tx.clone();
        store.on_durable(
            id,
            Box::new(move |r| tx.send((id, r.is_ok())).expect("send")),
        );
        store.wait_durable(id).expect("durable");
    }
    let mut got: Vec<_> = (0..3)
        .map(|_| rx.recv_timeout(Duration::from_secs(10)).expect("callback"))
        .collect();
    got.sort();
    assert!(got.iter().all(|(_, ok)| *ok));
}
