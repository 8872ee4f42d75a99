// Monitoring: the request records (`/requests`) newest first with filters (time range,
// account, provider, model, ok/failed, free text), auto-refresh, CSV/JSON export of what the
// filters cover, and inline-SVG charts of volume/errors, latency and tokens per time bucket
// (`/requests/aggregate?by=time`). A route like `#/monitoring?auth_index=…&status=failed`
// opens it filtered (the Dashboard's failure sources link here).

import { download, get } from '../api.js';
import { append, busy, clear, errorBox, formatTime, h } from '../dom.js';
import { t } from '../i18n.js';
import { barChart, fillBuckets, lineChart } from '../charts.js';
import { ALL_TIME, filterQuery, formatCount, formatMs, formatRate, statusBadge, totalsOf } from '../monitor.js';

// Range → how far back, and the chart bucket that gives 12–30 bars over it.
const RANGES = [
  { id: '15m', ms: 15 * 60_000, bucket: '1m', bucketMs: 60_000 },
  { id: '1h', ms: 3_600_000, bucket: '5m', bucketMs: 300_000 },
  { id: '24h', ms: 86_400_000, bucket: '1h', bucketMs: 3_600_000 },
  { id: '7d', ms: 7 * 86_400_000, bucket: '6h', bucketMs: 6 * 3_600_000 },
  { id: '30d', ms: 30 * 86_400_000, bucket: '1d', bucketMs: 86_400_000 },
  { id: 'all', ms: null, bucket: '1d', bucketMs: 86_400_000 },
];
const REFRESH = [['off', 0], ['5s', 5000], ['30s', 30_000]];
const PAGE = 100;

