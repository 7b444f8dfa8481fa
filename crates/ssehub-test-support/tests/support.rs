//! The shared helpers on real sockets and files: an SSE body split at awkward places,
//! status lines that come in pieces or never, directories that go or stay, deadlines.

use std::time::Duration;

use bytes::Bytes;
use ssehub_test_support::{
    free_port, log_segments, metric, raw_status, wait_for_port, wait_until, EventStream, Process,
    TempDir,
};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

fn body(chunks: &[&'static str]) -> EventStream {
    let chunks: Vec<Result<Bytes, ()>> = chunks.iter().map(|c| Ok(Bytes::from(*c))).collect();
    EventStream::new(futures_util::stream::iter(chunks), Duration::from_secs(5))
}

#[tokio::test]
async fn events_split_across_chunks_come_whole_and_control_events_apart() {
    let mut stream = body(&[
        ": hello\n\nevent: ssehub-",
        "presence\ndata: {}\n\nid: 1-0\nda",
        "ta: one\n\nretry: 100\n\nid: 2-0\ndata: two\n",
        "\nid: 3-0\ndata: three\n\n",
    ]);
    let (control, events) = stream.split_control(2).await;
    assert_eq!(control.len(), 1);
    assert_eq!(control[0].event, "ssehub-presence");
    let data: Vec<&str> = events.iter().map(|e| e.data.as_str()).collect();
    assert_eq!(data, ["one", "two"]);
    assert!(!stream.ended());
    let rest = stream.rest().await;
    assert_eq!(rest.len(), 1);
    assert_eq!(rest[0].id, "3-0");
    assert!(stream.ended());
    assert!(stream.next_event().await.is_none());
}

#[tokio::test]
async fn a_broken_body_ends_the_stream() {
    let chunks: Vec<Result<Bytes, &str>> = vec![Ok(Bytes::from("data: a\n\n")), Err("reset")];
    let mut stream = EventStream::new(futures_util::stream::iter(chunks), Duration::from_secs(5));
    assert_eq!(stream.event().await.data, "a");
    assert!(stream.next_event().await.is_none());
    assert!(stream.ended());
}

#[tokio::test]
#[should_panic(expected = "timed out waiting for the stream")]
async fn a_stalled_stream_fails_after_its_wait() {
    let mut stream = EventStream::new(
        futures_util::stream::pending::<Result<Bytes, ()>>(),
        Duration::from_millis(50),
    );
    stream.item().await;
}

#[tokio::test]
#[should_panic(expected = "unexpected event")]
async fn quiet_for_fails_on_an_event() {
    body(&["data: loud\n\n"])
        .quiet_for(Duration::from_millis(100))
        .await;
}

/// A server on a real port that reads once and then does `answer` with the socket.
async fn server(answer: &'static [&'static [u8]], close: bool) -> std::net::SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        let (mut socket, _) = listener.accept().await.unwrap();
        let mut buf = [0u8; 1024];
        let _ = socket.read(&mut buf).await;
        for piece in answer {
            socket.write_all(piece).await.unwrap();
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        if close {
            drop(socket);
        } else {
            tokio::time::sleep(Duration::from_secs(5)).await;
        }
    });
    addr
}

#[tokio::test]
async fn raw_status_reads_a_status_line_in_pieces_a_close_or_nothing() {
    let wait = Duration::from_secs(2);
    let split = server(
        &[b"HTTP/1.1 4", b"31 Request Header Fields Too Large\r\n\r\n"],
        false,
    )
    .await;
    let code = raw_status(split, b"GET / HTTP/1.1\r\n\r\n", false, wait).await;
    assert_eq!(code.unwrap(), Some(431));

    let closed = server(&[], true).await;
    let code = raw_status(closed, b"\x16\x03\x01 junk", true, wait).await;
    assert_eq!(code.unwrap(), None);

    let silent = server(&[], false).await;
    let code = raw_status(silent, b"GET /", false, Duration::from_millis(200)).await;
    assert!(code.is_err(), "{code:?}");
}

#[tokio::test]
async fn wait_for_port_sees_a_listener_come_up() {
    let port = free_port();
    tokio::spawn(async move {
        tokio::time::sleep(Duration::from_millis(100)).await;
        let listener = TcpListener::bind(("127.0.0.1", port)).await.unwrap();
        let _ = listener.accept().await;
    });
    wait_for_port(port, Duration::from_secs(5), "the listener").await;
}

#[tokio::test]
#[should_panic(expected = "seen 3 (still, after")]
async fn wait_until_fails_with_what_it_saw_last() {
    let mut n = 0;
    wait_until(Duration::from_millis(50), Duration::from_millis(10), || {
        n += 1;
        let seen = n.min(3);
        async move { Err::<(), _>(format!("seen {seen}")) }
    })
    .await;
}

#[test]
fn temp_dirs_are_distinct_and_go_unless_kept() {
    let a = TempDir::new("support");
    let b = TempDir::new("support");
    assert_ne!(a.path(), b.path());
    for name in [
        "00000000000000000002.log",
        "00000000000000000001.log",
        "meta",
    ] {
        std::fs::write(a.path().join(name), b"x").unwrap();
    }
    let segments = log_segments(a.path());
    let names: Vec<_> = segments.iter().map(|p| p.file_name().unwrap()).collect();
    assert_eq!(
        names,
        ["00000000000000000001.log", "00000000000000000002.log"]
    );
    let gone = a.path().to_owned();
    drop(a);
    assert!(!gone.exists());
    let kept = b.keep();
    assert!(kept.is_dir());
    std::fs::remove_dir_all(kept).unwrap();
}

#[test]
fn metric_reads_the_series_named_with_its_labels() {
    let text = "# TYPE ssehub_limit gauge\n\
                ssehub_limit{name=\"a\"} 1\n\
                ssehub_limit{name=\"ab\"} 2\n\
                ssehub_events_published_total 7\n";
    assert_eq!(metric(text, "ssehub_limit{name=\"ab\"} "), 2);
    assert_eq!(metric(text, "ssehub_events_published_total "), 7);
    let missing = std::panic::catch_unwind(|| metric(text, "ssehub_events "));
    assert!(missing.is_err());
}

#[test]
fn a_process_gives_its_address_and_dies_with_the_test() {
    let mut command = std::process::Command::new("sh");
    command.args([
        "-c",
        "echo 'listening on http://127.0.0.1:4567'; exec sleep 30",
    ]);
    let process = Process::start(command);
    assert_eq!(process.url, "http://127.0.0.1:4567");
    assert_eq!(process.addr(), "127.0.0.1:4567");
    let pid = process.child.id();
    assert!(std::path::Path::new(&format!("/proc/{pid}")).exists());
    drop(process);
    // Killed and reaped: the pid is gone, not a zombie.
    assert!(!std::path::Path::new(&format!("/proc/{pid}")).exists());
}

#[test]
#[should_panic(expected = "the first line of the server")]
fn a_process_that_does_not_say_where_it_listens_fails() {
    let mut command = std::process::Command::new("sh");
    command.args(["-c", "echo 'error: no'; exec sleep 30"]);
    Process::start(command);
}
