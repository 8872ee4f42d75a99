// The panel's OAuth Login page in a real browser against the real binary and the loopback
// mock providers of switchyard-mock: a Claude browser login with consent in the second tab
// (local and remote/pasted paths, a wrong-state and a partial paste), a Kimi device login,
// a Vertex service-account import, re-login from the Providers page, and the Chinese locale.
//
// Run: cargo build -p switchyard -p switchyard-testkit --bins && cd tests/e2e && node --test panel*.test.js

import assert from 'node:assert/strict';
import { generateKeyPairSync } from 'node:crypto';
import * as fs from 'node:fs';

import { e2e, eventually } from './harness.js';
import { CLAUDE_EMAIL, CLAUDE_FILE, openPage, panelPage, shot, signIn, startStack } from './panel-harness.js';

const LOGIN_TIMEOUT_MS = 45_000;

function claudeCard(page) {
  return page.locator('.login-card[data-login="anthropic"][data-method="browser"]').first();
}

// Starts the Claude card's login; answers the second tab, on the mock's consent page.
async function startClaude(h, page, card = claudeCard(page)) {
  const popup = h.context.waitForEvent('page');
  await card.locator('button.start').click();
  const tab = await popup;
  await tab.locator('h1', { hasText: 'Authorize Claude Code' }).waitFor();
  assert.match(await tab.locator('body').innerText(), new RegExp(CLAUDE_EMAIL));
  return tab;
}

async function expectConnected(card, file) {
  const saved = card.locator('.saved');
  await saved.waitFor({ timeout: LOGIN_TIMEOUT_MS });
  assert.equal(await saved.getAttribute('data-file'), file);
  assert.equal(await saved.locator('.account-state').innerText(), 'Connected');
  assert.equal(await saved.locator('a.account-link').getAttribute('href'), `#/auth-files?file=${encodeURIComponent(file)}`);
}

e2e('panel: Claude browser login with consent in the second tab; the account shows Connected', async (h) => {
  await startStack(h);
  const page = await signIn(h, await panelPage(h), { hash: '#/oauth' });
  await openPage(page, 'oauth');
  await shot(page, 'oauth-login');
  const card = claudeCard(page);
  const tab = await startClaude(h, page);
  // The panel polls while it waits, showing a spinner and the elapsed time.
  await card.locator('.waiting .spinner').waitFor();
  assert.match(await card.locator('.elapsed').innerText(), /^\d\d:\d\d$/);
  await shot(page, 'oauth-waiting');
  await tab.getByRole('button', { name: 'Authorize' }).click();
  // The server's own callback listener catches the redirect and shows its success page.
  await tab.locator('body').filter({ hasText: /success|successful|close this/i }).waitFor();
  await expectConnected(card, CLAUDE_FILE);
  await shot(page, 'oauth-connected');
  const saved = h.readAuthFile(CLAUDE_FILE);
  assert.equal(saved.email, CLAUDE_EMAIL);
  assert.ok(saved.access_token && saved.refresh_token);

  // The link leads to the account's details; the Providers page lists it Connected.
  await card.locator('a.account-link').click();
  await page.locator('.drawer .stored-fields').waitFor();
  const shownToken = await page.locator('.drawer [data-field="access_token"]').innerText();
  assert.ok(!shownToken.includes(saved.access_token), 'the drawer masks the access token');
  await page.keyboard.press('Escape');
  await openPage(page, 'providers');
  const row = page.locator(`.provider[data-provider="claude"] .account[data-file="${CLAUDE_FILE}"]`);
  assert.equal(await row.locator('.account-state').innerText(), 'Connected');

  // Re-login from the Providers page: the same account again, its settings kept.
  await h.mgmt('PATCH', '/auth-files/fields', { body: { name: CLAUDE_FILE, note: 'keep me' } });
  await row.locator('button.relogin').click();
  const dialogCard = page.locator('dialog .login-card');
  const again = await startClaude(h, page, dialogCard);
  await again.getByRole('button', { name: 'Authorize' }).click();
  await expectConnected(dialogCard, CLAUDE_FILE);
  const relogged = h.readAuthFile(CLAUDE_FILE);
  assert.notEqual(relogged.access_token, saved.access_token, 'new tokens');
  assert.equal(relogged.note, 'keep me', 'the account keeps its settings');
  assert.deepEqual(h.authFileNames(), [CLAUDE_FILE]);
  h.consoleWatch.check();
}, { timeout: 180_000 });

