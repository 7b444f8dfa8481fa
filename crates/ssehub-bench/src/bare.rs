//! `bare-server`: the machine's ceiling for the same bytes over the same sockets. One thread; no
//! history, no ids beyond a counter, no limits: a subscriber is a byte queue plus a writer task
//! that sends everything queued in one `write`. Speaks just enough of ssehub's API
//! (`GET /events/{topic}`, `POST /publish` with `{"topic":"…","data":"…"}`) to be driven by
//! the same generator command lines.

use std::cell::RefCell;
use std::collections::HashMap;
use std::io::Write;
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
    /// Write each event with its own write() instead of coalescing what is queued.
    #[arg(long)]
    pub per_event_writes: bool,
}

struct Sub {
    queue: RefCell<Vec<u8>>,
    wake: Notify,
}

#[derive(Default)]
struct Hub {
    topics: RefCell<HashMap<String, Vec<Rc<Sub>>>>,
    next_id: std::cell::Cell<u64>,
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

async fn subscriber(mut s: TcpStream, sub: Rc<Sub>, per_event: bool) {
    if s
        .write_all(b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nCache-Control: no-cache\r\nConnection: close\r\n\r\n: ok\n\n")
        .await
        .is_err()
    {
        return;
    }
    let mut out = Vec::new();
    loop {
        sub.wake.notified().await;
        std::mem::swap(&mut out, &mut *sub.queue.borrow_mut());
        if out.is_empty() {
            continue;
        }
        let ok = if per_event {
            let mut ok = true;
            for ev in out.split_inclusive(|&b| b == 0) {
                let ev = ev.strip_suffix(&[0]).unwrap_or(ev);
                if s.write_all(ev).await.is_err() {
                    ok = false;
                    break;
                }
            }
            ok
        } else {
            s.write_all(&out).await.is_ok()
        };
        out.clear();
        if !ok {
            return;
        }
    }
}

async fn conn(mut s: TcpStream, hub: Rc<Hub>, per_event: bool) {
    let _ = s.set_nodelay(true);
    // Heap buffer only: a stack array here would live in every subscriber task's future.
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
        let body = String::from_utf8_lossy(&buf[h..h + len]).into_owned();
        buf.drain(..h + len);
        if method == "GET" {
            if let Some(topic) = target.strip_prefix("/events/") {
                let topic = topic.to_string();
                drop((buf, head, body));
                let sub = Rc::new(Sub {
                    queue: RefCell::new(Vec::new()),
                    wake: Notify::new(),
                });
                hub.topics
                    .borrow_mut()
                    .entry(topic.clone())
                    .or_default()
                    .push(sub.clone());
                subscriber(s, sub.clone(), per_event).await;
                if let Some(v) = hub.topics.borrow_mut().get_mut(&topic) {
                    v.retain(|x| !Rc::ptr_eq(x, &sub));
                }
                return;
            }
        }
        let reply: &[u8] = if method == "POST" && target == "/publish" {
            match (json_str(&body, "topic"), json_str(&body, "data")) {
                (Some(topic), Some(data)) => {
                    let id = hub.next_id.get() + 1;
                    hub.next_id.set(id);
                    let mut ev = format!("id: {id}\ndata: {data}\n\n").into_bytes();
                    if per_event {
                        ev.push(0);
                    }
                    if let Some(subs) = hub.topics.borrow().get(topic) {
                        for sub in subs {
                            sub.queue.borrow_mut().extend_from_slice(&ev);
                            sub.wake.notify_one();
                        }
                    }
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
    loop {
        match l.accept().await {
            Ok((s, _)) => {
                tokio::task::spawn_local(conn(s, hub.clone(), o.per_event_writes));
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
