//! The HTTP edge: routes, CORS, the built-in page. Handlers decode, call the hub, encode.

mod alias;
mod body;
mod publish;
mod stats;
mod subscribe;
mod topics;

use std::sync::Arc;
use std::time::Duration;

use axum::extract::DefaultBodyLimit;
use axum::http::{header, HeaderName, HeaderValue, Method};
use axum::response::Html;
use axum::routing::get;
use axum::Router;
use tower_http::cors::{AllowOrigin, CorsLayer};
use tower_http::services::ServeDir;

pub use publish::CLOSE_EVENT;
pub(crate) use publish::{check_batch_decoders, decode_valid as decode_publish};
pub use subscribe::{prepare as prepare_stream, STREAM_HEADERS};

use crate::config::CorsOrigins;
use crate::hub::Hub;
use crate::rate::{PublishRate, Style};

/// The built-in page, compiled into the binary.
const PAGE: &str = include_str!("../../../../web/index.html");
/// The JavaScript client's browser build (clients/js), served at `/ssehub.js`.
const CLIENT_SCRIPT: &str = include_str!("../../../../clients/js/dist/ssehub.js");

/// The native API's routes and the hub's page around `protocols` (the other protocols'
/// routes, merged in by the wiring in `lib.rs`): route aliases in front, the body limit and
/// CORS over all of them. Every publishing route (POST, DELETE) goes through `limit`, the
/// one per-address rate limit the hub's routes share.
pub fn router(
    hub: Arc<Hub>,
    limit: &Option<Arc<PublishRate>>,
    protocols: Router<Arc<Hub>>,
) -> Router {
    let limited = |style, route| PublishRate::wrap(limit, style, route);
    let mut router: Router<Arc<Hub>> = Router::new()
        .route("/events", get(subscribe::events))
        .route("/events/{topic}", get(subscribe::events_topic))
        .route(
            "/publish",
            limited(Style::Json, axum::routing::post(publish::publish)),
        )
        .route("/topics", get(topics::list))
        .route(
            "/topics/{topic}",
            limited(Style::Json, get(topics::one).delete(publish::close_topic)),
        )
        .route("/healthz", get(topics::healthz))
        .route("/metrics", get(topics::metrics))
        .route("/stats/stream", stats::route())
        .route("/ssehub.js", get(client_script))
        .merge(protocols);
    router = match &hub.config.public_dir {
        Some(dir) => router.fallback_service(ServeDir::new(dir)),
        None => router.route("/", get(|| async { Html(PAGE) })),
    };
    // Route aliases go first; the native API serves whatever they do not claim.
    if !hub.routes.is_empty() {
        router = alias::router(&hub, limit).fallback_service(router.with_state(hub.clone()));
    }
    let router = router.layer(DefaultBodyLimit::max(hub.config.max_payload));
    let router = match cors(&hub.config.cors_origins) {
        Some(layer) => router.layer(layer),
        None => router,
    };
    router.with_state(hub)
}

/// `GET /ssehub.js`: the client's browser build. It changes only with the binary, so an hour
/// of caching is safe and spares a page reload the download.
async fn client_script() -> impl axum::response::IntoResponse {
    (
        [
            (
                header::CONTENT_TYPE,
                "application/javascript; charset=utf-8",
            ),
            (header::CACHE_CONTROL, "public, max-age=3600"),
        ],
        CLIENT_SCRIPT,
    )
}

/// The CORS headers for a stream answered outside axum (see `server/direct.rs`); the same grants
/// the `CorsLayer` below gives.
pub fn stream_cors_headers(
    origins: &CorsOrigins,
    origin: Option<&str>,
) -> Vec<(&'static str, String)> {
    let mut headers = Vec::new();
    match (origins, origin) {
        (CorsOrigins::None, _) => {}
        (CorsOrigins::Any, _) => headers.push(("access-control-allow-origin", "*".to_owned())),
        (CorsOrigins::List(list), origin) => {
            headers.push((
                "vary",
                "origin, access-control-request-method, access-control-request-headers".to_owned(),
            ));
            if let Some(origin) = origin.filter(|o| list.iter().any(|l| l == o)) {
                headers.push(("access-control-allow-origin", origin.to_owned()));
                headers.push(("access-control-allow-credentials", "true".to_owned()));
            }
        }
    }
    headers
}

fn cors(origins: &CorsOrigins) -> Option<CorsLayer> {
    let base = CorsLayer::new()
        .allow_methods([Method::GET, Method::POST, Method::DELETE])
        .allow_headers([
            header::CONTENT_TYPE,
            header::AUTHORIZATION,
            header::CACHE_CONTROL,
            HeaderName::from_static("last-event-id"),
        ])
        .expose_headers([
            header::LINK,
            HeaderName::from_static("last-event-id"),
            HeaderName::from_static("mercure-last-event-id"),
        ])
        .max_age(Duration::from_secs(3600));
    match origins {
        CorsOrigins::None => None,
        CorsOrigins::Any => Some(base.allow_origin(AllowOrigin::any())),
        CorsOrigins::List(list) => {
            let list: Vec<HeaderValue> = list
                .iter()
                .filter_map(|o| HeaderValue::from_str(o).ok())
                .collect();
            Some(
                base.allow_origin(AllowOrigin::list(list))
                    .allow_credentials(true),
            )
        }
    }
}
