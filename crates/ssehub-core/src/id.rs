//! Event ids: the position of an event in the hub's history.
//!
//! An [`EventId`] is a pair (milliseconds since the Unix epoch, sequence within that
//! millisecond), written `1732300000000-0`. It is the same shape as a Redis stream id, so the
//! single-node stores and the Redis engine share one id space, and it keeps increasing across
//! restarts of the hub even for the in-memory store (the clock part moves on). Clients treat
//! ids as opaque strings; only the hub parses them.

use std::fmt;
use std::str::FromStr;

/// A position in the history. Ordered: a later event has a greater id.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct EventId {
    /// Milliseconds since the Unix epoch when the event was appended (never decreasing).
    pub ms: u64,
    /// Order of the event among those appended in the same millisecond.
    pub seq: u64,
}

impl EventId {
    pub const ZERO: EventId = EventId { ms: 0, seq: 0 };

    pub fn new(ms: u64, seq: u64) -> Self {
        EventId { ms, seq }
    }

    /// The next id after `self` for an append at wall-clock time `now_ms`. Never goes
    /// backwards when the clock does.
    pub fn next(self, now_ms: u64) -> EventId {
        if now_ms > self.ms {
            EventId { ms: now_ms, seq: 0 }
        } else {
            EventId {
                ms: self.ms,
                seq: self.seq + 1,
            }
        }
    }
}

impl fmt::Display for EventId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}-{}", self.ms, self.seq)
    }
}

/// The text was not of the form `<digits>-<digits>`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParseIdError;

impl fmt::Display for ParseIdError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("not an event id")
    }
}

impl std::error::Error for ParseIdError {}

impl FromStr for EventId {
    type Err = ParseIdError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let (ms, seq) = s.split_once('-').ok_or(ParseIdError)?;
        let digits = |t: &str| -> Result<u64, ParseIdError> {
            // `u64::from_str` accepts a leading `+`; an id never has one.
            if t.is_empty() || t.len() > 20 || !t.bytes().all(|b| b.is_ascii_digit()) {
                return Err(ParseIdError);
            }
            t.parse().map_err(|_| ParseIdError)
        };
        Ok(EventId {
            ms: digits(ms)?,
            seq: digits(seq)?,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_and_orders() {
        let a = EventId::new(1_700_000_000_000, 0);
        let b = a.next(1_700_000_000_000);
        let c = b.next(1_600_000_000_000);
        let d = c.next(1_700_000_000_001);
        assert!(a < b && b < c && c < d);
        assert_eq!(c, EventId::new(1_700_000_000_000, 2));
        assert_eq!(d, EventId::new(1_700_000_000_001, 0));
        for id in [a, b, c, d] {
            assert_eq!(id.to_string().parse::<EventId>(), Ok(id));
        }
    }

    #[test]
    fn rejects_non_ids() {
        for s in [
            "",
            "1",
            "1-",
            "-1",
            "+1-2",
            "1-+2",
            "a-b",
            "1-2-3",
            "99999999999999999999999-0",
        ] {
            assert_eq!(s.parse::<EventId>(), Err(ParseIdError), "{s:?}");
        }
    }
}
