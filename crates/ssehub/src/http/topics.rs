//! `GET /topics`, `GET /topics/{topic}`, `GET /healthz`, `GET /metrics`.

use std::fmt::Write;
use std::sync::Arc;

use axum::extract::{Path, State};
use axum::http::header;
use axum::response::IntoResponse;
use axum::Json;
use serde_json::{json, Value};

use crate::bridges::{BridgeState, BridgeStatus};
use crate::error::ApiError;
use crate::http::publish::parse_topic;
use crate::hub::{Hub, TopicInfo};
use crate::metrics::Metrics;

pub async fn list(State(hub): State<Arc<Hub>>) -> Json<Value> {
    Json(json!({ "topics": hub.topics() }))
}

pub async fn one(
    State(hub): State<Arc<Hub>>,
    Path(topic): Path<String>,
) -> Result<Json<TopicInfo>, ApiError> {
    let topic = parse_topic(&topic)?;
    Ok(Json(hub.topic(topic.as_str())))
}

/// `ok`, or `degraded` (still `200`: the hub serves) while a bridge is not running, with
/// each such bridge's state and last error.
pub async fn healthz(State(hub): State<Arc<Hub>>) -> Json<Value> {
    let troubled: serde_json::Map<String, Value> = hub
        .bridges
        .all()
        .iter()
        .filter(|b| b.state() != BridgeState::Running)
        .map(|b| {
            let detail = json!({"state": b.state(), "lastError": b.last_error()});
            (b.name.clone(), detail)
        })
        .collect();
    if troubled.is_empty() {
        return Json(json!({ "status": "ok" }));
    }
    Json(json!({ "status": "degraded", "bridges": troubled }))
}

/// One `ssehub_bridge_*` series: its name, kind, help and how to read it.
type Series = (
    &'static str,
    &'static str,
    &'static str,
    fn(&BridgeStatus) -> u64,
);

/// The `ssehub_bridge_*` lines: per bridge, labelled with its name and kind.
fn bridge_metrics(hub: &Hub, out: &mut String) {
    let bridges = hub.bridges.all();
    if bridges.is_empty() {
        return;
    }
    let label = |b: &BridgeStatus| {
        let escape = |s: &str| s.replace('\\', "\\\\").replace('"', "\\\"");
        format!(
            "{{bridge=\"{}\",kind=\"{}\"}}",
            escape(&b.name),
            escape(&b.kind)
        )
    };
    let series: [Series; 6] = [
        (
            "up",
            "gauge",
            "1 while the bridge is connected and forwarding.",
            |b| u64::from(b.state() == BridgeState::Running),
        ),
        (
            "received_total",
            "counter",
            "Messages read from the source.",
            |b| BridgeStatus::get(&b.received),
        ),
        (
            "published_total",
            "counter",
            "Events published into the hub.",
            |b| BridgeStatus::get(&b.published),
        ),
        (
            "skipped_total",
            "counter",
            "Messages skipped (poison or duplicates).",
            |b| BridgeStatus::get(&b.skipped),
        ),
        (
            "errors_total",
            "counter",
            "Connection and publish failures.",
            |b| BridgeStatus::get(&b.errors),
        ),
        (
            "lag",
            "gauge",
            "Messages waiting at the source, where it says.",
            |b| BridgeStatus::get(&b.lag),
        ),
    ];
    for (name, kind, help, value) in series {
        let _ = writeln!(
            out,
            "# HELP ssehub_bridge_{name} {help}\n# TYPE ssehub_bridge_{name} {kind}"
        );
        for b in &bridges {
            let _ = writeln!(out, "ssehub_bridge_{name}{} {}", label(b), value(b));
        }
    }
}

