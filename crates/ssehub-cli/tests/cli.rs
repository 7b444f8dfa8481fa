//! The `ssehub` binary as users run it: configuration layers, refusals naming the key,
//! signals, and the publish/subscribe commands against a real hub process.

mod common;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::{refused, HubProcess, BIN};

/// `ssehub serve --memory` with these further arguments, on an ephemeral port.
fn start(args: &[&str], env: &[(&str, &str)]) -> HubProcess {
    common::serve_process(["--memory"].iter().chain(args), env)
}

/// Raw access to a hub process, for what the HTTP client hides.
trait Raw {
    /// Opens a raw HTTP/1.0 SSE request (the body is then plain, not chunked).
    fn open(&self, path: &str) -> BufReader<TcpStream>;
    /// The `retry:` a new stream is sent, in milliseconds.
    fn retry_sent(&self) -> u64;
    /// Sends the process a signal (`-TERM`, `-INT`).
    fn signal(&self, signal: &str);
}

impl Raw for HubProcess {
    fn open(&self, path: &str) -> BufReader<TcpStream> {
        let mut socket = TcpStream::connect(self.addr()).unwrap();
        socket
            .set_read_timeout(Some(Duration::from_secs(30)))
            .unwrap();
        write!(socket, "GET {path} HTTP/1.0\r\nHost: x\r\n\r\n").unwrap();
        let mut reader = BufReader::new(socket);
        let mut line = String::new();
        reader.read_line(&mut line).unwrap();
        assert!(
            line.starts_with("HTTP/1.") && line.contains(" 200 "),
            "{line}"
        );
        while line != "\r\n" {
            line.clear();
            reader.read_line(&mut line).unwrap();
        }
        reader
    }

    fn retry_sent(&self) -> u64 {
        let mut reader = self.open("/events/cfg");
        let mut line = String::new();
        loop {
            line.clear();
            reader.read_line(&mut line).unwrap();
            if let Some(ms) = line.trim().strip_prefix("retry: ") {
                return ms.parse().unwrap();
            }
        }
    }

    fn signal(&self, signal: &str) {
        let status = Command::new("kill")
            .args([signal, &self.child.id().to_string()])
            .status()
            .unwrap();
        assert!(status.success());
    }
}

#[test]
fn print_config_shows_every_key_with_its_default() {
    let output = Command::new(BIN).arg("print-config").output().unwrap();
    assert!(output.status.success());
    let text = String::from_utf8(output.stdout).unwrap();
    for line in [
        "listen = \"127.0.0.1:8080\"",
        "heartbeat = 15",
        "retry = 3000",
        "max_payload = 1048576",
        "memory = false",
    ] {
        assert!(text.lines().any(|l| l == line), "missing {line:?}");
    }
    assert!(
        text.lines().filter(|l| l.starts_with('#')).count() > 20,
        "the defaults are commented"
    );
}

