// The panel's Auth Files page in a real browser against the real binary: batch disable and
// delete checked on disk, "delete all invalid", upload of several files with a corrupt one
// refused per file, the detail drawer (masked secrets, user fields saved to the file), and the
// Providers page's account states and per-account actions.
//
// Run: cargo build -p switchyard -p switchyard-testkit --bins && cd tests/e2e && node --test panel*.test.js

import assert from 'node:assert/strict';
import * as fs from 'node:fs';

import { e2e, eventually } from './harness.js';
import { claudeCredential, listed, openPage, panelPage, shot, signIn, startStack, writeAuthFile } from './panel-harness.js';

const A = 'claude-a@example.com.json';
const B = 'claude-b@example.com.json';
const C = 'claude-c@example.com.json';
const BROKEN = 'claude-broken.json';

async function seed(h) {
  for (const [name, email] of [[A, 'a@example.com'], [B, 'b@example.com'], [C, 'c@example.com']]) writeAuthFile(h, name, claudeCredential(email));
  writeAuthFile(h, BROKEN, '{"type": "claude", "access_token": ');
  await listed(h, [A, B, C, BROKEN]);
}

function rowOf(page, name) {
  return page.locator(`#auth-files-table tr[data-file="${name}"]`);
}

async function select(page, names) {
  for (const name of names) await rowOf(page, name).locator('input.select').check();
}

async function confirm(page) {
  await page.locator('dialog button[data-confirm]').click();
}

e2e('panel: Auth Files batch disable and delete change the files on disk; delete all invalid takes the unreadable one', async (h) => {
  await startStack(h);
  await seed(h);
  const page = await signIn(h, await panelPage(h), { hash: '#/auth-files' });
  await openPage(page, 'auth-files');
  await rowOf(page, A).waitFor();
  assert.equal(await rowOf(page, A).locator('.account-state').innerText(), 'Connected');
  assert.equal(await rowOf(page, BROKEN).locator('.account-state').innerText(), 'Unreadable file');
  await shot(page, 'auth-files');

  // Batch disable: both files say so on disk, the third is untouched.
  await select(page, [A, B]);
  await page.locator('#batch-disable').click();
  await eventually('A and B disabled on disk', () => h.readAuthFile(A).disabled === true && h.readAuthFile(B).disabled === true);
  assert.equal(h.readAuthFile(C).disabled, false);
  await eventually('the table to show them disabled', async () => (await rowOf(page, A).locator('.account-state').innerText()) === 'Disabled');
  assert.equal(await rowOf(page, A).locator('input.enabled').isChecked(), false);

  // Filters: the state filter shows the two disabled ones only; the text filter one.
  await page.locator('#filter-state').selectOption('disabled');
  assert.equal(await page.locator('#auth-files-table tbody tr').count(), 2);
  await page.locator('#filter-state').selectOption('');
  await page.locator('#filter-text').fill('c@example');
  assert.equal(await page.locator('#auth-files-table tbody tr').count(), 1);
  await page.locator('#filter-text').fill('');

  // The per-row switch enables one again.
  await rowOf(page, B).locator('input.enabled').check();
  await eventually('B enabled on disk', () => h.readAuthFile(B).disabled === false);

  // Batch delete, after a confirmation naming the files.
  await eventually('the table to reload', async () => (await rowOf(page, B).locator('.account-state').innerText()) === 'Connected');
  await select(page, [A, C]);
  await page.locator('#batch-delete').click();
  const dialog = page.locator('dialog');
  assert.match(await dialog.innerText(), new RegExp(`${A}[\\s\\S]*${C}`));
  await shot(page, 'auth-files-confirm-delete');
  await confirm(page);
  await eventually('A and C gone from disk', () => !fs.existsSync(h.authFile(A)) && !fs.existsSync(h.authFile(C)));
  await eventually('the table without them', async () => (await rowOf(page, A).count()) === 0 && (await rowOf(page, C).count()) === 0);

  // Delete all invalid: the unreadable file only.
  await page.locator('#delete-invalid').click();
  assert.match(await page.locator('dialog').innerText(), new RegExp(BROKEN));
  await confirm(page);
  await eventually('the broken file gone', () => !fs.existsSync(h.authFile(BROKEN)));
  assert.deepEqual(h.authFileNames(), [B]);
  h.consoleWatch.check();
}, { timeout: 120_000 });

e2e('panel: uploading several files shows a result per file, a corrupt one refused with the server\'s reason', async (h) => {
  await startStack(h);
  const page = await signIn(h, await panelPage(h), { hash: '#/auth-files' });
  await openPage(page, 'auth-files');
  const good = { name: 'claude-up@example.com.json', mimeType: 'application/json', buffer: Buffer.from(JSON.stringify(claudeCredential('up@example.com'))) };
  const corrupt = { name: 'claude-corrupt.json', mimeType: 'application/json', buffer: Buffer.from('{"type": "claude", "email": ') };
  await page.locator('#upload-input').setInputFiles([good, corrupt]);
  const results = page.locator('.upload-list');
  await results.waitFor();
  const okLine = results.locator(`li[data-file="${good.name}"]`);
  const badLine = results.locator(`li[data-file="${corrupt.name}"]`);
  assert.match(await okLine.innerText(), /saved/);
  assert.match(await badLine.innerText(), /refused.*claude-corrupt\.json.*invalid auth file/s);
  await shot(page, 'auth-files-upload');
  assert.deepEqual(h.authFileNames(), [good.name], 'the corrupt file was not written');
  assert.equal(h.readAuthFile(good.name).email, 'up@example.com');
  await rowOf(page, good.name).waitFor();
  h.consoleWatch.check();
}, { timeout: 120_000 });

