//! The direct stream path: a subscribe request's head read into a buffer dropped at once,
//! answered close-delimited by the same code as the axum route (`http::prepare_stream`),
//! then one [`Streaming`] future per connection that drains the outbox into the socket,
//! one `write` per wake-up. See the module above for why.

use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use axum::http::{HeaderMap, HeaderName, HeaderValue};
use bytes::{Buf, Bytes};
use http_body::Body;
use percent_encoding::percent_decode_str;
use tokio::io::{AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpStream;

use super::{set_write_timeout, H2_PREFACE};
use crate::error::ApiError;
use crate::http::{prepare_stream, stream_cors_headers, STREAM_HEADERS};
use crate::hub::Hub;
use crate::mercure::{self, MercureOpened};
use crate::open::Opened;
use crate::stream::EventStream;

pub(super) async fn fixed(mut socket: TcpStream, bytes: Vec<u8>) -> io::Result<()> {
    socket.write_all(&bytes).await?;
    socket.shutdown().await
}

pub(super) fn stream(socket: TcpStream, mut head: Vec<u8>, mut body: EventStream) -> Streaming {
    set_write_timeout(&socket);
    // The response head and the opening bytes go out in one write.
    if let Some(opening) = body.take_opening() {
        head.extend_from_slice(&opening);
    }
    Streaming {
        socket,
        body,
        pending: Bytes::from(head),
        done: false,
    }
}

/// Reads until the end of the request head, or until `max` bytes, or EOF, or bytes that
/// cannot start a request.
pub(super) async fn read_head(socket: &mut TcpStream, max: usize) -> io::Result<Vec<u8>> {
    let mut buf = Vec::with_capacity(1024);
    loop {
        if head_read(&buf, max) {
            return Ok(buf);
        }
        buf.reserve(1024);
        if socket.read_buf(&mut buf).await? == 0 {
            return Ok(buf);
        }
    }
}

/// True once `buf` is all of the request head `read_head` waits for: a blank line, `max`
/// bytes, or bytes that cannot start a request.
pub(crate) fn head_read(buf: &[u8], max: usize) -> bool {
    // The HTTP/2 preface contains a blank line and is no HTTP/1 request: wait for all of
    // it before deciding.
    let partial_preface = buf.len() < H2_PREFACE.len() && H2_PREFACE.starts_with(buf);
    !partial_preface
        && (buf.len() >= max || buf.windows(4).any(|w| w == b"\r\n\r\n") || !could_be_request(buf))
}

/// False once `buf` cannot be the start of an HTTP request: stop waiting for more and let
/// hyper answer it (400) at once.
fn could_be_request(buf: &[u8]) -> bool {
    let mut headers = [httparse::EMPTY_HEADER; 64];
    match httparse::Request::new(&mut headers).parse(buf) {
        Ok(_) => true,
        // More headers than the direct path looks at is still a request; hyper decides.
        Err(httparse::Error::TooManyHeaders) => true,
        Err(_) => false,
    }
}

/// The answer of the direct path.
pub(crate) enum Answer {
    Stream { head: Vec<u8>, body: EventStream },
    Fixed(Vec<u8>),
}

/// Some(answer) when `head` is a complete `GET /events...` or `GET /.well-known/mercure`
/// request; None hands the connection to hyper.
pub(crate) fn direct_stream(hub: &Arc<Hub>, peer: SocketAddr, head: &[u8]) -> Option<Answer> {
    let mut headers = [httparse::EMPTY_HEADER; 64];
    let mut request = httparse::Request::new(&mut headers);
    let httparse::Status::Complete(consumed) = request.parse(head).ok()? else {
        return None;
    };
    if consumed != head.len() || request.method != Some("GET") {
        return None;
    }
    let target = request.path?;
    let (path, query) = match target.split_once('?') {
        Some((path, query)) => (path, Some(query)),
        None => (target, None),
    };
    if !hub.routes.is_empty() && hub.routes.claims_get(path, query) {
        // A route alias on a native path: the router serves it.
        return None;
    }
    let mercure = path == mercure::HUB_PATH;
    let path_topic = match path.strip_prefix("/events") {
        _ if mercure => None,
        Some("") => None,
        Some(rest) => {
            let encoded = rest
                .strip_prefix('/')
                .filter(|t| !t.is_empty() && !t.contains('/'))?;
            match percent_decode_str(encoded).decode_utf8() {
                Ok(topic) => Some(topic.into_owned()),
                Err(_) => {
                    let error = ApiError::field("topic", "topic is not valid UTF-8");
                    return Some(Answer::Fixed(error_bytes(&error)));
                }
            }
        }
        None => return None,
    };
    let mut map = HeaderMap::new();
    for h in request.headers.iter() {
        let (Ok(name), Ok(value)) = (
            HeaderName::from_bytes(h.name.as_bytes()),
            HeaderValue::from_bytes(h.value),
        ) else {
            return None;
        };
        map.append(name, value);
    }
    let origin = map.get("origin").and_then(|v| v.to_str().ok());
    let cors = stream_cors_headers(&hub.config.cors_origins, origin);
    if mercure {
        // A refused subscription (a bad selector, a token refused) goes to the router, which
        // answers it in Mercure's error shapes; nothing is registered before it is refused.
        let MercureOpened { opened, cursor } = mercure::open_stream(hub, query, &map).ok()?;
        let extra: Vec<_> = cursor.into_iter().collect();
        return Some(answer(
            opened,
            &mercure::MERCURE_STREAM_HEADERS,
            &extra,
            &cors,
        ));
    }
    Some(
        match prepare_stream(hub, peer, path_topic.as_deref(), query, &map) {
            Ok(opened) => answer(opened, &STREAM_HEADERS, &[], &cors),
            Err(error) => {
                let mut bytes = error_bytes(&error);
                if !cors.is_empty() {
                    // Put the CORS grant before the blank line so a page can read the error.
                    let end = bytes
                        .windows(4)
                        .position(|w| w == b"\r\n\r\n")
                        .expect("head ends")
                        + 2;
                    let mut extra = Vec::new();
                    for (name, value) in &cors {
                        push_header(&mut extra, name, value);
                    }
                    bytes.splice(end..end, extra);
                }
                Answer::Fixed(bytes)
            }
        },
    )
}

/// The answer to an opened subscription: the stream's head (its own headers, `extra`, the
/// CORS grant) and body, or a 204 (with `extra` and the grant) when there is nothing to
/// stream.
fn answer(
    opened: Opened,
    stream_headers: &[(&str, &str)],
    extra: &[(&str, String)],
    cors: &[(&str, String)],
) -> Answer {
    let (mut head, body) = match opened {
        Opened::Stream(body) => {
            let mut head = b"HTTP/1.1 200 OK\r\n".to_vec();
            for (name, value) in stream_headers {
                push_header(&mut head, name, value);
            }
            (head, Some(body))
        }
        Opened::NoContent => (b"HTTP/1.1 204 No Content\r\n".to_vec(), None),
    };
    for (name, value) in extra.iter().chain(cors) {
        push_header(&mut head, name, value);
    }
    head.extend_from_slice(b"connection: close\r\n\r\n");
    match body {
        Some(body) => Answer::Stream { head, body },
        None => Answer::Fixed(head),
    }
}

fn push_header(out: &mut Vec<u8>, name: &str, value: &str) {
    out.extend_from_slice(name.as_bytes());
    out.extend_from_slice(b": ");
    out.extend_from_slice(value.as_bytes());
    out.extend_from_slice(b"\r\n");
}

pub(super) fn error_bytes(error: &ApiError) -> Vec<u8> {
    let body = error.body();
    let mut out = format!(
        "HTTP/1.1 {}\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n",
        error.status,
        body.len()
    )
    .into_bytes();
    if let Some(secs) = error.retry_after {
        push_header(&mut out, "retry-after", &secs.to_string());
    }
    out.extend_from_slice(b"\r\n");
    out.extend_from_slice(body.as_bytes());
    out
}

/// The live part of a direct stream, as a hand-written future: only the socket, the body
/// and the bytes being written, so an idle stream's task stays a few hundred bytes.
pub(super) struct Streaming {
    socket: TcpStream,
    body: EventStream,
    /// Bytes taken from the body and not yet written.
    pending: Bytes,
    /// The body has ended; shutting the socket down.
    done: bool,
}

impl Future for Streaming {
    type Output = io::Result<()>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        loop {
            if !this.pending.is_empty() {
                match Pin::new(&mut this.socket).poll_write(cx, &this.pending) {
                    Poll::Ready(Ok(0)) => return Poll::Ready(Err(io::ErrorKind::WriteZero.into())),
                    Poll::Ready(Ok(n)) if n == this.pending.len() => {
                        // Let go of the buffer now: an idle stream keeps nothing written.
                        this.pending = Bytes::new();
                    }
                    Poll::Ready(Ok(n)) => this.pending.advance(n),
                    Poll::Ready(Err(e)) => return Poll::Ready(Err(e)),
                    Poll::Pending => {
                        // Blocked on a slow reader: its outbox keeps filling and, when full,
                        // drops its queue; end the stream then instead of writing on.
                        if this.body.overflowed(cx.waker()) {
                            return Poll::Ready(Ok(()));
                        }
                        break;
                    }
                }
                continue;
            }
            if this.done {
                return Pin::new(&mut this.socket).poll_shutdown(cx);
            }
            match Pin::new(&mut this.body).poll_frame(cx) {
                Poll::Ready(Some(Ok(frame))) => {
                    if let Ok(data) = frame.into_data() {
                        this.pending = data;
                    }
                }
                Poll::Ready(Some(Err(never))) => match never {},
                Poll::Ready(None) => this.done = true,
                Poll::Pending => break,
            }
        }
        // Nothing is expected from the client: EOF means it left.
        while let Poll::Ready(ready) = this.socket.poll_read_ready(cx) {
            ready?;
            let mut scratch = [0u8; 64];
            match this.socket.try_read(&mut scratch) {
                Ok(0) => return Poll::Ready(Ok(())),
                Ok(_) => {}
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                Err(e) => return Poll::Ready(Err(e)),
            }
        }
        Poll::Pending
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An idle stream's task holds a `Streaming` (and a pointer or two): keep it small. See
    /// BENCHMARKS.md for the memory per connection this gives.
    #[test]
    fn a_stream_task_stays_small() {
        let size = std::mem::size_of::<Streaming>();
        assert!(size <= 128, "Streaming is {size} bytes");
    }
}