#[test]
fn bad_values_are_refused_naming_the_key() {
    assert!(refused(&["serve", "--heartbeat", "0"], &[]).contains("heartbeat"));
    assert!(refused(&["serve", "--listen-backlog", "0"], &[]).contains("listen_backlog"));
    assert!(refused(&["serve", "--heartbeat", "soon"], &[]).contains("--heartbeat"));
    assert!(refused(&["serve"], &[("SSEHUB_LISTEN", "nowhere")]).contains("listen"));
    assert!(refused(&["serve", "--cors-origins", "example.com"], &[]).contains("cors_origins"));
    let dir = std::env::temp_dir().join(format!("ssehub-cli-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("bad.toml");
    std::fs::write(&file, "max_payload = \"big\"\n").unwrap();
    let err = refused(&["serve", "--config", file.to_str().unwrap()], &[]);
    assert!(
        err.contains("max_payload") && err.contains("bad.toml"),
        "{err}"
    );
    std::fs::write(&file, "heartbeet = 3\n").unwrap();
    assert!(refused(&["serve", "--config", file.to_str().unwrap()], &[]).contains("heartbeet"));
    std::fs::remove_dir_all(dir).unwrap();
}

#[test]
fn flags_beat_environment_beat_file() {
    let dir = std::env::temp_dir().join(format!("ssehub-cli-layers-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("ssehub.toml");
    std::fs::write(&file, "retry = 1000\n").unwrap();
    let config = file.to_str().unwrap();
    let in_range = |ms: u64, base: u64| (base..=base + base / 10).contains(&ms);
    let from_file = start(&["--config", config], &[]);
    assert!(in_range(from_file.retry_sent(), 1000));
    let from_env = start(&["--config", config], &[("SSEHUB_RETRY", "2000")]);
    assert!(in_range(from_env.retry_sent(), 2000));
    let from_flag = start(
        &["--config", config, "--retry", "3000"],
        &[("SSEHUB_RETRY", "2000")],
    );
    assert!(in_range(from_flag.retry_sent(), 3000));
    std::fs::remove_dir_all(dir).unwrap();
}

#[test]
fn sigterm_ends_open_streams_and_exits_zero() {
    let mut hub = start(&[], &[]);
    let mut stream = hub.open("/events/bye");
    let mut opening = String::new();
    stream.read_line(&mut opening).unwrap();
    hub.signal("-TERM");
    let started = Instant::now();
    let mut rest = String::new();
    stream
        .read_to_string(&mut rest)
        .expect("the stream ends cleanly");
    let status = loop {
        if let Some(status) = hub.child.try_wait().unwrap() {
            break status;
        }
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "the hub did not exit"
        );
        std::thread::sleep(Duration::from_millis(20));
    };
    assert!(status.success(), "{status:?}");
}

fn wait_subscribers(hub: &HubProcess, topic: &str, n: usize) {
    let started = Instant::now();
    loop {
        let mut socket = TcpStream::connect(hub.addr()).unwrap();
        write!(socket, "GET /topics/{topic} HTTP/1.0\r\nHost: x\r\n\r\n").unwrap();
        let mut answer = String::new();
        socket.read_to_string(&mut answer).unwrap();
        if answer.contains(&format!("\"subscribers\":{n}")) {
            return;
        }
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "no {n} subscribers: {answer}"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn publish_and_subscribe_commands_talk_to_a_real_hub() {
    let hub = start(&[], &[]);
    let subscriber = Command::new(BIN)
        .args([
            "subscribe",
            "--hub",
            &hub.url,
            "--json",
            "--count",
            "3",
            "news",
            "weather",
        ])
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    wait_subscribers(&hub, "news", 1);
    let publish = |args: &[&str], stdin: Option<&str>| {
        let mut command = Command::new(BIN);
        command
            .args(["publish", "--hub", &hub.url])
            .args(args)
            .stdout(Stdio::piped())
            .stdin(Stdio::piped());
        let mut child = command.spawn().unwrap();
        let mut input = child.stdin.take().unwrap();
        if let Some(text) = stdin {
            input.write_all(text.as_bytes()).unwrap();
        }
        drop(input);
        let output = child.wait_with_output().unwrap();
        assert!(output.status.success(), "publish {args:?}");
        let answer: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
        answer
    };
    let first = publish(&["news", "hello world", "--event", "headline"], None);
    assert_eq!(first["delivered"], 1);
    publish(&["weather", "-"], Some("line 1\nline 2\n"));
    publish(&["news", "--id", "custom-7"], Some("from stdin"));
    let output = subscriber.wait_with_output().unwrap();
    assert!(output.status.success());
    let lines: Vec<serde_json::Value> = String::from_utf8(output.stdout)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), 3, "--count 3 exits after three events");
    assert_eq!(lines[0]["event"], "headline");
    assert_eq!(lines[0]["data"], "hello world");
    assert_eq!(lines[0]["id"], first["id"]);
    assert_eq!(lines[1]["data"], "line 1\nline 2");
    assert_eq!(lines[2]["id"], "custom-7");
    assert_eq!(lines[2]["data"], "from stdin");

    // Readable output, and a resume with --last-event-id.
    let replay = Command::new(BIN)
        .args([
            "subscribe",
            "--hub",
            &hub.url,
            "--count",
            "1",
            "--last-event-id",
            first["id"].as_str().unwrap(),
            "news",
        ])
        .output()
        .unwrap();
    let text = String::from_utf8(replay.stdout).unwrap();
    assert!(
        text.contains("custom-7") && text.contains("from stdin"),
        "{text}"
    );

    // A refused publish exits non-zero with the hub's message.
    let bad = Command::new(BIN)
        .args([
            "publish", "--hub", &hub.url, "news", "x", "--event", "a b\nc",
        ])
        .output()
        .unwrap();
    assert!(!bad.status.success());
    assert!(String::from_utf8_lossy(&bad.stderr).contains("line break"));
}

#[test]
fn publish_rate_and_head_timeout_reach_the_hub_from_flags_and_environment() {
    assert!(refused(&["serve", "--head-timeout", "0"], &[]).contains("head_timeout"));
    let hub = start(
        &["--publish-rate", "3", "--head-timeout", "2"],
        &[("SSEHUB_PUBLISH_BURST", "7")],
    );
    let mut socket = TcpStream::connect(hub.addr()).unwrap();
    write!(socket, "GET /metrics HTTP/1.0\r\nHost: x\r\n\r\n").unwrap();
    let mut metrics = String::new();
    socket.read_to_string(&mut metrics).unwrap();
    for line in [
        "ssehub_limit{name=\"publish_rate\"} 3",
        "ssehub_limit{name=\"publish_burst\"} 7",
        "ssehub_limit{name=\"head_timeout_seconds\"} 2",
        "ssehub_publish_rate_limited_total 0",
    ] {
        assert!(
            metrics.lines().any(|l| l == line),
            "no {line:?} in:\n{metrics}"
        );
    }
}

#[test]
fn route_tables_in_the_config_file_serve_a_legacy_apps_urls() {
    let dir = std::env::temp_dir().join(format!("ssehub-cli-routes-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("ssehub.toml");
    std::fs::write(
        &file,
        r#"
[[route]]
path = "/stream/:room"
topics = ["room/{room}"]
retry = 4000
welcome = [{ event = "hello", data = "room {room}" }]

[[route]]
path = "/say/:room"
method = "POST"
topics = ["room/{room}"]
data = "{text}"
reply = '{"sent":{delivered}}'
"#,
    )
    .unwrap();
    let hub = start(&["--config", file.to_str().unwrap()], &[]);
    let mut stream = hub.open("/stream/kitchen");
    let mut lines = Vec::new();
    while lines.len() < 4 {
        let mut line = String::new();
        stream.read_line(&mut line).unwrap();
        lines.push(line);
    }
    assert_eq!(
        lines,
        [
            "retry: 4000\n",
            "\n",
            "event: hello\n",
            "data: room kitchen\n"
        ]
    );
    wait_subscribers(&hub, "room%2Fkitchen", 1);
    let body = r#"{"text":"dinner"}"#;
    let mut socket = TcpStream::connect(hub.addr()).unwrap();
    write!(
        socket,
        "POST /say/kitchen HTTP/1.0\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    )
    .unwrap();
    let mut answer = String::new();
    socket.read_to_string(&mut answer).unwrap();
    assert!(answer.ends_with("\r\n\r\n{\"sent\":1}"), "{answer}");
    let mut event = String::new();
    loop {
        let mut line = String::new();
        stream.read_line(&mut line).unwrap();
        if line == "data: dinner\n" {
            break;
        }
        event.push_str(&line);
        assert!(event.len() < 4096, "no event: {event}");
    }
    // A bad route is refused at start, naming it.
    std::fs::write(&file, "[[route]]\npath = \"nope\"\ntopics = [\"a\"]\n").unwrap();
    let err = refused(&["serve", "--config", file.to_str().unwrap()], &[]);
    assert!(
        err.contains("route 1 (\"nope\"): path: must start with /"),
        "{err}"
    );
    std::fs::remove_dir_all(dir).unwrap();
}

/// `ssehub publish` cannot inject SSE fields either (argv cannot carry a NUL): a line break in the event name,
/// id or topic is refused with the hub's message naming the field (exit status non-zero),
/// and nothing is published; line breaks in the data stay data.
#[test]
fn the_publish_command_cannot_inject_sse_fields() {
    let hub = start(&[], &[]);
    for (args, field) in [
        (vec!["t", "x", "--event", "a\nevent: evil"], "event"),
        (vec!["t", "x", "--event", "a\rb"], "event"),
        (vec!["t", "x", "--id", "1\nid: 2"], "id"),
        (vec!["t", "x", "--id", "a\r\nb"], "id"),
        (vec!["t\nx", "x"], "topic"),
    ] {
        let output = Command::new(BIN)
            .args(["publish", "--hub", &hub.url])
            .args(&args)
            .output()
            .unwrap();
        assert!(!output.status.success(), "{args:?} must fail");
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(stderr.contains(field), "{args:?}: {stderr}");
    }
    let mut socket = TcpStream::connect(hub.addr()).unwrap();
    write!(socket, "GET /topics/t HTTP/1.0\r\nHost: x\r\n\r\n").unwrap();
    let mut answer = String::new();
    socket.read_to_string(&mut answer).unwrap();
    assert!(
        answer.contains("\"lastEventId\":null"),
        "nothing published: {answer}"
    );
    // Data with line breaks is data: one event, the lines kept.
    let output = Command::new(BIN)
        .args(["publish", "--hub", &hub.url, "t", "a\nevent: evil\r\nb"])
        .output()
        .unwrap();
    assert!(output.status.success());
    let mut replay = hub.open("/events/t?lastEventId=0-0");
    let mut lines: Vec<String> = Vec::new();
    loop {
        let mut line = String::new();
        replay.read_line(&mut line).unwrap();
        if line == "\n" {
            // The end of an event: the hub's reset notice is skipped, the event kept.
            if lines.iter().any(|l| l.starts_with("data: ")) {
                break;
            }
            lines.clear();
        } else if line == "event: ssehub-reset\n" {
            lines.push("reset".into());
            loop {
                line.clear();
                replay.read_line(&mut line).unwrap();
                if line == "\n" {
                    break;
                }
            }
            lines.clear();
        } else if !line.starts_with(':') && !line.starts_with("retry:") && !line.starts_with("id:")
        {
            lines.push(line.trim_end().to_owned());
        }
    }
    assert_eq!(lines, ["data: a", "data: event: evil", "data: b"]);
}

#[test]
fn completions_and_the_man_page_come_from_the_command_definitions() {
    let run = |args: &[&str]| {
        let output = Command::new(BIN).args(args).output().unwrap();
        assert!(output.status.success(), "{args:?}");
        String::from_utf8(output.stdout).unwrap()
    };
    let bash = run(&["completions", "bash"]);
    for word in [
        "publish",
        "subscribe",
        "print-config",
        "--max-hub-topics",
        "--log-format",
    ] {
        assert!(bash.contains(word), "bash completion lacks {word}");
    }
    assert!(run(&["completions", "zsh"]).starts_with("#compdef ssehub"));
    assert!(run(&["completions", "fish"]).contains("complete -c ssehub"));
    let man = run(&["man"]);
    for page in [
        ".TH ssehub 1",
        ".TH ssehub-publish 1",
        ".TH ssehub-subscribe 1",
    ] {
        assert!(man.contains(page), "man lacks {page}");
    }
    assert!(
        man.contains("\\-\\-max\\-hub\\-topics"),
        "every flag is in the page"
    );
    assert!(!refused(&["completions", "tcsh"], &[]).is_empty());
}

#[test]
fn json_logs_are_one_object_a_line() {
    let mut child = Command::new(BIN)
        .args([
            "serve",
            "--memory",
            "--listen",
            "127.0.0.1:0",
            "--log-format",
            "json",
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut line = String::new();
    BufReader::new(child.stderr.as_mut().unwrap())
        .read_line(&mut line)
        .unwrap();
    child.kill().unwrap();
    child.wait().unwrap();
    let log: serde_json::Value =
        serde_json::from_str(&line).unwrap_or_else(|e| panic!("{e}: {line}"));
    assert_eq!(log["level"], "INFO", "{log}");
    assert_eq!(log["message"], "ssehub started", "{log}");
    assert!(
        log["timestamp"].is_string() && log["addr"].is_string(),
        "{log}"
    );
    let err = refused(&["serve", "--memory", "--log-format", "xml"], &[]);
    assert!(err.contains("log_format"), "{err}");
}

/// `ssehub subscribe --progress` keeps a count on standard error and says when it
/// reconnects; the events themselves go to standard output, across a hub restart.
#[test]
fn subscribe_shows_a_live_count_and_reconnect_notices() {
    let port = common::free_port();
    let addr = format!("127.0.0.1:{port}");
    let url = format!("http://{addr}");
    let start_on = || {
        let mut child = Command::new(BIN)
            .args(["serve", "--memory", "--listen", &addr])
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let mut line = String::new();
        BufReader::new(child.stdout.as_mut().unwrap())
            .read_line(&mut line)
            .unwrap();
        assert!(line.starts_with("listening on"), "{line}");
        child
    };
    let publish = |data: &str| {
        let status = Command::new(BIN)
            .args(["publish", "--hub", &url, "p", data])
            .stdout(Stdio::null())
            .status()
            .unwrap();
        assert!(status.success());
    };
    let mut first = start_on();
    let subscriber = Command::new(BIN)
        .args([
            "subscribe",
            "--hub",
            &url,
            "--progress",
            // one, the new hub's ssehub-reset (its memory history is new), two.
            "--count",
            "3",
            "p",
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let hub = HubProcess {
        child: Command::new("true").spawn().unwrap(),
        url: url.clone(),
    };
    wait_subscribers(&hub, "p", 1);
    publish("one");
    std::thread::sleep(Duration::from_millis(300));
    first.kill().unwrap();
    first.wait().unwrap();
    std::thread::sleep(Duration::from_millis(500));
    let mut second = start_on();
    wait_subscribers(&hub, "p", 1);
    publish("two");
    let output = subscriber.wait_with_output().unwrap();
    second.kill().unwrap();
    second.wait().unwrap();
    assert!(output.status.success());
    let stdout = String::from_utf8(output.stdout).unwrap();
    assert!(
        stdout.contains("message: one") && stdout.contains("message: two"),
        "{stdout}"
    );
    let stderr = String::from_utf8(output.stderr).unwrap();
    assert!(stderr.contains("1 event received"), "{stderr:?}");
    assert!(stderr.contains("2 events received"), "{stderr:?}");
    assert!(stderr.contains("reconnecting"), "{stderr:?}");
}
