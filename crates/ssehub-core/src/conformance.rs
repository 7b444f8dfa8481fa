//! The store conformance suite: the behaviour every [`Store`] must show. Each store's tests
//! call [`check`] with a function that makes a fresh, empty store.

use crate::event::{NewEvent, WireId};
use crate::id::EventId;
use crate::store::{Locate, Retention, Store};
use crate::topic::Topic;

/// Makes an empty store with the given retention.
pub type MakeStore<'a> = &'a dyn Fn(Retention) -> Box<dyn Store>;

/// Runs every check; panics with a message naming the one that failed.
pub fn check(make: MakeStore<'_>) {
    ids_increase(make);
    reads_page_through_everything_once(make);
    reads_filter_by_topic(make);
    locates_positions_and_custom_ids(make);
    trimming_makes_old_ids_expired(make);
    durable_at_append_calls_back_at_once(make);
    batches_append_as_appends_do(make);
}

fn topics(names: &[&str]) -> Vec<Topic> {
    names
        .iter()
        .map(|n| Topic::new(n).expect("valid topic"))
        .collect()
}

fn append(store: &dyn Store, topic: &str, data: &str) -> EventId {
    store
        .append(NewEvent::new(topics(&[topic]), data))
        .expect("append")
        .id
}

fn ids_increase(make: MakeStore<'_>) {
    let store = make(Retention::events(1000));
    let mut last = store.floor();
    for i in 0..200 {
        let e = store
            .append(NewEvent::new(topics(&["a"]), i.to_string()))
            .expect("append");
        assert!(e.id > last, "ids_increase: {} after {}", e.id, last);
        assert_eq!(e.data, i.to_string(), "ids_increase: data kept");
        assert!(e.encoded.ends_with(b"\n\n"), "ids_increase: encoded block");
        last = e.id;
    }
    assert_eq!(store.stats().events, 200, "ids_increase: stats count");
    assert_eq!(
        store.stats().newest,
        Some(last),
        "ids_increase: stats newest"
    );
}

/// `append_batch` stores every event in order, ids increasing across single appends and
/// batches, custom ids locatable, every event read back once.
fn batches_append_as_appends_do(make: MakeStore<'_>) {
    let store = make(Retention::events(1000));
    let first = append(&*store, "a", "single");
    let batch: Vec<NewEvent> = (0..300)
        .map(|i| {
            let mut new =
                NewEvent::new(topics(&[if i % 3 == 0 { "b" } else { "a" }]), i.to_string());
            if i == 150 {
                new.custom_id = Some(WireId::new("batch-150").expect("id"));
            }
            new
        })
        .collect();
    let (stored, result) = store.append_batch(batch);
    result.expect("append_batch");
    assert_eq!(stored.len(), 300, "batches: every event stored");
    let mut last = first;
    for (i, e) in stored.iter().enumerate() {
        assert!(e.id > last, "batches: {} after {}", e.id, last);
        assert_eq!(e.data, i.to_string(), "batches: in order");
        last = e.id;
    }
    assert!(
        append(&*store, "a", "after") > last,
        "batches: ids go on increasing"
    );
    assert_eq!(
        store.locate("batch-150").expect("locate"),
        Locate::Found(stored[150].id)
    );
    let all = store.read(first, &|_| true, 1000).expect("read");
    let data: Vec<&str> = all.events.iter().map(|e| e.data.as_str()).collect();
    let expected: Vec<String> = (0..300)
        .map(|i| i.to_string())
        .chain(["after".into()])
        .collect();
    assert_eq!(data, expected, "batches: read back once, in order");
    assert_eq!(store.stats().events, 302, "batches: stats count");
}

/// A store that says its events are durable once appended must call back from
/// `on_durable` before returning: the hub skips the wait for such a store.
fn durable_at_append_calls_back_at_once(make: MakeStore<'_>) {
    let store = make(Retention::events(10));
    if !store.durable_at_append() {
        return;
    }
    let id = append(&*store, "a", "x");
    let called = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let flag = called.clone();
    store.on_durable(
        id,
        Box::new(move |result| {
            assert!(result.is_ok(), "durable_at_append: on_durable failed");
            flag.store(true, std::sync::atomic::Ordering::SeqCst);
        }),
    );
    assert!(
        called.load(std::sync::atomic::Ordering::SeqCst),
        "durable_at_append: on_durable did not call back at once"
    );
}

