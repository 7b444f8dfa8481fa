//! Redis: pub/sub channel patterns (at most once), and Streams read through a consumer
//! group, each entry acknowledged (`XACK`) only once the hub's store has its event (at least
//! once; the event's id is `<bridge>:<key>:<entry id>`, so an entry delivered again after a
//! crash is found in the history and skipped).

use std::sync::Arc;
use std::time::Duration;

use futures_util::StreamExt;
use redis::streams::StreamReadReply;
use serde_json::{Map, Value};
use ssehub::{BridgeState, BridgeStatus, Hub};
use ssehub_core::WireId;

use crate::{
    already_published, forward, now, poisoned, publish_batch, ready, Bridge, Message, RunResult,
};

/// How long one `XREADGROUP` waits for entries, in ms.
const BLOCK_MS: u64 = 1000;

fn client(bridge: &Bridge) -> Result<redis::Client, String> {
    redis::Client::open(bridge.spec.url.as_str()).map_err(|e| format!("url: {e}"))
}

pub(crate) async fn pubsub(hub: &Arc<Hub>, bridge: &Bridge, status: &BridgeStatus) -> RunResult {
    let mut pubsub = client(bridge)?
        .get_async_pubsub()
        .await
        .map_err(|e| format!("connect: {e}"))?;
    for pattern in &bridge.spec.channels {
        pubsub
            .psubscribe(pattern)
            .await
            .map_err(|e| format!("PSUBSCRIBE {pattern}: {e}"))?;
    }
    status.set_state(BridgeState::Running);
    tracing::info!(bridge = %bridge.name, patterns = ?bridge.spec.channels, "bridge subscribed");
    let mut messages = pubsub.on_message();
    let batch = crate::batch_size(bridge);
    while let Some(first) = messages.next().await {
        let taken = ready(first, batch, || now(&mut messages))
            .into_iter()
            .map(|message| {
                let channel = message.get_channel_name().to_owned();
                Message {
                    at: format!("channel {channel}"),
                    payload: message.get_payload_bytes().to_vec(),
                    vars: Vec::new(),
                    channel,
                }
            })
            .collect();
        forward(hub, bridge, status, taken).await;
    }
    Err("the subscription ended".into())
}

pub(crate) async fn stream(hub: &Arc<Hub>, bridge: &Bridge, status: &BridgeStatus) -> RunResult {
    // The reads block for up to BLOCK_MS; the client's default answer timeout (500 ms) would
    // call a quiet stream a failure and make the bridge reconnect with back-off.
    let config = redis::AsyncConnectionConfig::new()
        .set_response_timeout(Some(Duration::from_millis(BLOCK_MS + 10_000)));
    let mut conn = client(bridge)?
        .get_multiplexed_async_connection_with_config(&config)
        .await
        .map_err(|e| format!("connect: {e}"))?;
    let group = bridge.spec.group.as_deref().unwrap_or("ssehub");
    let consumer = bridge.spec.consumer.as_deref().unwrap_or("ssehub");
    for key in &bridge.spec.channels {
        let created: redis::RedisResult<()> = redis::cmd("XGROUP")
            .arg("CREATE")
            .arg(key)
            .arg(group)
            .arg("0")
            .arg("MKSTREAM")
            .query_async(&mut conn)
            .await;
        if let Err(e) = created {
            if e.code() != Some("BUSYGROUP") {
                return Err(format!("XGROUP CREATE {key}: {e}"));
            }
        }
    }
    status.set_state(BridgeState::Running);
    tracing::info!(bridge = %bridge.name, streams = ?bridge.spec.channels, group, "bridge reading streams");
    let batch = crate::batch_size(bridge);
    // First the entries delivered before a restart and never acknowledged, then new ones.
    let mut pending = true;
    loop {
        let start = if pending { "0" } else { ">" };
        let mut read = redis::cmd("XREADGROUP");
        read.arg("GROUP")
            .arg(group)
            .arg(consumer)
            .arg("COUNT")
            .arg(batch)
            .arg("BLOCK")
            .arg(BLOCK_MS)
            .arg("STREAMS");
        for key in &bridge.spec.channels {
            read.arg(key);
        }
        for _ in &bridge.spec.channels {
            read.arg(start);
        }
        let reply: Option<StreamReadReply> = read
            .query_async(&mut conn)
            .await
            .map_err(|e| format!("XREADGROUP: {e}"))?;
        let keys = reply.map(|r| r.keys).unwrap_or_default();
        let entries: usize = keys.iter().map(|k| k.ids.len()).sum();
        if entries == 0 {
            if pending {
                pending = false;
            }
            continue;
        }
        BridgeStatus::add(&status.received, entries as u64);
        for key in keys {
            let mut events = Vec::with_capacity(key.ids.len());
            let mut ids = Vec::with_capacity(key.ids.len());
            for entry in &key.ids {
                ids.push(entry.id.clone());
                let custom = format!("{}:{}:{}", bridge.name, key.key, entry.id);
                let at = format!("stream {} entry {}", key.key, entry.id);
                if already_published(hub, &custom) {
                    BridgeStatus::add(&status.skipped, 1);
                    continue;
                }
                let mut fields = Map::new();
                for (name, value) in &entry.map {
                    if let Ok(text) = redis::from_redis_value_ref::<String>(value) {
                        fields.insert(name.clone(), Value::String(text));
                    }
                }
                // The payload: the `data` field (or the configured one), else every field.
                let payload = match fields.get(bridge.spec.data_field.as_deref().unwrap_or("data"))
                {
                    Some(Value::String(s)) => s.clone(),
                    _ => Value::Object(fields.clone()).to_string(),
                };
                let mapping = &bridge.mapping;
                let mut new = match mapping.event(
                    &key.key,
                    payload.as_bytes(),
                    Some(&fields),
                    &[],
                    hub.config.max_payload,
                ) {
                    Ok(new) => new,
                    Err(poison) => {
                        let payload = payload.as_bytes();
                        events.extend(poisoned(
                            bridge,
                            status,
                            &at,
                            &poison,
                            payload,
                            Some(&custom),
                            hub,
                        ));
                        continue;
                    }
                };
                if new.custom_id.is_none() {
                    new.custom_id = Some(WireId::new(&custom).map_err(|e| e.to_string())?);
                }
                events.push(new);
            }
            publish_batch(hub, status, events).await?;
            // Durable in the hub's store (or poison): only now acknowledged.
            let mut ack = redis::cmd("XACK");
            ack.arg(&key.key).arg(group);
            for id in &ids {
                ack.arg(id);
            }
            let _: u64 = ack
                .query_async(&mut conn)
                .await
                .map_err(|e| format!("XACK: {e}"))?;
        }
    }
}
