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

use crate::{poisoned, publish_once, Bridge, RunResult};

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
    let prefetch = bridge.spec.batch.unwrap_or(500).clamp(1, u16::MAX as usize) as u16;
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
    while let Some(delivery) = deliveries.next().await {
        let delivery = delivery.map_err(|e| format!("delivery: {e}"))?;
        BridgeStatus::add(&status.received, 1);
        let routing_key = delivery.routing_key.as_str().to_owned();
        let at = format!("queue {queue} delivery {}", delivery.delivery_tag);
        match bridge.mapping.event(
            &routing_key,
            &delivery.data,
            None,
            &[],
            hub.config.max_payload,
        ) {
            Ok(mut new) => {
                if new.custom_id.is_none() {
                    if let Some(id) = delivery.properties.message_id() {
                        new.custom_id = WireId::new(id.as_str()).ok();
                    }
                }
                publish_once(hub, status, new).await?;
            }
            Err(poison) => {
                let id = delivery
                    .properties
                    .message_id()
                    .as_ref()
                    .map(|i| i.as_str());
                if let Some(parked) =
                    poisoned(bridge, status, &at, &poison, &delivery.data, id, hub)
                {
                    publish_once(hub, status, parked).await?;
                }
            }
        }
        // Durable in the hub's store (or poison): only now acknowledged.
        delivery
            .ack(BasicAckOptions::default())
            .await
            .map_err(|e| format!("ack: {e}"))?;
    }
    Err("the consumer was cancelled".into())
}
