// The dashboard on the built-in page: its figures follow the hub's /metrics, its charts move,
// and the page stays responsive while a topic it shows carries 100 events/s.
'use strict';

const test = require('node:test');
const assert = require('node:assert/strict');
const { startHub, launchBrowser, publish, waitFor, openStream, sleep } = require('./lib/harness');

async function openDashboard(t, hubArgs = ['--memory']) {
  const hub = await startHub(hubArgs);
  t.after(() => hub.stop());
  const browser = await launchBrowser();
  t.after(() => browser.close());
  const page = await browser.newPage();
  const pageErrors = [];
  page.on('pageerror', (err) => pageErrors.push(err));
  const res = await page.goto(hub.url + '/');
  assert.equal(res.status(), 200);
  await page.waitForSelector('#stats-state[data-state=open]', { timeout: 5000 });
  return { hub, page, pageErrors };
}

/** /metrics as { name (without ssehub_): value } for the series without labels. */
async function metrics(hubUrl) {
  const text = await (await fetch(`${hubUrl}/metrics`)).text();
  const out = {};
  for (const line of text.split('\n')) {
    const m = /^ssehub_([a-z_]+) (\S+)$/.exec(line);
    if (m) out[m[1]] = Number(m[2]);
  }
  return out;
}

/** The figures the page shows, raw (data-value), keyed by the /metrics name they show. */
async function shown(page) {
  return page.evaluate(() => {
    const v = (id) => Number(document.getElementById(id).dataset.value);
    return {
      connections: v('stat-connections'),
      connections_total: v('sub-connections'),
      events_published_total: v('sub-events-in'),
      events_delivered_total: v('sub-events-out'),
      bytes_written_total: v('sub-bytes-out'),
      topics: v('stat-topics'),
      slow_consumer_drops_total: v('stat-drops'),
      history_events: v('stat-store'),
      history_bytes: v('sub-store'),
      cluster_nodes: v('stat-nodes'),
    };
  });
}

/**
 * Waits until every figure on the page equals /metrics (read afresh each round), and /metrics
 * has the figures in `expect`: a change the hub has not counted yet (a closed socket it has not
 * read the end of) is not taken for the page following it.
 */
async function waitForAgreement(page, hubUrl, what, expect = {}) {
  let last;
  try {
    await waitFor(async () => {
      const [m, s] = [await metrics(hubUrl), await shown(page)];
      last = { metrics: m, shown: s };
      return Object.keys(expect).every((k) => m[k] === expect[k])
        && Object.keys(s).every((k) => m[k] === s[k]);
    }, { timeoutMs: 6000, intervalMs: 200, what });
  } catch (err) {
    if (!last) throw err;
    const diff = Object.keys(last.shown).filter((k) => last.metrics[k] !== last.shown[k])
      .map((k) => `${k}: page ${last.shown[k]}, /metrics ${last.metrics[k]}`);
    const missing = Object.keys(expect).filter((k) => last.metrics[k] !== expect[k])
      .map((k) => `${k}: /metrics ${last.metrics[k]}, expected ${expect[k]}`);
    throw new Error(`${err.message}: ${diff.concat(missing).join('; ')}`);
  }
}

test('the dashboard figures follow /metrics', async (t) => {
  const { hub, page, pageErrors } = await openDashboard(t);
  await waitForAgreement(page, hub.url, 'an idle hub shown as /metrics has it');
  assert.equal((await shown(page)).connections, 0, 'the dashboard itself is not a subscriber');
  assert.equal(await page.textContent('#sub-fsync'), 'this store does not fsync');
  assert.equal(await page.textContent('#sub-nodes'), 'standalone');

  for (let i = 0; i < 5; i++) assert.equal((await publish(hub.url, { topic: 'dash-a', data: `a${i}` })).status, 200);
  const streams = [];
  t.after(() => streams.forEach((s) => s.close()));
  for (const path of ['/events/dash-a', '/events/dash-a', '/events?topic=dash-a&topic=dash-b']) {
    streams.push(await openStream(hub.url + path));
  }
  for (let i = 0; i < 7; i++) assert.equal((await publish(hub.url, { topic: 'dash-b', data: `b${i}` })).status, 200);
  await waitForAgreement(page, hub.url, 'subscribers and publishes shown',
    { connections: 3, events_published_total: 12 });
  let s = await shown(page);
  assert.equal(s.connections, 3);
  assert.equal(s.events_published_total, 12);
  assert.equal(s.events_delivered_total, 7, 'dash-b reached one subscriber 7 times');
  assert.equal(s.topics, 2);
  assert.equal(s.history_events, 12);
  assert.match(await page.textContent('#stat-connections'), /^3$/);
  assert.match(await page.textContent('#sub-events-in'), /^12 published$/);

  // Subscribers leave: the page follows down as well.
  streams.splice(0, 2).forEach((st) => st.close());
  await waitForAgreement(page, hub.url, 'two subscribers gone', { connections: 1 });
  s = await shown(page);
  assert.equal(s.connections, 1);
  assert.equal(s.connections_total, 3);
  assert.deepEqual(pageErrors, []);
});

