//! Authentication and authorization: what a request's token grants, for publishers and
//! subscribers, for the native API and the Mercure endpoint alike.
//!
//! - Keys: the signature and registered claims are checked by [`Verifier`] (`keys.rs`).
//! - Grants: the Mercure claim (`mercure: {publish, subscribe, payload}`, also under
//!   `https://mercure.rocks/`) or, in dialect 1, `authorization_details`. Each entry is a
//!   topic selector: `*`, an exact topic, or a URI template (dialect 0) / URL pattern
//!   (dialect 1).
//! - Rules: a missing, invalid or expired token is a 401 (never a silent downgrade to
//!   anonymous); a valid token that does not grant what is asked is a 403. Without a
//!   publisher key, publishing is open to loopback clients only. Without a subscriber key,
//!   anyone may subscribe and private events reach no one.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use axum::http::{header, HeaderMap, StatusCode};
use serde_json::Value;
use ssehub_core::Topic;

use crate::config::{Config, CorsOrigins, Dialect};
use crate::hub::Hub;
use crate::keys::{ClaimRules, Verifier};
use crate::selection::{PrivateAccess, TopicMatcher};
use crate::selector::{self, MatchKind};

/// Milliseconds since the Unix epoch.
pub fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

/// Verifies `token`, whose `aud` must contain `audience` when there is one.
pub fn verify_for(
    verifier: &Verifier,
    token: &str,
    config: &Config,
    audience: Option<&str>,
) -> Result<Grants, AuthError> {
    let rules = ClaimRules {
        access_token: config.mercure_dialect == Dialect::V1,
        issuer: config.mercure_issuer.as_deref(),
        audience,
    };
    let claims = verifier.claims(token, &rules).map_err(AuthError::invalid)?;
    // URL patterns resolve relative topics against the hub's origin.
    let base = audience.and_then(|aud| aud.strip_suffix(selector::HUB_PATH));
    Grants::from_claims(&claims, config.mercure_dialect, base)
}

/// What a token allows.
#[derive(Clone, Debug, Default)]
pub struct Grants {
    /// Topics its bearer may publish to.
    pub publish: Vec<Arc<dyn TopicMatcher>>,
    /// Private topics its bearer may receive.
    pub subscribe: Vec<Arc<dyn TopicMatcher>>,
    /// Shown in the subscriber's subscription events and API answers.
    pub payload: Option<Value>,
    /// The token's `exp`, in ms since the epoch.
    pub expires_ms: Option<u64>,
}

impl Grants {
    fn from_claims(
        claims: &Value,
        dialect: Dialect,
        base: Option<&str>,
    ) -> Result<Grants, AuthError> {
        let mut grants = Grants {
            expires_ms: claims
                .get("exp")
                .and_then(Value::as_f64)
                .map(|s| (s * 1000.0) as u64),
            ..Grants::default()
        };
        let details = claims.get("authorization_details");
        if dialect == Dialect::V1 && details.is_some() {
            grants.read_details(details.unwrap_or(&Value::Null), base)?;
            return Ok(grants);
        }
        let Some(claim) = claims
            .get("mercure")
            .or_else(|| claims.get("https://mercure.rocks/"))
        else {
            return Ok(grants);
        };
        let Value::Object(claim) = claim else {
            return Err(AuthError::invalid("the mercure claim must be an object"));
        };
        for (name, into) in [
            ("publish", &mut grants.publish),
            ("subscribe", &mut grants.subscribe),
        ] {
            match claim.get(name) {
                None | Some(Value::Null) => {}
                Some(Value::Array(list)) => {
                    for item in list {
                        let Value::String(selector) = item else {
                            return Err(AuthError::invalid(format!(
                                "mercure.{name} must be a list of strings"
                            )));
                        };
                        into.push(
                            selector::matcher(selector, MatchKind::Topic)
                                .map_err(AuthError::invalid)?,
                        );
                    }
                }
                Some(_) => {
                    return Err(AuthError::invalid(format!(
                        "mercure.{name} must be a list of strings"
                    )))
                }
            }
        }
        grants.payload = claim.get("payload").cloned();
        Ok(grants)
    }

