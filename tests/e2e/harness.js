// Shared pieces of the end-to-end suites: free ports, bounded waits, child processes with log
// files, the Switchyard binary with a config in a temp dir, the OpenID Provider of
// oidc-server.js, and headless Chromium driven by playwright-core.
//
// Every wait here has a bound; nothing sleeps for a fixed time to make an assertion hold.

import { spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as net from 'node:net';
import * as os from 'node:os';
import * as path from 'node:path';
import { randomBytes } from 'node:crypto';
import { fileURLToPath } from 'node:url';
import { test } from 'node:test';

import { chromium } from 'playwright-core';

export const HERE = path.dirname(fileURLToPath(import.meta.url));
// `SWITCHYARD_BIN` (relative to the working directory), else the debug build of this checkout.
export const SWITCHYARD_BIN = process.env.SWITCHYARD_BIN
  ? path.resolve(process.env.SWITCHYARD_BIN)
  : path.join(HERE, '..', '..', 'target', 'debug', 'switchyard');
export const CHROMIUM = process.env.CHROMIUM_PATH || '/usr/bin/chromium';
// The flags the machine needs: root needs --no-sandbox; without the background-networking
// flags Chromium keeps trying to reach Google through a closed network.
export const CHROMIUM_ARGS = [
  '--headless',
  '--no-sandbox',
  '--disable-gpu',
  '--disable-quic',
  '--no-first-run',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
  // Pages of other origins than Switchyard's loopback one: any `*.e2e.test` name is this machine.
  '--host-resolver-rules=MAP *.e2e.test 127.0.0.1',
];

// How long one step (a process start, a page, a status change) may take.
export const STEP_TIMEOUT_MS = 30_000;

// Every child process any harness started, killed when this process exits whatever happens.
const everyChild = new Set();
process.on('exit', () => {
  for (const child of everyChild) {
    try {
      child.kill('SIGKILL');
    } catch {
      // already gone
    }
  }
});

// Ports this process handed out. A port is closed again before its user binds it, so the kernel
// may give the same one to the next `listen(0)`; a child that bound port 0 itself once took a
// callback port picked a moment earlier. Every listener the tests start therefore gets its port
// from here, and no port is handed out twice.
const handedOut = new Set();

function kernelFreePort() {
  return new Promise((resolve, reject) => {
    const server = net.createServer();
    server.unref();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address();
      server.close(() => resolve(port));
    });
  });
}

export async function freePort() {
  for (;;) {
    const port = await kernelFreePort();
    if (!handedOut.has(port)) {
      handedOut.add(port);
      return port;
    }
  }
}

// Whether something accepts TCP connections on 127.0.0.1:`port` right now.
export async function isListening(port) {
  return new Promise((resolve) => {
    const socket = net.connect({ host: '127.0.0.1', port });
    socket.setTimeout(2_000);
    socket.once('connect', () => {
      socket.destroy();
      resolve(true);
    });
    socket.once('timeout', () => {
      socket.destroy();
      resolve(false);
    });
    socket.once('error', () => resolve(false));
  });
}

// `promise`, or an error naming `what` after `ms`.
export async function withTimeout(promise, ms, what) {
  let timer;
  const timeout = new Promise((_, reject) => {
    timer = setTimeout(() => reject(new Error(`timed out after ${ms} ms waiting for ${what}`)), ms);
  });
  try {
    return await Promise.race([promise, timeout]);
  } finally {
    clearTimeout(timer);
  }
}

// Polls `check` until it returns a truthy value (returned) or `timeoutMs` passes (throws with
// the last value seen). A thrown error counts as "not yet"; a returned Error ends the wait at
// once (nothing left to wait for, e.g. the process died).
export async function eventually(what, check, { timeoutMs = STEP_TIMEOUT_MS, intervalMs = 100 } = {}) {
  const deadline = Date.now() + timeoutMs;
  let last;
  for (;;) {
    let thrown = false;
    try {
      last = await check();
    } catch (error) {
      last = error;
      thrown = true;
    }
    if (last instanceof Error && !thrown) {
      throw new Error(`gave up waiting for ${what}: ${last.message}`);
    }
    if (last && !thrown) {
      return last;
    }
    if (Date.now() > deadline) {
      const seen = last instanceof Error ? last.message : JSON.stringify(last);
      throw new Error(`timed out after ${timeoutMs} ms waiting for ${what} (last: ${seen})`);
    }
    await new Promise((resolve) => setTimeout(resolve, intervalMs));
  }
}

