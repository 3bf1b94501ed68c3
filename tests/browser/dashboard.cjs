// Drives the dashboard in headless Chromium as a customer would: create an endpoint, send a
// test event and see it delivered, reveal and rotate the secret, then see a failed delivery
// and retry it. Run by tests/it/browser.rs, which starts hookrelay on the real broker and
// checks the results against the API and the receiver. Prints one JSON line of what it saw.
//
// Environment: HOOKRELAY_PLAYWRIGHT (path of the playwright-core package), HOOKRELAY_CHROMIUM
// (the browser), DASHBOARD (page URL), API_KEY, HEALTHY_URL and FLAKY_URL (receiver endpoints),
// SCREENSHOTS (a directory).
'use strict';

const path = require('path');
const fs = require('fs');
const { chromium } = require(process.env.HOOKRELAY_PLAYWRIGHT);

const env = (name) => {
  const v = process.env[name];
  if (!v) throw new Error(name + ' is not set');
  return v;
};

const STEP = 30000;

async function main() {
  const shots = env('SCREENSHOTS');
  fs.mkdirSync(shots, { recursive: true });
  const userData = fs.mkdtempSync(path.join(require('os').tmpdir(), 'hookrelay-chromium-'));
  // A fresh profile directory: Playwright passes it as --user-data-dir.
  const browser = await chromium.launchPersistentContext(userData, {
    executablePath: env('HOOKRELAY_CHROMIUM'),
    headless: true,
    viewport: { width: 1400, height: 1000 },
    args: [
      '--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
      '--disable-background-networking', '--disable-component-update', '--disable-sync',
    ],
  });
  const seen = {};
  const page = browser.pages()[0] || await browser.newPage();
  const problems = [];
  page.on('pageerror', (e) => problems.push('page error: ' + e.message));
  page.on('console', (m) => { if (m.type() === 'error') problems.push('console: ' + m.text()); });
  page.on('response', (r) => { if (r.status() >= 400) problems.push('HTTP ' + r.status() + ' for ' + r.url()); });
  page.on('request', (r) => {
    if (!r.url().startsWith(new URL(env('DASHBOARD')).origin)) problems.push('external request: ' + r.url());
  });
  const shot = (name) => page.screenshot({ path: path.join(shots, name + '.png'), fullPage: true });
  try {
    await page.goto(env('DASHBOARD') + '#key=' + env('API_KEY'));
    await page.waitForSelector('#app:not([hidden])', { timeout: STEP });
    seen.key_left_url = page.url().includes('key=') ? 'yes' : 'no';

    // Create an endpoint.
    await page.click('#new-endpoint');
    await page.fill('#ep-url', env('HEALTHY_URL'));
    await page.fill('#ep-description', 'Billing system');
    await page.check('#ep-types input[value="license.created"]');
    await page.click('#ep-save');
    await page.waitForSelector('#endpoint-list li.selected >> text=Billing system', { timeout: STEP });
    seen.endpoint_text = (await page.textContent('#ep-version')).trim();

    // Send a test event; the log shows it delivered.
    await page.click('#send-test');
    const delivered = page.locator('#log-body tr.attempt[data-outcome="delivered"]').first();
    await delivered.waitFor({ timeout: STEP });
    seen.test_delivery = await delivered.getAttribute('data-delivery');
    await delivered.click();
    await page.waitForSelector('#log-body pre.request-body', { timeout: STEP });
    seen.test_body = await page.textContent('#log-body pre.request-body');
    await shot('1-test-event-delivered');

    // Reveal, then rotate the secret.
    await page.click('#reveal-secret');
    await page.waitForFunction(() => document.getElementById('secret-value').textContent.startsWith('whsec_') &&
      !document.getElementById('secret-value').textContent.includes('•'), null, { timeout: STEP });
    seen.secret_before = await page.textContent('#secret-value');
    await page.click('#rotate-secret');
    await page.waitForFunction((before) => {
      const now = document.getElementById('secret-value').textContent;
      return now !== before && now.startsWith('whsec_') && document.querySelectorAll('#rotating li').length === 1;
    }, seen.secret_before, { timeout: STEP });
    seen.secret_after = await page.textContent('#secret-value');
    seen.rotating = await page.textContent('#rotating li');
    await shot('2-secret-rotated');

    // A second endpoint whose first request fails: the log shows the failure; retry it.
    await page.click('#new-endpoint');
    await page.fill('#ep-url', env('FLAKY_URL'));
    await page.fill('#ep-description', 'Flaky receiver');
    await page.click('#ep-save');
    await page.waitForSelector('#endpoint-list li.selected >> text=Flaky receiver', { timeout: STEP });
    seen.other_secret_hidden = (await page.textContent('#secret-value')).includes('•');
    await page.click('#send-test');
    const failed = page.locator('#log-body tr.attempt[data-outcome="retry_scheduled"]').first();
    await failed.waitFor({ timeout: STEP });
    seen.failed_delivery = await failed.getAttribute('data-delivery');
    seen.failed_row = (await failed.textContent()).replace(/\s+/g, ' ').trim();
    await failed.click();
    await page.waitForSelector('#log-body tr.payload >> text=HTTP 500', { timeout: STEP });
    await shot('3-failed-delivery');
    await failed.locator('button.retry').click();
    const retried = page.locator(
      '#log-body tr.attempt[data-outcome="delivered"][data-delivery="' + seen.failed_delivery + '"]');
    await retried.waitFor({ timeout: STEP });
    seen.retried_row = (await retried.first().textContent()).replace(/\s+/g, ' ').trim();
    await shot('4-retried');
  } catch (e) {
    await shot('failure').catch(() => {});
    problems.push(String(e && e.stack || e));
  } finally {
    await browser.close();
    fs.rmSync(userData, { recursive: true, force: true });
  }
  seen.problems = problems;
  console.log(JSON.stringify(seen));
  process.exit(problems.length ? 1 : 0);
}

main().catch((e) => { console.error(e); process.exit(2); });
