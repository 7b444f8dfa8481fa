//! Ingest bridges: events come into the hub from the systems where they are born. Each
//! `[[bridge]]` table of the config file names a source and how its messages map onto hub
//! events; [`start`] runs every bridge as a task of its own, on a thread the bridges share,
//! that reconnects with jittered exponential back-off, so a broken bridge never blocks the
//! HTTP API or another bridge.
//!
//! | kind | source | guarantee |
//! |---|---|---|
//! | `postgres-listen` | `LISTEN` channels, `NOTIFY` payloads | at most once (NOTIFY is not stored) |
//! | `postgres-outbox` | an outbox table read in id order | at least once, deduplicated by row id: exactly once in the history |
//! | `redis-pubsub` | channel patterns (`PSUBSCRIBE`) | at most once (pub/sub is not stored) |
//! | `redis-stream` | stream keys, a consumer group | at least once, `XACK` after the hub's store has the events, deduplicated by entry id |
//! | `nats` | core subjects with wildcards and named tokens | at most once |
//! | `jetstream` | a stream, through a durable pull consumer | at least once, acknowledged after the hub's store has the events, deduplicated by stream sequence |
//! | `mqtt` | MQTT 3.1.1 or 5 topic filters, QoS 1, a persistent session | at least once, `PUBACK` after the store has the event; deduplicated by `id_field` when set |
//! | `amqp` | a durable queue (bound to an exchange if given) | at least once, manual ack after the store has the event; deduplicated by `message_id` |
//!
//! A message that cannot become an event (not UTF-8, over `max_payload`, no valid topic) is
//! poison: counted in `ssehub_bridge_skipped_total`, logged with its source position, and
//! skipped (acknowledged where the source keeps it) — never a crash loop.

mod amqp;
mod mapping;
mod mqtt;
mod nats;
mod postgres;
mod redis_bridge;

use std::sync::Arc;
use std::time::Duration;

use serde::Deserialize;
use ssehub::{BridgeState, BridgeStatus, Hub};
use std::thread::JoinHandle;

pub use mapping::{Mapping, Poison};

/// One `[[bridge]]` table.
#[derive(Deserialize, Debug, Clone, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct BridgeSpec {
    /// A name for metrics and logs (default: the kind and its first source).
    pub name: Option<String>,
    pub kind: Kind,
    /// `postgres://user@host/db` or `redis://host:port`.
    pub url: String,
    /// LISTEN channels, Redis channel patterns, or Redis stream keys.
    #[serde(default)]
    pub channels: Vec<String>,
    /// `postgres-outbox`: the outbox table (columns `id bigint`, `topic text`, `event text`,
    /// `data text`).
    pub table: Option<String>,
    /// The topic template: `{channel}` (the channel, pattern match or stream key) and the
    /// fields of a JSON payload (`orders/{id}`). Default `{channel}` (`{topic}` for an outbox).
    pub topic: Option<String>,
    /// The event name template (fields allowed); left out: unnamed (an outbox row's `event`).
    pub event: Option<String>,
    /// A JSON payload's field to use as the event's id (the outbox and streams use the
    /// source's own position).
    pub id_field: Option<String>,
    /// A JSON payload's field to send as the data (text as is, anything else as JSON text);
    /// left out: the payload as it came.
    pub data_field: Option<String>,
    /// `redis-stream`: the consumer group (default `ssehub`) and this consumer's name.
    pub group: Option<String>,
    pub consumer: Option<String>,
    /// Polling interval of an outbox, in ms (default 200; a `NOTIFY` on the table's channel
    /// wakes it at once).
    pub poll_ms: Option<u64>,
    /// Messages read and published at once (default 500).
    pub batch: Option<usize>,
    /// `jetstream`: how long the server waits for an acknowledgement before delivering a
    /// message again, in ms (default 30,000).
    pub ack_wait_ms: Option<u64>,
    /// `amqp`: an exchange to bind the queue to, with this routing key (default `#`).
    pub exchange: Option<String>,
    pub routing_key: Option<String>,
    /// `mqtt`: the protocol version, 3 (3.1.1, the default) or 5.
    pub mqtt_version: Option<u8>,
    /// `mqtt` version 5: how long the broker keeps the session while the hub is away, in
    /// seconds (default a week).
    pub session_expiry_s: Option<u32>,
    /// What to do with poison: `skip` it (the default) or `park` it in `park_topic`.
    #[serde(default)]
    pub poison: OnPoison,
    /// Where parked messages go (default `bridges/<name>/parked`).
    pub park_topic: Option<String>,
}

