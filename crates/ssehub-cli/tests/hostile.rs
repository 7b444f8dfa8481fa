//! Bad input at volume: well over a thousand malformed or hostile requests against a real hub
//! process. Each gets a clear 4xx (or, for broken HTTP, a closed connection); the hub keeps
//! serving, its memory stays bounded, and no acknowledged event is lost.

mod common;

use std::time::Duration;

use common::Hub;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// What a hostile request may get back.
#[derive(Clone, Copy, Debug)]
enum Expect {
    /// Exactly this status.
    Status(u16),
    /// Some 4xx, or the connection closed without an answer (broken HTTP).
    RefusedOrClosed,
}

struct Case {
    name: String,
    bytes: Vec<u8>,
    /// Close our sending side after the bytes (a half-closed socket).
    half_close: bool,
    expect: Expect,
}

fn publish_json(body: &[u8]) -> Vec<u8> {
    let mut out = format!(
        "POST /publish HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    )
    .into_bytes();
    out.extend_from_slice(body);
    out
}

fn get(target: &str, extra: &str) -> Vec<u8> {
    format!("GET {target} HTTP/1.1\r\nHost: x\r\n{extra}Connection: close\r\n\r\n").into_bytes()
}

fn cases(round: usize) -> Vec<Case> {
    let r = round;
    let ctrl = ['\u{0}', '\u{1}', '\u{7}', '\u{1b}', '\u{7f}'][r % 5];
    let case = |name: &str, bytes: Vec<u8>, expect| Case {
        name: format!("{name} #{r}"),
        bytes,
        half_close: false,
        expect,
    };
    let garbage: Vec<u8> = (0..64 + r * 7 % 200)
        .map(|i| ((i * 31 + r * 17) % 256) as u8)
        .collect();
    let many_topics: String = (0..2000 + r)
        .map(|i| format!("topic=t{i}"))
        .collect::<Vec<_>>()
        .join("&");
    let nested = format!("{}{}", "[".repeat(100_000 + r), "]".repeat(100_000 + r));
    vec![
        case("garbage bytes", garbage, Expect::RefusedOrClosed),
        case("bad request line", b"HELLO WORLD\r\n\r\n".to_vec(), Expect::RefusedOrClosed),
        case("bad header line", b"GET /healthz HTTP/1.1\r\nno colon here\r\n\r\n".to_vec(), Expect::RefusedOrClosed),
        case("giant header", get("/events/x", &format!("X-Big: {}\r\n", "a".repeat(70_000 + r))), Expect::RefusedOrClosed),
        case("many headers", get("/events/x", &"X-A: b\r\n".repeat(500)), Expect::RefusedOrClosed),
        case("huge JSON", publish_json(&vec![b' '; (1 << 20) + 1 + r]), Expect::Status(413)),
        case("deeply nested JSON", publish_json(nested.as_bytes()), Expect::Status(400)),
        case("invalid UTF-8 in topic", publish_json(b"{\"topic\": \"a\xff\xfeb\", \"data\": 1}"), Expect::Status(400)),
        case("control char in topic", publish_json(format!("{{\"topic\": \"a{}b\"}}", ctrl.escape_unicode()).as_bytes()), Expect::Status(400)),
        case("control char in event", publish_json(format!("{{\"topic\": \"t\", \"event\": \"e{}\"}}", ctrl.escape_unicode()).as_bytes()), Expect::Status(400)),
        case("newline in id", publish_json(b"{\"topic\": \"t\", \"id\": \"a\\r\\nid: 5\"}"), Expect::Status(400)),
        case("control char in query topic", get(&format!("/events?topic=a%{:02X}", ctrl as u32), ""), Expect::Status(400)),
        case("invalid UTF-8 path topic", get("/events/%C3%28", ""), Expect::Status(400)),
        case("thousands of topics", get(&format!("/events?{many_topics}"), ""), Expect::RefusedOrClosed),
        case("absurd Last-Event-ID", get("/events/none?lastEventId=-1-1", "Last-Event-ID: 99999999999999999999999999-99999999999999999999\r\n"), Expect::Status(200)),
        case("non-UTF-8 Last-Event-ID", [&get("/events/none", "")[..36], &b"Last-Event-ID: \xff\xfe\r\n"[..], &get("/events/none", "")[36..]].concat(), Expect::Status(200)),
        case("wrong method", b"PUT /publish HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\nConnection: close\r\n\r\n".to_vec(), Expect::Status(405)),
        case("unsupported media", b"POST /publish HTTP/1.1\r\nHost: x\r\nContent-Type: text/xml\r\nContent-Length: 3\r\nConnection: close\r\n\r\n<a>".to_vec(), Expect::Status(415)),
        Case {
            name: format!("half-closed mid-request #{r}"),
            bytes: b"POST /publish HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n{\"top".to_vec(),
            half_close: true,
            expect: Expect::RefusedOrClosed,
        },
        Case {
            name: format!("half-closed head #{r}"),
            bytes: b"GET /events/x HTTP/1.1\r\nHost".to_vec(),
            half_close: true,
            expect: Expect::RefusedOrClosed,
        },
    ]
}

/// Sends one case and returns the status line's code, or None when the hub closed without one.
async fn send(addr: &str, case: &Case) -> Option<u16> {
    ssehub_test_support::raw_status(addr, &case.bytes, case.half_close, Duration::from_secs(10))
        .await
        .unwrap_or_else(|_| panic!("{}: no answer and no close within 10 s", case.name))
}

fn rss_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .unwrap()
        .trim()
        .trim_end_matches(" kB")
        .trim()
        .parse()
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_thousand_hostile_requests_change_nothing() {
    let hub = Hub::start(["--memory"], &[]).await;
    let pid = hub.pid();
    let url = hub.url.clone();
    let addr = url.strip_prefix("http://").unwrap().to_owned();
    let client = reqwest::Client::new();
    let publish = |data: String| {
        client
            .post(format!("{url}/publish"))
            .json(&serde_json::json!({"topic": "kept", "data": data}))
            .send()
    };

    let mut acked = Vec::new();
    for i in 0..10 {
        let body: serde_json::Value = publish(format!("before {i}"))
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        acked.push(body["id"].as_str().unwrap().to_owned());
    }
    let rss_before = rss_kib(pid);

    let all: Vec<Case> = (0..60).flat_map(cases).collect();
    assert!(all.len() >= 1000, "{} cases", all.len());
    let total = all.len();
    let mut failures = Vec::new();
    for chunk in all.chunks(16) {
        let results =
            futures_util::future::join_all(chunk.iter().map(|case| send(&addr, case))).await;
        for (case, status) in chunk.iter().zip(results) {
            let ok = match (case.expect, status) {
                (Expect::Status(want), Some(got)) => want == got,
                (Expect::Status(_), None) => false,
                (Expect::RefusedOrClosed, None) => true,
                (Expect::RefusedOrClosed, Some(got)) => (400..500).contains(&got),
            };
            if !ok {
                failures.push(format!(
                    "{}: expected {:?}, got {status:?}",
                    case.name, case.expect
                ));
            }
        }
        // Interleave real publishes: they must keep being acknowledged.
        let body: serde_json::Value = publish(format!("during {}", acked.len()))
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        acked.push(body["id"].as_str().unwrap().to_owned());
    }
    assert!(
        failures.is_empty(),
        "{} of {total} misbehaved:\n{}",
        failures.len(),
        failures.join("\n")
    );

    // Still serving, nothing acknowledged lost, memory bounded.
    let health = client.get(format!("{url}/healthz")).send().await.unwrap();
    assert_eq!(health.status(), 200);
    let rss_after = rss_kib(pid);
    assert!(
        rss_after < rss_before + 64 * 1024,
        "RSS grew from {rss_before} KiB to {rss_after} KiB"
    );
    let response = client
        .get(format!("{url}/events/kept"))
        .header("Last-Event-ID", "0")
        .send()
        .await
        .unwrap();
    let mut body = response.bytes_stream();
    let mut parser = ssehub_core::Parser::new();
    let mut ids = Vec::new();
    use futures_util::StreamExt;
    while ids.len() < acked.len() {
        let chunk = tokio::time::timeout(Duration::from_secs(10), body.next())
            .await
            .unwrap()
            .unwrap()
            .unwrap();
        let mut items = Vec::new();
        parser.feed(&chunk, &mut items);
        for item in items {
            if let ssehub_core::ParserItem::Event(e) = item {
                if e.event != "ssehub-reset" {
                    ids.push(e.id);
                }
            }
        }
    }
    assert_eq!(
        ids, acked,
        "every acknowledged event is still there, in order"
    );
}

/// A client publishing to tens of thousands of distinct topics (and a subscriber churning
/// through as many): the topic table stays within `max_hub_topics`, every publish is
/// answered (topics whose events are gone are forgotten), and the hub's memory levels off.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn distinct_topics_by_the_ten_thousand_keep_memory_bounded() {
    let hub = Hub::start(
        ["--memory", "--history", "1000", "--max-hub-topics", "2000"],
        &[],
    )
    .await;
    let pid = hub.pid();
    let url = hub.url.clone();
    let round = |from: usize, to: usize| {
        let url = url.clone();
        async move {
            let mut tasks = tokio::task::JoinSet::new();
            for lane in 0..4 {
                let url = url.clone();
                tasks.spawn(async move {
                    let client = reqwest::Client::new();
                    for t in (from + lane..to).step_by(4) {
                        let response = client
                            .post(format!("{url}/publish"))
                            .json(&serde_json::json!({"topic": format!("d/{t}"), "data": "x"}))
                            .send()
                            .await
                            .unwrap();
                        assert_eq!(response.status(), 200, "topic d/{t}");
                    }
                });
            }
            while let Some(done) = tasks.join_next().await {
                done.unwrap();
            }
        }
    };
    round(0, 10_000).await;
    let rss_after_first = rss_kib(pid);
    round(10_000, 40_000).await;
    let rss_after_all = rss_kib(pid);
    let topics: serde_json::Value = reqwest::get(format!("{url}/topics"))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let kept = topics["topics"].as_array().unwrap().len();
    assert!(kept <= 2000, "{kept} topics kept");
    assert!(
        rss_after_all < rss_after_first + 8 * 1024,
        "memory grew from {rss_after_first} to {rss_after_all} KiB over 30,000 more topics"
    );
}

