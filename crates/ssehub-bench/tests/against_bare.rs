//! End-to-end check of the generator against its own bare server: counts, not speed.

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};

use serde_json::Value;

const BIN: &str = env!("CARGO_BIN_EXE_ssehub-bench");

struct Server {
    child: Child,
    port: u16,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn bare() -> Server {
    let mut child = Command::new(BIN)
        .args(["bare-server", "--listen", "127.0.0.1:0"])
        .stdout(Stdio::piped())
        .spawn()
        .expect("start bare-server");
    let mut line = String::new();
    BufReader::new(child.stdout.take().expect("stdout"))
        .read_line(&mut line)
        .expect("read port");
    let port = line
        .trim()
        .rsplit(':')
        .next()
        .and_then(|p| p.parse().ok())
        .expect("listening line");
    Server { child, port }
}

fn run(server: &Server, args: &[&str]) -> Value {
    let base = format!("http://127.0.0.1:{}", server.port);
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
