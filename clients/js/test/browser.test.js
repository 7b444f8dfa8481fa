// The browser build, as the hub serves it at /ssehub.js, in headless Chromium against a real
// hub: EventSource by default, fetch streaming for a header token, a cookie token, the hub
// killed mid-stream (both transports), resume across a page load from localStorage, and
// reconnecting at once when the page comes back online or into view.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';

import { Client, mintToken } from '../src/index.js';
import {
  startHub, tempDir, launchBrowser, sleep, waitFor, publishLoop, assertOnceInOrder, DIST, ROOT,
} from './harness.js';

let browser;
const publicDir = tempDir('public');
fs.writeFileSync(path.join(publicDir, 'index.html'), '<!doctype html><meta charset="utf-8"><title>client test</title>\n');

before(async () => { browser = await launchBrowser(); });
after(async () => { await browser.close(); });

/** A hub serving an empty page (so no other stream shares the page's connections). */
function hubWith(args = []) {
  return startHub(['--public-dir', publicDir, ...args]);
}

/** A fresh browser context on the hub's page with /ssehub.js loaded. */
async function openPage(hubUrl, cookies = []) {
  const context = await browser.newContext();
  if (cookies.length) await context.addCookies(cookies);
  const page = await context.newPage();
  page.on('pageerror', (err) => { throw err; });
  await page.goto(`${hubUrl}/`);
  await page.addScriptTag({ url: '/ssehub.js' });
  return { context, page };
}

/**
 * Opens `window.subs[name]` in the page, recording into `window.seen[name]`. `options` is
 * plain data; `useLocalStorage` turns into `storage: localStorage`.
 */
function subscribeInPage(page, name, topics, options = {}) {
  return page.evaluate(({ name, topics, options }) => {
    window.subs = window.subs || {};
    window.seen = window.seen || {};
    const seen = { events: [], errors: [], resets: [], states: [], closed: null };
    window.seen[name] = seen;
    const { useLocalStorage, token, ...rest } = options;
    const client = new window.ssehub.Client('', token ? { token } : {});
    window.subs[name] = client.subscribe(topics, {
      ...rest,
      storage: useLocalStorage ? window.localStorage : undefined,
      onEvent: (e) => seen.events.push({ event: e.event, data: e.data, id: e.id }),
      onError: (e) => seen.errors.push({ status: e.status, message: e.message }),
      onReset: (r) => seen.resets.push(r),
      onState: (s) => seen.states.push([s, Date.now()]),
      onClose: (c) => { seen.closed = { reason: c.reason, status: c.error ? c.error.status : null }; },
    });
    return window.subs[name].transport;
  }, { name, topics, options });
}

const seenIn = (page, name) => page.evaluate((n) => window.seen[n], name);

async function subscribers(client, topic, n = 1) {
  await waitFor(async () => (await client.topic(topic)).subscribers >= n, { what: `${n} subscriber(s) of ${topic}` });
}

test('the hub serves the browser build; EventSource by default; named events and JSON', async () => {
  const hub = await hubWith(['--memory']);
  const { context, page } = await openPage(hub.url);
  try {
    const served = await (await fetch(`${hub.url}/ssehub.js`)).text();
    assert.equal(served, fs.readFileSync(DIST, 'utf8'), 'the hub serves dist/ssehub.js (rebuild the hub after `npm run build`)');
    const transport = await subscribeInPage(page, 'a', ['news'], { json: true, events: ['headline'] });
    assert.equal(transport, 'eventsource');
    const client = new Client(hub.url);
    await subscribers(client, 'news');
    const first = await client.publish('news', { title: 'one' }, { event: 'headline' });
    await client.publish('news', [1, 2, 3]);
    await waitFor(async () => (await seenIn(page, 'a')).events.length === 2, { what: 'two events in the page' });
    const seen = await seenIn(page, 'a');
    assert.deepEqual(seen.events.map((e) => [e.event, e.data]), [['headline', { title: 'one' }], ['message', [1, 2, 3]]]);
    assert.equal(seen.events[0].id, first.id);
    // A handler added later reaches the open EventSource too.
    await page.evaluate(() => {
      window.late = [];
      window.subs.a.on('late-type', (e) => window.late.push(e.data));
      // The connection's own error/open are not events of the stream.
      window.subs.a.on('error', () => {});
      window.subs.a.on('open', () => window.late.push('wrongly heard open'));
    });
    await client.publish('news', { late: true }, { event: 'late-type' });
    await waitFor(() => page.evaluate(() => window.late.length === 1), { what: 'the late-registered type' });
    assert.deepEqual(await page.evaluate(() => window.late), [{ late: true }]);
    await page.evaluate(() => window.subs.a.close());
    await waitFor(async () => (await client.topic('news')).subscribers === 0, { what: 'the stream closed' });
  } finally {
    await context.close();
    await hub.stop();
  }
});

