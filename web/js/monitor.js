// Shared pieces of the monitoring pages (Dashboard, Monitoring, Inspection): number and
// duration formatting, the health states of `/health`, and the filter query of `/requests*`.

import { h } from './dom.js';
import { t } from './i18n.js';

// One `/requests/aggregate?by=time` bucket that spans every stored record: its group is the
// whole range's totals, with a true p50/p95 over all of its requests (per-provider or hourly
// groups cannot be merged into one percentile).
export const ALL_TIME = '100000d';

export function formatCount(n) {
  return Number(n || 0).toLocaleString();
}

export function formatMs(ms) {
  if (ms === null || ms === undefined) return '—';
  const value = Number(ms);
  return value >= 10_000 ? `${(value / 1000).toFixed(1)} s` : `${Math.round(value)} ms`;
}

// 0.9876 → "98.8 %"; no requests → "—" (a rate of nothing is not 0 % or 100 %).
export function formatRate(rate, requests = 1) {
  if (!requests) return '—';
  return `${(Number(rate) * 100).toFixed(1)} %`;
}

export function startOfToday(now = new Date()) {
  const day = new Date(now);
  day.setHours(0, 0, 0, 0);
  return Math.floor(day.getTime() / 1000);
}

// `/requests*` query text of a filter object ({from, auth_index, provider, model, status, q});
// empty members are left out.
export function filterQuery(filter) {
  const query = new URLSearchParams();
  for (const [name, value] of Object.entries(filter)) {
    if (value !== undefined && value !== null && String(value).trim() !== '') query.set(name, String(value).trim());
  }
  return query.toString();
}

// The totals group of an ALL_TIME aggregate, or zeros when nothing matched.
export function totalsOf(answer) {
  return (answer?.groups || [])[0] || { requests: 0, failures: 0, success_rate: 0, latency_p50_ms: 0, latency_p95_ms: 0, input_tokens: 0, output_tokens: 0, cached_tokens: 0, reasoning_tokens: 0, estimated_requests: 0 };
}

// `/health` states (switchyard-health `HealthState::name`).
const HEALTH_CLASS = {
  healthy: 'ok', warning: 'warn', needs_relogin: 'bad', quota_exhausted: 'warn', cooling_down: 'warn', disabled: '', unknown: '',
};
const HEALTH_KEYS = {
  healthy: 'health.healthy',
  warning: 'health.warning',
  needs_relogin: 'health.needsRelogin',
  quota_exhausted: 'health.quotaExhausted',
  cooling_down: 'health.coolingDown',
  disabled: 'health.disabled',
  unknown: 'health.unknown',
};

export function healthBadge(state) {
  return h('span.badge.health', { class: HEALTH_CLASS[state] ?? '', dataset: { health: state || '' } }, HEALTH_KEYS[state] ? t(HEALTH_KEYS[state]) : String(state || '—'));
}

// Whether an account of `/health` asks for a person: anything but healthy or not yet seen; a
// disable counts only when Switchyard did it (a person's own disable is a choice, not a problem).
export function needsAttention(account) {
  if (account.health === 'healthy' || account.health === 'unknown') return false;
  if (account.health === 'disabled') return Boolean(account.disabled_by) && account.disabled_by !== 'manual';
  return true;
}

// Recommendations of `/inspection` (keep | delete | reauth | disable | enable).
const ACTION_CLASS = { keep: 'ok', delete: 'bad', reauth: 'bad', disable: 'warn', enable: 'info' };
const ACTION_KEYS = { keep: 'action.keep', delete: 'action.delete', reauth: 'action.reauth', disable: 'action.disable', enable: 'action.enable' };

export function actionBadge(action) {
  return h('span.badge.recommendation', { class: ACTION_CLASS[action] ?? '', dataset: { action: action || '' } }, ACTION_KEYS[action] ? t(ACTION_KEYS[action]) : String(action || '—'));
}

// A status code as a badge: 2xx/3xx ok, anything else (and 0, the client went away) bad.
export function statusBadge(status, failed = false) {
  const good = status > 0 && status < 400 && !failed;
  return h('span.badge.status', { class: good ? 'ok' : 'bad', dataset: { status: String(status) } }, status ? String(status) : t('mon.clientGone'));
}
