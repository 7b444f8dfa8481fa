//! End-to-end check of the generator against its own bare server: counts, not speed.

use std::process::Command;

use serde_json::Value;
use ssehub_test_support::Process;

const BIN: &str = env!("CARGO_BIN_EXE_ssehub-bench");

/// The generator's own bare server on an ephemeral port, killed when dropped.
fn bare() -> Process {
    let mut command = Command::new(BIN);
    command.args(["bare-server", "--listen", "127.0.0.1:0"]);
    Process::start(command)
}

fn run(server: &Process, args: &[&str]) -> Value {
    let base = &server.url;
    let out = Command::new(BIN)
        .arg(args[0])
        .args(["--sub-url", &format!("{base}/events/{{topic}}")])
        .args(["--pub-url", &format!("{base}/publish")])
        .args(["--hub-pid", &server.child.id().to_string()])
        .args([
            "--src-base",
            "none",
            "--connect-timeout",
            "10",
            "--drain-timeout",
            "10",
        ])
        .args(&args[1..])
        .output()
        .expect("run generator");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).expect("json report")
}

#[test]
fn fanout_counts_every_event_once() {
    let s = bare();
    let v = run(
        &s,
        &[
            "fanout", "-n", "30", "-k", "3", "-m", "20", "-r", "0", "--procs", "2", "--ramp", "0",
        ],
    );
    assert_eq!(v["connections"]["live"], 30);
    assert_eq!(v["publish"]["ok"], 20);
    // 3 topics: 10 subscribers each; events 7 + 7 + 6.
    assert_eq!(v["delivery"]["expected"], 200);
    assert_eq!(v["delivery"]["received"], 200);
    assert_eq!(v["delivery"]["dups"], 0);
    assert!(v["hub"]["at_end"]["rss_kib"].as_u64().unwrap_or(0) > 0);
    assert!(v["delivery"]["latency"]["count"].as_u64() == Some(200));
}

#[test]
fn prefill_publishes_to_topics_nobody_subscribes() {
    let s = bare();
    let v = run(
        &s,
        &[
            "fanout",
            "-n",
            "10",
            "-k",
            "10",
            "-m",
            "20",
            "-r",
            "0",
            "--ramp",
            "0",
            "--prefill",
            "50",
            "--prefill-conns",
            "3",
        ],
    );
    assert_eq!(v["prefill"]["topics"], 50);
    assert_eq!(v["prefill"]["ok"], 50);
    // The prefilled topics (h0..h49) are not the subscribed ones (t0..t9): each subscriber
    // gets exactly its two events, nothing of the prefill.
    assert_eq!(v["delivery"]["expected"], 20);
    assert_eq!(v["delivery"]["received"], 20);
    assert_eq!(v["delivery"]["dups"], 0);
    assert_eq!(v["delivery"]["unmarked"], 0);
    assert!(v["hub"]["rss_per_sub_kib"].is_number());
}

#[test]
fn idle_holds_and_storm_reports_missed_events_without_history() {
    let s = bare();
    let v = run(&s, &["idle", "-n", "20", "--hold", "0.2", "--ramp", "0"]);
    assert_eq!(v["connections"]["held_at_end"], 20);
    let v = run(
        &s,
        &[
            "storm",
            "-n",
            "10",
            "--pre-events",
            "2",
            "--gap-events",
            "3",
            "--ramp",
            "0",
            "--drain-timeout",
            "1",
        ],
    );
    assert_eq!(v["reconnect"]["live"], 10);
    assert_eq!(v["reconnect"]["failed"], 0);
    // The bare server keeps no history: the 3 events published while away are lost.
    assert_eq!(v["reconnect"]["missing"], 30);
    assert_eq!(v["reconnect"]["caught_up"], false);
}
