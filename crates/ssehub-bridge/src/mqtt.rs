//! MQTT 3.1.1 (or 5 with `mqtt_version = 5`): topic filters (`+`, `#`, and named tokens: `sensors/{room}/temp` subscribes
//! to `sensors/+/temp` and gives `{room}` to the templates) at QoS 1 in a persistent session
//! (`clean_session = false`; in MQTT 5 `clean_start = false` with a session expiry of
//! `session_expiry_s`, a week by default; the client id `consumer`), so the broker keeps what is published
//! while the hub is down and delivers it after the restart. Each message is acknowledged
//! (`PUBACK`) only once the hub's store has its event: at least once. MQTT messages carry no
//! id of their own; with `id_field` set, a message delivered again is found in the history
//! by that id and skipped.

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::Duration;

use rumqttc::QoS;
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

/// The bridge's MQTT client id: `consumer`, else one from the bridge's name.
fn client_id(bridge: &Bridge) -> String {
    bridge
        .spec
        .consumer
        .clone()
        .unwrap_or_else(|| format!("ssehub-{}", bridge.name.replace([':', '/'], "-")))
}

fn patterns(bridge: &Bridge) -> Vec<TokenPattern> {
    bridge
        .spec
        .channels
        .iter()
        .map(|c| TokenPattern::parse(c, '/', "+"))
        .collect()
}

const KEEP_ALIVE: Duration = Duration::from_secs(15);
/// Requests (acks, subscribes) the client queues for its event loop.
const REQUESTS: usize = 64;

pub(crate) async fn run(hub: &Arc<Hub>, bridge: &Bridge, status: &BridgeStatus) -> RunResult {
    match bridge.spec.mqtt_version.unwrap_or(3) {
        5 => run_v5(hub, bridge, status).await,
        _ => run_v311(hub, bridge, status).await,
    }
}

async fn run_v311(hub: &Arc<Hub>, bridge: &Bridge, status: &BridgeStatus) -> RunResult {
    use rumqttc::{AsyncClient, Event, MqttOptions, Packet};
    let (host, port) = host_port(&bridge.spec.url)?;
    let mut options = MqttOptions::new(client_id(bridge), host, port);
    options
        .set_clean_session(false)
        .set_manual_acks(true)
        .set_keep_alive(KEEP_ALIVE);
    let (client, mut events) = AsyncClient::new(options, REQUESTS);
    let patterns = patterns(bridge);
    for pattern in &patterns {
        client
            .subscribe(pattern.filter.clone(), QoS::AtLeastOnce)
            .await
            .map_err(|e| format!("SUBSCRIBE {}: {e}", pattern.filter))?;
    }
    let mut unsent = VecDeque::new();
    loop {
        hand_over(&mut unsent, |p| client.try_ack(p).is_ok());
        match events
            .poll()
            .await
            .map_err(|e| format!("connection: {e}"))?
        {
            Event::Incoming(Packet::ConnAck(_)) => connected(bridge, status),
            Event::Incoming(Packet::Publish(publish)) => {
                let topic = publish.topic.clone();
                let at = format!("topic {topic} packet {}", publish.pkid);
                take(
                    hub,
                    bridge,
                    status,
                    &patterns,
                    &topic,
                    &publish.payload,
                    &at,
                )
                .await?;
                unsent.push_back(publish);
            }
            _ => {}
        }
    }
}

async fn run_v5(hub: &Arc<Hub>, bridge: &Bridge, status: &BridgeStatus) -> RunResult {
    use rumqttc::v5::mqttbytes::v5::Packet;
    use rumqttc::v5::{AsyncClient, Event, MqttOptions};
    let (host, port) = host_port(&bridge.spec.url)?;
    let mut options = MqttOptions::new(client_id(bridge), host, port);
    options
        .set_clean_start(false)
        .set_session_expiry_interval(Some(bridge.spec.session_expiry_s.unwrap_or(7 * 86_400)))
        .set_manual_acks(true)
        .set_keep_alive(KEEP_ALIVE);
    let (client, mut events) = AsyncClient::new(options, REQUESTS);
    let patterns = patterns(bridge);
    for pattern in &patterns {
        client
            .subscribe(
                pattern.filter.clone(),
                rumqttc::v5::mqttbytes::QoS::AtLeastOnce,
            )
            .await
            .map_err(|e| format!("SUBSCRIBE {}: {e}", pattern.filter))?;
    }
    let mut unsent = VecDeque::new();
    loop {
        hand_over(&mut unsent, |p| client.try_ack(p).is_ok());
        match events
            .poll()
            .await
            .map_err(|e| format!("connection: {e}"))?
        {
            Event::Incoming(Packet::ConnAck(_)) => connected(bridge, status),
            Event::Incoming(Packet::Publish(publish)) => {
                let topic = String::from_utf8_lossy(&publish.topic).into_owned();
                let at = format!("topic {topic} packet {}", publish.pkid);
                take(
                    hub,
                    bridge,
                    status,
                    &patterns,
                    &topic,
                    &publish.payload,
                    &at,
                )
                .await?;
                unsent.push_back(publish);
            }
            _ => {}
        }
    }
}

fn connected(bridge: &Bridge, status: &BridgeStatus) {
    status.set_state(BridgeState::Running);
    tracing::info!(bridge = %bridge.name, filters = ?bridge.spec.channels, "bridge connected");
}

/// One incoming message: published once into the hub (or parked, or skipped as poison).
/// On return the store has it, and the caller may acknowledge it.
async fn take(
    hub: &Arc<Hub>,
    bridge: &Bridge,
    status: &BridgeStatus,
    patterns: &[TokenPattern],
    topic: &str,
    payload: &[u8],
    at: &str,
) -> RunResult {
    BridgeStatus::add(&status.received, 1);
    let vars = patterns
        .iter()
        .map(|p| p.capture(topic))
        .find(|v| !v.is_empty())
        .unwrap_or_default();
    match bridge
        .mapping
        .event(topic, payload, None, &vars, hub.config.max_payload)
    {
        Ok(new) => publish_once(hub, status, new).await,
        Err(poison) => match poisoned(bridge, status, at, &poison, payload, None, hub) {
            Some(parked) => publish_once(hub, status, parked).await,
            None => Ok(()),
        },
    }
}

/// Acknowledgements not yet handed to the event loop, oldest first. The loop hands buffered
/// incoming messages out before it takes requests (one per turn), so a burst after a
/// restart can fill its request channel; awaiting a send there would stop the polling that
/// empties it. Acks wait here instead, in order, bounded by the broker's in-flight window,
/// and go over as the channel has room.
fn hand_over<P>(unsent: &mut VecDeque<P>, mut try_ack: impl FnMut(&P) -> bool) {
    while let Some(publish) = unsent.front() {
        if !try_ack(publish) {
            return;
        }
        unsent.pop_front();
    }
}
