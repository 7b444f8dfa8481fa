//! The JetStream cluster engine: hub nodes that share one ordered history in a NATS
//! JetStream stream.
//!
//! The same shape as the Redis engine. Publishing on any node is one JetStream publish
//! (the stream assigns the sequence number, so ids mean the same on every node), answered at
//! the server's PubAck: the answer does not wait for any node to read the event back. Each
//! node runs one reader, an ordered consumer that starts after the last sequence the node
//! delivered, and hands everything that has arrived to its hub in one
//! [`ssehub::Hub::deliver_many`], which records the events in the node's mirror of the
//! history (a [`MemoryStore`]) and fans them out, in stream order — the accepting node's
//! own events too. Replays are served from the mirror, which a node fills from the stream
//! when it starts.
//!
//! Subjects: every event is published on one subject, `<prefix>.events.hub`, inside the
//! stream's `<prefix>.events.>`; its topics travel in a header (see `fields`), so a topic
//! never has to be a valid subject token and any topic string is carried unchanged.
//!
//! Ids: `<stream created, ms>-<stream sequence>`. The first part is the same on every node
//! and never changes for the life of the stream, so ids order by sequence; a stream deleted
//! and created again starts later, so ids from the old one read as older than the new one's.
//!
//! Subscriber and node counts go over a core NATS subject, `<prefix>.nodes`: each node
//! publishes its counts every [`COUNTS_EVERY`] and keeps the others' last reports, dropping a
//! node it has not heard from in [`COUNTS_TTL`] — the Redis engine's expiring keys, kept in
//! each node instead of the server.

mod fields;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use async_nats::connection::State;
use async_nats::jetstream::consumer::pull::{Ordered, OrderedConfig};
use async_nats::jetstream::consumer::DeliverPolicy;
use async_nats::jetstream::stream::{Config as StreamConfig, DiscardPolicy, StorageType, Stream};
use async_nats::jetstream::{self, Message};
use futures_util::{FutureExt, StreamExt};
use ssehub::{log_reply, Answered, Engine, EnginePublish, Hub};
use ssehub_core::{Event, EventId, MemoryStore, NewEvent, Retention, Store, StoreError};
use tokio::sync::watch;

/// How a node joins a cluster.
#[derive(Clone, Debug)]
pub struct NatsOptions {
    /// `nats://host:port` (several, comma-separated, for a NATS cluster).
    pub url: String,
    /// The JetStream stream holding the history; nodes on the same stream form one cluster.
    pub stream: String,
    /// First tokens of every subject the cluster uses: events on `<prefix>.events.>`,
    /// counts on `<prefix>.nodes`.
    pub prefix: String,
    /// Events kept in the stream (its `max_msgs`, oldest discarded) and in each mirror.
    pub max_events: u64,
    /// Copies of the stream in a NATS cluster (1 on a single server).
    pub replicas: usize,
    /// A publish the server has not acknowledged in this time is answered 503.
    pub publish_timeout: Duration,
}

impl NatsOptions {
    pub fn new(url: impl Into<String>) -> NatsOptions {
        NatsOptions {
            url: url.into(),
            stream: "SSEHUB".into(),
            prefix: "ssehub".into(),
            max_events: 10_000,
            replicas: 1,
            publish_timeout: Duration::from_secs(2),
        }
    }
}

/// Messages handed to the hub in one `deliver_many` at most.
const READ_BATCH: usize = 512;
/// The longest pull request the reader's consumer waits on. The idle heartbeat is half of
/// it, and two missed heartbeats make the consumer start again from where it was, so a
/// server that went away and came back is noticed within a few seconds.
const PULL_EXPIRES: Duration = Duration::from_secs(4);
/// How often a node reports its subscriber counts.
const COUNTS_EVERY: Duration = Duration::from_secs(2);
/// A node not heard from in this long stops being counted.
const COUNTS_TTL: Duration = Duration::from_secs(6);
/// The first wait before the reader tries the stream again.
const INITIAL_BACKOFF: Duration = Duration::from_millis(100);
/// The longest wait between two attempts to reach the server again.
const MAX_BACKOFF: Duration = Duration::from_secs(2);

/// Another node's last report.
struct Report {
    at: Instant,
    counts: HashMap<String, usize>,
}

