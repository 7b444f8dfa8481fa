//! A source message into a hub event: the topic and event name from templates over the
//! message's channel and its JSON fields, the id and data from fields if configured.

use std::fmt;

use serde_json::{Map, Value};
use ssehub::{Template, Val};
use ssehub_core::{EventName, NewEvent, Topic, WireId};

/// How a bridge's messages become events.
#[derive(Debug, Clone)]
pub struct Mapping {
    topic: Template,
    event: Option<Template>,
    id_field: Option<String>,
    data_field: Option<String>,
}

/// Why a message cannot be published; the bridge skips it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Poison(pub String);

impl fmt::Display for Poison {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl Mapping {
    pub fn new(
        topic: &str,
        event: Option<&str>,
        id_field: Option<String>,
        data_field: Option<String>,
    ) -> Result<Mapping, String> {
        let topic = Template::parse(topic);
        if topic.vars().next().is_none() {
            Topic::new(&render_fixed(&topic)).map_err(|e| format!("topic: {e}"))?;
        }
        Ok(Mapping {
            topic,
            event: event.map(Template::parse),
            id_field,
            data_field,
        })
    }

    /// The event for a message from `channel` with this payload; `fields` are the
    /// message's own (an outbox row's columns, a stream entry's fields), else those of a JSON
    /// object payload; `vars` (tokens captured from a subject) come before either.
    /// `max_payload` bounds the data.
    pub fn event(
        &self,
        channel: &str,
        payload: &[u8],
        fields: Option<&Map<String, Value>>,
        vars: &[(String, String)],
        max_payload: usize,
    ) -> Result<NewEvent, Poison> {
        if payload.len() > max_payload {
            return Err(Poison(format!(
                "{} bytes, over max_payload ({max_payload})",
                payload.len()
            )));
        }
        let text = std::str::from_utf8(payload)
            .map_err(|e| Poison(format!("the payload is not UTF-8: {e}")))?;
        let parsed;
        let fields = match fields {
            Some(f) => Some(f),
            None => {
                parsed = match serde_json::from_str::<Value>(text) {
                    Ok(Value::Object(map)) => Some(map),
                    _ => None,
                };
                parsed.as_ref()
            }
        };
        let lookup = |name: &str| -> Option<Val<'_>> {
            if name == "channel" {
                return Some(Val::Text(channel.into()));
            }
            if let Some((_, v)) = vars.iter().find(|(n, _)| n == name) {
                return Some(Val::Text(v.as_str().into()));
            }
            fields?.get(name).map(Val::Json)
        };
        let topic = self
            .topic
            .render(lookup)
            .map_err(|e| Poison(format!("no topic: {e}")))?;
        let topic = Topic::new(&topic).map_err(|e| Poison(format!("topic {topic:?}: {e}")))?;
        let data = match &self.data_field {
            None => text.to_owned(),
            Some(field) => match fields.and_then(|f| f.get(field)) {
                Some(Value::String(s)) => s.clone(),
                Some(other) => other.to_string(),
                None => return Err(Poison(format!("no {field:?} field for the data"))),
            },
        };
        let mut new = NewEvent::new(vec![topic], data);
        if let Some(event) = &self.event {
            let name = event
                .render(lookup)
                .map_err(|e| Poison(format!("no event name: {e}")))?;
            new.name = Some(
                EventName::new(&name).map_err(|e| Poison(format!("event name {name:?}: {e}")))?,
            );
        }
        if let Some(field) = &self.id_field {
            let id = match fields.and_then(|f| f.get(field)) {
                Some(Value::String(s)) => s.clone(),
                Some(Value::Number(n)) => n.to_string(),
                _ => return Err(Poison(format!("no {field:?} field for the id"))),
            };
            new.custom_id = Some(WireId::new(&id).map_err(|e| Poison(format!("id {id:?}: {e}")))?);
        }
        Ok(new)
    }
}

