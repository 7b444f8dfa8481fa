//! Configuration layering: flags > `SSEHUB_*` environment > TOML file > built-in defaults
//! (the commented `default.toml`, which `ssehub print-config` prints), then validation into
//! the hub's typed [`ssehub::Config`]. A bad value is refused with a message naming its key.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use anyhow::{bail, Context};
use clap::Args;
use serde::Deserialize;
use ssehub::{Config, CorsOrigins, RouteSpec, Routes, TlsConfig, TlsError};
use ssehub_core::{Retention, TopicPattern};
use ssehub_store_log::SyncMode;

/// The commented defaults, compiled in.
pub const DEFAULT_TOML: &str = include_str!("default.toml");

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
    /// Redis URL: join the cluster of hubs sharing this Redis
    #[arg(long, env = "SSEHUB_REDIS_URL", value_name = "URL")]
    pub redis_url: Option<String>,
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

/// One retention rule: a `[[retain]]` table of the file, or a `--retain` flag. A limit left
/// out is the hub's (retain_events, retain_age, retain_bytes; `history` in memory mode);
/// 0 is no limit of that kind.
#[derive(Deserialize, Debug, Clone, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct RetainRule {
    /// The topic pattern (`*` within a segment, a last segment `**` for the rest).
    pub topics: String,
    pub events: Option<u64>,
    /// Seconds.
    pub age: Option<u64>,
    pub bytes: Option<u64>,
}

/// Parses the flag form `PATTERN=events:N,age:SECONDS,bytes:N` (any of the three, any order).
fn parse_retain_rule(text: &str) -> Result<RetainRule, String> {
    let (topics, limits) = text
        .rsplit_once('=')
        .ok_or_else(|| format!("{text:?} is not PATTERN=events:N,age:SECONDS,bytes:N"))?;
    let mut rule = RetainRule {
        topics: topics.trim().to_owned(),
        events: None,
        age: None,
        bytes: None,
    };
    for limit in limits.split(',').map(str::trim).filter(|l| !l.is_empty()) {
        let (kind, value) = limit
            .split_once(':')
            .ok_or_else(|| format!("{limit:?} is not KIND:N (events, age or bytes)"))?;
        let n = value
            .trim()
            .parse::<u64>()
            .map_err(|_| format!("{limit:?}: {value:?} is not a whole number"))?;
        let slot = match kind.trim() {
            "events" => &mut rule.events,
            "age" => &mut rule.age,
            "bytes" => &mut rule.bytes,
            other => return Err(format!("{other:?} is not one of events, age, bytes")),
        };
        *slot = Some(n);
    }
    Ok(rule)
}

/// The retention classes of the rules, in order, their left-out limits taken from `default`.
/// A bad or repeated pattern, a rule that sets no limit, or (with `bounded`, for memory
/// mode) a class with no limit at all is refused, naming the rule.
fn retention_classes(
    rules: Option<Vec<RetainRule>>,
    default: &Retention,
    bounded: bool,
) -> anyhow::Result<Vec<(TopicPattern, Retention)>> {
    let mut classes: Vec<(TopicPattern, Retention)> = Vec::new();
    for (i, rule) in rules.unwrap_or_default().into_iter().enumerate() {
        let at = format!("retain: rule {} ({:?})", i + 1, rule.topics);
        let pattern = TopicPattern::new(&rule.topics).map_err(|e| anyhow::anyhow!("{at}: {e}"))?;
        if classes.iter().any(|(p, _)| *p == pattern) {
            bail!("{at}: an earlier rule has the same topics");
        }
        if rule.events.is_none() && rule.age.is_none() && rule.bytes.is_none() {
            bail!("{at}: sets none of events, age, bytes");
        }
        let retention = Retention {
            max_events: rule
                .events
                .map_or(default.max_events, |n| (n > 0).then_some(n)),
            max_age: rule
                .age
                .map_or(default.max_age, |n| (n > 0).then(|| Duration::from_secs(n))),
            max_bytes: rule
                .bytes
                .map_or(default.max_bytes, |n| (n > 0).then_some(n)),
        };
        if bounded
            && retention.max_events.is_none()
            && retention.max_age.is_none()
            && retention.max_bytes.is_none()
        {
            bail!("{at}: in memory mode a class needs a limit (events, age or bytes)");
        }
        classes.push((pattern, retention));
    }
    Ok(classes)
}

