// The client in Node against a real hub binary: publish, subscribe (fetch streaming), JSON
// decoding, resume, ssehub-reset, closed topics, tokens, back-off, storage, Mercure, and a
// hub killed mid-stream and restarted on the same address and data directory.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';

import { Client, SSEHubError, Backoff, mintToken, subscribe } from '../src/index.js';
import { startHub, tempDir, sleep, waitFor, publishLoop, assertOnceInOrder } from './harness.js';

let hub;
before(async () => { hub = await startHub(['--memory', '--retry', '300']); });
after(async () => { await hub.stop(); });

/** Collects a subscription's events, and its errors and end, for assertions. */
function collector(options = {}) {
  const seen = { events: [], errors: [], resets: [], states: [], closed: null };
  return {
    seen,
    options: {
      ...options,
      onEvent: (e) => seen.events.push(e),
      onError: (e) => seen.errors.push(e),
      onReset: (r) => seen.resets.push(r),
      onState: (s) => seen.states.push([s, Date.now()]),
      onClose: (c) => { seen.closed = c; },
    },
  };
}

async function subscribers(client, topic, n = 1) {
  await waitFor(async () => (await client.topic(topic)).subscribers >= n, { what: `${n} subscriber(s) of ${topic}` });
}

test('publish and receive, named and unnamed, with the id the hub gave', async () => {
  const client = new Client(hub.url);
  const { seen, options } = collector();
  const sub = client.subscribe('news', options);
  const headlines = [];
  sub.on('headline', (e) => headlines.push(e.data));
  await subscribers(client, 'news');
  const first = await client.publish('news', 'Hello, world', { event: 'headline' });
  assert.equal(first.delivered, 1);
  await client.publish('news', 'line 1\nline 2');
  await waitFor(() => seen.events.length === 2, { what: 'two events' });
  assert.deepEqual(seen.events.map((e) => [e.event, e.data]), [['headline', 'Hello, world'], ['message', 'line 1\nline 2']]);
  assert.equal(seen.events[0].id, first.id);
  assert.deepEqual(headlines, ['Hello, world']);
  assert.equal(sub.lastEventId, seen.events[1].id);
  assert.equal(sub.transport, 'fetch');
  sub.close();
  assert.equal(sub.state, 'closed');
  assert.equal(seen.closed.reason, 'closed');
});

test('typed JSON decoding, several topics, async iteration', async () => {
  const client = new Client(hub.url);
  const sub = client.subscribe(['j1', 'j2'], { json: true });
  await subscribers(client, 'j1');
  await client.publish('j1', { title: 'hi', n: [1, 2] });
  await client.publish('j2', 42);
  const got = [];
  for await (const event of sub) {
    got.push(event.data);
    if (got.length === 2) break; // ends the subscription
  }
  assert.deepEqual(got, [{ title: 'hi', n: [1, 2] }, 42]);
  assert.equal(sub.state, 'closed');
});

test('an event that does not decode is reported and skipped; the stream goes on', async () => {
  const client = new Client(hub.url);
  const { seen, options } = collector({ json: true });
  const sub = client.subscribe('badjson', options);
  await subscribers(client, 'badjson');
  await client.publish('badjson', 'not json');
  await client.publish('badjson', { ok: true });
  await waitFor(() => seen.events.length === 1, { what: 'the good event' });
  assert.deepEqual(seen.events[0].data, { ok: true });
  assert.equal(seen.errors.length, 1);
  assert.match(seen.errors[0].message, /could not decode/);
  sub.close();
});

test('an event over maxEventSize is skipped and reported; its id still moves the position', async () => {
  const client = new Client(hub.url);
  const { seen, options } = collector({ maxEventSize: 1000 });
  const sub = client.subscribe('big', options);
  await subscribers(client, 'big');
  const big = await client.publish('big', 'x'.repeat(5000));
  await client.publish('big', 'small');
  await waitFor(() => seen.events.length === 1, { what: 'the small event' });
  assert.equal(seen.events[0].data, 'small');
  assert.equal(seen.errors.length, 1);
  assert.match(seen.errors[0].message, new RegExp(`event ${big.id} skipped`));
  sub.close();
});

