// One login method as a card: its inputs (the method's `asks` from `/providers`), the start,
// and what follows — browser (authorization URL in a new tab, status polling with a spinner
// and elapsed time, pasted callback URL, cancel), device (user code, link, QR code,
// countdown), import (file upload) and cookie. Used by the OAuth Login page and by Re-login.

import { api, del, get, post } from './api.js';
import { accountState, stateClass, stateLabel } from './accounts.js';
import { append, clear, copyButton, duration, errorBox, h, isLoopbackHost, spinner } from './dom.js';
import { t } from './i18n.js';
import { qrSvg } from '../vendor/qr.js';

// CPA panels poll every 3 s, one request in flight.
export const POLL_MS = 3000;
const REMOTE_SLOT = 'switchyard.remoteBrowser';

// Whether the browser runs on another machine than the server: then the provider's redirect
// to the server's loopback callback cannot arrive by itself and the user pastes it.
export function remoteBrowser() {
  const stored = sessionStorage.getItem(REMOTE_SLOT);
  return stored === null ? !isLoopbackHost() : stored === '1';
}

export function setRemoteBrowser(on) {
  sessionStorage.setItem(REMOTE_SLOT, on ? '1' : '0');
}

// Every running flow, so a page can stop their timers when it is left.
const running = new Set();
export function stopFlows() {
  for (const flow of running) flow.stop();
  running.clear();
}

// The translated label of an ask (falls back to the server's own text).
function askLabel(ask) {
  const key = `ask.${ask.name}`;
  const text = t(key);
  return text === key ? ask.label : text;
}

function askInput(ask) {
  if (ask.type === 'file') return h('input', { type: 'file', name: ask.name, accept: '.json,application/json', required: ask.required });
  if (ask.type === 'secret') return h('textarea', { name: ask.name, rows: 3, required: ask.required, autocomplete: 'off', spellcheck: 'false' });
  return h('input', { type: 'text', name: ask.name, placeholder: ask.default || '', required: ask.required });
}

function kindLabel(kind) {
  return t(`kind.${kind}`);
}

// The card. `onDone(fileName)` after a saved account.
export function loginCard(method, provider, { onDone, heading = true } = {}) {
  const inputs = method.asks.map((ask) => ({ ask, input: askInput(ask) }));
  const startButton = h('button.primary', { type: 'button', class: 'start' }, t(`start.${method.kind}`));
  const status = h('div.flow', { 'aria-live': 'polite' });
  const card = h('article.card.login-card', { dataset: { login: method.login, method: method.method, kind: method.kind } },
    heading ? h('header', h('h3', provider.label), h('span.badge', kindLabel(method.kind)), h('span.muted', method.label)) : null,
    inputs.length ? h('div.form', inputs.map(({ ask, input }) => h('label.field', { class: ask.type === 'secret' ? 'wide' : '' },
      h('span', askLabel(ask), ask.required ? ' *' : ''), input,
      ask.type === 'file' && ask.default ? h('span.small.muted', t('login.fileDefault', { path: ask.default })) : null))) : null,
    h('div.row', startButton),
    status);

  let flow = null;
  const values = () => {
    const out = {};
    for (const { ask, input } of inputs) {
      if (ask.type === 'file') out[ask.name] = input.files?.[0] || null;
      else if (input.value.trim()) out[ask.name] = input.value.trim();
    }
    return out;
  };
  const missing = (given) => inputs.find(({ ask }) => ask.required && !given[ask.name]);

  startButton.addEventListener('click', async () => {
    const given = values();
    const absent = missing(given);
    if (absent) {
      clear(status, errorBox(t('login.required', { field: askLabel(absent.ask) })));
      return;
    }
    flow?.stop();
    startButton.disabled = true;
    const done = (file) => {
      startButton.disabled = false;
      startButton.textContent = t('login.another');
      onDone?.(file);
    };
    const failed = () => { startButton.disabled = false; };
    if (method.kind === 'browser' || method.kind === 'device') {
      // The tab is opened now, inside the click, so no popup blocker stops it; it is sent to
      // the authorization URL once the server answers.
      const tab = method.kind === 'browser' ? window.open('about:blank', '_blank') : null;
      if (tab) tab.opener = null;
      flow = new InteractiveFlow(method, given, status, tab, { done, failed });
      running.add(flow);
      flow.start();
    } else if (method.kind === 'import') {
      await runImport(method, given, status, { done, failed });
    } else if (method.kind === 'cookie') {
      await runCookie(method, given, status, { done, failed });
    }
  });
  return card;
}

