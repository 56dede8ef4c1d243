// Items at size in the builder, as issue 12 describes it: an existing experiment's stored items
// (count, fields, version, first rows); a 3 MB file uploaded with a progress bar straight into a
// new version; a file with bad lines refused with each line's problem (nothing saved), then
// imported with "skip bad lines"; pasted items appended. At 1280×800 and 390×844.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startServer, startBrowser, newPage, hydrated, signUp, api, artifact, axe } from './harness.mjs';

let server, chrome;
before(async () => { server = await startServer(); chrome = await startBrowser(); });
after(async () => { await chrome?.stop(); await server?.stop(); });

/** Records, in the page, every value an upload progress bar shows (it may come and go fast). */
const watchProgress = (page) => page.evaluate(() => {
  window.__progress = [];
  new MutationObserver(() => {
    const bar = document.querySelector('[data-testid="upload-progress"]');
    if (bar) window.__progress.push(Number(bar.getAttribute('value')));
  }).observe(document.body, { subtree: true, childList: true, attributes: true });
});

test('a large file is uploaded into the stored items with progress; bad lines are shown', async () => {
  const { page, problems } = await newPage(chrome.browser);
  await signUp(page, server.url);
  const endpoint = await api(page, 'POST', '/api/v1/endpoints', { name: 'Sim', kind: 'simulated' });
  const project = await api(page, 'POST', '/api/v1/projects', { name: 'Legal' });
  const experiment = await api(page, 'POST', '/api/v1/experiments', {
    project_id: project.id, name: 'Clauses',
    sample_data: [{ input: { text: 'first' } }, { input: { text: 'second' } }],
    pipeline_stages: [{ name: 'read', endpoint_id: endpoint.id, model: 'sim-small', user: 'Summarise: {{ input.text }}' }],
  });

  await page.goto(`${server.url}/experiments/${experiment.id}/edit`);
  await hydrated(page);
  await page.waitForSelector('[data-testid="item-count"]:has-text("2 items · version 1 · fields: text")');
  await page.click('[data-testid="importer"] summary');

  // 3 MB of CSV: 2,000 rows with a long document each, uploaded in place of the two items.
  const dir = mkdtempSync(join(tmpdir(), 'pl-big-'));
  const big = join(dir, 'clauses.csv');
  const filler = 'The party of the first part shall indemnify the party of the second part. '.repeat(20);
  let csv = 'id,text,doc,split\n';
  for (let i = 0; i < 2000; i++) csv += `c-${i},Clause ${i},"${filler}",${i % 5 ? 'train' : 'test'}\n`;
  writeFileSync(big, csv);
  assert.ok(csv.length > 3_000_000, `${csv.length}`);
  await watchProgress(page);
  await page.setInputFiles('[data-testid="upload-file"]', big);
  await page.waitForSelector('[data-testid="import-result"]:has-text("Imported 2000 items: 2000 items now, version 2.")', { timeout: 60_000 });
  const seen = await page.evaluate(() => window.__progress);
  assert.ok(seen.length > 0, 'the progress bar showed');
  assert.equal(Math.max(...seen), 100, `progress reached 100: ${seen}`);
  await page.waitForSelector('[data-testid="item-count"]:has-text("2000 items · version 2 · fields: doc, text")');
  await page.waitForSelector('[data-testid="items-table"] tbody tr:first-child:has-text("Clause 0")');
  assert.equal(await page.locator('[data-testid="items-table"] tbody tr').count(), 20);
  await artifact(page, 'builder-upload-1280');

  // Bad lines: refused, each line's problem shown, nothing saved.
  const bad = join(dir, 'bad.csv');
  writeFileSync(bad, 'id,text\nb-1,fine\nb-2\nb-3,also fine\nb-4,too,many\n');
  await page.selectOption('[data-testid="import-mode"]', 'append');
  await page.setInputFiles('[data-testid="upload-file"]', bad);
  await page.waitForSelector('[data-testid="import-failed"]:has-text("line 3: expected 2 fields, found 1 (and 1 more bad line)")');
  const rows = await page.locator('[data-testid="import-line-errors"] tbody tr').allTextContents();
  assert.deepEqual(rows, ['3expected 2 fields, found 1', '5expected 2 fields, found 3']);
  assert.equal((await api(page, 'GET', `/api/v1/experiments/${experiment.id}`)).items.count, 2000);

  // The same file with "skip bad lines": the good lines are appended, the bad ones listed.
  await page.check('[data-testid="skip-invalid"]');
  await page.setInputFiles('[data-testid="upload-file"]', bad);
  await page.waitForSelector('[data-testid="import-result"]:has-text("Imported 2 items (2 bad lines skipped): 2002 items now, version 3.")');
  assert.equal(await page.locator('[data-testid="import-line-errors"] tbody tr').count(), 2);
  assert.deepEqual(await axe(page), [], 'axe at 1280 with the importer open');

  // Pasted JSON lines, appended.
  await page.uncheck('[data-testid="skip-invalid"]');
  await page.fill('[data-testid="paste-import"]', '{"text": "pasted one"}\n{"text": "pasted two", "split": "test"}\n');
  await page.click('button:has-text("Import pasted items")');
  await page.waitForSelector('[data-testid="import-result"]:has-text("2004 items now, version 4.")');
  const tests = await api(page, 'GET', `/api/v1/experiments/${experiment.id}/items?split=test&limit=1`);
  assert.equal(tests.total, 401);

  // On a phone.
  await page.setViewportSize({ width: 390, height: 844 });
  await page.waitForTimeout(200);
  const overflow = await page.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
  assert.ok(overflow <= 1, `the page scrolls sideways by ${overflow}px`);
  assert.deepEqual(await axe(page), [], 'axe at 390');
  await artifact(page, 'builder-upload-390');
  // The refused file answers 422 on purpose.
  assert.deepEqual(problems.filter((p) => !p.includes('status of 422')), []);
});
