//! The accept loop. Subscribe requests that open a connection go straight to the direct
//! stream path; every other request (and everything after it on the same connection) goes to
//! hyper and the axum router.
//!
//! Why a direct path: a hyper connection keeps its read and write buffers for the life of
//! the connection, about 24 KiB per idle SSE stream measured on this machine, and writes
//! each event through its chunked encoder. An SSE stream needs neither: after the request
//! head there is nothing to read, and the body is a sequence of whole event blocks. The
//! direct path reads the head into a buffer it drops at once, answers close-delimited
//! (`Connection: close`, no chunk framing), and then each wake-up is one drain of the outbox
//! and one `write` of the joined bytes. The answers (headers, CORS, errors, the body) are
//! produced by the same code as the axum routes (`http::prepare_stream` for `/events`,
//! `mercure::open_stream` for `GET /.well-known/mercure`, whose refusals the router answers).
//!
//! This file: the accept loop, the per-address limit, TLS, HTTP/1 and h2 through hyper.
//! `direct.rs`: the direct stream path.

mod direct;

use std::collections::HashMap;
use std::future::Future;
use std::io;
use std::net::{IpAddr, SocketAddr};
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;

use axum::extract::ConnectInfo;
use axum::http::HeaderValue;
use axum::Router;
use bytes::{Buf, Bytes};
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::graceful::{GracefulShutdown, Watcher};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{mpsc, watch};
use tower::ServiceExt;

use crate::coalesce::Coalesce;
use crate::error::ApiError;
use crate::hub::Hub;
use crate::metrics::Metrics;
use crate::tls::{TlsConfig, ALPN_H2};
pub(crate) use direct::{direct_stream, head_read, Answer};
use direct::{error_bytes, fixed, read_head, stream, Streaming};

/// Written data that stays unacknowledged this long ends the stream (TCP_USER_TIMEOUT):
/// the client is gone or not reading.
const WRITE_TIMEOUT: Duration = Duration::from_secs(30);
/// What an HTTP/2 client with prior knowledge (h2c) sends first (RFC 9113 §3.4).
pub(crate) const H2_PREFACE: &[u8] = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";
/// Most concurrent streams one HTTP/2 connection may open (also hyper's default).
const H2_MAX_STREAMS: u32 = 200;

/// Accepts connections until `shutdown` resolves; then ends every stream and waits, at most
/// the configured grace period, for connections to finish.
pub async fn run(
    listener: TcpListener,
    hub: Arc<Hub>,
    router: Router,
    shutdown: impl Future<Output = ()>,
) -> io::Result<()> {
    let graceful = GracefulShutdown::new();
    let per_ip: PerIp = Arc::default();
    // Every connection task holds a sender; when all are dropped, `recv` returns None.
    let (alive, mut all_done) = mpsc::channel::<()>(1);
    // Connections still waiting for their request head give up when this turns true, so a
    // silent client cannot hold shutdown for the head timeout.
    let (stop, stopping) = watch::channel(false);
    tokio::pin!(shutdown);
    loop {
        tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((socket, peer)) => {
                    let _ = socket.set_nodelay(true);
                    if hub.config.socket_send_buffer > 0 {
                        let _ = socket2::SockRef::from(&socket)
                            .set_send_buffer_size(hub.config.socket_send_buffer);
                    }
                    let Some(slot) = IpSlot::take(&per_ip, peer.ip(), hub.config.max_connections_per_ip) else {
                        Metrics::add(&hub.metrics.connections_refused_per_ip, 1);
                        tokio::spawn(fixed(socket, too_many_from_address()));
                        continue;
                    };
                    let setup = Box::pin(connection(socket, peer, hub.clone(), router.clone(), graceful.watcher(), stopping.clone()));
                    tokio::spawn(Connection {
                        stage: Stage::Setup(setup),
                        _slot: slot.map(Box::new),
                        _alive: alive.clone(),
                    });
                }
                Err(e) => {
                    // Out of file descriptors and the like: back off instead of spinning.
                    tracing::warn!(error = %e, "accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
            },
            () = &mut shutdown => break,
        }
    }
    drop(listener);
    tracing::info!("shutting down: ending streams");
    hub.shutdown();
    let _ = stop.send(true);
    drop(alive);
    let drained = async {
        graceful.shutdown().await;
        all_done.recv().await;
    };
    if tokio::time::timeout(hub.config.shutdown_grace, drained)
        .await
        .is_err()
    {
        tracing::warn!("shutdown grace period over; closing remaining connections");
    }
    Ok(())
}

/// One connection's task. Every open stream has one, so it is hand-written to stay small
/// (see `a_connection_task_stays_small`): it holds either the setup — everything needed to
/// get to a stream (head, timers, hyper), boxed and freed when the stream starts — or the
/// live stream, never both, plus the connection's place in the per-address count and the
/// token shutdown waits for, both dropped when the task ends.
struct Connection<S> {
    stage: Stage<S>,
    _slot: Option<Box<IpSlot>>,
    _alive: mpsc::Sender<()>,
}