pub async fn metrics(State(hub): State<Arc<Hub>>) -> impl IntoResponse {
    let m = &hub.metrics;
    let stats = hub.store.stats();
    let mut out = String::new();
    let mut put = |name: &str, kind: &str, help: &str, value: u64| {
        let _ = writeln!(
            out,
            "# HELP ssehub_{name} {help}\n# TYPE ssehub_{name} {kind}\nssehub_{name} {value}"
        );
    };
    put(
        "connections",
        "gauge",
        "Subscriber streams open now.",
        Metrics::get(&m.connections),
    );
    put(
        "connections_total",
        "counter",
        "Subscriber streams opened.",
        Metrics::get(&m.connections_total),
    );
    put(
        "connections_refused_total",
        "counter",
        "Subscribe requests refused by the connection limit.",
        Metrics::get(&m.connections_refused),
    );
    put(
        "connections_refused_per_ip_total",
        "counter",
        "Connections refused by the per-address limit.",
        Metrics::get(&m.connections_refused_per_ip),
    );
    put(
        "topics_refused_total",
        "counter",
        "Publishes and subscribes refused at the topic table's limit (max_hub_topics).",
        Metrics::get(&m.topics_refused),
    );
    put(
        "events_published_total",
        "counter",
        "Events published.",
        Metrics::get(&m.events_published),
    );
    put(
        "events_delivered_total",
        "counter",
        "Events queued for a subscriber, one per subscriber reached.",
        Metrics::get(&m.deliveries),
    );
    put(
        "events_replayed_total",
        "counter",
        "Events written during replays.",
        Metrics::get(&m.replayed),
    );
    put(
        "bytes_written_total",
        "counter",
        "Bytes handed to subscriber sockets.",
        Metrics::get(&m.bytes_written),
    );
    put(
        "slow_consumer_drops_total",
        "counter",
        "Streams ended because the subscriber read too slowly.",
        Metrics::get(&m.slow_consumer_drops),
    );
    put(
        "publish_rejected_total",
        "counter",
        "Publish requests refused as invalid.",
        Metrics::get(&m.publish_rejected),
    );
    put(
        "publish_rate_limited_total",
        "counter",
        "Publish requests refused by the per-address publish rate (429).",
        Metrics::get(&m.publish_rate_limited),
    );
    put(
        "topics",
        "gauge",
        "Topics known to the hub.",
        hub.topic_count() as u64,
    );
    put(
        "history_events",
        "gauge",
        "Events retained in the history.",
        stats.events,
    );
    put(
        "history_bytes",
        "gauge",
        "Bytes of events retained in the history.",
        stats.bytes,
    );
    put(
        "cluster_nodes",
        "gauge",
        "Hub nodes in the cluster as last seen, this one included (1 without a cluster).",
        hub.cluster_nodes().unwrap_or(1) as u64,
    );
    let sync = hub.store.sync_stats();
    let _ = writeln!(
        out,
        "# HELP ssehub_store_fsync_seconds Time the store spent in fsync.\n\
         # TYPE ssehub_store_fsync_seconds summary\n\
         ssehub_store_fsync_seconds_sum {}\nssehub_store_fsync_seconds_count {}",
        sync.fsync_nanos as f64 / 1e9,
        sync.fsyncs
    );
    let limits = [
        ("max_connections", hub.config.max_connections as u64),
        (
            "max_connections_per_ip",
            hub.config.max_connections_per_ip as u64,
        ),
        ("max_header_bytes", hub.config.max_header_bytes as u64),
        ("max_topics", hub.config.max_topics as u64),
        ("max_hub_topics", hub.config.max_hub_topics as u64),
        ("max_payload_bytes", hub.config.max_payload as u64),
        ("publish_rate", hub.config.publish_rate),
        ("publish_burst", hub.config.publish_burst),
        ("head_timeout_seconds", hub.config.head_timeout.as_secs()),
        (
            "subscriber_buffer_bytes",
            hub.config.subscriber_buffer as u64,
        ),
    ];
    out.push_str("# HELP ssehub_limit Configured limits.\n# TYPE ssehub_limit gauge\n");
    for (name, value) in limits {
        let _ = writeln!(out, "ssehub_limit{{name=\"{name}\"}} {value}");
    }
    out.push_str("# HELP ssehub_topic_subscribers Subscribers per topic.\n# TYPE ssehub_topic_subscribers gauge\n");
    for info in hub.local_topics().into_iter().filter(|t| t.subscribers > 0) {
        let name = info.topic.replace('\\', "\\\\").replace('"', "\\\"");
        let _ = writeln!(
            out,
            "ssehub_topic_subscribers{{topic=\"{name}\"}} {}",
            info.subscribers
        );
    }
    bridge_metrics(&hub, &mut out);
    ([(header::CONTENT_TYPE, "text/plain; version=0.0.4")], out)
}
