//! Subscribing: a reconnecting, resuming event stream over `GET /events`, with a browser's
//! `EventSource` rules (WHATWG HTML §9.2) as the default policy.
//!
//! One [`Subscriber`] makes one connection at a time. Its life:
//! connect → (200 + `text/event-stream`) read and parse → the stream ends or breaks → wait →
//! connect again with `Last-Event-ID`. A 204 ends it quietly, any other answer that is not a
//! usable 200 ends it with an error (unless [`Subscription::retry_server_errors`] asks to
//! retry 5xx and 429).

use std::collections::VecDeque;
use std::time::Duration;

use reqwest::header::{HeaderValue, ACCEPT, CACHE_CONTROL, CONTENT_TYPE, RETRY_AFTER};
use reqwest::{Response, StatusCode, Url};
use serde::Serialize;
use ssehub_core::{Parser, ParserItem};
use tokio::time::Instant;

use crate::backoff::reconnect_delay;
use crate::{read_hub_error, Client, Error};

/// The control event sent before a replay that could not start where the client asked.
pub const RESET_EVENT: &str = "ssehub-reset";
/// The control event telling who joined or left a topic (with `presence`).
pub const PRESENCE_EVENT: &str = "ssehub-presence";

/// The reconnection time until the hub sends `retry:` (Chromium's default).
pub const DEFAULT_RETRY: Duration = Duration::from_millis(3000);
/// The longest wait the back-off grows to after failed attempts.
pub const DEFAULT_MAX_BACKOFF: Duration = Duration::from_secs(30);
/// Three of the hub's default 15 s heartbeats: silence that long means a dead connection.
pub const DEFAULT_IDLE_TIMEOUT: Duration = Duration::from_secs(45);
/// A connection that lasted this long, or delivered an event, was healthy: the back-off
/// starts again from the server's `retry`.
const DEFAULT_HEALTHY_AFTER: Duration = Duration::from_secs(5);

/// The longest wait before an attempt, whatever `retry:` or `Retry-After` asked for: a
/// clock cannot represent every `u64` of milliseconds, and a day is already "never" for a
/// subscriber.
const MAX_WAIT: Duration = Duration::from_secs(24 * 60 * 60);
/// The Content-Type essence an event stream must have.
const EVENT_STREAM: &str = "text/event-stream";

/// What to subscribe to and how to behave. Build with [`Subscription::new`] or struct
/// update syntax from `Subscription::default()`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Subscription {
    /// The topics (at least one; the hub checks the names).
    pub topics: Vec<String>,
    /// Resume after this event id: sent as `Last-Event-ID` on the first connection.
    pub last_event_id: Option<String>,
    /// Also receive `ssehub-presence` events for the topics.
    pub presence: bool,
    /// Retry 5xx and 429 answers with back-off (honouring `Retry-After` in seconds) instead
    /// of stopping as a browser does.
    pub retry_server_errors: bool,
    /// A connection silent this long (no byte, not even a heartbeat) is dropped and
    /// reconnected; also bounds the wait for the answer's headers. `None`: wait forever.
    pub idle_timeout: Option<Duration>,
    /// The reconnection time until the hub sends `retry:`.
    pub initial_retry: Duration,
    /// The cap of the exponential back-off after failed attempts.
    pub max_backoff: Duration,
    /// Give up (with the last attempt's error) after this many failed attempts in a row.
    /// `None`: keep trying, as a browser does.
    pub max_failed_attempts: Option<u32>,
    /// A connection that lasted this long, or delivered an event, counts as healthy and
    /// resets the back-off.
    pub healthy_after: Duration,
    /// Also hand out, as non-terminal `Err` items, why each connection ended or attempt
    /// failed before reconnecting (for logging; [`Subscriber::is_closed`] stays false).
    pub report_reconnects: bool,
    /// Discard (skip) events larger than this many bytes. `None`: no limit, as a browser.
    pub max_event_size: Option<usize>,
}

impl Default for Subscription {
    fn default() -> Subscription {
        Subscription {
            topics: Vec::new(),
            last_event_id: None,
            presence: false,
            retry_server_errors: false,
            idle_timeout: Some(DEFAULT_IDLE_TIMEOUT),
            initial_retry: DEFAULT_RETRY,
            max_backoff: DEFAULT_MAX_BACKOFF,
            max_failed_attempts: None,
            healthy_after: DEFAULT_HEALTHY_AFTER,
            report_reconnects: false,
            max_event_size: None,
        }
    }
}

