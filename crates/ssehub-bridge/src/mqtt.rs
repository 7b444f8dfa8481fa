//! MQTT 3.1.1: topic filters (`+`, `#`, and named tokens: `sensors/{room}/temp` subscribes
//! to `sensors/+/temp` and gives `{room}` to the templates) at QoS 1 in a persistent session
//! (`clean_session = false`, the client id `consumer`), so the broker keeps what is published
//! while the hub is down and delivers it after the restart. Each message is acknowledged
//! (`PUBACK`) only once the hub's store has its event: at least once. MQTT messages carry no
//! id of their own; with `id_field` set, a message delivered again is found in the history
//! by that id and skipped.

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::Duration;

use rumqttc::{AsyncClient, Event, MqttOptions, Packet, QoS};
use ssehub::{BridgeState, BridgeStatus, Hub};

use crate::mapping::TokenPattern;
use crate::{poisoned, publish_once, Bridge, RunResult};

/// `mqtt://host:port` into its host and port (1883 by default).
fn host_port(url: &str) -> Result<(String, u16), String> {
    let rest = url
        .strip_prefix("mqtt://")
        .or_else(|| url.strip_prefix("tcp://"))
        .ok_or_else(|| format!("url: {url:?} is not mqtt://HOST:PORT"))?;
    let rest = rest.trim_end_matches('/');
    match rest.rsplit_once(':') {
        Some((host, port)) => Ok((
            host.to_owned(),
            port.parse()
                .map_err(|_| format!("url: {port:?} is not a port"))?,
        )),
        None => Ok((rest.to_owned(), 1883)),
    }
}

pub(crate) async fn run(hub: &Arc<Hub>, bridge: &Bridge, status: &BridgeStatus) -> RunResult {
    let (host, port) = host_port(&bridge.spec.url)?;
    let client_id = bridge
        .spec
        .consumer
        .clone()
        .unwrap_or_else(|| format!("ssehub-{}", bridge.name.replace([':', '/'], "-")));
    let mut options = MqttOptions::new(client_id, host, port);
    options
        .set_clean_session(false)
        .set_manual_acks(true)
        .set_keep_alive(Duration::from_secs(15));
    let (client, mut events) = AsyncClient::new(options, 64);
    let patterns: Vec<TokenPattern> = bridge
        .spec
        .channels
        .iter()
        .map(|c| TokenPattern::parse(c, '/', "+"))
        .collect();
    for pattern in &patterns {
        client
            .subscribe(pattern.filter.clone(), QoS::AtLeastOnce)
            .await
            .map_err(|e| format!("SUBSCRIBE {}: {e}", pattern.filter))?;
    }
    // Acknowledgements not yet handed to the event loop. The loop hands buffered incoming
    // messages out before it takes requests (one per turn), so a burst after a restart can
    // fill its request channel; awaiting a send there would stop the polling that empties
    // it. Acks wait here instead, in order, bounded by the broker's in-flight window.
    let mut unsent: VecDeque<rumqttc::Publish> = VecDeque::new();
    loop {
        hand_over(&client, &mut unsent);
        let event = events
            .poll()
            .await
            .map_err(|e| format!("connection: {e}"))?;
        let publish = match event {
            Event::Incoming(Packet::ConnAck(_)) => {
                status.set_state(BridgeState::Running);
                tracing::info!(bridge = %bridge.name, filters = ?bridge.spec.channels, "bridge connected");
                continue;
            }
            Event::Incoming(Packet::Publish(publish)) => publish,
            _ => continue,
        };
        BridgeStatus::add(&status.received, 1);
        let at = format!("topic {} packet {}", publish.topic, publish.pkid);
        let vars = patterns
            .iter()
            .map(|p| p.capture(&publish.topic))
            .find(|v| !v.is_empty())
            .unwrap_or_default();
        match bridge.mapping.event(
            &publish.topic,
            &publish.payload,
            None,
            &vars,
            hub.config.max_payload,
        ) {
            Ok(new) => {
                publish_once(hub, status, new).await?;
            }
            Err(poison) => {
                if let Some(parked) =
                    poisoned(bridge, status, &at, &poison, &publish.payload, None, hub)
                {
                    publish_once(hub, status, parked).await?;
                }
            }
        }
        // Durable in the hub's store (or poison): only now acknowledged.
        unsent.push_back(publish);
    }
}

/// Gives the event loop every waiting acknowledgement it has room for, oldest first.
fn hand_over(client: &AsyncClient, unsent: &mut VecDeque<rumqttc::Publish>) {
    while let Some(publish) = unsent.front() {
        if client.try_ack(publish).is_err() {
            return;
        }
        unsent.pop_front();
    }
}
