//! The `ssehub` binary: glue. Reads flags, environment and file into a config, picks the
//! store, installs logging, and runs a subcommand.

// The binary is the one place that writes to standard output (the workspace denies it
// elsewhere): the listening line, print-config, and the publish/subscribe commands.
#![allow(clippy::print_stdout)]

mod auth_settings;
mod config;
mod publish;
mod subscribe;

use std::sync::Arc;

use anyhow::Context;
use clap::{Parser, Subcommand};
use ssehub::Hub;
use ssehub_core::{ClassedStore, MemoryStore, Retention, Store};
use ssehub_store_log::{open_classed, LogOptions, LogStore, RecoveryReport};
use ssehub_store_nats::{NatsEngine, NatsOptions};
use ssehub_store_redis::{RedisEngine, RedisOptions};
use tokio::net::TcpListener;

use crate::config::{Layer, Settings, StoreChoice};

/// mimalloc rather than the system allocator: every open stream is a handful of small
/// allocations made between larger short-lived ones (the request head, the setup), and
/// mimalloc's size-class pages do not leave the holes between them that glibc's heap does
/// (BENCHMARKS.md, "Idle connections").
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[derive(Parser)]
#[command(
    name = "ssehub",
    version,
    about = "A real-time push hub: Server-Sent Events for topics, published over HTTP."
)]
#[command(args_conflicts_with_subcommands = true)]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
    #[command(flatten)]
    serve: ServeArgs,
}

#[derive(Subcommand)]
enum Command {
    /// Run the hub (the default)
    Serve(Box<ServeArgs>),
    /// Publish one event (like mosquitto_pub)
    Publish(publish::PublishArgs),
    /// Subscribe to topics and print events as they arrive (like mosquitto_sub)
    Subscribe(subscribe::SubscribeArgs),
    /// Print the configuration file with every key, its default and what it does, then the
    /// effective retention rules if flags, environment or --config give any
    PrintConfig(Box<ServeArgs>),
    /// Print a shell completion script (bash, zsh, fish, elvish, powershell)
    Completions {
        /// The shell, e.g. `ssehub completions bash > /etc/bash_completion.d/ssehub`
        shell: clap_complete::Shell,
    },
    /// Print the manual page (roff), e.g. `ssehub man > ssehub.1 && man ./ssehub.1`
    Man,
}

#[derive(clap::Args, Default)]
struct ServeArgs {
    /// TOML configuration file; the only place for [[route]] aliases (docs/routes.md) and
    /// [[bridge]] ingest bridges from PostgreSQL (LISTEN/NOTIFY, outbox), Redis (pub/sub,
    /// Streams), NATS (core, JetStream), MQTT and AMQP/RabbitMQ (docs/bridges.md)
    #[arg(long, env = "SSEHUB_CONFIG", value_name = "FILE")]
    config: Option<std::path::PathBuf>,
    #[command(flatten)]
    layer: Layer,
}

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    match cli.command {
        None => serve(cli.serve),
        Some(Command::Serve(args)) => serve(*args),
        Some(Command::Publish(args)) => client_runtime()?.block_on(publish::run(args)),
        Some(Command::Subscribe(args)) => client_runtime()?.block_on(subscribe::run(args)),
        Some(Command::Completions { shell }) => {
            let mut command = <Cli as clap::CommandFactory>::command();
            clap_complete::generate(shell, &mut command, "ssehub", &mut std::io::stdout());
            Ok(())
        }
        Some(Command::Man) => {
            let command = <Cli as clap::CommandFactory>::command();
            let mut page = Vec::new();
            clap_mangen::Man::new(command.clone()).render(&mut page)?;
            // One section per subcommand after the main page.
            for sub in command.get_subcommands().filter(|s| s.get_name() != "help") {
                let sub = sub
                    .clone()
                    .display_name(format!("ssehub-{}", sub.get_name()))
                    .bin_name(format!("ssehub {}", sub.get_name()));
                let mut section = Vec::new();
                clap_mangen::Man::new(sub).render(&mut section)?;
                page.extend_from_slice(b"\n");
                page.extend_from_slice(&section);
            }
            use std::io::Write;
            std::io::stdout().write_all(&page)?;
            Ok(())
        }
        Some(Command::PrintConfig(args)) => {
            print!("{}", config::DEFAULT_TOML);
            let settings = settings(*args)?;
            let rules = settings.store.classes();
            if !rules.is_empty() {
                print!(
                    "\n# --- Effective retention rules (from flags, environment and --config) ---\n\n{}",
                    config::print_retain(rules)
                );
            }
            Ok(())
        }
    }
}

