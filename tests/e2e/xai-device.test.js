// The xAI (Grok) device login end to end: the real Switchyard binary with
// `upstream-urls.xai.issuer` pointing at a real OpenID Provider (npm `oidc-provider`, see
// oidc-device-server.js) that knows the Grok CLI's public client, driven by headless Chromium
// through the provider's code-confirmation, login and consent pages. Then a forced refresh
// against the same server, which rotates refresh tokens for public clients.
//
// Run: SWITCHYARD_BIN=target/debug/switchyard node --test tests/e2e/
// (`scripts/test` builds the binary, installs Chromium and the npm packages, and runs this.)

import assert from 'node:assert/strict';
import * as fs from 'node:fs';

import { e2e } from './harness.js';

// The Grok CLI's public OAuth client and the scopes Switchyard asks for (spec §1.5).
const XAI_CLIENT_ID = 'b1a00492-073a-47ea-816f-4c329264a828';
const XAI_SCOPES = ['openid', 'profile', 'email', 'offline_access', 'grok-cli:access', 'api:access'];
const LOGIN = 'grok-user';
const EMAIL = `${LOGIN}@example.test`;
const FILE = `xai-${EMAIL}.json`;
// The provider announces no polling interval, so Switchyard polls every 5 s (RFC 8628 §3.5);
// a login takes a few polls.
const LOGIN_TIMEOUT_MS = 60_000;

async function startBoth(h) {
  await h.startOidcDevice({ clientId: XAI_CLIENT_ID, scopes: XAI_SCOPES });
  await h.startSwitchyardWith(['upstream-urls:', '  xai:', `    issuer: ${JSON.stringify(h.issuer)}`]);
}

// `GET /xai-auth-url`: the device code comes from the provider's device authorization endpoint.
async function startLogin(h) {
  const { status, body } = await h.mgmt('GET', '/xai-auth-url');
  assert.equal(status, 200, `xai-auth-url answered ${status}: ${JSON.stringify(body)}`);
  assert.equal(body.status, 'ok');
  assert.equal(body.flow, 'device');
  assert.match(body.state, /^xai-[0-9a-f]+$/);
  assert.match(body.user_code, /^[A-Z]{4}-[A-Z]{4}$/);
  const verification = new URL(body.verification_uri);
  assert.equal(`${verification.origin}`, h.issuer, 'the verification page is the provider\'s');
  assert.equal(body.verification_uri_complete, `${body.verification_uri}?user_code=${body.user_code}`);
  assert.equal(body.url, body.verification_uri_complete, 'the URI to open has the code filled in');
  assert.equal(body.expires_in, 600, 'the provider\'s device code lifetime');
  assert.equal(body.interval, 5, 'no interval announced: the RFC 8628 default');
  const pending = await h.mgmt('GET', `/get-auth-status?state=${body.state}`);
  assert.equal(pending.body.status, 'wait');
  // A panel that reloads can show the code again from the status poll.
  assert.equal(pending.body.user_code, body.user_code);
  assert.equal(pending.body.verification_uri_complete, body.verification_uri_complete);
  assert.ok(pending.body.expires_in > 0 && pending.body.expires_in <= 600, `${pending.body.expires_in}`);
  return body;
}

// Opens `verification_uri_complete` and answers the code-confirmation page; `confirm: false`
// presses its Abort button instead.
async function confirmCode(h, started, { confirm = true } = {}) {
  const page = await h.newPage();
  await page.goto(started.verification_uri_complete);
  await page.locator('h1', { hasText: 'Confirm Device' }).waitFor();
  assert.match(await page.locator('body').innerText(), new RegExp(started.user_code));
  await page.getByRole('button', { name: confirm ? 'Continue' : '[ Abort ]' }).click();
  return page;
}

// After the confirmation: the development login page, then the consent page, then the
// provider's success page. Returns the consent page's text.
async function signInAndConsent(page) {
  await page.locator('input[name="login"]').fill(LOGIN);
  await page.locator('input[name="password"]').fill('any password works in dev mode');
  await page.getByRole('button', { name: 'Sign-in' }).click();
  const continueButton = page.getByRole('button', { name: 'Continue' });
  await continueButton.waitFor();
  const consentText = await page.locator('body').innerText();
  await continueButton.click();
  await page.locator('h1', { hasText: 'Sign-in Success' }).waitFor();
  return consentText;
}

function fileMode(file) {
  return fs.statSync(file).mode & 0o777;
}

function jwtClaims(jwt) {
  const parts = jwt.split('.');
  assert.equal(parts.length, 3, 'id_token is a JWT');
  return JSON.parse(Buffer.from(parts[1], 'base64url').toString('utf8'));
}

// A refresh-token grant sent straight to the provider as the public client.
async function refreshGrant(h, refreshToken) {
  const response = await fetch(h.oidcMetadata.token_endpoint, {
    method: 'POST',
    headers: { 'Content-Type': 'application/x-www-form-urlencoded', Accept: 'application/json' },
    body: new URLSearchParams({ grant_type: 'refresh_token', client_id: XAI_CLIENT_ID, refresh_token: refreshToken })
      .toString(),
  });
  return { status: response.status, body: await response.json() };
}

