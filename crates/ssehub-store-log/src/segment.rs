//! Segment files: naming, the in-memory index entry of a record, and the recovery scan.
//!
//! A segment is `<number, 20 digits>.log`: an 8-byte magic header, then records back to
//! back (see [`crate::record`]). Ids increase strictly within a segment and from one
//! segment to the next.

use std::fs::File;
use std::io::{self, BufReader, Read};
use std::path::Path;

use ssehub_core::EventId;

use crate::record::{self, Header, HEADER_LEN};

/// First bytes of every segment file: the format and its version.
pub(crate) const MAGIC: &[u8; 8] = b"SSEHLOG1";

pub(crate) fn file_name(no: u64) -> String {
    format!("{no:020}.log")
}

pub(crate) fn parse_name(name: &str) -> Option<u64> {
    let digits = name.strip_suffix(".log")?;
    if digits.len() != 20 || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    digits.parse().ok()
}

/// Where one record lives, and what retention needs to know of it.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Entry {
    pub id: EventId,
    /// Offset of the record header in its segment.
    pub offset: u32,
    /// Record length on disk, header included.
    pub len: u32,
    /// Length of the event's SSE encoding.
    pub enc_len: u32,
}

/// A record that is not intact.
#[derive(Debug)]
pub(crate) struct Bad {
    pub offset: u64,
    pub reason: String,
    /// The damage cannot be a write cut short by a crash (intact data follows it, or it
    /// passed its checksum): an error even in the last segment.
    pub fatal: bool,
}

/// What the recovery scan found in one segment.
#[derive(Debug, Default)]
pub(crate) struct Scan {
    pub entries: Vec<Entry>,
    /// Custom ids, with the id of their record.
    pub customs: Vec<(EventId, Box<str>)>,
    /// Length of the intact prefix (header and whole records).
    pub valid_len: u64,
    pub file_len: u64,
    pub bad: Option<Bad>,
}

/// Reads a whole segment, verifying every record, its id order (after `prev`) and the
/// header. Stops at the first record that is not intact. `max_ms` bounds the ids that the
/// search for intact data after a damaged record accepts (a little past the clock).
pub(crate) fn scan(path: &Path, prev: EventId, max_ms: u64) -> io::Result<Scan> {
    let file = File::open(path)?;
    let file_len = file.metadata()?.len();
    let mut r = BufReader::with_capacity(1 << 20, file);
    let mut scan = Scan {
        file_len,
        ..Scan::default()
    };
    let mut magic = [0; 8];
    if file_len < MAGIC.len() as u64 {
        scan.bad = Some(Bad {
            offset: 0,
            reason: "incomplete segment header".into(),
            fatal: false,
        });
        return Ok(scan);
    }
    r.read_exact(&mut magic)?;
    if &magic != MAGIC {
        scan.bad = Some(Bad {
            offset: 0,
            reason: "not a segment file (bad magic)".into(),
            fatal: true,
        });
        return Ok(scan);
    }
    let mut offset = MAGIC.len() as u64;
    let mut last = prev;
    let mut payload = Vec::new();
    loop {
        scan.valid_len = offset;
        if offset == file_len {
            return Ok(scan);
        }
        match read_record(&mut r, offset, file_len, &mut payload)? {
            Err(damage) => {
                let mut reason = damage.text();
                let follows = intact_after(path, offset, last, max_ms)?;
                if let Some(at) = follows {
                    reason = format!("{reason}, but an intact record follows at offset {at}");
                }
                scan.bad = Some(Bad {
                    offset,
                    reason,
                    fatal: follows.is_some(),
                });
                return Ok(scan);
            }
            Ok(len) => {
                let s = match record::summary(&payload) {
                    Ok(s) => s,
                    Err(why) => {
                        scan.bad = Some(Bad {
                            offset,
                            reason: why,
                            fatal: true,
                        });
                        return Ok(scan);
                    }
                };
                if s.id <= last {
                    let reason = format!("id {} does not follow {}", s.id, last);
                    scan.bad = Some(Bad {
                        offset,
                        reason,
                        fatal: true,
                    });
                    return Ok(scan);
                }
                last = s.id;
                if let Some(c) = s.custom {
                    scan.customs.push((s.id, c));
                }
                let Ok(off32) = u32::try_from(offset) else {
                    let reason = "record past 4 GiB in a segment".to_owned();
                    scan.bad = Some(Bad {
                        offset,
                        reason,
                        fatal: true,
                    });
                    return Ok(scan);
                };
                scan.entries.push(Entry {
                    id: s.id,
                    offset: off32,
                    len,
                    enc_len: s.enc_len,
                });
                offset += u64::from(len);
            }
        }
    }
}

