// Boots a real PromptLooper server (fresh DATA_DIR, port 0) and a headless Debian Chromium.
import { spawn } from 'node:child_process';
import { createServer } from 'node:net';
import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { chromium } from 'playwright-core';

/** A TCP port that is free now (for servers that must come back on the same address). */
export async function freePort() {
  const srv = createServer();
  await new Promise((r) => srv.listen(0, '127.0.0.1', r));
  const { port } = srv.address();
  await new Promise((r) => srv.close(r));
  return port;
}

/** Starts `promptlooper serve`. `opts.dataDir` reuses a DATA_DIR (kept on stop). */
export async function startServer(extraEnv = {}, opts = {}) {
  const bin = process.env.PL_BIN;
  const site = process.env.PL_SITE;
  if (!bin || !site) throw new Error('PL_BIN and PL_SITE must name the server binary and the built site');
  const dataDir = opts.dataDir || mkdtempSync(join(tmpdir(), 'pl-browser-'));
  const env = { ...process.env, DATA_DIR: dataDir, PORT: '0', MCP_PORT: '0', HOST: '127.0.0.1', LEPTOS_SITE_ROOT: site,
                RUST_LOG: 'info', SEED_DEMO: 'false', ...extraEnv };
  if (!extraEnv.DATABASE_URL) delete env.DATABASE_URL;
  const child = spawn(bin, ['serve'], {
    env,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let log = '';
  const url = await new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`server did not start:\n${log}`)), 30_000);
    const onData = (chunk) => {
      log += chunk;
      const m = log.match(/listening on (http:\/\/[0-9.:]+)/);
      if (m) { clearTimeout(timer); resolve(m[1]); }
    };
    child.stdout.on('data', onData);
    child.stderr.on('data', onData);
    child.on('exit', (code) => { clearTimeout(timer); reject(new Error(`server exited (${code}):\n${log}`)); });
  });
  const exited = new Promise((r) => child.once('exit', r));
  return {
    url,
    dataDir,
    log: () => log,
    /** Stops the server (SIGTERM; `signal` may say SIGKILL); removes its DATA_DIR unless it was given. */
    async stop(signal = 'SIGTERM') {
      if (child.exitCode === null && child.signalCode === null) child.kill(signal);
      await exited;
      if (!opts.dataDir) rmSync(dataDir, { recursive: true, force: true });
    },
  };
}

export async function startBrowser() {
  // Playwright gives every launch a fresh, empty profile of its own.
  const browser = await chromium.launch({
    executablePath: process.env.CHROMIUM || '/usr/bin/chromium',
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--disable-background-networking',
           '--disable-component-update', '--disable-sync', '--no-first-run'],
  });
  return {
    browser,
    async stop() {
      await browser.close();
    },
  };
}

/** A page that records console errors and failed requests, for assertions. */
export async function newPage(browser) {
  const page = await browser.newPage();
  const problems = [];
  page.__console = [];
  page.on('console', (m) => {
    page.__console.push(`${m.type()}: ${m.text()}`);
    if (m.type() === 'error') problems.push(`console: ${m.text()}`);
  });
  page.on('pageerror', (e) => problems.push(`pageerror: ${e.message}`));
  page.on('requestfailed', (r) => {
    // A live stream closed by leaving its page is aborted on purpose.
    if (r.url().includes('/events/stream') && r.failure()?.errorText === 'net::ERR_ABORTED') return;
    problems.push(`requestfailed: ${r.url()} ${r.failure()?.errorText}`);
  });
  return { page, problems };
}

/** Waits until the WASM bundle has hydrated the page. */
export async function hydrated(page) {
  try {
    // Generous: a debug WASM bundle (15 MB) compiles slowly on a busy 2-core machine.
    await page.waitForSelector('body[data-hydrated="true"]', { timeout: 60_000 });
  } catch (e) {
    // Say why: the page's console (a hydration panic shows there) and what loaded.
    throw new Error(`${e.message}\nconsole:\n${(page.__console || []).slice(-20).join('\n')}\nurl: ${page.url()}`);
  }
}

/** First boot: creates the admin through the setup page (ends on /projects, hydrated). */
export async function signUp(page, url, password = 'correct horse battery') {
  await page.goto(`${url}/setup`);
  await hydrated(page);
  await page.fill('input[name="password"]', password);
  await page.fill('input[name="confirm"]', password);
  await page.click('button:has-text("Create admin")');
  await page.waitForURL('**/projects');
  await hydrated(page);
}

/** A REST call with the page's session (its cookies); returns the JSON body, failing on non-2xx. */
export async function api(page, method, path, body) {
  const base = new URL(page.url()).origin;
  const res = await page.request.fetch(`${base}${path}`, { method, data: body });
  const text = await res.text();
  if (!res.ok()) throw new Error(`${method} ${path}: ${res.status()} ${text}`);
  return text ? JSON.parse(text) : null;
}

/** Saves a screenshot under $PL_ARTIFACTS (default tests/browser/artifacts) as <name>.png. */
export async function artifact(page, name) {
  const dir = process.env.PL_ARTIFACTS || new URL('./artifacts/', import.meta.url).pathname;
  mkdirSync(dir, { recursive: true });
  await page.screenshot({ path: join(dir, `${name}.png`), fullPage: true });
}

const AXE = createRequire(import.meta.url).resolve('axe-core');

/** Runs axe-core on the page; returns its serious and critical violations, described. */
export async function axe(page) {
  await page.addScriptTag({ path: AXE });
  const result = await page.evaluate(() => window.axe.run(document, { resultTypes: ['violations'] }));
  return result.violations
    .filter((v) => v.impact === 'serious' || v.impact === 'critical')
    .map((v) => `${v.id} (${v.impact}): ${v.help} — ${v.nodes.slice(0, 3).map((n) => n.target.join(' ')).join(' | ')}`);
}