impl Subscription {
    /// A subscription to `topics` with the default policy.
    pub fn new<I, T>(topics: I) -> Subscription
    where
        I: IntoIterator<Item = T>,
        T: Into<String>,
    {
        Subscription {
            topics: topics.into_iter().map(Into::into).collect(),
            ..Subscription::default()
        }
    }
}

/// An event as a browser's `MessageEvent` would show it. Control events (`ssehub-reset`,
/// `ssehub-presence`) come as ordinary events under their names.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct SubEvent {
    /// The last event id at dispatch, as `MessageEvent.lastEventId`: control events carry
    /// no `id:` line, so they show the id of the event before them (or `""`).
    pub id: String,
    /// The event name; `message` when the publisher named none.
    pub event: String,
    pub data: String,
}

impl SubEvent {
    /// Whether this is one of the hub's control events rather than a published one.
    pub fn is_control(&self) -> bool {
        self.event == RESET_EVENT || self.event == PRESENCE_EVENT
    }
}

/// A live subscription. Call [`Subscriber::next`] (or use [`Subscriber::into_stream`]);
/// dropping it closes the connection.
#[derive(Debug)]
pub struct Subscriber {
    http: reqwest::Client,
    /// `GET /events?topic=...`, built once.
    url: Result<Url, Error>,
    config: Subscription,
    /// The open connection, if any.
    connection: Option<Connection>,
    /// One parser for the subscription's life: [`Parser::finish`] at the end of each
    /// connection discards its partial event and keeps the last event id.
    parser: Parser,
    /// Parsed events not yet handed out.
    ready: VecDeque<SubEvent>,
    /// The reconnection time: the last `retry:` from the hub, else the configured one.
    retry: Duration,
    /// Failed attempts since the last healthy connection.
    failures: u32,
    /// When the next attempt may start; `None` for at once.
    next_attempt: Option<Instant>,
    /// Why the last attempt failed, for when the subscriber gives up.
    last_failure: Option<Error>,
    /// Requests sent.
    attempts: u64,
    /// Requests answered with a usable event stream.
    connections: u64,
    /// Set once the subscription has ended for good.
    done: bool,
}

/// One open event stream.
#[derive(Debug)]
struct Connection {
    response: Response,
    opened: Instant,
    delivered_event: bool,
}

/// How one connection attempt went.
enum Attempt {
    Open(Connection),
    /// 204: the hub says stop.
    Stop,
    /// Worth another try after the wait (`Retry-After`, when the hub gave one).
    Retry(Error, Option<Duration>),
    /// Stop with this error.
    Fatal(Error),
}

/// What reading from the open connection gave.
enum Read {
    Bytes(bytes::Bytes),
    End(Error),
}

impl Client {
    /// Starts a subscription. Nothing is sent until the first [`Subscriber::next`].
    pub fn subscribe(&self, subscription: Subscription) -> Subscriber {
        let url = self.events_url(&subscription);
        let mut parser = Parser::new();
        if let Some(id) = &subscription.last_event_id {
            parser = parser.with_last_event_id(id);
        }
        if let Some(limit) = subscription.max_event_size {
            parser = parser.with_max_event_size(limit);
        }
        Subscriber {
            http: self.http.clone(),
            url,
            retry: subscription.initial_retry,
            config: subscription,
            connection: None,
            parser,
            ready: VecDeque::new(),
            failures: 0,
            next_attempt: None,
            last_failure: None,
            attempts: 0,
            connections: 0,
            done: false,
        }
    }

    fn events_url(&self, subscription: &Subscription) -> Result<Url, Error> {
        if let Some(id) = &subscription.last_event_id {
            if id.contains(['\r', '\n', '\0']) {
                return Err(Error::builder(
                    "last_event_id contains CR, LF or NUL, which no event id can",
                ));
            }
        }
        let mut url = self.endpoint("events");
        {
            let mut query = url.query_pairs_mut();
            for topic in &subscription.topics {
                query.append_pair("topic", topic);
            }
            if subscription.presence {
                query.append_pair("presence", "1");
            }
        }
        Ok(url)
    }
}

