// Custom OAuth providers declared in config (`oauth-providers:`), end to end: the Switchyard
// binary logs in to a real OpenID Provider (npm `oidc-provider`, see oidc-server.js) through
// headless Chromium, over the management API, the paste path and the CLI.
//
// Run: SWITCHYARD_BIN=target/debug/switchyard node --test tests/e2e/
// (`scripts/test` builds the binary, installs Chromium and the npm packages, and runs this.)

import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { randomBytes } from 'node:crypto';

import {
  Proc, STEP_TIMEOUT_MS, SWITCHYARD_BIN, e2e, eventually, freePort, isListening, withTimeout,
} from './harness.js';

const ACCOUNT = 'user@example.test';
const FILE = `acme-${ACCOUNT}.json`;

function callbackUri(port) {
  return `http://127.0.0.1:${port}/callback`;
}

// Starts the OpenID Provider (with `redirectUris`) and Switchyard (with the acme provider on
// `callbackPort`).
async function startBoth(h, { extraRedirectPorts = [], accessTokenTtl, refreshLeadSeconds, refreshRule } = {}) {
  const callbackPort = await freePort();
  const redirectUris = [callbackPort, ...extraRedirectPorts].map(callbackUri);
  await h.startOidc({ redirectUris, accessTokenTtl, refreshRule });
  await h.startSwitchyard({ callbackPort, refreshLeadSeconds });
  return { callbackPort, redirectUri: callbackUri(callbackPort) };
}

// `GET /acme-auth-url` (with `is_webui=true` when `webui`), checked for the fields of an
// authorization-code + PKCE request against the discovered endpoint.
async function startLogin(h, { webui, redirectUri }) {
  const { status, body } = await h.mgmt('GET', `/acme-auth-url${webui ? '?is_webui=true' : ''}`);
  assert.equal(status, 200, `acme-auth-url answered ${status}: ${JSON.stringify(body)}`);
  assert.equal(body.status, 'ok');
  assert.match(body.state, /^[A-Za-z0-9_.-]{16,}$/);
  checkAuthorizeUrl(h, body.url, { state: body.state, redirectUri });
  return body;
}

function checkAuthorizeUrl(h, url, { state, redirectUri }) {
  const parsed = new URL(url);
  assert.equal(`${parsed.origin}${parsed.pathname}`, h.oidcMetadata.authorization_endpoint);
  const query = parsed.searchParams;
  assert.equal(query.get('response_type'), 'code');
  assert.equal(query.get('client_id'), h.clientId);
  assert.equal(query.get('redirect_uri'), redirectUri);
  assert.deepEqual(query.get('scope').split(' ').sort(), ['email', 'offline_access', 'openid']);
  assert.equal(query.get('code_challenge_method'), 'S256');
  assert.equal(query.get('prompt'), 'consent', 'offline_access needs prompt=consent (OIDC Core §11)');
  assert.match(query.get('code_challenge'), /^[A-Za-z0-9_-]{43}$/);
  if (state) assert.equal(query.get('state'), state);
}

// Opens `url` in a fresh page and goes through oidc-provider's development login and consent
// pages. Resolves once the browser asked for `redirectUri`; returns that request's URL (the
// callback with `code` and `state`, whether or not anything listens there) and the text of the
// consent page.
async function signInWithBrowser(h, url, { redirectUri, login = 'user', consent = true }) {
  const page = await h.newPage();
  const callback = page.waitForRequest((request) => request.url().startsWith(`${redirectUri}?`), {
    timeout: STEP_TIMEOUT_MS,
  });
  callback.catch(() => {}); // awaited below; a failure before then must not go unhandled
  await page.goto(url);
  await page.locator('input[name="login"]').fill(login);
  await page.locator('input[name="password"]').fill('any password works in dev mode');
  await page.getByRole('button', { name: 'Sign-in' }).click();
  // The consent page lists what the client asks for.
  const continueButton = page.getByRole('button', { name: 'Continue' });
  await continueButton.waitFor();
  const consentText = await page.locator('body').innerText();
  assert.match(consentText, /scopes:\s*email/, consentText);
  if (consent) {
    await continueButton.click();
  } else {
    await page.getByRole('link', { name: '[ Cancel ]' }).click();
  }
  const request = await callback;
  return { redirect: request.url(), consentText };
}

