//! The publish rate limit (`publish_rate`, `publish_burst`): a token bucket per client
//! address, checked before a publish route's handler runs, so a refused request is never
//! decoded, authorised or stored. Over the limit: `429` with `Retry-After` (JSON on the
//! native API, plain text on the Mercure endpoint, as each answers its other errors).
//!
//! The address is the TCP peer's IP. The hub trusts no forwarding header, so behind a
//! reverse proxy every client shares the proxy's bucket.
//!
//! The table of buckets is bounded: a bucket that has refilled completely is the same as
//! no bucket, so sweeps drop those, and the table never holds more than [`MAX_CLIENTS`]
//! addresses; a new address that finds it full of active ones is refused (fail closed: a
//! flood from many addresses must not grow memory nor switch the limit off).

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::extract::{ConnectInfo, Request, State};
use axum::http::{header, HeaderValue, Method, StatusCode};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::MethodRouter;

use crate::error::{text_response, ApiError};
use crate::hub::Hub;
use crate::metrics::Metrics;

/// Most client addresses tracked at once (about 64 bytes each: a few MiB at most).
pub const MAX_CLIENTS: usize = 65_536;
/// How often the table is swept of full buckets even when it is not full.
const SWEEP_EVERY: Duration = Duration::from_secs(60);
/// Least time between two sweeps of a full table, so that a full table of active clients
/// does not make every new address pay for a scan of it.
const FULL_SWEEP_EVERY: Duration = Duration::from_secs(1);

/// How a refusal is written: as the route answers its other errors.
#[derive(Clone, Copy)]
pub enum Style {
    Json,
    Text,
}

/// The limiter of one router: shared by every publish route.
pub struct PublishRate {
    hub: Arc<Hub>,
    /// Tokens added per second.
    rate: f64,
    /// Tokens a bucket holds at most.
    burst: f64,
    table: Mutex<Table>,
}

struct Table {
    buckets: HashMap<IpAddr, Bucket>,
    swept: Instant,
}

struct Bucket {
    tokens: f64,
    /// When `tokens` was last brought up to date.
    at: Instant,
}

/// What the table says about one request.
#[derive(Debug, PartialEq)]
enum Verdict {
    Allowed,
    /// Retry after this many seconds (rounded up, at least 1).
    Refused(u64),
}

impl PublishRate {
    /// The limiter `hub.config` asks for; `None` when `publish_rate` is 0.
    pub fn new(hub: &Arc<Hub>) -> Option<Arc<PublishRate>> {
        let rate = hub.config.publish_rate;
        if rate == 0 {
            return None;
        }
        let burst = match hub.config.publish_burst {
            0 => rate,
            b => b,
        };
        Some(Arc::new(PublishRate {
            hub: hub.clone(),
            rate: rate as f64,
            burst: burst as f64,
            table: Mutex::new(Table {
                buckets: HashMap::new(),
                swept: Instant::now(),
            }),
        }))
    }

    /// `route` with its publishing methods (POST, DELETE) checked against the limit.
    pub fn wrap(
        limit: &Option<Arc<PublishRate>>,
        style: Style,
        route: MethodRouter<Arc<Hub>>,
    ) -> MethodRouter<Arc<Hub>> {
        match limit {
            None => route,
            Some(limit) => route.route_layer(middleware::from_fn_with_state(
                (limit.clone(), style),
                check,
            )),
        }
    }

    fn take(&self, ip: IpAddr, now: Instant) -> Verdict {
        let mut table = self.table.lock().unwrap_or_else(|e| e.into_inner());
        let full = table.buckets.len() >= MAX_CLIENTS;
        let since = now.saturating_duration_since(table.swept);
        if since >= SWEEP_EVERY || (full && since >= FULL_SWEEP_EVERY) {
            let (rate, burst) = (self.rate, self.burst);
            table
                .buckets
                .retain(|_, b| b.tokens + rate * now.duration_since(b.at).as_secs_f64() < burst);
            table.swept = now;
        }
        let capacity_left = table.buckets.len() < MAX_CLIENTS;
        let bucket = match table.buckets.get_mut(&ip) {
            Some(bucket) => bucket,
            None if capacity_left => table.buckets.entry(ip).or_insert(Bucket {
                tokens: self.burst,
                at: now,
            }),
            // Full of active addresses: refuse until the next sweep may make room.
            None => return Verdict::Refused(FULL_SWEEP_EVERY.as_secs().max(1)),
        };
        let elapsed = now.saturating_duration_since(bucket.at).as_secs_f64();
        bucket.tokens = (bucket.tokens + elapsed * self.rate).min(self.burst);
        bucket.at = now;
        if bucket.tokens >= 1.0 {
            bucket.tokens -= 1.0;
            Verdict::Allowed
        } else {
            let wait = (1.0 - bucket.tokens) / self.rate;
            Verdict::Refused((wait.ceil() as u64).max(1))
        }
    }
}

