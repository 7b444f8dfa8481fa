//! MQTT 3.1.1 (or 5 with `mqtt_version = 5`): topic filters (`+`, `#`, and named tokens: `sensors/{room}/temp` subscribes
//! to `sensors/+/temp` and gives `{room}` to the templates) at QoS 1 in a persistent session
//! (`clean_session = false`; in MQTT 5 `clean_start = false` with a session expiry of
//! `session_expiry_s`, a week by default; the client id `consumer`), so the broker keeps what is published
//! while the hub is down and delivers it after the restart. Each message is acknowledged
//! (`PUBACK`) only once the hub's store has its event: at least once. MQTT messages carry no
//! id of their own; with `id_field` set, a message delivered again is found in the history
//! by that id and skipped.

use std::sync::Arc;
use std::time::Duration;

use rumqttc::QoS;
use ssehub::{BridgeState, BridgeStatus, Hub};

use crate::mapping::TokenPattern;
use tokio::sync::mpsc;

use crate::{poisoned, publish_once, ready, Bridge, RunResult};

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

/// A PUBLISH of either protocol version.
trait Incoming: Send + 'static {
    fn topic(&self) -> String;
    fn payload(&self) -> &[u8];
    fn pkid(&self) -> u16;
}

impl Incoming for rumqttc::Publish {
    fn topic(&self) -> String {
        self.topic.clone()
    }
    fn payload(&self) -> &[u8] {
        &self.payload
    }
    fn pkid(&self) -> u16 {
        self.pkid
    }
}

impl Incoming for rumqttc::v5::mqttbytes::v5::Publish {
    fn topic(&self) -> String {
        String::from_utf8_lossy(&self.topic).into_owned()
    }
    fn payload(&self) -> &[u8] {
        &self.payload
    }
    fn pkid(&self) -> u16 {
        self.pkid
    }
}

/// What a connection's poller hands the bridge: the broker's CONNACK, a message, or the
/// connection's end (last).
enum Polled<P> {
    Connected,
    Message(P),
}

type Inbox<P> = mpsc::UnboundedReceiver<Result<Polled<P>, String>>;

/// The task that polls a connection's event loop, stopped when the run it serves ends.
struct Poller(tokio::task::JoinHandle<()>);

impl Drop for Poller {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// Starts the task that polls an event loop (`$events`, of the version whose `Event` and
/// `Packet` types are in scope), handing CONNACKs and PUBLISHes to the inbox and the
/// connection's failure last. The event loop runs in a task of its own, so it keeps reading
/// and sending acks while the bridge waits for the hub's store; the inbox is unbounded, but
/// holds at most the broker's in-flight window of unacknowledged QoS 1 messages (plus
/// what QoS 0 brings meanwhile).
macro_rules! poller {
    ($events:expr) => {{
        let mut events = $events;
        let (tx, rx) = mpsc::unbounded_channel();
        let task = tokio::spawn(async move {
            loop {
                let item = match events.poll().await {
                    Ok(Event::Incoming(Packet::ConnAck(_))) => Ok(Polled::Connected),
                    Ok(Event::Incoming(Packet::Publish(p))) => Ok(Polled::Message(p)),
                    Ok(_) => continue,
                    Err(e) => Err(format!("connection: {e}")),
                };
                let end = item.is_err();
                if tx.send(item).is_err() || end {
                    return;
                }
            }
        });
        (Poller(task), rx)
    }};
}

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
    let (client, events) = AsyncClient::new(options, REQUESTS);
    for pattern in &patterns(bridge) {
        client
            .subscribe(pattern.filter.clone(), QoS::AtLeastOnce)
            .await
            .map_err(|e| format!("SUBSCRIBE {}: {e}", pattern.filter))?;
    }
    let (_poller, inbox) = poller!(events);
    consume(hub, bridge, status, inbox, |p| {
        let client = client.clone();
        async move { client.ack(&p).await.map_err(|e| format!("ack: {e}")) }
    })
    .await
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
    let (client, events) = AsyncClient::new(options, REQUESTS);
    for pattern in &patterns(bridge) {
        client
            .subscribe(
                pattern.filter.clone(),
                rumqttc::v5::mqttbytes::QoS::AtLeastOnce,
            )
            .await
            .map_err(|e| format!("SUBSCRIBE {}: {e}", pattern.filter))?;
    }
    let (_poller, inbox) = poller!(events);
    consume(hub, bridge, status, inbox, |p| {
        let client = client.clone();
        async move { client.ack(&p).await.map_err(|e| format!("ack: {e}")) }
    })
    .await
}

fn connected(bridge: &Bridge, status: &BridgeStatus) {
    status.set_state(BridgeState::Running);
    tracing::info!(bridge = %bridge.name, filters = ?bridge.spec.channels, "bridge connected");
}

/// The bridge's side of a connection: a message and those already in the inbox (up to
/// `batch`) are published as one batch, then acknowledged in order once the store has them.
async fn consume<P, A, F>(
    hub: &Arc<Hub>,
    bridge: &Bridge,
    status: &BridgeStatus,
    mut inbox: Inbox<P>,
    mut ack: A,
) -> RunResult
where
    P: Incoming,
    A: FnMut(P) -> F,
    F: std::future::Future<Output = RunResult>,
{
    let patterns = patterns(bridge);
    let batch = crate::batch_size(bridge);
    while let Some(first) = inbox.recv().await {
        let mut messages = Vec::new();
        let mut end = None;
        for item in ready(first, batch, || inbox.try_recv().ok()) {
            match item {
                Ok(Polled::Connected) => connected(bridge, status),
                Ok(Polled::Message(p)) => messages.push(p),
                Err(e) => end = Some(e),
            }
        }
        take(hub, bridge, status, &patterns, &messages).await?;
        // The connection is gone: nothing to ack on; the broker delivers these again.
        if let Some(e) = end {
            return Err(e);
        }
        for p in messages {
            ack(p).await?;
        }
    }
    Err("the connection's poller ended".into())
}

/// Incoming messages: published once into the hub (or parked, or skipped as poison), as one
/// batch. On return the store has them, and the caller may acknowledge them.
async fn take<P: Incoming>(
    hub: &Arc<Hub>,
    bridge: &Bridge,
    status: &BridgeStatus,
    patterns: &[TokenPattern],
    messages: &[P],
) -> RunResult {
    BridgeStatus::add(&status.received, messages.len() as u64);
    let mut events = Vec::with_capacity(messages.len());
    for p in messages {
        let topic = p.topic();
        let vars = patterns
            .iter()
            .map(|pattern| pattern.capture(&topic))
            .find(|v| !v.is_empty())
            .unwrap_or_default();
        match bridge
            .mapping
            .event(&topic, p.payload(), None, &vars, hub.config.max_payload)
        {
            Ok(new) => events.push(new),
            Err(poison) => {
                let at = format!("topic {topic} packet {}", p.pkid());
                events.extend(poisoned(
                    bridge,
                    status,
                    &at,
                    &poison,
                    p.payload(),
                    None,
                    hub,
                ));
            }
        }
    }
    publish_once(hub, status, events).await
}
