//! The core of ssehub: the vocabulary (topic, event, event id, cursor), the SSE wire codec
//! (one encoder, one incremental parser, used by hub, client and tests alike), and the
//! [`Store`] trait with its in-memory implementation and conformance suite.
//!
//! Invariant: nothing in this crate opens a socket, spawns a task or needs an async runtime.

mod classes;
pub mod conformance;
mod encode;
mod event;
mod id;
mod memory;
mod parse;
mod store;
mod topic;

pub use classes::{ClassedStore, PatternError, TopicPattern};
pub use encode::{encode_comment, encode_event, encode_retry, Frame};
pub use event::{wire_id_text, Event, EventName, FieldError, NewEvent, WireId};
pub use id::{EventId, ParseIdError};
pub use memory::MemoryStore;
pub use parse::{ParsedEvent, Parser, ParserItem};
pub use store::{
    DurableCallback, Locate, ReadBatch, Retention, Store, StoreError, StoreStats, SyncStats,
};
pub use topic::{Topic, TopicError, MAX_TOPIC_LEN};
