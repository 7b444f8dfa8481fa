//! Retention: trimming the index by count, age and bytes, and deleting segment files left
//! with no retained record once the floor is on disk.

use std::fs;
use std::io;

use crate::{lock, meta, Deletion, Inner, State, SyncMode};

impl Inner {
    /// Drops the oldest events out of retention from the index; returns the segment files
    /// left with no retained record (never the last one), to delete outside the lock.
    pub(crate) fn trim(&self, st: &mut State, now: u64) -> Option<Deletion> {
        let r = &self.retention;
        let age_floor = r
            .max_age
            .map(|age| now.saturating_sub(age.as_millis() as u64));
        let mut paths = Vec::new();
        loop {
            while st.segments.len() > 1 && st.segments[0].retained().is_empty() {
                let seg = st.segments.pop_front().expect("front exists");
                st.disk -= seg.len;
                paths.push(seg.path);
            }
            let several = st.segments.len() > 1;
            let front = &mut st.segments[0];
            let Some(oldest) = front.retained().first().copied() else {
                break;
            };
            let over_count = r.max_events.is_some_and(|n| st.count > n);
            // Bytes are the segment files on disk, what an operator budgets (a record's
            // framing can double a small event). Only whole segments free disk, so the front
            // segment is emptied, then deleted; the segment appended to is never trimmed
            // for bytes, so a log holds at least its last segment.
            let over_bytes = r.max_bytes.is_some_and(|n| several && st.disk > n);
            let too_old = age_floor.is_some_and(|f| oldest.id.ms < f);
            if !(over_count || over_bytes || too_old) {
                break;
            }
            front.start += 1;
            st.count -= 1;
            st.bytes -= u64::from(oldest.enc_len);
            st.floor = oldest.id;
        }
        while let Some(entry) = st.custom_by_id.first_entry() {
            if *entry.key() > st.floor {
                break;
            }
            let (id, custom) = entry.remove_entry();
            if st.custom.get(&custom) == Some(&id) {
                st.custom.remove(&custom);
            }
        }
        if paths.is_empty() {
            None
        } else {
            Some(Deletion {
                floor: st.floor,
                paths,
            })
        }
    }

    /// Writes the floor to the meta file, then deletes the files. Errors are kept for
    /// [`LogStore::take_maintenance_error`] and the files retried next time.
    pub(crate) fn delete(&self, d: Deletion) {
        let mut m = lock(&self.maintenance);
        m.pending.extend(d.paths);
        if d.floor > m.persisted_floor {
            if let Err(e) = meta::write(&self.dir, d.floor, self.sync_mode != SyncMode::Never) {
                m.last_error = Some(format!("{}: {e}", self.dir.join(meta::META_FILE).display()));
                return;
            }
            m.persisted_floor = d.floor;
        }
        let mut failed = Vec::new();
        let mut last_error = None;
        for path in m.pending.drain(..) {
            match fs::remove_file(&path) {
                Ok(()) => {}
                Err(e) if e.kind() == io::ErrorKind::NotFound => {}
                Err(e) => {
                    last_error = Some(format!("{}: {e}", path.display()));
                    failed.push(path);
                }
            }
        }
        m.pending = failed;
        if last_error.is_some() {
            m.last_error = last_error;
        }
    }
}
