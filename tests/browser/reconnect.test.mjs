// The live view survives a server restart: the server is killed mid-sweep with the view open;
// the view says it is reconnecting, reconnects when the server is back (Last-Event-ID), catches
// up, and ends the sweep with the same totals as REST.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startServer, startBrowser, newPage, hydrated, signUp, api, freePort, artifact } from './harness.mjs';

let chrome;
const dataDir = mkdtempSync(join(tmpdir(), 'pl-reconnect-'));
before(async () => { chrome = await startBrowser(); });
after(async () => { await chrome?.stop(); rmSync(dataDir, { recursive: true, force: true }); });

test('the live view reconnects after a restart and ends with the totals REST reports', async () => {
  const env = { PORT: String(await freePort()), MAX_CONCURRENT_RUNS: '2' };
  let server = await startServer(env, { dataDir });
  try {
    const { page, problems } = await newPage(chrome.browser);
    await signUp(page, server.url);
    const endpoint = await api(page, 'POST', '/api/v1/endpoints',
      { name: 'Sim slow', kind: 'simulated', options: { latency_ms: 150, jitter_ms: 30 } });
    const project = await api(page, 'POST', '/api/v1/projects', { name: 'Restarts' });
    const items = Array.from({ length: 12 }, (_, i) => ({ input: { text: `Item ${i} in Paris in ${1900 + i}.` }, reference: `Item ${i} Paris ${1900 + i}` }));
    const experiment = await api(page, 'POST', '/api/v1/experiments', {
      project_id: project.id, name: 'Long sweep', sample_data: items,
      pipeline_stages: [{ name: 'extract', endpoint_id: endpoint.id, model: 'sim-medium', user: '{{ input.text }}' }],
      parameter_space: { stages: [{ params: { temperature: [0.1, 0.3, 0.5, 0.7, 0.9] } }] },
      scoring_config: [{ kind: 'lexical_similarity' }],
    });
    await api(page, 'POST', `/api/v1/experiments/${experiment.id}/sweep`, { strategy: { kind: 'grid' } });

    await page.goto(`${server.url}/experiments/${experiment.id}/live`);
    await hydrated(page);
    await page.evaluate(() => { window.__noReload = true; });
    await page.waitForSelector('[data-testid="link"]:has-text("live")');
    const done = () => page.evaluate(() => +document.querySelector('[data-testid="progress-count"]').textContent.split(' ')[0]);
    await page.waitForFunction(() => +document.querySelector('[data-testid="progress-count"]').textContent.split(' ')[0] >= 4);

    // Killed mid-sweep: the view says so.
    await server.stop('SIGKILL');
    await page.waitForSelector('[data-testid="link"]:has-text("reconnecting")');
    const before = await done();
    assert.ok(before < 60, `the sweep was still running (${before} of 60)`);
    await artifact(page, 'live-reconnecting');

    // Back on the same address: the view reconnects, catches up and follows the sweep to the end.
    server = await startServer(env, { dataDir });
    await page.waitForSelector('[data-testid="link"]:has-text("live")', { timeout: 30_000 });
    await page.waitForSelector('[data-testid="sweep-status"]:has-text("completed")', { timeout: 120_000 });
    await page.waitForTimeout(500);
    const sweep = await api(page, 'GET', `/api/v1/experiments/${experiment.id}/sweep`);
    assert.equal(sweep.status, 'completed');
    assert.equal(sweep.progress.done, 60);
    const shown = await page.locator('[data-testid="progress-count"]').textContent();
    assert.equal(shown, `${sweep.progress.done} of ${sweep.progress.total} runs`);
    for (const [id, value] of [
      ['stat-completed', String(sweep.progress.completed)],
      ['stat-cached', String(sweep.progress.cached)],
      ['stat-failed', String(sweep.progress.failed)],
    ]) {
      assert.equal(await page.locator(`[data-testid="${id}"]`).textContent(), value, id);
    }
    assert.equal(await page.evaluate(() => window.__noReload), true, 'the page reloaded');
    // While the server was down, the browser's reconnection attempts failed, and requests in
    // flight at the kill were reset; nothing else failed.
    const unexpected = problems.filter((p) => !/events\/stream|ERR_CONNECTION_REFUSED|ERR_CONNECTION_RESET|Failed to load resource/.test(p));
    assert.deepEqual(unexpected, []);
    await page.close();
  } finally {
    await server.stop();
  }
});
