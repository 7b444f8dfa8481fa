//! `GET /stats/stream`: the hub's own figures as a stream of `stats` events, one a second,
//! for the dashboard at `/` (docs/http-api.md has the fields).
//!
//! One sampler task per hub, started by the first watcher and ended when the last one goes
//! (or the hub shuts down), reads the same counters `/metrics` reads, computes the rates
//! since its previous sample, and encodes the event **once**; every watcher gets those
//! shared bytes through a `watch` channel. A watcher that reads slowly never queues
//! anything: the channel holds only the newest sample, so it skips the ones it missed.
//! Nothing here touches the subscriber tables or the store's history: a watcher is not a
//! subscriber (not counted in `connections`) and a sample is not an event (no id, not
//! retained, not replayed).

use std::convert::Infallible;
use std::sync::{Arc, Mutex, Weak};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use axum::body::Body;
use axum::extract::State;
use axum::http::HeaderValue;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, MethodRouter};
use bytes::Bytes;
use futures_util::stream;
use serde::Serialize;
use ssehub_core::{encode_comment, encode_event, encode_retry, Frame};
use tokio::sync::watch;

use crate::error::ApiError;
use crate::http::subscribe::STREAM_HEADERS;
use crate::hub::Hub;
use crate::metrics::Metrics;

/// How often a sample is taken and sent. Also the longest a watcher's stream outlives a
/// hub shutdown (the sampler notices it at its next tick).
const PERIOD: Duration = Duration::from_secs(1);
/// The `retry:` a watcher is told: the page's figures may pause that long after a restart.
const RETRY_MS: u64 = 2000;
/// The event name of a sample.
pub const STATS_EVENT: &str = "stats";

/// The route: `GET` with the hub's one feed. Open to whoever may read `/metrics`.
pub fn route() -> MethodRouter<Arc<Hub>> {
    let feed = Arc::new(Feed::default());
    get(move |State(hub): State<Arc<Hub>>| {
        let feed = feed.clone();
        async move { stream_response(&hub, &feed) }
    })
}

/// The running sampler's channel, if one runs. The sampler takes it out (which closes every
/// watcher's stream) when it stops; the next watcher starts a new one.
#[derive(Default)]
struct Feed {
    sender: Mutex<Option<watch::Sender<Bytes>>>,
}

impl Feed {
    fn lock(&self) -> std::sync::MutexGuard<'_, Option<watch::Sender<Bytes>>> {
        self.sender.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Streams watching now.
    fn watchers(&self) -> usize {
        self.lock().as_ref().map_or(0, |tx| tx.receiver_count())
    }

    /// A receiver of the running sampler, starting it when none runs.
    fn watch(self: &Arc<Self>, hub: &Arc<Hub>) -> watch::Receiver<Bytes> {
        let mut sender = self.lock();
        if let Some(tx) = sender.as_ref() {
            return tx.subscribe();
        }
        let mut sampler = Sampler::new(hub);
        let (tx, rx) = watch::channel(sampler.next(hub));
        *sender = Some(tx);
        tokio::spawn(run(Arc::downgrade(hub), self.clone(), sampler));
        rx
    }
}

fn stream_response(hub: &Arc<Hub>, feed: &Arc<Feed>) -> Response {
    // Watchers share `max_connections` with the subscribers: they are streams too.
    let streams = feed.watchers() + Metrics::get(&hub.metrics.connections) as usize;
    if streams >= hub.config.max_connections {
        return ApiError::unavailable("too many streams (max_connections)", 5).into_response();
    }
    let mut opening = Vec::new();
    encode_comment("ok", &mut opening);
    encode_retry(RETRY_MS, &mut opening);
    opening.push(b'\n');
    let rx = (!hub.is_shutting_down()).then(|| feed.watch(hub));
    if let Some(rx) = &rx {
        // The newest sample at once: the page fills without waiting for the next tick.
        opening.extend_from_slice(&rx.borrow());
    }
    let body = stream::unfold(
        (Some(Bytes::from(opening)), rx),
        |(opening, rx)| async move {
            if let Some(first) = opening {
                return Some((first, (None, rx)));
            }
            let mut rx = rx?;
            // `changed` fails once the sampler has stopped: the stream ends.
            rx.changed().await.ok()?;
            let sample = rx.borrow_and_update().clone();
            Some((sample, (None, Some(rx))))
        },
    );
    let stream = futures_util::StreamExt::map(body, Ok::<Bytes, Infallible>);
    let mut response = Response::new(Body::from_stream(stream));
    for (name, value) in STREAM_HEADERS {
        response
            .headers_mut()
            .insert(name, HeaderValue::from_static(value));
    }
    response
}

