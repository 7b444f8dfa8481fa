// The Mercure endpoint in a real browser: Chromium EventSources subscribe with each selector
// kind (exact, URI template, `*`) and receive, or do not receive, what a Mercure publisher
// written by someone else (the `mercure` npm package) sends with tokens signed by the
// `jsonwebtoken` npm package; private updates reach only the subscriber whose cookie grants
// them; a cookie token works across origins with CORS credentials; a stream ends when its
// token expires and the browser is refused (401) when it comes back with it. Dialect 1 too.
'use strict';

const test = require('node:test');
const assert = require('node:assert/strict');
const http = require('node:http');
const jwt = require('jsonwebtoken');
const { Publisher } = require('mercure');
const { startHub, launchBrowser, waitFor, sleep } = require('./lib/harness');

const PUB_KEY = 'e2e-publisher-secret';
const SUB_KEY = 'e2e-subscriber-secret';
const BOOKS = 'https://example.com/books/{id}';

/** The third-party Mercure publisher, pointed at the hub. */
function publisherFor(hub, claims = { mercure: { publish: ['*'] } }, header = undefined) {
  const token = jwt.sign(claims, PUB_KEY, header ? { algorithm: 'HS256', header } : { algorithm: 'HS256' });
  return new Publisher({
    protocol: 'http', host: '127.0.0.1', port: hub.port, path: '/.well-known/mercure', jwt: token,
  });
}

/** A private update: the `mercure` package predates `private`, so it is posted by hand. */
async function publishPrivate(hub, topic, data, header) {
  const token = jwt.sign({ mercure: { publish: ['*'] } }, PUB_KEY, header ? { algorithm: 'HS256', header } : {});
  const body = new URLSearchParams({ topic, data, private: 'on' });
  const res = await fetch(`${hub.url}/.well-known/mercure`, {
    method: 'POST', body, headers: { Authorization: `Bearer ${token}` },
  });
  assert.equal(res.status, 200, await res.text());
}

/** Opens EventSources in `page` for each named URL; events land in window.got[name]. */
async function openSources(page, sources) {
  await page.evaluate((list) => {
    window.got = window.got || {};
    window.state = window.state || {};
    window.es = window.es || {};
    for (const [name, url, withCredentials] of list) {
      const es = new EventSource(url, { withCredentials: !!withCredentials });
      window.es[name] = es;
      window.got[name] = [];
      window.state[name] = { opened: false, errors: 0 };
      es.onopen = () => { window.state[name].opened = true; };
      es.onmessage = (e) => window.got[name].push(e.data);
      es.onerror = () => { window.state[name].errors += 1; };
    }
  }, sources);
  const names = sources.map(([name]) => name);
  await waitFor(() => page.evaluate((n) => n.every((k) => window.state[k].opened), names),
    { timeoutMs: 5000, what: `streams ${names.join(', ')} to open` });
}

const got = (page) => page.evaluate(() => window.got);
/** Closes EventSources: Chromium opens at most six HTTP/1.1 connections per host. */
const closeSources = (page, names) => page.evaluate((n) => n.forEach((k) => window.es[k].close()), names);
const q = (selectors, key = 'topic') => selectors.map((s) => `${key}=${encodeURIComponent(s)}`).join('&');

async function startPageServer(t) {
  const server = http.createServer((req, res) => {
    res.writeHead(200, { 'Content-Type': 'text/html; charset=utf-8' });
    res.end('<!doctype html><title>app</title><link rel="icon" href="data:,">');
  });
  await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve));
  t.after(() => new Promise((resolve) => server.close(resolve)));
  return `http://127.0.0.1:${server.address().port}`;
}

