// Model rules for OAuth accounts, per channel: excluded models (`/oauth-excluded-models`,
// `*` wildcards) and aliases (`/oauth-model-alias`). Per-account exclusions are in the Auth
// Files drawer. The model picker comes from `/model-definitions/{channel}`.

import { del, get, patch } from '../api.js';
import { busy, clear, errorBox, h, spinner, toast } from '../dom.js';
import { t } from '../i18n.js';

export async function render(root, { providers }) {
  const list = await providers();
  const channels = list.map((p) => p.id);
  const excludedBox = h('div.stack');
  const aliasBox = h('div.stack');
  const datalist = h('datalist', { id: 'channel-list' }, channels.map((c) => h('option', { value: c })));
  root.append(h('h1', t('rules.title')), h('p.muted', t('rules.intro')), datalist,
    h('h2', t('rules.excluded')), h('p.small.muted', t('rules.excludedHint')), excludedBox,
    h('h2', t('rules.aliases')), h('p.small.muted', t('rules.aliasesHint')), aliasBox);

  const modelCache = new Map();
  async function modelsOf(channel) {
    if (!modelCache.has(channel)) {
      modelCache.set(channel, get(`/model-definitions/${encodeURIComponent(channel)}`).then((a) => (a.models || []).map((m) => m.id)).catch(() => []));
    }
    return modelCache.get(channel);
  }

  async function loadExcluded() {
    clear(excludedBox, h('div.progress', spinner()));
    try {
      const map = (await get('/oauth-excluded-models'))['oauth-excluded-models'] || {};
      clear(excludedBox, Object.entries(map).map(([channel, patterns]) => excludedCard(channel, patterns)), excludedCard('', [], true));
    } catch (error) {
      clear(excludedBox, errorBox(error));
    }
  }

  function excludedCard(channel, patterns, isNew = false) {
    const name = h('input', { value: channel, list: 'channel-list', placeholder: t('rules.channel'), disabled: !isNew, 'aria-label': t('rules.channel') });
    const area = h('textarea', { rows: 3, value: patterns.join('\n'), placeholder: 'gpt-4*\n*-preview', 'aria-label': t('rules.patterns') });
    const save = h('button.primary', { type: 'button' }, isNew ? t('common.add') : t('common.save'));
    save.addEventListener('click', () => busy(save, async () => {
      const models = area.value.split('\n').map((s) => s.trim()).filter(Boolean);
      if (!name.value.trim()) throw new Error(t('rules.channelRequired'));
      await patch('/oauth-excluded-models', { provider: name.value.trim(), models });
      toast(t('rules.saved'), 'ok');
      await loadExcluded();
    }));
    const remove = isNew ? null : h('button.danger', {
      type: 'button',
      onclick: (e) => busy(e.currentTarget, async () => {
        await del(`/oauth-excluded-models?provider=${encodeURIComponent(channel)}`);
        await loadExcluded();
      }),
    }, t('common.delete'));
    return h('div.card.rule', { dataset: { channel } }, h('div.form', h('label.field', h('span', t('rules.channel')), name),
      h('label.field.wide', h('span', t('rules.patterns')), area)), h('div.row', save, remove));
  }

  async function loadAliases() {
    clear(aliasBox, h('div.progress', spinner()));
    try {
      const map = (await get('/oauth-model-alias'))['oauth-model-alias'] || {};
      clear(aliasBox, Object.entries(map).map(([channel, aliases]) => aliasCard(channel, aliases)), aliasCard('', [], true));
    } catch (error) {
      clear(aliasBox, errorBox(error));
    }
  }

  function aliasCard(channel, aliases, isNew = false) {
    const name = h('input', { value: channel, list: 'channel-list', placeholder: t('rules.channel'), disabled: !isNew, 'aria-label': t('rules.channel') });
    const rows = h('tbody');
    const pickerId = `models-${channel || 'new'}`;
    const picker = h('datalist', { id: pickerId });
    const fill = async () => clear(picker, (await modelsOf(name.value.trim())).map((id) => h('option', { value: id })));
    name.addEventListener('change', fill);
    if (channel) fill();
    const addRow = (alias = {}) => {
      const upstream = h('input', { value: alias.name || '', list: pickerId, 'aria-label': t('rules.upstream') });
      const shown = h('input', { value: alias.alias || '', 'aria-label': t('rules.alias') });
      const fork = h('input', { type: 'checkbox', checked: Boolean(alias.fork), 'aria-label': t('rules.fork') });
      const tr = h('tr', h('td', upstream), h('td', shown), h('td', fork), h('td', h('button', { type: 'button', onclick: () => tr.remove() }, '×')));
      tr.read = () => ({ name: upstream.value.trim(), alias: shown.value.trim(), ...(fork.checked ? { fork: true } : {}) });
      rows.append(tr);
    };
    aliases.forEach(addRow);
    if (!aliases.length) addRow();
    const save = h('button.primary', { type: 'button' }, isNew ? t('common.add') : t('common.save'));
    save.addEventListener('click', () => busy(save, async () => {
      if (!name.value.trim()) throw new Error(t('rules.channelRequired'));
      const list = [...rows.children].map((tr) => tr.read()).filter((a) => a.name && a.alias);
      await patch('/oauth-model-alias', { channel: name.value.trim(), aliases: list });
      toast(t('rules.saved'), 'ok');
      await loadAliases();
    }));
    return h('div.card.rule', { dataset: { channel } }, picker,
      h('label.field', h('span', t('rules.channel')), name),
      h('div.table-wrap', h('table.grid', h('thead', h('tr', h('th', t('rules.upstream')), h('th', t('rules.alias')), h('th', t('rules.fork')), h('th', ''))), rows)),
      h('div.row', h('button', { type: 'button', onclick: () => addRow() }, t('rules.addAlias')), save));
  }

  await Promise.all([loadExcluded(), loadAliases()]);
}
