//! The auth and Mercure settings: key loading (secret, PEM file or JWKS file), the
//! algorithm allow-list, the dialect, and the reference Mercure hub's environment variables
//! accepted as aliases (`MERCURE_PUBLISHER_JWT_KEY`, ..., `MERCURE_EXTRA_DIRECTIVES`), so a
//! Mercure deployment can switch by changing the binary.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{anyhow, bail, Context};
use ssehub::{parse_algorithms, AuthConfig, Dialect, JwtAlgorithm, KeyMaterial, Verifier};

use crate::config::Layer;

/// A key setting: a file path (PEM or JWKS, read here) or else an HMAC secret.
pub fn load_key(
    value: Option<String>,
    key: &str,
    algorithms: &[JwtAlgorithm],
) -> anyhow::Result<Option<Arc<Verifier>>> {
    let Some(value) = value.filter(|v| !v.is_empty()) else {
        return Ok(None);
    };
    let path = Path::new(&value);
    let material = if path.is_file() {
        let bytes = std::fs::read(path)
            .with_context(|| format!("{key}: cannot read {}", path.display()))?;
        let start = bytes
            .iter()
            .position(|b| !b.is_ascii_whitespace())
            .unwrap_or(0);
        if bytes[start..].starts_with(b"{") {
            KeyMaterial::Jwks(
                String::from_utf8(bytes)
                    .map_err(|_| anyhow!("{key}: {} is not UTF-8 JSON", path.display()))?,
            )
        } else if bytes.windows(10).any(|w| w == b"-----BEGIN") {
            KeyMaterial::Pem(bytes)
        } else {
            bail!(
                "{key}: {} is neither a PEM public key nor a JWKS document",
                path.display()
            );
        }
    } else if looks_like_path(&value) {
        // A typo in a path must not silently become a guessable HMAC secret.
        bail!("{key}: {value:?} looks like a file path but there is no such file");
    } else {
        KeyMaterial::Secret(value.into_bytes())
    };
    Verifier::new(material, algorithms)
        .map(|v| Some(Arc::new(v)))
        .map_err(|e| anyhow!("{key}: {e}"))
}

fn looks_like_path(value: &str) -> bool {
    let lower = value.to_ascii_lowercase();
    (value.starts_with('/') || value.starts_with("./") || value.starts_with("../"))
        || [".pem", ".json", ".jwks", ".key", ".crt"]
            .iter()
            .any(|ext| lower.ends_with(ext))
}

/// The validated auth part of the hub's config.
pub struct AuthSettings {
    pub auth: AuthConfig,
    pub dialect: Dialect,
    pub issuer: Option<String>,
    pub audience: Option<String>,
    pub subscriptions: bool,
    pub stream_lifetime: Option<Duration>,
}

pub fn validate(layer: &Layer) -> anyhow::Result<AuthSettings> {
    let algorithms_text = layer.jwt_algorithms.clone().unwrap_or_default();
    let algorithms =
        parse_algorithms(&algorithms_text).map_err(|e| anyhow!("jwt_algorithms: {e}"))?;
    let publisher = load_key(
        layer.publisher_jwt_key.clone(),
        "publisher_jwt_key",
        &algorithms,
    )?;
    let subscriber = load_key(
        layer.subscriber_jwt_key.clone(),
        "subscriber_jwt_key",
        &algorithms,
    )?;
    let dialect = match layer.mercure_dialect.unwrap_or(0) {
        0 => Dialect::V0,
        1 => Dialect::V1,
        n => bail!("mercure_dialect: {n} is not 0 (draft-07, the default) or 1 (draft-08)"),
    };
    let text = |v: &Option<String>| v.clone().filter(|s| !s.is_empty());
    Ok(AuthSettings {
        auth: AuthConfig {
            publisher,
            subscriber,
            anonymous: layer.anonymous.unwrap_or(false),
        },
        dialect,
        issuer: text(&layer.mercure_issuer),
        audience: text(&layer.mercure_audience),
        subscriptions: layer.mercure_subscriptions.unwrap_or(false),
        stream_lifetime: match layer.stream_lifetime.unwrap_or(0) {
            0 => None,
            s => Some(Duration::from_secs(s)),
        },
    })
}

