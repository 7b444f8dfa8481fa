//! A subset of WHATWG URL Pattern syntax, for Mercure 1.0 `match_urlpattern` selectors and
//! `urlpattern` grants: literal text, named groups `:name` (one path segment, or with the
//! modifiers `?`, `+`, `*`), the wildcard `*`, groups `{...}` with an optional `?`, and `\`
//! escapes. Regular-expression groups `(...)` are refused. Relative patterns and topics are
//! resolved against the hub's origin: a pattern starting with `/` matches that path on the
//! hub's origin, and a pattern on the hub's origin also matches the relative topic (when the
//! hub's origin is unknown, a relative pattern matches the path on any origin). Compiled to
//! an anchored linear-time regular expression.

use regex::{Regex, RegexBuilder};

use super::escape_topic;
use super::template::MAX_TEMPLATE_LEN;

#[derive(Debug)]
pub struct UrlPattern {
    regex: Regex,
}

impl UrlPattern {
    /// `base`: the hub's origin (`https://hub.example`), for relative patterns and topics.
    pub fn parse(pattern: &str, base: Option<&str>) -> Result<UrlPattern, String> {
        if pattern.is_empty() || pattern.len() > MAX_TEMPLATE_LEN {
            return Err(format!("URL pattern must be 1 to {MAX_TEMPLATE_LEN} bytes"));
        }
        let mut out = String::from("^");
        let mut body = pattern;
        let on_base = base.filter(|b| {
            pattern
                .strip_prefix(b)
                .is_some_and(|rest| rest.starts_with('/'))
        });
        if pattern.starts_with('/') {
            match base {
                Some(b) => out.push_str(&format!("(?:{})?", regex::escape(b))),
                None => out.push_str(r"(?:[A-Za-z][A-Za-z0-9+.\-]*://[^/?#]*)?"),
            }
        } else if let Some(b) = on_base {
            out.push_str(&format!("(?:{})?", regex::escape(b)));
            body = &pattern[b.len()..];
        }
        let chars: Vec<char> = body.chars().collect();
        let mut i = 0;
        let mut depth = 0;
        while i < chars.len() {
            let c = chars[i];
            match c {
                '\\' => {
                    let next = chars.get(i + 1).ok_or("dangling '\\' in URL pattern")?;
                    out.push_str(&regex::escape(&escape_topic(&next.to_string())));
                    i += 2;
                    continue;
                }
                ':' if chars
                    .get(i + 1)
                    .is_some_and(|c| c.is_alphabetic() || *c == '_') =>
                {
                    let start = i + 1;
                    let mut end = start;
                    while end < chars.len() && (chars[end].is_alphanumeric() || chars[end] == '_') {
                        end += 1;
                    }
                    let modifier = chars.get(end).copied();
                    match modifier {
                        Some('?') => out.push_str("(?:[^/?#]+)?"),
                        Some('+') => out.push_str("(?:[^/?#]+(?:/[^/?#]+)*)"),
                        Some('*') => out.push_str("(?:[^/?#]+(?:/[^/?#]+)*)?"),
                        _ => out.push_str("[^/?#]+"),
                    }
                    i = end + usize::from(matches!(modifier, Some('?' | '+' | '*')));
                    continue;
                }
                '*' => out.push_str(".*"),
                '(' | ')' => {
                    return Err(
                        "regular-expression groups are not supported in URL patterns".into(),
                    )
                }
                '{' => {
                    depth += 1;
                    out.push_str("(?:");
                }
                '}' => {
                    if depth == 0 {
                        return Err("unbalanced '}' in URL pattern".into());
                    }
                    depth -= 1;
                    out.push(')');
                    if chars.get(i + 1) == Some(&'?') {
                        out.push('?');
                        i += 1;
                    }
                }
                _ => out.push_str(&regex::escape(&escape_topic(&c.to_string()))),
            }
            i += 1;
        }
        if depth != 0 {
            return Err("unclosed '{' in URL pattern".into());
        }
        out.push('$');
        let regex = RegexBuilder::new(&out)
            .size_limit(1 << 20)
            .build()
            .map_err(|e| format!("URL pattern too complex: {e}"))?;
        Ok(UrlPattern { regex })
    }

    pub fn matches(&self, topic: &str) -> bool {
        self.regex.is_match(topic)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn named_groups_wildcards_and_relative() {
        let p = UrlPattern::parse("https://example.com/books/:id", None).unwrap();
        assert!(p.matches("https://example.com/books/1"));
        assert!(!p.matches("https://example.com/books/1/reviews"));
        assert!(!p.matches("https://example.com/books/"));
        let p = UrlPattern::parse("https://example.com/books/*", None).unwrap();
        assert!(p.matches("https://example.com/books/1/reviews"));
        let p = UrlPattern::parse("/books/:id{/reviews}?", None).unwrap();
        assert!(p.matches("/books/1"));
        assert!(p.matches("https://other.example/books/1/reviews"));
        assert!(!p.matches("/users/1"));
        assert!(UrlPattern::parse("/a/(\\d+)", None).is_err());
        assert!(UrlPattern::parse("/a/{b", None).is_err());
    }

    #[test]
    fn relative_patterns_and_topics_resolve_against_the_hub() {
        let hub = Some("https://hub.example");
        let p = UrlPattern::parse("/books/:id", hub).unwrap();
        assert!(p.matches("https://hub.example/books/1"));
        assert!(p.matches("/books/1"));
        assert!(!p.matches("https://other.example/books/1"));
        let p = UrlPattern::parse("https://hub.example/books/:id", hub).unwrap();
        assert!(p.matches("/books/1"));
        assert!(p.matches("https://hub.example/books/1"));
        let p = UrlPattern::parse("https://other.example/books/:id", hub).unwrap();
        assert!(!p.matches("/books/1"));
    }
}