/// What a bridge does with a message it cannot publish.
#[derive(Deserialize, Debug, Clone, Copy, PartialEq, Eq, Default)]
#[serde(rename_all = "kebab-case")]
pub enum OnPoison {
    /// Counted, logged and acknowledged: gone.
    #[default]
    Skip,
    /// Counted, logged, and published as a `parked` event to the park topic (the original
    /// payload in base64, the reason and the source position) before it is acknowledged.
    Park,
}

#[derive(Deserialize, Debug, Clone, Copy, PartialEq, Eq)]
#[serde(rename_all = "kebab-case")]
pub enum Kind {
    PostgresListen,
    PostgresOutbox,
    RedisPubsub,
    RedisStream,
    Nats,
    Jetstream,
    Mqtt,
    Amqp,
}

impl Kind {
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::PostgresListen => "postgres-listen",
            Kind::PostgresOutbox => "postgres-outbox",
            Kind::RedisPubsub => "redis-pubsub",
            Kind::RedisStream => "redis-stream",
            Kind::Nats => "nats",
            Kind::Jetstream => "jetstream",
            Kind::Mqtt => "mqtt",
            Kind::Amqp => "amqp",
        }
    }
}

/// A bridge, validated.
#[derive(Debug, Clone)]
pub struct Bridge {
    pub name: String,
    pub spec: BridgeSpec,
    pub mapping: Mapping,
    /// The park topic when poison is parked.
    pub park: Option<ssehub_core::Topic>,
}

impl BridgeSpec {
    /// Checks the table; an error names the fault (the caller names the table).
    pub fn validate(&self) -> Result<Bridge, String> {
        let scheme_ok = match self.kind {
            Kind::PostgresListen | Kind::PostgresOutbox => {
                self.url.starts_with("postgres://") || self.url.starts_with("postgresql://")
            }
            Kind::RedisPubsub | Kind::RedisStream => {
                self.url.starts_with("redis://") || self.url.starts_with("unix://")
            }
            Kind::Nats | Kind::Jetstream => {
                self.url.starts_with("nats://") || self.url.starts_with("tls://")
            }
            Kind::Mqtt => self.url.starts_with("mqtt://") || self.url.starts_with("tcp://"),
            Kind::Amqp => self.url.starts_with("amqp://"),
        };
        if !scheme_ok {
            return Err(format!(
                "url: {:?} is not a URL for {}",
                self.url,
                self.kind.as_str()
            ));
        }
        let first = match self.kind {
            Kind::PostgresOutbox => {
                let table = self
                    .table
                    .as_deref()
                    .ok_or("table: an outbox needs its table")?;
                if table.is_empty()
                    || !table
                        .chars()
                        .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '.')
                {
                    return Err(format!(
                        "table: {table:?} is not a table name (letters, digits, _ and .)"
                    ));
                }
                table.to_owned()
            }
            _ => {
                if self.channels.is_empty() {
                    return Err("channels: name at least one".into());
                }
                if self.channels.iter().any(String::is_empty) {
                    return Err("channels: an empty name".into());
                }
                self.channels[0].clone()
            }
        };
        let name = self
            .name
            .clone()
            .unwrap_or_else(|| format!("{}:{first}", self.kind.as_str()));
        let default_topic = if self.kind == Kind::PostgresOutbox {
            "{topic}"
        } else {
            "{channel}"
        };
        let mapping = Mapping::new(
            self.topic.as_deref().unwrap_or(default_topic),
            self.event.as_deref(),
            self.id_field.clone(),
            self.data_field.clone(),
        )?;
        match (self.kind, self.mqtt_version) {
            (_, None) | (Kind::Mqtt, Some(3 | 5)) => {}
            (Kind::Mqtt, Some(v)) => {
                return Err(format!("mqtt_version: {v} is not 3 (3.1.1) or 5"))
            }
            (_, Some(_)) => return Err("mqtt_version: only for kind = \"mqtt\"".into()),
        }
        let park = match (self.poison, &self.park_topic) {
            (OnPoison::Skip, Some(_)) => {
                return Err("park_topic: set poison = \"park\" to park messages there".into())
            }
            (OnPoison::Skip, None) => None,
            (OnPoison::Park, topic) => {
                let topic = topic
                    .clone()
                    .unwrap_or_else(|| format!("bridges/{name}/parked"));
                Some(
                    ssehub_core::Topic::new(&topic)
                        .map_err(|e| format!("park_topic: {topic:?}: {e}"))?,
                )
            }
        };
        Ok(Bridge {
            name,
            spec: self.clone(),
            mapping,
            park,
        })
    }
}