/// The reference Mercure hub's environment variables as a layer below the `SSEHUB_*` ones:
/// `MERCURE_PUBLISHER_JWT_KEY`, `MERCURE_SUBSCRIBER_JWT_KEY`, `MERCURE_PUBLISHER_JWT_ALG` and
/// `MERCURE_SUBSCRIBER_JWT_ALG` (together: the allow-list), and from
/// `MERCURE_EXTRA_DIRECTIVES` the directives `anonymous`, `subscriptions`, `cors_origins`,
/// `heartbeat`, `write_timeout` and `protocol_version_compatibility`.
pub fn mercure_aliases(get: impl Fn(&str) -> Option<String>) -> anyhow::Result<Layer> {
    let mut layer = Layer {
        publisher_jwt_key: get("MERCURE_PUBLISHER_JWT_KEY"),
        subscriber_jwt_key: get("MERCURE_SUBSCRIBER_JWT_KEY"),
        ..Layer::default()
    };
    let algs: Vec<String> = ["MERCURE_PUBLISHER_JWT_ALG", "MERCURE_SUBSCRIBER_JWT_ALG"]
        .iter()
        .filter_map(|name| get(name))
        .filter(|a| !a.is_empty())
        .collect();
    if !algs.is_empty() {
        layer.jwt_algorithms = Some(algs.join(","));
    }
    if let Some(directives) = get("MERCURE_EXTRA_DIRECTIVES") {
        for line in directives.lines().map(str::trim).filter(|l| !l.is_empty()) {
            let mut words = line.split_whitespace();
            let name = words.next().unwrap_or("");
            let args: Vec<&str> = words.collect();
            let seconds = |key: &str| -> anyhow::Result<u64> {
                let value = args.first().copied().unwrap_or("");
                let digits = value.trim_end_matches('s');
                digits.parse().map_err(|_| {
                    anyhow!("MERCURE_EXTRA_DIRECTIVES: {key} {value:?} is not a number of seconds such as 40s")
                })
            };
            match name {
                "anonymous" => layer.anonymous = Some(true),
                "subscriptions" => layer.mercure_subscriptions = Some(true),
                "cors_origins" => layer.cors_origins = Some(args.join(",")),
                "heartbeat" => layer.heartbeat = Some(seconds("heartbeat")?),
                "write_timeout" => layer.stream_lifetime = Some(seconds("write_timeout")?),
                "protocol_version_compatibility" => {
                    // 7 (or lower) is the 0.x dialect; 8 and up speak draft-08.
                    let v: u8 = args.first().and_then(|v| v.parse().ok()).unwrap_or(7);
                    layer.mercure_dialect = Some(u8::from(v >= 8));
                }
                other => tracing::warn!(
                    directive = other,
                    "MERCURE_EXTRA_DIRECTIVES: directive not supported by ssehub; ignored"
                ),
            }
        }
    }
    Ok(layer)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn aliases_from_the_reference_hub_environment() {
        let env = |name: &str| {
            match name {
            "MERCURE_PUBLISHER_JWT_KEY" => Some("pub-secret".to_owned()),
            "MERCURE_SUBSCRIBER_JWT_ALG" => Some("RS256".to_owned()),
            "MERCURE_EXTRA_DIRECTIVES" => {
                Some("anonymous\nsubscriptions\ncors_origins https://a.example https://b.example\nheartbeat 40s\nwrite_timeout 600s\ndebug".to_owned())
            }
            _ => None,
        }
        };
        let layer = mercure_aliases(env).unwrap();
        assert_eq!(layer.publisher_jwt_key.as_deref(), Some("pub-secret"));
        assert_eq!(layer.jwt_algorithms.as_deref(), Some("RS256"));
        assert_eq!(layer.anonymous, Some(true));
        assert_eq!(layer.mercure_subscriptions, Some(true));
        assert_eq!(
            layer.cors_origins.as_deref(),
            Some("https://a.example,https://b.example")
        );
        assert_eq!(layer.heartbeat, Some(40));
        assert_eq!(layer.stream_lifetime, Some(600));
        let bad = |name: &str| (name == "MERCURE_EXTRA_DIRECTIVES").then(|| "heartbeat x".into());
        assert!(mercure_aliases(bad).is_err());
    }

    #[test]
    fn keys_name_their_setting() {
        let algs = parse_algorithms(ssehub::DEFAULT_ALGORITHMS).unwrap();
        assert!(load_key(Some("secret".into()), "publisher_jwt_key", &algs)
            .unwrap()
            .is_some());
        assert!(load_key(None, "publisher_jwt_key", &algs)
            .unwrap()
            .is_none());
        let err = load_key(Some("/no/such/key.pem".into()), "subscriber_jwt_key", &algs)
            .unwrap_err()
            .to_string();
        assert!(err.starts_with("subscriber_jwt_key"), "{err}");
        let dir = std::env::temp_dir().join(format!("ssehub-key-{}", std::process::id()));
        std::fs::write(&dir, "{\"keys\": []}").unwrap();
        let err = load_key(Some(dir.display().to_string()), "publisher_jwt_key", &algs)
            .unwrap_err()
            .to_string();
        assert!(err.contains("no usable key"), "{err}");
        std::fs::remove_file(&dir).unwrap();
    }
}
