//! `ssehub-bench`: a load generator for SSE hubs (ssehub and its peers) over loopback.
//!
//! Modes: `idle`, `fanout`, `publish`, `replay`, `storm`; `bare-server` is a minimal fan-out
//! server (the machine's ceiling for the same bytes); `child` is internal (one subscriber
//! process). See `bench/README.md`.

mod bare;
mod child;
mod coord;
mod floor;
mod hist;
mod http;
mod procfs;
mod report;
mod source;
mod sse;

use std::net::Ipv4Addr;
use std::time::{SystemTime, UNIX_EPOCH};

use clap::{Args, Parser, Subcommand};

/// Wall-clock microseconds since the epoch: comparable across the generator's processes.
pub fn now_us() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_micros() as u64)
        .unwrap_or(0)
}

#[derive(Parser)]
#[command(
    name = "ssehub-bench",
    version,
    about = "Load generator for SSE hubs over loopback"
)]
struct Cli {
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// Hold N idle subscriber connections for --hold seconds; hub RSS per connection.
    Idle(Opts),
    /// N subscribers over K topics; publish M events at R/s; completeness, deliveries/s, latency.
    Fanout(Opts),
    /// Publish throughput (as fast as possible unless --rate), with --conns subscribers or none.
    Publish(Opts),
    /// Publish M events, then --replayers subscribers resume from the first with Last-Event-ID.
    Replay(Opts),
    /// N subscribers; all drop at once and reconnect at once with Last-Event-ID.
    Storm(Opts),
    /// A bare fan-out server writing the same bytes (the machine's ceiling; no hub logic).
    BareServer(bare::BareOpts),
    /// Create (setup) or remove (teardown) a source's stream, table or queue for a run.
    SourceAdmin(source::AdminOpts),
    /// The source alone: the `--source` producer and a bare consumer, no hub (pg-notify,
    /// pg-outbox, nats, jetstream); messages/s flat out, latency at a fixed --rate.
    SourceFloor(floor::FloorOpts),
    /// Internal: one subscriber process, driven over stdin/stdout by the coordinator.
    #[command(hide = true)]
    Child,
}