test('the browser build parses the shared vectors as the Node tests do', async () => {
  const dir = process.env.SSE_VECTORS || path.resolve(ROOT, '..', 'shared', 'reference', 'sse-vectors');
  assert.ok(fs.existsSync(dir), `SSE vector directory not found at ${dir}`);
  const vectors = [];
  for (const name of fs.readdirSync(dir).filter((n) => n.endsWith('.json'))) {
    const doc = JSON.parse(fs.readFileSync(path.join(dir, name), 'utf8'));
    if (doc.schema === 'sse-vectors/1') vectors.push(...doc.vectors.map((v) => ({ ...v, file: name })));
  }
  assert.ok(vectors.length > 100);
  const hub = await hubWith(['--memory']);
  const { context, page } = await openPage(hub.url);
  try {
    const failures = await page.evaluate((list) => {
      const bytes = (c) => ('text' in c ? new TextEncoder().encode(c.text)
        : Uint8Array.from(c.hex.match(/../g) || [], (h) => parseInt(h, 16)));
      const out = [];
      for (const v of list) {
        const parser = new window.ssehub.SSEParser();
        const got = [];
        for (const c of v.chunks) for (const e of parser.feed(bytes(c))) got.push({ event: e.event, data: e.data, id: e.lastEventId });
        parser.end();
        const want = v.expected.events.map((e) => ({ event: e.event, data: e.data, id: e.id }));
        if (JSON.stringify(got) !== JSON.stringify(want)) out.push(`${v.file} / ${v.id}`);
        if ('final_last_event_id' in v.expected && parser.lastEventId !== v.expected.final_last_event_id) out.push(`${v.file} / ${v.id}: last id`);
      }
      return out;
    }, vectors);
    assert.deepEqual(failures, []);
  } finally {
    await context.close();
    await hub.stop();
  }
});

test('tokens: a cookie with EventSource, a header with fetch streaming; refusals end it', async () => {
  const hub = await hubWith(['--memory', '--subscriber-jwt-key', 'sub-secret']);
  const token = await mintToken('sub-secret', { subscribe: ['private-topic'] });
  const cookie = { name: 'mercureAuthorization', value: token, url: hub.url };
  const withCookie = await openPage(hub.url, [cookie]);
  const without = await openPage(hub.url);
  try {
    const client = new Client(hub.url);
    assert.equal(await subscribeInPage(withCookie.page, 'cookie', ['private-topic']), 'eventsource');
    assert.equal(await subscribeInPage(without.page, 'header', ['private-topic'], { token }), 'fetch');
    assert.equal(await subscribeInPage(without.page, 'none', ['private-topic']), 'eventsource');
    assert.equal(await subscribeInPage(withCookie.page, 'mercure', ['private-topic'], { mercure: true }), 'eventsource');
    await subscribers(client, 'private-topic', 3);
    await client.publish('private-topic', 'for token holders', { private: true });
    for (const [page, name] of [[withCookie.page, 'cookie'], [without.page, 'header'], [withCookie.page, 'mercure']]) {
      await waitFor(async () => (await seenIn(page, name)).events.length === 1, { what: `the event (${name})` });
      assert.equal((await seenIn(page, name)).events[0].data, 'for token holders');
    }
    // Resuming a Mercure EventSource names the position in the query (lastEventID).
    const after = (await seenIn(withCookie.page, 'mercure')).events[0].id;
    await withCookie.page.evaluate(() => window.subs.mercure.close());
    await client.publish('private-topic', 'missed', { private: true });
    await subscribeInPage(withCookie.page, 'mercure2', ['private-topic'], { mercure: true, lastEventId: after });
    await waitFor(async () => (await seenIn(withCookie.page, 'mercure2')).events.length === 1, { what: 'the replay' });
    assert.equal((await seenIn(withCookie.page, 'mercure2')).events[0].data, 'missed');
    // No token: EventSource fails; the client asks why (401) and stops.
    await waitFor(async () => (await seenIn(without.page, 'none')).closed, { what: 'the refusal' });
    assert.deepEqual((await seenIn(without.page, 'none')).closed, { reason: 'refused', status: 401 });
  } finally {
    await withCookie.context.close();
    await without.context.close();
    await hub.stop();
  }
});

