//! Route aliases (`[[route]]`): a hand-written SSE server's own URLs mapped onto hub topics,
//! so its pages and publishers work unchanged. A subscribe route (`GET`) turns its path
//! parameters and query parameters into topics and may greet each stream with welcome
//! events; a publish route (`POST`) turns a JSON or form body into one event and answers in
//! the shape the old server did. `--demo` adds the seed articles' routes ([`Routes::demo`]).
//!
//! Templates: `{name}` is replaced by a variable's text, `{name:json}` by its JSON encoding
//! (a string in quotes; a number, object or list as JSON). Any other `{` is literal, so a
//! JSON template such as `{"sent": {delivered}}` needs no escaping.

mod seeds;

use std::borrow::Cow;
use std::collections::BTreeMap;
use std::fmt;

use serde::Deserialize;
use serde_json::Value;

use seeds::demo_specs;

/// One `[[route]]` table as written in the config file.
#[derive(Deserialize, Debug, Clone, Default, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct RouteSpec {
    /// The URL path: literal segments and parameters, `/events/{userId}` or `/events/:userId`.
    pub path: String,
    /// `GET` (a subscribe route, the default) or `POST` (a publish route).
    pub method: Option<String>,
    /// Topic templates. A subscribe route may use path parameters and query parameters (a
    /// comma list in a query parameter gives one topic per item); a publish route path
    /// parameters and body fields.
    pub topics: Vec<String>,
    /// Values for parameters the request leaves out (a comma list for several topics).
    #[serde(default)]
    pub defaults: BTreeMap<String, String>,
    /// Subscribe: the `retry:` sent first, in ms (0: none); left out, the hub's `retry`.
    pub retry: Option<u64>,
    /// Subscribe: events written to each new stream before any other (not stored).
    #[serde(default)]
    pub welcome: Vec<WelcomeSpec>,
    /// Subscribe: `false` writes the events without their `id:` lines, as a server that
    /// sent none did (its clients print the stream; they cannot resume). Default `true`.
    pub ids: Option<bool>,
    /// Publish: the event name (left out: an unnamed message).
    pub event: Option<String>,
    /// Publish: the event's data template over the body's fields (default `{body}`, the body
    /// as sent).
    pub data: Option<String>,
    /// Publish: the JSON answer's template, with `{id}` and `{delivered}` (default: the
    /// native answer, `{"id": ..., "delivered": ...}`).
    pub reply: Option<String>,
}

/// A welcome event: its name, data template and whether it carries the stream's position
/// as its id (so a client that reconnects after it resumes from there).
#[derive(Deserialize, Debug, Clone, Default, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct WelcomeSpec {
    pub event: Option<String>,
    pub data: String,
    #[serde(default)]
    pub id: bool,
}

/// A text with `{name}` and `{name:json}` holes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Template {
    pieces: Vec<Piece>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Piece {
    Text(String),
    Var { name: String, json: bool },
}

/// A variable's value.
#[derive(Debug, Clone)]
pub enum Val<'a> {
    Text(Cow<'a, str>),
    Json(&'a Value),
}

impl Template {
    pub fn parse(source: &str) -> Template {
        let mut pieces = Vec::new();
        let mut text = String::new();
        let mut rest = source;
        while let Some(open) = rest.find('{') {
            text.push_str(&rest[..open]);
            let after = &rest[open + 1..];
            match after
                .find('}')
                .and_then(|close| var(&after[..close]).map(|v| (v, close)))
            {
                Some(((name, json), close)) => {
                    if !text.is_empty() {
                        pieces.push(Piece::Text(std::mem::take(&mut text)));
                    }
                    pieces.push(Piece::Var {
                        name: name.to_owned(),
                        json,
                    });
                    rest = &after[close + 1..];
                }
                _ => {
                    text.push('{');
                    rest = after;
                }
            }
        }
        text.push_str(rest);
        if !text.is_empty() {
            pieces.push(Piece::Text(text));
        }
        Template { pieces }
    }

    /// The names of its variables, in order.
    pub fn vars(&self) -> impl Iterator<Item = &str> {
        self.pieces.iter().filter_map(|p| match p {
            Piece::Var { name, .. } => Some(name.as_str()),
            Piece::Text(_) => None,
        })
    }

    /// The text with every variable replaced; names the first variable `lookup` lacks.
    pub fn render<'a>(
        &self,
        lookup: impl Fn(&str) -> Option<Val<'a>>,
    ) -> Result<String, MissingVar> {
        let mut out = String::new();
        for piece in &self.pieces {
            match piece {
                Piece::Text(t) => out.push_str(t),
                Piece::Var { name, json } => {
                    let value = lookup(name).ok_or_else(|| MissingVar(name.clone()))?;
                    match (value, json) {
                        (Val::Text(t), false) => out.push_str(&t),
                        (Val::Text(t), true) => out.push_str(&Value::from(t.as_ref()).to_string()),
                        (Val::Json(Value::String(s)), false) => out.push_str(s),
                        (Val::Json(v), _) => out.push_str(&v.to_string()),
                    }
                }
            }
        }
        Ok(out)
    }
}

