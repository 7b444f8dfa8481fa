//! Bursts through the bridges that publish what is ready as one batch: every message of a
//! burst reaches a subscriber and the durable history, once and in source order, with
//! poison counted; the AMQP bridge's one ack per batch leaves nothing unacknowledged. Real
//! services on this machine (PostgreSQL 5432, NATS 4222, Redis 6379, RabbitMQ 5672), a
//! channel, subject or queue of each test's own.

mod common;

use std::time::Duration;

use common::{read_events, temp_dir, Hub};

const BURST: usize = 5_000;

fn unique(what: &str) -> String {
    static NEXT: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
    let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    format!("ssehub_burst_{what}_{}_{n}", std::process::id())
}

/// A hub with a durable store in `dir` and one bridge (`bridge`, the table's body), its
/// bridge up.
async fn hub(dir: &std::path::Path, bridge: &str) -> Hub {
    let file = dir.join("ssehub.toml");
    let data = dir.join("data");
    let config = format!(
        "data_dir = \"{}\"\n[[bridge]]\nname = \"b\"\n{bridge}\n",
        data.display()
    );
    std::fs::write(&file, config).unwrap();
    let hub = Hub::start(["--config", file.to_str().unwrap()], &[]).await;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while counter(&hub, "up").await != 1 {
        assert!(
            tokio::time::Instant::now() < deadline,
            "the bridge is not up"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    hub
}

/// `ssehub_bridge_<name>` of the bridge `b`.
async fn counter(hub: &Hub, name: &str) -> u64 {
    let text = reqwest::get(format!("{}/metrics", hub.url))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let prefix = format!("ssehub_bridge_{name}{{bridge=\"b\"");
    text.lines()
        .find(|l| l.starts_with(&prefix))
        .and_then(|l| l.rsplit(' ').next()?.parse().ok())
        .unwrap_or_else(|| panic!("no {prefix} on /metrics"))
}

/// A stream of `topic`, from the start of its history with `from_start`.
async fn subscribe(hub: &Hub, topic: &str, from_start: bool) -> reqwest::Response {
    let mut request = reqwest::Client::new().get(format!("{}/events/{topic}", hub.url));
    if from_start {
        request = request.header("last-event-id", "0-0");
    }
    request.send().await.unwrap()
}

/// The burst's payloads: `n` = 1..=BURST, every 1,000th (when `poison`) not JSON.
fn payloads(poison: bool) -> Vec<String> {
    (1..=BURST)
        .map(|n| match poison && n % 1000 == 0 {
            true => format!("poison {n}"),
            false => format!(r#"{{"k":"x","n":{n}}}"#),
        })
        .collect()
}

/// Reads what the subscriber `live` got, then the history again from its start: both must
/// be exactly `sent` (the payloads that are not poison), in order; and the bridge's counters
/// must add up.
async fn check(hub: &Hub, topic: &str, live: reqwest::Response, sent: &[String], poison: u64) {
    let want: Vec<&String> = sent.iter().filter(|p| !p.starts_with("poison")).collect();
    let (_, got) = read_events(live, want.len()).await;
    let got: Vec<&String> = got.iter().map(|e| &e.data).collect();
    assert_eq!(got, want, "the subscriber: every message once, in order");
    let (_, replayed) = read_events(subscribe(hub, topic, true).await, want.len()).await;
    let replayed: Vec<&String> = replayed.iter().map(|e| &e.data).collect();
    assert_eq!(replayed, want, "the history: every message once, in order");
    // The counters move once the store has the batch durable, just after its fan-out.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while counter(hub, "published_total").await < want.len() as u64
        && tokio::time::Instant::now() < deadline
    {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(counter(hub, "received_total").await, sent.len() as u64);
    assert_eq!(counter(hub, "published_total").await, want.len() as u64);
    assert_eq!(counter(hub, "skipped_total").await, poison);
}

/// A hub with the bridge, a subscriber, then `send` given the burst: the subscriber and the
/// history must have it all, in order.
async fn burst<F, Fut>(what: &str, bridge: &str, poison: bool, send: F)
where
    F: FnOnce(Vec<String>) -> Fut,
    Fut: std::future::Future<Output = ()>,
{
    let dir = temp_dir(what);
    let hub = hub(&dir, bridge).await;
    let live = subscribe(&hub, "burst-x", false).await;
    let sent = payloads(poison);
    send(sent.clone()).await;
    let poisoned = sent.iter().filter(|p| p.starts_with("poison")).count();
    check(&hub, "burst-x", live, &sent, poisoned as u64).await;
    std::fs::remove_dir_all(dir).unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_burst_of_notifies_arrives_whole_and_in_order_with_poison_skipped() {
    let url = "postgres://postgres@127.0.0.1:5432/test";
    let channel = unique("chan");
    let bridge = format!(
        "kind = \"postgres-listen\"\nurl = \"{url}\"\nchannels = [\"{channel}\"]\ntopic = \"burst-{{k}}\""
    );
    burst("burst-listen", &bridge, true, |sent| async move {
        let (db, connection) = tokio_postgres::connect(url, tokio_postgres::NoTls)
            .await
            .expect("PostgreSQL at 127.0.0.1:5432 is needed for this test");
        tokio::spawn(connection);
        // One statement, one transaction: the notifications all arrive at its commit.
        db.execute(
            "SELECT count(pg_notify($1, p)) FROM unnest($2::text[]) AS p",
            &[&channel, &sent],
        )
        .await
        .unwrap();
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_burst_of_nats_messages_arrives_whole_and_in_order_with_poison_skipped() {
    let subject = unique("subj");
    let bridge = format!(
        "kind = \"nats\"\nurl = \"nats://127.0.0.1:4222\"\nchannels = [\"{subject}.>\"]\ntopic = \"burst-{{k}}\""
    );
    burst("burst-nats", &bridge, true, |sent| async move {
        let client = async_nats::connect("nats://127.0.0.1:4222")
            .await
            .expect("NATS at 127.0.0.1:4222 is needed for this test");
        for p in sent {
            client
                .publish(format!("{subject}.a"), p.into())
                .await
                .unwrap();
        }
        client.flush().await.unwrap();
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_burst_of_redis_messages_arrives_whole_and_in_order() {
    let channel = unique("chan");
    let bridge = format!(
        "kind = \"redis-pubsub\"\nurl = \"redis://127.0.0.1:6379\"\nchannels = [\"{channel}\"]\ntopic = \"burst-{{k}}\""
    );
    burst("burst-redis", &bridge, false, |sent| async move {
        let mut conn = redis::Client::open("redis://127.0.0.1:6379")
            .unwrap()
            .get_multiplexed_async_connection()
            .await
            .expect("Redis at 127.0.0.1:6379 is needed for this test");
        let mut pipe = redis::pipe();
        for p in &sent {
            pipe.cmd("PUBLISH").arg(&channel).arg(p).ignore();
        }
        let () = pipe
            .query_async(&mut conn)
            .await
            .unwrap_or_else(|e| panic!("PUBLISH: {e}"));
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_queue_backlog_arrives_once_in_order_and_is_all_acknowledged() {
    use lapin::options::{BasicPublishOptions, ConfirmSelectOptions, QueueDeclareOptions};
    let url = "amqp://guest:guest@127.0.0.1:5672/%2f";
    let queue = unique("queue");
    let connection = lapin::Connection::connect(
        url,
        lapin::ConnectionProperties::default()
            .with_executor(tokio_executor_trait::Tokio::current())
            .with_reactor(tokio_reactor_trait::Tokio::current()),
    )
    .await
    .unwrap_or_else(|e| panic!("RabbitMQ at {url} is needed for this test: {e}"));
    let channel = connection.create_channel().await.unwrap();
    let declare = |passive| QueueDeclareOptions {
        durable: true,
        passive,
        ..Default::default()
    };
    let table = lapin::types::FieldTable::default;
    channel
        .queue_declare(&queue, declare(false), table())
        .await
        .unwrap();
    channel
        .confirm_select(ConfirmSelectOptions::default())
        .await
        .unwrap();
    // The backlog is in the queue before the bridge starts: it comes a prefetch at a time.
    let sent = payloads(true);
    let mut confirms = Vec::new();
    for (i, p) in sent.iter().enumerate() {
        let properties = lapin::BasicProperties::default().with_message_id(format!("m{i}").into());
        let options = BasicPublishOptions::default();
        let confirm = channel
            .basic_publish("", &queue, options, p.as_bytes(), properties)
            .await
            .unwrap();
        confirms.push(confirm);
    }
    for confirm in confirms {
        confirm.await.unwrap();
    }
    let dir = temp_dir("burst-amqp");
    let bridge = format!(
        "kind = \"amqp\"\nurl = \"{url}\"\nchannels = [\"{queue}\"]\ntopic = \"burst-{{k}}\"\nbatch = 300"
    );
    let mut hub = hub(&dir, &bridge).await;
    let live = subscribe(&hub, "burst-x", true).await;
    check(&hub, "burst-x", live, &sent, 5).await;
    // Stopped, the hub's unacknowledged deliveries would go back to the queue: none do.
    hub.child.start_kill().unwrap();
    hub.child.wait().await.unwrap();
    tokio::time::sleep(Duration::from_millis(500)).await;
    let left = channel
        .queue_declare(&queue, declare(true), table())
        .await
        .unwrap();
    assert_eq!(left.message_count(), 0, "every message acknowledged");
    channel
        .queue_delete(&queue, Default::default())
        .await
        .unwrap();
    std::fs::remove_dir_all(dir).unwrap();
}
