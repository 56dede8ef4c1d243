// The experimenting loop in a real browser, as issue 11 describes it: create a project; build a
// two-stage experiment from an uploaded CSV (a bad paste shows its bad lines; a template using
// an undefined variable shows its error at that field; fixing it saves); try a scorer on a run;
// preview; start a grid sweep; the live view advances without a reload; pause (the count
// stops), resume, redirect to a smaller space, fork from a run, approve the best.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startServer, startBrowser, newPage, hydrated, signUp, api, artifact } from './harness.mjs';

let server, chrome;
// Two runs at a time on a slow simulated endpoint: the sweep lasts long enough to steer.
before(async () => { server = await startServer({ MAX_CONCURRENT_RUNS: '2' }); chrome = await startBrowser(); });
after(async () => { await chrome?.stop(); await server?.stop(); });

const count = async (page) => {
  const text = await page.locator('[data-testid="progress-count"]').textContent();
  const m = text.match(/^(\d+) of (\d+) runs/);
  assert.ok(m, text);
  return { done: +m[1], total: +m[2] };
};

test('build an experiment, sweep it, watch it live and steer it', async () => {
  const { page, problems } = await newPage(chrome.browser);
  await signUp(page, server.url);
  await api(page, 'POST', '/api/v1/endpoints',
    { name: 'Sim slow', kind: 'simulated', options: { latency_ms: 120, jitter_ms: 20 } });

  // A project, then a new experiment in it.
  await page.fill('[data-testid="create-project"] input[name="name"]', 'Newsroom');
  await page.click('button:has-text("Create project")');
  await page.click('a:has-text("Newsroom")');
  await page.click('a:has-text("New experiment")');
  await page.waitForSelector('h1:has-text("New experiment")');
  await hydrated(page);
  await page.evaluate(() => { window.__noReload = true; });
  await page.locator('[data-field="name"]').fill('Headlines');

  // A bad paste: each bad line is shown against its text, the good ones kept.
  await page.fill('[data-testid="paste-items"]', 'text,reference\nAda Lovelace in London,Ada Lovelace London\njust one field\nBerlin 1989,Berlin 1989\n');
  await page.click('button:has-text("Read items")');
  await page.waitForSelector('[data-testid="import-errors"]:has-text("1 line(s) could not be read")');
  const bad = await page.locator('table.line-errors tbody tr').first().textContent();
  assert.match(bad, /^3expected 2 fields, found 1just one field$/, bad);

  // The real data: an uploaded CSV.
  const dir = mkdtempSync(join(tmpdir(), 'pl-items-'));
  const csv = join(dir, 'items.csv');
  writeFileSync(csv, 'text,reference\n' + [
    'Ada Lovelace wrote notes in London in 1843.,Ada Lovelace London 1843',
    'Marie Curie worked in Paris in 1911.,Marie Curie Paris 1911',
    'Alan Turing studied at Cambridge in 1936.,Alan Turing Cambridge 1936',
    'Grace Hopper built COBOL at Remington.,Grace Hopper COBOL Remington',
    'Tim Berners-Lee worked at CERN in 1989.,Tim Berners-Lee CERN 1989',
    'Linus Torvalds wrote Linux in Helsinki.,Linus Torvalds Linux Helsinki',
  ].join('\n') + '\n');
  await page.setInputFiles('[data-testid="upload-items"]', csv);
  await page.waitForSelector('[data-testid="import-summary"]:has-text("6 item(s)")');
  await page.click('button:has-text("Use these 6 items (replace)")');
  await page.waitForSelector('[data-testid="item-count"]:has-text("6 items")');

  // Stage 1 on the slow endpoint; stage 2 reads stage 1's output.
  const stage = (k) => page.locator('[data-testid="stage"]').nth(k);
  await stage(0).locator('select[data-field="pipeline_stages[0].endpoint_id"]').selectOption({ label: 'Sim slow (simulated)' });
  await stage(0).locator('[data-field="pipeline_stages[0].model"]').fill('sim-medium');
  await page.click('button:has-text("Add stage")');
  await stage(1).locator('select[data-field="pipeline_stages[1].endpoint_id"]').selectOption({ label: 'Sim slow (simulated)' });
  await stage(1).locator('[data-field="pipeline_stages[1].model"]').fill('sim-small');
  const user2 = stage(1).locator('textarea[data-field="pipeline_stages[1].user"]');
  await user2.fill('Only the names, comma-separated: {{ stages[0].output }} {{ input.headline }}');

  // What the sweep varies in stage 1: three temperatures on two models.
  await stage(0).locator('summary:has-text("What a sweep may vary")').click();
  await stage(0).locator('button:has-text("Add parameter")').click();
  await stage(0).locator('input[placeholder="0.1, 0.5, 0.9"]').fill('0.1, 0.5, 0.9');
  for (const model of ['sim-large', 'sim-small']) {
    await stage(0).locator('button:has-text("Add model")').click();
    await stage(0).locator('input[data-field^="parameter_space.stages[0].models["][data-field$="].model"]').last().fill(model);
  }
  await page.selectOption('select[aria-label="Kind of scorer to add"]', 'lexical_similarity');
  await page.click('button:has-text("Add scorer")');

  // Saving names the undefined variable at the template that uses it; nothing typed is lost.
  await page.click('[data-testid="save"]');
  const fieldError = stage(1).locator('label:has(textarea[data-field="pipeline_stages[1].user"]) .field-error');
  await fieldError.waitFor();
  assert.match(await fieldError.textContent(), /undefined variable input\.headline/);
  assert.equal(await user2.getAttribute('aria-invalid'), 'true');
  assert.match(await page.locator('[data-testid="save-error"]').textContent(), /stage 2 › user needs attention/);
  assert.equal(await page.locator('[data-field="name"]').inputValue(), 'Headlines');
  await page.waitForSelector('[data-testid="item-count"]:has-text("6 items")');
  await artifact(page, 'builder-field-error');

  await user2.fill('Only the names, comma-separated: {{ stages[0].output }}');
  await page.click('[data-testid="save"]');
  await page.waitForSelector('h1:has-text("Edit “Headlines”")');
  const id = page.url().match(/experiments\/([0-9a-f-]{36})\/edit/)[1];
  const saved = await api(page, 'GET', `/api/v1/experiments/${id}`);
  assert.equal(saved.pipeline_stages.length, 2);
  assert.equal(saved.items.count, 6);
  const page1 = await api(page, 'GET', `/api/v1/experiments/${id}/items?limit=2`);
  assert.equal(page1.total, 6);
  assert.equal(page1.items.length, 2);
  assert.deepEqual(saved.parameter_space.stages[0].params.temperature, [0.1, 0.5, 0.9]);

  // A scorer is tried on a run before it is saved: one configuration is run first.
  await page.click('a:has-text("Headlines")');
  await page.waitForSelector('[data-testid="run-form"]');
  await page.click('button:has-text("Run over 6 items")');
  await page.waitForSelector('[data-testid="run-summary"]:has-text("6 completed")', { timeout: 60_000 });
  await page.click('a:has-text("Edit")');
  await page.waitForSelector('h1:has-text("Edit “Headlines”")');
  await page.click('button:has-text("Add scorer")');
  const keywords = page.locator('fieldset.scorer').nth(1);
  await keywords.locator('textarea[data-field="scoring_config[1].required"]').fill('Ada\nLondon');
  const pick = keywords.locator('.try select');
  await pick.locator('option:nth-child(2)').waitFor({ state: 'attached' });
  await pick.selectOption({ index: 1 });
  await keywords.locator('button:has-text("Try scorer")').click();
  const trial = await keywords.locator('[data-testid="trial-result"]').textContent();
  assert.match(trial, /Score: [01]\.\d{3}/, trial);
  assert.match(trial, /"missing"/, 'the metadata explains the score');
  await page.click('[data-testid="save"]');
  await page.waitForSelector('.save-bar :text("Saved")');

  // Preview, then start a grid sweep.
  await page.click('[data-testid="preview"]');
  const preview = await page.locator('[data-testid="preview-result"]').textContent();
  assert.match(preview, /Configurations6/, preview);
  assert.match(preview, /Runs36/, preview);
  await page.click('[data-testid="start"]');
  await page.waitForURL(`**/experiments/${id}/live`);
  await page.waitForSelector('[data-testid="link"]:has-text("live")');

  // The live view advances by itself.
  const first = await count(page);
  assert.equal(first.total, 36);
  await page.waitForFunction((n) => +document.querySelector('[data-testid="progress-count"]').textContent.split(' ')[0] > n, first.done);
  await page.waitForSelector('[data-testid="timeline"] li[data-type="run.completed"]');
  await artifact(page, 'live-running');

  // Pause: calls in flight finish, then the count stands still.
  await page.click('[data-testid="pause"]');
  await page.waitForSelector('[data-testid="sweep-status"]:has-text("paused")');
  // (REST is the truth for when the last call ended; the page then shows the same.)
  let rest;
  for (const until = Date.now() + 20_000; Date.now() < until; await page.waitForTimeout(100)) {
    rest = await api(page, 'GET', `/api/v1/experiments/${id}/sweep`);
    if (rest.in_flight === 0) break;
  }
  assert.equal(rest.in_flight, 0, 'the calls in flight end');
  await page.waitForFunction((n) => +document.querySelector('[data-testid="progress-count"]').textContent.split(' ')[0] === n, rest.progress.done);
  await page.waitForSelector('[data-testid="stat-in-flight"]:text-is("0")');
  const paused = await count(page);
  await page.waitForTimeout(1500);
  assert.equal((await count(page)).done, paused.done, 'a paused sweep runs nothing');
  assert.equal((await api(page, 'GET', `/api/v1/experiments/${id}/sweep`)).progress.done, paused.done);
  assert.ok(paused.done < 36, 'paused before the end');

  // Resume; then redirect what remains to one temperature.
  await page.click('[data-testid="resume"]');
  await page.waitForSelector('[data-testid="sweep-status"]:has-text("running")');
  await page.click('[data-testid="redirect"]');
  const form = page.locator('[data-testid="redirect-form"]');
  await form.locator('input[placeholder="0.1, 0.5, 0.9"]').first().fill('0.1');
  await form.locator('[data-testid="redirect-submit"]').click();
  await form.waitFor({ state: 'detached' });
  await page.waitForFunction(() => {
    const m = document.querySelector('[data-testid="progress-count"]').textContent.match(/of (\d+) runs/);
    return m && +m[1] < 36;
  });
  await page.waitForSelector('[data-testid="sweep-status"]:has-text("completed")', { timeout: 90_000 });
  const end = await count(page);
  const sweep = await api(page, 'GET', `/api/v1/experiments/${id}/sweep`);
  assert.equal(end.done, sweep.progress.done);
  assert.equal(end.total, sweep.progress.total);
  assert.ok(end.total < 36, 'the redirect shrank the sweep');
  await page.waitForSelector('[data-testid="timeline"] li[data-type="experiment.completed"]');

  // Approve the best configuration.
  const rows = '[data-testid="leaderboard"] [data-testid="leaderboard-row"]';
  await page.waitForSelector(rows);
  await page.locator(`${rows} button:has-text("Approve")`).first().click();
  await page.waitForSelector(`${rows} .status:has-text("approved")`);
  const marks = await api(page, 'GET', `/api/v1/experiments/${id}/marks`);
  assert.equal(marks.length, 1);
  assert.equal(marks[0].mark, 'approved');

  // Fork from one of the best configuration's runs, with a change; the fork opens.
  await page.locator(`${rows} button.expander`).first().click();
  await page.waitForSelector('[data-testid="config-runs"]');
  await page.locator('[data-testid="config-runs"] button:has-text("Fork…")').first().click();
  const fork = page.locator('[data-testid="fork-form"]');
  await fork.locator('[data-field="stages[0].params.temperature"]').fill('0.3');
  await fork.locator('[data-testid="fork-submit"]').click();
  await page.waitForFunction((old) => /\/experiments\/[0-9a-f-]{36}$/.test(location.pathname) && !location.pathname.includes(old), id);
  await page.waitForSelector('h1:has-text("(fork)")');
  const forkId = page.url().split('/').pop();
  const forked = await api(page, 'GET', `/api/v1/experiments/${forkId}`);
  assert.equal(forked.pipeline_stages[0].params.temperature, 0.3);

  assert.equal(await page.evaluate(() => window.__noReload), true, 'the page reloaded');
  assert.deepEqual(problems, [
    'console: Failed to load resource: the server responded with a status of 422 (Unprocessable Entity)',
  ], 'browser reported problems');
  await page.close();
});
