//! Measures the log store: publish throughput (append + `wait_durable`) under each sync mode
//! with 1, 64 and 256 concurrent publishers (and a few batch settings), raw append throughput, replay of 100k events in
//! pages of 1000, and the time to reopen a store holding 1M events.
//!
//! `cargo run --release -p ssehub-store-log --example logbench [-- --quick] [--dir D]`
//! (`--replay-only` fills 100k events once and replays them 20 times, for a profiler;
//! `--group-commit` compares `always`, the default `batch` and the old 2 ms batch window for a
//! sequential publisher (rate, p50/p99), 1..64 threads and 1..1024 `on_durable` in flight;
//! `--batch-floor` what the store alone takes from batch publishes of 1,000 events).
//! Each publish figure runs for about a second. Events carry one topic and 100 bytes.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use ssehub_core::{NewEvent, Retention, Store, Topic};
use ssehub_store_log::{LogOptions, LogStore, SyncMode};

fn say(line: &str) {
    let mut out = std::io::stdout().lock();
    let _ = writeln!(out, "{line}");
}

fn options(sync: SyncMode) -> LogOptions {
    LogOptions {
        sync,
        ..LogOptions::new(Retention {
            max_events: None,
            max_age: None,
            max_bytes: None,
        })
    }
}

fn event(n: u64) -> NewEvent {
    let topic = vec![Topic::new("bench/topic").expect("topic")];
    NewEvent::new(topic, format!("{n:0>100}"))
}

struct Scratch(PathBuf);

