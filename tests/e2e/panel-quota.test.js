// The Quota page in a real browser against the real binary and switchyard-mock's quota
// endpoints: nothing is read until asked (the listing calls no upstream), "Refresh all" reads the
// Codex and Claude accounts (bars per window, plan, source, the aggregate table), a refused
// Claude reading shows its error while Codex keeps its bars, an exhausted Codex window shows
// "exhausted until" with a full bar, and the page renders in Simplified Chinese.
//
// Run: cargo build -p switchyard -p switchyard-testkit --bins && cd tests/e2e && node --test panel-quota.test.js

import assert from 'node:assert/strict';

import { e2e, eventually } from './harness.js';
import { claudeCredential, listed, openPage, panelPage, shot, signIn, startStack, writeAuthFile } from './panel-harness.js';

const CODEX = 'codex-dev@example.com-Plus.json';
const CLAUDE = 'claude-quota@example.com.json';

function codexCredential() {
  return {
    type: 'codex', email: 'dev@example.com', account_id: 'acct-0001',
    access_token: 'codex-access-0123456789', refresh_token: 'codex-refresh-0123456789',
    expired: new Date(Date.now() + 24 * 3600 * 1000).toISOString(), disabled: false,
  };
}

async function control(mock, body) {
  const response = await fetch(`${mock.control}/__ctl/quota`, {
    method: 'POST', headers: { 'Content-Type': 'application/json' }, body: JSON.stringify(body),
  });
  assert.equal(response.status, 200, await response.text());
}

function card(page, name) {
  return page.locator(`.quota-account[data-name="${name}"]`);
}

e2e('panel: the Quota page reads on request, shows windows, errors and exhaustion, in both languages', async (h) => {
  const mock = await startStack(h);
  writeAuthFile(h, CODEX, codexCredential());
  writeAuthFile(h, CLAUDE, claudeCredential('quota@example.com'));
  await listed(h, [CODEX, CLAUDE]);
  const page = await signIn(h, await panelPage(h));

  await openPage(page, 'quota');
  await card(page, CODEX).waitFor();
  assert.equal(await card(page, CODEX).getAttribute('data-state'), 'unknown');
  assert.equal(await card(page, CODEX).locator('.meter').count(), 0, 'no bar without a reading');
  const { body: before } = await h.mgmt('GET', '/quota');
  assert.equal(before.accounts.find((a) => a.name === CODEX).state, 'unknown', 'opening the page read nothing');

  await page.locator('#quota-refresh-all').click();
  await eventually('the Codex reading', async () => (await card(page, CODEX).getAttribute('data-state')) === 'ok');
  const codex = card(page, CODEX);
  assert.match(await codex.locator('[data-window="5h"] .quota-value').innerText(), /^23 %/);
  assert.match(await codex.locator('[data-window="weekly"] .quota-value').innerText(), /^61 %/);
  assert.equal(await codex.locator('[data-window="weekly"] .meter').getAttribute('aria-valuenow'), '61');
  assert.equal(await codex.locator('.badge.info').innerText(), 'plus');
  assert.match(await codex.innerText(), /the quota endpoint/);
  assert.equal(await card(page, CLAUDE).getAttribute('data-state'), 'ok');
  assert.match(await card(page, CLAUDE).locator('[data-window="5h"] .quota-value').innerText(), /^38 %/);
  await page.locator('#quota-aggregate-table tr[data-provider="codex"][data-window="weekly"]').waitFor();
  assert.equal(await page.locator('#quota-summary [data-stat="read"] .stat-value').innerText(), '2 / 2');
  await shot(page, 'quota');

  // Claude's endpoint refuses: that card shows the error, the Codex bars stay.
  await control(mock, { provider: 'claude', status: 401 });
  await card(page, CLAUDE).locator('button.quota-refresh').click();
  await eventually('the Claude error', async () => (await card(page, CLAUDE).getAttribute('data-state')) === 'error');
  assert.match(await card(page, CLAUDE).locator('.quota-error').innerText(), /HTTP 401/);
  assert.equal(await card(page, CODEX).getAttribute('data-state'), 'ok');

  // The weekly window runs out: exhausted until its reset, a full red bar.
  await control(mock, {});
  await control(mock, {
    file: 'codex.json',
    answer: {
      plan_type: 'plus',
      rate_limit: {
        allowed: false, limit_reached: true,
        primary_window: { used_percent: 40, limit_window_seconds: 18000, reset_after_seconds: 600 },
        secondary_window: { used_percent: 100, limit_window_seconds: 604800, reset_after_seconds: 86400 },
      },
    },
  });
  await card(page, CODEX).locator('button.quota-refresh').click();
  await eventually('the exhausted badge', async () => (await card(page, CODEX).locator('.badge.bad').count()) === 1);
  assert.match(await card(page, CODEX).locator('.badge.bad').innerText(), /Exhausted until/);
  assert.equal(await card(page, CODEX).locator('[data-window="weekly"] .meter-fill.bad').count(), 1);
  await shot(page, 'quota-exhausted');

  await page.locator('#language').selectOption('zh');
  await page.locator('#nav a.nav[data-page="quota"]').waitFor();
  assert.equal(await page.locator('#nav a.nav[data-page="quota"]').innerText(), '额度');
  await openPage(page, 'quota');
  await page.locator('#quota-refresh-all', { hasText: '全部刷新' }).waitFor();
  await shot(page, 'quota-zh');
  h.consoleWatch.check();
});
