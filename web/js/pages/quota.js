// Quota: every account's last reading from `GET /quota` — one bar per window with its reset, the
// plan, where the reading came from and when — an aggregate per provider and window across
// accounts, and refresh buttons (one account, or all). The listing never asks upstream; only a
// refresh does (`POST /quota/refresh`). Unknown stays unknown: no bar is drawn without a number.

import { get, post } from '../api.js';
import { busy, clear, errorBox, h, relativeTime } from '../dom.js';
import { t } from '../i18n.js';

// Used shares from these (percent) on are shown as warnings and as nearly exhausted.
const WARN_PERCENT = 80;
const BAD_PERCENT = 95;

export async function render(root, { navigate }) {
  const provider = h('select', { id: 'quota-provider', 'aria-label': t('files.provider') });
  const summary = h('div.stats', { id: 'quota-summary' });
  const aggregate = h('div', { id: 'quota-aggregate' });
  const list = h('div.stack', { id: 'quota-accounts' });
  const refreshAll = h('button.primary', { type: 'button', id: 'quota-refresh-all', onclick: (e) => busy(e.currentTarget, () => refresh(null)) }, t('quota.refreshAll'));
  let answer = null;

  root.append(
    h('div.row', h('h1.grow', t('quota.title')), provider, refreshAll),
    h('p.muted', t('quota.intro')),
    summary, aggregate, list);
  provider.addEventListener('change', show);

  function show() {
    if (!answer) return;
    const wanted = provider.value;
    const accounts = answer.accounts.filter((a) => !wanted || a.provider === wanted);
    const agg = answer.aggregate;
    clear(summary,
      stat('accounts', t('quota.accounts'), agg.accounts),
      stat('read', t('quota.read'), `${agg.read} / ${agg.supported}`),
      stat('failed', t('quota.failed'), agg.failed),
      stat('exhausted', t('quota.exhausted'), agg.exhausted),
      stat('schedule', t('quota.schedule'), answer.refresh_interval_seconds ? t('quota.every', { s: answer.refresh_interval_seconds }) : t('quota.onRequest')));
    clear(aggregate, aggregateTable(agg.windows.filter((w) => !wanted || w.provider === wanted)));
    clear(list, accounts.length ? accounts.map((a) => accountCard(a, refresh, navigate)) : h('p.muted', t('quota.none')));
  }

  async function load() {
    answer = await get('/quota');
    const providers = [...new Set(answer.accounts.map((a) => a.provider))].sort();
    const current = provider.value;
    clear(provider, h('option', { value: '' }, t('insp.allProviders')),
      providers.map((p) => h('option', { value: p, selected: p === current }, p)));
    show();
  }

  // One account by auth_index, or all with a quota source; then the whole listing again (the
  // answer to one account's refresh lists only that account).
  async function refresh(authIndex) {
    await post('/quota/refresh', authIndex ? { auth_index: authIndex } : {});
    await load();
  }

  try {
    await load();
  } catch (error) {
    clear(list, errorBox(error));
  }
}

function stat(id, label, value) {
  return h('div.stat.card', { dataset: { stat: id } }, h('div.stat-label', label), h('div.stat-value', String(value)));
}

function level(percent, exhausted) {
  if (exhausted || (percent ?? 0) >= BAD_PERCENT) return 'bad';
  if ((percent ?? 0) >= WARN_PERCENT) return 'warn';
  return 'ok';
}

function percentText(percent) {
  return percent === null || percent === undefined ? t('quota.unknown') : `${Math.round(percent)} %`;
}

function resetText(at) {
  return at ? t('quota.resets', { when: relativeTime(at) }) : '';
}

// A used-share bar; no bar at all when the share is unknown.
function meter(window) {
  const percent = window.used_percent;
  const known = percent !== null && percent !== undefined;
  const counts = window.used !== null && window.used !== undefined && window.limit !== null && window.limit !== undefined
    ? ` (${Number(window.used).toLocaleString()} / ${Number(window.limit).toLocaleString()})` : '';
  const value = window.unlimited ? t('quota.unlimited') : window.exhausted && !known ? t('quota.exhaustedWord') : percentText(percent) + counts;
  let bar = null;
  if (known && !window.unlimited) {
    const fill = h('div.meter-fill', { class: level(percent, window.exhausted) });
    // CSSOM, not a style attribute: the panel's CSP allows no inline styles.
    fill.style.width = `${Math.min(100, Math.max(0, percent))}%`;
    bar = h('div.meter', { role: 'meter', 'aria-valuenow': String(Math.round(percent)), 'aria-valuemin': '0', 'aria-valuemax': '100', 'aria-label': window.label }, fill);
  }
  return h('div.quota-window', { dataset: { window: window.id, kind: window.kind } },
    h('div.row.small', h('span.grow', window.label), h('span.quota-value', value), h('span.muted', resetText(window.resets_at))),
    bar);
}

const STATE_CLASS = { ok: 'ok', error: 'bad', unknown: '', unsupported: '' };

function accountCard(account, refresh, navigate) {
  const state = h('span.badge.quota-state', { class: STATE_CLASS[account.state] ?? '', dataset: { state: account.state } }, t(`quota.state.${account.state}`));
  const when = account.observed_at
    ? t('quota.observed', { when: relativeTime(account.observed_at), source: t(`quota.source.${account.source}`) }) : '';
  const error = account.error
    ? h('div.msg.quota-error', `${account.error.message}${account.error.body ? ` — ${account.error.body}` : ''}`) : null;
  const windows = account.windows || [];
  return h('article.card.quota-account', { dataset: { name: account.name, state: account.state } },
    h('header.row',
      h('div.grow', h('strong', account.account || account.name), h('div.small.muted', `${account.provider} · ${account.name}`)),
      account.plan ? h('span.badge.info', account.plan) : null,
      account.exhausted ? h('span.badge.bad', t('quota.exhaustedUntil', { when: account.resets_at ? relativeTime(account.resets_at) : t('quota.unknown') })) : null,
      state,
      account.supported
        ? h('button', { type: 'button', class: 'quota-refresh', onclick: (e) => busy(e.currentTarget, () => refresh(account.auth_index)) }, t('quota.refresh'))
        : null,
      account.name.endsWith('.json')
        ? h('button.link', { type: 'button', onclick: () => navigate('auth-files', { file: account.name }) }, t('providers.details'))
        : null),
    account.supported ? null : h('p.small.muted', account.reason || t('quota.noSource')),
    error,
    windows.length ? h('div.quota-windows', windows.map(meter)) : account.supported && !error ? h('p.small.muted', t('quota.notRead')) : null,
    when ? h('div.small.muted', when) : null);
}

function aggregateTable(windows) {
  if (!windows.length) return null;
  return h('div.table-wrap', h('table.grid#quota-aggregate-table',
    h('thead', h('tr', h('th', t('files.provider')), h('th', t('quota.window')), h('th', t('quota.accounts')),
      h('th', t('quota.exhausted')), h('th', t('quota.averageUsed')), h('th.hide-narrow', t('quota.soonestReset')))),
    h('tbody', windows.map((w) => h('tr', { dataset: { provider: w.provider, window: w.window } },
      h('td', w.provider), h('td', w.label), h('td', String(w.accounts)), h('td', String(w.exhausted)),
      h('td', percentText(w.average_used_percent)), h('td.hide-narrow', w.soonest_reset ? relativeTime(w.soonest_reset) : '—'))))));
}