/// `name` or `name:json`, where a name is a letter or `_` then letters, digits, `_` or `-`.
fn var(inner: &str) -> Option<(&str, bool)> {
    let (name, json) = match inner.strip_suffix(":json") {
        Some(name) => (name, true),
        None => (inner, false),
    };
    let mut chars = name.chars();
    let first = chars.next()?;
    let ok = (first.is_ascii_alphabetic() || first == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-');
    ok.then_some((name, json))
}

/// A template used a variable the request does not have.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MissingVar(pub String);

impl fmt::Display for MissingVar {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:?} is missing", self.0)
    }
}

/// One path segment of a route.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Segment {
    Literal(String),
    Param(String),
}

/// What a route does.
#[derive(Debug, Clone)]
pub enum Action {
    Subscribe {
        retry: Option<u64>,
        welcome: Vec<Welcome>,
        ids: bool,
    },
    Publish {
        event: Option<String>,
        data: Template,
        reply: Option<Template>,
    },
}

#[derive(Debug, Clone)]
pub struct Welcome {
    pub event: Option<String>,
    pub data: Template,
    pub id: bool,
}

/// A validated route.
#[derive(Debug, Clone)]
pub struct Route {
    /// The path as axum spells it, parameters named by position (`/events/{p1}`), so
    /// routes that differ only in a parameter's name are seen as the same path.
    pub axum_path: String,
    segments: Vec<Segment>,
    pub topics: Vec<Template>,
    pub defaults: BTreeMap<String, String>,
    pub action: Action,
}

impl Route {
    /// The path parameters by their names, from axum's positional ones.
    pub fn named_params(
        &self,
        positional: std::collections::HashMap<String, String>,
    ) -> std::collections::HashMap<String, String> {
        let mut named = std::collections::HashMap::with_capacity(positional.len());
        for (i, segment) in self.segments.iter().enumerate() {
            if let Segment::Param(name) = segment {
                if let Some(value) = positional.get(&format!("p{i}")) {
                    named.insert(name.clone(), value.clone());
                }
            }
        }
        named
    }

    pub fn is_subscribe(&self) -> bool {
        matches!(self.action, Action::Subscribe { .. })
    }

    /// True for a subscribe route on a path the native API serves (`/events`,
    /// `/events/{x}`): a request there that names its topics with `topic=` is the native
    /// API's, not the route's.
    pub fn on_native_path(&self) -> bool {
        matches!(self.segments.first(), Some(Segment::Literal(s)) if s == "events")
            && self.segments.len() <= 2
    }

    /// True when `path` (undecoded) has this route's shape.
    fn matches(&self, path: &str) -> bool {
        let Some(rest) = path.strip_prefix('/') else {
            return false;
        };
        if rest.is_empty() {
            return self.segments.is_empty();
        }
        let mut parts = rest.split('/');
        self.segments
            .iter()
            .all(|segment| match (segment, parts.next()) {
                (Segment::Literal(l), Some(p)) => l == p,
                (Segment::Param(_), Some(p)) => !p.is_empty(),
                (_, None) => false,
            })
            && parts.next().is_none()
    }
}

/// Every configured route, in order (a user's before the demo's).
#[derive(Debug, Clone, Default)]
pub struct Routes {
    pub list: Vec<Route>,
}

impl Routes {
    /// Validates `specs`; an error names the route (by number and path) and the fault.
    pub fn compile(specs: &[RouteSpec]) -> Result<Routes, String> {
        let mut routes = Routes::default();
        let mut seen: Vec<(String, bool)> = Vec::new();
        for (i, spec) in specs.iter().enumerate() {
            let route =
                compile(spec).map_err(|e| format!("route {} ({:?}): {e}", i + 1, spec.path))?;
            let key = (route.axum_path.clone(), route.is_subscribe());
            if seen.contains(&key) {
                return Err(format!(
                    "route {} ({:?}): an earlier route has the same method and path",
                    i + 1,
                    spec.path
                ));
            }
            seen.push(key);
            routes.list.push(route);
        }
        Ok(routes)
    }

    /// `self` with the seed articles' routes added, except where a route of `self` already
    /// has the method and path.
    pub fn with_demo(mut self) -> Routes {
        for route in Routes::compile(&demo_specs()).expect("demo routes").list {
            let taken = self.list.iter().any(|r| {
                r.axum_path == route.axum_path && r.is_subscribe() == route.is_subscribe()
            });
            if !taken {
                self.list.push(route);
            }
        }
        self
    }

