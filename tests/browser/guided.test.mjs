// A guided sweep as a person runs it: choose "guided" in the builder's launch panel with a
// calls budget and a prompt proposer, preview it (an estimate within the budget), start it,
// and watch the live view's search card and the "Guided search" timeline until it ends.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startServer, startBrowser, newPage, hydrated, signUp, api, artifact, axe } from './harness.mjs';

let server, chrome;
before(async () => { server = await startServer(); chrome = await startBrowser(); });
after(async () => { await chrome?.stop(); await server?.stop(); });

const TEXTS = [
  'Ada Lovelace met Charles Babbage in London.', 'Grace Hopper built COBOL at Remington Rand.',
  'Alan Turing worked at Bletchley Park.', 'Katherine Johnson computed orbits for NASA.',
  'Tim Berners-Lee proposed the Web at CERN.', 'Margaret Hamilton led software for Apollo.',
  'Linus Torvalds released Linux in Helsinki.', 'Barbara Liskov taught at MIT.',
];

test('a guided sweep is launched from the builder and its search shows live', async () => {
  const { page, problems } = await newPage(chrome.browser);
  await page.setViewportSize({ width: 1280, height: 800 });
  await signUp(page, server.url);
  const endpoint = await api(page, 'POST', '/api/v1/endpoints', { name: 'Sim', kind: 'simulated' });
  const project = await api(page, 'POST', '/api/v1/projects', { name: 'Guided' });
  const ideal = (t) => [...new Set(t.match(/\b[A-Z0-9][A-Za-z0-9-]*/g))].join(', ');
  const experiment = await api(page, 'POST', '/api/v1/experiments', {
    project_id: project.id, name: 'Names',
    sample_data: TEXTS.map((t) => ({ input: { text: t }, reference: ideal(t) })),
    pipeline_stages: [{ name: 'extract', endpoint_id: endpoint.id, model: 'sim-medium',
      system: 'List the names.', user: '{{ input.text }}' }],
    parameter_space: { stages: [{
      prompts: [{ name: 'plain', system: 'List the names.' }, { name: 'think', system: 'Think, then list the names.' },
                { name: 'only', system: 'Return only the names.' }],
      models: [{ model: 'sim-large' }, { model: 'sim-medium' }, { model: 'sim-small' }],
      params: { temperature: [0.1, 0.3, 0.5, 0.7, 0.9] } }] },
    scoring_config: [{ kind: 'lexical_similarity', name: 'f1' }],
  });

  await page.goto(`${server.url}/experiments/${experiment.id}/edit#launch`);
  await hydrated(page);
  await page.selectOption('.launch select[data-field="strategy"]', 'guided');
  await page.waitForSelector('select[data-field="strategy.search"]');
  await page.fill('input[data-field="strategy.seed"]', '5');
  await page.fill('input[data-field="budget.max_calls"]', '120');
  await page.selectOption('select[data-field="strategy.proposer.endpoint_id"]', { label: 'Sim' });
  // A proposer without a model is refused at its field.
  await page.click('[data-testid="preview"]');
  await page.waitForSelector('.launch :text("which model writes the prompts")');
  await page.fill('input[data-field="strategy.proposer.model"]', 'sim-large');
  await page.click('[data-testid="preview"]');
  const note = await page.locator('[data-testid="preview-note"]').textContent();
  assert.match(note, /decides as it goes/, note);
  assert.match(note, /120 LLM calls/, note);
  const preview = await page.locator('[data-testid="preview-result"]').textContent();
  assert.match(preview, /Configurations in the space45/, preview);
  assert.match(preview, /Budget: LLM calls120/, preview);
  assert.match(preview, /Configurations \(estimate\)About \d+/, preview);
  await artifact(page, 'builder-guided-1280');
  assert.deepEqual(await axe(page), []);
  await page.setViewportSize({ width: 390, height: 844 });
  await page.waitForTimeout(200);
  const wide = await page.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
  assert.ok(wide <= 1, `the builder fits 390 px: ${wide}`);
  await artifact(page, 'builder-guided-390');
  await page.setViewportSize({ width: 1280, height: 800 });
  await page.click('[data-testid="start"]');
  await page.waitForURL(`**/experiments/${experiment.id}/live`);
  await hydrated(page);

  // The search card fills in as rounds go by, and the sweep ends within its budget.
  await page.waitForSelector('[data-testid="guide"]');
  await page.waitForSelector('[data-testid="sweep-status"]:has-text("completed")', { timeout: 60_000 });
  await page.waitForSelector('[data-testid="guide-ending"]:has-text("Ended:")');
  const sweep = await api(page, 'GET', `/api/v1/experiments/${experiment.id}/sweep`);
  assert.ok(sweep.progress.calls <= 120, `${sweep.progress.calls}`);
  const tried = await page.locator('[data-testid="guide-tried"]').textContent();
  assert.equal(Number(tried), sweep.guide.configurations.length);
  const pruned = await page.locator('[data-testid="guide-pruned"]').textContent();
  assert.equal(Number(pruned), sweep.guide.configurations.filter((c) => c.state === 'pruned').length);
  const calls = await page.locator('[data-testid="guide-calls"]').textContent();
  assert.equal(calls, `${sweep.progress.calls} of 120`);
  // Proposed prompts show with where they came from.
  if (sweep.guide.proposals.length) {
    const proposals = await page.locator('[data-testid="guide-proposals"]').textContent();
    assert.match(proposals, new RegExp(`${sweep.guide.proposals[0].name} — by sim-large in round \\d+`), proposals);
  }
  // The timeline's guided filter shows rounds and pruning with their numbers.
  await page.selectOption('[data-testid="timeline-filter"]', 'guided');
  await page.waitForSelector('[data-testid="timeline"] li[data-type="sweep.round"]');
  if (sweep.guide.configurations.some((c) => c.state === 'pruned')) {
    const line = await page.locator('[data-testid="timeline"] li[data-type="configuration.pruned"]').first().textContent();
    assert.match(line, /Pruned .+: (UCB \d\.\d\d < leader LCB \d\.\d\d after \d+\/8 items|.+)/, line);
  }
  await artifact(page, 'live-guided-1280');
  assert.deepEqual(await axe(page), []);
  await page.setViewportSize({ width: 390, height: 844 });
  await page.waitForTimeout(200);
  const overflow = await page.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
  assert.ok(overflow <= 1, `no sideways scroll at 390 px: ${overflow}`);
  await artifact(page, 'live-guided-390');
  assert.deepEqual(problems, []);
});
