//! The Redis cluster engine: hub nodes that share one ordered history in a Redis stream.
//!
//! Publishing on any node is one `XADD` (Redis assigns the id, so ids mean the same on every
//! node), answered as soon as Redis has replied: the answer does not wait for any node to
//! read the event back. Each node runs one reader that follows the stream with `XREAD
//! BLOCK` and hands every entry one read returned to its hub ([`ssehub::Hub::deliver_many`]),
//! which records them in the node's mirror of the history (a [`MemoryStore`]) and fans them
//! out to the node's own subscribers, in stream order — the accepting node's own events
//! too, so no node delivers an event ahead of an earlier one published elsewhere. Redis
//! work per publish is O(1) per node — one `XADD`, at most one read by each node's reader —
//! never per subscriber. Replays are served from the mirror, which a node fills from the
//! stream when it starts, so a node started later serves ids published before it started.
//!
//! Why `XREAD BLOCK` rather than pub/sub for the fan-out to nodes: it is as fast (the
//! blocked read returns as soon as the entry is added) and it cannot lose or reorder
//! anything: after a lost connection the reader resumes from the last id it delivered.

mod fields;

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use redis::aio::{ConnectionManager, ConnectionManagerConfig, MultiplexedConnection};
use redis::{AsyncConnectionConfig, Value};
use ssehub::{log_reply, Answered, Engine, EnginePublish, Hub};
use ssehub_core::{Event, EventId, MemoryStore, NewEvent, Retention, Store, StoreError};

/// How a node joins a cluster.
#[derive(Clone, Debug)]
pub struct RedisOptions {
    /// `redis://host:port/db`.
    pub url: String,
    /// Prefix of every key the cluster uses; nodes with the same prefix form one cluster.
    pub prefix: String,
    /// Events kept in the stream (`XADD MAXLEN ~`) and in each node's mirror.
    pub max_events: u64,
    /// A publish that Redis has not acknowledged in this time is answered 503.
    pub publish_timeout: Duration,
}

impl RedisOptions {
    pub fn new(url: impl Into<String>) -> RedisOptions {
        RedisOptions {
            url: url.into(),
            prefix: "ssehub".into(),
            max_events: 10_000,
            publish_timeout: Duration::from_secs(2),
        }
    }
}

/// Entries read per `XREAD`.
const READ_BATCH: usize = 512;
/// How long one `XREAD` blocks before it is issued again.
const READ_BLOCK: Duration = Duration::from_secs(2);
/// How often a node reports its subscriber counts and reads the others'.
const COUNTS_EVERY: Duration = Duration::from_secs(2);
/// A node's report expires after this long (a dead node stops being counted).
const COUNTS_TTL_SECS: u64 = 6;

/// This node's part of a cluster: see the crate docs.
pub struct RedisEngine {
    options: RedisOptions,
    key: String,
    client: redis::Client,
    publisher: ConnectionManager,
    mirror: Arc<MemoryStore>,
    /// This node's name in the counts it reports.
    node: String,
    /// Subscribers per topic on the other nodes, as they last reported.
    remote: Mutex<HashMap<String, usize>>,
    /// Nodes that reported within [`COUNTS_TTL_SECS`], this one included: each node
    /// refreshes a key of its own every [`COUNTS_EVERY`], subscribers or not.
    nodes: AtomicUsize,
    /// The highest id this node's `XADD`s were answered with.
    answered: Answered,
}

fn unavailable(what: &str, e: impl std::fmt::Display) -> StoreError {
    StoreError::Unavailable(format!("redis {what}: {e}"))
}

impl RedisEngine {
    /// Connects, loads the retained stream into a new mirror, and returns the engine. The
    /// hub must be built on [`RedisEngine::mirror`] and the engine started on it with
    /// [`RedisEngine::start`].
    pub async fn connect(options: RedisOptions) -> Result<Arc<RedisEngine>, StoreError> {
        let client =
            redis::Client::open(options.url.as_str()).map_err(|e| unavailable("url", e))?;
        let config = ConnectionManagerConfig::new()
            .set_connection_timeout(Some(options.publish_timeout))
            .set_response_timeout(Some(options.publish_timeout));
        let publisher = ConnectionManager::new_with_config(client.clone(), config)
            .await
            .map_err(|e| unavailable("connect", e))?;
        let key = format!("{}:events", options.prefix);
        let mut conn = publisher.clone();
        let floor = Self::trimmed_through(&mut conn, &key).await?;
        let mirror = Arc::new(MemoryStore::mirror(
            Retention::events(options.max_events),
            floor,
        ));
        let engine = RedisEngine {
            options,
            key,
            client,
            publisher,
            mirror,
            node: format!("{:016x}", rand_u64()),
            remote: Mutex::new(HashMap::new()),
            nodes: AtomicUsize::new(1),
            answered: Answered::default(),
        };
        engine.load(&mut conn, floor).await?;
        Ok(Arc::new(engine))
    }

