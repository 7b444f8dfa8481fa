//! Opening a store: the directory lock, reading and verifying every segment, truncating a
//! torn tail of the last one (see "Recovery" in the crate documentation), the background
//! thread.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicU64};
use std::sync::{Arc, Condvar, Mutex, RwLock};
use std::time::Instant;

use ssehub_core::{EventId, StoreError};

use crate::segment::MAGIC;
use crate::{
    corrupt, lock, meta, open_segment_file, predecessor, segment, Inner, LogOptions, LogStore,
    Maintenance, RecoveryReport, Segment, State, SyncState, TornTail, CLOCK_SLACK_MS,
    MAX_SEGMENT_BYTES,
};

impl LogStore {
    /// Opens the store in `dir` (created if missing), recovering from a crash: see the
    /// crate documentation. A directory another open store holds (in any process) is
    /// [`StoreError::Unavailable`] naming it (see `lock.rs`).
    pub fn open(dir: &Path, options: LogOptions) -> Result<LogStore, StoreError> {
        let started = Instant::now();
        fs::create_dir_all(dir)?;
        let dir_lock = lock::DirLock::take(dir)?;
        let now = (options.clock)();
        let mut report = RecoveryReport::default();
        let mut meta_floor = meta::read(dir)?;
        report.floor_from_meta = meta_floor.is_some();
        let _ = fs::remove_file(dir.join("meta.tmp"));

        let mut numbers = Vec::new();
        for entry in fs::read_dir(dir)? {
            let entry = entry?;
            if let Some(no) = entry.file_name().to_str().and_then(segment::parse_name) {
                numbers.push(no);
            }
        }
        numbers.sort_unstable();

        if numbers.is_empty() {
            // A new store: its floor is now, so ids from anywhere else read as expired.
            if meta_floor.is_none() {
                let floor = EventId::new(now, 0);
                meta::write(dir, floor, true)?;
                meta_floor = Some(floor);
            }
            let path = dir.join(segment::file_name(1));
            let mut f = open_segment_file(&path, true)?;
            f.write_all(MAGIC)?;
            f.sync_all()?;
            meta::sync_dir(dir)?;
            numbers.push(1);
        }

        let mut segments = VecDeque::with_capacity(numbers.len());
        let mut customs = Vec::new();
        let mut prev = EventId::ZERO;
        for (i, &no) in numbers.iter().enumerate() {
            let is_last = i + 1 == numbers.len();
            let path: Arc<Path> = dir.join(segment::file_name(no)).into();
            let max_ms = now.max(prev.ms).saturating_add(CLOCK_SLACK_MS);
            let scan = segment::scan(&path, prev, max_ms)?;
            let mut len = scan.file_len;
            if let Some(bad) = scan.bad {
                if !is_last || bad.fatal {
                    let mut why = bad.reason;
                    if !is_last {
                        why.push_str(" (not the last segment, so not a torn write)");
                    }
                    return Err(corrupt(&path, bad.offset, &why));
                }
                // A torn write at the end of the log: keep the intact prefix.
                let mut f = OpenOptions::new().write(true).open(&path)?;
                f.set_len(scan.valid_len)?;
                if scan.valid_len < MAGIC.len() as u64 {
                    f.set_len(0)?;
                    f.write_all(MAGIC)?;
                }
                f.sync_all()?;
                len = scan.valid_len.max(MAGIC.len() as u64);
                report.torn_tail = Some(TornTail {
                    path: path.to_path_buf(),
                    offset: bad.offset,
                    dropped_bytes: scan.file_len - scan.valid_len,
                    reason: bad.reason,
                });
            }
            if let Some(e) = scan.entries.last() {
                prev = e.id;
            }
            report.records += scan.entries.len() as u64;
            customs.extend(scan.customs);
            let file = if is_last {
                open_segment_file(&path, false)?
            } else {
                File::open(&path)?
            };
            segments.push_back(Segment {
                no,
                path,
                file: Arc::new(file),
                entries: scan.entries,
                start: 0,
                len,
            });
        }

        let first = segments
            .iter()
            .find_map(|s| s.entries.first())
            .map(|e| e.id);
        let floor = match (meta_floor, first) {
            (Some(f), _) => f,
            // No meta file but records: the history before the first record is unknown.
            (None, Some(first)) => predecessor(first),
            (None, None) => EventId::new(now, 0),
        };
        let last = floor.max(prev);
        let active = segments.back().expect("at least one segment").file.clone();

        let mut state = State {
            segments,
            count: 0,
            bytes: 0,
            disk: 0,
            floor,
            last,
            custom: HashMap::new(),
            custom_by_id: BTreeMap::new(),
            buf: Vec::new(),
            failed: None,
        };
        for seg in &mut state.segments {
            seg.start = seg.entries.partition_point(|e| e.id <= floor);
            state.count += seg.retained().len() as u64;
            state.bytes += seg
                .retained()
                .iter()
                .map(|e| u64::from(e.enc_len))
                .sum::<u64>();
            state.disk += seg.len;
        }
        for (id, custom) in customs {
            if id > floor {
                state.custom.insert(custom.clone(), id);
                state.custom_by_id.insert(id, custom);
            }
        }

        let inner = Arc::new(Inner {
            dir: dir.to_path_buf(),
            retention: options.retention,
            sync_mode: options.sync,
            segment_bytes: options.segment_bytes.clamp(1, MAX_SEGMENT_BYTES),
            clock: options.clock,
            state: RwLock::new(state),
            sync: Mutex::new(SyncState {
                written: last,
                durable: last,
                active,
                pending: 0,
                first_pending: None,
                syncing: false,
                started: 0,
                target: last,
                callbacks: Vec::new(),
                worker_idle: false,
                idle_waits: 0,
                failed: None,
                shutdown: false,
            }),
            synced: [Condvar::new(), Condvar::new()],
            wake: Condvar::new(),
            fsync_failed: AtomicBool::new(false),
            fsyncs: AtomicU64::new(0),
            fsync_nanos: AtomicU64::new(0),
            maintenance: Mutex::new(Maintenance {
                persisted_floor: meta_floor.unwrap_or(EventId::ZERO),
                pending: Vec::new(),
                last_error: None,
            }),
        });

        // Retention may have changed, or time passed, since the store was last open.
        let deletion = {
            let mut st = inner.write_state();
            let deletion = inner.trim(&mut st, now);
            report.segments = st.segments.len();
            report.retained = st.count;
            deletion
        };
        if let Some(d) = deletion {
            report.removed_segments = d.paths.iter().map(|p| p.to_path_buf()).collect();
            inner.delete(d);
            if let Some(e) = lock(&inner.maintenance).last_error.take() {
                return Err(StoreError::Io(io::Error::other(e)));
            }
        }

        let worker = {
            let inner = inner.clone();
            std::thread::Builder::new()
                .name("ssehub-log-sync".into())
                .spawn(move || inner.background())?
        };
        report.elapsed = started.elapsed();
        Ok(LogStore {
            inner,
            worker: Some(worker),
            recovery: report,
            dir_lock: Some(dir_lock),
        })
    }
}
