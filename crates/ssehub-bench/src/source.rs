//! Sources: with `--source`, the fan-out publisher writes each event into a database or
//! message bus instead of `POST /publish`, and a hub bridge (`[[bridge]]`) carries it to the
//! subscribers. The payload is the same marker (`@<send µs>:<seq>:`), so the subscribers
//! measure source → subscriber latency exactly as they measure publish → subscriber.
//!
//! Each producer sends a batch of payloads per call: one statement for PostgreSQL, a
//! pipeline for Redis, buffered publishes and one flush (or the batch's acks) for NATS,
//! JetStream, AMQP and MQTT. At a fixed `--rate` a batch is whatever is due (usually one).

use std::time::Duration;

use async_nats::jetstream;
use clap::ValueEnum;

/// Where the publisher writes.
#[derive(ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum Source {
    /// `SELECT pg_notify(channel, payload)`; the hub's `postgres-listen` bridge.
    PgNotify,
    /// `INSERT INTO table (topic, data)` and `NOTIFY table` in one statement; `postgres-outbox`.
    PgOutbox,
    /// Core NATS `PUB subject`; the `nats` bridge.
    Nats,
    /// JetStream publish to a stream's subject, each acknowledged by the server; `jetstream`.
    Jetstream,
    /// `PUBLISH channel payload`; `redis-pubsub`.
    RedisPubsub,
    /// `XADD key * topic <topic> data <payload>`; `redis-stream`.
    RedisStream,
    /// `basic.publish` to the default exchange, routing key = the queue (confirms on); `amqp`.
    Amqp,
    /// MQTT PUBLISH at QoS 1 to a topic; `mqtt`.
    Mqtt,
}

impl Source {
    pub fn name(self) -> &'static str {
        match self {
            Source::PgNotify => "pg-notify",
            Source::PgOutbox => "pg-outbox",
            Source::Nats => "nats",
            Source::Jetstream => "jetstream",
            Source::RedisPubsub => "redis-pubsub",
            Source::RedisStream => "redis-stream",
            Source::Amqp => "amqp",
            Source::Mqtt => "mqtt",
        }
    }
}

/// A connected producer for one source; `target` is the channel, table, subject, key,
/// queue or MQTT topic.
pub enum Producer {
    Pg {
        client: tokio_postgres::Client,
        statement: tokio_postgres::Statement,
        target: String,
    },
    Nats {
        client: async_nats::Client,
        target: String,
    },
    // Boxed: the context and the AMQP handles are large, and there is one producer a run.
    Jetstream {
        js: Box<jetstream::Context>,
        target: String,
    },
    Redis {
        conn: redis::aio::MultiplexedConnection,
        kind: Source,
        target: String,
    },
    Amqp {
        // Kept so the channel's connection lives as long as the producer.
        _connection: Box<lapin::Connection>,
        channel: Box<lapin::Channel>,
        target: String,
    },
    Mqtt {
        client: rumqttc::AsyncClient,
        target: String,
    },
}

fn quote(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}

/// A PostgreSQL client; its connection runs as a task of its own.
async fn pg_connect(url: &str) -> Result<tokio_postgres::Client, String> {
    let (client, connection) = tokio_postgres::connect(url, tokio_postgres::NoTls)
        .await
        .map_err(|e| format!("postgres connect: {e}"))?;
    tokio::spawn(async move {
        let _ = connection.await;
    });
    Ok(client)
}

async fn redis_connect(url: &str) -> Result<redis::aio::MultiplexedConnection, String> {
    redis::Client::open(url)
        .map_err(|e| format!("redis url: {e}"))?
        .get_multiplexed_async_connection()
        .await
        .map_err(|e| format!("redis connect: {e}"))
}

/// An AMQP connection (on tokio, as the bridge's) and a channel on it.
async fn amqp_open(url: &str) -> Result<(lapin::Connection, lapin::Channel), String> {
    let properties = lapin::ConnectionProperties::default()
        .with_executor(tokio_executor_trait::Tokio::current())
        .with_reactor(tokio_reactor_trait::Tokio::current());
    let connection = lapin::Connection::connect(url, properties)
        .await
        .map_err(|e| format!("amqp connect: {e}"))?;
    let channel = connection
        .create_channel()
        .await
        .map_err(|e| format!("amqp channel: {e}"))?;
    Ok((connection, channel))
}

