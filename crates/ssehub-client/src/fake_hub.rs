//! A scripted stand-in for a hub, for the client's own tests: it answers each accepted
//! connection with the next canned HTTP response and records the requests' heads.

use std::sync::{Arc, Mutex};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinHandle;

/// One canned answer.
pub(crate) enum Reply {
    /// Write these bytes, then close the connection.
    Close(Vec<u8>),
    /// Write these bytes, then keep the connection open and silent.
    Hold(Vec<u8>),
}

/// A `200 text/event-stream` response head followed by `body`, delimited by the close.
pub(crate) fn stream(body: &str) -> Vec<u8> {
    let mut r =
        b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nConnection: close\r\n\r\n".to_vec();
    r.extend_from_slice(body.as_bytes());
    r
}

/// A response with `status` (e.g. `"500 Internal Server Error"`), extra header lines and a
/// body.
pub(crate) fn answer(status: &str, headers: &str, body: &str) -> Vec<u8> {
    format!(
        "HTTP/1.1 {status}\r\n{headers}Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )
    .into_bytes()
}

pub(crate) struct FakeHub {
    pub(crate) url: String,
    /// Each request's head and body, lower-cased head, in arrival order.
    requests: Arc<Mutex<Vec<String>>>,
    task: JoinHandle<()>,
}

impl FakeHub {
    /// Serves `replies` in order, one per connection; later connections get 204.
    pub(crate) async fn start(replies: Vec<Reply>) -> FakeHub {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let requests = Arc::new(Mutex::new(Vec::new()));
        let log = requests.clone();
        let task = tokio::spawn(async move {
            let mut held = Vec::new();
            let mut replies = replies.into_iter();
            loop {
                let (mut socket, _) = listener.accept().await.unwrap();
                let request = read_request(&mut socket).await;
                log.lock().unwrap().push(request);
                match replies.next() {
                    Some(Reply::Close(bytes)) => {
                        let _ = socket.write_all(&bytes).await;
                        let _ = socket.shutdown().await;
                    }
                    Some(Reply::Hold(bytes)) => {
                        let _ = socket.write_all(&bytes).await;
                        held.push(socket);
                    }
                    None => {
                        let _ = socket.write_all(&answer("204 No Content", "", "")).await;
                        let _ = socket.shutdown().await;
                    }
                }
            }
        });
        FakeHub {
            url,
            requests,
            task,
        }
    }

    pub(crate) fn requests(&self) -> Vec<String> {
        self.requests.lock().unwrap().clone()
    }
}

impl Drop for FakeHub {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Reads one request: the head (lower-cased) and, per its Content-Length, the body.
async fn read_request(socket: &mut TcpStream) -> String {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 4096];
    let head_end = loop {
        if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            break i + 4;
        }
        match socket.read(&mut chunk).await {
            Ok(0) | Err(_) => return String::from_utf8_lossy(&buf).to_lowercase(),
            Ok(n) => buf.extend_from_slice(&chunk[..n]),
        }
    };
    let head = String::from_utf8_lossy(&buf[..head_end]).to_lowercase();
    let length: usize = head
        .lines()
        .find_map(|l| l.strip_prefix("content-length:"))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(0);
    while buf.len() < head_end + length {
        match socket.read(&mut chunk).await {
            Ok(0) | Err(_) => break,
            Ok(n) => buf.extend_from_slice(&chunk[..n]),
        }
    }
    format!("{head}{}", String::from_utf8_lossy(&buf[head_end..]))
}