export function tail(file, lines = 60) {
  try {
    return fs.readFileSync(file, 'utf8').split('\n').slice(-lines).join('\n');
  } catch {
    return '(no log)';
  }
}

// A child process whose stdout and stderr go to a log file; stdout is also kept in memory.
export class Proc {
  constructor(name, command, args, { env = {}, cwd, logFile, stdin = 'ignore' } = {}) {
    this.name = name;
    this.logFile = logFile;
    this.log = fs.openSync(logFile, 'a');
    this.stdout = '';
    const fullEnv = { ...process.env, NO_PROXY: '127.0.0.1,localhost', no_proxy: '127.0.0.1,localhost', ...env };
    for (const [key, value] of Object.entries(fullEnv)) {
      if (value === undefined) delete fullEnv[key];
    }
    this.child = spawn(command, args, {
      cwd,
      env: fullEnv,
      stdio: [stdin, 'pipe', 'pipe'],
    });
    everyChild.add(this.child);
    this.waiters = new Set();
    this.child.stdout.on('data', (chunk) => {
      this.stdout += chunk.toString();
      fs.writeSync(this.log, chunk);
      for (const waiter of this.waiters) waiter();
    });
    this.child.stderr.on('data', (chunk) => fs.writeSync(this.log, chunk));
    this.exited = new Promise((resolve) => {
      this.child.once('exit', (code, signal) => {
        everyChild.delete(this.child);
        this.exitCode = code;
        this.exitSignal = signal;
        for (const waiter of this.waiters) waiter();
        resolve({ code, signal });
      });
      this.child.once('error', (error) => {
        everyChild.delete(this.child);
        this.spawnError = error;
        for (const waiter of this.waiters) waiter();
        resolve({ code: null, signal: null, error });
      });
    });
  }

  get running() {
    return this.exitCode === undefined && this.exitSignal === undefined && !this.spawnError;
  }

  // The first match of `pattern` in stdout, waiting up to `timeoutMs` for it.
  async waitForStdout(pattern, timeoutMs = STEP_TIMEOUT_MS) {
    let wake;
    const changed = () => wake?.();
    this.waiters.add(changed);
    const deadline = Date.now() + timeoutMs;
    try {
      for (;;) {
        const match = this.stdout.match(pattern);
        if (match) return match;
        if (!this.running) {
          throw new Error(`${this.name} exited (${this.exitCode ?? this.exitSignal ?? this.spawnError}) `
            + `before printing ${pattern}:\n${tail(this.logFile)}`);
        }
        const left = deadline - Date.now();
        if (left <= 0) {
          throw new Error(`${this.name} did not print ${pattern} within ${timeoutMs} ms:\n${tail(this.logFile)}`);
        }
        await new Promise((resolve) => {
          wake = resolve;
          setTimeout(resolve, Math.min(left, 500));
        });
      }
    } finally {
      this.waiters.delete(changed);
    }
  }

  // SIGTERM, then SIGKILL if it has not exited within 5 s.
  async stop() {
    if (this.running) {
      this.child.kill('SIGTERM');
      try {
        await withTimeout(this.exited, 5_000, `${this.name} to exit`);
      } catch {
        this.child.kill('SIGKILL');
        await withTimeout(this.exited, 5_000, `${this.name} to die`).catch(() => {});
      }
    }
    try {
      fs.closeSync(this.log);
    } catch {
      // already closed
    }
  }
}

// One test's world: a temp dir, the processes it started, and one browser profile.
export class Harness {
  constructor(name) {
    const slug = name.replace(/[^a-z0-9]+/gi, '-').slice(0, 40);
    this.dir = fs.mkdtempSync(path.join(os.tmpdir(), `switchyard-e2e-${slug}-`));
    this.authDir = path.join(this.dir, 'auths');
    this.procs = [];
    this.context = null;
    this.page = null;
    this.managementKey = `e2e-${randomBytes(12).toString('hex')}`;
  }

  track(proc) {
    this.procs.push(proc);
    return proc;
  }

