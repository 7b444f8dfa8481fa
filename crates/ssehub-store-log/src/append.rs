//! Appending records: one encoded record at the end of the active segment, and the roll to
//! a new segment when it is full.

use std::fs;
use std::io::{self, Write};
use std::path::Path;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Instant;

use ssehub_core::{Event, EventId, NewEvent, StoreError};

use crate::segment::{Entry, MAGIC};
use crate::{lock, meta, open_segment_file, record, segment, Inner, Segment, State, SyncMode};

/// A record that cannot be encoded (a field over its length limit).
pub(crate) fn too_large(why: String) -> StoreError {
    StoreError::Io(io::Error::new(io::ErrorKind::InvalidInput, why))
}

impl Inner {
    /// Refuses appends once a write could not be undone or an fsync failed.
    pub(crate) fn refuse_if_failed(&self, st: &State) -> Result<(), StoreError> {
        if let Some(why) = &st.failed {
            return Err(StoreError::Unavailable(why.clone()));
        }
        if self.fsync_failed.load(Ordering::Relaxed) {
            let why = lock(&self.sync).failed.clone().unwrap_or_default();
            return Err(StoreError::Unavailable(why));
        }
        Ok(())
    }

    /// Tells group commit that records up to `last` (`n` more of them) were written.
    pub(crate) fn note_written(&self, last: EventId, n: usize) {
        let mut s = lock(&self.sync);
        s.written = last;
        let before = s.pending;
        s.pending += n;
        let first = s.first_pending.is_none();
        if first {
            s.first_pending = Some(Instant::now());
        }
        if let SyncMode::Batch {
            max_events,
            max_delay,
        } = self.sync_mode
        {
            // Without a window the waiters (or `on_durable`) start the fsync.
            let filled = before < max_events && s.pending >= max_events;
            if !max_delay.is_zero() && (first || filled) && s.worker_idle {
                s.worker_idle = false;
                self.wake.notify_one();
            }
        }
    }

    /// Appends `events` in order for `LogStore::append_batch`: their records encoded into
    /// one buffer and written a group at a time, each group within the active segment.
    /// `stored` gets the events written; an error stops the batch there (the events
    /// before it stay stored, those of a failed write are cut off the file).
    pub(crate) fn append_group(
        &self,
        st: &mut State,
        events: Vec<NewEvent>,
        now: u64,
        stored: &mut Vec<Arc<Event>>,
    ) -> Result<(), StoreError> {
        self.refuse_if_failed(st)?;
        let mut group = Group::default();
        let mut record = std::mem::take(&mut st.buf);
        let mut last = st.last;
        let mut result = Ok(());
        for new in events {
            let event = Event::assign(last.next(now), new);
            if let Err(why) = record::encode(&event, &mut record) {
                result = Err(too_large(why));
                break;
            }
            let active = st.segments.back().expect("at least one segment").len;
            let size = (group.bytes.len() + record.len()) as u64;
            if !group.events.is_empty() && active + size > self.segment_bytes {
                if let Err(e) = self.write_group(st, &mut group, stored) {
                    result = Err(e);
                    break;
                }
            }
            last = event.id;
            group.bytes.extend_from_slice(&record);
            group.lens.push(record.len() as u32);
            group.events.push(event);
        }
        st.buf = record;
        // The events before an encoding error are stored; after a failed write none is left.
        if !group.events.is_empty() {
            let written = self.write_group(st, &mut group, stored);
            result = result.and(written);
        }
        result
    }

    /// Writes a group's records, indexes them, tells group commit; empties the group.
    fn write_group(
        &self,
        st: &mut State,
        group: &mut Group,
        stored: &mut Vec<Arc<Event>>,
    ) -> Result<(), StoreError> {
        let result = self.write_records(st, &group.bytes, &group.events, &group.lens);
        group.bytes.clear();
        group.lens.clear();
        if result.is_ok() {
            self.note_written(st.last, group.events.len());
            stored.extend(group.events.drain(..).map(Arc::new));
        }
        group.events.clear();
        result
    }

    /// Writes one encoded record (`st.buf`) at the end of the log and indexes it.
    pub(crate) fn write_record(&self, st: &mut State, event: &Event) -> Result<(), StoreError> {
        let buf = std::mem::take(&mut st.buf);
        let len = buf.len() as u32;
        let result = self.write_records(st, &buf, std::slice::from_ref(event), &[len]);
        st.buf = buf;
        result
    }

    /// Writes encoded records at the end of the log in one write and indexes them: `buf` is
    /// `events[i]`'s record of `lens[i]` bytes, in order. All or nothing: a failed write is
    /// cut off the file again. The active segment is rolled first when they do not fit in
    /// it (a caller keeps a group within one segment, or a single record).
    pub(crate) fn write_records(
        &self,
        st: &mut State,
        buf: &[u8],
        events: &[Event],
        lens: &[u32],
    ) -> Result<(), StoreError> {
        let active = st.segments.back().expect("at least one segment");
        if active.len + buf.len() as u64 > self.segment_bytes && !active.entries.is_empty() {
            self.roll(st)?;
        }
        let seg = st.segments.back_mut().expect("at least one segment");
        let mut offset = seg.len;
        if let Err(e) = (&*seg.file).write_all(buf) {
            // Cut off whatever part of the records reached the file, or stop taking appends.
            if let Err(e2) = seg.file.set_len(offset) {
                st.failed = Some(format!(
                    "{}: write failed ({e}) and could not be undone ({e2})",
                    seg.path.display()
                ));
            }
            return Err(e.into());
        }
        seg.len += buf.len() as u64;
        st.disk += buf.len() as u64;
        for (event, &len) in events.iter().zip(lens) {
            seg.entries.push(Entry {
                id: event.id,
                offset: offset as u32,
                len,
                enc_len: event.encoded.len() as u32,
            });
            offset += u64::from(len);
            st.count += 1;
            st.bytes += event.encoded.len() as u64;
            st.last = event.id;
            if let Some(custom) = &event.custom_id {
                let custom: Box<str> = custom.as_str().into();
                st.custom.insert(custom.clone(), event.id);
                st.custom_by_id.insert(event.id, custom);
            }
        }
        Ok(())
    }

    /// Starts a new segment. Under a sync mode that promises durability the finished one is
    /// fsynced first, so that only the last segment can ever end in a torn write.
    fn roll(&self, st: &mut State) -> Result<(), StoreError> {
        let old = st.segments.back().expect("at least one segment");
        if self.sync_mode != SyncMode::Never {
            self.timed_fsync(&old.file)?;
        }
        let no = old.no + 1;
        let path: Arc<Path> = self.dir.join(segment::file_name(no)).into();
        let file = open_segment_file(&path, true)?;
        if let Err(e) = (&file).write_all(MAGIC) {
            let _ = fs::remove_file(&path);
            return Err(e.into());
        }
        if self.sync_mode != SyncMode::Never {
            meta::sync_dir(&self.dir)?;
        }
        let file = Arc::new(file);
        // Records of the finished segment count as durable at the next fsync, which then
        // also wakes their waiters and calls their callbacks.
        lock(&self.sync).active = file.clone();
        st.disk += MAGIC.len() as u64;
        st.segments.push_back(Segment {
            no,
            path,
            file,
            entries: Vec::new(),
            start: 0,
            len: MAGIC.len() as u64,
        });
        Ok(())
    }
}

/// Records encoded for one write: their bytes in order, each one's length and event.
#[derive(Default)]
struct Group {
    bytes: Vec<u8>,
    lens: Vec<u32>,
    events: Vec<Event>,
}
