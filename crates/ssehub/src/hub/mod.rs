//! The hub: who subscribes to what, and the fan-out of each published event to them.
//!
//! One mutex guards the subscriber tables, and a publish holds it across "append to the
//! store" and "queue for every subscriber". That single ordering point is what makes the
//! replay/live seam exact: an event is either in the store before a subscriber registers
//! (the replay finds it) or queued to it after (the live feed has it), and events reach every
//! outbox in id order. Nothing under the lock awaits; the per-subscriber work is a pointer
//! push into its [`Outbox`].

mod topics;

use std::collections::{BTreeSet, HashMap};
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, OnceLock};

use bytes::Bytes;
use indexmap::IndexMap;
use serde::Serialize;
use ssehub_core::{
    encode_comment, encode_event, Event, EventId, Frame, NewEvent, Store, StoreError, Topic, WireId,
};

use crate::config::Config;
use crate::metrics::Metrics;
use crate::outbox::{CloseReason, Outbox};
use crate::routes::Routes;
use crate::selection::Selection;
pub use topics::TopicInfo;

/// The name of the presence events a subscriber asks for with `presence=1`.
pub const PRESENCE_EVENT: &str = "ssehub-presence";

type SubscriberId = u64;

/// What [`Engine::publish`] returns: the event as the shared log numbered it, later.
pub type EnginePublish<'a> =
    Pin<Box<dyn Future<Output = Result<Arc<Event>, StoreError>> + Send + 'a>>;

/// A cluster engine: the shared log every node publishes to and reads from.
pub trait Engine: Send + Sync + 'static {
    /// Appends `new` to the shared log and resolves with the event (its id given by the
    /// log) once the log holds it durably — not once any node has delivered it: every
    /// node's reader, this one's too, delivers it later through [`Hub::deliver_many`], in
    /// the log's order. `StoreError::Unavailable` when the log cannot be reached.
    fn publish(&self, new: NewEvent) -> EnginePublish<'_>;

    /// Subscribers of `topic` on the other nodes, as last reported (the engine says how
    /// fresh). `/topics` adds them to this node's own.
    fn remote_subscribers(&self, topic: &str) -> usize {
        let _ = topic;
        0
    }

    /// Nodes of the cluster alive as last seen, this one included (`None`: not known).
    fn nodes(&self) -> Option<usize> {
        None
    }

    /// True when the log took `id` through this node (a publish it answered), whether or
    /// not this node's reader has delivered it yet: a client resuming from it is not lost.
    fn answered(&self, id: EventId) -> bool {
        let _ = id;
        false
    }
}

/// The highest id an engine's publishes through this node were answered with: what
/// [`Engine::answered`] is asked about.
#[derive(Default)]
pub struct Answered(Mutex<EventId>);

impl Answered {
    /// Records that a publish was answered with `id`.
    pub fn record(&self, id: EventId) {
        let mut highest = self.0.lock().unwrap_or_else(|e| e.into_inner());
        *highest = (*highest).max(id);
    }

