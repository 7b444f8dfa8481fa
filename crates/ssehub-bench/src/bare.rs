//! `bare-server`: the machine's ceiling for the same bytes over the same sockets. One thread, no
//! history, no limits, no task per subscriber: a publish appends the event to each subscriber's
//! byte queue and marks it dirty; one flusher then walks the dirty list and writes each queue
//! with one non-blocking `write` (so events queued meanwhile go out together). With
//! `--per-event-writes` the publish writes the event to every socket at once instead (one
//! `write` per event per socket). Speaks just enough of ssehub's API (`GET /events/{topic}`,
//! `POST /publish` with `{"topic":"…","data":"…"}`) to be driven by the same command lines.

use std::cell::{Cell, RefCell};
use std::collections::HashMap;
use std::io::{ErrorKind, Write};
use std::rc::Rc;

use clap::Args;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Notify;

use crate::http::{head_end, Url};

#[derive(Args, Clone, Debug)]
pub struct BareOpts {
    /// Address to listen on (loopback only).
    #[arg(long, default_value = "127.0.0.1:0")]
    pub listen: String,
    /// Write each event to each socket as it is published instead of coalescing.
    #[arg(long)]
    pub per_event_writes: bool,
    /// Print one line per publish to stdout: subscribers, and the time from the start of the
    /// first write to the end of the last (with `--per-event-writes`: the machine's cost of
    /// writing one event to every socket on one thread).
    #[arg(long)]
    pub write_times: bool,
}

struct Sub {
    stream: TcpStream,
    queue: RefCell<Vec<u8>>,
    dirty: Cell<bool>,
    /// A task waits for the socket to become writable again.
    blocked: Cell<bool>,
    dead: Cell<bool>,
}

#[derive(Default)]
struct Hub {
    topics: RefCell<HashMap<String, Vec<Rc<Sub>>>>,
    next_id: Cell<u64>,
    dirty: RefCell<Vec<Rc<Sub>>>,
    wake: Notify,
}

fn json_str<'a>(body: &'a str, key: &str) -> Option<&'a str> {
    let pat = format!("\"{key}\"");
    let i = body.find(&pat)? + pat.len();
    let rest = body[i..]
        .trim_start()
        .strip_prefix(':')?
        .trim_start()
        .strip_prefix('"')?;
    Some(&rest[..rest.find('"')?])
}

/// Write what is queued for `sub` (one non-blocking write); on a full socket buffer, a task
/// waits for it to drain.
fn flush(sub: &Rc<Sub>) {
    if sub.blocked.get() || sub.dead.get() {
        return;
    }
    let mut q = sub.queue.borrow_mut();
    while !q.is_empty() {
        match sub.stream.try_write(&q) {
            Ok(n) => {
                q.drain(..n);
            }
            Err(e) if e.kind() == ErrorKind::WouldBlock => {
                sub.blocked.set(true);
                let sub = sub.clone();
                tokio::task::spawn_local(async move {
                    while sub.stream.writable().await.is_ok() {
                        sub.blocked.set(false);
                        flush(&sub);
                        if !sub.blocked.get() {
                            return;
                        }
                    }
                    sub.dead.set(true);
                });
                return;
            }
            Err(_) => {
                sub.dead.set(true);
                q.clear();
                return;
            }
        }
    }
}

async fn flusher(hub: Rc<Hub>) {
    let mut list = Vec::new();
    loop {
        hub.wake.notified().await;
        std::mem::swap(&mut list, &mut *hub.dirty.borrow_mut());
        for sub in list.drain(..) {
            sub.dirty.set(false);
            flush(&sub);
        }
    }
}

fn publish(hub: &Hub, topic: &str, data: &str, per_event: bool, write_times: bool) {
    let id = hub.next_id.get() + 1;
    hub.next_id.set(id);
    let ev = format!("id: {id}\ndata: {data}\n\n").into_bytes();
    let mut topics = hub.topics.borrow_mut();
    let Some(subs) = topics.get_mut(topic) else {
        return;
    };
    subs.retain(|s| !s.dead.get());
    let mut dirty = hub.dirty.borrow_mut();
    let started = std::time::Instant::now();
    for sub in subs.iter() {
        sub.queue.borrow_mut().extend_from_slice(&ev);
        if per_event {
            flush(sub);
        } else if !sub.dirty.get() {
            sub.dirty.set(true);
            dirty.push(sub.clone());
        }
    }
    if write_times {
        let mut out = std::io::stdout().lock();
        let _ = writeln!(
            out,
            "publish {id}: {} subscribers, {} us{}",
            subs.len(),
            started.elapsed().as_micros(),
            if per_event { " (written)" } else { " (queued)" }
        );
    }
    if !dirty.is_empty() {
        hub.wake.notify_one();
    }
}