test('a durable hub shows its fsync latency', async (t) => {
  const fs = require('node:fs');
  const os = require('node:os');
  const path = require('node:path');
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'ssehub-dash-'));
  t.after(() => fs.rmSync(dir, { recursive: true, force: true }));
  const { hub, page } = await openDashboard(t, ['--data-dir', dir]);
  for (let i = 0; i < 5; i++) assert.equal((await publish(hub.url, { topic: 'd', data: String(i) })).status, 200);
  const m = await metrics(hub.url);
  assert.ok(m.store_fsync_seconds_count >= 1, `fsyncs counted: ${JSON.stringify(m)}`);
  await waitFor(async () => Number(await page.getAttribute('#sub-fsync', 'data-value')) >= m.store_fsync_seconds_count,
    { timeoutMs: 5000, what: 'the fsync count on the page' });
  // The latency of the second with the publishes: a figure in ms (the next idle second says so).
  await waitFor(async () => /ms$|^idle$/.test(await page.textContent('#stat-fsync')),
    { timeoutMs: 5000, what: 'an fsync latency shown' });
  assert.match(await page.textContent('#sub-fsync'), /fsyncs\/s, \d+ total/);
});

test('the charts move', async (t) => {
  const { hub, page, pageErrors } = await openDashboard(t);
  const paths = () => page.evaluate(() => ({
    chartIn: document.querySelector('#chart [data-chart=in]').getAttribute('d'),
    chartOut: document.querySelector('#chart [data-chart=out]').getAttribute('d'),
    sparkIn: document.querySelector('path.line[data-spark=events-in]').getAttribute('d'),
    time: document.getElementById('stats-time').textContent,
  }));
  const sub = await openStream(`${hub.url}/events/moving`);
  t.after(() => sub.close());
  const before = await paths();
  const deadline = Date.now() + 3000;
  let n = 0;
  while (Date.now() < deadline) {
    await publish(hub.url, { topic: 'moving', data: String(n++) });
    await sleep(20);
  }
  await waitFor(async () => Number(await page.getAttribute('#stat-events-in', 'data-value')) > 0,
    { timeoutMs: 3000, what: 'a nonzero events-in rate' });
  const after = await paths();
  for (const key of ['chartIn', 'chartOut', 'sparkIn', 'time']) {
    assert.notEqual(after[key], before[key], `${key} moved`);
  }
  // The in-line has a point per sample, and its last points are above the bottom line.
  const points = after.chartIn.split(/[ML]/).filter(Boolean).map((p) => p.split(' ').map(Number));
  assert.ok(points.length >= 3, `chart points: ${after.chartIn}`);
  assert.ok(points.some(([, y]) => y < 50), `the chart rose: ${after.chartIn}`);
  // Idle again: the chart still scrolls each second.
  const idle = await paths();
  await waitFor(async () => (await paths()).chartIn !== idle.chartIn, { timeoutMs: 3000, what: 'the next sample' });
  assert.deepEqual(pageErrors, []);
});

test('the page stays responsive at 100 events/s', async (t) => {
  const { hub, page, pageErrors } = await openDashboard(t);
  await page.fill('#topics', 'flood');
  await page.getByTestId('connect').click();
  await page.waitForSelector('#conn-state[data-state=open]', { timeout: 5000 });
  await page.locator('tr[data-event=ssehub-presence]').waitFor({ timeout: 5000 });
  await waitFor(async () => Number(await page.textContent('#event-count')) >= 1, { what: 'presence counted' });
  const before = Number(await page.textContent('#event-count'));
  // Frame gaps on the page while the flood runs.
  await page.evaluate(() => {
    window.frameGaps = [];
    let last = performance.now();
    const tick = (now) => { window.frameGaps.push(now - last); last = now; requestAnimationFrame(tick); };
    requestAnimationFrame(tick);
  });

  const total = 500; // 5 s at 100/s, each publish at its slot
  const started = Date.now();
  let peakRate = 0;
  let formAnswer = null;
  for (let i = 0; i < total; i++) {
    const wait = started + i * 10 - Date.now();
    if (wait > 0) await sleep(wait);
    const res = await publish(hub.url, { topic: 'flood', data: String(i) });
    assert.equal(res.status, 200);
    if (i === 250) {
      // Halfway through, a person uses the publish form: it answers promptly.
      const clicked = Date.now();
      await page.fill('#pub-topic', 'flood');
      await page.fill('#pub-data', 'by hand');
      await page.getByTestId('publish').click();
      await page.waitForSelector('#pub-result[data-status=ok]', { timeout: 5000 });
      formAnswer = Date.now() - clicked;
    }
    if (i % 50 === 0) peakRate = Math.max(peakRate, Number(await page.getAttribute('#stat-events-in', 'data-value')));
  }
  const elapsed = Date.now() - started;
  await waitFor(async () => Number(await page.textContent('#event-count')) === before + total + 1,
    { timeoutMs: 10000, what: 'every event counted' });
  assert.equal(await page.locator('[data-testid=events] tr').count(), 200, 'the list stays capped');
  assert.equal(await page.locator('[data-testid=events] tr').first().locator('td.data').textContent(), String(total - 1));
  await waitFor(async () => {
    peakRate = Math.max(peakRate, Number(await page.getAttribute('#stat-events-in', 'data-value')));
    return peakRate >= 50;
  }, { timeoutMs: 3000, what: `an events-in rate near 100/s (peak ${peakRate}, flood took ${elapsed} ms)` });

  const gaps = await page.evaluate(() => window.frameGaps);
  const worst = Math.max(...gaps);
  // Bounds for a loaded 2-core machine, far above a smooth page's 16 ms frames, far below
  // a page that has locked up.
  assert.ok(gaps.length > 50, `frames drawn during the flood: ${gaps.length}`);
  assert.ok(worst < 1000, `longest frame gap ${worst.toFixed(0)} ms`);
  assert.ok(formAnswer < 3000, `the form answered in ${formAnswer} ms during the flood`);
  console.log(`# 100 events/s: ${total} events in ${elapsed} ms, ${gaps.length} frames, ` +
              `longest gap ${worst.toFixed(0)} ms, form answered in ${formAnswer} ms, peak rate ${peakRate}/s`);
  assert.deepEqual(pageErrors, []);
});

