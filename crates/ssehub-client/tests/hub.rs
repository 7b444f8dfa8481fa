//! The client against the real hub, run in-process on an ephemeral port over real sockets:
//! publish answers and refusals, delivery, resume across a hub restart with no gap, the
//! reset event, and the 204 that stops a subscriber for good.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use ssehub::Config;
use ssehub_client::{
    Client, Publish, SubEvent, Subscriber, Subscription, PRESENCE_EVENT, RESET_EVENT,
};
use ssehub_core::{MemoryStore, Retention, Store};
use ssehub_test_support::HubServer;

/// How long a test waits for something that should happen promptly.
const WAIT: Duration = Duration::from_secs(10);

/// A running hub; [`TestHub::stop`] shuts it down the way SIGTERM does.
struct TestHub(HubServer);

impl TestHub {
    /// A hub on `addr` (port 0 for any) with `store`, announcing a short `retry`.
    async fn start(addr: SocketAddr, store: Arc<dyn Store>) -> TestHub {
        let config = Config {
            retry: Duration::from_millis(100),
            ..Config::default()
        };
        TestHub(HubServer::start(addr, config, store).await)
    }

    async fn fresh() -> TestHub {
        TestHub::start(([127, 0, 0, 1], 0).into(), memory_store()).await
    }

    fn url(&self) -> String {
        self.0.url("")
    }

    fn addr(&self) -> SocketAddr {
        self.0.addr
    }

    async fn stop(self) {
        tokio::time::timeout(WAIT, self.0.stop())
            .await
            .expect("hub stops")
            .expect("hub serve");
    }
}

fn memory_store() -> Arc<dyn Store> {
    Arc::new(MemoryStore::new(Retention::events(1000)))
}

/// A subscription to one topic that is known to be in place: it asks for presence and
/// waits for the hub's snapshot (a subscriber connects only when polled).
async fn subscribed(client: &Client, topic: &str) -> Subscriber {
    let mut sub = client.subscribe(Subscription {
        presence: true,
        ..Subscription::new([topic])
    });
    let snapshot = next(&mut sub).await.unwrap();
    assert_eq!(snapshot.event, PRESENCE_EVENT, "{snapshot:?}");
    sub
}

/// The next event that is not a presence event.
async fn next_published(sub: &mut Subscriber) -> Option<SubEvent> {
    loop {
        match next(sub).await {
            Some(e) if e.event == PRESENCE_EVENT => continue,
            other => return other,
        }
    }
}

async fn next(sub: &mut Subscriber) -> Option<SubEvent> {
    tokio::time::timeout(WAIT, sub.next())
        .await
        .expect("an event in time")
        .map(|item| item.expect("no error"))
}

#[tokio::test]
async fn publish_and_subscribe_through_a_real_hub() {
    let hub = TestHub::fresh().await;
    let client = Client::new(&hub.url()).unwrap();
    let mut sub = client.subscribe(Subscription {
        presence: true,
        ..Subscription::new(["a", "b"])
    });
    // Presence snapshots come first, one per topic, so the subscription is in place.
    let mut snapshots = Vec::new();
    for _ in 0..2 {
        let e = next(&mut sub).await.unwrap();
        assert_eq!(e.event, PRESENCE_EVENT);
        assert!(e.is_control());
        snapshots.push(e.data);
    }
    assert!(
        snapshots.iter().all(|d| d.contains("snapshot")),
        "{snapshots:?}"
    );

    let first = client.publish(&Publish::new("a", "one")).await.unwrap();
    assert_eq!(first.delivered, 1);
    let both = client
        .publish(&Publish {
            topics: vec!["a".into(), "b".into()],
            event: Some("headline".into()),
            data: "two\nlines".into(),
            ..Publish::default()
        })
        .await
        .unwrap();
    assert_eq!(
        both.delivered, 1,
        "one subscriber of both topics gets it once"
    );

    let e = next(&mut sub).await.unwrap();
    assert_eq!(
        (e.id.as_str(), e.event.as_str(), e.data.as_str()),
        (first.id.as_str(), "message", "one")
    );
    let e = next(&mut sub).await.unwrap();
    assert_eq!(
        (e.id.as_str(), e.event.as_str(), e.data.as_str()),
        (both.id.as_str(), "headline", "two\nlines")
    );
    assert_eq!(sub.last_event_id(), both.id);
    assert_eq!(sub.connections(), 1);
    assert_eq!(
        sub.retry(),
        sub.retry()
            .clamp(Duration::from_millis(100), Duration::from_millis(110))
    );

    let refused = client
        .publish(&Publish::new("bad topic", "x"))
        .await
        .unwrap_err();
    assert!(refused.is_status(), "{refused}");
    assert_eq!(refused.status(), Some(400));
    assert_eq!(refused.hub_field(), Some("topic"));
    assert!(refused.hub_error().is_some());
    hub.stop().await;
}

