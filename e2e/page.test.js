// The built-in page at `/`: it shows demo events, publishes from its form, and keeps its list
// bounded. Drives the page only through its UI (ids / data-testids), as a person would.
'use strict';

const test = require('node:test');
const assert = require('node:assert/strict');
const { startHub, launchBrowser, publish, waitFor, openStream } = require('./lib/harness');

/** Starts a hub and a browser page on `/`; everything is torn down when the test ends. */
async function openPage(t, hubArgs) {
  const hub = await startHub(hubArgs);
  t.after(() => hub.stop());
  const browser = await launchBrowser();
  t.after(() => browser.close());
  const page = await browser.newPage();
  const pageErrors = [];
  const foreign = [];
  page.on('pageerror', (err) => pageErrors.push(err));
  page.on('request', (req) => {
    const url = req.url();
    if (!url.startsWith(hub.url + '/') && !url.startsWith('data:')) foreign.push(url);
  });
  const res = await page.goto(hub.url + '/');
  assert.equal(res.status(), 200, 'GET / serves the page');
  return { hub, page, pageErrors, foreign };
}

const rows = (page) => page.locator('[data-testid=events] tr');

test('the page loads and shows demo events', async (t) => {
  const { page, pageErrors, foreign } = await openPage(t, ['--memory', '--demo']);
  assert.equal(await page.title(), 'ssehub');
  assert.equal(await page.getAttribute('#conn-state', 'data-state'), 'closed');

  await page.getByTestId('chip-counter').click();
  await page.getByTestId('chip-clock').click();
  assert.equal(await page.inputValue('#topics'), 'counter, clock');
  assert.equal(await page.getAttribute('[data-testid=chip-counter]', 'aria-pressed'), 'true');
  await page.getByTestId('connect').click();

  await page.waitForSelector('#conn-state[data-state=open]', { timeout: 5000 });
  // Presence snapshots for both topics come first on connect.
  for (const topic of ['counter', 'clock']) {
    await waitFor(async () => (await page.locator('tr[data-event=ssehub-presence] td.data').allTextContents())
      .some((d) => JSON.parse(d).topic === topic), { timeoutMs: 5000, what: `presence snapshot for ${topic}` });
  }
  // The counter publishes every second: several of its events within a few seconds.
  const demo = page.locator('[data-testid=events] tr:not(.control)');
  await waitFor(async () => (await demo.count()) >= 3, { timeoutMs: 8000, what: '3 demo events in the list' });
  // The clock publishes `current-date` every 5 s.
  await page.waitForSelector('tr[data-event=current-date]', { timeout: 12000 });

  const first = rows(page).first();
  for (const cell of ['time', 'event', 'id', 'data']) {
    assert.notEqual((await first.locator(`td.${cell}`).textContent()).trim(), '', `first row has a ${cell}`);
  }
  const ids = await demo.evaluateAll((trs) => trs.map((tr) => tr.dataset.id));
  assert.equal(new Set(ids).size, ids.length, 'no event shown twice');
  // Newest on top: the counter's values (unnamed messages, as seed 002 sends them; the
  // clock's are named) count down the list, one by one.
  const counts = (await page.locator('tr[data-event=message] td.data').allTextContents()).map(Number);
  assert.ok(counts.length >= 3, `counter rows: ${counts}`);
  counts.forEach((n, i) => i > 0 && assert.equal(n, counts[i - 1] - 1, `counter rows in order: ${counts}`));

  // Live subscriber counts: this page is a subscriber of both demo topics.
  await waitFor(async () => {
    const text = await page.locator('[data-testid=subscribers-counter]').textContent().catch(() => '0');
    return parseInt(text, 10) >= 1;
  }, { timeoutMs: 5000, what: 'a subscriber count for counter' });

  assert.deepEqual(foreign, [], 'the page loads nothing from other origins');
  assert.deepEqual(pageErrors, [], 'no script errors');
});

