//! docs/openapi.json against a running hub: every operation it lists is exercised, every
//! answer's status is one the operation documents, its content type is the documented one,
//! and a JSON body matches the documented schema. An operation without a case here, or a
//! case for an operation the file lacks, fails the test, so the file cannot drift.

use std::collections::BTreeSet;

use serde_json::{json, Value};
use ssehub::Config;

use crate::support::TestHub;

const SPEC: &str = include_str!("../../../../docs/openapi.json");

/// Follows a `$ref` within the file.
fn resolve<'a>(spec: &'a Value, node: &'a Value) -> &'a Value {
    match node.get("$ref").and_then(Value::as_str) {
        Some(reference) => {
            let path = reference.strip_prefix("#/").expect("a local reference");
            let target = path.split('/').fold(spec, |v, key| &v[key]);
            assert!(!target.is_null(), "dangling reference {reference}");
            resolve(spec, target)
        }
        None => node,
    }
}

/// The subset of JSON Schema the file uses: type (one or several), required, properties,
/// items, oneOf, minimum, minItems, minLength. Returns what does not match.
fn check(spec: &Value, schema: &Value, value: &Value, at: &str) -> Result<(), String> {
    let schema = resolve(spec, schema);
    if let Some(options) = schema.get("oneOf").and_then(Value::as_array) {
        let matching = options
            .iter()
            .filter(|s| check(spec, s, value, at).is_ok())
            .count();
        return (matching == 1)
            .then_some(())
            .ok_or(format!("{at}: {matching} of oneOf match {value}"));
    }
    if let Some(kind) = schema.get("type") {
        let kinds: Vec<&str> = match kind {
            Value::String(k) => vec![k.as_str()],
            Value::Array(ks) => ks.iter().filter_map(Value::as_str).collect(),
            _ => return Err(format!("{at}: a bad type in the schema")),
        };
        let fits = kinds.iter().any(|k| match *k {
            "object" => value.is_object(),
            "array" => value.is_array(),
            "string" => value.is_string(),
            "integer" => value.is_u64() || value.is_i64(),
            "number" => value.is_number(),
            "boolean" => value.is_boolean(),
            "null" => value.is_null(),
            _ => false,
        });
        if !fits {
            return Err(format!("{at}: {value} is not {kinds:?}"));
        }
    }
    if let (Some(min), Some(n)) = (
        schema.get("minimum").and_then(Value::as_f64),
        value.as_f64(),
    ) {
        if n < min {
            return Err(format!("{at}: {n} < {min}"));
        }
    }
    if let Some(items) = value.as_array() {
        if let Some(min) = schema.get("minItems").and_then(Value::as_u64) {
            if (items.len() as u64) < min {
                return Err(format!("{at}: fewer than {min} items"));
            }
        }
        if let Some(item) = schema.get("items") {
            for (i, v) in items.iter().enumerate() {
                check(spec, item, v, &format!("{at}[{i}]"))?;
            }
        }
    }
    if let Some(object) = value.as_object() {
        for key in schema
            .get("required")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            let key = key.as_str().unwrap();
            if !object.contains_key(key) {
                return Err(format!("{at}: no {key:?} in {value}"));
            }
        }
        if let Some(properties) = schema.get("properties").and_then(Value::as_object) {
            for (key, v) in object {
                if let Some(property) = properties.get(key) {
                    check(spec, property, v, &format!("{at}.{key}"))?;
                }
            }
        }
    }
    Ok(())
}

struct Case {
    operation: &'static str,
    method: &'static str,
    path: String,
    content_type: Option<&'static str>,
    body: Option<String>,
}

fn case(operation: &'static str, method: &'static str, path: &str) -> Case {
    Case {
        operation,
        method,
        path: path.to_owned(),
        content_type: None,
        body: None,
    }
}

fn with_body(mut c: Case, content_type: &'static str, body: impl Into<String>) -> Case {
    c.content_type = Some(content_type);
    c.body = Some(body.into());
    c
}