// The page the local callback listener showed.
async function callbackPageHeading(h, redirectUri) {
  await h.page.waitForURL((u) => u.href.startsWith(`${redirectUri}?`));
  await h.page.waitForLoadState('domcontentloaded');
  return (await h.page.locator('h1').innerText()).trim();
}

async function userinfo(h, accessToken) {
  const response = await fetch(h.oidcMetadata.userinfo_endpoint, {
    headers: { Authorization: `Bearer ${accessToken}` },
  });
  return { status: response.status, body: response.status === 200 ? await response.json() : await response.text() };
}

// A direct request to the provider's token endpoint as the configured client.
async function tokenRequest(h, form) {
  const basic = Buffer.from(`${encodeURIComponent(h.clientId)}:${encodeURIComponent(h.clientSecret)}`)
    .toString('base64');
  const response = await fetch(h.oidcMetadata.token_endpoint, {
    method: 'POST',
    headers: {
      Authorization: `Basic ${basic}`,
      'Content-Type': 'application/x-www-form-urlencoded',
      Accept: 'application/json',
    },
    body: new URLSearchParams(form).toString(),
  });
  return { status: response.status, body: await response.json() };
}

function fileMode(file) {
  return fs.statSync(file).mode & 0o777;
}

// Checks the saved credential of the acme account and returns its content. `offlineAccess`:
// require the `offline_access` scope to have been granted (see oidc-server.js for when it is).
function checkSavedCredential(h, { name = FILE, offlineAccess = false } = {}) {
  const file = h.authFile(name);
  assert.ok(fs.existsSync(file), `${file} should exist; auth dir has ${h.authFileNames()}`);
  assert.equal(fileMode(file), 0o600, `${file} should be mode 0600`);
  const saved = h.readAuthFile(name);
  assert.equal(saved.type, 'acme');
  assert.equal(saved.email, ACCOUNT);
  assert.equal(saved.account, ACCOUNT);
  assert.equal(saved.sub, 'user');
  assert.equal(saved.token_endpoint, h.oidcMetadata.token_endpoint);
  assert.equal(typeof saved.access_token, 'string');
  assert.ok(saved.access_token.length > 20, 'access_token');
  assert.equal(typeof saved.refresh_token, 'string');
  assert.ok(saved.refresh_token.length > 20, 'refresh_token');
  assert.equal(typeof saved.id_token, 'string');
  assert.equal(saved.token_type, 'Bearer');
  const granted = saved.scope.split(' ');
  assert.ok(granted.includes('openid') && granted.includes('email'), `scope ${saved.scope}`);
  if (offlineAccess) assert.ok(granted.includes('offline_access'), `scope ${saved.scope}`);
  assert.equal(saved.disabled, false);
  // The provider's 120 s access token lifetime, give or take the test's own pace.
  const expiresIn = (Date.parse(saved.expired) - Date.now()) / 1000;
  assert.ok(expiresIn > 60 && expiresIn <= 121, `expired ${saved.expired} is ${expiresIn} s away`);
  return saved;
}

async function listedEntry(h, name = FILE) {
  const { status, body } = await h.mgmt('GET', '/auth-files');
  assert.equal(status, 200);
  return body.files.find((file) => file.name === name);
}

// A complete login through the management API with the local listener (the panel's way).
async function webuiLogin(h, redirectUri) {
  const started = await startLogin(h, { webui: true, redirectUri });
  // The listener is up before the URL is handed out.
  assert.equal(await isListening(h.callbackPort), true, 'callback listener should be up');
  await signInWithBrowser(h, started.url, { redirectUri });
  assert.equal(await callbackPageHeading(h, redirectUri), 'Authentication successful!');
  const final = await h.authStatus(started.state);
  assert.deepEqual(final, { status: 'ok', file: FILE });
  return started;
}