async fn check(
    State((limit, style)): State<(Arc<PublishRate>, Style)>,
    request: Request,
    next: Next,
) -> Response {
    let publishes = matches!(*request.method(), Method::POST | Method::DELETE);
    let peer = request
        .extensions()
        .get::<ConnectInfo<SocketAddr>>()
        .map(|ConnectInfo(peer)| peer.ip());
    let (true, Some(ip)) = (publishes, peer) else {
        return next.run(request).await;
    };
    let Verdict::Refused(retry_after) = limit.take(ip, Instant::now()) else {
        return next.run(request).await;
    };
    Metrics::add(&limit.hub.metrics.publish_rate_limited, 1);
    let message = format!(
        "too many publish requests from this address (publish_rate {}/s, publish_burst {}); \
         nothing was published",
        limit.rate, limit.burst
    );
    let status = StatusCode::TOO_MANY_REQUESTS;
    let mut response = match style {
        Style::Json => ApiError::new(status, message).into_response(),
        Style::Text => text_response(status, &message),
    };
    response
        .headers_mut()
        .insert(header::RETRY_AFTER, HeaderValue::from(retry_after));
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limiter(rate: u64, burst: u64) -> Arc<PublishRate> {
        let config = crate::Config {
            publish_rate: rate,
            publish_burst: burst,
            ..crate::Config::default()
        };
        let store = Arc::new(ssehub_core::MemoryStore::new(
            ssehub_core::Retention::events(10),
        ));
        PublishRate::new(&Hub::new(config, store)).expect("a limit")
    }

    #[test]
    fn a_bucket_allows_its_burst_then_refills_at_the_rate() {
        let limit = limiter(2, 3);
        let ip: IpAddr = [10, 0, 0, 1].into();
        let t0 = Instant::now();
        for _ in 0..3 {
            assert_eq!(limit.take(ip, t0), Verdict::Allowed);
        }
        assert_eq!(limit.take(ip, t0), Verdict::Refused(1));
        // Half a second at 2/s is one token.
        let t1 = t0 + Duration::from_millis(500);
        assert_eq!(limit.take(ip, t1), Verdict::Allowed);
        assert_eq!(limit.take(ip, t1), Verdict::Refused(1));
        // Another address has its own bucket.
        assert_eq!(limit.take([10, 0, 0, 2].into(), t1), Verdict::Allowed);
    }

    #[test]
    fn retry_after_rounds_the_wait_up() {
        // 1 token per second, burst 1: right after a take the wait is a whole second.
        let limit = limiter(1, 1);
        let ip: IpAddr = [10, 0, 0, 1].into();
        let t0 = Instant::now();
        assert_eq!(limit.take(ip, t0), Verdict::Allowed);
        assert_eq!(
            limit.take(ip, t0 + Duration::from_millis(100)),
            Verdict::Refused(1)
        );
    }

    #[test]
    fn the_table_is_bounded_and_swept_of_idle_buckets() {
        let limit = limiter(1000, 1);
        let t0 = Instant::now();
        let ip = |n: u32| IpAddr::from(std::net::Ipv4Addr::from(0x0a00_0000 + n));
        for n in 0..MAX_CLIENTS as u32 {
            assert_eq!(limit.take(ip(n), t0), Verdict::Allowed);
        }
        // Full of buckets that have not refilled: a new address is refused, not tracked.
        let refused = limit.take(ip(MAX_CLIENTS as u32), t0);
        assert!(matches!(refused, Verdict::Refused(_)), "{refused:?}");
        assert_eq!(limit.table.lock().unwrap().buckets.len(), MAX_CLIENTS);
        // A second later every bucket is full again (idle): the sweep drops them all.
        let t1 = t0 + FULL_SWEEP_EVERY;
        assert_eq!(limit.take(ip(MAX_CLIENTS as u32), t1), Verdict::Allowed);
        assert_eq!(limit.table.lock().unwrap().buckets.len(), 1);
    }
}
