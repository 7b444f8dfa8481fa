//! Ingest bridges from the config file against the real services: PostgreSQL on this
//! machine (127.0.0.1:5432, database `test`; each test its own channel, table and bridge
//! name, dropped after), RabbitMQ on this machine (a vhost per test, deleted after), and a
//! `redis-server`, `nats-server`, `mosquitto`, PostgreSQL server (`initdb` in a temporary
//! directory) or `rabbitmq-server` each fault test starts itself on ephemeral ports. The
//! at-least-once bridges are killed with SIGKILL mid-stream and restarted, and lose their
//! source (a session ended, the server stopped and started again); every source message must
//! reach the hub's history exactly once, in order. A test whose service is missing fails.

mod common;

use std::path::Path;
use std::time::Duration;

use common::{read_events, temp_dir, Hub, Server, WAIT};

use serde_json::Value;

const PG: &str = "postgres://postgres@127.0.0.1:5432/test";

/// A name unique to this test process and call, for channels, tables and bridges.
fn unique(what: &str) -> String {
    static NEXT: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
    format!(
        "ssehub_{what}_{}_{}",
        std::process::id(),
        NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
    )
}

async fn pg() -> tokio_postgres::Client {
    let (client, connection) = tokio_postgres::connect(PG, tokio_postgres::NoTls)
        .await
        .unwrap_or_else(|e| panic!("PostgreSQL at {PG} is needed for this test: {e}"));
    tokio::spawn(connection);
    client
}

/// Writes `text` as the hub's config file in `dir` and starts the hub with it.
async fn hub_with(dir: &Path, config: &str, extra: &[&str]) -> Hub {
    let file = dir.join("ssehub.toml");
    std::fs::write(&file, config).unwrap();
    let mut args = vec!["--config".to_owned(), file.to_str().unwrap().to_owned()];
    args.extend(extra.iter().map(|s| s.to_string()));
    Hub::start(args, &[]).await
}

async fn get_json(url: &str) -> Value {
    reqwest::get(url).await.unwrap().json().await.unwrap()
}