#[tokio::test]
async fn resumes_across_a_hub_restart_with_no_gap() {
    let store = memory_store();
    let hub = TestHub::start(([127, 0, 0, 1], 0).into(), store.clone()).await;
    let addr = hub.addr();
    let client = Client::new(&hub.url()).unwrap();
    let mut sub = subscribed(&client, "feed").await;
    let first = client.publish(&Publish::new("feed", "1")).await.unwrap();
    assert_eq!(first.delivered, 1);
    let mut seen = vec![next_published(&mut sub).await.unwrap()];

    // The hub goes away (its streams end) and comes back on the same address with the
    // same history; what is published meanwhile reaches the subscriber once, in order.
    hub.stop().await;
    let hub = TestHub::start(addr, store).await;
    let mut published = vec![first.id];
    for data in ["2", "3", "4"] {
        let p = client.publish(&Publish::new("feed", data)).await.unwrap();
        published.push(p.id);
    }
    while seen.len() < published.len() {
        seen.push(next_published(&mut sub).await.unwrap());
    }
    let ids: Vec<String> = seen.iter().map(|e| e.id.clone()).collect();
    assert_eq!(ids, published);
    assert!(seen.iter().all(|e| e.event != RESET_EVENT), "{seen:?}");
    assert_eq!(sub.connections(), 2);
    hub.stop().await;
}

#[tokio::test]
async fn an_unknown_last_event_id_gets_a_reset_then_the_replay() {
    let hub = TestHub::fresh().await;
    let client = Client::new(&hub.url()).unwrap();
    let kept = client.publish(&Publish::new("t", "kept")).await.unwrap();
    let mut sub = client.subscribe(Subscription {
        last_event_id: Some("no-such-id".into()),
        ..Subscription::new(["t"])
    });
    let reset = next(&mut sub).await.unwrap();
    assert_eq!(reset.event, RESET_EVENT);
    assert!(
        reset.data.contains("\"reason\":\"unknown\""),
        "{}",
        reset.data
    );
    let e = next(&mut sub).await.unwrap();
    assert_eq!((e.id, e.data), (kept.id, "kept".to_owned()));
    hub.stop().await;
}

#[tokio::test]
async fn a_closed_topic_stops_the_subscriber_for_good() {
    let hub = TestHub::fresh().await;
    let client = Client::new(&hub.url()).unwrap();
    let mut sub = subscribed(&client, "job").await;
    let last = client
        .publish(&Publish {
            close: true,
            ..Publish::new("job", "done")
        })
        .await
        .unwrap();
    let e = next_published(&mut sub).await.unwrap();
    assert_eq!((e.id, e.data), (last.id, "done".to_owned()));
    // The stream ends; the reconnection is answered 204 and the subscriber stops.
    assert_eq!(next_published(&mut sub).await, None);
    assert!(sub.is_closed());
    assert_eq!((sub.attempts(), sub.connections()), (2, 1));
    hub.stop().await;
}

#[tokio::test]
async fn a_refused_subscription_is_a_terminal_error() {
    let hub = TestHub::fresh().await;
    let client = Client::new(&hub.url()).unwrap();
    let mut sub = client.subscribe(Subscription::new(["bad topic"]));
    let e = tokio::time::timeout(WAIT, sub.next())
        .await
        .unwrap()
        .unwrap()
        .unwrap_err();
    assert_eq!(e.status(), Some(400), "{e}");
    assert!(sub.next().await.is_none());
    assert_eq!(sub.attempts(), 1);
    hub.stop().await;
}
