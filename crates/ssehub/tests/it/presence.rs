//! Topics and presence: `/topics` counts and last ids, presence events for those who ask.

use serde_json::Value;
use ssehub::Config;

use crate::support::TestHub;

async fn presence(sse: &mut crate::support::Sse) -> Value {
    let e = sse.event().await;
    assert_eq!(e.event, ssehub::PRESENCE_EVENT);
    assert_eq!(e.id, "", "presence is not part of the history");
    serde_json::from_str(&e.data).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn presence_snapshot_join_and_leave() {
    let hub = TestHub::start().await;
    let mut watcher = hub.subscribe("/events/room?presence=1", &[]).await;
    let snap = presence(&mut watcher).await;
    assert_eq!(
        (
            snap["topic"].as_str(),
            snap["action"].as_str(),
            snap["subscribers"].as_u64()
        ),
        (Some("room"), Some("snapshot"), Some(1))
    );
    let plain = hub.subscribe("/events/room", &[]).await;
    let join = presence(&mut watcher).await;
    assert_eq!(
        (join["action"].as_str(), join["subscribers"].as_u64()),
        (Some("join"), Some(2))
    );
    drop(plain);
    let leave = presence(&mut watcher).await;
    assert_eq!(
        (leave["action"].as_str(), leave["subscribers"].as_u64()),
        (Some("leave"), Some(1))
    );
    // Subscribers that did not ask get no presence events.
    let mut quiet = hub.subscribe("/events/room", &[]).await;
    hub.wait_subscribers("room", 2).await;
    hub.publish("room", "hello").await;
    assert_eq!(quiet.event().await.data, "hello");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn topics_list_counts_and_last_ids() {
    let hub = TestHub::start().await;
    let _a = hub.subscribe("/events/alpha", &[]).await;
    let _b = hub.subscribe("/events?topic=alpha,beta", &[]).await;
    hub.wait_subscribers("alpha", 2).await;
    let id = hub.publish("beta", "x").await;
    let list = hub.get_json("/topics").await;
    let topics = list["topics"].as_array().unwrap();
    let find = |name: &str| topics.iter().find(|t| t["topic"] == name).cloned().unwrap();
    assert_eq!(find("alpha")["subscribers"], 2);
    assert_eq!(find("alpha")["lastEventId"], Value::Null);
    assert_eq!(find("beta")["subscribers"], 1);
    assert_eq!(find("beta")["lastEventId"], id.as_str());
    let unknown = hub.get_json("/topics/nobody").await;
    assert_eq!(unknown["subscribers"], 0);
    assert_eq!(unknown["closed"], false);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn topics_without_subscribers_or_history_are_forgotten() {
    let hub = TestHub::with_config(Config {
        history: 3,
        ..Config::default()
    })
    .await;
    hub.publish("gone", "x").await;
    let _watching = hub.subscribe("/events/watched", &[]).await;
    hub.wait_subscribers("watched", 1).await;
    hub.publish("watched", "x").await;
    hub.publish("shut", "x").await;
    let closed = hub
        .http
        .delete(hub.url("/topics/shut"))
        .send()
        .await
        .unwrap();
    assert_eq!(closed.status(), 200);
    // Three more events push every earlier one out of the history of 3.
    for i in 0..3 {
        hub.publish(&format!("new{i}"), "x").await;
    }
    let names = |list: Value| -> Vec<String> {
        let mut names: Vec<String> = list["topics"]
            .as_array()
            .unwrap()
            .iter()
            .map(|t| t["topic"].as_str().unwrap().to_owned())
            .collect();
        names.sort();
        names
    };
    assert!(names(hub.get_json("/topics").await).contains(&"gone".to_owned()));

    assert_eq!(hub.hub.forget_idle_topics(), 1, "only `gone` is forgotten");
    // Kept: a subscriber, a closed topic, and topics whose last event is retained.
    assert_eq!(
        names(hub.get_json("/topics").await),
        ["new0", "new1", "new2", "shut", "watched"]
    );
    assert_eq!(hub.hub.forget_idle_topics(), 0);
    // A forgotten topic comes back with its next event.
    let id = hub.publish("gone", "again").await;
    let gone = hub.get_json("/topics/gone").await;
    assert_eq!(gone["lastEventId"], id.as_str());
}
