#!/usr/bin/env node
// The live view under load, in headless Chromium against the release build:
// 1. latency from a run's completion (its event's commit time) to its row appearing on an open
//    live view, p50/p95 (target p95 <= 250 ms), at a steady pace (40 ms calls, 4 at a time);
// 2. the highest event rate the view keeps up with: sweeps at 0 ms with more and more runs at
//    once; for each, the events/s the page received, the latency p95, the longest main-thread
//    task, and whether the final count equals REST's.
// Usage: make build && node bench/live.mjs   (uses tests/browser's playwright-core)
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir, homedir } from 'node:os';
import { join } from 'node:path';
import { createRequire } from 'node:module';

const require = createRequire(new URL('../tests/browser/package.json', import.meta.url));
const { chromium } = require('playwright-core');
const target = process.env.CARGO_TARGET_DIR || join(homedir(), '.cache/promptlooper/target');
const BIN = join(target, 'release/promptlooper');
const SITE = join(target, 'site/release');

async function serve(env) {
  const dataDir = mkdtempSync(join(tmpdir(), 'pl-bench-live-'));
  const child = spawn(BIN, ['serve'], {
    env: { ...process.env, DATA_DIR: dataDir, PORT: '0', MCP_PORT: '0', HOST: '127.0.0.1', LEPTOS_SITE_ROOT: SITE, SEED_DEMO: 'false', RUST_LOG: 'warn,server=info', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let log = '';
  const url = await new Promise((resolve, reject) => {
    const on = (c) => { log += c; const m = log.match(/listening on (http:\/\/[0-9.:]+)/); if (m) resolve(m[1]); };
    child.stdout.on('data', on); child.stderr.on('data', on);
    child.on('exit', (c) => reject(new Error(`server exited ${c}: ${log}`)));
  });
  return { url, stop: async () => { child.kill('SIGTERM'); await new Promise((r) => child.once('exit', r)); rmSync(dataDir, { recursive: true, force: true }); } };
}

async function rest(url, token, method, path, body) {
  const res = await fetch(`${url}${path}`, {
    method, headers: { 'content-type': 'application/json', ...(token ? { authorization: `Bearer ${token}` } : {}) },
    body: body ? JSON.stringify(body) : undefined,
  });
  const text = await res.text();
  if (!res.ok) throw new Error(`${method} ${path}: ${res.status} ${text}`);
  return text ? JSON.parse(text) : null;
}

const pct = (xs, p) => { const s = [...xs].sort((a, b) => a - b); return s.length ? s[Math.min(s.length - 1, Math.floor(p / 100 * s.length))] : NaN; };

/** One sweep watched in the live view: returns the latencies and what the page saw. */
async function watch({ latencyMs, concurrency, items, temperatures }) {
  const server = await serve({ MAX_CONCURRENT_RUNS: String(concurrency) });
  const browser = await chromium.launch({ executablePath: process.env.CHROMIUM || '/usr/bin/chromium',
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--disable-background-networking', '--disable-component-update', '--disable-sync', '--no-first-run'] });
  try {
    const { token } = await rest(server.url, null, 'POST', '/api/v1/auth/setup', { username: 'admin', password: 'correct horse battery' });
    const endpoint = await rest(server.url, token, 'POST', '/api/v1/endpoints', { name: 'sim', kind: 'simulated', options: { latency_ms: latencyMs } });
    const project = await rest(server.url, token, 'POST', '/api/v1/projects', { name: 'bench' });
    const experiment = await rest(server.url, token, 'POST', '/api/v1/experiments', {
      project_id: project.id, name: 'live', sample_data: Array.from({ length: items }, (_, i) => ({ input: { text: `Item ${i} in Rome ${i}` }, reference: `Item ${i} Rome` })),
      pipeline_stages: [{ name: 's', endpoint_id: endpoint.id, model: 'sim-medium', user: '{{ input.text }}' }],
      parameter_space: { stages: [{ params: { temperature: Array.from({ length: temperatures }, (_, i) => +(i / temperatures).toFixed(4)) } }] },
      scoring_config: [{ kind: 'lexical_similarity' }],
    });
    const context = await browser.newContext({ viewport: { width: 1280, height: 800 } });
    await context.addCookies([]);
    const page = await context.newPage();
    await page.goto(`${server.url}/login`);
    await page.fill('input[name="username"]', 'admin');
    await page.fill('input[name="password"]', 'correct horse battery');
    await page.click('button:has-text("Sign in")');
    await page.waitForURL('**/projects');
    await page.goto(`${server.url}/experiments/${experiment.id}/live`);
    await page.waitForSelector('body[data-hydrated="true"]');
    await page.waitForSelector('[data-testid="link"]:has-text("live")');
    // Observe: when each run.completed row is drawn (wall clock), events received, long tasks.
    await page.evaluate(() => {
      window.__seen = []; window.__longest = 0;
      // Keyed rows are moved (removed and added again) as newer ones arrive: count each once.
      const drawn = new WeakSet();
      new MutationObserver((records) => {
        const now = Date.now();
        for (const r of records) for (const n of r.addedNodes) {
          if (n.nodeType === 1 && n.matches?.('li[data-type="run.completed"]') && !drawn.has(n)) {
            drawn.add(n);
            window.__seen.push(now - Date.parse(n.querySelector('time').getAttribute('datetime')));
          }
        }
      }).observe(document.querySelector('[data-testid="timeline"]'), { childList: true });
      new PerformanceObserver((l) => { for (const e of l.getEntries()) window.__longest = Math.max(window.__longest, e.duration); })
        .observe({ type: 'longtask', buffered: false });
      window.__events = 0;
      const es = new EventSource(location.pathname.replace('/experiments/', '/api/v1/experiments/').replace('/live', '/events/stream'));
      for (const t of ['run.started', 'run.completed', 'run.cached', 'run.failed', 'stage.completed', 'new_best_found']) es.addEventListener(t, () => { window.__events++; });
    });
    const started = Date.now();
    await rest(server.url, token, 'POST', `/api/v1/experiments/${experiment.id}/sweep`, { strategy: { kind: 'grid' } });
    await page.waitForSelector('[data-testid="sweep-status"]:has-text("completed")', { timeout: 600_000 });
    const seconds = (Date.now() - started) / 1000;
    await page.waitForTimeout(1500);
    const sweep = await rest(server.url, token, 'GET', `/api/v1/experiments/${experiment.id}/sweep`);
    const shown = await page.locator('[data-testid="progress-count"]').textContent();
    const out = await page.evaluate(() => ({ seen: window.__seen, events: window.__events, longest: window.__longest }));
    return { ...out, seconds, runs: sweep.progress.total, matches: shown === `${sweep.progress.done} of ${sweep.progress.total} runs` };
  } finally {
    await browser.close();
    await server.stop();
  }
}

const steady = await watch({ latencyMs: 40, concurrency: 4, items: 20, temperatures: 20 });
console.log(`\n1. run completion -> row on the live view, ${steady.runs} runs at 40 ms, 4 at a time (${(steady.runs / steady.seconds).toFixed(0)} runs/s):`);
console.log(`   p50 ${pct(steady.seen, 50)} ms, p95 ${pct(steady.seen, 95)} ms, max ${Math.max(...steady.seen)} ms over ${steady.seen.length} rows (target p95 <= 250 ms); totals equal REST: ${steady.matches}`);

console.log('\n2. event rate the live view keeps up with (0 ms calls):');
console.log('| runs at once | runs | events/s received | row latency p50 / p95 | longest main-thread task | totals equal REST |');
console.log('| --- | --- | --- | --- | --- | --- |');
for (const concurrency of [4, 16, 64]) {
  const r = await watch({ latencyMs: 0, concurrency, items: 50, temperatures: 60 });
  console.log(`| ${concurrency} | ${r.runs} | ${(r.events / r.seconds).toFixed(0)} | ${pct(r.seen, 50)} / ${pct(r.seen, 95)} ms | ${r.longest.toFixed(0)} ms | ${r.matches} |`);
}
