//! ssehub-store-log: the embedded durable store, an append-only log of checksummed records in
//! segment files under one directory.
//!
//! # Layout
//!
//! ```text
//! <dir>/lock                       held (flock) while a store has the directory open
//! <dir>/meta                       the floor (every later event is retained), with a CRC
//! <dir>/00000000000000000001.log   segments: magic header, then records (see `record`)
//! <dir>/00000000000000000002.log   the last segment is the one appended to
//! ```
//!
//! Only an index lives in memory: per record its id, segment, offset and lengths (32 bytes),
//! plus a map of the custom ids of retained events. A `Last-Event-ID` is placed by binary
//! search (O(log n)); a replay reads pages of records from disk and rebuilds each event with
//! [`Event::assign`].
//!
//! # Durability
//!
//! [`SyncMode`] says what [`Store::wait_durable`] waits for. Appends write each record to
//! the operating system at once (so a `kill -9` of the process loses nothing written); an
//! fsync makes it survive a power loss. With the default [`SyncMode::Batch`] (no window) the
//! group commit is leader-follower: a waiter whose event no fsync covers and that finds no
//! fsync running runs one at once; events appended while it runs go into the next one, which
//! starts as soon as it ends. With a `max_delay` window a background thread fsyncs at most
//! every `max_delay` or `max_events`. Either way `wait_durable` waits for the fsync that
//! covers the event.
//!
//! # Recovery
//!
//! [`LogStore::open`] reads every segment and verifies every record. A record cut short or
//! damaged at the end of the last segment (a write torn by a crash) is truncated away and
//! reported in [`RecoveryReport`]; damage anywhere else (an older segment, or the last one
//! with intact records after the damage) is [`StoreError::Corrupt`] naming the file and offset.
//!
//! # Retention
//!
//! By count, age and bytes of encoded events, like the memory store. Trimmed records leave
//! the index at once; a segment file is deleted when all its records are trimmed, after the
//! floor is written to the meta file, outside the lock that appends take.
//!
//! # Files
//!
//! `lib.rs` the types, the public calls and the [`Store`] impl; `open.rs` opening and
//! recovery; `append.rs` writing records and rolling segments; `sync.rs` group commit and
//! the background thread; `retention.rs` trimming and deleting segments; `replay.rs`
//! reading replay pages; `record.rs`, `segment.rs`, `meta.rs`, `lock.rs` the file formats
//! and the directory lock; `classes.rs` retention classes over several logs.

mod append;
mod lock;
mod meta;
mod open;
mod record;
mod replay;
mod retention;
mod segment;
mod sync;

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::fs::{File, OpenOptions};
use std::io;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, RwLock, RwLockReadGuard, RwLockWriteGuard};
use std::thread::JoinHandle;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use ssehub_core::{
    Event, EventId, Locate, NewEvent, ReadBatch, Retention, Store, StoreError, StoreStats,
    SyncStats,
};

use crate::replay::{read_slice, Slice};
use crate::segment::Entry;
use crate::sync::call_back;

mod classes;
pub use classes::{class_dir, open_classed, ClassedLog, CLASSES_DIR};

/// Default size at which the store starts a new segment file.
pub const DEFAULT_SEGMENT_BYTES: u64 = 64 << 20;
/// Largest segment size accepted; larger settings are lowered to it.
pub const MAX_SEGMENT_BYTES: u64 = 1 << 30;
/// Most events one [`Store::read`] call scans, whatever its `scan_limit`.
pub const MAX_PAGE_EVENTS: usize = 16_384;
/// Most record bytes one [`Store::read`] call scans (at least one record is always scanned).
pub const MAX_PAGE_BYTES: u64 = 8 << 20;

/// How often the background thread applies age retention to an idle store.
const AGE_TICK: Duration = Duration::from_secs(1);
/// How long the background thread lets a write nobody waits for stay unsynced under
/// leader-follower group commit (checked when it wakes, at least every [`AGE_TICK`]).
const UNATTENDED_SYNC: Duration = Duration::from_millis(100);
/// How far past the clock an id may be for recovery to take it for intact data.
const CLOCK_SLACK_MS: u64 = 24 * 3600 * 1000;

