// The panel's monitoring pages in a real browser against the real binary and switchyard-mock:
// "Send test request" on the Providers page (a good account answers 200 with the mock's text, an
// account the mock refuses shows the sanitized 401), both requests in Monitoring with the
// account that served them (filters, the expandable failure, charts, a CSV export), the
// Dashboard's counts and the refused account under "needing attention", and an Inspection run
// that recommends a re-login for the refused account, applied from the table.
//
// Run: cargo build -p switchyard -p switchyard-testkit --bins && cd tests/e2e && node --test panel-monitoring.test.js

import assert from 'node:assert/strict';
import * as fs from 'node:fs';

import { e2e, eventually } from './harness.js';
import { claudeCredential, listed, openPage, panelPage, shot, signIn, startStack, writeAuthFile } from './panel-harness.js';

const GOOD = 'claude-good@example.com.json';
const BAD = 'claude-bad@example.com.json';

// Two Claude accounts; the mock accepts only the good one's token, so every request of the bad
// one gets the mock's 401 (and its refresh, of a token the mock never issued, is refused too).
async function seed(h, mock) {
  const good = claudeCredential('good@example.com');
  writeAuthFile(h, GOOD, good);
  writeAuthFile(h, BAD, claudeCredential('bad@example.com'));
  await listed(h, [GOOD, BAD]);
  const response = await fetch(`${mock.control}/__ctl/auth`, {
    method: 'POST', headers: { 'Content-Type': 'application/json' }, body: JSON.stringify({ bearer: good.access_token }),
  });
  assert.equal(response.status, 200, await response.text());
  const { body } = await h.mgmt('GET', '/auth-files');
  const index = (name) => body.files.find((f) => f.name === name).auth_index;
  return { goodIndex: index(GOOD), badIndex: index(BAD), badToken: h.readAuthFile(BAD).access_token };
}

function account(page, name) {
  return page.locator(`.provider[data-provider="claude"] .account[data-file="${name}"]`);
}

function requestRows(page, name) {
  return page.locator('#requests-table tbody tr[data-id]').filter({ has: page.locator('td.account-cell', { hasText: name }) });
}