/** /metrics' ssehub_bridge_* series as { bridge: { name: value } }. */
async function bridgeMetrics(hubUrl) {
  const text = await (await fetch(`${hubUrl}/metrics`)).text();
  const out = {};
  for (const line of text.split('\n')) {
    const m = /^ssehub_bridge_([a-z_]+)\{bridge="([^"]+)",kind="[^"]+"\} (\S+)$/.exec(line);
    if (m) (out[m[2]] = out[m[2]] || {})[m[1]] = Number(m[3]);
  }
  return out;
}

test('the dashboard shows each bridge as /metrics has it, and one that cannot connect', async (t) => {
  const os = require('node:os');
  const fs = require('node:fs');
  const path = require('node:path');
  const { execFileSync } = require('node:child_process');
  const channel = `ssehub-dash-${process.pid}`;
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'ssehub-dash-bridges-'));
  t.after(() => fs.rmSync(dir, { recursive: true, force: true }));
  const config = path.join(dir, 'ssehub.toml');
  // One bridge on this machine's Redis; one on a port where nothing listens.
  fs.writeFileSync(config, `
[[bridge]]
name = "news"
kind = "redis-pubsub"
url = "redis://127.0.0.1:6379"
channels = ["${channel}*"]

[[bridge]]
name = "nowhere"
kind = "redis-pubsub"
url = "redis://127.0.0.1:1"
channels = ["x"]
`);
  const { hub, page, pageErrors } = await openDashboard(t, ['--memory', '--config', config]);
  await page.waitForSelector('#bridges:not([hidden])', { timeout: 5000 });
  const cell = (bridge, field) => page.getAttribute(
    `#bridge-rows tr[data-bridge="${bridge}"] td[data-field="${field}"]`, 'data-value');
  await waitFor(async () => (await cell('news', 'state')) === 'running',
    { timeoutMs: 10000, what: 'the Redis bridge running' });
  // Two plain messages and one poison (a space in the topic).
  for (const suffix of ['.a', '.b', ' bad']) {
    execFileSync('redis-cli', ['-h', '127.0.0.1', '-p', '6379', 'PUBLISH', channel + suffix, 'hello']);
  }
  const fields = ['received_total', 'published_total', 'skipped_total', 'errors_total', 'lag'];
  let last;
  await waitFor(async () => {
    const m = await bridgeMetrics(hub.url);
    const rows = {};
    for (const b of ['news', 'nowhere']) {
      rows[b] = {};
      for (const f of fields) rows[b][f] = Number(await cell(b, f));
    }
    last = { m, rows };
    return m.news && m.news.received_total === 3 &&
      ['news', 'nowhere'].every((b) => fields.every((f) => rows[b][f] === m[b][f]));
  }, { timeoutMs: 8000, what: 'the bridge rows equal /metrics' }).catch((err) => {
    throw new Error(`${err.message}: ${JSON.stringify(last)}`);
  });
  assert.equal(last.rows.news.published_total, 2);
  assert.equal(last.rows.news.skipped_total, 1);
  assert.equal(await cell('nowhere', 'state'), 'retrying');
  assert.ok(last.rows.nowhere.errors_total >= 1);
  assert.match(await cell('nowhere', 'last_error'), /\S/, 'the last error is shown');
  assert.equal(await cell('news', 'kind'), 'redis-pubsub');
  assert.match(await page.textContent('#bridge-summary'), /2 bridges, 1 not running/);
  assert.deepEqual(pageErrors, []);
});

test('without bridges the bridge table stays hidden', async (t) => {
  const { page, pageErrors } = await openDashboard(t);
  await page.waitForFunction(() => document.getElementById('stats-time').textContent !== '', null, { timeout: 5000 });
  assert.equal(await page.getAttribute('#bridges', 'hidden'), '');
  assert.deepEqual(pageErrors, []);
});
