//! The same measurements as `logbench` with redb as the engine, for comparison: events keyed
//! by id (ms << 64 | seq) in one table, one write transaction per publish (or per batch).
//!
//! `cargo run --release -p ssehub-store-log --features redb-bench --example redbbench [-- --quick] [--dir D]`

use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use redb::{Database, Durability, TableDefinition};
use ssehub_core::{Event, EventId, NewEvent, Topic};

const EVENTS: TableDefinition<'_, u128, &[u8]> = TableDefinition::new("events");

fn say(line: &str) {
    let mut out = std::io::stdout().lock();
    let _ = writeln!(out, "{line}");
}

fn key(id: EventId) -> u128 {
    (u128::from(id.ms) << 64) | u128::from(id.seq)
}

/// Topic, newline, data: enough to rebuild the event the way the log store does.
fn value(n: u64) -> Vec<u8> {
    format!("bench/topic\n{n:0>100}").into_bytes()
}

fn decode(k: u128, v: &[u8]) -> Event {
    let text = std::str::from_utf8(v).expect("utf-8");
    let (topic, data) = text.split_once('\n').expect("topic");
    let id = EventId::new((k >> 64) as u64, k as u64);
    Event::assign(
        id,
        NewEvent::new(vec![Topic::new(topic).expect("topic")], data),
    )
}

/// Hands out ids the way a store does (under its write lock).
struct Ids(Mutex<EventId>);

impl Ids {
    fn next(&self) -> EventId {
        let mut last = self.0.lock().expect("ids");
        let now = ssehub_store_log::system_clock();
        *last = last.next(now);
        *last
    }
}

fn open(base: &Path, name: &str) -> (Database, PathBuf) {
    let path = base.join(name);
    let _ = std::fs::remove_file(&path);
    (Database::create(&path).expect("create db"), path)
}

fn commit(db: &Database, ids: &Ids, count: u64, durability: Durability) {
    let mut tx = db.begin_write().expect("begin");
    tx.set_durability(durability);
    {
        let mut t = tx.open_table(EVENTS).expect("table");
        for n in 0..count {
            t.insert(key(ids.next()), value(n).as_slice())
                .expect("insert");
        }
    }
    tx.commit().expect("commit");
}

/// `publishers` threads each commit one event per write transaction, for about `run`.
fn publish(base: &Path, durability: Durability, publishers: usize, run: Duration) -> f64 {
    let (db, path) = open(base, "publish.redb");
    let ids = Ids(Mutex::new(EventId::ZERO));
    let count = AtomicU64::new(0);
    let stop = AtomicBool::new(false);
    let started = Instant::now();
    std::thread::scope(|s| {
        for _ in 0..publishers {
            s.spawn(|| {
                while !stop.load(Ordering::Relaxed) {
                    commit(&db, &ids, 1, durability);
                    count.fetch_add(1, Ordering::Relaxed);
                }
            });
        }
        std::thread::sleep(run);
        stop.store(true, Ordering::Relaxed);
    });
    let rate = count.load(Ordering::Relaxed) as f64 / started.elapsed().as_secs_f64();
    drop(db);
    let _ = std::fs::remove_file(path);
    rate
}

/// One thread, `n` events in transactions of `batch`.
fn batched(base: &Path, durability: Durability, n: u64, batch: u64) -> f64 {
    let (db, path) = open(base, "batched.redb");
    let ids = Ids(Mutex::new(EventId::ZERO));
    let started = Instant::now();
    for _ in 0..n / batch {
        commit(&db, &ids, batch, durability);
    }
    commit(&db, &ids, 0, Durability::Immediate);
    let rate = n as f64 / started.elapsed().as_secs_f64();
    drop(db);
    let _ = std::fs::remove_file(path);
    rate
}

/// Reads every event in pages of 1000, each page its own range from the last key.
fn replay(db: &Database) -> (u64, f64) {
    let started = Instant::now();
    let mut events = 0;
    let mut after = 0u128;
    let tx = db.begin_read().expect("read tx");
    let t = tx.open_table(EVENTS).expect("table");
    loop {
        let mut page = Vec::with_capacity(1000);
        for item in t.range(after + 1..).expect("range").take(1000) {
            let (k, v) = item.expect("item");
            page.push(decode(k.value(), v.value()));
        }
        events += page.len() as u64;
        match page.last() {
            Some(e) => after = key(e.id),
            None => break,
        }
    }
    (events, started.elapsed().as_secs_f64())
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let quick = args.iter().any(|a| a == "--quick");
    let base = args
        .iter()
        .position(|a| a == "--dir")
        .and_then(|i| args.get(i + 1))
        .map_or_else(
            || std::env::temp_dir().join("ssehub-redbbench"),
            PathBuf::from,
        );
    std::fs::create_dir_all(&base).expect("bench dir");
    let run = if quick {
        Duration::from_millis(300)
    } else {
        Duration::from_secs(1)
    };
    say(&format!("redb {} bench in {}", "2.x", base.display()));

    say("publish: one write transaction per event, events/s");
    for (name, durability) in [
        ("immediate", Durability::Immediate),
        ("none", Durability::None),
    ] {
        for publishers in [1, 64] {
            let rate = publish(&base, durability, publishers, run);
            say(&format!(
                "  durability={name:<9} publishers={publishers:<3} {rate:>10.0} events/s"
            ));
        }
    }

    let n = if quick { 50_000 } else { 200_000 };
    say(&format!("batched: one thread, {n} events"));
    for batch in [256, 4096] {
        let rate = batched(&base, Durability::Immediate, n, batch);
        say(&format!(
            "  durability=immediate transaction of {batch:<4} {rate:>10.0} events/s"
        ));
    }

    let (db, path) = open(&base, "replay.redb");
    let ids = Ids(Mutex::new(EventId::ZERO));
    for _ in 0..100 {
        commit(&db, &ids, 1000, Durability::None);
    }
    commit(&db, &ids, 0, Durability::Immediate);
    for round in ["first", "second"] {
        let (events, secs) = replay(&db);
        say(&format!(
            "replay ({round}): {events} events, {:.1} ms, {:.0} events/s",
            secs * 1e3,
            events as f64 / secs
        ));
    }
    drop(db);
    let _ = std::fs::remove_file(path);
}
