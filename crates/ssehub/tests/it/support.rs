//! Test support: a real hub on an ephemeral port, and an SSE reader over a real socket.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use futures_util::StreamExt;
use serde_json::Value;
use ssehub::{Config, Hub};
use ssehub_core::{MemoryStore, ParsedEvent, Parser, ParserItem, Retention, Store};
use tokio::net::TcpListener;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

/// How long a test waits for something that should happen promptly.
pub const WAIT: Duration = Duration::from_secs(5);

pub struct TestHub {
    pub addr: SocketAddr,
    pub http: reqwest::Client,
    /// The hub itself, for what no endpoint triggers at once (periodic sweeps).
    pub hub: Arc<Hub>,
    stop: Option<oneshot::Sender<()>>,
    task: Option<JoinHandle<std::io::Result<()>>>,
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
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("addr");
        let hub = Hub::new(
            Config {
                listen: addr,
                ..config
            },
            store,
        );
        let (stop, stopped) = oneshot::channel::<()>();
        let task = tokio::spawn(ssehub::serve(listener, hub.clone(), async {
            let _ = stopped.await;
        }));
        TestHub {
            addr,
            http: reqwest::Client::new(),
            hub: hub.clone(),
            stop: Some(stop),
            task: Some(task),
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{}", self.addr, path)
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
        let deadline = tokio::time::Instant::now() + WAIT;
        loop {
            let info = self
                .get_json(&format!("/topics/{}", topic.replace('/', "%2F")))
                .await;
            if info["subscribers"].as_u64() == Some(n) {
                return;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "topic {topic}: {info}, wanted {n} subscribers"
            );
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }

    /// Stops the hub the way a signal does and returns how `serve` ended.
    pub async fn stop(mut self) -> std::io::Result<()> {
        let _ = self.stop.take().expect("running").send(());
        self.task
            .take()
            .expect("running")
            .await
            .expect("serve task")
    }
}

impl Drop for TestHub {
    fn drop(&mut self) {
        if let Some(task) = &self.task {
            task.abort();
        }
    }
}

/// The value of the `/metrics` line that starts with `name` (name and labels, then a space).
pub fn metric(text: &str, name: &str) -> u64 {
    text.lines()
        .find_map(|l| l.strip_prefix(name))
        .unwrap_or_else(|| panic!("no {name} in /metrics"))
        .trim()
        .parse()
        .unwrap()
}

/// An SSE response read incrementally with the core parser.
pub struct Sse {
    pub status: u16,
    pub headers: reqwest::header::HeaderMap,
    body: futures_util::stream::BoxStream<'static, reqwest::Result<bytes::Bytes>>,
    parser: Parser,
    pending: std::collections::VecDeque<ParserItem>,
    pub ended: bool,
}

impl Sse {
    pub fn new(response: reqwest::Response) -> Sse {
        Sse {
            status: response.status().as_u16(),
            headers: response.headers().clone(),
            body: response.bytes_stream().boxed(),
            parser: Parser::new(),
            pending: Default::default(),
            ended: false,
        }
    }

    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }

    /// The next parsed item, `None` at the end of the stream. Panics after `WAIT`.
    pub async fn item(&mut self) -> Option<ParserItem> {
        tokio::time::timeout(WAIT, self.item_no_timeout())
            .await
            .expect("timed out waiting for the stream")
    }

    pub async fn item_no_timeout(&mut self) -> Option<ParserItem> {
        loop {
            if let Some(item) = self.pending.pop_front() {
                return Some(item);
            }
            if self.ended {
                return None;
            }
            match self.body.next().await {
                Some(Ok(chunk)) => {
                    let mut out = Vec::new();
                    self.parser.feed(&chunk, &mut out);
                    self.pending.extend(out);
                }
                Some(Err(_)) | None => {
                    self.parser.finish();
                    self.ended = true;
                }
            }
        }
    }

    /// The next event, skipping comments and retry lines. Panics at the end of the stream.
    pub async fn event(&mut self) -> ParsedEvent {
        loop {
            match self.item().await {
                Some(ParserItem::Event(e)) => return e,
                Some(_) => {}
                None => panic!("stream ended while an event was expected"),
            }
        }
    }

    /// Events up to the end of the stream.
    pub async fn rest(&mut self) -> Vec<ParsedEvent> {
        let mut events = Vec::new();
        while let Some(item) = self.item().await {
            if let ParserItem::Event(e) = item {
                events.push(e);
            }
        }
        events
    }

    /// Asserts no event arrives within `wait`.
    pub async fn quiet_for(&mut self, wait: Duration) {
        let got = tokio::time::timeout(wait, async {
            loop {
                match self.item_no_timeout().await {
                    Some(ParserItem::Event(e)) => return Some(e),
                    Some(_) => {}
                    None => return None,
                }
            }
        })
        .await;
        if let Ok(Some(e)) = got {
            panic!("unexpected event {e:?}");
        }
    }
}
