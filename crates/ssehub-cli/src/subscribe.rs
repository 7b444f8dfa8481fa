//! `ssehub subscribe`: follow topics on a hub and print each event as it arrives.

use std::io::Write;

use anyhow::Context;
use ssehub_client::{Client, SubEvent, Subscription};

/// Follow topics and print their events (reconnects and resumes by itself)
#[derive(clap::Args, Debug)]
pub struct SubscribeArgs {
    /// The hub's base URL
    #[arg(
        long,
        env = "SSEHUB_HUB",
        default_value = "http://127.0.0.1:8080",
        value_name = "URL"
    )]
    pub hub: String,
    /// The topics to follow
    #[arg(value_name = "TOPIC", required = true)]
    pub topics: Vec<String>,
    /// Print one JSON object per event: {"id","event","data"}
    #[arg(long)]
    pub json: bool,
    /// Exit after this many events (control events included)
    #[arg(long, value_name = "N")]
    pub count: Option<u64>,
    /// Resume after this event id (replays what the hub retains after it)
    #[arg(long, value_name = "ID")]
    pub last_event_id: Option<String>,
    /// Also print presence events (subscribers joining and leaving the topics)
    #[arg(long)]
    pub presence: bool,
    /// Keep a live count of the events received on standard error (the default when
    /// standard output is redirected and standard error is a terminal)
    #[arg(long)]
    pub progress: bool,
}

/// The live count on standard error: rewritten in place at most ten times a second.
struct Progress {
    last: Option<std::time::Instant>,
}

impl Progress {
    fn show(&mut self, events: u64, force: bool) {
        let now = std::time::Instant::now();
        if !force
            && self
                .last
                .is_some_and(|t| now.duration_since(t).as_millis() < 100)
        {
            return;
        }
        self.last = Some(now);
        let plural = if events == 1 { "" } else { "s" };
        eprint!("\rssehub subscribe: {events} event{plural} received");
    }

    /// Ends the status line so the next message starts on a line of its own.
    fn finish(&mut self, events: u64) {
        if self.last.is_some() {
            self.show(events, true);
            eprintln!();
            self.last = None;
        }
    }
}

/// Prints events until `--count` is reached or the hub ends the subscription for good
/// (204: its topics are closed); a refused subscription is an error. Reconnections are
/// noted on standard error.
pub async fn run(args: SubscribeArgs) -> anyhow::Result<()> {
    let client = Client::new(&args.hub)?;
    let mut subscriber = client.subscribe(Subscription {
        last_event_id: args.last_event_id,
        presence: args.presence,
        report_reconnects: true,
        ..Subscription::new(args.topics)
    });
    let mut printed = 0u64;
    let stdout = std::io::stdout();
    use std::io::IsTerminal;
    let live = args.progress || (std::io::stderr().is_terminal() && !stdout.is_terminal());
    let mut progress = Progress { last: None };
    while args.count.is_none_or(|n| printed < n) {
        let Some(event) = subscriber.next().await else {
            break;
        };
        let event = match event {
            Ok(event) => event,
            Err(e) if !subscriber.is_closed() => {
                progress.finish(printed);
                eprintln!(
                    "ssehub subscribe: {:#}; reconnecting",
                    anyhow::Error::from(e)
                );
                continue;
            }
            Err(e) => {
                progress.finish(printed);
                return Err(e).with_context(|| format!("subscribing at {}", args.hub));
            }
        };
        let line = if args.json {
            serde_json::to_string(&event)?
        } else {
            readable(&event)
        };
        let mut lock = stdout.lock();
        match writeln!(lock, "{line}").and_then(|()| lock.flush()) {
            Ok(()) => {}
            // The reader went away (`| head`): that is how piped output ends.
            Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => return Ok(()),
            Err(e) => return Err(e).context("writing to standard output"),
        }
        printed += 1;
        if live {
            progress.show(printed, false);
        }
    }
    progress.finish(printed);
    Ok(())
}

/// `[id] event: data`, further data lines indented under the first.
fn readable(event: &SubEvent) -> String {
    let id = if event.id.is_empty() { "-" } else { &event.id };
    let data = event.data.replace('\n', "\n    ");
    format!("[{id}] {}: {data}", event.event)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn readable_lines() {
        let e = |id: &str, event: &str, data: &str| SubEvent {
            id: id.into(),
            event: event.into(),
            data: data.into(),
        };
        assert_eq!(readable(&e("1-0", "headline", "hi")), "[1-0] headline: hi");
        assert_eq!(
            readable(&e("", "message", "a\nb\n")),
            "[-] message: a\n    b\n    "
        );
    }
}
