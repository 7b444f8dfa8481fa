// The seed articles' own pages (tests/seeds/NNN), unchanged, against `ssehub serve --demo
// --public-dir tests/seeds/NNN` in headless Chromium: each shows what its article shows, the
// articles' curl commands print what the articles print, and a page's EventSource comes back
// after the hub restarts with nothing missed and nothing twice.
'use strict';

const test = require('node:test');
const assert = require('node:assert/strict');
const { execFile } = require('node:child_process');
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const { REPO_ROOT, startHub, launchBrowser, publish, waitFor, sleep } = require('./lib/harness');

const seedDir = (n) => path.join(REPO_ROOT, 'tests', 'seeds', n);

/** A demo hub serving seed `n`'s folder, a browser, and a cleanup for both. */
async function seedHub(t, n, extra = ['--memory']) {
  const hub = await startHub(['--demo', '--public-dir', seedDir(n), ...extra]);
  t.after(() => hub.stop());
  const browser = await launchBrowser();
  t.after(() => browser.close());
  return { hub, browser };
}

/** A page that keeps its console lines and page errors. */
async function openPage(browser, url) {
  const page = await browser.newPage();
  const consoleLines = [];
  const errors = [];
  page.on('console', (m) => consoleLines.push(m.text()));
  page.on('pageerror', (e) => errors.push(String(e)));
  await page.goto(url);
  return { page, consoleLines, errors };
}

async function post(url, body) {
  const res = await fetch(url, {
    method: 'POST',
    headers: { 'Content-Type': 'application/json' },
    body: JSON.stringify(body),
  });
  return { status: res.status, text: await res.text() };
}

function curl(args) {
  return new Promise((resolve) => {
    execFile('curl', args, { timeout: 15000 }, (error, stdout, stderr) => resolve({ error, stdout, stderr }));
  });
}

test('seed 000: the list fills with current-date events after the connected welcome', async (t) => {
  const { hub, browser } = await seedHub(t, '000');
  const { page, consoleLines, errors } = await openPage(browser, hub.url + '/');
  await waitFor(() => consoleLines.includes('Subscription successful!'), { what: 'the connected event' });
  assert.ok(consoleLines.includes('Connection opened'), consoleLines.join('\n'));
  await waitFor(() => page.evaluate(() => document.querySelectorAll('#sse-list li').length >= 1),
    { timeoutMs: 12000, what: 'a current-date item' });
  const first = await page.textContent('#sse-list li');
  assert.match(first, /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$/);
  assert.deepEqual(errors, []);
});

test('seed 000: after a hub restart the page resumes without a gap or a duplicate', async (t) => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'ssehub-seed-restart-'));
  t.after(() => fs.rmSync(dir, { recursive: true, force: true }));
  const args = ['--demo', '--public-dir', seedDir('000'), '--data-dir', dir, '--retry', '1000'];
  const first = await startHub(args);
  let second = null;
  t.after(async () => { await first.stop(); if (second) await second.stop(); });
  const browser = await launchBrowser();
  t.after(() => browser.close());
  const { page, consoleLines } = await openPage(browser, first.url + '/');
  await waitFor(() => consoleLines.includes('Subscription successful!'), { what: 'the connected event' });
  const items = () => page.evaluate(() => [...document.querySelectorAll('#sse-list li')].map((li) => li.innerText));
  for (const data of ['A1', 'A2']) {
    const res = await publish(first.url, { topic: 'clock', event: 'current-date', data });
    assert.equal(res.status, 200, JSON.stringify(res.body));
  }
  await waitFor(async () => (await items()).includes('A2'), { what: 'A1, A2 in the list' });
  await first.stop();
  second = await startHub(args, { port: first.port });
  for (const data of ['A3', 'A4']) {
    const res = await publish(second.url, { topic: 'clock', event: 'current-date', data });
    assert.equal(res.status, 200, JSON.stringify(res.body));
  }
  await waitFor(async () => (await items()).includes('A4'), { timeoutMs: 15000, what: 'A3, A4 after the restart' });
  await sleep(300);
  const list = await items();
  assert.deepEqual(list.filter((x) => x.startsWith('A')), ['A1', 'A2', 'A3', 'A4'], list.join('\n'));
  assert.equal(new Set(list).size, list.length, `a duplicate in\n${list.join('\n')}`);
  const connected = consoleLines.filter((l) => l === 'Subscription successful!').length;
  assert.ok(connected >= 2, `welcomed again after the restart (${connected})`);
});

test('seed 001: online users, notifications and broadcasts on /events', async (t) => {
  const { hub, browser } = await seedHub(t, '001');
  const { page, consoleLines, errors } = await openPage(browser, hub.url + '/');
  await waitFor(() => page.evaluate(() => /Online users: \d+/.test(document.body.innerText)),
    { what: 'the user-count paragraph' });
  const notified = await post(hub.url + '/notify', { title: 'Deploy', message: 'v2 is live' });
  assert.deepEqual([notified.status, notified.text], [200, '{"ok":true}']);
  await waitFor(() => page.evaluate(() => [...document.querySelectorAll('#messages div')]
    .some((d) => d.innerText.includes('Deploy') && d.innerText.includes('v2 is live'))),
  { what: 'the notification box' });
  const sent = await post(hub.url + '/broadcast', { message: 'hello everyone' });
  assert.equal(sent.status, 200);
  assert.ok(JSON.parse(sent.text).sent >= 1, sent.text);
  assert.match(sent.text, /^\{"sent":\d+\}$/);
  await waitFor(() => consoleLines.includes('Message: hello everyone'), { what: 'the broadcast message' });
  assert.ok(!(await page.evaluate(() => document.body.innerText)).includes('Connection lost'));
  assert.deepEqual(errors, []);
});

