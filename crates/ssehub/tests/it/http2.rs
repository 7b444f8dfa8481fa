//! HTTP/2: many SSE streams on one h2c connection (prior knowledge), and HTTPS with ALPN
//! choosing `h2` or `http/1.1`. Streams must behave as over HTTP/1: headers, opening bytes,
//! events, heartbeats, the end at shutdown, and cleanup when the client resets a stream.

use std::time::Duration;

use hyper_util::rt::{TokioExecutor, TokioIo};
use ssehub::{Config, TlsConfig};
use ssehub_core::ParserItem;

use crate::support::{Sse, TestHub, WAIT};

/// One HTTP/2 connection to the hub, opened with prior knowledge (no upgrade, no TLS).
async fn h2c(hub: &TestHub) -> hyper::client::conn::http2::SendRequest<String> {
    let tcp = tokio::net::TcpStream::connect(hub.addr)
        .await
        .expect("connect");
    let (sender, conn) =
        hyper::client::conn::http2::handshake(TokioExecutor::new(), TokioIo::new(tcp))
            .await
            .expect("h2 handshake");
    tokio::spawn(conn);
    sender
}

/// A GET on the shared connection, read with the test SSE reader.
async fn get(
    sender: &mut hyper::client::conn::http2::SendRequest<String>,
    hub: &TestHub,
    path: &str,
) -> Sse {
    sender.ready().await.expect("connection ready");
    let request = hyper::Request::get(hub.url(path))
        .body(String::new())
        .expect("request");
    let response = sender.send_request(request).await.expect("response");
    assert_eq!(response.version(), hyper::Version::HTTP_2);
    let response = response.map(reqwest::Body::wrap);
    Sse::new(reqwest::Response::from(response))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn several_streams_share_one_h2c_connection() {
    let hub = TestHub::with_config(Config {
        retry: Duration::from_millis(2000),
        heartbeat: Duration::from_millis(200),
        // Longer than the wait below: serve must return because the connection finished.
        shutdown_grace: Duration::from_secs(60),
        ..Config::default()
    })
    .await;
    let mut sender = h2c(&hub).await;
    let mut streams = Vec::new();
    for _ in 0..8 {
        streams.push(get(&mut sender, &hub, "/events/many").await);
    }
    hub.wait_subscribers("many", 8).await;
    for sse in &mut streams {
        assert_eq!(sse.status, 200);
        assert_eq!(sse.header("content-type"), Some("text/event-stream"));
        assert_eq!(sse.header("cache-control"), Some("no-cache"));
        assert_eq!(sse.header("x-accel-buffering"), Some("no"));
        assert_eq!(sse.item().await, Some(ParserItem::Comment(" ok".into())));
        assert!(
            matches!(sse.item().await, Some(ParserItem::Retry(ms)) if (2000..=2200).contains(&ms))
        );
    }
    let id = hub.publish("many", "to all").await;
    for sse in &mut streams {
        let event = sse.event().await;
        assert_eq!(event.data, "to all");
        assert_eq!(event.id, id);
    }
    // The hub-wide heartbeat reaches h2 streams too.
    let heartbeat = tokio::time::timeout(WAIT, async {
        loop {
            if let Some(ParserItem::Comment(c)) = streams[0].item().await {
                if c != " ok" {
                    return c;
                }
            }
        }
    })
    .await
    .expect("a heartbeat");
    assert!(!heartbeat.is_empty());

    // A stream the client resets is cleaned up; the others live on.
    drop(streams.pop());
    hub.wait_subscribers("many", 7).await;
    hub.publish("many", "still here").await;
    for sse in &mut streams {
        let event = loop {
            let event = sse.event().await;
            if event.data != "to all" {
                break event;
            }
        };
        assert_eq!(event.data, "still here");
    }

    // Shutdown ends every stream on the connection, and serve returns.
    tokio::time::timeout(WAIT * 3, hub.stop())
        .await
        .expect("shutdown in time")
        .expect("serve");
    for sse in &mut streams {
        let rest = sse.rest().await;
        assert!(rest.is_empty(), "{rest:?}");
        assert!(sse.ended());
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn h2c_serves_the_api_and_the_client_address() {
    // Publishing without keys is open to loopback clients only: it works over h2c because
    // the connection's address reaches the handler.
    let hub = TestHub::start().await;
    let mut sender = h2c(&hub).await;
    sender.ready().await.expect("ready");
    let request = hyper::Request::post(hub.url("/publish"))
        .header("content-type", "application/json")
        .body(r#"{"topic":"x","data":"over h2"}"#.to_owned())
        .expect("request");
    let response = sender.send_request(request).await.expect("publish");
    assert_eq!(response.status(), 200);
    assert_eq!(response.version(), hyper::Version::HTTP_2);
    // HTTP/1 still works on the same listener, the direct path included.
    let mut sse = hub
        .subscribe("/events/x", &[("last-event-id", "0-0")])
        .await;
    assert_eq!(sse.header("connection"), Some("close"));
    // An unknown id: the reset control event, then the whole history.
    let first = sse.event().await;
    assert_eq!(first.event, ssehub::RESET_EVENT);
    assert_eq!(sse.event().await.data, "over h2");
}

/// A self-signed certificate for 127.0.0.1 and localhost: (certificate PEM, key PEM).
pub fn self_signed() -> (String, String) {
    let cert = rcgen::generate_simple_self_signed(vec!["127.0.0.1".into(), "localhost".into()])
        .expect("certificate");
    (cert.cert.pem(), cert.signing_key.serialize_pem())
}

fn https_client(cert_pem: &str, http1: bool) -> reqwest::Client {
    let builder = reqwest::Client::builder()
        .use_rustls_tls()
        .tls_built_in_root_certs(false)
        .add_root_certificate(reqwest::Certificate::from_pem(cert_pem.as_bytes()).expect("pem"));
    let builder = if http1 { builder.http1_only() } else { builder };
    builder.build().expect("client")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tls_negotiates_h2_by_alpn_and_streams_work() {
    let (cert, key) = self_signed();
    let tls = TlsConfig::from_pem(cert.as_bytes(), key.as_bytes()).expect("tls config");
    let hub = TestHub::with_config(Config {
        tls: Some(tls),
        ..Config::default()
    })
    .await;
    let base = format!("https://{}", hub.addr);
    for http1 in [false, true] {
        let client = https_client(&cert, http1);
        let response = client
            .get(format!("{base}/events/secure"))
            .send()
            .await
            .expect("subscribe over TLS");
        let expected = if http1 {
            reqwest::Version::HTTP_11
        } else {
            reqwest::Version::HTTP_2
        };
        assert_eq!(response.version(), expected, "ALPN chose the protocol");
        let mut sse = Sse::new(response);
        assert_eq!(sse.status, 200);
        assert_eq!(sse.header("content-type"), Some("text/event-stream"));
        assert_eq!(sse.item().await, Some(ParserItem::Comment(" ok".into())));
        let published = client
            .post(format!("{base}/publish"))
            .json(&serde_json::json!({"topic": "secure", "data": format!("http1={http1}")}))
            .send()
            .await
            .expect("publish over TLS");
        assert_eq!(published.status(), 200);
        assert_eq!(published.version(), expected);
        assert_eq!(sse.event().await.data, format!("http1={http1}"));
    }
    // Plain HTTP on a TLS listener gets nowhere.
    let plain = reqwest::Client::new()
        .get(format!("http://{}/healthz", hub.addr))
        .timeout(WAIT)
        .send()
        .await;
    assert!(plain.is_err() || !plain.unwrap().status().is_success());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_preface_split_over_writes_is_still_http2() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let hub = TestHub::start().await;
    let mut tcp = tokio::net::TcpStream::connect(hub.addr)
        .await
        .expect("connect");
    // The first half alone ends in a blank line, like an HTTP/1 head.
    tcp.write_all(b"PRI * HTTP/2.0\r\n\r\n")
        .await
        .expect("write");
    tokio::time::sleep(Duration::from_millis(50)).await;
    tcp.write_all(b"SM\r\n\r\n").await.expect("write");
    // An empty SETTINGS frame.
    tcp.write_all(&[0, 0, 0, 4, 0, 0, 0, 0, 0])
        .await
        .expect("write");
    let mut frame_head = [0u8; 9];
    tokio::time::timeout(WAIT, tcp.read_exact(&mut frame_head))
        .await
        .expect("an answer in time")
        .expect("read");
    assert_eq!(
        frame_head[3], 4,
        "the server's first frame is SETTINGS: {frame_head:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn urls_built_from_a_tls_request_say_https() {
    let (cert, key) = self_signed();
    let tls = TlsConfig::from_pem(cert.as_bytes(), key.as_bytes()).expect("tls config");
    let hub = TestHub::with_config(Config {
        tls: Some(tls),
        mercure_dialect: ssehub::Dialect::V1,
        ..Config::default()
    })
    .await;
    for http1 in [false, true] {
        let metadata: serde_json::Value = https_client(&cert, http1)
            .get(format!(
                "https://{}/.well-known/oauth-protected-resource/.well-known/mercure",
                hub.addr
            ))
            // A client cannot make the hub claim plain http on a TLS connection.
            .header("x-forwarded-proto", "http")
            .send()
            .await
            .expect("metadata")
            .json()
            .await
            .expect("json");
        assert_eq!(
            metadata["resource"],
            format!("https://{}/.well-known/mercure", hub.addr),
            "http1={http1}"
        );
    }
}