e2e('xAI device login in the browser against a real OpenID Provider, then a forced refresh rotates the tokens', async (h) => {
  await startBoth(h);
  const started = await startLogin(h);

  const page = await confirmCode(h, started);
  const consentText = await signInAndConsent(page);
  // The page lists every scope but openid and offline_access, which it words separately.
  for (const scope of XAI_SCOPES.filter((s) => s !== 'openid' && s !== 'offline_access')) {
    assert.match(consentText, new RegExp(`^${scope}$`, 'm'), `the consent page lists ${scope}`);
  }
  assert.match(consentText, /offline access/, 'offline_access is asked for, so a refresh token is issued');

  const done = await h.authStatus(started.state, LOGIN_TIMEOUT_MS);
  assert.deepEqual(done, { status: 'ok', file: FILE });
  assert.deepEqual(h.authFileNames(), [FILE]);
  assert.equal(fileMode(h.authFile(FILE)), 0o600);

  const saved = h.readAuthFile(FILE);
  assert.deepEqual(Object.keys(saved).sort(), [
    'access_token', 'auth_kind', 'base_url', 'disabled', 'email', 'expired', 'expires_in', 'id_token',
    'last_refresh', 'refresh_token', 'sub', 'token_endpoint', 'token_type', 'type',
  ]);
  assert.equal(saved.type, 'xai');
  assert.equal(saved.email, EMAIL);
  assert.equal(saved.sub, LOGIN);
  assert.equal(saved.auth_kind, 'oauth');
  assert.equal(saved.base_url, 'https://api.x.ai/v1');
  assert.equal(saved.token_endpoint, h.oidcMetadata.token_endpoint, 'the discovered token endpoint');
  assert.equal(saved.token_type, 'Bearer');
  assert.equal(saved.expires_in, 3600);
  assert.equal(saved.disabled, false);
  const lifetime = Date.parse(saved.expired) - Date.now();
  assert.ok(lifetime > 3500_000 && lifetime <= 3600_000, `expired ${saved.expired}`);
  assert.ok(saved.refresh_token.length > 20, 'a refresh token was issued');
  const claims = jwtClaims(saved.id_token);
  assert.equal(claims.iss, h.issuer);
  assert.equal(claims.aud, XAI_CLIENT_ID);
  assert.equal(claims.email, EMAIL);

  // The access token is real: the provider's userinfo endpoint takes it.
  const userinfo = await fetch(h.oidcMetadata.userinfo_endpoint, {
    headers: { Authorization: `Bearer ${saved.access_token}` },
  });
  assert.equal(userinfo.status, 200);
  assert.equal((await userinfo.json()).email, EMAIL);

  // A forced refresh through the management API.
  const refreshed = await h.mgmt('POST', '/auth-files/refresh', { body: { name: FILE } });
  assert.equal(refreshed.status, 200, JSON.stringify(refreshed.body));
  assert.equal(refreshed.body.status, 'ok');
  const after = h.readAuthFile(FILE);
  assert.notEqual(after.access_token, saved.access_token, 'a new access token');
  assert.notEqual(after.refresh_token, saved.refresh_token, 'oidc-provider rotates a public client\'s refresh token');
  for (const key of ['type', 'email', 'sub', 'auth_kind', 'base_url', 'token_endpoint', 'disabled']) {
    assert.deepEqual(after[key], saved[key], `${key} survives the refresh`);
  }
  assert.equal(fileMode(h.authFile(FILE)), 0o600);

  // The rotated-out refresh token is spent at the provider. Presenting it again is reuse, for
  // which oidc-provider also revokes the whole grant: the stored token dies with it, so the next
  // refresh needs a re-login and leaves the file exactly as it is.
  const reuse = await refreshGrant(h, saved.refresh_token);
  assert.equal(reuse.status, 400);
  assert.equal(reuse.body.error, 'invalid_grant');
  const bytes = fs.readFileSync(h.authFile(FILE));
  const dead = await h.mgmt('POST', '/auth-files/refresh', { body: { name: FILE } });
  assert.equal(dead.status, 409, JSON.stringify(dead.body));
  assert.equal(dead.body.needs_relogin, true);
  assert.match(dead.body.error, /invalid_grant/);
  assert.deepEqual(fs.readFileSync(h.authFile(FILE)), bytes, 'a dead refresh token must not touch the file');
}, { timeout: 180_000 });

e2e('xAI device code aborted on the confirmation page fails the login clearly and saves nothing', async (h) => {
  await startBoth(h);
  const started = await startLogin(h);
  const page = await confirmCode(h, started, { confirm: false });
  await page.locator('body', { hasText: 'The Sign-in request was interrupted' }).waitFor();

  const done = await h.authStatus(started.state, LOGIN_TIMEOUT_MS);
  assert.deepEqual(done, { status: 'error', error: 'Authentication failed: the user denied the device login' });
  assert.deepEqual(h.authFileNames(), []);
}, { timeout: 180_000 });

e2e('xAI login cancelled on the provider\'s login page fails clearly and saves nothing', async (h) => {
  await startBoth(h);
  const started = await startLogin(h);
  const page = await confirmCode(h, started);
  await page.locator('input[name="login"]').waitFor();
  await page.getByRole('link', { name: '[ Cancel ]' }).click();

  const done = await h.authStatus(started.state, LOGIN_TIMEOUT_MS);
  assert.deepEqual(done, { status: 'error', error: 'Authentication failed: the user denied the device login' });
  assert.deepEqual(h.authFileNames(), []);
}, { timeout: 180_000 });