e2e('panel: a test request per account, then Monitoring, the Dashboard and an Inspection show what happened', async (h) => {
  const mock = await startStack(h);
  const { goodIndex, badIndex, badToken } = await seed(h, mock);
  const page = await signIn(h, await panelPage(h));

  // The Dashboard is the first page, and the one a sign-in opens; nothing counted yet.
  assert.equal(await page.locator('#nav a.nav').first().getAttribute('data-page'), 'dashboard');
  await page.locator('#page-dashboard #dashboard-stats').waitFor();
  assert.equal(await page.locator('#dashboard-stats [data-stat="requests"] .stat-value').innerText(), '0');
  assert.equal(await page.locator('#dashboard-stats [data-stat="success"] .stat-value').innerText(), '—');

  // Providers: the good account answers 200 with the mock's text.
  await openPage(page, 'providers');
  await account(page, GOOD).locator('button.test-request').click();
  const ok = account(page, GOOD).locator('.test-result .ok-box');
  await ok.waitFor();
  assert.equal(await ok.locator('.test-status').innerText(), '200');
  assert.match(await ok.locator('.test-text').innerText(), /\S/);
  assert.match(await ok.innerText(), /\d+ ms/);
  await shot(page, 'providers-test-request-ok');

  // The refused account: its status and the sanitized error, never its token.
  await account(page, BAD).locator('button.test-request').click();
  const bad = account(page, BAD).locator('.test-result .error-box');
  await bad.waitFor();
  assert.equal(await bad.locator('.test-status').innerText(), '401');
  const badText = await bad.locator('.test-text').innerText();
  assert.match(badText, /401|invalid credentials|unauthorized|authentication/i);
  assert.ok(!(await bad.innerText()).includes(badToken), 'the error shows no token');
  await shot(page, 'providers-test-request-failed');

  // Monitoring: both requests, each with the account that served it.
  await openPage(page, 'monitoring');
  await eventually('both test requests recorded', async () => {
    await page.locator('#mon-reload').click();
    await page.locator('#mon-reload:not([disabled])').waitFor();
    return (await requestRows(page, GOOD).count()) === 1 && (await requestRows(page, BAD).count()) === 1;
  });
  const goodRow = requestRows(page, GOOD);
  assert.equal(await goodRow.locator('.status').innerText(), '200');
  assert.match(await goodRow.locator('td.account-cell').innerText(), new RegExp(goodIndex));
  const badRow = requestRows(page, BAD);
  assert.equal(await badRow.locator('.status').innerText(), '401');
  assert.equal(await badRow.getAttribute('data-failed'), 'true');
  // The charts have bars: one ok, one failed.
  await page.locator('[data-chart="volume"] rect.bar.ok').first().waitFor();
  assert.ok(await page.locator('[data-chart="volume"] rect.bar.bad').count() >= 1);
  assert.equal(await page.locator('#mon-summary [data-stat="requests"] .stat-value').innerText(), '2');
  await shot(page, 'monitoring');

  // The failure expands to its full summary and the request's details.
  await badRow.locator('button.expand').click();
  const detail = page.locator(`#requests-table tr.detail[data-detail-for="${await badRow.getAttribute('data-id')}"]`);
  await detail.waitFor();
  assert.match(await detail.innerText(), /\/v0\/management\/test-request/);
  assert.match(await detail.locator('pre.failure').innerText(), /\S/);
  await shot(page, 'monitoring-failure-detail');

  // Filters: failed only → the refused account; one account → its request.
  await page.locator('#mon-status').selectOption('failed');
  await eventually('failed only', async () => (await page.locator('#requests-table tbody tr[data-id]').count()) === 1
    && (await requestRows(page, BAD).count()) === 1);
  await page.locator('#mon-status').selectOption('');
  await page.locator('#mon-account').selectOption(goodIndex);
  await eventually('one account', async () => (await page.locator('#requests-table tbody tr[data-id]').count()) === 1
    && (await requestRows(page, GOOD).count()) === 1);
  await page.locator('#mon-account').selectOption('');
  await eventually('all again', async () => (await page.locator('#requests-table tbody tr[data-id]').count()) === 2);

  // CSV export: a download fetched with the key header (no key in any URL).
  const downloaded = page.waitForEvent('download');
  await page.locator('#export-csv').click();
  const file = await downloaded;
  assert.equal(file.suggestedFilename(), 'switchyard-requests.csv');
  const csv = fs.readFileSync(await file.path(), 'utf8');
  assert.ok(csv.includes(GOOD) && csv.includes(BAD), csv);
  assert.ok(!file.url().includes(h.managementKey));
  // JSON export of what the filters cover: failed only → the refused account's record.
  await page.locator('#mon-status').selectOption('failed');
  await eventually('failed only again', async () => (await page.locator('#requests-table tbody tr[data-id]').count()) === 1);
  const downloadedJson = page.waitForEvent('download');
  await page.locator('#export-json').click();
  const jsonFile = await downloadedJson;
  assert.equal(jsonFile.suggestedFilename(), 'switchyard-requests.json');
  const exported = JSON.parse(fs.readFileSync(await jsonFile.path(), 'utf8'));
  assert.deepEqual(exported.map((r) => [r.account, r.status]), [[BAD, 401]]);
  await page.locator('#mon-status').selectOption('');
  await eventually('all again', async () => (await page.locator('#requests-table tbody tr[data-id]').count()) === 2);

  // Auto-refresh picks up a new request without a click.
  await page.locator('#mon-refresh').selectOption('5s');
  const more = await fetch(`${h.base}/v0/management/test-request`, {
    method: 'POST', headers: { Authorization: `Bearer ${h.managementKey}`, 'Content-Type': 'application/json' }, body: JSON.stringify({ auth_index: goodIndex }),
  });
  assert.equal(more.status, 200);
  await eventually('the third request shown by itself', async () => (await requestRows(page, GOOD).count()) === 2, { timeoutMs: 20_000 });
  await page.locator('#mon-refresh').selectOption('off');

  // Dark theme and phone width.
  await page.locator('#theme-toggle').click();
  await page.locator('#theme-toggle').click();
  await shot(page, 'monitoring-dark');
  await page.locator('#theme-toggle').click();
  await page.setViewportSize({ width: 390, height: 844 });
  await shot(page, 'monitoring-narrow');
  await page.setViewportSize({ width: 1280, height: 900 });

  // Dashboard: today's counts, and the refused account under "needing attention" with a link
  // to its auth file.
  await page.locator('#nav a.nav[data-page="dashboard"]').click();
  await page.locator('#page-dashboard #dashboard-stats').waitFor();
  assert.equal(await page.locator('#dashboard-stats [data-stat="requests"] .stat-value').innerText(), '3');
  assert.equal(await page.locator('#dashboard-stats [data-stat="success"] .stat-value').innerText(), '66.7 %');
  assert.match(await page.locator('#dashboard-stats [data-stat="requests"]').innerText(), /1 failed/);
  assert.match(await page.locator('#dashboard-stats [data-stat="latency"] .stat-value').innerText(), /\d+ (ms|s)/);
  const needy = page.locator(`#dashboard-attention tr[data-account="${BAD}"]`);
  await needy.waitFor();
  assert.equal(await page.locator(`#dashboard-attention tr[data-account="${GOOD}"]`).count(), 0);
  assert.equal(await page.locator(`#dashboard-providers tr[data-provider="claude"] td`).nth(1).innerText(), '3');
  await shot(page, 'dashboard');
  await page.setViewportSize({ width: 390, height: 844 });
  await shot(page, 'dashboard-narrow');
  await page.setViewportSize({ width: 1280, height: 900 });
  await needy.locator('button.open-file').click();
  await page.locator('.drawer').waitFor();
  assert.match(page.url(), new RegExp(`#/auth-files\\?file=${BAD.replace(/[.@]/g, (c) => `(\\${c}|%40)`)}`));
  await page.keyboard.press('Escape');
  // A failure source opens Monitoring filtered to that account's failures.
  await page.locator('#nav a.nav[data-page="dashboard"]').click();
  await page.locator('#dashboard-failures button.link').first().click();
  await page.locator('#page-monitoring #requests-table').waitFor();
  await eventually('filtered to the failures', async () => (await page.locator('#mon-account').inputValue()) === badIndex
    && (await page.locator('#mon-status').inputValue()) === 'failed'
    && (await page.locator('#requests-table tbody tr[data-id]').count()) === 1 && (await requestRows(page, BAD).count()) === 1);
  // "All accounts" chosen afterwards stays chosen across a range change.
  await page.locator('#mon-account').selectOption('');
  await page.locator('#mon-range').selectOption('1h');
  await eventually('all accounts kept', async () => (await page.locator('#mon-account').inputValue()) === ''
    && (await page.locator('#mon-account option').count()) === 3);

  // Inspection: a run, followed until done; the refused account gets a re-login recommendation
  // with the reason, the good one keep.
  await openPage(page, 'inspection');
  assert.match(await page.locator('#inspection-status').innerText(), /No inspection has run yet/);
  await shot(page, 'inspection-empty');
  await page.locator('#inspection-run').click();
  await page.locator('#inspection-done').waitFor({ timeout: 60_000 });
  const badResult = page.locator(`#inspection-table tr[data-auth-index="${badIndex}"]`);
  const goodResult = page.locator(`#inspection-table tr[data-auth-index="${goodIndex}"]`);
  assert.equal(await goodResult.getAttribute('data-action'), 'keep');
  const action = await badResult.getAttribute('data-action');
  assert.notEqual(action, 'keep', 'the refused account gets a recommendation');
  // Its refresh was refused at the test request, so it is judged without a new probe.
  assert.equal(action, 'reauth');
  assert.match(await badResult.locator('.reason').innerText(), /re-login|refresh|invalid/i);
  assert.match(await goodResult.locator('td.probe').innerText(), /request · 200/);
  assert.equal(await goodResult.locator('button.apply').count(), 0, 'nothing to apply for keep');
  await shot(page, 'inspection');

  // Apply selected: only actionable rows can be chosen (a keep has nothing to apply).
  assert.equal(await goodResult.locator('input.select').isDisabled(), true);
  assert.equal(await page.locator('#inspection-apply-selected').isDisabled(), true);
  await badResult.locator('input.select').check();
  assert.equal(await page.locator('#inspection-selected').innerText(), '1 selected');
  await page.locator('#inspection-apply-selected').click();
  await eventually('applied', async () => (await badResult.locator('.applied').count()) === 1);
  assert.equal(await badResult.locator('.applied').getAttribute('data-status'), 'executed');
  assert.equal(await badResult.locator('button.apply').count(), 0, 'an executed recommendation is done');
  const { body: last } = await h.mgmt('GET', '/inspection');
  assert.equal(last.results.find((r) => r.auth_index === badIndex).applied.status, 'executed');
  await shot(page, 'inspection-applied');
  await page.setViewportSize({ width: 390, height: 844 });
  await shot(page, 'inspection-narrow');
  await page.setViewportSize({ width: 1280, height: 900 });

  // A second run starts afresh; its recommendation is applied with the row's own button.
  await page.locator('#inspection-run').click();
  await eventually('run #2 done', async () => /Run #2/.test(await page.locator('#inspection-status').innerText()), { timeoutMs: 60_000 });
  assert.equal(await badResult.locator('.applied').count(), 0);
  await badResult.locator('button.apply').click();
  await eventually('applied again', async () => (await badResult.locator('.applied[data-status="executed"]').count()) === 1);

  // 简体中文: the new pages' texts come from the Chinese table.
  await page.locator('#language').selectOption('zh');
  await page.locator('#nav').waitFor();
  assert.equal(await page.locator('#nav a.nav[data-page="monitoring"]').innerText(), '监控');
  await openPage(page, 'monitoring');
  assert.equal(await page.locator('#page-monitoring h1').innerText(), '监控');
  await shot(page, 'monitoring-zh');
  await page.locator('#language').selectOption('en');
  h.consoleWatch.check();
}, { timeout: 180_000 });

e2e('panel: an Inspection that recommends deleting a deactivated account asks first, and deletes only once confirmed', async (h) => {
  const mock = await startStack(h);
  const GONE = 'claude-gone@example.com.json';
  writeAuthFile(h, GONE, claudeCredential('gone@example.com'));
  await listed(h, [GONE]);
  // The upstream says the account is deactivated (queued for the probe and any retry of it).
  for (let i = 0; i < 3; i += 1) {
    const response = await fetch(`${mock.control}/__ctl/fault`, {
      method: 'POST', headers: { 'Content-Type': 'application/json' },
      body: JSON.stringify({ status: 403, body: { type: 'error', error: { type: 'permission_error', message: 'account_deactivated: this account was deactivated' } } }),
    });
    assert.equal(response.status, 200, await response.text());
  }
  const page = await signIn(h, await panelPage(h), { hash: '#/inspection' });
  await openPage(page, 'inspection');
  await page.locator('#inspection-run').click();
  await page.locator('#inspection-done').waitFor({ timeout: 60_000 });
  const row = page.locator(`#inspection-table tr[data-name="${GONE}"]`);
  assert.equal(await row.getAttribute('data-action'), 'delete');
  assert.match(await row.locator('.reason').innerText(), /account_deactivated/);

  // Cancel keeps the file; confirming (the dialog names it) deletes it.
  await row.locator('button.apply').click();
  assert.match(await page.locator('dialog').innerText(), new RegExp(GONE.replace(/\./g, '\\.')));
  await shot(page, 'inspection-confirm-delete');
  await page.locator('dialog button', { hasText: 'Cancel' }).click();
  assert.ok(fs.existsSync(h.authFile(GONE)), 'a cancelled delete leaves the file');
  await row.locator('button.apply').click();
  await page.locator('dialog button[data-confirm]').click();
  await eventually('the file deleted', () => !fs.existsSync(h.authFile(GONE)));
  await eventually('the row says so', async () => (await row.locator('.applied[data-status="executed"]').count()) === 1);
  h.consoleWatch.check();
}, { timeout: 120_000 });
