//! Retention classes with the real binary: a config file with two `[[retain]]` rules, a
//! short one and one longer than the hub's default, over a durable data dir with small
//! segments. Checked over HTTP: the short class's old events are gone, the long class's
//! are kept, its subscribers resume without a reset, and ids keep increasing across a
//! restart.

mod common;

use std::path::{Path, PathBuf};

use common::{read_events, segment_files, temp_dir, Hub};
use ssehub_core::{EventId, ParsedEvent};

const CONFIG: &str = r#"
retain_events = 5
segment_bytes = 300
sync = "never"

[[retain]]
topics = "prices/*"
events = 3

[[retain]]
topics = "chat/**"
events = 1000
"#;

async fn start(dir: &Path, config: &Path) -> Hub {
    let args = [
        "--config",
        config.to_str().unwrap(),
        "--data-dir",
        dir.to_str().unwrap(),
    ];
    Hub::start(args, &[]).await
}

async fn publish(hub: &Hub, topic: &str, data: &str) -> EventId {
    hub.publish(topic, data).await.parse().unwrap()
}

/// What a subscriber of `topic` resuming after `last_event_id` receives, read until `n`
/// events with an id arrived: (control events such as `ssehub-reset`, the events).
async fn resume(
    hub: &Hub,
    topic: &str,
    last_event_id: EventId,
    n: usize,
) -> (Vec<ParsedEvent>, Vec<ParsedEvent>) {
    let response = reqwest::Client::new()
        .get(format!("{}/events", hub.url))
        .query(&[("topic", topic)])
        .header("Last-Event-ID", last_event_id.to_string())
        .send()
        .await
        .unwrap();
    read_events(response, n).await
}

fn data(events: &[ParsedEvent]) -> Vec<&str> {
    events.iter().map(|e| e.data.as_str()).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn classes_keep_their_own_history_across_a_restart() {
    let root = temp_dir("retention-classes");
    let config = root.join("ssehub.toml");
    std::fs::write(&config, CONFIG).unwrap();
    let dir = root.join("data");
    let hub = start(&dir, &config).await;

    let start_id = publish(&hub, "chat/room/1", "c0").await;
    let mut last = start_id;
    for i in 1..=10 {
        for topic in ["prices/eur", "news"] {
            let id = publish(&hub, topic, &format!("{topic}-{i}")).await;
            assert!(id > last, "ids increase across classes");
            last = id;
        }
        let id = publish(&hub, "chat/room/1", &format!("c{i}")).await;
        assert!(id > last);
        last = id;
    }

    // The long class (1000 events, more than the hub's 5) kept every chat event, and its
    // subscriber resumes without a reset though the other classes trimmed past its id.
    let (control, events) = resume(&hub, "chat/room/1", start_id, 10).await;
    assert!(
        control.is_empty(),
        "no reset for the long class: {control:?}"
    );
    let chat: Vec<String> = (1..=10).map(|i| format!("c{i}")).collect();
    assert_eq!(data(&events), chat);

    // The short class kept its last 3; its subscriber is told it missed events.
    let (control, events) = resume(&hub, "prices/eur", start_id, 3).await;
    assert_eq!(control.len(), 1);
    assert_eq!(control[0].event, "ssehub-reset");
    assert_eq!(
        data(&events),
        ["prices/eur-8", "prices/eur-9", "prices/eur-10"]
    );

    // The default class kept the hub's 5.
    let (control, events) = resume(&hub, "news", start_id, 5).await;
    assert_eq!(control.len(), 1, "the default class trimmed past the id");
    assert_eq!(data(&events)[0], "news-6");

    // Each rule's class has its own directory; the short one stays small on disk.
    let classes: Vec<PathBuf> = std::fs::read_dir(dir.join("classes"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    assert_eq!(classes.len(), 2, "{classes:?}");
    let prices_dir = classes
        .iter()
        .find(|p| {
            p.file_name()
                .unwrap()
                .to_str()
                .unwrap()
                .starts_with("prices")
        })
        .unwrap();
    assert!(
        segment_files(prices_dir) <= 3,
        "the short class deleted its old segments"
    );
    let chat_dir = classes
        .iter()
        .find(|p| p.file_name().unwrap().to_str().unwrap().starts_with("chat"))
        .unwrap();
    let chat_segments = segment_files(chat_dir);
    assert!(
        chat_segments > segment_files(prices_dir),
        "the long class kept its segments ({chat_segments})"
    );

    // Restart (SIGKILL; the log has written every record to the OS).
    let mut hub = hub;
    hub.child.kill().await.unwrap();
    let hub = start(&dir, &config).await;
    let after = publish(&hub, "news", "after restart").await;
    assert!(
        after > last,
        "ids keep increasing across a restart: {after} after {last}"
    );
    let next_chat = publish(&hub, "chat/room/1", "c11").await;
    assert!(next_chat > after);
    let (control, events) = resume(&hub, "chat/room/1", start_id, 11).await;
    assert!(
        control.is_empty(),
        "no reset after the restart: {control:?}"
    );
    assert_eq!(events.len(), 11);
    assert_eq!(events[10].data, "c11");
    assert_eq!(events[10].id, next_chat.to_string());

    drop(hub);
    let _ = std::fs::remove_dir_all(&root);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn memory_mode_has_classes_too() {
    let args = [
        "--memory",
        "--history",
        "3",
        "--retain",
        "chat/**=events:100",
    ];
    let hub = Hub::start(args, &[]).await;
    let first = publish(&hub, "chat/x", "c0").await;
    for i in 1..=10 {
        publish(&hub, "news", &i.to_string()).await;
        publish(&hub, "chat/x", &format!("c{i}")).await;
    }
    let (control, events) = resume(&hub, "chat/x", first, 10).await;
    assert!(control.is_empty(), "{control:?}");
    assert_eq!(events[9].data, "c10");
    let (control, events) = resume(&hub, "news", first, 3).await;
    assert_eq!(control.len(), 1, "history 3 trimmed the default class");
    assert_eq!(data(&events), ["8", "9", "10"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_rules_are_refused_at_start_and_print_config_shows_the_rules() {
    let output = std::process::Command::new(common::BIN)
        .args(["serve", "--memory", "--retain", "a/**/b=events:1"])
        .output()
        .unwrap();
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("retain: rule 1"), "{stderr}");

    let output = std::process::Command::new(common::BIN)
        .arg("print-config")
        .env(
            "SSEHUB_RETAIN",
            "prices/*=events:1000,age:60;chat/**=age:2592000",
        )
        .output()
        .unwrap();
    assert!(output.status.success());
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        stdout.contains(
            "[[retain]]\ntopics = \"prices/*\"\nevents = 1000\nage = 60\nbytes = 1073741824\n"
        ),
        "{stdout}"
    );
    assert!(
        stdout.contains("[[retain]]\ntopics = \"chat/**\"\nevents = 1000000\nage = 2592000\n"),
        "{stdout}"
    );
}
