//! A minimal HTTP/1.1 client: loopback-only URLs, request heads, response heads, and a
//! keep-alive connection for publishing (Content-Length or chunked bodies).

use std::io;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpSocket, TcpStream};

use crate::sse::ChunkDecoder;

/// `http://HOST:PORT/path?query`, HOST being a loopback address (or `localhost`).
#[derive(Clone, Debug, PartialEq)]
pub struct Url {
    pub addr: SocketAddr,
    pub host: String,
    pub path: String,
}

impl Url {
    pub fn parse(s: &str) -> Result<Url, String> {
        let rest = s
            .strip_prefix("http://")
            .ok_or_else(|| format!("{s}: only http:// URLs are supported"))?;
        let (hostport, path) = match rest.find('/') {
            Some(i) => (&rest[..i], &rest[i..]),
            None => (rest, "/"),
        };
        let (host, port) = match hostport.rsplit_once(':') {
            Some((h, p)) => (h, p.parse::<u16>().map_err(|_| format!("{s}: bad port"))?),
            None => (hostport, 80),
        };
        let ip: IpAddr = if host == "localhost" {
            IpAddr::V4(Ipv4Addr::LOCALHOST)
        } else {
            host.parse()
                .map_err(|_| format!("{s}: host must be an IP address or localhost"))?
        };
        if !ip.is_loopback() {
            return Err(format!(
                "{s}: refusing a non-loopback target; load stays on this machine"
            ));
        }
        Ok(Url {
            addr: SocketAddr::new(ip, port),
            host: hostport.to_string(),
            path: path.to_string(),
        })
    }
}

/// Open a TCP connection from `src` to `dst`. Source port 0 lets the kernel choose; an explicit
/// port avoids the kernel's search for a free one, which grows with every socket already bound
/// to the address (O(n²) over a ramp of ten thousand connections). If the explicit port is
/// taken, the kernel chooses.
pub async fn connect_from(src: Option<(Ipv4Addr, u16)>, dst: SocketAddr) -> io::Result<TcpStream> {
    let new_sock = || match dst {
        SocketAddr::V4(_) => TcpSocket::new_v4(),
        SocketAddr::V6(_) => TcpSocket::new_v6(),
    };
    let mut sock = new_sock()?;
    if let (Some((ip, port)), SocketAddr::V4(_)) = (src, dst) {
        sock.set_reuseaddr(true)?;
        if sock.bind(SocketAddr::new(IpAddr::V4(ip), port)).is_err() {
            sock = new_sock()?;
            sock.set_reuseaddr(true)?;
            sock.bind(SocketAddr::new(IpAddr::V4(ip), 0))?;
        }
    }
    let s = sock.connect(dst).await?;
    s.set_nodelay(true)?;
    Ok(s)
}

/// A parsed response head.
#[derive(Debug, Default)]
pub struct Head {
    pub status: u16,
    pub chunked: bool,
    pub content_length: Option<u64>,
    pub close: bool,
}

/// Find the end of the head (`\r\n\r\n`, or `\n\n`); returns the body offset.
pub fn head_end(buf: &[u8]) -> Option<usize> {
    let crlf = buf.windows(4).position(|w| w == b"\r\n\r\n").map(|p| p + 4);
    let lf = buf.windows(2).position(|w| w == b"\n\n").map(|p| p + 2);
    match (crlf, lf) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, b) => a.or(b),
    }
}

pub fn parse_head(head: &[u8]) -> Result<Head, String> {
    let text = String::from_utf8_lossy(head);
    let mut lines = text.lines();
    let status_line = lines.next().unwrap_or("");
    let mut parts = status_line.split_whitespace();
    let version = parts.next().unwrap_or("");
    if !version.starts_with("HTTP/1.") {
        return Err(format!("bad status line: {status_line:?}"));
    }
    let status = parts
        .next()
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| format!("bad status line: {status_line:?}"))?;
    let mut h = Head {
        status,
        close: version == "HTTP/1.0",
        ..Head::default()
    };
    for line in lines {
        let Some((k, v)) = line.split_once(':') else {
            continue;
        };
        let k = k.trim().to_ascii_lowercase();
        let v = v.trim().to_ascii_lowercase();
        match k.as_str() {
            "transfer-encoding" => h.chunked = v.contains("chunked"),
            "content-length" => h.content_length = v.parse().ok(),
            "connection" => {
                if v.contains("close") {
                    h.close = true;
                } else if v.contains("keep-alive") {
                    h.close = false;
                }
            }
            _ => {}
        }
    }
    Ok(h)
}

/// A keep-alive connection for request/response exchanges (publishing).
pub struct HttpConn {
    url: Url,
    src: Option<(Ipv4Addr, u16)>,
    stream: Option<TcpStream>,
    buf: Vec<u8>,
    pub reconnects: u64,
}

impl HttpConn {
    pub fn new(url: Url, src: Option<(Ipv4Addr, u16)>) -> Self {
        HttpConn {
            url,
            src,
            stream: None,
            buf: Vec::with_capacity(4096),
            reconnects: 0,
        }
    }

    /// Send one request and read the whole response; returns (status, body).
    pub async fn request(
        &mut self,
        req: &[u8],
        timeout: Duration,
    ) -> Result<(u16, Vec<u8>), String> {
        match tokio::time::timeout(timeout, self.request_inner(req, true)).await {
            Ok(r) => r,
            Err(_) => {
                self.stream = None;
                Err("timeout".into())
            }
        }
    }

