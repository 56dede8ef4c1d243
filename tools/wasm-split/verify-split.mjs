// Prototype check of a split bundle in headless Chromium (not part of make test): first visits
// to /login, /projects, a project, an experiment and /admin (what each downloads, preloads, hydration),
// then client-side navigation across lazy and non-lazy routes. Needs playwright-core (tests/browser).
//   PL_BIN=<promptlooper> PL_SITE=<site> [SKIP_EXP_HYDRATION=1] node tools/wasm-split/verify-split.mjs
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import assert from 'node:assert/strict';
import { chromium } from 'playwright-core';

const dataDir = mkdtempSync(join(tmpdir(), 'pl-split-'));
const child = spawn(process.env.PL_BIN, ['serve'], {
  env: { ...process.env, DATA_DIR: dataDir, PORT: '0', HOST: '127.0.0.1', LEPTOS_SITE_ROOT: process.env.PL_SITE,
         RUST_LOG: 'warn,promptlooper=info,server=info', SEED_DEMO: 'true' },
  stdio: ['ignore', 'pipe', 'pipe'],
});
let log = '';
process.on('exit', () => { try { child.kill('SIGTERM'); } catch {} });
const base = await new Promise((resolve, reject) => {
  const t = setTimeout(() => reject(new Error('no start\n' + log)), 60000);
  const on = (c) => { log += c; const m = log.match(/listening on (http:\/\/[0-9.:]+)/); if (m) { clearTimeout(t); resolve(m[1]); } };
  child.stdout.on('data', on); child.stderr.on('data', on);
  child.on('exit', (c) => reject(new Error(`exited ${c}\n${log}`)));
});
const browser = await chromium.launch({ executablePath: '/usr/bin/chromium',
  args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--disable-background-networking',
         '--disable-component-update', '--disable-sync', '--no-first-run'] });
const problems = [];
let knownExp = 0;
async function newPage(ctx) {
  const page = await ctx.newPage();
  page.__assets = [];
  page.on('console', (m) => { if (m.type() === 'error' || m.type() === 'warning') problems.push(`${page.url()} console.${m.type()}: ${m.text()}`); });
  page.on('pageerror', (e) => problems.push(`${page.url()} pageerror: ${e.message}`));
  page.on('requestfailed', (r) => problems.push(`requestfailed: ${r.url()} ${r.failure()?.errorText}`));
  page.on('requestfinished', async (r) => {
    const u = new URL(r.url());
    if (!u.pathname.startsWith('/pkg/')) return;
    const s = await r.sizes().catch(() => ({}));
    const resp = await r.response();
    page.__assets.push({ path: u.pathname.slice(5), bytes: s.responseBodySize, enc: resp?.headers()['content-encoding'] || '-', type: resp?.headers()['content-type'] });
  });
  return page;
}
const hydrated = async (page) => {
  try { await page.waitForSelector('body[data-hydrated="true"]', { timeout: Number(process.env.HYD_TIMEOUT || 120000) }); }
  catch (e) { console.log('HYDRATION TIMEOUT at', page.url(), '\nproblems so far:\n' + problems.join('\n')); throw e; }
};
const T0 = Date.now();
const sec = () => ((Date.now() - T0) / 1000).toFixed(1) + 's';

// 1. First visit: everything leads to /setup; create the admin there (a non-lazy page).
const ctx0 = await browser.newContext();
let page = await newPage(ctx0);
await page.goto(`${base}/login`);
await page.waitForURL('**/setup');
await hydrated(page);
await page.fill('input[name="username"]', 'admin');
await page.fill('input[name="password"]', 'correct horse battery');
await page.fill('input[name="confirm"]', 'correct horse battery');
await page.click('button:has-text("Create admin")');
await page.waitForURL('**/projects');
await hydrated(page);
const projHref = await page.getAttribute('a:has-text("Demo: entity extraction (simulated)")', 'href');
const state = await ctx0.storageState();
await page.close();
console.log(sec(), 'setup done; demo project', projHref);

// expHref: from the project page
{ const p = await newPage(ctx0); await p.goto(`${base}${projHref}`); await hydrated(p);
  globalThis.expHref = await p.getAttribute('a:has-text("Extract entities")', 'href'); await p.close(); }