test('resume after an id; an unknown id brings ssehub-reset and the whole history', async () => {
  const client = new Client(hub.url);
  const ids = [];
  for (const n of [1, 2, 3]) ids.push((await client.publish('resume', `e${n}`)).id);
  const a = collector();
  const subA = client.subscribe('resume', { ...a.options, lastEventId: ids[0] });
  await waitFor(() => a.seen.events.length === 2, { what: 'the replay' });
  assert.deepEqual(a.seen.events.map((e) => e.data), ['e2', 'e3']);
  assert.deepEqual(a.seen.resets, []);
  subA.close();

  const b = collector();
  const subB = client.subscribe('resume', { ...b.options, lastEventId: '1-0-not-an-id' });
  await waitFor(() => b.seen.events.length === 3, { what: 'the full replay' });
  assert.equal(b.seen.resets.length, 1);
  assert.equal(b.seen.resets[0].lastEventId, '1-0-not-an-id');
  assert.ok(['unknown', 'expired'].includes(b.seen.resets[0].reason));
  assert.equal(subB.lastEventId, ids[2], 'the control event does not move the position');
  subB.close();
});

test('storage keeps the position between two subscriptions (a page reload)', async () => {
  const client = new Client(hub.url);
  const map = new Map();
  const storage = { getItem: (k) => map.get(k) ?? null, setItem: (k, v) => map.set(k, v) };
  const a = collector({ storage });
  const subA = client.subscribe('stored', a.options);
  await subscribers(client, 'stored');
  await client.publish('stored', 'one');
  await waitFor(() => a.seen.events.length === 1);
  subA.close();
  await client.publish('stored', 'two');
  await client.publish('stored', 'three');
  assert.equal([...map.values()][0], a.seen.events[0].id);
  const b = collector({ storage });
  const subB = client.subscribe('stored', b.options);
  await waitFor(() => b.seen.events.length === 2, { what: 'the missed events' });
  assert.deepEqual(b.seen.events.map((e) => e.data), ['two', 'three']);
  subB.close();
});

test('reconnect() drops the stream and resumes at once, missing nothing', async () => {
  const client = new Client(hub.url);
  const { seen, options } = collector();
  const sub = client.subscribe('again', options);
  await waitFor(() => sub.state === 'open');
  await client.publish('again', 'a');
  await waitFor(() => seen.events.length === 1);
  sub.reconnect();
  await client.publish('again', 'b'); // may land between the two connections
  await waitFor(() => sub.connections === 2 && seen.events.length === 2, { what: 'the second connection' });
  await client.publish('again', 'c');
  await waitFor(() => seen.events.length === 3);
  assert.deepEqual(seen.events.map((e) => e.data), ['a', 'b', 'c']);
  sub.close();
});

test('a closed topic ends the subscription (204 on reconnect)', async () => {
  const client = new Client(hub.url);
  const { seen, options } = collector();
  client.subscribe('closing', options);
  await subscribers(client, 'closing');
  await client.publish('closing', 'last', { close: true });
  await waitFor(() => seen.closed, { what: 'the end' });
  assert.equal(seen.closed.reason, 'done');
  assert.deepEqual(seen.events.map((e) => e.data), ['last']);
});

test('publish errors carry status, message and field', async () => {
  const client = new Client(hub.url);
  await assert.rejects(client.publish('news', 'x', { event: 'bad\nname' }), (err) => {
    assert.ok(err instanceof SSEHubError);
    assert.equal(err.status, 400);
    assert.equal(err.field, 'event');
    return true;
  });
  const many = await client.publishMany([['pm', 'a'], { topic: 'pm', data: 'b', event: 'x' }, ['pm', 'c']], { concurrency: 2 });
  assert.equal(many.length, 3);
  assert.ok(many.every((m) => typeof m.id === 'string'));
});

test('the back-off: retry after a good connection, doubling on failures, capped, jittered', () => {
  const fixed = new Backoff(10000, () => 0);
  fixed.retryMs = 300;
  assert.equal(fixed.delay(), 300);
  fixed.failures = 1;
  assert.equal(fixed.delay(), 600);
  fixed.failures = 3;
  assert.equal(fixed.delay(), 2400);
  fixed.failures = 20;
  assert.equal(fixed.delay(), 10000);
  assert.equal(fixed.delay(15000), 15000, 'Retry-After wins when longer');
  fixed.retryMs = 0;
  fixed.failures = 1;
  assert.equal(fixed.delay(), 100, 'retry: 0 does not spin');
  const top = new Backoff(10000, () => 1);
  top.retryMs = 300;
  assert.equal(top.delay(), 375);
});

