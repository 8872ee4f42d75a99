// Browser access as a panel served from another origin has it: headless Chromium loads a page
// from a small Node server under a non-loopback name (`panel.e2e.test`, mapped to 127.0.0.1 by
// the harness's Chromium flags), whose script calls the real Switchyard binary's management API
// with the management key (reading X-CPA-VERSION, which a cross-origin script sees only if
// Access-Control-Expose-Headers lists it) and /v1/models with a client key. Both requests carry
// Authorization, so Chromium sends a CORS preflight for each first. The origin is listed in
// `allowed-origins`; the same page under an unlisted name (`other.e2e.test`) is refused by the
// browser itself: its preflights get a 403 without CORS headers, so both fetches fail.
//
// Run: SWITCHYARD_BIN=target/debug/switchyard node --test tests/e2e/

import assert from 'node:assert/strict';
import * as http from 'node:http';

import { e2e } from './harness.js';

const CLIENT_KEY = 'client-key-e2e-0123456789';

// The page's script; it writes what it saw into #result as JSON (each fetch's status, or its error).
function pageHtml(base, managementKey) {
  return `<!doctype html>
<html><head><meta charset="utf-8"><title>panel</title></head>
<body><pre id="result"></pre>
<script>
(async () => {
  const out = {};
  try {
    const config = await fetch(${JSON.stringify(`${base}/v0/management/config`)}, {
      headers: { Authorization: ${JSON.stringify(`Bearer ${managementKey}`)} },
    });
    out.configStatus = config.status;
    out.version = config.headers.get('x-cpa-version');
    out.buildDate = config.headers.get('x-cpa-build-date');
    out.supportPlugin = config.headers.get('x-cpa-support-plugin');
    out.configHasPort = typeof (await config.json()).port === 'number';
  } catch (error) {
    out.configError = String(error);
  }
  try {
    const models = await fetch(${JSON.stringify(`${base}/v1/models`)}, {
      headers: { Authorization: ${JSON.stringify(`Bearer ${CLIENT_KEY}`)} },
    });
    out.modelsStatus = models.status;
    out.modelsIsList = Array.isArray((await models.json()).data);
  } catch (error) {
    out.modelsError = String(error);
  }
  const node = document.getElementById('result');
  node.textContent = JSON.stringify(out);
  node.dataset.done = '1';
})();
</script></body></html>`;
}

// A page server on its own loopback port, answering under any name with `page.html`.
async function servePage(page) {
  const server = http.createServer((request, response) => {
    response.writeHead(200, { 'content-type': 'text/html; charset=utf-8' });
    response.end(page.html);
  });
  await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve));
  return server;
}

// What the page at `pageUrl` saw.
async function visit(h, pageUrl) {
  const page = await h.newPage();
  await page.goto(pageUrl);
  await page.locator('#result[data-done="1"]').waitFor({ state: 'attached' });
  return JSON.parse(await page.locator('#result').textContent());
}

e2e('a page from a listed origin reads X-CPA-VERSION and lists /v1/models; an unlisted origin is refused', async (h) => {
  // The page server first: its origin goes into the config, the page needs Switchyard's port.
  const page = { html: '' };
  const pageServer = await servePage(page);
  try {
    const port = pageServer.address().port;
    const listed = `http://panel.e2e.test:${port}`;
    const unlisted = `http://other.e2e.test:${port}`;
    await h.startSwitchyardWith([
      'api-keys:',
      `  - ${JSON.stringify(CLIENT_KEY)}`,
      'allowed-origins:',
      `  - ${JSON.stringify(listed)}`,
    ]);
    page.html = pageHtml(h.base, h.managementKey);

    // What the server sends, read outside the browser (no CORS there).
    const direct = await fetch(`${h.base}/v0/management/config`, {
      headers: { Authorization: `Bearer ${h.managementKey}` },
    });
    const version = direct.headers.get('x-cpa-version');
    assert.ok(version, 'the server sends X-CPA-VERSION');

    const seen = await visit(h, `${listed}/panel.html`);
    assert.equal(seen.configError, undefined, `the listed page's management fetch failed: ${seen.configError}`);
    assert.equal(seen.modelsError, undefined, `the listed page's /v1/models fetch failed: ${seen.modelsError}`);
    assert.equal(seen.configStatus, 200);
    assert.equal(seen.version, version, 'X-CPA-VERSION is readable cross-origin');
    assert.ok(seen.buildDate, 'X-CPA-BUILD-DATE is readable cross-origin');
    assert.equal(seen.supportPlugin, 'false');
    assert.equal(seen.configHasPort, true);
    assert.equal(seen.modelsStatus, 200);
    assert.equal(seen.modelsIsList, true);

    // The same page under a name the config does not list: the browser blocks both calls.
    const refused = await visit(h, `${unlisted}/panel.html`);
    assert.match(refused.configError ?? '', /TypeError/, `management answered an unlisted origin: ${JSON.stringify(refused)}`);
    assert.match(refused.modelsError ?? '', /TypeError/, `/v1/models answered an unlisted origin: ${JSON.stringify(refused)}`);
    assert.equal(refused.configStatus, undefined);
    assert.equal(refused.modelsStatus, undefined);
    // It was the server's refusal (a 403 preflight without CORS headers), not a network failure.
    const preflight = await fetch(`${h.base}/v0/management/config`, {
      method: 'OPTIONS',
      headers: { Origin: unlisted, 'Access-Control-Request-Method': 'GET', 'Access-Control-Request-Headers': 'authorization' },
    });
    assert.equal(preflight.status, 403);
    assert.equal(preflight.headers.get('access-control-allow-origin'), null);
  } finally {
    await new Promise((resolve) => pageServer.close(resolve));
  }
}, { timeout: 240_000 });