export async function render(root, { params, providers }) {
  const select = (id, label, options) => h('select', { id, 'aria-label': label },
    options.map(([value, text]) => h('option', { value }, text)));
  const range = select('mon-range', t('mon.range'), RANGES.map((r) => [r.id, t(`mon.range.${r.id}`)]));
  range.value = '24h';
  const account = h('select', { id: 'mon-account', 'aria-label': t('mon.account') });
  const provider = h('select', { id: 'mon-provider', 'aria-label': t('files.provider') });
  const models = h('datalist', { id: 'mon-models' });
  const model = h('input', { type: 'search', id: 'mon-model', list: 'mon-models', placeholder: t('mon.model'), 'aria-label': t('mon.model') });
  const status = select('mon-status', t('mon.status'), [['', t('mon.anyStatus')], ['success', t('mon.ok')], ['failed', t('mon.failed')]]);
  const text = h('input', { type: 'search', id: 'mon-text', placeholder: t('mon.search'), 'aria-label': t('mon.search') });
  const refresh = select('mon-refresh', t('mon.autoRefresh'), REFRESH.map(([id]) => [id, t(`mon.refresh.${id}`)]));
  const summary = h('div.stats', { id: 'mon-summary' });
  const charts = h('div.charts', { id: 'mon-charts' });
  const tbody = h('tbody');
  const more = h('button', { type: 'button', id: 'mon-more', class: 'hidden', onclick: (e) => busy(e.currentTarget, loadOlder) }, t('mon.older'));
  const problem = h('div');
  const expanded = new Set();
  let records = [];
  let nextBefore = null;

  // Filters given in the route (from the Dashboard) win over the defaults.
  let wantedAccount = params.get('auth_index') || '';
  if (params.get('status')) status.value = params.get('status');
  if (params.get('provider')) provider.dataset.wanted = params.get('provider');
  if (params.get('model')) model.value = params.get('model');
  if (params.get('q')) text.value = params.get('q');

  root.append(
    h('div.row', h('h1.grow', t('mon.title')),
      h('label.check', h('span.small.muted', t('mon.autoRefresh')), refresh),
      h('button', { type: 'button', id: 'mon-reload', onclick: (e) => busy(e.currentTarget, () => load({ options: true })) }, t('common.reload'))),
    h('div.toolbar', range, account, provider, model, models, status, text),
    h('div.toolbar',
      h('button', { type: 'button', id: 'export-csv', onclick: (e) => busy(e.currentTarget, () => exportAs('csv')) }, t('mon.exportCsv')),
      h('button', { type: 'button', id: 'export-json', onclick: (e) => busy(e.currentTarget, () => exportAs('json')) }, t('mon.exportJson')),
      h('span.muted.small', t('mon.exportHint'))),
    problem, summary, charts,
    h('div.table-wrap', h('table.grid#requests-table',
      h('thead', h('tr', h('th', t('mon.time')), h('th', t('mon.account')), h('th.hide-narrow', t('files.provider')), h('th', t('mon.model')),
        h('th', t('mon.status')), h('th', t('mon.latency')), h('th.hide-narrow', t('mon.ttfb')), h('th.hide-narrow', t('mon.tokens')),
        h('th', t('mon.failure')))),
      tbody)),
    h('div.row', more));

  const currentRange = () => RANGES.find((r) => r.id === range.value) || RANGES[2];

  function filter() {
    const r = currentRange();
    return {
      from: r.ms ? Math.floor((Date.now() - r.ms) / 1000) : '',
      auth_index: account.value,
      provider: provider.value,
      model: model.value,
      status: status.value,
      q: text.value,
    };
  }

  // Account, provider and model choices: what the range's records hold (with the file names the
  // server last saw serving), plus the providers this server offers and any choice kept.
  async function loadOptions() {
    const from = filterQuery({ from: filter().from });
    const [byAccount, byProvider, byModel, offered] = await Promise.all([
      get(`/requests/aggregate?by=account&${from}`),
      get(`/requests/aggregate?by=provider&${from}`),
      get(`/requests/aggregate?by=model&${from}`),
      providers(),
    ]);
    const keepAccount = account.value || wantedAccount;
    // The route's account is a first choice only: "All accounts" picked later stays picked.
    wantedAccount = '';
    const accounts = (byAccount.groups || []).filter((g) => g.key).map((g) => [g.key, g.account || g.key]);
    if (keepAccount && !accounts.some(([key]) => key === keepAccount)) accounts.push([keepAccount, keepAccount]);
    clear(account, h('option', { value: '' }, t('mon.allAccounts')),
      accounts.map(([key, name]) => h('option', { value: key, selected: key === keepAccount }, name)));
    const keepProvider = provider.value || provider.dataset.wanted || '';
    delete provider.dataset.wanted;
    const names = [...new Set([...offered.map((p) => p.id), ...(byProvider.groups || []).map((g) => g.key), keepProvider].filter(Boolean))].sort();
    clear(provider, h('option', { value: '' }, t('files.allProviders')),
      names.map((name) => h('option', { value: name, selected: name === keepProvider }, name)));
    clear(models, (byModel.groups || []).filter((g) => g.key).map((g) => h('option', { value: g.key })));
  }

  async function load({ options = false } = {}) {
    if (options) await loadOptions();
    const f = filter();
    const r = currentRange();
    const query = filterQuery(f);
    const [page, total, buckets] = await Promise.all([
      get(`/requests?limit=${PAGE}&${query}`),
      get(`/requests/aggregate?by=time&bucket=${ALL_TIME}&${query}`),
      get(`/requests/aggregate?by=time&bucket=${r.bucket}&${query}`),
    ]);
    clear(problem);
    records = page.records || [];
    nextBefore = page.next_before ?? null;
    renderSummary(totalsOf(total));
    renderCharts(buckets.groups || [], r, f.from ? f.from * 1000 : null);
    renderRows();
  }

  async function loadOlder() {
    if (nextBefore === null) return;
    const page = await get(`/requests?limit=${PAGE}&before=${nextBefore}&${filterQuery(filter())}`);
    records = records.concat(page.records || []);
    nextBefore = page.next_before ?? null;
    renderRows();
  }

  function renderSummary(totals) {
    const cell = (id, label, value, detail) => h('div.stat.card', { dataset: { stat: id } },
      h('div.stat-label', label), h('div.stat-value', value), detail ? h('div.small.muted', detail) : null);
    clear(summary,
      cell('requests', t('dash.requests'), formatCount(totals.requests)),
      cell('failures', t('dash.failures'), formatCount(totals.failures)),
      cell('success', t('dash.successRate'), formatRate(totals.success_rate, totals.requests)),
      cell('latency', t('dash.latencyP50'), totals.requests ? formatMs(totals.latency_p50_ms) : '—',
        totals.requests ? t('dash.p95', { value: formatMs(totals.latency_p95_ms) }) : null),
      cell('tokens', t('dash.tokens'), formatCount(totals.input_tokens + totals.output_tokens)));
  }

  function renderCharts(groups, r, fromMs) {
    if (!groups.length) {
      clear(charts, h('p.muted.small', t('mon.noChart')));
      return;
    }
    const buckets = fillBuckets(groups, r.bucketMs, fromMs, Date.now());
    const card = (id, title, chart) => h('div.card.chart-card', { dataset: { chart: id } }, h('h3', title), chart);
    clear(charts,
      card('volume', t('mon.chartVolume'), barChart(buckets, r.bucketMs, [
        { label: t('mon.ok'), cls: 'ok', value: (g) => g.requests - g.failures },
        { label: t('mon.failed'), cls: 'bad', value: (g) => g.failures },
      ], { format: formatCount, title: (g) => t('mon.tipVolume', { n: g.requests, failed: g.failures }) })),
      card('latency', t('mon.chartLatency'), lineChart(buckets, r.bucketMs, [
        { label: 'p50', cls: 'accent', value: (g) => g.latency_p50_ms },
        { label: 'p95', cls: 'warn', value: (g) => g.latency_p95_ms },
      ], { format: formatMs, title: (g) => `p50 ${formatMs(g.latency_p50_ms)} · p95 ${formatMs(g.latency_p95_ms)}` })),
      card('tokens', t('mon.chartTokens'), barChart(buckets, r.bucketMs, [
        { label: t('mon.input'), cls: 'accent', value: (g) => g.input_tokens },
        { label: t('mon.output'), cls: 'warn', value: (g) => g.output_tokens },
      ], { format: formatCount, title: (g) => t('mon.tipTokens', { input: g.input_tokens, output: g.output_tokens }) })));
  }

  function renderRows() {
    more.classList.toggle('hidden', nextBefore === null);
    if (!records.length) {
      clear(tbody, h('tr', h('td', { colspan: 9, class: 'muted' }, t('mon.none'))));
      return;
    }
    clear(tbody, records.map((record) => [row(record), expanded.has(record.id) ? detailRow(record) : null]));
  }

  function row(record) {
    const tokens = record.tokens || {};
    const toggle = () => {
      if (expanded.has(record.id)) expanded.delete(record.id);
      else expanded.add(record.id);
      renderRows();
    };
    const open = expanded.has(record.id);
    return h('tr', { dataset: { id: String(record.id), requestId: record.request_id, failed: String(record.failed) } },
      h('td.nowrap', { title: formatTime(record.timestamp) }, shortTime(record.timestamp)),
      h('td.account-cell', h('div', record.account || '—'), h('div.small.muted', record.auth_index)),
      h('td.hide-narrow', record.provider),
      h('td.nowrap', record.requested_model, record.upstream_model && record.upstream_model !== record.requested_model ? h('div.small.muted', `→ ${record.upstream_model}`) : null),
      h('td', statusBadge(record.status, record.failed)),
      h('td.nowrap', formatMs(record.latency_ms)),
      h('td.nowrap.hide-narrow', formatMs(record.ttfb_ms)),
      h('td.nowrap.hide-narrow', { title: t('mon.tipTokens', { input: tokens.input || 0, output: tokens.output || 0 }) },
        `${tokens.estimated ? '~' : ''}${formatCount((tokens.input || 0) + (tokens.output || 0))}`),
      h('td.failure-cell',
        h('button.link', { type: 'button', class: 'expand', 'aria-expanded': String(open), onclick: toggle },
          open ? '▾' : '▸', ' ', record.failure ? h('span.clip', record.failure) : t('mon.details'))));
  }

  function detailRow(record) {
    const tokens = record.tokens || {};
    const kv = (k, v) => [h('div.k', k), h('div.v', v === '' || v === null || v === undefined ? '—' : String(v))];
    return h('tr.detail', { dataset: { detailFor: String(record.id) } }, h('td', { colspan: 9 },
      h('div.kv',
        kv(t('mon.requestId'), record.request_id),
        kv(t('mon.endpoint'), record.endpoint),
        kv(t('mon.clientKey'), record.client_key),
        kv(t('mon.dialects'), `${record.dialect_in || '—'} → ${record.dialect_out || '—'}`),
        kv(t('mon.stream'), record.stream ? t('mon.yes') : t('mon.no')),
        kv(t('mon.attempts'), record.attempts),
        kv(t('mon.tokens'), t('mon.tokenDetail', { input: tokens.input || 0, output: tokens.output || 0, cached: tokens.cached || 0, reasoning: tokens.reasoning || 0 })
          + (tokens.estimated ? ` (${t('mon.estimated')})` : ''))),
      record.failure ? h('pre.failure', record.failure) : null));
  }

  // The export goes through fetch with the key header (never the key in a URL).
  async function exportAs(format) {
    await download(`/requests/export?format=${format}&${filterQuery(filter())}`, `switchyard-requests.${format}`);
  }

  const reload = (options) => load({ options }).catch((error) => clear(problem, errorBox(error)));
  range.addEventListener('change', () => reload(true));
  for (const control of [account, provider, status]) control.addEventListener('change', () => reload(false));
  // Typing waits for a pause; the model list is exact, so only a finished entry is sent.
  let typing = null;
  for (const control of [model, text]) {
    control.addEventListener('input', () => {
      clearTimeout(typing);
      typing = setTimeout(() => reload(false), 350);
    });
  }

  let timer = null;
  let inFlight = false;
  refresh.addEventListener('change', () => {
    clearInterval(timer);
    const ms = REFRESH.find(([id]) => id === refresh.value)?.[1] || 0;
    // A tick that finds the last one still running skips, so slow answers never pile up.
    if (ms) {
      timer = setInterval(async () => {
        if (inFlight) return;
        inFlight = true;
        await reload(false);
        inFlight = false;
      }, ms);
    }
  });

  try {
    await load({ options: true });
  } catch (error) {
    append(problem, [errorBox(error)]);
  }
  return () => {
    clearInterval(timer);
    clearTimeout(typing);
  };
}

// Today's records by their time of day (the title has the full date), older ones with the date.
function shortTime(iso) {
  const date = new Date(iso);
  if (Number.isNaN(date.getTime())) return String(iso);
  const today = date.toDateString() === new Date().toDateString();
  return today ? date.toLocaleTimeString() : date.toLocaleString(undefined, { month: 'short', day: 'numeric', hour: '2-digit', minute: '2-digit' });
}
