// Dashboard II as a person uses it: open a run from the leaderboard and read its stages and the
// scores' reasons, rate it with a comment and approve its configuration; compare two runs and
// find the highlighted difference; compare two configurations and run the pairwise judge on the
// simulated endpoint; filter, sort and page the runs list, tick two runs to compare; every
// chart holds the points REST gives; edit a price and see the cost column change; the project
// page lists the approval and the export.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startServer, startBrowser, newPage, hydrated, signUp, api, artifact, axe } from './harness.mjs';

let server, chrome;
before(async () => { server = await startServer({ SEED_DEMO: 'true' }); chrome = await startBrowser(); });
after(async () => { await chrome?.stop(); await server?.stop(); });

const rows = '[data-testid="leaderboard"] [data-testid="leaderboard-row"]';

test('runs are read, compared, judged, filtered and re-priced in the browser', async () => {
  const { page, problems } = await newPage(chrome.browser);
  await page.setViewportSize({ width: 1280, height: 800 });
  await signUp(page, server.url);
  const experiment = (await api(page, 'GET', '/api/v1/experiments')).find((e) => e.name === 'Extract entities');
  const id = experiment.id;
  // Two configurations over the demo's 8 items: the best guess and the stage defaults.
  await api(page, 'POST', '/api/v1/runs', { experiment_id: id,
    stages: [{ variant: 'terse', model: 'sim-large', params: { temperature: 0.2 } }, {}] });
  await api(page, 'POST', '/api/v1/runs', { experiment_id: id, stages: [] });

  // The leaderboard's best run opens the run page: both stages, scores with their reasons.
  await page.goto(`${server.url}/experiments/${id}`);
  await hydrated(page);
  await page.waitForFunction((sel) => document.querySelectorAll(sel).length === 2, rows);
  await page.locator(`${rows} a:has-text("best run")`).first().click();
  await page.waitForURL('**/runs/*');
  await page.waitForSelector('[data-testid="stage"]');
  assert.equal(await page.locator('[data-testid="stage"]').count(), 2);
  const runId = page.url().split('/runs/')[1];
  const run = await api(page, 'GET', `/api/v1/runs/${runId}`);
  assert.equal(await page.locator('[data-testid="stage"] .response').first().textContent(), run.stages[0].response_raw);
  const f1 = page.locator('[data-testid="score-row"][data-scorer="token_f1"]');
  assert.match(await f1.textContent(), /precision.*recall/s, 'the token F1 says why');
  const stored = run.scores.find((s) => s.scorer === 'token_f1').value.toFixed(3);
  assert.match(await f1.locator('td').first().textContent(), new RegExp(stored.replace('.', '\\.')));
  await page.waitForSelector('[data-testid="same-item"] tbody tr');

  // Rate it with a comment; approve its configuration.
  await page.selectOption('[data-testid="rate-form"] select[data-field="rating"]', 'up');
  await page.fill('[data-testid="rate-form"] textarea', 'Crisp and complete.');
  await page.click('[data-testid="rate-form"] button:has-text("Save rating")');
  await page.waitForSelector('[data-testid="ratings"] li:has-text("Crisp and complete.")');
  assert.match(await page.locator('[data-testid="ratings"] li').first().textContent(), /— you/);
  await page.click('[data-testid="run-actions"] button:has-text("Approve configuration")');
  await page.waitForSelector('p.ok:has-text("Saved")');
  assert.deepEqual(await axe(page), [], 'axe on the run page');
  await artifact(page, 'reading-run-1280');

  // The same item in the other configuration: the two outputs diffed word by word.
  await page.locator('[data-testid="same-item"] a:has-text("compare")').first().click();
  await page.waitForURL('**/compare?a=*');
  await page.waitForSelector('[data-testid="diff"]');
  const url = new URL(page.url());
  const cmp = await api(page, 'GET', `/api/v1/runs/compare?a=${url.searchParams.get('a')}&b=${url.searchParams.get('b')}`);
  const marked = await page.locator('[data-testid="diff"]').first().evaluate((d) => ({
    added: [...d.querySelectorAll('ins')].map((e) => e.textContent).join(''),
    removed: [...d.querySelectorAll('del')].map((e) => e.textContent).join(''),
  }));
  const spans = (op) => cmp.output.spans.filter((s) => s.op === op).map((s) => s.text).join('');
  assert.ok(marked.added.length + marked.removed.length > 0, 'the difference is highlighted');
  assert.deepEqual(marked, { added: spans('added'), removed: spans('removed') });
  assert.equal(await page.locator('[data-testid="score-deltas"] tbody tr').count(), cmp.scores.length);

  // Two configurations: vs #1 from the leaderboard, then the pairwise judge on the simulated endpoint.
  await page.goto(`${server.url}/experiments/${id}`);
  await hydrated(page);
  await page.waitForFunction((sel) => document.querySelectorAll(sel).length === 2, rows);
  await page.locator(`${rows} a:has-text("vs #1")`).click();
  await page.waitForSelector('[data-testid="paired"]');
  assert.equal(await page.locator('[data-testid="pair"]').count(), 8);
  await page.fill('[data-testid="judge"] input[data-field="model"]', 'sim-large');
  await page.click('[data-testid="judge"] button:has-text("Run the judge")');
  await page.waitForSelector('[data-testid="judge-result"]', { timeout: 60_000 });
  const rate = await page.locator('.judge-rate').textContent();
  const q = new URL(page.url()).searchParams;
  const endpoints = await api(page, 'GET', '/api/v1/endpoints');
  const again = await api(page, 'POST', `/api/v1/experiments/${id}/compare`, { first: q.get('a'), second: q.get('b'),
    endpoint_id: endpoints[0].id, model: 'sim-large' });
  assert.deepEqual([again.calls, again.cache_hits], [0, again.details.length], 'the judge\'s calls were cached');
  assert.match(rate, new RegExp(`A wins ${Math.round(again.win_rate * 100)} %`), rate);
  await page.click('[data-testid="judge-result"] summary');
  assert.equal(await page.locator('[data-testid="verdict"]').count(), again.details.length);
  assert.deepEqual(await axe(page), [], 'axe on the configuration comparison with the judge\'s result');
  await artifact(page, 'reading-judge-1280');

  // The runs list: filter by status and score range, sort by the weighted score, tick two to compare.
  await page.goto(`${server.url}/experiments/${id}`);
  await hydrated(page);
  const list = '[data-testid="runs-list"]';
  await page.waitForSelector(`${list} [data-testid="run-row"]`);
  await page.selectOption(`${list} select[data-field="status"]`, 'completed');
  await page.waitForSelector(`${list} [data-testid="runs-range"]:has-text("of 16")`);
  await page.selectOption(`${list} select[data-field="sort"]`, '-score');
  await page.fill(`${list} input[data-field="min_score"]`, '0.5');
  await page.locator(`${list} input[data-field="min_score"]`).dispatchEvent('change');
  const rest = await api(page, 'GET', `/api/v1/experiments/${id}/runs?status=completed&min_score=0.5&sort=-score&limit=25`);
  await page.waitForSelector(`${list} [data-testid="runs-range"]:has-text("of ${rest.total}")`);
  const scores = await page.locator(`${list} [data-testid="run-row"] td:nth-child(8)`).allTextContents();
  assert.deepEqual(scores, rest.runs.map((r) => r.weighted_score.toFixed(3)));
  assert.ok(scores.every((s) => Number(s) >= 0.5));
  const boxes = page.locator(`${list} [data-testid="run-row"] input[type="checkbox"]`);
  await boxes.nth(0).check();
  await boxes.nth(1).check();
  await page.click('[data-testid="compare-picked"]');
  await page.waitForSelector('h1:has-text("Compare two runs")');
  await page.waitForSelector('[data-testid="diff"]');

  // Each chart on the experiment page holds the points REST gives, in its data table; the live
  // view draws the progress chart.
  await page.goto(`${server.url}/experiments/${id}`);
  await hydrated(page);
  await page.waitForSelector('[data-testid="charts"] figure.chart');
  const infos = await api(page, 'GET', `/api/v1/experiments/${id}/charts`);
  const kinds = await page.locator('[data-testid="charts"] figure.chart').evaluateAll((fs) => fs.map((f) => f.dataset.kind));
  assert.deepEqual([...kinds].sort(), infos.map((i) => i.kind).sort());
  for (const info of infos) {
    const data = await api(page, 'GET', info.path.replace('.svg', '.json'));
    const points = data.series.reduce((n, s) => n + s.points.length, 0);
    assert.ok(points > 0, `${info.kind} has points`);
    const figure = page.locator(`[data-testid="charts"] figure[data-kind="${info.kind}"]`);
    assert.equal(await figure.locator('.chart-table tbody tr').count(), points, info.kind);
    assert.equal(await figure.locator('svg[role="img"]').count(), 1, `${info.kind} is an accessible image`);
    assert.match(await figure.locator('figcaption').textContent(), new RegExp(data.title.replace(/[()]/g, '.')));
  }
  await page.goto(`${server.url}/experiments/${id}/live`);
  await hydrated(page);
  await page.waitForSelector('[data-testid="progress-chart"] figure[data-kind="progress"] svg');

  // A price edited on the admin page shows in the runs' cost column.
  await page.goto(`${server.url}/admin`);
  await hydrated(page);
  const price = '[data-testid="prices"] tr[data-model="sim-large"]';
  await page.waitForSelector(price);
  await page.fill(`${price} input[aria-label="Input price of sim-large"]`, '1000');
  await page.fill(`${price} input[aria-label="Output price of sim-large"]`, '3000');
  await page.click(`${price} button:has-text("Save")`);
  await page.waitForFunction(async () => {
    const r = await fetch('/api/v1/admin/pricing');
    return (await r.json()).some((p) => p.model === 'sim-large' && p.input_per_million === 1000);
  });
  assert.deepEqual(await axe(page), [], 'axe on the admin page');
  await page.goto(`${server.url}/experiments/${id}`);
  await hydrated(page);
  await page.waitForSelector(`${list} [data-testid="run-row"]`);
  await page.selectOption(`${list} select[data-field="sort"]`, '-cost');
  const costly = await api(page, 'GET', `/api/v1/experiments/${id}/runs?sort=-cost&limit=1`);
  const want = `$${costly.runs[0].cost_estimate.toFixed(4)}`;
  assert.notEqual(want, '$0.0000');
  await page.waitForFunction(([sel, want]) => document.querySelector(sel)?.textContent === want,
    [`${list} [data-testid="run-row"] td:nth-child(7)`, want]);

  // The project lists the approved configuration and the export, readable as it was.
  await page.evaluate(async (h) => (await fetch(h)).text(), `/api/v1/experiments/${id}/export/report`);
  await page.goto(`${server.url}/projects/${experiment.project_id}`);
  await hydrated(page);
  await page.waitForSelector('[data-testid="approved"] li:has-text("Extract entities")');
  const exportHref = await page.locator('[data-testid="exports"] a:has-text("open as exported")').first().getAttribute('href');
  const body = await page.evaluate(async (h) => (await fetch(h)).text(), exportHref);
  assert.match(body, /## Leaderboard/);
  assert.match(await page.locator('[data-testid="experiment-row"]:has-text("Extract entities")').textContent(), /0\.\d{3}/,
    'the best score is shown');
  await artifact(page, 'reading-project-1280');

  assert.deepEqual(problems, []);
  await page.close();
});