impl Producer {
    /// Connects (and for an outbox creates its table if missing).
    pub async fn connect(kind: Source, url: &str, target: &str) -> Result<Producer, String> {
        let target = target.to_owned();
        match kind {
            Source::PgNotify | Source::PgOutbox => {
                let client = pg_connect(url).await?;
                let sql = if kind == Source::PgNotify {
                    "SELECT count(pg_notify($1, p)) FROM unnest($2::text[]) AS p".to_owned()
                } else {
                    client
                        .batch_execute(&format!(
                            "CREATE TABLE IF NOT EXISTS {} (id bigserial PRIMARY KEY, \
                             topic text NOT NULL, event text, data text NOT NULL)",
                            quote(&target)
                        ))
                        .await
                        .map_err(|e| format!("create {target}: {e}"))?;
                    // The NOTIFY on the table's name wakes the bridge at once (else it polls).
                    format!(
                        "WITH ins AS (INSERT INTO {} (topic, data) SELECT $3, unnest($2::text[]) \
                         RETURNING id) SELECT count(*), pg_notify($1, '') FROM ins",
                        quote(&target)
                    )
                };
                let statement = client
                    .prepare(&sql)
                    .await
                    .map_err(|e| format!("prepare: {e}"))?;
                Ok(Producer::Pg {
                    client,
                    statement,
                    target,
                })
            }
            Source::Nats | Source::Jetstream => {
                let client = async_nats::connect(url)
                    .await
                    .map_err(|e| format!("nats connect: {e}"))?;
                Ok(if kind == Source::Nats {
                    Producer::Nats { client, target }
                } else {
                    Producer::Jetstream {
                        js: Box::new(jetstream::new(client)),
                        target,
                    }
                })
            }
            Source::RedisPubsub | Source::RedisStream => {
                let conn = redis_connect(url).await?;
                Ok(Producer::Redis { conn, kind, target })
            }
            Source::Amqp => {
                let (connection, channel) = amqp_open(url).await?;
                // The same declaration as the bridge's, so the order of the two does not matter.
                channel
                    .queue_declare(
                        &target,
                        lapin::options::QueueDeclareOptions {
                            durable: true,
                            ..Default::default()
                        },
                        lapin::types::FieldTable::default(),
                    )
                    .await
                    .map_err(|e| format!("queue {target}: {e}"))?;
                channel
                    .confirm_select(lapin::options::ConfirmSelectOptions::default())
                    .await
                    .map_err(|e| format!("confirm select: {e}"))?;
                Ok(Producer::Amqp {
                    _connection: Box::new(connection),
                    channel: Box::new(channel),
                    target,
                })
            }
            Source::Mqtt => {
                let rest = url
                    .strip_prefix("mqtt://")
                    .or_else(|| url.strip_prefix("tcp://"))
                    .ok_or_else(|| format!("{url}: not an mqtt:// URL"))?;
                let (host, port) = rest
                    .trim_end_matches('/')
                    .rsplit_once(':')
                    .unwrap_or((rest, "1883"));
                let port: u16 = port.parse().map_err(|_| format!("{url}: bad port"))?;
                let id = format!("ssehub-bench-{}", std::process::id());
                let mut options = rumqttc::MqttOptions::new(id, host, port);
                options.set_keep_alive(Duration::from_secs(30));
                options.set_inflight(1000);
                let (client, mut events) = rumqttc::AsyncClient::new(options, 1000);
                tokio::spawn(async move {
                    // Polling drives the connection; it ends with the process.
                    loop {
                        if events.poll().await.is_err() {
                            tokio::time::sleep(Duration::from_millis(100)).await;
                        }
                    }
                });
                Ok(Producer::Mqtt { client, target })
            }
        }
    }

    /// Writes `payloads` (in order) for hub topic `topic`; returns once the source has them
    /// (its answer, acks or flush).
    pub async fn send(&mut self, topic: &str, payloads: &[String]) -> Result<(), String> {
        match self {
            Producer::Pg {
                client,
                statement,
                target,
            } => {
                let refs: Vec<&str> = payloads.iter().map(String::as_str).collect();
                let target: &str = target;
                if statement.params().len() == 3 {
                    client
                        .execute(statement, &[&target, &refs, &topic])
                        .await
                        .map_err(|e| format!("postgres: {e}"))?;
                } else {
                    client
                        .execute(statement, &[&target, &refs])
                        .await
                        .map_err(|e| format!("postgres: {e}"))?;
                }
            }
            Producer::Nats { client, target } => {
                for p in payloads {
                    client
                        .publish(target.clone(), p.clone().into())
                        .await
                        .map_err(|e| format!("nats publish: {e}"))?;
                }
                client
                    .flush()
                    .await
                    .map_err(|e| format!("nats flush: {e}"))?;
            }
            Producer::Jetstream { js, target } => {
                let mut acks = Vec::with_capacity(payloads.len());
                for p in payloads {
                    acks.push(
                        js.publish(target.clone(), p.clone().into())
                            .await
                            .map_err(|e| format!("jetstream publish: {e}"))?,
                    );
                }
                for ack in acks {
                    ack.await.map_err(|e| format!("jetstream ack: {e}"))?;
                }
            }
            Producer::Redis { conn, kind, target } => {
                let mut pipe = redis::pipe();
                for p in payloads {
                    if *kind == Source::RedisPubsub {
                        pipe.cmd("PUBLISH").arg(&*target).arg(p).ignore();
                    } else {
                        pipe.cmd("XADD")
                            .arg(&*target)
                            .arg("*")
                            .arg("topic")
                            .arg(topic)
                            .arg("data")
                            .arg(p)
                            .ignore();
                    }
                }
                pipe.query_async::<()>(conn)
                    .await
                    .map_err(|e| format!("redis: {e}"))?;
            }
            Producer::Amqp {
                channel, target, ..
            } => {
                let mut confirms = Vec::with_capacity(payloads.len());
                for p in payloads {
                    confirms.push(
                        channel
                            .basic_publish(
                                "",
                                target,
                                lapin::options::BasicPublishOptions::default(),
                                p.as_bytes(),
                                lapin::BasicProperties::default(),
                            )
                            .await
                            .map_err(|e| format!("amqp publish: {e}"))?,
                    );
                }
                for c in confirms {
                    c.await.map_err(|e| format!("amqp confirm: {e}"))?;
                }
            }
            Producer::Mqtt { client, target } => {
                for p in payloads {
                    client
                        .publish(target.clone(), rumqttc::QoS::AtLeastOnce, false, p.clone())
                        .await
                        .map_err(|e| format!("mqtt publish: {e}"))?;
                }
            }
        }
        Ok(())
    }
}

