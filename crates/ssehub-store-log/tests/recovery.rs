//! Reopening the store: everything comes back, ids keep increasing, the floor holds; torn
//! tails are cut and reported; damage elsewhere is an error naming the file.

mod common;

use std::fs::{self, OpenOptions};
use std::os::unix::fs::FileExt;
use std::path::Path;
use std::time::Duration;

use common::{append, disk_use, no_retention, open, options, read_all, segments, topic, TempDir};
use ssehub_core::{Locate, NewEvent, Retention, Store, StoreError, WireId};
use ssehub_store_log::{system_clock, LogStore, SyncMode};

const BATCH: SyncMode = SyncMode::Batch {
    max_delay: Duration::from_millis(1),
    max_events: 32,
};

fn file_len(p: &Path) -> u64 {
    fs::metadata(p).expect("metadata").len()
}

fn flip(p: &Path, offset: u64) {
    let f = OpenOptions::new()
        .read(true)
        .write(true)
        .open(p)
        .expect("open");
    let mut b = [0];
    f.read_exact_at(&mut b, offset).expect("read");
    f.write_all_at(&[b[0] ^ 0x5a], offset).expect("write");
}

fn expect_corrupt(dir: &Path, sync: SyncMode) -> String {
    match LogStore::open(dir, options(no_retention(), sync, 4096)) {
        Err(StoreError::Corrupt(msg)) => msg,
        Err(e) => panic!("expected Corrupt, got {e}"),
        Ok(_) => panic!("expected Corrupt, the store opened"),
    }
}

#[test]
fn reopen_keeps_everything_and_ids_keep_increasing() {
    let dir = TempDir::new("reopen");
    let o = options(no_retention(), BATCH, 4096);
    let (before, stats, floor, custom_id) = {
        let store = open(dir.path(), o.clone());
        for i in 0..500 {
            let mut new = NewEvent::new(
                topic(if i % 2 == 0 { "a" } else { "b" }),
                format!("event {i}"),
            );
            if i == 250 {
                new.custom_id = Some(WireId::new("urn:x:250").unwrap());
            }
            let e = store.append(new).unwrap();
            store.wait_durable(e.id).unwrap();
        }
        assert!(store.segment_count() > 3, "the test should cross segments");
        let custom = match store.locate("urn:x:250").unwrap() {
            Locate::Found(id) => id,
            other => panic!("{other:?}"),
        };
        (read_all(&store, 64), store.stats(), store.floor(), custom)
    };
    let store = open(dir.path(), o.clone());
    let r = store.recovery();
    assert_eq!(r.torn_tail, None);
    assert_eq!(r.records, 500);
    assert!(r.floor_from_meta);
    let after = read_all(&store, 77);
    assert_eq!(
        after, before,
        "every event, every field and its encoding, in order"
    );
    assert_eq!(store.stats(), stats);
    assert_eq!(store.floor(), floor);
    assert_eq!(store.locate("urn:x:250").unwrap(), Locate::Found(custom_id));
    let last = before.last().unwrap().id;
    assert_eq!(
        store.locate(&last.to_string()).unwrap(),
        Locate::Found(last)
    );
    let next = append(&store, "after restart");
    assert!(next > last);
    drop(store);
    let store = open(dir.path(), o);
    assert_eq!(store.stats().events, 501);
    assert_eq!(store.stats().newest, Some(next));
    assert!(append(&store, "again") > next);
}

/// Batches are written a group of records at a time: across segment rolls the log reads
/// back, before and after reopening, exactly as if each had been appended alone.
#[test]
fn batches_written_at_once_survive_reopening() {
    let dir = TempDir::new("batches");
    let o = options(no_retention(), BATCH, 4096);
    let before = {
        let store = open(dir.path(), o.clone());
        let mut n = 0;
        for size in [1, 40, 256, 3, 256] {
            let batch = (0..size)
                .map(|_| {
                    n += 1;
                    let mut new = NewEvent::new(topic("a"), format!("event {n}"));
                    if n % 50 == 0 {
                        new.custom_id = Some(WireId::new(&format!("urn:b:{n}")).unwrap());
                    }
                    new
                })
                .collect();
            let (stored, result) = store.append_batch(batch);
            result.unwrap();
            assert_eq!(stored.len(), size);
            store.wait_durable(stored.last().unwrap().id).unwrap();
        }
        assert!(store.segment_count() > 4, "the test should cross segments");
        let all = read_all(&store, 64);
        let data: Vec<String> = all.iter().map(|e| e.data.clone()).collect();
        let expected: Vec<String> = (1..=n).map(|i| format!("event {i}")).collect();
        assert_eq!(data, expected);
        all
    };
    let store = open(dir.path(), o);
    let r = store.recovery();
    assert_eq!(r.torn_tail, None);
    assert_eq!(r.records, before.len() as u64);
    assert_eq!(read_all(&store, 77), before);
    let id = before[199].id;
    assert_eq!(store.locate("urn:b:200").unwrap(), Locate::Found(id));
}

