//! Retention classes behind the hub: the reset decision follows the classes a subscriber's
//! topics live in, and Mercure's `earliest` replays every class without a reset.

use std::sync::Arc;

use ssehub::Config;
use ssehub_core::{ClassedStore, MemoryStore, Retention, Store, TopicPattern};

use crate::support::TestHub;

async fn hub() -> TestHub {
    let long: Arc<dyn Store> = Arc::new(MemoryStore::new(Retention::events(1000)));
    let short: Arc<dyn Store> = Arc::new(MemoryStore::new(Retention::events(2)));
    let pattern = TopicPattern::new("short/*").expect("pattern");
    let store = ClassedStore::new(long, vec![(pattern, short)]);
    TestHub::with_store(Config::default(), Arc::new(store)).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_short_class_trimming_resets_only_its_own_subscribers() {
    let hub = hub().await;
    let first = hub.publish("chat", "c1").await;
    for i in 0..5 {
        hub.publish("short/x", &format!("s{i}")).await;
    }
    hub.publish("chat", "c2").await;

    // The chat subscriber's id is older than everything the short class kept: no reset.
    let mut chat = hub
        .subscribe("/events/chat", &[("Last-Event-ID", &first)])
        .await;
    let next = chat.event().await;
    assert_ne!(next.event, ssehub::RESET_EVENT);
    assert_eq!(next.data, "c2");

    // The short class trimmed past it: its subscriber is told, then gets what is left.
    let mut short = hub
        .subscribe("/events?topic=short/x", &[("Last-Event-ID", &first)])
        .await;
    assert_eq!(short.event().await.event, ssehub::RESET_EVENT);
    assert_eq!(short.event().await.data, "s3");
    assert_eq!(short.event().await.data, "s4");

    // A Mercure subscriber of every topic (a pattern) could want short events: reset.
    let mut any = hub
        .subscribe("/.well-known/mercure?topic=*", &[("last-event-id", &first)])
        .await;
    assert_eq!(any.event().await.event, ssehub::RESET_EVENT);

    // `earliest` is everything retained, in id order, with no reset.
    let mut earliest = hub
        .subscribe("/.well-known/mercure?topic=*&lastEventID=earliest", &[])
        .await;
    assert_eq!(earliest.header("last-event-id"), Some("earliest"));
    let mut datas = Vec::new();
    for _ in 0..4 {
        let e = earliest.event().await;
        assert_ne!(e.event, ssehub::RESET_EVENT);
        datas.push(e.data);
    }
    assert_eq!(datas, ["c1", "s3", "s4", "c2"]);
}
