//! Dialect 1 discovery: the RFC 9728 protected-resource metadata of the hub, at
//! `/.well-known/oauth-protected-resource/.well-known/mercure`, and the `resource_metadata`
//! parameter that points 401 answers at it.

use std::sync::Arc;

use axum::extract::State;
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::json;

use super::{MercureError, HUB_PATH};
use crate::auth::cookie_name;
use crate::config::Dialect;
use crate::hub::Hub;
use crate::selector::{origin, resource_identifier};

/// Where the metadata is served.
pub const METADATA_PATH: &str = "/.well-known/oauth-protected-resource/.well-known/mercure";

/// The metadata URL for this request's hub.
pub fn metadata_url(headers: &HeaderMap) -> Option<String> {
    origin(headers).map(|o| format!("{o}{METADATA_PATH}"))
}

pub async fn metadata(State(hub): State<Arc<Hub>>, headers: HeaderMap) -> Response {
    if hub.config.mercure_dialect != Dialect::V1 {
        return MercureError::new(
            StatusCode::NOT_FOUND,
            "protected-resource metadata is served in Mercure dialect 1",
        )
        .into_response();
    }
    let resource = hub
        .config
        .mercure_audience
        .clone()
        .or_else(|| resource_identifier(&headers))
        .unwrap_or_else(|| HUB_PATH.to_owned());
    let mut body = json!({
        "resource": resource,
        "bearer_methods_supported": ["header"],
        "authorization_details_types_supported": ["https://mercure.rocks/authorization-detail"],
        "mercure_cookie": cookie_name(Dialect::V1),
        "mercure_matcher_types_supported": ["exact", "urlpattern"],
        "mercure_subscriptions": hub.config.mercure_subscriptions,
    });
    if let Some(issuer) = &hub.config.mercure_issuer {
        body["authorization_servers"] = json!([issuer]);
    }
    (
        [(header::CONTENT_TYPE, "application/json")],
        body.to_string(),
    )
        .into_response()
}
