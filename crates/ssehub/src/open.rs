//! Opening a subscriber stream on the hub, for any protocol: the opening bytes (`retry:`, a
//! reset when the replay cannot be complete, a route's welcome), the replay position from a
//! [`Cursor`], and the live subscription. The native API (`http/subscribe.rs`, route
//! aliases) and the Mercure endpoint both open their streams here.

use std::sync::Arc;

use ssehub_core::{encode_event, wire_id_text, EventId, Frame, Locate};

use crate::error::ApiError;
use crate::hub::{Hub, SubscribeError};
use crate::selection::Selection;
use crate::stream::EventStream;

/// The control event that tells a resuming client its replay is not complete.
pub const RESET_EVENT: &str = "ssehub-reset";

/// What a subscribe request opens.
pub enum Opened {
    Stream(EventStream),
    /// Every topic is closed and the client is owed nothing: 204, so `EventSource` stops.
    NoContent,
}

/// How a stream opens.
pub(crate) enum Opening<'a> {
    /// The native API's: an `: ok` comment, then the hub's `retry` with up to 10 % jitter.
    Native,
    /// A route alias's: `retry` as given (0: none; `None`: the hub's), then its welcome
    /// events, which `welcome` writes given the stream's position as its wire id.
    Route {
        retry: Option<u64>,
        welcome: Option<&'a WriteWelcome<'a>>,
    },
}

/// Writes a route's welcome events into the opening, given the stream's position.
pub(crate) type WriteWelcome<'a> = dyn Fn(&mut Vec<u8>, &str) + 'a;

/// Where a stream's replay starts.
#[derive(Clone, Copy, Debug)]
pub enum Cursor<'a> {
    /// No replay: live events only.
    Live,
    /// After the client's `Last-Event-ID`; an `ssehub-reset` first when the store cannot
    /// replay completely from there.
    After(&'a str),
    /// The whole retained history, with no reset (Mercure's `earliest`).
    Earliest,
}

/// Opens a stream for any selection (the native API's topics, or Mercure selectors): the
/// opening bytes, the replay from `cursor`, and the live subscription.
pub fn open_selection(
    hub: Arc<Hub>,
    selection: Arc<Selection>,
    cursor: Cursor<'_>,
    presence: bool,
) -> Result<Opened, ApiError> {
    open_with(hub, selection, cursor, presence, &Opening::Native)
}

pub(crate) fn open_with(
    hub: Arc<Hub>,
    selection: Arc<Selection>,
    cursor: Cursor<'_>,
    presence: bool,
    how: &Opening<'_>,
) -> Result<Opened, ApiError> {
    let hub_retry = hub.config.retry.as_millis() as u64;
    let (mut opening, retry) = match how {
        Opening::Native => (
            b": ok\n".to_vec(),
            hub_retry + fastrand::u64(0..=hub_retry / 10),
        ),
        Opening::Route { retry, .. } => (Vec::new(), retry.unwrap_or(hub_retry)),
    };
    if retry > 0 {
        opening.extend_from_slice(format!("retry: {retry}\n\n").as_bytes());
    }
    let mut replay_after = match cursor {
        Cursor::Live => None,
        Cursor::Earliest => Some(hub.store.replay_start()),
        Cursor::After(id) => {
            let located = hub
                .store
                .locate_for(id, selection.scope())
                .map_err(|e| ApiError::internal(&e))?;
            match located {
                Locate::Found(position) => Some(position),
                Locate::Expired => Some(reset(&hub, &mut opening, "expired", id)),
                // An id this cluster node answered a publish with, which its reader has not
                // delivered yet: complete from there (the live feed brings the rest).
                Locate::Unknown => match id.parse::<EventId>() {
                    Ok(position) if hub.cluster_answered(position) => Some(position),
                    _ => Some(reset(&hub, &mut opening, "unknown", id)),
                },
            }
        }
    };
    if let Opening::Route {
        welcome: Some(welcome),
        ..
    } = how
    {
        // A welcome carries the stream's position: the client's own id when it resumes,
        // else the head of the history read now, before the subscription is registered,
        // so an event published in between is replayed after the welcome, not lost.
        let position = match cursor {
            Cursor::After(id) => id.to_owned(),
            Cursor::Live | Cursor::Earliest => {
                let head = replay_after.unwrap_or_else(|| {
                    let stats = hub.store.stats();
                    stats.newest.unwrap_or_else(|| hub.store.floor())
                });
                replay_after = Some(head);
                wire_id_text(head, None)
            }
        };
        welcome(&mut opening, &position);
    }
    let subscription = match hub.subscribe(selection.clone(), presence) {
        Ok(subscription) => Some(subscription),
        Err(SubscribeError::AllClosed) => {
            // The client may still be owed the events up to the closing one.
            let owed = replay_after
                .map(|after| has_events_after(&hub, after, &selection))
                .transpose()?;
            if owed != Some(true) {
                return Ok(Opened::NoContent);
            }
            None
        }
        Err(SubscribeError::TooManyTopics) => {
            return Err(ApiError::unavailable(hub.topic_limit_message(), 5));
        }
        Err(SubscribeError::TooManyConnections) => {
            return Err(ApiError::unavailable("too many connections", 5));
        }
        Err(SubscribeError::ShuttingDown) => {
            return Err(ApiError::unavailable("the hub is shutting down", 1));
        }
    };
    Ok(Opened::Stream(EventStream::new(
        hub.clone(),
        subscription,
        opening.into(),
        selection,
        replay_after,
    )))
}

/// Writes the reset control event into `opening` and returns where the replay starts: the
/// oldest event the store still has.
fn reset(hub: &Hub, opening: &mut Vec<u8>, reason: &str, sent: &str) -> EventId {
    let data = serde_json::json!({ "reason": reason, "lastEventId": sent }).to_string();
    encode_event(
        &Frame {
            event: Some(RESET_EVENT),
            data: &data,
            ..Frame::default()
        },
        opening,
    );
    hub.store.replay_start()
}

fn has_events_after(
    hub: &Hub,
    mut after: EventId,
    selection: &Selection,
) -> Result<bool, ApiError> {
    let filter = |e: &ssehub_core::Event| selection.selects(e);
    loop {
        let page = hub
            .store
            .read(after, &filter, 1024)
            .map_err(|e| ApiError::internal(&e))?;
        if !page.events.is_empty() {
            return Ok(true);
        }
        if page.at_head {
            return Ok(false);
        }
        after = page.through;
    }
}