enum Stage<S> {
    Setup(Pin<Box<S>>),
    Streaming(Streaming),
}

impl<S: Future<Output = Option<Streaming>>> Future for Connection<S> {
    type Output = ();

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        let this = self.get_mut();
        loop {
            match &mut this.stage {
                Stage::Setup(setup) => match setup.as_mut().poll(cx) {
                    Poll::Ready(Some(streaming)) => this.stage = Stage::Streaming(streaming),
                    Poll::Ready(None) => return Poll::Ready(()),
                    Poll::Pending => return Poll::Pending,
                },
                Stage::Streaming(streaming) => {
                    let Poll::Ready(ended) = Pin::new(streaming).poll(cx) else {
                        return Poll::Pending;
                    };
                    if let Err(e) = ended {
                        tracing::debug!(error = %e, "stream ended");
                    }
                    return Poll::Ready(());
                }
            }
        }
    }
}

/// Open connections per client address, for `max_connections_per_ip`.
type PerIp = Arc<Mutex<HashMap<IpAddr, usize>>>;

/// One counted connection of an address; dropping it frees the place.
struct IpSlot {
    map: PerIp,
    ip: IpAddr,
}

impl IpSlot {
    /// A place for one more connection from `ip`, or `None` when it has `limit` open.
    /// With no limit, nothing is counted.
    fn take(map: &PerIp, ip: IpAddr, limit: usize) -> Option<Option<IpSlot>> {
        if limit == 0 {
            return Some(None);
        }
        let mut open = map.lock().unwrap_or_else(|e| e.into_inner());
        let count = open.entry(ip).or_insert(0);
        if *count >= limit {
            return None;
        }
        *count += 1;
        Some(Some(IpSlot {
            map: map.clone(),
            ip,
        }))
    }
}

impl Drop for IpSlot {
    fn drop(&mut self) {
        let mut open = self.map.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(count) = open.get_mut(&self.ip) {
            *count -= 1;
            if *count == 0 {
                open.remove(&self.ip);
            }
        }
    }
}

fn too_many_from_address() -> Vec<u8> {
    let error = ApiError {
        retry_after: Some(5),
        ..ApiError::new(
            axum::http::StatusCode::TOO_MANY_REQUESTS,
            "too many connections from this address",
        )
    };
    error_bytes(&error)
}

/// Reads the request head and answers it: returns the live stream for a subscribe request
/// (the caller drives it), or serves anything else to the end and returns `None`.
async fn connection(
    mut socket: TcpStream,
    peer: SocketAddr,
    hub: Arc<Hub>,
    router: Router,
    graceful: Watcher,
    mut stopping: watch::Receiver<bool>,
) -> Option<Streaming> {
    let max_head = hub.config.max_header_bytes;
    // A client must send its request head within this time (the slow-loris guard).
    let head_timeout = hub.config.head_timeout;
    if let Some(tls) = hub.config.tls.clone() {
        drop(hub);
        // Boxed: a TLS session and a hyper connection are large.
        let head = (max_head, head_timeout);
        Box::pin(serve_tls(socket, peer, tls, head, router, graceful)).await;
        return None;
    }
    let read = tokio::time::timeout(head_timeout, read_head(&mut socket, max_head));
    let head = tokio::select! {
        read = read => match read {
            Ok(Ok(head)) => head,
            Ok(Err(_)) | Err(_) => return None,
        },
        _ = stopping.wait_for(|stop| *stop) => return None,
    };
    if head.starts_with(H2_PREFACE) {
        drop(hub);
        set_write_timeout(&socket);
        let io = Rewind {
            prefix: Bytes::from(head),
            inner: socket,
        };
        Box::pin(serve_h2(io, peer, false, max_head, router, graceful)).await;
        return None;
    }
    match direct_stream(&hub, peer, &head) {
        Some(Answer::Stream {
            head: response,
            body,
        }) => Some(stream(socket, response, body)),
        Some(Answer::Fixed(bytes)) => {
            if let Err(e) = fixed(socket, bytes).await {
                tracing::debug!(error = %e, "answer not delivered");
            }
            None
        }
        None => {
            drop(hub);
            let io = Rewind {
                prefix: Bytes::from(head),
                inner: socket,
            };
            // Boxed: a hyper connection is large.
            let head = (max_head, head_timeout);
            Box::pin(serve_h1(io, peer, false, head, router, graceful)).await;
            None
        }
    }
}

/// The request head's limits: `max_header_bytes` and `head_timeout`.
type HeadLimits = (usize, Duration);

/// A TLS connection: the handshake, then HTTP/2 or HTTP/1.1 through hyper as ALPN chose
/// (HTTP/1.1 when the client offered no ALPN). The direct path is for plain HTTP/1 only.
async fn serve_tls(
    socket: TcpStream,
    peer: SocketAddr,
    tls: TlsConfig,
    head: HeadLimits,
    router: Router,
    graceful: Watcher,
) {
    set_write_timeout(&socket);
    let acceptor = tokio_rustls::TlsAcceptor::from(tls.server);
    let io = match tokio::time::timeout(head.1, acceptor.accept(socket)).await {
        Ok(Ok(io)) => io,
        Ok(Err(e)) => {
            tracing::debug!(error = %e, "TLS handshake failed");
            return;
        }
        Err(_) => return,
    };
    if io.get_ref().1.alpn_protocol() == Some(ALPN_H2) {
        serve_h2(io, peer, true, head.0, router, graceful).await;
    } else {
        serve_h1(io, peer, true, head, router, graceful).await;
    }
}

