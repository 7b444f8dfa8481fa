//! `ssehub-bench source-floor`: the source alone — the same producer as `--source` and a
//! bare consumer of the same client crate as the hub's bridge, no hub in between — so a
//! bridge's figure can be read against what the source itself moves on this machine.

use std::cell::Cell;
use std::rc::Rc;
use std::time::Duration;

use async_nats::jetstream;
use futures_util::StreamExt;
use serde_json::json;

use crate::coord::log;
use crate::now_us;
use crate::source::{Producer, Source};
use crate::sse::make_payload;

#[derive(clap::Args, Clone, Debug)]
pub struct FloorOpts {
    /// pg-notify, nats or jetstream.
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

/// Counts what the consumer got and when the last one came.
#[derive(Default)]
struct Count {
    n: Cell<u64>,
    last_us: Cell<u64>,
}

impl Count {
    fn one(&self) {
        self.n.set(self.n.get() + 1);
        self.last_us.set(now_us());
    }
}

async fn floor(o: &FloorOpts) -> Result<serde_json::Value, String> {
    let count = Rc::new(Count::default());
    let c = count.clone();
    let (url, target) = (o.source_url.clone(), o.source_target.clone());
    let mut pg_client = None;
    let consumer = match o.source {
        Source::PgNotify => {
            let (client, mut connection) = tokio_postgres::connect(&url, tokio_postgres::NoTls)
                .await
                .map_err(|e| format!("postgres connect: {e}"))?;
            let (ready_tx, ready_rx) = tokio::sync::oneshot::channel();
            let task = tokio::task::spawn_local(async move {
                let mut messages =
                    futures_util::stream::poll_fn(move |cx| connection.poll_message(cx));
                let _ = ready_tx.send(());
                while let Some(Ok(m)) = messages.next().await {
                    if let tokio_postgres::AsyncMessage::Notification(_) = m {
                        c.one();
                    }
                }
            });
            let _ = ready_rx.await;
            client
                .batch_execute(&format!("LISTEN \"{target}\""))
                .await
                .map_err(|e| format!("LISTEN: {e}"))?;
            // The client lives as long as the run: dropping it would close the connection.
            pg_client = Some(client);
            task
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
                while sub.next().await.is_some() {
                    c.one();
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
                        c.one();
                    }
                }
            })
        }
        other => return Err(format!("{}: no bare consumer here", other.name())),
    };
    let mut producer = Producer::connect(o.source, &o.source_url, &o.source_target).await?;
    let first = now_us();
    let batch = o.source_batch.max(1) as u64;
    let mut seq = 0;
    while seq < o.events {
        let end = (seq + batch).min(o.events);
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
        "produced_per_s": (o.events as f64 / secs(produced).max(1e-9)).round(),
        "consumed": got,
        "consumed_per_s": if last > first { (got as f64 / secs(last)).round() } else { 0.0 },
    }))
}