    pub fn is_empty(&self) -> bool {
        self.list.is_empty()
    }

    /// True when a `GET` of `path?query` belongs to a subscribe route, so the direct stream
    /// path must leave it to the router.
    pub fn claims_get(&self, path: &str, query: Option<&str>) -> bool {
        self.list.iter().any(|r| {
            r.is_subscribe() && r.matches(path) && !(r.on_native_path() && names_topics(query))
        })
    }
}

/// True when a query string has a `topic` parameter.
pub fn names_topics(query: Option<&str>) -> bool {
    query
        .unwrap_or("")
        .split('&')
        .any(|pair| pair == "topic" || pair.starts_with("topic="))
}

fn compile(spec: &RouteSpec) -> Result<Route, String> {
    let segments = parse_path(&spec.path)?;
    let params: Vec<&str> = segments
        .iter()
        .filter_map(|s| match s {
            Segment::Param(p) => Some(p.as_str()),
            Segment::Literal(_) => None,
        })
        .collect();
    let axum_path = if segments.is_empty() {
        "/".to_owned()
    } else {
        segments
            .iter()
            .enumerate()
            .map(|(i, s)| match s {
                Segment::Literal(l) => format!("/{l}"),
                Segment::Param(_) => format!("/{{p{i}}}"),
            })
            .collect()
    };
    if spec.topics.is_empty() {
        return Err("topics: at least one topic template is needed".into());
    }
    let topics: Vec<Template> = spec.topics.iter().map(|t| Template::parse(t)).collect();
    let method = spec.method.as_deref().unwrap_or("GET").to_ascii_uppercase();
    let action = match method.as_str() {
        "GET" => {
            for (key, set) in [
                ("event", spec.event.is_some()),
                ("data", spec.data.is_some()),
                ("reply", spec.reply.is_some()),
            ] {
                if set {
                    return Err(format!("{key}: only a POST route publishes"));
                }
            }
            let welcome = spec
                .welcome
                .iter()
                .map(|w| {
                    if let Some(name) = &w.event {
                        ssehub_core::EventName::new(name)
                            .map_err(|e| format!("welcome: event {name:?}: {e}"))?;
                    }
                    Ok(Welcome {
                        event: w.event.clone(),
                        data: Template::parse(&w.data),
                        id: w.id,
                    })
                })
                .collect::<Result<_, String>>()?;
            Action::Subscribe {
                retry: spec.retry,
                welcome,
                ids: spec.ids.unwrap_or(true),
            }
        }
        "POST" => {
            if spec.retry.is_some() || !spec.welcome.is_empty() || spec.ids.is_some() {
                return Err("retry, welcome, ids: only a GET route opens streams".into());
            }
            if let Some(name) = &spec.event {
                ssehub_core::EventName::new(name).map_err(|e| format!("event {name:?}: {e}"))?;
            }
            let reply = spec.reply.as_deref().map(Template::parse);
            if let Some(reply) = &reply {
                check_reply(reply, &params)?;
            }
            Action::Publish {
                event: spec.event.clone(),
                data: Template::parse(spec.data.as_deref().unwrap_or("{body}")),
                reply,
            }
        }
        other => return Err(format!("method: {other:?} is not GET or POST")),
    };
    Ok(Route {
        axum_path,
        segments,
        topics,
        defaults: spec.defaults.clone(),
        action,
    })
}

/// A reply must be JSON whatever the request: rendered with sample values, it must parse.
fn check_reply(reply: &Template, params: &[&str]) -> Result<(), String> {
    let sample = Value::from(0);
    let text = reply
        .render(|name| match name {
            "id" => Some(Val::Text("0-0".into())),
            "delivered" => Some(Val::Json(&sample)),
            p if params.contains(&p) => Some(Val::Text("x".into())),
            _ => None,
        })
        .map_err(|e| format!("reply: {e}: a reply may use id, delivered and path parameters"))?;
    serde_json::from_str::<Value>(&text)
        .map(drop)
        .map_err(|e| format!("reply: {text:?} is not JSON ({e})"))
}

