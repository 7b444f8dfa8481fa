//! What the binary's test files share: starting `ssehub serve` on an ephemeral port (for
//! async and for plain tests), refused invocations, scratch directories, publishing, reading
//! events off a stream, and a `redis-server` or `nats-server` of the test's own. The pieces other crates'
//! tests need too come from ssehub-test-support. Each test file is a crate of its own and
//! uses a part of this, hence the `dead_code` allowance.
#![allow(dead_code)]

use std::ffi::OsStr;
use std::path::{Path, PathBuf};
use std::process::Stdio;

use ssehub_core::ParsedEvent;
pub use ssehub_test_support::{free_port, listening_url, Process as HubProcess};
use ssehub_test_support::{log_segments, wait_for_port, EventStream, TempDir};
use tokio::io::{AsyncBufReadExt, BufReader};

pub const BIN: &str = env!("CARGO_BIN_EXE_ssehub");

/// How long a test waits for a hub to start or for a stream to move before it fails.
pub const WAIT: std::time::Duration = std::time::Duration::from_secs(10);

/// `ssehub serve --listen 127.0.0.1:0 ARGS` with `env` added, standard output piped (its
/// first line names the address), standard error discarded. The `MERCURE_*` variables of
/// the environment running the tests are removed so that they cannot change the hub.
pub fn serve_command<I, S>(args: I, env: &[(&str, &str)]) -> std::process::Command
where
    I: IntoIterator<Item = S>,
    S: AsRef<OsStr>,
{
    let mut command = std::process::Command::new(BIN);
    command
        .args(["serve", "--listen", "127.0.0.1:0"])
        .args(args);
    for key in [
        "MERCURE_PUBLISHER_JWT_KEY",
        "MERCURE_SUBSCRIBER_JWT_KEY",
        "MERCURE_EXTRA_DIRECTIVES",
    ] {
        command.env_remove(key);
    }
    for (key, value) in env {
        command.env(key, value);
    }
    command.stdout(Stdio::piped()).stderr(Stdio::null());
    command
}

/// A hub process for async tests, killed (SIGKILL) when dropped.
pub struct Hub {
    pub child: tokio::process::Child,
    pub url: String,
}

impl Hub {
    /// Starts `ssehub serve` (see [`serve_command`]) and waits for its address.
    pub async fn start<I, S>(args: I, env: &[(&str, &str)]) -> Hub
    where
        I: IntoIterator<Item = S>,
        S: AsRef<OsStr>,
    {
        let mut child = tokio::process::Command::from(serve_command(args, env))
            .kill_on_drop(true)
            .spawn()
            .expect("start the hub");
        let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
        let line = tokio::time::timeout(WAIT, lines.next_line())
            .await
            .expect("the hub did not say where it listens")
            .unwrap()
            .expect("the hub exited before listening");
        Hub {
            child,
            url: listening_url(&line),
        }
    }

    pub fn pid(&self) -> u32 {
        self.child.id().expect("the hub is running")
    }

    /// `HOST:PORT`, for raw sockets.
    pub fn addr(&self) -> &str {
        self.url.strip_prefix("http://").unwrap()
    }

    /// Publishes `data` on `topic` and returns the id from the `200` answer.
    pub async fn publish(&self, topic: &str, data: &str) -> String {
        publish(&self.url, topic, data).await
    }
}

/// `ssehub serve` (see [`serve_command`]) for plain (not async) tests, killed when dropped.
pub fn serve_process<I, S>(args: I, env: &[(&str, &str)]) -> HubProcess
where
    I: IntoIterator<Item = S>,
    S: AsRef<OsStr>,
{
    HubProcess::start(serve_command(args, env))
}

