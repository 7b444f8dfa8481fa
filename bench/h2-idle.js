#!/usr/bin/env node
// Idle memory per SSE stream over HTTP/2: starts the hub, opens STREAMS streams spread over
// connections of at most 200 streams each (the hub's SETTINGS_MAX_CONCURRENT_STREAMS), waits
// until every stream has its opening bytes, holds them HOLD_S seconds, and reports the hub's
// RSS delta per stream (from /proc/PID/status) against the RSS before any stream opened.
//
//   node bench/h2-idle.js [--streams 10000] [--tls] [--hold 10] [--bin target/release/ssehub]
//
// Plain runs use h2c with prior knowledge; --tls makes a self-signed certificate with openssl
// and uses ALPN h2. Node's http2 client; nothing but loopback.
'use strict';

const http2 = require('node:http2');
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const { execFileSync } = require('node:child_process');
const { opt, flag, sleep, rssKiB, startHub } = require('./h2-common');

const STREAMS = Number(opt('streams', 10000));
const PER_CONN = Number(opt('per-connection', 200));
const HOLD_S = Number(opt('hold', 10));
const TLS = flag('tls');
const BIN = path.resolve(opt('bin', 'target/release/ssehub'));

async function main() {
  const hubArgs = [];
  let ca;
  if (TLS) {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'ssehub-h2-bench-'));
    const cert = path.join(dir, 'cert.pem');
    const key = path.join(dir, 'key.pem');
    execFileSync('openssl', ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1',
      '-nodes', '-keyout', key, '-out', cert, '-days', '1', '-subj', '/CN=127.0.0.1',
      '-addext', 'subjectAltName=IP:127.0.0.1'], { stdio: 'ignore' });
    ca = fs.readFileSync(cert);
    hubArgs.push('--tls-cert', cert, '--tls-key', key);
  }
  const { hub, url } = await startHub(BIN, hubArgs);
  await sleep(1000);
  const before = rssKiB(hub.pid);

  const sessions = [];
  let opened = 0;
  const started = Date.now();
  for (let c = 0; c * PER_CONN < STREAMS; c++) {
    const session = http2.connect(url, TLS ? { ca } : {});
    session.on('error', (e) => { console.error('session error', e.message); });
    sessions.push(session);
    const n = Math.min(PER_CONN, STREAMS - c * PER_CONN);
    const ready = [];
    for (let s = 0; s < n; s++) {
      const req = session.request({ ':path': `/events/idle${(c * PER_CONN + s) % 100}` });
      req.setEncoding('utf8');
      ready.push(new Promise((resolve, reject) => {
        req.once('data', () => { opened++; resolve(); });
        req.once('error', reject);
      }));
    }
    await Promise.all(ready);
  }
  const rampS = (Date.now() - started) / 1000;
  await sleep(HOLD_S * 1000);
  const after = rssKiB(hub.pid);
  const perStream = ((after - before) * 1024) / opened;
  const report = {
    protocol: TLS ? 'h2 (TLS, ALPN)' : 'h2c (prior knowledge)',
    streams: opened,
    connections: sessions.length,
    ramp_s: rampS,
    rss_before_kib: before,
    rss_after_kib: after,
    bytes_per_stream: Math.round(perStream),
  };
  console.log(JSON.stringify(report));
  for (const s of sessions) s.destroy();
  hub.kill('SIGTERM');
}

main().catch((e) => { console.error(e); process.exit(1); });
