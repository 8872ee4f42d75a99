// Shared pieces of the panel suites (panel-*.test.js): the `switchyard-mock` binary (mock
// upstream APIs, the Kimi/xAI device-login servers and a Claude OAuth server with a consent
// page), Switchyard pointed at it, the panel opened and signed in, screenshots under
// target/panel-screenshots/, and a console watch that fails the test on any console error.

import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';

import { HERE, Proc, eventually, freePort } from './harness.js';

export const MOCK_BIN = process.env.SWITCHYARD_MOCK_BIN
  ? path.resolve(process.env.SWITCHYARD_MOCK_BIN)
  : path.join(HERE, '..', '..', 'target', 'debug', 'switchyard-mock');
export const SHOTS = path.join(HERE, '..', '..', 'target', 'panel-screenshots');

export const CLAUDE_EMAIL = 'claude-user@example.com';
export const CLAUDE_FILE = `claude-${CLAUDE_EMAIL}.json`;

// Starts switchyard-mock and reads its one JSON line.
export async function startMock(h) {
  // Its ports come from the harness, so they cannot be one it handed out already.
  const args = ['--port', String(await freePort()), '--control-port', String(await freePort())];
  const proc = h.track(new Proc('switchyard-mock', MOCK_BIN, args, { logFile: path.join(h.dir, 'mock.log') }));
  const [line] = await proc.waitForStdout(/^\{.*\}$/m);
  h.mock = JSON.parse(line);
  return h.mock;
}

// The config lines that point Switchyard at the mock: its upstream APIs, the Claude OAuth
// server, the Kimi and xAI device servers, and a free callback port for Claude logins.
export function mockConfigLines(mock) {
  const claude = `  claude:\n    authorize: ${mock.claude_login.authorize}\n    token: ${mock.claude_login.token}\n    profile: ${mock.claude_login.profile}\n`;
  const upstream = mock.upstream_urls_yaml.replace('  claude:\n', claude) + mock.login_urls_yaml;
  return [...upstream.trimEnd().split('\n'), 'oauth-callback-ports:', '  anthropic: 0'];
}

// Mock + Switchyard (with `extraLines` in its config).
export async function startStack(h, extraLines = []) {
  const mock = await startMock(h);
  await h.startSwitchyardWith([...mockConfigLines(mock), ...extraLines]);
  return mock;
}

// Collects console errors and uncaught exceptions of the panel's pages (those served from
// `origin`; the providers' own pages in other tabs are not ours to judge).
// `allow(regex)` accepts the browser's "Failed to load resource" line of an answer the test
// provokes on purpose (a wrong key, a refused paste); anything else fails `check()`.
export class ConsoleWatch {
  constructor(origin) {
    this.origin = origin;
    this.errors = [];
    this.allowed = [];
  }

  attach(page) {
    const ours = () => page.url().startsWith(this.origin);
    page.on('console', (message) => {
      if (message.type() === 'error' && ours()) this.errors.push(`${page.url()}: ${message.text()} (${message.location().url || ''})`);
    });
    page.on('pageerror', (error) => ours() && this.errors.push(`${page.url()}: uncaught ${error.message}`));
  }

  allow(pattern) {
    this.allowed.push(pattern);
  }

  check() {
    const unexpected = this.errors.filter((line) => !(/Failed to load resource/.test(line) && this.allowed.some((p) => p.test(line))));
    assert.deepEqual(unexpected, [], 'console errors on the panel pages');
  }
}

// A page with the console watched; every later page of the context (new tabs) too.
export async function panelPage(h, { width = 1280, height = 900 } = {}) {
  const page = await h.newPage();
  if (!h.consoleWatch) {
    h.consoleWatch = new ConsoleWatch(h.base);
    h.context.on('page', (other) => h.consoleWatch.attach(other));
  }
  h.consoleWatch.attach(page);
  await page.setViewportSize({ width, height });
  return page;
}

// Opens the panel and signs in with the management key; waits for the navigation.
export async function signIn(h, page, { hash = '' } = {}) {
  await page.goto(`${h.base}/management.html${hash}`);
  await page.locator('#management-key').fill(h.managementKey);
  await page.locator('#login-submit').click();
  await page.locator('#nav').waitFor();
  return page;
}

export async function openPage(page, id) {
  await page.locator(`#nav a.nav[data-page="${id}"]`).click();
  await page.locator(`#page-${id}`).waitFor();
  // The page's first data is in once no progress line is left.
  await eventually(`page ${id} to load`, async () => (await page.locator(`#page-${id} .progress`).count()) === 0);
}

export async function shot(page, name) {
  fs.mkdirSync(SHOTS, { recursive: true });
  await page.screenshot({ path: path.join(SHOTS, `${name}.png`), fullPage: true });
}

// An auth file written straight into the auth dir, as another tool would leave it.
export function writeAuthFile(h, name, content) {
  fs.mkdirSync(h.authDir, { recursive: true });
  const text = typeof content === 'string' ? content : JSON.stringify(content, null, 2);
  fs.writeFileSync(h.authFile(name), text, { mode: 0o600 });
}

// A Claude credential that needs no refresh for a day.
export function claudeCredential(email) {
  return {
    type: 'claude',
    email,
    access_token: `sk-ant-oat-${email}-access`,
    refresh_token: `sk-ant-ort-${email}-refresh`,
    expired: new Date(Date.now() + 24 * 3600 * 1000).toISOString(),
    last_refresh: new Date().toISOString(),
    disabled: false,
  };
}

// Waits until the management API lists `names` (the store picked up files written to disk).
export async function listed(h, names) {
  return eventually(`auth files ${names.join(', ')} listed`, async () => {
    const { body } = await h.mgmt('GET', '/auth-files');
    const have = new Set((body.files || []).map((f) => f.name));
    return names.every((n) => have.has(n));
  });
}