async fn metrics(url: &str) -> String {
    reqwest::get(format!("{url}/metrics"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap()
}

/// The value of a bridge's metric (`ssehub_bridge_NAME{bridge="B",...}`).
fn bridge_metric(text: &str, name: &str, bridge: &str) -> u64 {
    let prefix = format!("ssehub_bridge_{name}{{bridge=\"{bridge}\"");
    text.lines()
        .find(|l| l.starts_with(&prefix))
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| panic!("no {prefix} in /metrics"))
}

/// Waits until the bridge's metric reaches `n`.
async fn wait_metric(url: &str, name: &str, bridge: &str, n: u64, within: Duration) {
    let deadline = tokio::time::Instant::now() + within;
    loop {
        let value = bridge_metric(&metrics(url).await, name, bridge);
        if value >= n {
            return;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "bridge {bridge}: {name} stayed at {value}, wanted {n}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// The data of the first `n` events of `topic`'s history, as they come (replayed, then
/// live while the bridge catches up); then a marker is published and must come next, so an
/// event there twice would show.
async fn history(hub: &Hub, topic: &str, n: usize) -> Vec<String> {
    use futures_util::StreamExt;
    let response = reqwest::Client::new()
        .get(format!("{}/events/{}", hub.url, topic.replace('/', "%2F")))
        .header("last-event-id", "0-0")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let mut body = response.bytes_stream();
    let mut parser = ssehub_core::Parser::new();
    let mut data = Vec::new();
    let mut marked = false;
    let marker = format!("end-marker {}", unique("read"));
    // Heartbeats keep an idle stream busy: the whole read has one deadline.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    loop {
        let chunk = tokio::time::timeout_at(deadline, body.next())
            .await
            .unwrap_or_else(|_| panic!("{} of {n} events within a minute", data.len()))
            .expect("the stream ended")
            .unwrap();
        let mut items = Vec::new();
        parser.feed(&chunk, &mut items);
        for item in items {
            let ssehub_core::ParserItem::Event(e) = item else {
                continue;
            };
            if e.event.starts_with("ssehub-") {
                continue;
            }
            if e.data == marker {
                assert_eq!(data.len(), n, "the marker came after {} events", data.len());
                return data;
            }
            if e.data.starts_with("end-marker ") {
                // An earlier read's marker: not a bridged event.
                continue;
            }
            data.push(e.data);
            assert!(data.len() <= n, "more than {n} events: a duplicate");
        }
        if data.len() == n && !marked {
            marked = true;
            hub.publish(topic, &marker).await;
        }
    }
}

/// `n1`, `n2`, … `n<count>`: the data of a test's messages, in the order they were sent.
fn numbered(count: u32) -> Vec<String> {
    (1..=count).map(|n| format!("n{n}")).collect()
}

/// Checks that `topic`'s history holds `expected` and nothing else: each once, in order.
async fn assert_history(hub: &Hub, topic: &str, expected: &[String], what: &str) {
    let all = history(hub, topic, expected.len()).await;
    assert_eq!(all.len(), expected.len(), "{topic}: {what}");
    assert!(all == expected, "{topic}: {what}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_notify_reaches_subscribers_and_poison_is_skipped() {
    let channel = unique("chan");
    let dir = temp_dir("bridge-listen");
    let config = format!(
        r#"
memory = true
[[bridge]]
name = "pg-notify"
kind = "postgres-listen"
url = "{PG}"
channels = ["{channel}"]
topic = "orders/{{id}}"
event = "order-{{status}}"
"#
    );
    let hub = hub_with(&dir, &config, &[]).await;
    wait_metric(&hub.url, "up", "pg-notify", 1, WAIT).await;
    assert_eq!(
        get_json(&format!("{}/healthz", hub.url)).await["status"],
        "ok"
    );
    let stream = reqwest::Client::new()
        .get(format!("{}/events/orders%2F42", hub.url))
        .send()
        .await
        .unwrap();
    let db = pg().await;
    for payload in [
        "not json: no id for the topic",
        r#"{"id": "a b", "status": "x"}"#,
        r#"{"id": 42, "status": "paid", "total": 9.5}"#,
    ] {
        db.execute("SELECT pg_notify($1, $2)", &[&channel, &payload])
            .await
            .unwrap();
    }
    let (_, events) = read_events(stream, 1).await;
    assert_eq!(events[0].event, "order-paid");
    let data: Value = serde_json::from_str(&events[0].data).unwrap();
    assert_eq!(data["total"], 9.5);
    wait_metric(&hub.url, "skipped_total", "pg-notify", 2, WAIT).await;
    let text = metrics(&hub.url).await;
    assert_eq!(bridge_metric(&text, "received_total", "pg-notify"), 3);
    assert_eq!(bridge_metric(&text, "published_total", "pg-notify"), 1);
    std::fs::remove_dir_all(dir).unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_outbox_survives_kill_9_and_a_lost_connection_exactly_once() {
    let table = unique("outbox");
    let bridge = unique("bridge");
    let app = unique("app");
    let db = pg().await;
    db.batch_execute(&format!(
        "CREATE TABLE {table} (id bigserial PRIMARY KEY, topic text NOT NULL, event text, data text NOT NULL)"
    ))
    .await
    .unwrap();
    let insert = |from: u32, to: u32| {
        let sql = format!(
            "INSERT INTO {table} (topic, event, data) \
             SELECT 'box', 'row', 'n' || g FROM generate_series({from}, {to}) g"
        );
        let db = &db;
        async move { db.batch_execute(&sql).await.unwrap() }
    };
    insert(1, 3000).await;
    let dir = temp_dir("bridge-outbox");
    let data_dir = dir.join("data");
    let config = format!(
        r#"
data_dir = "{}"
[[bridge]]
name = "{bridge}"
kind = "postgres-outbox"
url = "{PG}?application_name={app}"
table = "{table}"
batch = 100
"#,
        data_dir.display()
    );
    let mut hub = hub_with(&dir, &config, &[]).await;
    // Killed part-way through the first 3,000 rows.
    wait_metric(&hub.url, "published_total", &bridge, 300, WAIT).await;
    hub.child.start_kill().unwrap();
    hub.child.wait().await.unwrap();
    insert(3001, 3500).await;
    // The crash window made certain: the hub had the events but the position was not
    // recorded. Every row is read again and must be found in the history, not republished.
    db.execute(
        "UPDATE ssehub_outbox_position SET last_id = 0 WHERE bridge = $1",
        &[&bridge],
    )
    .await
    .unwrap();
    let hub = hub_with(&dir, &config, &[]).await;
    wait_metric(&hub.url, "up", &bridge, 1, WAIT).await;
    wait_metric(&hub.url, "skipped_total", &bridge, 300, WAIT).await;
    // The database drops the bridge's connection: it reconnects and goes on.
    insert(3501, 3600).await;
    let terminated = db
        .execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = $1",
            &[&app],
        )
        .await
        .unwrap();
    assert!(terminated >= 1, "the bridge's session was found and ended");
    insert(3601, 4000).await;
    assert_history(&hub, "box", &numbered(4000), "every row once, in order").await;
    let text = metrics(&hub.url).await;
    assert!(
        bridge_metric(&text, "errors_total", &bridge) >= 1,
        "the lost connection was counted"
    );
    db.batch_execute(&format!("DROP TABLE {table}"))
        .await
        .unwrap();
    db.execute(
        "DELETE FROM ssehub_outbox_position WHERE bridge = $1",
        &[&bridge],
    )
    .await
    .unwrap();
    drop(hub);
    std::fs::remove_dir_all(dir).unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn outbox_poison_is_parked_once_with_its_payload_and_the_rows_after_it_go_on() {
    use base64::Engine as _;
    let table = unique("outbox");
    let bridge = unique("bridge");
    let db = pg().await;
    db.batch_execute(&format!(
        "CREATE TABLE {table} (id bigserial PRIMARY KEY, topic text NOT NULL, event text, data text NOT NULL)"
    ))
    .await
    .unwrap();
    // Rows 1-3 good, 4 with a topic the hub refuses, 5 good, 6 with a bad event name, 7 good.
    for (topic, event, data) in [
        ("good", "row", "n1"),
        ("good", "row", "n2"),
        ("good", "row", "n3"),
        ("a b", "row", "bad topic"),
        ("good", "row", "n5"),
        ("good", "bad\nname", "bad event"),
        ("good", "row", "n7"),
    ] {
        db.execute(
            &format!("INSERT INTO {table} (topic, event, data) VALUES ($1, $2, $3)"),
            &[&topic, &event, &data],
        )
        .await
        .unwrap();
    }
    let dir = temp_dir("bridge-park");
    let config = format!(
        r#"
data_dir = "{}"
[[bridge]]
name = "{bridge}"
kind = "postgres-outbox"
url = "{PG}"
table = "{table}"
poison = "park"
park_topic = "parked"
"#,
        dir.join("data").display()
    );
    let mut hub = hub_with(&dir, &config, &[]).await;
    let good = history(&hub, "good", 5).await;
    assert_eq!(good, ["n1", "n2", "n3", "n5", "n7"]);
    let parked = history(&hub, "parked", 2).await;
    let parked: Vec<Value> = parked
        .iter()
        .map(|d| serde_json::from_str(d).unwrap())
        .collect();
    for (p, (row, payload, why)) in parked
        .iter()
        .zip([(4, "bad topic", "topic"), (6, "bad event", "event")])
    {
        assert_eq!(p["bridge"], bridge.as_str());
        assert_eq!(p["position"], format!("{table} row {row}"));
        assert!(p["reason"].as_str().unwrap().contains(why), "{p}");
        let bytes = base64::engine::general_purpose::STANDARD
            .decode(p["payload"].as_str().unwrap())
            .unwrap();
        assert_eq!(bytes, payload.as_bytes());
        assert_eq!(p["truncated"], false);
    }
    wait_metric(&hub.url, "skipped_total", &bridge, 2, WAIT).await;
    // A crash before the position was saved: every row read again, none parked twice.
    hub.child.start_kill().unwrap();
    hub.child.wait().await.unwrap();
    db.execute(
        "UPDATE ssehub_outbox_position SET last_id = 0 WHERE bridge = $1",
        &[&bridge],
    )
    .await
    .unwrap();
    db.execute(
        &format!("INSERT INTO {table} (topic, event, data) VALUES ('good', 'row', 'n8')"),
        &[],
    )
    .await
    .unwrap();
    let hub = hub_with(&dir, &config, &[]).await;
    let good = history(&hub, "good", 6).await;
    assert_eq!(good, ["n1", "n2", "n3", "n5", "n7", "n8"]);
    assert_eq!(history(&hub, "parked", 2).await.len(), 2);
    db.batch_execute(&format!("DROP TABLE {table}"))
        .await
        .unwrap();
    db.execute(
        "DELETE FROM ssehub_outbox_position WHERE bridge = $1",
        &[&bridge],
    )
    .await
    .unwrap();
    drop(hub);
    std::fs::remove_dir_all(dir).unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_stream_survives_kill_9_and_a_redis_restart_exactly_once() {
    let mut redis = Server::redis().await;
    let key = unique("stream");
    let client = redis::Client::open(redis.url()).unwrap();
    let add = |from: u32, to: u32| {
        let (client, key) = (client.clone(), key.clone());
        async move {
            let mut conn = client.get_multiplexed_async_connection().await.unwrap();
            for n in from..=to {
                let _: String = redis::cmd("XADD")
                    .arg(&key)
                    .arg("*")
                    .arg("topic")
                    .arg("s")
                    .arg("data")
                    .arg(format!("n{n}"))
                    .query_async(&mut conn)
                    .await
                    .unwrap();
            }
        }
    };
    add(1, 2000).await;
    let dir = temp_dir("bridge-stream");
    let config = format!(
        r#"
data_dir = "{}"
[[bridge]]
name = "stream"
kind = "redis-stream"
url = "{}"
channels = ["{key}"]
topic = "{{topic}}"
batch = 50
"#,
        dir.join("data").display(),
        redis.url()
    );
    let mut hub = hub_with(&dir, &config, &[]).await;
    wait_metric(&hub.url, "published_total", "stream", 200, WAIT).await;
    hub.child.start_kill().unwrap();
    hub.child.wait().await.unwrap();
    add(2001, 2500).await;
    // As if the kill came before the XACKs: every entry is delivered again and must be
    // found in the history, not republished.
    let mut conn = client.get_multiplexed_async_connection().await.unwrap();
    let _: () = redis::cmd("XGROUP")
        .arg("SETID")
        .arg(&key)
        .arg("ssehub")
        .arg("0")
        .query_async(&mut conn)
        .await
        .unwrap();
    let hub = hub_with(&dir, &config, &[]).await;
    wait_metric(&hub.url, "skipped_total", "stream", 200, WAIT).await;
    // Redis goes away and comes back (its data on disk): the bridge waits, degraded.
    redis.stop().await;
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        let health = get_json(&format!("{}/healthz", hub.url)).await;
        if health["status"] == "degraded" {
            assert!(
                health["bridges"]["stream"]["lastError"].is_string(),
                "{health}"
            );
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "never degraded: {health}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    // The HTTP API still works meanwhile.
    hub.publish("other", "still serving").await;
    let mut redis = redis.spawn().await;
    add(2501, 3000).await;
    assert_history(&hub, "s", &numbered(3000), "every entry once, in order").await;
    wait_metric(&hub.url, "up", "stream", 1, WAIT).await;
    assert_eq!(
        get_json(&format!("{}/healthz", hub.url)).await["status"],
        "ok"
    );
    redis.stop().await;
    drop(hub);
    std::fs::remove_dir_all(dir).unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_pubsub_patterns_reach_subscribers() {
    let mut redis = Server::redis().await;
    let dir = temp_dir("bridge-pubsub");
    let config = format!(
        r#"
memory = true
[[bridge]]
name = "pubsub"
kind = "redis-pubsub"
url = "{}"
channels = ["prices.*"]
topic = "{{channel}}"
data_field = "price"
"#,
        redis.url()
    );
    let hub = hub_with(&dir, &config, &[]).await;
    wait_metric(&hub.url, "up", "pubsub", 1, WAIT).await;
    let stream = reqwest::Client::new()
        .get(format!("{}/events/prices.acme", hub.url))
        .send()
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(200)).await;
    let mut conn = redis::Client::open(redis.url())
        .unwrap()
        .get_multiplexed_async_connection()
        .await
        .unwrap();
    let _: u64 = redis::cmd("PUBLISH")
        .arg("prices.acme")
        .arg(r#"{"price": 123.45}"#)
        .query_async(&mut conn)
        .await
        .unwrap();
    let (_, events) = read_events(stream, 1).await;
    assert_eq!(events[0].data, "123.45");
    redis.stop().await;
    std::fs::remove_dir_all(dir).unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bridge_that_cannot_connect_leaves_the_hub_serving_and_degraded() {
    let port = common::free_port();
    let dir = temp_dir("bridge-broken");
    let config = format!(
        r#"
memory = true
[[bridge]]
name = "nowhere"
kind = "redis-pubsub"
url = "redis://127.0.0.1:{port}"
channels = ["x"]
"#
    );
    let hub = hub_with(&dir, &config, &[]).await;
    hub.publish("t", "the API works").await;
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        let text = metrics(&hub.url).await;
        if bridge_metric(&text, "errors_total", "nowhere") >= 2 {
            assert_eq!(bridge_metric(&text, "up", "nowhere"), 0);
            break;
        }
        assert!(tokio::time::Instant::now() < deadline, "no retries counted");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let health = get_json(&format!("{}/healthz", hub.url)).await;
    assert_eq!(health["status"], "degraded", "{health}");
    assert_eq!(
        health["bridges"]["nowhere"]["state"], "retrying",
        "{health}"
    );
    // A bad table is refused at start, naming it.
    let bad = dir.join("bad.toml");
    std::fs::write(
        &bad,
        "[[bridge]]\nkind = \"postgres-outbox\"\nurl = \"redis://x\"\n",
    )
    .unwrap();
    let err = common::refused(&["serve", "--config", bad.to_str().unwrap()], &[]);
    assert!(err.contains("bridge 1"), "{err}");
    std::fs::remove_dir_all(dir).unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nats_subjects_with_named_tokens_reach_their_topics() {
    let mut nats = Server::nats().await;
    let dir = temp_dir("bridge-nats");
    let config = format!(
        r#"
memory = true
[[bridge]]
name = "nats"
kind = "nats"
url = "{}"
channels = ["orders.{{id}}"]
topic = "orders/{{id}}"
"#,
        nats.url()
    );
    let hub = hub_with(&dir, &config, &[]).await;
    wait_metric(&hub.url, "up", "nats", 1, WAIT).await;
    let stream = reqwest::Client::new()
        .get(format!("{}/events/orders%2F7", hub.url))
        .send()
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(200)).await;
    let client = async_nats::connect(nats.url()).await.unwrap();
    client
        .publish("orders.8", "not this one".into())
        .await
        .unwrap();
    client
        .publish("orders.7", "order seven".into())
        .await
        .unwrap();
    client.flush().await.unwrap();
    let (_, events) = read_events(stream, 1).await;
    assert_eq!(events[0].data, "order seven");
    nats.stop().await;
    std::fs::remove_dir_all(dir).unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn jetstream_survives_kill_9_and_a_server_restart_exactly_once() {
    let mut nats = Server::nats().await;
    let js_for = |url: String| async move {
        async_nats::jetstream::new(async_nats::connect(url).await.unwrap())
    };
    let js = js_for(nats.url()).await;
    js.create_stream(async_nats::jetstream::stream::Config {
        name: "EVENTS".into(),
        subjects: vec!["events.>".into()],
        ..Default::default()
    })
    .await
    .unwrap();
    let add = |js: async_nats::jetstream::Context, from: u32, to: u32| async move {
        for n in from..=to {
            js.publish(format!("events.{}", n % 3), format!("n{n}").into())
                .await
                .unwrap()
                .await
                .unwrap();
        }
    };
    add(js.clone(), 1, 1000).await;
    let dir = temp_dir("bridge-jetstream");
    let config = format!(
        r#"
data_dir = "{}"
[[bridge]]
name = "js"
kind = "jetstream"
url = "{}"
channels = ["EVENTS"]
topic = "js"
batch = 50
ack_wait_ms = 1000
"#,
        dir.join("data").display(),
        nats.url()
    );
    let mut hub = hub_with(&dir, &config, &[]).await;
    wait_metric(&hub.url, "published_total", "js", 100, WAIT).await;
    hub.child.start_kill().unwrap();
    hub.child.wait().await.unwrap();
    add(js.clone(), 1001, 1500).await;
    let hub = hub_with(&dir, &config, &[]).await;
    wait_metric(&hub.url, "up", "js", 1, WAIT).await;
    // The server goes away and comes back with its stream on disk.
    nats.stop().await;
    let deadline = tokio::time::Instant::now() + WAIT;
    while get_json(&format!("{}/healthz", hub.url)).await["status"] != "degraded" {
        assert!(tokio::time::Instant::now() < deadline, "never degraded");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let nats = nats.spawn().await;
    add(js_for(nats.url()).await, 1501, 2000).await;
    assert_history(&hub, "js", &numbered(2000), "every message once, in order").await;
    drop(hub);
    drop(nats);
    std::fs::remove_dir_all(dir).unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mqtt_qos1_sent_while_the_hub_is_down_arrives_after_it_restarts_once() {
    mqtt_through_restarts(3).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mqtt5_qos1_sent_while_the_hub_is_down_arrives_after_it_restarts_once() {
    mqtt_through_restarts(5).await;
}

/// QoS 1 through the hub's kill -9 and the broker's restart, the bridge speaking `version`.
async fn mqtt_through_restarts(version: u8) {
    let port = common::free_port();
    let broker_dir = temp_dir("mosquitto");
    let conf = broker_dir.join("mosquitto.conf");
    // Persistence on, so a restarted broker still holds the hub's session and its queue.
    std::fs::write(
        &conf,
        format!(
            "listener {port} 127.0.0.1\nallow_anonymous true\nmax_queued_messages 10000\n\
             persistence true\npersistence_location {}/\nuser root\n",
            broker_dir.display()
        ),
    )
    .unwrap();
    let start_broker = || async {
        let broker = tokio::process::Command::new("mosquitto")
            .arg("-c")
            .arg(&conf)
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .unwrap_or_else(|e| {
                panic!(
                    "cannot start mosquitto ({e}): install it with `apt-get install -y mosquitto`"
                )
            });
        let deadline = tokio::time::Instant::now() + WAIT;
        while tokio::net::TcpStream::connect(("127.0.0.1", port))
            .await
            .is_err()
        {
            assert!(
                tokio::time::Instant::now() < deadline,
                "mosquitto did not start"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        broker
    };
    let mut broker = start_broker().await;
    // A publisher of the test's own, at QoS 1.
    let mut options = rumqttc::MqttOptions::new("test-publisher", "127.0.0.1", port);
    options.set_keep_alive(Duration::from_secs(30));
    let (publisher, mut events) = rumqttc::AsyncClient::new(options, 100);
    let acked = std::sync::Arc::new(std::sync::atomic::AtomicU32::new(0));
    let counter = acked.clone();
    // Polled through the broker restart: a poll after an error reconnects.
    tokio::spawn(async move {
        loop {
            match events.poll().await {
                Ok(rumqttc::Event::Incoming(rumqttc::Packet::PubAck(_))) => {
                    counter.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                }
                Ok(_) => {}
                Err(_) => tokio::time::sleep(Duration::from_millis(50)).await,
            }
        }
    });
    let send = |from: u32, to: u32| {
        let (publisher, acked) = (publisher.clone(), acked.clone());
        async move {
            for n in from..=to {
                let payload = format!(r#"{{"n": "m{n}", "t": "n{n}"}}"#);
                publisher
                    .publish(
                        format!("sensors/kitchen/{}", n % 2),
                        rumqttc::QoS::AtLeastOnce,
                        false,
                        payload,
                    )
                    .await
                    .unwrap();
            }
            let deadline = tokio::time::Instant::now() + WAIT;
            while acked.load(std::sync::atomic::Ordering::Relaxed) < to {
                assert!(
                    tokio::time::Instant::now() < deadline,
                    "the broker did not take them"
                );
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
        }
    };
    let dir = temp_dir("bridge-mqtt");
    let config = format!(
        r#"
data_dir = "{}"
[[bridge]]
name = "mqtt"
kind = "mqtt"
url = "mqtt://127.0.0.1:{port}"
channels = ["sensors/{{room}}/#"]
consumer = "ssehub-test-{}-v{version}"
topic = "room/{{room}}"
id_field = "n"
data_field = "t"
mqtt_version = {version}
"#,
        dir.join("data").display(),
        std::process::id()
    );
    let mut hub = hub_with(&dir, &config, &[]).await;
    wait_metric(&hub.url, "up", "mqtt", 1, WAIT).await;
    send(1, 200).await;
    wait_metric(&hub.url, "published_total", "mqtt", 50, WAIT).await;
    hub.child.start_kill().unwrap();
    hub.child.wait().await.unwrap();
    // Sent while no hub is connected: the broker keeps them for the persistent session.
    send(201, 400).await;
    let hub = hub_with(&dir, &config, &[]).await;
    assert_history(
        &hub,
        "room/kitchen",
        &numbered(400),
        "every message once, in order",
    )
    .await;
    // A broker restart (SIGTERM: mosquitto writes its store): the hub's bridge reconnects to
    // the same session, and what the publisher sends afterwards arrives too.
    let pid = broker.id().unwrap().to_string();
    let status = tokio::process::Command::new("kill")
        .args(["-TERM", &pid])
        .status()
        .await
        .unwrap();
    assert!(status.success());
    broker.wait().await.unwrap();
    let mut broker = start_broker().await;
    send(401, 600).await;
    assert_history(
        &hub,
        "room/kitchen",
        &numbered(600),
        "every message once, in order, across the broker restart",
    )
    .await;
    broker.kill().await.unwrap();
    drop(hub);
    std::fs::remove_dir_all(dir).unwrap();
    std::fs::remove_dir_all(broker_dir).unwrap();
}

/// A durable hub's config (data in `dir`) with a bridge `amqp` from `queue` at `url` to the
/// topic `q`, 50 messages unacknowledged at most.
fn amqp_config(dir: &Path, url: &str, queue: &str) -> String {
    format!(
        r#"
data_dir = "{}"
[[bridge]]
name = "amqp"
kind = "amqp"
url = "{url}"
channels = ["{queue}"]
topic = "q"
batch = 50
"#,
        dir.join("data").display()
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn amqp_queue_survives_kill_9_exactly_once() {
    let vhost = Vhost::create();
    let url = vhost.url();
    let queue = unique("queue");
    let mut publisher = AmqpPublisher {
        url: url.clone(),
        queue: queue.clone(),
        channel: None,
    };
    let mut send = async |from: u32, to: u32| {
        for n in from..=to {
            publisher
                .attempt(n)
                .await
                .unwrap_or_else(|e| panic!("RabbitMQ at {url} is needed for this test: {e}"));
        }
    };
    send(1, 1000).await;
    let dir = temp_dir("bridge-amqp");
    let config = amqp_config(&dir, &url, &queue);
    let mut hub = hub_with(&dir, &config, &[]).await;
    wait_metric(&hub.url, "published_total", "amqp", 100, WAIT).await;
    hub.child.start_kill().unwrap();
    hub.child.wait().await.unwrap();
    send(1001, 1500).await;
    let hub = hub_with(&dir, &config, &[]).await;
    assert_history(&hub, "q", &numbered(1500), "every message once, in order").await;
    drop(hub);
    drop(vhost);
    std::fs::remove_dir_all(dir).unwrap();
}

/// Sends `signal` (`-INT`, `-QUIT`, `-TERM`, `-KILL`) to `target`, a pid or `-PGID` for a
/// whole process group, with the machine's `kill`; true when it was delivered.
fn signal(signal: &str, target: &str) -> bool {
    std::process::Command::new("kill")
        .args([signal, "--", target])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

/// Runs `command` to completion and fails the test, with its output, when it fails.
fn run_ok(command: &mut std::process::Command, what: &str) {
    let output = command
        .output()
        .unwrap_or_else(|e| panic!("cannot run {what}: {e}"));
    assert!(
        output.status.success(),
        "{what} failed: {}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
}

/// A PostgreSQL server binary (`initdb`, `postgres`): on the PATH, else under Debian's
/// `/usr/lib/postgresql/<version>/bin`, the newest version. Missing, the test fails.
fn postgres_binary(name: &str) -> std::path::PathBuf {
    // Debian's versions, newest first.
    let mut versions: Vec<(u32, std::path::PathBuf)> = std::fs::read_dir("/usr/lib/postgresql")
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| Some((e.file_name().to_str()?.parse().ok()?, e.path().join("bin"))))
        .collect();
    versions.sort_by(|a, b| b.cmp(a));
    find_program(
        name,
        path_dirs().chain(versions.into_iter().map(|(_, dir)| dir)),
    )
    .unwrap_or_else(|| {
        panic!(
            "{name} is not on the PATH nor under /usr/lib/postgresql/*/bin: install the \
             PostgreSQL server (`apt-get install -y postgresql`)"
        )
    })
}

/// The directories of the PATH, in order.
fn path_dirs() -> impl Iterator<Item = std::path::PathBuf> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path).collect::<Vec<_>>().into_iter()
}

/// `name` in the first of `dirs` that has it.
fn find_program(
    name: &str,
    dirs: impl IntoIterator<Item = std::path::PathBuf>,
) -> Option<std::path::PathBuf> {
    dirs.into_iter().map(|d| d.join(name)).find(|p| p.is_file())
}

/// A number `id ARGS` prints (`-u`: this process's uid; `-u postgres`: that user's).
fn id(args: &[&str]) -> u32 {
    let output = std::process::Command::new("id")
        .args(args)
        .output()
        .expect("run id");
    assert!(
        output.status.success(),
        "id {args:?}: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8_lossy(&output.stdout)
        .trim()
        .parse()
        .unwrap()
}

/// A PostgreSQL server of the test's own: `initdb` into a temporary directory, `postgres` on
/// an ephemeral port with its socket in that directory. PostgreSQL refuses to run as root,
/// so a test running as root runs both as the `postgres` user. Dropped: an immediate
/// shutdown (then SIGKILL) and the directory removed, whether the test passed or not.
struct PgServer {
    child: Option<std::process::Child>,
    port: u16,
    dir: std::path::PathBuf,
    /// The user the server runs as (uid, gid); `None` when the tests do not run as root.
    user: Option<(u32, u32)>,
}

impl PgServer {
    async fn start() -> PgServer {
        use std::os::unix::process::CommandExt as _;
        let dir = temp_dir("postgres");
        let user = (id(&["-u"]) == 0).then(|| (id(&["-u", "postgres"]), id(&["-g", "postgres"])));
        if let Some((uid, gid)) = user {
            std::os::unix::fs::chown(&dir, Some(uid), Some(gid)).unwrap();
        }
        let mut server = PgServer {
            child: None,
            port: common::free_port(),
            dir,
            user,
        };
        let mut initdb = std::process::Command::new(postgres_binary("initdb"));
        initdb
            .arg("-D")
            .arg(server.dir.join("data"))
            .args([
                "-U",
                "postgres",
                "-A",
                "trust",
                "-E",
                "UTF8",
                "--locale=C",
                "--no-sync",
            ])
            .current_dir(&server.dir);
        if let Some((uid, gid)) = user {
            initdb.uid(uid).gid(gid);
        }
        run_ok(&mut initdb, "initdb");
        server.spawn().await;
        server
    }

    fn url(&self) -> String {
        format!("postgres://postgres@127.0.0.1:{}/postgres", self.port)
    }
}

impl Restartable for PgServer {
    /// Starts `postgres` on the data directory (again, after a stop) and waits until it
    /// takes connections.
    async fn spawn(&mut self) {
        use std::os::unix::process::CommandExt as _;
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.dir.join("server.log"))
            .unwrap();
        let mut command = std::process::Command::new(postgres_binary("postgres"));
        command
            .arg("-D")
            .arg(self.dir.join("data"))
            .arg("-k")
            .arg(&self.dir)
            .args([
                "-p",
                &self.port.to_string(),
                "-c",
                "listen_addresses=127.0.0.1",
            ])
            .current_dir(&self.dir)
            .stdout(std::process::Stdio::null())
            .stderr(log);
        if let Some((uid, gid)) = self.user {
            command.uid(uid).gid(gid);
        }
        self.child = Some(command.spawn().expect("start postgres"));
        let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
        let url = self.url();
        while tokio_postgres::connect(&url, tokio_postgres::NoTls)
            .await
            .is_err()
        {
            let exited = self.child.as_mut().unwrap().try_wait().unwrap();
            assert!(
                exited.is_none() && tokio::time::Instant::now() < deadline,
                "postgres did not start ({exited:?}): {}",
                std::fs::read_to_string(self.dir.join("server.log")).unwrap_or_default()
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Shuts the server down — `-INT` is PostgreSQL's fast shutdown (sessions ended, a
    /// checkpoint written), `-QUIT` its immediate one (no checkpoint: the next start
    /// recovers from the WAL) — and waits for it to exit.
    async fn stop(&mut self, mode: &str) {
        let Some(mut child) = self.child.take() else {
            return;
        };
        signal(mode, &child.id().to_string());
        let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
        while child.try_wait().unwrap().is_none() {
            if tokio::time::Instant::now() > deadline {
                let _ = child.kill();
                let _ = child.wait();
                panic!("postgres did not stop on {mode}");
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

impl Drop for PgServer {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            signal("-QUIT", &child.id().to_string());
            let deadline = std::time::Instant::now() + Duration::from_secs(5);
            while child.try_wait().ok().flatten().is_none() && std::time::Instant::now() < deadline
            {
                std::thread::sleep(Duration::from_millis(20));
            }
            let _ = child.kill();
            let _ = child.wait();
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// An application writing to a source for a fault test: message after message, through the
/// source's restarts.
trait SourceWriter: Send + 'static {
    /// How many messages one attempt writes.
    const STEP: u32;
    /// Writes messages `first..first + STEP`, all or (the attempt failing) none known to
    /// have been taken, connecting first when there is no connection.
    fn attempt(
        &mut self,
        first: u32,
    ) -> impl std::future::Future<Output = Result<(), String>> + Send;
    /// Forgets the connection after a failed attempt: the next one connects again.
    fn reset(&mut self);
}

/// What a source writer did: how many messages it wrote (each confirmed by its source) and
/// how many attempts failed because the source was away.
struct Written {
    count: u32,
    failed_attempts: u32,
}

/// Runs `writer` until `stop` is set (at most 20,000 messages, two minutes), counting what
/// it has written in `written`; an attempt that fails or takes over 5 s is made again on a
/// new connection until it succeeds.
async fn write_until_stopped<W: SourceWriter>(
    mut writer: W,
    written: std::sync::Arc<std::sync::atomic::AtomicU32>,
    stop: std::sync::Arc<std::sync::atomic::AtomicBool>,
) -> Written {
    use std::sync::atomic::Ordering;
    const MAX_MESSAGES: u32 = 20_000;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(120);
    let mut failed_attempts = 0;
    let mut next = 1u32;
    // A failed attempt is always made again, even once told to stop: it may have been taken
    // (the answer lost), and every message the source holds must be one that is counted.
    let mut retrying = false;
    while retrying || (!stop.load(Ordering::Relaxed) && next <= MAX_MESSAGES) {
        assert!(
            tokio::time::Instant::now() < deadline,
            "the source writer ran for two minutes"
        );
        match tokio::time::timeout(Duration::from_secs(5), writer.attempt(next)).await {
            Ok(Ok(())) => {
                retrying = false;
                next += W::STEP;
                written.store(next - 1, Ordering::Relaxed);
                // Paced, so that the faults fall mid-stream rather than after it.
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
            _ => {
                retrying = true;
                failed_attempts += 1;
                writer.reset();
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }
    }
    Written {
        count: next - 1,
        failed_attempts,
    }
}

/// Writes outbox rows in transactions of ten (row `n` on topic `odd` or `even`, data
/// `n<n>`). The unique `n` makes a retry of a transaction that did commit (its answer lost)
/// insert nothing, so each `n` is in the table once and ids grow with `n`.
struct OutboxWriter {
    url: String,
    insert: String,
    client: Option<tokio_postgres::Client>,
}

impl OutboxWriter {
    fn new(url: String, table: &str) -> OutboxWriter {
        OutboxWriter {
            url,
            insert: format!(
                "INSERT INTO {table} (n, topic, event, data) VALUES ($1, $2, 'row', $3) \
                 ON CONFLICT (n) DO NOTHING"
            ),
            client: None,
        }
    }
}

impl SourceWriter for OutboxWriter {
    const STEP: u32 = 10;

    async fn attempt(&mut self, first: u32) -> Result<(), String> {
        let e = |e: tokio_postgres::Error| e.to_string();
        if self.client.is_none() {
            let (client, connection) = tokio_postgres::connect(&self.url, tokio_postgres::NoTls)
                .await
                .map_err(e)?;
            tokio::spawn(connection);
            self.client = Some(client);
        }
        let client = self.client.as_mut().expect("connected");
        let transaction = client.transaction().await.map_err(e)?;
        for n in first..first + Self::STEP {
            let topic = if n % 2 == 0 { "even" } else { "odd" };
            transaction
                .execute(&self.insert, &[&(n as i64), &topic, &format!("n{n}")])
                .await
                .map_err(e)?;
        }
        transaction.commit().await.map_err(e)
    }

    fn reset(&mut self) {
        self.client = None;
    }
}

/// Waits until `done()` holds, polling every 20 ms, failing after `within` with `what`.
async fn wait_until(what: &str, within: Duration, mut done: impl FnMut() -> bool) {
    let deadline = tokio::time::Instant::now() + within;
    while !done() {
        assert!(tokio::time::Instant::now() < deadline, "{what}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Waits until `/healthz` says the bridge is retrying (its source gone).
async fn wait_degraded(hub: &Hub, bridge: &str) {
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        let health = get_json(&format!("{}/healthz", hub.url)).await;
        if health["status"] == "degraded" && health["bridges"][bridge]["state"] == "retrying" {
            return;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "never degraded: {health}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// A source server of a test's own that the test stops and starts again.
trait Restartable {
    /// Stops the server the way `how` names (a `kill` signal) and waits for it to exit.
    async fn stop(&mut self, how: &str);
    /// Starts it again on its data and waits until it takes connections.
    async fn spawn(&mut self);
}

/// The faults of the restart tests, while `writer` writes to the source without stopping.
/// The hub (`config` in `dir`) is started, killed with SIGKILL once `bridge` has published
/// 200 events, and started again after 200 more were written; then for each of `stops`,
/// once the bridge has published 200 more, the server is stopped that way, the bridge is
/// seen retrying on `/healthz` (the API serving), and the server is started again. Then the
/// writer stops; it and the bridge must each have seen every stop. Returns the running hub
/// and what the writer wrote.
async fn through_faults(
    dir: &Path,
    config: &str,
    bridge: &str,
    writer: impl SourceWriter,
    server: &mut impl Restartable,
    stops: &[&str],
) -> (Hub, Written) {
    use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
    use std::sync::Arc;
    let written = Arc::new(AtomicU32::new(0));
    let stop = Arc::new(AtomicBool::new(false));
    let writing = tokio::spawn(write_until_stopped(writer, written.clone(), stop.clone()));
    let mut hub = hub_with(dir, config, &[]).await;
    wait_metric(&hub.url, "published_total", bridge, 200, WAIT).await;
    // The hub dies mid-stream; the writer goes on.
    hub.child.start_kill().unwrap();
    hub.child.wait().await.unwrap();
    let at_kill = written.load(Ordering::Relaxed);
    wait_until("the writer stalled", WAIT, || {
        written.load(Ordering::Relaxed) >= at_kill + 200
    })
    .await;
    let hub = hub_with(dir, config, &[]).await;
    wait_metric(&hub.url, "published_total", bridge, 200, WAIT).await;
    for how in stops {
        let before = bridge_metric(&metrics(&hub.url).await, "published_total", bridge);
        server.stop(how).await;
        wait_degraded(&hub, bridge).await;
        hub.publish("other", "the API serves meanwhile").await;
        server.spawn().await;
        // A server's start and the bridge's back-off together can take a while.
        wait_metric(&hub.url, "up", bridge, 1, Duration::from_secs(60)).await;
        wait_metric(&hub.url, "published_total", bridge, before + 200, WAIT).await;
    }
    stop.store(true, Ordering::Relaxed);
    let done = writing.await.unwrap();
    assert!(
        done.failed_attempts >= stops.len() as u32,
        "the writer saw the source go away {} times ({} failed attempts)",
        stops.len(),
        done.failed_attempts
    );
    let errors = bridge_metric(&metrics(&hub.url).await, "errors_total", bridge);
    assert!(
        errors >= stops.len() as u64,
        "the bridge lost its source {} times, counted {errors}",
        stops.len()
    );
    (hub, done)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_outbox_survives_kill_9_and_database_restarts_exactly_once() {
    let mut pg = PgServer::start().await;
    let table = "outbox";
    let (db, connection) = tokio_postgres::connect(&pg.url(), tokio_postgres::NoTls)
        .await
        .unwrap();
    tokio::spawn(connection);
    db.batch_execute(&format!(
        "CREATE TABLE {table} (id bigserial PRIMARY KEY, n bigint UNIQUE NOT NULL, \
         topic text NOT NULL, event text, data text NOT NULL)"
    ))
    .await
    .unwrap();
    drop(db);
    let dir = temp_dir("bridge-outbox-restart");
    let config = format!(
        r#"
data_dir = "{}"
[[bridge]]
name = "outbox"
kind = "postgres-outbox"
url = "{}"
table = "{table}"
batch = 100
poll_ms = 50
"#,
        dir.join("data").display(),
        pg.url()
    );
    // A fast shutdown and, after it, an immediate one (WAL recovery on the next start), each
    // mid-stream: the bridge and the writer both lose the database and come back to it.
    let writer = OutboxWriter::new(pg.url(), table);
    let (hub, done) =
        through_faults(&dir, &config, "outbox", writer, &mut pg, &["-INT", "-QUIT"]).await;
    let (db, connection) = tokio_postgres::connect(&pg.url(), tokio_postgres::NoTls)
        .await
        .unwrap();
    tokio::spawn(connection);
    let rows = db
        .query(
            &format!("SELECT n, topic, data FROM {table} ORDER BY id"),
            &[],
        )
        .await
        .unwrap();
    let ns: Vec<i64> = rows.iter().map(|r| r.get(0)).collect();
    assert!(
        ns == (1..=done.count as i64).collect::<Vec<_>>(),
        "the table holds each of the writer's {} rows once, in id order",
        done.count
    );
    for topic in ["odd", "even"] {
        let expected: Vec<String> = rows
            .iter()
            .filter(|r| r.get::<_, &str>(1) == topic)
            .map(|r| r.get(2))
            .collect();
        assert_history(&hub, topic, &expected, "every row once, in row order").await;
    }
    eprintln!(
        "outbox through kill -9 and two database restarts: {} rows, {} writer retries, \
         every row once in order",
        done.count, done.failed_attempts
    );
    drop(hub);
    drop(pg);
    std::fs::remove_dir_all(dir).unwrap();
}

/// A program of RabbitMQ's: in `debian_dir` (where Debian's package puts the one to run),
/// else on the PATH. Missing, the test fails.
fn rabbitmq_program(name: &str, debian_dir: &str) -> std::path::PathBuf {
    let mut dirs = vec![std::path::PathBuf::from(debian_dir)];
    dirs.extend(path_dirs());
    find_program(name, dirs)
        .unwrap_or_else(|| panic!("{name} is not installed: `apt-get install -y rabbitmq-server`"))
}

/// A virtual host of the test's own on this machine's RabbitMQ (127.0.0.1:5672), made with
/// `rabbitmqctl` and open to `guest`; deleted, with its queues, when dropped.
struct Vhost {
    name: String,
}

impl Vhost {
    fn create() -> Vhost {
        let name = unique("vhost");
        let ctl = rabbitmq_program("rabbitmqctl", "/usr/sbin");
        run_ok(
            std::process::Command::new(&ctl).args(["add_vhost", &name]),
            "rabbitmqctl add_vhost",
        );
        let vhost = Vhost { name };
        run_ok(
            std::process::Command::new(&ctl).args([
                "set_permissions",
                "-p",
                &vhost.name,
                "guest",
                ".*",
                ".*",
                ".*",
            ]),
            "rabbitmqctl set_permissions",
        );
        vhost
    }

    fn url(&self) -> String {
        format!("amqp://guest:guest@127.0.0.1:5672/{}", self.name)
    }
}

impl Drop for Vhost {
    fn drop(&mut self) {
        let _ = std::process::Command::new(rabbitmq_program("rabbitmqctl", "/usr/sbin"))
            .args(["delete_vhost", &self.name])
            .output();
    }
}

/// A `rabbitmq-server` of the test's own: its node name, AMQP and distribution ports,
/// database, logs, config and (empty) plugin list all its own, under a temporary directory
/// that is also its `HOME` (so its Erlang cookie). It runs in a process group of its own;
/// dropped, the group is killed and the directory removed, whether the test passed or not.
struct RabbitServer {
    child: Option<tokio::process::Child>,
    port: u16,
    dist_port: u16,
    node: String,
    dir: std::path::PathBuf,
}

impl RabbitServer {
    async fn start() -> RabbitServer {
        let dir = temp_dir("rabbitmq");
        let port = common::free_port();
        for sub in ["home", "mnesia", "log"] {
            std::fs::create_dir_all(dir.join(sub)).unwrap();
        }
        std::fs::write(dir.join("enabled_plugins"), "[].\n").unwrap();
        std::fs::write(dir.join("rabbitmq-env.conf"), "").unwrap();
        std::fs::write(
            dir.join("rabbitmq.conf"),
            format!("listeners.tcp.local = 127.0.0.1:{port}\n"),
        )
        .unwrap();
        let mut server = RabbitServer {
            child: None,
            port,
            dist_port: common::free_port(),
            node: format!("{}@localhost", unique("rabbit")),
            dir,
        };
        server.spawn().await;
        server
    }

    fn url(&self) -> String {
        format!("amqp://guest:guest@127.0.0.1:{}/%2f", self.port)
    }
}

impl Restartable for RabbitServer {
    /// Starts the node (again, after a stop, on the same database) and waits for its AMQP
    /// port.
    async fn spawn(&mut self) {
        let dir = &self.dir;
        let mut command = std::process::Command::new(rabbitmq_program(
            "rabbitmq-server",
            "/usr/lib/rabbitmq/bin",
        ));
        command
            .env("HOME", dir.join("home"))
            .env("RABBITMQ_NODENAME", &self.node)
            .env("RABBITMQ_NODE_IP_ADDRESS", "127.0.0.1")
            .env("RABBITMQ_NODE_PORT", self.port.to_string())
            .env("RABBITMQ_DIST_PORT", self.dist_port.to_string())
            .env("RABBITMQ_MNESIA_BASE", dir.join("mnesia"))
            .env("RABBITMQ_LOG_BASE", dir.join("log"))
            .env("RABBITMQ_CONFIG_FILE", dir.join("rabbitmq.conf"))
            .env("RABBITMQ_CONF_ENV_FILE", dir.join("rabbitmq-env.conf"))
            .env("RABBITMQ_ENABLED_PLUGINS_FILE", dir.join("enabled_plugins"))
            .env("ERL_EPMD_ADDRESS", "127.0.0.1")
            .current_dir(dir)
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null());
        std::os::unix::process::CommandExt::process_group(&mut command, 0);
        let child = tokio::process::Command::from(command)
            .spawn()
            .unwrap_or_else(|e| {
                panic!("cannot start rabbitmq-server ({e}): `apt-get install -y rabbitmq-server`")
            });
        self.child = Some(child);
        // The node boots for some seconds before it opens the AMQP port.
        let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
        while tokio::net::TcpStream::connect(("127.0.0.1", self.port))
            .await
            .is_err()
        {
            let exited = self.child.as_mut().unwrap().try_wait().unwrap();
            assert!(
                exited.is_none() && tokio::time::Instant::now() < deadline,
                "rabbitmq-server did not start ({exited:?}); its log is under {}",
                dir.join("log").display()
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Stops the node and waits for it: `-TERM` to the server's script is a clean stop (the
    /// node stops its queues and exits), `-KILL` to its process group a crash (the next start
    /// recovers the durable queues and the persistent messages it had confirmed).
    async fn stop(&mut self, how: &str) {
        if let Some(mut child) = self.child.take() {
            let pid = child.id().unwrap();
            match how {
                "-KILL" => signal(how, &format!("-{pid}")),
                _ => signal(how, &pid.to_string()),
            };
            tokio::time::timeout(Duration::from_secs(30), child.wait())
                .await
                .expect("rabbitmq-server did not stop within 30 s")
                .unwrap();
        }
    }
}

impl Drop for RabbitServer {
    fn drop(&mut self) {
        if let Some(child) = self.child.take() {
            if let Some(pid) = child.id() {
                signal("-KILL", &format!("-{pid}"));
            }
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// Publishes persistent messages (`message_id` `m<n>`, body `n<n>`) to a durable queue, one
/// at a time, each confirmed by the broker before the next. A publish that fails or is not
/// confirmed is sent again, so the broker may hold a message twice under one `message_id`.
struct AmqpPublisher {
    url: String,
    queue: String,
    channel: Option<(lapin::Connection, lapin::Channel)>,
}

impl SourceWriter for AmqpPublisher {
    const STEP: u32 = 1;

    async fn attempt(&mut self, n: u32) -> Result<(), String> {
        use lapin::options::{BasicPublishOptions, ConfirmSelectOptions, QueueDeclareOptions};
        let e = |e: lapin::Error| e.to_string();
        if self.channel.is_none() {
            let properties = lapin::ConnectionProperties::default()
                .with_executor(tokio_executor_trait::Tokio::current())
                .with_reactor(tokio_reactor_trait::Tokio::current());
            let connection = lapin::Connection::connect(&self.url, properties)
                .await
                .map_err(e)?;
            let channel = connection.create_channel().await.map_err(e)?;
            channel
                .confirm_select(ConfirmSelectOptions::default())
                .await
                .map_err(e)?;
            let durable = QueueDeclareOptions {
                durable: true,
                ..Default::default()
            };
            channel
                .queue_declare(&self.queue, durable, lapin::types::FieldTable::default())
                .await
                .map_err(e)?;
            self.channel = Some((connection, channel));
        }
        let (_, channel) = self.channel.as_ref().expect("connected");
        let properties = lapin::BasicProperties::default()
            .with_message_id(format!("m{n}").into())
            .with_delivery_mode(2);
        let confirm = channel
            .basic_publish(
                "",
                &self.queue,
                BasicPublishOptions::default(),
                format!("n{n}").as_bytes(),
                properties,
            )
            .await
            .map_err(e)?
            .await
            .map_err(e)?;
        if confirm.is_ack() {
            Ok(())
        } else {
            Err(format!("m{n} not confirmed"))
        }
    }

    fn reset(&mut self) {
        self.channel = None;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn amqp_queue_survives_kill_9_and_a_broker_restart_exactly_once() {
    let mut broker = RabbitServer::start().await;
    let queue = "events";
    let dir = temp_dir("bridge-amqp-restart");
    let config = amqp_config(&dir, &broker.url(), queue);
    // The broker stops mid-stream, cleanly and then by SIGKILL, and starts again each time
    // on its own database.
    let publisher = AmqpPublisher {
        url: broker.url(),
        queue: queue.into(),
        channel: None,
    };
    let (hub, done) = through_faults(
        &dir,
        &config,
        "amqp",
        publisher,
        &mut broker,
        &["-TERM", "-KILL"],
    )
    .await;
    assert_history(
        &hub,
        "q",
        &numbered(done.count),
        "every message once, in order",
    )
    .await;
    eprintln!(
        "amqp through kill -9 and two broker restarts: {} messages, {} publisher retries, \
         {} redeliveries skipped, every message once in order",
        done.count,
        done.failed_attempts,
        bridge_metric(&metrics(&hub.url).await, "skipped_total", "amqp")
    );
    drop(hub);
    drop(broker);
    std::fs::remove_dir_all(dir).unwrap();
}
