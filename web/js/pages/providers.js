// Providers: every provider of `/providers` with its accounts (`/auth-files`) and each
// account's state, with Re-login, Refresh token, Enable/Disable and "Send test request" (one
// real request pinned to the account, answered inline) per account. Login buttons only for
// logins the server offers.

import { get, patch, post } from '../api.js';
import { accountState, providerOf, reloginMethod, stateClass, stateLabel } from '../accounts.js';
import { busy, clear, errorBox, formatTime, h, modal, relativeTime, toast } from '../dom.js';
import { t } from '../i18n.js';
import { loginCard, stopFlows } from '../login-flow.js';

export async function render(root, { providers, navigate }) {
  const list = await providers();
  const body = h('div.stack');
  root.append(h('div.row', h('h1.grow', t('providers.title')),
    h('button', { type: 'button', id: 'providers-reload', onclick: (e) => busy(e.currentTarget, load) }, t('common.reload'))),
  h('p.muted', t('providers.intro')), body);

  async function load() {
    const { files = [] } = await get('/auth-files');
    const groups = new Map(list.map((p) => [p.id, []]));
    const others = [];
    for (const file of files) {
      const provider = providerOf(file, list);
      if (provider) groups.get(provider.id).push(file);
      else others.push(file);
    }
    clear(body, list.map((provider) => providerCard(provider, groups.get(provider.id), load, navigate)),
      others.length ? providerCard({ id: 'other', label: t('providers.other'), logins: [], serves: false, other: true }, others, load, navigate) : null);
  }
  try {
    await load();
  } catch (error) {
    clear(body, errorBox(error));
  }
  return stopFlows;
}

function providerCard(provider, files, reload, navigate) {
  const addable = provider.logins || [];
  const card = h('article.card.provider', { dataset: { provider: provider.id } },
    h('header', h('h3', provider.label), h('span.muted.small', provider.id),
      provider.other ? null : provider.serves ? h('span.badge.ok', t('providers.served')) : h('span.badge.warn', t('providers.notServed')),
      h('span.grow'),
      addable.length ? h('button', { type: 'button', class: 'add-account', onclick: () => addAccount(provider, reload) }, t('providers.addAccount')) : null),
    files.length ? files.map((file) => accountRow(file, provider, reload, navigate)) : h('p.muted.small', t('providers.noAccounts')));
  return card;
}

function addAccount(provider, reload) {
  modal(t('providers.addTo', { provider: provider.label }), () => h('div.stack',
    provider.logins.map((method) => loginCard(method, provider, { onDone: reload }))), { onClose: stopFlows });
}

function accountRow(file, provider, reload, navigate) {
  const state = accountState(file);
  const relogin = reloginMethod(provider);
  const oauth = !file.runtime_only && file.account_type !== 'api_key';
  const actions = h('div.actions');
  if (relogin && oauth && !provider.other) {
    actions.append(h('button', { type: 'button', class: 'relogin', onclick: () => reloginDialog(file, provider, relogin, reload) }, t('providers.relogin')));
  }
  if (oauth && state.kind !== 'invalid') {
    actions.append(h('button', {
      type: 'button', class: 'refresh',
      onclick: (e) => busy(e.currentTarget, async () => {
        const answer = await post('/auth-files/refresh', { name: file.name });
        toast(t('providers.refreshed', { name: file.name, when: formatTime(answer.expired) }), 'ok');
        await reload();
      }),
    }, t('providers.refresh')));
  }
  if (state.kind !== 'invalid') {
    actions.append(h('button', {
      type: 'button', class: file.disabled ? 'enable' : 'disable',
      onclick: (e) => busy(e.currentTarget, async () => {
        await patch('/auth-files/status', { name: file.name, auth_index: file.auth_index, disabled: !file.disabled });
        await reload();
      }),
    }, file.disabled ? t('providers.enable') : t('providers.disable')));
  }
  const tested = h('div.test-result', { 'aria-live': 'polite' });
  if (state.kind !== 'invalid' && file.auth_index) {
    actions.append(h('button', { type: 'button', class: 'test-request', onclick: (e) => testRequest(e.currentTarget, file, tested) }, t('providers.testRequest')));
  }
  if (!file.runtime_only) {
    actions.append(h('button.link', { type: 'button', onclick: () => navigate('auth-files', { file: file.name }) }, t('providers.details')));
  }
  return h('div.account', { dataset: { file: file.name } },
    h('div.who',
      h('div', h('strong', file.email || file.account || file.label || file.name)),
      h('div.small.muted', file.name),
      state.detail && state.kind !== 'relogin' ? h('div.msg', state.detail) : null,
      file.last_refresh ? h('div.small.muted', t('providers.lastRefresh', { when: relativeTime(file.last_refresh) })) : null),
    h('span.badge.account-state', { class: stateClass(state) }, stateLabel(state)),
    actions,
    tested);
}

// `POST /test-request`: the status the upstream gave, the latency, and the answer text or the
// server's sanitized error; a refusal before sending (disabled, unservable) shows its message.
function testRequest(button, file, out) {
  clear(out);
  return busy(button, async () => {
    const answer = await post('/test-request', { auth_index: file.auth_index });
    const ok = answer.status >= 200 && answer.status < 300 && !answer.error;
    clear(out, h(ok ? 'div.ok-box' : 'div.error-box', { dataset: { status: String(answer.status) } },
      h('div.row',
        h('span.badge.test-status', { class: ok ? 'ok' : 'bad' }, answer.status ? String(answer.status) : '—'),
        h('span.small', t('providers.testLatency', { ms: answer.latency_ms ?? '—' })),
        answer.model ? h('span.small.muted', answer.model) : null),
      h('div.test-text', ok ? (answer.answer || t('providers.testEmpty')) : (answer.error || t('providers.testFailed')))));
  }, { onError: (error) => clear(out, errorBox(error)) });
}

// Re-login: the provider's login again; the old file stays until the new one is saved (the
// server replaces it then and keeps the account's settings).
function reloginDialog(file, provider, method, reload) {
  modal(t('providers.reloginTitle', { name: file.email || file.name }), () => h('div.stack',
    h('p.small.muted', t('providers.reloginHint')),
    loginCard(method, provider, { heading: false, onDone: reload })), { onClose: stopFlows });
}