/// At a fixed `rate` (events/s, from `t0`): waits until event `j` is due and returns the end
/// of the write starting at it — at most `end`, and only the events due by now (at least
/// `j`'s). Flat out (`rate` 0) returns `end` at once.
pub async fn pace(t0: tokio::time::Instant, j: u64, end: u64, rate: f64) -> u64 {
    if rate <= 0.0 {
        return end;
    }
    tokio::time::sleep_until(t0 + Duration::from_secs_f64(j as f64 / rate)).await;
    let due = (t0.elapsed().as_secs_f64() * rate) as u64 + 1;
    end.min(due.max(j + 1))
}

/// `ssehub-bench source-admin`: creates or removes what a benchmark run's source needs.
#[derive(clap::Args, Clone, Debug)]
pub struct AdminOpts {
    /// `setup` or `teardown`.
    #[arg(value_parser = ["setup", "teardown"])]
    pub action: String,
    #[arg(long, value_enum)]
    pub source: Source,
    #[arg(long)]
    pub source_url: String,
    /// The channel, table, subject, stream key, queue or MQTT topic (as for `fanout`).
    #[arg(long)]
    pub source_target: String,
    /// JetStream: the stream holding `--source-target` as its subject.
    #[arg(long, default_value = "")]
    pub stream: String,
    /// pg-outbox teardown: the bridge's name, whose row in `ssehub_outbox_position` goes too.
    #[arg(long, default_value = "")]
    pub bridge: String,
}

/// Setup: a JetStream stream (file storage), an AMQP queue, an outbox table. Teardown: the
/// same removed, and a Redis stream key deleted. Other sources keep nothing.
pub fn admin(o: AdminOpts) -> i32 {
    let rt = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            crate::coord::log(&e.to_string());
            return 1;
        }
    };
    match rt.block_on(admin_run(&o)) {
        Ok(()) => 0,
        Err(e) => {
            crate::coord::log(&format!("source-admin {}: {e}", o.action));
            1
        }
    }
}

async fn admin_run(o: &AdminOpts) -> Result<(), String> {
    let setup = o.action == "setup";
    let target = o.source_target.as_str();
    match o.source {
        Source::Jetstream => {
            let client = async_nats::connect(o.source_url.as_str())
                .await
                .map_err(|e| format!("nats connect: {e}"))?;
            let js = jetstream::new(client);
            if setup {
                js.create_stream(jetstream::stream::Config {
                    name: o.stream.clone(),
                    subjects: vec![target.to_owned()],
                    storage: jetstream::stream::StorageType::File,
                    ..Default::default()
                })
                .await
                .map_err(|e| format!("create stream {}: {e}", o.stream))?;
            } else {
                js.delete_stream(&o.stream)
                    .await
                    .map_err(|e| format!("delete stream {}: {e}", o.stream))?;
            }
        }
        Source::PgOutbox if !setup => {
            let client = pg_connect(&o.source_url).await?;
            client
                .batch_execute(&format!("DROP TABLE IF EXISTS {}", quote(target)))
                .await
                .map_err(|e| format!("drop {target}: {e}"))?;
            client
                .execute(
                    "DELETE FROM ssehub_outbox_position WHERE bridge = $1",
                    &[&o.bridge],
                )
                .await
                .map_err(|e| format!("position row: {e}"))?;
        }
        Source::Amqp if !setup => {
            let (_connection, channel) = amqp_open(&o.source_url).await?;
            channel
                .queue_delete(target, lapin::options::QueueDeleteOptions::default())
                .await
                .map_err(|e| format!("delete queue {target}: {e}"))?;
        }
        Source::RedisStream if !setup => {
            let mut conn = redis_connect(&o.source_url).await?;
            redis::cmd("DEL")
                .arg(target)
                .query_async::<()>(&mut conn)
                .await
                .map_err(|e| format!("redis DEL: {e}"))?;
        }
        // The outbox table and the AMQP queue are made by the producer when it connects
        // (and the queue by the bridge as well).
        Source::PgOutbox | Source::Amqp if setup => {
            Producer::connect(o.source, &o.source_url, target).await?;
        }
        _ => {}
    }
    Ok(())
}