/// `/a/{b}/:c` into segments; a parameter is a whole segment.
fn parse_path(path: &str) -> Result<Vec<Segment>, String> {
    let Some(rest) = path.strip_prefix('/') else {
        return Err("path: must start with /".into());
    };
    if rest.is_empty() {
        return Ok(Vec::new());
    }
    let mut segments = Vec::new();
    for part in rest.split('/') {
        if part.is_empty() {
            return Err("path: an empty segment (//, or a trailing /)".into());
        }
        let param = part
            .strip_prefix(':')
            .or_else(|| part.strip_prefix('{').and_then(|p| p.strip_suffix('}')));
        let segment = match param {
            Some(name) => {
                if var(name).is_none_or(|(_, json)| json) {
                    return Err(format!("path: {part:?} is not a parameter name"));
                }
                if segments.contains(&Segment::Param(name.to_owned())) {
                    return Err(format!("path: parameter {name:?} appears twice"));
                }
                Segment::Param(name.to_owned())
            }
            None => {
                if part.contains(['{', '}', '*', ':', '?', '#', '%']) {
                    return Err(format!(
                        "path: {part:?} has a character a literal segment cannot"
                    ));
                }
                Segment::Literal(part.to_owned())
            }
        };
        segments.push(segment);
    }
    Ok(segments)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn text(s: &str) -> Option<Val<'_>> {
        Some(Val::Text(s.into()))
    }

    #[test]
    fn templates_fill_text_and_json_holes_and_keep_other_braces() {
        let t = Template::parse(r#"{"sent": {n}, "who": {who:json}, "raw": "{who}", "x": {1}}"#);
        assert_eq!(t.vars().collect::<Vec<_>>(), ["n", "who", "who"]);
        let n = Value::from(3);
        let out = t
            .render(|name| match name {
                "n" => Some(Val::Json(&n)),
                "who" => text("a\"b"),
                _ => None,
            })
            .unwrap();
        assert_eq!(out, r#"{"sent": 3, "who": "a\"b", "raw": "a"b", "x": {1}}"#);
        assert_eq!(
            Template::parse("{a}{b}").render(|n| (n == "a").then(|| Val::Text("1".into()))),
            Err(MissingVar("b".into()))
        );
        assert_eq!(
            Template::parse("{ unclosed").render(|_| None),
            Ok("{ unclosed".into())
        );
    }

    #[test]
    fn paths_accept_both_parameter_spellings_and_refuse_bad_ones() {
        let spec = |path: &str| RouteSpec {
            path: path.into(),
            topics: vec!["t".into()],
            ..RouteSpec::default()
        };
        let routes = Routes::compile(&[spec("/events/:userId"), spec("/a/{b}/c")]).unwrap();
        assert_eq!(routes.list[0].axum_path, "/events/{p1}");
        assert_eq!(routes.list[1].axum_path, "/a/{p1}/c");
        let params = [("p1".to_owned(), "ann".to_owned())].into_iter().collect();
        let named = routes.list[0].named_params(params);
        assert_eq!(named.get("userId").map(String::as_str), Some("ann"));
        for bad in [
            "events",
            "/a//b",
            "/a/",
            "/a/{b:json}",
            "/a/*",
            "/{x}/{x}",
            "/a/b%20",
        ] {
            assert!(Routes::compile(&[spec(bad)]).is_err(), "{bad}");
        }
        let twice = Routes::compile(&[spec("/a/:x"), spec("/a/{y}")]);
        assert!(twice.unwrap_err().contains("same method and path"));
    }

    #[test]
    fn matching_follows_segments() {
        let spec = |path: &str| RouteSpec {
            path: path.into(),
            topics: vec!["t".into()],
            ..RouteSpec::default()
        };
        let routes = Routes::compile(&[spec("/events"), spec("/latest/{type}")]).unwrap();
        assert!(routes.claims_get("/events", None));
        assert!(routes.claims_get("/events", Some("lastEventId=1")));
        assert!(!routes.claims_get("/events", Some("topic=a")));
        assert!(routes.claims_get("/latest/news", None));
        assert!(!routes.claims_get("/latest", None));
        assert!(!routes.claims_get("/latest/news/more", None));
        assert!(!routes.claims_get("/events/a", None));
    }

    #[test]
    fn a_route_spec_is_checked_for_its_method() {
        let bad = [
            RouteSpec {
                path: "/a".into(),
                topics: vec![],
                ..RouteSpec::default()
            },
            RouteSpec {
                path: "/a".into(),
                topics: vec!["t".into()],
                reply: Some("{}".into()),
                ..RouteSpec::default()
            },
            RouteSpec {
                path: "/a".into(),
                method: Some("POST".into()),
                topics: vec!["t".into()],
                reply: Some("{\"n\": {nope}}".into()),
                ..RouteSpec::default()
            },
            RouteSpec {
                path: "/a".into(),
                method: Some("POST".into()),
                topics: vec!["t".into()],
                reply: Some("not json".into()),
                ..RouteSpec::default()
            },
            RouteSpec {
                path: "/a".into(),
                method: Some("PUT".into()),
                topics: vec!["t".into()],
                ..RouteSpec::default()
            },
        ];
        for spec in bad {
            assert!(
                Routes::compile(std::slice::from_ref(&spec)).is_err(),
                "{spec:?}"
            );
        }
        assert_eq!(Routes::default().with_demo().list.len(), demo_specs().len());
    }
}