/// Why a record failed to read.
enum Damage {
    Truncated(&'static str),
    /// The length field is impossible: nothing after it can be located.
    BadLength(u32),
    /// The record is complete but its checksum fails.
    Checksum,
}

impl Damage {
    fn text(&self) -> String {
        match self {
            Damage::Truncated(what) => (*what).to_owned(),
            Damage::BadLength(len) => format!("implausible record length {len}"),
            Damage::Checksum => "checksum mismatch".to_owned(),
        }
    }
}

/// Reads the record at `offset` into `payload`; returns its length on disk.
fn read_record(
    r: &mut impl Read,
    offset: u64,
    file_len: u64,
    payload: &mut Vec<u8>,
) -> io::Result<Result<u32, Damage>> {
    if file_len - offset < HEADER_LEN as u64 {
        return Ok(Err(Damage::Truncated("incomplete record header")));
    }
    let mut h = [0; HEADER_LEN];
    r.read_exact(&mut h)?;
    let h = Header::parse(&h);
    if !h.plausible() {
        return Ok(Err(Damage::BadLength(h.len)));
    }
    let end = offset + HEADER_LEN as u64 + u64::from(h.len);
    if end > file_len {
        return Ok(Err(Damage::Truncated(
            "record runs past the end of the file",
        )));
    }
    payload.resize(h.len as usize, 0);
    r.read_exact(payload)?;
    if !h.verify(payload) {
        return Ok(Err(Damage::Checksum));
    }
    Ok(Ok(HEADER_LEN as u32 + h.len))
}

/// Looks for an intact record (verified checksum, id after `last`, millisecond part at most
/// `max_ms`) starting anywhere after `from`. A write cut short by a crash leaves nothing
/// intact after it, so finding one means the damage at `from` is in the middle of the data.
/// Reads the file in windows of 1 MiB; used only when recovery met a damaged record.
fn intact_after(path: &Path, from: u64, last: EventId, max_ms: u64) -> io::Result<Option<u64>> {
    const WINDOW: usize = 1 << 20;
    const PREFIX: usize = HEADER_LEN + 16;
    let file = File::open(path)?;
    let file_len = file.metadata()?.len();
    let mut buf = vec![0; WINDOW + PREFIX];
    let mut payload = Vec::new();
    let mut base = from + 1;
    while base + (PREFIX as u64) <= file_len {
        let n = (file_len - base).min(buf.len() as u64) as usize;
        read_at(&file, &mut buf[..n], base)?;
        for i in 0..=(n - PREFIX) {
            let h = Header::parse(&buf[i..]);
            let at = base + i as u64;
            if !h.plausible() || at + (HEADER_LEN as u64) + u64::from(h.len) > file_len {
                continue;
            }
            let p = &buf[i + HEADER_LEN..i + PREFIX];
            let ms = u64::from_le_bytes(p[..8].try_into().expect("8 bytes"));
            let seq = u64::from_le_bytes(p[8..16].try_into().expect("8 bytes"));
            if ms > max_ms || EventId::new(ms, seq) <= last {
                continue;
            }
            payload.resize(h.len as usize, 0);
            read_at(&file, &mut payload, at + HEADER_LEN as u64)?;
            if h.verify(&payload) && record::summary(&payload).is_ok() {
                return Ok(Some(at));
            }
        }
        base += (n - PREFIX + 1) as u64;
    }
    Ok(None)
}

/// Reads exactly `buf.len()` bytes at `offset`.
pub(crate) fn read_at(file: &File, buf: &mut [u8], offset: u64) -> io::Result<()> {
    std::os::unix::fs::FileExt::read_exact_at(file, buf, offset)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_index_entry_is_32_bytes() {
        // NOTES.md quotes this figure for the memory the index takes per event.
        assert_eq!(std::mem::size_of::<Entry>(), 32);
    }

    #[test]
    fn names_round_trip() {
        assert_eq!(file_name(7), "00000000000000000007.log");
        assert_eq!(parse_name(&file_name(7)), Some(7));
        for bad in [
            "7.log",
            "0000000000000000000x.log",
            "00000000000000000007.tmp",
            "meta",
        ] {
            assert_eq!(parse_name(bad), None, "{bad}");
        }
    }
}
