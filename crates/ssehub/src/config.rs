//! The hub's typed, validated configuration. Built by the binary from flags, environment and
//! file; the hub never reads any of those itself.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use crate::keys::Verifier;
use crate::routes::Routes;
use crate::tls::TlsConfig;

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

/// Which Mercure protocol dialect `/.well-known/mercure` speaks.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum Dialect {
    /// draft-dunglas-mercure-07: what every deployed Mercure client speaks (`topic=`,
    /// the `mercure` claim, the `mercureAuthorization` cookie, `lastEventID`).
    #[default]
    V0,
    /// draft-dunglas-mercure-08 (Mercure 1.0): `match=`, `at+jwt` access tokens with
    /// `authorization_details`, the `__Secure-mercure_access_token` cookie, RFC 6750 errors.
    V1,
}

/// Who may publish and subscribe. With no key at all the hub behaves as without auth,
/// except that publishing is open to loopback clients only.
#[derive(Clone, Debug, Default)]
pub struct AuthConfig {
    /// Verifies publishers' tokens. `None`: publishing is open to loopback clients only.
    pub publisher: Option<Arc<Verifier>>,
    /// Verifies subscribers' tokens. `None`: anyone may subscribe (public events only).
    pub subscriber: Option<Arc<Verifier>>,
    /// With a subscriber key: subscribers without a token still receive public events.
    pub anonymous: bool,
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
    /// Most topics the hub keeps at once (with subscribers, retained events or closed); a
    /// publish or subscribe that would add one more gets `503`.
    pub max_hub_topics: usize,
    /// Largest request head (request line and headers); larger ones get `431`.
    pub max_header_bytes: usize,
    /// Time a client has to send its request head (and on TLS, to finish the handshake);
    /// a connection that has not by then is closed (the slow-loris guard). Must be > 0.
    pub head_timeout: Duration,
    /// Publish requests per second one client address may make (a token bucket per peer
    /// IP; more get `429` with `Retry-After`). 0: no limit. The address is the TCP peer's:
    /// behind a proxy every client shares the proxy's bucket.
    pub publish_rate: u64,
    /// Publish requests one address may make at once before `publish_rate` applies;
    /// 0 means one second's worth (`publish_rate`).
    pub publish_burst: u64,
    /// Most open connections from one client address; more get `429` with `Retry-After`.
    /// 0: no limit.
    pub max_connections_per_ip: usize,
    /// The kernel send buffer of each connection (SO_SNDBUF), in bytes; 0 leaves the
    /// kernel's autotuning. A small one bounds kernel memory per stream and makes a stalled
    /// reader's outbox fill (and its stream end) sooner.
    pub socket_send_buffer: usize,
    /// Bytes a subscriber may have queued before the hub ends its stream.
    pub subscriber_buffer: usize,
    /// How long shutdown waits for streams to end before it stops anyway.
    pub shutdown_grace: Duration,
    pub auth: AuthConfig,
    pub mercure_dialect: Dialect,
    /// Dialect 1: the `iss` tokens must carry.
    pub mercure_issuer: Option<String>,
    /// Dialect 1: a value the tokens' `aud` must contain.
    pub mercure_audience: Option<String>,
    /// Publish Mercure subscription events and serve the subscriptions API.
    pub mercure_subscriptions: bool,
    /// Longest life of a stream (Mercure's `write_timeout`), jittered to 80-100 % per
    /// stream; `None` for no limit.
    pub stream_lifetime: Option<Duration>,
    /// Serve TLS (ALPN `h2` and `http/1.1`) instead of plain HTTP on the listener.
    pub tls: Option<TlsConfig>,
    /// Route aliases (`[[route]]`): legacy URLs mapped onto topics.
    pub routes: Routes,
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
            max_hub_topics: 1_000_000,
            max_header_bytes: 16 * 1024,
            head_timeout: Duration::from_secs(10),
            publish_rate: 0,
            publish_burst: 0,
            max_connections_per_ip: 0,
            socket_send_buffer: 0,
            subscriber_buffer: 256 * 1024,
            shutdown_grace: Duration::from_secs(5),
            auth: AuthConfig::default(),
            mercure_dialect: Dialect::V0,
            mercure_issuer: None,
            mercure_audience: None,
            mercure_subscriptions: false,
            stream_lifetime: None,
            tls: None,
            routes: Routes::default(),
        }
    }
}