    /// Makes this engine `hub`'s path of every publish and starts its reader and its
    /// exchange of counts as tasks. `hub` must be built on [`Self::mirror`].
    pub fn start(self: &Arc<Self>, hub: &Arc<Hub>) {
        hub.set_engine(self.clone());
        tokio::spawn(self.clone().run(hub.clone()));
        tokio::spawn(self.clone().run_counts(hub.clone()));
    }

    /// The node's history: build the hub on it.
    pub fn mirror(&self) -> Arc<MemoryStore> {
        self.mirror.clone()
    }

    /// The highest id Redis has trimmed from the stream (`0-0` when none or no stream).
    async fn trimmed_through(
        conn: &mut ConnectionManager,
        key: &str,
    ) -> Result<EventId, StoreError> {
        let info: Result<Value, _> = redis::cmd("XINFO")
            .arg("STREAM")
            .arg(key)
            .query_async(conn)
            .await;
        let info = match info {
            Ok(info) => info,
            // No such key: a new cluster.
            Err(e) if e.to_string().contains("no such key") => return Ok(EventId::ZERO),
            Err(e) => return Err(unavailable("XINFO", e)),
        };
        Ok(fields::info_field(&info, "max-deleted-entry-id")
            .and_then(|v| v.parse().ok())
            .unwrap_or(EventId::ZERO))
    }

    /// Reads the retained stream into the mirror, oldest first.
    async fn load(&self, conn: &mut ConnectionManager, floor: EventId) -> Result<(), StoreError> {
        let mut after = floor;
        loop {
            let reply: Value = redis::cmd("XRANGE")
                .arg(&self.key)
                .arg(format!("({after}"))
                .arg("+")
                .arg("COUNT")
                .arg(READ_BATCH)
                .query_async(conn)
                .await
                .map_err(|e| unavailable("XRANGE", e))?;
            let entries = fields::entries(&reply);
            let Some(last) = entries.last else {
                return Ok(());
            };
            for (id, new) in entries.decoded {
                self.mirror.insert(Arc::new(Event::assign(id, new)));
            }
            after = last;
        }
    }

    /// Follows the stream forever, delivering each entry to `hub`. Reconnects (with
    /// back-off) after any error and resumes after the last id delivered, so nothing is
    /// skipped or repeated. Run it as a task for the life of the hub.
    pub async fn run(self: Arc<Self>, hub: Arc<Hub>) {
        let mut after = self
            .mirror
            .stats()
            .newest
            .unwrap_or_else(|| self.mirror.floor());
        let mut backoff = Duration::from_millis(100);
        loop {
            match self.follow(&hub, &mut after).await {
                Ok(()) => {}
                Err(e) => {
                    tracing::warn!(error = %e, after = %after, "cluster reader lost redis; reconnecting");
                    tokio::time::sleep(backoff).await;
                    backoff = (backoff * 2).min(Duration::from_secs(5));
                }
            }
        }
    }

    async fn follow(&self, hub: &Hub, after: &mut EventId) -> Result<(), StoreError> {
        let config = AsyncConnectionConfig::new()
            .set_connection_timeout(Some(Duration::from_secs(2)))
            .set_response_timeout(Some(READ_BLOCK + Duration::from_secs(3)));
        let mut conn: MultiplexedConnection = self
            .client
            .get_multiplexed_async_connection_with_config(&config)
            .await
            .map_err(|e| unavailable("connect", e))?;
        tracing::info!(after = %after, "cluster reader following the stream");
        loop {
            let reply: Value = redis::cmd("XREAD")
                .arg("COUNT")
                .arg(READ_BATCH)
                .arg("BLOCK")
                .arg(READ_BLOCK.as_millis() as u64)
                .arg("STREAMS")
                .arg(&self.key)
                .arg(after.to_string())
                .query_async(&mut conn)
                .await
                .map_err(|e| unavailable("XREAD", e))?;
            // Everything appended since the last read, up to READ_BATCH, in one go.
            let entries = fields::read_entries(&reply);
            let Some(last) = entries.last else { continue };
            let events: Vec<Arc<Event>> = entries
                .decoded
                .into_iter()
                .map(|(id, new)| Arc::new(Event::assign(id, new)))
                .collect();
            let mirror = &self.mirror;
            hub.deliver_many(&events, |e| {
                mirror.insert(e.clone());
            });
            // Past entries that did not decode too: they are skipped (logged), not re-read.
            *after = last;
        }
    }

