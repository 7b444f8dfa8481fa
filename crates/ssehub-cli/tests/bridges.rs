//! Ingest bridges from the config file against the real services: PostgreSQL on this
//! machine (127.0.0.1:5432, database `test`; each test its own channel, table and bridge
//! name, dropped after) and a `redis-server` each test starts itself. The at-least-once
//! bridges are killed with SIGKILL mid-stream and restarted, and lose their source's
//! connection; every source message must reach the hub's history exactly once, in order.
//! A test whose service is missing fails.

mod common;

use std::path::Path;
use std::time::Duration;

use common::{read_events, temp_dir, Hub, Redis, WAIT};

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
    let all = history(&hub, "box", 4000).await;
    let expected: Vec<String> = (1..=4000).map(|n| format!("n{n}")).collect();
    assert_eq!(all.len(), expected.len());
    assert!(all == expected, "every row once, in order");
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
    let mut redis = Redis::start().await;
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
    let all = history(&hub, "s", 3000).await;
    let expected: Vec<String> = (1..=3000).map(|n| format!("n{n}")).collect();
    assert_eq!(all.len(), expected.len());
    assert!(all == expected, "every entry once, in order");
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
    let mut redis = Redis::start().await;
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

/// A `nats-server -js` of the test's own, its JetStream data in a temporary directory.
struct Nats {
    child: Option<tokio::process::Child>,
    port: u16,
    dir: std::path::PathBuf,
}

impl Nats {
    async fn start() -> Nats {
        Nats {
            child: None,
            port: common::free_port(),
            dir: temp_dir("nats"),
        }
        .spawn()
        .await
    }

    async fn spawn(mut self) -> Nats {
        let child = tokio::process::Command::new("nats-server")
            .args(["-js", "-a", "127.0.0.1", "-p", &self.port.to_string(), "-sd"])
            .arg(&self.dir)
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start nats-server ({e}): install it with `apt-get install -y nats-server`"));
        self.child = Some(child);
        let deadline = tokio::time::Instant::now() + WAIT;
        while tokio::net::TcpStream::connect(("127.0.0.1", self.port))
            .await
            .is_err()
        {
            assert!(
                tokio::time::Instant::now() < deadline,
                "nats-server did not start"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        self
    }

    fn url(&self) -> String {
        format!("nats://127.0.0.1:{}", self.port)
    }

    async fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            child.kill().await.unwrap();
        }
    }
}

impl Drop for Nats {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nats_subjects_with_named_tokens_reach_their_topics() {
    let mut nats = Nats::start().await;
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
    let mut nats = Nats::start().await;
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
    let all = history(&hub, "js", 2000).await;
    let expected: Vec<String> = (1..=2000).map(|n| format!("n{n}")).collect();
    assert_eq!(all.len(), expected.len());
    assert!(all == expected, "every message once, in order");
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
    let all = history(&hub, "room/kitchen", 400).await;
    let expected: Vec<String> = (1..=400).map(|n| format!("n{n}")).collect();
    assert_eq!(all.len(), expected.len());
    assert!(all == expected, "every message once, in order");
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
    let all = history(&hub, "room/kitchen", 600).await;
    let expected: Vec<String> = (1..=600).map(|n| format!("n{n}")).collect();
    assert_eq!(all.len(), expected.len());
    assert!(
        all == expected,
        "every message once, in order, across the broker restart"
    );
    broker.kill().await.unwrap();
    drop(hub);
    std::fs::remove_dir_all(dir).unwrap();
    std::fs::remove_dir_all(broker_dir).unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn amqp_queue_survives_kill_9_exactly_once() {
    use lapin::options::{BasicPublishOptions, ConfirmSelectOptions, QueueDeleteOptions};
    let url = "amqp://guest:guest@127.0.0.1:5672/%2f";
    let queue = unique("queue");
    let properties = || {
        lapin::ConnectionProperties::default()
            .with_executor(tokio_executor_trait::Tokio::current())
            .with_reactor(tokio_reactor_trait::Tokio::current())
    };
    let connection = lapin::Connection::connect(url, properties())
        .await
        .unwrap_or_else(|e| panic!("RabbitMQ at {url} is needed for this test: {e}"));
    let channel = connection.create_channel().await.unwrap();
    channel
        .queue_declare(
            &queue,
            lapin::options::QueueDeclareOptions {
                durable: true,
                ..Default::default()
            },
            lapin::types::FieldTable::default(),
        )
        .await
        .unwrap();
    channel
        .confirm_select(ConfirmSelectOptions::default())
        .await
        .unwrap();
    let send = |from: u32, to: u32| {
        let (channel, queue) = (channel.clone(), queue.clone());
        async move {
            for n in from..=to {
                let properties = lapin::BasicProperties::default()
                    .with_message_id(format!("m{n}").into())
                    .with_delivery_mode(2);
                channel
                    .basic_publish(
                        "",
                        &queue,
                        BasicPublishOptions::default(),
                        format!("n{n}").as_bytes(),
                        properties,
                    )
                    .await
                    .unwrap()
                    .await
                    .unwrap();
            }
        }
    };
    send(1, 1000).await;
    let dir = temp_dir("bridge-amqp");
    let config = format!(
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
    );
    let mut hub = hub_with(&dir, &config, &[]).await;
    wait_metric(&hub.url, "published_total", "amqp", 100, WAIT).await;
    hub.child.start_kill().unwrap();
    hub.child.wait().await.unwrap();
    send(1001, 1500).await;
    let hub = hub_with(&dir, &config, &[]).await;
    let all = history(&hub, "q", 1500).await;
    let mut sorted = all.clone();
    sorted.sort_by_key(|d| d[1..].parse::<u32>().unwrap());
    sorted.dedup();
    assert_eq!(sorted.len(), 1500, "every message once");
    assert_eq!(all.len(), 1500);
    channel
        .queue_delete(&queue, QueueDeleteOptions::default())
        .await
        .unwrap();
    drop(hub);
    std::fs::remove_dir_all(dir).unwrap();
}
