//! The durable log as the hub's default store, with real processes: a publish that got 200
//! survives `kill -9`, and a restart is invisible to resuming clients.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures_util::StreamExt;
use ssehub_core::{EventId, ParsedEvent, Parser, ParserItem};
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};

const BIN: &str = env!("CARGO_BIN_EXE_ssehub");

struct Hub {
    child: Child,
    url: String,
}

async fn start(dir: &Path, sync: &str) -> Hub {
    let mut child = Command::new(BIN)
        .args([
            "serve",
            "--listen",
            "127.0.0.1:0",
            "--sync",
            sync,
            "--data-dir",
        ])
        .arg(dir)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let line = tokio::time::timeout(Duration::from_secs(10), lines.next_line())
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    Hub {
        child,
        url: line.strip_prefix("listening on ").unwrap().to_owned(),
    }
}

fn data_dir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("ssehub-durable-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    dir
}

/// Every event after `last_event_id` on `topic`, read until `n` arrived.
async fn replay(hub: &Hub, topic: &str, last_event_id: &str, n: usize) -> Vec<ParsedEvent> {
    let response = reqwest::Client::new()
        .get(format!("{}/events/{topic}", hub.url))
        .header("Last-Event-ID", last_event_id)
        .send()
        .await
        .unwrap();
    let mut body = response.bytes_stream();
    let mut parser = Parser::new();
    let mut events = Vec::new();
    while events.len() < n {
        let chunk = tokio::time::timeout(Duration::from_secs(10), body.next())
            .await
            .expect("replay stalled");
        let mut items = Vec::new();
        parser.feed(&chunk.unwrap().unwrap(), &mut items);
        events.extend(items.into_iter().filter_map(|i| match i {
            ParserItem::Event(e) => Some(e),
            _ => None,
        }));
    }
    events
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn acknowledged_publishes_survive_kill_9() {
    for sync in ["batch", "always"] {
        let dir = data_dir(sync);
        let mut hub = start(&dir, sync).await;
        let first = {
            let r = reqwest::Client::new()
                .post(format!("{}/publish", hub.url))
                .json(&serde_json::json!({"topic": "k", "data": "first"}))
                .send()
                .await
                .unwrap();
            r.json::<serde_json::Value>().await.unwrap()["id"]
                .as_str()
                .unwrap()
                .to_owned()
        };
        let acked = Arc::new(Mutex::new(Vec::<(EventId, String)>::new()));
        let mut publishers = Vec::new();
        for p in 0..4 {
            let (url, acked) = (hub.url.clone(), acked.clone());
            publishers.push(tokio::spawn(async move {
                let client = reqwest::Client::new();
                for i in 0.. {
                    let data = format!("{p}-{i}");
                    let sent = client
                        .post(format!("{url}/publish"))
                        .json(&serde_json::json!({"topic": "k", "data": data}))
                        .send()
                        .await;
                    let Ok(response) = sent else { return };
                    if response.status() != 200 {
                        return;
                    }
                    let Ok(body) = response.json::<serde_json::Value>().await else {
                        return;
                    };
                    let id = body["id"].as_str().unwrap().parse().unwrap();
                    acked.lock().unwrap().push((id, data));
                }
            }));
        }
        tokio::time::sleep(Duration::from_millis(400)).await;
        hub.child.kill().await.unwrap(); // SIGKILL, mid-stream
        for p in publishers {
            p.await.unwrap();
        }
        let mut acked = acked.lock().unwrap().clone();
        acked.sort();
        assert!(
            acked.len() > 20,
            "{sync}: the test must publish under load ({})",
            acked.len()
        );

        let hub = start(&dir, sync).await;
        let events = replay(&hub, "k", &first, acked.len()).await;
        // Every acknowledged event, in id order, exactly once (a publish cut off before its
        // answer may or may not be there, but nothing acknowledged is missing).
        let got: Vec<(EventId, String)> = events
            .iter()
            .map(|e| (e.id.parse().unwrap(), e.data.clone()))
            .collect();
        let mut sorted = got.clone();
        sorted.sort();
        sorted.dedup();
        assert_eq!(got, sorted, "{sync}: in order, no duplicates");
        for a in &acked {
            assert!(got.contains(a), "{sync}: acknowledged {a:?} lost");
        }
        drop(hub);
        let _ = std::fs::remove_dir_all(&dir);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn restart_is_invisible_ids_keep_increasing_and_resume_is_exact() {
    let dir = data_dir("restart");
    let client = reqwest::Client::new();
    let publish = |hub: &Hub, data: &str| {
        client
            .post(format!("{}/publish", hub.url))
            .json(&serde_json::json!({"topic": "r", "data": data}))
            .send()
    };
    let hub = start(&dir, "batch").await;
    let mut ids = Vec::new();
    for i in 0..5 {
        let body: serde_json::Value = publish(&hub, &i.to_string())
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        ids.push(body["id"].as_str().unwrap().parse::<EventId>().unwrap());
    }
    let mut hub = hub;
    hub.child.kill().await.unwrap(); // SIGKILL, and wait until it is gone
    let hub = start(&dir, "batch").await;
    let body: serde_json::Value = publish(&hub, "5").await.unwrap().json().await.unwrap();
    let after_restart: EventId = body["id"].as_str().unwrap().parse().unwrap();
    assert!(after_restart > ids[4], "ids never go back after a restart");
    let events = replay(&hub, "r", &ids[1].to_string(), 4).await;
    let data: Vec<&str> = events.iter().map(|e| e.data.as_str()).collect();
    assert_eq!(
        data,
        ["2", "3", "4", "5"],
        "exactly what was missed, no reset"
    );
    drop(hub);
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_second_hub_on_the_same_data_dir_exits_with_a_clear_error() {
    let dir = data_dir("locked");
    let first = start(&dir, "batch").await;
    let publish = |data: &'static str| {
        let url = first.url.clone();
        async move {
            reqwest::Client::new()
                .post(format!("{url}/publish"))
                .json(&serde_json::json!({"topic": "l", "data": data}))
                .send()
                .await
                .unwrap()
                .status()
        }
    };
    assert_eq!(publish("before").await, 200);
    let second = tokio::time::timeout(
        Duration::from_secs(20),
        Command::new(BIN)
            .args(["serve", "--listen", "127.0.0.1:0", "--data-dir"])
            .arg(&dir)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true)
            .output(),
    )
    .await
    .expect("the second hub exits instead of serving")
    .unwrap();
    let stderr = String::from_utf8_lossy(&second.stderr);
    assert!(!second.status.success(), "{stderr}");
    assert!(
        !String::from_utf8_lossy(&second.stdout).contains("listening on"),
        "the second hub must not serve"
    );
    assert!(stderr.contains(&dir.display().to_string()), "{stderr}");
    assert!(stderr.contains("in use by another process"), "{stderr}");
    let pid = first.child.id().unwrap();
    assert!(stderr.contains(&format!("pid {pid}")), "{stderr}");
    // The first hub keeps serving, its log intact.
    assert_eq!(publish("after").await, 200);
    // "0" is older than the log: a reset, then everything retained.
    let events = replay(&first, "l", "0", 3).await;
    let data: Vec<&str> = events
        .iter()
        .filter(|e| e.event == "message")
        .map(|e| e.data.as_str())
        .collect();
    assert_eq!(data, ["before", "after"]);
    drop(first);
    let _ = std::fs::remove_dir_all(&dir);
}
