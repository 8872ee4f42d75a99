// AI Providers: the API-key sections of config.yaml and `openai-compatibility`, edited
// through their list endpoints (each write is a comment-preserving edit of config.yaml).
// "Fetch models" and "Test" go through `POST /api-call` with the entry's auth-index, so the
// key never leaves the server.

import { del, get, patch, post, put } from '../api.js';
import { busy, clear, confirmDialog, errorBox, h, headersText, mask, modal, parseHeaders, spinner, toast } from '../dom.js';
import { t } from '../i18n.js';

// Per section: its default base URL, where its model list is, and how the key is sent.
export const SECTIONS = [
  { id: 'claude-api-key', label: 'Claude', base: 'https://api.anthropic.com', models: '/v1/models', auth: { 'x-api-key': '$TOKEN$', 'anthropic-version': '2023-06-01' } },
  { id: 'codex-api-key', label: 'Codex', base: 'https://api.openai.com/v1', models: '/models', auth: { Authorization: 'Bearer $TOKEN$' } },
  { id: 'gemini-api-key', label: 'Gemini', base: 'https://generativelanguage.googleapis.com', models: '/v1beta/models', auth: { 'x-goog-api-key': '$TOKEN$' } },
  { id: 'xai-api-key', label: 'xAI', base: 'https://api.x.ai/v1', models: '/models', auth: { Authorization: 'Bearer $TOKEN$' } },
  { id: 'vertex-api-key', label: 'Vertex', base: '', models: '', auth: {} },
  { id: 'openai-compatibility', label: 'OpenAI-compatible', base: '', models: '/models', auth: { Authorization: 'Bearer $TOKEN$' }, compat: true },
];

const modelsText = (models) => (models || []).map((m) => (m.alias && m.alias !== m.name ? `${m.name} = ${m.alias}` : m.name)).join('\n');
function parseModels(text) {
  return text.split('\n').map((l) => l.trim()).filter(Boolean).map((line) => {
    const [name, alias] = line.split('=').map((s) => s.trim());
    return alias ? { name, alias } : { name };
  });
}

export async function render(root, { params }) {
  let section = SECTIONS.find((s) => s.id === params.get('section')) || SECTIONS[0];
  const tabs = h('div.tabs', { role: 'tablist' });
  const body = h('div.stack');
  root.append(h('h1', t('ai.title')), h('p.muted', t('ai.intro')), tabs, body);

  function drawTabs() {
    clear(tabs, SECTIONS.map((s) => h('button', {
      type: 'button', role: 'tab', class: s === section ? 'active' : '', dataset: { section: s.id },
      onclick: () => { section = s; drawTabs(); load(); },
    }, s.label)));
  }

  async function load() {
    clear(body, h('div.progress', spinner(), t('common.loading')));
    let items;
    try {
      items = (await get(`/${section.id}`))[section.id] || [];
    } catch (error) {
      clear(body, errorBox(error));
      return;
    }
    const add = h('button.primary', { type: 'button', id: 'ai-add', onclick: () => edit(section, items, -1, load) }, t('ai.add'));
    clear(body, h('div.row', add),
      items.length ? h('div.table-wrap', h('table.grid',
        h('thead', h('tr', h('th', section.compat ? t('ai.name') : t('ai.key')), h('th', t('ai.baseUrl')), h('th.hide-narrow', t('ai.prefix')),
          h('th.hide-narrow', t('ai.priority')), h('th.hide-narrow', t('ai.models')), h('th', t('ai.actions')))),
        h('tbody', items.map((item, index) => entryRow(section, items, item, index, load)))))
        : h('p.muted', t('ai.none')));
  }

  drawTabs();
  await load();
}