// A login started without `is_webui`: nobody listens on the callback port, so the browser ends
// on a connection error at the callback URL, which is what a user would paste.
async function pasteLoginUpToRedirect(h, redirectUri) {
  const started = await startLogin(h, { webui: false, redirectUri });
  assert.equal(await isListening(h.callbackPort), false, 'no listener without is_webui');
  const { redirect } = await signInWithBrowser(h, started.url, { redirectUri });
  const query = new URL(redirect).searchParams;
  assert.equal(query.get('state'), started.state);
  assert.ok(query.get('code'), `callback without code: ${redirect}`);
  return { ...started, redirect };
}

e2e('browser login with PKCE through the management API saves the account', async (h) => {
  const { redirectUri, callbackPort } = await startBoth(h);
  await webuiLogin(h, redirectUri);

  const saved = checkSavedCredential(h);
  // The tokens are the provider's own: its userinfo endpoint accepts the access token.
  const info = await userinfo(h, saved.access_token);
  assert.equal(info.status, 200, `userinfo: ${JSON.stringify(info.body)}`);
  assert.equal(info.body.email, ACCOUNT);
  assert.equal(info.body.sub, 'user');

  const entry = await listedEntry(h);
  assert.ok(entry, 'the listing should show the new file');
  assert.equal(entry.type, 'acme');
  assert.equal(entry.status, 'active');
  assert.equal(entry.email, ACCOUNT);
  assert.equal(entry.account_type, 'oauth');
  assert.equal(entry.disabled, false);

  // The one-shot listener stops once its callback arrived.
  await eventually('the callback listener to close', async () => !(await isListening(callbackPort)));
});

e2e('forced refresh renews the access token and stores the rotated refresh token', async (h) => {
  const { redirectUri } = await startBoth(h);
  await webuiLogin(h, redirectUri);
  const before = checkSavedCredential(h);

  const first = await h.mgmt('POST', '/auth-files/refresh', { body: { name: FILE } });
  assert.equal(first.status, 200, `refresh answered ${first.status}: ${JSON.stringify(first.body)}`);
  assert.equal(first.body.status, 'ok');
  const afterFirst = checkSavedCredential(h);
  assert.notEqual(afterFirst.access_token, before.access_token, 'a new access token');
  // oidc-provider is configured to rotate refresh tokens on every use.
  assert.notEqual(afterFirst.refresh_token, before.refresh_token, 'the rotated refresh token is saved');
  assert.equal(first.body.expired, afterFirst.expired);
  assert.equal((await userinfo(h, afterFirst.access_token)).status, 200);

  // The saved (rotated) refresh token works: a second refresh succeeds.
  const second = await h.mgmt('POST', '/auth-files/refresh', { body: { name: FILE } });
  assert.equal(second.status, 200, `second refresh answered ${second.status}: ${JSON.stringify(second.body)}`);
  const afterSecond = checkSavedCredential(h);
  assert.notEqual(afterSecond.access_token, afterFirst.access_token);
  assert.notEqual(afterSecond.refresh_token, afterFirst.refresh_token);
  assert.equal((await userinfo(h, afterSecond.access_token)).status, 200);

  const entry = await listedEntry(h);
  assert.equal(entry.status, 'active');
  assert.equal(entry.needs_relogin, false);

  // The first refresh token really was consumed by the provider (so storing the new one
  // mattered). Done last: oidc-provider treats reuse as theft and revokes the whole grant.
  const reused = await tokenRequest(h, { grant_type: 'refresh_token', refresh_token: before.refresh_token });
  assert.equal(reused.status, 400);
  assert.equal(reused.body.error, 'invalid_grant');
});

