//! Configuration layering: flags > `SSEHUB_*` environment > TOML file > built-in defaults
//! (the commented `default.toml`, which `ssehub print-config` prints), then validation into
//! the hub's typed [`ssehub::Config`]. A bad value is refused with a message naming its key.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use anyhow::{bail, Context};
use ssehub::{Config, CorsOrigins, Routes, TlsConfig, TlsError};
use ssehub_core::{Retention, TopicPattern};
use ssehub_store_log::SyncMode;

mod layer;
mod retain;

use layer::under;
pub use layer::{parse_file, with_mercure_aliases, Layer};
pub use retain::print_retain;
use retain::retention_classes;

/// The commented defaults, compiled in.
pub const DEFAULT_TOML: &str = include_str!("../default.toml");

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
    /// Cluster mode: the history is a NATS JetStream stream shared by every node.
    Nats { url: String, history: u64 },
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
            StoreChoice::Redis { .. } | StoreChoice::Nats { .. } => &[],
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

/// A cluster engine's URL, by kind.
enum Engine {
    Redis(String),
    Nats(String),
}

/// The cluster engine `engine` or `redis_url` names, with the key that named it; `None` for
/// a single hub. `--engine redis://...` and `--redis-url` are the same setting.
fn engine(
    engine: Option<String>,
    redis_url: Option<String>,
) -> anyhow::Result<Option<(&'static str, Engine)>> {
    let engine = engine.filter(|u| !u.is_empty());
    let redis_url = redis_url.filter(|u| !u.is_empty());
    let is_redis = |url: &str| {
        url.starts_with("redis://") || url.starts_with("rediss://") || url.starts_with("unix://")
    };
    match (engine, redis_url) {
        (Some(engine), Some(redis_url)) if engine != redis_url => bail!(
            "engine: {engine:?} and redis_url {redis_url:?} name two engines; set one of them"
        ),
        (Some(url), _) if is_redis(&url) => Ok(Some(("engine", Engine::Redis(url)))),
        (Some(url), _) if url.starts_with("nats://") || url.starts_with("tls://") => {
            Ok(Some(("engine", Engine::Nats(url))))
        }
        (Some(url), _) => {
            bail!("engine: {url:?} is not a nats:// or redis:// URL")
        }
        (None, Some(url)) if is_redis(&url) => Ok(Some(("redis_url", Engine::Redis(url)))),
        (None, Some(url)) => bail!("redis_url: {url:?} is not a redis:// URL"),
        (None, None) => Ok(None),
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
    let store = if let Some((key, engine)) = engine(layer.engine, layer.redis_url)? {
        if layer.retain.as_ref().is_some_and(|r| !r.is_empty()) {
            bail!(
                "retain: retention rules are not supported in cluster mode ({key}): \
                 the cluster keeps one stream of `history` events for every topic"
            );
        }
        match engine {
            Engine::Redis(url) => StoreChoice::Redis { url, history },
            Engine::Nats(url) => StoreChoice::Nats { url, history },
        }
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
    fn the_engine_key_names_nats_or_redis_and_redis_url_is_its_synonym() {
        let store = |engine: Option<&str>, redis_url: Option<&str>| {
            let layer = Layer {
                engine: engine.map(Into::into),
                redis_url: redis_url.map(Into::into),
                ..Layer::default()
            };
            resolve(layer, None).map(|s| s.store)
        };
        let nats = "nats://127.0.0.1:4222";
        let redis = "redis://127.0.0.1:6379";
        let history = 10_000;
        let table = [
            (
                Some(nats),
                None,
                StoreChoice::Nats {
                    url: nats.into(),
                    history,
                },
            ),
            (
                Some(redis),
                None,
                StoreChoice::Redis {
                    url: redis.into(),
                    history,
                },
            ),
            (
                None,
                Some(redis),
                StoreChoice::Redis {
                    url: redis.into(),
                    history,
                },
            ),
            (
                Some(redis),
                Some(redis),
                StoreChoice::Redis {
                    url: redis.into(),
                    history,
                },
            ),
        ];
        for (engine, redis_url, want) in table {
            assert_eq!(
                store(engine, redis_url).unwrap(),
                want,
                "{engine:?} {redis_url:?}"
            );
        }
        let refused = [
            (Some("kafka://x:9092"), None, "engine: "),
            (None, Some(nats), "redis_url: "),
            (Some(nats), Some(redis), "engine: "),
        ];
        for (engine, redis_url, key) in refused {
            let err = store(engine, redis_url).unwrap_err().to_string();
            assert!(err.starts_with(key), "{engine:?} {redis_url:?}: {err}");
        }
        let rules = parse_file(
            "engine = \"nats://127.0.0.1:4222\"\n[[retain]]\ntopics = \"a\"\nevents = 1\n",
            "f.toml",
        )
        .unwrap();
        let err = resolve(Layer::default(), Some(rules))
            .unwrap_err()
            .to_string();
        assert!(
            err.starts_with("retain:") && err.contains("(engine)"),
            "{err}"
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