/// The number of open file descriptors of `pid`.
fn open_fds(pid: u32) -> usize {
    std::fs::read_dir(format!("/proc/{pid}/fd"))
        .unwrap()
        .count()
}

/// Ten thousand connections that send nothing or half a request head and hold on: the hub
/// keeps serving a subscriber and a publisher at once, then closes every one of them at
/// `head_timeout`, and its open files return to the baseline.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ten_thousand_half_open_connections_are_closed_and_change_nothing() {
    const HALF_OPEN: usize = 10_000;
    let hub = Hub::start(["--memory", "--head-timeout", "3"], &[]).await;
    let pid = hub.pid();
    let addr = hub.addr().to_owned();
    let baseline = open_fds(pid);
    let mut idle = Vec::with_capacity(HALF_OPEN);
    for i in 0..HALF_OPEN {
        let mut socket = TcpStream::connect(&addr).await.unwrap();
        if i % 2 == 0 {
            socket
                .write_all(b"GET /events/x HTTP/1.1\r\nHost:")
                .await
                .unwrap();
        }
        idle.push(socket);
    }
    // Served while they hang on.
    let started = std::time::Instant::now();
    let response = reqwest::Client::new()
        .get(format!("{}/events/ok", hub.url))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    hub.publish("ok", "served").await;
    let (_, events) = common::read_events(response, 1).await;
    assert_eq!(events[0].data, "served");
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "served in {:?} beside {HALF_OPEN} idle connections",
        started.elapsed()
    );
    // Each idle connection is closed by the hub (a read sees the end, or the hub's 408).
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    for socket in &mut idle {
        let mut buf = [0u8; 256];
        loop {
            match tokio::time::timeout_at(deadline, socket.read(&mut buf)).await {
                Ok(Ok(0)) | Ok(Err(_)) => break,
                Ok(Ok(_)) => continue,
                Err(_) => panic!("an idle connection was not closed by the hub"),
            }
        }
    }
    drop(idle);
    let settle = tokio::time::Instant::now() + Duration::from_secs(5);
    while open_fds(pid) > baseline + 2 && tokio::time::Instant::now() < settle {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(
        open_fds(pid) <= baseline + 2,
        "open files {} back to the baseline {baseline}",
        open_fds(pid)
    );
}