e2e('paste path: the redirect URL POSTed to /oauth-callback completes the login', async (h) => {
  const { redirectUri } = await startBoth(h);
  const { state, redirect } = await pasteLoginUpToRedirect(h, redirectUri);

  assert.deepEqual((await h.mgmt('GET', `/get-auth-status?state=${state}`)).body, { status: 'wait' });
  // Needs no management key: knowing the state is the proof.
  const pasted = await h.mgmt('POST', '/oauth-callback', { body: { redirect_url: redirect }, auth: false });
  assert.equal(pasted.status, 200, JSON.stringify(pasted.body));
  assert.equal(pasted.body.status, 'ok');
  assert.deepEqual(await h.authStatus(state), { status: 'ok', file: FILE });
  checkSavedCredential(h);
  assert.equal((await listedEntry(h)).status, 'active');

  // Each login completes once.
  const again = await h.mgmt('POST', '/oauth-callback', { body: { redirect_url: redirect }, auth: false });
  assert.equal(again.status, 409, JSON.stringify(again.body));
});

e2e('a callback with an altered state is refused and writes nothing', async (h) => {
  const { redirectUri } = await startBoth(h);
  const { state, redirect } = await pasteLoginUpToRedirect(h, redirectUri);

  const altered = new URL(redirect);
  const forged = randomBytes(state.length / 2 + 1).toString('hex').slice(0, state.length);
  assert.notEqual(forged, state);
  altered.searchParams.set('state', forged);
  const refused = await h.mgmt('POST', '/oauth-callback', { body: { redirect_url: altered.href }, auth: false });
  assert.equal(refused.status, 404, JSON.stringify(refused.body));
  assert.equal(refused.body.error, 'unknown or expired state');
  assert.equal(refused.body.status, 'error');
  assert.deepEqual(h.authFileNames(), [], 'nothing may be written');
  assert.deepEqual((await listedEntry(h)), undefined);
  // The real login is untouched and still waiting.
  assert.deepEqual((await h.mgmt('GET', `/get-auth-status?state=${state}`)).body, { status: 'wait' });
  assert.deepEqual((await h.mgmt('GET', `/get-auth-status?state=${forged}`)).body, {
    status: 'error',
    error: 'unknown or expired state',
  });

  // Control: the genuine callback still completes it, so the refusal was about the state alone.
  const genuine = await h.mgmt('POST', '/oauth-callback', { body: { redirect_url: redirect }, auth: false });
  assert.equal(genuine.status, 200, JSON.stringify(genuine.body));
  assert.deepEqual(await h.authStatus(state), { status: 'ok', file: FILE });
  checkSavedCredential(h);
});

e2e('a wrong PKCE verifier is refused by the provider, and Switchyard reports the failed exchange', async (h) => {
  const { redirectUri } = await startBoth(h);
  // Two logins in flight, each with its own verifier. The browser completes login B only.
  const loginA = await startLogin(h, { webui: false, redirectUri });
  const { state: stateB, redirect: redirectB } = await pasteLoginUpToRedirect(h, redirectUri);
  assert.notEqual(loginA.state, stateB);
  const codeB = new URL(redirectB).searchParams.get('code');

  // 1. oidc-provider itself: B's real code with a well-formed but wrong verifier.
  const wrongVerifier = randomBytes(48).toString('base64url'); // 64 characters of [A-Za-z0-9_-]
  const direct = await tokenRequest(h, {
    grant_type: 'authorization_code',
    code: codeB,
    redirect_uri: redirectUri,
    code_verifier: wrongVerifier,
  });
  assert.equal(direct.status, 400, JSON.stringify(direct.body));
  assert.equal(direct.body.error, 'invalid_grant');
  assert.equal(direct.body.access_token, undefined);

  // 2. Switchyard: B's code handed to login A, whose exchange sends A's verifier, which does not
  // match the challenge B's code is bound to (the code-injection case PKCE exists for).
  const injected = new URL(redirectUri);
  injected.search = new URLSearchParams({ code: codeB, state: loginA.state }).toString();
  const delivered = await h.mgmt('POST', '/oauth-callback', { body: { redirect_url: injected.href }, auth: false });
  assert.equal(delivered.status, 200, JSON.stringify(delivered.body));
  const failed = await h.authStatus(loginA.state);
  assert.equal(failed.status, 'error', JSON.stringify(failed));
  assert.match(failed.error, /invalid_grant/);
  assert.deepEqual(h.authFileNames(), [], 'a failed exchange writes nothing');
  assert.equal(await listedEntry(h), undefined);
  // Both refusals were the provider's PKCE check.
  const oidcLog = fs.readFileSync(h.oidc.logFile, 'utf8');
  const mismatches = oidcLog.match(/code_verifier does not match code_challenge/g) || [];
  assert.equal(mismatches.length, 2, `oidc-server log:\n${oidcLog}`);

  // Control: B's code was good all along; with B's own verifier the login completes.
  const genuine = await h.mgmt('POST', '/oauth-callback', { body: { redirect_url: redirectB }, auth: false });
  assert.equal(genuine.status, 200, JSON.stringify(genuine.body));
  assert.deepEqual(await h.authStatus(stateB), { status: 'ok', file: FILE });
  checkSavedCredential(h);
});

