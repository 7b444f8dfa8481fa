// A browser EventSource survives a hub restart on the same port: it reconnects with
// Last-Event-ID and receives, in order and without gap or duplicate, what was published while it
// was away. In memory mode the first hub's history is gone, so the hub must also say so with
// `ssehub-reset`; with a data directory the history survives and no reset is sent.
'use strict';

const test = require('node:test');
const assert = require('node:assert/strict');
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const { startHub, hubSupports, launchBrowser, publish, waitFor, sleep } = require('./lib/harness');

const TOPIC = 'restart';

/** In the page: an EventSource on the topic that records what it sees, with timestamps. */
function openSource(topic) {
  const es = new EventSource(`/events/${encodeURIComponent(topic)}`);
  window.log = [];
  window.opens = [];
  window.es = es;
  es.onopen = () => window.opens.push(Date.now());
  const record = (e) => window.log.push({ type: e.type, id: e.lastEventId, data: e.data, at: Date.now() });
  es.addEventListener('message', record);
  es.addEventListener('ssehub-reset', record);
}

async function run(t, storeArgs) {
  // A long first retry (3 s from the first hub) leaves time to bring the second hub up and
  // publish 4..6 before the browser comes back.
  const first = await startHub([...storeArgs, '--retry', '3000']);
  let second = null;
  t.after(async () => { await first.stop(); if (second) await second.stop(); });
  const browser = await launchBrowser();
  t.after(() => browser.close());
  const page = await browser.newPage();
  const eventRequests = [];
  page.on('request', (req) => { if (req.url().includes(`/events/${TOPIC}`)) eventRequests.push(req); });

  await page.goto(first.url + '/');
  await page.evaluate(openSource, TOPIC);
  await waitFor(() => page.evaluate(() => window.opens.length === 1), { what: 'the EventSource to open' });

  const ids = [];
  for (const n of [1, 2, 3]) {
    const res = await publish(first.url, { topic: TOPIC, data: String(n) });
    assert.equal(res.status, 200, JSON.stringify(res.body));
    ids.push(res.body.id);
  }
  await waitFor(() => page.evaluate(() => window.log.length >= 3), { what: 'events 1..3 in the browser' });

  await first.stop();
  second = await startHub([...storeArgs, '--retry', '500'], { port: first.port });
  for (const n of [4, 5, 6]) {
    const res = await publish(second.url, { topic: TOPIC, data: String(n) });
    assert.equal(res.status, 200, JSON.stringify(res.body));
    ids.push(res.body.id);
  }
  const publishedAt = Date.now();
  const opensBefore = await page.evaluate(() => window.opens.length);
  assert.equal(opensBefore, 1, 'the browser reconnected before 4..6 were published; the test needs a slower retry');

  await waitFor(() => page.evaluate(() => window.log.filter((e) => e.type === 'message').length >= 6),
    { timeoutMs: 15000, what: 'events 4..6 after the restart' });
  // Let anything extra (a duplicate) arrive before judging.
  await new Promise((r) => setTimeout(r, 700));
  const { log, opens, readyState } = await page.evaluate(() => ({
    log: window.log, opens: window.opens, readyState: window.es.readyState,
  }));

  const messages = log.filter((e) => e.type === 'message');
  assert.deepEqual(messages.map((e) => e.data), ['1', '2', '3', '4', '5', '6'], 'in order, no gap, no duplicate');
  assert.deepEqual(messages.map((e) => e.id), ids, 'each with the id the hub answered at publish');
  assert.equal(readyState, 1, 'still open');
  assert.ok(opens.length >= 2 && opens[1] >= publishedAt, 'came back after 4..6 were published');
  // The browser told the new hub where it was.
  const resumed = eventRequests.at(-1);
  assert.equal((await resumed.allHeaders())['last-event-id'], ids[2], 'reconnect carries Last-Event-ID');
  return { log, ids };
}

test('EventSource survives a restart of a memory hub, told by ssehub-reset', async (t) => {
  const { log, ids } = await run(t, ['--memory']);
  const resets = log.filter((e) => e.type === 'ssehub-reset');
  assert.equal(resets.length, 1, 'exactly one ssehub-reset');
  const reset = JSON.parse(resets[0].data);
  // The new hub never saw the id; "expired" (older than what it retains) is also a documented
  // way to say the same thing.
  assert.ok(['unknown', 'expired'].includes(reset.reason), `reset reason: ${reset.reason}`);
  assert.equal(reset.lastEventId, ids[2]);
  assert.equal(resets[0].id, ids[2], 'the reset has no id, so the position does not move');
  const resetAt = log.indexOf(resets[0]);
  const fourAt = log.findIndex((e) => e.data === '4');
  assert.ok(resetAt < fourAt, 'the reset comes before the replay');
});

test('EventSource survives a restart of a hub with a data directory, with no reset', async (t) => {
  if (!(await hubSupports('--data-dir'))) {
    t.skip('this hub has no --data-dir option');
    return;
  }
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'ssehub-e2e-'));
  t.after(() => fs.rmSync(dir, { recursive: true, force: true }));
  // Until the durable store is wired in, the hub accepts --data-dir but says at start that it
  // keeps history in memory; only that declaration skips this test.
  const probe = await startHub(['--data-dir', dir]);
  await sleep(300);
  await probe.stop();
  const declared = /not built yet[;,\w ]*/i.exec(probe.stderr());
  if (declared) {
    t.skip(`the hub keeps --data-dir history in memory for now: "${declared[0].trim()}"`);
    return;
  }
  const { log } = await run(t, ['--data-dir', dir]);
  assert.deepEqual(log.filter((e) => e.type === 'ssehub-reset'), [], 'history survived: no reset');
});
