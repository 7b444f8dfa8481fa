//! A Rust client for an ssehub hub: [`Client::publish`] events and [`Client::subscribe`] to
//! topics with a reconnecting, resuming event stream that behaves like a browser's
//! `EventSource` (see `docs/http-api.md` for the wire contract).
//!
//! ```no_run
//! # async fn demo() -> Result<(), ssehub_client::Error> {
//! use ssehub_client::{Client, Publish, Subscription};
//!
//! let client = Client::new("http://127.0.0.1:8080")?;
//! let mut events = client.subscribe(Subscription::new(["news"]));
//! client.publish(&Publish::new("news", "hello")).await?;
//! while let Some(event) = events.next().await {
//!     let event = event?;
//!     println!("{} {}: {}", event.id, event.event, event.data);
//! }
//! # Ok(())
//! # }
//! ```
//!
//! The wire format is parsed by `ssehub_core::Parser`, the same code the hub's tests use.

mod backoff;
mod error;
mod publish;
mod subscribe;

#[cfg(test)]
mod fake_hub;

use std::time::Duration;

use reqwest::Url;
use serde::Deserialize;

pub use error::Error;
pub use publish::{Publish, Published};
pub use subscribe::{
    SubEvent, Subscriber, Subscription, DEFAULT_IDLE_TIMEOUT, DEFAULT_MAX_BACKOFF, DEFAULT_RETRY,
    PRESENCE_EVENT, RESET_EVENT,
};

/// How long a publish may take, end to end, unless [`Client::with_timeout`] says otherwise.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(30);

/// Largest answer body read from the hub (errors, publish answers): they are a few hundred
/// bytes, and a misdirected URL must not make the client buffer a download.
const MAX_ANSWER_BODY: usize = 64 * 1024;

/// A handle on one hub. Cheap to clone; clones share one connection pool.
#[derive(Clone, Debug)]
pub struct Client {
    http: reqwest::Client,
    /// The hub's base URL, its path ending in `/` so endpoints join under it.
    base: Url,
    /// The whole-request timeout of publishes (never applied to event streams).
    timeout: Duration,
}

impl Client {
    /// A client for the hub at `hub_url`, e.g. `http://127.0.0.1:8080` (a path prefix is kept:
    /// `http://host/hub` publishes to `http://host/hub/publish`). Only `http` URLs: this
    /// build carries no TLS stack.
    pub fn new(hub_url: &str) -> Result<Client, Error> {
        let mut base =
            Url::parse(hub_url).map_err(|e| Error::builder(format!("hub URL {hub_url:?}: {e}")))?;
        match base.scheme() {
            "http" => {}
            "https" => {
                return Err(Error::builder(format!(
                    "hub URL {hub_url:?}: https is not supported by this build (no TLS)"
                )))
            }
            other => {
                return Err(Error::builder(format!(
                    "hub URL {hub_url:?}: scheme {other:?} is not http"
                )))
            }
        }
        if base.query().is_some() || base.fragment().is_some() {
            return Err(Error::builder(format!(
                "hub URL {hub_url:?}: a hub URL has no query or fragment"
            )));
        }
        if !base.path().ends_with('/') {
            let path = format!("{}/", base.path());
            base.set_path(&path);
        }
        let http = reqwest::Client::builder()
            .user_agent(concat!("ssehub-client/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(Error::transport)?;
        Ok(Client {
            http,
            base,
            timeout: DEFAULT_TIMEOUT,
        })
    }

    /// Sets the whole-request timeout for publishes (event streams use
    /// [`Subscription::idle_timeout`] instead).
    pub fn with_timeout(mut self, timeout: Duration) -> Client {
        self.timeout = timeout;
        self
    }

    /// The hub's base URL, as normalised by [`Client::new`].
    pub fn hub_url(&self) -> &str {
        self.base.as_str()
    }

    /// The URL of an endpoint under the hub's base URL.
    fn endpoint(&self, path: &str) -> Url {
        let mut url = self.base.clone();
        url.path_segments_mut()
            .expect("Client::new refuses URLs that cannot be a base")
            .pop_if_empty()
            .push(path);
        url
    }
}

/// Turns a refused request into an [`Error`] with the status and the hub's JSON
/// `{"error", "field"}`, when the body is one.
async fn read_hub_error(mut response: reqwest::Response) -> Error {
    #[derive(Deserialize)]
    struct HubError {
        error: Option<String>,
        field: Option<String>,
    }
    let status = response.status().as_u16();
    let body = read_body(&mut response).await.unwrap_or_default();
    match serde_json::from_slice::<HubError>(&body) {
        Ok(e) => Error::refused(status, e.error, e.field),
        Err(_) => Error::refused(status, None, None),
    }
}

/// Reads a short answer body, up to [`MAX_ANSWER_BODY`] bytes; a longer one is cut there.
async fn read_body(response: &mut reqwest::Response) -> Result<Vec<u8>, Error> {
    let mut body = Vec::new();
    while let Some(chunk) = response.chunk().await.map_err(Error::transport)? {
        body.extend_from_slice(&chunk);
        if body.len() > MAX_ANSWER_BODY {
            break;
        }
    }
    Ok(body)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn endpoints_join_under_the_base() {
        let c = Client::new("http://127.0.0.1:8080").unwrap();
        assert_eq!(c.hub_url(), "http://127.0.0.1:8080/");
        assert_eq!(
            c.endpoint("publish").as_str(),
            "http://127.0.0.1:8080/publish"
        );
        let c = Client::new("http://h:1/prefix").unwrap();
        assert_eq!(c.endpoint("events").as_str(), "http://h:1/prefix/events");
        let c = Client::new("http://h:1/prefix/").unwrap();
        assert_eq!(c.endpoint("events").as_str(), "http://h:1/prefix/events");
    }

    #[test]
    fn bad_hub_urls_are_refused() {
        for url in [
            "",
            "127.0.0.1:8080",
            "ftp://h/",
            "https://h/",
            "http://h/?a=1",
            "mailto:x@y",
        ] {
            let e = Client::new(url).unwrap_err();
            assert!(e.is_builder(), "{url}: {e}");
        }
    }
}