    async fn request_inner(&mut self, req: &[u8], retry: bool) -> Result<(u16, Vec<u8>), String> {
        let fresh = self.stream.is_none();
        if fresh {
            let s = connect_from(self.src, self.url.addr)
                .await
                .map_err(|e| format!("connect: {e}"))?;
            self.stream = Some(s);
            self.buf.clear();
            self.reconnects += 1;
        }
        let r = self.exchange(req).await;
        match r {
            // A kept-alive connection the server closed meanwhile: retry once on a new one.
            Err(e) if !fresh && retry && e.starts_with("eof") => {
                self.stream = None;
                Box::pin(self.request_inner(req, false)).await
            }
            Err(e) => {
                self.stream = None;
                Err(e)
            }
            Ok((status, body, close)) => {
                if close {
                    self.stream = None;
                }
                Ok((status, body))
            }
        }
    }

    async fn exchange(&mut self, req: &[u8]) -> Result<(u16, Vec<u8>, bool), String> {
        let stream = self.stream.as_mut().ok_or("no stream")?;
        stream
            .write_all(req)
            .await
            .map_err(|e| format!("eof on write: {e}"))?;
        let mut tmp = [0u8; 4096];
        let head_len = loop {
            if let Some(n) = head_end(&self.buf) {
                break n;
            }
            let n = stream
                .read(&mut tmp)
                .await
                .map_err(|e| format!("read: {e}"))?;
            if n == 0 {
                return Err("eof before response".into());
            }
            self.buf.extend_from_slice(&tmp[..n]);
        };
        let head = parse_head(&self.buf[..head_len])?;
        self.buf.drain(..head_len);
        let mut body = Vec::new();
        if head.chunked {
            let mut dec = ChunkDecoder::default();
            loop {
                let pending = std::mem::take(&mut self.buf);
                dec.feed(&pending, &mut |b| body.extend_from_slice(b))?;
                if dec.is_done() {
                    // Pipelining is not used, so nothing of value can follow.
                    break;
                }
                let n = stream
                    .read(&mut tmp)
                    .await
                    .map_err(|e| format!("read: {e}"))?;
                if n == 0 {
                    return Err("eof in chunked body".into());
                }
                self.buf.extend_from_slice(&tmp[..n]);
            }
        } else if let Some(len) = head.content_length {
            let len = len as usize;
            while self.buf.len() < len {
                let n = stream
                    .read(&mut tmp)
                    .await
                    .map_err(|e| format!("read: {e}"))?;
                if n == 0 {
                    return Err("eof in body".into());
                }
                self.buf.extend_from_slice(&tmp[..n]);
            }
            body = self.buf.drain(..len).collect();
        } else if head.status != 204 && head.status != 304 && !(100..200).contains(&head.status) {
            // Close-delimited body.
            loop {
                let n = stream
                    .read(&mut tmp)
                    .await
                    .map_err(|e| format!("read: {e}"))?;
                if n == 0 {
                    break;
                }
                self.buf.extend_from_slice(&tmp[..n]);
            }
            body = std::mem::take(&mut self.buf);
            return Ok((head.status, body, true));
        }
        Ok((head.status, body, head.close))
    }
}

/// Build a request head (and body).
pub fn build_request(
    method: &str,
    url: &Url,
    path: &str,
    headers: &[String],
    content_type: Option<&str>,
    body: &[u8],
) -> Vec<u8> {
    let mut r = format!("{method} {path} HTTP/1.1\r\nHost: {}\r\n", url.host);
    for h in headers {
        r.push_str(h);
        r.push_str("\r\n");
    }
    if let Some(ct) = content_type {
        r.push_str(&format!("Content-Type: {ct}\r\n"));
    }
    if !body.is_empty() || method != "GET" {
        r.push_str(&format!("Content-Length: {}\r\n", body.len()));
    }
    r.push_str("\r\n");
    let mut v = r.into_bytes();
    v.extend_from_slice(body);
    v
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn url_guard() {
        let u = Url::parse("http://127.0.0.1:8080/events/{topic}?x=1").unwrap();
        assert_eq!(u.addr.port(), 8080);
        assert_eq!(u.path, "/events/{topic}?x=1");
        assert!(Url::parse("http://localhost:1/").is_ok());
        assert!(Url::parse("http://127.9.9.9:1").is_ok());
        assert!(Url::parse("http://10.0.0.1:80/").is_err());
        assert!(Url::parse("http://8.8.8.8/").is_err());
        assert!(Url::parse("http://example.com/").is_err());
        assert!(Url::parse("https://127.0.0.1/").is_err());
    }

    #[test]
    fn heads() {
        let raw = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nContent-Type: text/event-stream\r\n\r\nxx";
        let n = head_end(raw).unwrap();
        assert_eq!(&raw[n..], b"xx");
        let h = parse_head(&raw[..n]).unwrap();
        assert_eq!(h.status, 200);
        assert!(h.chunked && !h.close);
        let h =
            parse_head(b"HTTP/1.1 201 Created\r\nContent-Length: 12\r\nConnection: close\r\n\r\n")
                .unwrap();
        assert_eq!((h.status, h.content_length, h.close), (201, Some(12), true));
        assert!(parse_head(b"garbage\r\n\r\n").is_err());
    }
}