/// Starts every bridge; each runs until the process ends. They run on one thread of their
/// own, with a runtime of its own, not on the hub's: an event crosses two tasks on its way
/// in (the client crate's connection task reads it, the bridge task maps and publishes it),
/// and on the hub's runtime each hop waits in a worker's queue behind the streams the last
/// event woke (~1,000 socket writes for 1,000 subscribers). On their own thread the hops are
/// immediate, and the OS scheduler shares the cores between the bridges and the hub.
/// `None` when there are no bridges; an error when the thread or its runtime cannot start.
pub fn start(hub: Arc<Hub>, bridges: Vec<Bridge>) -> std::io::Result<Option<JoinHandle<()>>> {
    if bridges.is_empty() {
        return Ok(None);
    }
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    // Registered before this returns, so /metrics and /healthz list every bridge at once.
    let bridges: Vec<_> = bridges
        .into_iter()
        .map(|bridge| {
            let status = hub
                .bridges
                .register(&bridge.name, bridge.spec.kind.as_str());
            (bridge, status)
        })
        .collect();
    let thread = std::thread::Builder::new()
        .name("ssehub-bridges".into())
        .spawn(move || {
            runtime.block_on(async move {
                let mut tasks = tokio::task::JoinSet::new();
                for (bridge, status) in bridges {
                    tasks.spawn(run(hub.clone(), bridge, status));
                }
                while tasks.join_next().await.is_some() {}
            })
        })?;
    Ok(Some(thread))
}

/// Reconnect delays: 100 ms doubling to 30 s, each jittered to 50-100 %; back to the start
/// once a connection has run.
struct Backoff {
    next: Duration,
}

impl Backoff {
    const FIRST: Duration = Duration::from_millis(100);
    const MAX: Duration = Duration::from_secs(30);

    fn new() -> Backoff {
        Backoff { next: Self::FIRST }
    }

    fn wait(&mut self) -> Duration {
        let base = self.next;
        self.next = (self.next * 2).min(Self::MAX);
        base.mul_f64(0.5 + fastrand::f64() * 0.5)
    }
}

/// What one connection's run ends with: the source went away or failed.
pub(crate) type RunResult = Result<(), String>;

async fn run(hub: Arc<Hub>, bridge: Bridge, status: Arc<BridgeStatus>) {
    let mut backoff = Backoff::new();
    loop {
        let connected = std::time::Instant::now();
        let result = match bridge.spec.kind {
            Kind::PostgresListen => postgres::listen(&hub, &bridge, &status).await,
            Kind::PostgresOutbox => postgres::outbox(&hub, &bridge, &status).await,
            Kind::RedisPubsub => redis_bridge::pubsub(&hub, &bridge, &status).await,
            Kind::RedisStream => redis_bridge::stream(&hub, &bridge, &status).await,
            Kind::Nats => nats::core(&hub, &bridge, &status).await,
            Kind::Jetstream => nats::jetstream(&hub, &bridge, &status).await,
            Kind::Mqtt => mqtt::run(&hub, &bridge, &status).await,
            Kind::Amqp => amqp::run(&hub, &bridge, &status).await,
        };
        let why = match result {
            Ok(()) => "the source closed the connection".to_owned(),
            Err(e) => e,
        };
        status.failed(why.clone());
        status.set_state(BridgeState::Retrying);
        if connected.elapsed() > Duration::from_secs(10) {
            backoff = Backoff::new();
        }
        let wait = backoff.wait();
        tracing::warn!(bridge = %bridge.name, error = %why, retry_in_ms = wait.as_millis() as u64, "bridge lost its source; reconnecting");
        tokio::time::sleep(wait).await;
    }
}

/// One message of an at-most-once source (NOTIFY, pub/sub, core NATS), as it came.
pub(crate) struct Message {
    /// The channel, subject or topic it came on.
    pub channel: String,
    pub payload: Vec<u8>,
    /// Named tokens of the subject (`orders.{id}`), for the templates.
    pub vars: Vec<(String, String)>,
    /// Where it was in the source, for the logs.
    pub at: String,
}