test('each selector kind receives what matches, and private updates only with a granting cookie', async (t) => {
  const hub = await startHub(['--memory', '--publisher-jwt-key', PUB_KEY,
    '--subscriber-jwt-key', SUB_KEY, '--anonymous']);
  t.after(() => hub.stop());
  const browser = await launchBrowser();
  t.after(() => browser.close());
  const context = await browser.newContext();
  const page = await context.newPage();
  await page.goto(`${hub.url}/healthz`); // any page on the hub's origin

  const base = `${hub.url}/.well-known/mercure?`;
  await openSources(page, [
    ['exact', base + q(['https://example.com/books/1'])],
    ['template', base + q([BOOKS])],
    ['any', base + q(['*'])],
    ['other', base + q(['https://example.com/users/{id}'])],
    ['alternate', base + q(['https://example.com/authors/{name}'])],
  ]);

  const publisher = publisherFor(hub);
  const first = await publisher.publish(['https://example.com/books/1'], 'book one', { id: 'urn:e2e:1' });
  assert.equal(first, 'urn:e2e:1', 'the answer body is the id');
  await publisher.publish(['https://example.com/books/2', 'https://example.com/authors/dunglas'], 'book two');
  await publishPrivate(hub, 'https://example.com/books/3', 'private book');

  await waitFor(async () => (await got(page)).any.length === 2, { what: 'the * subscriber' });
  await sleep(300);
  assert.deepEqual(await got(page), {
    exact: ['book one'],
    template: ['book one', 'book two'],
    any: ['book one', 'book two'],
    other: [],
    alternate: ['book two'],
  });

  // A subscriber whose cookie grants the books receives the private update; the anonymous
  // ones above never do.
  const token = jwt.sign({ mercure: { subscribe: [BOOKS] } }, SUB_KEY);
  await context.addCookies([{ name: 'mercureAuthorization', value: token, url: hub.url }]);
  await openSources(page, [['granted', base + q([BOOKS])]]);
  await publishPrivate(hub, 'https://example.com/books/4', 'second private book');
  await waitFor(async () => (await got(page)).granted.length === 1, { what: 'the private update' });
  assert.deepEqual((await got(page)).granted, ['second private book']);
  await sleep(200);
  const after = await got(page);
  assert.deepEqual(after.template, ['book one', 'book two'], 'anonymous: no private update');

  // Replay: `earliest` and an unknown id both give the retained history; the granted
  // subscriber's replay includes the private updates, an anonymous one's does not.
  await closeSources(page, ['exact', 'template', 'any', 'other', 'alternate', 'granted']);
  await context.clearCookies();
  await openSources(page, [
    ['earliest', `${base}${q([BOOKS])}&lastEventID=earliest`],
    ['unknown', `${base}${q([BOOKS])}&lastEventID=no-such-id`],
  ]);
  await context.addCookies([{ name: 'mercureAuthorization', value: token, url: hub.url }]);
  await openSources(page, [['grantedReplay', `${base}${q([BOOKS])}&lastEventID=urn:e2e:1`]]);
  await waitFor(async () => (await got(page)).grantedReplay.length === 3, { what: 'the granted replay' });
  await sleep(200);
  const replays = await got(page);
  assert.deepEqual(replays.earliest, ['book one', 'book two']);
  assert.deepEqual(replays.unknown, ['book one', 'book two']);
  assert.deepEqual(replays.grantedReplay, ['book two', 'private book', 'second private book']);
});

test('a cookie token works across origins with CORS credentials', async (t) => {
  const origin = await startPageServer(t);
  const hub = await startHub(['--memory', '--publisher-jwt-key', PUB_KEY,
    '--subscriber-jwt-key', SUB_KEY, '--cors-origins', origin]);
  t.after(() => hub.stop());
  const browser = await launchBrowser();
  t.after(() => browser.close());
  const context = await browser.newContext();
  const token = jwt.sign({ mercure: { subscribe: ['https://example.com/inbox/{user}'] } }, SUB_KEY);
  await context.addCookies([{ name: 'mercureAuthorization', value: token, url: hub.url }]);
  const page = await context.newPage();
  const requests = [];
  page.on('request', (req) => { if (req.url().startsWith(`${hub.url}/.well-known/mercure`)) requests.push(req); });
  await page.goto(origin + '/');

  const url = `${hub.url}/.well-known/mercure?${q(['https://example.com/inbox/alice'])}`;
  await openSources(page, [['inbox', url, true]]);
  await publishPrivate(hub, 'https://example.com/inbox/alice', 'for alice only');
  await waitFor(async () => (await got(page)).inbox.length === 1, { what: 'the private update across origins' });
  assert.deepEqual((await got(page)).inbox, ['for alice only']);
  const answer = await (await requests[0].response()).allHeaders();
  assert.equal(answer['access-control-allow-origin'], origin);
  assert.equal(answer['access-control-allow-credentials'], 'true');
  assert.match((await requests[0].allHeaders()).cookie || '', /mercureAuthorization=/);

  // Without credentials the cookie stays home: no token, no anonymous access → refused.
  await page.evaluate((u) => {
    window.bare = { errors: 0, opened: false };
    const es = new EventSource(u);
    es.onopen = () => { window.bare.opened = true; };
    es.onerror = () => { window.bare.errors += 1; window.bare.state = es.readyState; };
  }, url);
  await waitFor(() => page.evaluate(() => window.bare.state === 2), { what: 'the browser to give up (401)' });
  assert.equal(await page.evaluate(() => window.bare.opened), false);

  // Cookie-authenticated publishing from the allowed origin passes the CSRF check; from
  // the page with a foreign Origin it would not (checked in the Rust tests).
  const pubToken = jwt.sign({ mercure: { publish: ['*'] } }, PUB_KEY);
  await context.addCookies([{ name: 'mercureAuthorization', value: pubToken, url: hub.url }]);
  const status = await page.evaluate(async (hubUrl) => {
    const res = await fetch(`${hubUrl}/.well-known/mercure`, {
      method: 'POST', credentials: 'include',
      body: new URLSearchParams({ topic: 'https://example.com/inbox/alice', data: 'from the page' }),
    });
    return res.status;
  }, hub.url);
  assert.equal(status, 200);
});