impl Scratch {
    fn new(base: &Path, name: &str) -> Scratch {
        let p = base.join(name);
        let _ = std::fs::remove_dir_all(&p);
        Scratch(p)
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// `publishers` threads each append and wait for durability, for about `run`.
fn publish(base: &Path, sync: SyncMode, publishers: usize, run: Duration) -> f64 {
    let dir = Scratch::new(base, "publish");
    let store = LogStore::open(&dir.0, options(sync)).expect("open");
    let count = AtomicU64::new(0);
    let stop = AtomicBool::new(false);
    let started = Instant::now();
    std::thread::scope(|s| {
        for _ in 0..publishers {
            s.spawn(|| {
                while !stop.load(Ordering::Relaxed) {
                    let n = count.fetch_add(1, Ordering::Relaxed);
                    let e = store.append(event(n)).expect("append");
                    store.wait_durable(e.id).expect("durable");
                }
            });
        }
        std::thread::sleep(run);
        stop.store(true, Ordering::Relaxed);
    });
    count.load(Ordering::Relaxed) as f64 / started.elapsed().as_secs_f64()
}

/// One thread keeps `in_flight` publishes waiting for durability through
/// [`LogStore::on_durable`] (as an async hub would), appending a new one as each completes.
fn publish_callbacks(base: &Path, sync: SyncMode, in_flight: u64, run: Duration) -> f64 {
    let dir = Scratch::new(base, "callbacks");
    let store = LogStore::open(&dir.0, options(sync)).expect("open");
    let (tx, rx) = std::sync::mpsc::channel::<()>();
    let issue = |n: u64| {
        let id = store.append(event(n)).expect("append").id;
        let tx = tx.clone();
        store.on_durable(id, move |r| {
            r.expect("durable");
            let _ = tx.send(());
        });
    };
    (0..in_flight).for_each(issue);
    let started = Instant::now();
    let mut done = 0u64;
    while started.elapsed() < run {
        rx.recv().expect("completion");
        issue(in_flight + done);
        done += 1;
    }
    done as f64 / started.elapsed().as_secs_f64()
}

/// One thread appends `n` events without waiting, then waits once for the last.
fn append_only(base: &Path, sync: SyncMode, n: u64) -> f64 {
    let dir = Scratch::new(base, "append");
    let store = LogStore::open(&dir.0, options(sync)).expect("open");
    let started = Instant::now();
    let mut last = None;
    for i in 0..n {
        last = Some(store.append(event(i)).expect("append").id);
    }
    store
        .wait_durable(last.expect("appended"))
        .expect("durable");
    n as f64 / started.elapsed().as_secs_f64()
}

/// `--batch-floor`: what the store alone takes from batch publishes of `per` events (the
/// hub's request): `append_batch` in chunks of 256 (the hub's `BATCH_CHUNK`) against single
/// appends, with one `wait_durable` per request (one thread: each wait is a whole fsync)
/// and with one at the end (the append path's own cost). `n` events, the default sync
/// mode; events/s.
fn batch_floor(base: &Path, n: u64, per: u64) {
    for wait_each in [false, true] {
        for batched in [true, false] {
            let dir = Scratch::new(base, "batch-floor");
            let store = LogStore::open(&dir.0, options(SyncMode::default())).expect("open");
            let started = Instant::now();
            let (mut i, mut last) = (0, None);
            while i < n {
                let request: Vec<NewEvent> = (i..(i + per).min(n)).map(event).collect();
                i += request.len() as u64;
                if batched {
                    let mut request = request.into_iter();
                    loop {
                        let chunk: Vec<NewEvent> = request.by_ref().take(256).collect();
                        if chunk.is_empty() {
                            break;
                        }
                        let (stored, result) = store.append_batch(chunk);
                        result.expect("append_batch");
                        last = stored.last().map(|e| e.id);
                    }
                } else {
                    for new in request {
                        last = Some(store.append(new).expect("append").id);
                    }
                }
                if wait_each || i >= n {
                    store
                        .wait_durable(last.expect("appended"))
                        .expect("durable");
                }
            }
            let rate = n as f64 / started.elapsed().as_secs_f64();
            let how = if batched {
                "append_batch (256 a call)"
            } else {
                "append, one by one"
            };
            let wait = if wait_each {
                format!("a wait per {per}")
            } else {
                "one wait at the end".into()
            };
            say(&format!("  {how}, {wait}: {rate:.0} events/s"));
        }
    }
}

fn fill(dir: &Path, n: u64) {
    let store = LogStore::open(dir, options(SyncMode::Never)).expect("open");
    for i in 0..n {
        store.append(event(i)).expect("append");
    }
}

/// Reads every event in pages of 1000; returns (events, seconds, bytes of SSE).
fn replay(store: &LogStore) -> (u64, f64, u64) {
    let started = Instant::now();
    let (mut events, mut bytes) = (0, 0);
    let mut after = store.floor();
    loop {
        let page = store.read(after, &|_| true, 1000).expect("read");
        events += page.events.len() as u64;
        bytes += page
            .events
            .iter()
            .map(|e| e.encoded.len() as u64)
            .sum::<u64>();
        after = page.through;
        if page.at_head {
            break;
        }
    }
    (events, started.elapsed().as_secs_f64(), bytes)
}

/// Median time of appending 128 bytes to a file and fsyncing it (`sync_data`).
fn fsync_latency(base: &Path) -> Duration {
    let path = base.join("fsync-probe");
    let mut f = std::fs::File::create(&path).expect("probe file");
    let mut times: Vec<Duration> = (0..200)
        .map(|_| {
            let t = Instant::now();
            f.write_all(&[b'x'; 128]).expect("write");
            f.sync_data().expect("fsync");
            t.elapsed()
        })
        .collect();
    let _ = std::fs::remove_file(&path);
    times.sort();
    times[times.len() / 2]
}

/// One thread appends and waits for each event in turn for about `run`: events/s, and the
/// p50 and p99 of one publish (append + `wait_durable`) in microseconds.
fn sequential(base: &Path, sync: SyncMode, run: Duration) -> (f64, f64, f64) {
    let dir = Scratch::new(base, "sequential");
    let store = LogStore::open(&dir.0, options(sync)).expect("open");
    let mut lat = Vec::new();
    let started = Instant::now();
    let mut n = 0u64;
    while started.elapsed() < run {
        let t = Instant::now();
        let e = store.append(event(n)).expect("append");
        store.wait_durable(e.id).expect("durable");
        lat.push(t.elapsed().as_secs_f64() * 1e6);
        n += 1;
    }
    let rate = n as f64 / started.elapsed().as_secs_f64();
    lat.sort_by(f64::total_cmp);
    let at = |q: f64| lat[((lat.len() as f64 * q) as usize).min(lat.len() - 1)];
    (rate, at(0.5), at(0.99))
}

/// `--group-commit`: always, the default batch (leader-follower) and the old fixed 2 ms
/// window side by side: a sequential publisher (rate, p50, p99), threads 1..64 each waiting
/// on its own publish, and 1..1024 publishes in flight through `on_durable`.
fn group_commit(base: &Path, run: Duration) {
    let modes = [
        ("always", SyncMode::Always),
        ("batch", SyncMode::default()),
        (
            "window2ms",
            SyncMode::Batch {
                max_delay: Duration::from_millis(2),
                max_events: 256,
            },
        ),
    ];
    say("sequential publisher: append + wait_durable, one at a time");
    for (name, sync) in modes {
        let (rate, p50, p99) = sequential(base, sync, run);
        say(&format!(
            "  sync={name:<9} {rate:>9.0} events/s  p50 {p50:>7.0} us  p99 {p99:>7.0} us"
        ));
    }
    say("threads, each append + wait_durable, events/s");
    for publishers in [1, 4, 16, 64] {
        let mut line = format!("  threads={publishers:<4}");
        for (name, sync) in modes {
            let rate = publish(base, sync, publishers, run);
            line.push_str(&format!(" {name}={rate:<9.0}"));
        }
        say(&line);
    }
    say("one thread, append + on_durable, N in flight, events/s");
    for in_flight in [1, 4, 16, 64, 256, 1024] {
        let mut line = format!("  in_flight={in_flight:<5}");
        for (name, sync) in modes {
            let rate = publish_callbacks(base, sync, in_flight, run);
            line.push_str(&format!(" {name}={rate:<9.0}"));
        }
        say(&line);
    }
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let quick = args.iter().any(|a| a == "--quick");
    let base = args
        .iter()
        .position(|a| a == "--dir")
        .and_then(|i| args.get(i + 1))
        .map_or_else(
            || std::env::temp_dir().join("ssehub-logbench"),
            PathBuf::from,
        );
    std::fs::create_dir_all(&base).expect("bench dir");
    if args.iter().any(|a| a == "--replay-only") {
        // For profiling: fill once, then replay 20 times.
        let dir = Scratch::new(&base, "replay-only");
        fill(&dir.0, 100_000);
        let store = LogStore::open(&dir.0, options(SyncMode::Never)).expect("open");
        for _ in 0..20 {
            let (events, secs, _) = replay(&store);
            say(&format!("replay: {events} events, {:.1} ms", secs * 1e3));
        }
        return;
    }
    let run = if quick {
        Duration::from_millis(300)
    } else {
        Duration::from_secs(1)
    };
    if args.iter().any(|a| a == "--batch-floor") {
        say(&format!("log store batch floor in {}", base.display()));
        batch_floor(&base, if quick { 200_000 } else { 2_000_000 }, 1000);
        return;
    }
    if args.iter().any(|a| a == "--group-commit") {
        say(&format!(
            "log store group commit bench in {}",
            base.display()
        ));
        group_commit(&base, run);
        return;
    }
    let batch = SyncMode::default();
    let modes = [
        ("always", SyncMode::Always),
        ("batch", batch),
        ("never", SyncMode::Never),
    ];
    say(&format!(
        "log store bench in {} (batch = {batch:?})",
        base.display()
    ));
    say(&format!(
        "fsync of a 128-byte append: median {:?}",
        fsync_latency(&base)
    ));

    say("publish: append + wait_durable per event, events/s");
    for (name, sync) in modes {
        for publishers in [1, 64, 256] {
            let rate = publish(&base, sync, publishers, run);
            say(&format!(
                "  sync={name:<6} publishers={publishers:<3} {rate:>10.0} events/s"
            ));
        }
    }
    say("publish under batch settings other than the default, events/s");
    for (ms, max_events) in [(0, 1024), (1, 64), (5, 1024)] {
        let sync = SyncMode::Batch {
            max_delay: Duration::from_millis(ms),
            max_events,
        };
        for publishers in [1, 64, 256] {
            let rate = publish(&base, sync, publishers, run);
            say(&format!(
                "  max_delay={ms}ms max_events={max_events:<4} publishers={publishers:<3} {rate:>10.0} events/s"
            ));
        }
    }

    say("publish: one thread, append + on_durable callback, N publishes in flight, events/s");
    for (name, sync) in modes {
        for in_flight in [64, 1024] {
            let rate = publish_callbacks(&base, sync, in_flight, run);
            say(&format!(
                "  sync={name:<6} in_flight={in_flight:<4} {rate:>10.0} events/s"
            ));
        }
    }

    let n = if quick { 50_000 } else { 200_000 };
    say(&format!(
        "append only: one thread, {n} appends, one wait_durable at the end"
    ));
    for (name, sync) in modes {
        let rate = append_only(&base, sync, n);
        say(&format!("  sync={name:<6} {rate:>10.0} events/s"));
    }

    let dir = Scratch::new(&base, "replay");
    fill(&dir.0, 100_000);
    let store = LogStore::open(&dir.0, options(SyncMode::Never)).expect("open");
    for round in ["first", "second"] {
        let (events, secs, bytes) = replay(&store);
        say(&format!(
            "replay ({round}): {events} events, {:.1} ms, {:.0} events/s, {:.1} MB of SSE",
            secs * 1e3,
            events as f64 / secs,
            bytes as f64 / 1e6
        ));
    }
    drop(store);
    drop(dir);

    let n = if quick { 200_000 } else { 1_000_000 };
    let dir = Scratch::new(&base, "restart");
    fill(&dir.0, n);
    let started = Instant::now();
    let store = LogStore::open(&dir.0, options(SyncMode::Never)).expect("open");
    let secs = started.elapsed().as_secs_f64();
    say(&format!(
        "restart: open with {} events retained ({:.0} MB on disk, {} segments): {:.0} ms",
        store.stats().events,
        store.disk_bytes() as f64 / 1e6,
        store.segment_count(),
        secs * 1e3
    ));
}