const expHref = globalThis.expHref;
// 3. First visits (cold cache, new context each) to each page: what downloads, and does it work?
const visits = [['/login', null], ['/projects', state], [projHref, state], [expHref, state], ['/admin', state]];
for (const [path, st] of visits) {
  const ctx = await browser.newContext(st ? { storageState: st } : {});
  const p = await newPage(ctx);
  const resp = await p.goto(`${base}${path}`);
  const html = await resp.text();
  if (path === expHref && process.env.SKIP_EXP_HYDRATION) {
    // pre-existing bug (resources created inside AppShell's Suspend): record, don't stop
    const ok = await p.waitForSelector('body[data-hydrated="true"]', { timeout: 30000 }).then(() => true, () => false);
    console.log(`\n${sec()} ${path}: hydrated=${ok} (known pre-existing mismatch when false)`);
    for (const a of p.__assets) console.log(`   ${String(a.bytes).padStart(8)} ${a.enc.padEnd(5)} ${a.path}`);
    if (!ok) { const n = problems.length; problems.splice(0, n, ...problems.filter((x) => !x.includes('/experiments/'))); knownExp = n - problems.length; }
    await ctx.close(); continue;
  }
  await hydrated(p);
  await p.waitForTimeout(300);
  const preloads = [...html.matchAll(/<link[^>]*>/g)].map((m) => m[0]).filter((t) => /rel="(module)?preload"/.test(t)).map((t) => t.match(/href="\/pkg\/([^"]+)"/)[1]);
  if (path === expHref) {
    // hydrated lazy page is interactive: the run form works and results show
    await p.click('button:has-text("Run over 8 items")');
    await p.waitForSelector('[data-testid="run-summary"]:has-text("0 failed")', { timeout: 60000 });
  }
  if (path === '/admin') {
    await p.fill('input[aria-label="Key name"]', 'agent');
    await p.click('button:has-text("Create key")');
    await p.waitForSelector('[data-testid="new-key"] code');
  }
  const wasm = p.__assets.filter((a) => a.path.endsWith('.wasm'));
  const total = p.__assets.reduce((s, a) => s + (a.bytes || 0), 0);
  const wasmTotal = wasm.reduce((s, a) => s + (a.bytes || 0), 0);
  console.log(`\n${sec()} ${path} -> ${p.url().replace(base, '')}: hydrated; ${p.__assets.length} /pkg files, ${total} B on the wire (wasm ${wasmTotal} B)`);
  for (const a of p.__assets) console.log(`   ${String(a.bytes).padStart(8)} ${a.enc.padEnd(5)} ${a.path} (${a.type})`);
  console.log('   preloads in HTML:', preloads.join(' '));
  await ctx.close();
}
const ctxNav = await browser.newContext({ storageState: state });
page = await newPage(ctxNav);
await page.goto(`${base}/projects`);
await hydrated(page);
// 2. Client-side navigation, non-lazy -> lazy -> lazy -> non-lazy -> lazy, no reloads.
await page.evaluate(() => { window.__noReload = 'yes'; });
const before = page.__assets.length;
await page.click('a:has-text("Demo: entity extraction (simulated)")');
await page.waitForSelector('h1:has-text("Demo: entity extraction (simulated)")');
await page.click('a:has-text("Extract entities")');
await page.waitForSelector('h1:has-text("Extract entities")');
await page.waitForSelector('h2:has-text("Recent runs")');
// the lazily loaded page is interactive: run the simulated experiment through its form
await page.selectOption('select[aria-label="Prompt for stage 1"]', 'terse');
await page.click('button:has-text("Run over 8 items")');
await page.waitForSelector('[data-testid="run-summary"]:has-text("0 failed")', { timeout: 60000 });
await page.waitForSelector('[data-testid="runs"] tbody tr');
await page.click('.crumbs a:has-text("Projects")');
await page.waitForSelector('a:has-text("Demo: entity extraction (simulated)")');
await page.click('nav >> text=Admin');
await page.waitForURL('**/admin');
await page.waitForSelector('[data-testid="stats"]');
await page.fill('input[aria-label="Key name"]', 'agent2');
await page.click('button:has-text("Create key")');
await page.waitForSelector('[data-testid="new-key"] code');
await page.goBack();
await page.waitForSelector('a:has-text("Demo: entity extraction (simulated)")');
assert.equal(await page.evaluate(() => window.__noReload), 'yes', 'client-side navigation did not reload');
console.log(sec(), 'client-side nav OK; assets fetched during it:', page.__assets.slice(before).map((a) => a.path).join(', '));
await page.close();

console.log('\nknown experiment-page hydration problems filtered:', knownExp);
console.log('\nproblems:', problems.length ? '\n' + problems.join('\n') : 'none');
await browser.close();
child.kill('SIGTERM');
rmSync(dataDir, { recursive: true, force: true });
process.exit(problems.length ? 1 : 0);