    /// Dialect 1: RFC 9396 `authorization_details` of type
    /// `https://mercure.rocks/authorization-detail`. Any malformed Mercure detail rejects
    /// the whole token; unknown actions are ignored.
    fn read_details(&mut self, details: &Value, base: Option<&str>) -> Result<(), AuthError> {
        let bad = |why: &str| AuthError::invalid(format!("authorization_details: {why}"));
        let Value::Array(details) = details else {
            return Err(bad("must be a list"));
        };
        for detail in details {
            if detail.get("type").and_then(Value::as_str)
                != Some("https://mercure.rocks/authorization-detail")
            {
                continue;
            }
            let actions: Vec<&str> = match detail.get("actions") {
                Some(Value::Array(a)) => a.iter().filter_map(Value::as_str).collect(),
                _ => return Err(bad("actions must be a list")),
            };
            let Some(Value::Array(topics)) = detail.get("topics") else {
                return Err(bad("topics must be a list"));
            };
            let mut matchers = Vec::new();
            for topic in topics {
                let Some(value) = topic.get("match").and_then(Value::as_str) else {
                    return Err(bad("each topic needs a match string"));
                };
                let kind = match topic.get("match_type").and_then(Value::as_str) {
                    None | Some("exact") => MatchKind::Exact,
                    Some("urlpattern") => MatchKind::UrlPattern,
                    Some(other) => return Err(bad(&format!("unknown match_type {other:?}"))),
                };
                matchers.push(selector::matcher_at(value, kind, base).map_err(|e| bad(&e))?);
            }
            if actions.contains(&"publish") {
                self.publish.extend(matchers.iter().cloned());
            }
            if actions.contains(&"subscribe") {
                if self.payload.is_none() {
                    self.payload = detail.get("payload").cloned();
                }
                self.subscribe.extend(matchers);
            }
        }
        Ok(())
    }

    /// Whether these grants let their bearer publish to `topic`.
    pub fn may_publish(&self, topic: &str) -> bool {
        self.publish.iter().any(|m| m.matches(topic))
    }

    /// Whether these grants let their bearer receive private events on `topic`.
    pub fn may_subscribe(&self, topic: &str) -> bool {
        self.subscribe.iter().any(|m| m.matches(topic))
    }

    /// Private access for a subscriber holding these grants.
    pub fn private_access(&self) -> PrivateAccess {
        if self.subscribe.is_empty() {
            PrivateAccess::Nothing
        } else {
            PrivateAccess::Matching(self.subscribe.clone())
        }
    }
}

/// Why a request was refused.
#[derive(Debug, Clone)]
pub struct AuthError {
    pub status: StatusCode,
    pub message: String,
    /// The RFC 6750 error code: `invalid_token`, `insufficient_scope`, or none for a
    /// request without a token.
    pub code: Option<&'static str>,
}

impl AuthError {
    pub fn invalid(message: impl Into<String>) -> AuthError {
        AuthError {
            status: StatusCode::UNAUTHORIZED,
            message: message.into(),
            code: Some("invalid_token"),
        }
    }

    pub fn missing(message: impl Into<String>) -> AuthError {
        AuthError {
            status: StatusCode::UNAUTHORIZED,
            message: message.into(),
            code: None,
        }
    }

    pub fn forbidden(message: impl Into<String>) -> AuthError {
        AuthError {
            status: StatusCode::FORBIDDEN,
            message: message.into(),
            code: Some("insufficient_scope"),
        }
    }
}

/// How a token reached the hub.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Via {
    Header,
    Cookie,
    Query,
}

/// The cookie that carries a token in `dialect`.
pub fn cookie_name(dialect: Dialect) -> &'static str {
    match dialect {
        Dialect::V0 => "mercureAuthorization",
        Dialect::V1 => "__Secure-mercure_access_token",
    }
}

