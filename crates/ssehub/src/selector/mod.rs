//! Mercure topic selectors, as subscriptions and token grants both use them: `*`, an exact
//! topic, a URI template (dialect 0) or a URL pattern (dialect 1), each read into a
//! [`TopicMatcher`] over hub topics; and the hub's Mercure path, against whose origin URL
//! patterns resolve. Shared by `auth` (grants) and `mercure` (subscriptions), so neither
//! protocol module needs the other.

mod template;
mod urlpattern;

use std::borrow::Cow;
use std::fmt::Write as _;
use std::sync::Arc;

use axum::http::{header, HeaderMap};

use crate::selection::{AnyTopic, Exact, TopicMatcher};
pub(crate) use template::{UriTemplate, MAX_TEMPLATE_LEN};
pub(crate) use urlpattern::UrlPattern;

/// The hub's Mercure path.
pub const HUB_PATH: &str = "/.well-known/mercure";

/// `scheme://host` of the request, as the client addressed the hub (`X-Forwarded-Proto`
/// when a TLS proxy sits in front).
pub fn origin(headers: &HeaderMap) -> Option<String> {
    let host = headers.get(header::HOST)?.to_str().ok()?;
    let proto = headers
        .get("x-forwarded-proto")
        .and_then(|v| v.to_str().ok())
        .filter(|p| *p == "https" || *p == "http")
        .unwrap_or("http");
    Some(format!("{proto}://{host}"))
}

/// The hub's resource identifier as this request addresses it (the `aud` dialect 1 tokens
/// must carry when `--mercure-audience` is not set).
pub fn resource_identifier(headers: &HeaderMap) -> Option<String> {
    origin(headers).map(|o| format!("{o}{HUB_PATH}"))
}

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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn topics_carry_commas_and_spaces_escaped() {
        assert_eq!(escape_topic("https://e/a"), "https://e/a");
        assert_eq!(escape_topic("https://e/a,b c"), "https://e/a%2Cb%20c");
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
}
