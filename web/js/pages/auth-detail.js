// The detail drawer of one auth file: its fields as stored (secrets masked), the user fields
// `PATCH /auth-files/fields` takes (prefix, proxy URL, priority, weight, note, excluded
// models, headers), and the models the account exposes.

import { api, get, patch } from '../api.js';
import { accountState, stateClass, stateLabel } from '../accounts.js';
import { busy, clear, drawer, errorBox, h, headersText, mask, parseHeaders, spinner } from '../dom.js';
import { t } from '../i18n.js';

// Field names whose values are secrets: shown masked, never in full.
const SECRET = /token|secret|key|cookie|password|private|credential|session/i;

function flatten(value, prefix = '', out = []) {
  if (value && typeof value === 'object' && !Array.isArray(value)) {
    for (const [key, inner] of Object.entries(value)) flatten(inner, prefix ? `${prefix}.${key}` : key, out);
  } else {
    out.push([prefix, value]);
  }
  return out;
}

function shown(path, value) {
  if (SECRET.test(path.split('.').pop()) && value !== null && typeof value !== 'boolean' && typeof value !== 'number') return mask(value);
  return Array.isArray(value) ? JSON.stringify(value) : String(value);
}

const linesOf = (text) => text.split(/[\n,]/).map((s) => s.trim()).filter(Boolean);


export function openDetail(file, reload) {
  const body = h('div.stack', h('div.progress', spinner(), t('common.loading')));
  drawer(file.name, body);
  show(file, body, reload);
}

async function show(file, body, reload, notice = null) {
  let stored;
  try {
    const response = await api('GET', `/auth-files/download?name=${encodeURIComponent(file.name)}`, { raw: true });
    const text = await response.text();
    try {
      stored = JSON.parse(text);
    } catch {
      stored = null;
    }
  } catch (error) {
    clear(body, errorBox(error));
    return;
  }
  const state = accountState(file);
  const parts = [h('div.row', h('span.badge.account-state', { class: stateClass(state) }, stateLabel(state)), state.detail ? h('span.msg', state.detail) : null)];
  if (!stored || typeof stored !== 'object') {
    parts.push(errorBox(t('detail.unparseable')));
    clear(body, parts);
    return;
  }
  const fields = {
    prefix: h('input', { name: 'prefix', value: stored.prefix ?? '' }),
    proxy_url: h('input', { name: 'proxy_url', value: stored.proxy_url ?? '', placeholder: 'socks5://… / http://… / direct' }),
    priority: h('input', { name: 'priority', type: 'number', step: 1, value: stored.priority ?? '' }),
    weight: h('input', { name: 'weight', type: 'number', step: 1, min: 1, value: stored.weight ?? '' }),
    note: h('input', { name: 'note', value: stored.note ?? '' }),
    excluded_models: h('textarea', { name: 'excluded_models', rows: 3, value: (stored.excluded_models || []).join('\n') }),
    headers: h('textarea', { name: 'headers', rows: 3, value: headersText(stored.headers), placeholder: 'X-Header: value' }),
  };
  const status = h('div', notice ? h('div.ok-box.detail-saved', notice) : null);
  const save = h('button.primary', { type: 'button', id: 'detail-save' }, t('common.save'));
  save.addEventListener('click', () => busy(save, async () => {
    clear(status);
    const changes = { name: file.name };
    const text = (k) => fields[k].value.trim();
    const number = (k) => (text(k) === '' ? null : Number(text(k)));
    for (const key of ['prefix', 'proxy_url', 'note']) {
      if (text(key) !== (stored[key] ?? '')) changes[key] = text(key) || null;
    }
    for (const key of ['priority', 'weight']) {
      if (number(key) !== (stored[key] ?? null)) changes[key] = number(key);
    }
    const excluded = linesOf(fields.excluded_models.value);
    if (JSON.stringify(excluded) !== JSON.stringify(stored.excluded_models || [])) changes.excluded_models = excluded.length ? excluded : null;
    let headers;
    try {
      headers = parseHeaders(fields.headers.value);
    } catch (error) {
      clear(status, errorBox(error));
      return;
    }
    const before = stored.headers || {};
    const headerChanges = {};
    for (const [name, value] of Object.entries(headers)) if (before[name] !== value) headerChanges[name] = value;
    for (const name of Object.keys(before)) if (!(name in headers)) headerChanges[name] = '';
    if (Object.keys(headerChanges).length) changes.headers = headerChanges;
    if (Object.keys(changes).length === 1) {
      clear(status, h('div.msg', t('detail.nothing')));
      return;
    }
    try {
      await patch('/auth-files/fields', changes);
    } catch (error) {
      clear(status, errorBox(error));
      return;
    }
    await reload();
    // Shown again from the file as saved.
    show(file, body, reload, t('detail.saved', { name: file.name }));
  }));

  const models = h('div.small', h('button', {
    type: 'button',
    onclick: (e) => busy(e.currentTarget, async () => {
      const answer = await get(`/auth-files/models?name=${encodeURIComponent(file.name)}`);
      clear(models, (answer.models || []).length ? h('ul', answer.models.map((m) => h('li.mono', m.id))) : h('span.muted', t('detail.noModels')));
    }),
  }, t('detail.showModels')));

  clear(body, parts,
    h('h3', t('detail.settings')),
    h('div.form',
      h('label.field', h('span', t('detail.prefix')), fields.prefix),
      h('label.field', h('span', t('detail.proxy')), fields.proxy_url),
      h('label.field', h('span', t('detail.priority')), fields.priority),
      h('label.field', h('span', t('detail.weight')), fields.weight),
      h('label.field.wide', h('span', t('detail.note')), fields.note),
      h('label.field.wide', h('span', t('detail.excluded')), fields.excluded_models),
      h('label.field.wide', h('span', t('detail.headers')), fields.headers)),
    h('div.row', save), status,
    h('h3', t('detail.models')), models,
    h('h3', t('detail.fields')),
    h('div.kv.stored-fields', flatten(stored).flatMap(([path, value]) => [h('span.k', path), h('span.v.mono', { dataset: { field: path } }, shown(path, value))])));
}
