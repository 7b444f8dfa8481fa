//! The coordinator: starts subscriber processes, publishes, samples the hub from /proc and
//! assembles the report, for each mode.

use std::cell::{Cell, RefCell};
use std::collections::BTreeMap;
use std::process::Stdio;
use std::rc::Rc;
use std::time::Duration;

use serde_json::{json, Value};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader, Lines};
use tokio::process::{Child, ChildStdin, ChildStdout, Command};

use crate::child::{topic_name, ChildConfig};
use crate::hist::Hist;
use crate::http::{build_request, HttpConn, Url};
use crate::procfs::{self, Sample};
use crate::source::{pace, Producer, Source};
use crate::sse::make_payload;
use crate::{now_us, report, Opts};

#[derive(Clone, Copy, PartialEq, Debug)]
pub enum Mode {
    Idle,
    Fanout,
    Publish,
    Replay,
    Storm,
}

impl Mode {
    fn name(self) -> &'static str {
        match self {
            Mode::Idle => "idle",
            Mode::Fanout => "fanout",
            Mode::Publish => "publish",
            Mode::Replay => "replay",
            Mode::Storm => "storm",
        }
    }
}

pub fn log(msg: &str) {
    use std::io::Write;
    let _ = writeln!(std::io::stderr().lock(), "[ssehub-bench] {msg}");
}

// ---------------------------------------------------------------------------------------------
// Subscriber processes

struct Kid {
    child: Child,
    stdin: ChildStdin,
    lines: Lines<BufReader<ChildStdout>>,
}

impl Kid {
    async fn send(&mut self, v: &Value) -> Result<(), String> {
        let mut s = v.to_string();
        s.push('\n');
        self.stdin
            .write_all(s.as_bytes())
            .await
            .map_err(|e| format!("to child: {e}"))?;
        self.stdin
            .flush()
            .await
            .map_err(|e| format!("to child: {e}"))
    }

    async fn recv(&mut self, ev: &str, timeout: Duration) -> Result<Value, String> {
        let line = tokio::time::timeout(timeout, self.lines.next_line())
            .await
            .map_err(|_| format!("child did not answer {ev:?} in {timeout:?}"))?
            .map_err(|e| format!("from child: {e}"))?
            .ok_or_else(|| format!("child exited before {ev:?}"))?;
        let v: Value =
            serde_json::from_str(&line).map_err(|e| format!("child said {line:?}: {e}"))?;
        if v["ev"] == "error" {
            return Err(format!("child error: {}", v["error"]));
        }
        if v["ev"] != ev {
            return Err(format!("expected {ev:?} from child, got {v}"));
        }
        Ok(v)
    }
}

struct Kids(Vec<Kid>);

impl Kids {
    /// Start `procs` processes sharing global connections `0..n` (contiguous ranges, so each
    /// process has its own source addresses) and wait until each reports `ready`.
    async fn start(
        o: &Opts,
        n: u64,
        procs: u64,
        topics: u64,
        ramp: f64,
        lei: Option<String>,
    ) -> Result<(Kids, Vec<Value>), String> {
        let exe = std::env::current_exe().map_err(|e| e.to_string())?;
        let src_base = o.src_base()?;
        let urls = o.sub_urls();
        let mut kids = Vec::new();
        for p in 0..procs {
            let first = n * p / procs;
            let last = n * (p + 1) / procs;
            let cfg = ChildConfig {
                sub_url: urls[p as usize % urls.len()].clone(),
                headers: o.sub_header.clone(),
                topic_prefix: o.topic_prefix.clone(),
                topics,
                first,
                count: last - first,
                src_base,
                per_addr: o.per_addr,
                ramp: ramp / procs as f64,
                connect_timeout_ms: (o.connect_timeout * 1000.0) as u64,
                last_event_id: lei.clone(),
                read_buf: o.read_buf,
            };
            let mut child = Command::new(&exe)
                .arg("child")
                .stdin(Stdio::piped())
                .stdout(Stdio::piped())
                .stderr(Stdio::inherit())
                .kill_on_drop(true)
                .spawn()
                .map_err(|e| format!("spawn child: {e}"))?;
            let stdin = child.stdin.take().ok_or("no child stdin")?;
            let stdout = child.stdout.take().ok_or("no child stdout")?;
            let mut kid = Kid {
                child,
                stdin,
                lines: BufReader::new(stdout).lines(),
            };
            kid.send(&serde_json::to_value(&cfg).map_err(|e| e.to_string())?)
                .await?;
            kids.push(kid);
        }
        let per = n.div_ceil(procs.max(1));
        let t = Duration::from_secs_f64(
            if ramp > 0.0 {
                per as f64 * procs as f64 / ramp
            } else {
                0.0
            } + o.connect_timeout
                + 30.0,
        );
        let mut readies = Vec::new();
        for k in &mut kids {
            readies.push(k.recv("ready", t).await?);
        }
        Ok((Kids(kids), readies))
    }

    async fn all(&mut self, cmd: Value, ev: &str, timeout: Duration) -> Result<Vec<Value>, String> {
        for k in &mut self.0 {
            k.send(&cmd).await?;
        }
        let mut out = Vec::new();
        for k in &mut self.0 {
            out.push(k.recv(ev, timeout).await?);
        }
        Ok(out)
    }

