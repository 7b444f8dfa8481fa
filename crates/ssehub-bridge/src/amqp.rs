//! AMQP 0-9-1 (RabbitMQ): a durable queue (declared if missing, optionally bound to an
//! exchange with a routing key), consumed with manual acknowledgements: each message is
//! acknowledged only once the hub's store has its event — at least once. A message that
//! carries a `message_id` property (or the `id_field` of its JSON payload) is published
//! with that id, and a message delivered again after a crash is found in the history by it
//! and skipped.

use std::sync::Arc;

use futures_util::StreamExt;
use lapin::options::{
    BasicAckOptions, BasicConsumeOptions, BasicQosOptions, QueueBindOptions, QueueDeclareOptions,
};
use lapin::types::FieldTable;
use lapin::{Connection, ConnectionProperties};
use ssehub::{BridgeState, BridgeStatus, Hub};
use ssehub_core::WireId;

use crate::{now, poisoned, publish_once, ready, Bridge, RunResult};

pub(crate) async fn run(hub: &Arc<Hub>, bridge: &Bridge, status: &BridgeStatus) -> RunResult {
    let properties = ConnectionProperties::default()
        .with_executor(tokio_executor_trait::Tokio::current())
        .with_reactor(tokio_reactor_trait::Tokio::current());
    let connection = Connection::connect(&bridge.spec.url, properties)
        .await
        .map_err(|e| format!("connect: {e}"))?;
    let channel = connection
        .create_channel()
        .await
        .map_err(|e| format!("channel: {e}"))?;
    let queue = &bridge.spec.channels[0];
    channel
        .queue_declare(
            queue,
            QueueDeclareOptions {
                durable: true,
                ..QueueDeclareOptions::default()
            },
            FieldTable::default(),
        )
        .await
        .map_err(|e| format!("queue {queue}: {e}"))?;
    if let Some(exchange) = &bridge.spec.exchange {
        let key = bridge.spec.routing_key.as_deref().unwrap_or("#");
        channel
            .queue_bind(
                queue,
                exchange,
                key,
                QueueBindOptions::default(),
                FieldTable::default(),
            )
            .await
            .map_err(|e| format!("bind {queue} to {exchange} ({key}): {e}"))?;
    }
    let prefetch = crate::batch_size(bridge).min(u16::MAX as usize) as u16;
    channel
        .basic_qos(prefetch, BasicQosOptions::default())
        .await
        .map_err(|e| format!("qos: {e}"))?;
    let mut deliveries = channel
        .basic_consume(
            queue,
            &format!("ssehub-{}", bridge.name),
            BasicConsumeOptions::default(),
            FieldTable::default(),
        )
        .await
        .map_err(|e| format!("consume {queue}: {e}"))?;
    status.set_state(BridgeState::Running);
    tracing::info!(bridge = %bridge.name, queue = %queue, "bridge consuming");
    while let Some(first) = deliveries.next().await {
        // This delivery and those already here (at most the prefetch): one publish for the
        // lot, then one ack that covers them all.
        let taken = ready(first, prefetch as usize, || now(&mut deliveries))
            .into_iter()
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| format!("delivery: {e}"))?;
        BridgeStatus::add(&status.received, taken.len() as u64);
        let mut events = Vec::with_capacity(taken.len());
        for delivery in &taken {
            let routing_key = delivery.routing_key.as_str();
            let id = delivery
                .properties
                .message_id()
                .as_ref()
                .map(|i| i.as_str());
            match bridge.mapping.event(
                routing_key,
                &delivery.data,
                None,
                &[],
                hub.config.max_payload,
            ) {
                Ok(mut new) => {
                    if new.custom_id.is_none() {
                        new.custom_id = id.and_then(|id| WireId::new(id).ok());
                    }
                    events.push(new);
                }
                Err(poison) => {
                    let at = format!("queue {queue} delivery {}", delivery.delivery_tag);
                    events.extend(poisoned(
                        bridge,
                        status,
                        &at,
                        &poison,
                        &delivery.data,
                        id,
                        hub,
                    ));
                }
            }
        }
        publish_once(hub, status, events).await?;
        // Durable in the hub's store (or poison): only now acknowledged, the last delivery's
        // ack covering the ones before it.
        let last = taken.last().expect("at least the first");
        last.ack(BasicAckOptions { multiple: true })
            .await
            .map_err(|e| format!("ack: {e}"))?;
    }
    Err("the consumer was cancelled".into())
}
