//! `ssehub-bench source-floor`: the source alone — the same producer as `--source` and a
//! bare consumer of the same client crate as the hub's bridge, no hub in between — so a
//! bridge's figure can be read against what the source itself moves on this machine.
//!
//! Flat out (`--rate 0`) it measures messages/s; at a fixed `--rate` (the producer paced as
//! `fanout --source` paces it) the consumer also records now − the payload's send time for
//! every message: the latency floor of the source, read against the bridge's own latency.

use std::cell::{Cell, RefCell};
use std::rc::Rc;
use std::time::Duration;

use async_nats::jetstream;
use futures_util::StreamExt;
use serde_json::json;

use crate::coord::log;
use crate::hist::Hist;
use crate::now_us;
use crate::source::{pace, Producer, Source};
use crate::sse::{make_payload, parse_marker};

#[derive(clap::Args, Clone, Debug)]
pub struct FloorOpts {
    /// pg-notify, pg-outbox, nats or jetstream.
    #[arg(long, value_enum)]
    pub source: Source,
    #[arg(long)]
    pub source_url: String,
    #[arg(long)]
    pub source_target: String,
    /// JetStream: the stream holding `--source-target` as its subject.
    #[arg(long, default_value = "")]
    pub stream: String,
    /// Messages to move.
    #[arg(long, short = 'm', default_value_t = 100_000)]
    pub events: u64,
    /// Messages per producer write (as `fanout --source-batch`); JetStream: the consumer's
    /// fetch size and `max_ack_pending`, as the bridge's `batch`.
    #[arg(long, default_value_t = 100)]
    pub source_batch: usize,
    #[arg(long, default_value_t = 100)]
    pub payload_size: usize,
    /// Messages per second (the producer writes what is due, as `fanout --source` at a fixed
    /// rate); 0 = flat out. The latency is recorded either way.
    #[arg(long, default_value_t = 0.0)]
    pub rate: f64,
    /// pg-outbox: rows per read (`LIMIT`), as the bridge's `batch`.
    #[arg(long, default_value_t = 500)]
    pub read_limit: i64,
    /// pg-outbox: milliseconds between reads when no NOTIFY comes, as the bridge's `poll_ms`.
    #[arg(long, default_value_t = 200)]
    pub poll_ms: u64,
    /// Seconds the consumer may take after the producer is done.
    #[arg(long, default_value_t = 30.0)]
    pub timeout: f64,
}

pub fn run(o: FloorOpts) -> i32 {
    let rt = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            log(&e.to_string());
            return 1;
        }
    };
    let local = tokio::task::LocalSet::new();
    match local.block_on(&rt, floor(&o)) {
        Ok(v) => {
            use std::io::Write;
            let _ = writeln!(std::io::stdout().lock(), "{v}");
            0
        }
        Err(e) => {
            log(&format!("source-floor: {e}"));
            1
        }
    }
}

/// Counts what the consumer got and when the last one came, and the latency of each
/// (now − the send time in its payload's marker).
#[derive(Default)]
struct Count {
    n: Cell<u64>,
    last_us: Cell<u64>,
    latency: RefCell<Hist>,
}

impl Count {
    fn one(&self, payload: &[u8]) {
        let now = now_us();
        self.n.set(self.n.get() + 1);
        self.last_us.set(now);
        if let Some((send, _)) = parse_marker(payload) {
            self.latency.borrow_mut().record(now.saturating_sub(send));
        }
    }
}

/// A PostgreSQL connection listening on `channel`; its notifications (or the error that
/// ended it) come on the receiver, as in the hub's bridge.
async fn pg_listen(
    url: &str,
    channel: &str,
) -> Result<
    (
        tokio_postgres::Client,
        tokio::sync::mpsc::UnboundedReceiver<Result<tokio_postgres::Notification, String>>,
    ),
    String,
> {
    let (client, mut connection) = tokio_postgres::connect(url, tokio_postgres::NoTls)
        .await
        .map_err(|e| format!("postgres connect: {e}"))?;
    let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
    tokio::task::spawn_local(async move {
        let mut messages = futures_util::stream::poll_fn(move |cx| connection.poll_message(cx));
        while let Some(m) = messages.next().await {
            let m = match m {
                Ok(tokio_postgres::AsyncMessage::Notification(n)) => Ok(n),
                Ok(_) => continue,
                Err(e) => Err(format!("connection: {e}")),
            };
            let end = m.is_err();
            if tx.send(m).is_err() || end {
                return;
            }
        }
    });
    client
        .batch_execute(&format!("LISTEN \"{}\"", channel.replace('"', "\"\"")))
        .await
        .map_err(|e| format!("LISTEN: {e}"))?;
    Ok((client, rx))
}

/// The outbox consumer's read, and where it starts: only rows written from now on (a table
/// that has some already is read from its end).
async fn outbox_prepare(
    client: &tokio_postgres::Client,
    table: &str,
) -> Result<(tokio_postgres::Statement, i64), String> {
    let table = table.replace('"', "\"\"");
    let read = client
        .prepare(&format!(
            "SELECT id, topic, data FROM \"{table}\" WHERE id > $1 ORDER BY id LIMIT $2"
        ))
        .await
        .map_err(|e| format!("prepare: {e}"))?;
    let last: i64 = client
        .query_one(
            &format!("SELECT coalesce(max(id), 0) FROM \"{table}\""),
            &[],
        )
        .await
        .map_err(|e| format!("max(id): {e}"))?
        .get(0);
    Ok((read, last))
}