/// When an appended event is durable (survives a power loss, not only a crash of the hub).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SyncMode {
    /// `wait_durable` fsyncs before it returns; concurrent callers share one fsync.
    Always,
    /// Group commit; `wait_durable` blocks until the fsync covering its event is done.
    ///
    /// With `max_delay` zero (the default) it is leader-follower: the first waiter (or, for
    /// [`LogStore::on_durable`], the background thread) fsyncs at once, events that arrive
    /// while that fsync runs share the next one, which starts as soon as it ends; nothing
    /// waits for a window, so a lone publisher costs one fsync, as under `Always`. An append
    /// nobody waits for is fsynced by the next fsync, or by the background thread within
    /// about a second. `max_events` is unused then.
    ///
    /// With `max_delay` above zero a background thread fsyncs when `max_delay` has passed
    /// since the first unsynced append, or when `max_events` appends are waiting, whichever
    /// comes first (a fixed window: it costs a sequential publisher `max_delay` per event).
    Batch {
        max_delay: Duration,
        max_events: usize,
    },
    /// Never fsync for an append; `wait_durable` returns at once. Data written survives a
    /// crash of the process but not of the machine.
    Never,
}

impl Default for SyncMode {
    /// `Batch { max_delay: 0, max_events: 256 }` (leader-follower group commit): see
    /// NOTES.md for the measurements.
    fn default() -> Self {
        SyncMode::Batch {
            max_delay: Duration::ZERO,
            max_events: 256,
        }
    }
}

/// Settings of a [`LogStore`].
#[derive(Clone, Debug)]
pub struct LogOptions {
    pub retention: Retention,
    pub sync: SyncMode,
    /// A new segment file starts when the current one would grow past this size.
    /// Clamped to `1..=MAX_SEGMENT_BYTES`.
    pub segment_bytes: u64,
    /// The wall clock in milliseconds since the Unix epoch; replaceable for tests.
    pub clock: fn() -> u64,
}

impl LogOptions {
    /// Defaults (batch sync, 64 MiB segments, system clock) with the given retention.
    pub fn new(retention: Retention) -> LogOptions {
        LogOptions {
            retention,
            sync: SyncMode::default(),
            segment_bytes: DEFAULT_SEGMENT_BYTES,
            clock: system_clock,
        }
    }
}

impl Default for LogOptions {
    /// No retention bound: keeps everything.
    fn default() -> Self {
        LogOptions::new(Retention {
            max_events: None,
            max_age: None,
            max_bytes: None,
        })
    }
}

/// Milliseconds since the Unix epoch by the system clock.
pub fn system_clock() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

/// What [`LogStore::open`] found and repaired.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct RecoveryReport {
    /// Segment files in use after opening.
    pub segments: usize,
    /// Intact records read.
    pub records: u64,
    /// Of them, still inside retention.
    pub retained: u64,
    /// Segment files deleted because none of their records is retained.
    pub removed_segments: Vec<PathBuf>,
    /// The torn tail cut from the last segment, if any.
    pub torn_tail: Option<TornTail>,
    /// Whether the floor came from the meta file (else from the first record or the clock).
    pub floor_from_meta: bool,
    pub elapsed: Duration,
}

/// A damaged end of the last segment, dropped when the store opened.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TornTail {
    pub path: PathBuf,
    /// Where the damaged record started; the file now ends here.
    pub offset: u64,
    /// Bytes removed.
    pub dropped_bytes: u64,
    pub reason: String,
}

/// One segment file and the index of its records.
struct Segment {
    no: u64,
    path: Arc<Path>,
    file: Arc<File>,
    entries: Vec<Entry>,
    /// Entries before this one are trimmed (only ever non-zero in the oldest segment).
    start: usize,
    /// Bytes in the file.
    len: u64,
}

impl Segment {
    fn retained(&self) -> &[Entry] {
        &self.entries[self.start..]
    }
}

/// Everything behind the lock that appends take.
struct State {
    /// Oldest first; the last one is appended to. Never empty.
    segments: VecDeque<Segment>,
    /// Retained events and the bytes of their encodings.
    count: u64,
    bytes: u64,
    /// Bytes of all segment files.
    disk: u64,
    floor: EventId,
    /// The last id handed out.
    last: EventId,
    custom: HashMap<Box<str>, EventId>,
    /// Custom ids of retained events by id, to forget them when they are trimmed.
    custom_by_id: BTreeMap<EventId, Box<str>>,
    /// Reused to encode records.
    buf: Vec<u8>,
    /// Set when a failed write could not be undone: the store takes no more appends.
    failed: Option<String>,
}