impl Subscriber {
    /// The next event; `None` once the subscription has ended for good (the hub answered
    /// 204, or a terminal error was returned before). An `Err` is terminal (and
    /// [`Subscriber::is_closed`] true): a non-200 answer (unless retried by policy), a wrong
    /// Content-Type, a bad request, or giving up after
    /// [`Subscription::max_failed_attempts`]. Network failures and ended streams are
    /// retried inside, out of sight, unless [`Subscription::report_reconnects`] asks to see
    /// them as non-terminal `Err` items.
    ///
    /// Cancel-safe: dropping the future loses no event.
    pub async fn next(&mut self) -> Option<Result<SubEvent, Error>> {
        loop {
            if let Some(event) = self.ready.pop_front() {
                return Some(Ok(event));
            }
            if self.done {
                return None;
            }
            if self.connection.is_some() {
                match self.read().await {
                    Read::Bytes(chunk) => self.feed(&chunk),
                    Read::End(why) => {
                        if let Some(report) = self.connection_ended(why) {
                            return Some(Err(report));
                        }
                    }
                }
                continue;
            }
            if self.failures > 0 {
                if let Some(max) = self.config.max_failed_attempts {
                    if self.failures >= max {
                        self.done = true;
                        let e = self.last_failure.take().unwrap_or_else(|| {
                            Error::network(format!("gave up after {max} failed attempts"))
                        });
                        return Some(Err(e));
                    }
                }
            }
            if let Some(at) = self.next_attempt {
                tokio::time::sleep_until(at).await;
                self.next_attempt = None;
            }
            match self.connect().await {
                Attempt::Open(connection) => self.connection = Some(connection),
                Attempt::Stop => self.done = true,
                Attempt::Fatal(e) => {
                    self.done = true;
                    return Some(Err(e));
                }
                Attempt::Retry(e, retry_after) => {
                    self.failures = self.failures.saturating_add(1);
                    self.schedule(retry_after);
                    if let Some(report) = self.failed(e) {
                        return Some(Err(report));
                    }
                }
            }
        }
    }

    /// The subscription as a `Stream` of the same items as [`Subscriber::next`].
    pub fn into_stream(
        self,
    ) -> impl futures_util::Stream<Item = Result<SubEvent, Error>> + Send + Unpin {
        Box::pin(futures_util::stream::unfold(self, |mut s| async move {
            s.next().await.map(|item| (item, s))
        }))
    }

    /// Ends the subscription: closes the connection; `next` returns `None` from now on.
    pub fn close(&mut self) {
        self.connection = None;
        self.ready.clear();
        self.done = true;
    }

    /// The last event id seen (what the next connection sends as `Last-Event-ID`).
    pub fn last_event_id(&self) -> &str {
        self.parser.last_event_id()
    }

    /// The current reconnection time (the hub's last `retry:`, else the configured one).
    pub fn retry(&self) -> Duration {
        self.retry
    }

    /// How many requests were sent so far.
    pub fn attempts(&self) -> u64 {
        self.attempts
    }

    /// How many connections were opened (answered 200 with an event stream) so far.
    pub fn connections(&self) -> u64 {
        self.connections
    }

    /// Whether the subscription has ended for good.
    pub fn is_closed(&self) -> bool {
        self.done
    }