/// The client commands need no more than one thread.
fn client_runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    Ok(tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?)
}

/// Logs to standard error at the `SSEHUB_LOG` level (default info): text, coloured on a
/// terminal, or with `json` one JSON object a line (timestamp, level, target, fields).
fn install_logging(json: bool) {
    let filter = tracing_subscriber::EnvFilter::try_from_env("SSEHUB_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    use std::io::IsTerminal;
    let logs = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    if json {
        logs.json().flatten_event(true).init();
    } else {
        logs.with_ansi(std::io::stderr().is_terminal()).init();
    }
}

fn serve(args: ServeArgs) -> anyhow::Result<()> {
    let settings = settings(args)?;
    install_logging(settings.json_logs);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    runtime.block_on(run(settings))
}

/// Reads the config file, if any, and resolves every layer.
fn settings(args: ServeArgs) -> anyhow::Result<Settings> {
    let file = match &args.config {
        Some(path) => {
            let text = std::fs::read_to_string(path)
                .with_context(|| format!("config: cannot read {}", path.display()))?;
            Some(config::parse_file(&text, &path.display().to_string())?)
        }
        None => None,
    };
    config::resolve(config::with_mercure_aliases(args.layer)?, file)
}

/// The cluster engine a hub joined.
enum Cluster {
    Redis(Arc<RedisEngine>),
    Nats(Arc<NatsEngine>),
}

impl Cluster {
    /// Makes the engine the hub's path of every publish and starts its reader and its
    /// exchange of counts.
    fn start(self, hub: &Arc<Hub>) {
        match self {
            Cluster::Redis(engine) => engine.start(hub),
            Cluster::Nats(engine) => engine.start(hub),
        }
    }
}

/// The history, and the cluster engine when the hub joins a cluster.
type Opened = (Arc<dyn Store>, Option<Cluster>);

async fn open_store(choice: &StoreChoice) -> anyhow::Result<Opened> {
    match choice {
        StoreChoice::Memory { history, classes } => {
            let default = Arc::new(MemoryStore::new(Retention::events(*history)));
            if classes.is_empty() {
                return Ok((default, None));
            }
            let rules = classes
                .iter()
                .map(|(pattern, retention)| {
                    let store: Arc<dyn Store> = Arc::new(MemoryStore::new(retention.clone()));
                    (pattern.clone(), store)
                })
                .collect();
            Ok((Arc::new(ClassedStore::new(default, rules)), None))
        }
        StoreChoice::Redis { url, history } => {
            let options = RedisOptions {
                max_events: *history,
                ..RedisOptions::new(url)
            };
            let engine = RedisEngine::connect(options)
                .await
                .with_context(|| format!("engine: cannot join the cluster at {url}"))?;
            Ok((engine.mirror(), Some(Cluster::Redis(engine))))
        }
        StoreChoice::Nats { url, history } => {
            let options = NatsOptions {
                max_events: *history,
                ..NatsOptions::new(url)
            };
            let engine = NatsEngine::connect(options)
                .await
                .with_context(|| format!("engine: cannot join the cluster at {url}"))?;
            Ok((engine.mirror(), Some(Cluster::Nats(engine))))
        }
        StoreChoice::Log {
            dir,
            sync,
            retention,
            segment_bytes,
            classes,
        } => {
            let options = |retention: &Retention| LogOptions {
                sync: *sync,
                segment_bytes: *segment_bytes,
                ..LogOptions::new(retention.clone())
            };
            let cannot_open =
                || format!("data_dir: cannot open the event log in {}", dir.display());
            if classes.is_empty() {
                let store = LogStore::open(dir, options(retention)).with_context(cannot_open)?;
                log_opened(dir, store.recovery());
                return Ok((Arc::new(store), None));
            }
            let rules = classes
                .iter()
                .map(|(pattern, retention)| (pattern.clone(), options(retention)))
                .collect();
            let log = open_classed(dir, options(retention), rules).with_context(cannot_open)?;
            for (class_dir, report) in &log.opened {
                log_opened(class_dir, report);
            }
            for unused in &log.unused {
                tracing::warn!(dir = %unused.display(), "a retention class directory no rule uses (its pattern changed or its rule was removed); its events are not served: delete it to free the disk");
            }
            Ok((Arc::new(log.store), None))
        }
    }
}

fn log_opened(dir: &std::path::Path, report: &RecoveryReport) {
    tracing::info!(dir = %dir.display(), records = report.records, retained = report.retained, segments = report.segments, "event log opened");
    if let Some(torn) = &report.torn_tail {
        tracing::warn!(file = %torn.path.display(), offset = torn.offset, dropped_bytes = torn.dropped_bytes, reason = %torn.reason, "dropped a torn record at the end of the log (a crash during a write)");
    }
}

/// A listening socket on `addr` with an accept queue of `backlog` connections (tokio's
/// `TcpListener::bind` fixes it at 1,024, which a storm of reconnecting clients overflows).
fn bind(addr: std::net::SocketAddr, backlog: u32) -> std::io::Result<TcpListener> {
    let socket = if addr.is_ipv4() {
        tokio::net::TcpSocket::new_v4()?
    } else {
        tokio::net::TcpSocket::new_v6()?
    };
    socket.set_reuseaddr(true)?;
    socket.bind(addr)?;
    socket.listen(backlog)
}

async fn run(settings: Settings) -> anyhow::Result<()> {
    let (store, engine) = open_store(&settings.store).await?;
    let listener = bind(settings.hub.listen, settings.listen_backlog)
        .with_context(|| format!("listen: cannot bind {}", settings.hub.listen))?;
    let addr = listener.local_addr()?;
    let shutdown = shutdown_signal().context("cannot install the signal handlers")?;
    // Scripts and tests read the port from this line.
    let scheme = if settings.hub.tls.is_some() {
        "https"
    } else {
        "http"
    };
    println!("listening on {scheme}://{addr}");
    tracing::info!(%addr, store = ?settings.store, "ssehub started");
    let hub = Hub::new(settings.hub, store);
    if let Some(cluster) = engine {
        cluster.start(&hub);
    }
    // Each bridge runs on its own: one that cannot reach its source retries with back-off
    // and never holds up the HTTP API or the others.
    let _bridges = ssehub_bridge::start(hub.clone(), settings.bridges)
        .context("bridges: cannot start their thread")?;
    ssehub::serve(listener, hub, shutdown).await?;
    tracing::info!("stopped");
    Ok(())
}

/// Resolves on SIGINT or SIGTERM. The handlers are installed here, before the hub says it is
/// listening, so a signal sent right after that line is never missed (it would otherwise
/// kill the process without a graceful shutdown).
#[cfg(unix)]
fn shutdown_signal() -> anyhow::Result<impl std::future::Future<Output = ()>> {
    use tokio::signal::unix::{signal, SignalKind};
    let mut interrupt = signal(SignalKind::interrupt())?;
    let mut terminate = signal(SignalKind::terminate())?;
    Ok(async move {
        tokio::select! {
            _ = interrupt.recv() => {},
            _ = terminate.recv() => {},
        }
    })
}

#[cfg(not(unix))]
fn shutdown_signal() -> anyhow::Result<impl std::future::Future<Output = ()>> {
    Ok(async {
        let _ = tokio::signal::ctrl_c().await;
    })
}
