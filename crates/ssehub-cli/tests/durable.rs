//! The durable log as the hub's default store, with real processes: a publish that got 200
//! survives `kill -9`, and a restart is invisible to resuming clients.

mod common;

use std::path::Path;
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::{read_events, temp_dir, Hub, BIN};
use ssehub_core::{EventId, ParsedEvent};
use tokio::process::Command;

async fn start(dir: &Path, sync: &str) -> Hub {
    let args = ["--sync", sync, "--data-dir", dir.to_str().unwrap()];
    Hub::start(args, &[]).await
}

/// Every event after `last_event_id` on `topic`, read until `n` arrived: (the hub's
/// control events, the events).
async fn replay(
    hub: &Hub,
    topic: &str,
    last_event_id: &str,
    n: usize,
) -> (Vec<ParsedEvent>, Vec<ParsedEvent>) {
    let response = reqwest::Client::new()
        .get(format!("{}/events/{topic}", hub.url))
        .header("Last-Event-ID", last_event_id)
        .send()
        .await
        .unwrap();
    read_events(response, n).await
}

/// Under each sync mode, and for batches (a JSON array of 100 events a request) under the
/// default one.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn acknowledged_publishes_survive_kill_9() {
    for (sync, batch) in [("batch", 1), ("always", 1), ("batch", 100)] {
        let what = format!("{sync}, {batch} a request");
        let dir = temp_dir(&format!("durable-{sync}-{batch}"));
        let mut hub = start(&dir, sync).await;
        let first = hub.publish("k", "first").await;
        let acked = Arc::new(Mutex::new(Vec::<(EventId, String)>::new()));
        let mut publishers = Vec::new();
        for p in 0..4 {
            let (url, acked) = (hub.url.clone(), acked.clone());
            publishers.push(tokio::spawn(async move {
                let client = reqwest::Client::new();
                for i in 0.. {
                    let data: Vec<String> = (0..batch).map(|j| format!("{p}-{i}-{j}")).collect();
                    let events: Vec<_> = data
                        .iter()
                        .map(|d| serde_json::json!({"topic": "k", "data": d}))
                        .collect();
                    let body = if batch == 1 {
                        events[0].clone()
                    } else {
                        serde_json::Value::Array(events)
                    };
                    let sent = client
                        .post(format!("{url}/publish"))
                        .json(&body)
                        .send()
                        .await;
                    let Ok(response) = sent else { return };
                    if response.status() != 200 {
                        return;
                    }
                    let Ok(body) = response.json::<serde_json::Value>().await else {
                        return;
                    };
                    let answers = body.as_array().cloned().unwrap_or_else(|| vec![body]);
                    assert_eq!(answers.len(), batch, "one answer per event");
                    for (answer, data) in answers.iter().zip(data) {
                        let id = answer["id"].as_str().unwrap().parse().unwrap();
                        acked.lock().unwrap().push((id, data));
                    }
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
            "{what}: the test must publish under load ({})",
            acked.len()
        );

        let hub = start(&dir, sync).await;
        let (control, events) = replay(&hub, "k", &first, acked.len()).await;
        assert!(
            control.is_empty(),
            "{what}: no reset after a crash: {control:?}"
        );
        // Every acknowledged event, in id order, exactly once (a publish cut off before its
        // answer may or may not be there, but nothing acknowledged is missing).
        let got: Vec<(EventId, String)> = events
            .iter()
            .map(|e| (e.id.parse().unwrap(), e.data.clone()))
            .collect();
        let mut sorted = got.clone();
        sorted.sort();
        sorted.dedup();
        assert_eq!(got, sorted, "{what}: in order, no duplicates");
        let got: std::collections::HashSet<_> = got.into_iter().collect();
        for a in &acked {
            assert!(got.contains(a), "{what}: acknowledged {a:?} lost");
        }
        drop(hub);
        let _ = std::fs::remove_dir_all(&dir);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn restart_is_invisible_ids_keep_increasing_and_resume_is_exact() {
    let dir = temp_dir("durable-restart");
    let hub = start(&dir, "batch").await;
    let mut ids = Vec::new();
    for i in 0..5 {
        let id = hub.publish("r", &i.to_string()).await;
        ids.push(id.parse::<EventId>().unwrap());
    }
    let mut hub = hub;
    hub.child.kill().await.unwrap(); // SIGKILL, and wait until it is gone
    let hub = start(&dir, "batch").await;
    let after_restart: EventId = hub.publish("r", "5").await.parse().unwrap();
    assert!(after_restart > ids[4], "ids never go back after a restart");
    let (control, events) = replay(&hub, "r", &ids[1].to_string(), 4).await;
    assert!(control.is_empty(), "no reset after a restart: {control:?}");
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
    let dir = temp_dir("durable-locked");
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
    let (control, events) = replay(&first, "l", "0", 2).await;
    assert_eq!(control.len(), 1, "{control:?}");
    assert_eq!(control[0].event, "ssehub-reset");
    let data: Vec<&str> = events.iter().map(|e| e.data.as_str()).collect();
    assert_eq!(data, ["before", "after"]);
    drop(first);
    let _ = std::fs::remove_dir_all(&dir);
}
