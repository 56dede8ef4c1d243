// The demo as a new user meets it after `make run`: no API key, open the seeded project, run
// the simulated experiment from the dashboard, see results, run again from the cache.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startServer, startBrowser, newPage, hydrated } from './harness.mjs';

let server, chrome;
before(async () => { server = await startServer({ SEED_DEMO: 'true' }); chrome = await startBrowser(); });
after(async () => { await chrome?.stop(); await server?.stop(); });

test('the seeded demo runs from the dashboard with no API key', async () => {
  const { page, problems } = await newPage(chrome.browser);
  await page.goto(`${server.url}/setup`);
  await hydrated(page);
  await page.fill('input[name="password"]', 'correct horse battery');
  await page.fill('input[name="confirm"]', 'correct horse battery');
  await page.click('button:has-text("Create admin")');
  await page.waitForURL('**/projects');

  await page.click('a:has-text("Demo: entity extraction (simulated)")');
  await page.waitForSelector('h1:has-text("Demo: entity extraction (simulated)")');
  await page.click('a:has-text("Extract entities")');
  await page.waitForSelector('h1:has-text("Extract entities")');
  await hydrated(page);
  await page.waitForSelector('text=No runs yet.');
  await page.evaluate(() => { window.__noReload = true; });

  // The best guess: the terse prompt on the large model, cool temperature.
  await page.selectOption('select[aria-label="Prompt for stage 1"]', 'terse');
  await page.selectOption('select[aria-label="Model for stage 1"]', 'sim-large');
  await page.fill('input[aria-label="Temperature for stage 1"]', '0.2');
  await page.click('button:has-text("Run over 8 items")');
  await page.waitForSelector('[data-testid="run-summary"]:has-text("8 completed, 0 cached, 0 failed")', { timeout: 30_000 });
  await page.waitForSelector('[data-testid="runs"] tbody tr');
  assert.equal(await page.locator('[data-testid="runs"] tbody tr').count(), 8);
  const outputs = await page.locator('[data-testid="runs"] td.output').allTextContents();
  assert.ok(outputs.some((o) => o.includes('Lovelace')), outputs.join(' | '));
  assert.match(await page.locator('[data-testid="runs"]').textContent(), /terse · sim-large · [^|]*temperature=0\.2/);

  // The same configuration again costs nothing: every run from the cache.
  await page.click('button:has-text("Run over 8 items")');
  await page.waitForSelector('[data-testid="run-summary"]:has-text("0 completed, 8 cached, 0 failed")', { timeout: 30_000 });
  await page.waitForFunction(() => document.querySelectorAll('[data-testid="runs"] .status.cached').length === 8);

  // An out-of-range value is refused by the form itself; nothing is sent.
  await page.fill('input[aria-label="Temperature for stage 1"]', '5');
  await page.click('button:has-text("Run over 8 items")');
  assert.equal(await page.$eval('input[aria-label="Temperature for stage 1"]', (el) => el.validity.rangeOverflow), true);
  assert.match(await page.locator('[data-testid="run-summary"]').textContent(), /0 completed, 8 cached/);

  assert.equal(await page.evaluate(() => window.__noReload), true, 'the page reloaded');
  assert.deepEqual(problems, []);
  await page.close();
});
