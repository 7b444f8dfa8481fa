//! Counters the hub keeps for `/metrics` and the analytics demo. Plain atomics: counting
//! never takes a lock.

use std::sync::atomic::{AtomicU64, Ordering};

#[derive(Default)]
pub struct Metrics {
    /// Subscriber streams open now.
    pub connections: AtomicU64,
    pub connections_total: AtomicU64,
    /// Subscribe requests refused because `max_connections` was reached.
    pub connections_refused: AtomicU64,
    /// Connections refused because their address had `max_connections_per_ip` open.
    pub connections_refused_per_ip: AtomicU64,
    pub events_published: AtomicU64,
    /// Events queued for subscribers (one per subscriber reached).
    pub deliveries: AtomicU64,
    /// Events written during replays.
    pub replayed: AtomicU64,
    pub bytes_written: AtomicU64,
    /// Streams ended because their subscriber read too slowly.
    pub slow_consumer_drops: AtomicU64,
    /// Publish requests answered with a 4xx.
    pub publish_rejected: AtomicU64,
    /// Publish requests refused by `publish_rate` (429), not counted in `publish_rejected`.
    pub publish_rate_limited: AtomicU64,
    /// Publishes and subscribes refused at `max_hub_topics`.
    pub topics_refused: AtomicU64,
}

impl Metrics {
    pub fn add(counter: &AtomicU64, n: u64) {
        counter.fetch_add(n, Ordering::Relaxed);
    }

    pub fn get(counter: &AtomicU64) -> u64 {
        counter.load(Ordering::Relaxed)
    }
}