test('a stream ends when its token expires, and the expired token is refused', async (t) => {
  const hub = await startHub(['--memory', '--publisher-jwt-key', PUB_KEY,
    '--subscriber-jwt-key', SUB_KEY, '--anonymous']);
  t.after(() => hub.stop());
  const browser = await launchBrowser();
  t.after(() => browser.close());
  const context = await browser.newContext();
  const exp = Math.floor(Date.now() / 1000) + 3;
  const token = jwt.sign({ exp, mercure: { subscribe: ['*'] } }, SUB_KEY);
  await context.addCookies([{ name: 'mercureAuthorization', value: token, url: hub.url }]);
  const page = await context.newPage();
  await page.goto(`${hub.url}/healthz`);
  await openSources(page, [['s', `${hub.url}/.well-known/mercure?${q(['https://example.com/t'])}`]]);
  await publishPrivate(hub, 'https://example.com/t', 'before expiry');
  await waitFor(async () => (await got(page)).s.length === 1, { what: 'the private update' });

  // The hub ends the stream at exp; EventSource reconnects with the expired cookie, gets
  // 401 (not an anonymous stream) and gives up.
  await waitFor(() => page.evaluate(() => window.es.s.readyState === 2),
    { timeoutMs: 15000, what: 'the browser to give up after expiry' });
  assert.ok(Date.now() / 1000 >= exp - 1.5, 'the stream did not end long before exp');
  await publishPrivate(hub, 'https://example.com/t', 'after expiry');
  await sleep(300);
  assert.deepEqual((await got(page)).s, ['before expiry']);
});

test('dialect 1: match and match_urlpattern selectors, access tokens, the 1.0 cookie', async (t) => {
  const hub = await startHub(['--memory', '--mercure-dialect', '1', '--publisher-jwt-key', PUB_KEY,
    '--subscriber-jwt-key', SUB_KEY, '--anonymous']);
  t.after(() => hub.stop());
  const browser = await launchBrowser();
  t.after(() => browser.close());
  const context = await browser.newContext();
  const page = await context.newPage();
  await page.goto(`${hub.url}/healthz`);
  const base = `${hub.url}/.well-known/mercure?`;
  await openSources(page, [
    ['exact', base + q(['https://example.com/books/1'], 'match')],
    ['pattern', base + q(['https://example.com/books/:id'], 'match_urlpattern')],
    ['any', base + q(['*'], 'match')],
    ['other', base + q(['https://example.com/users/:id'], 'match_urlpattern')],
  ]);
  const at = { typ: 'at+jwt', alg: 'HS256' };
  const publisher = publisherFor(hub, {
    exp: Math.floor(Date.now() / 1000) + 60,
    aud: `${hub.url}/.well-known/mercure`,
    authorization_details: [{
      type: 'https://mercure.rocks/authorization-detail',
      actions: ['publish'],
      topics: [{ match: '*' }],
    }],
  }, at);
  await publisher.publish(['https://example.com/books/1'], 'one');
  await publisher.publish(['https://example.com/books/2'], 'two');
  await waitFor(async () => (await got(page)).any.length === 2, { what: 'the * subscriber' });
  await sleep(200);
  assert.deepEqual(await got(page), {
    exact: ['one'], pattern: ['one', 'two'], any: ['one', 'two'], other: [],
  });
  await openSources(page, [
    ['earliest', `${base}${q(['https://example.com/books/:id'], 'match_urlpattern')}&last_event_id=earliest`],
    ['unknown', `${base}${q(['*'], 'match')}&last_event_id=no-such-id`],
  ]);
  await waitFor(async () => (await got(page)).unknown.length === 2, { what: 'the dialect 1 replays' });
  assert.deepEqual((await got(page)).earliest, ['one', 'two']);
  await closeSources(page, ['unknown']);

  // The 1.0 cookie carries an access token granting a URL pattern.
  const token = jwt.sign({
    exp: Math.floor(Date.now() / 1000) + 60,
    aud: `${hub.url}/.well-known/mercure`,
    authorization_details: [{
      type: 'https://mercure.rocks/authorization-detail',
      actions: ['subscribe'],
      topics: [{ match: 'https://example.com/books/:id', match_type: 'urlpattern' }],
    }],
  }, SUB_KEY, { header: at });
  await context.addCookies([{
    name: '__Secure-mercure_access_token', value: token, domain: '127.0.0.1', path: '/', secure: true,
  }]);
  await openSources(page, [['granted', base + q(['https://example.com/books/3'], 'match')]]);
  const body = new URLSearchParams({ topic: 'https://example.com/books/3', data: 'private', private: 'on' });
  const pubToken = jwt.sign({
    exp: Math.floor(Date.now() / 1000) + 60,
    aud: `${hub.url}/.well-known/mercure`,
    authorization_details: [{
      type: 'https://mercure.rocks/authorization-detail', actions: ['publish'], topics: [{ match: '*' }],
    }],
  }, PUB_KEY, { header: at });
  const res = await fetch(`${hub.url}/.well-known/mercure`, {
    method: 'POST', body, headers: { Authorization: `Bearer ${pubToken}` },
  });
  assert.equal(res.status, 200);
  await waitFor(async () => (await got(page)).granted.length === 1, { what: 'the private update' });
  await sleep(200);
  const all = await got(page);
  assert.deepEqual(all.granted, ['private']);
  assert.deepEqual(all.pattern, ['one', 'two'], 'no private update without a grant');
  assert.deepEqual(all.earliest, ['one', 'two'], 'no private update without a grant');
});
