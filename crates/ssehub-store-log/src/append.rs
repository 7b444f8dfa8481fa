//! Appending records: one encoded record at the end of the active segment, and the roll to
//! a new segment when it is full.

use std::fs;
use std::io::Write;
use std::path::Path;
use std::sync::Arc;

use ssehub_core::{Event, StoreError};

use crate::segment::{Entry, MAGIC};
use crate::{lock, meta, open_segment_file, segment, Inner, Segment, State, SyncMode};

impl Inner {
    /// Writes one encoded record at the end of the log and indexes it.
    pub(crate) fn write_record(&self, st: &mut State, event: &Event) -> Result<(), StoreError> {
        let rec_len = st.buf.len() as u64;
        let active = st.segments.back().expect("at least one segment");
        if active.len + rec_len > self.segment_bytes && !active.entries.is_empty() {
            self.roll(st)?;
        }
        let State { segments, buf, .. } = st;
        let seg = segments.back_mut().expect("at least one segment");
        let offset = seg.len;
        if let Err(e) = (&*seg.file).write_all(buf) {
            // Cut off whatever part of the record reached the file, or stop taking appends.
            if let Err(e2) = seg.file.set_len(offset) {
                st.failed = Some(format!(
                    "{}: write failed ({e}) and could not be undone ({e2})",
                    seg.path.display()
                ));
            }
            return Err(e.into());
        }
        seg.len += rec_len;
        seg.entries.push(Entry {
            id: event.id,
            offset: offset as u32,
            len: rec_len as u32,
            enc_len: event.encoded.len() as u32,
        });
        st.disk += rec_len;
        st.count += 1;
        st.bytes += event.encoded.len() as u64;
        st.last = event.id;
        if let Some(custom) = &event.custom_id {
            let custom: Box<str> = custom.as_str().into();
            st.custom.insert(custom.clone(), event.id);
            st.custom_by_id.insert(event.id, custom);
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
