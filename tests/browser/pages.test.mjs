// Every page, as a person sees it: at 1280×800 and 390×844, hydrated, with 0 serious or critical
// axe-core violations, no sideways scrolling on a phone, and a screenshot kept as an artifact.
// Then the same pages as an anonymous guest: read-only (no write control offered), and nothing
// written (writes are refused by the server too).
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startServer, startBrowser, newPage, hydrated, signUp, api, artifact, axe } from './harness.mjs';

const SIZES = [[1280, 800], [390, 844]];

let server, chrome;
before(async () => { server = await startServer({ SEED_DEMO: 'true' }); chrome = await startBrowser(); });
after(async () => { await chrome?.stop(); await server?.stop(); });

/** A browser context per size, reused page after page (the WASM compiles once per context). */
async function contexts(browser, storageState) {
  return Promise.all(SIZES.map(([width, height]) => browser.newContext({ viewport: { width, height }, storageState })));
}

/** Visits `path` in each context: hydrated, `ready` shown, axe clean, no sideways scroll, screenshot. */
async function check(contexts, name, path, ready) {
  const failures = [];
  for (const context of contexts) {
    const width = context._options.viewport.width;
    const page = await context.newPage();
    const errors = [];
    page.__console = [];
    page.on('console', (m) => { page.__console.push(`${m.type()}: ${m.text()}`); if (m.type() === 'error') errors.push(m.text()); });
    page.on('pageerror', (e) => errors.push(e.message));
    await page.goto(`${server.url}${path}`);
    await hydrated(page);
    await page.waitForSelector(ready, { timeout: 30_000 });
    await page.waitForTimeout(300);
    for (const v of await axe(page)) failures.push(`${name} @${width}: ${v}`);
    const overflow = await page.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
    if (overflow > 1) failures.push(`${name} @${width}: the page scrolls sideways by ${overflow}px`);
    for (const e of errors) {
      // The not-found page answers 404 on purpose.
      if (!(name.endsWith('not-found') && e.includes('status of 404'))) failures.push(`${name} @${width}: page error ${e}`);
    }
    await artifact(page, `${name}-${width}`);
    await page.close();
  }
  return failures;
}

/** Write controls: none may show for a guest. */
const WRITE_CONTROLS = [
  '[data-testid="create-project"]', 'a:has-text("New experiment")', 'a:has-text("Edit")', 'a:has-text("Sweep…")',
  '[data-testid="run-form"]', '[data-testid="save"]', '[data-testid="preview"]', '[data-testid="start"]',
  '[data-testid="steering"]', '[data-testid="pause"]', '[data-testid="resume"]', 'button:has-text("Approve")',
  'button:has-text("Reject")', 'button:has-text("Fork")', 'button[aria-label="Thumbs up"]', 'button:has-text("Rename")',
  'button:has-text("Delete")', 'textarea', 'input:not([type="hidden"]):not([data-read])', '[data-testid="rate-form"]',
  '[data-testid="run-actions"]', '[data-testid="judge"]',
];

test('every page is accessible, fits a phone, and is read-only for guests', async () => {
  const { page, problems } = await newPage(chrome.browser);
  const anonymous = await contexts(chrome.browser);
  const setupFailures = await check(anonymous, 'setup', '/setup', 'button:has-text("Create admin")');
  await signUp(page, server.url);
  const storage = await page.context().storageState();
  const project = (await api(page, 'GET', '/api/v1/projects')).find((p) => p.name.startsWith('Demo'));
  const experiment = (await api(page, 'GET', '/api/v1/experiments'))[0];
  // Content on every page: a finished random sweep of the demo, so the leaderboard and timeline fill.
  await api(page, 'POST', `/api/v1/experiments/${experiment.id}/sweep`, { strategy: { kind: 'random', samples: 4, seed: 7 } });
  await page.goto(`${server.url}/experiments/${experiment.id}/live`);
  await page.waitForSelector('[data-testid="sweep-status"]:has-text("completed")', { timeout: 60_000 });

  // A run, two runs of one item, and the two best configurations, for the run and compare pages.
  const runs = (await api(page, 'GET', `/api/v1/experiments/${experiment.id}/runs?sort=item&limit=2`)).runs;
  const board = await api(page, 'GET', `/api/v1/experiments/${experiment.id}/leaderboard`);
  const [ka, kb] = board.entries.map((e) => e.config_key);
  const compare = `/experiments/${experiment.id}/compare`;
  const pages = [
    ['home', '/', '[data-testid="totals"]'],
    ['projects', '/projects', 'li.project-row'],
    ['project', `/projects/${project.id}`, 'h2:has-text("Experiments")'],
    ['builder-new', `/projects/${project.id}/experiments/new`, '[data-testid="save"]'],
    ['experiment', `/experiments/${experiment.id}`, '[data-testid="leaderboard-row"]'],
    ['builder-edit', `/experiments/${experiment.id}/edit`, '[data-testid="preview"]'],
    ['live', `/experiments/${experiment.id}/live`, '[data-testid="leaderboard-row"]'],
    ['run', `/runs/${runs[0].id}`, '[data-testid="same-item"] tbody tr'],
    ['compare-runs', `${compare}?a=${runs[0].id}&b=${runs[1].id}`, '[data-testid="diff"]'],
    ['compare-configs', `${compare}?a=${ka}&b=${kb}`, '[data-testid="pair"]'],
    ['compare-pick', compare, '[data-testid="pick-configs"]'],
    ['admin', '/admin', 'h2:has-text("Settings")'],
    ['not-found', '/no/such/page', 'h1'],
  ];
  const failures = [...setupFailures];
  const admin = await contexts(chrome.browser, storage);
  for (const [name, path, ready] of pages) {
    failures.push(...await check(admin, name, path, ready));
  }
  failures.push(...await check(anonymous, 'login', '/login', 'button:has-text("Sign in")'));

  // Guests: the admin lets anonymous visitors read.
  await api(page, 'PUT', '/api/v1/admin/settings', { allow_guest_access: true });
  const counts = async () => {
    const s = await api(page, 'GET', '/api/v1/admin/stats');
    return [s.users, s.projects, s.experiments, s.runs.total];
  };
  const before = await counts();
  const guestPages = pages.filter(([name]) => name !== 'admin' && name !== 'builder-new' && name !== 'builder-edit');
  guestPages.push(['guest-builder', `/experiments/${experiment.id}/edit`, 'p:has-text("Guests can read experiments")']);
  for (const [name, path, ready] of guestPages) {
    const label = name.startsWith('guest-') ? name : `guest-${name}`;
    failures.push(...await check(anonymous, label, path, ready));
    const guest = await anonymous[0].newPage();
    await guest.goto(`${server.url}${path}`);
    await hydrated(guest);
    await guest.waitForSelector(ready);
    await guest.waitForTimeout(300);
    for (const selector of WRITE_CONTROLS) {
      const shown = await guest.locator(selector).count();
      if (shown) failures.push(`guest ${path}: write control ${selector} shown (${shown})`);
    }
    if (name === 'live') {
      // A write is refused server-side too.
      const status = await guest.evaluate(async (id) =>
        (await fetch(`/api/v1/experiments/${id}/pause`, { method: 'POST' })).status, experiment.id);
      assert.equal(status, 403);
    }
    await guest.close();
  }
  assert.deepEqual(await counts(), before, 'the guest walk wrote something');

  for (const c of [...admin, ...anonymous]) await c.close();
  assert.deepEqual(failures, []);
  assert.deepEqual(problems, []);
  await page.close();
});