    async fn finish(mut self) -> Result<Vec<Value>, String> {
        let r = self
            .all(json!({"cmd": "finish"}), "result", Duration::from_secs(60))
            .await?;
        for k in &mut self.0 {
            let _ = tokio::time::timeout(Duration::from_secs(10), k.child.wait()).await;
        }
        Ok(r)
    }
}

fn sum(vs: &[Value], key: &str) -> u64 {
    vs.iter().map(|v| v[key].as_u64().unwrap_or(0)).sum()
}

fn max_of(vs: &[Value], key: &str) -> u64 {
    vs.iter()
        .map(|v| v[key].as_u64().unwrap_or(0))
        .max()
        .unwrap_or(0)
}

fn min_nonzero(vs: &[Value], key: &str) -> u64 {
    vs.iter()
        .map(|v| v[key].as_u64().unwrap_or(0))
        .filter(|x| *x > 0)
        .min()
        .unwrap_or(0)
}

fn merge_errors(vs: &[Value]) -> Value {
    let mut m: BTreeMap<String, u64> = BTreeMap::new();
    for v in vs {
        if let Some(o) = v["errors"].as_object() {
            for (k, c) in o {
                *m.entry(k.clone()).or_insert(0) += c.as_u64().unwrap_or(0);
            }
        }
    }
    json!(m)
}

/// Merge the children's final results into one object.
fn merge_results(rs: &[Value]) -> (Value, Hist) {
    let mut h = Hist::new();
    for r in rs {
        h.merge(&Hist::from_json(&r["hist"]));
    }
    let v = json!({
        "conns": sum(rs, "conns"),
        "live_at_end": sum(rs, "live"),
        "ever_live": sum(rs, "ever_live"),
        "failed": sum(rs, "failed"),
        "closed_by_server": sum(rs, "closed"),
        "expected": sum(rs, "expected"),
        "received": sum(rs, "received"),
        "missing": sum(rs, "missing"),
        "short_conns": sum(rs, "short_conns"),
        "dups": sum(rs, "dups"),
        "reordered": sum(rs, "reordered"),
        "unmarked": sum(rs, "unmarked"),
        "bytes": sum(rs, "bytes"),
        "first_recv_us": min_nonzero(rs, "first_recv_us"),
        "last_recv_us": max_of(rs, "last_recv_us"),
        "errors": merge_errors(rs),
        "cpu_s": rs.iter().map(|r| r["cpu_s"].as_f64().unwrap_or(0.0)).sum::<f64>(),
        "rss_kib": sum(rs, "rss_kib"),
    });
    (v, h)
}

/// Latency per subscribe URL (`--sub-url` first, then each `--sub-url-extra`): process p
/// subscribed on URL p mod `urls`, so a cluster run shows each node's publish→receive.
fn latency_by_url(results: &[Value], urls: usize) -> Value {
    let urls = urls.max(1);
    let mut hists = vec![Hist::new(); urls];
    for (p, r) in results.iter().enumerate() {
        hists[p % urls].merge(&Hist::from_json(&r["hist"]));
    }
    Value::Array(hists.iter().map(Hist::summary_ms).collect())
}

// ---------------------------------------------------------------------------------------------
// Publisher

/// An event to publish: (topic index, per-topic sequence number, global number).
type Ev = (u64, u64, u64);

/// Round-robin events `range` over `topics`: event i goes to topic i % K as its (i / K)-th.
fn round_robin(range: std::ops::Range<u64>, topics: u64) -> Vec<Ev> {
    range.map(|i| (i % topics, i / topics, i)).collect()
}

#[derive(Default)]
struct PubState {
    ok_per_topic: Vec<u64>,
    ok: u64,
    errors: BTreeMap<String, u64>,
    first_send_us: u64,
    last_send_us: u64,
    last_done_us: u64,
    req_hist: Hist,
    statuses: BTreeMap<u16, u64>,
}

struct PubResult {
    st: PubState,
    elapsed_s: f64,
}

impl PubResult {
    fn to_json(&self, wanted: usize, rate: f64) -> Value {
        json!({
            "wanted": wanted,
            "ok": self.st.ok,
            "errors": self.st.errors,
            "statuses": self.st.statuses,
            "target_rate": rate,
            "achieved_rate": if self.elapsed_s > 0.0 { self.st.ok as f64 / self.elapsed_s } else { 0.0 },
            "elapsed_s": self.elapsed_s,
            "first_send_us": self.st.first_send_us,
            "last_send_us": self.st.last_send_us,
            "request_latency": self.st.req_hist.summary_ms(),
        })
    }
}

