// Test helpers: start and kill a real hub binary on a port of its own choosing (or a given
// one, to restart on the same address), launch Debian's Chromium, wait for conditions.
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import readline from 'node:readline';
import { fileURLToPath } from 'node:url';

const here = path.dirname(fileURLToPath(import.meta.url));
export const ROOT = path.resolve(here, '..', '..', '..');
export const HUB_BIN = path.resolve(ROOT, process.env.SSEHUB_BIN || 'target/debug/ssehub');
export const CHROMIUM = '/usr/bin/chromium';
export const DIST = path.resolve(here, '..', 'dist', 'ssehub.js');

const children = new Set();
function killChildren() {
  for (const child of children) {
    try { child.kill('SIGKILL'); } catch (_) { /* gone */ }
  }
}
process.on('exit', killChildren);
// A test file stopped by a signal (the runner's timeout, Ctrl-C) must not leave hubs behind.
for (const signal of ['SIGTERM', 'SIGINT']) {
  process.once(signal, () => {
    killChildren();
    process.exit(128 + (signal === 'SIGTERM' ? 15 : 2));
  });
}

/** Starts `ssehub serve --listen 127.0.0.1:<port> ...args`; resolves once it prints its address. */
export async function startHub(args = [], { port = 0 } = {}) {
  if (!fs.existsSync(HUB_BIN)) {
    throw new Error(`hub binary not found at ${HUB_BIN}: build it with 'cargo build -p ssehub-cli' or set SSEHUB_BIN`);
  }
  const child = spawn(HUB_BIN, ['serve', '--listen', `127.0.0.1:${port}`, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
  children.add(child);
  let stderr = '';
  child.stderr.setEncoding('utf8');
  child.stderr.on('data', (c) => { stderr = (stderr + c).slice(-4000); });
  const exited = new Promise((resolve) => child.once('exit', (code, signal) => {
    children.delete(child);
    resolve({ code, signal });
  }));
  const lines = readline.createInterface({ input: child.stdout });
  const line = await new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`the hub printed no address in 15 s\n${stderr}`)), 15000);
    lines.once('line', (l) => { clearTimeout(timer); resolve(l); });
    exited.then(({ code, signal }) => {
      clearTimeout(timer);
      reject(new Error(`the hub exited (${code ?? signal}) before listening\n${stderr}`));
    });
  });
  lines.on('line', () => {}); // keep stdout drained
  const m = /^listening on (http:\/\/127\.0\.0\.1:(\d+))/.exec(line);
  if (!m) throw new Error(`unexpected first line from the hub: ${line}`);
  return {
    url: m[1],
    port: Number(m[2]),
    exited,
    stderr: () => stderr,
    /** SIGKILL: the hub gets no chance to end its streams. */
    async kill() {
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
      return exited;
    },
    async stop() {
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGTERM');
      const t = setTimeout(() => child.kill('SIGKILL'), 5000);
      const status = await exited;
      clearTimeout(t);
      return status;
    },
  };
}

/** A fresh data directory, removed at exit. */
export function tempDir(name) {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), `ssehub-js-${name}-`));
  process.on('exit', () => fs.rmSync(dir, { recursive: true, force: true }));
  return dir;
}

export async function launchBrowser() {
  if (!fs.existsSync(CHROMIUM)) throw new Error(`${CHROMIUM} is missing: install with 'apt-get install -y chromium'`);
  const { chromium } = await import('playwright-core');
  return chromium.launch({
    executablePath: CHROMIUM,
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
      '--disable-background-networking', '--disable-component-update', '--disable-sync'],
  });
}

export const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

/** Polls `fn` until it returns something truthy (returned), or throws after `timeoutMs`. */
export async function waitFor(fn, { timeoutMs = 10000, what = 'condition' } = {}) {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await fn();
    if (value) return value;
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await sleep(25);
  }
}

/**
 * Publishes `{seq}` to `topic` in a loop through `client` until `stop()`; `acked` holds the
 * sequence numbers the hub acknowledged. A publish that fails (the hub is down) is not
 * acknowledged and may or may not have been stored; the next one takes a new number.
 */
export function publishLoop(client, topic) {
  const acked = [];
  let seq = 0;
  let running = true;
  const done = (async () => {
    while (running) {
      seq += 1;
      try {
        await client.publish(topic, { seq });
        acked.push(seq);
      } catch (_) {
        await sleep(20);
      }
      await sleep(2);
    }
  })();
  return { acked, stop: async () => { running = false; await done; } };
}

/** Fails unless `got` (sequence numbers received) is increasing and holds every one of `acked`. */
export function assertOnceInOrder(assert, got, acked, what = 'events') {
  for (let i = 1; i < got.length; i += 1) {
    assert.ok(got[i] > got[i - 1], `${what}: out of order or twice at ${i}: ${got[i - 1]}, ${got[i]}`);
  }
  const received = new Set(got);
  assert.deepEqual(acked.filter((s) => !received.has(s)), [], `${what}: acknowledged events missing`);
}
