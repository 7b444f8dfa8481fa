// CORS with credentials: a page on another origin opens
// `new EventSource(hub + '/events/x', { withCredentials: true })`. A hub configured with that
// origin lets it in and delivers events; a hub without it makes the browser refuse the stream.
'use strict';

const test = require('node:test');
const assert = require('node:assert/strict');
const http = require('node:http');
const { startHub, launchBrowser, publish, waitFor, sleep } = require('./lib/harness');

const PAGE = '<!doctype html><html><head><meta charset="utf-8"><title>other origin</title>' +
             '<link rel="icon" href="data:,"></head><body>another origin</body></html>';

/** A tiny page server on its own port: a different origin from any hub. */
async function startPageServer(t) {
  const server = http.createServer((req, res) => {
    res.writeHead(200, { 'Content-Type': 'text/html; charset=utf-8' });
    res.end(PAGE);
  });
  await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve));
  t.after(() => new Promise((resolve) => server.close(resolve)));
  return `http://127.0.0.1:${server.address().port}`;
}

/** Opens a credentialed EventSource from a fresh page on `origin`; returns the page. */
async function openCrossOrigin(t, origin, hubUrl) {
  const browser = await launchBrowser();
  t.after(() => browser.close());
  const context = await browser.newContext();
  // A cookie for the hub's host, so "with credentials" has something to carry.
  await context.addCookies([{ name: 'session', value: 'e2e', url: hubUrl }]);
  const page = await context.newPage();
  const streamRequests = [];
  page.on('request', (req) => { if (req.url().startsWith(`${hubUrl}/events/x`)) streamRequests.push(req); });
  await page.goto(origin + '/');
  await page.evaluate((url) => {
    const es = new EventSource(url, { withCredentials: true });
    window.es = es;
    window.got = [];
    window.opened = false;
    window.errors = [];
    es.onopen = () => { window.opened = true; };
    es.onmessage = (e) => window.got.push(e.data);
    es.onerror = () => window.errors.push(es.readyState);
  }, `${hubUrl}/events/x`);
  return { page, streamRequests };
}

test('a credentialed EventSource from an allowed origin receives events', async (t) => {
  const origin = await startPageServer(t);
  const hub = await startHub(['--memory', '--cors-origins', origin]);
  t.after(() => hub.stop());
  const { page, streamRequests } = await openCrossOrigin(t, origin, hub.url);

  await waitFor(() => page.evaluate(() => window.opened), { timeoutMs: 5000, what: 'the cross-origin stream to open' });
  const sent = await publish(hub.url, { topic: 'x', data: 'across origins' });
  assert.equal(sent.status, 200);
  await waitFor(() => page.evaluate(() => window.got.length === 1), { timeoutMs: 5000, what: 'the event' });
  assert.deepEqual(await page.evaluate(() => window.got), ['across origins']);
  assert.equal(await page.evaluate(() => window.es.readyState), 1);
  assert.equal(await page.evaluate(() => window.es.withCredentials), true);

  const headers = await streamRequests[0].allHeaders();
  assert.equal(headers.origin, origin);
  assert.match(headers.cookie || '', /session=e2e/, 'the credentialed request carried the cookie');
  const answer = await (await streamRequests[0].response()).allHeaders();
  assert.equal(answer['access-control-allow-origin'], origin, 'the exact origin is echoed');
  assert.equal(answer['access-control-allow-credentials'], 'true');
});

for (const [name, extra] of [
  ['a hub with no CORS origins', []],
  ['a hub that allows another origin', ['--cors-origins', 'http://127.0.0.1:9']],
]) {
  test(`a credentialed EventSource is refused by ${name}`, async (t) => {
    const origin = await startPageServer(t);
    const hub = await startHub(['--memory', ...extra]);
    t.after(() => hub.stop());
    const { page } = await openCrossOrigin(t, origin, hub.url);

    await waitFor(() => page.evaluate(() => window.es.readyState === 2),
      { timeoutMs: 5000, what: 'the browser to fail the connection' });
    await publish(hub.url, { topic: 'x', data: 'must not arrive' });
    await sleep(500);
    const state = await page.evaluate(() => ({ opened: window.opened, got: window.got, errors: window.errors }));
    assert.equal(state.opened, false);
    assert.deepEqual(state.got, []);
    assert.ok(state.errors.length >= 1, 'an error event was fired');
  });
}
