//! The hub's typed, validated configuration. Built by the binary from flags, environment and
//! file; the hub never reads any of those itself.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

/// Which cross-origin pages may use the hub.
#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub enum CorsOrigins {
    /// Same-origin only: no CORS headers.
    #[default]
    None,
    /// `*`: any origin, without credentials (browsers refuse `*` with credentials).
    Any,
    /// These exact origins, echoed back with `Access-Control-Allow-Credentials: true`.
    List(Vec<String>),
}

#[derive(Clone, Debug)]
pub struct Config {
    pub listen: SocketAddr,
    /// Interval of the comment heartbeat on every stream.
    pub heartbeat: Duration,
    /// The reconnection delay announced with `retry:` when a stream opens.
    pub retry: Duration,
    /// Largest publish request body, in bytes.
    pub max_payload: usize,
    pub cors_origins: CorsOrigins,
    /// Events kept by the in-memory store.
    pub history: u64,
    /// Run the demo publishers.
    pub demo: bool,
    /// Serve this directory at `/` instead of the built-in page.
    pub public_dir: Option<PathBuf>,
    /// Most concurrent subscriber streams; more get `503` with `Retry-After`.
    pub max_connections: usize,
    /// Most topics in one subscription or one publish.
    pub max_topics: usize,
    /// Bytes a subscriber may have queued before the hub ends its stream.
    pub subscriber_buffer: usize,
    /// How long shutdown waits for streams to end before it stops anyway.
    pub shutdown_grace: Duration,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            listen: SocketAddr::from(([127, 0, 0, 1], 8080)),
            heartbeat: Duration::from_secs(15),
            retry: Duration::from_millis(3000),
            max_payload: 1 << 20,
            cors_origins: CorsOrigins::None,
            history: 10_000,
            demo: false,
            public_dir: None,
            max_connections: 100_000,
            max_topics: 64,
            subscriber_buffer: 256 * 1024,
            shutdown_grace: Duration::from_secs(5),
        }
    }
}