/// Finds the request's token: `Authorization: Bearer` (wins), then the cookie, then the
/// query parameter the caller found (`authorization=`, dialect 0 only).
pub fn find_token(
    headers: &HeaderMap,
    dialect: Dialect,
    query: Option<&str>,
) -> Option<(String, Via)> {
    for value in headers.get_all(header::AUTHORIZATION) {
        let Ok(value) = value.to_str() else { continue };
        let value = value.trim();
        if value.len() > 7 && value[..7].eq_ignore_ascii_case("bearer ") {
            return Some((value[7..].trim().to_owned(), Via::Header));
        }
    }
    let name = cookie_name(dialect);
    for value in headers.get_all(header::COOKIE) {
        let Ok(value) = value.to_str() else { continue };
        for pair in value.split(';') {
            if let Some((n, v)) = pair.trim().split_once('=') {
                if n.trim() == name && !v.trim().is_empty() {
                    return Some((v.trim().trim_matches('"').to_owned(), Via::Cookie));
                }
            }
        }
    }
    query
        .filter(|q| !q.is_empty())
        .map(|q| (q.to_owned(), Via::Query))
}

/// A subscriber's grants: `Ok(None)` for an anonymous subscriber (public events only).
pub fn subscriber(
    hub: &Hub,
    headers: &HeaderMap,
    query_token: Option<&str>,
) -> Result<Option<Grants>, AuthError> {
    let Some(verifier) = &hub.config.auth.subscriber else {
        return Ok(None);
    };
    match find_token(headers, hub.config.mercure_dialect, query_token) {
        Some((token, _)) => verify_for(
            verifier,
            &token,
            &hub.config,
            audience(&hub.config, headers).as_deref(),
        )
        .map(Some),
        None if hub.config.auth.anonymous => Ok(None),
        None => Err(AuthError::missing(
            "a subscriber token is required (Authorization: Bearer, or the cookie)",
        )),
    }
}

/// A publisher's grants: `Ok(None)` when publishing is open (no publisher key and a
/// loopback client).
pub fn publisher(
    hub: &Hub,
    peer: SocketAddr,
    headers: &HeaderMap,
    query_token: Option<&str>,
) -> Result<Option<Grants>, AuthError> {
    let Some(verifier) = &hub.config.auth.publisher else {
        if is_loopback(peer) {
            return Ok(None);
        }
        return Err(AuthError {
            status: StatusCode::FORBIDDEN,
            message: "publishing is open to loopback clients only: configure a publisher key \
                      (publisher_jwt_key) to publish from elsewhere"
                .into(),
            code: None,
        });
    };
    let Some((token, via)) = find_token(headers, hub.config.mercure_dialect, query_token) else {
        return Err(AuthError::missing(
            "a publisher token is required (Authorization: Bearer, or the cookie)",
        ));
    };
    let grants = verify_for(
        verifier,
        &token,
        &hub.config,
        audience(&hub.config, headers).as_deref(),
    )?;
    if via == Via::Cookie {
        check_origin(&hub.config, headers)?;
    }
    Ok(Some(grants))
}

/// The audience a token must carry: `--mercure-audience`, or in dialect 1 the hub's
/// resource identifier as this request addresses it (`scheme://host/.well-known/mercure`).
pub fn audience(config: &Config, headers: &HeaderMap) -> Option<String> {
    match (&config.mercure_audience, config.mercure_dialect) {
        (Some(aud), _) => Some(aud.clone()),
        (None, Dialect::V1) => selector::resource_identifier(headers),
        (None, Dialect::V0) => None,
    }
}

fn is_loopback(peer: SocketAddr) -> bool {
    match peer.ip() {
        std::net::IpAddr::V4(ip) => ip.is_loopback(),
        std::net::IpAddr::V6(ip) => {
            ip.is_loopback() || ip.to_ipv4_mapped().is_some_and(|v4| v4.is_loopback())
        }
    }
}

