//! PostgreSQL: `LISTEN`/`NOTIFY` channels (at most once), and a transactional outbox table
//! read in id order (at least once, deduplicated by row id).
//!
//! The outbox: rows the application writes in its own transaction, e.g.
//! `INSERT INTO outbox (topic, event, data) VALUES ('orders/42', 'paid', '{...}')`, in a
//! table `outbox (id bigserial primary key, topic text not null, event text, data text not
//! null)`. The bridge reads rows after its position, publishes them as one batch, and only
//! once the hub's store has them records the position (`ssehub_outbox_position`, a table it
//! creates). Each event's id is `<bridge>:<row id>`; before publishing a row the bridge asks
//! the hub's history for that id, so a row published just before a crash — the position not
//! yet recorded — is skipped when it is read again: a subscriber never sees a row twice.

use std::sync::Arc;
use std::time::Duration;

use futures_util::StreamExt;
use serde_json::{Map, Value};
use ssehub::{BridgeState, BridgeStatus, Hub};
use ssehub_core::WireId;
use tokio::sync::mpsc;
use tokio_postgres::{AsyncMessage, Client, NoTls};

use crate::{
    already_published, forward, poisoned, publish_batch, ready, Bridge, Message, RunResult,
};

/// Connects and starts the connection's task; notifications arrive on the receiver, and a
/// connection failure as its last item.
async fn connect(
    url: &str,
) -> Result<
    (
        Client,
        mpsc::UnboundedReceiver<Result<tokio_postgres::Notification, String>>,
    ),
    String,
> {
    let (client, mut connection) = tokio_postgres::connect(url, NoTls)
        .await
        .map_err(|e| format!("connect: {e}"))?;
    let (tx, rx) = mpsc::unbounded_channel();
    tokio::spawn(async move {
        let mut messages = futures_util::stream::poll_fn(move |cx| connection.poll_message(cx));
        while let Some(message) = messages.next().await {
            match message {
                Ok(AsyncMessage::Notification(n)) => {
                    if tx.send(Ok(n)).is_err() {
                        return;
                    }
                }
                Ok(_) => {}
                Err(e) => {
                    let _ = tx.send(Err(format!("connection: {e}")));
                    return;
                }
            }
        }
        let _ = tx.send(Err("the database closed the connection".into()));
    });
    Ok((client, rx))
}

/// `"name"` with inner quotes doubled: an identifier PostgreSQL takes as written.
fn quote(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}

/// A table name as given (`schema.table`), each part quoted.
fn quote_table(name: &str) -> String {
    name.split('.').map(quote).collect::<Vec<_>>().join(".")
}

pub(crate) async fn listen(hub: &Arc<Hub>, bridge: &Bridge, status: &BridgeStatus) -> RunResult {
    let (client, mut notifications) = connect(&bridge.spec.url).await?;
    for channel in &bridge.spec.channels {
        client
            .batch_execute(&format!("LISTEN {}", quote(channel)))
            .await
            .map_err(|e| format!("LISTEN {channel}: {e}"))?;
    }
    status.set_state(BridgeState::Running);
    tracing::info!(bridge = %bridge.name, channels = ?bridge.spec.channels, "bridge listening");
    let batch = crate::batch_size(bridge);
    let message = |n: tokio_postgres::Notification| Message {
        at: format!("channel {} (backend pid {})", n.channel(), n.process_id()),
        channel: n.channel().to_owned(),
        payload: n.payload().as_bytes().to_vec(),
        vars: Vec::new(),
    };
    while let Some(notification) = notifications.recv().await {
        // This one and those already here: one publish for the lot. A failure among them
        // ends the run after the ones before it are published.
        let mut lost = None;
        let messages = ready(message(notification?), batch, || {
            match notifications.try_recv().ok()? {
                Ok(n) => Some(message(n)),
                Err(e) => {
                    lost = Some(e);
                    None
                }
            }
        });
        forward(hub, bridge, status, messages).await;
        if let Some(e) = lost {
            return Err(e);
        }
    }
    Err("the notification stream ended".into())
}

