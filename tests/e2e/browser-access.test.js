// Browser access as a panel served from another origin has it: headless Chromium loads a page
// from a small Node server on another loopback port, whose script calls the real Switchyard
// binary's management API with the management key (reading X-CPA-VERSION, which a cross-origin
// script sees only if Access-Control-Expose-Headers lists it) and /v1/models with a client key.
// Both requests carry Authorization, so Chromium sends a CORS preflight for each first.
//
// Run: SWITCHYARD_BIN=target/debug/switchyard node --test tests/e2e/

import assert from 'node:assert/strict';
import * as http from 'node:http';

import { e2e } from './harness.js';

const CLIENT_KEY = 'client-key-e2e-0123456789';

// The page's script; it writes what it saw into #result as JSON.
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
    const models = await fetch(${JSON.stringify(`${base}/v1/models`)}, {
      headers: { Authorization: ${JSON.stringify(`Bearer ${CLIENT_KEY}`)} },
    });
    out.modelsStatus = models.status;
    out.modelsIsList = Array.isArray((await models.json()).data);
  } catch (error) {
    out.error = String(error);
  }
  const node = document.getElementById('result');
  node.textContent = JSON.stringify(out);
  node.dataset.done = '1';
})();
</script></body></html>`;
}

// A page server on its own loopback port: another origin than Switchyard's.
async function servePage(html) {
  const server = http.createServer((request, response) => {
    response.writeHead(200, { 'content-type': 'text/html; charset=utf-8' });
    response.end(html);
  });
  await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve));
  return server;
}

e2e('a page from another origin reads X-CPA-VERSION and lists /v1/models', async (h) => {
  await h.startSwitchyardWith(['api-keys:', `  - ${JSON.stringify(CLIENT_KEY)}`]);
  // What the server sends, read outside the browser (no CORS there).
  const direct = await fetch(`${h.base}/v0/management/config`, {
    headers: { Authorization: `Bearer ${h.managementKey}` },
  });
  const version = direct.headers.get('x-cpa-version');
  assert.ok(version, 'the server sends X-CPA-VERSION');

  const pageServer = await servePage(pageHtml(h.base, h.managementKey));
  try {
    const pageUrl = `http://127.0.0.1:${pageServer.address().port}/panel.html`;
    assert.notEqual(new URL(pageUrl).origin, new URL(h.base).origin);
    const page = await h.newPage();
    await page.goto(pageUrl);
    await page.locator('#result[data-done="1"]').waitFor({ state: 'attached' });
    const seen = JSON.parse(await page.locator('#result').textContent());
    assert.equal(seen.error, undefined, `the page's fetches failed: ${seen.error}`);
    assert.equal(seen.configStatus, 200);
    assert.equal(seen.version, version, 'X-CPA-VERSION is readable cross-origin');
    assert.ok(seen.buildDate, 'X-CPA-BUILD-DATE is readable cross-origin');
    assert.equal(seen.supportPlugin, 'false');
    assert.equal(seen.configHasPort, true);
    assert.equal(seen.modelsStatus, 200);
    assert.equal(seen.modelsIsList, true);
  } finally {
    await new Promise((resolve) => pageServer.close(resolve));
  }
}, { timeout: 240_000 });