fn an_hour_ahead() -> u64 {
    system_clock() + 3_600_000
}

#[test]
fn ids_keep_increasing_when_the_clock_went_back() {
    let dir = TempDir::new("clock");
    let mut o = options(no_retention(), SyncMode::Never, 4096);
    o.clock = an_hour_ahead;
    let last = {
        let store = open(dir.path(), o.clone());
        let ids: Vec<_> = (0..20).map(|i| append(&store, &i.to_string())).collect();
        ids[19]
    };
    o.clock = system_clock;
    let store = open(dir.path(), o);
    let next = append(&store, "behind");
    assert!(next > last, "{next} after {last}");
    assert_eq!(next.ms, last.ms, "the clock part does not go back");
    assert_eq!(
        store.locate(&last.to_string()).unwrap(),
        Locate::Found(last)
    );
}

#[test]
fn the_floor_survives_a_restart() {
    let dir = TempDir::new("floor");
    let o = options(Retention::events(5), SyncMode::Never, 300);
    let (ids, floor) = {
        let store = open(dir.path(), o.clone());
        let ids: Vec<_> = (0..60).map(|i| append(&store, &i.to_string())).collect();
        (ids, store.floor())
    };
    assert!(floor >= ids[54] && floor < ids[55]);
    let store = open(dir.path(), o);
    assert_eq!(store.floor(), floor);
    assert_eq!(store.stats().events, 5);
    assert_eq!(store.locate(&ids[3].to_string()).unwrap(), Locate::Expired);
    assert_eq!(
        store.locate(&ids[54].to_string()).unwrap(),
        Locate::Found(ids[54])
    );
    let data: Vec<String> = read_all(&store, 100)
        .iter()
        .map(|e| e.data.clone())
        .collect();
    assert_eq!(data, ["55", "56", "57", "58", "59"]);
}

#[test]
fn after_a_crash_the_floor_still_covers_every_deleted_segment() {
    let dir = TempDir::new("floor-crash");
    let o = options(Retention::events(5), SyncMode::Never, 300);
    let store = open(dir.path(), o.clone());
    let ids: Vec<_> = (0..60).map(|i| append(&store, &i.to_string())).collect();
    // No Drop: the exact floor is not written, as after a kill.
    store.abandon();
    let store = open(dir.path(), o.clone());
    let floor = store.floor();
    assert!(floor < ids[55]);
    let got: Vec<_> = read_all(&store, 100).iter().map(|e| e.id).collect();
    let first = ids.iter().position(|id| *id > floor).unwrap();
    assert_eq!(got, ids[first..], "everything after the floor is there");
    // Retention applies again at open.
    assert_eq!(store.stats().events, 5);
}

#[test]
fn a_record_cut_short_at_the_tail_is_dropped() {
    for cut in [1u64, 5, 9, 20] {
        let dir = TempDir::new("torn");
        let o = options(no_retention(), BATCH, 1 << 20);
        let (ids, last_offset) = {
            let store = open(dir.path(), o.clone());
            let mut ids: Vec<_> = (0..99)
                .map(|i| append(&store, &format!("event {i}")))
                .collect();
            let offset = store.disk_bytes();
            ids.push(append(&store, "the last one, torn"));
            (ids, offset)
        };
        let seg = segments(dir.path()).pop().unwrap();
        let len = file_len(&seg);
        let keep = last_offset + cut.min(len - last_offset - 1);
        OpenOptions::new()
            .write(true)
            .open(&seg)
            .unwrap()
            .set_len(keep)
            .unwrap();
        let store = open(dir.path(), o.clone());
        let torn = store
            .recovery()
            .torn_tail
            .clone()
            .expect("torn tail reported");
        assert_eq!(torn.path, seg);
        assert_eq!(torn.offset, last_offset);
        assert_eq!(torn.dropped_bytes, keep - last_offset);
        assert_eq!(
            file_len(&seg),
            last_offset,
            "the file is cut at the last intact record"
        );
        let got: Vec<_> = read_all(&store, 10).iter().map(|e| e.id).collect();
        assert_eq!(got, ids[..99]);
        let next = append(&store, "after recovery");
        assert!(next > ids[98]);
        drop(store);
        let store = open(dir.path(), o);
        assert_eq!(
            store.recovery().torn_tail,
            None,
            "cut {cut}: clean after the repair"
        );
        assert_eq!(store.stats().events, 100);
        assert_eq!(
            read_all(&store, 1000).last().unwrap().data,
            "after recovery"
        );
    }
}

