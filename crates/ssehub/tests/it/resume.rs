//! History and resume: Last-Event-ID (header and query), the seam between replay and live,
//! and the reset control event when the history cannot cover the gap.

use std::sync::Arc;
use std::time::Duration;

use serde_json::Value;
use ssehub::Config;
use tokio::sync::Notify;

use crate::support::TestHub;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn last_event_id_header_replays_then_continues_live() {
    let hub = TestHub::start().await;
    let mut ids = Vec::new();
    for i in 1..=5 {
        ids.push(hub.publish("r", &i.to_string()).await);
    }
    hub.publish("other", "not mine").await;
    let mut sse = hub
        .subscribe("/events/r", &[("Last-Event-ID", &ids[1])])
        .await;
    for want in ["3", "4", "5"] {
        assert_eq!(sse.event().await.data, want);
    }
    hub.publish("r", "6").await;
    let live = sse.event().await;
    assert_eq!(live.data, "6");
    assert_ne!(live.event, ssehub::RESET_EVENT);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn last_event_id_query_for_the_first_connection_and_header_wins() {
    let hub = TestHub::start().await;
    let first = hub.publish("q", "1").await;
    let second = hub.publish("q", "2").await;
    hub.publish("q", "3").await;
    let mut by_query = hub
        .subscribe(&format!("/events/q?lastEventId={first}"), &[])
        .await;
    assert_eq!(by_query.event().await.data, "2");
    let mut both = hub
        .subscribe(
            &format!("/events/q?lastEventId={first}"),
            &[("Last-Event-ID", &second)],
        )
        .await;
    assert_eq!(
        both.event().await.data,
        "3",
        "the header is the browser's reconnect and wins"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn expired_id_gets_a_reset_then_what_is_retained() {
    let hub = TestHub::with_config(Config {
        history: 3,
        ..Config::default()
    })
    .await;
    let mut ids = Vec::new();
    for i in 1..=10 {
        ids.push(hub.publish("e", &i.to_string()).await);
    }
    let mut sse = hub
        .subscribe("/events/e", &[("Last-Event-ID", &ids[0])])
        .await;
    let reset = sse.event().await;
    assert_eq!(reset.event, ssehub::RESET_EVENT);
    assert_eq!(
        reset.id, "",
        "a control event does not move the client's position"
    );
    let data: Value = serde_json::from_str(&reset.data).unwrap();
    assert_eq!(data["reason"], "expired");
    assert_eq!(data["lastEventId"], ids[0].as_str());
    for want in ["8", "9", "10"] {
        assert_eq!(sse.event().await.data, want);
    }
    // A client whose id is still covered gets a complete replay and no reset.
    let mut complete = hub
        .subscribe("/events/e", &[("Last-Event-ID", &ids[7])])
        .await;
    let next = complete.event().await;
    assert_eq!((next.event.as_str(), next.data.as_str()), ("message", "9"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unknown_id_gets_a_reset() {
    let hub = TestHub::start().await;
    hub.publish("u", "kept").await;
    for unknown in ["no-such-id", "99999999999999-0"] {
        let mut sse = hub
            .subscribe("/events/u", &[("Last-Event-ID", unknown)])
            .await;
        let reset = sse.event().await;
        assert_eq!(reset.event, ssehub::RESET_EVENT);
        let data: Value = serde_json::from_str(&reset.data).unwrap();
        assert_eq!(data["reason"], "unknown", "{unknown}");
        assert_eq!(sse.event().await.data, "kept");
    }
}

/// Clients drop and reconnect with their Last-Event-ID while a publisher keeps going; each
/// must see every event exactly once, in order.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_gap_and_no_duplicate_at_the_seam_under_concurrent_publishing() {
    const EVENTS: usize = 400;
    const CLIENTS: usize = 6;
    let hub = Arc::new(TestHub::start().await);
    let go = Arc::new(Notify::new());
    let publisher = {
        let (hub, go) = (hub.clone(), go.clone());
        tokio::spawn(async move {
            go.notified().await;
            for i in 0..EVENTS {
                hub.publish("seam", &i.to_string()).await;
                if i % 7 == 0 {
                    tokio::task::yield_now().await;
                }
            }
        })
    };
    let mut clients = Vec::new();
    for c in 0..CLIENTS {
        let hub = hub.clone();
        clients.push(tokio::spawn(async move {
            let mut seen: Vec<usize> = Vec::new();
            let mut last_id = String::new();
            let mut reconnects = 0;
            let mut sse = hub.subscribe("/events/seam", &[]).await;
            while seen.len() < EVENTS {
                // Read a few events, then drop the connection and resume.
                let burst = 1 + (c * 13 + reconnects * 7) % 23;
                for _ in 0..burst {
                    let e = sse.event().await;
                    seen.push(e.data.parse().unwrap());
                    last_id = e.id;
                    if seen.len() == EVENTS {
                        break;
                    }
                }
                if seen.len() < EVENTS {
                    reconnects += 1;
                    sse = hub
                        .subscribe("/events/seam", &[("Last-Event-ID", &last_id)])
                        .await;
                }
            }
            (seen, reconnects)
        }));
    }
    hub.wait_subscribers("seam", CLIENTS as u64).await;
    go.notify_one();
    for client in clients {
        let (seen, reconnects) = tokio::time::timeout(Duration::from_secs(60), client)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(
            seen,
            (0..EVENTS).collect::<Vec<_>>(),
            "every event once, in order"
        );
        assert!(
            reconnects > 10,
            "the test must actually reconnect ({reconnects})"
        );
    }
    publisher.await.unwrap();
}
