// Admin journeys in a real browser: API keys shown once, users, and guest access as an
// anonymous visitor sees it (read-only, then locked out again).
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startServer, startBrowser, newPage, hydrated } from './harness.mjs';

let server, chrome;
before(async () => { server = await startServer(); chrome = await startBrowser(); });
after(async () => { await chrome?.stop(); await server?.stop(); });

async function api(path, { method = 'GET', token, body } = {}) {
  const res = await fetch(`${server.url}${path}`, {
    method,
    headers: { ...(token ? { authorization: `Bearer ${token}` } : {}), ...(body ? { 'content-type': 'application/json' } : {}) },
    body: body ? JSON.stringify(body) : undefined,
  });
  return { status: res.status, body: await res.json().catch(() => null) };
}

test('admin manages keys, users and guest access', async () => {
  const setup = await api('/api/v1/auth/setup', { method: 'POST', body: { username: 'admin', password: 'correct horse battery' } });
  assert.equal(setup.status, 201);
  await api('/api/v1/projects', { method: 'POST', token: setup.body.token, body: { name: 'Shared results' } });

  const { page, problems } = await newPage(chrome.browser);
  await page.goto(`${server.url}/login`);
  await hydrated(page);
  await page.fill('input[name="username"]', 'admin');
  await page.fill('input[name="password"]', 'correct horse battery');
  await page.click('button:has-text("Sign in")');
  await page.waitForURL('**/projects');
  await page.click('nav >> text=Admin');
  await page.waitForURL('**/admin');
  await hydrated(page);
  // The stats reflect the data: one user, one project, SQLite.
  const stats = await page.locator('[data-testid="stats"]').textContent();
  assert.match(stats, /Users1/);
  assert.match(stats, /Projects1/);
  assert.match(stats, /Databasesqlite/);

  // Endpoints: add a simulated one and test it; add a real one whose key never shows again.
  await page.fill('input[aria-label="Endpoint name"]', 'sim two');
  await page.selectOption('select[aria-label="Kind"]', 'simulated');
  await page.click('button:has-text("Add endpoint")');
  const sim = page.locator('tr[data-endpoint="sim two"]');
  await sim.waitFor();
  await sim.locator('button:has-text("Test")').click();
  await sim.locator('.test-result:has-text("ok · 4 models")').waitFor();
  assert.equal(await sim.locator('[data-testid="limits"]').textContent(), 'none');
  // Limits shared by every process: a bad one is named and nothing is added.
  await page.fill('input[aria-label="Endpoint name"]', 'paid');
  await page.selectOption('select[aria-label="Kind"]', 'openai');
  await page.fill('input[aria-label="Base URL"]', 'http://127.0.0.1:9/v1');
  await page.fill('input[aria-label="API key"]', 'sk-browser-secret-abcdef123456');
  await page.fill('input[aria-label^="At most this many calls"]', '4');
  await page.fill('input[aria-label^="Requests per minute"]', 'fast');
  await page.click('button:has-text("Add endpoint")');
  await page.locator('[data-testid="endpoint-form"] .error:has-text("rpm: must be a whole number")').waitFor();
  await page.fill('input[aria-label^="Requests per minute"]', '0');
  await page.click('button:has-text("Add endpoint")');
  await page.locator('[data-testid="endpoint-form"] .error:has-text("rpm: must be between 1 and 1000000")').waitFor();
  assert.equal(await page.locator('tr[data-endpoint="paid"]').count(), 0);
  await page.fill('input[aria-label^="Requests per minute"]', '1,200');
  await page.fill('input[aria-label^="Tokens per minute"]', '40000');
  await page.click('button:has-text("Add endpoint")');
  const paid = page.locator('tr[data-endpoint="paid"]');
  await paid.waitFor();
  assert.equal(await paid.locator('code').textContent(), 'sk-…3456');
  assert.equal(await paid.locator('[data-testid="limits"]').textContent(), '4 at once · 1,200 rpm · 40,000 tpm');
  assert.equal(await page.inputValue('input[aria-label^="Requests per minute"]'), '', 'the form is cleared');
  if (process.env.PL_SHOTS) {
    for (const [w, h] of [[1280, 800], [390, 844]]) {
      await page.setViewportSize({ width: w, height: h });
      await page.locator('[data-testid="endpoint-form"]').scrollIntoViewIfNeeded();
      await page.screenshot({ path: `${process.env.PL_SHOTS}/admin-endpoints-${w}.png` });
    }
    await page.setViewportSize({ width: 1280, height: 800 });
  }
  assert.equal(await page.inputValue('input[aria-label="API key"]'), '', 'the key field is cleared');
  await paid.locator('button:has-text("Test")').click();
  await paid.locator('.test-result:has-text("failed: could not connect")').waitFor();
  await sim.locator('button:has-text("Delete")').click();
  await sim.locator('[role="alertdialog"] button:has-text("Delete")').click();
  await sim.waitFor({ state: 'detached' });
  await page.reload();
  await hydrated(page);
  assert.ok(!(await page.content()).includes('abcdef123456'), 'the endpoint key is never sent back');

  // An API key is shown once and works against the REST API; revoking it asks first.
  await page.fill('input[aria-label="Key name"]', 'agent');
  await page.click('button:has-text("Create key")');
  const key = (await page.locator('[data-testid="new-key"] code').textContent()).trim();
  assert.match(key, /^pl_[0-9a-f]{48}$/);
  assert.equal(await page.inputValue('input[aria-label="Key name"]'), '');
  assert.equal((await api('/api/v1/auth/me', { token: key })).body.via, 'api_key');
  await page.reload();
  await hydrated(page);
  assert.equal(await page.locator(`text=${key}`).count(), 0, 'the key is not shown again');
  await page.click('button:has-text("Revoke")');
  await page.locator('[role="alertdialog"] button:has-text("Revoke")').click();
  await page.waitForSelector('td:has-text("revoked")');
  assert.equal((await api('/api/v1/auth/me', { token: key })).status, 401);

  // Users: add a member; the admin cannot delete themself (no button).
  await page.fill('input[aria-label="Username"]', 'mia');
  await page.fill('input[aria-label="Password"]', 'member password');
  await page.click('button:has-text("Add user")');
  await page.waitForSelector('td:has-text("mia")');
  assert.equal(await page.locator('tr:has(td:text-is("admin")) button:has-text("Delete")').count(), 0);

  // Guest access off: an anonymous visitor is sent to sign in.
  const anon = await chrome.browser.newContext();
  const visitor = await anon.newPage();
  await visitor.goto(`${server.url}/projects`);
  await visitor.waitForURL('**/login');

  // On: the visitor reads projects, with no way to change them.
  await page.check('input[name="allow_guest_access"]');
  await page.click('button:has-text("Save settings")');
  await page.waitForSelector('text=Saved.');
  await visitor.goto(`${server.url}/projects`);
  await visitor.waitForSelector('li[data-project="Shared results"]');
  assert.equal(await visitor.locator('[data-testid="create-project"]').count(), 0);
  assert.equal(await visitor.locator('button:has-text("Delete")').count(), 0);
  assert.equal(await visitor.locator('[data-testid="current-user"]').textContent(), 'guest');
  assert.equal((await api('/api/v1/projects', { method: 'POST', body: { name: 'nope' } })).status, 403);

  // Off again: locked out at once.
  await page.uncheck('input[name="allow_guest_access"]');
  // Wait for the save itself: the unchecked box alone says nothing about the server.
  await Promise.all([
    page.waitForResponse((r) => r.url().includes('/sfn/save_settings') && r.ok()),
    page.click('button:has-text("Save settings")'),
  ]);
  await visitor.goto(`${server.url}/projects`);
  await visitor.waitForURL('**/login');
  assert.equal((await api('/api/v1/projects')).status, 401);

  await anon.close();
  // The two refused endpoints answered 422 (shown in the form); nothing else went wrong.
  assert.deepEqual(problems.filter((p) => !p.includes('status of 422')), [], 'browser reported problems');
  assert.equal(problems.length, 2, 'exactly the two refused endpoints');
  await page.close();
});