/// The operation of `spec` with this id: its path template and its object.
fn operation<'a>(spec: &'a Value, id: &str) -> Option<(&'a str, &'a str, &'a Value)> {
    for (path, item) in spec["paths"].as_object().unwrap() {
        for (method, op) in item.as_object().unwrap() {
            if op["operationId"] == id {
                return Some((path, method, op));
            }
        }
    }
    None
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_openapi_file_matches_the_running_hub() {
    let spec: Value = serde_json::from_str(SPEC).expect("docs/openapi.json is JSON");
    assert_eq!(spec["openapi"], "3.1.0");
    let hub = TestHub::with_config(Config {
        max_payload: 4096,
        ..Config::default()
    })
    .await;
    let event = json!({"topic": "o", "event": "e", "data": {"x": 1}, "id": "custom-1"});
    let cases = vec![
        case("subscribe", "GET", "/events?topic=o&topic=p,q"),
        case("subscribe", "GET", "/events"),
        case("subscribeTopic", "GET", "/events/o?lastEventId=custom-1"),
        case("subscribeTopic", "GET", "/events/%FF"),
        with_body(
            case("publish", "POST", "/publish"),
            "application/json",
            event.to_string(),
        ),
        with_body(
            case("publish", "POST", "/publish"),
            "application/json",
            json!([{"topic": "o", "data": "1"}, {"topic": ["o", "p"], "data": "2"}]).to_string(),
        ),
        with_body(
            case("publish", "POST", "/publish"),
            "application/x-ndjson",
            "{\"topic\":\"o\",\"data\":\"n\"}\n",
        ),
        with_body(
            case("publish", "POST", "/publish"),
            "application/x-www-form-urlencoded",
            "topic=o&data=form",
        ),
        with_body(
            case("publish", "POST", "/publish"),
            "application/json",
            "{\"data\": 1}",
        ),
        with_body(case("publish", "POST", "/publish"), "text/plain", "hello"),
        with_body(
            case("publish", "POST", "/publish"),
            "application/json",
            json!({"topic": "o", "data": "x".repeat(5000)}).to_string(),
        ),
        case("listTopics", "GET", "/topics"),
        case("getTopic", "GET", "/topics/o"),
        case("getTopic", "GET", "/topics/never-seen"),
        case("closeTopic", "DELETE", "/topics/closing"),
        case("subscribeTopic", "GET", "/events/closing"),
        case("health", "GET", "/healthz"),
        case("metrics", "GET", "/metrics"),
        case("statsStream", "GET", "/stats/stream"),
        case("clientScript", "GET", "/ssehub.js"),
    ];
    let mut documented: BTreeSet<String> = BTreeSet::new();
    for item in spec["paths"].as_object().unwrap().values() {
        for op in item.as_object().unwrap().values() {
            documented.insert(op["operationId"].as_str().unwrap().to_owned());
        }
    }
    let exercised: BTreeSet<String> = cases.iter().map(|c| c.operation.to_owned()).collect();
    assert_eq!(
        documented, exercised,
        "every documented operation has a case, and no other"
    );

    let mut statuses_seen = BTreeSet::new();
    for c in cases {
        let (template, method, op) = operation(&spec, c.operation).unwrap();
        assert_eq!(method.to_uppercase(), c.method, "{}", c.operation);
        let path_only = c.path.split('?').next().unwrap();
        let fits_template = template.split('/').count() == path_only.split('/').count()
            && template
                .split('/')
                .zip(path_only.split('/'))
                .all(|(t, p)| t.starts_with('{') || t == p);
        assert!(fits_template, "{} is not {template}", c.path);
        let mut request = hub
            .http
            .request(c.method.parse().unwrap(), hub.url(&c.path));
        if let (Some(ct), Some(body)) = (c.content_type, c.body) {
            request = request.header("content-type", ct).body(body);
        }
        let response = request.send().await.unwrap();
        let status = response.status().as_u16().to_string();
        let what = format!("{} {} -> {status}", c.method, c.path);
        let documented = op["responses"]
            .get(&status)
            .unwrap_or_else(|| panic!("{what}: status not documented"));
        let documented = resolve(&spec, documented);
        statuses_seen.insert((c.operation, status.clone()));
        if documented
            .get("headers")
            .is_some_and(|h| h.get("Retry-After").is_some())
        {
            assert!(
                response.headers().contains_key("retry-after"),
                "{what}: no Retry-After"
            );
        }
        let Some(content) = documented.get("content").and_then(Value::as_object) else {
            continue;
        };
        let content_type = response
            .headers()
            .get("content-type")
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
            .split(';')
            .next()
            .unwrap()
            .to_owned();
        let media = content
            .get(&content_type)
            .unwrap_or_else(|| panic!("{what}: content type {content_type:?} not documented"));
        if content_type == "application/json" {
            let body: Value = response.json().await.unwrap();
            check(&spec, &media["schema"], &body, &what).unwrap();
        }
    }
    // The cases reach the answers worth checking: streams, refusals, a close's 204.
    for expected in [
        ("subscribe", "200"),
        ("subscribe", "400"),
        ("subscribeTopic", "204"),
        ("publish", "200"),
        ("publish", "400"),
        ("publish", "413"),
        ("publish", "415"),
    ] {
        assert!(
            statuses_seen.contains(&(expected.0, expected.1.to_owned())),
            "no case answered {expected:?}"
        );
    }
}

#[test]
fn the_schema_check_refuses_what_does_not_match() {
    let spec: Value = serde_json::from_str(SPEC).unwrap();
    let published = json!({"$ref": "#/components/schemas/Published"});
    let topic = json!({"$ref": "#/components/schemas/TopicInfo"});
    assert!(check(
        &spec,
        &published,
        &json!({"id": "1-0", "delivered": 2}),
        "ok"
    )
    .is_ok());
    assert!(check(&spec, &published, &json!({"id": 1, "delivered": 2}), "id").is_err());
    assert!(check(
        &spec,
        &published,
        &json!({"id": "1-0", "delivered": -1}),
        "min"
    )
    .is_err());
    assert!(check(&spec, &published, &json!({"id": "1-0"}), "required").is_err());
    let info = json!({"topic": "t", "subscribers": 0, "lastEventId": null, "closed": false});
    assert!(check(&spec, &topic, &info, "null allowed").is_ok());
    let mut bad = info.clone();
    bad["lastEventId"] = json!(5);
    assert!(check(&spec, &topic, &bad, "type list").is_err());
    let batch = &spec["paths"]["/publish"]["post"]["responses"]["200"]["content"]
        ["application/json"]["schema"];
    assert!(check(&spec, batch, &json!([{"id": "a", "delivered": 0}]), "array").is_ok());
    assert!(check(&spec, batch, &json!("nope"), "oneOf").is_err());
}