function entryRow(section, items, item, index, reload) {
  const result = h('div.msg.call-result');
  const keys = section.compat ? (item['api-key-entries'] || []).map((k) => mask(k['api-key'])).join(', ') : mask(item['api-key']);
  return h('tr', { dataset: { index } },
    h('td', section.compat ? h('div', h('strong', item.name), h('div.small.muted', keys)) : h('span.mono', keys),
      item.disabled ? h('span.badge', t('state.disabled')) : null),
    h('td', h('span.mono.small', item['base-url'] || section.base || '—')),
    h('td.hide-narrow', item.prefix || ''),
    h('td.hide-narrow', String(item.priority ?? 0)),
    h('td.hide-narrow', String((item.models || []).length)),
    h('td', h('div.row',
      h('button', { type: 'button', class: 'edit', onclick: () => edit(section, items, index, reload) }, t('common.edit')),
      section.models ? h('button', { type: 'button', class: 'test', onclick: (e) => busy(e.currentTarget, () => testEntry(section, item, result)) }, t('ai.test')) : null,
      h('button.danger', {
        type: 'button', class: 'delete',
        onclick: async (e) => {
          if (!(await confirmDialog(t('ai.confirmDelete'), { danger: true, confirm: t('common.delete') }))) return;
          await busy(e.currentTarget, async () => {
            await del(`/${section.id}?index=${index}`);
            toast(t('ai.deleted'), 'ok');
            await reload();
          });
        },
      }, t('common.delete'))), result));
}

function modelsUrl(section, item) {
  const base = (item['base-url'] || section.base || '').replace(/\/+$/, '');
  return base ? `${base}${section.models}` : '';
}

