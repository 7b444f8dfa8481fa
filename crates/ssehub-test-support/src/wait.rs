//! Waiting for a condition that should come true soon, with a deadline.

use std::future::Future;
use std::time::Duration;

/// Calls `attempt` every `every` until it gives `Ok`, and returns that; panics with the
/// last `Err` (which says what was seen instead) once `within` has passed.
pub async fn wait_until<T, F, Fut>(within: Duration, every: Duration, mut attempt: F) -> T
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, String>>,
{
    let deadline = tokio::time::Instant::now() + within;
    loop {
        match attempt().await {
            Ok(value) => return value,
            Err(seen) => assert!(
                tokio::time::Instant::now() < deadline,
                "{seen} (still, after {within:?})"
            ),
        }
        tokio::time::sleep(every).await;
    }
}
