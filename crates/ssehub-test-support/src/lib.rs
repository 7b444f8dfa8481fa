//! What the integration tests of every ssehub crate share, one implementation each:
//! scratch directories ([`TempDir`]), child processes that announce where they listen and
//! die with the test ([`Process`]), ports and raw HTTP over TCP ([`free_port`],
//! [`wait_for_port`], [`raw_status`]), SSE streams read with the core parser
//! ([`EventStream`]), waiting for a condition with a deadline ([`wait_until`]) and reading a
//! value off `/metrics` ([`metric`]); with the feature `hub`, the hub itself served
//! in-process on a real socket (`HubServer`).
//!
//! It is a dev-dependency only. The hub is behind the feature so that a store crate uses the
//! rest without building the server. What one crate alone needs stays in that crate's tests.

mod dir;
#[cfg(feature = "hub")]
mod hub;
mod metrics;
mod net;
mod process;
mod sse;
mod wait;

pub use dir::{log_segments, TempDir};
#[cfg(feature = "hub")]
pub use hub::HubServer;
pub use metrics::metric;
pub use net::{free_port, raw_status, wait_for_port};
pub use process::{listening_url, Process};
pub use sse::EventStream;
pub use wait::wait_until;
