//! One layer of settings (flags, environment, the file, the defaults), all keys optional,
//! and how layers stack: a key a layer leaves unset is taken from the one below.

use std::path::PathBuf;

use anyhow::Context;
use clap::Args;
use serde::Deserialize;
use ssehub::RouteSpec;

use super::retain::{parse_retain_rule, RetainRule};

/// One layer of settings; `None` leaves the key to the layer below.
#[derive(Args, Deserialize, Debug, Default, Clone)]
#[serde(deny_unknown_fields)]
pub struct Layer {
    /// Log lines as text or as one JSON object each: text or json [default: text]
    #[arg(long, env = "SSEHUB_LOG_FORMAT", value_name = "FORMAT")]
    pub log_format: Option<String>,
    /// Address and port to listen on [default: 127.0.0.1:8080]
    #[arg(long, env = "SSEHUB_LISTEN", value_name = "ADDR:PORT")]
    pub listen: Option<String>,
    /// Connections the kernel queues before the hub accepts them [default: 4096]
    #[arg(long, env = "SSEHUB_LISTEN_BACKLOG", value_name = "N")]
    pub listen_backlog: Option<u64>,
    /// Directory of the durable event log [default: ./ssehub-data]
    #[arg(long, env = "SSEHUB_DATA_DIR", value_name = "DIR")]
    pub data_dir: Option<PathBuf>,
    /// Keep history in memory only
    #[arg(long, env = "SSEHUB_MEMORY", num_args = 0..=1, default_missing_value = "true", value_name = "BOOL")]
    pub memory: Option<bool>,
    /// Events kept in memory mode [default: 10000]
    #[arg(long, env = "SSEHUB_HISTORY", value_name = "N")]
    pub history: Option<u64>,
    /// Run the demo publishers
    #[arg(long, env = "SSEHUB_DEMO", num_args = 0..=1, default_missing_value = "true", value_name = "BOOL")]
    pub demo: Option<bool>,
    /// Serve this directory at / instead of the built-in page
    #[arg(long, env = "SSEHUB_PUBLIC_DIR", value_name = "DIR")]
    pub public_dir: Option<PathBuf>,
    /// Seconds between heartbeat comments [default: 15]
    #[arg(long, env = "SSEHUB_HEARTBEAT", value_name = "SECONDS")]
    pub heartbeat: Option<u64>,
    /// Reconnection delay sent with `retry:`, in ms [default: 3000]
    #[arg(long, env = "SSEHUB_RETRY", value_name = "MS")]
    pub retry: Option<u64>,
    /// Largest publish body in bytes [default: 1048576]
    #[arg(long, env = "SSEHUB_MAX_PAYLOAD", value_name = "BYTES")]
    pub max_payload: Option<u64>,
    /// Allowed cross-origin pages: "*" or a comma list of origins
    #[arg(long, env = "SSEHUB_CORS_ORIGINS", value_name = "LIST")]
    pub cors_origins: Option<String>,
    /// Most concurrent subscriber streams [default: 100000]
    #[arg(long, env = "SSEHUB_MAX_CONNECTIONS", value_name = "N")]
    pub max_connections: Option<u64>,
    /// Most topics per subscription or publish [default: 64]
    #[arg(long, env = "SSEHUB_MAX_TOPICS", value_name = "N")]
    pub max_topics: Option<u64>,
    /// Most topics the hub keeps at once (with subscribers, retained events or closed) [default: 1000000]
    #[arg(long, env = "SSEHUB_MAX_HUB_TOPICS", value_name = "N")]
    pub max_hub_topics: Option<u64>,
    /// Kernel send buffer per connection in bytes; 0 for the kernel's autotuning [default: 0]
    #[arg(long, env = "SSEHUB_SOCKET_SEND_BUFFER", value_name = "BYTES")]
    pub socket_send_buffer: Option<u64>,
    /// Most open connections from one client address; 0 for no limit [default: 0]
    #[arg(long, env = "SSEHUB_MAX_CONNECTIONS_PER_IP", value_name = "N")]
    pub max_connections_per_ip: Option<u64>,
    /// Largest request head (request line and headers) in bytes [default: 16384]
    #[arg(long, env = "SSEHUB_MAX_HEADER_BYTES", value_name = "BYTES")]
    pub max_header_bytes: Option<u64>,
    /// Seconds a client has to send its request head (and finish TLS) [default: 10]
    #[arg(long, env = "SSEHUB_HEAD_TIMEOUT", value_name = "SECONDS")]
    pub head_timeout: Option<u64>,
    /// Publish requests per second per client address; 0 for no limit [default: 0]
    #[arg(long, env = "SSEHUB_PUBLISH_RATE", value_name = "N")]
    pub publish_rate: Option<u64>,
    /// Publish requests an address may make at once; 0 for publish_rate [default: 0]
    #[arg(long, env = "SSEHUB_PUBLISH_BURST", value_name = "N")]
    pub publish_burst: Option<u64>,
    /// Bytes a subscriber may have queued before its stream is ended [default: 262144]
    #[arg(long, env = "SSEHUB_SUBSCRIBER_BUFFER", value_name = "BYTES")]
    pub subscriber_buffer: Option<u64>,
    /// Seconds shutdown waits for streams to end [default: 5]
    #[arg(long, env = "SSEHUB_SHUTDOWN_GRACE", value_name = "SECONDS")]
    pub shutdown_grace: Option<u64>,
    /// When a publish is durable: always, batch (group commit) or never [default: batch]
    #[arg(long, env = "SSEHUB_SYNC", value_name = "MODE")]
    pub sync: Option<String>,
    /// Events the durable log keeps; 0 for no count limit [default: 1000000]
    #[arg(long, env = "SSEHUB_RETAIN_EVENTS", value_name = "N")]
    pub retain_events: Option<u64>,
    /// Seconds the durable log keeps an event; 0 for no age limit [default: 604800]
    #[arg(long, env = "SSEHUB_RETAIN_AGE", value_name = "SECONDS")]
    pub retain_age: Option<u64>,
    /// Bytes the durable log keeps; 0 for no size limit [default: 1073741824]
    #[arg(long, env = "SSEHUB_RETAIN_BYTES", value_name = "BYTES")]
    pub retain_bytes: Option<u64>,
    /// Size of one log segment file in bytes; retention deletes whole segments [default: 67108864]
    #[arg(long, env = "SSEHUB_SEGMENT_BYTES", value_name = "BYTES")]
    pub segment_bytes: Option<u64>,
    /// Redis URL: join the cluster of hubs sharing this Redis (the same as --engine redis://...)
    #[arg(long, env = "SSEHUB_REDIS_URL", value_name = "URL")]
    pub redis_url: Option<String>,
    /// Cluster engine: nats://HOST:PORT (a JetStream stream) or redis://HOST:PORT (a Redis
    /// stream); every hub given the same engine shares one history
    #[arg(long, env = "SSEHUB_ENGINE", value_name = "URL")]
    pub engine: Option<String>,
    /// Publishers' JWT key: an HMAC secret, or a PEM or JWKS file path (alias MERCURE_PUBLISHER_JWT_KEY)
    #[arg(
        long,
        env = "SSEHUB_PUBLISHER_JWT_KEY",
        value_name = "SECRET|FILE",
        hide_env_values = true
    )]
    pub publisher_jwt_key: Option<String>,
    /// Subscribers' JWT key: an HMAC secret, or a PEM or JWKS file path (alias MERCURE_SUBSCRIBER_JWT_KEY)
    #[arg(
        long,
        env = "SSEHUB_SUBSCRIBER_JWT_KEY",
        value_name = "SECRET|FILE",
        hide_env_values = true
    )]
    pub subscriber_jwt_key: Option<String>,
    /// JWS algorithms accepted, comma list (never "none")
    #[arg(long, env = "SSEHUB_JWT_ALGORITHMS", value_name = "LIST")]
    pub jwt_algorithms: Option<String>,
    /// With a subscriber key: subscribers without a token still get public events
    #[arg(long, env = "SSEHUB_ANONYMOUS", num_args = 0..=1, default_missing_value = "true", value_name = "BOOL")]
    pub anonymous: Option<bool>,
    /// Mercure protocol dialect: 0 (draft-07, what deployed clients speak) or 1 (draft-08) [default: 0]
    #[arg(long, env = "SSEHUB_MERCURE_DIALECT", value_name = "0|1")]
    pub mercure_dialect: Option<u8>,
    /// The issuer (iss) tokens must carry
    #[arg(long, env = "SSEHUB_MERCURE_ISSUER", value_name = "ISS")]
    pub mercure_issuer: Option<String>,
    /// The audience (aud) tokens must carry [dialect 1 default: the hub's URL as requested]
    #[arg(long, env = "SSEHUB_MERCURE_AUDIENCE", value_name = "AUD")]
    pub mercure_audience: Option<String>,
    /// Mercure subscription events and the subscriptions API
    #[arg(long, env = "SSEHUB_MERCURE_SUBSCRIPTIONS", num_args = 0..=1, default_missing_value = "true", value_name = "BOOL")]
    pub mercure_subscriptions: Option<bool>,
    /// Longest life of a stream in seconds, 0 for none (Mercure's write_timeout) [default: 0]
    #[arg(long, env = "SSEHUB_STREAM_LIFETIME", value_name = "SECONDS")]
    pub stream_lifetime: Option<u64>,
    /// PEM certificate chain: serve HTTPS (HTTP/2 and HTTP/1.1 by ALPN) instead of plain HTTP
    #[arg(long, env = "SSEHUB_TLS_CERT", value_name = "FILE")]
    pub tls_cert: Option<PathBuf>,
    /// PEM private key of tls_cert
    #[arg(long, env = "SSEHUB_TLS_KEY", value_name = "FILE")]
    pub tls_key: Option<PathBuf>,
    /// Retention for topics matching a pattern, repeatable: 'PATTERN=events:N,age:SECONDS,bytes:N' (in SSEHUB_RETAIN, rules separated by ';')
    #[arg(
        long,
        env = "SSEHUB_RETAIN",
        value_name = "RULE",
        value_delimiter = ';',
        value_parser = parse_retain_rule
    )]
    pub retain: Option<Vec<RetainRule>>,
    /// Route aliases, `[[route]]` tables of the file only (docs/routes.md).
    #[arg(skip)]
    pub route: Option<Vec<RouteSpec>>,
    /// Ingest bridges, `[[bridge]]` tables of the file only (docs/bridges.md).
    #[arg(skip)]
    pub bridge: Option<Vec<ssehub_bridge::BridgeSpec>>,
}

