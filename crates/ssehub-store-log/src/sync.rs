//! Group commit: fsyncs shared by every waiter they cover, the `on_durable` callbacks, and
//! the background thread (batch windows, age retention). See "Durability" in the crate
//! documentation.

use std::fs::File;
use std::io;
use std::sync::atomic::Ordering;
use std::sync::{Condvar, MutexGuard};
use std::time::Instant;

use ssehub_core::{EventId, StoreError};

use crate::{lock, DurableCallback, Inner, SyncMode, SyncState, AGE_TICK, UNATTENDED_SYNC};

/// Removes from `s` the callbacks that the fsyncs so far cover (all of them after a failure).
fn covered_callbacks(s: &mut SyncState) -> Vec<(EventId, DurableCallback)> {
    if s.callbacks.is_empty() {
        return Vec::new();
    }
    let (failed, durable) = (s.failed.is_some(), s.durable);
    let (done, rest) = std::mem::take(&mut s.callbacks)
        .into_iter()
        .partition(|(id, _)| failed || *id <= durable);
    s.callbacks = rest;
    done
}

pub(crate) fn call_back(done: Vec<(EventId, DurableCallback)>, failed: &Option<String>) {
    for (_, f) in done {
        f(match failed {
            None => Ok(()),
            Some(why) => Err(StoreError::Unavailable(why.clone())),
        });
    }
}

impl SyncState {
    /// `Some` once a wait for `id` is over: it is durable (or all that was written is), or
    /// fsyncs have failed.
    pub(crate) fn settled(&self, id: EventId) -> Option<Result<(), StoreError>> {
        if let Some(why) = &self.failed {
            return Some(Err(StoreError::Unavailable(why.clone())));
        }
        (self.durable >= id.min(self.written)).then_some(Ok(()))
    }
}

impl Inner {
    /// Fsyncs until every record up to `id` (or everything written, if less) is durable.
    /// Concurrent callers share fsyncs: one runs it, the others wait for its result.
    pub(crate) fn sync_through(&self, id: EventId) -> Result<(), StoreError> {
        let mut s = lock(&self.sync);
        loop {
            if let Some(done) = s.settled(id) {
                return done;
            }
            if s.syncing {
                s = self.wait_for_sync(s, id);
                continue;
            }
            s = self.run_sync(s);
        }
    }

    /// Sleeps until the fsync that will cover `id` ends (or a spurious wake-up).
    pub(crate) fn wait_for_sync<'a>(
        &'a self,
        s: MutexGuard<'a, SyncState>,
        id: EventId,
    ) -> MutexGuard<'a, SyncState> {
        let id = id.min(s.written);
        let n = if s.syncing && id <= s.target {
            s.started
        } else {
            s.started + 1
        };
        self.synced[(n % 2) as usize]
            .wait(s)
            .unwrap_or_else(|e| e.into_inner())
    }

    /// `file.sync_data()`, counted and timed for [`Store::sync_stats`].
    pub(crate) fn timed_fsync(&self, file: &File) -> io::Result<()> {
        let started = Instant::now();
        let result = file.sync_data();
        let nanos = u64::try_from(started.elapsed().as_nanos()).unwrap_or(u64::MAX);
        self.fsyncs.fetch_add(1, Ordering::Relaxed);
        self.fsync_nanos.fetch_add(nanos, Ordering::Relaxed);
        result
    }

    /// Fsyncs the active segment with the lock released; returns the lock again.
    fn run_sync<'a>(&'a self, mut s: MutexGuard<'a, SyncState>) -> MutexGuard<'a, SyncState> {
        s.syncing = true;
        s.started += 1;
        s.target = s.written;
        s.pending = 0;
        s.first_pending = None;
        let (n, target) = (s.started, s.target);
        let file = s.active.clone();
        drop(s);
        let result = self.timed_fsync(&file);
        let mut s = lock(&self.sync);
        s.syncing = false;
        match result {
            Ok(()) => {
                s.durable = s.durable.max(target);
                self.synced[(n % 2) as usize].notify_all();
                if self.leads() {
                    // Without a window a waiter runs the next fsync: wake one of those that
                    // this one did not cover; the rest sleep until that one ends.
                    self.synced[((n + 1) % 2) as usize].notify_one();
                }
            }
            // After a failed fsync the kernel may have dropped the dirty pages: nothing
            // written since the last good fsync can be called durable again.
            Err(e) => {
                s.failed = Some(format!("fsync failed: {e}"));
                self.fsync_failed.store(true, Ordering::Relaxed);
                self.synced.iter().for_each(Condvar::notify_all);
            }
        }
        let done = covered_callbacks(&mut s);
        if !s.callbacks.is_empty() && s.worker_idle {
            // Callbacks this fsync did not cover: the background thread runs the next one.
            s.worker_idle = false;
            self.wake.notify_one();
        }
        if done.is_empty() {
            return s;
        }
        let failed = s.failed.clone();
        drop(s);
        call_back(done, &failed);
        lock(&self.sync)
    }

    /// The background thread: group commit under [`SyncMode::Batch`], and age retention.
    pub(crate) fn background(&self) {
        let ages = self.retention.max_age.is_some();
        let mut next_age_trim = Instant::now() + AGE_TICK;
        let mut s = lock(&self.sync);
        loop {
            if s.shutdown {
                return;
            }
            let now = Instant::now();
            if ages && now >= next_age_trim {
                drop(s);
                let deletion = self.trim(&mut self.write_state(), (self.clock)());
                if let Some(d) = deletion {
                    self.delete(d);
                }
                next_age_trim = Instant::now() + AGE_TICK;
                s = lock(&self.sync);
                continue;
            }
            let mut timeout = if ages { next_age_trim - now } else { AGE_TICK };
            if s.written > s.durable && !s.syncing && s.failed.is_none() {
                let due = match self.sync_mode {
                    // Leader-follower: waiters fsync themselves; callbacks are served here at
                    // once, and writes nobody waits for at the latest at the next tick.
                    SyncMode::Batch { max_delay, .. } if max_delay.is_zero() => {
                        Some(if s.callbacks.is_empty() {
                            s.first_pending.map_or(now, |t| t + UNATTENDED_SYNC)
                        } else {
                            now
                        })
                    }
                    SyncMode::Batch {
                        max_delay,
                        max_events,
                    } => Some(if s.pending >= max_events {
                        now
                    } else {
                        s.first_pending.map_or(now, |t| t + max_delay)
                    }),
                    // Under `Always` callers of `wait_durable` fsync themselves; the
                    // callbacks of `on_durable` are served here, at once.
                    SyncMode::Always => (!s.callbacks.is_empty()).then_some(now),
                    SyncMode::Never => None,
                };
                if let Some(due) = due {
                    if now >= due {
                        s = self.run_sync(s);
                        continue;
                    }
                    timeout = timeout.min(due - now);
                }
            }
            s.worker_idle = true;
            s = self
                .wake
                .wait_timeout(s, timeout)
                .unwrap_or_else(|e| e.into_inner())
                .0;
            s.worker_idle = false;
        }
    }
}