test('after the stream ends the client waits the hub retry: before resuming', async () => {
  // --stream-lifetime ends each stream after about a second, from the hub's side.
  const own = await startHub(['--memory', '--retry', '700', '--stream-lifetime', '1']);
  try {
    const client = new Client(own.url);
    const { seen, options } = collector();
    const sub = client.subscribe('r', options);
    await waitFor(() => sub.connections === 3, { what: 'two reconnects', timeoutMs: 15000 });
    const states = seen.states;
    const gaps = [];
    states.forEach(([s, t], i) => {
      if (s === 'waiting' && states[i + 1] && states[i + 1][0] === 'connecting') gaps.push(states[i + 1][1] - t);
    });
    assert.ok(gaps.length >= 2, `states: ${JSON.stringify(states)}`);
    for (const gap of gaps) {
      // The hub's retry: 700 (up to 10 % less, its jitter), times our 1-1.25.
      assert.ok(gap >= 600 && gap < 1250, `reconnected after ${gap} ms (doubled would be 1260 or more)`);
    }
    assert.deepEqual(seen.errors, [], 'an ended stream is not an error');
    sub.close();
  } finally {
    await own.stop();
  }
});

test('with the hub gone, each attempt waits about twice as long as the one before', async () => {
  const own = await startHub(['--memory', '--retry', '100']);
  const client = new Client(own.url);
  const { seen, options } = collector({ maxDelay: 5000 });
  const sub = client.subscribe('gone', options);
  await waitFor(() => sub.state === 'open', { what: 'the stream' });
  await own.kill();
  await waitFor(() => seen.states.filter(([s]) => s === 'waiting').length >= 5, { what: 'five waits', timeoutMs: 15000 });
  sub.close();
  const gaps = [];
  seen.states.forEach(([s, t], i) => {
    if (s === 'waiting' && seen.states[i + 1] && seen.states[i + 1][0] === 'connecting') gaps.push(seen.states[i + 1][1] - t);
  });
  // The killed hub's socket closes cleanly: the stream ended, so first retry: 100 (less up
  // to 10 %); then doubled per failed attempt: about 200, 400, 800, each x 1-1.25.
  assert.ok(gaps[0] >= 85 && gaps[0] < 300, `first wait ${gaps[0]} ms`);
  for (let i = 1; i < gaps.length; i += 1) {
    assert.ok(gaps[i] >= gaps[i - 1] * 1.4, `waits ${gaps.join(', ')} ms do not grow`);
  }
});

test('tokens: minted here, sent as a header; a fixed bad token is refused for good', async () => {
  const own = await startHub(['--memory', '--subscriber-jwt-key', 'sub-secret', '--publisher-jwt-key', 'pub-secret']);
  try {
    const publisher = new Client(own.url, { token: await mintToken('pub-secret', { publish: ['*'] }) });
    const tokens = [];
    const client = new Client(own.url, {
      token: async () => {
        const t = await mintToken('sub-secret', { subscribe: ['secret'], exp: { seconds: 60 } });
        tokens.push(t);
        return t;
      },
    });
    const { seen, options } = collector();
    const sub = client.subscribe('secret', options);
    await waitFor(async () => (await publisher.topic('secret')).subscribers === 1, { what: 'the subscriber' });
    await publisher.publish('secret', 'private data', { private: true });
    await waitFor(() => seen.events.length === 1, { what: 'the private event' });
    assert.equal(seen.events[0].data, 'private data');
    assert.equal(tokens.length, 1);
    sub.close();

    const bad = collector();
    new Client(own.url, { token: 'not-a-token' }).subscribe('secret', bad.options);
    await waitFor(() => bad.seen.closed, { what: 'the refusal' });
    assert.equal(bad.seen.closed.reason, 'refused');
    assert.equal(bad.seen.closed.error.status, 401);

    await assert.rejects(new Client(own.url).publish('secret', 'x'), (e) => e.status === 401);

    // A Mercure publish with the same token reaches a native subscriber.
    const c = collector({ json: true });
    const subC = client.subscribe('secret', c.options);
    await waitFor(async () => (await publisher.topic('secret')).subscribers === 1, { what: 'the subscriber' });
    const m = await publisher.publish('secret', { via: 'mercure' }, { mercure: true, event: 'update', private: true });
    await waitFor(() => c.seen.events.length === 1, { what: 'the Mercure update' });
    assert.deepEqual([c.seen.events[0].event, c.seen.events[0].data, c.seen.events[0].id], ['update', { via: 'mercure' }, m.id]);
    await assert.rejects(new Client(own.url).publish('secret', 'x', { mercure: true }), (e) => e.status === 401);
    subC.close();
  } finally {
    await own.stop();
  }
});

