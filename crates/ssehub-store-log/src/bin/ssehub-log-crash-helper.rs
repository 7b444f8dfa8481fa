//! Test helper: appends events to a log store from several threads under batch sync and
//! prints each id once `wait_durable` has returned, until killed or done.
//!
//! Usage: `ssehub-log-crash-helper <dir> <threads> <events per thread>`. Prints
//! `<id> <thread>-<n>` per acknowledged event. Used by the crash-safety test.

use std::io::Write;
use std::path::PathBuf;
use std::time::Duration;

use ssehub_core::{NewEvent, Store, Topic};
use ssehub_store_log::{LogOptions, LogStore, SyncMode};

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let [_, dir, threads, per_thread] = &args[..] else {
        eprintln!("usage: ssehub-log-crash-helper <dir> <threads> <events per thread>");
        std::process::exit(2);
    };
    let dir = PathBuf::from(dir);
    let threads: usize = threads.parse().expect("threads");
    let per_thread: usize = per_thread.parse().expect("events per thread");
    let options = LogOptions {
        sync: SyncMode::Batch {
            max_delay: Duration::from_millis(2),
            max_events: 64,
        },
        segment_bytes: 64 << 10,
        ..LogOptions::default()
    };
    let store = LogStore::open(&dir, options).expect("open store");
    let topic = vec![Topic::new("crash").expect("topic")];
    std::thread::scope(|scope| {
        for t in 0..threads {
            let (store, topic) = (&store, &topic);
            scope.spawn(move || {
                for n in 0..per_thread {
                    let event = store
                        .append(NewEvent::new(topic.clone(), format!("{t}-{n}")))
                        .expect("append");
                    store.wait_durable(event.id).expect("wait_durable");
                    let mut out = std::io::stdout().lock();
                    writeln!(out, "{} {}", event.id, event.data).expect("stdout");
                    out.flush().expect("stdout");
                }
            });
        }
    });
}
