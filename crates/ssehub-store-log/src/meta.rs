//! The meta file: the store's floor (every later event is retained), kept across restarts.
//!
//! It is rewritten (temporary file, fsync, rename, directory fsync) when the store is
//! created, before any segment file is deleted by retention, and when the store is closed, so
//! the floor on disk is always at or past every event whose segment is gone.

use std::fs::{self, File};
use std::io::Write;
use std::path::Path;

use ssehub_core::{EventId, StoreError};

pub(crate) const META_FILE: &str = "meta";
const META_TMP: &str = "meta.tmp";
const FIRST_LINE: &str = "ssehub-store-log 1";

fn body(floor: EventId) -> String {
    format!("{FIRST_LINE}\nfloor {floor}\n")
}

/// Reads the floor, or `None` when there is no meta file.
pub(crate) fn read(dir: &Path) -> Result<Option<EventId>, StoreError> {
    let path = dir.join(META_FILE);
    let text = match fs::read(&path) {
        Ok(b) => b,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(e.into()),
    };
    let corrupt = |why: &str| StoreError::Corrupt(format!("{}: {why}", path.display()));
    let text = std::str::from_utf8(&text).map_err(|_| corrupt("not UTF-8"))?;
    let mut lines = text.lines();
    if lines.next() != Some(FIRST_LINE) {
        return Err(corrupt("unknown format (first line)"));
    }
    let floor = lines
        .next()
        .and_then(|l| l.strip_prefix("floor "))
        .and_then(|f| f.parse::<EventId>().ok())
        .ok_or_else(|| corrupt("no valid `floor` line"))?;
    let crc = lines
        .next()
        .and_then(|l| l.strip_prefix("crc "))
        .and_then(|c| u32::from_str_radix(c, 16).ok())
        .ok_or_else(|| corrupt("no valid `crc` line"))?;
    if crc != crc32fast::hash(body(floor).as_bytes()) {
        return Err(corrupt("checksum mismatch"));
    }
    Ok(Some(floor))
}

/// Replaces the meta file atomically; durably (fsyncs) when `durable`.
pub(crate) fn write(dir: &Path, floor: EventId, durable: bool) -> std::io::Result<()> {
    let body = body(floor);
    let text = format!("{body}crc {:08x}\n", crc32fast::hash(body.as_bytes()));
    let tmp = dir.join(META_TMP);
    let mut f = File::create(&tmp)?;
    f.write_all(text.as_bytes())?;
    if durable {
        f.sync_all()?;
    }
    drop(f);
    fs::rename(&tmp, dir.join(META_FILE))?;
    if durable {
        sync_dir(dir)?;
    }
    Ok(())
}

/// Makes the directory's entries (created, renamed files) durable.
pub(crate) fn sync_dir(dir: &Path) -> std::io::Result<()> {
    File::open(dir)?.sync_all()
}