e2e('panel: the detail drawer masks secrets and saves user fields into the file', async (h) => {
  await startStack(h);
  await seed(h);
  const page = await signIn(h, await panelPage(h), { hash: `#/auth-files?file=${encodeURIComponent(A)}` });
  const drawer = page.locator('.drawer');
  await drawer.locator('.stored-fields').waitFor();
  const stored = h.readAuthFile(A);
  const text = await drawer.innerText();
  assert.ok(!text.includes(stored.access_token) && !text.includes(stored.refresh_token), 'no token in full');
  assert.match(await drawer.locator('[data-field="access_token"]').innerText(), /^••••/);
  assert.equal(await drawer.locator('[data-field="email"]').innerText(), 'a@example.com');

  await drawer.locator('input[name="prefix"]').fill('team');
  await drawer.locator('input[name="priority"]').fill('5');
  await drawer.locator('input[name="note"]').fill('primary account');
  await drawer.locator('textarea[name="excluded_models"]').fill('claude-3-*\nclaude-2*');
  await drawer.locator('textarea[name="headers"]').fill('X-Team: blue');
  await shot(page, 'auth-file-detail');
  await drawer.locator('#detail-save').click();
  await eventually('the fields on disk', () => h.readAuthFile(A).note === 'primary account');
  const saved = h.readAuthFile(A);
  assert.equal(saved.prefix, 'team');
  assert.equal(saved.priority, 5);
  assert.deepEqual(saved.excluded_models, ['claude-3-*', 'claude-2*']);
  assert.deepEqual(saved.headers, { 'X-Team': 'blue' });
  assert.equal(saved.access_token, stored.access_token, 'tokens untouched');

  // The drawer shows the file again as saved. A weight past the server's limit: its error,
  // the file as it was.
  await drawer.locator('.detail-saved').waitFor();
  assert.equal(await drawer.locator('input[name="prefix"]').inputValue(), 'team');
  h.consoleWatch.allow(/auth-files\/fields/);
  const before = fs.readFileSync(h.authFile(A));
  await drawer.locator('input[name="weight"]').fill('99999999999');
  await drawer.locator('#detail-save').click();
  await drawer.locator('.error-box').filter({ hasText: /weight must be an integer/ }).waitFor();
  assert.deepEqual(fs.readFileSync(h.authFile(A)), before);
  h.consoleWatch.check();
}, { timeout: 120_000 });

e2e('panel: the Providers page shows each account\'s state and disables, enables and refreshes per account', async (h) => {
  await startStack(h);
  await seed(h);
  const page = await signIn(h, await panelPage(h));
  await openPage(page, 'providers');
  const row = (name) => page.locator(`.provider[data-provider="claude"] .account[data-file="${name}"]`);
  await row(A).waitFor();
  assert.equal(await row(A).locator('.account-state').innerText(), 'Connected');
  // A file nothing can be read from has no provider: it is listed under "Other files".
  assert.equal(await page.locator(`.provider[data-provider="other"] .account[data-file="${BROKEN}"] .account-state`).innerText(), 'Unreadable file');
  // Every provider is listed; every login button is one the server offers.
  const { body } = await h.mgmt('GET', '/providers');
  assert.equal(await page.locator('.provider:not([data-provider="other"])').count(), body.providers.length);
  await shot(page, 'providers');

  await row(A).locator('button.disable').click();
  await eventually('A disabled on disk', () => h.readAuthFile(A).disabled === true);
  await eventually('A shown disabled', async () => (await row(A).locator('.account-state').innerText()) === 'Disabled');
  await row(A).locator('button.enable').click();
  await eventually('A enabled on disk', () => h.readAuthFile(A).disabled === false);

  // Refresh token: these tokens were never issued by the mock, so it refuses them — the
  // server's message is shown and the account needs a re-login (its file untouched).
  h.consoleWatch.allow(/auth-files\/refresh/);
  const before = fs.readFileSync(h.authFile(B));
  await row(B).locator('button.refresh').click();
  await page.locator('.toast.bad').filter({ hasText: /invalid_grant|refresh/i }).waitFor();
  await page.locator('#providers-reload').click();
  await eventually('B shown as needing a re-login', async () => /Needs re-login/.test(await row(B).locator('.account-state').innerText()));
  assert.deepEqual(fs.readFileSync(h.authFile(B)), before);
  await shot(page, 'providers-relogin');
  h.consoleWatch.check();
}, { timeout: 120_000 });