/// The `[[retain]]` tables of the effective rules, for `print-config`.
pub fn print_retain(classes: &[(TopicPattern, Retention)]) -> String {
    let mut out = String::new();
    for (pattern, r) in classes {
        // A pattern has no control characters: escaping `\` and `"` makes a TOML string.
        let topics = pattern.as_str().replace('\\', "\\\\").replace('"', "\\\"");
        out.push_str(&format!(
            "[[retain]]\ntopics = \"{topics}\"\nevents = {}\nage = {}\nbytes = {}\n\n",
            r.max_events.unwrap_or(0),
            r.max_age.map_or(0, |a| a.as_secs()),
            r.max_bytes.unwrap_or(0)
        ));
    }
    out
}

/// Where history lives.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StoreChoice {
    Memory {
        history: u64,
        /// Retention classes: topics matching a pattern keep their own retention.
        classes: Vec<(TopicPattern, Retention)>,
    },
    /// Cluster mode: the history is a Redis stream shared by every node.
    Redis { url: String, history: u64 },
    Log {
        dir: PathBuf,
        sync: SyncMode,
        retention: Retention,
        segment_bytes: u64,
        /// Retention classes: topics matching a pattern keep their own retention.
        classes: Vec<(TopicPattern, Retention)>,
    },
}

impl StoreChoice {
    /// The retention classes of the rules (none in cluster mode).
    pub fn classes(&self) -> &[(TopicPattern, Retention)] {
        match self {
            StoreChoice::Memory { classes, .. } | StoreChoice::Log { classes, .. } => classes,
            StoreChoice::Redis { .. } => &[],
        }
    }
}