/// This node's part of a cluster: see the crate docs.
pub struct NatsEngine {
    options: NatsOptions,
    client: async_nats::Client,
    js: jetstream::Context,
    /// The subject every event is published on.
    subject: String,
    /// The first part of every id: the stream's creation time in milliseconds.
    epoch: u64,
    mirror: Arc<MemoryStore>,
    /// This node's name in the counts it reports.
    node: String,
    /// The other nodes' last reports, by node name.
    reports: Mutex<HashMap<String, Report>>,
    /// The highest id this node's publishes were acknowledged with.
    answered: Answered,
    /// Counts the client's connections to the server: the reader starts a new consumer
    /// on each reconnection rather than wait for the old one (gone with a restarted server)
    /// to be noticed missing, which takes the client several seconds.
    reconnects: watch::Receiver<u64>,
}

fn unavailable(what: &str, e: impl std::fmt::Display) -> StoreError {
    StoreError::Unavailable(format!("nats {what}: {e}"))
}

impl NatsEngine {
    /// Connects, creates the stream if there is none (or sets its `max_msgs` to this node's
    /// `max_events`), loads the retained stream into a new mirror, and returns the engine.
    /// The hub must be built on [`NatsEngine::mirror`] and the engine started on it with
    /// [`NatsEngine::start`].
    pub async fn connect(options: NatsOptions) -> Result<Arc<NatsEngine>, StoreError> {
        let (connected, reconnects) = watch::channel(0u64);
        let client = async_nats::ConnectOptions::new()
            .event_callback(move |event| {
                if matches!(event, async_nats::Event::Connected) {
                    connected.send_modify(|n| *n += 1);
                }
                std::future::ready(())
            })
            .connection_timeout(options.publish_timeout)
            .request_timeout(Some(options.publish_timeout))
            // Reconnect forever, soon: publishes answer 503 meanwhile.
            .max_reconnects(None)
            .reconnect_delay_callback(|attempt| {
                let step = Duration::from_millis(50) * 2u32.saturating_pow(attempt.min(8) as u32);
                step.min(MAX_BACKOFF)
            })
            .connect(options.url.split(',').map(str::trim).collect::<Vec<_>>())
            .await
            .map_err(|e| unavailable("connect", e))?;
        let mut js = jetstream::new(client.clone());
        js.set_timeout(options.publish_timeout);
        let stream = Self::open_stream(&js, &options).await?;
        let info = stream.cached_info();
        let epoch = (info.created.unix_timestamp_nanos() / 1_000_000) as u64;
        let first = info.state.first_sequence;
        // Everything up to the sequence before the first retained one was discarded; a
        // stream that never discarded anything holds every id there was.
        let floor = if first <= 1 {
            EventId::ZERO
        } else {
            EventId::new(epoch, first - 1)
        };
        let mirror = Arc::new(MemoryStore::mirror(
            Retention::events(options.max_events),
            floor,
        ));
        let engine = NatsEngine {
            subject: format!("{}.events.hub", options.prefix),
            options,
            client,
            js,
            epoch,
            mirror,
            node: node_name(),
            reports: Mutex::new(HashMap::new()),
            answered: Answered::default(),
            reconnects,
        };
        if info.state.messages > 0 {
            engine
                .load(&stream, first, info.state.last_sequence)
                .await?;
        }
        Ok(Arc::new(engine))
    }

