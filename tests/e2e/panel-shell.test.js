// The panel shell and its config pages in a real browser against the real binary: sign-in
// (a wrong key shows the server's message), the "management disabled" screen, every page at
// 1280 px and at 390 px (the navigation collapses), the dark theme, a config.yaml edit with an
// invalid value refused and the file unchanged, a setting toggled, an AI-provider entry added
// and removed, a model rule, and the Clients page.
//
// Run: cargo build -p switchyard -p switchyard-testkit --bins && cd tests/e2e && node --test panel*.test.js

import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';

import { e2e, eventually, freePort } from './harness.js';
import { ConsoleWatch, claudeCredential, listed, openPage, panelPage, shot, signIn, startStack, writeAuthFile } from './panel-harness.js';

const PAGES = ['dashboard', 'monitoring', 'quota', 'inspection', 'providers', 'oauth', 'auth-files', 'ai-providers', 'model-rules', 'config', 'clients'];

e2e('panel: a wrong key shows the server\'s message; the right one opens every page, at 1280 px and 390 px', async (h) => {
  await startStack(h, ['api-keys:', '  - client-key-1']);
  writeAuthFile(h, 'claude-shots@example.com.json', claudeCredential('shots@example.com'));
  await listed(h, ['claude-shots@example.com.json']);
  const page = await panelPage(h);
  await page.goto(`${h.base}/`);
  await page.locator('#management-key').waitFor();
  await shot(page, 'sign-in');
  h.consoleWatch.allow(/\/v0\/management\/config/);
  await page.locator('#management-key').fill('not-the-key');
  await page.locator('#login-submit').click();
  await page.locator('#login-form .error-box').filter({ hasText: 'invalid management key' }).waitFor();
  await shot(page, 'sign-in-wrong-key');
  assert.equal(await page.evaluate(() => sessionStorage.length), 0, 'a refused key is not kept');
  assert.ok(!page.url().includes('not-the-key'));

  await page.locator('#management-key').fill(h.managementKey);
  await page.locator('#login-submit').click();
  await page.locator('#nav').waitFor();
  assert.ok(!page.url().includes(h.managementKey), 'the key never goes into a URL');
  assert.equal(await page.evaluate(() => localStorage.getItem('switchyard.managementKey')), null);
  for (const id of PAGES) {
    await openPage(page, id);
    await shot(page, `page-${id}`);
  }
  // A reload keeps the session (sessionStorage) and the page.
  await page.reload();
  await page.locator('#page-clients').waitFor();

  // Dark theme.
  await page.locator('#theme-toggle').click(); // light
  await page.locator('#theme-toggle').click(); // dark
  assert.equal(await page.evaluate(() => document.documentElement.dataset.theme), 'dark');
  const background = await page.evaluate(() => getComputedStyle(document.body).backgroundColor);
  assert.equal(background, 'rgb(17, 20, 24)');
  await openPage(page, 'providers');
  await shot(page, 'page-providers-dark');
  await page.locator('#theme-toggle').click(); // auto

  // Phone width: the navigation collapses behind the menu button.
  await page.setViewportSize({ width: 390, height: 844 });
  assert.equal(await page.locator('#nav').isVisible(), false);
  for (const id of PAGES) {
    await page.locator('#menu-toggle').click();
    await page.locator(`#nav a.nav[data-page="${id}"]`).click();
    await page.locator(`#page-${id}`).waitFor();
    await eventually(`page ${id} to load`, async () => (await page.locator(`#page-${id} .progress`).count()) === 0);
    assert.equal(await page.locator('#nav').isVisible(), false, 'the menu closes on navigation');
    const overflow = await page.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
    assert.ok(overflow <= 1, `page ${id} fits 390 px (overflow ${overflow})`);
    await shot(page, `narrow-${id}`);
  }

  // Sign out forgets the key.
  await page.setViewportSize({ width: 1280, height: 900 });
  await page.locator('#logout').click();
  await page.locator('#management-key').waitFor();
  assert.equal(await page.evaluate(() => sessionStorage.getItem('switchyard.managementKey')), null);
  h.consoleWatch.check();
}, { timeout: 180_000 });

e2e('panel: a server without a management key shows "management disabled"', async (h) => {
  h.port = await freePort();
  h.configPath = path.join(h.dir, 'config.yaml');
  fs.mkdirSync(h.authDir, { recursive: true });
  fs.writeFileSync(h.configPath, `host: 127.0.0.1\nport: ${h.port}\nauth-dir: ${JSON.stringify(h.authDir)}\n`);
  await h.launchSwitchyard();
  const page = await h.newPage();
  const watch = new ConsoleWatch(h.base);
  watch.attach(page);
  watch.allow(/\/v0\/management\/config/);
  await page.goto(`${h.base}/management.html`);
  await page.locator('#management-key').fill('anything');
  await page.locator('#login-submit').click();
  await page.locator('#gate-disabled').waitFor();
  assert.match(await page.locator('.gate-box').innerText(), /secret-key/);
  await shot(page, 'gate-management-disabled');
  watch.check();
}, { timeout: 60_000 });

