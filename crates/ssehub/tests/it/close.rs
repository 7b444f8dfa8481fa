//! Closing a topic: the final event, streams ending, 204 on reconnect, reopening.

use serde_json::json;

use crate::support::TestHub;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn close_by_publish_ends_streams_and_reconnects_get_204() {
    let hub = TestHub::start().await;
    let mut sse = hub.subscribe("/events/job-1", &[]).await;
    let mut both = hub.subscribe("/events?topic=job-1,job-2", &[]).await;
    hub.wait_subscribers("job-1", 2).await;
    hub.publish("job-1", "50%").await;
    let (status, answer) = hub
        .post_json(json!({"topic": "job-1", "event": "done", "data": "100%", "close": true}))
        .await;
    assert_eq!(status, 200, "{answer}");
    let events = sse.rest().await;
    let data: Vec<&str> = events.iter().map(|e| e.data.as_str()).collect();
    assert_eq!(
        data,
        ["50%", "100%"],
        "the final event, then the stream ends"
    );
    assert!(sse.ended());
    // A subscriber of another, open topic stays connected.
    assert_eq!(both.event().await.data, "50%");
    assert_eq!(both.event().await.data, "100%");
    hub.publish("job-2", "still here").await;
    assert_eq!(both.event().await.data, "still here");

    let again = hub.http.get(hub.url("/events/job-1")).send().await.unwrap();
    assert_eq!(again.status(), 204, "EventSource stops on 204");
    let info = hub.get_json("/topics/job-1").await;
    assert_eq!(info["closed"], true);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn delete_closes_and_a_client_behind_gets_what_it_missed_first() {
    let hub = TestHub::start().await;
    let first = hub.publish("feed", "1").await;
    hub.publish("feed", "2").await;
    let response = hub
        .http
        .delete(hub.url("/topics/feed"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let answer: serde_json::Value = response.json().await.unwrap();
    let final_id = answer["id"].as_str().unwrap().to_owned();
    // Behind: gets 2 and the closing event, then the stream ends.
    let mut behind = hub
        .subscribe("/events/feed", &[("Last-Event-ID", &first)])
        .await;
    let events = behind.rest().await;
    let names: Vec<(&str, &str)> = events
        .iter()
        .map(|e| (e.event.as_str(), e.data.as_str()))
        .collect();
    assert_eq!(names, [("message", "2"), (ssehub::CLOSE_EVENT, "")]);
    // Up to date: 204.
    let done = hub
        .http
        .get(hub.url("/events/feed"))
        .header("Last-Event-ID", &final_id)
        .send()
        .await
        .unwrap();
    assert_eq!(done.status(), 204);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn publishing_again_reopens_a_topic() {
    let hub = TestHub::start().await;
    hub.http
        .delete(hub.url("/topics/again"))
        .send()
        .await
        .unwrap();
    assert_eq!(
        hub.http
            .get(hub.url("/events/again"))
            .send()
            .await
            .unwrap()
            .status(),
        204
    );
    hub.publish("again", "open").await;
    let mut sse = hub.subscribe("/events/again", &[]).await;
    assert_eq!(sse.status, 200);
    hub.wait_subscribers("again", 1).await;
    hub.publish("again", "live").await;
    assert_eq!(sse.event().await.data, "live");
}