/// The sampler task: a sample each [`PERIOD`] until no one watches or the hub shuts down.
async fn run(hub: Weak<Hub>, feed: Arc<Feed>, mut sampler: Sampler) {
    let mut timer = tokio::time::interval(PERIOD);
    timer.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    timer.tick().await; // the first tick is immediate: the first sample went out already
    loop {
        timer.tick().await;
        let hub = hub.upgrade().filter(|h| !h.is_shutting_down());
        let sample = hub.as_ref().map(|h| sampler.next(h));
        let mut sender = feed.lock();
        match (sample, sender.as_ref()) {
            (Some(sample), Some(tx)) if tx.receiver_count() > 0 => {
                tx.send_replace(sample);
            }
            // Stopping under the lock: a watcher arriving now starts a fresh sampler.
            _ => {
                *sender = None;
                return;
            }
        }
    }
}

/// The counters whose rates a sample reports, as of the previous sample.
#[derive(Clone, Copy, Default)]
struct Totals {
    events_published: u64,
    events_delivered: u64,
    events_replayed: u64,
    bytes_written: u64,
    slow_consumer_drops: u64,
    fsyncs: u64,
    fsync_nanos: u64,
}

struct Sampler {
    previous: Totals,
    at: Instant,
    first: bool,
}

/// One sample as it goes on the wire. Field names are those of `/metrics` without the
/// `ssehub_` prefix, so the two can be compared by name.
#[derive(Serialize)]
struct Sample {
    /// Wall-clock time of the sample, Unix milliseconds.
    time: u64,
    /// Seconds since the previous sample (0 in a sampler's first, whose rates are 0).
    interval_seconds: f64,
    connections: u64,
    connections_total: u64,
    connections_refused_total: u64,
    connections_refused_per_ip_total: u64,
    topics_refused_total: u64,
    events_published_total: u64,
    events_delivered_total: u64,
    events_replayed_total: u64,
    bytes_written_total: u64,
    slow_consumer_drops_total: u64,
    publish_rejected_total: u64,
    publish_rate_limited_total: u64,
    topics: u64,
    history_events: u64,
    history_bytes: u64,
    store_fsync_seconds_count: u64,
    store_fsync_seconds_sum: f64,
    /// Mean fsync time over the interval; `None` when no fsync ran in it.
    fsync_avg_seconds: Option<f64>,
    cluster_nodes: u64,
    /// True when the hub runs on a cluster engine.
    cluster: bool,
    /// Per second over the interval.
    rates: Rates,
    /// The ingest bridges, in the order they were configured (none without `[[bridge]]`).
    bridges: Vec<BridgeSample>,
}

/// One bridge's figures, named as its `ssehub_bridge_*` series.
#[derive(Serialize)]
struct BridgeSample {
    name: String,
    kind: String,
    state: crate::BridgeState,
    received_total: u64,
    published_total: u64,
    skipped_total: u64,
    errors_total: u64,
    lag: u64,
    last_error: Option<String>,
}

fn bridge_samples(hub: &Hub) -> Vec<BridgeSample> {
    use crate::BridgeStatus as B;
    hub.bridges
        .all()
        .iter()
        .map(|b| BridgeSample {
            name: b.name.clone(),
            kind: b.kind.clone(),
            state: b.state(),
            received_total: B::get(&b.received),
            published_total: B::get(&b.published),
            skipped_total: B::get(&b.skipped),
            errors_total: B::get(&b.errors),
            lag: B::get(&b.lag),
            last_error: b.last_error(),
        })
        .collect()
}