#[test]
fn a_damaged_last_record_is_dropped() {
    // Flip a byte in the header (checksum, length) and in the payload (id, data).
    for at in [0u64, 2, 5, 8, 12, 40] {
        let dir = TempDir::new("flip-last");
        let o = options(no_retention(), SyncMode::Always, 1 << 20);
        let (ids, last_offset) = {
            let store = open(dir.path(), o.clone());
            let mut ids: Vec<_> = (0..20)
                .map(|i| append(&store, &format!("event {i}")))
                .collect();
            let offset = store.disk_bytes();
            ids.push(append(&store, "the last one, damaged by a flipped byte"));
            (ids, offset)
        };
        let seg = segments(dir.path()).pop().unwrap();
        flip(&seg, last_offset + at);
        let store = open(dir.path(), o);
        let torn = store
            .recovery()
            .torn_tail
            .clone()
            .unwrap_or_else(|| panic!("byte {at}: no torn tail"));
        assert_eq!(torn.offset, last_offset, "byte {at}");
        let got: Vec<_> = read_all(&store, 1000).iter().map(|e| e.id).collect();
        assert_eq!(got, ids[..20], "byte {at}");
    }
}

#[test]
fn a_segment_cut_inside_its_header_is_restarted() {
    let dir = TempDir::new("torn-header");
    let o = options(no_retention(), SyncMode::Never, 200);
    let ids: Vec<_> = {
        let store = open(dir.path(), o.clone());
        (0..10).map(|i| append(&store, &i.to_string())).collect()
    };
    // As if the hub died just after creating the next segment.
    let mut segs = segments(dir.path());
    let last = segs.pop().unwrap();
    let next = last.with_file_name(format!("{:020}.log", segs.len() + 2));
    fs::write(&next, b"SSE").unwrap();
    let store = open(dir.path(), o);
    assert_eq!(
        store.recovery().torn_tail.as_ref().map(|t| t.path.clone()),
        Some(next.clone())
    );
    assert_eq!(
        read_all(&store, 100)
            .iter()
            .map(|e| e.id)
            .collect::<Vec<_>>(),
        ids
    );
    let id = append(&store, "into the repaired segment");
    assert!(id > ids[9]);
    assert!(file_len(&next) > 8);
}

#[test]
fn damage_before_intact_records_in_the_last_segment_is_an_error() {
    let dir = TempDir::new("flip-middle-last");
    let o = options(no_retention(), SyncMode::Never, 1 << 20);
    let offset = {
        let store = open(dir.path(), o.clone());
        (0..10).for_each(|i| {
            append(&store, &format!("event {i}"));
        });
        let offset = store.disk_bytes();
        (0..10).for_each(|i| {
            append(&store, &format!("event {}", i + 10));
        });
        offset
    };
    let seg = segments(dir.path()).pop().unwrap();
    for at in [30, 4] {
        // A flipped data byte, then a flipped length byte.
        flip(&seg, offset + at);
        let msg = expect_corrupt(dir.path(), SyncMode::Never);
        assert!(msg.contains(&seg.display().to_string()), "{msg}");
        assert!(msg.contains(&format!("offset {offset}")), "{msg}");
        assert!(msg.contains("intact record follows"), "{msg}");
        flip(&seg, offset + at);
    }
    assert_eq!(open(dir.path(), o).stats().events, 20, "nothing was cut");
}

