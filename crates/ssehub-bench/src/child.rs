//! The subscriber engine. It runs in child processes (`ssehub-bench child`, started by the
//! coordinator), each holding a share of the connections on its own source addresses, and talks
//! to the coordinator with one JSON object per line on stdin/stdout.
//!
//! Commands: `wait {expected, timeout_ms}` (until every live connection has the expected events
//! per topic), `drop` (close every connection at once), `reconnect` (reopen all at once with
//! `Last-Event-ID`), `finish` (report and exit).

use std::cell::RefCell;
use std::collections::BTreeMap;
use std::io::Write;
use std::net::Ipv4Addr;
use std::rc::Rc;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::task::JoinHandle;

use crate::hist::Hist;
use crate::http::{build_request, connect_from, head_end, parse_head, Url};
use crate::sse::{parse_marker, ChunkDecoder, SseParser};
use crate::{now_us, procfs};

/// What one child process is asked to do.
#[derive(Serialize, Deserialize, Clone, Debug)]
pub struct ChildConfig {
    pub sub_url: String,
    pub headers: Vec<String>,
    pub topic_prefix: String,
    pub topics: u64,
    /// Global connection indices `first .. first + count`; topic = index % topics.
    pub first: u64,
    pub count: u64,
    pub src_base: Option<Ipv4Addr>,
    pub per_addr: u64,
    /// New connections per second for this child (0 = all at once).
    pub ramp: f64,
    pub connect_timeout_ms: u64,
    pub last_event_id: Option<String>,
    pub read_buf: usize,
}

pub fn topic_name(prefix: &str, i: u64) -> String {
    format!("{prefix}{i}")
}

/// First explicit source port; connection i of an address uses `PORT_BASE + i` on its first
/// connect and `PORT_BASE + per_addr + i` on the next (so an immediate reconnect does not meet
/// its own TIME_WAIT), alternating.
pub const PORT_BASE: u64 = 10_000;
/// Most connections per source address with explicit ports (`PORT_BASE + 2 × per_addr` ≤ 65,535).
pub const MAX_PER_ADDR: u64 = 27_000;

