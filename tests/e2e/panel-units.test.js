// Checks of the panel's modules without a browser: the English and Chinese tables have the
// same keys and every key the code names exists; the Clients page's snippets are byte for byte
// what `switchyard setup <client>` writes; the account states derived from `/auth-files`.
//
// Run: cargo build -p switchyard && cd tests/e2e && node --test panel*.test.js

import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { test } from 'node:test';

import { HERE, SWITCHYARD_BIN } from './harness.js';

const WEB = path.join(HERE, '..', '..', 'web');
const { en } = await import(path.join(WEB, 'js', 'i18n.js'));
const { zh } = await import(path.join(WEB, 'js', 'i18n-zh.js'));

function sources(dir) {
  return fs.readdirSync(dir, { withFileTypes: true }).flatMap((entry) => {
    const full = path.join(dir, entry.name);
    return entry.isDirectory() ? sources(full) : entry.name.endsWith('.js') ? [full] : [];
  });
}

test('panel i18n: Chinese has exactly the English keys, and every key the code uses exists', () => {
  assert.deepEqual(Object.keys(zh).sort(), Object.keys(en).sort());
  for (const [key, text] of Object.entries(zh)) {
    const vars = (s) => [...s.matchAll(/\{(\w+)\}/g)].map((m) => m[1]).sort();
    assert.deepEqual(vars(text), vars(en[key]), `${key}: the same placeholders`);
  }
  const used = new Set();
  for (const file of sources(path.join(WEB, 'js'))) {
    const code = fs.readFileSync(file, 'utf8');
    for (const match of code.matchAll(/\bt\(\s*'([\w.-]+)'/g)) used.add(match[1]);
    for (const match of code.matchAll(/label: '(nav\.\w+)'/g)) used.add(match[1]);
  }
  const missing = [...used].filter((key) => !(key in en));
  assert.deepEqual(missing, [], 'keys used in the code but missing from the table');
});

test('panel Clients snippets are what `switchyard setup` writes', async () => {
  const { snippets } = await import(path.join(WEB, 'js', 'pages', 'clients.js'));
  const home = fs.mkdtempSync(path.join(os.tmpdir(), 'switchyard-setup-'));
  try {
    const base = 'http://127.0.0.1:8317';
    const key = 'client-key-1';
    const model = 'claude-sonnet-4-5';
    for (const client of snippets({ base, key, model })) {
      const run = spawnSync(SWITCHYARD_BIN, ['setup', client.id, '--base-url', base, '--key', key, '--model', model], {
        env: { ...process.env, HOME: home }, encoding: 'utf8',
      });
      assert.equal(run.status, 0, `${client.id}: ${run.stderr}`);
      for (const [file, text] of client.files) {
        const written = fs.readFileSync(path.join(home, file.replace(/^~\//, '')), 'utf8');
        assert.equal(written.trimEnd(), text, `${client.id}: ${file}`);
      }
    }
  } finally {
    fs.rmSync(home, { recursive: true, force: true });
  }
});

test('panel account states come from the /auth-files fields', async () => {
  globalThis.localStorage = { getItem: () => 'en' };
  const { accountState, isInvalid, stateLabel } = await import(path.join(WEB, 'js', 'accounts.js'));
  const now = Date.parse('2026-01-01T00:00:00Z');
  const later = '2026-01-01T00:10:00Z';
  const base = { name: 'a.json', status: 'active', status_message: '', disabled: false, unavailable: false, needs_relogin: false };
  assert.equal(accountState(base, now).kind, 'connected');
  assert.equal(accountState({ ...base, disabled: true, status: 'disabled' }, now).kind, 'disabled');
  const relogin = accountState({ ...base, status: 'error', needs_relogin: true, status_message: 'needs re-login: invalid_grant' }, now);
  assert.deepEqual(relogin, { kind: 'relogin', detail: 'invalid_grant' });
  assert.equal(stateLabel(relogin), 'Needs re-login (invalid_grant)');
  assert.equal(accountState({ ...base, status: 'refreshing' }, now).kind, 'refreshing');
  const quota = accountState({ ...base, status: 'error', status_message: 'quota', next_retry_after: later, cooldowns: [{ reason: 'quota' }] }, now);
  assert.equal(quota.kind, 'quota');
  assert.equal(quota.until, later);
  assert.equal(accountState({ ...base, status: 'error', status_message: 'upstream 503', next_retry_after: later }, now).kind, 'cooling');
  assert.equal(accountState({ ...base, status: 'error', status_message: 'cannot be served: x' }, now).kind, 'error');
  const corrupt = { name: 'b.json', status: 'error', status_message: 'invalid JSON', disabled: false, unavailable: true };
  assert.equal(accountState(corrupt, now).kind, 'invalid');
  assert.equal(isInvalid(corrupt), true);
  assert.equal(isInvalid({ ...base, needs_relogin: true, status: 'error' }), true);
  assert.equal(isInvalid(base), false);
  assert.equal(isInvalid({ ...corrupt, runtime_only: true }), false, 'config keys are never deleted as files');
});

test('panel monitoring helpers: chart buckets fill quiet times with zeros; who needs attention', async () => {
  const { fillBuckets } = await import(path.join(WEB, 'js', 'charts.js'));
  const { needsAttention, formatRate } = await import(path.join(WEB, 'js', 'monitor.js'));
  const hour = 3_600_000;
  const start = Date.UTC(2026, 0, 1, 10);
  const groups = [{ key: new Date(start).toISOString(), requests: 2 }, { key: new Date(start + 2 * hour).toISOString(), requests: 1 }];
  const buckets = fillBuckets(groups, hour, start + 10 * 60_000, start + 2 * hour + 5);
  assert.deepEqual(buckets.map((b) => [b.at - start, b.group?.requests ?? null]), [[0, 2], [hour, null], [2 * hour, 1]]);
  assert.equal(needsAttention({ health: 'healthy' }), false);
  assert.equal(needsAttention({ health: 'unknown' }), false);
  assert.equal(needsAttention({ health: 'needs_relogin' }), true);
  assert.equal(needsAttention({ health: 'cooling_down' }), true);
  // A person's own disable is a choice; Switchyard's is something to look at.
  assert.equal(needsAttention({ health: 'disabled', disabled_by: 'manual' }), false);
  assert.equal(needsAttention({ health: 'disabled', disabled_by: 'quota' }), true);
  assert.equal(formatRate(0, 0), '—');
  assert.equal(formatRate(0.6667, 3), '66.7 %');
});