/// What group commit and `wait_durable` share.
struct SyncState {
    /// Every record up to this id has been written to the operating system.
    written: EventId,
    /// Every record up to this id is fsynced.
    durable: EventId,
    /// The segment being appended to (older ones are fsynced when the next one starts).
    active: Arc<File>,
    /// Appends since the last fsync started, and when the first of them came.
    pending: usize,
    first_pending: Option<Instant>,
    syncing: bool,
    /// Fsyncs started so far; the one in flight (if `syncing`) covers up to `target`.
    started: u64,
    target: EventId,
    /// Callbacks of [`LogStore::on_durable`], called after the fsync covering their id.
    callbacks: Vec<(EventId, DurableCallback)>,
    /// The background thread sleeps on `wake` and needs a notification for new work.
    worker_idle: bool,
    /// Times a `wait_durable` caller slept while no fsync was running (waiting for a
    /// batch window to close). Never happens without a window.
    idle_waits: u64,
    failed: Option<String>,
    shutdown: bool,
}

/// What [`LogStore::on_durable`] calls.
type DurableCallback = Box<dyn FnOnce(Result<(), StoreError>) + Send>;

/// Segment files to delete once the floor is on disk.
struct Deletion {
    floor: EventId,
    paths: Vec<Arc<Path>>,
}

struct Maintenance {
    /// The floor written in the meta file.
    persisted_floor: EventId,
    /// Files whose deletion failed or waits for the floor to be written.
    pending: Vec<Arc<Path>>,
    last_error: Option<String>,
}

struct Inner {
    dir: PathBuf,
    retention: Retention,
    sync_mode: SyncMode,
    segment_bytes: u64,
    clock: fn() -> u64,
    state: RwLock<State>,
    sync: Mutex<SyncState>,
    /// Signalled when an fsync ends: fsync number `n` signals `synced[n % 2]`, so the
    /// callers waiting for the next fsync sleep on through the end of the current one.
    synced: [Condvar; 2],
    /// Wakes the background thread.
    wake: Condvar,
    maintenance: Mutex<Maintenance>,
    /// An fsync failed: appends are refused from then on (the reason is in `SyncState`).
    fsync_failed: AtomicBool,
    /// Fsyncs run and the nanoseconds they took ([`Store::sync_stats`]): two relaxed adds
    /// per fsync, nothing per append.
    fsyncs: AtomicU64,
    fsync_nanos: AtomicU64,
}

/// The durable store: see the crate documentation.
pub struct LogStore {
    inner: Arc<Inner>,
    worker: Option<JoinHandle<()>>,
    recovery: RecoveryReport,
    /// Held for the life of the store; a field, so released after `Drop` has synced.
    /// `None` only inside [`LogStore::abandon`].
    dir_lock: Option<lock::DirLock>,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

fn corrupt(path: &Path, offset: u64, why: &str) -> StoreError {
    StoreError::Corrupt(format!("{}: offset {offset}: {why}", path.display()))
}

fn open_segment_file(path: &Path, create: bool) -> io::Result<File> {
    OpenOptions::new()
        .read(true)
        .append(true)
        .create_new(create)
        .open(path)
}

impl LogStore {
    /// Leaves the store as a killed process would: no final fsync, no floor written, the
    /// background thread left running. Only the directory lock is released, as the
    /// operating system does for a dead process. For crash tests.
    #[doc(hidden)]
    pub fn abandon(mut self) {
        drop(self.dir_lock.take());
        std::mem::forget(self);
    }

    /// What opening the store found and repaired.
    pub fn recovery(&self) -> &RecoveryReport {
        &self.recovery
    }

    /// The directory the store lives in.
    pub fn dir(&self) -> &Path {
        &self.inner.dir
    }

    /// Bytes of all segment files (what the history takes on disk, besides the meta file).
    pub fn disk_bytes(&self) -> u64 {
        self.inner.read_state().disk
    }

    /// Number of segment files.
    pub fn segment_count(&self) -> usize {
        self.inner.read_state().segments.len()
    }

    /// Fsyncs everything appended so far, whatever the sync mode.
    pub fn sync(&self) -> Result<(), StoreError> {
        let written = lock(&self.inner.sync).written;
        self.inner.sync_through(written)
    }

