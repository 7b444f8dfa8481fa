//! Crash safety: a child process appends from several threads under batch sync and prints
//! each id once `wait_durable` returned; it is killed with SIGKILL mid-stream, the store is
//! reopened, and every acknowledged event must be there exactly once, in order. Two rounds,
//! the second appending to the store the first one left.

mod common;

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Read};
use std::process::{Command, Stdio};

use common::{no_retention, open, options, read_all, TempDir};
use ssehub_core::EventId;
use ssehub_store_log::SyncMode;

const THREADS: usize = 8;

/// Runs the helper until `acks` events are acknowledged, kills it, returns the acks.
fn run_and_kill(dir: &std::path::Path, acks: usize) -> Vec<(EventId, String)> {
    let mut child = Command::new(env!("CARGO_BIN_EXE_ssehub-log-crash-helper"))
        .arg(dir)
        .arg(THREADS.to_string())
        .arg("1000000")
        .stdout(Stdio::piped())
        .spawn()
        .expect("start helper");
    let mut out = BufReader::new(child.stdout.take().expect("stdout"));
    let mut got = Vec::new();
    let mut line = String::new();
    while got.len() < acks {
        line.clear();
        if out.read_line(&mut line).expect("read") == 0 {
            panic!("helper ended early: {:?}", child.wait());
        }
        got.push(parse(&line));
    }
    child.kill().expect("kill -9");
    child.wait().expect("wait");
    // Lines already in the pipe were acknowledged before the kill.
    let mut rest = String::new();
    out.read_to_string(&mut rest).expect("read rest");
    for l in rest.split_inclusive('\n').filter(|l| l.ends_with('\n')) {
        got.push(parse(l));
    }
    got
}

fn parse(line: &str) -> (EventId, String) {
    let (id, data) = line.trim_end().split_once(' ').expect("id and data");
    (id.parse().expect("id"), data.to_owned())
}

#[test]
fn every_acknowledged_event_survives_kill_9() {
    let dir = TempDir::new("crash");
    let mut acked: Vec<(EventId, String)> = Vec::new();
    let mut first_round = 0;
    for (round, acks) in [(0, 3000), (1, 2000)] {
        acked.extend(run_and_kill(dir.path(), acks));
        if round == 0 {
            first_round = acked.len();
        }
        let store = open(
            dir.path(),
            options(no_retention(), SyncMode::Never, 64 << 10),
        );
        let stored = read_all(&store, 999);
        // Every stored id once, in order.
        assert!(
            stored.windows(2).all(|w| w[0].id < w[1].id),
            "round {round}: ids in order"
        );
        let by_id: HashMap<EventId, &str> =
            stored.iter().map(|e| (e.id, e.data.as_str())).collect();
        for (id, data) in &acked {
            assert_eq!(
                by_id.get(id),
                Some(&data.as_str()),
                "round {round}: acknowledged {id} ({data}) missing"
            );
        }
        // Each thread's events of each round are stored as the gapless run 0..n, in order:
        // nothing duplicated or reordered, whatever was in flight at the kill.
        for t in 0..THREADS {
            let prefix = format!("{t}-");
            let ns: Vec<usize> = stored
                .iter()
                .filter_map(|e| e.data.strip_prefix(&prefix)?.parse().ok())
                .collect();
            let mut starts: Vec<usize> = ns
                .iter()
                .enumerate()
                .filter(|(_, &n)| n == 0)
                .map(|(i, _)| i)
                .collect();
            assert_eq!(
                starts.len(),
                round + 1,
                "round {round}, thread {t}: one run per round"
            );
            starts.push(ns.len());
            for w in starts.windows(2) {
                let run = &ns[w[0]..w[1]];
                assert!(
                    run.iter().enumerate().all(|(i, &n)| i == n),
                    "round {round}, thread {t}: gapless run"
                );
            }
        }
        if round == 1 {
            let first_round_last = acked[..first_round].iter().map(|a| a.0).max().unwrap();
            let second_round_first = acked[first_round..].iter().map(|a| a.0).min().unwrap();
            assert!(
                second_round_first > first_round_last,
                "ids keep increasing after the crash"
            );
        }
    }
}
