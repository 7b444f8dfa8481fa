#!/usr/bin/env node
// Fan-out over HTTP/2: starts `ssehub serve --memory`, opens STREAMS SSE streams on one topic
// multiplexed over CONNS h2c connections (prior knowledge), waits until every stream has its
// opening bytes, then publishes EVENTS events at RATE/s over HTTP/1 `POST /publish` (PUB_CONNS
// keep-alive connections, one request in flight on each), and counts what every stream gets.
//
//   node bench/h2-fanout.js [--streams 10000] [--conns 50] [--events 100] [--rate 100]
//                           [--pub-conns 4] [--payload 100] [--drain 120] [--bin target/release/ssehub]
//                           [--stream-window 6291456] [--conn-window 15728640]
//                           [--hub-cpu 0] [--json out.json]
//
// The payload is `@<send time µs>:<seq>:` padded with `x` (as ssehub-bench does); latency =
// receive − send on this process's monotonic clock. Reported: completeness (STREAMS × EVENTS),
// duplicates, deliveries/s (received ÷ (last receive − first send)), latency p50/p90/p99/max,
// the hub's CPU seconds (utime + stime from /proc/PID/stat) over the same window and per
// million deliveries, and this process's own CPU. A Node client is much slower than the Rust
// generator: compare hub CPU per delivery across protocols, not deliveries/s.
// The client's HTTP/2 receive windows default to a browser's (Chromium: 6 MiB per stream,
// 15 MiB per connection); with the protocol's 64 KiB defaults the hub waits for WINDOW_UPDATEs.
// `--hub-cpu N` starts the hub under `taskset -c N`. Loopback only.
'use strict';

const http = require('node:http');
const http2 = require('node:http2');
const fs = require('node:fs');
const path = require('node:path');
const { performance } = require('node:perf_hooks');
const { opt, sleep, rssKiB, startHub } = require('./h2-common');

const STREAMS = Number(opt('streams', 10000));
const CONNS = Number(opt('conns', 50));
const EVENTS = Number(opt('events', 100));
const RATE = Number(opt('rate', 100));
const PUB_CONNS = Number(opt('pub-conns', 4));
const PAYLOAD = Number(opt('payload', 100));
const DRAIN_S = Number(opt('drain', 120));
const BIN = path.resolve(opt('bin', 'target/release/ssehub'));
const HUB_CPU = opt('hub-cpu', null);
const JSON_OUT = opt('json', null);
const STREAM_WINDOW = Number(opt('stream-window', 6 * 1024 * 1024));
const CONN_WINDOW = Number(opt('conn-window', 15 * 1024 * 1024));
const TOPIC = 'h2fan';

const nowUs = () => Math.round(performance.now() * 1000);
const CLK_TCK = 100; // Linux USER_HZ
const hubCpuS = (pid) => {
  // Fields after the command name: state is field 3; utime 14, stime 15.
  const s = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
  const f = s.slice(s.lastIndexOf(')') + 2).split(' ');
  return (Number(f[11]) + Number(f[12])) / CLK_TCK;
};
const selfCpuS = () => {
  const u = process.cpuUsage();
  return (u.user + u.system) / 1e6;
};
const pct = (sorted, p) => (sorted.length ? sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))] : null);

