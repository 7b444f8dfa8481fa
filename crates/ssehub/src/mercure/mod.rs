//! The Mercure protocol at `/.well-known/mercure`, over the same hub as the native API.
//!
//! The core (fan-out, history, replay, ids, private events, token checks) is the hub's;
//! this module holds what differs between Mercure and the native API, and between the two
//! Mercure dialects (selector syntax, claim format, token transport, header names, error
//! shape): see [`Dialect`].
//!
//! Topics. Mercure topics are IRIs or any string; the hub's [`Topic`] refuses whitespace
//! and commas (a comma separates topics in the native `?topic=a,b`). The Mercure side
//! carries those characters percent-encoded (`a,b` is the hub topic `a%2Cb`, a space is
//! `%20`), consistently for publishing, subscribing and grants, so a Mercure topic and its
//! hub topic name the same events. Control characters are refused (400), as the spec says.

mod metadata;
mod publish;
mod subscribe;
mod subscriptions;
mod template;
mod urlpattern;

use std::borrow::Cow;
use std::fmt::Write as _;
use std::sync::Arc;

use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use percent_encoding::{utf8_percent_encode, AsciiSet, NON_ALPHANUMERIC};
use serde_json::{json, Value};
use ssehub_core::{EventName, NewEvent, Topic};

pub use metadata::{metadata, resource_identifier, METADATA_PATH};
pub(crate) use publish::decode as decode_publish;
pub use publish::publish;
pub(crate) use subscribe::open as open_subscription;
pub use subscribe::{subscribe, subscribe_query};
pub use subscriptions::{
    subscription_list, subscriptions_one, subscriptions_three, subscriptions_two,
};

use crate::auth::AuthError;
use crate::config::Dialect;
use crate::hub::Hub;
use crate::selection::{AnyTopic, Exact, SubscriptionHook, TopicMatcher};
pub(crate) use template::UriTemplate;
pub(crate) use urlpattern::UrlPattern;

/// The hub's Mercure path.
pub const HUB_PATH: &str = "/.well-known/mercure";
/// The path of the subscriptions API and the prefix of subscription event topics.
pub const SUBSCRIPTIONS_PATH: &str = "/.well-known/mercure/subscriptions";

/// How a selector or grant string is read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MatchKind {
    /// Dialect 0 `topic`: `*`, a URI template, or an exact topic.
    Topic,
    /// Dialect 1 `match` / `match_exact`: `*` or byte-exact.
    Exact,
    /// Dialect 1 `match_urlpattern`.
    UrlPattern,
}

impl MatchKind {
    /// The `match_type` name of dialect 1.
    pub fn name(self) -> &'static str {
        match self {
            MatchKind::UrlPattern => "urlpattern",
            MatchKind::Topic | MatchKind::Exact => "exact",
        }
    }
}

/// Carries a Mercure topic in the hub's topic space: whitespace and commas
/// percent-encoded. Everything else is left as is.
pub fn escape_topic(topic: &str) -> Cow<'_, str> {
    if !topic.contains(|c: char| c == ',' || c.is_whitespace()) {
        return Cow::Borrowed(topic);
    }
    let mut out = String::with_capacity(topic.len() + 8);
    for c in topic.chars() {
        if c == ',' || c.is_whitespace() {
            let mut buf = [0u8; 4];
            for b in c.encode_utf8(&mut buf).bytes() {
                let _ = write!(out, "%{b:02X}");
            }
        } else {
            out.push(c);
        }
    }
    Cow::Owned(out)
}

/// A Mercure topic as a hub topic; a message for a 400 when it cannot be one.
pub fn to_topic(topic: &str) -> Result<Topic, String> {
    check_text(topic)?;
    Topic::new(&escape_topic(topic)).map_err(|e| format!("invalid topic {topic:?}: {e}"))
}

/// Refuses control characters (C0, C1, DEL) and format characters in topics, selectors
/// and ids.
pub fn check_text(text: &str) -> Result<(), String> {
    match text.chars().find(|c| c.is_control() || is_format_char(*c)) {
        Some(c) => Err(format!("{text:?} contains the control character {c:?}")),
        None => Ok(()),
    }
}

/// Unicode format characters (general category Cf), which the spec refuses in topics,
/// selectors and ids.
fn is_format_char(c: char) -> bool {
    matches!(c,
        '\u{00AD}' | '\u{0600}'..='\u{0605}' | '\u{061C}' | '\u{06DD}' | '\u{070F}'
        | '\u{0890}'..='\u{0891}' | '\u{08E2}' | '\u{180E}' | '\u{200B}'..='\u{200F}'
        | '\u{202A}'..='\u{202E}' | '\u{2060}'..='\u{2064}' | '\u{2066}'..='\u{206F}'
        | '\u{FEFF}' | '\u{FFF9}'..='\u{FFFB}' | '\u{110BD}' | '\u{110CD}'
        | '\u{13430}'..='\u{1343F}' | '\u{1BCA0}'..='\u{1BCA3}' | '\u{1D173}'..='\u{1D17A}'
        | '\u{E0001}' | '\u{E0020}'..='\u{E007F}')
}

