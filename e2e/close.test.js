// Closing a topic stops a browser EventSource for good: it gets the final event, its reconnect
// is answered 204, it ends CLOSED, and it makes no further request.
'use strict';

const test = require('node:test');
const assert = require('node:assert/strict');
const { startHub, launchBrowser, publish, waitFor, sleep } = require('./lib/harness');

test('a closed topic stops the EventSource', async (t) => {
  const hub = await startHub(['--memory', '--retry', '500']);
  t.after(() => hub.stop());
  const browser = await launchBrowser();
  t.after(() => browser.close());
  const page = await browser.newPage();

  const topic = 'closing';
  const streamUrl = `${hub.url}/events/${topic}`;
  const requests = [];
  const statuses = [];
  page.on('request', (req) => { if (req.url() === streamUrl) requests.push(req); });
  page.on('response', (res) => { if (res.url() === streamUrl) statuses.push(res.status()); });

  await page.goto(hub.url + '/');
  await page.evaluate((url) => {
    const es = new EventSource(url);
    window.es = es;
    window.log = [];
    window.errors = [];
    const record = (e) => window.log.push({ type: e.type, id: e.lastEventId, data: e.data });
    es.addEventListener('message', record);
    es.addEventListener('ssehub-close', record);
    es.onerror = () => window.errors.push(es.readyState);
  }, streamUrl);
  await waitFor(() => page.evaluate(() => window.es.readyState === 1), { what: 'the EventSource to open' });

  const before = await publish(hub.url, { topic, data: 'before' });
  assert.equal(before.status, 200);
  await waitFor(() => page.evaluate(() => window.log.length === 1), { what: 'the first event' });

  const res = await fetch(`${hub.url}/topics/${topic}`, { method: 'DELETE' });
  assert.equal(res.status, 200);
  const { id: finalId } = await res.json();
  assert.equal(typeof finalId, 'string');

  await waitFor(() => page.evaluate(() => window.log.some((e) => e.type === 'ssehub-close')),
    { timeoutMs: 5000, what: 'the final ssehub-close event' });
  await waitFor(() => page.evaluate(() => window.es.readyState === 2),
    { timeoutMs: 8000, what: 'the EventSource to end CLOSED' });

  const { log, errors } = await page.evaluate(() => ({ log: window.log, errors: window.errors }));
  assert.deepEqual(log.map((e) => e.type), ['message', 'ssehub-close']);
  assert.equal(log[1].id, finalId);
  assert.equal(errors.at(-1), 2, 'the last error event saw CLOSED');
  assert.equal(requests.length, 2, 'one connection and one reconnect');
  assert.equal((await requests[1].allHeaders())['last-event-id'], finalId, 'the reconnect said it had the final event');
  await waitFor(() => statuses.length === 2, { timeoutMs: 2000, what: 'both responses' });
  assert.deepEqual(statuses, [200, 204]);

  // Nothing more for that URL: with retry 500 ms a live EventSource would have tried ~6 times.
  await sleep(3000);
  assert.equal(requests.length, 2, 'no request after the 204');
  assert.equal(await page.evaluate(() => window.es.readyState), 2);

  const info = await (await fetch(`${hub.url}/topics/${topic}`)).json();
  assert.equal(info.closed, true);
  assert.equal(info.subscribers, 0);
  // A fresh subscriber to the closed topic is turned away the same way.
  const fresh = await fetch(streamUrl);
  assert.equal(fresh.status, 204);
});