    /// Calls `done` once the event `id` (and every event before it) is as durable as the
    /// sync mode promises: the non-blocking form of [`Store::wait_durable`], for a caller
    /// on an async runtime. `done` runs at once (on this thread) when nothing needs to be
    /// waited for, else on the store's sync thread after the fsync that covers `id`, with
    /// every other callback of that fsync: it must be quick and must not block.
    pub fn on_durable(
        &self,
        id: EventId,
        done: impl FnOnce(Result<(), StoreError>) + Send + 'static,
    ) {
        let inner = &*self.inner;
        if inner.sync_mode == SyncMode::Never {
            return done(Ok(()));
        }
        let mut s = lock(&inner.sync);
        if let Some(why) = &s.failed {
            let why = why.clone();
            drop(s);
            return done(Err(StoreError::Unavailable(why)));
        }
        let id = id.min(s.written);
        if s.durable >= id {
            drop(s);
            return done(Ok(()));
        }
        s.callbacks.push((id, Box::new(done)));
        if inner.leads() && s.worker_idle {
            s.worker_idle = false;
            inner.wake.notify_one();
        }
    }

    /// How many times a `wait_durable` caller slept while no fsync was running, i.e. waited
    /// for a batch window rather than for an fsync. For tests.
    #[doc(hidden)]
    pub fn idle_waits(&self) -> u64 {
        lock(&self.inner.sync).idle_waits
    }

    /// The last error of background maintenance (writing the meta file, deleting a segment),
    /// if any; reading it clears it. Such errors never fail an append: the files are
    /// retried at the next trim.
    pub fn take_maintenance_error(&self) -> Option<String> {
        lock(&self.inner.maintenance).last_error.take()
    }
}

/// The id just before `id`, so that `id` itself counts as retained.
fn predecessor(id: EventId) -> EventId {
    match id.seq {
        0 => EventId::new(id.ms.saturating_sub(1), u64::MAX),
        seq => EventId::new(id.ms, seq - 1),
    }
}

impl Inner {
    /// Whether fsyncs start as soon as someone waits (no batch window): `Always`, and
    /// `Batch` with a zero `max_delay` (leader-follower group commit).
    fn leads(&self) -> bool {
        match self.sync_mode {
            SyncMode::Always => true,
            SyncMode::Batch { max_delay, .. } => max_delay.is_zero(),
            SyncMode::Never => false,
        }
    }

    fn read_state(&self) -> RwLockReadGuard<'_, State> {
        self.state.read().unwrap_or_else(|e| e.into_inner())
    }

    fn write_state(&self) -> RwLockWriteGuard<'_, State> {
        self.state.write().unwrap_or_else(|e| e.into_inner())
    }
}

impl Store for LogStore {
    fn on_durable(&self, id: EventId, done: ssehub_core::DurableCallback) {
        LogStore::on_durable(self, id, done);
    }

    fn append(&self, new: NewEvent) -> Result<Arc<Event>, StoreError> {
        self.append_after(new, EventId::ZERO)
    }

    fn append_after(&self, new: NewEvent, after: EventId) -> Result<Arc<Event>, StoreError> {
        let inner = &*self.inner;
        let now = (inner.clock)();
        let (event, deletion) = {
            let mut st = inner.write_state();
            inner.refuse_if_failed(&st)?;
            let id = st.last.max(after).next(now);
            let event = Event::assign(id, new);
            let mut buf = std::mem::take(&mut st.buf);
            let encoded = record::encode(&event, &mut buf);
            st.buf = buf;
            encoded.map_err(append::too_large)?;
            inner.write_record(&mut st, &event)?;
            inner.note_written(id, 1);
            let deletion = inner.trim(&mut st, now);
            (Arc::new(event), deletion)
        };
        if let Some(d) = deletion {
            inner.delete(d);
        }
        Ok(event)
    }

    /// The batch's records are encoded into one buffer and written with one write per
    /// segment they fall in (a write per record was most of a batch's cost), then indexed.
    fn append_batch(&self, events: Vec<NewEvent>) -> (Vec<Arc<Event>>, Result<(), StoreError>) {
        let inner = &*self.inner;
        let now = (inner.clock)();
        let mut stored = Vec::with_capacity(events.len());
        let (result, deletion) = {
            let mut st = inner.write_state();
            let result = inner.append_group(&mut st, events, now, &mut stored);
            (result, inner.trim(&mut st, now))
        };
        if let Some(d) = deletion {
            inner.delete(d);
        }
        (stored, result)
    }

