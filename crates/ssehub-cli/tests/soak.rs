//! A bounded soak against a real hub process: connection churn, publishing and resumes for
//! a set time (`SSEHUB_SOAK_SECS`, default 600), then every client leaves. Checks that no
//! acknowledged event is missing for clients that resumed, and that open files and memory
//! return to their baseline. Not in CI's default run (`#[ignore]`):
//!
//! ```sh
//! SSEHUB_SOAK_SECS=600 cargo test --release -p ssehub-cli --test soak -- --ignored --nocapture
//! ```

mod common;

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures_util::StreamExt;
use ssehub_core::{Parser, ParserItem};

use common::{segment_files, Hub};
const TOPICS: usize = 10;
const CLIENTS: usize = 200;
/// The log's byte budget and segment size for the soak.
const RETAIN_BYTES: u64 = 256 * 1024;
const SEGMENT_BYTES: u64 = 32 * 1024;

/// The hub's resident memory in KiB and its open descriptors.
fn proc_figures(pid: u32) -> (u64, Fds) {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let rss = status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .unwrap();
    let rss: u64 = rss.trim().trim_end_matches("kB").trim().parse().unwrap();
    let mut fds = Fds::default();
    for entry in std::fs::read_dir(format!("/proc/{pid}/fd")).unwrap() {
        let Ok(target) = std::fs::read_link(entry.unwrap().path()) else {
            continue; // closed while listing
        };
        let target = target.to_string_lossy();
        fds.all += 1;
        if target.starts_with("socket:") {
            fds.sockets += 1;
        } else if target.ends_with(" (deleted)") {
            fds.deleted += 1;
        } else if target.ends_with(".log") {
            fds.segments += 1;
        }
    }
    (rss, fds)
}

/// What a process's open descriptors are.
#[derive(Clone, Copy, Debug, Default)]
struct Fds {
    all: usize,
    sockets: usize,
    /// Segment files of the log (one open file per retained segment).
    segments: usize,
    /// Files deleted from disk but still open: a deleted segment the log did not close.
    deleted: usize,
}