/// CSRF guard for cookie-authenticated publishing: the request's `Origin` (or the origin
/// of its `Referer`) must be the hub's own origin or one of the configured CORS origins.
fn check_origin(config: &Config, headers: &HeaderMap) -> Result<(), AuthError> {
    let text = |name| headers.get(name).and_then(|v| v.to_str().ok());
    let origin = match text(header::ORIGIN).filter(|o| *o != "null") {
        Some(origin) => origin.trim_end_matches('/').to_owned(),
        None => match text(header::REFERER).and_then(origin_of) {
            Some(origin) => origin,
            None => {
                return Err(AuthError::forbidden(
                    "a cookie-authenticated publish needs an Origin or Referer header",
                ))
            }
        },
    };
    let own = text(header::HOST).is_some_and(|host| {
        origin
            .split_once("://")
            .is_some_and(|(_, authority)| authority.eq_ignore_ascii_case(host))
    });
    let listed = matches!(&config.cors_origins, CorsOrigins::List(list) if list.contains(&origin));
    if own || listed {
        Ok(())
    } else {
        Err(AuthError::forbidden(format!(
            "origin {origin} may not publish with a cookie (add it to cors_origins)"
        )))
    }
}

/// `scheme://authority` of a URL.
fn origin_of(url: &str) -> Option<String> {
    let (scheme, rest) = url.split_once("://")?;
    let authority = rest.split(['/', '?', '#']).next()?;
    (!authority.is_empty()).then(|| format!("{scheme}://{authority}"))
}

/// Checks that `grants` (None: open publishing) allow publishing to every topic.
pub fn check_publish(grants: Option<&Grants>, topics: &[Topic]) -> Result<(), AuthError> {
    let Some(grants) = grants else { return Ok(()) };
    match topics.iter().find(|t| !grants.may_publish(t.as_str())) {
        None => Ok(()),
        Some(t) => Err(AuthError::forbidden(format!(
            "the token does not grant publishing to {:?}",
            t.as_str()
        ))),
    }
}