#[derive(Serialize)]
struct Rates {
    events_published: f64,
    events_delivered: f64,
    events_replayed: f64,
    bytes_written: f64,
    slow_consumer_drops: f64,
    store_fsyncs: f64,
}

impl Sampler {
    fn new(hub: &Hub) -> Sampler {
        Sampler {
            previous: totals(hub),
            at: Instant::now(),
            first: true,
        }
    }

    /// Takes a sample and encodes it as one `stats` event.
    fn next(&mut self, hub: &Hub) -> Bytes {
        let now = Instant::now();
        let now_totals = totals(hub);
        let (before, interval) = if self.first {
            (now_totals, 0.0)
        } else {
            (self.previous, now.duration_since(self.at).as_secs_f64())
        };
        self.first = false;
        self.previous = now_totals;
        self.at = now;
        let rate = |now: u64, before: u64| {
            if interval > 0.0 {
                now.saturating_sub(before) as f64 / interval
            } else {
                0.0
            }
        };
        let fsyncs = now_totals.fsyncs.saturating_sub(before.fsyncs);
        let fsync_nanos = now_totals.fsync_nanos.saturating_sub(before.fsync_nanos);
        let m = &hub.metrics;
        let history = hub.store.stats();
        let nodes = hub.cluster_nodes();
        let sample = Sample {
            time: SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .map_or(0, |d| d.as_millis() as u64),
            interval_seconds: interval,
            connections: Metrics::get(&m.connections),
            connections_total: Metrics::get(&m.connections_total),
            connections_refused_total: Metrics::get(&m.connections_refused),
            connections_refused_per_ip_total: Metrics::get(&m.connections_refused_per_ip),
            topics_refused_total: Metrics::get(&m.topics_refused),
            events_published_total: now_totals.events_published,
            events_delivered_total: now_totals.events_delivered,
            events_replayed_total: now_totals.events_replayed,
            bytes_written_total: now_totals.bytes_written,
            slow_consumer_drops_total: now_totals.slow_consumer_drops,
            publish_rejected_total: Metrics::get(&m.publish_rejected),
            publish_rate_limited_total: Metrics::get(&m.publish_rate_limited),
            topics: hub.topic_count() as u64,
            history_events: history.events,
            history_bytes: history.bytes,
            store_fsync_seconds_count: now_totals.fsyncs,
            store_fsync_seconds_sum: now_totals.fsync_nanos as f64 / 1e9,
            fsync_avg_seconds: (fsyncs > 0).then(|| fsync_nanos as f64 / fsyncs as f64 / 1e9),
            cluster_nodes: nodes.unwrap_or(1) as u64,
            cluster: nodes.is_some(),
            rates: Rates {
                events_published: rate(now_totals.events_published, before.events_published),
                events_delivered: rate(now_totals.events_delivered, before.events_delivered),
                events_replayed: rate(now_totals.events_replayed, before.events_replayed),
                bytes_written: rate(now_totals.bytes_written, before.bytes_written),
                slow_consumer_drops: rate(
                    now_totals.slow_consumer_drops,
                    before.slow_consumer_drops,
                ),
                store_fsyncs: rate(now_totals.fsyncs, before.fsyncs),
            },
            bridges: bridge_samples(hub),
        };
        let data = serde_json::to_string(&sample).unwrap_or_default();
        let mut out = Vec::with_capacity(data.len() + 32);
        encode_event(
            &Frame {
                event: Some(STATS_EVENT),
                data: &data,
                ..Frame::default()
            },
            &mut out,
        );
        Bytes::from(out)
    }
}

fn totals(hub: &Hub) -> Totals {
    let m = &hub.metrics;
    let sync = hub.store.sync_stats();
    Totals {
        events_published: Metrics::get(&m.events_published),
        events_delivered: Metrics::get(&m.deliveries),
        events_replayed: Metrics::get(&m.replayed),
        bytes_written: Metrics::get(&m.bytes_written),
        slow_consumer_drops: Metrics::get(&m.slow_consumer_drops),
        fsyncs: sync.fsyncs,
        fsync_nanos: sync.fsync_nanos,
    }
}
