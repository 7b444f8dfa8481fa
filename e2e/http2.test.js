// HTTP/2 over TLS: with a certificate configured, a browser page holds 10 EventSources to one
// https origin (past HTTP/1.1's 6 connections per origin), all on one h2 connection, and every
// one of them receives a published event.
'use strict';

const test = require('node:test');
const assert = require('node:assert/strict');
const { execFileSync } = require('node:child_process');
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const { chromium } = require('playwright-core');
const { startHub, CHROMIUM, CHROMIUM_ARGS, waitFor } = require('./lib/harness');

const STREAMS = 10;

/** A self-signed certificate for 127.0.0.1, made with openssl; returns the file paths. */
function selfSigned(dir) {
  const cert = path.join(dir, 'cert.pem');
  const key = path.join(dir, 'key.pem');
  execFileSync('openssl', [
    'req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes',
    '-keyout', key, '-out', cert, '-days', '2', '-subj', '/CN=127.0.0.1',
    '-addext', 'subjectAltName=IP:127.0.0.1,DNS:localhost',
  ], { stdio: 'ignore' });
  return { cert, key };
}

test('10 EventSources on one https origin share one HTTP/2 connection', async (t) => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'ssehub-h2-'));
  t.after(() => fs.rmSync(dir, { recursive: true, force: true }));
  const { cert, key } = selfSigned(dir);
  const hub = await startHub(['--memory', '--tls-cert', cert, '--tls-key', key]);
  t.after(() => hub.stop());
  assert.match(hub.url, /^https:\/\//);

  const browser = await chromium.launch({
    executablePath: CHROMIUM,
    args: [...CHROMIUM_ARGS, '--ignore-certificate-errors'],
  });
  t.after(() => browser.close());
  const page = await browser.newPage();

  // The protocol and connection of every stream's response, as the browser's network layer saw them.
  const cdp = await page.context().newCDPSession(page);
  const streams = [];
  cdp.on('Network.responseReceived', ({ response }) => {
    if (response.url.includes('/events/')) {
      streams.push({ protocol: response.protocol, connection: response.connectionId, status: response.status });
    }
  });
  await cdp.send('Network.enable');

  await page.goto(hub.url + '/');
  await page.evaluate(({ n, url }) => {
    window.got = [];
    window.sources = [];
    for (let i = 0; i < n; i++) {
      const es = new EventSource(url);
      window.got.push([]);
      es.onmessage = (e) => window.got[i].push(e.data);
      window.sources.push(es);
    }
  }, { n: STREAMS, url: `${hub.url}/events/h2` });

  // Over HTTP/1.1 only 6 could be open at once; the other 4 would wait for a free connection.
  await waitFor(() => page.evaluate(() => window.sources.every((es) => es.readyState === 1)),
    { what: `all ${STREAMS} EventSources to open` });
  await waitFor(async () => (await (await fetchTopic(page, hub.url)).subscribers) === STREAMS,
    { what: `the hub to count ${STREAMS} subscribers` });

  const published = await page.evaluate(async () => {
    const res = await fetch('/publish', {
      method: 'POST',
      headers: { 'Content-Type': 'application/json' },
      body: JSON.stringify({ topic: 'h2', data: 'to all ten' }),
    });
    return res.status;
  });
  assert.equal(published, 200);
  await waitFor(() => page.evaluate(() => window.got.every((g) => g.length === 1)),
    { what: 'the event on every EventSource' });
  const got = await page.evaluate(() => window.got);
  assert.deepEqual(got, Array(STREAMS).fill(['to all ten']));

  assert.equal(streams.length, STREAMS, JSON.stringify(streams));
  for (const s of streams) {
    assert.equal(s.status, 200);
    assert.equal(s.protocol, 'h2');
  }
  assert.equal(new Set(streams.map((s) => s.connection)).size, 1, 'one connection for all streams');

  // Completed requests (the publish) show the protocol in Resource Timing too.
  const protocols = await waitFor(async () => {
    const found = await page.evaluate(() => performance.getEntriesByType('resource')
      .filter((e) => e.name.endsWith('/publish') || e.name.endsWith('/topics/h2'))
      .map((e) => e.nextHopProtocol));
    return found.length > 0 && found;
  }, { what: 'resource timing entries' });
  assert.ok(protocols.every((p) => p === 'h2'), JSON.stringify(protocols));

  // Closing them in the page frees them in the hub (each h2 stream is reset).
  await page.evaluate(() => window.sources.forEach((es) => es.close()));
  await waitFor(async () => (await fetchTopic(page, hub.url)).subscribers === 0,
    { what: 'the hub to drop the closed streams' });
});

/** GET /topics/h2 from inside the page (it trusts the certificate, Node does not). */
function fetchTopic(page) {
  return page.evaluate(async () => (await fetch('/topics/h2')).json());
}
