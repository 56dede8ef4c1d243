// Scoring as a person meets it on the dashboard: runs of the demo land on the leaderboard
// ranked by weighted score with intervals and the #1 vs #2 verdict; a thumbs rating counts;
// exports download; rejecting a configuration takes it off the board.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startServer, startBrowser, newPage, hydrated } from './harness.mjs';

let server, chrome;
before(async () => { server = await startServer({ SEED_DEMO: 'true' }); chrome = await startBrowser(); });
after(async () => { await chrome?.stop(); await server?.stop(); });

const rows = '[data-testid="leaderboard"] [data-testid="leaderboard-row"]';

test('the demo ranks its configurations, takes ratings, exports and rejects', async () => {
  const { page, problems } = await newPage(chrome.browser);
  await page.goto(`${server.url}/setup`);
  await hydrated(page);
  await page.fill('input[name="password"]', 'correct horse battery');
  await page.fill('input[name="confirm"]', 'correct horse battery');
  await page.click('button:has-text("Create admin")');
  await page.waitForURL('**/projects');
  await page.click('a:has-text("Demo: entity extraction (simulated)")');
  await page.click('a:has-text("Extract entities")');
  await page.waitForSelector('h1:has-text("Extract entities")');
  await hydrated(page);
  await page.waitForSelector('[data-testid="leaderboard"] :text("No scored runs yet.")');
  await page.evaluate(() => { window.__noReload = true; });

  // The best guess, then the stage defaults: two configurations, the first ranked first.
  await page.selectOption('select[aria-label="Prompt for stage 1"]', 'terse');
  await page.selectOption('select[aria-label="Model for stage 1"]', 'sim-large');
  await page.fill('input[aria-label="Temperature for stage 1"]', '0.2');
  await page.click('button:has-text("Run over 8 items")');
  await page.waitForSelector('[data-testid="run-summary"]:has-text("8 completed")', { timeout: 30_000 });
  await page.waitForFunction((sel) => document.querySelectorAll(sel).length === 1, rows);
  await page.selectOption('select[aria-label="Prompt for stage 1"]', '');
  await page.selectOption('select[aria-label="Model for stage 1"]', '');
  await page.fill('input[aria-label="Temperature for stage 1"]', '');
  await page.click('button:has-text("Run over 8 items")');
  await page.waitForFunction((sel) => document.querySelectorAll(sel).length === 2, rows, { timeout: 30_000 });
  const first = await page.locator(rows).first().textContent();
  assert.match(first, /^1extract: terse · sim-large · [^|]*temperature=0\.2 \|/, first);
  assert.match(first, /\[0\.\d{3}–[01]\.\d{3}\]/, 'the score has its interval');
  const verdict = await page.locator('[data-testid="comparison"]').textContent();
  assert.match(verdict, /#1/, verdict);

  // Ranking by one scorer.
  await page.selectOption('select[aria-label="Rank by"]', 'scorer:token_f1');
  await page.waitForFunction((sel) => document.querySelectorAll(sel).length === 2, rows);

  // A thumbs-up counts on the leaderboard's thumbs column (the 7th).
  await page.locator('[data-testid="runs"] button[aria-label="Thumbs up"]').first().click();
  await page.waitForFunction((sel) => [...document.querySelectorAll(`${sel} td:nth-child(7)`)]
    .some((td) => td.textContent.trim() === '1.000'), rows);

  // Exports download with the session; the report has the leaderboard in it.
  const href = await page.locator('a:has-text("report (markdown)")').getAttribute('href');
  const report = await page.evaluate(async (h) => (await fetch(h)).text(), href);
  assert.match(report, /## Leaderboard/);
  assert.match(report, /## The winning prompts/);
  const best = await page.evaluate(async (h) => (await fetch(h)).json(),
    await page.locator('a:has-text("JSON")').getAttribute('href'));
  assert.equal(best.stages.length, 2);

  // Rejecting the leader takes it off the board.
  await page.selectOption('select[aria-label="Rank by"]', '');
  await page.waitForFunction((sel) => document.querySelectorAll(sel).length === 2, rows);
  const leader = await page.locator(rows).first().textContent();
  await page.locator(`${rows} button:has-text("Reject")`).first().click();
  await page.waitForFunction((sel) => document.querySelectorAll(sel).length === 1, rows);
  assert.notEqual(await page.locator(rows).first().textContent(), leader);

  assert.equal(await page.evaluate(() => window.__noReload), true, 'the page reloaded');
  assert.deepEqual(problems, []);
  await page.close();
});