async fn publish(o: &Opts, events: Vec<Ev>, rate: f64, topics: u64) -> Result<PubResult, String> {
    if let Some(source) = o.source {
        return publish_source(o, source, events, rate, topics).await;
    }
    let url = Url::parse(&o.pub_url)?;
    let st = Rc::new(RefCell::new(PubState {
        ok_per_topic: vec![0; topics as usize],
        ..PubState::default()
    }));
    let next = Rc::new(Cell::new(0usize));
    let events = Rc::new(events);
    let t0 = tokio::time::Instant::now();
    let start_us = now_us();
    let mut handles = Vec::new();
    for _ in 0..o.pub_conns.max(1) {
        let (st, next, events, url, o) = (
            st.clone(),
            next.clone(),
            events.clone(),
            url.clone(),
            o.clone(),
        );
        handles.push(tokio::task::spawn_local(async move {
            let mut conn = HttpConn::new(url.clone(), None);
            let ct = (!o.pub_content_type.is_empty()).then_some(o.pub_content_type.as_str());
            loop {
                let j = next.get();
                if j >= events.len() {
                    break;
                }
                next.set(j + 1);
                if rate > 0.0 {
                    tokio::time::sleep_until(t0 + Duration::from_secs_f64(j as f64 / rate)).await;
                }
                let (topic, seq, global) = events[j];
                let name = topic_name(&o.topic_prefix, topic);
                let path = url.path.replace("{topic}", &name);
                let send = now_us();
                let payload = make_payload(send, seq, o.payload_size);
                let body = o
                    .pub_body
                    .replace("{topic}", &name)
                    .replace("{seq}", &global.to_string())
                    .replace("{payload}", &payload);
                let req = build_request(
                    &o.pub_method,
                    &url,
                    &path,
                    &o.pub_header,
                    ct,
                    body.as_bytes(),
                );
                let r = conn.request(&req, Duration::from_secs(60)).await;
                let done = now_us();
                let mut s = st.borrow_mut();
                if s.first_send_us == 0 || send < s.first_send_us {
                    s.first_send_us = send;
                }
                s.last_send_us = s.last_send_us.max(send);
                s.last_done_us = s.last_done_us.max(done);
                s.req_hist.record(done.saturating_sub(send));
                match r {
                    Ok((status, body)) => {
                        *s.statuses.entry(status).or_insert(0) += 1;
                        if (200..300).contains(&status) {
                            s.ok += 1;
                            s.ok_per_topic[topic as usize] += 1;
                        } else {
                            let b: String =
                                String::from_utf8_lossy(&body).chars().take(60).collect();
                            *s.errors.entry(format!("status {status}: {b}")).or_insert(0) += 1;
                        }
                    }
                    Err(e) => *s.errors.entry(e).or_insert(0) += 1,
                }
            }
        }));
    }
    use std::io::IsTerminal;
    let ticker = (o.progress || std::io::stderr().is_terminal()).then(|| {
        let (st, total) = (st.clone(), events.len());
        tokio::task::spawn_local(async move {
            let mut tick = tokio::time::interval(Duration::from_secs(1));
            tick.tick().await;
            loop {
                tick.tick().await;
                eprint!("\r{}", progress_line(&st.borrow(), total, t0.elapsed()));
            }
        })
    });
    for h in handles {
        h.await.map_err(|e| e.to_string())?;
    }
    if let Some(ticker) = ticker {
        ticker.abort();
        eprintln!(
            "\r{}",
            progress_line(&st.borrow(), events.len(), t0.elapsed())
        );
    }
    let st = Rc::try_unwrap(st)
        .map_err(|_| "publisher state still shared")?
        .into_inner();
    let elapsed_s = (st.last_done_us.max(start_us) - start_us) as f64 / 1e6;
    Ok(PubResult { st, elapsed_s })
}

/// Writes `events` into a source (one producer connection), in batches of the events due:
/// `--source-batch` flat out, usually one at a fixed rate.
async fn publish_source(
    o: &Opts,
    source: Source,
    events: Vec<Ev>,
    rate: f64,
    topics: u64,
) -> Result<PubResult, String> {
    let mut producer = Producer::connect(source, &o.source_url, &o.source_target).await?;
    let mut st = PubState {
        ok_per_topic: vec![0; topics as usize],
        ..PubState::default()
    };
    let batch = o.source_batch.max(1);
    let t0 = tokio::time::Instant::now();
    let start_us = now_us();
    let mut j = 0;
    while j < events.len() {
        let end = pace(t0, j as u64, (j + batch).min(events.len()) as u64, rate).await as usize;
        let topic = topic_name(&o.topic_prefix, events[j].0);
        let send = now_us();
        let payloads: Vec<String> = events[j..end]
            .iter()
            .map(|&(_, seq, _)| make_payload(send, seq, o.payload_size))
            .collect();
        let r = producer.send(&topic, &payloads).await;
        let done = now_us();
        if st.first_send_us == 0 {
            st.first_send_us = send;
        }
        st.last_send_us = send;
        st.last_done_us = done;
        st.req_hist.record(done.saturating_sub(send));
        match r {
            Ok(()) => {
                for &(t, _, _) in &events[j..end] {
                    st.ok += 1;
                    st.ok_per_topic[t as usize] += 1;
                }
            }
            Err(e) => *st.errors.entry(e).or_insert(0) += (end - j) as u64,
        }
        j = end;
    }
    let elapsed_s = (st.last_done_us.max(start_us) - start_us) as f64 / 1e6;
    Ok(PubResult { st, elapsed_s })
}

/// The sum of every `ssehub_bridge_published_total` line of a /metrics page.
fn bridge_published(text: &str) -> u64 {
    text.lines()
        .filter(|l| l.starts_with("ssehub_bridge_published_total"))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum::<f64>() as u64
}

/// Samples of (time µs, bridges' published total) from /metrics, every 20 ms until stopped.
struct MetricsSampler {
    samples: Rc<RefCell<Vec<(u64, u64)>>>,
    stop: Rc<Cell<bool>>,
    task: tokio::task::JoinHandle<()>,
}