#[derive(Debug)]
struct Template(UriTemplate);

impl TopicMatcher for Template {
    fn matches(&self, topic: &str) -> bool {
        self.0.matches(topic)
    }
}

#[derive(Debug)]
struct Pattern(UrlPattern);

impl TopicMatcher for Pattern {
    fn matches(&self, topic: &str) -> bool {
        self.0.matches(topic)
    }
}

/// A selector or grant string as a matcher over hub topics.
pub fn matcher(selector: &str, kind: MatchKind) -> Result<Arc<dyn TopicMatcher>, String> {
    matcher_at(selector, kind, None)
}

/// As [`matcher`]; `base` is the hub's origin, against which URL patterns resolve relative
/// patterns and topics.
pub fn matcher_at(
    selector: &str,
    kind: MatchKind,
    base: Option<&str>,
) -> Result<Arc<dyn TopicMatcher>, String> {
    if selector == "*" {
        return Ok(Arc::new(AnyTopic));
    }
    match kind {
        MatchKind::Topic => match UriTemplate::parse(selector) {
            Ok(Some(t)) => Ok(Arc::new(Template(t))),
            // Not a template (or not a valid one): an exact topic, as the reference hub
            // treats it.
            Ok(None) | Err(_) => Ok(Arc::new(Exact(escape_topic(selector).into_owned()))),
        },
        MatchKind::Exact => Ok(Arc::new(Exact(escape_topic(selector).into_owned()))),
        MatchKind::UrlPattern => Ok(Arc::new(Pattern(UrlPattern::parse(selector, base)?))),
    }
}

/// What the hub knows of a Mercure subscriber, for subscription events and the API.
#[derive(Debug)]
pub struct SubscriberInfo {
    /// `urn:uuid:...`, generated by the hub, unique per connection.
    pub id: String,
    /// The selectors as the subscriber gave them.
    pub selectors: Vec<(MatchKind, String)>,
    pub payload: Option<Value>,
    pub dialect: Dialect,
}

impl SubscriptionHook for SubscriberInfo {
    fn changed(&self, hub: &Arc<Hub>, active: bool) {
        subscription_changed(hub, self, active);
    }

    fn as_any(&self) -> &dyn std::any::Any {
        self
    }
}

/// A random (version 4) UUID as a URN.
pub fn new_urn_uuid() -> String {
    let mut b = [0u8; 16];
    for chunk in b.chunks_mut(8) {
        chunk.copy_from_slice(&fastrand::u64(..).to_le_bytes());
    }
    b[6] = (b[6] & 0x0f) | 0x40;
    b[8] = (b[8] & 0x3f) | 0x80;
    let hex: String = b.iter().map(|x| format!("{x:02x}")).collect();
    format!(
        "urn:uuid:{}-{}-{}-{}-{}",
        &hex[0..8],
        &hex[8..12],
        &hex[12..16],
        &hex[16..20],
        &hex[20..32]
    )
}

/// Path segments of subscription topics: percent-encoded once, unreserved kept.
const SEGMENT: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'.')
    .remove(b'_')
    .remove(b'~');

pub fn segment(s: &str) -> String {
    utf8_percent_encode(s, SEGMENT).to_string()
}

/// The topic (and API path) of one subscription: one per selector of a subscriber.
pub fn subscription_path(info: &SubscriberInfo, kind: MatchKind, selector: &str) -> String {
    match info.dialect {
        Dialect::V0 => format!(
            "{SUBSCRIPTIONS_PATH}/{}/{}",
            segment(selector),
            segment(&info.id)
        ),
        Dialect::V1 => format!(
            "{SUBSCRIPTIONS_PATH}/{}/{}/{}",
            kind.name(),
            segment(selector),
            segment(&info.id)
        ),
    }
}

/// The JSON of one subscription, in the subscriber's dialect.
pub fn subscription_json(
    info: &SubscriberInfo,
    kind: MatchKind,
    selector: &str,
    active: bool,
) -> Value {
    let id = subscription_path(info, kind, selector);
    let mut value = match info.dialect {
        Dialect::V0 => json!({
            "id": id,
            "type": "Subscription",
            "subscriber": info.id,
            "topic": selector,
            "active": active,
        }),
        Dialect::V1 => json!({
            "id": id,
            "type": "subscription",
            "match_type": kind.name(),
            "match": selector,
            "subscriber": info.id,
            "active": active,
        }),
    };
    if let Some(payload) = &info.payload {
        value["payload"] = payload.clone();
    }
    value
}