    /// True when `id` is at or before the highest id recorded.
    pub fn covers(&self, id: EventId) -> bool {
        id <= *self.0.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// An engine's wait for the shared log's reply to a publish: at most `timeout`. A failed
/// request or no reply in time is `StoreError::Unavailable` (the publisher gets 503), its
/// message starting with `what` (the engine and the request, e.g. `redis XADD`).
pub async fn log_reply<T, E: std::fmt::Display>(
    timeout: std::time::Duration,
    what: &str,
    reply: impl Future<Output = Result<T, E>>,
) -> Result<T, StoreError> {
    match tokio::time::timeout(timeout, reply).await {
        Ok(Ok(answer)) => Ok(answer),
        Ok(Err(e)) => Err(StoreError::Unavailable(format!("{what}: {e}"))),
        Err(_) => Err(StoreError::Unavailable(format!(
            "{what}: no answer in time"
        ))),
    }
}

/// Events a batch publish stores and fans out under one hold of the hub's lock.
pub const BATCH_CHUNK: usize = 256;

pub struct Hub {
    pub config: Config,
    pub store: Arc<dyn Store>,
    engine: OnceLock<Arc<dyn Engine>>,
    pub metrics: Metrics,
    /// The route aliases in force: the config's, and with `demo` the seed articles'.
    pub routes: Routes,
    /// The ingest bridges' figures (they run outside the hub and publish into it).
    pub bridges: crate::bridges::Bridges,
    state: Mutex<State>,
    next_subscriber: AtomicU64,
    heartbeat: Bytes,
}

#[derive(Default)]
struct State {
    topics: HashMap<Topic, TopicEntry>,
    /// Every open subscriber, for heartbeats and shutdown. A plain hash map (about half the
    /// bytes of an `IndexMap` entry): nothing here needs its order or a dense walk.
    subscribers: HashMap<SubscriberId, Arc<Subscriber>>,
    /// Subscribers with patterns: every published event is checked against them.
    pattern_subscribers: IndexMap<SubscriberId, Arc<Subscriber>>,
    /// Subscribers whose stream must end at a deadline (token `exp`), soonest first.
    deadlines: BTreeSet<(u64, SubscriberId)>,
    shutting_down: bool,
    /// When the topic table was last swept because it was full, and its size after.
    swept_at: Option<(std::time::Instant, usize)>,
}

#[derive(Default)]
struct TopicEntry {
    subscribers: IndexMap<SubscriberId, Arc<Subscriber>>,
    /// Subscribers that asked for presence events.
    watchers: usize,
    /// The last event's id, as the wire shows it: its position, or the publisher's own id.
    /// Kept unformatted; `/topics` formats it.
    last_id: Option<(EventId, Option<WireId>)>,
    /// Set by a closing event; a later publish reopens the topic.
    closed: bool,
    /// Other nodes' subscribers as last announced to this topic's watchers (cluster mode).
    remote: usize,
}

/// One open subscription stream.
pub struct Subscriber {
    pub id: SubscriberId,
    pub selection: Arc<Selection>,
    /// Receives presence events for its topics.
    pub presence: bool,
    pub outbox: Outbox,
}

/// A registered subscriber; dropping it unregisters it (the client went away).
pub struct Subscription {
    hub: Arc<Hub>,
    pub subscriber: Arc<Subscriber>,
}

impl Drop for Subscription {
    fn drop(&mut self) {
        self.hub.unsubscribe(&self.subscriber);
    }
}

#[derive(Debug)]
pub enum SubscribeError {
    /// The subscription would grow the topic table past `max_hub_topics`.
    TooManyTopics,
    /// Every topic asked for is closed.
    AllClosed,
    TooManyConnections,
    ShuttingDown,
}

/// The answer to a publish.
#[derive(Debug, Serialize)]
pub struct Published {
    pub id: String,
    /// Subscribers of this hub the event was queued for. In cluster mode: the subscribers
    /// of its topics known cluster-wide when the log took it ([`Hub::publish`]).
    pub delivered: u64,
    #[serde(skip)]
    pub event: Arc<Event>,
}

#[derive(Serialize)]
struct Presence<'a> {
    topic: &'a str,
    action: &'a str,
    subscribers: usize,
}

fn presence_bytes(topic: &Topic, action: &str, subscribers: usize) -> Bytes {
    let data = serde_json::to_string(&Presence {
        topic: topic.as_str(),
        action,
        subscribers,
    })
    .expect("presence serializes");
    let mut out = Vec::new();
    encode_event(
        &Frame {
            event: Some(PRESENCE_EVENT),
            data: &data,
            ..Frame::default()
        },
        &mut out,
    );
    Bytes::from(out)
}

impl Hub {
    pub fn new(config: Config, store: Arc<dyn Store>) -> Arc<Hub> {
        let mut heartbeat = Vec::new();
        encode_comment("heartbeat", &mut heartbeat);
        let routes = if config.demo {
            config.routes.clone().with_demo()
        } else {
            config.routes.clone()
        };
        Arc::new(Hub {
            routes,
            bridges: Default::default(),
            config,
            store,
            engine: OnceLock::new(),
            metrics: Metrics::default(),
            state: Mutex::new(State::default()),
            next_subscriber: AtomicU64::new(1),
            heartbeat: Bytes::from(heartbeat),
        })
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Publishes `new`: gives it an id, queues it for every subscriber of its topics (once
    /// per subscriber) and waits until the store has made it durable. A closing event ends
    /// the streams of subscribers whose topics are now all closed. With a cluster engine the
    /// engine assigns the id, the answer comes once the engine holds the event, and the
    /// event reaches subscribers (this node's too) through [`Hub::deliver_many`].
    pub async fn publish(self: &Arc<Self>, new: NewEvent) -> Result<Published, StoreError> {
        if let Some(engine) = self.engine.get() {
            let event = engine.publish(new).await?;
            return Ok(self.cluster_published(engine.as_ref(), event));
        }
        let published = {
            let mut state = self.lock();
            if !self.admit(&mut state, &new.topics) {
                return Err(StoreError::Full(self.topic_limit_message()));
            }
            let event = self.store.append(new)?;
            let delivered = self.fan_out(&mut state, &event);
            Published {
                id: event.wire_id(),
                delivered,
                event,
            }
        };
        // A memory store is done at append: no callback or channel per publish.
        if !self.store.durable_at_append() {
            self.wait_durable(&published.event).await?;
        }
        Ok(published)
    }

    /// Publishes `batch` in order, as [`Hub::publish`] does each event, but under one lock per
    /// [`BATCH_CHUNK`] events and with one durability wait for the whole batch (the last
    /// event's, which covers the ones before it). The topic limit is checked for the batch
    /// before anything is stored. A store failure part-way returns the error; the events
    /// before it are published, as when a publish's answer is lost.
    pub async fn publish_many(
        self: &Arc<Self>,
        batch: Vec<NewEvent>,
    ) -> Result<Vec<Published>, StoreError> {
        if let Some(engine) = self.engine.get() {
            let mut published = Vec::with_capacity(batch.len());
            for new in batch {
                let event = engine.publish(new).await?;
                published.push(self.cluster_published(engine.as_ref(), event));
            }
            return Ok(published);
        }
        let published = self.store_and_fan_out(batch)?;
        if let Some(last) = published.last() {
            if !self.store.durable_at_append() {
                self.wait_durable(&last.event).await?;
            }
        }
        Ok(published)
    }

    /// The locked part of [`Hub::publish_many`]: stores and fans out the batch, a chunk per
    /// hold of the lock.
    fn store_and_fan_out(&self, batch: Vec<NewEvent>) -> Result<Vec<Published>, StoreError> {
        let topics: Vec<Topic> = {
            let mut seen = std::collections::HashSet::new();
            batch
                .iter()
                .flat_map(|e| e.topics.iter())
                .filter(|t| seen.insert(*t))
                .cloned()
                .collect()
        };
        let mut published = Vec::with_capacity(batch.len());
        let mut events = batch.into_iter();
        let mut state = self.lock();
        if !self.admit(&mut state, &topics) {
            return Err(StoreError::Full(self.topic_limit_message()));
        }
        loop {
            let chunk: Vec<NewEvent> = events.by_ref().take(BATCH_CHUNK).collect();
            let taken = chunk.len();
            // One store call per chunk (the log writes it at once); what it stored before
            // an error is fanned out all the same, as a publish of each would have been.
            let (stored, result) = self.store.append_batch(chunk);
            for event in stored {
                let delivered = self.fan_out(&mut state, &event);
                published.push(Published {
                    id: event.wire_id(),
                    delivered,
                    event,
                });
            }
            result?;
            drop(state);
            if taken < BATCH_CHUNK {
                break;
            }
            // Others may publish and subscribe between chunks.
            state = self.lock();
        }
        Ok(published)
    }

    /// Fans out events whose ids were given elsewhere (a cluster engine's shared log), in
    /// order, each after `record` has stored it in the local history — both under the
    /// hub's lock, so the replay/live seam stays exact. A reader hands over everything one
    /// read returned; the lock is taken per event, so a publish's answer (which counts
    /// subscribers under it) waits for at most one event's fan-out.
    pub fn deliver_many(&self, events: &[Arc<Event>], record: impl Fn(&Arc<Event>)) {
        for event in events {
            let mut state = self.lock();
            record(event);
            self.fan_out(&mut state, event);
        }
    }

    /// The answer to a publish the cluster's log has taken. Nothing was delivered yet, so
    /// `delivered` is the event's reach as known now: this node's subscribers of its topics
    /// and patterns that select it, plus the other nodes' subscribers of its topics as they
    /// last reported them (at most a few seconds old). Counted per topic.
    fn cluster_published(&self, engine: &dyn Engine, event: Arc<Event>) -> Published {
        let remote: usize = event
            .topics
            .iter()
            .map(|t| engine.remote_subscribers(t.as_str()))
            .sum();
        let local = {
            let state = self.lock();
            let topical: usize = event
                .topics
                .iter()
                .filter_map(|t| state.topics.get(t))
                .map(|e| e.subscribers.len())
                .sum();
            let patterns = state
                .pattern_subscribers
                .values()
                .filter(|s| s.selection.selects(&event))
                .count();
            topical + patterns
        };
        Published {
            id: event.wire_id(),
            delivered: (local + remote) as u64,
            event,
        }
    }

    /// Makes `engine` the source of ids and the path of every publish (cluster mode). Set
    /// once, before serving.
    pub fn set_engine(&self, engine: Arc<dyn Engine>) {
        if self.engine.set(engine).is_err() {
            tracing::warn!("a cluster engine was already set; keeping the first");
        }
    }

    /// Queues `event` for its subscribers; the caller holds the state lock.
    fn fan_out(&self, state: &mut MutexGuard<'_, State>, event: &Arc<Event>) -> u64 {
        let mut overflowed: Vec<(SubscriberId, Topic)> = Vec::new();
        let mut delivered = 0;
        for topic in &event.topics {
            let entry = state.topics.entry(topic.clone()).or_default();
            entry.last_id = Some((event.id, event.custom_id.clone()));
            entry.closed = event.close;
            for sub in entry.subscribers.values() {
                if event.private && !sub.selection.may_see(event) {
                    continue;
                }
                match sub.outbox.push_event(event) {
                    Ok(true) => delivered += 1,
                    Ok(false) => {}
                    Err(_) => overflowed.push((sub.id, topic.clone())),
                }
            }
        }
        for sub in state.pattern_subscribers.values() {
            if sub.selection.selects(event) {
                match sub.outbox.push_event(event) {
                    Ok(true) => delivered += 1,
                    Ok(false) => {}
                    Err(_) => overflowed.push((sub.id, event.topics[0].clone())),
                }
            }
        }
        if event.close {
            let state = &**state;
            for topic in &event.topics {
                for sub in state.topics[topic].subscribers.values() {
                    if Self::all_closed(state, &sub.selection) {
                        sub.outbox.close(CloseReason::TopicsClosed);
                    }
                }
            }
        }
        Metrics::add(&self.metrics.events_published, 1);
        Metrics::add(&self.metrics.deliveries, delivered);
        for (subscriber, topic) in overflowed {
            self.count_overflow(subscriber, &topic);
        }
        delivered
    }

    fn all_closed(state: &State, selection: &Selection) -> bool {
        selection.patterns.is_empty()
            && selection
                .topics
                .iter()
                .all(|t| state.topics.get(t).is_some_and(|e| e.closed))
    }

    /// Waits until the store has made `event` durable, without holding a thread: the store
    /// calls back (at once in memory, after the group's fsync for the log).
    async fn wait_durable(&self, event: &Event) -> Result<(), StoreError> {
        let (tx, rx) = tokio::sync::oneshot::channel();
        self.store.on_durable(
            event.id,
            Box::new(move |result| {
                let _ = tx.send(result);
            }),
        );
        rx.await
            .map_err(|_| StoreError::Unavailable("the store dropped a durability wait".into()))?
    }

    fn count_overflow(&self, subscriber: SubscriberId, topic: &Topic) {
        Metrics::add(&self.metrics.slow_consumer_drops, 1);
        tracing::warn!(
            subscriber,
            topic = topic.as_str(),
            reason = "buffer full",
            limit = self.config.subscriber_buffer,
            "slow subscriber: stream ended, the client resumes from history"
        );
    }

    /// Registers a subscriber for `selection`. Topics that are closed count as not
    /// subscribed; when all are closed there is nothing to follow and the caller answers 204.
    pub fn subscribe(
        self: &Arc<Self>,
        selection: Arc<Selection>,
        presence: bool,
    ) -> Result<Subscription, SubscribeError> {
        let mut state = self.lock();
        if state.shutting_down {
            return Err(SubscribeError::ShuttingDown);
        }
        if Self::all_closed(&state, &selection) {
            return Err(SubscribeError::AllClosed);
        }
        if state.subscribers.len() >= self.config.max_connections {
            Metrics::add(&self.metrics.connections_refused, 1);
            return Err(SubscribeError::TooManyConnections);
        }
        if !self.admit(&mut state, &selection.topics) {
            return Err(SubscribeError::TooManyTopics);
        }
        let id = self.next_subscriber.fetch_add(1, Ordering::Relaxed);
        let sub = Arc::new(Subscriber {
            id,
            selection,
            presence,
            outbox: Outbox::new(self.config.subscriber_buffer),
        });
        state.subscribers.insert(id, sub.clone());
        if let Some(deadline) = sub.selection.deadline {
            state.deadlines.insert((deadline.get(), id));
        }
        if !sub.selection.patterns.is_empty() {
            state.pattern_subscribers.insert(id, sub.clone());
        }
        let mut overflowed = Vec::new();
        for topic in &sub.selection.topics {
            let entry = state.topics.entry(topic.clone()).or_default();
            entry.subscribers.insert(id, sub.clone());
            entry.watchers += usize::from(presence);
            let count = entry.subscribers.len() + entry.remote;
            if entry.watchers > usize::from(presence) {
                let join = presence_bytes(topic, "join", count);
                for other in entry
                    .subscribers
                    .values()
                    .filter(|s| s.presence && s.id != id)
                {
                    if other.outbox.push_raw(join.clone()).is_err() {
                        overflowed.push((other.id, topic.clone()));
                    }
                }
            }
            if presence {
                // A new outbox is far below any sane limit; an error is impossible here.
                let _ = sub
                    .outbox
                    .push_raw(presence_bytes(topic, "snapshot", count));
            }
        }
        drop(state);
        Metrics::add(&self.metrics.connections, 1);
        Metrics::add(&self.metrics.connections_total, 1);
        for (subscriber, topic) in overflowed {
            self.count_overflow(subscriber, &topic);
        }
        if let Some(hook) = &sub.selection.hook {
            hook.changed(self, true);
        }
        Ok(Subscription {
            hub: self.clone(),
            subscriber: sub,
        })
    }

    fn unsubscribe(self: &Arc<Self>, sub: &Subscriber) {
        let mut state = self.lock();
        state.subscribers.remove(&sub.id);
        if let Some(deadline) = sub.selection.deadline {
            state.deadlines.remove(&(deadline.get(), sub.id));
        }
        state.pattern_subscribers.swap_remove(&sub.id);
        for topic in &sub.selection.topics {
            let Some(entry) = state.topics.get_mut(topic) else {
                continue;
            };
            entry.subscribers.swap_remove(&sub.id);
            entry.watchers -= usize::from(sub.presence);
            if entry.watchers > 0 {
                let leave = presence_bytes(topic, "leave", entry.subscribers.len() + entry.remote);
                for other in entry.subscribers.values().filter(|s| s.presence) {
                    let _ = other.outbox.push_raw(leave.clone());
                }
            }
            if entry.subscribers.is_empty() && entry.last_id.is_none() {
                state.topics.remove(topic);
            }
        }
        drop(state);
        self.metrics.connections.fetch_sub(1, Ordering::Relaxed);
        if let Some(hook) = &sub.selection.hook {
            hook.changed(self, false);
        }
    }

    /// Ends the streams whose deadline (token `exp`) falls before `now_ms + ahead_ms`.
    /// Called by one hub-wide tick: no timer per connection, and the cost of a tick is the
    /// number of streams it ends.
    pub fn expire(&self, now_ms: u64, ahead_ms: u64) -> usize {
        let mut state = self.lock();
        let limit = now_ms.saturating_add(ahead_ms);
        let mut ended = 0;
        while let Some(&(deadline, id)) = state.deadlines.first() {
            if deadline > limit {
                break;
            }
            state.deadlines.pop_first();
            if let Some(sub) = state.subscribers.get(&id) {
                sub.outbox.close(CloseReason::Expired);
                ended += 1;
            }
        }
        ended
    }

    /// Every open subscriber's selection (for the Mercure subscriptions API).
    pub fn selections(&self) -> Vec<Arc<Selection>> {
        self.lock()
            .subscribers
            .values()
            .map(|s| s.selection.clone())
            .collect()
    }

    /// Owes every stream a heartbeat comment ([`Outbox::push_heartbeat`]: a flag, no
    /// allocation per stream).
    pub fn heartbeat(&self) {
        let state = self.lock();
        for sub in state.subscribers.values() {
            sub.outbox.push_heartbeat();
        }
    }

    /// The heartbeat comment's bytes, shared by every stream.
    pub(crate) fn heartbeat_bytes(&self) -> Bytes {
        self.heartbeat.clone()
    }

    /// Refuses new subscribers and ends every stream after what it has queued.
    pub fn shutdown(&self) {
        let mut state = self.lock();
        state.shutting_down = true;
        for sub in state.subscribers.values() {
            sub.outbox.close(CloseReason::Shutdown);
        }
    }

    /// True once [`Hub::shutdown`] has run: streams outside the subscriber tables (the
    /// stats stream) end when they see it.
    pub fn is_shutting_down(&self) -> bool {
        self.lock().shutting_down
    }

    /// Cluster mode: `id` was answered by this node's publishes, though its reader may not
    /// have delivered it yet (see [`Engine::answered`]).
    pub fn cluster_answered(&self, id: EventId) -> bool {
        self.engine.get().is_some_and(|e| e.answered(id))
    }

    /// Nodes in the cluster as the engine last saw them; `None` without a cluster engine.
    pub fn cluster_nodes(&self) -> Option<usize> {
        self.engine.get().and_then(|e| e.nodes())
    }

    /// Cluster mode: the other nodes' subscriber counts changed (as their engine reports
    /// them every few seconds). Watchers of a topic whose cluster-wide count moved get a
    /// presence event `{"action": "count", "subscribers": <cluster-wide>}`.
    pub fn remote_counts_changed(&self, remote: impl Fn(&str) -> usize) {
        let state = &mut *self.lock();
        for (topic, entry) in state.topics.iter_mut() {
            let now = remote(topic.as_str());
            if now == entry.remote {
                continue;
            }
            entry.remote = now;
            if entry.watchers > 0 {
                let count = presence_bytes(topic, "count", entry.subscribers.len() + now);
                for watcher in entry.subscribers.values().filter(|s| s.presence) {
                    let _ = watcher.outbox.push_raw(count.clone());
                }
            }
        }
    }
}