impl MetricsSampler {
    fn start(url: &str) -> Result<MetricsSampler, String> {
        let url = Url::parse(url)?;
        let samples = Rc::new(RefCell::new(Vec::new()));
        let stop = Rc::new(Cell::new(false));
        let (s, halt) = (samples.clone(), stop.clone());
        let task = tokio::task::spawn_local(async move {
            let mut conn = HttpConn::new(url.clone(), None);
            let req = build_request("GET", &url, &url.path, &[], None, b"");
            while !halt.get() {
                if let Ok((200, body)) = conn.request(&req, Duration::from_secs(5)).await {
                    let v = bridge_published(&String::from_utf8_lossy(&body));
                    s.borrow_mut().push((now_us(), v));
                }
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        });
        Ok(MetricsSampler {
            samples,
            stop,
            task,
        })
    }

    /// Stops sampling; the bridges' rate into the hub over `published` events sent from
    /// `first_send_us`: the time the counter first reached its start plus `published`.
    async fn finish(self, first_send_us: u64, published: u64, timeout: Duration) -> Value {
        // Without subscribers nothing waited for the hub: wait here (bounded) until the
        // bridges' count has grown by what was sent.
        let deadline = tokio::time::Instant::now() + timeout;
        while tokio::time::Instant::now() < deadline {
            let done = {
                let samples = self.samples.borrow();
                match (samples.first(), samples.last()) {
                    (Some(a), Some(b)) => b.1 >= a.1 + published,
                    _ => false,
                }
            };
            if done {
                break;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        self.stop.set(true);
        let _ = self.task.await;
        let samples = self.samples.borrow();
        let Some(&(_, base)) = samples.first() else {
            return Value::Null;
        };
        let last = samples.last().map_or(base, |s| s.1);
        // The rate over what came in, to the first sample showing the final count (so an
        // incomplete run still has one).
        let at_last = samples
            .iter()
            .find(|(_, v)| *v == last)
            .map_or(first_send_us, |(t, _)| *t);
        let secs = at_last.saturating_sub(first_send_us) as f64 / 1e6;
        json!({
            "bridge_published": last - base,
            "complete": last >= base + published,
            "last_in_s": secs,
            "events_per_s": (secs > 0.0).then(|| ((last - base) as f64 / secs).round()),
            "samples": samples.len(),
        })
    }
}

/// `published 12,000/100,000 [###.......] 12% 4,000/s, 2 errors`: the progress bar of a
/// publishing run.
fn progress_line(st: &PubState, total: usize, elapsed: Duration) -> String {
    const WIDTH: usize = 20;
    let done = st.ok as usize + st.errors.values().sum::<u64>() as usize;
    let filled = (done * WIDTH)
        .checked_div(total)
        .unwrap_or(WIDTH)
        .min(WIDTH);
    let percent = (done * 100).checked_div(total).unwrap_or(100);
    let rate = done as f64 / elapsed.as_secs_f64().max(1e-3);
    let errors: u64 = st.errors.values().sum();
    format!(
        "published {done}/{total} [{}{}] {percent:>3}% {rate:.0}/s, {errors} errors",
        "#".repeat(filled),
        ".".repeat(WIDTH - filled)
    )
}

// ---------------------------------------------------------------------------------------------
// Modes

struct Ctx {
    o: Opts,
    hub: Vec<u32>,
    gen0: Sample,
}

impl Ctx {
    fn hub(&self, pss: bool) -> Option<Sample> {
        (!self.hub.is_empty()).then(|| procfs::sample(&self.hub, pss))
    }
}

fn hub_json(s: &Option<Sample>) -> Value {
    s.map(Sample::to_json).unwrap_or(Value::Null)
}

fn cpu_between(a: &Option<Sample>, b: &Option<Sample>) -> Option<f64> {
    match (a, b) {
        (Some(a), Some(b)) => Some(b.cpu_s - a.cpu_s),
        _ => None,
    }
}

fn procs_for(o: &Opts, n: u64) -> u64 {
    o.procs
        .unwrap_or_else(|| n.div_ceil(o.max_per_proc.max(1)))
        .max(1)
}

async fn run_idle(c: &Ctx) -> Result<Value, String> {
    let o = &c.o;
    let n = o.conns.unwrap_or(1000);
    let procs = procs_for(o, n);
    let hub0 = c.hub(true);
    let t_start = now_us();
    log(&format!(
        "idle: opening {n} connections over {procs} process(es) at {}/s",
        o.ramp
    ));
    let (kids, readies) = Kids::start(o, n, procs, o.topics, o.ramp, None).await?;
    let hub_conn = c.hub(false);
    let live = sum(&readies, "live");
    log(&format!(
        "idle: {live} live, {} failed; holding {} s",
        sum(&readies, "failed"),
        o.hold
    ));
    tokio::time::sleep(Duration::from_secs_f64(o.hold)).await;
    let hub_held = c.hub(true);
    let results = kids.finish().await?;
    let (merged, _) = merge_results(&results);
    let held = merged["live_at_end"].as_u64().unwrap_or(0);
    let per_conn = |field: fn(&Sample) -> u64| match (&hub0, &hub_held) {
        (Some(a), Some(b)) if held > 0 => {
            json!(((field(b) as f64 - field(a) as f64) / held as f64 * 100.0).round() / 100.0)
        }
        _ => Value::Null,
    };
    Ok(json!({
        "connections": {
            "requested": n,
            "live_after_connect": live,
            "failed": sum(&readies, "failed"),
            "held_at_end": held,
            "closed_by_server": merged["closed_by_server"],
            "connect_s": (max_of(&readies, "last_live_us").saturating_sub(t_start)) as f64 / 1e6,
            "errors": merge_errors(&readies),
            "errors_at_end": merged["errors"],
        },
        "hub": {
            "before": hub_json(&hub0),
            "after_connect": hub_json(&hub_conn),
            "after_hold": hub_json(&hub_held),
            "rss_per_conn_kib": per_conn(|s| s.rss_kib),
            "pss_per_conn_kib": per_conn(|s| s.pss_kib),
            "cpu_s_connect": cpu_between(&hub0, &hub_conn),
            "cpu_s_hold": cpu_between(&hub_conn, &hub_held),
        },
        "generator_subscribers": {"cpu_s": merged["cpu_s"], "rss_kib": merged["rss_kib"], "procs": procs},
    }))
}

/// Fan-out and publish: subscribers (maybe none), publish, drain.
async fn run_fanout(c: &Ctx, mode: Mode) -> Result<Value, String> {
    let o = &c.o;
    let (n, m, rate) = match mode {
        Mode::Publish => (
            o.conns.unwrap_or(0),
            o.events.unwrap_or(20_000),
            o.rate.unwrap_or(0.0),
        ),
        _ => (
            o.conns.unwrap_or(1000),
            o.events.unwrap_or(200),
            o.rate.unwrap_or(100.0),
        ),
    };
    let k = o.topics.max(1);
    let procs = procs_for(o, n);
    let hub0 = c.hub(true);
    let mut out = json!({});
    if o.prefill > 0 {
        out["prefill"] = prefill(c).await?;
    }
    // Memory per subscriber is counted from here: after the prefilled history.
    let hub_subs0 = c.hub(false);
    let t_start = now_us();
    let mut kids = None;
    let mut readies = Vec::new();
    if n > 0 {
        log(&format!(
            "{}: opening {n} subscribers on {k} topic(s) over {procs} process(es)",
            mode.name()
        ));
        let (ks, rs) = Kids::start(o, n, procs, k, o.ramp, None).await?;
        kids = Some(ks);
        readies = rs;
        log(&format!(
            "{}: {} live, {} failed",
            mode.name(),
            sum(&readies, "live"),
            sum(&readies, "failed")
        ));
        // Let the hub settle its subscriptions before the first event.
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    let gen_pub0 = procfs::self_sample();
    let kids_cpu0: f64 = readies
        .iter()
        .map(|r| r["cpu_s"].as_f64().unwrap_or(0.0))
        .sum();
    let hub_pub0 = c.hub(false);
    let box0 = procfs::box_busy_s();
    log(&format!(
        "{}: publishing {m} events to {k} topic(s) at {} /s over {} connection(s)",
        mode.name(),
        if rate > 0.0 {
            rate.to_string()
        } else {
            "max".into()
        },
        o.pub_conns
    ));
    let sampler = match &o.metrics_url {
        Some(u) => Some(MetricsSampler::start(u)?),
        None => None,
    };
    let pubr = publish(o, round_robin(0..m, k), rate, k).await?;
    let hub_pub1 = c.hub(false);
    let gen_pub1 = procfs::self_sample();
    let (mut merged, mut hist) = (Value::Null, Hist::new());
    let mut hub_end = hub_pub1;
    let mut drained = Value::Null;
    let mut by_url = Value::Null;
    if let Some(mut ks) = kids {
        let waited = ks
            .all(json!({"cmd": "wait", "expected": pubr.st.ok_per_topic, "timeout_ms": (o.drain_timeout * 1000.0) as u64}),
                "waited", Duration::from_secs_f64(o.drain_timeout + 60.0)).await?;
        hub_end = c.hub(false);
        drained = json!(waited.iter().all(|w| w["complete"] == true));
        let results = ks.finish().await?;
        (merged, hist) = merge_results(&results);
        by_url = latency_by_url(&results, o.sub_urls().len());
    }
    if let Some(s) = sampler {
        out["bridge"] = s
            .finish(
                pubr.st.first_send_us,
                pubr.st.ok,
                Duration::from_secs_f64(o.drain_timeout),
            )
            .await;
    }
    let gen_end = procfs::self_sample();
    let box_busy = procfs::box_busy_s() - box0;
    let first = pubr.st.first_send_us;
    let last_recv = merged["last_recv_us"].as_u64().unwrap_or(0);
    let received = merged["received"].as_u64().unwrap_or(0);
    // Every subscriber should get every event of its topic (N x M for one topic).
    let share = |total: u64, t: u64| total / k + u64::from(t < total % k);
    let expected_all: u64 = (0..k).map(|t| share(n, t) * share(m, t)).sum();
    let window_s = if last_recv > first {
        (last_recv - first) as f64 / 1e6
    } else {
        0.0
    };
    let deliveries_per_s = if window_s > 0.0 {
        received as f64 / window_s
    } else {
        0.0
    };
    let hub_cpu = cpu_between(&hub_pub0, &hub_end);
    let gen_cpu =
        (gen_end.cpu_s - gen_pub0.cpu_s) + (merged["cpu_s"].as_f64().unwrap_or(0.0) - kids_cpu0);
    let wall = (hub_end.map_or(gen_end.at_us, |s| s.at_us)
        - hub_pub0.map_or(gen_pub0.at_us, |s| s.at_us)) as f64
        / 1e6;
    out["publish"] = pubr.to_json(m as usize, rate);
    out["publish"]["publisher_cpu_s"] = json!(gen_pub1.cpu_s - gen_pub0.cpu_s);
    out["publish"]["hub_cpu_s_during_publish"] = json!(cpu_between(&hub_pub0, &hub_pub1));
    if n > 0 {
        out["connections"] = json!({
            "requested": n, "live": sum(&readies, "live"), "failed": sum(&readies, "failed"),
            "errors": merge_errors(&readies), "procs": procs,
            "connect_s": (max_of(&readies, "last_live_us").saturating_sub(t_start)) as f64 / 1e6,
        });
        out["delivery"] = json!({
            "expected": expected_all,
            "expected_published": merged["expected"],
            "received": received,
            "completeness": if expected_all > 0 { received as f64 / expected_all as f64 } else { 0.0 },
            "drained_in_time": drained,
            "missing": merged["missing"], "short_conns": merged["short_conns"],
            "dups": merged["dups"], "reordered": merged["reordered"], "unmarked": merged["unmarked"],
            "deliveries_per_s": deliveries_per_s.round(),
            // Per subscriber: each event counted once however many subscribers got it.
            "events_per_s": (deliveries_per_s / n as f64).round(),
            "window_s": window_s,
            "bytes": merged["bytes"],
            "latency": hist.summary_ms(),
            "latency_by_sub_url": by_url,
            "errors": merged["errors"],
        });
    }
    let per_m =
        |cpu: Option<f64>, count: u64| cpu.filter(|_| count > 0).map(|c| c / count as f64 * 1e6);
    out["hub"] = json!({
        "before": hub_json(&hub0),
        "at_publish": hub_json(&hub_pub0),
        "at_end": hub_json(&hub_end),
        "cpu_s": hub_cpu,
        "cores": hub_cpu.map(|c| if wall > 0.0 { c / wall } else { 0.0 }),
        "cpu_s_per_million_deliveries": per_m(hub_cpu, received),
        "cpu_s_per_million_publishes": per_m(hub_cpu, pubr.st.ok),
        "rss_per_sub_kib": rss_per_sub(&hub_subs0, &hub_pub0, sum(&readies, "live")),
        "rss_per_sub_kib_at_end": rss_per_sub(&hub_subs0, &hub_end, sum(&readies, "live")),
    });
    out["generator"] = json!({
        "cpu_s": gen_cpu,
        "cores": if wall > 0.0 { gen_cpu / wall } else { 0.0 },
        "cpu_s_per_million_deliveries": per_m(Some(gen_cpu), received),
        "window_s": wall,
    });
    // Everything busy on the machine in the same window (hub + generator + anything else).
    out["box_busy_cores"] = json!(if wall > 0.0 { box_busy / wall } else { 0.0 });
    Ok(out)
}

/// (RSS at `b` − RSS at `a`) ÷ `subs`, KiB: the hub's memory per subscriber.
fn rss_per_sub(a: &Option<Sample>, b: &Option<Sample>, subs: u64) -> Value {
    match (a, b) {
        (Some(a), Some(b)) if subs > 0 => {
            json!(((b.rss_kib as f64 - a.rss_kib as f64) / subs as f64 * 100.0).round() / 100.0)
        }
        _ => Value::Null,
    }
}

/// `--prefill`: one event to each of `--prefill` topics `<--prefill-prefix><i>`, flat out,
/// before any subscriber connects; the report of that publishing.
async fn prefill(c: &Ctx) -> Result<Value, String> {
    let o = &c.o;
    let n = o.prefill;
    let po = Opts {
        topic_prefix: o.prefill_prefix.clone(),
        pub_conns: o.prefill_conns.max(1),
        ..o.clone()
    };
    log(&format!(
        "prefill: one event to each of {n} topics {}0..{}{} on {} connection(s)",
        po.topic_prefix,
        po.topic_prefix,
        n - 1,
        po.pub_conns
    ));
    let hub_a = c.hub(false);
    let r = publish(&po, round_robin(0..n, n), 0.0, n).await?;
    let hub_b = c.hub(false);
    if r.st.ok != n {
        return Err(format!(
            "prefill: {} of {n} publishes succeeded: {:?}",
            r.st.ok, r.st.errors
        ));
    }
    Ok(json!({
        "topics": n,
        "ok": r.st.ok,
        "elapsed_s": r.elapsed_s,
        "hub_cpu_s": cpu_between(&hub_a, &hub_b),
        "hub_rss_kib_after": hub_b.map(|s| s.rss_kib),
    }))
}

async fn run_replay(c: &Ctx) -> Result<Value, String> {
    let o = &c.o;
    let m = o.events.unwrap_or(100_000);
    let r = o.replayers.max(1);
    let hub0 = c.hub(true);
    // 1. A recorder learns the id of event 0.
    let lei = match &o.last_event_id {
        Some(id) => id.clone(),
        None => {
            let (mut rec, _) = Kids::start(o, 1, 1, 1, 0.0, None).await?;
            tokio::time::sleep(Duration::from_millis(200)).await;
            let p0 = publish(o, vec![(0, 0, 0)], 0.0, 1).await?;
            if p0.st.ok != 1 {
                return Err(format!(
                    "publishing the first event failed: {:?}",
                    p0.st.errors
                ));
            }
            let w = rec
                .all(
                    json!({"cmd": "wait", "expected": [1], "timeout_ms": 10_000}),
                    "waited",
                    Duration::from_secs(30),
                )
                .await?;
            rec.finish().await?;
            w[0]["last_id"]
                .as_str()
                .ok_or("the hub sent no id: line with the first event; replay needs ids")?
                .to_string()
        }
    };
    log(&format!(
        "replay: resuming from id {lei:?}; preloading {m} events"
    ));
    // 2. Preload.
    let hub_pre = c.hub(false);
    let pubr = publish(o, (1..=m).map(|i| (0, i, i)).collect(), 0.0, 1).await?;
    let hub_loaded = c.hub(true);
    // 3. Replayers.
    log(&format!(
        "replay: {} ok ({:.0}/s); {r} replayer(s) connect",
        pubr.st.ok,
        pubr.st.ok as f64 / pubr.elapsed_s.max(1e-9)
    ));
    let t0 = now_us();
    let (mut ks, readies) = Kids::start(o, r, procs_for(o, r), 1, 0.0, Some(lei.clone())).await?;
    let waited = ks
        .all(json!({"cmd": "wait", "expected": [pubr.st.ok], "timeout_ms": (o.drain_timeout * 1000.0) as u64}),
            "waited", Duration::from_secs_f64(o.drain_timeout + 60.0)).await?;
    let hub_end = c.hub(false);
    let results = ks.finish().await?;
    let (merged, _) = merge_results(&results);
    let last = max_of(&waited, "last_recv_us");
    let first = min_nonzero(&waited, "first_recv_us");
    let received = merged["received"].as_u64().unwrap_or(0);
    let secs = if last > t0 {
        (last - t0) as f64 / 1e6
    } else {
        0.0
    };
    Ok(json!({
        "resume_from_id": lei,
        "publish": pubr.to_json(m as usize, 0.0),
        "hub": {
            "before": hub_json(&hub0),
            "after_preload": hub_json(&hub_loaded),
            "cpu_s_preload": cpu_between(&hub_pre, &hub_loaded),
            "history_rss_kib": match (&hub0, &hub_loaded) { (Some(a), Some(b)) => json!(b.rss_kib as i64 - a.rss_kib as i64), _ => Value::Null },
            "cpu_s_replay": cpu_between(&hub_loaded, &hub_end),
        },
        "replay": {
            "replayers": r,
            "live": sum(&readies, "live"),
            "failed": sum(&readies, "failed"),
            "errors": merge_errors(&readies),
            "expected": pubr.st.ok * r,
            "received": received,
            "complete": waited.iter().all(|w| w["complete"] == true),
            "dups": merged["dups"], "reordered": merged["reordered"], "unmarked": merged["unmarked"],
            "first_event_s": if first > t0 { (first - t0) as f64 / 1e6 } else { 0.0 },
            "all_received_s": secs,
            "events_per_s": if secs > 0.0 { received as f64 / secs } else { 0.0 },
            "generator_cpu_s": merged["cpu_s"],
        },
    }))
}

async fn run_storm(c: &Ctx) -> Result<Value, String> {
    let o = &c.o;
    let n = o.conns.unwrap_or(1000);
    let k = o.topics.max(1);
    let procs = procs_for(o, n);
    let hub0 = c.hub(true);
    log(&format!(
        "storm: opening {n} clients on {k} topic(s) over {procs} process(es)"
    ));
    let (mut ks, readies) = Kids::start(o, n, procs, k, o.ramp, None).await?;
    tokio::time::sleep(Duration::from_millis(500)).await;
    let pre = o.pre_events;
    let p1 = publish(o, round_robin(0..pre, k), o.rate.unwrap_or(0.0), k).await?;
    let w1 = ks
        .all(json!({"cmd": "wait", "expected": p1.st.ok_per_topic, "timeout_ms": (o.drain_timeout * 1000.0) as u64}),
            "waited", Duration::from_secs_f64(o.drain_timeout + 60.0)).await?;
    let pre_complete = w1.iter().all(|w| w["complete"] == true);
    let hub_before = c.hub(false);
    log(&format!(
        "storm: {} live, pre-drop events delivered: {pre_complete}; dropping all",
        sum(&readies, "live")
    ));
    ks.all(json!({"cmd": "drop"}), "dropped", Duration::from_secs(60))
        .await?;
    let p2 = publish(o, round_robin(pre..pre + o.gap_events, k), 0.0, k).await?;
    let t0 = now_us();
    let again = ks
        .all(
            json!({"cmd": "reconnect"}),
            "ready",
            Duration::from_secs_f64(o.connect_timeout + 120.0),
        )
        .await?;
    let t_live = max_of(&again, "last_live_us");
    let expected: Vec<u64> = p1
        .st
        .ok_per_topic
        .iter()
        .zip(&p2.st.ok_per_topic)
        .map(|(a, b)| a + b)
        .collect();
    let w2 = ks
        .all(json!({"cmd": "wait", "expected": expected, "timeout_ms": (o.drain_timeout * 1000.0) as u64}),
            "waited", Duration::from_secs_f64(o.drain_timeout + 60.0)).await?;
    let caught_up = w2.iter().all(|w| w["complete"] == true);
    let t_caught = max_of(&w2, "last_recv_us");
    let hub_end = c.hub(false);
    let results = ks.finish().await?;
    let (merged, hist) = merge_results(&results);
    let secs = |t: u64| if t > t0 { (t - t0) as f64 / 1e6 } else { 0.0 };
    Ok(json!({
        "clients": n,
        "procs": procs,
        "initial": {"live": sum(&readies, "live"), "failed": sum(&readies, "failed"), "errors": merge_errors(&readies)},
        "pre_events": {"published": p1.st.ok, "delivered_before_drop": pre_complete},
        "gap_events": {"published": p2.st.ok, "errors": p2.st.errors},
        "reconnect": {
            "live": sum(&again, "live"),
            "failed": sum(&again, "failed"),
            "errors": merge_errors(&again),
            "first_live_s": secs(min_nonzero(&again, "first_live_us")),
            "all_live_s": secs(t_live),
            "caught_up": caught_up,
            "caught_up_s": if caught_up { json!(secs(t_caught.max(t_live))) } else { Value::Null },
            "missing": merged["missing"], "short_conns": merged["short_conns"],
            "dups": merged["dups"], "reordered": merged["reordered"],
            "expected": merged["expected"], "received": merged["received"],
            "latency_all_events": hist.summary_ms(),
        },
        "hub": {
            "before": hub_json(&hub0),
            "before_drop": hub_json(&hub_before),
            "at_end": hub_json(&hub_end),
            "cpu_s_storm": cpu_between(&hub_before, &hub_end),
        },
        "generator_subscribers": {"cpu_s": merged["cpu_s"]},
    }))
}

async fn run_mode(mode: Mode, c: &Ctx) -> Result<Value, String> {
    match mode {
        Mode::Idle => run_idle(c).await,
        Mode::Fanout | Mode::Publish => run_fanout(c, mode).await,
        Mode::Replay => run_replay(c).await,
        Mode::Storm => run_storm(c).await,
    }
}

/// Entry point of the load modes: run, print the JSON report on stdout (and to --json), and a
/// readable summary on stderr.
pub fn run(mode: Mode, o: Opts) -> i32 {
    if let Err(e) = o
        .sub_urls()
        .iter()
        .try_for_each(|u| Url::parse(u).map(drop))
        .and(Url::parse(&o.pub_url).map(drop))
        .and(match o.source {
            Some(_) if o.topics > 1 => Err("--source: one topic only (-k 1)".to_owned()),
            Some(_) if o.source_url.is_empty() || o.source_target.is_empty() => {
                Err("--source needs --source-url and --source-target".to_owned())
            }
            _ => Ok(()),
        })
        .and(o.src_base())
    {
        log(&e);
        return 2;
    }
    let (soft, hard) = procfs::nofile_limits();
    let rt = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            log(&e.to_string());
            return 1;
        }
    };
    let ctx = Ctx {
        hub: o.hub_pid.clone(),
        gen0: procfs::self_sample(),
        o,
    };
    if ctx.hub.is_empty() {
        log("no --hub-pid given: hub CPU and memory are not measured");
    }
    let local = tokio::task::LocalSet::new();
    let started = now_us();
    let r = local.block_on(&rt, run_mode(mode, &ctx));
    let me = procfs::self_sample();
    let o = &ctx.o;
    match r {
        Ok(mut v) => {
            let hub_pids = procfs::tree(&ctx.hub);
            let meta = json!({
                "mode": mode.name(),
                "label": o.label,
                "started_us": started,
                "duration_s": (now_us() - started) as f64 / 1e6,
                "params": {
                    "conns": o.conns, "topics": o.topics, "events": o.events, "rate": o.rate,
                    "payload_size": o.payload_size, "pub_conns": o.pub_conns, "ramp": o.ramp,
                    "hold": o.hold, "procs": o.procs, "src_base": o.src_base, "per_addr": o.per_addr,
                    "replayers": o.replayers, "pre_events": o.pre_events, "gap_events": o.gap_events,
                    "sub_url": o.sub_url, "sub_url_extra": o.sub_url_extra, "pub_url": o.pub_url, "pub_method": o.pub_method,
                    "pub_content_type": o.pub_content_type, "pub_body": o.pub_body,
                    "source": o.source.map(|s| s.name()), "source_url": o.source_url,
                    "source_target": o.source_target, "source_batch": o.source_batch,
                },
                "hub_pids": hub_pids,
                "generator_coordinator": {"cpu_s": me.cpu_s - ctx.gen0.cpu_s, "rss_kib": me.rss_kib},
                "nofile_limit": {"soft": soft, "hard": hard},
                "argv": std::env::args().collect::<Vec<_>>(),
            });
            if let (Some(obj), Some(m)) = (v.as_object_mut(), meta.as_object()) {
                for (k, x) in m {
                    obj.insert(k.clone(), x.clone());
                }
            }
            let text = serde_json::to_string_pretty(&v).unwrap_or_default();
            if let Some(p) = &o.json {
                if let Err(e) = std::fs::write(p, &text) {
                    log(&format!("writing {}: {e}", p.display()));
                }
            }
            {
                use std::io::Write;
                let _ = writeln!(std::io::stdout().lock(), "{text}");
            }
            log(&report::summary(&v));
            0
        }
        Err(e) => {
            log(&format!("failed: {e}"));
            1
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_progress_line_counts_answers_and_errors() {
        let mut st = PubState {
            ok: 45,
            ..PubState::default()
        };
        st.errors.insert("status 503: full".into(), 5);
        let line = progress_line(&st, 100, Duration::from_secs(2));
        assert_eq!(
            line,
            "published 50/100 [##########..........]  50% 25/s, 5 errors"
        );
        let done = progress_line(
            &PubState {
                ok: 7,
                ..PubState::default()
            },
            7,
            Duration::from_secs(1),
        );
        assert!(done.contains("[####################] 100%"), "{done}");
    }
}
