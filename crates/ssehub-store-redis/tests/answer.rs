//! The publish answer in cluster mode comes from Redis's `XADD` reply, not from the
//! accepting node's own reader: two hubs served over real sockets on one `redis-server`
//! the test starts, one of them with its reader held back. And entries no hub wrote, in the
//! stream a node follows or loads, are skipped once, never read again and again.

use std::sync::Arc;
use std::time::{Duration, Instant};

use futures_util::StreamExt;
use ssehub::{Config, Hub};
use ssehub_core::{ParsedEvent, Parser, ParserItem};
use ssehub_store_redis::{RedisEngine, RedisOptions};

const WAIT: Duration = Duration::from_secs(15);

/// A `redis-server` on a free port, without persistence; killed when dropped.
struct Redis {
    _child: tokio::process::Child,
    url: String,
}

async fn start_redis() -> Redis {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let child = tokio::process::Command::new("redis-server")
        .args(["--port", &port.to_string(), "--bind", "127.0.0.1"])
        .args(["--save", "", "--appendonly", "no"])
        .stdout(std::process::Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .expect("redis-server runs (apt-get install -y redis-server)");
    let deadline = Instant::now() + WAIT;
    while tokio::net::TcpStream::connect(("127.0.0.1", port))
        .await
        .is_err()
    {
        assert!(Instant::now() < deadline, "redis-server did not listen");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    Redis {
        _child: child,
        url: format!("redis://127.0.0.1:{port}"),
    }
}

/// A hub node served on a free port. Its reader is not started: [`Node::start_reader`].
struct Node {
    url: String,
    hub: Arc<Hub>,
    engine: Arc<RedisEngine>,
}

impl Node {
    async fn start(redis: &Redis) -> Node {
        let engine = RedisEngine::connect(RedisOptions::new(redis.url.clone()))
            .await
            .unwrap();
        let hub = Hub::new(Config::default(), engine.mirror());
        hub.set_engine(engine.clone());
        tokio::spawn(engine.clone().run_counts(hub.clone()));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        tokio::spawn(ssehub::serve(
            listener,
            hub.clone(),
            std::future::pending::<()>(),
        ));
        Node { url, hub, engine }
    }

    fn start_reader(&self) {
        tokio::spawn(self.engine.clone().run(self.hub.clone()));
    }

    /// Publishes `data` on `news`: the answer's id and `delivered`, and how long it took.
    async fn publish(&self, data: &str) -> (String, u64, Duration) {
        let started = Instant::now();
        let response = reqwest::Client::new()
            .post(format!("{}/publish", self.url))
            .json(&serde_json::json!({"topic": "news", "data": data}))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 200);
        let body: serde_json::Value = response.json().await.unwrap();
        (
            body["id"].as_str().unwrap().to_owned(),
            body["delivered"].as_u64().unwrap(),
            started.elapsed(),
        )
    }

    async fn subscribers(&self) -> u64 {
        let info: serde_json::Value = reqwest::get(format!("{}/topics/news", self.url))
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        info["subscribers"].as_u64().unwrap()
    }

    /// Subscribes to `news`, resuming after `last_event_id` if given.
    async fn subscribe(&self, last_event_id: Option<&str>) -> Sse {
        let mut request = reqwest::Client::new().get(format!("{}/events/news", self.url));
        if let Some(id) = last_event_id {
            request = request.header("Last-Event-ID", id);
        }
        let response = request.send().await.unwrap();
        assert_eq!(response.status(), 200);
        Sse {
            body: response.bytes_stream().boxed(),
            parser: Parser::new(),
            events: Default::default(),
        }
    }
}

struct Sse {
    body: futures_util::stream::BoxStream<'static, reqwest::Result<bytes::Bytes>>,
    parser: Parser,
    events: std::collections::VecDeque<ParsedEvent>,
}

impl Sse {
    /// The next events are exactly `published` (data, id), in that order.
    async fn expect_in_order(&mut self, published: &[(String, String)], node: &str) {
        for (data, id) in published {
            let e = self
                .event_within(WAIT)
                .await
                .unwrap_or_else(|| panic!("{data} not delivered on {node}"));
            assert_eq!((&e.data, &e.id), (data, id), "on {node}");
        }
    }

    /// The next event within `within`; `None` if none came.
    async fn event_within(&mut self, within: Duration) -> Option<ParsedEvent> {
        let deadline = tokio::time::Instant::now() + within;
        loop {
            if let Some(event) = self.events.pop_front() {
                return Some(event);
            }
            let chunk = tokio::time::timeout_at(deadline, self.body.next())
                .await
                .ok()?
                .expect("stream open")
                .unwrap();
            let mut out = Vec::new();
            self.parser.feed(&chunk, &mut out);
            self.events
                .extend(out.into_iter().filter_map(|item| match item {
                    ParserItem::Event(e) => Some(e),
                    _ => None,
                }));
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_publish_is_answered_while_its_own_reader_lags_and_arrives_everywhere_in_order() {
    let redis = start_redis().await;
    let lagging = Node::start(&redis).await; // its reader starts only at the end
    let other = Node::start(&redis).await;
    other.start_reader();
    let mut on_lagging = lagging.subscribe(None).await;
    let mut on_other = other.subscribe(None).await;
    // Both nodes know both subscribers once they have exchanged counts (every 2 s).
    let deadline = Instant::now() + WAIT;
    while lagging.subscribers().await != 2 || other.subscribers().await != 2 {
        assert!(Instant::now() < deadline, "counts not exchanged");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }

    // Publishes alternate between the nodes. Before, the lagging node's answers waited up
    // to 2 s for its own reader; now each is Redis's reply, and `delivered` is the topic's
    // reach known cluster-wide: one subscriber here, one there.
    let mut published = Vec::new();
    for i in 0..10 {
        let node = if i % 2 == 0 { &lagging } else { &other };
        let (id, delivered, took) = node.publish(&i.to_string()).await;
        assert!(took < Duration::from_secs(1), "answer {i} took {took:?}");
        assert_eq!(delivered, 2, "publish {i}");
        published.push((i.to_string(), id));
    }
    on_other.expect_in_order(&published, "the other node").await;
    // Nothing reached the lagging node's subscriber: the answers did not depend on it.
    assert!(on_lagging
        .event_within(Duration::from_millis(300))
        .await
        .is_none());

    // A client resuming on the lagging node from an id that node answered (its reader has
    // not read it yet) is not reset: it gets what came after, once the reader has it.
    let (_, answered_here) = &published[8];
    let mut resumed = lagging.subscribe(Some(answered_here)).await;

    // Once its reader runs, the lagging node delivers everything, in the stream's order,
    // its own events not ahead of the other node's.
    lagging.start_reader();
    on_lagging
        .expect_in_order(&published, "the lagging node")
        .await;
    resumed
        .expect_in_order(&published[9..], "the lagging node, resumed")
        .await;
    // And then live again, like any node.
    let (id, _, _) = other.publish("after").await;
    let after = [("after".to_owned(), id)];
    on_lagging.expect_in_order(&after, "the lagging node").await;
    resumed
        .expect_in_order(&after, "the lagging node, resumed")
        .await;
}

/// `XREAD` calls Redis has served so far (`INFO commandstats`).
async fn xread_calls(conn: &mut redis::aio::MultiplexedConnection) -> u64 {
    let info: String = redis::cmd("INFO")
        .arg("commandstats")
        .query_async(conn)
        .await
        .unwrap();
    info.lines()
        .find_map(|l| l.strip_prefix("cmdstat_xread:calls="))
        .and_then(|rest| rest.split(',').next())
        .map_or(0, |n| n.parse().unwrap())
}

/// Appends `n` entries without the fields a hub writes (no topics), as another program might.
async fn add_foreign(conn: &mut redis::aio::MultiplexedConnection, n: usize) {
    let mut pipe = redis::pipe();
    for i in 0..n {
        pipe.cmd("XADD")
            .arg("ssehub:events")
            .arg("*")
            .arg("note")
            .arg(i)
            .ignore();
    }
    let () = pipe.query_async(conn).await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn entries_no_hub_wrote_are_skipped_once_by_the_reader_and_the_loader() {
    let redis = start_redis().await;
    let mut conn = redis::Client::open(redis.url.as_str())
        .unwrap()
        .get_multiplexed_async_connection()
        .await
        .unwrap();
    let first = Node::start(&redis).await;
    first.start_reader();
    let mut sse = first.subscribe(None).await;
    let (id1, _, _) = first.publish("one").await;
    sse.expect_in_order(&[("one".to_owned(), id1.clone())], "the first node")
        .await;

    // A foreign entry at the end of the stream: the reader moves past it and blocks again
    // (one XREAD per 2 s block), rather than reading it back at once, over and over.
    add_foreign(&mut conn, 1).await;
    tokio::time::sleep(Duration::from_millis(200)).await;
    let before = xread_calls(&mut conn).await;
    tokio::time::sleep(Duration::from_secs(1)).await;
    let reads = xread_calls(&mut conn).await - before;
    assert!(reads <= 3, "{reads} XREADs in one second on a quiet stream");

    // More than a loader's page of them (512), then an event: a node started now loads past
    // them and serves the event in a replay; the running node delivers it live.
    add_foreign(&mut conn, 1100).await;
    let (id2, _, _) = first.publish("two").await;
    let two = [("two".to_owned(), id2)];
    sse.expect_in_order(&two, "the first node").await;
    let later = tokio::time::timeout(WAIT, Node::start(&redis))
        .await
        .expect("a node loads a stream with foreign entries");
    let mut resumed = later.subscribe(Some(&id1)).await;
    resumed.expect_in_order(&two, "a node started later").await;
}