  // Starts oidc-server.js with `redirectUris` registered for its client; sets `this.issuer`.
  async startOidc({ redirectUris, accessTokenTtl = 120, refreshRule = 'client', applicationType = 'web' } = {}) {
    this.clientId = 'switchyard-e2e';
    this.clientSecret = `secret-${randomBytes(16).toString('hex')}`;
    const proc = this.track(new Proc('oidc-server', process.execPath, [path.join(HERE, 'oidc-server.js')], {
      cwd: HERE,
      logFile: path.join(this.dir, 'oidc-server.log'),
      env: {
        OIDC_CLIENT_ID: this.clientId,
        OIDC_CLIENT_SECRET: this.clientSecret,
        OIDC_REDIRECT_URIS: redirectUris.join(','),
        OIDC_ACCESS_TOKEN_TTL: String(accessTokenTtl),
        OIDC_REFRESH_RULE: refreshRule,
        OIDC_APPLICATION_TYPE: applicationType,
        OIDC_PORT: String(await freePort()),
      },
    }));
    this.oidc = proc;
    const [, issuer] = await proc.waitForStdout(/^(http:\/\/127\.0\.0\.1:\d+)\s*$/m);
    this.issuer = issuer;
    const metadata = await (await fetch(`${issuer}/.well-known/openid-configuration`)).json();
    this.oidcMetadata = metadata;
    return issuer;
  }

  // Starts oidc-device-server.js (the device grant) for the public client `clientId`, knowing
  // `scopes`; sets `this.issuer` and `this.oidcMetadata`.
  async startOidcDevice({ clientId, scopes, accessTokenTtl = 3600 }) {
    this.clientId = clientId;
    const proc = this.track(new Proc('oidc-device-server', process.execPath, [path.join(HERE, 'oidc-device-server.js')], {
      cwd: HERE,
      logFile: path.join(this.dir, 'oidc-device-server.log'),
      env: {
        OIDC_CLIENT_ID: clientId,
        OIDC_SCOPES: scopes.join(' '),
        OIDC_ACCESS_TOKEN_TTL: String(accessTokenTtl),
        OIDC_PORT: String(await freePort()),
      },
    }));
    this.oidc = proc;
    const [, issuer] = await proc.waitForStdout(/^(http:\/\/127\.0\.0\.1:\d+)\s*$/m);
    this.issuer = issuer;
    this.oidcMetadata = await (await fetch(`${issuer}/.well-known/openid-configuration`)).json();
    return issuer;
  }

  // Writes a Switchyard config: loopback port, auth dir, management key, then `extraLines`.
  async writeConfigLines(extraLines) {
    this.port = await freePort();
    this.configPath = path.join(this.dir, 'config.yaml');
    const yaml = [
      'host: 127.0.0.1',
      `port: ${this.port}`,
      `auth-dir: ${JSON.stringify(this.authDir)}`,
      'remote-management:',
      `  secret-key: ${JSON.stringify(this.managementKey)}`,
      ...extraLines,
      '',
    ].join('\n');
    fs.mkdirSync(this.authDir, { recursive: true, mode: 0o700 });
    fs.writeFileSync(this.configPath, yaml);
    return this.configPath;
  }

  // Writes the Switchyard config for the `acme` provider (callback port `callbackPort`).
  async writeConfig({ callbackPort, refreshLeadSeconds = 30 }) {
    this.callbackPort = callbackPort;
    return this.writeConfigLines([
      'oauth-providers:',
      '  - name: acme',
      '    label: Acme SSO',
      `    issuer: ${JSON.stringify(this.issuer)}`,
      `    client-id: ${JSON.stringify(this.clientId)}`,
      `    client-secret: ${JSON.stringify(this.clientSecret)}`,
      '    scopes: [openid, email, offline_access]',
      `    callback-port: ${callbackPort}`,
      // The access token lives 120 s; a lead below that keeps the background refresher out of
      // the way of the tests that refresh by hand.
      `    refresh-lead-seconds: ${refreshLeadSeconds}`,
    ]);
  }

  // Starts `switchyard --config <config>` with the `acme` provider and waits for /healthz.
  async startSwitchyard(options) {
    await this.writeConfig(options);
    return this.launchSwitchyard();
  }

  // Starts `switchyard --config <config>` with `extraLines` in its config; waits for /healthz.
  async startSwitchyardWith(extraLines) {
    await this.writeConfigLines(extraLines);
    return this.launchSwitchyard();
  }

  // Runs the binary on the config written last and waits for /healthz.
  async launchSwitchyard() {
    const proc = this.track(new Proc('switchyard', SWITCHYARD_BIN, ['--config', this.configPath], {
      cwd: this.dir,
      logFile: path.join(this.dir, 'switchyard.log'),
      env: { HOME: this.dir, RUST_LOG: process.env.RUST_LOG || 'info', MANAGEMENT_PASSWORD: undefined },
    }));
    this.switchyard = proc;
    this.base = `http://127.0.0.1:${this.port}`;
    await eventually('switchyard /healthz', async () => {
      if (!proc.running) {
        return new Error(`switchyard exited early (${proc.exitCode ?? proc.spawnError}):\n${tail(proc.logFile)}`);
      }
      const response = await fetch(`${this.base}/healthz`);
      return response.status === 200;
    });
    return proc;
  }

