//! The on-disk record: one event, framed by a checksum and a length.
//!
//! ```text
//! crc32   u32 LE   CRC32 (IEEE) of the 4 length bytes followed by the payload
//! len     u32 LE   payload length in bytes
//! payload:
//!   ms      u64 LE   event id, milliseconds part
//!   seq     u64 LE   event id, sequence part
//!   enc_len u32 LE   length of the event's SSE encoding (for byte retention and stats)
//!   flags   u8       1 name, 2 custom id, 4 retry, 8 close, 16 private
//!   [custom id]  u16 LE length + UTF-8      when flag 2
//!   [name]       u16 LE length + UTF-8      when flag 1
//!   [retry]      u64 LE                     when flag 4
//!   topics  u16 LE count, then per topic u16 LE length + UTF-8
//!   data    u32 LE length + UTF-8
//! ```
//!
//! The custom id comes first so that recovery reads only the fixed fields and the custom id;
//! the rest is decoded when a replay reads the record.

use std::collections::HashMap;

use ssehub_core::{Event, EventId, EventName, NewEvent, Topic, WireId};

/// Bytes before the payload: checksum and length.
pub(crate) const HEADER_LEN: usize = 8;
/// Smallest possible payload: id, encoded length, flags, topic count, data length.
pub(crate) const MIN_PAYLOAD: u32 = 8 + 8 + 4 + 1 + 2 + 4;
/// Largest payload accepted, written or read. A length field above it is corruption.
pub(crate) const MAX_PAYLOAD: u32 = 512 << 20;

const F_NAME: u8 = 1;
const F_CUSTOM: u8 = 2;
const F_RETRY: u8 = 4;
const F_CLOSE: u8 = 8;
const F_PRIVATE: u8 = 16;
const F_ALL: u8 = F_NAME | F_CUSTOM | F_RETRY | F_CLOSE | F_PRIVATE;

/// Encodes `event` as a complete record (header and payload) into `out`, replacing its
/// contents. Fails only for an event too large for the format.
pub(crate) fn encode(event: &Event, out: &mut Vec<u8>) -> Result<(), String> {
    out.clear();
    out.extend_from_slice(&[0; HEADER_LEN]);
    out.extend_from_slice(&event.id.ms.to_le_bytes());
    out.extend_from_slice(&event.id.seq.to_le_bytes());
    let enc_len = u32::try_from(event.encoded.len()).map_err(|_| "event too large".to_owned())?;
    out.extend_from_slice(&enc_len.to_le_bytes());
    let mut flags = 0;
    if event.name.is_some() {
        flags |= F_NAME;
    }
    if event.custom_id.is_some() {
        flags |= F_CUSTOM;
    }
    if event.retry.is_some() {
        flags |= F_RETRY;
    }
    if event.close {
        flags |= F_CLOSE;
    }
    if event.private {
        flags |= F_PRIVATE;
    }
    out.push(flags);
    if let Some(custom) = &event.custom_id {
        put_short(out, custom.as_str())?;
    }
    if let Some(name) = &event.name {
        put_short(out, name.as_str())?;
    }
    if let Some(retry) = event.retry {
        out.extend_from_slice(&retry.to_le_bytes());
    }
    let count = u16::try_from(event.topics.len()).map_err(|_| "too many topics".to_owned())?;
    out.extend_from_slice(&count.to_le_bytes());
    for topic in &event.topics {
        put_short(out, topic.as_str())?;
    }
    let data_len =
        u32::try_from(event.data.len()).map_err(|_| "event data too large".to_owned())?;
    out.extend_from_slice(&data_len.to_le_bytes());
    out.extend_from_slice(event.data.as_bytes());
    let len = out.len() - HEADER_LEN;
    if len > MAX_PAYLOAD as usize {
        return Err(format!(
            "event record of {len} bytes is larger than {MAX_PAYLOAD}"
        ));
    }
    let len = (len as u32).to_le_bytes();
    let crc = checksum(len, &out[HEADER_LEN..]);
    out[0..4].copy_from_slice(&crc.to_le_bytes());
    out[4..8].copy_from_slice(&len);
    Ok(())
}

