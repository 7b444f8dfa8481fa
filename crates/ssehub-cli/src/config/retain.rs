//! Retention rules (`[[retain]]` tables, `--retain` flags) into retention classes, and back
//! into tables for `print-config`.

use std::time::Duration;

use anyhow::bail;
use serde::Deserialize;
use ssehub_core::{Retention, TopicPattern};

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
pub(super) fn parse_retain_rule(text: &str) -> Result<RetainRule, String> {
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
pub(super) fn retention_classes(
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{parse_file, resolve, Layer, Settings, StoreChoice};

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