/// Runs `ssehub ARGS` (the whole command line, subcommand included), expects it to fail
/// and returns what it wrote to standard error.
pub fn refused(args: &[&str], env: &[(&str, &str)]) -> String {
    let mut command = std::process::Command::new(BIN);
    command.args(args);
    for (key, value) in env {
        command.env(key, value);
    }
    let output = command.output().expect("run ssehub");
    assert!(
        !output.status.success(),
        "{args:?} {env:?} should be refused"
    );
    String::from_utf8_lossy(&output.stderr).into_owned()
}

/// A new empty directory under the system's temporary directory, unique to this test
/// process and call. It stays after the test: a hub process may still be writing in it.
pub fn temp_dir(name: &str) -> PathBuf {
    TempDir::new(name).keep()
}

/// How many segment files (`*.log`) of the durable log are in `dir` now.
pub fn segment_files(dir: &Path) -> usize {
    log_segments(dir).len()
}

/// Publishes `data` on `topic` to the hub at `url` and returns the id of the `200` answer.
pub async fn publish(url: &str, topic: &str, data: &str) -> String {
    let response = reqwest::Client::new()
        .post(format!("{url}/publish"))
        .json(&serde_json::json!({"topic": topic, "data": data}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200, "publish to {topic}");
    let body: serde_json::Value = response.json().await.unwrap();
    body["id"].as_str().unwrap().to_owned()
}

/// Reads a stream's events until `n` events other than the hub's control events
/// (`ssehub-…`) arrived: (the control events, the other events), oldest first.
pub async fn read_events(
    response: reqwest::Response,
    n: usize,
) -> (Vec<ParsedEvent>, Vec<ParsedEvent>) {
    assert_eq!(response.status(), 200, "subscribe");
    EventStream::new(response.bytes_stream(), WAIT)
        .split_control(n)
        .await
}

/// Which server a [`Server`] runs.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Kind {
    Redis,
    Nats,
}

/// A server of the test's own on an ephemeral port, its data in a temporary directory that
/// outlives a restart: a `redis-server` with append-only persistence, or a `nats-server -js`.
pub struct Server {
    child: Option<tokio::process::Child>,
    pub port: u16,
    dir: PathBuf,
    kind: Kind,
}

impl Server {
    pub async fn redis() -> Server {
        Server::new(Kind::Redis, "redis").spawn().await
    }

    pub async fn nats() -> Server {
        Server::new(Kind::Nats, "nats").spawn().await
    }

    fn new(kind: Kind, tag: &str) -> Server {
        Server {
            child: None,
            port: free_port(),
            dir: temp_dir(tag),
            kind,
        }
    }

    /// Starts the server (again: same port, same data).
    pub async fn spawn(mut self) -> Server {
        let port = self.port.to_string();
        let (program, mut command) = match self.kind {
            Kind::Redis => {
                let mut command = tokio::process::Command::new("redis-server");
                command
                    .args(["--port", &port, "--bind", "127.0.0.1", "--save", ""])
                    .args(["--appendonly", "yes", "--appendfsync", "always", "--dir"]);
                ("redis-server", command)
            }
            Kind::Nats => {
                let mut command = tokio::process::Command::new("nats-server");
                command.args(["-js", "-a", "127.0.0.1", "-p", &port, "-sd"]);
                ("nats-server", command)
            }
        };
        let child = command
            .arg(&self.dir)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .unwrap_or_else(|e| {
                panic!(
                    "cannot start {program} ({e}): install it with `apt-get install -y {program}`"
                )
            });
        self.child = Some(child);
        wait_for_port(self.port, WAIT, program).await;
        self
    }

    pub fn url(&self) -> String {
        let scheme = match self.kind {
            Kind::Redis => "redis",
            Kind::Nats => "nats",
        };
        format!("{scheme}://127.0.0.1:{}", self.port)
    }

    /// Kills the server (SIGKILL).
    pub async fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            child.kill().await.unwrap();
        }
    }

    pub fn signal(&self, signal: &str) {
        let pid = self.child.as_ref().unwrap().id().unwrap();
        std::process::Command::new("kill")
            .args([signal, &pid.to_string()])
            .status()
            .unwrap();
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}
