//! Coalesce: the write side of an HTTP/2 connection, so that the frames of one fan-out leave
//! in one write instead of several.
//!
//! When an event reaches the streams multiplexed on one HTTP/2 connection, each stream's task
//! hands its frame to the connection, and the connection's task wakes at the first of them:
//! left alone it writes and flushes what has arrived so far, then again for the streams that
//! ran after it — about five writes per connection per event measured with 200 streams per
//! connection (BENCHMARKS.md, "To do"), each a trip through the kernel's TCP send path. This
//! wrapper takes writes into a buffer and, at the first flush of a batch, lets the task go
//! round the scheduler once before writing, so the other streams' frames join the same write.
//! The cost is one scheduler round of latency per batch.

use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

/// Bytes buffered before a write goes out without waiting for the flush.
const LIMIT: usize = 64 * 1024;
/// A buffer that grew past this is freed after it is written, so idle connections keep none.
const KEEP: usize = 16 * 1024;

pub struct Coalesce<I> {
    inner: I,
    buf: Vec<u8>,
    /// Bytes of `buf` already written.
    written: usize,
    /// The flush of the current batch has let the task go round once.
    yielded: bool,
}

impl<I: AsyncWrite + Unpin> Coalesce<I> {
    pub fn new(inner: I) -> Coalesce<I> {
        Coalesce {
            inner,
            buf: Vec::new(),
            written: 0,
            yielded: false,
        }
    }

    /// Writes the buffer out; `Pending` while the socket is full.
    fn drain(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        while self.written < self.buf.len() {
            let n = match Pin::new(&mut self.inner).poll_write(cx, &self.buf[self.written..]) {
                Poll::Ready(Ok(0)) => return Poll::Ready(Err(io::ErrorKind::WriteZero.into())),
                Poll::Ready(Ok(n)) => n,
                Poll::Ready(Err(e)) => return Poll::Ready(Err(e)),
                Poll::Pending => return Poll::Pending,
            };
            self.written += n;
        }
        if self.buf.capacity() > KEEP {
            self.buf = Vec::new();
        } else {
            self.buf.clear();
        }
        self.written = 0;
        Poll::Ready(Ok(()))
    }

    /// Makes room for at least one byte, writing the buffer out when it is at its limit.
    fn room(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<usize>> {
        if self.buf.len() >= LIMIT {
            match self.drain(cx) {
                Poll::Ready(Ok(())) => {}
                other => return other.map_ok(|()| 0),
            }
        }
        Poll::Ready(Ok(LIMIT - self.buf.len()))
    }
}

impl<I: AsyncWrite + Unpin> AsyncWrite for Coalesce<I> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        data: &[u8],
    ) -> Poll<io::Result<usize>> {
        let room = match self.room(cx) {
            Poll::Ready(Ok(room)) => room,
            other => return other,
        };
        let n = room.min(data.len());
        self.buf.extend_from_slice(&data[..n]);
        Poll::Ready(Ok(n))
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let mut room = match self.room(cx) {
            Poll::Ready(Ok(room)) => room,
            other => return other,
        };
        let mut taken = 0;
        for slice in bufs {
            let n = room.min(slice.len());
            self.buf.extend_from_slice(&slice[..n]);
            taken += n;
            room -= n;
            if room == 0 {
                break;
            }
        }
        Poll::Ready(Ok(taken))
    }

    fn is_write_vectored(&self) -> bool {
        true
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        if self.written < self.buf.len() && !self.yielded {
            // Once per batch: go round the scheduler so that the streams woken by the same
            // event hand over their frames before the write.
            self.yielded = true;
            cx.waker().wake_by_ref();
            return Poll::Pending;
        }
        match self.drain(cx) {
            Poll::Ready(Ok(())) => {}
            other => return other,
        }
        self.yielded = false;
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.drain(cx) {
            Poll::Ready(Ok(())) => {}
            other => return other,
        }
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

impl<I: AsyncRead + Unpin> AsyncRead for Coalesce<I> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_read(cx, buf)
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    use super::*;

    #[tokio::test]
    async fn writes_wait_for_the_flush_and_leave_together_in_order() {
        let (near, mut far) = tokio::io::duplex(1 << 20);
        let mut io = Coalesce::new(near);
        io.write_all(b"one ").await.unwrap();
        io.write_all(b"two ").await.unwrap();
        let mut byte = [0u8; 1];
        let early = tokio::time::timeout(Duration::from_millis(50), far.read(&mut byte)).await;
        assert!(early.is_err(), "nothing is written before the flush");
        io.write_all(b"three").await.unwrap();
        io.flush().await.unwrap();
        let mut got = vec![0u8; 13];
        far.read_exact(&mut got).await.unwrap();
        assert_eq!(got, b"one two three");
    }

    #[tokio::test]
    async fn a_buffer_at_its_limit_is_written_without_a_flush_and_shutdown_writes_the_rest() {
        let (near, mut far) = tokio::io::duplex(4 << 20);
        let mut io = Coalesce::new(near);
        let data: Vec<u8> = (0..(LIMIT * 2 + 100)).map(|i| (i % 251) as u8).collect();
        io.write_all(&data).await.unwrap();
        // At least one buffer-full has gone out already.
        let mut first = vec![0u8; LIMIT];
        tokio::time::timeout(Duration::from_secs(5), far.read_exact(&mut first))
            .await
            .expect("a full buffer is written without a flush")
            .unwrap();
        io.shutdown().await.unwrap();
        let mut rest = Vec::new();
        far.read_to_end(&mut rest).await.unwrap();
        first.extend_from_slice(&rest);
        assert_eq!(first, data);
    }

    #[tokio::test]
    async fn a_flush_with_nothing_buffered_does_not_wait() {
        let (near, _far) = tokio::io::duplex(1024);
        let mut io = Coalesce::new(near);
        tokio::time::timeout(Duration::from_millis(500), io.flush())
            .await
            .expect("an empty flush completes at once")
            .unwrap();
    }
}
