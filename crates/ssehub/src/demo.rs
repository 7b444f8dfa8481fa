//! The demo publishers (`--demo`): the seed articles' live examples on their own topics.

use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use ssehub_core::{EventName, NewEvent, Topic};
use tokio::task::JoinSet;
use tokio::time::{interval, sleep, MissedTickBehavior};

use crate::hub::Hub;
use crate::metrics::Metrics;

fn publish(hub: &Arc<Hub>, topic: &'static str, event: &str, data: String) {
    let mut new = NewEvent::new(vec![Topic::new(topic).expect("demo topic")], data);
    new.name = Some(EventName::new(event).expect("demo event name"));
    let hub = hub.clone();
    tokio::spawn(async move {
        if let Err(e) = hub.publish(new).await {
            tracing::warn!(error = %e, topic, "demo publish failed");
        }
    });
}

/// Starts every demo publisher; they stop when the set is dropped.
pub fn start(hub: Arc<Hub>) -> JoinSet<()> {
    let mut tasks = JoinSet::new();
    let h = hub.clone();
    tasks.spawn(every(Duration::from_secs(5), move |_| {
        publish(&h, "clock", "current-date", utc_now());
    }));
    let h = hub.clone();
    tasks.spawn(every(Duration::from_secs(1), move |n| {
        publish(&h, "counter", "counter", n.to_string());
    }));
    let h = hub.clone();
    tasks.spawn(async move {
        loop {
            sleep(Duration::from_millis(fastrand::u64(100..3000))).await;
            publish(&h, "random", "random", fastrand::u32(1..=1000).to_string());
        }
    });
    let h = hub.clone();
    let mut last_published = 0;
    tasks.spawn(every(Duration::from_secs(1), move |_| {
        let published = Metrics::get(&h.metrics.events_published);
        let data = serde_json::json!({
            "connections": Metrics::get(&h.metrics.connections),
            "eventsPerSecond": published - last_published,
            "eventsPublished": published,
            "eventsDelivered": Metrics::get(&h.metrics.deliveries),
            "topics": h.topic_count(),
        });
        last_published = published + 1; // this event counts too
        publish(&h, "analytics", "analytics", data.to_string());
    }));
    let h = hub;
    tasks.spawn(every(Duration::from_millis(1500), move |n| {
        let (event, data) = match n % 3 {
            0 => (
                "news",
                format!("Headline #{n}: ssehub ships another release"),
            ),
            1 => (
                "weather",
                format!(
                    "{}°C and {}",
                    fastrand::i32(-5..35),
                    ["sunny", "cloudy", "rainy"][fastrand::usize(..3)]
                ),
            ),
            _ => (
                "stock",
                serde_json::json!({"symbol": "SSEH", "price": 100.0 + fastrand::f64() * 10.0})
                    .to_string(),
            ),
        };
        publish(&h, "ticker", event, data);
    }));
    tasks
}

async fn every(period: Duration, mut tick: impl FnMut(u64) + Send + 'static) {
    let mut timer = interval(period);
    timer.set_missed_tick_behavior(MissedTickBehavior::Delay);
    timer.tick().await;
    for n in 1.. {
        timer.tick().await;
        tick(n);
    }
}

/// The current time as `YYYY-MM-DDTHH:MM:SSZ`.
fn utc_now() -> String {
    let secs = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    format_utc(secs)
}

fn format_utc(secs: u64) -> String {
    let (days, rem) = (secs / 86_400, secs % 86_400);
    // Civil date from days since 1970-01-01 (the proleptic Gregorian calendar).
    let z = days as i64 + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

#[cfg(test)]
mod tests {
    #[test]
    fn formats_dates() {
        assert_eq!(super::format_utc(0), "1970-01-01T00:00:00Z");
        assert_eq!(super::format_utc(951_782_400), "2000-02-29T00:00:00Z");
        assert_eq!(super::format_utc(1_795_382_584), "2026-11-22T21:23:04Z");
    }
}
