// What the panel says about one `/auth-files` entry, derived only from the fields the server
// sends (`status`, `status_message`, `disabled`, `unavailable`, `needs_relogin`,
// `next_retry_after`, `cooldowns`), and which provider of `/providers` it belongs to.

import { t } from './i18n.js';
import { relativeTime } from './dom.js';

// kind: connected | relogin | refreshing | quota | cooling | disabled | error | invalid
export function accountState(file, now = Date.now()) {
  const message = (file.status_message || '').trim();
  const retryAt = file.next_retry_after ? new Date(file.next_retry_after).getTime() : NaN;
  const coolingUntil = retryAt > now ? file.next_retry_after : null;
  if (file.disabled || file.status === 'disabled') return { kind: 'disabled', detail: '' };
  // A file Switchyard cannot parse has no `needs_relogin` member (valid ones always do).
  if (!file.runtime_only && !('needs_relogin' in file) && file.status === 'error') {
    return { kind: 'invalid', detail: message };
  }
  if (file.needs_relogin) return { kind: 'relogin', detail: message.replace(/^needs re-login:\s*/i, '') };
  if (file.status === 'refreshing') return { kind: 'refreshing', detail: '' };
  if (file.status === 'error') {
    const quota = (file.cooldowns || []).some((c) => /quota/.test(c.reason || '')) || /quota/i.test(message);
    if (coolingUntil && quota) return { kind: 'quota', detail: message, until: coolingUntil };
    if (coolingUntil) return { kind: 'cooling', detail: message, until: coolingUntil };
    return { kind: 'error', detail: message };
  }
  return { kind: 'connected', detail: message };
}

const BADGE = {
  connected: 'ok', relogin: 'bad', refreshing: 'info', quota: 'warn', cooling: 'warn', disabled: '', error: 'bad', invalid: 'bad',
};

// The badge text: "Cooling down (until in 5 min)", "Needs re-login (invalid_grant)".
export function stateLabel(state) {
  const name = t(`state.${state.kind}`);
  if (state.until) return `${name} (${t('state.until', { when: relativeTime(state.until) })})`;
  if (state.kind === 'relogin' && state.detail) return `${name} (${state.detail})`;
  return name;
}

export function stateClass(state) {
  return BADGE[state.kind] ?? '';
}

// Whether the "delete all invalid" batch takes it: needs a re-login, or cannot be parsed.
export function isInvalid(file) {
  const kind = accountState(file).kind;
  return !file.runtime_only && (kind === 'relogin' || kind === 'invalid');
}

// The capability entry (`/providers`) an auth file belongs to, by its type.
export function providerOf(file, providers) {
  const type = file.type || file.provider;
  return providers.find((p) => p.id === type || (p.file_types || []).includes(type)) || null;
}

// The login a re-login of this provider's accounts uses: its default browser or device method.
export function reloginMethod(provider) {
  const logins = (provider?.logins || []).filter((l) => l.kind === 'browser' || l.kind === 'device');
  return logins.find((l) => l.default) || logins[0] || null;
}