/// `first`, then whatever else `next` has ready, up to `max` in all. `next` must not wait:
/// it returns `None` when nothing more is ready, so a lone message at a low rate goes on at
/// once and a burst goes on as one batch.
pub(crate) fn ready<T>(first: T, max: usize, mut next: impl FnMut() -> Option<T>) -> Vec<T> {
    let mut taken = vec![first];
    while taken.len() < max {
        match next() {
            Some(item) => taken.push(item),
            None => break,
        }
    }
    taken
}

/// The next item of `stream` if it has one ready, without waiting (`None` also when it has
/// ended: the caller's next wait sees the end).
pub(crate) fn now<S: futures_util::Stream + Unpin>(stream: &mut S) -> Option<S::Item> {
    use futures_util::{FutureExt as _, StreamExt as _};
    stream.next().now_or_never().flatten()
}

/// The batch size of a bridge (`batch`, default 500).
pub(crate) fn batch_size(bridge: &Bridge) -> usize {
    bridge.spec.batch.unwrap_or(500).max(1)
}

/// Publishes messages of an at-most-once source, in their order, as one batch (one store
/// append and one durability wait for the lot): a message that cannot be an event is poison
/// (counted, logged, parked if configured); a batch the hub refuses is counted as failed and
/// logged, and gone — the source keeps nothing to retry from.
pub(crate) async fn forward(
    hub: &Arc<Hub>,
    bridge: &Bridge,
    status: &BridgeStatus,
    messages: Vec<Message>,
) {
    BridgeStatus::add(&status.received, messages.len() as u64);
    let mut events = Vec::with_capacity(messages.len());
    for m in &messages {
        match bridge.mapping.event(
            &m.channel,
            &m.payload,
            None,
            &m.vars,
            hub.config.max_payload,
        ) {
            Ok(new) => events.push(new),
            Err(poison) => {
                events.extend(poisoned(
                    bridge, status, &m.at, &poison, &m.payload, None, hub,
                ));
            }
        }
    }
    if let Err(e) = publish_batch(hub, status, events).await {
        let first = messages.first().map_or("", |m| m.at.as_str());
        status.failed(e.clone());
        tracing::warn!(bridge = %bridge.name, position = %first, messages = messages.len(), error = %e, "messages could not be published");
    }
}

/// True when the hub's history already holds an event with this custom id: a message an
/// at-least-once source delivers again after a crash.
pub(crate) fn already_published(hub: &Hub, custom: &str) -> bool {
    matches!(hub.store.locate(custom), Ok(ssehub_core::Locate::Found(_)))
}

/// Publishes events of an at-least-once source as one batch, leaving out those whose id is
/// already in the history or earlier in the batch (a message delivered again after a crash;
/// counted as skipped). Returns once the store has them all, so the caller may ack.
pub(crate) async fn publish_once(
    hub: &Arc<Hub>,
    status: &BridgeStatus,
    events: Vec<ssehub_core::NewEvent>,
) -> Result<(), String> {
    let mut ids = std::collections::HashSet::new();
    let before = events.len();
    let fresh: Vec<_> = events
        .into_iter()
        .filter(|new| match &new.custom_id {
            Some(id) => !already_published(hub, id.as_str()) && ids.insert(id.clone()),
            None => true,
        })
        .collect();
    BridgeStatus::add(&status.skipped, (before - fresh.len()) as u64);
    publish_batch(hub, status, fresh).await
}

/// Publishes a batch (nothing when empty) and counts it; returns once the store has it.
pub(crate) async fn publish_batch(
    hub: &Arc<Hub>,
    status: &BridgeStatus,
    events: Vec<ssehub_core::NewEvent>,
) -> Result<(), String> {
    if events.is_empty() {
        return Ok(());
    }
    let n = events.len() as u64;
    hub.publish_many(events)
        .await
        .map_err(|e| format!("publish: {e}"))?;
    BridgeStatus::add(&status.published, n);
    Ok(())
}

