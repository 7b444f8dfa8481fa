// Shared helpers for the browser tests: start and stop a real hub, launch Debian's Chromium,
// publish over HTTP, read an SSE stream from Node, and wait for conditions with a deadline.
'use strict';

const { spawn } = require('node:child_process');
const fs = require('node:fs');
const path = require('node:path');
const readline = require('node:readline');
const { chromium } = require('playwright-core');

const REPO_ROOT = path.resolve(__dirname, '..', '..');
const HUB_BIN = path.resolve(REPO_ROOT, process.env.SSEHUB_BIN || 'target/debug/ssehub');
const CHROMIUM = '/usr/bin/chromium';
// The flags this machine's Chromium needs (no sandbox as root, no network beyond loopback).
const CHROMIUM_ARGS = [
  '--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
  '--disable-background-networking', '--disable-component-update', '--disable-sync',
];

const running = new Set();
process.on('exit', () => {
  for (const child of running) {
    try { process.kill(child.pid, 'SIGKILL'); } catch (_) { /* already gone */ }
  }
});

/** Starts `ssehub serve --listen 127.0.0.1:<port> ...args` and resolves once it listens. */
async function startHub(args = [], { port = 0, timeoutMs = 15000 } = {}) {
  if (!fs.existsSync(HUB_BIN)) {
    throw new Error(`hub binary not found at ${HUB_BIN}: build it with 'cargo build -p ssehub-cli' ` +
                    'or point SSEHUB_BIN at it');
  }
  const argv = ['serve', '--listen', `127.0.0.1:${port}`, ...args];
  const child = spawn(HUB_BIN, argv, { stdio: ['ignore', 'pipe', 'pipe'] });
  running.add(child);
  let stderr = '';
  child.stderr.setEncoding('utf8');
  child.stderr.on('data', (chunk) => { stderr = (stderr + chunk).slice(-4000); });
  const exited = new Promise((resolve) => child.once('exit', (code, signal) => {
    running.delete(child);
    resolve({ code, signal });
  }));

  const lines = readline.createInterface({ input: child.stdout });
  const firstLine = new Promise((resolve, reject) => {
    lines.once('line', resolve);
    exited.then(({ code, signal }) => reject(new Error(
      `hub exited (code ${code}, signal ${signal}) before listening: ${argv.join(' ')}\n${stderr}`)));
  });
  let timer;
  const timeout = new Promise((_, reject) => {
    timer = setTimeout(() => reject(new Error(`hub did not print its address within ${timeoutMs} ms\n${stderr}`)),
                       timeoutMs);
  });
  let line;
  try {
    line = await Promise.race([firstLine, timeout]);
  } catch (err) {
    try { process.kill(child.pid, 'SIGKILL'); } catch (_) { /* gone */ }
    throw err;
  } finally {
    clearTimeout(timer);
  }
  const m = /^listening on (https?:\/\/127\.0\.0\.1:(\d+))\s*$/.exec(line);
  if (!m) {
    process.kill(child.pid, 'SIGKILL');
    throw new Error(`unexpected first stdout line from the hub: ${JSON.stringify(line)}`);
  }
  lines.on('line', () => {}); // keep draining stdout so the hub never blocks on a full pipe

  return {
    url: m[1],
    port: Number(m[2]),
    pid: child.pid,
    exited,
    stderr: () => stderr,
    /** SIGTERM, then SIGKILL if it has not exited within `graceMs`. Resolves with the exit status. */
    async stop(graceMs = 5000) {
      if (child.exitCode !== null || child.signalCode !== null) return exited;
      process.kill(child.pid, 'SIGTERM');
      const t = setTimeout(() => { try { process.kill(child.pid, 'SIGKILL'); } catch (_) { /* gone */ } }, graceMs);
      const status = await exited;
      clearTimeout(t);
      return status;
    },
  };
}

/** True when `ssehub serve --help` mentions `flag`. */
async function hubSupports(flag) {
  if (!fs.existsSync(HUB_BIN)) return false;
  const child = spawn(HUB_BIN, ['serve', '--help'], { stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  child.stdout.on('data', (c) => { out += c; });
  child.stderr.on('data', (c) => { out += c; });
  await new Promise((resolve) => child.once('exit', resolve));
  return out.includes(flag);
}

async function launchBrowser() {
  if (!fs.existsSync(CHROMIUM)) {
    throw new Error(`${CHROMIUM} is missing: install with 'apt-get install -y chromium'`);
  }
  return chromium.launch({ executablePath: CHROMIUM, args: CHROMIUM_ARGS });
}

/** POST /publish with a JSON body; resolves with { status, body } (body parsed as JSON). */
async function publish(hubUrl, body) {
  const res = await fetch(`${hubUrl}/publish`, {
    method: 'POST',
    headers: { 'Content-Type': 'application/json' },
    body: JSON.stringify(body),
  });
  const text = await res.text();
  let parsed;
  try { parsed = JSON.parse(text); } catch (_) { parsed = text; }
  return { status: res.status, body: parsed };
}

/** Polls `fn` until it returns a truthy value (returned) or `timeoutMs` passes (throws `what`). */
async function waitFor(fn, { timeoutMs = 10000, intervalMs = 50, what = 'condition' } = {}) {
  const deadline = Date.now() + timeoutMs;
  let last;
  for (;;) {
    last = await fn();
    if (last) return last;
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, intervalMs));
  }
}

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

/**
 * Opens an SSE stream from Node and collects its events as { event, id, data } in `events`.
 * A deliberately small reader (LF line ends, which is what the hub writes); good enough for an
 * independent witness, not a spec parser.
 */
async function openStream(url, headers = {}) {
  const controller = new AbortController();
  const res = await fetch(url, { headers: { Accept: 'text/event-stream', ...headers }, signal: controller.signal });
  const events = [];
  const stream = { status: res.status, headers: res.headers, events, close: () => controller.abort() };
  if (res.status !== 200 || !res.body) return stream;
  (async () => {
    const decoder = new TextDecoder();
    let buf = '';
    try {
      for await (const chunk of res.body) {
        buf += decoder.decode(chunk, { stream: true });
        let end;
        while ((end = buf.indexOf('\n\n')) !== -1) {
          const block = buf.slice(0, end);
          buf = buf.slice(end + 2);
          const ev = { event: 'message', id: null, data: null };
          for (const line of block.split('\n')) {
            const colon = line.indexOf(':');
            if (colon === 0) continue;
            const field = colon === -1 ? line : line.slice(0, colon);
            let value = colon === -1 ? '' : line.slice(colon + 1);
            if (value.startsWith(' ')) value = value.slice(1);
            if (field === 'event') ev.event = value;
            else if (field === 'id') ev.id = value;
            else if (field === 'data') ev.data = ev.data === null ? value : `${ev.data}\n${value}`;
          }
          if (ev.data !== null) events.push(ev);
        }
      }
    } catch (_) { /* aborted or the hub went away */ }
  })();
  return stream;
}

module.exports = {
  REPO_ROOT, HUB_BIN, CHROMIUM, CHROMIUM_ARGS,
  startHub, hubSupports, launchBrowser, publish, waitFor, sleep, openStream,
};