#[test]
fn damage_in_an_older_segment_is_an_error_naming_the_file() {
    let dir = TempDir::new("corrupt-middle");
    let o = options(no_retention(), BATCH, 4096);
    {
        let store = open(dir.path(), o.clone());
        (0..400).for_each(|i| {
            append(&store, &format!("event number {i}"));
        });
    }
    let segs = segments(dir.path());
    assert!(segs.len() >= 4, "{} segments", segs.len());
    let victim = &segs[1];
    let size = disk_use(dir.path());
    flip(victim, 2000);
    let msg = expect_corrupt(dir.path(), BATCH);
    assert!(msg.contains(&victim.display().to_string()), "{msg}");
    assert!(msg.contains("offset "), "{msg}");
    assert_eq!(disk_use(dir.path()), size, "nothing was cut or deleted");
    flip(victim, 2000);

    // An older segment cut short is damage too, not a torn tail.
    let len = file_len(victim);
    OpenOptions::new()
        .write(true)
        .open(victim)
        .unwrap()
        .set_len(len - 3)
        .unwrap();
    let msg = expect_corrupt(dir.path(), BATCH);
    assert!(msg.contains(&victim.display().to_string()), "{msg}");

    // A file that is not a segment at all.
    fs::write(victim, b"hello, I am not a segment").unwrap();
    let msg = expect_corrupt(dir.path(), BATCH);
    assert!(
        msg.contains(&victim.display().to_string()) && msg.contains("magic"),
        "{msg}"
    );
}

#[test]
fn damage_found_by_a_replay_is_an_error() {
    let dir = TempDir::new("corrupt-read");
    let store = open(
        dir.path(),
        options(no_retention(), SyncMode::Never, 1 << 20),
    );
    (0..10).for_each(|i| {
        append(&store, &format!("event {i}"));
    });
    let seg = segments(dir.path()).pop().unwrap();
    flip(&seg, 200);
    match store.read(store.floor(), &|_| true, 100) {
        Err(StoreError::Corrupt(msg)) => assert!(msg.contains(&seg.display().to_string()), "{msg}"),
        other => panic!("expected Corrupt, got {other:?}"),
    }
}

#[test]
fn a_damaged_meta_file_is_an_error_and_a_missing_one_is_rebuilt() {
    let dir = TempDir::new("meta");
    let o = options(no_retention(), SyncMode::Never, 1 << 20);
    let ids: Vec<_> = {
        let store = open(dir.path(), o.clone());
        (0..5).map(|i| append(&store, &i.to_string())).collect()
    };
    let meta = dir.path().join("meta");
    let text = fs::read_to_string(&meta).unwrap();
    fs::write(&meta, text.replace("floor 1", "floor 2")).unwrap();
    let msg = expect_corrupt(dir.path(), SyncMode::Never);
    assert!(msg.contains(&meta.display().to_string()), "{msg}");
    fs::remove_file(&meta).unwrap();
    let store = open(dir.path(), o);
    assert!(!store.recovery().floor_from_meta);
    assert_eq!(
        read_all(&store, 100)
            .iter()
            .map(|e| e.id)
            .collect::<Vec<_>>(),
        ids
    );
    assert_eq!(
        store.locate(&ids[0].to_string()).unwrap(),
        Locate::Found(ids[0])
    );
    assert_eq!(store.locate("1-0").unwrap(), Locate::Expired);
}

#[test]
fn a_second_store_on_an_open_directory_is_refused_until_the_first_is_dropped() {
    let dir = TempDir::new("locked");
    let o = options(no_retention(), BATCH, 4096);
    let first = open(dir.path(), o.clone());
    let id = append(&first, "kept");
    let msg = match LogStore::open(dir.path(), o.clone()) {
        Err(StoreError::Unavailable(msg)) => msg,
        Err(e) => panic!("expected Unavailable, got {e}"),
        Ok(_) => panic!("a second store opened a directory the first holds"),
    };
    assert!(msg.contains(&dir.path().display().to_string()), "{msg}");
    assert!(
        msg.contains(&format!("pid {}", std::process::id())),
        "{msg}"
    );
    // The refused open touched nothing: the first store still appends after its event.
    let next = append(&first, "after the refusal");
    assert!(next > id);
    drop(first);
    let again = open(dir.path(), o);
    let data: Vec<String> = read_all(&again, 10)
        .iter()
        .map(|e| e.data.clone())
        .collect();
    assert_eq!(data, ["kept", "after the refusal"]);
}