/// Counts and logs a poison message, naming where it was in the source; with `poison =
/// "park"`, returns the event that parks it (the caller publishes it with its batch, so it is
/// durable before the source is acknowledged). `custom` is the source's id for the message,
/// given to the parked event so a redelivery after a crash is found in the history.
pub(crate) fn poisoned(
    bridge: &Bridge,
    status: &BridgeStatus,
    at: &str,
    poison: &Poison,
    payload: &[u8],
    custom: Option<&str>,
    hub: &Hub,
) -> Option<ssehub_core::NewEvent> {
    use base64::Engine as _;
    BridgeStatus::add(&status.skipped, 1);
    let Some(park) = &bridge.park else {
        tracing::warn!(bridge = %bridge.name, position = %at, reason = %poison, "bridge skipped a message it cannot publish");
        return None;
    };
    tracing::warn!(bridge = %bridge.name, position = %at, reason = %poison, topic = %park, "bridge parked a message it cannot publish");
    // Base64 grows by a third; what would not fit the hub's payload limit is cut, and says so.
    let room = (hub.config.max_payload.saturating_sub(at.len() + 1024)) / 4 * 3;
    let kept = &payload[..payload.len().min(room)];
    let data = serde_json::json!({
        "bridge": bridge.name,
        "position": at,
        "reason": poison.0,
        "payload": base64::engine::general_purpose::STANDARD.encode(kept),
        "bytes": payload.len(),
        "truncated": kept.len() < payload.len(),
    });
    let mut event = ssehub_core::NewEvent::new(vec![park.clone()], data.to_string());
    event.name = ssehub_core::EventName::new("parked").ok();
    event.custom_id = custom.and_then(|c| ssehub_core::WireId::new(c).ok());
    Some(event)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(kind: Kind, url: &str) -> BridgeSpec {
        BridgeSpec {
            name: None,
            kind,
            url: url.into(),
            channels: vec!["orders".into()],
            table: None,
            topic: None,
            event: None,
            id_field: None,
            data_field: None,
            group: None,
            consumer: None,
            poll_ms: None,
            batch: None,
            ack_wait_ms: None,
            exchange: None,
            routing_key: None,
            poison: OnPoison::Skip,
            park_topic: None,
            mqtt_version: None,
            session_expiry_s: None,
        }
    }

    #[test]
    fn specs_are_checked() {
        let ok = spec(Kind::PostgresListen, "postgres://postgres@127.0.0.1/test");
        assert_eq!(ok.validate().unwrap().name, "postgres-listen:orders");
        assert!(spec(Kind::PostgresListen, "redis://x").validate().is_err());
        assert!(spec(Kind::RedisStream, "postgres://x").validate().is_err());
        let mut outbox = spec(Kind::PostgresOutbox, "postgres://x/db");
        assert!(outbox.validate().unwrap_err().contains("table"));
        outbox.table = Some("bad name;".into());
        assert!(outbox.validate().is_err());
        outbox.table = Some("public.outbox".into());
        assert_eq!(
            outbox.validate().unwrap().name,
            "postgres-outbox:public.outbox"
        );
        let mut mqtt = spec(Kind::Mqtt, "mqtt://127.0.0.1:1883");
        mqtt.mqtt_version = Some(5);
        assert!(mqtt.validate().is_ok());
        mqtt.mqtt_version = Some(4);
        assert!(mqtt.validate().unwrap_err().contains("mqtt_version"));
        let mut not_mqtt = spec(Kind::Nats, "nats://x");
        not_mqtt.mqtt_version = Some(5);
        assert!(not_mqtt.validate().unwrap_err().contains("only for"));
        let mut none = spec(Kind::RedisPubsub, "redis://x");
        none.channels.clear();
        assert!(none.validate().is_err());
    }

    #[test]
    fn parking_is_checked_and_defaults_to_a_topic_per_bridge() {
        let mut s = spec(Kind::PostgresListen, "postgres://x/db");
        assert_eq!(s.validate().unwrap().park, None);
        s.park_topic = Some("dead".into());
        assert!(s.validate().unwrap_err().contains("poison"));
        s.poison = OnPoison::Park;
        assert_eq!(s.validate().unwrap().park.unwrap().as_str(), "dead");
        s.park_topic = None;
        let park = s.validate().unwrap().park.unwrap();
        assert_eq!(park.as_str(), "bridges/postgres-listen:orders/parked");
        s.park_topic = Some("bad topic".into());
        assert!(s.validate().unwrap_err().contains("park_topic"));
    }

    #[test]
    fn backoff_doubles_with_jitter_up_to_a_cap() {
        let mut b = Backoff::new();
        let first = b.wait();
        assert!(first >= Duration::from_millis(50) && first <= Duration::from_millis(100));
        for _ in 0..20 {
            assert!(b.wait() <= Backoff::MAX);
        }
        assert_eq!(b.next, Backoff::MAX);
    }
}