  // A management API call; `{status, body}` with the body parsed as JSON when it is.
  async mgmt(method, route, { body, auth = true } = {}) {
    const headers = {};
    if (auth) headers.Authorization = `Bearer ${this.managementKey}`;
    if (body !== undefined) headers['Content-Type'] = 'application/json';
    const response = await withTimeout(
      fetch(`${this.base}/v0/management${route}`, {
        method,
        headers,
        body: body === undefined ? undefined : JSON.stringify(body),
      }),
      STEP_TIMEOUT_MS,
      `${method} ${route}`,
    );
    const text = await response.text();
    let parsed = text;
    try {
      parsed = JSON.parse(text);
    } catch {
      // not JSON
    }
    return { status: response.status, body: parsed };
  }

  // Polls get-auth-status until the login leaves `wait`; returns the final body.
  async authStatus(state, timeoutMs = STEP_TIMEOUT_MS) {
    return eventually(`login ${state.slice(0, 8)}… to finish`, async () => {
      const { status, body } = await this.mgmt('GET', `/get-auth-status?state=${encodeURIComponent(state)}`);
      if (status !== 200) return new Error(`get-auth-status answered ${status} ${JSON.stringify(body)}`);
      return body.status === 'wait' ? null : body;
    }, { timeoutMs, intervalMs: 150 });
  }

  authFile(name) {
    return path.join(this.authDir, name);
  }

  readAuthFile(name) {
    return JSON.parse(fs.readFileSync(this.authFile(name), 'utf8'));
  }

  authFileNames() {
    try {
      return fs.readdirSync(this.authDir).filter((name) => name.endsWith('.json')).sort();
    } catch {
      return [];
    }
  }

  // A fresh page in this test's Chromium profile (started on first use), with no cookies, so
  // every login shows the provider's login and consent pages.
  async newPage() {
    if (!this.context) {
      this.context = await chromium.launchPersistentContext(path.join(this.dir, 'chromium-profile'), {
        executablePath: CHROMIUM,
        headless: true,
        args: CHROMIUM_ARGS,
        timeout: STEP_TIMEOUT_MS,
      });
      this.context.setDefaultTimeout(STEP_TIMEOUT_MS);
      this.context.setDefaultNavigationTimeout(STEP_TIMEOUT_MS);
    }
    await this.context.clearCookies();
    if (this.page && !this.page.isClosed()) await this.page.close();
    this.page = await this.context.newPage();
    return this.page;
  }

  // On failure: a screenshot of the page, and the end of every log, printed with their paths.
  async reportFailure() {
    const lines = [`e2e: kept the test's files in ${this.dir}`];
    if (this.page && !this.page.isClosed()) {
      const shot = path.join(this.dir, 'failure.png');
      try {
        await withTimeout(this.page.screenshot({ path: shot, fullPage: true }), 10_000, 'screenshot');
        lines.push(`e2e: screenshot of the browser at ${shot} (page ${this.page.url()})`);
      } catch (error) {
        lines.push(`e2e: no screenshot: ${error.message}`);
      }
    }
    for (const proc of this.procs) {
      lines.push(`--- ${proc.name} (${proc.logFile}) ---`, tail(proc.logFile, 40));
    }
    console.error(lines.join('\n'));
  }

  async cleanup({ keep }) {
    if (this.context) {
      await withTimeout(this.context.close(), 10_000, 'chromium to close').catch(() => {});
    }
    for (const proc of [...this.procs].reverse()) {
      await proc.stop();
    }
    if (!keep && !process.env.E2E_KEEP) {
      fs.rmSync(this.dir, { recursive: true, force: true });
    }
  }
}

// A test with its own harness; always cleans up; on failure keeps its files, takes a
// screenshot and prints the logs. `todo` (a reason) marks a known gap: node:test reports it
// as TODO, and its failure neither fails the run nor prints the logs.
export function e2e(name, body, { timeout = 120_000, todo } = {}) {
  test(name, { timeout, todo }, async (t) => {
    const harness = new Harness(name);
    let failed = true;
    try {
      await body(harness, t);
      failed = false;
    } catch (error) {
      if (!todo) await harness.reportFailure();
      throw error;
    } finally {
      await harness.cleanup({ keep: failed && !todo });
    }
  });
}
