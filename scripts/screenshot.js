// Takes docs/dashboard.png: the built-in page of a hub started with --demo on a durable
// store, after a minute of varying load, in headless Chromium. Run by scripts/screenshot.sh.
'use strict';

const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const { startHub, launchBrowser, publish, openStream, sleep, REPO_ROOT } = require('../e2e/lib/harness');

const OUT = process.env.SCREENSHOT_OUT || path.join(REPO_ROOT, 'docs', 'dashboard.png');
// Seconds of load before the picture: enough for the 2-minute chart to show a shape.
const LOAD_SECONDS = Number(process.env.SCREENSHOT_SECONDS || 50);

async function main() {
  const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'ssehub-screenshot-'));
  const hub = await startHub(['--demo', '--data-dir', dataDir]);
  const streams = [];
  let browser;
  try {
    // A few subscribers besides the page, so deliveries outnumber publishes.
    for (const topic of ['orders', 'orders', 'orders', 'prices', 'prices', 'counter', 'ticker']) {
      streams.push(await openStream(`${hub.url}/events/${topic}`));
    }
    browser = await launchBrowser();
    const page = await browser.newPage({ viewport: { width: 1280, height: 980 } });
    await page.goto(hub.url + '/');
    await page.getByTestId('chip-counter').click();
    await page.getByTestId('chip-ticker').click();
    await page.getByTestId('connect').click();
    await page.waitForSelector('#conn-state[data-state=open]', { timeout: 5000 });

    // Load that rises and falls, so the charts have something to show; the picture is
    // taken while it runs.
    const started = Date.now();
    let n = 0;
    let stop = false;
    const load = (async () => {
      while (!stop) {
        const t = (Date.now() - started) / 1000;
        const perSecond = 20 + 35 * (1 + Math.sin(t / 6));
        const topic = n % 3 === 0 ? 'prices' : 'orders';
        const data = topic === 'prices'
          ? { symbol: 'ACME', price: +(100 + 5 * Math.sin(t)).toFixed(2) }
          : { order: n, items: 1 + (n % 4) };
        await publish(hub.url, { topic, event: topic === 'prices' ? 'price' : 'order', data });
        n++;
        await sleep(1000 / perSecond);
      }
    })();
    await sleep(LOAD_SECONDS * 1000);
    await page.fill('#pub-topic', 'orders');
    await page.fill('#pub-event', 'order');
    await page.fill('#pub-data', '{"order": 1, "items": 2}');
    await page.check('#pub-json');
    await page.getByTestId('publish').click();
    await page.waitForSelector('#pub-result[data-status=ok]', { timeout: 5000 });
    await page.evaluate(() => window.scrollTo(0, 0));
    await sleep(1500);
    await page.screenshot({ path: OUT, fullPage: false });
    stop = true;
    await load;
    console.log(`wrote ${path.relative(process.cwd(), OUT)} after ${n} publishes`);
  } finally {
    for (const s of streams) s.close();
    if (browser) await browser.close();
    await hub.stop();
    fs.rmSync(dataDir, { recursive: true, force: true });
  }
}

main().catch((err) => { console.error(err); process.exit(1); });