// `switchyard --config <cfg> login acme --no-browser --callback-port <port>`.
function startCliLogin(h, port) {
  const args = ['--config', h.configPath, 'login', 'acme', '--no-browser', '--callback-port', String(port),
    '--timeout', '90'];
  return h.track(new Proc('switchyard login', SWITCHYARD_BIN, args, {
    cwd: h.dir,
    logFile: path.join(h.dir, `switchyard-login-${port}.log`),
    env: { HOME: h.dir, MANAGEMENT_PASSWORD: undefined },
    stdin: 'pipe',
  }));
}

async function cliAuthorizeUrl(h, cli) {
  const escaped = h.oidcMetadata.authorization_endpoint.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
  const [url] = await cli.waitForStdout(new RegExp(`^${escaped}\\?\\S+$`, 'm'));
  return url;
}

e2e('CLI login with --no-browser completes in the browser and saves the account', async (h) => {
  const cliPort = await freePort();
  await startBoth(h, { extraRedirectPorts: [cliPort] });
  const cli = startCliLogin(h, cliPort);
  const url = await cliAuthorizeUrl(h, cli);
  const redirectUri = callbackUri(cliPort);
  checkAuthorizeUrl(h, url, { redirectUri });

  await signInWithBrowser(h, url, { redirectUri });
  assert.equal(await callbackPageHeading(h, redirectUri), 'Authentication successful!');
  const { code } = await withTimeout(cli.exited, STEP_TIMEOUT_MS, 'switchyard login to exit');
  assert.equal(code, 0, `exit code ${code}; output:\n${fs.readFileSync(cli.logFile, 'utf8')}`);
  assert.match(cli.stdout, new RegExp(`Credential saved to ${h.authFile(FILE).replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}`));
  checkSavedCredential(h);

  // The running gateway picks the new file up from the auth dir.
  const entry = await eventually('the gateway to list the CLI login', () => listedEntry(h));
  assert.equal(entry.status, 'active');
  assert.equal(entry.type, 'acme');
});

e2e('CLI login ends with exit code 5 when the user cancels at the provider', async (h) => {
  const cliPort = await freePort();
  await startBoth(h, { extraRedirectPorts: [cliPort] });
  const cli = startCliLogin(h, cliPort);
  const url = await cliAuthorizeUrl(h, cli);
  const redirectUri = callbackUri(cliPort);

  const { redirect } = await signInWithBrowser(h, url, { redirectUri, consent: false });
  assert.equal(new URL(redirect).searchParams.get('error'), 'access_denied');
  assert.equal(await callbackPageHeading(h, redirectUri), 'Authentication failed');
  const { code } = await withTimeout(cli.exited, STEP_TIMEOUT_MS, 'switchyard login to exit');
  assert.equal(code, 5, `exit code ${code}; output:\n${fs.readFileSync(cli.logFile, 'utf8')}`);
  assert.doesNotMatch(cli.stdout, /Credential saved/);
  assert.deepEqual(h.authFileNames(), []);
});