e2e('panel: Config refuses an invalid config.yaml with its line and leaves the file unchanged; settings, AI providers, rules and clients write the file', async (h) => {
  await startStack(h, ['request-retry: 2', '# a comment the panel must keep']);
  const page = await signIn(h, await panelPage(h), { hash: '#/config' });
  await openPage(page, 'config');
  const editor = page.locator('#config-yaml');
  await eventually('the editor to hold config.yaml', async () => (await editor.inputValue()).includes('request-retry: 2'));
  const before = fs.readFileSync(h.configPath);

  h.consoleWatch.allow(/\/v0\/management\/config\.yaml/);
  const text = await editor.inputValue();
  await editor.fill(text.replace('request-retry: 2', 'request-retry: lots'));
  await page.locator('#config-save').click();
  const error = page.locator('#config-status .config-error');
  await error.waitFor();
  const line = text.split('\n').findIndex((l) => l.startsWith('request-retry:')) + 1;
  assert.match(await error.innerText(), new RegExp(`Line ${line}:`));
  assert.match(await error.innerText(), /request-retry/);
  await shot(page, 'config-invalid');
  assert.deepEqual(fs.readFileSync(h.configPath), before, 'a refused config.yaml leaves the file as it was');

  // A valid edit goes in, comments kept.
  await editor.fill(text.replace('request-retry: 2', 'request-retry: 4'));
  await page.locator('#config-save').click();
  await page.locator('#config-status .ok-box').waitFor();
  let saved = fs.readFileSync(h.configPath, 'utf8');
  assert.match(saved, /^request-retry: 4$/m);
  assert.match(saved, /# a comment the panel must keep/);

  // A toggle of the common settings, written into the file.
  await page.locator('input[data-route="/debug"]').check();
  await eventually('debug: true in the file', () => /^debug: true$/m.test(fs.readFileSync(h.configPath, 'utf8')));
  await page.locator('select[data-route="/routing/strategy"]').selectOption('fill-first');
  await eventually('the strategy in the file', () => /strategy: fill-first/.test(fs.readFileSync(h.configPath, 'utf8')));

  // AI Providers: a Claude key entry added, then removed.
  await openPage(page, 'ai-providers');
  await page.locator('#ai-add').click();
  await page.locator('dialog input[name="api-key"]').fill('sk-ant-e2e-key-0001');
  await page.locator('dialog input[name="prefix"]').fill('team');
  await page.locator('dialog textarea[name="models"]').fill('claude-sonnet-4-5 = sonnet');
  await shot(page, 'ai-provider-edit');
  await page.locator('#ai-save').click();
  await eventually('the key in config.yaml', () => fs.readFileSync(h.configPath, 'utf8').includes('sk-ant-e2e-key-0001'));
  saved = fs.readFileSync(h.configPath, 'utf8');
  assert.match(saved, /claude-api-key:/);
  assert.match(saved, /alias: sonnet/);
  await page.locator('#page-ai-providers tr[data-index="0"]').waitFor();
  assert.ok(!(await page.locator('#page-ai-providers').innerText()).includes('sk-ant-e2e-key-0001'), 'the key is masked in the table');
  await shot(page, 'ai-providers');
  await page.locator('#page-ai-providers tr[data-index="0"] button.delete').click();
  await page.locator('dialog button[data-confirm]').click();
  await eventually('the key gone from config.yaml', () => !fs.readFileSync(h.configPath, 'utf8').includes('sk-ant-e2e-key-0001'));

  // Model rules: an excluded-models pattern for a channel.
  await openPage(page, 'model-rules');
  const fresh = page.locator('#page-model-rules .rule[data-channel=""]').first();
  await fresh.locator('input').first().fill('claude');
  await fresh.locator('textarea').fill('claude-3-*');
  await fresh.locator('button.primary').click();
  await eventually('the rule in config.yaml', () => /oauth-excluded-models:\s*\n\s+claude:\s*\n\s+- claude-3-\*/.test(fs.readFileSync(h.configPath, 'utf8')));
  await shot(page, 'model-rules');

  // Clients: the snippets carry this server's base URL.
  await openPage(page, 'clients');
  const claude = await page.locator('.client[data-client="claude"] pre').first().innerText();
  assert.equal(JSON.parse(claude).env.ANTHROPIC_BASE_URL, h.base);
  assert.match(await page.locator('.client[data-client="codex"] pre').first().innerText(), new RegExp(`base_url = "${h.base}/v1"`));
  h.consoleWatch.check();
}, { timeout: 120_000 });