test('cross-origin: a header token through CORS, resuming with Last-Event-ID after each stream ends', async () => {
  const pages = await hubWith(['--memory']); // serves the page on another origin
  const pageOrigin = `http://localhost:${pages.port}`;
  const hub = await startHub(['--memory', '--subscriber-jwt-key', 'k', '--cors-origins', pageOrigin,
    '--stream-lifetime', '1', '--retry', '100']);
  const context = await browser.newContext();
  const page = await context.newPage();
  try {
    await page.goto(`${pageOrigin}/`);
    await page.addScriptTag({ url: `${hub.url}/ssehub.js` });
    const token = await mintToken('k', { subscribe: ['x'] });
    await page.evaluate(({ url, token }) => {
      window.got = [];
      window.sub = new window.ssehub.Client(url, { token }).subscribe('x', {
        json: true, onEvent: (e) => window.got.push(e.data.n),
      });
    }, { url: hub.url, token });
    const client = new Client(hub.url);
    await subscribers(client, 'x');
    for (let n = 1; n <= 30; n += 1) {
      await client.publish('x', { n });
      await sleep(100); // across about three stream lifetimes
    }
    await waitFor(() => page.evaluate(() => window.got.length >= 30), { what: 'every event in the page' }).catch(async (err) => {
      throw new Error(`${err.message}: got ${JSON.stringify(await page.evaluate(() => [window.got, window.sub.state, window.sub.connections, window.sub.lastEventId]))}`);
    });
    await sleep(300);
    const got = await page.evaluate(() => window.got);
    assert.deepEqual(got, Array.from({ length: 30 }, (_, i) => i + 1));
    assert.ok(await page.evaluate(() => window.sub.connections) >= 3, 'the streams ended and resumed');
  } finally {
    await context.close();
    await hub.stop();
    await pages.stop();
  }
});

test('the hub killed mid-stream and restarted: no event lost or twice, both transports', async () => {
  const dir = tempDir('browser-kill');
  const args = ['--public-dir', publicDir, '--data-dir', dir, '--retry', '200'];
  let hub = await startHub(args);
  const port = hub.port;
  const { context, page } = await openPage(hub.url);
  try {
    await subscribeInPage(page, 'es', ['ticks'], { json: true, maxDelay: 1000 });
    await subscribeInPage(page, 'fetch', ['ticks'], { json: true, maxDelay: 1000, transport: 'fetch' });
    const client = new Client(hub.url);
    await subscribers(client, 'ticks', 2);
    const publisher = publishLoop(client, 'ticks');
    const { acked } = publisher;
    const count = async () => Math.min((await seenIn(page, 'es')).events.length, (await seenIn(page, 'fetch')).events.length);
    for (let round = 1; round <= 2; round += 1) {
      await waitFor(async () => (await count()) > 80 * round, { what: `events before kill ${round}`, timeoutMs: 20000 });
      await hub.kill();
      await sleep(400);
      hub = await startHub(args, { port });
    }
    await sleep(1000);
    await publisher.stop();
    const last = acked[acked.length - 1];
    for (const name of ['es', 'fetch']) {
      await waitFor(async () => (await seenIn(page, name)).events.some((e) => e.data.seq === last),
        { what: `the last acknowledged event (${name})`, timeoutMs: 20000 });
      const seen = await seenIn(page, name);
      assertOnceInOrder(assert, seen.events.map((e) => e.data.seq), acked, name);
      assert.deepEqual(seen.resets, [], `${name}: the replay was complete`);
      // The hub was down longer than retry:, so the client's own back-off ran (for
      // EventSource: after the browser's one reconnect failed).
      assert.ok(seen.states.some(([s]) => s === 'waiting'), `${name}: states ${JSON.stringify(seen.states.map(([s]) => s))}`);
    }
    const connections = await page.evaluate(() => [window.subs.es.connections, window.subs.fetch.connections]);
    assert.ok(connections.every((n) => n >= 3), `connections ${connections}`);
  } finally {
    await context.close();
    await hub.stop();
  }
});