fn reads_page_through_everything_once(make: MakeStore<'_>) {
    let store = make(Retention::events(1000));
    let ids: Vec<EventId> = (0..95)
        .map(|i| append(&*store, "a", &i.to_string()))
        .collect();
    let mut seen = Vec::new();
    let mut after = store.floor();
    loop {
        let page = store.read(after, &|_| true, 10).expect("read");
        assert!(
            page.events.len() <= 10,
            "reads_page: page bounded by scan limit"
        );
        seen.extend(page.events.iter().map(|e| e.id));
        assert!(page.through >= after, "reads_page: through moves forward");
        after = page.through;
        if page.at_head {
            break;
        }
    }
    assert_eq!(seen, ids, "reads_page: every event once, in order");
    let tail = store.read(ids[49], &|_| true, 1000).expect("read");
    assert_eq!(
        tail.events.len(),
        45,
        "reads_page: read after an id excludes it"
    );
    assert_eq!(tail.events[0].id, ids[50]);
    assert!(tail.at_head);
    let empty = store.read(ids[94], &|_| true, 1000).expect("read");
    assert!(
        empty.events.is_empty() && empty.at_head,
        "reads_page: nothing after the head"
    );
}

fn reads_filter_by_topic(make: MakeStore<'_>) {
    let store = make(Retention::events(1000));
    for i in 0..30 {
        append(&*store, if i % 3 == 0 { "x" } else { "y" }, &i.to_string());
    }
    store
        .append(NewEvent::new(topics(&["x", "y"]), "both"))
        .expect("append");
    let page = store
        .read(store.floor(), &|e| e.has_topic("x"), 1000)
        .expect("read");
    let data: Vec<&str> = page.events.iter().map(|e| e.data.as_str()).collect();
    assert_eq!(
        data,
        ["0", "3", "6", "9", "12", "15", "18", "21", "24", "27", "both"]
    );
}

fn locates_positions_and_custom_ids(make: MakeStore<'_>) {
    let store = make(Retention::events(1000));
    let first = append(&*store, "a", "1");
    let mut custom = NewEvent::new(topics(&["a"]), "2");
    custom.custom_id = Some(WireId::new("urn:uuid:42").expect("id"));
    let second = store.append(custom).expect("append");
    assert_eq!(second.wire_id(), "urn:uuid:42");
    assert_eq!(
        store.locate(&first.to_string()).expect("locate"),
        Locate::Found(first)
    );
    assert_eq!(
        store.locate("urn:uuid:42").expect("locate"),
        Locate::Found(second.id)
    );
    assert_eq!(store.locate("nonsense").expect("locate"), Locate::Unknown);
    let future = EventId::new(second.id.ms + 10_000_000, 0);
    assert_eq!(
        store.locate(&future.to_string()).expect("locate"),
        Locate::Unknown
    );
    assert_eq!(
        store.locate("1-0").expect("locate"),
        Locate::Expired,
        "an id from before the store"
    );
    let after_custom = store.read(second.id, &|_| true, 10).expect("read");
    assert!(
        after_custom.events.is_empty(),
        "locate: custom id resumes after its event"
    );
}

fn trimming_makes_old_ids_expired(make: MakeStore<'_>) {
    let store = make(Retention::events(3));
    let ids: Vec<EventId> = (0..10)
        .map(|i| append(&*store, "a", &i.to_string()))
        .collect();
    assert_eq!(store.stats().events, 3, "trim: count retention");
    assert_eq!(store.stats().oldest, Some(ids[7]));
    assert!(
        store.floor() >= ids[6] && store.floor() < ids[7],
        "trim: floor at the last trimmed"
    );
    assert_eq!(
        store.locate(&ids[2].to_string()).expect("locate"),
        Locate::Expired
    );
    assert_eq!(
        store.locate(&ids[6].to_string()).expect("locate"),
        Locate::Found(ids[6])
    );
    let rest = store.read(store.floor(), &|_| true, 100).expect("read");
    let data: Vec<&str> = rest.events.iter().map(|e| e.data.as_str()).collect();
    assert_eq!(data, ["7", "8", "9"]);
}

/// Makes an empty classed store: the default class with the first retention, topics
/// `short/*` in a class with the second, topics `long/*` in a class with the third.
pub type MakeClassed<'a> = &'a dyn Fn(Retention, Retention, Retention) -> Box<dyn Store>;

/// The behaviour of retention classes ([`crate::ClassedStore`] over any store); panics with a
/// message naming the check that failed.
pub fn check_classes(make: MakeClassed<'_>) {
    long_class_keeps_what_the_default_trims(make);
    short_class_trimming_resets_only_its_topics(make);
    classes_read_merged_in_id_order(make);
}

