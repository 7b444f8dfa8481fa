//! Test support of the hub's own tests: a real hub in-process on an ephemeral port, and its
//! SSE responses over real sockets. What other crates' tests share too is in
//! ssehub-test-support.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use serde_json::Value;
use ssehub::{Config, Hub};
use ssehub_core::{MemoryStore, Retention, Store};
pub use ssehub_test_support::metric;
use ssehub_test_support::{wait_until, EventStream, HubServer};

/// How long a test waits for something that should happen promptly.
pub const WAIT: Duration = Duration::from_secs(5);

/// A real hub on an ephemeral port with an HTTP client, and the requests tests make of it.
pub struct TestHub {
    pub addr: SocketAddr,
    pub http: reqwest::Client,
    /// The hub itself, for what no endpoint triggers at once (periodic sweeps).
    pub hub: Arc<Hub>,
    server: HubServer,
}

impl TestHub {
    pub async fn start() -> TestHub {
        Self::with_config(Config::default()).await
    }

    pub async fn with_config(config: Config) -> TestHub {
        let store: Arc<dyn Store> = Arc::new(MemoryStore::new(Retention::events(config.history)));
        Self::with_store(config, store).await
    }

    pub async fn with_store(config: Config, store: Arc<dyn Store>) -> TestHub {
        let server = HubServer::start(([127, 0, 0, 1], 0).into(), config, store).await;
        TestHub {
            addr: server.addr,
            http: reqwest::Client::new(),
            hub: server.hub.clone(),
            server,
        }
    }

    pub fn url(&self, path: &str) -> String {
        self.server.url(path)
    }

    /// Publishes JSON; returns the status and the answer body.
    pub async fn post_json(&self, body: Value) -> (u16, Value) {
        let response = self
            .http
            .post(self.url("/publish"))
            .json(&body)
            .send()
            .await
            .expect("publish");
        let status = response.status().as_u16();
        (status, response.json().await.unwrap_or(Value::Null))
    }

    /// Publishes and insists on success; returns the event id.
    pub async fn publish(&self, topic: &str, data: &str) -> String {
        let (status, body) = self
            .post_json(serde_json::json!({"topic": topic, "data": data}))
            .await;
        assert_eq!(status, 200, "publish failed: {body}");
        body["id"].as_str().expect("id").to_owned()
    }

    /// The `/metrics` text.
    pub async fn metrics(&self) -> String {
        let response = self
            .http
            .get(self.url("/metrics"))
            .send()
            .await
            .expect("metrics");
        response.text().await.expect("metrics text")
    }

    pub async fn get_json(&self, path: &str) -> Value {
        self.http
            .get(self.url(path))
            .send()
            .await
            .expect("get")
            .json()
            .await
            .expect("json")
    }

    /// Opens an SSE stream; `headers` are extra request headers.
    pub async fn subscribe(&self, path: &str, headers: &[(&str, &str)]) -> Sse {
        let mut request = self.http.get(self.url(path));
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        let response = request.send().await.expect("subscribe");
        Sse::new(response)
    }

    /// Waits until the hub counts `n` subscribers on `topic`.
    pub async fn wait_subscribers(&self, topic: &str, n: u64) {
        let path = format!("/topics/{}", topic.replace('/', "%2F"));
        wait_until(WAIT, Duration::from_millis(10), || async {
            let info = self.get_json(&path).await;
            if info["subscribers"].as_u64() == Some(n) {
                Ok(())
            } else {
                Err(format!("topic {topic}: {info}, wanted {n} subscribers"))
            }
        })
        .await
    }

    /// Stops the hub the way a signal does and returns how `serve` ended.
    pub async fn stop(self) -> std::io::Result<()> {
        self.server.stop().await
    }
}

/// An SSE response: its status and headers, and its body read as an [`EventStream`]
/// (whose methods it has: `event`, `item`, `rest`, `quiet_for`, `ended` ...), each item
/// within `WAIT`.
pub struct Sse {
    pub status: u16,
    pub headers: reqwest::header::HeaderMap,
    stream: EventStream,
}

impl Sse {
    pub fn new(response: reqwest::Response) -> Sse {
        Sse {
            status: response.status().as_u16(),
            headers: response.headers().clone(),
            stream: EventStream::new(response.bytes_stream(), WAIT),
        }
    }

    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }
}

impl std::ops::Deref for Sse {
    type Target = EventStream;
    fn deref(&self) -> &EventStream {
        &self.stream
    }
}

impl std::ops::DerefMut for Sse {
    fn deref_mut(&mut self) -> &mut EventStream {
        &mut self.stream
    }
}
