//! The ssehub hub: fan-out, replay, presence, limits and shutdown, and the HTTP API that
//! exposes them. Start it with [`serve`]; the binary crate only builds a [`Config`] and a
//! store and calls it.

mod auth;
mod bridges;
mod coalesce;
mod config;
mod demo;
mod error;
mod form;
#[doc(hidden)]
pub mod fuzzing;
mod http;
mod hub;
mod keys;
mod mercure;
mod metrics;
mod open;
mod outbox;
mod rate;
mod routes;
mod selection;
mod selector;
mod server;
mod stream;
mod tls;

use std::future::Future;
use std::sync::Arc;

use tokio::net::TcpListener;

pub use bridges::{BridgeState, BridgeStatus, Bridges};
pub use config::{AuthConfig, Config, CorsOrigins, Dialect};
pub use error::ApiError;
pub use http::CLOSE_EVENT;
pub use hub::{
    log_reply, Answered, Engine, EnginePublish, Hub, Published, SubscribeError, TopicInfo,
    PRESENCE_EVENT,
};
/// JWS algorithms, for the allow-list.
pub use jsonwebtoken::Algorithm as JwtAlgorithm;
pub use keys::{parse_algorithms, KeyMaterial, Verifier, DEFAULT_ALGORITHMS};
pub use metrics::Metrics;
pub use open::RESET_EVENT;
pub use routes::{RouteSpec, Routes, Template, Val, WelcomeSpec};
pub use selection::{AnyTopic, Exact, PrivateAccess, Selection, SubscriptionHook, TopicMatcher};
pub use tls::{TlsConfig, TlsError};

/// The hub's HTTP router: the native API with the Mercure endpoint's routes merged in, every
/// publishing route of both behind one per-address publish rate limit.
pub fn router(hub: Arc<Hub>) -> axum::Router {
    let limit = rate::PublishRate::new(&hub);
    let mercure = mercure::routes(&limit);
    http::router(hub, &limit, mercure)
}

/// How often the hub ends streams whose token has expired.
const EXPIRY_TICK: std::time::Duration = std::time::Duration::from_secs(1);
/// How often the hub forgets topics with neither subscribers nor history.
const TOPIC_SWEEP: std::time::Duration = std::time::Duration::from_secs(30);

/// Serves the hub on `listener` until `shutdown` resolves, then ends every stream and
/// returns once connections are closed or the configured grace period has passed.
pub async fn serve(
    listener: TcpListener,
    hub: Arc<Hub>,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let mut background = if hub.config.demo {
        demo::start(hub.clone())
    } else {
        Default::default()
    };
    let h = hub.clone();
    background.spawn(async move {
        let mut timer = tokio::time::interval(h.config.heartbeat);
        timer.tick().await;
        loop {
            timer.tick().await;
            h.heartbeat();
        }
    });
    let h = hub.clone();
    background.spawn(async move {
        // Token expiry: one tick a second for the whole hub. A stream ends up to one tick
        // before its deadline, never after.
        let mut timer = tokio::time::interval(EXPIRY_TICK);
        loop {
            timer.tick().await;
            h.expire(auth::now_ms(), EXPIRY_TICK.as_millis() as u64);
        }
    });
    let h = hub.clone();
    background.spawn(async move {
        let mut timer = tokio::time::interval(TOPIC_SWEEP);
        timer.tick().await;
        loop {
            timer.tick().await;
            let forgotten = h.forget_idle_topics();
            if forgotten > 0 {
                tracing::debug!(forgotten, "forgot topics without subscribers or history");
            }
        }
    });
    let result = server::run(listener, hub.clone(), router(hub.clone()), shutdown).await;
    background.shutdown().await;
    result
}