/// Fills every key `top` leaves unset from `below`.
macro_rules! fill {
    ($top:ident, $below:ident; $($field:ident),+) => {
        Layer { $($field: $top.$field.or($below.$field),)+ }
    };
}

/// The reference Mercure hub's environment variables, as a layer under `flags_and_env`.
pub fn with_mercure_aliases(flags_and_env: Layer) -> anyhow::Result<Layer> {
    let aliases = crate::auth_settings::mercure_aliases(|name| std::env::var(name).ok())?;
    Ok(under(flags_and_env, aliases))
}

pub(super) fn under(top: Layer, below: Layer) -> Layer {
    fill!(top, below; log_format, listen, listen_backlog, data_dir, memory, history, demo, public_dir, heartbeat, retry,
        max_payload, cors_origins, max_connections, max_topics, max_hub_topics, max_header_bytes, max_connections_per_ip,
        head_timeout, publish_rate, publish_burst, socket_send_buffer, subscriber_buffer,
        shutdown_grace, sync, retain_events, retain_age, retain_bytes, segment_bytes, redis_url, engine,
        publisher_jwt_key, subscriber_jwt_key, jwt_algorithms, anonymous, mercure_dialect,
        mercure_issuer, mercure_audience, mercure_subscriptions, stream_lifetime, tls_cert,
        tls_key, retain, route, bridge)
}

/// Parses a TOML layer, naming the file in errors.
pub fn parse_file(text: &str, origin: &str) -> anyhow::Result<Layer> {
    toml::from_str(text).with_context(|| format!("config file {origin}"))
}
