//! Process-level faults against the real binary: two hubs racing for one data directory, a
//! full disk (a small tmpfs, so this file needs root, as CI has; it fails, never skips,
//! without it), and SIGTERM while publishes are in flight.

mod common;

use std::io::{BufRead, BufReader, Read};
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::{serve_command, temp_dir, Hub};
use ssehub_test_support::EventStream;

/// Two `ssehub serve` on one data directory, started at the same instant, a hundred times:
/// every time exactly one listens and the other exits with an error naming the holder.
#[test]
fn two_hubs_racing_for_one_data_directory_one_wins_every_time() {
    let dir = temp_dir("race");
    let data = dir.join("data");
    let data = data.to_str().unwrap();
    for round in 0..100 {
        let spawn = || {
            serve_command(["--data-dir", data], &[])
                .stderr(Stdio::piped())
                .spawn()
                .unwrap()
        };
        let mut pair = [spawn(), spawn()];
        let mut winners = Vec::new();
        let mut losers = Vec::new();
        for (i, child) in pair.iter_mut().enumerate() {
            let mut line = String::new();
            BufReader::new(child.stdout.as_mut().unwrap())
                .read_line(&mut line)
                .unwrap();
            if line.starts_with("listening on ") {
                winners.push(i);
            } else {
                let status = child.wait().unwrap();
                let mut stderr = String::new();
                child
                    .stderr
                    .as_mut()
                    .unwrap()
                    .read_to_string(&mut stderr)
                    .unwrap();
                losers.push((i, status, stderr));
            }
        }
        assert_eq!(winners.len(), 1, "round {round}: {losers:?}");
        let winner_pid = pair[winners[0]].id();
        let (_, status, stderr) = &losers[0];
        assert!(!status.success(), "round {round}");
        assert!(
            stderr.contains(&format!("in use by another process (pid {winner_pid})")),
            "round {round}: the loser names the holder: {stderr}"
        );
        let winner = &mut pair[winners[0]];
        winner.kill().unwrap();
        winner.wait().unwrap();
    }
    std::fs::remove_dir_all(dir).unwrap();
}

/// A tmpfs of `size` mounted on a new directory, unmounted when dropped.
struct Tmpfs {
    dir: PathBuf,
}

impl Tmpfs {
    fn mount(size: &str) -> Tmpfs {
        let dir = temp_dir("tmpfs");
        let status = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
            .arg(&dir)
            .status()
            .expect("run mount");
        assert!(
            status.success(),
            "mounting a tmpfs failed: the disk-full test needs root (CI runs as root)"
        );
        Tmpfs { dir }
    }