/// The outbox consumer: only what the bridge must do to find new rows. On each wake-up (a
/// NOTIFY on the table's name, or `poll` with none) it reads the rows after the last one
/// it has, in id order, `limit` at a time, until a read comes back short.
async fn outbox_consumer(
    client: tokio_postgres::Client,
    (read, mut last): (tokio_postgres::Statement, i64),
    mut wake: tokio::sync::mpsc::UnboundedReceiver<Result<tokio_postgres::Notification, String>>,
    limit: i64,
    poll: Duration,
    count: Rc<Count>,
) -> Result<(), String> {
    loop {
        // A NOTIFY that came before this read is answered by it.
        while let Ok(n) = wake.try_recv() {
            n?;
        }
        let rows = client
            .query(&read, &[&last, &limit])
            .await
            .map_err(|e| format!("read: {e}"))?;
        for row in &rows {
            last = row.get(0);
            let _topic: &str = row.get(1);
            let data: &str = row.get(2);
            count.one(data.as_bytes());
        }
        if (rows.len() as i64) < limit {
            tokio::select! {
                n = wake.recv() => { n.ok_or("the connection ended")??; }
                _ = tokio::time::sleep(poll) => {}
            }
        }
    }
}

async fn floor(o: &FloorOpts) -> Result<serde_json::Value, String> {
    let count = Rc::new(Count::default());
    let c = count.clone();
    let (url, target) = (o.source_url.clone(), o.source_target.clone());
    let mut pg_client = None;
    let consumer = match o.source {
        Source::PgNotify => {
            let (client, mut notes) = pg_listen(&url, &target).await?;
            // The client lives as long as the run: dropping it would close the connection.
            pg_client = Some(client);
            tokio::task::spawn_local(async move {
                while let Some(Ok(n)) = notes.recv().await {
                    c.one(n.payload().as_bytes());
                }
            })
        }
        Source::PgOutbox => {
            // The producer creates the table if it is missing; the consumer reads it at once.
            Producer::connect(o.source, &url, &target).await?;
            let (client, notes) = pg_listen(&url, &target.replace('.', "_")).await?;
            let start = outbox_prepare(&client, &target).await?;
            let (limit, poll) = (o.read_limit.max(1), Duration::from_millis(o.poll_ms.max(1)));
            tokio::task::spawn_local(async move {
                if let Err(e) = outbox_consumer(client, start, notes, limit, poll, c).await {
                    log(&format!("source-floor: outbox consumer: {e}"));
                }
            })
        }
        Source::Nats => {
            let client = async_nats::connect(url.as_str())
                .await
                .map_err(|e| format!("nats connect: {e}"))?;
            let mut sub = client
                .subscribe(target)
                .await
                .map_err(|e| format!("SUB: {e}"))?;
            client.flush().await.map_err(|e| format!("flush: {e}"))?;
            tokio::task::spawn_local(async move {
                while let Some(m) = sub.next().await {
                    c.one(&m.payload);
                }
            })
        }
        Source::Jetstream => {
            let client = async_nats::connect(url.as_str())
                .await
                .map_err(|e| format!("nats connect: {e}"))?;
            let stream = jetstream::new(client)
                .get_stream(&o.stream)
                .await
                .map_err(|e| format!("stream {}: {e}", o.stream))?;
            let batch = o.source_batch.max(1);
            let name = format!("floor_{}", std::process::id());
            // The bridge's consumer settings: explicit acks, one batch unacknowledged.
            let consumer: jetstream::consumer::PullConsumer = stream
                .get_or_create_consumer(
                    &name,
                    jetstream::consumer::pull::Config {
                        durable_name: Some(name.clone()),
                        ack_policy: jetstream::consumer::AckPolicy::Explicit,
                        max_ack_pending: batch as i64,
                        ..Default::default()
                    },
                )
                .await
                .map_err(|e| format!("consumer: {e}"))?;
            tokio::task::spawn_local(async move {
                loop {
                    let Ok(mut fetched) = consumer
                        .fetch()
                        .max_messages(batch)
                        .expires(Duration::from_secs(1))
                        .messages()
                        .await
                    else {
                        return;
                    };
                    let mut got = Vec::new();
                    while let Some(Ok(m)) = fetched.next().await {
                        got.push(m);
                    }
                    for m in &got {
                        if m.ack().await.is_err() {
                            return;
                        }
                        c.one(&m.payload);
                    }
                }
            })
        }
        other => return Err(format!("{}: no bare consumer here", other.name())),
    };
    let mut producer = Producer::connect(o.source, &o.source_url, &o.source_target).await?;
    let first = now_us();
    let batch = o.source_batch.max(1) as u64;
    let t0 = tokio::time::Instant::now();
    let mut seq = 0;
    while seq < o.events {
        let end = pace(t0, seq, (seq + batch).min(o.events), o.rate).await;
        let send = now_us();
        let payloads: Vec<String> = (seq..end)
            .map(|s| make_payload(send, s, o.payload_size))
            .collect();
        producer.send("t0", &payloads).await?;
        seq = end;
    }
    let produced = now_us();
    let deadline = tokio::time::Instant::now() + Duration::from_secs_f64(o.timeout);
    while count.n.get() < o.events && tokio::time::Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    consumer.abort();
    drop(pg_client);
    let got = count.n.get();
    let secs = |t: u64| t.saturating_sub(first) as f64 / 1e6;
    let last = count.last_us.get();
    Ok(json!({
        "source": o.source.name(),
        "events": o.events,
        "batch": o.source_batch,
        "rate": o.rate,
        "latency": count.latency.borrow().summary_ms(),
        "produced_per_s": (o.events as f64 / secs(produced).max(1e-9)).round(),
        "consumed": got,
        "consumed_per_s": if last > first { (got as f64 / secs(last)).round() } else { 0.0 },
    }))
}