// One call to the entry's model list through the server, with the entry's own key.
async function listModels(section, item) {
  const url = modelsUrl(section, item);
  if (!url) throw new Error(t('ai.noBase'));
  const started = performance.now();
  const answer = await post('/api-call', { auth_index: item['auth-index'], method: 'GET', url, header: section.auth });
  const ms = Math.round(performance.now() - started);
  let body = answer.body;
  if (typeof body === 'string') {
    try {
      body = JSON.parse(body);
    } catch {
      // not JSON
    }
  }
  const list = Array.isArray(body?.data) ? body.data : Array.isArray(body?.models) ? body.models : [];
  const ids = list.map((m) => String(m.id || m.name || '').replace(/^models\//, '')).filter(Boolean);
  return { status: answer.status_code, ms, ids, body };
}

async function testEntry(section, item, result) {
  clear(result, h('span.progress', spinner(), t('ai.testing')));
  try {
    const { status, ms, ids, body } = await listModels(section, item);
    if (status >= 200 && status < 300) clear(result, h('span.badge.ok', `${status}`), ' ', t('ai.testOk', { ms, n: ids.length }));
    else clear(result, h('span.badge.bad', `${status}`), ' ', typeof body === 'string' ? body.slice(0, 300) : JSON.stringify(body).slice(0, 300));
  } catch (error) {
    clear(result, errorBox(error));
  }
}

function edit(section, items, index, reload) {
  const item = index >= 0 ? items[index] : {};
  const input = (name, value, attrs = {}) => h('input', { name, value: value ?? '', ...attrs });
  const f = {
    name: input('name', item.name),
    key: input('api-key', section.compat ? (item['api-key-entries'] || []).map((k) => k['api-key']).join('\n') : item['api-key'], { type: 'password', autocomplete: 'off' }),
    keys: h('textarea', { name: 'api-keys', rows: 3, value: (item['api-key-entries'] || []).map((k) => k['api-key']).join('\n') }),
    base: input('base-url', item['base-url'], { placeholder: section.base }),
    proxy: input('proxy-url', item['proxy-url']),
    prefix: input('prefix', item.prefix),
    priority: input('priority', item.priority ?? '', { type: 'number', step: 1 }),
    models: h('textarea', { name: 'models', rows: 5, value: modelsText(item.models), placeholder: 'upstream-model = alias' }),
    headers: h('textarea', { name: 'headers', rows: 3, value: headersText(item.headers), placeholder: 'X-Header: value' }),
  };
  const status = h('div');
  const fetched = h('div.small');
  modal(index >= 0 ? t('ai.editTitle', { section: section.label }) : t('ai.addTitle', { section: section.label }), (close) => {
    const save = h('button.primary', { type: 'button', id: 'ai-save' }, t('common.save'));
    const fetchButton = h('button', { type: 'button', id: 'ai-fetch-models' }, t('ai.fetchModels'));
    fetchButton.disabled = index < 0;
    fetchButton.title = index < 0 ? t('ai.saveFirst') : '';
    fetchButton.addEventListener('click', () => busy(fetchButton, async () => {
      const { status: code, ids, body } = await listModels(section, item);
      if (code < 200 || code >= 300) {
        clear(fetched, errorBox(`${code}: ${typeof body === 'string' ? body.slice(0, 300) : JSON.stringify(body).slice(0, 300)}`));
        return;
      }
      const have = new Set(parseModels(f.models.value).map((m) => m.name));
      clear(fetched, h('div.row', ids.map((id) => {
        const box = h('input', { type: 'checkbox', checked: have.has(id) });
        box.addEventListener('change', () => {
          const current = parseModels(f.models.value).filter((m) => m.name !== id);
          if (box.checked) current.push({ name: id });
          f.models.value = modelsText(current);
        });
        return h('label.check', box, h('span.mono', id));
      })));
    }, { onError: (error) => clear(fetched, errorBox(error)) }));
    save.addEventListener('click', () => busy(save, async () => {
      clear(status);
      let value;
      try {
        value = entryFrom(section, item, f);
      } catch (error) {
        clear(status, errorBox(error));
        return;
      }
      try {
        if (index >= 0) {
          // Fields cleared in the form are removed (null), the rest merged in place.
          const merged = { ...Object.fromEntries(Object.keys(item).filter((k) => k !== 'auth-index').map((k) => [k, null])), ...value };
          await patch(`/${section.id}`, { index, value: merged });
        } else {
          const current = (await get(`/${section.id}`))[section.id] || [];
          await put(`/${section.id}`, [...current.map(stripped), value]);
        }
      } catch (error) {
        clear(status, errorBox(error));
        return;
      }
      toast(t('ai.saved'), 'ok');
      close(true);
      await reload();
    }));
    return h('div.stack',
      h('div.form',
        section.compat ? h('label.field', h('span', t('ai.name')), f.name) : h('label.field.wide', h('span', t('ai.key')), f.key),
        section.compat ? h('label.field.wide', h('span', t('ai.keys')), f.keys) : null,
        h('label.field.wide', h('span', t('ai.baseUrl')), f.base),
        h('label.field', h('span', t('ai.prefix')), f.prefix),
        h('label.field', h('span', t('ai.priority')), f.priority),
        section.compat ? null : h('label.field', h('span', t('ai.proxy')), f.proxy),
        h('label.field.wide', h('span', t('ai.modelsHint')), f.models),
        h('label.field.wide', h('span', t('ai.headers')), f.headers)),
      section.models ? h('div.row', fetchButton) : null, fetched,
      h('div.row', h('span.grow'), save), status);
  });
}

// GET answers every field with its default; only set ones go back into the file.
function meaningful(value) {
  if (value === null || value === undefined || value === '') return false;
  if (Array.isArray(value)) return value.length > 0;
  if (typeof value === 'object') return Object.keys(value).length > 0;
  return true;
}

function stripped(item) {
  const out = {};
  for (const [key, value] of Object.entries(item)) {
    if (key === 'auth-index' || !meaningful(value)) continue;
    if (key === 'api-key-entries') out[key] = value.map(stripped);
    else if (key === 'models') out[key] = value.map(stripped);
    else out[key] = value;
  }
  return out;
}

function entryFrom(section, item, f) {
  const value = {};
  const text = (el) => el.value.trim();
  if (section.compat) {
    if (!text(f.name)) throw new Error(t('ai.nameRequired'));
    value.name = text(f.name);
    const old = new Map((item['api-key-entries'] || []).map((k) => [k['api-key'], k]));
    value['api-key-entries'] = f.keys.value.split('\n').map((k) => k.trim()).filter(Boolean)
      .map((key) => stripped(old.get(key) || { 'api-key': key }));
  } else {
    if (!text(f.key)) throw new Error(t('ai.keyRequired'));
    value['api-key'] = text(f.key);
    if (text(f.proxy)) value['proxy-url'] = text(f.proxy);
  }
  if (text(f.base)) value['base-url'] = text(f.base);
  if (text(f.prefix)) value.prefix = text(f.prefix);
  if (text(f.priority)) value.priority = Number(text(f.priority));
  const models = parseModels(f.models.value);
  if (models.length) value.models = models;
  const headers = parseHeaders(f.headers.value);
  if (Object.keys(headers).length) value.headers = headers;
  // Fields this form does not edit are kept as they are.
  for (const [key, kept] of Object.entries(item)) {
    if (meaningful(kept) && !(key in value) && !['auth-index', 'api-key', 'api-key-entries', 'base-url', 'proxy-url', 'prefix', 'priority', 'models', 'headers', 'name'].includes(key)) value[key] = kept;
  }
  return value;
}