async fn conn(mut s: TcpStream, hub: Rc<Hub>, per_event: bool, write_times: bool) {
    let _ = s.set_nodelay(true);
    // Heap buffer only, dropped before the socket is handed to the hub.
    let mut buf = Vec::new();
    loop {
        let h = loop {
            if let Some(h) = head_end(&buf) {
                break h;
            }
            buf.reserve(4096);
            match s.read_buf(&mut buf).await {
                Ok(0) | Err(_) => return,
                Ok(_) => {}
            }
        };
        let head = String::from_utf8_lossy(&buf[..h]).into_owned();
        let mut parts = head.split_whitespace();
        let (method, target) = (parts.next().unwrap_or(""), parts.next().unwrap_or(""));
        let len: usize = head
            .lines()
            .find_map(|l| {
                let (k, v) = l.split_once(':')?;
                k.trim()
                    .eq_ignore_ascii_case("content-length")
                    .then(|| v.trim().parse().ok())?
            })
            .unwrap_or(0);
        while buf.len() < h + len {
            buf.reserve(4096);
            match s.read_buf(&mut buf).await {
                Ok(0) | Err(_) => return,
                Ok(_) => {}
            }
        }
        if method == "GET" {
            if let Some(topic) = target.strip_prefix("/events/") {
                let topic = topic.to_string();
                drop((buf, head));
                let hello: &[u8] = b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nCache-Control: no-cache\r\nConnection: close\r\n\r\n: ok\n\n";
                if s.write_all(hello).await.is_err() {
                    return;
                }
                let sub = Rc::new(Sub {
                    stream: s,
                    queue: RefCell::new(Vec::new()),
                    dirty: Cell::new(false),
                    blocked: Cell::new(false),
                    dead: Cell::new(false),
                });
                hub.topics.borrow_mut().entry(topic).or_default().push(sub);
                return;
            }
        }
        let body = String::from_utf8_lossy(&buf[h..h + len]).into_owned();
        buf.drain(..h + len);
        let reply: &[u8] = if method == "POST" && target == "/publish" {
            match (json_str(&body, "topic"), json_str(&body, "data")) {
                (Some(topic), Some(data)) => {
                    publish(&hub, topic, data, per_event, write_times);
                    b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"
                }
                _ => b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n\r\n",
            }
        } else {
            b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n"
        };
        if s.write_all(reply).await.is_err() {
            return;
        }
    }
}

async fn serve(o: BareOpts) -> Result<(), String> {
    let url = Url::parse(&format!("http://{}/", o.listen))?;
    let l = TcpListener::bind(url.addr)
        .await
        .map_err(|e| e.to_string())?;
    let addr = l.local_addr().map_err(|e| e.to_string())?;
    {
        let mut out = std::io::stdout().lock();
        let _ = writeln!(out, "listening on http://{addr}");
        let _ = out.flush();
    }
    let hub = Rc::new(Hub::default());
    tokio::task::spawn_local(flusher(hub.clone()));
    loop {
        match l.accept().await {
            Ok((s, _)) => {
                tokio::task::spawn_local(conn(s, hub.clone(), o.per_event_writes, o.write_times));
            }
            // Out of descriptors and the like: back off instead of spinning.
            Err(_) => tokio::time::sleep(std::time::Duration::from_millis(10)).await,
        }
    }
}

pub fn run(o: BareOpts) -> i32 {
    let rt = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            crate::coord::log(&e.to_string());
            return 1;
        }
    };
    let local = tokio::task::LocalSet::new();
    match local.block_on(&rt, serve(o)) {
        Ok(()) => 0,
        Err(e) => {
            crate::coord::log(&format!("bare-server: {e}"));
            1
        }
    }
}

#[cfg(test)]
mod tests {
    use super::json_str;

    #[test]
    fn finds_fields() {
        let b = r#"{"topic": "t1","data":"@1:2:xx"}"#;
        assert_eq!(json_str(b, "topic"), Some("t1"));
        assert_eq!(json_str(b, "data"), Some("@1:2:xx"));
        assert_eq!(json_str(b, "id"), None);
    }
}