e2e('panel: remote browser path — pasted callback URL, a wrong state and a partial paste refused with the server\'s error', async (h) => {
  await startStack(h);
  const page = await signIn(h, await panelPage(h), { hash: '#/oauth' });
  await openPage(page, 'oauth');
  await page.locator('#remote-browser').check();
  const card = claudeCard(page);
  const tab = await startClaude(h, page);
  // Nothing listens on the loopback redirect: the browser lands on an error page whose URL
  // the user copies from the address bar.
  const callback = tab.waitForRequest((request) => /\/callback\?/.test(request.url()));
  await tab.getByRole('button', { name: 'Authorize' }).click();
  const url = new URL((await callback).url());
  assert.ok(url.searchParams.get('code') && url.searchParams.get('state'), url.href);

  // The browser logs the refused pastes' answers; they are the point of this test.
  h.consoleWatch.allow(/oauth-callback/);
  const paste = async (text) => {
    await card.locator('input.callback-url').fill(text);
    await card.locator('button.submit-callback').click();
    await eventually('the paste to be answered', async () => (await card.locator('.paste-status .progress').count()) === 0);
    return card.locator('.paste-status').innerText();
  };
  const wrong = new URL(url.href);
  wrong.searchParams.set('state', `${url.searchParams.get('state').slice(0, -4)}beef`);
  assert.match(await paste(wrong.href), /unknown or expired state/);
  assert.match(await paste(`code=${url.searchParams.get('code')}`), /state is required|invalid redirect_url/);
  await shot(page, 'oauth-paste-refused');
  assert.deepEqual(h.authFileNames(), [], 'nothing saved by refused pastes');

  assert.match(await paste(url.href), /Callback received/);
  await expectConnected(card, CLAUDE_FILE);
  assert.equal(h.readAuthFile(CLAUDE_FILE).email, CLAUDE_EMAIL);
  h.consoleWatch.check();
}, { timeout: 180_000 });

e2e('panel: a Kimi device login shows its code, link, QR code and countdown, then completes', async (h) => {
  await startStack(h);
  const page = await signIn(h, await panelPage(h), { hash: '#/oauth' });
  await openPage(page, 'oauth');
  const card = page.locator('.login-card[data-login="kimi"][data-method="device"]');
  await card.locator('button.start').click();
  const code = card.locator('.user-code');
  await code.waitFor();
  assert.match(await code.innerText(), /\S{4,}/);
  const link = await card.locator('a.verification-url').getAttribute('href');
  assert.match(link, /user_code=/);
  assert.ok(await card.locator('.qr svg path').count() === 1, 'a QR code is drawn');
  assert.match(await card.locator('.countdown').innerText(), /Code expires in \d\d:\d\d/);
  await shot(page, 'oauth-device');
  // The mock approves the code at the first poll (after its 5 s interval).
  const saved = card.locator('.saved');
  await saved.waitFor({ timeout: LOGIN_TIMEOUT_MS });
  const file = await saved.getAttribute('data-file');
  assert.match(file, /^kimi-\d+\.json$/);
  assert.equal(await saved.locator('.account-state').innerText(), 'Connected');
  assert.deepEqual(h.authFileNames(), [file]);
  assert.equal(h.readAuthFile(file).type, 'kimi');
  h.consoleWatch.check();
}, { timeout: 120_000 });

e2e('panel: Vertex import shows project, email, location and file name; the Chinese locale renders the OAuth page', async (h) => {
  await startStack(h);
  const page = await signIn(h, await panelPage(h), { hash: '#/oauth' });
  await openPage(page, 'oauth');
  const { privateKey } = generateKeyPairSync('rsa', { modulusLength: 2048, privateKeyEncoding: { type: 'pkcs8', format: 'pem' }, publicKeyEncoding: { type: 'spki', format: 'pem' } });
  const account = {
    type: 'service_account', project_id: 'panel-e2e', private_key_id: 'k1', private_key: privateKey,
    client_email: 'sa@panel-e2e.iam.gserviceaccount.com', client_id: '1', token_uri: 'https://oauth2.googleapis.com/token',
  };
  const card = page.locator('.login-card[data-login="vertex"]');
  await card.locator('input[type="file"]').setInputFiles({ name: 'sa.json', mimeType: 'application/json', buffer: Buffer.from(JSON.stringify(account)) });
  await card.locator('input[name="location"]').fill('europe-west4');
  await card.locator('button.start').click();
  const result = card.locator('.import-result');
  await result.waitFor();
  assert.equal(await result.locator('[data-field="project_id"]').innerText(), 'panel-e2e');
  assert.equal(await result.locator('[data-field="email"]').innerText(), account.client_email);
  assert.equal(await result.locator('[data-field="location"]').innerText(), 'europe-west4');
  const file = await result.locator('[data-field="file"]').innerText();
  assert.match(file, /^vertex-.*panel-e2e\.json$/);
  assert.ok(fs.existsSync(h.authFile(file)));
  await shot(page, 'oauth-vertex-import');

  // 简体中文: the OAuth page's own texts, and the nav, come from the Chinese table.
  await page.locator('#language').selectOption('zh');
  await page.locator('#nav').waitFor();
  await openPage(page, 'oauth');
  assert.equal(await page.locator('#page-oauth h1').innerText(), 'OAuth 登录');
  assert.equal(await page.locator('#nav a.nav[data-page="auth-files"]').innerText(), '认证文件');
  assert.equal(await claudeCard(page).locator('button.start').innerText(), '开始登录');
  assert.equal(await page.locator('.login-card[data-login="kimi"] button.start').innerText(), '获取设备码');
  assert.match(await page.locator('label[for], label.check').first().innerText(), /浏览器/);
  assert.equal(await page.evaluate(() => document.documentElement.lang), 'zh-CN');
  await shot(page, 'oauth-zh');
  h.consoleWatch.check();
}, { timeout: 120_000 });