/// When a stream with these grants must end: the token's `exp`, or sooner the configured
/// stream lifetime (jittered to 80-100 % so streams opened together do not end together).
pub fn deadline(config: &Config, grants: Option<&Grants>) -> Option<u64> {
    let lifetime = config.stream_lifetime.map(|l| {
        let ms = l.as_millis() as u64;
        now_ms() + ms - fastrand::u64(0..=ms / 5)
    });
    let exp = grants.and_then(|g| g.expires_ms);
    match (lifetime, exp) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, b) => a.or(b),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::keys::{parse_algorithms, KeyMaterial, DEFAULT_ALGORITHMS};
    use jsonwebtoken::{encode, Algorithm, EncodingKey, Header};

    fn config() -> Config {
        Config::default()
    }

    /// Verifies `token` with the configured audience and reads its grants.
    fn verify(verifier: &Verifier, token: &str, config: &Config) -> Result<Grants, AuthError> {
        verify_for(verifier, token, config, config.mercure_audience.as_deref())
    }

    fn token(claims: Value, secret: &str, alg: Algorithm) -> String {
        encode(
            &Header::new(alg),
            &claims,
            &EncodingKey::from_secret(secret.as_bytes()),
        )
        .unwrap()
    }

    #[test]
    fn secret_keys_verify_hmac_only() {
        let all = parse_algorithms(DEFAULT_ALGORITHMS).unwrap();
        let v = Verifier::new(KeyMaterial::Secret(b"k".to_vec()), &all).unwrap();
        let claims =
            serde_json::json!({"mercure": {"publish": ["*"], "subscribe": ["https://e/{id}"]}});
        for alg in [Algorithm::HS256, Algorithm::HS384, Algorithm::HS512] {
            let g = verify(&v, &token(claims.clone(), "k", alg), &config()).unwrap();
            assert!(g.may_publish("anything"));
            assert!(g.may_subscribe("https://e/1"));
            assert!(!g.may_subscribe("https://f/1"));
        }
        assert!(verify(
            &v,
            &token(claims.clone(), "other", Algorithm::HS256),
            &config()
        )
        .is_err());
        let only384 = Verifier::new(
            KeyMaterial::Secret(b"k".to_vec()),
            &[Algorithm::HS384, Algorithm::RS256],
        )
        .unwrap();
        assert!(verify(
            &only384,
            &token(claims.clone(), "k", Algorithm::HS256),
            &config()
        )
        .is_err());
        assert!(Verifier::new(KeyMaterial::Secret(b"k".to_vec()), &[Algorithm::RS256]).is_err());
    }

    #[test]
    fn expired_and_malformed_tokens_are_invalid() {
        let v = Verifier::new(KeyMaterial::Secret(b"k".to_vec()), &[Algorithm::HS256]).unwrap();
        let old = token(
            serde_json::json!({"exp": 1, "mercure": {}}),
            "k",
            Algorithm::HS256,
        );
        let e = verify(&v, &old, &config()).unwrap_err();
        assert_eq!(e.status, StatusCode::UNAUTHORIZED);
        assert!(e.message.contains("expired"), "{}", e.message);
        assert!(verify(&v, "not.a.token", &config()).is_err());
        let bad_claim = token(
            serde_json::json!({"mercure": {"publish": "x"}}),
            "k",
            Algorithm::HS256,
        );
        assert!(verify(&v, &bad_claim, &config()).is_err());
    }

    #[test]
    fn dialect_1_details_and_typ() {
        let v = Verifier::new(KeyMaterial::Secret(b"k".to_vec()), &[Algorithm::HS256]).unwrap();
        let cfg = Config {
            mercure_dialect: Dialect::V1,
            ..config()
        };
        let claims = serde_json::json!({
            "exp": now_ms() / 1000 + 60,
            "authorization_details": [{
                "type": "https://mercure.rocks/authorization-detail",
                "actions": ["subscribe"],
                "topics": [{"match": "https://e/a"}, {"match": "*"}],
                "payload": {"user": 1}
            }]
        });
        let plain = token(claims.clone(), "k", Algorithm::HS256);
        assert!(verify(&v, &plain, &cfg)
            .unwrap_err()
            .message
            .contains("at+jwt"));
        let mut header = Header::new(Algorithm::HS256);
        header.typ = Some("at+jwt".into());
        let at = encode(&header, &claims, &EncodingKey::from_secret(b"k")).unwrap();
        let g = verify(&v, &at, &cfg).unwrap();
        assert!(g.may_subscribe("https://e/b"));
        assert!(!g.may_publish("https://e/a"));
        assert_eq!(g.payload, Some(serde_json::json!({"user": 1})));
    }

    #[test]
    fn token_transport_precedence() {
        let mut h = HeaderMap::new();
        h.insert(
            header::COOKIE,
            "a=1; mercureAuthorization=fromcookie".parse().unwrap(),
        );
        assert_eq!(
            find_token(&h, Dialect::V0, Some("q")),
            Some(("fromcookie".into(), Via::Cookie))
        );
        h.insert(header::AUTHORIZATION, "bearer fromheader".parse().unwrap());
        assert_eq!(
            find_token(&h, Dialect::V0, None),
            Some(("fromheader".into(), Via::Header))
        );
        assert_eq!(
            find_token(&HeaderMap::new(), Dialect::V0, Some("q")),
            Some(("q".into(), Via::Query))
        );
    }

    #[test]
    fn loopback_peers() {
        for peer in [
            "127.0.0.1:1",
            "127.9.9.9:1",
            "[::1]:1",
            "[::ffff:127.0.0.1]:1",
        ] {
            assert!(is_loopback(peer.parse().unwrap()), "{peer}");
        }
        for peer in [
            "10.0.0.1:1",
            "192.168.1.2:1",
            "[::ffff:10.0.0.1]:1",
            "[2001:db8::1]:1",
        ] {
            assert!(!is_loopback(peer.parse().unwrap()), "{peer}");
        }
    }

    #[test]
    fn origins() {
        assert_eq!(
            origin_of("https://a.b:1/x?y").as_deref(),
            Some("https://a.b:1")
        );
        let mut h = HeaderMap::new();
        h.insert(header::HOST, "hub:8080".parse().unwrap());
        assert!(check_origin(&config(), &h).is_err());
        h.insert(header::REFERER, "http://hub:8080/page".parse().unwrap());
        assert!(check_origin(&config(), &h).is_ok());
        h.insert(header::ORIGIN, "http://evil".parse().unwrap());
        assert!(check_origin(&config(), &h).is_err());
        let listed = Config {
            cors_origins: CorsOrigins::List(vec!["http://evil".into()]),
            ..config()
        };
        assert!(check_origin(&listed, &h).is_ok());
    }
}