test('a publish from the form shows in the list and reaches another subscriber', async (t) => {
  const { hub, page, pageErrors } = await openPage(t, ['--memory']);
  const topic = 'form-news';

  await page.fill('#topics', topic);
  await page.fill('#custom-event', 'headline');
  await page.getByTestId('add-listener').click();
  assert.match(await page.textContent('#listened'), /headline/);
  await page.getByTestId('connect').click();
  await page.waitForSelector('#conn-state[data-state=open]', { timeout: 5000 });

  const witness = await openStream(`${hub.url}/events/${topic}`);
  t.after(() => witness.close());
  assert.equal(witness.status, 200);
  await waitFor(async () => {
    const res = await fetch(`${hub.url}/topics/${topic}`);
    return (await res.json()).subscribers === 2;
  }, { timeoutMs: 5000, what: 'two subscribers on the topic' });

  const data = 'hello from the form\nsecond line';
  await page.fill('#pub-topic', topic);
  await page.fill('#pub-event', 'headline');
  await page.fill('#pub-data', data);
  await page.getByTestId('publish').click();

  await page.waitForSelector('#pub-result[data-status=ok]', { timeout: 5000 });
  const answer = await page.textContent('#pub-result');
  assert.match(answer, /^200 /, answer);
  const { id, delivered } = JSON.parse(answer.slice(4));
  assert.equal(typeof id, 'string');
  assert.equal(delivered, 2, 'queued for the page and the witness');

  const row = page.locator(`tr[data-event=headline][data-id="${id}"]`);
  await row.waitFor({ timeout: 5000 });
  assert.equal(await row.locator('td.data').textContent(), data);
  assert.equal(await page.locator('tr[data-event=headline]').count(), 1, 'shown once');

  await waitFor(() => witness.events.find((e) => e.id === id), { timeoutMs: 5000, what: 'the witness to get it' });
  assert.deepEqual(witness.events.find((e) => e.id === id), { event: 'headline', id, data });

  // A refused publish shows the hub's error JSON.
  await page.fill('#pub-topic', '');
  await page.getByTestId('publish').click();
  await page.waitForSelector('#pub-result[data-status=error]', { timeout: 5000 });
  const err = await page.textContent('#pub-result');
  assert.match(err, /^400 /, err);
  const body = JSON.parse(err.slice(4));
  assert.equal(typeof body.error, 'string');
  assert.equal(body.field, 'topic');

  assert.deepEqual(pageErrors, []);
});

test('the event list is capped at 200 rows, newest on top', async (t) => {
  const { hub, page } = await openPage(t, ['--memory']);
  await page.fill('#topics', 'flood');
  await page.getByTestId('connect').click();
  await page.waitForSelector('#conn-state[data-state=open]', { timeout: 5000 });
  await waitFor(() => page.locator('tr[data-event=ssehub-presence]').count(), { what: 'presence snapshot' });
  const before = Number(await page.textContent('#event-count'));

  for (let i = 1; i <= 210; i++) {
    const res = await publish(hub.url, { topic: 'flood', data: String(i) });
    assert.equal(res.status, 200);
  }
  await waitFor(async () => Number(await page.textContent('#event-count')) === before + 210,
    { timeoutMs: 10000, what: 'all 210 events counted' });
  assert.equal(await rows(page).count(), 200);
  assert.equal(await rows(page).first().locator('td.data').textContent(), '210');
  assert.equal(await rows(page).last().locator('td.data').textContent(), '11');
});

test('the page shows a reset after a hub restart and a topic closed from its form', async (t) => {
  const { hub, page, pageErrors } = await openPage(t, ['--memory', '--retry', '500']);
  let second = null;
  t.after(() => second && second.stop());
  await page.fill('#topics', 'ui');
  await page.getByTestId('connect').click();
  await page.waitForSelector('#conn-state[data-state=open]', { timeout: 5000 });
  assert.equal((await publish(hub.url, { topic: 'ui', data: 'one' })).status, 200);
  await page.locator('tr[data-event=message]').waitFor({ timeout: 5000 });

  // A memory hub restarted on the same port has forgotten the page's last id.
  await hub.stop();
  await page.waitForSelector('#conn-state[data-state=connecting]', { timeout: 5000 });
  second = await startHub(['--memory', '--retry', '500'], { port: hub.port });
  await page.waitForSelector('[data-testid=reset-notice]', { timeout: 10000 });
  assert.match(await page.textContent('[data-testid=reset-notice]'), /may have missed events/);
  assert.equal(await page.locator('tr.reset[data-event=ssehub-reset]').count(), 1, 'the reset row stands out');
  await page.waitForSelector('#conn-state[data-state=open]', { timeout: 5000 });

  // Closing the topic from the form: the final event, then the hub's 204 ends the stream.
  await page.fill('#pub-topic', 'ui');
  await page.getByTestId('close-topic').click();
  await page.waitForSelector('#pub-result[data-status=ok]', { timeout: 5000 });
  await page.waitForSelector('[data-testid=close-notice]', { timeout: 5000 });
  await page.waitForSelector('#conn-state[data-state=closed]', { timeout: 5000 });
  await page.waitForSelector('[data-testid=closed-notice]', { timeout: 1000 });
  assert.equal(await page.locator('tr[data-event=ssehub-close]').count(), 1);
  assert.deepEqual(pageErrors, []);
});