async function main() {
  const { hub, url } = await startHub(BIN, [], HUB_CPU);
  await sleep(1000);
  const rssBefore = rssKiB(hub.pid);

  // Per stream: which seqs arrived (duplicates), how many; every latency in one array.
  const seen = new Uint8Array(STREAMS * EVENTS);
  const lat = new Float64Array(STREAMS * EVENTS);
  let received = 0;
  let dups = 0;
  let foreign = 0;
  let lastRecvUs = 0;
  let streamErrors = 0;

  const onText = (idx, text) => {
    const t = nowUs();
    let i = text.indexOf('@');
    while (i !== -1) {
      const a = text.indexOf(':', i);
      const b = text.indexOf(':', a + 1);
      const sent = Number(text.slice(i + 1, a));
      const seq = Number(text.slice(a + 1, b));
      if (Number.isInteger(seq) && seq >= 0 && seq < EVENTS) {
        const k = idx * EVENTS + seq;
        if (seen[k]) dups++;
        else {
          seen[k] = 1;
          lat[received++] = (t - sent) / 1000;
          lastRecvUs = t;
        }
      } else foreign++;
      i = text.indexOf('@', b + 1);
    }
  };

  const sessions = [];
  const perConn = Math.ceil(STREAMS / CONNS);
  const connectStart = Date.now();
  let opened = 0;
  for (let c = 0; c < CONNS; c++) {
    const session = http2.connect(url, { settings: { initialWindowSize: STREAM_WINDOW } });
    session.once('connect', () => session.setLocalWindowSize(CONN_WINDOW));
    session.on('error', (e) => console.error('session error', e.message));
    sessions.push(session);
    const ready = [];
    for (let s = c * perConn; s < Math.min(STREAMS, (c + 1) * perConn); s++) {
      const req = session.request({ ':path': `/events/${TOPIC}` });
      req.setEncoding('utf8');
      let carry = '';
      ready.push(new Promise((resolve) => {
        let first = true;
        req.on('data', (chunk) => {
          if (first) { first = false; opened++; resolve(); }
          // Markers sit inside `data:` lines; only complete lines are scanned.
          const text = carry + chunk;
          const end = text.lastIndexOf('\n');
          if (end === -1) { carry = text; return; }
          carry = text.slice(end + 1);
          onText(s, text.slice(0, end));
        });
        req.on('error', () => { streamErrors++; resolve(); });
      }));
    }
    await Promise.all(ready);
  }
  const connectS = (Date.now() - connectStart) / 1000;
  await sleep(1000);

  // Publisher: an open-loop schedule at RATE, PUB_CONNS keep-alive HTTP/1 connections.
  const agent = new http.Agent({ keepAlive: true, maxSockets: PUB_CONNS });
  const pubUrl = new URL('/publish', url);
  const pad = 'x'.repeat(PAYLOAD);
  let pubOk = 0;
  let pubErr = 0;
  const publishOne = (seq) => new Promise((resolve) => {
    let data = `@${nowUs()}:${seq}:`;
    data += pad.slice(0, Math.max(0, PAYLOAD - data.length));
    const body = JSON.stringify({ topic: TOPIC, data });
    const req = http.request(pubUrl, { method: 'POST', agent, headers: { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) } }, (res) => {
      res.resume();
      res.on('end', () => { if (res.statusCode < 300) pubOk++; else pubErr++; resolve(); });
    });
    req.on('error', () => { pubErr++; resolve(); });
    req.end(body);
  });

  const hubCpu0 = hubCpuS(hub.pid);
  const selfCpu0 = selfCpuS();
  const firstSendUs = nowUs();
  const pending = [];
  for (let seq = 0; seq < EVENTS; seq++) {
    const due = firstSendUs + (seq * 1e6) / RATE;
    const wait = due - nowUs();
    if (wait > 1000) await sleep(wait / 1000);
    pending.push(publishOne(seq));
  }
  await Promise.all(pending);
  const lastSendUs = nowUs();
  const expected = opened * EVENTS;
  const drainUntil = Date.now() + DRAIN_S * 1000;
  while (received < expected && Date.now() < drainUntil) await sleep(20);
  const hubCpu = hubCpuS(hub.pid) - hubCpu0;
  const selfCpu = selfCpuS() - selfCpu0;
  const rssAfter = rssKiB(hub.pid);
  const windowS = (Math.max(lastRecvUs, lastSendUs) - firstSendUs) / 1e6;

  const l = lat.slice(0, received).sort();
  const report = {
    protocol: 'h2c (prior knowledge), publish over HTTP/1',
    streams: opened,
    requested_streams: STREAMS,
    connections: sessions.length,
    stream_errors: streamErrors,
    connect_s: connectS,
    events: EVENTS,
    rate: RATE,
    pub_conns: PUB_CONNS,
    published_ok: pubOk,
    publish_errors: pubErr,
    publish_s: (lastSendUs - firstSendUs) / 1e6,
    expected,
    received,
    complete: received === expected,
    duplicates: dups,
    foreign_markers: foreign,
    window_s: windowS,
    deliveries_per_s: received / windowS,
    latency_ms: { p50: pct(l, 50), p90: pct(l, 90), p99: pct(l, 99), max: l.length ? l[l.length - 1] : null },
    hub_cpu_s: hubCpu,
    hub_cpu_s_per_million_deliveries: received ? (hubCpu * 1e6) / received : null,
    hub_cores: hubCpu / windowS,
    hub_rss_kib_before_streams: rssBefore,
    hub_rss_kib_after: rssAfter,
    generator_cpu_s: selfCpu,
    generator_cores: selfCpu / windowS,
    hub_cpu_pinned: HUB_CPU,
    client_stream_window: STREAM_WINDOW,
    client_conn_window: CONN_WINDOW,
  };
  const out = JSON.stringify(report, null, 1);
  console.log(out);
  if (JSON_OUT) fs.writeFileSync(JSON_OUT, out + '\n');
  for (const s of sessions) s.destroy();
  agent.destroy();
  hub.kill('SIGTERM');
}

main().catch((e) => { console.error(e); process.exit(1); });