fn long_class_keeps_what_the_default_trims(make: MakeClassed<'_>) {
    let store = make(
        Retention::events(3),
        Retention::events(3),
        Retention::events(1000),
    );
    let mut long = Vec::new();
    for i in 0..20 {
        append(&*store, "other", &i.to_string());
        long.push(append(&*store, "long/a", &i.to_string()));
    }
    assert_eq!(store.stats().events, 23, "long_class: 3 default + 20 long");
    let mut after = store.replay_start();
    let mut seen = Vec::new();
    loop {
        let page = store
            .read(after, &|e| e.has_topic("long/a"), 7)
            .expect("read");
        seen.extend(page.events.iter().map(|e| e.id));
        after = page.through;
        if page.at_head {
            break;
        }
    }
    assert_eq!(seen, long, "long_class: every long event kept, in order");
    assert_eq!(
        store
            .locate_for(&long[0].to_string(), Some(&topics(&["long/a"])))
            .expect("locate"),
        Locate::Found(long[0]),
        "long_class: its oldest id still resumes"
    );
}

fn short_class_trimming_resets_only_its_topics(make: MakeClassed<'_>) {
    let store = make(
        Retention::events(1000),
        Retention::events(2),
        Retention::events(1000),
    );
    let first_short = append(&*store, "short/p", "0");
    let mut custom = NewEvent::new(topics(&["long/c"]), "kept");
    custom.custom_id = Some(WireId::new("urn:long:1").expect("id"));
    let custom = store.append(custom).expect("append").id;
    let seen = append(&*store, "long/c", "1");
    for i in 0..10 {
        append(&*store, "short/p", &i.to_string());
    }
    append(&*store, "long/c", "2");
    let long = topics(&["long/c"]);
    let short = topics(&["short/p"]);
    let both = topics(&["long/c", "short/p"]);
    let at = |id: &str, scope: Option<&[Topic]>| store.locate_for(id, scope).expect("locate");
    assert_eq!(
        at(&seen.to_string(), Some(&long)),
        Locate::Found(seen),
        "short_class: a long-topic subscriber resumes though the short class trimmed past it"
    );
    assert_eq!(
        at(&first_short.to_string(), Some(&long)),
        Locate::Found(first_short),
        "short_class: even with an id from the short class"
    );
    assert_eq!(
        at("urn:long:1", Some(&long)),
        Locate::Found(custom),
        "short_class: a custom id of the long class resumes"
    );
    assert_eq!(
        at(&seen.to_string(), Some(&short)),
        Locate::Expired,
        "short_class: a short-topic subscriber was trimmed past"
    );
    assert_eq!(at(&seen.to_string(), Some(&both)), Locate::Expired);
    assert_eq!(
        at(&seen.to_string(), None),
        Locate::Expired,
        "short_class: a pattern subscriber is judged against every class"
    );
    assert_eq!(at("nonsense", Some(&long)), Locate::Unknown);
    let future = EventId::new(seen.ms + 10_000_000, 0);
    assert_eq!(at(&future.to_string(), Some(&long)), Locate::Unknown);
    let page = store
        .read(seen, &|e| e.has_topic("long/c"), 1000)
        .expect("read");
    let data: Vec<&str> = page.events.iter().map(|e| e.data.as_str()).collect();
    assert_eq!(data, ["2"], "short_class: the replay after the id");
}

fn classes_read_merged_in_id_order(make: MakeClassed<'_>) {
    // Uneven short runs, so that pages of one class overtake the others; then long runs,
    // so that whole pages come from one class while the others wait.
    for run in [1, 25] {
        let store = make(
            Retention::events(1000),
            Retention::events(1000),
            Retention::events(1000),
        );
        let names = ["other", "short/a", "long/a", "short/b", "long/a", "long/a"];
        let mut ids: Vec<EventId> = Vec::new();
        for i in 0..150 {
            let topic = names[(i / run * 7 / 5) % names.len()];
            let id = append(&*store, topic, &i.to_string());
            assert!(
                ids.last().is_none_or(|last| id > *last),
                "merged: ids increase"
            );
            ids.push(id);
        }
        for limit in [1, 2, 3, 5, 16, 1000] {
            let mut after = store.replay_start();
            let mut seen = Vec::new();
            loop {
                let page = store.read(after, &|_| true, limit).expect("read");
                assert!(page.through >= after, "merged: through moves forward");
                assert!(
                    page.at_head || page.through > after,
                    "merged: a page short of the head makes progress"
                );
                seen.extend(page.events.iter().map(|e| e.id));
                after = page.through;
                if page.at_head {
                    break;
                }
            }
            assert_eq!(
                seen, ids,
                "merged: every event once, in order (runs of {run}, limit {limit})"
            );
        }
        let page = store
            .read(*ids.last().expect("ids"), &|_| true, 10)
            .expect("read");
        assert!(
            page.events.is_empty() && page.at_head,
            "merged: nothing after the head"
        );
        let short = store
            .read(ids[0], &|e| e.has_topic("short/a"), 1000)
            .expect("read");
        assert!(short.at_head, "merged: a large page reaches the head");
        assert!(
            short.events.iter().all(|e| e.has_topic("short/a")) && !short.events.is_empty(),
            "merged: the filter applies in every class"
        );
    }
}