    async fn open_stream(
        js: &jetstream::Context,
        options: &NatsOptions,
    ) -> Result<Stream, StoreError> {
        let max_messages = i64::try_from(options.max_events).unwrap_or(i64::MAX);
        let config = StreamConfig {
            name: options.stream.clone(),
            subjects: vec![format!("{}.events.>", options.prefix)],
            max_messages,
            discard: DiscardPolicy::Old,
            storage: StorageType::File,
            num_replicas: options.replicas,
            ..StreamConfig::default()
        };
        let mut stream = js
            .get_or_create_stream(config)
            .await
            .map_err(|e| unavailable("stream", e))?;
        let current = stream.cached_info().config.clone();
        if current.max_messages != max_messages {
            // The newest node's history setting wins, as with Redis's MAXLEN on each XADD.
            tracing::warn!(stream = %options.stream, from = current.max_messages, to = max_messages, "setting the stream's max_msgs to this node's history");
            js.update_stream(StreamConfig {
                max_messages,
                ..current
            })
            .await
            .map_err(|e| unavailable("stream update", e))?;
            stream = js
                .get_stream(&options.stream)
                .await
                .map_err(|e| unavailable("stream", e))?;
        }
        Ok(stream)
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

    fn id(&self, sequence: u64) -> EventId {
        EventId::new(self.epoch, sequence)
    }

    /// An ordered consumer of the whole stream from `start` on.
    async fn consumer(&self, stream: &Stream, start: u64) -> Result<Ordered, StoreError> {
        let config = OrderedConfig {
            deliver_policy: DeliverPolicy::ByStartSequence {
                start_sequence: start.max(1),
            },
            max_expires: PULL_EXPIRES,
            ..OrderedConfig::default()
        };
        stream
            .create_consumer(config)
            .await
            .map_err(|e| unavailable("consumer", e))?
            .messages()
            .await
            .map_err(|e| unavailable("consumer", e))
    }

    /// The stream sequence of `message` and the event it carries (`None` for a message no
    /// hub wrote).
    fn event(&self, message: &Message) -> Result<(u64, Option<Arc<Event>>), StoreError> {
        let sequence = message
            .info()
            .map_err(|e| unavailable("message", e))?
            .stream_sequence;
        let Some(new) = fields::decode(message.headers.as_ref(), &message.payload) else {
            tracing::warn!(sequence, "stream message without topics skipped");
            return Ok((sequence, None));
        };
        let event = Arc::new(Event::assign(self.id(sequence), new));
        Ok((sequence, Some(event)))
    }

    /// Reads the retained stream into the mirror, oldest first, up to `last` (the last
    /// sequence when the node looked) or the end of the stream, whichever comes first: what
    /// is published meanwhile is the reader's.
    async fn load(&self, stream: &Stream, first: u64, last: u64) -> Result<(), StoreError> {
        let mut messages = self.consumer(stream, first).await?;
        // A stream emptied since the node looked sends nothing more: stop waiting (the
        // reader goes on from whatever was loaded, so nothing is lost either way).
        let wait = self.options.publish_timeout;
        while let Ok(Some(message)) = tokio::time::timeout(wait, messages.next()).await {
            let message = message.map_err(|e| unavailable("load", e))?;
            let pending = message.info().map_err(|e| unavailable("load", e))?.pending;
            let (sequence, event) = self.event(&message)?;
            if let Some(event) = event {
                self.mirror.insert(event);
            }
            if pending == 0 || sequence >= last {
                break;
            }
        }
        Ok(())
    }

    /// Follows the stream forever, delivering each event to `hub`. After any error, and
    /// after every reconnection to the server, it starts a new consumer right after the
    /// last sequence delivered, so nothing is skipped or repeated. Run it as a task for the
    /// life of the hub.
    pub async fn run(self: Arc<Self>, hub: Arc<Hub>) {
        let mut after = self
            .mirror
            .stats()
            .newest
            .unwrap_or_else(|| self.mirror.floor())
            .seq;
        let mut backoff = INITIAL_BACKOFF;
        loop {
            let started = Instant::now();
            match self.follow(&hub, &mut after).await {
                Ok(()) => backoff = INITIAL_BACKOFF,
                Err(e) => {
                    tracing::warn!(error = %e, after, "cluster reader lost the stream; following again");
                    // A reader that followed for a while is having a new trouble.
                    if started.elapsed() > MAX_BACKOFF * 2 {
                        backoff = INITIAL_BACKOFF;
                    }
                    tokio::time::sleep(backoff).await;
                    backoff = (backoff * 2).min(MAX_BACKOFF);
                }
            }
        }
    }

    /// Delivers what the stream holds after `after` until an error (`Err`) or a
    /// reconnection to the server (`Ok`).
    async fn follow(&self, hub: &Hub, after: &mut u64) -> Result<(), StoreError> {
        let mut reconnects = self.reconnects.clone();
        reconnects.borrow_and_update();
        let stream = self
            .js
            .get_stream(&self.options.stream)
            .await
            .map_err(|e| unavailable("stream", e))?;
        let mut messages = self.consumer(&stream, *after + 1).await?;
        tracing::info!(after = *after, "cluster reader following the stream");
        loop {
            let first = tokio::select! {
                first = messages.next() => first.ok_or_else(|| unavailable("consumer", "ended"))?,
                _ = reconnects.changed() => {
                    tracing::info!(after = *after, "reconnected to the server; following the stream again");
                    return Ok(());
                }
            };
            // Everything that has arrived, up to READ_BATCH, in one go.
            let mut batch = vec![first];
            while batch.len() < READ_BATCH {
                match messages.next().now_or_never() {
                    Some(Some(message)) => batch.push(message),
                    Some(None) | None => break,
                }
            }
            let mut events = Vec::with_capacity(batch.len());
            let mut failed = None;
            for message in batch {
                let found = message
                    .map_err(|e| unavailable("consumer", e))
                    .and_then(|m| self.event(&m));
                match found {
                    // A consumer started again may repeat what was delivered: skip it.
                    Ok((sequence, event)) if sequence > *after => {
                        *after = sequence;
                        events.extend(event);
                    }
                    Ok(_) => {}
                    Err(e) => {
                        failed = Some(e);
                        break;
                    }
                }
            }
            let mirror = &self.mirror;
            hub.deliver_many(&events, |e| {
                mirror.insert(e.clone());
            });
            if let Some(e) = failed {
                return Err(e);
            }
        }
    }

    /// Reports this node's subscribers per topic every [`COUNTS_EVERY`] (subscribers or
    /// not: the report is also how nodes are counted) and keeps the other nodes' reports,
    /// so `/topics` shows cluster-wide counts at most a few seconds old. Run it as a task.
    pub async fn run_counts(self: Arc<Self>, hub: Arc<Hub>) {
        let subject = format!("{}.nodes", self.options.prefix);
        let listener = {
            let engine = self.clone();
            let subject = subject.clone();
            async move {
                let mut backoff = INITIAL_BACKOFF;
                loop {
                    match engine.client.subscribe(subject.clone()).await {
                        Ok(mut reports) => {
                            while let Some(report) = reports.next().await {
                                engine.heard(&report.payload);
                            }
                        }
                        Err(e) => tracing::debug!(error = %e, "cluster counts not heard"),
                    }
                    tokio::time::sleep(backoff).await;
                    backoff = (backoff * 2).min(MAX_BACKOFF);
                }
            }
        };
        tokio::spawn(listener);
        let mut timer = tokio::time::interval(COUNTS_EVERY);
        loop {
            timer.tick().await;
            let report = self.report(&hub);
            if let Err(e) = self.client.publish(subject.clone(), report.into()).await {
                tracing::debug!(error = %e, "cluster counts not reported this round");
            }
            self.reports
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .retain(|_, r| r.at.elapsed() < COUNTS_TTL);
            hub.remote_counts_changed(|topic| self.remote_subscribers(topic));
        }
    }

    /// This node's report: its name, then a line `<subscribers> <topic>` per topic with
    /// subscribers (topics never contain whitespace).
    fn report(&self, hub: &Hub) -> String {
        let mut report = self.node.clone();
        for topic in hub.local_topics() {
            if topic.subscribers > 0 {
                report.push_str(&format!("\n{} {}", topic.subscribers, topic.topic));
            }
        }
        report
    }

    /// Records another node's report (this node's own comes back too and is ignored).
    fn heard(&self, payload: &[u8]) {
        let Ok(text) = std::str::from_utf8(payload) else {
            return;
        };
        let mut lines = text.lines();
        let Some(node) = lines.next().filter(|n| *n != self.node) else {
            return;
        };
        let counts = lines
            .filter_map(|line| {
                let (n, topic) = line.split_once(' ')?;
                Some((topic.to_owned(), n.parse().ok()?))
            })
            .collect();
        self.reports
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(
                node.to_owned(),
                Report {
                    at: Instant::now(),
                    counts,
                },
            );
    }

    /// One JetStream publish; the event as the stream numbered it, once the server has
    /// acknowledged it.
    async fn append(&self, new: NewEvent) -> Result<Arc<Event>, StoreError> {
        // While disconnected the client would queue the message and send it after the
        // reconnect, long after this publish was answered 503: refuse it now instead.
        if self.client.connection_state() != State::Connected {
            return Err(unavailable("publish", "not connected to the server"));
        }
        let headers = fields::headers(&new);
        let publish = async {
            self.js
                .publish_with_headers(
                    self.subject.clone(),
                    headers,
                    bytes::Bytes::copy_from_slice(new.data.as_bytes()),
                )
                .await?
                .await
        };
        let ack = log_reply(self.options.publish_timeout, "nats publish", publish).await?;
        let id = self.id(ack.sequence);
        self.answered.record(id);
        Ok(Arc::new(Event::assign(id, new)))
    }
}

impl Engine for NatsEngine {
    fn publish(&self, new: NewEvent) -> EnginePublish<'_> {
        Box::pin(self.append(new))
    }

    fn remote_subscribers(&self, topic: &str) -> usize {
        self.reports
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .values()
            .filter(|r| r.at.elapsed() < COUNTS_TTL)
            .filter_map(|r| r.counts.get(topic))
            .sum()
    }

    fn nodes(&self) -> Option<usize> {
        let reports = self.reports.lock().unwrap_or_else(|e| e.into_inner());
        Some(
            1 + reports
                .values()
                .filter(|r| r.at.elapsed() < COUNTS_TTL)
                .count(),
        )
    }

    fn answered(&self, id: EventId) -> bool {
        self.answered.covers(id)
    }
}

/// A name for this node: its process id and start time, in hex.
fn node_name() -> String {
    let started = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_micros());
    format!("{:x}-{started:x}", std::process::id())
}