test('seed 001: each user page gets only its own notifications', async (t) => {
  const { hub, browser } = await seedHub(t, '001');
  const ann = await openPage(browser, hub.url + '/user.html?user=user-123');
  const bob = await openPage(browser, hub.url + '/user.html?user=user-456');
  const list = (p) => p.page.evaluate(() => [...document.querySelectorAll('#notifications li')].map((li) => li.innerText));
  await waitFor(async () => {
    const topics = await (await fetch(hub.url + '/topics')).json();
    const subs = (name) => (topics.topics || topics).find((x) => x.topic === name)?.subscribers || 0;
    return subs('user-123') === 1 && subs('user-456') === 1;
  }, { what: 'both user streams' });
  const res = await post(hub.url + '/notify/user-123', { title: 'For Ann', message: 'hi' });
  assert.deepEqual([res.status, res.text], [200, '{"ok":true}']);
  await waitFor(async () => (await list(ann)).includes('For Ann: hi'), { what: "Ann's notification" });
  await post(hub.url + '/notify/user-456', { title: 'For Bob' });
  await waitFor(async () => (await list(bob)).includes('For Bob'), { what: "Bob's notification" });
  assert.deepEqual(await list(ann), ['For Ann: hi']);
  assert.deepEqual(await list(bob), ['For Bob']);
});

test('seed 001: the analytics page updates every second; the back-off client connects', async (t) => {
  const { hub, browser } = await seedHub(t, '001');
  const { page } = await openPage(browser, hub.url + '/analytics.html');
  const uptime = () => page.textContent('#uptime');
  await waitFor(async () => (await uptime()) !== '-', { what: 'the first figures' });
  const before = Number(await uptime());
  await waitFor(async () => Number(await uptime()) > before, { what: 'the figures to move' });
  assert.match(await page.textContent('#activeUsers'), /^\d+$/);
  const back = await openPage(browser, hub.url + '/reconnect.html');
  await waitFor(() => back.consoleLines.includes('Connected to server'), { what: 'the back-off client' });
  await waitFor(() => back.page.evaluate(() => [...document.querySelectorAll('#log li')]
    .some((li) => /^Message: \d+$/.test(li.innerText))), { what: 'a counter message' });
});

test('seed 002: the counter counts, after retry: 10000', async (t) => {
  const { hub, browser } = await seedHub(t, '002');
  const { page, errors } = await openPage(browser, hub.url + '/');
  const value = async () => Number(await page.textContent('#content'));
  await waitFor(async () => (await value()) > 0, { what: 'the first count' });
  const first = await value();
  await waitFor(async () => (await value()) > first, { what: 'the count to go up' });
  assert.deepEqual(errors, []);
  const head = await curl(['-sN', '-m', '1', hub.url + '/events']);
  assert.ok(head.stdout.startsWith('retry: 10000\n\n'), JSON.stringify(head.stdout));
});

test('seed 003: random numbers, the ticker on one filtered channel, and its curl', async (t) => {
  const { hub, browser } = await seedHub(t, '003');
  const random = await openPage(browser, hub.url + '/');
  await waitFor(() => random.consoleLines.some((l) => /^RECEIVED \d+$/.test(l)), { what: 'a random number' });
  assert.match(await random.page.textContent('#random'), /^\d+$/);

  const ticker = await openPage(browser, hub.url + '/ticker.html');
  const text = (sel) => ticker.page.textContent(sel);
  await waitFor(async () => (await text('#headline')) !== 'no news yet', { timeoutMs: 15000, what: 'a headline' });
  await waitFor(async () => (await text('#weather')) !== 'no weather yet', { timeoutMs: 15000, what: 'the weather' });
  await waitFor(async () => (await text('#stock-AC')) !== 'no price yet', { timeoutMs: 15000, what: 'a stock price' });
  assert.match(await text('#weather'), /^\d+C with \d+Kph wind$/);
  assert.match(await text('#stock-AC'), /^Acme Corp: [\d.]+ \(-?[\d.]+%\)$/);
  assert.notEqual(await text('#lastid'), '', 'news events carry an id');
  assert.deepEqual(ticker.errors, []);

  // The article's curl session prints only data lines.
  const out = await curl(['-sN', '-m', '4', '-H', 'Accept:text/event-stream', hub.url + '/random']);
  const lines = out.stdout.split('\n').filter((l) => l !== '');
  assert.ok(lines.length >= 1, JSON.stringify(out));
  // Besides the hub's keep-alive comment every `heartbeat` seconds.
  for (const line of lines.filter((l) => l !== ': heartbeat')) assert.match(line, /^data: \d+$/);
});
