//! NATS: core subjects with wildcards (at most once), and JetStream through a durable pull
//! consumer, each message acknowledged only once the hub's store has its event (at least
//! once; the event's id is `<bridge>:<stream sequence>`, so a message delivered again after
//! a crash is found in the history and skipped).
//!
//! A core subject may name its tokens: `orders.{id}.{status}` subscribes to `orders.*.*`
//! and gives the topic and event templates `{id}` and `{status}`.

use std::sync::Arc;
use std::time::Duration;

use async_nats::jetstream;
use futures_util::StreamExt;
use ssehub::{BridgeState, BridgeStatus, Hub};
use ssehub_core::WireId;
use tokio::sync::mpsc;

use crate::mapping::TokenPattern;
use crate::{
    already_published, forward, now, poisoned, publish_batch, ready, Bridge, Message, RunResult,
};

/// Connects; the connection's events (a disconnection above all) arrive on the receiver.
async fn connect(
    bridge: &Bridge,
) -> Result<
    (
        async_nats::Client,
        mpsc::UnboundedReceiver<async_nats::Event>,
    ),
    String,
> {
    let (tx, rx) = mpsc::unbounded_channel();
    let client = async_nats::ConnectOptions::new()
        // The bridge reconnects by itself, with its own back-off and state.
        .max_reconnects(Some(1))
        .event_callback(move |event| {
            let tx = tx.clone();
            async move {
                let _ = tx.send(event);
            }
        })
        .connect(bridge.spec.url.as_str())
        .await
        .map_err(|e| format!("connect: {e}"))?;
    Ok((client, rx))
}

pub(crate) async fn core(hub: &Arc<Hub>, bridge: &Bridge, status: &BridgeStatus) -> RunResult {
    let (client, mut events) = connect(bridge).await?;
    let patterns: Vec<TokenPattern> = bridge
        .spec
        .channels
        .iter()
        .map(|c| TokenPattern::parse(c, '.', "*"))
        .collect();
    let mut subscriptions = Vec::new();
    for (i, pattern) in patterns.iter().enumerate() {
        let subscription = client
            .subscribe(pattern.filter.clone())
            .await
            .map_err(|e| format!("SUB {}: {e}", pattern.filter))?;
        subscriptions.push(subscription.map(move |m| (i, m)));
    }
    // A request round trip proves the subscriptions are registered before Running.
    client.flush().await.map_err(|e| format!("flush: {e}"))?;
    status.set_state(BridgeState::Running);
    tracing::info!(bridge = %bridge.name, subjects = ?bridge.spec.channels, "bridge subscribed");
    let mut messages = futures_util::stream::select_all(subscriptions);
    let batch = crate::batch_size(bridge);
    loop {
        tokio::select! {
            message = messages.next() => {
                let Some(first) = message else {
                    return Err("the subscriptions ended".into());
                };
                let taken = ready(first, batch, || now(&mut messages));
                let taken = taken
                    .into_iter()
                    .map(|(i, message)| {
                        let subject = message.subject.to_string();
                        Message {
                            vars: patterns[i].capture(&subject),
                            at: format!("subject {subject}"),
                            payload: message.payload.to_vec(),
                            channel: subject,
                        }
                    })
                    .collect();
                forward(hub, bridge, status, taken).await;
            }
            event = events.recv() => {
                match event {
                    Some(async_nats::Event::Disconnected) | None => {
                        return Err("disconnected from the NATS server".into());
                    }
                    Some(_) => {}
                }
            }
        }
    }
}

pub(crate) async fn jetstream(hub: &Arc<Hub>, bridge: &Bridge, status: &BridgeStatus) -> RunResult {
    let (client, _events) = connect(bridge).await?;
    let js = jetstream::new(client);
    let stream_name = &bridge.spec.channels[0];
    let stream = js
        .get_stream(stream_name)
        .await
        .map_err(|e| format!("stream {stream_name}: {e}"))?;
    let durable = bridge
        .spec
        .consumer
        .clone()
        .unwrap_or_else(|| "ssehub".into());
    let ack_wait = Duration::from_millis(bridge.spec.ack_wait_ms.unwrap_or(30_000).max(100));
    let batch = crate::batch_size(bridge);
    let consumer: jetstream::consumer::PullConsumer = stream
        .get_or_create_consumer(
            &durable,
            jetstream::consumer::pull::Config {
                durable_name: Some(durable.clone()),
                ack_policy: jetstream::consumer::AckPolicy::Explicit,
                ack_wait,
                // No more unacknowledged than one batch: after a crash, the messages the
                // hub did not get are delivered again before any later one, so the order
                // holds.
                max_ack_pending: batch as i64,
                ..Default::default()
            },
        )
        .await
        .map_err(|e| format!("consumer {durable}: {e}"))?;
    status.set_state(BridgeState::Running);
    tracing::info!(bridge = %bridge.name, stream = %stream_name, consumer = %durable, "bridge reading JetStream");
    loop {
        let mut fetched = consumer
            .fetch()
            .max_messages(batch)
            .expires(Duration::from_secs(1))
            .messages()
            .await
            .map_err(|e| format!("fetch: {e}"))?;
        let mut messages = Vec::new();
        while let Some(message) = fetched.next().await {
            messages.push(message.map_err(|e| format!("fetch: {e}"))?);
        }
        if messages.is_empty() {
            continue;
        }
        BridgeStatus::add(&status.received, messages.len() as u64);
        let mut events = Vec::with_capacity(messages.len());
        for message in &messages {
            let sequence = message.info().map(|i| i.stream_sequence).unwrap_or(0);
            if let Ok(info) = message.info() {
                status
                    .lag
                    .store(info.pending, std::sync::atomic::Ordering::Relaxed);
            }
            let custom = format!("{}:{sequence}", bridge.name);
            let subject = message.subject.to_string();
            let at = format!("stream {stream_name} sequence {sequence}");
            if already_published(hub, &custom) {
                BridgeStatus::add(&status.skipped, 1);
                continue;
            }
            let mut new = match bridge.mapping.event(
                &subject,
                &message.payload,
                None,
                &[],
                hub.config.max_payload,
            ) {
                Ok(new) => new,
                Err(poison) => {
                    let payload = &message.payload;
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
        for message in &messages {
            message.ack().await.map_err(|e| format!("ack: {e}"))?;
        }
    }
}
