// Webhooks on the admin page, in a real browser, delivering to a receiver this test runs: add
// one (its secret shown once, its header value never), send a test, see an event's delivery
// in the list, turn it off; axe and screenshots at both widths.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { createServer } from 'node:http';
import { startServer, startBrowser, newPage, hydrated, signUp, api, artifact, axe } from './harness.mjs';

let server, chrome, receiver;
const got = [];
before(async () => {
  server = await startServer();
  chrome = await startBrowser();
  receiver = createServer((req, res) => {
    let body = '';
    req.on('data', (c) => { body += c; });
    req.on('end', () => {
      got.push({ headers: req.headers, body: JSON.parse(body) });
      res.writeHead(200, { 'content-type': 'text/plain' });
      res.end('ok');
    });
  });
  await new Promise((r) => receiver.listen(0, '127.0.0.1', r));
});
after(async () => {
  await chrome?.stop();
  await server?.stop();
  receiver?.close();
});

async function until(what, check) {
  const deadline = Date.now() + 30_000;
  for (;;) {
    const v = await check();
    if (v) return v;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

test('an admin adds a webhook, tests it and sees its deliveries', async () => {
  const { page, problems } = await newPage(chrome.browser);
  await signUp(page, server.url);
  const hookUrl = `http://127.0.0.1:${receiver.address().port}/hooks/promptlooper`;
  await page.goto(`${server.url}/admin`);
  await hydrated(page);
  const card = page.locator('[data-testid="webhooks"]');
  await card.locator('text=No webhooks yet.').waitFor();

  // A private address is refused until an admin allows private targets.
  const form = card.locator('[data-testid="webhook-form"]');
  await form.locator('[data-field="name"]').fill('ci');
  await form.locator('[data-field="url"]').fill(hookUrl);
  await form.locator('input[data-event="human_needed"]').check();
  await form.locator('input[data-event="experiment.completed"]').check();
  await form.locator('[data-field="header_name"]').fill('X-Token');
  await form.locator('[data-field="header_value"]').fill('tok-browser-secret-header');
  await form.locator('button:has-text("Add webhook")').click();
  await form.locator('[role="alert"]:has-text("url")').waitFor();
  assert.equal(await card.locator('[data-testid="webhook"]').count(), 0);

  await page.check('input[name="allow_private_webhook_targets"]');
  await Promise.all([
    page.waitForResponse((r) => r.url().includes('/sfn/save_settings') && r.ok()),
    page.click('button:has-text("Save settings")'),
  ]);
  await form.locator('button:has-text("Add webhook")').click();
  const secret = (await card.locator('[data-testid="webhook-secret"] code').textContent()).trim();
  assert.match(secret, /^whsec_[A-Za-z0-9+/=]{32}$/);
  const row = card.locator('[data-testid="webhook"]');
  await row.waitFor();
  assert.match(await row.textContent(), /human_needed, experiment\.completed|experiment\.completed, human_needed/);
  assert.match(await row.textContent(), /X-Token \(values hidden\)/);
  assert.equal(await form.locator('[data-field="name"]').inputValue(), '', 'the form is cleared');

  // A test send reaches the receiver, signed.
  await row.locator('[data-testid="webhook-test"]').click();
  await card.locator('[data-testid="webhook-test-result"]:has-text("Test delivered: 200")').waitFor();
  const t = await until('the test delivery', () => got.find((g) => g.body.type === 'webhook.test'));
  assert.match(t.headers['webhook-signature'], /^v1,/);
  assert.equal(t.headers['x-token'], 'tok-browser-secret-header');

  // An event it subscribes to is delivered and listed.
  const project = await api(page, 'POST', '/api/v1/projects', { name: 'hooks' });
  const endpoint = await api(page, 'POST', '/api/v1/endpoints', { name: 'sim', kind: 'simulated' });
  const experiment = await api(page, 'POST', '/api/v1/experiments', {
    project_id: project.id, name: 'e', sample_data: [{ input: { text: 'x' } }],
    pipeline_stages: [{ name: 's', endpoint_id: endpoint.id, model: 'sim-small', user: '{{ input.text }}' }],
  });
  await api(page, 'POST', `/api/v1/experiments/${experiment.id}/human-needed`, { reason: 'Pick the winner, please.' });
  const h = await until('the human_needed delivery', () => got.find((g) => g.body.type === 'human_needed'));
  assert.equal(h.body.data.reason, 'Pick the winner, please.');
  await page.reload();
  await hydrated(page);
  const delivered = card.locator('[data-testid="delivery"][data-status="delivered"]:has-text("human_needed")');
  await delivered.waitFor();
  assert.ok(!(await page.content()).includes('tok-browser-secret-header'), 'the header value is never sent back');
  assert.ok(!(await page.content()).includes(secret), 'the secret is shown once');

  await row.scrollIntoViewIfNeeded();
  await artifact(page, 'admin-webhooks-1280');
  await page.setViewportSize({ width: 390, height: 844 });
  await artifact(page, 'admin-webhooks-390');
  const overflow = await page.evaluate(() => document.documentElement.scrollWidth > window.innerWidth + 1);
  assert.equal(overflow, false, 'no sideways scroll at 390 px');
  assert.deepEqual(await axe(page), [], 'axe: no serious or critical violations');
  await page.setViewportSize({ width: 1280, height: 800 });

  // Off: it says so, and nothing more is queued for it.
  await row.locator('button:has-text("Turn off")').click();
  await row.locator('[data-testid="webhook-state"]:has-text("off")').waitFor();
  const before = got.length;
  await api(page, 'POST', `/api/v1/experiments/${experiment.id}/human-needed`, { reason: 'again' });
  await new Promise((r) => setTimeout(r, 1500));
  assert.equal(got.length, before);

  // The one refusal above (a private URL) is the only problem.
  assert.deepEqual(problems, [
    'console: Failed to load resource: the server responded with a status of 422 (Unprocessable Entity)',
  ]);
  await page.close();
});