/// Everything `serve` needs, validated.
#[derive(Debug)]
pub struct Settings {
    pub hub: Config,
    pub store: StoreChoice,
    /// The listening socket's accept queue (`listen(2)` backlog; the kernel caps it at
    /// `net.core.somaxconn`).
    pub listen_backlog: u32,
    /// Log lines as JSON objects (else text).
    pub json_logs: bool,
    /// The ingest bridges to start.
    pub bridges: Vec<ssehub_bridge::Bridge>,
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

fn under(top: Layer, below: Layer) -> Layer {
    fill!(top, below; log_format, listen, listen_backlog, data_dir, memory, history, demo, public_dir, heartbeat, retry,
        max_payload, cors_origins, max_connections, max_topics, max_hub_topics, max_header_bytes, max_connections_per_ip,
        head_timeout, publish_rate, publish_burst, socket_send_buffer, subscriber_buffer,
        shutdown_grace, sync, retain_events, retain_age, retain_bytes, segment_bytes, redis_url,
        publisher_jwt_key, subscriber_jwt_key, jwt_algorithms, anonymous, mercure_dialect,
        mercure_issuer, mercure_audience, mercure_subscriptions, stream_lifetime, tls_cert,
        tls_key, retain, route, bridge)
}

/// Parses a TOML layer, naming the file in errors.
pub fn parse_file(text: &str, origin: &str) -> anyhow::Result<Layer> {
    toml::from_str(text).with_context(|| format!("config file {origin}"))
}

/// Merges the layers (first wins) and validates the result.
pub fn resolve(flags_and_env: Layer, file: Option<Layer>) -> anyhow::Result<Settings> {
    let defaults = parse_file(DEFAULT_TOML, "(built-in defaults)")?;
    validate(under(
        under(flags_and_env, file.unwrap_or_default()),
        defaults,
    ))
}

fn required<T>(value: Option<T>, key: &str) -> anyhow::Result<T> {
    value.with_context(|| format!("{key}: no value"))
}

fn positive(value: Option<u64>, key: &str) -> anyhow::Result<u64> {
    match required(value, key)? {
        0 => bail!("{key}: must be greater than 0"),
        n => Ok(n),
    }
}

fn validate(layer: Layer) -> anyhow::Result<Settings> {
    let auth = crate::auth_settings::validate(&layer)?;
    let listen_text = required(layer.listen, "listen")?;
    let listen: SocketAddr = listen_text.parse().with_context(|| {
        format!("listen: {listen_text:?} is not an ADDRESS:PORT such as 127.0.0.1:8080")
    })?;
    let cors_text = layer.cors_origins.unwrap_or_default();
    let cors_origins = match cors_text.trim() {
        "" => CorsOrigins::None,
        "*" => CorsOrigins::Any,
        list => {
            let origins: Vec<String> = list
                .split(',')
                .map(|o| o.trim().trim_end_matches('/').to_owned())
                .collect();
            for origin in &origins {
                if !(origin.starts_with("http://") || origin.starts_with("https://"))
                    || origin.contains(char::is_whitespace)
                {
                    bail!(
                        "cors_origins: {origin:?} is not an origin such as https://app.example.com"
                    );
                }
            }
            CorsOrigins::List(origins)
        }
    };
    let history = positive(layer.history, "history")?;
    let redis_url = layer.redis_url.filter(|u| !u.is_empty());
    let store = if let Some(url) = redis_url {
        if !(url.starts_with("redis://")
            || url.starts_with("rediss://")
            || url.starts_with("unix://"))
        {
            bail!("redis_url: {url:?} is not a redis:// URL");
        }
        if layer.retain.as_ref().is_some_and(|r| !r.is_empty()) {
            bail!(
                "retain: retention rules are not supported in cluster mode (redis_url): \
                 the cluster keeps one stream of `history` events for every topic"
            );
        }
        StoreChoice::Redis { url, history }
    } else if required(layer.memory, "memory")? {
        let classes = retention_classes(layer.retain, &Retention::events(history), true)?;
        StoreChoice::Memory { history, classes }
    } else {
        let sync = match required(layer.sync, "sync")?.as_str() {
            "always" => SyncMode::Always,
            "batch" => SyncMode::default(),
            "never" => SyncMode::Never,
            other => bail!("sync: {other:?} is not one of always, batch, never"),
        };
        let limit = |v: Option<u64>, key| required(v, key).map(|n| (n > 0).then_some(n));
        let retention = Retention {
            max_events: limit(layer.retain_events, "retain_events")?,
            max_age: limit(layer.retain_age, "retain_age")?.map(Duration::from_secs),
            max_bytes: limit(layer.retain_bytes, "retain_bytes")?,
        };
        let classes = retention_classes(layer.retain, &retention, false)?;
        StoreChoice::Log {
            dir: required(layer.data_dir, "data_dir")?,
            sync,
            retention,
            segment_bytes: positive(layer.segment_bytes, "segment_bytes")?,
            classes,
        }
    };
    let public_dir = layer.public_dir.filter(|d| !d.as_os_str().is_empty());
    if let Some(dir) = &public_dir {
        if !dir.is_dir() {
            bail!("public_dir: {} is not a directory", dir.display());
        }
    }
    let tls = tls(layer.tls_cert, layer.tls_key)?;
    let routes = Routes::compile(&layer.route.unwrap_or_default()).map_err(anyhow::Error::msg)?;
    let hub = Config {
        listen,
        heartbeat: Duration::from_secs(positive(layer.heartbeat, "heartbeat")?),
        retry: Duration::from_millis(required(layer.retry, "retry")?),
        max_payload: usize::try_from(positive(layer.max_payload, "max_payload")?)?,
        cors_origins,
        history,
        demo: required(layer.demo, "demo")?,
        public_dir,
        max_connections: usize::try_from(positive(layer.max_connections, "max_connections")?)?,
        max_topics: usize::try_from(positive(layer.max_topics, "max_topics")?)?,
        max_hub_topics: usize::try_from(positive(layer.max_hub_topics, "max_hub_topics")?)?,
        socket_send_buffer: usize::try_from(required(
            layer.socket_send_buffer,
            "socket_send_buffer",
        )?)?,
        max_connections_per_ip: usize::try_from(required(
            layer.max_connections_per_ip,
            "max_connections_per_ip",
        )?)?,
        max_header_bytes: usize::try_from(positive(layer.max_header_bytes, "max_header_bytes")?)?,
        head_timeout: Duration::from_secs(positive(layer.head_timeout, "head_timeout")?),
        publish_rate: required(layer.publish_rate, "publish_rate")?,
        publish_burst: required(layer.publish_burst, "publish_burst")?,
        subscriber_buffer: usize::try_from(positive(
            layer.subscriber_buffer,
            "subscriber_buffer",
        )?)?,
        shutdown_grace: Duration::from_secs(required(layer.shutdown_grace, "shutdown_grace")?),
        auth: auth.auth,
        mercure_dialect: auth.dialect,
        mercure_issuer: auth.issuer,
        mercure_audience: auth.audience,
        mercure_subscriptions: auth.subscriptions,
        stream_lifetime: auth.stream_lifetime,
        tls,
        routes,
    };
    let listen_backlog = u32::try_from(positive(layer.listen_backlog, "listen_backlog")?)
        .map_err(|_| anyhow::anyhow!("listen_backlog: at most {}", u32::MAX))?;
    let json_logs = match required(layer.log_format, "log_format")?.as_str() {
        "text" => false,
        "json" => true,
        other => bail!("log_format: {other:?} is not one of text, json"),
    };
    let mut bridges = Vec::new();
    for (i, spec) in layer.bridge.unwrap_or_default().iter().enumerate() {
        let bridge = spec.validate().map_err(|e| {
            let name = spec.name.as_deref().unwrap_or(spec.kind.as_str());
            anyhow::anyhow!("bridge {} ({name:?}): {e}", i + 1)
        })?;
        if bridges
            .iter()
            .any(|b: &ssehub_bridge::Bridge| b.name == bridge.name)
        {
            bail!(
                "bridge {}: another bridge is named {:?} (set name)",
                i + 1,
                bridge.name
            );
        }
        bridges.push(bridge);
    }
    Ok(Settings {
        hub,
        store,
        listen_backlog,
        json_logs,
        bridges,
    })
}

/// Reads and checks the certificate and key: both or neither.
fn tls(cert: Option<PathBuf>, key: Option<PathBuf>) -> anyhow::Result<Option<TlsConfig>> {
    let cert = cert.filter(|p| !p.as_os_str().is_empty());
    let key = key.filter(|p| !p.as_os_str().is_empty());
    let (cert, key) = match (cert, key) {
        (None, None) => return Ok(None),
        (Some(_), None) => bail!("tls_key: no value (tls_cert needs its private key)"),
        (None, Some(_)) => bail!("tls_cert: no value (tls_key needs its certificate)"),
        (Some(cert), Some(key)) => (cert, key),
    };
    let cert_pem = std::fs::read(&cert)
        .with_context(|| format!("tls_cert: cannot read {}", cert.display()))?;
    let key_pem =
        std::fs::read(&key).with_context(|| format!("tls_key: cannot read {}", key.display()))?;
    match TlsConfig::from_pem(&cert_pem, &key_pem) {
        Ok(config) => Ok(Some(config)),
        Err(TlsError::Cert(why)) => bail!("tls_cert: {}: {why}", cert.display()),
        Err(TlsError::Key(why)) => bail!("tls_key: {}: {why}", key.display()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_parse_and_match_the_hub_defaults() {
        let settings = resolve(Layer::default(), None).unwrap();
        let hub = Config::default();
        assert_eq!(settings.hub.listen, hub.listen);
        assert_eq!(settings.hub.heartbeat, hub.heartbeat);
        assert_eq!(settings.hub.retry, hub.retry);
        assert_eq!(settings.hub.max_payload, hub.max_payload);
        assert_eq!(settings.hub.subscriber_buffer, hub.subscriber_buffer);
        assert_eq!(settings.hub.head_timeout, hub.head_timeout);
        assert_eq!(settings.hub.publish_rate, hub.publish_rate);
        assert_eq!(settings.hub.publish_burst, hub.publish_burst);
        assert!(
            matches!(settings.store, StoreChoice::Log { ref dir, sync: SyncMode::Batch { .. }, .. } if dir.as_os_str() == "./ssehub-data")
        );
    }

    #[test]
    fn route_tables_are_read_from_the_file_and_checked() {
        let file = parse_file(
            r#"
memory = true

[[route]]
path = "/events/:userId"
topics = ["user/{userId}"]
welcome = [{ data = "Connected" }]

[[route]]
path = "/broadcast"
method = "POST"
topics = ["broadcast"]
data = "{message}"
reply = '{"sent": {delivered}}'
"#,
            "test",
        )
        .unwrap();
        let settings = resolve(Layer::default(), Some(file)).unwrap();
        let paths: Vec<&str> = settings
            .hub
            .routes
            .list
            .iter()
            .map(|r| r.axum_path.as_str())
            .collect();
        assert_eq!(paths, ["/events/{p1}", "/broadcast"]);

        let bad = parse_file(
            "[[route]]\npath = \"/notify\"\nmethod = \"POST\"\ntopics = [\"n\"]\nreply = \"{nope}\"\n",
            "test",
        )
        .unwrap();
        let error = resolve(Layer::default(), Some(bad))
            .unwrap_err()
            .to_string();
        assert!(
            error.starts_with("route 1 (\"/notify\"): reply:"),
            "{error}"
        );
        let unknown = parse_file(
            "[[route]]\npath = \"/a\"\ntopics = [\"a\"]\ntopic = \"b\"\n",
            "test",
        );
        assert!(format!("{:#}", unknown.unwrap_err()).contains("unknown field `topic`"));
    }

    #[test]
    fn flags_beat_file_beats_defaults() {
        let file = parse_file("heartbeat = 7\nretry = 100\nmemory = true", "test").unwrap();
        let flags = Layer {
            retry: Some(50),
            ..Layer::default()
        };
        let settings = resolve(flags, Some(file)).unwrap();
        assert_eq!(settings.hub.heartbeat, Duration::from_secs(7));
        assert_eq!(settings.hub.retry, Duration::from_millis(50));
        assert_eq!(
            settings.store,
            StoreChoice::Memory {
                history: 10_000,
                classes: Vec::new()
            }
        );
    }

    #[test]
    fn bad_values_name_their_key() {
        let cases = [
            (
                Layer {
                    listen: Some("nowhere".into()),
                    ..Layer::default()
                },
                "listen",
            ),
            (
                Layer {
                    heartbeat: Some(0),
                    ..Layer::default()
                },
                "heartbeat",
            ),
            (
                Layer {
                    head_timeout: Some(0),
                    ..Layer::default()
                },
                "head_timeout",
            ),
            (
                Layer {
                    cors_origins: Some("example.com".into()),
                    ..Layer::default()
                },
                "cors_origins",
            ),
            (
                Layer {
                    public_dir: Some("/no/such/dir".into()),
                    ..Layer::default()
                },
                "public_dir",
            ),
        ];
        for (layer, key) in cases {
            let err = resolve(layer, None).unwrap_err().to_string();
            assert!(err.starts_with(key), "{err}");
        }
        let err = format!(
            "{:#}",
            parse_file("heartbeat = \"x\"", "f.toml").unwrap_err()
        );
        assert!(err.contains("heartbeat") && err.contains("f.toml"), "{err}");
        let err = format!("{:#}", parse_file("hartbeat = 1", "f.toml").unwrap_err());
        assert!(err.contains("hartbeat"), "{err}");
    }

    #[test]
    fn bad_tls_settings_name_their_key() {
        let dir = std::env::temp_dir().join(format!("ssehub-tls-test-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let junk = dir.join("junk.pem");
        std::fs::write(&junk, "not a PEM file").unwrap();
        let layer = |cert: Option<&std::path::Path>, key: Option<&std::path::Path>| Layer {
            tls_cert: cert.map(Into::into),
            tls_key: key.map(Into::into),
            ..Layer::default()
        };
        let missing = dir.join("missing.pem");
        let cases = [
            (layer(Some(&junk), None), "tls_key"),
            (layer(None, Some(&junk)), "tls_cert"),
            (layer(Some(&missing), Some(&junk)), "tls_cert"),
            (layer(Some(&junk), Some(&missing)), "tls_key"),
            (layer(Some(&junk), Some(&junk)), "tls_cert"),
        ];
        for (layer, key) in cases {
            let err = resolve(layer, None).unwrap_err().to_string();
            assert!(err.starts_with(key), "{err}");
        }
        let _ = std::fs::remove_dir_all(&dir);
    }
}

#[cfg(test)]
mod retain_tests {
    use super::*;

    fn classes(settings: &Settings) -> Vec<(String, Retention)> {
        settings
            .store
            .classes()
            .iter()
            .map(|(p, r)| (p.as_str().to_owned(), r.clone()))
            .collect()
    }

    #[test]
    fn rules_from_the_file_inherit_left_out_limits() {
        let file = parse_file(
            "retain_events = 500\n\
             [[retain]]\ntopics = \"prices/*\"\nevents = 1000\nage = 60\n\n\
             [[retain]]\ntopics = \"chat/**\"\nage = 2592000\nbytes = 0\n",
            "test",
        )
        .unwrap();
        let settings = resolve(Layer::default(), Some(file)).unwrap();
        let week = Some(Duration::from_secs(604_800));
        assert_eq!(
            classes(&settings),
            [
                (
                    "prices/*".to_owned(),
                    Retention {
                        max_events: Some(1000),
                        max_age: Some(Duration::from_secs(60)),
                        max_bytes: Some(1 << 30),
                    }
                ),
                (
                    "chat/**".to_owned(),
                    Retention {
                        max_events: Some(500),
                        max_age: Some(Duration::from_secs(2_592_000)),
                        max_bytes: None,
                    }
                ),
            ]
        );
        assert!(
            matches!(&settings.store, StoreChoice::Log { retention, .. } if retention.max_age == week)
        );
        let printed = print_retain(settings.store.classes());
        assert!(printed.starts_with("[[retain]]\ntopics = \"prices/*\"\nevents = 1000\nage = 60\n"));
        let reparsed = parse_file(&printed, "printed").unwrap();
        assert_eq!(reparsed.retain.map(|r| r.len()), Some(2));
    }

    #[test]
    fn flag_rules_replace_the_file_rules() {
        let file = parse_file("[[retain]]\ntopics = \"a\"\nevents = 1\n", "test").unwrap();
        let flags = Layer {
            retain: Some(vec![
                parse_retain_rule("x/*=events:10,age:5").unwrap(),
                parse_retain_rule("https://e.com/?q=1=bytes:0, events:3").unwrap(),
            ]),
            memory: Some(true),
            history: Some(100),
            ..Layer::default()
        };
        let settings = resolve(flags, Some(file)).unwrap();
        let got = classes(&settings);
        assert_eq!(got.len(), 2);
        assert_eq!(got[0].0, "x/*");
        assert_eq!(got[0].1.max_events, Some(10));
        assert_eq!(got[0].1.max_age, Some(Duration::from_secs(5)));
        assert_eq!(got[1].0, "https://e.com/?q=1");
        assert_eq!(
            got[1].1,
            Retention::events(3),
            "memory mode: no age or bytes"
        );
    }

    #[test]
    fn bad_rules_name_the_key() {
        for bad in ["prices", "=events:1", "a=weeks:1", "a=events:x", "a=events"] {
            let rule = parse_retain_rule(bad).and_then(|r| {
                TopicPattern::new(&r.topics).map_err(|e| e.to_string())?;
                Ok(r)
            });
            assert!(rule.is_err(), "{bad:?}");
        }
        let rule = |text: &str| parse_retain_rule(text).unwrap();
        let cases = [
            (vec![rule("a/**/b=events:1")], false),
            (vec![rule("a=events:1"), rule("a=age:2")], false),
            (vec![rule("a=")], false),
            (vec![rule("a=events:0")], true),
        ];
        for (rules, memory) in cases {
            let layer = Layer {
                retain: Some(rules),
                memory: Some(memory),
                ..Layer::default()
            };
            let err = resolve(layer, None).unwrap_err().to_string();
            assert!(err.starts_with("retain: rule"), "{err}");
        }
        let cluster = Layer {
            retain: Some(vec![rule("a=events:1")]),
            redis_url: Some("redis://127.0.0.1:6379".into()),
            ..Layer::default()
        };
        let err = resolve(cluster, None).unwrap_err().to_string();
        assert!(
            err.starts_with("retain:") && err.contains("redis_url"),
            "{err}"
        );
        let err = format!(
            "{:#}",
            parse_file("[[retain]]\ntopics = \"a\"\nevent = 1\n", "f.toml").unwrap_err()
        );
        assert!(err.contains("event") && err.contains("f.toml"), "{err}");
    }
}
