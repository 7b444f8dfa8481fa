//! What the ingest bridges (the `ssehub-bridge` crate) report about themselves, for
//! `/metrics` (`ssehub_bridge_*`), `/healthz` (degraded while one retries) and the dashboard.
//! The hub only keeps the figures; the bridges run outside it and publish through
//! [`crate::Hub::publish`] like any publisher.

use std::sync::atomic::{AtomicU64, AtomicU8, Ordering};
use std::sync::{Arc, Mutex};

use serde::Serialize;

/// A bridge's state.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum BridgeState {
    /// Connecting for the first time.
    Starting,
    /// Connected and forwarding.
    Running,
    /// Lost its source; reconnecting with back-off.
    Retrying,
}

/// One bridge's figures: counters a bridge adds to without a lock.
#[derive(Debug)]
pub struct BridgeStatus {
    pub name: String,
    pub kind: String,
    state: AtomicU8,
    /// Messages read from the source.
    pub received: AtomicU64,
    /// Events published into the hub.
    pub published: AtomicU64,
    /// Messages skipped: poison (bad UTF-8, over the size limit, no topic) or duplicates.
    pub skipped: AtomicU64,
    /// Connection or publish failures.
    pub errors: AtomicU64,
    /// Messages known to wait at the source (where the source says), else 0.
    pub lag: AtomicU64,
    last_error: Mutex<Option<String>>,
}

impl BridgeStatus {
    pub fn state(&self) -> BridgeState {
        match self.state.load(Ordering::Relaxed) {
            0 => BridgeState::Starting,
            1 => BridgeState::Running,
            _ => BridgeState::Retrying,
        }
    }

    pub fn set_state(&self, state: BridgeState) {
        let n = match state {
            BridgeState::Starting => 0,
            BridgeState::Running => 1,
            BridgeState::Retrying => 2,
        };
        self.state.store(n, Ordering::Relaxed);
    }

    /// Counts a failure and keeps its message.
    pub fn failed(&self, error: impl Into<String>) {
        self.errors.fetch_add(1, Ordering::Relaxed);
        *self.last_error.lock().unwrap_or_else(|e| e.into_inner()) = Some(error.into());
    }

    pub fn last_error(&self) -> Option<String> {
        self.last_error
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    pub fn add(counter: &AtomicU64, n: u64) {
        counter.fetch_add(n, Ordering::Relaxed);
    }

    pub fn get(counter: &AtomicU64) -> u64 {
        counter.load(Ordering::Relaxed)
    }
}

/// Every bridge of the hub.
#[derive(Debug, Default)]
pub struct Bridges {
    list: Mutex<Vec<Arc<BridgeStatus>>>,
}

impl Bridges {
    /// Registers a bridge and returns the figures it reports into.
    pub fn register(&self, name: &str, kind: &str) -> Arc<BridgeStatus> {
        let status = Arc::new(BridgeStatus {
            name: name.to_owned(),
            kind: kind.to_owned(),
            state: AtomicU8::new(0),
            received: AtomicU64::new(0),
            published: AtomicU64::new(0),
            skipped: AtomicU64::new(0),
            errors: AtomicU64::new(0),
            lag: AtomicU64::new(0),
            last_error: Mutex::new(None),
        });
        self.list
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(status.clone());
        status
    }

    pub fn all(&self) -> Vec<Arc<BridgeStatus>> {
        self.list.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }
}
