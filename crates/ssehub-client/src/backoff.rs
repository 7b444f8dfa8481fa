//! How long a subscriber waits before its next connection attempt.
//!
//! After a healthy connection ends, the wait is the server's reconnection time (`retry:`),
//! exactly as a browser waits: the hub already jitters that value per connection. After each
//! failed attempt the wait doubles, capped, with "equal jitter" (a random point in the upper
//! half of the window) so that many clients cut off by the same outage do not come back in
//! lockstep, yet none comes back sooner than the server asked.

use std::time::Duration;

/// The smallest step the exponential back-off grows from, so a `retry: 0` from the server
/// cannot turn a run of failures into a busy loop.
const MIN_STEP: Duration = Duration::from_millis(100);

/// Beyond this many doublings every realistic window is already at its cap.
const MAX_DOUBLINGS: u32 = 20;

/// The wait before the next attempt.
///
/// `retry` is the reconnection time (the server's `retry:` value, or the configured initial
/// one); `failures` the number of failed attempts since the last healthy connection; `max`
/// caps the back-off (never the server's own `retry`); `jitter` is a random number in
/// `[0, 1]`.
pub(crate) fn reconnect_delay(
    retry: Duration,
    failures: u32,
    max: Duration,
    jitter: f64,
) -> Duration {
    if failures == 0 {
        return retry;
    }
    let step = retry.max(MIN_STEP);
    let window = step
        .saturating_mul(1 << failures.min(MAX_DOUBLINGS))
        .min(max)
        .max(step);
    let jitter = if jitter.is_finite() {
        jitter.clamp(0.0, 1.0)
    } else {
        0.0
    };
    window.mul_f64(0.5 + 0.5 * jitter).max(retry)
}

#[cfg(test)]
mod tests {
    use super::*;

    const S: fn(u64) -> Duration = Duration::from_millis;

    #[test]
    fn a_healthy_reconnect_waits_exactly_the_servers_retry() {
        for jitter in [0.0, 0.5, 1.0] {
            assert_eq!(reconnect_delay(S(3000), 0, S(30_000), jitter), S(3000));
            assert_eq!(reconnect_delay(S(0), 0, S(30_000), jitter), S(0));
            // The cap bounds the back-off, not the server's own choice.
            assert_eq!(reconnect_delay(S(60_000), 0, S(30_000), jitter), S(60_000));
        }
    }

    #[test]
    fn failures_double_the_window() {
        // (failures, lowest, highest) for retry 1000 ms, cap 30 s.
        let table = [
            (1, 1000, 2000),
            (2, 2000, 4000),
            (3, 4000, 8000),
            (4, 8000, 16_000),
            (5, 15_000, 30_000),
            (6, 15_000, 30_000),
            (1000, 15_000, 30_000),
            (u32::MAX, 15_000, 30_000),
        ];
        for (failures, low, high) in table {
            assert_eq!(
                reconnect_delay(S(1000), failures, S(30_000), 0.0),
                S(low),
                "{failures}"
            );
            assert_eq!(
                reconnect_delay(S(1000), failures, S(30_000), 1.0),
                S(high),
                "{failures}"
            );
            let mid = reconnect_delay(S(1000), failures, S(30_000), 0.5);
            assert!(S(low) <= mid && mid <= S(high), "{failures}: {mid:?}");
        }
    }

    #[test]
    fn never_sooner_than_the_server_asked() {
        for failures in 0..40 {
            for jitter in [0.0, 0.3, 1.0] {
                let d = reconnect_delay(S(3000), failures, S(5000), jitter);
                assert!(d >= S(3000), "{failures} {jitter}: {d:?}");
            }
        }
        // A server retry above the cap wins over the cap.
        assert_eq!(reconnect_delay(S(60_000), 3, S(30_000), 0.0), S(60_000));
        assert_eq!(reconnect_delay(S(60_000), 3, S(30_000), 1.0), S(60_000));
    }

    #[test]
    fn retry_zero_still_backs_off() {
        assert_eq!(reconnect_delay(S(0), 1, S(30_000), 1.0), S(200));
        assert_eq!(reconnect_delay(S(0), 1, S(30_000), 0.0), S(100));
        assert_eq!(reconnect_delay(S(0), 3, S(30_000), 1.0), S(800));
        assert!(reconnect_delay(S(0), 1, S(30_000), 0.0) > Duration::ZERO);
    }

    #[test]
    fn odd_jitter_values_are_tamed() {
        assert_eq!(reconnect_delay(S(1000), 1, S(30_000), -5.0), S(1000));
        assert_eq!(reconnect_delay(S(1000), 1, S(30_000), 7.0), S(2000));
        assert_eq!(reconnect_delay(S(1000), 1, S(30_000), f64::NAN), S(1000));
    }

    #[test]
    fn jitter_spreads_clients() {
        let delays: std::collections::BTreeSet<Duration> = (0..100)
            .map(|_| reconnect_delay(S(1000), 3, S(30_000), fastrand::f64()))
            .collect();
        assert!(delays.len() > 50, "{} distinct delays", delays.len());
    }
}