/// Publishes the subscription events of a subscriber that came or went (when the
/// subscriptions feature is on). Private events, so only subscribers granted the
/// subscription topics see them. Called by the hub after (un)registering the subscriber.
fn subscription_changed(hub: &Arc<Hub>, info: &SubscriberInfo, active: bool) {
    if !hub.config.mercure_subscriptions {
        return;
    }
    let Ok(runtime) = tokio::runtime::Handle::try_current() else {
        return;
    };
    for (kind, selector) in &info.selectors {
        let path = subscription_path(info, *kind, selector);
        let Ok(topic) = Topic::new(&path) else {
            tracing::debug!(path, "subscription topic too long; no subscription event");
            continue;
        };
        let mut data = subscription_json(info, *kind, selector, active);
        if info.dialect == Dialect::V0 {
            data["@context"] = json!("https://mercure.rocks/");
        }
        let mut new = NewEvent::new(vec![topic], data.to_string());
        new.private = true;
        if info.dialect == Dialect::V1 {
            new.name = EventName::new("mercure").ok();
        }
        let hub = hub.clone();
        runtime.spawn(async move {
            if let Err(e) = hub.publish(new).await {
                tracing::warn!(error = %e, "subscription event not published");
            }
        });
    }
}

/// An error answered by the Mercure endpoint: plain text, and for 401/403 a
/// `WWW-Authenticate` challenge (RFC 6750 codes in dialect 1).
#[derive(Debug)]
pub struct MercureError {
    pub status: StatusCode,
    pub message: String,
    pub challenge: Option<String>,
}

impl MercureError {
    pub fn bad_request(message: impl Into<String>) -> MercureError {
        MercureError {
            status: StatusCode::BAD_REQUEST,
            message: message.into(),
            challenge: None,
        }
    }

    pub fn new(status: StatusCode, message: impl Into<String>) -> MercureError {
        MercureError {
            status,
            message: message.into(),
            challenge: None,
        }
    }

    pub fn auth(error: AuthError, dialect: Dialect) -> MercureError {
        let challenge = match (dialect, error.code) {
            (_, None) if error.status == StatusCode::UNAUTHORIZED => Some("Bearer".to_owned()),
            (Dialect::V1, Some(code)) => Some(format!(
                "Bearer error=\"{code}\", error_description=\"{}\"",
                error.message.replace(['"', '\\'], "'")
            )),
            (Dialect::V0, Some(_)) if error.status == StatusCode::UNAUTHORIZED => {
                Some("Bearer error=\"invalid_token\"".to_owned())
            }
            _ => None,
        };
        MercureError {
            status: error.status,
            message: error.message,
            challenge,
        }
    }

    /// Dialect 1: points a 401's challenge at the protected-resource metadata (RFC 9728).
    pub fn with_resource_metadata(
        mut self,
        headers: &axum::http::HeaderMap,
        dialect: Dialect,
    ) -> Self {
        if dialect != Dialect::V1 || self.status != StatusCode::UNAUTHORIZED {
            return self;
        }
        if let Some(url) = metadata::metadata_url(headers) {
            let param = format!("resource_metadata=\"{url}\"");
            self.challenge = Some(match self.challenge.take() {
                Some(c) if c == "Bearer" => format!("Bearer {param}"),
                Some(c) => format!("{c}, {param}"),
                None => format!("Bearer {param}"),
            });
        }
        self
    }

    pub fn from_api(error: crate::http::ApiError) -> MercureError {
        MercureError::new(error.status, error.message)
    }
}

impl IntoResponse for MercureError {
    fn into_response(self) -> Response {
        let mut response = (
            self.status,
            [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
            format!("{}\n", self.message),
        )
            .into_response();
        if let Some(challenge) = self.challenge.and_then(|c| HeaderValue::from_str(&c).ok()) {
            response
                .headers_mut()
                .insert(header::WWW_AUTHENTICATE, challenge);
        }
        response
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn topics_carry_commas_and_spaces_escaped() {
        assert_eq!(escape_topic("https://e/a"), "https://e/a");
        assert_eq!(escape_topic("https://e/a,b c"), "https://e/a%2Cb%20c");
        assert_eq!(
            to_topic("https://e/a,b").unwrap().as_str(),
            "https://e/a%2Cb"
        );
        assert!(to_topic("a\u{0}b").is_err());
        assert!(to_topic("a\u{200B}b").is_err());
        assert!(to_topic("").is_err());
    }

    #[test]
    fn selectors() {
        let exact = matcher("https://e/a,b", MatchKind::Topic).unwrap();
        assert!(exact.matches("https://e/a%2Cb"));
        let any = matcher("*", MatchKind::Exact).unwrap();
        assert!(any.matches("x"));
        let t = matcher("https://e/{id}", MatchKind::Topic).unwrap();
        assert!(t.matches("https://e/1"));
        let literal = matcher("https://e/{id}", MatchKind::Exact).unwrap();
        assert!(!literal.matches("https://e/1"));
        assert!(literal.matches("https://e/{id}"));
        let p = matcher("https://e/:id", MatchKind::UrlPattern).unwrap();
        assert!(p.matches("https://e/1"));
    }

    #[test]
    fn uuids_are_v4_urns() {
        let a = new_urn_uuid();
        assert_eq!(a.len(), 45);
        assert_eq!(&a[23..24], "4");
        assert_ne!(a, new_urn_uuid());
    }
}
