//! Measures what retention classes cost over one log: append throughput (sync never, so the
//! store's own work shows, not the disk's) and replaying 100k events in pages of 512 (the
//! hub's replay page), for a plain `LogStore` and for a `ClassedStore` over the default log
//! and two rule classes, with events spread over the three classes in turn, then in three
//! runs (a third of the events to each class, one class after the other: the merge's worst
//! case, where a page of the later classes is read and dropped each time).
//!
//! `cargo run --release -p ssehub-store-log --example classbench [-- --dir D]`

use std::io::Write;
use std::path::PathBuf;
use std::time::Instant;

use ssehub_core::{NewEvent, Retention, Store, Topic, TopicPattern};
use ssehub_store_log::{open_classed, LogOptions, LogStore, SyncMode};

const EVENTS: u64 = 100_000;
const PAGE: usize = 512;

fn say(line: &str) {
    let mut out = std::io::stdout().lock();
    let _ = writeln!(out, "{line}");
}

fn options() -> LogOptions {
    let mut o = LogOptions::new(Retention {
        max_events: None,
        max_age: None,
        max_bytes: None,
    });
    o.sync = SyncMode::Never;
    o
}

fn run(name: &str, store: &dyn Store, topics: &[Topic], in_runs: bool) {
    let started = Instant::now();
    let k = topics.len() as u64;
    for n in 0..EVENTS {
        let i = if in_runs { n * k / EVENTS } else { n % k };
        let topic = topics[i as usize].clone();
        store
            .append(NewEvent::new(vec![topic], format!("{n:0>100}")))
            .expect("append");
    }
    let append = started.elapsed();
    let started = Instant::now();
    let mut after = store.replay_start();
    let mut seen = 0;
    loop {
        let page = store.read(after, &|_| true, PAGE).expect("read");
        seen += page.events.len();
        after = page.through;
        if page.at_head {
            break;
        }
    }
    let replay = started.elapsed();
    assert_eq!(seen as u64, EVENTS);
    say(&format!(
        "{name}: append {:.0} events/s, replay {:.0} events/s",
        EVENTS as f64 / append.as_secs_f64(),
        EVENTS as f64 / replay.as_secs_f64()
    ));
}

fn main() {
    let mut args = std::env::args().skip(1);
    let mut base = std::env::temp_dir().join(format!("ssehub-classbench-{}", std::process::id()));
    while let Some(arg) = args.next() {
        if arg == "--dir" {
            base = PathBuf::from(args.next().expect("--dir needs a directory"));
        }
    }
    let topic = |name: &str| Topic::new(name).expect("topic");
    let topics = [topic("news"), topic("prices/eur"), topic("chat/a")];
    for (in_runs, how) in [(false, "in turn"), (true, "in runs")] {
        {
            let dir = base.join("plain");
            let store = LogStore::open(&dir, options()).expect("open");
            run(&format!("one log, {how}"), &store, &topics, in_runs);
        }
        {
            let dir = base.join("classes");
            let rules = vec![
                (TopicPattern::new("prices/*").expect("pattern"), options()),
                (TopicPattern::new("chat/**").expect("pattern"), options()),
            ];
            let log = open_classed(&dir, options(), rules).expect("open");
            run(&format!("3 classes, {how}"), &log.store, &topics, in_runs);
        }
        let _ = std::fs::remove_dir_all(&base);
    }
    let _ = std::fs::remove_dir_all(&base);
}
