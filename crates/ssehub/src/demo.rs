//! The demo publishers (`--demo`): the seed articles' live examples on their own topics.

use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use ssehub_core::{EventName, NewEvent, Topic};
use tokio::task::JoinSet;
use tokio::time::{interval, sleep, MissedTickBehavior};

use crate::hub::Hub;
use crate::metrics::Metrics;

/// Publishes `data` on `topics`, named `event` (`None`: an unnamed message, which
/// `EventSource` hands to `onmessage`, as the seed articles send their counter and random
/// number). An event on several topics reaches a subscriber of several of them once.
fn publish(hub: &Arc<Hub>, topics: &[&'static str], event: Option<&str>, data: String) {
    let topics = topics
        .iter()
        .map(|t| Topic::new(t).expect("demo topic"))
        .collect();
    let mut new = NewEvent::new(topics, data);
    new.name = event.map(|e| EventName::new(e).expect("demo event name"));
    let hub = hub.clone();
    tokio::spawn(async move {
        if let Err(e) = hub.publish(new).await {
            tracing::warn!(error = %e, "demo publish failed");
        }
    });
}

/// Starts every demo publisher; they stop when the set is dropped. Each sends what its seed
/// article's server sends (docs/http-api.md, "Demo sources"):
/// - `clock` (seed 000): `current-date` every 5 s;
/// - `counter` (seed 002): an unnamed message with the count every second;
/// - `random` (seed 003): an unnamed message, 1..=1000, at random intervals under 3 s;
/// - `analytics` (seed 001): an unnamed JSON object every second, the hub's own figures;
/// - `ticker` (seed 003): `news` as text, `weather` and `stock` as the article's JSON
///   objects; each event is also on `ticker/news`, `ticker/weather` or `ticker/stockprice`,
///   the article's one-URL-per-channel form, so one stream or one channel both work.
pub fn start(hub: Arc<Hub>) -> JoinSet<()> {
    let mut tasks = JoinSet::new();
    let h = hub.clone();
    tasks.spawn(every(Duration::from_secs(5), move |_| {
        publish(&h, &["clock"], Some("current-date"), utc_now());
    }));
    let h = hub.clone();
    tasks.spawn(every(Duration::from_secs(1), move |n| {
        publish(&h, &["counter"], None, n.to_string());
    }));
    let h = hub.clone();
    tasks.spawn(async move {
        loop {
            sleep(Duration::from_millis(fastrand::u64(50..3000))).await;
            publish(&h, &["random"], None, fastrand::u32(1..=1000).to_string());
        }
    });
    let h = hub.clone();
    let mut last_published = 0;
    let started = std::time::Instant::now();
    tasks.spawn(every(Duration::from_secs(1), move |_| {
        let published = Metrics::get(&h.metrics.events_published);
        let connections = Metrics::get(&h.metrics.connections);
        let data = serde_json::json!({
            // Seed 001's fields, filled with the hub's figures.
            "activeUsers": connections,
            "requests": published,
            "uptime": started.elapsed().as_secs_f64(),
            "connections": connections,
            "eventsPerSecond": published - last_published,
            "eventsPublished": published,
            "eventsDelivered": Metrics::get(&h.metrics.deliveries),
            "topics": h.topic_count(),
        });
        last_published = published + 1; // this event counts too
        publish(&h, &["analytics"], None, data.to_string());
    }));
    let h = hub;
    tasks.spawn(every(Duration::from_millis(1500), move |n| {
        let (topics, event, data) = ticker(n);
        publish(&h, &topics, Some(event), data);
    }));
    tasks
}

/// The ticker's `n`th event: its topics, name and data, in seed 003's shapes.
fn ticker(n: u64) -> ([&'static str; 2], &'static str, String) {
    match n % 3 {
        0 => (
            ["ticker", "ticker/news"],
            "news",
            format!("Headline #{n}: SSE is great!"),
        ),
        1 => (
            ["ticker", "ticker/weather"],
            "weather",
            serde_json::json!({
                "temperature": format!("{}C", fastrand::i32(-5..35)),
                "wind": format!("{}Kph", fastrand::u32(0..60)),
                "rain": format!("{}%", fastrand::u32(0..=100)),
            })
            .to_string(),
        ),
        _ => {
            let (symbol, company, base) =
                [("AC", "Acme Corp", 123.45), ("SSEH", "ssehub Inc", 42.0)][fastrand::usize(..2)];
            let increase = (fastrand::f64() * 6.0 - 3.0) * 10.0;
            let increase = increase.round() / 10.0;
            let price = ((base * (1.0 + increase / 100.0)) * 100.0).round() / 100.0;
            (
                ["ticker", "ticker/stockprice"],
                "stock",
                serde_json::json!({
                    "symbol": symbol,
                    "company": company,
                    "price": price,
                    "increase": increase,
                })
                .to_string(),
            )
        }
    }
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
    fn ticker_events_have_seed_003_shapes() {
        for n in 0..30 {
            let (topics, event, data) = super::ticker(n);
            assert_eq!(topics[0], "ticker");
            match event {
                "news" => assert_eq!(topics[1], "ticker/news"),
                "weather" => {
                    assert_eq!(topics[1], "ticker/weather");
                    let w: serde_json::Value = serde_json::from_str(&data).unwrap();
                    for key in ["temperature", "wind", "rain"] {
                        assert!(w[key].is_string(), "{data}");
                    }
                    assert!(w["temperature"].as_str().unwrap().ends_with('C'));
                }
                "stock" => {
                    assert_eq!(topics[1], "ticker/stockprice");
                    let s: serde_json::Value = serde_json::from_str(&data).unwrap();
                    assert!(
                        s["symbol"].is_string() && s["company"].is_string(),
                        "{data}"
                    );
                    assert!(s["price"].is_f64() && s["increase"].is_number(), "{data}");
                }
                other => panic!("unexpected ticker event {other}"),
            }
        }
    }

    #[test]
    fn formats_dates() {
        assert_eq!(super::format_utc(0), "1970-01-01T00:00:00Z");
        assert_eq!(super::format_utc(951_782_400), "2000-02-29T00:00:00Z");
        assert_eq!(super::format_utc(1_795_382_584), "2026-11-22T21:23:04Z");
    }
}