fn dir_bytes(dir: &std::path::Path) -> u64 {
    std::fs::read_dir(dir)
        .map(|d| {
            d.flatten()
                .filter_map(|e| e.metadata().ok())
                .map(|m| m.len())
                .sum()
        })
        .unwrap_or(0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "a long soak; run it explicitly (see the file's doc)"]
async fn soak_churn_publish_resume() {
    let secs: u64 = std::env::var("SSEHUB_SOAK_SECS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(600);
    let data_dir = std::env::temp_dir().join(format!("ssehub-soak-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&data_dir);
    let hub = Hub::start(
        [
            // Small segments and a small byte budget (about a minute of this soak's
            // history), so that retention deletes segments all along a long run.
            "--retain-bytes",
            &RETAIN_BYTES.to_string(),
            "--segment-bytes",
            &SEGMENT_BYTES.to_string(),
            "--heartbeat",
            "5",
            "--data-dir",
            data_dir.to_str().unwrap(),
        ],
        &[],
    )
    .await;
    let pid = hub.pid();
    let url = hub.url.clone();
    let http = reqwest::Client::new();
    // Warm up: one round of connections, then take the baseline.
    for t in 0..TOPICS {
        http.post(format!("{url}/publish"))
            .json(&serde_json::json!({"topic": format!("s{t}"), "data": "warm"}))
            .send()
            .await
            .unwrap();
    }
    tokio::time::sleep(Duration::from_secs(1)).await;
    let (rss0, fds0) = proc_figures(pid);

    let stop = Arc::new(AtomicBool::new(false));
    let published = Arc::new(AtomicU64::new(0));
    let publisher = {
        let (url, stop, published, http) =
            (url.clone(), stop.clone(), published.clone(), http.clone());
        tokio::spawn(async move {
            let mut seq = [0u64; TOPICS];
            let mut n = 0usize;
            while !stop.load(Ordering::Relaxed) {
                let t = n % TOPICS;
                seq[t] += 1;
                let body =
                    serde_json::json!({"topic": format!("s{t}"), "data": seq[t].to_string()});
                let r = http
                    .post(format!("{url}/publish"))
                    .json(&body)
                    .send()
                    .await
                    .unwrap();
                assert_eq!(r.status(), 200);
                published.fetch_add(1, Ordering::Relaxed);
                n += 1;
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
        })
    };
    let resumes = Arc::new(AtomicU64::new(0));
    let received = Arc::new(AtomicU64::new(0));
    let mut clients = Vec::new();
    for c in 0..CLIENTS {
        let (url, stop, resumes, received, http) = (
            url.clone(),
            stop.clone(),
            resumes.clone(),
            received.clone(),
            http.clone(),
        );
        clients.push(tokio::spawn(async move {
            let topic = format!("s{}", c % TOPICS);
            let mut last_id: Option<String> = None;
            let mut last_seq: Option<u64> = None;
            let mut round = 0u64;
            while !stop.load(Ordering::Relaxed) {
                let mut req = http.get(format!("{url}/events/{topic}"));
                if let Some(id) = &last_id {
                    req = req.header("Last-Event-ID", id);
                    resumes.fetch_add(1, Ordering::Relaxed);
                }
                let response = req.send().await.unwrap();
                let mut body = response.bytes_stream();
                let mut parser = Parser::new();
                // Stay for a while, then leave and come back.
                let stay = Duration::from_millis(200 + (c as u64 * 37 + round * 101) % 2000);
                let until = tokio::time::Instant::now() + stay;
                while let Ok(Some(Ok(chunk))) = tokio::time::timeout_at(until, body.next()).await {
                    let mut items = Vec::new();
                    parser.feed(&chunk, &mut items);
                    for item in items {
                        let ParserItem::Event(e) = item else { continue };
                        if e.event == "ssehub-reset" {
                            continue;
                        }
                        let Ok(seq) = e.data.parse::<u64>() else {
                            continue;
                        };
                        if let Some(prev) = last_seq {
                            assert_eq!(
                                seq,
                                prev + 1,
                                "client {c} on {topic}: gap or duplicate after a resume"
                            );
                        }
                        last_seq = Some(seq);
                        last_id = Some(e.id);
                        received.fetch_add(1, Ordering::Relaxed);
                    }
                }
                round += 1;
            }
        }));
    }
    let started = Instant::now();
    let mut peak_disk = 0;
    while started.elapsed() < Duration::from_secs(secs) {
        tokio::time::sleep(Duration::from_secs(5)).await;
        peak_disk = peak_disk.max(dir_bytes(&data_dir));
        let (rss, fds) = proc_figures(pid);
        eprintln!(
            "soak {:>4}s: rss {rss} KiB, fds {} (sockets {}, segments {}), published {}, received {}, resumes {}, disk {} KiB",
            started.elapsed().as_secs(),
            fds.all,
            fds.sockets,
            fds.segments,
            published.load(Ordering::Relaxed),
            received.load(Ordering::Relaxed),
            resumes.load(Ordering::Relaxed),
            dir_bytes(&data_dir) / 1024
        );
    }
    stop.store(true, Ordering::Relaxed);
    publisher.await.unwrap();
    for client in clients {
        client.await.unwrap();
    }
    tokio::time::sleep(Duration::from_secs(3)).await;
    let (rss1, fds1) = proc_figures(pid);
    eprintln!(
        "soak done: {secs} s, published {}, received {}, resumes {}; rss {rss0} -> {rss1} KiB, fds {fds0:?} -> {fds1:?}, peak disk {} KiB",
        published.load(Ordering::Relaxed),
        received.load(Ordering::Relaxed),
        resumes.load(Ordering::Relaxed),
        peak_disk / 1024
    );
    assert!(resumes.load(Ordering::Relaxed) > 100, "the soak must churn");
    // The segment files stay within the budget (the directory also holds the small meta
    // and lock files); a run long enough to fill it has deleted its first segments.
    assert!(
        peak_disk <= RETAIN_BYTES + 4096,
        "disk use bounded by retention: peak {peak_disk} bytes"
    );
    let first_segment = data_dir.join(format!("{:020}.log", 1));
    if secs >= 120 {
        assert!(
            !first_segment.exists(),
            "retention deleted the oldest segments"
        );
    }
    // Sockets come back to the baseline; the files the hub holds open beyond it are the
    // log's retained segments (one each), and no deleted segment stays open.
    assert!(
        fds1.sockets <= fds0.sockets + 2,
        "open sockets back to baseline: {fds0:?} -> {fds1:?}"
    );
    assert_eq!(fds1.deleted, 0, "a deleted segment is still open: {fds1:?}");
    assert_eq!(
        fds1.segments,
        segment_files(&data_dir),
        "one open file per retained segment: {fds1:?}"
    );
    assert!(
        fds1.all - fds1.segments <= fds0.all - fds0.segments + 2,
        "open files other than segments back to baseline: {fds0:?} -> {fds1:?}"
    );
    assert!(
        rss1 < rss0 + 32 * 1024,
        "memory back near baseline: {rss0} -> {rss1} KiB"
    );
    let _ = std::fs::remove_dir_all(&data_dir);
}

/// Starts `ssehub serve` on `addr` (a fixed port, so clients find it again after a restart)
/// and waits for its address line.
async fn start_on(addr: &str, args: &[&str]) -> tokio::process::Child {
    use tokio::io::AsyncBufReadExt;
    let mut child = tokio::process::Command::new(common::BIN)
        .args(["serve", "--listen", addr])
        .args(args)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let mut lines = tokio::io::BufReader::new(child.stdout.take().unwrap()).lines();
    let line = tokio::time::timeout(common::WAIT, lines.next_line())
        .await
        .expect("the hub did not say where it listens")
        .unwrap()
        .expect("the hub exited before listening");
    assert!(line.starts_with("listening on "), "{line}");
    // Keep draining standard output so the hub never blocks on it.
    tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
    child
}

/// The soak of issue 13: the churn above, and the hub killed with SIGKILL and restarted on
/// the same port and data directory every minute. Every publish the hub acknowledged must
/// reach every client that was resuming across it (no gap), never twice and in order;
/// memory, open files and disk stay flat from the second minute on. Not in CI's run:
///
/// ```sh
/// SSEHUB_SOAK_SECS=600 cargo test --release -p ssehub-cli --test soak -- --ignored --nocapture kill
/// ```
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "a long soak; run it explicitly (see the doc)"]
async fn soak_with_kill_9_every_minute() {
    use std::collections::BTreeSet;
    use std::sync::Mutex;
    let secs: u64 = std::env::var("SSEHUB_SOAK_SECS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(600);
    let kill_every = Duration::from_secs(
        std::env::var("SSEHUB_SOAK_KILL_SECS")
            .ok()
            .and_then(|s| s.parse().ok())
            .unwrap_or(60),
    );
    let data_dir = common::temp_dir("soak-kill");
    let port = common::free_port();
    let addr = format!("127.0.0.1:{port}");
    let url = format!("http://{addr}");
    let retain = RETAIN_BYTES.to_string();
    let segment = SEGMENT_BYTES.to_string();
    let args = [
        "--retain-bytes",
        retain.as_str(),
        "--segment-bytes",
        segment.as_str(),
        "--heartbeat",
        "5",
        "--retry",
        "200",
        "--data-dir",
        data_dir.to_str().unwrap(),
    ];
    let mut hub = start_on(&addr, &args).await;
    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(10))
        .build()
        .unwrap();
    let stop = Arc::new(AtomicBool::new(false));
    let acked: Arc<Mutex<Vec<BTreeSet<u64>>>> = Arc::new(Mutex::new(vec![BTreeSet::new(); TOPICS]));
    let published = Arc::new(AtomicU64::new(0));
    let failed = Arc::new(AtomicU64::new(0));
    let publisher = {
        let (url, stop, acked, published, failed, http) = (
            url.clone(),
            stop.clone(),
            acked.clone(),
            published.clone(),
            failed.clone(),
            http.clone(),
        );
        tokio::spawn(async move {
            let mut seq = [0u64; TOPICS];
            let mut n = 0usize;
            while !stop.load(Ordering::Relaxed) {
                let t = n % TOPICS;
                n += 1;
                // A publish that fails is never retried under the same number: whether
                // the hub wrote it is unknown, so it may or may not be delivered.
                seq[t] += 1;
                let body =
                    serde_json::json!({"topic": format!("k{t}"), "data": seq[t].to_string()});
                match http.post(format!("{url}/publish")).json(&body).send().await {
                    Ok(r) if r.status() == 200 => {
                        acked.lock().unwrap()[t].insert(seq[t]);
                        published.fetch_add(1, Ordering::Relaxed);
                        tokio::time::sleep(Duration::from_millis(5)).await;
                    }
                    _ => {
                        failed.fetch_add(1, Ordering::Relaxed);
                        tokio::time::sleep(Duration::from_millis(20)).await;
                    }
                }
            }
        })
    };
    let received = Arc::new(AtomicU64::new(0));
    let resumes = Arc::new(AtomicU64::new(0));
    let resets = Arc::new(AtomicU64::new(0));
    let mut clients = Vec::new();
    for c in 0..CLIENTS {
        let (url, stop, acked, received, resumes, resets) = (
            url.clone(),
            stop.clone(),
            acked.clone(),
            received.clone(),
            resumes.clone(),
            resets.clone(),
        );
        clients.push(tokio::spawn(async move {
            let t = c % TOPICS;
            let topic = format!("k{t}");
            let mut last_id: Option<String> = None;
            let mut last_seq: Option<u64> = None;
            let mut round = 0u64;
            while !stop.load(Ordering::Relaxed) {
                round += 1;
                let mut req = reqwest::Client::new().get(format!("{url}/events/{topic}"));
                if let Some(id) = &last_id {
                    req = req.header("Last-Event-ID", id);
                }
                let Ok(response) = req.send().await else {
                    // The hub is down: come back soon, from the same id.
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                };
                if last_id.is_some() {
                    resumes.fetch_add(1, Ordering::Relaxed);
                }
                let mut body = response.bytes_stream();
                let mut parser = Parser::new();
                let stay = Duration::from_millis(200 + (c as u64 * 37 + round * 101) % 2000);
                let until = tokio::time::Instant::now() + stay;
                while let Ok(Some(Ok(chunk))) = tokio::time::timeout_at(until, body.next()).await {
                    let mut items = Vec::new();
                    parser.feed(&chunk, &mut items);
                    for item in items {
                        let ParserItem::Event(e) = item else { continue };
                        if e.event == "ssehub-reset" {
                            resets.fetch_add(1, Ordering::Relaxed);
                            continue;
                        }
                        let Ok(seq) = e.data.parse::<u64>() else {
                            continue;
                        };
                        if let Some(prev) = last_seq {
                            assert!(
                                seq > prev,
                                "client {c} on {topic}: {seq} after {prev} (a duplicate or out of order)"
                            );
                            let acked = acked.lock().unwrap();
                            let lost: Vec<u64> = acked[t].range(prev + 1..seq).copied().collect();
                            assert!(
                                lost.is_empty(),
                                "client {c} on {topic}: acknowledged {lost:?} missing between {prev} and {seq}"
                            );
                        }
                        last_seq = Some(seq);
                        last_id = Some(e.id);
                        received.fetch_add(1, Ordering::Relaxed);
                    }
                }
            }
        }));
    }
    let started = Instant::now();
    let mut samples: Vec<(u64, u64, Fds, u64)> = Vec::new();
    let mut restarts = 0;
    let mut next_kill = started + kill_every;
    while started.elapsed() < Duration::from_secs(secs) {
        tokio::time::sleep(Duration::from_secs(1)).await;
        if Instant::now() < next_kill {
            continue;
        }
        // Just before each kill: the figures of this minute.
        let pid = hub.id().unwrap();
        let (rss, fds) = proc_figures(pid);
        let disk = dir_bytes(&data_dir);
        let at = started.elapsed().as_secs();
        eprintln!(
            "soak {at:>4}s: rss {rss} KiB, fds {} (sockets {}, segments {}), disk {} KiB, published {}, failed {}, received {}, resumes {}, resets {}",
            fds.all,
            fds.sockets,
            fds.segments,
            disk / 1024,
            published.load(Ordering::Relaxed),
            failed.load(Ordering::Relaxed),
            received.load(Ordering::Relaxed),
            resumes.load(Ordering::Relaxed),
            resets.load(Ordering::Relaxed),
        );
        samples.push((at, rss, fds, disk));
        hub.start_kill().unwrap();
        hub.wait().await.unwrap();
        hub = start_on(&addr, &args).await;
        restarts += 1;
        next_kill += kill_every;
    }
    stop.store(true, Ordering::Relaxed);
    publisher.await.unwrap();
    for client in clients {
        client.await.unwrap();
    }
    eprintln!(
        "soak done: {secs} s, {restarts} kill -9 restarts, published {} acknowledged ({} failed), received {}, resumes {}, resets {}",
        published.load(Ordering::Relaxed),
        failed.load(Ordering::Relaxed),
        received.load(Ordering::Relaxed),
        resumes.load(Ordering::Relaxed),
        resets.load(Ordering::Relaxed),
    );
    assert!(restarts >= 1, "the soak must restart the hub");
    assert!(resumes.load(Ordering::Relaxed) > 100, "the soak must churn");
    assert_eq!(
        resets.load(Ordering::Relaxed),
        0,
        "no client fell out of the history"
    );
    // Flat from the second sample on: memory within 8 MiB, sockets near the clients,
    // disk within the retention budget.
    let later = &samples[1.min(samples.len() - 1)..];
    let rss_min = later.iter().map(|s| s.1).min().unwrap();
    let rss_max = later.iter().map(|s| s.1).max().unwrap();
    assert!(rss_max - rss_min < 8 * 1024, "rss {rss_min}..{rss_max} KiB");
    for (at, _, fds, disk) in later {
        assert!(
            fds.sockets <= CLIENTS + 16,
            "at {at}s: {fds:?} (sockets beyond the clients)"
        );
        assert!(*disk <= RETAIN_BYTES + 4096, "at {at}s: disk {disk} bytes");
        assert_eq!(fds.deleted, 0, "at {at}s: a deleted segment is open");
    }
    drop(hub);
    let _ = std::fs::remove_dir_all(&data_dir);
}