    /// Every [`COUNTS_EVERY`]: reports this node's subscribers per topic to Redis (a hash
    /// per node that expires unless refreshed) and reads the other nodes' reports, so
    /// `/topics` shows cluster-wide counts at most a few seconds old. Run it as a task.
    pub async fn run_counts(self: Arc<Self>, hub: Arc<Hub>) {
        let mut timer = tokio::time::interval(COUNTS_EVERY);
        loop {
            timer.tick().await;
            if let Err(e) = self.exchange_counts(&hub).await {
                tracing::debug!(error = %e, "cluster counts not exchanged this round");
            }
        }
    }

    async fn exchange_counts(&self, hub: &Hub) -> Result<(), StoreError> {
        let mut conn = self.publisher.clone();
        let prefix = format!("{}:counts:", self.options.prefix);
        let mine = format!("{prefix}{}", self.node);
        let alive = format!("{}:nodes:", self.options.prefix);
        let counts: Vec<(String, usize)> = hub
            .local_topics()
            .into_iter()
            .filter(|t| t.subscribers > 0)
            .map(|t| (t.topic, t.subscribers))
            .collect();
        let mut pipe = redis::pipe();
        pipe.atomic().cmd("DEL").arg(&mine).ignore();
        pipe.cmd("SET")
            .arg(format!("{alive}{}", self.node))
            .arg(1)
            .arg("EX")
            .arg(COUNTS_TTL_SECS)
            .ignore();
        if !counts.is_empty() {
            pipe.cmd("HSET").arg(&mine);
            for (topic, n) in &counts {
                pipe.arg(topic).arg(*n);
            }
            pipe.ignore();
            pipe.cmd("EXPIRE").arg(&mine).arg(COUNTS_TTL_SECS).ignore();
        }
        pipe.query_async::<()>(&mut conn)
            .await
            .map_err(|e| unavailable("counts", e))?;
        let keys: Vec<String> = redis::cmd("KEYS")
            .arg(format!("{prefix}*"))
            .query_async(&mut conn)
            .await
            .map_err(|e| unavailable("counts", e))?;
        let nodes: Vec<String> = redis::cmd("KEYS")
            .arg(format!("{alive}*"))
            .query_async(&mut conn)
            .await
            .map_err(|e| unavailable("counts", e))?;
        self.nodes.store(nodes.len().max(1), Ordering::Relaxed);
        let mut remote: HashMap<String, usize> = HashMap::new();
        for key in keys.iter().filter(|k| **k != mine) {
            let theirs: HashMap<String, usize> = redis::cmd("HGETALL")
                .arg(key)
                .query_async(&mut conn)
                .await
                .map_err(|e| unavailable("counts", e))?;
            for (topic, n) in theirs {
                *remote.entry(topic).or_default() += n;
            }
        }
        *self.remote.lock().unwrap_or_else(|e| e.into_inner()) = remote;
        hub.remote_counts_changed(|topic| self.remote_subscribers(topic));
        Ok(())
    }

    /// One `XADD`; the event as Redis numbered it, once Redis has replied.
    async fn append(&self, new: NewEvent) -> Result<Arc<Event>, StoreError> {
        let mut conn = self.publisher.clone();
        let mut cmd = redis::cmd("XADD");
        cmd.arg(&self.key)
            .arg("MAXLEN")
            .arg("~")
            .arg(self.options.max_events)
            .arg("*");
        fields::write(&mut cmd, &new);
        let reply = cmd.query_async::<String>(&mut conn);
        let id = log_reply(self.options.publish_timeout, "redis XADD", reply).await?;
        let id: EventId = id
            .parse()
            .map_err(|_| StoreError::Corrupt(format!("XADD answered the id {id:?}")))?;
        self.answered.record(id);
        Ok(Arc::new(Event::assign(id, new)))
    }
}

impl Engine for RedisEngine {
    fn publish(&self, new: NewEvent) -> EnginePublish<'_> {
        Box::pin(self.append(new))
    }

    fn remote_subscribers(&self, topic: &str) -> usize {
        self.remote
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(topic)
            .copied()
            .unwrap_or(0)
    }

    fn nodes(&self) -> Option<usize> {
        Some(self.nodes.load(Ordering::Relaxed))
    }

    fn answered(&self, id: EventId) -> bool {
        self.answered.covers(id)
    }
}

/// A random node name: the clock's nanoseconds mixed with the process id.
fn rand_u64() -> u64 {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as u64);
    nanos ^ (u64::from(std::process::id()) << 32).rotate_left(17)
}
