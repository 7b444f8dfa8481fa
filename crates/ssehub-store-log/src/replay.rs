//! Replay reads: where a page starts in the index, and reading its records from disk.

use std::fs::File;
use std::io;
use std::path::Path;
use std::sync::Arc;

use ssehub_core::{Event, EventId, StoreError};

use crate::record::HEADER_LEN;
use crate::segment::Entry;
use crate::{corrupt, record, segment, Inner, State, MAX_PAGE_BYTES};

/// One segment's share of a replay page, copied out of the index under the lock.
pub(crate) struct Slice {
    pub(crate) path: Arc<Path>,
    pub(crate) file: Arc<File>,
    pub(crate) entries: Vec<Entry>,
}

impl Inner {
    /// Position (segment, entry) of the first retained record after `after`.
    pub(crate) fn first_after(st: &State, after: EventId) -> (usize, usize) {
        let si = st
            .segments
            .partition_point(|s| s.retained().last().is_none_or(|e| e.id <= after));
        match st.segments.get(si) {
            Some(seg) => (
                si,
                seg.start + seg.retained().partition_point(|e| e.id <= after),
            ),
            None => (si, 0),
        }
    }
}

/// Reads the records of `slice` from disk, in runs of at most [`MAX_PAGE_BYTES`].
pub(crate) fn read_slice(
    slice: &Slice,
    filter: &dyn Fn(&Event) -> bool,
    topics: &mut record::TopicCache,
    out: &mut Vec<Arc<Event>>,
) -> Result<(), StoreError> {
    let mut buf = Vec::new();
    let mut i = 0;
    while i < slice.entries.len() {
        let first = slice.entries[i];
        let mut j = i + 1;
        let mut end = u64::from(first.offset) + u64::from(first.len);
        while j < slice.entries.len() {
            let e = slice.entries[j];
            let e_end = u64::from(e.offset) + u64::from(e.len);
            if e_end - u64::from(first.offset) > MAX_PAGE_BYTES {
                break;
            }
            end = e_end;
            j += 1;
        }
        buf.resize((end - u64::from(first.offset)) as usize, 0);
        segment::read_at(&slice.file, &mut buf, first.offset.into()).map_err(|e| {
            match e.kind() {
                io::ErrorKind::UnexpectedEof => corrupt(
                    &slice.path,
                    first.offset.into(),
                    "file shorter than its index",
                ),
                _ => StoreError::Io(e),
            }
        })?;
        for e in &slice.entries[i..j] {
            let at = (e.offset - first.offset) as usize;
            let rec = &buf[at..at + e.len as usize];
            let h = record::Header::parse(rec);
            let payload = &rec[HEADER_LEN..];
            if !h.verify(payload) {
                return Err(corrupt(
                    &slice.path,
                    e.offset.into(),
                    "checksum mismatch on read",
                ));
            }
            let event = record::decode(payload, topics)
                .map_err(|why| corrupt(&slice.path, e.offset.into(), &why))?;
            if event.id != e.id {
                return Err(corrupt(
                    &slice.path,
                    e.offset.into(),
                    "record id differs from the index",
                ));
            }
            if filter(&event) {
                out.push(Arc::new(event));
            }
        }
        i = j;
    }
    Ok(())
}
