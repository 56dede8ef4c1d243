// The first-run journey in a real browser: setup, sign out, sign in, then create, rename and
// delete projects through hydrated components (server functions, no page reloads).
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startServer, startBrowser, newPage, hydrated } from './harness.mjs';

let server, chrome;
before(async () => { server = await startServer(); chrome = await startBrowser(); });
after(async () => { await chrome?.stop(); await server?.stop(); });

test('setup, login and project management work after hydration', async () => {
  const { page, problems } = await newPage(chrome.browser);

  // First boot: every page leads to setup.
  await page.goto(`${server.url}/projects`);
  await page.waitForURL('**/setup');
  await hydrated(page);
  await page.fill('input[name="username"]', 'admin');
  await page.fill('input[name="password"]', 'correct horse battery');
  await page.fill('input[name="confirm"]', 'correct horse batterY');
  await page.click('button:has-text("Create admin")');
  await page.waitForSelector('[role="alert"]:has-text("confirm: the passwords do not match")');
  await page.fill('input[name="confirm"]', 'correct horse battery');
  await page.click('button:has-text("Create admin")');
  await page.waitForURL('**/projects');
  await page.waitForSelector('[data-testid="current-user"]:has-text("admin")');
  await page.waitForSelector('text=No projects yet');

  // Setup is done: the setup page now sends visitors on.
  // Sign out, then back in (a wrong password first).
  await hydrated(page);
  await page.click('button:has-text("Sign out")');
  await page.waitForURL('**/login');
  await hydrated(page);
  await page.fill('input[name="username"]', 'admin');
  await page.fill('input[name="password"]', 'wrong password');
  await page.click('button:has-text("Sign in")');
  await page.waitForSelector('[role="alert"]:has-text("invalid username or password")');
  await page.fill('input[name="password"]', 'correct horse battery');
  await page.click('button:has-text("Sign in")');
  await page.waitForURL('**/projects');
  await hydrated(page);

  // From here on nothing may reload the page: a marker set now must survive.
  await page.evaluate(() => { window.__noReload = 'still here'; });

  await page.fill('[data-testid="create-project"] input[name="name"]', 'Alpha extraction');
  await page.fill('[data-testid="create-project"] input[name="description"]', 'tuning the extractor');
  await page.click('button:has-text("Create project")');
  await page.waitForSelector('li[data-project="Alpha extraction"]');
  assert.equal(await page.inputValue('[data-testid="create-project"] input[name="name"]'), '', 'the form is cleared after creating');
  await page.fill('[data-testid="create-project"] input[name="name"]', 'Beta summaries');
  await page.click('button:has-text("Create project")');
  await page.waitForSelector('li[data-project="Beta summaries"]');

  // A duplicate name is refused, naming the field.
  await page.fill('[data-testid="create-project"] input[name="name"]', 'Alpha extraction');
  await page.click('button:has-text("Create project")');
  await page.waitForSelector('[role="alert"]:has-text("name: a project with this name already exists")');

  // Rename.
  const alpha = page.locator('li[data-project="Alpha extraction"]');
  await alpha.locator('button:has-text("Rename")').click();
  const input = page.locator('input[aria-label="New name"]');
  await input.fill('Alpha v2');
  await page.click('button:has-text("Save")');
  await page.waitForSelector('li[data-project="Alpha v2"]');
  assert.equal(await page.locator('li[data-project="Alpha extraction"]').count(), 0);

  // Delete asks first; Cancel keeps the project, Delete removes it.
  const beta = page.locator('li[data-project="Beta summaries"]');
  await beta.locator('button:has-text("Delete")').click();
  await page.waitForSelector('[role="alertdialog"]:has-text("Delete “Beta summaries”")');
  await beta.locator('button:has-text("Cancel")').click();
  assert.equal(await page.locator('li[data-project="Beta summaries"]').count(), 1);
  await beta.locator('button:has-text("Delete")').click();
  await beta.locator('[role="alertdialog"] button:has-text("Delete")').click();
  await page.waitForSelector('li[data-project="Beta summaries"]', { state: 'detached' });

  assert.equal(await page.evaluate(() => window.__noReload), 'still here', 'the page reloaded');
  assert.deepEqual(await page.locator('li.project-row').evaluateAll((els) => els.map((e) => e.dataset.project)), ['Alpha v2']);

  // The server agrees: a full reload shows the same list.
  await page.reload();
  await page.waitForSelector('li[data-project="Alpha v2"]');
  assert.equal(await page.locator('li.project-row').count(), 1);

  // The refusals above (password mismatch: 422, wrong password: 401, duplicate name: 409) are
  // the only failed loads.
  assert.deepEqual(problems, [
    'console: Failed to load resource: the server responded with a status of 422 (Unprocessable Entity)',
    'console: Failed to load resource: the server responded with a status of 401 (Unauthorized)',
    'console: Failed to load resource: the server responded with a status of 409 (Conflict)',
  ], 'browser reported problems');
  await page.close();
});