test('resume across page loads from localStorage', async () => {
  const hub = await hubWith(['--memory']);
  const context = await browser.newContext();
  const page = await context.newPage();
  const load = async () => {
    await page.goto(`${hub.url}/`);
    await page.addScriptTag({ url: '/ssehub.js' });
  };
  try {
    const client = new Client(hub.url);
    await load();
    await subscribeInPage(page, 'r', ['feed'], { useLocalStorage: true });
    await subscribers(client, 'feed');
    for (const n of [1, 2, 3]) await client.publish('feed', `e${n}`);
    await waitFor(async () => (await seenIn(page, 'r')).events.length === 3, { what: 'the first events' });
    await page.goto('about:blank');
    await waitFor(async () => (await client.topic('feed')).subscribers === 0, { what: 'the page gone' });
    for (const n of [4, 5]) await client.publish('feed', `e${n}`);
    await load();
    await subscribeInPage(page, 'r', ['feed'], { useLocalStorage: true });
    await waitFor(async () => (await seenIn(page, 'r')).events.length === 2, { what: 'the missed events' });
    await client.publish('feed', 'e6');
    await waitFor(async () => (await seenIn(page, 'r')).events.length === 3, { what: 'the live event' });
    assert.deepEqual((await seenIn(page, 'r')).events.map((e) => e.data), ['e4', 'e5', 'e6']);
  } finally {
    await context.close();
    await hub.stop();
  }
});

test('offline pauses; back online reconnects at once and catches up', async () => {
  // retry: 10 s, so a reconnect within it can only be the online event's.
  const hub = await hubWith(['--memory', '--retry', '10000']);
  const { context, page } = await openPage(hub.url);
  try {
    const client = new Client(hub.url);
    await subscribeInPage(page, 'o', ['net']);
    await subscribers(client, 'net');
    await client.publish('net', 'before');
    await waitFor(async () => (await seenIn(page, 'o')).events.length === 1);
    await context.setOffline(true);
    await waitFor(() => page.evaluate(() => window.subs.o.state === 'paused'), { what: 'paused while offline' });
    await waitFor(async () => (await client.topic('net')).subscribers === 0, { what: 'the stream dropped' });
    await client.publish('net', 'while offline');
    const back = Date.now();
    await context.setOffline(false);
    await waitFor(async () => (await seenIn(page, 'o')).events.length === 2, { what: 'the missed event', timeoutMs: 5000 });
    assert.ok(Date.now() - back < 5000);
    assert.deepEqual((await seenIn(page, 'o')).events.map((e) => e.data), ['before', 'while offline']);
  } finally {
    await context.close();
    await hub.stop();
  }
});

test('hidden past hiddenTimeout disconnects; visible again resumes', async () => {
  const hub = await hubWith(['--memory']);
  const { context, page } = await openPage(hub.url);
  const setVisibility = (state) => page.evaluate((s) => {
    Object.defineProperty(document, 'visibilityState', { configurable: true, get: () => s });
    document.dispatchEvent(new Event('visibilitychange'));
  }, state);
  try {
    const client = new Client(hub.url);
    await subscribeInPage(page, 'v', ['view'], { hiddenTimeout: 200 });
    await subscribers(client, 'view');
    await client.publish('view', 'seen');
    await waitFor(async () => (await seenIn(page, 'v')).events.length === 1);
    await setVisibility('hidden');
    await waitFor(async () => (await client.topic('view')).subscribers === 0, { what: 'the hidden page to let go' });
    assert.equal(await page.evaluate(() => window.subs.v.state), 'paused');
    await client.publish('view', 'while hidden');
    await setVisibility('visible');
    await waitFor(async () => (await seenIn(page, 'v')).events.length === 2, { what: 'the missed event', timeoutMs: 5000 });
    assert.deepEqual((await seenIn(page, 'v')).events.map((e) => e.data), ['seen', 'while hidden']);
  } finally {
    await context.close();
    await hub.stop();
  }
});
