// Dashboard: today's traffic from the request records (requests, success rate, p50/p95
// latency, tokens), per provider, the top failure sources, and the accounts that need a person
// (from `/health`), each linked to its auth file. Everything shown is what the server counted.

import { get } from '../api.js';
import { busy, clear, errorBox, h, relativeTime } from '../dom.js';
import { t } from '../i18n.js';
import { ALL_TIME, formatCount, formatMs, formatRate, healthBadge, needsAttention, startOfToday, totalsOf } from '../monitor.js';

export async function render(root, { navigate }) {
  const body = h('div.stack');
  root.append(
    h('div.row', h('h1.grow', t('dash.title')),
      h('button', { type: 'button', id: 'dashboard-reload', onclick: (e) => busy(e.currentTarget, load) }, t('common.reload'))),
    body);

  async function load() {
    const today = `from=${startOfToday()}`;
    const [total, byProvider, failures, health, files] = await Promise.all([
      get(`/requests/aggregate?by=time&bucket=${ALL_TIME}&${today}`),
      get(`/requests/aggregate?by=provider&${today}`),
      get(`/requests/failures?${today}`),
      get('/health'),
      get('/auth-files'),
    ]);
    // Config keys have no auth file to open; only files get a link.
    const fileNames = new Set((files.files || []).filter((f) => !f.runtime_only).map((f) => f.name));
    clear(body,
      h('p.muted.small', t('dash.today')),
      stats(totalsOf(total)),
      attention(health.accounts || [], fileNames, navigate),
      providerTable(byProvider.groups || []),
      failureTable(failures.sources || [], navigate));
  }

  try {
    await load();
  } catch (error) {
    clear(body, errorBox(error));
  }
}

function stat(id, label, value, detail) {
  return h('div.stat.card', { dataset: { stat: id } },
    h('div.stat-label', label), h('div.stat-value', value), detail ? h('div.small.muted', detail) : null);
}

function stats(totals) {
  const tokens = totals.input_tokens + totals.output_tokens;
  return h('div.stats', { id: 'dashboard-stats' },
    stat('requests', t('dash.requests'), formatCount(totals.requests), t('dash.failuresN', { n: formatCount(totals.failures) })),
    stat('success', t('dash.successRate'), formatRate(totals.success_rate, totals.requests)),
    stat('latency', t('dash.latencyP50'), totals.requests ? formatMs(totals.latency_p50_ms) : '—',
      totals.requests ? t('dash.p95', { value: formatMs(totals.latency_p95_ms) }) : null),
    stat('tokens', t('dash.tokens'), formatCount(tokens),
      t('dash.tokenSplit', { input: formatCount(totals.input_tokens), output: formatCount(totals.output_tokens), cached: formatCount(totals.cached_tokens) })
      + (totals.estimated_requests ? ` · ${t('dash.estimatedN', { n: totals.estimated_requests })}` : '')));
}

function attention(accounts, fileNames, navigate) {
  const needy = accounts.filter(needsAttention);
  return h('div.card', { id: 'dashboard-attention' },
    h('h3', t('dash.attention')),
    needy.length
      ? h('div.table-wrap', h('table.grid',
        h('thead', h('tr', h('th', t('dash.account')), h('th.hide-narrow', t('files.provider')), h('th', t('dash.health')), h('th', t('dash.reason')))),
        h('tbody', needy.map((a) => h('tr', { dataset: { account: a.name } },
          h('td', fileNames.has(a.name)
            ? h('button.link', { type: 'button', class: 'open-file', onclick: () => navigate('auth-files', { file: a.name }) }, a.name)
            : a.name),
          h('td.hide-narrow', a.provider),
          h('td', healthBadge(a.health), a.health_until ? h('div.msg', t('state.until', { when: relativeTime(a.health_until) })) : null),
          h('td.msg', a.health_reason || ''))))))
      : h('p.muted.small', t('dash.allHealthy')));
}

function providerTable(groups) {
  return h('div.card', { id: 'dashboard-providers' },
    h('h3', t('dash.byProvider')),
    groups.length
      ? h('div.table-wrap', h('table.grid',
        h('thead', h('tr', h('th', t('files.provider')), h('th', t('dash.requests')), h('th', t('dash.successRate')),
          h('th', t('dash.latencyP50')), h('th.hide-narrow', t('dash.tokens')))),
        h('tbody', groups.map((g) => h('tr', { dataset: { provider: g.key } },
          h('td', g.key || '—'), h('td', formatCount(g.requests)), h('td', formatRate(g.success_rate, g.requests)),
          h('td', formatMs(g.latency_p50_ms)), h('td.hide-narrow', formatCount(g.input_tokens + g.output_tokens)))))))
      : h('p.muted.small', t('dash.noRequests')));
}

function failureTable(sources, navigate) {
  if (!sources.length) return null;
  return h('div.card', { id: 'dashboard-failures' },
    h('h3', t('dash.failureSources')),
    h('div.table-wrap', h('table.grid',
      h('thead', h('tr', h('th', t('dash.account')), h('th', t('mon.status')), h('th', t('dash.failures')), h('th.hide-narrow', t('dash.lastSeen')), h('th', t('dash.lastSummary')))),
      h('tbody', sources.slice(0, 10).map((s) => h('tr',
        h('td', h('button.link', { type: 'button', onclick: () => navigate('monitoring', { auth_index: s.auth_index, status: 'failed' }) }, s.account || s.auth_index || '—'),
          h('div.small.muted', s.provider)),
        h('td', String(s.status || '—')),
        h('td', `${formatCount(s.failures)} (${formatRate(s.failure_rate)})`),
        h('td.hide-narrow', relativeTime(s.last_seen)),
        h('td.msg', s.last_summary || '')))))));
}