/// A source pattern with named tokens, `orders.{id}` (NATS) or `sensors/{room}/temp`
/// (MQTT): the filter to subscribe to (each named token a single-token wildcard), and the
/// names by token position.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TokenPattern {
    pub filter: String,
    separator: char,
    names: Vec<(usize, String)>,
}

impl TokenPattern {
    pub fn parse(pattern: &str, separator: char, wildcard: &str) -> TokenPattern {
        let mut names = Vec::new();
        let tokens: Vec<String> = pattern
            .split(separator)
            .enumerate()
            .map(
                |(i, token)| match token.strip_prefix('{').and_then(|t| t.strip_suffix('}')) {
                    Some(name) if !name.is_empty() => {
                        names.push((i, name.to_owned()));
                        wildcard.to_owned()
                    }
                    _ => token.to_owned(),
                },
            )
            .collect();
        TokenPattern {
            filter: tokens.join(&separator.to_string()),
            separator,
            names,
        }
    }

    /// The named tokens of a subject or topic this pattern matched.
    pub fn capture(&self, name: &str) -> Vec<(String, String)> {
        let tokens: Vec<&str> = name.split(self.separator).collect();
        self.names
            .iter()
            .filter_map(|(i, n)| tokens.get(*i).map(|t| (n.clone(), (*t).to_owned())))
            .collect()
    }
}

fn render_fixed(t: &Template) -> String {
    t.render(|_| None).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_payloads_fill_the_templates() {
        let m = Mapping::new(
            "orders/{id}",
            Some("order-{status}"),
            Some("id".into()),
            Some("order".into()),
        )
        .unwrap();
        let payload = br#"{"id": 42, "status": "paid", "order": {"total": 9.5}}"#;
        let e = m.event("orders", payload, None, &[], 1024).unwrap();
        assert_eq!(e.topics[0].as_str(), "orders/42");
        assert_eq!(e.name.unwrap().as_str(), "order-paid");
        assert_eq!(e.custom_id.unwrap().as_str(), "42");
        assert_eq!(e.data, r#"{"total":9.5}"#);
    }

    #[test]
    fn named_tokens_become_wildcards_and_are_captured() {
        let p = TokenPattern::parse("orders.{id}.{status}", '.', "*");
        assert_eq!(p.filter, "orders.*.*");
        assert_eq!(
            p.capture("orders.42.paid"),
            [
                ("id".to_owned(), "42".to_owned()),
                ("status".to_owned(), "paid".to_owned())
            ]
        );
        let mqtt = TokenPattern::parse("sensors/{room}/#", '/', "+");
        assert_eq!(mqtt.filter, "sensors/+/#");
        assert_eq!(mqtt.capture("sensors/kitchen/t/1")[0].1, "kitchen");
        assert!(TokenPattern::parse("prices.>", '.', "*")
            .capture("prices.a")
            .is_empty());
    }

    #[test]
    fn poison_is_named() {
        let m = Mapping::new("{channel}/{user}", None, None, None).unwrap();
        assert!(m
            .event("c", b"\xff", None, &[], 1024)
            .unwrap_err()
            .0
            .contains("UTF-8"));
        assert!(m
            .event("c", b"plain text", None, &[], 1024)
            .unwrap_err()
            .0
            .contains("no topic"));
        assert!(m
            .event("c", &[b'x'; 2048], None, &[], 1024)
            .unwrap_err()
            .0
            .contains("max_payload"));
        let bad = m
            .event("c", br#"{"user": "a b"}"#, None, &[], 1024)
            .unwrap_err();
        assert!(bad.0.contains("topic"), "{bad}");
        let e = m
            .event("c", br#"{"user": "ann"}"#, None, &[], 1024)
            .unwrap();
        assert_eq!(e.topics[0].as_str(), "c/ann");
        assert_eq!(e.data, r#"{"user": "ann"}"#, "the payload as it came");
        assert!(Mapping::new("bad topic", None, None, None).is_err());
    }
}