fn put_short(out: &mut Vec<u8>, s: &str) -> Result<(), String> {
    let len = u16::try_from(s.len()).map_err(|_| "field longer than 65535 bytes".to_owned())?;
    out.extend_from_slice(&len.to_le_bytes());
    out.extend_from_slice(s.as_bytes());
    Ok(())
}

fn checksum(len: [u8; 4], payload: &[u8]) -> u32 {
    let mut h = crc32fast::Hasher::new();
    h.update(&len);
    h.update(payload);
    h.finalize()
}

/// A record header: stored checksum and payload length.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Header {
    pub crc: u32,
    pub len: u32,
}

impl Header {
    // `#[inline]` on the per-record checks: the replay loop (`replay.rs`) and recovery
    // (`open.rs`) call them from other modules, which may land in other codegen units.
    #[inline]
    pub fn parse(b: &[u8]) -> Header {
        Header {
            crc: u32::from_le_bytes([b[0], b[1], b[2], b[3]]),
            len: u32::from_le_bytes([b[4], b[5], b[6], b[7]]),
        }
    }

    /// Whether the length field is one a record can have.
    pub fn plausible(&self) -> bool {
        (MIN_PAYLOAD..=MAX_PAYLOAD).contains(&self.len)
    }

    /// Whether `payload` is the one this header was written for.
    #[inline]
    pub fn verify(&self, payload: &[u8]) -> bool {
        payload.len() == self.len as usize && checksum(self.len.to_le_bytes(), payload) == self.crc
    }
}

/// What the in-memory index needs of a record.
#[derive(Debug)]
pub(crate) struct Summary {
    pub id: EventId,
    pub enc_len: u32,
    pub custom: Option<Box<str>>,
}

/// Reads the fixed fields and the custom id of a verified payload.
pub(crate) fn summary(payload: &[u8]) -> Result<Summary, String> {
    let mut c = Cursor { b: payload, at: 0 };
    let id = EventId::new(c.u64()?, c.u64()?);
    let enc_len = c.u32()?;
    let flags = c.u8()?;
    let custom = if flags & F_CUSTOM != 0 {
        Some(c.short_str()?.into())
    } else {
        None
    };
    Ok(Summary {
        id,
        enc_len,
        custom,
    })
}

/// Topics already validated during one read, shared by the events that carry them (a
/// replay sees the same few topics over and over).
#[derive(Default)]
pub(crate) struct TopicCache(HashMap<Box<str>, Topic>);

impl TopicCache {
    const MAX: usize = 256;

    fn get(&mut self, name: &str) -> Result<Topic, String> {
        if let Some(t) = self.0.get(name) {
            return Ok(t.clone());
        }
        let t = Topic::new(name).map_err(|e| format!("topic: {e}"))?;
        if self.0.len() < Self::MAX {
            self.0.insert(name.into(), t.clone());
        }
        Ok(t)
    }
}

/// Decodes a verified payload into the stored event, rebuilding its SSE encoding.
pub(crate) fn decode(payload: &[u8], topics_seen: &mut TopicCache) -> Result<Event, String> {
    let mut c = Cursor { b: payload, at: 0 };
    let id = EventId::new(c.u64()?, c.u64()?);
    let _enc_len = c.u32()?;
    let flags = c.u8()?;
    if flags & !F_ALL != 0 {
        return Err(format!("unknown flags {flags:#04x}"));
    }
    let custom_id = if flags & F_CUSTOM != 0 {
        Some(WireId::new(c.short_str()?).map_err(|e| format!("custom id: {e}"))?)
    } else {
        None
    };
    let name = if flags & F_NAME != 0 {
        Some(EventName::new(c.short_str()?).map_err(|e| format!("event name: {e}"))?)
    } else {
        None
    };
    let retry = if flags & F_RETRY != 0 {
        Some(c.u64()?)
    } else {
        None
    };
    let count = c.u16()?;
    let mut topics = Vec::with_capacity(count.into());
    for _ in 0..count {
        topics.push(topics_seen.get(c.short_str()?)?);
    }
    let data_len = c.u32()? as usize;
    let data = c.str(data_len)?.to_owned();
    if c.at != payload.len() {
        return Err(format!("{} bytes after the event", payload.len() - c.at));
    }
    let new = NewEvent {
        topics,
        name,
        data,
        custom_id,
        retry,
        close: flags & F_CLOSE != 0,
        private: flags & F_PRIVATE != 0,
    };
    Ok(Event::assign(id, new))
}

