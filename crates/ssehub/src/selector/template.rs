//! Matching topics against URI Templates (RFC 6570, up to level 4), as Mercure 0.x topic
//! selectors do (`https://example.com/books/{id}`).
//!
//! A template is compiled once into an anchored regular expression that accepts what an
//! expansion of the template can produce: each expression becomes an optional group of
//! values made of the characters its operator leaves unencoded (unreserved characters and
//! percent-escapes; reserved characters too for `{+var}` and `{#var}`), joined by the
//! operator's separator or by `,` (lists). Named operators (`;`, `?`, `&`) match
//! `name=value` items. The `regex` crate matches in linear time, so a hostile template
//! cannot make matching slow; the compiled size is capped as well.

use regex::{Regex, RegexBuilder};

use super::escape_topic;

/// Longest template accepted, in bytes (the reference hub's limit for a pattern).
pub const MAX_TEMPLATE_LEN: usize = 4096;

/// A compiled URI template.
#[derive(Debug)]
pub struct UriTemplate {
    regex: Regex,
}

/// A character of a value, for operators that leave reserved characters encoded.
const UNRESERVED: &str = r"(?:[A-Za-z0-9\-._~]|%[0-9A-Fa-f]{2}|[^\x00-\x7F])";
/// A character of a value for `+` and `#`, which pass reserved characters through.
const RESERVED: &str = r"(?:[A-Za-z0-9\-._~:/?#\[\]@!$&'()*+,;=]|%[0-9A-Fa-f]{2}|[^\x00-\x7F])";

impl UriTemplate {
    /// Compiles `template`. `Ok(None)` when it holds no expression (it is then an exact
    /// topic); an error when an expression is malformed.
    pub fn parse(template: &str) -> Result<Option<UriTemplate>, String> {
        if template.len() > MAX_TEMPLATE_LEN {
            return Err(format!(
                "topic selector is longer than {MAX_TEMPLATE_LEN} bytes"
            ));
        }
        let mut pattern = String::from("^");
        let mut rest = template;
        let mut expressions = 0;
        while let Some(open) = rest.find('{') {
            let literal = &rest[..open];
            if literal.contains('}') {
                return Err("unbalanced '}' in URI template".into());
            }
            pattern.push_str(&regex::escape(&escape_topic(literal)));
            let after = &rest[open + 1..];
            let close = after
                .find('}')
                .ok_or_else(|| "unclosed '{' in URI template".to_owned())?;
            pattern.push_str(&expression(&after[..close])?);
            expressions += 1;
            rest = &after[close + 1..];
        }
        if expressions == 0 {
            return Ok(None);
        }
        if rest.contains('}') {
            return Err("unbalanced '}' in URI template".into());
        }
        pattern.push_str(&regex::escape(&escape_topic(rest)));
        pattern.push('$');
        let regex = RegexBuilder::new(&pattern)
            .size_limit(1 << 20)
            .build()
            .map_err(|e| format!("URI template too complex: {e}"))?;
        Ok(Some(UriTemplate { regex }))
    }

    pub fn matches(&self, topic: &str) -> bool {
        self.regex.is_match(topic)
    }
}

/// The regular expression for one `{...}` expression.
fn expression(body: &str) -> Result<String, String> {
    let (op, vars) = match body.chars().next() {
        Some(c @ ('+' | '#' | '.' | '/' | ';' | '?' | '&')) => (Some(c), &body[1..]),
        Some('=' | ',' | '!' | '@' | '|') => {
            return Err(format!(
                "reserved operator in URI template expression {{{body}}}"
            ))
        }
        _ => (None, body),
    };
    if vars.is_empty() {
        return Err("empty URI template expression".into());
    }
    for spec in vars.split(',') {
        let name = spec
            .strip_suffix('*')
            .unwrap_or_else(|| spec.split(':').next().unwrap_or(spec));
        if let Some((_, len)) = spec.split_once(':') {
            if len.is_empty() || len.len() > 4 || !len.bytes().all(|b| b.is_ascii_digit()) {
                return Err(format!("bad prefix length in {{{body}}}"));
            }
        }
        let valid = !name.is_empty()
            && name
                .split('.')
                .all(|part| !part.is_empty() && part.bytes().all(is_varchar));
        if !valid {
            return Err(format!(
                "bad variable name in URI template expression {{{body}}}"
            ));
        }
    }
    let (first, sep, named, chars) = match op {
        None => ("", ",", false, UNRESERVED),
        Some('+') => ("", ",", false, RESERVED),
        Some('#') => ("#", ",", false, RESERVED),
        Some('.') => (r"\.", r"\.", false, UNRESERVED),
        Some('/') => ("/", "/", false, UNRESERVED),
        Some(';') => (";", ";", true, UNRESERVED),
        Some('?') => (r"\?", "&", true, UNRESERVED),
        Some(_) => ("&", "&", true, UNRESERVED),
    };
    let value = format!("(?:{chars}|,)*");
    let item = if named {
        format!("{UNRESERVED}+(?:={value})?")
    } else {
        value
    };
    Ok(format!("(?:{first}{item}(?:{sep}{item})*)?"))
}

fn is_varchar(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b == b'_' || b == b'%'
}

#[cfg(test)]
mod tests {
    use super::*;

    fn m(template: &str, topic: &str) -> bool {
        UriTemplate::parse(template)
            .unwrap()
            .expect("has expressions")
            .matches(topic)
    }

    #[test]
    fn simple_and_reserved() {
        assert!(m(
            "https://example.com/books/{id}",
            "https://example.com/books/1"
        ));
        assert!(m(
            "https://example.com/books/{id}",
            "https://example.com/books/"
        ));
        assert!(!m(
            "https://example.com/books/{id}",
            "https://example.com/books/1/x"
        ));
        assert!(!m(
            "https://example.com/books/{id}",
            "https://example.com/users/1"
        ));
        assert!(m(
            "https://example.com/{+path}",
            "https://example.com/a/b/c"
        ));
        assert!(m("/books/{id}", "/books/caf%C3%A9"));
        assert!(m("/books/{id}", "/books/café"));
        assert!(m("/list/{ids}", "/list/1,2,3"));
        assert!(m("/{a,b}", "/x,y"));
        assert!(!m("/a.{x}", "/a-1"));
    }

    #[test]
    fn operators() {
        assert!(m("/books{/id,rev}", "/books/1/2"));
        assert!(m("/books{/id}", "/books"));
        assert!(m("/file{.ext}", "/file.json"));
        assert!(m("/s{?q,page}", "/s?q=rust&page=2"));
        assert!(m("/s{?q}{&page}", "/s?q=rust&page=2"));
        assert!(m("/m{;x,y}", "/m;x=1;y"));
        assert!(m("/p{#frag}", "/p#a/b"));
        assert!(!m("/s{?q}", "/s?q=a b"));
    }

    #[test]
    fn plain_strings_and_errors() {
        assert!(UriTemplate::parse("https://example.com/a")
            .unwrap()
            .is_none());
        for bad in ["/{", "/{}", "/{a b}", "/{=x}", "/}{a}", "/{a:x}"] {
            assert!(UriTemplate::parse(bad).is_err(), "{bad}");
        }
        assert!(UriTemplate::parse(&format!("/{}{{a}}", "x".repeat(MAX_TEMPLATE_LEN))).is_err());
    }

    #[test]
    fn literals_with_escaped_characters() {
        // The hub carries "a,b" as "a%2Cb": literals are escaped the same way.
        assert!(m("/x,y/{id}", "/x%2Cy/1"));
    }
}