/// Serves an HTTP/1 connection with hyper and the router (for a plain connection, with the
/// bytes already read put back in front by `Rewind`).
async fn serve_h1<I>(
    io: I,
    peer: SocketAddr,
    tls: bool,
    (max_head, head_timeout): HeadLimits,
    router: Router,
    graceful: Watcher,
) where
    I: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let service =
        hyper::service::service_fn(move |mut request: hyper::Request<hyper::body::Incoming>| {
            as_routed(&mut request, peer, tls);
            router.clone().oneshot(request)
        });
    let conn = hyper::server::conn::http1::Builder::new()
        .timer(TokioTimer::new())
        .header_read_timeout(head_timeout)
        // Bounds the request head (431 above it); bodies still stream through in pieces.
        .max_buf_size(max_head.max(8192))
        .serve_connection(TokioIo::new(io), service);
    if let Err(e) = graceful.watch(conn).await {
        tracing::debug!(error = %e, "connection ended with an error");
    }
}

/// Serves an HTTP/2 connection (h2c with prior knowledge, or TLS with ALPN `h2`) with
/// hyper and the same router. Each request is a stream; a stream the client resets drops
/// its response body, which unregisters the subscriber.
async fn serve_h2<I>(
    io: I,
    peer: SocketAddr,
    tls: bool,
    max_head: usize,
    router: Router,
    graceful: Watcher,
) where
    I: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let service =
        hyper::service::service_fn(move |mut request: hyper::Request<hyper::body::Incoming>| {
            as_routed(&mut request, peer, tls);
            host_from_authority(&mut request);
            router.clone().oneshot(request)
        });
    let conn = hyper::server::conn::http2::Builder::new(TokioExecutor::new())
        .timer(TokioTimer::new())
        .max_concurrent_streams(H2_MAX_STREAMS)
        .max_header_list_size(u32::try_from(max_head).unwrap_or(u32::MAX))
        .serve_connection(TokioIo::new(Coalesce::new(io)), service);
    if let Err(e) = graceful.watch(conn).await {
        tracing::debug!(error = %e, "HTTP/2 connection ended with an error");
    }
}

/// What every request handed to the router carries: the client's address (handlers take
/// `ConnectInfo<SocketAddr>`), and on a TLS connection `X-Forwarded-Proto: https`, set by the
/// hub as the TLS proxy it is, so URLs built from the request (Mercure's resource URL) say
/// https whatever the client sent.
fn as_routed<B>(request: &mut hyper::Request<B>, peer: SocketAddr, tls: bool) {
    request.extensions_mut().insert(ConnectInfo(peer));
    if tls {
        request
            .headers_mut()
            .insert("x-forwarded-proto", HeaderValue::from_static("https"));
    }
}

/// HTTP/2 carries the host in `:authority` (hyper puts it in the URI), not in `Host`:
/// copy it, so handlers that read `Host` (same-origin checks, Mercure's resource URL) see
/// what they see over HTTP/1.
fn host_from_authority<B>(request: &mut hyper::Request<B>) {
    if request.headers().contains_key(axum::http::header::HOST) {
        return;
    }
    let value = request
        .uri()
        .authority()
        .and_then(|a| HeaderValue::from_str(a.as_str()).ok());
    if let Some(value) = value {
        request
            .headers_mut()
            .insert(axum::http::header::HOST, value);
    }
}

/// The kernel ends the connection when written data stays unacknowledged this long: a
/// dead or stalled peer costs no timer here.
fn set_write_timeout(socket: &TcpStream) {
    let _ = socket2::SockRef::from(socket).set_tcp_user_timeout(Some(WRITE_TIMEOUT));
}

/// A socket with bytes already read from it put back in front, for hyper.
struct Rewind {
    prefix: Bytes,
    inner: TcpStream,
}

impl AsyncRead for Rewind {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        if self.prefix.has_remaining() {
            let n = self.prefix.len().min(buf.remaining());
            buf.put_slice(&self.prefix[..n]);
            self.prefix.advance(n);
            return Poll::Ready(Ok(()));
        }
        Pin::new(&mut self.inner).poll_read(cx, buf)
    }
}

impl AsyncWrite for Rewind {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// tokio keeps a task in one allocation aligned to 128 bytes: its header and trailer
    /// (~96 bytes) and the future. A future of at most 160 bytes makes a 256-byte task, one
    /// more byte a 384-byte one; BENCHMARKS.md has the memory per connection this gives.
    #[test]
    fn a_connection_task_stays_small() {
        let size = std::mem::size_of::<Connection<std::future::Pending<Option<Streaming>>>>();
        assert!(size <= 160, "Connection is {size} bytes");
    }
}