/// Source address and port of global connection `global` on its `attempt`-th connect.
pub fn src_addr(
    base: Option<Ipv4Addr>,
    per_addr: u64,
    global: u64,
    attempt: u64,
) -> Option<(Ipv4Addr, u16)> {
    let per = per_addr.clamp(1, MAX_PER_ADDR);
    base.map(|b| {
        let ip = Ipv4Addr::from(u32::from(b).wrapping_add((global / per) as u32));
        (ip, (PORT_BASE + (attempt % 2) * per + global % per) as u16)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn source_addresses_and_ports() {
        let b = Some(Ipv4Addr::new(127, 5, 0, 2));
        assert_eq!(
            src_addr(b, 100, 0, 0),
            Some((Ipv4Addr::new(127, 5, 0, 2), 10_000))
        );
        assert_eq!(
            src_addr(b, 100, 99, 0),
            Some((Ipv4Addr::new(127, 5, 0, 2), 10_099))
        );
        assert_eq!(
            src_addr(b, 100, 100, 0),
            Some((Ipv4Addr::new(127, 5, 0, 3), 10_000))
        );
        assert_eq!(
            src_addr(b, 100, 100, 1),
            Some((Ipv4Addr::new(127, 5, 0, 3), 10_100))
        );
        assert_eq!(
            src_addr(b, 100, 100, 2),
            Some((Ipv4Addr::new(127, 5, 0, 3), 10_000))
        );
        let (_, top) =
            src_addr(b, 1_000_000, MAX_PER_ADDR - 1, 1).unwrap_or((Ipv4Addr::LOCALHOST, 0));
        assert_eq!(u64::from(top), PORT_BASE + 2 * MAX_PER_ADDR - 1);
        assert_eq!(src_addr(None, 100, 5, 0), None);
    }
}

#[derive(Clone, Copy, PartialEq, Debug)]
enum Phase {
    Pending,
    Live,
    Failed,
    Closed,
    Dropped,
}

/// Per-connection sequence tracking; survives reconnects.
#[derive(Default)]
struct Track {
    received: u64,
    seen: Vec<u64>,
    max_seq: Option<u64>,
}

struct ConnState {
    phase: Phase,
    topic: u64,
    sse: SseParser,
    track: Track,
    ever_live: bool,
}

#[derive(Default)]
struct Stats {
    hist: Hist,
    pending: u64,
    live: u64,
    failed: u64,
    closed: u64,
    received: u64,
    dups: u64,
    reordered: u64,
    unmarked: u64,
    bytes: u64,
    first_recv_us: u64,
    last_recv_us: u64,
    first_live_us: u64,
    last_live_us: u64,
    errors: BTreeMap<String, u64>,
}

impl Stats {
    fn error(&mut self, e: &str) {
        let mut k: String = e.chars().take(80).collect();
        // Group "... (os error N)" variants and status codes as they are.
        if let Some(i) = k.find(" (os error") {
            k.truncate(i);
        }
        *self.errors.entry(k).or_insert(0) += 1;
    }
}

struct Engine {
    cfg: ChildConfig,
    url: Url,
    conns: Vec<RefCell<ConnState>>,
    handles: RefCell<Vec<Option<JoinHandle<()>>>>,
    stats: RefCell<Stats>,
    /// How many times `open_all` ran before the current one (0 = first connect).
    attempt: std::cell::Cell<u64>,
}

const MAX_SEQ: u64 = 50_000_000;

fn on_event(track: &mut Track, stats: &mut Stats, data: &[u8], now: u64) {
    let Some((sent, seq)) = parse_marker(data) else {
        stats.unmarked += 1;
        return;
    };
    if seq > MAX_SEQ {
        stats.unmarked += 1;
        return;
    }
    let (w, b) = ((seq / 64) as usize, seq % 64);
    if track.seen.len() <= w {
        track.seen.resize(w + 1, 0);
    }
    if track.seen[w] & (1 << b) != 0 {
        stats.dups += 1;
        return;
    }
    track.seen[w] |= 1 << b;
    track.received += 1;
    if track.max_seq.is_some_and(|m| seq < m) {
        stats.reordered += 1;
    }
    track.max_seq = Some(track.max_seq.map_or(seq, |m| m.max(seq)));
    stats.received += 1;
    stats.hist.record(now.saturating_sub(sent));
    if stats.first_recv_us == 0 {
        stats.first_recv_us = now;
    }
    stats.last_recv_us = now;
}

impl Engine {
    async fn run_conn(self: &Rc<Self>, i: usize, lei: Option<String>) -> Result<(), String> {
        let global = self.cfg.first + i as u64;
        let topic = self.conns[i].borrow().topic;
        let path = self
            .url
            .path
            .replace("{topic}", &topic_name(&self.cfg.topic_prefix, topic));
        let mut headers = vec![
            "Accept: text/event-stream".to_string(),
            "Cache-Control: no-cache".to_string(),
        ];
        if let Some(id) = lei {
            headers.push(format!("Last-Event-ID: {id}"));
        }
        headers.extend(self.cfg.headers.iter().cloned());
        let req = build_request("GET", &self.url, &path, &headers, None, b"");
        let ct = Duration::from_millis(self.cfg.connect_timeout_ms);
        let attempt = self.attempt.get();
        let src = src_addr(self.cfg.src_base, self.cfg.per_addr, global, attempt);
        let mut buf = vec![0u8; self.cfg.read_buf];
        let (mut stream, head, body_start) = tokio::time::timeout(ct, async {
            let mut s = connect_from(src, self.url.addr)
                .await
                .map_err(|e| format!("connect: {e}"))?;
            s.write_all(&req).await.map_err(|e| format!("write: {e}"))?;
            let mut acc = Vec::new();
            loop {
                let n = s
                    .read(&mut buf)
                    .await
                    .map_err(|e| format!("read head: {e}"))?;
                if n == 0 {
                    return Err("eof before head".to_string());
                }
                acc.extend_from_slice(&buf[..n]);
                if let Some(h) = head_end(&acc) {
                    let head = parse_head(&acc[..h])?;
                    return Ok((s, head, acc[h..].to_vec()));
                }
                if acc.len() > 64 * 1024 {
                    return Err("head too large".to_string());
                }
            }
        })
        .await
        .map_err(|_| "timeout connecting".to_string())??;
        if head.status != 200 {
            return Err(format!("status {}", head.status));
        }
        {
            let now = now_us();
            let mut c = self.conns[i].borrow_mut();
            c.phase = Phase::Live;
            c.ever_live = true;
            c.sse.reset_stream();
            let mut st = self.stats.borrow_mut();
            st.pending -= 1;
            st.live += 1;
            if st.first_live_us == 0 {
                st.first_live_us = now;
            }
            st.last_live_us = now;
        }
        let mut chunk = head.chunked.then(ChunkDecoder::default);
        let mut pending: Vec<u8> = body_start;
        loop {
            if !pending.is_empty() {
                let now = now_us();
                let mut c = self.conns[i].borrow_mut();
                let c = &mut *c;
                let mut st = self.stats.borrow_mut();
                let st = &mut *st;
                st.bytes += pending.len() as u64;
                let (sse, track) = (&mut c.sse, &mut c.track);
                let mut handle = |d: &[u8]| on_event(track, st, d, now);
                match chunk.as_mut() {
                    Some(dec) => {
                        dec.feed(&pending, &mut |piece| sse.feed(piece, &mut handle))?;
                        if dec.is_done() {
                            return Ok(());
                        }
                    }
                    None => sse.feed(&pending, &mut handle),
                }
                pending.clear();
            }
            let n = stream
                .read(&mut buf)
                .await
                .map_err(|e| format!("read: {e}"))?;
            if n == 0 {
                return Ok(());
            }
            pending.extend_from_slice(&buf[..n]);
        }
    }

    fn spawn_conn(self: &Rc<Self>, i: usize, lei: Option<String>) {
        let me = Rc::clone(self);
        let h = tokio::task::spawn_local(async move {
            let r = me.run_conn(i, lei).await;
            let mut c = me.conns[i].borrow_mut();
            let mut st = me.stats.borrow_mut();
            match (c.phase, r) {
                (Phase::Pending, r) => {
                    c.phase = Phase::Failed;
                    st.pending -= 1;
                    st.failed += 1;
                    st.error(&r.err().unwrap_or_else(|| "closed before live".into()));
                }
                (Phase::Live, r) => {
                    c.phase = Phase::Closed;
                    st.live -= 1;
                    st.closed += 1;
                    st.error(&match r {
                        Ok(()) => "closed by server after live".to_string(),
                        Err(e) => format!("after live: {e}"),
                    });
                }
                _ => {}
            }
        });
        self.handles.borrow_mut()[i] = Some(h);
    }

    /// Start every connection (at the configured ramp, or all at once) and wait until each is
    /// live or failed.
    async fn open_all(self: &Rc<Self>, ramp: f64, with_ids: bool) -> Value {
        let start = now_us();
        {
            let mut st = self.stats.borrow_mut();
            // Errors and failures are those of this round of connects.
            st.errors.clear();
            st.failed = 0;
            st.first_live_us = 0;
            st.last_live_us = 0;
            st.pending += self.conns.len() as u64;
        }
        let t0 = tokio::time::Instant::now();
        for i in 0..self.conns.len() {
            if ramp > 0.0 {
                let at = t0 + Duration::from_secs_f64(i as f64 / ramp);
                tokio::time::sleep_until(at).await;
            } else if i % 256 == 255 {
                tokio::task::yield_now().await;
            }
            let lei = {
                let mut c = self.conns[i].borrow_mut();
                c.phase = Phase::Pending;
                if with_ids {
                    c.sse
                        .last_id
                        .as_ref()
                        .map(|v| String::from_utf8_lossy(v).into_owned())
                } else {
                    self.cfg.last_event_id.clone()
                }
            };
            self.spawn_conn(i, lei);
        }
        while self.stats.borrow().pending > 0 {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        let st = self.stats.borrow();
        json!({
            "ev": "ready",
            "start_us": start,
            "live": st.live,
            "failed": st.failed,
            "first_live_us": st.first_live_us,
            "last_live_us": st.last_live_us,
            "errors": st.errors,
            "cpu_s": procfs::self_sample().cpu_s,
        })
    }

    fn drop_all(&self) {
        for h in self.handles.borrow_mut().iter_mut() {
            if let Some(h) = h.take() {
                h.abort();
            }
        }
        let mut st = self.stats.borrow_mut();
        for c in &self.conns {
            let mut c = c.borrow_mut();
            if c.phase == Phase::Live {
                st.live -= 1;
            }
            if c.phase == Phase::Pending {
                st.pending -= 1;
            }
            c.phase = Phase::Dropped;
        }
    }

    /// (connections still short of their expected events, missing events in total).
    fn missing(&self, expected: &[u64], only_live: bool) -> (u64, u64) {
        let (mut short, mut missing) = (0, 0);
        for c in &self.conns {
            let c = c.borrow();
            if only_live && c.phase != Phase::Live {
                continue;
            }
            let want = expected.get(c.topic as usize).copied().unwrap_or(0);
            if c.track.received < want {
                short += 1;
                missing += want - c.track.received;
            }
        }
        (short, missing)
    }

    fn result(&self, expected: &[u64]) -> Value {
        let st = self.stats.borrow();
        let (short, missing) = self.missing(expected, false);
        let expected_total: u64 = self
            .conns
            .iter()
            .map(|c| {
                expected
                    .get(c.borrow().topic as usize)
                    .copied()
                    .unwrap_or(0)
            })
            .sum();
        let ever_live = self.conns.iter().filter(|c| c.borrow().ever_live).count();
        let me = procfs::self_sample();
        json!({
            "ev": "result",
            "conns": self.conns.len(),
            "live": st.live,
            "ever_live": ever_live,
            "failed": st.failed,
            "closed": st.closed,
            "expected": expected_total,
            "received": st.received,
            "missing": missing,
            "short_conns": short,
            "dups": st.dups,
            "reordered": st.reordered,
            "unmarked": st.unmarked,
            "bytes": st.bytes,
            "first_recv_us": st.first_recv_us,
            "last_recv_us": st.last_recv_us,
            "hist": st.hist.to_json(),
            "errors": st.errors,
            "cpu_s": me.cpu_s,
            "rss_kib": me.rss_kib,
        })
    }
}

fn emit(v: &Value) {
    let mut out = std::io::stdout().lock();
    let _ = writeln!(out, "{v}");
    let _ = out.flush();
}

async fn child_main() -> Result<(), String> {
    let mut lines = BufReader::new(tokio::io::stdin()).lines();
    let first = lines
        .next_line()
        .await
        .map_err(|e| e.to_string())?
        .ok_or("no config on stdin")?;
    let cfg: ChildConfig = serde_json::from_str(&first).map_err(|e| format!("config: {e}"))?;
    let url = Url::parse(&cfg.sub_url)?;
    let conns = (0..cfg.count)
        .map(|i| {
            RefCell::new(ConnState {
                phase: Phase::Pending,
                topic: (cfg.first + i) % cfg.topics.max(1),
                sse: SseParser::default(),
                track: Track::default(),
                ever_live: false,
            })
        })
        .collect();
    let eng = Rc::new(Engine {
        handles: RefCell::new((0..cfg.count).map(|_| None).collect()),
        cfg,
        url,
        conns,
        stats: RefCell::new(Stats::default()),
        attempt: std::cell::Cell::new(0),
    });
    let ramp = eng.cfg.ramp;
    emit(&eng.open_all(ramp, false).await);
    let mut expected: Vec<u64> = Vec::new();
    while let Some(line) = lines.next_line().await.map_err(|e| e.to_string())? {
        let cmd: Value = serde_json::from_str(&line).map_err(|e| format!("command: {e}"))?;
        match cmd["cmd"].as_str().unwrap_or("") {
            "wait" => {
                expected = cmd["expected"]
                    .as_array()
                    .map(|a| a.iter().map(|v| v.as_u64().unwrap_or(0)).collect())
                    .unwrap_or_default();
                let deadline = tokio::time::Instant::now()
                    + Duration::from_millis(cmd["timeout_ms"].as_u64().unwrap_or(10_000));
                let idle_ms = cmd["idle_ms"].as_u64().unwrap_or(0);
                let mut last_count = eng.stats.borrow().received;
                let mut last_change = tokio::time::Instant::now();
                let complete = loop {
                    let (short, _) = eng.missing(&expected, true);
                    if short == 0 {
                        break true;
                    }
                    let now = tokio::time::Instant::now();
                    if now >= deadline {
                        break false;
                    }
                    let c = eng.stats.borrow().received;
                    if c != last_count {
                        last_count = c;
                        last_change = now;
                    } else if idle_ms > 0 && now - last_change >= Duration::from_millis(idle_ms) {
                        break false;
                    }
                    tokio::time::sleep(Duration::from_millis(10)).await;
                };
                let st = eng.stats.borrow();
                let (short, missing) = eng.missing(&expected, true);
                emit(
                    &json!({"ev": "waited", "complete": complete, "short_conns": short,
                    "missing": missing, "received": st.received, "last_recv_us": st.last_recv_us,
                    "first_recv_us": st.first_recv_us, "live": st.live,
                    "last_id": eng.conns.first().and_then(|c| c.borrow().sse.last_id.clone())
                        .map(|v| String::from_utf8_lossy(&v).into_owned())}),
                );
            }
            "drop" => {
                eng.drop_all();
                // Let the aborted tasks be dropped (their sockets closed) before answering.
                tokio::task::yield_now().await;
                emit(&json!({"ev": "dropped", "at_us": now_us()}));
            }
            "reconnect" => {
                eng.attempt.set(eng.attempt.get() + 1);
                let r = eng.open_all(0.0, true).await;
                emit(&r);
            }
            "finish" => {
                emit(&eng.result(&expected));
                eng.drop_all();
                return Ok(());
            }
            other => return Err(format!("unknown command {other:?}")),
        }
    }
    Ok(())
}

/// Entry point of `ssehub-bench child`.
pub fn run() -> i32 {
    let rt = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            emit(&json!({"ev": "error", "error": e.to_string()}));
            return 1;
        }
    };
    let local = tokio::task::LocalSet::new();
    match local.block_on(&rt, child_main()) {
        Ok(()) => 0,
        Err(e) => {
            emit(&json!({"ev": "error", "error": e}));
            1
        }
    }
}