/// Options shared by every load mode (defaults suit ssehub's native API).
#[derive(Args, Clone, Debug)]
#[command(args_override_self = true)]
pub struct Opts {
    /// Name of the hub under test, for the report.
    #[arg(long, default_value = "ssehub")]
    pub label: String,
    /// Show the publishing progress on standard error (the default when it is a terminal).
    #[arg(long)]
    pub progress: bool,
    /// Subscribe URL template; `{topic}` is replaced by the topic name.
    #[arg(long, default_value = "http://127.0.0.1:8080/events/{topic}")]
    pub sub_url: String,
    /// More subscribe URL templates (repeatable), e.g. other nodes of a cluster: subscriber
    /// process p uses the (p mod count)-th of `--sub-url` and these, so with `--procs` a
    /// multiple of the count the connections split evenly.
    #[arg(long)]
    pub sub_url_extra: Vec<String>,
    /// Extra subscribe request header ("Name: value"), repeatable.
    #[arg(long)]
    pub sub_header: Vec<String>,
    /// Publish URL template (`{topic}` allowed).
    #[arg(long, default_value = "http://127.0.0.1:8080/publish")]
    pub pub_url: String,
    #[arg(long, default_value = "POST")]
    pub pub_method: String,
    /// Content-Type of publish requests ("" for none).
    #[arg(long, default_value = "application/json")]
    pub pub_content_type: String,
    /// Publish body template: `{topic}`, `{payload}` (marker + padding), `{seq}` (global number).
    #[arg(long, default_value = r#"{"topic":"{topic}","data":"{payload}"}"#)]
    pub pub_body: String,
    /// Extra publish request header ("Name: value"), repeatable.
    #[arg(long)]
    pub pub_header: Vec<String>,
    /// Keep-alive publish connections (closed loop: each waits for its response).
    #[arg(long, default_value_t = 1)]
    pub pub_conns: usize,
    /// Subscriber connections (idle, fanout, storm; publish: subscribers during publishing).
    #[arg(long, short = 'n')]
    pub conns: Option<u64>,
    /// Topics; connection i subscribes to topic i % K, event i goes to topic i % K.
    #[arg(long, short = 'k', default_value_t = 1)]
    pub topics: u64,
    #[arg(long, default_value = "t")]
    pub topic_prefix: String,
    /// Fanout/publish: before any subscriber connects, publish one event to each of this many
    /// topics named `<--prefill-prefix><i>` (flat out, on `--prefill-conns` connections): topics
    /// that hold history but have no subscriber.
    #[arg(long, default_value_t = 0)]
    pub prefill: u64,
    #[arg(long, default_value = "h")]
    pub prefill_prefix: String,
    #[arg(long, default_value_t = 16)]
    pub prefill_conns: usize,
    /// Events to publish.
    #[arg(long, short = 'm')]
    pub events: Option<u64>,
    /// Publish rate in events/s (open loop, capped by the closed-loop connections); 0 = flat out.
    #[arg(long, short = 'r')]
    pub rate: Option<f64>,
    /// Payload bytes per event (the marker `@<send µs>:<seq>:` then `x` padding).
    #[arg(long, default_value_t = 100)]
    pub payload_size: usize,
    /// Idle: seconds to hold the connections.
    #[arg(long, default_value_t = 20.0)]
    pub hold: f64,
    /// Subscriber processes (default: enough for --max-per-proc each).
    #[arg(long)]
    pub procs: Option<u64>,
    #[arg(long, default_value_t = 19_000)]
    pub max_per_proc: u64,
    /// First source address for subscribers; "none" lets the kernel choose.
    #[arg(long, default_value = "127.0.0.2")]
    pub src_base: String,
    /// Connections per source address before moving to the next one (at most 27,000: each
    /// gets explicit source ports from 10,000 up).
    #[arg(long, default_value_t = 20_000)]
    pub per_addr: u64,
    /// New subscriber connections per second (over all processes); 0 = all at once.
    #[arg(long, default_value_t = 2000.0)]
    pub ramp: f64,
    /// Seconds for a connection to be answered.
    #[arg(long, default_value_t = 30.0)]
    pub connect_timeout: f64,
    /// Seconds to wait after publishing for every subscriber to get every event.
    #[arg(long, default_value_t = 30.0)]
    pub drain_timeout: f64,
    /// Hub process id(s) to measure (descendants included), repeatable.
    #[arg(long)]
    pub hub_pid: Vec<u32>,
    /// Write the JSON report here (it is also printed on stdout).
    #[arg(long)]
    pub json: Option<std::path::PathBuf>,
    /// Replay: subscribers that resume from the start.
    #[arg(long, default_value_t = 1)]
    pub replayers: u64,
    /// Replay: resume from this id instead of the id recorded for the first event.
    #[arg(long)]
    pub last_event_id: Option<String>,
    /// Storm: events published (and received) before the drop.
    #[arg(long, default_value_t = 5)]
    pub pre_events: u64,
    /// Storm: events published while every client is disconnected.
    #[arg(long, default_value_t = 5)]
    pub gap_events: u64,
    /// Read buffer per subscriber connection, bytes.
    #[arg(long, default_value_t = 4096)]
    pub read_buf: usize,
    /// Fanout/publish: write events into this source instead of `--pub-url`; a hub bridge
    /// carries them to the subscribers (one topic only: the bridge maps them onto it).
    #[arg(long, value_enum)]
    pub source: Option<source::Source>,
    /// The source's URL (`postgres://...`, `nats://...`, `redis://...`, `amqp://...`,
    /// `mqtt://host:port`).
    #[arg(long, default_value = "")]
    pub source_url: String,
    /// The source's channel, table, subject, stream key, queue or MQTT topic.
    #[arg(long, default_value = "")]
    pub source_target: String,
    /// Flat out (`--rate 0`): events per write into the source (one statement, pipeline or
    /// flush); at a fixed rate each write holds the events due, usually one.
    #[arg(long, default_value_t = 100)]
    pub source_batch: usize,
    /// The hub's /metrics URL: sampled every 20 ms while publishing and draining, so the
    /// report has the rate at which the bridges' `ssehub_bridge_published_total` grew.
    #[arg(long)]
    pub metrics_url: Option<String>,
}

impl Opts {
    /// `--sub-url` followed by every `--sub-url-extra`.
    pub fn sub_urls(&self) -> Vec<String> {
        std::iter::once(self.sub_url.clone())
            .chain(self.sub_url_extra.iter().cloned())
            .collect()
    }

    pub fn src_base(&self) -> Result<Option<Ipv4Addr>, String> {
        if self.src_base == "none" {
            return Ok(None);
        }
        let a: Ipv4Addr = self
            .src_base
            .parse()
            .map_err(|_| format!("--src-base {}: not an IPv4 address", self.src_base))?;
        if !a.is_loopback() {
            return Err("--src-base must be a loopback address".into());
        }
        Ok(Some(a))
    }
}

fn main() {
    let cli = Cli::parse();
    let code = match cli.cmd {
        Cmd::Child => child::run(),
        Cmd::BareServer(o) => bare::run(o),
        Cmd::SourceAdmin(o) => source::admin(o),
        Cmd::SourceFloor(o) => floor::run(o),
        Cmd::Idle(o) => coord::run(coord::Mode::Idle, o),
        Cmd::Fanout(o) => coord::run(coord::Mode::Fanout, o),
        Cmd::Publish(o) => coord::run(coord::Mode::Publish, o),
        Cmd::Replay(o) => coord::run(coord::Mode::Replay, o),
        Cmd::Storm(o) => coord::run(coord::Mode::Storm, o),
    };
    std::process::exit(code);
}