// The account a finished login saved, with its state and a link to it.
async function savedAccount(file) {
  const box = h('div.ok-box.saved', { dataset: { file } }, h('strong', t('login.success')), ' ');
  append(box, [h('a', { href: `#/auth-files?file=${encodeURIComponent(file)}`, class: 'account-link' }, file), ' ']);
  try {
    const { files = [] } = await get(`/auth-files?name=${encodeURIComponent(file)}`);
    if (files[0]) {
      const state = accountState(files[0]);
      append(box, [h('span.badge.account-state', { class: stateClass(state) }, stateLabel(state))]);
      if (files[0].email) append(box, [' ', h('span.muted', files[0].email)]);
    }
  } catch (error) {
    append(box, [h('div.msg', error.message)]);
  }
  return box;
}

class InteractiveFlow {
  constructor(method, given, status, tab, { done, failed }) {
    Object.assign(this, { method, given, status, tab, done, failed });
    this.timers = [];
    this.stopped = false;
  }

  stop() {
    this.stopped = true;
    for (const timer of this.timers) clearInterval(timer);
    this.timers = [];
    running.delete(this);
  }

  async start() {
    const { method, status } = this;
    clear(status, h('div.progress', spinner(), t('login.starting')));
    const query = new URLSearchParams({ method: method.method });
    for (const [name, value] of Object.entries(this.given)) query.set(name, value);
    // On the server's own machine the server listens for the provider's redirect itself.
    if (method.kind === 'browser' && !remoteBrowser()) query.set('is_webui', 'true');
    let started;
    try {
      started = await get(`/${method.login}-auth-url?${query}`);
      if (!started.state) throw new Error(t('login.noState'));
    } catch (error) {
      this.tab?.close();
      clear(status, errorBox(t('login.startFailed', { message: error.message })));
      this.failed();
      this.stop();
      return;
    }
    this.state = started.state;
    this.startedAt = Date.now();
    if (started.flow === 'device') this.showDevice(started);
    else this.showBrowser(started);
    this.poll();
  }

  progressLine() {
    const elapsed = h('span.elapsed', '00:00');
    const line = h('div.progress.waiting', spinner(), h('span', t('login.waiting')), elapsed);
    this.timers.push(setInterval(() => { elapsed.textContent = duration((Date.now() - this.startedAt) / 1000); }, 1000));
    return line;
  }

  cancelButton() {
    const button = h('button.danger', { type: 'button', class: 'cancel' }, t('login.cancel'));
    button.addEventListener('click', async () => {
      button.disabled = true;
      try {
        await del(`/oauth-session?state=${encodeURIComponent(this.state)}`);
        this.finish(h('div.msg.cancelled', t('login.cancelled')));
        this.failed();
      } catch (error) {
        button.disabled = false;
        append(this.status, [errorBox(error)]);
      }
    });
    return button;
  }

  showBrowser(started) {
    if (this.tab) this.tab.location.href = started.url;
    const pasteInput = h('input.grow', { type: 'url', class: 'callback-url', placeholder: 'http://localhost:54545/callback?code=…&state=…', 'aria-label': t('login.callbackLabel') });
    const pasteStatus = h('div.paste-status');
    const pasteButton = h('button', { type: 'button', class: 'submit-callback' }, t('login.submitCallback'));
    pasteButton.addEventListener('click', async () => {
      const url = pasteInput.value.trim();
      if (!url) return;
      pasteButton.disabled = true;
      clear(pasteStatus, h('div.progress', spinner(), t('login.submitting')));
      try {
        await post('/oauth-callback', { provider: this.method.login, redirect_url: url });
        // Accepted is not finished: the poll reports the outcome.
        clear(pasteStatus, h('div.msg', t('login.callbackAccepted')));
      } catch (error) {
        clear(pasteStatus, errorBox(t('login.callbackFailed', { message: error.message })));
      } finally {
        pasteButton.disabled = false;
      }
    });
    const remote = remoteBrowser();
    this.live = h('div.stack',
      h('div', h('span.muted', t('login.authUrl')), ' ',
        h('a', { href: started.url, target: '_blank', rel: 'noopener noreferrer', class: 'auth-url' }, t('login.openAuthUrl')), ' ',
        copyButton(started.url)),
      h('p.small.muted', this.tab ? t('login.tabOpened') : t('login.openYourself')),
      this.progressLine(),
      h('div.stack.callback',
        h('label.field', h('span', t('login.callbackLabel')), h('div.row', pasteInput, pasteButton)),
        h('p.small.muted', remote ? t('login.callbackRemoteHint') : t('login.callbackLocalHint')),
        pasteStatus),
      h('div.row', this.cancelButton()));
    clear(this.status, this.live);
  }