pub(crate) async fn outbox(hub: &Arc<Hub>, bridge: &Bridge, status: &BridgeStatus) -> RunResult {
    let table = bridge.spec.table.as_deref().expect("validated");
    let (client, mut notifications) = connect(&bridge.spec.url).await?;
    let sql = |e: tokio_postgres::Error| format!("{e}");
    // The position's commit need not wait for the database's WAL flush: a position lost in a
    // database crash only makes the bridge read rows again, which the history's row ids
    // skip. Waiting for it (a disk flush per batch) held back every next read.
    client
        .batch_execute(
            "SET synchronous_commit = off; \
             CREATE TABLE IF NOT EXISTS ssehub_outbox_position \
             (bridge text PRIMARY KEY, last_id bigint NOT NULL)",
        )
        .await
        .map_err(sql)?;
    // A NOTIFY on the table's name (or the configured channel) wakes the bridge at once.
    let wake = bridge
        .spec
        .channels
        .first()
        .cloned()
        .unwrap_or_else(|| table.replace('.', "_"));
    client
        .batch_execute(&format!("LISTEN {}", quote(&wake)))
        .await
        .map_err(sql)?;
    let read = client
        .prepare(&format!(
            "SELECT id, topic, event, data FROM {} WHERE id > $1 ORDER BY id LIMIT $2",
            quote_table(table)
        ))
        .await
        .map_err(sql)?;
    let waiting = client
        .prepare(&format!(
            "SELECT count(*) FROM {} WHERE id > $1",
            quote_table(table)
        ))
        .await
        .map_err(sql)?;
    let save = client
        .prepare(
            "INSERT INTO ssehub_outbox_position (bridge, last_id) VALUES ($1, $2) \
             ON CONFLICT (bridge) DO UPDATE SET last_id = EXCLUDED.last_id",
        )
        .await
        .map_err(sql)?;
    let mut last: i64 = client
        .query_opt(
            "SELECT last_id FROM ssehub_outbox_position WHERE bridge = $1",
            &[&bridge.name],
        )
        .await
        .map_err(sql)?
        .map_or(0, |row| row.get(0));
    status.set_state(BridgeState::Running);
    tracing::info!(bridge = %bridge.name, table, position = last, "outbox bridge reading");
    let batch = crate::batch_size(bridge) as i64;
    let poll = Duration::from_millis(bridge.spec.poll_ms.unwrap_or(200).max(1));
    // The position reached but not yet recorded; recorded with the next read, in one round trip.
    let mut unsaved: Option<i64> = None;
    loop {
        // A NOTIFY that came before this read is answered by it: no read again for it.
        while let Ok(n) = notifications.try_recv() {
            n?;
        }
        let rows = match unsaved.take() {
            Some(through) => {
                let (saved, rows) = futures_util::future::join(
                    client.execute(&save, &[&bridge.name, &through]),
                    client.query(&read, &[&last, &batch]),
                )
                .await;
                saved.map_err(sql)?;
                rows
            }
            None => client.query(&read, &[&last, &batch]).await,
        }
        .map_err(sql)?;
        if rows.is_empty() {
            status.lag.store(0, std::sync::atomic::Ordering::Relaxed);
            // Wait for a NOTIFY or the poll interval, whichever is first.
            tokio::select! {
                n = notifications.recv() => { n.ok_or("the connection ended")??; }
                _ = tokio::time::sleep(poll) => {}
            }
            continue;
        }
        BridgeStatus::add(&status.received, rows.len() as u64);
        let mut events = Vec::with_capacity(rows.len());
        let through: i64 = rows.last().expect("not empty").get(0);
        for row in &rows {
            let id: i64 = row.get(0);
            let custom = format!("{}:{id}", bridge.name);
            let at = format!("{table} row {id}");
            if already_published(hub, &custom) {
                BridgeStatus::add(&status.skipped, 1);
                tracing::info!(bridge = %bridge.name, position = %at, "row already in the history (published before a restart); skipped");
                continue;
            }
            let topic: Option<String> = row.get(1);
            let event: Option<String> = row.get(2);
            let data: Option<String> = row.get(3);
            let mut fields = Map::new();
            fields.insert("id".into(), Value::from(id));
            fields.insert("topic".into(), topic.map_or(Value::Null, Value::String));
            let data = data.unwrap_or_default();
            let mut new = match bridge.mapping.event(
                table,
                data.as_bytes(),
                Some(&fields),
                &[],
                hub.config.max_payload,
            ) {
                Ok(new) => new,
                Err(poison) => {
                    let payload = data.as_bytes();
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
            if new.name.is_none() {
                if let Some(event) = event.filter(|e| !e.is_empty()) {
                    match ssehub_core::EventName::new(&event) {
                        Ok(name) => new.name = Some(name),
                        Err(e) => {
                            let poison = crate::Poison(format!("event {event:?}: {e}"));
                            let payload = data.as_bytes();
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
                    }
                }
            }
            new.custom_id = Some(WireId::new(&custom).map_err(|e| e.to_string())?);
            events.push(new);
        }
        publish_batch(hub, status, events).await?;
        // Only now, with the events durable in the hub's store, the position moves (written
        // with the next read).
        unsaved = Some(through);
        last = through;
        if rows.len() as i64 == batch {
            let row = client.query_one(&waiting, &[&last]).await.map_err(sql)?;
            let left: i64 = row.get(0);
            status
                .lag
                .store(left.max(0) as u64, std::sync::atomic::Ordering::Relaxed);
        } else {
            status.lag.store(0, std::sync::atomic::Ordering::Relaxed);
        }
    }
}