    fn read(
        &self,
        after: EventId,
        filter: &dyn Fn(&Event) -> bool,
        scan_limit: usize,
    ) -> Result<ReadBatch, StoreError> {
        let limit = scan_limit.min(MAX_PAGE_EVENTS);
        let mut slices = Vec::new();
        let (through, at_head) = {
            let st = self.inner.read_state();
            let (mut si, mut ei) = Inner::first_after(&st, after);
            let mut taken = 0;
            let mut bytes = 0;
            let mut through = after.max(st.floor);
            'plan: while si < st.segments.len() {
                let seg = &st.segments[si];
                let from = ei;
                while ei < seg.entries.len() {
                    if taken == limit
                        || (taken > 0 && bytes + u64::from(seg.entries[ei].len) > MAX_PAGE_BYTES)
                    {
                        break;
                    }
                    bytes += u64::from(seg.entries[ei].len);
                    through = seg.entries[ei].id;
                    taken += 1;
                    ei += 1;
                }
                if ei > from {
                    slices.push(Slice {
                        path: seg.path.clone(),
                        file: seg.file.clone(),
                        entries: seg.entries[from..ei].to_vec(),
                    });
                }
                if ei < seg.entries.len() {
                    break 'plan;
                }
                si += 1;
                ei = st.segments.get(si).map_or(0, |s| s.start);
            }
            (through, si >= st.segments.len())
        };
        let mut events = Vec::new();
        let mut topics = record::TopicCache::default();
        for slice in &slices {
            read_slice(slice, filter, &mut topics, &mut events)?;
        }
        Ok(ReadBatch {
            events,
            through,
            at_head,
        })
    }

    fn locate(&self, last_event_id: &str) -> Result<Locate, StoreError> {
        let st = self.inner.read_state();
        if let Some(id) = st.custom.get(last_event_id) {
            return Ok(Locate::Found(*id));
        }
        Ok(match last_event_id.parse::<EventId>() {
            Ok(id) if id > st.last => Locate::Unknown,
            Ok(id) if id >= st.floor => Locate::Found(id),
            Ok(_) => Locate::Expired,
            Err(_) => Locate::Unknown,
        })
    }

    fn floor(&self) -> EventId {
        self.inner.read_state().floor
    }

    fn stats(&self) -> StoreStats {
        let st = self.inner.read_state();
        let mut retained = st.segments.iter().flat_map(|s| s.retained());
        let oldest = retained.next().map(|e| e.id);
        let newest = st
            .segments
            .iter()
            .rev()
            .find_map(|s| s.retained().last())
            .map(|e| e.id);
        StoreStats {
            events: st.count,
            bytes: st.bytes,
            oldest,
            newest,
        }
    }

    fn sync_stats(&self) -> SyncStats {
        SyncStats {
            fsyncs: self.inner.fsyncs.load(Ordering::Relaxed),
            fsync_nanos: self.inner.fsync_nanos.load(Ordering::Relaxed),
        }
    }

    fn wait_durable(&self, id: EventId) -> Result<(), StoreError> {
        let inner = &*self.inner;
        match inner.sync_mode {
            SyncMode::Never => Ok(()),
            SyncMode::Always => inner.sync_through(id),
            SyncMode::Batch { max_delay, .. } if max_delay.is_zero() => inner.sync_through(id),
            SyncMode::Batch { .. } => {
                let mut s = lock(&inner.sync);
                loop {
                    if let Some(done) = s.settled(id) {
                        return done;
                    }
                    if s.shutdown {
                        drop(s);
                        return inner.sync_through(id);
                    }
                    if !s.syncing {
                        s.idle_waits += 1;
                    }
                    s = inner.wait_for_sync(s, id);
                }
            }
        }
    }
}

impl Drop for LogStore {
    /// Stops the background thread, fsyncs what was appended and writes the exact floor, so
    /// that a reopened store starts where this one ended.
    fn drop(&mut self) {
        lock(&self.inner.sync).shutdown = true;
        self.inner.wake.notify_all();
        if let Some(worker) = self.worker.take() {
            let _ = worker.join();
        }
        let _ = self.sync();
        let (rest, failed) = {
            let mut s = lock(&self.inner.sync);
            (std::mem::take(&mut s.callbacks), s.failed.clone())
        };
        // After the final fsync: every callback left is covered, unless the store failed.
        call_back(rest, &failed);
        let floor = self.inner.read_state().floor;
        let mut m = lock(&self.inner.maintenance);
        if floor > m.persisted_floor && meta::write(&self.inner.dir, floor, true).is_ok() {
            m.persisted_floor = floor;
        }
    }
}