e2e('CLI login ends with exit code 4 when the browser never comes back', async (h) => {
  const cliPort = await freePort();
  await startBoth(h, { extraRedirectPorts: [cliPort] });
  const args = ['--config', h.configPath, 'login', 'acme', '--no-browser', '--callback-port', String(cliPort),
    '--timeout', '2'];
  const cli = h.track(new Proc('switchyard login', SWITCHYARD_BIN, args, {
    cwd: h.dir,
    logFile: path.join(h.dir, 'switchyard-login-timeout.log'),
    env: { HOME: h.dir, MANAGEMENT_PASSWORD: undefined },
    stdin: 'pipe',
  }));
  await cliAuthorizeUrl(h, cli);
  const { code } = await withTimeout(cli.exited, STEP_TIMEOUT_MS, 'switchyard login to time out');
  assert.equal(code, 4, `exit code ${code}; output:\n${fs.readFileSync(cli.logFile, 'utf8')}`);
  assert.deepEqual(h.authFileNames(), []);
});

e2e('callback-port 0: the listener takes a free port, which a native (RFC 8252) client accepts', async (h) => {
  // Registered without a port: oidc-provider lets native clients use any loopback port.
  await h.startOidc({ redirectUris: ['http://127.0.0.1/callback'], applicationType: 'native' });
  await h.startSwitchyard({ callbackPort: 0 });
  const { status, body } = await h.mgmt('GET', '/acme-auth-url?is_webui=true');
  assert.equal(status, 200, JSON.stringify(body));
  const redirectUri = new URL(body.url).searchParams.get('redirect_uri');
  const port = Number(new URL(redirectUri).port);
  assert.ok(port > 0, `redirect URI ${redirectUri} names a real port`);
  checkAuthorizeUrl(h, body.url, { state: body.state, redirectUri: callbackUri(port) });
  assert.equal(await isListening(port), true);
  await signInWithBrowser(h, body.url, { redirectUri });
  assert.equal(await callbackPageHeading(h, redirectUri), 'Authentication successful!');
  assert.deepEqual(await h.authStatus(body.state), { status: 'ok', file: FILE });
  checkSavedCredential(h);
});

e2e('the background refresher renews a short-lived token before it expires', async (h) => {
  // 15 s tokens, renewed when less than 10 s are left: due about 5 s after the login.
  const { redirectUri } = await startBoth(h, { accessTokenTtl: 15, refreshLeadSeconds: 10 });
  await webuiLogin(h, redirectUri);
  const before = h.readAuthFile(FILE);
  const renewed = await eventually('a background refresh', () => {
    const now = h.readAuthFile(FILE);
    return now.access_token !== before.access_token ? now : null;
  }, { timeoutMs: 45_000, intervalMs: 250 });
  assert.notEqual(renewed.refresh_token, before.refresh_token);
  assert.equal(fileMode(h.authFile(FILE)), 0o600);
  assert.ok(Date.parse(renewed.expired) > Date.parse(before.expired));
  assert.equal((await userinfo(h, renewed.access_token)).status, 200);
  // It keeps renewing every few seconds, so the listing may catch it in the act.
  assert.match((await listedEntry(h)).status, /^(active|refreshing)$/);
});

// oidc-provider's own rule (OpenID Connect Core §11): `offline_access` only counts when the
// authorization request has `prompt=consent`, and refresh tokens come only with `offline_access`.
// Switchyard adds `prompt=consent` whenever it asks for `offline_access`.

e2e('Switchyard\'s own authorization URL gets a refresh token under the provider\'s default rule', async (h) => {
  const { redirectUri } = await startBoth(h, { refreshRule: 'offline-access' });
  const started = await startLogin(h, { webui: true, redirectUri });
  const { consentText } = await signInWithBrowser(h, started.url, { redirectUri });
  assert.equal(await callbackPageHeading(h, redirectUri), 'Authentication successful!');
  assert.deepEqual(await h.authStatus(started.state), { status: 'ok', file: FILE });
  assert.match(consentText, /asking to have offline access/, 'offline_access was dropped from the request');
  checkSavedCredential(h, { offlineAccess: true });
});