    fn resize(&self, size: &str) {
        let status = Command::new("mount")
            .args(["-o", &format!("remount,size={size}")])
            .arg(&self.dir)
            .status()
            .unwrap();
        assert!(status.success());
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg(&self.dir).status();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

async fn post(url: &str, body: serde_json::Value) -> reqwest::Response {
    reqwest::Client::new()
        .post(format!("{url}/publish"))
        .json(&body)
        .send()
        .await
        .unwrap()
}

/// The data of the events on `topic` in the hub's history, oldest first: publishes a
/// marker and reads up to it, so an event there twice would show.
async fn history(hub: &Hub, topic: &str, expect: usize) -> Vec<String> {
    hub.publish(topic, "marker").await;
    let response = reqwest::Client::new()
        .get(format!("{}/events/{topic}", hub.url))
        .header("last-event-id", "0-0")
        .send()
        .await
        .unwrap();
    let (_, events) = common::read_events(response, expect + 1).await;
    let mut data: Vec<String> = events.into_iter().map(|e| e.data).collect();
    assert_eq!(data.pop().as_deref(), Some("marker"), "{data:?}");
    data.retain(|d| d != "marker");
    data
}

/// How many events a stream is sent until it ends (each within `WAIT`, or a failure).
async fn until_end(response: reqwest::Response) -> usize {
    EventStream::new(response.bytes_stream(), common::WAIT)
        .rest()
        .await
        .len()
}

/// Publishes on a disk that fills: each publish is acknowledged or refused with a 503 (never
/// a 500, never a crash); once space returns publishing works again, and after a restart the
/// history holds every acknowledged event once, in order.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_disk_refuses_publishes_with_503_and_loses_nothing_acknowledged() {
    let disk = Tmpfs::mount("512k");
    let data_dir = disk.dir.join("data");
    let args = [
        "--data-dir",
        data_dir.to_str().unwrap(),
        "--segment-bytes",
        "65536",
    ];
    let hub = Hub::start(args, &[]).await;
    let filler = "x".repeat(8000);
    let mut acknowledged = Vec::new();
    let mut refused = 0;
    for i in 0..200 {
        let data = format!("{i} {filler}");
        let response = post(&hub.url, serde_json::json!({"topic": "disk", "data": data})).await;
        match response.status().as_u16() {
            200 => acknowledged.push(data),
            503 => {
                assert!(response.headers().contains_key("retry-after"));
                let body: serde_json::Value = response.json().await.unwrap();
                assert!(
                    body["error"].as_str().unwrap().contains("disk is full"),
                    "{body}"
                );
                refused += 1;
                if refused >= 5 {
                    break;
                }
            }
            other => panic!("publish {i}: {other} {}", response.text().await.unwrap()),
        }
    }
    assert!(refused >= 5, "the disk never filled");
    assert!(!acknowledged.is_empty());
    // The Mercure endpoint says the same.
    let mercure = reqwest::Client::new()
        .post(format!("{}/.well-known/mercure", hub.url))
        .form(&[("topic", "disk"), ("data", filler.as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(mercure.status(), 503);

    disk.resize("4m");
    for i in 0..3 {
        let data = format!("after {i}");
        let response = post(&hub.url, serde_json::json!({"topic": "disk", "data": data})).await;
        assert_eq!(response.status(), 200, "space is back");
        acknowledged.push(data);
    }
    assert_eq!(
        history(&hub, "disk", acknowledged.len()).await,
        acknowledged
    );
    drop(hub);
    let hub = Hub::start(args, &[]).await;
    assert_eq!(
        history(&hub, "disk", acknowledged.len()).await,
        acknowledged,
        "after a restart"
    );
}

/// SIGTERM while publishers are busy: every publish gets an answer or a refused connection
/// (none is left hanging), subscribers' streams end cleanly, the process exits 0, and every
/// acknowledged event is in the history after a restart.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_answers_in_flight_publishes_and_keeps_every_acknowledged_event() {
    let dir = temp_dir("drain");
    let data_dir = dir.join("data");
    let args = ["--data-dir", data_dir.to_str().unwrap(), "--sync", "always"];
    let mut hub = Hub::start(args, &[]).await;
    let stream = reqwest::Client::new()
        .get(format!("{}/events/drain", hub.url))
        .send()
        .await
        .unwrap();
    let url = hub.url.clone();
    let mut publishers = tokio::task::JoinSet::new();
    for p in 0..8 {
        let url = url.clone();
        publishers.spawn(async move {
            let client = reqwest::Client::new();
            let mut acknowledged = Vec::new();
            for i in 0..10_000 {
                let data = format!("{p}-{i}");
                let sent = client
                    .post(format!("{url}/publish"))
                    .json(&serde_json::json!({"topic": "drain", "data": data}))
                    .timeout(Duration::from_secs(10))
                    .send()
                    .await;
                match sent {
                    Ok(r) if r.status() == 200 => acknowledged.push(data),
                    Ok(r) => assert_eq!(r.status(), 503, "a refusal during shutdown"),
                    Err(e) => {
                        assert!(!e.is_timeout(), "a publish was left hanging: {e}");
                        break;
                    }
                }
            }
            acknowledged
        });
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    let pid = hub.pid().to_string();
    assert!(Command::new("kill")
        .args(["-TERM", &pid])
        .status()
        .unwrap()
        .success());
    let started = Instant::now();
    let status = tokio::time::timeout(Duration::from_secs(15), hub.child.wait())
        .await
        .expect("the hub exits after SIGTERM")
        .unwrap();
    assert!(status.success(), "{status:?}");
    assert!(started.elapsed() < Duration::from_secs(10));
    let mut acknowledged = Vec::new();
    while let Some(result) = publishers.join_next().await {
        acknowledged.extend(result.unwrap());
    }
    assert!(acknowledged.len() > 10, "publishing was under way");
    // The stream ended (it does not hang) after the events it was sent.
    assert!(until_end(stream).await > 0);

    let hub = Hub::start(args, &[]).await;
    let stored: std::collections::HashSet<String> = history(&hub, "drain", acknowledged.len())
        .await
        .into_iter()
        .collect();
    for data in &acknowledged {
        assert!(stored.contains(data), "acknowledged {data} was lost");
    }
    drop(hub);
    std::fs::remove_dir_all(dir).unwrap();
}