    async fn connect(&mut self) -> Attempt {
        let url = match &self.url {
            Ok(url) => url.clone(),
            Err(_) => {
                let placeholder = Err(Error::builder("subscription already failed"));
                let e = std::mem::replace(&mut self.url, placeholder);
                return Attempt::Fatal(e.expect_err("matched Err above"));
            }
        };
        let mut request = self
            .http
            .get(url)
            .header(ACCEPT, HeaderValue::from_static(EVENT_STREAM))
            .header(CACHE_CONTROL, HeaderValue::from_static("no-cache"));
        let last_event_id = self.parser.last_event_id();
        if !last_event_id.is_empty() {
            request = request.header("last-event-id", last_event_id);
        }
        self.attempts += 1;
        let response = match self.config.idle_timeout {
            Some(limit) => match tokio::time::timeout(limit, request.send()).await {
                Ok(sent) => sent,
                Err(_) => return Attempt::Retry(Error::timeout(), None),
            },
            None => request.send().await,
        };
        let response = match response {
            Ok(response) => response,
            Err(e) => {
                let e = Error::transport(e);
                return if e.is_builder() {
                    Attempt::Fatal(e)
                } else {
                    Attempt::Retry(e, None)
                };
            }
        };
        let status = response.status();
        if status == StatusCode::NO_CONTENT {
            return Attempt::Stop;
        }
        if status != StatusCode::OK {
            let retryable = self.config.retry_server_errors
                && (status.is_server_error() || status == StatusCode::TOO_MANY_REQUESTS);
            let retry_after = retry_after(&response);
            let e = read_hub_error(response).await;
            return if retryable {
                Attempt::Retry(e, retry_after)
            } else {
                Attempt::Fatal(e)
            };
        }
        let content_type = response.headers().get(CONTENT_TYPE);
        if !content_type.is_some_and(is_event_stream) {
            let found = content_type.map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned());
            return Attempt::Fatal(Error::content_type(found));
        }
        self.connections += 1;
        Attempt::Open(Connection {
            response,
            opened: Instant::now(),
            delivered_event: false,
        })
    }

    async fn read(&mut self) -> Read {
        let idle_timeout = self.config.idle_timeout;
        let Some(connection) = &mut self.connection else {
            return Read::End(Error::network("no connection"));
        };
        let chunk = match idle_timeout {
            Some(limit) => match tokio::time::timeout(limit, connection.response.chunk()).await {
                Ok(chunk) => chunk,
                Err(_) => return Read::End(Error::timeout()),
            },
            None => connection.response.chunk().await,
        };
        match chunk {
            Ok(Some(bytes)) => Read::Bytes(bytes),
            Ok(None) => Read::End(Error::network("the hub ended the stream")),
            Err(e) => Read::End(Error::transport(e)),
        }
    }

    fn feed(&mut self, chunk: &[u8]) {
        let Some(connection) = &mut self.connection else {
            return;
        };
        let mut items = Vec::new();
        self.parser.feed(chunk, &mut items);
        for item in items {
            match item {
                ParserItem::Event(e) => {
                    connection.delivered_event = true;
                    self.ready.push_back(SubEvent {
                        id: e.id,
                        event: e.event,
                        data: e.data,
                    });
                }
                ParserItem::Retry(ms) => self.retry = Duration::from_millis(ms),
                ParserItem::Comment(_) => {}
            }
        }
    }

    /// The open connection ended (end of body, network error or idle timeout): schedule the
    /// next attempt, backing off if the connection never became healthy.
    /// Returns the error to hand out when [`Subscription::report_reconnects`] is set.
    fn connection_ended(&mut self, why: Error) -> Option<Error> {
        let connection = self.connection.take()?;
        self.parser.finish();
        let healthy =
            connection.delivered_event || connection.opened.elapsed() >= self.config.healthy_after;
        if healthy {
            self.failures = 0;
            self.last_failure = None;
        } else {
            self.failures = self.failures.saturating_add(1);
        }
        self.schedule(None);
        if healthy {
            self.config.report_reconnects.then_some(why)
        } else {
            self.failed(why)
        }
    }

    /// Records why an attempt failed: kept for giving up later, or handed back to be
    /// reported at once when [`Subscription::report_reconnects`] is set.
    fn failed(&mut self, why: Error) -> Option<Error> {
        if self.config.report_reconnects {
            self.last_failure = None;
            Some(why)
        } else {
            self.last_failure = Some(why);
            None
        }
    }

    fn schedule(&mut self, at_least: Option<Duration>) {
        let delay = reconnect_delay(
            self.retry,
            self.failures,
            self.config.max_backoff,
            fastrand::f64(),
        );
        let delay = at_least
            .map_or(delay, |floor| delay.max(floor))
            .min(MAX_WAIT);
        self.next_attempt = Some(Instant::now() + delay);
    }
}

/// Whether a Content-Type's essence is `text/event-stream` (case-insensitive, parameters
/// ignored), as Fetch's MIME sniffing rules decide for `EventSource`.
fn is_event_stream(value: &HeaderValue) -> bool {
    let Ok(value) = value.to_str() else {
        return false;
    };
    let essence = value.split(';').next().unwrap_or("");
    essence
        .trim_matches([' ', '\t'])
        .eq_ignore_ascii_case(EVENT_STREAM)
}

/// A `Retry-After` in seconds (the HTTP-date form is ignored).
fn retry_after(response: &Response) -> Option<Duration> {
    let value = response.headers().get(RETRY_AFTER)?.to_str().ok()?;
    value.trim().parse().ok().map(Duration::from_secs)
}

#[cfg(test)]
mod tests;