  showDevice(started) {
    const link = started.verification_uri_complete || started.url || started.verification_uri;
    const countdown = h('span.countdown');
    const expiresAt = Date.now() + (Number(started.expires_in) || 0) * 1000;
    const tick = () => {
      const left = (expiresAt - Date.now()) / 1000;
      countdown.textContent = left > 0 ? t('login.expiresIn', { time: duration(left) }) : t('login.expired');
    };
    tick();
    this.timers.push(setInterval(tick, 1000));
    let qr = null;
    try {
      qr = h('div.qr', { title: link }, qrSvg(link));
    } catch {
      qr = null;
    }
    this.live = h('div.stack',
      h('div', h('div.muted.small', t('login.userCode')),
        h('div.row', h('span.user-code', { id: `code-${this.state}` }, started.user_code || '—'), copyButton(started.user_code || ''))),
      h('div', t('login.deviceVisit'), ' ',
        h('a', { href: link, target: '_blank', rel: 'noopener noreferrer', class: 'verification-url' }, started.verification_uri || link),
        ' ', copyButton(link)),
      h('div.row', qr, h('div.stack', countdown, h('p.small.muted', t('login.deviceHint')))),
      this.progressLine(),
      h('div.row', this.cancelButton()));
    clear(this.status, this.live);
  }

  finish(...children) {
    this.stop();
    clear(this.status, ...children);
  }

  async poll() {
    if (this.stopped) return;
    let answer;
    try {
      answer = await get(`/get-auth-status?state=${encodeURIComponent(this.state)}`);
    } catch (error) {
      // A passing network or server error: keep polling, show it meanwhile.
      answer = { status: 'wait', transient: error.message };
    }
    if (this.stopped) return;
    if (answer.status === 'ok') {
      const file = answer.file;
      this.finish(h('div.progress', spinner(), t('login.checkingAccount')));
      const box = await savedAccount(file);
      clear(this.status, box);
      this.done(file);
      return;
    }
    if (answer.status === 'error') {
      this.finish(errorBox(t('login.failed', { message: answer.error || '' })));
      this.failed();
      return;
    }
    this.timers.push(setTimeout(() => this.poll(), POLL_MS));
  }
}

async function runImport(method, given, status, { done, failed }) {
  clear(status, h('div.progress', spinner(), t('login.importing')));
  const form = new FormData();
  for (const ask of method.asks) {
    const value = given[ask.name];
    if (!value) continue;
    if (ask.type === 'file') form.append('file', value, value.name);
    else form.append(ask.name, value);
  }
  try {
    const answer = await api('POST', `/${method.login}/import?method=${encodeURIComponent(method.method)}`, { body: form });
    const rows = [['project_id', t('login.project')], ['email', t('login.email')], ['location', t('login.location')], ['file', t('login.fileName')]]
      .filter(([key]) => answer[key])
      .flatMap(([key, label]) => [h('span.k', label), h('span.v', { dataset: { field: key } }, answer[key])]);
    clear(status, h('div.stack', h('div.kv.import-result', rows), await savedAccount(answer.file)));
    done(answer.file);
  } catch (error) {
    clear(status, errorBox(t('login.importFailed', { message: error.message })));
    failed();
  }
}

async function runCookie(method, given, status, { done, failed }) {
  clear(status, h('div.progress', spinner(), t('login.submitting')));
  try {
    const answer = await post(`/${method.login}-auth-url`, { cookie: given.cookie });
    const file = String(answer.saved_path || '').split(/[\\/]/).pop();
    const rows = [['email', t('login.email')], ['expired', t('login.expires')], ['type', t('login.type')], ['saved_path', t('login.savedPath')]]
      .filter(([key]) => answer[key])
      .flatMap(([key, label]) => [h('span.k', label), h('span.v', answer[key])]);
    clear(status, h('div.stack', h('div.kv', rows), file ? await savedAccount(file) : null));
    done(file);
  } catch (error) {
    const message = error.status === 409 ? t('login.duplicate', { message: error.message }) : error.message;
    clear(status, errorBox(message));
    failed();
  }
}
