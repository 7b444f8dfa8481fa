//! The subscriptions API: `GET /.well-known/mercure/subscriptions[/{topic}[/{subscriber}]]`
//! (dialect 0, JSON-LD) or `…/subscriptions[/{match_type}/{match}[/{subscriber}]]`
//! (dialect 1, plain JSON). Authorized like a private topic: with a subscriber key the
//! request's token must grant a topic matching the requested path. Served only when the
//! subscriptions feature (`mercure_subscriptions`) is on.

use std::sync::Arc;

use axum::extract::{Path, RawQuery, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::{json, Value};

use super::{
    segment, subscription_json, MatchKind, MercureError, SubscriberInfo, HUB_PATH,
    SUBSCRIPTIONS_PATH,
};
use crate::auth::{self, AuthError};
use crate::config::Dialect;
use crate::form;
use crate::hub::Hub;

/// Which subscriptions a request asks for.
struct Filter {
    kind: Option<&'static str>,
    selector: Option<String>,
    subscriber: Option<String>,
}

pub async fn subscription_list(
    State(hub): State<Arc<Hub>>,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
) -> Response {
    let filter = Filter {
        kind: None,
        selector: None,
        subscriber: None,
    };
    answer(&hub, query, &headers, filter)
}

pub async fn subscriptions_one(
    State(hub): State<Arc<Hub>>,
    Path(a): Path<String>,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
) -> Response {
    match hub.config.mercure_dialect {
        Dialect::V0 => answer(
            &hub,
            query,
            &headers,
            Filter {
                kind: None,
                selector: Some(a),
                subscriber: None,
            },
        ),
        Dialect::V1 => not_found(),
    }
}

pub async fn subscriptions_two(
    State(hub): State<Arc<Hub>>,
    Path((a, b)): Path<(String, String)>,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
) -> Response {
    let filter = match hub.config.mercure_dialect {
        Dialect::V0 => Filter {
            kind: None,
            selector: Some(a),
            subscriber: Some(b),
        },
        Dialect::V1 => match match_type(&a) {
            Some(kind) => Filter {
                kind: Some(kind),
                selector: Some(b),
                subscriber: None,
            },
            None => return not_found(),
        },
    };
    answer(&hub, query, &headers, filter)
}

pub async fn subscriptions_three(
    State(hub): State<Arc<Hub>>,
    Path((a, b, c)): Path<(String, String, String)>,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
) -> Response {
    let kind = match_type(&a);
    if hub.config.mercure_dialect != Dialect::V1 || kind.is_none() {
        return not_found();
    }
    let filter = Filter {
        kind,
        selector: Some(b),
        subscriber: Some(c),
    };
    answer(&hub, query, &headers, filter)
}

fn match_type(name: &str) -> Option<&'static str> {
    match name {
        "exact" => Some("exact"),
        "urlpattern" => Some("urlpattern"),
        _ => None,
    }
}

fn not_found() -> Response {
    MercureError::new(StatusCode::NOT_FOUND, "no such subscription").into_response()
}

fn answer(hub: &Hub, query: Option<String>, headers: &HeaderMap, filter: Filter) -> Response {
    let dialect = hub.config.mercure_dialect;
    if !hub.config.mercure_subscriptions {
        return MercureError::new(
            StatusCode::NOT_FOUND,
            "the subscriptions API is off (mercure_subscriptions)",
        )
        .into_response();
    }
    let mut path = SUBSCRIPTIONS_PATH.to_owned();
    for part in [
        filter.kind.map(str::to_owned),
        filter.selector.clone(),
        filter.subscriber.clone(),
    ]
    .into_iter()
    .flatten()
    {
        path.push('/');
        path.push_str(&segment(&part));
    }
    if let Err(e) = authorize(hub, query.as_deref(), headers, &path) {
        return MercureError::auth(e, dialect)
            .with_resource_metadata(headers, dialect)
            .into_response();
    }
    let mut found: Vec<Value> = Vec::new();
    for selection in hub.selections() {
        let Some(info) = selection
            .hook
            .as_ref()
            .and_then(|hook| hook.as_any().downcast_ref::<SubscriberInfo>())
        else {
            continue;
        };
        if filter.subscriber.as_deref().is_some_and(|s| s != info.id) {
            continue;
        }
        for (kind, selector) in &info.selectors {
            if filter.selector.as_deref().is_some_and(|s| s != selector) {
                continue;
            }
            if filter.kind.is_some_and(|k| k != kind_name(*kind, dialect)) {
                continue;
            }
            found.push(subscription_json(info, *kind, selector, true));
        }
    }
    let last_event_id = hub
        .store
        .stats()
        .newest
        .map_or_else(|| "earliest".to_owned(), |id| id.to_string());
    let single = filter.subscriber.is_some();
    if single && found.is_empty() {
        return not_found();
    }
    let body = match (dialect, single) {
        (Dialect::V0, true) => {
            let mut one = found.swap_remove(0);
            one["@context"] = json!("https://mercure.rocks/");
            one["lastEventID"] = json!(last_event_id);
            one
        }
        (Dialect::V0, false) => json!({
            "@context": "https://mercure.rocks/",
            "id": path,
            "type": "Subscriptions",
            "lastEventID": last_event_id,
            "subscriptions": found,
        }),
        (Dialect::V1, true) => found.swap_remove(0),
        (Dialect::V1, false) => json!({
            "id": path,
            "type": "subscriptions",
            "subscriptions": found,
        }),
    };
    let content_type = match dialect {
        Dialect::V0 => "application/ld+json",
        Dialect::V1 => "application/json",
    };
    let mut response = (
        StatusCode::OK,
        [(header::CONTENT_TYPE, content_type)],
        body.to_string(),
    )
        .into_response();
    let link = format!("<{HUB_PATH}>; rel=\"mercure\"; last-event-id=\"{last_event_id}\"");
    if let Ok(link) = HeaderValue::from_str(&link) {
        response.headers_mut().insert(header::LINK, link);
    }
    response
}

fn kind_name(kind: MatchKind, dialect: Dialect) -> &'static str {
    match dialect {
        Dialect::V0 => "exact",
        Dialect::V1 => kind.name(),
    }
}

/// With a subscriber key, the token must grant a topic matching `path`.
fn authorize(
    hub: &Hub,
    query: Option<&str>,
    headers: &HeaderMap,
    path: &str,
) -> Result<(), AuthError> {
    let Some(verifier) = &hub.config.auth.subscriber else {
        return Ok(());
    };
    let query_token = match (hub.config.mercure_dialect, query) {
        (Dialect::V0, Some(q)) => form::parse(q.as_bytes())
            .ok()
            .and_then(|pairs| pairs.into_iter().find(|(n, _)| n == "authorization"))
            .map(|(_, v)| v),
        _ => None,
    };
    let Some((token, _)) =
        auth::find_token(headers, hub.config.mercure_dialect, query_token.as_deref())
    else {
        return Err(AuthError::missing(
            "the subscriptions API needs a subscriber token",
        ));
    };
    let audience = auth::audience(&hub.config, headers);
    let grants = auth::verify_for(verifier, &token, &hub.config, audience.as_deref())?;
    if grants.may_subscribe(path) {
        Ok(())
    } else {
        Err(AuthError::forbidden(format!(
            "the token does not grant {path}"
        )))
    }
}
