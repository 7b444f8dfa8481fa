//! `ssehub publish`: send one event to a hub and print the hub's answer.

use std::io::{Read, Write};

use anyhow::Context;
use ssehub_client::{Client, Publish};

/// Publish one event to a topic
#[derive(clap::Args, Debug)]
pub struct PublishArgs {
    /// The hub's base URL
    #[arg(
        long,
        env = "SSEHUB_HUB",
        default_value = "http://127.0.0.1:8080",
        value_name = "URL"
    )]
    pub hub: String,
    /// The topic to publish to
    #[arg(value_name = "TOPIC")]
    pub topic: String,
    /// The event's data; `-` or absent reads standard input (one final newline is dropped)
    #[arg(value_name = "DATA")]
    pub data: Option<String>,
    /// The event name (subscribers see `message` without one)
    #[arg(long, value_name = "E")]
    pub event: Option<String>,
    /// A custom event id (the hub assigns one otherwise)
    #[arg(long, value_name = "I")]
    pub id: Option<String>,
    /// A reconnection time to send to the subscribers, in milliseconds
    #[arg(long, value_name = "MS")]
    pub retry: Option<u64>,
    /// Make this the topic's final event: its subscribers' streams end after it
    #[arg(long)]
    pub close: bool,
}

/// Publishes the event and prints `{"id":...,"delivered":n}` on standard output.
pub async fn run(args: PublishArgs) -> anyhow::Result<()> {
    let client = Client::new(&args.hub)?;
    let data = match args.data {
        Some(data) if data != "-" => data,
        _ => tokio::task::spawn_blocking(read_stdin)
            .await
            .context("reading standard input")??,
    };
    let published = client
        .publish(&Publish {
            topics: vec![args.topic],
            event: args.event,
            data,
            id: args.id,
            retry: args.retry,
            close: args.close,
        })
        .await
        .with_context(|| format!("publishing to {}", args.hub))?;
    let mut out = std::io::stdout().lock();
    writeln!(out, "{}", serde_json::to_string(&published)?)?;
    out.flush()?;
    Ok(())
}

/// All of standard input as text, less one final line end (what `echo` adds).
fn read_stdin() -> anyhow::Result<String> {
    let mut data = String::new();
    std::io::stdin()
        .read_to_string(&mut data)
        .context("reading the data from standard input (it must be UTF-8)")?;
    if data.ends_with('\n') {
        data.pop();
        if data.ends_with('\r') {
            data.pop();
        }
    }
    Ok(data)
}