test('a token function that fails is retried with back-off, not left hanging', async () => {
  const own = await startHub(['--memory', '--subscriber-jwt-key', 'k']);
  try {
    let calls = 0;
    const client = new Client(own.url, {
      token: async () => {
        calls += 1;
        if (calls < 3) throw new Error('token service down');
        return mintToken('k', { subscribe: ['t'] });
      },
    });
    const { seen, options } = collector({ maxDelay: 200 });
    const sub = client.subscribe('t', options);
    await waitFor(() => sub.state === 'open', { what: 'the third attempt to connect' });
    assert.equal(calls, 3);
    assert.equal(seen.errors.length, 2);
    assert.match(seen.errors[0].message, /token function failed/);
    sub.close();
  } finally {
    await own.stop();
  }
});

test('callbacks alone do not queue events for an iterator nobody runs', async () => {
  const client = new Client(hub.url);
  const { seen, options } = collector();
  const sub = client.subscribe('noqueue', options);
  await subscribers(client, 'noqueue');
  await client.publishMany([['noqueue', 'a'], ['noqueue', 'b']]);
  await waitFor(() => seen.events.length === 2);
  assert.equal(sub._queue.length, 0);
  sub.close();
});

test('the Mercure endpoint, with topic IRIs', async () => {
  const client = new Client(hub.url);
  const topic = 'https://example.com/books/1';
  const { seen, options } = collector({ mercure: true, json: true });
  const sub = client.subscribe(topic, options);
  await subscribers(client, topic);
  await client.publish(topic, { title: 'Dune' });
  await waitFor(() => seen.events.length === 1, { what: 'the update' });
  assert.deepEqual(seen.events[0].data, { title: 'Dune' });
  sub.close();
  // Resume through the Mercure endpoint too.
  await client.publish(topic, { title: 'Emma' });
  const b = collector({ mercure: true, json: true, lastEventId: seen.events[0].id });
  const subB = client.subscribe(topic, b.options);
  await waitFor(() => b.seen.events.length === 1, { what: 'the replay' });
  assert.deepEqual(b.seen.events[0].data, { title: 'Emma' });
  subB.close();
});

test('subscribing before the hub is up: back-off until it comes', async () => {
  const probe = await startHub(['--memory']);
  const port = probe.port;
  await probe.stop();
  const { seen, options } = collector();
  const sub = subscribe(`http://127.0.0.1:${port}`, 'early', { ...options, maxDelay: 400 });
  await waitFor(() => seen.errors.length >= 2, { what: 'failed attempts' });
  assert.equal(seen.errors[0].status, 0);
  const late = await startHub(['--memory'], { port });
  try {
    const client = new Client(late.url);
    await subscribers(client, 'early');
    await client.publish('early', 'finally');
    await waitFor(() => seen.events.length === 1);
    sub.close();
  } finally {
    await late.stop();
  }
});

test('a silent connection is dropped after readTimeout and resumed', async () => {
  const own = await startHub(['--memory', '--heartbeat', '30', '--retry', '100']);
  try {
    const client = new Client(own.url);
    const { seen, options } = collector({ readTimeout: 500 });
    const sub = client.subscribe('quiet', options);
    await waitFor(() => sub.connections >= 2, { what: 'a reconnect after the read timeout', timeoutMs: 5000 });
    await client.publish('quiet', 'still here');
    await waitFor(() => seen.events.length === 1);
    sub.close();
  } finally {
    await own.stop();
  }
});

test('the hub killed mid-stream and restarted: every acknowledged event once, in order', async () => {
  const dir = tempDir('kill');
  let current = await startHub(['--data-dir', dir, '--retry', '200']);
  const port = current.port;
  const client = new Client(current.url);
  const { seen, options } = collector({ json: true, maxDelay: 1000 });
  const sub = client.subscribe('stream', options);
  await subscribers(client, 'stream');

  const publisher = publishLoop(client, 'stream');
  const { acked } = publisher;
  for (let round = 0; round < 2; round += 1) {
    await waitFor(() => seen.events.length > 100 * (round + 1), { what: 'events before the kill', timeoutMs: 15000 });
    await current.kill();
    await sleep(300);
    current = await startHub(['--data-dir', dir, '--retry', '200'], { port });
  }
  const before = acked.length;
  await waitFor(() => acked.length > before + 100, { what: 'publishes after the last restart', timeoutMs: 15000 });
  await publisher.stop();
  const last = acked[acked.length - 1];
  await waitFor(() => seen.events.some((e) => e.data.seq === last), { what: 'the last acknowledged event', timeoutMs: 15000 });
  sub.close();
  await current.stop();

  assertOnceInOrder(assert, seen.events.map((e) => e.data.seq), acked);
  assert.ok(sub.connections >= 3, `reconnected ${sub.connections - 1} times`);
  assert.equal(new Set(seen.events.map((e) => e.id)).size, seen.events.length, 'ids unique');
});