struct Cursor<'a> {
    b: &'a [u8],
    at: usize,
}

impl<'a> Cursor<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8], String> {
        let end = self.at.checked_add(n).filter(|&e| e <= self.b.len());
        let end = end.ok_or_else(|| format!("field of {n} bytes runs past the record"))?;
        let s = &self.b[self.at..end];
        self.at = end;
        Ok(s)
    }

    fn u8(&mut self) -> Result<u8, String> {
        Ok(self.take(1)?[0])
    }

    fn u16(&mut self) -> Result<u16, String> {
        let b = self.take(2)?;
        Ok(u16::from_le_bytes([b[0], b[1]]))
    }

    fn u32(&mut self) -> Result<u32, String> {
        let b = self.take(4)?;
        Ok(u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
    }

    fn u64(&mut self) -> Result<u64, String> {
        let mut a = [0; 8];
        a.copy_from_slice(self.take(8)?);
        Ok(u64::from_le_bytes(a))
    }

    fn str(&mut self, n: usize) -> Result<&'a str, String> {
        std::str::from_utf8(self.take(n)?).map_err(|_| "text field is not UTF-8".to_owned())
    }

    fn short_str(&mut self) -> Result<&'a str, String> {
        let n = self.u16()?;
        self.str(n.into())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_every_field() {
        let mut new = NewEvent::new(
            vec![Topic::new("a").unwrap(), Topic::new("b/c").unwrap()],
            "x\ny",
        );
        new.name = Some(EventName::new("news").unwrap());
        new.custom_id = Some(WireId::new("urn:1").unwrap());
        new.retry = Some(1500);
        new.close = true;
        new.private = true;
        let event = Event::assign(EventId::new(17, 3), new);
        let mut buf = Vec::new();
        encode(&event, &mut buf).unwrap();
        let h = Header::parse(&buf);
        assert!(h.plausible());
        assert!(h.verify(&buf[HEADER_LEN..]));
        let s = summary(&buf[HEADER_LEN..]).unwrap();
        assert_eq!(s.id, event.id);
        assert_eq!(s.enc_len as usize, event.encoded.len());
        assert_eq!(s.custom.as_deref(), Some("urn:1"));
        assert_eq!(
            decode(&buf[HEADER_LEN..], &mut TopicCache::default()).unwrap(),
            event
        );

        let plain = Event::assign(
            EventId::new(1, 0),
            NewEvent::new(vec![Topic::new("t").unwrap()], ""),
        );
        encode(&plain, &mut buf).unwrap();
        assert_eq!(buf.len() - HEADER_LEN, MIN_PAYLOAD as usize + 2 + 1);
        assert_eq!(
            decode(&buf[HEADER_LEN..], &mut TopicCache::default()).unwrap(),
            plain
        );
    }

    #[test]
    fn a_flipped_bit_fails_the_checksum() {
        let event = Event::assign(
            EventId::new(5, 0),
            NewEvent::new(vec![Topic::new("a").unwrap()], "hello"),
        );
        let mut buf = Vec::new();
        encode(&event, &mut buf).unwrap();
        for i in 0..buf.len() {
            let mut bad = buf.clone();
            bad[i] ^= 0x10;
            let h = Header::parse(&bad);
            assert!(
                !(h.plausible()
                    && bad.len() - HEADER_LEN == h.len as usize
                    && h.verify(&bad[HEADER_LEN..])),
                "byte {i}"
            );
        }
    }

    #[test]
    fn malformed_payloads_are_errors_not_panics() {
        let event = Event::assign(
            EventId::new(5, 0),
            NewEvent::new(vec![Topic::new("a").unwrap()], "hello"),
        );
        let mut buf = Vec::new();
        encode(&event, &mut buf).unwrap();
        let payload = &buf[HEADER_LEN..];
        for n in 0..payload.len() {
            assert!(
                decode(&payload[..n], &mut TopicCache::default()).is_err(),
                "prefix of {n} bytes"
            );
        }
    }
}
