// Config: the common settings through CPA's scalar endpoints (each a comment-preserving edit
// of config.yaml), and the raw config.yaml editor (`GET/PUT /config.yaml`): the server
// validates the whole document first and refuses a bad one with its line, leaving the file
// as it was.

import { api, get, put } from '../api.js';
import { busy, clear, errorBox, h, spinner, toast } from '../dom.js';
import { t } from '../i18n.js';

// Route, key path in `/config`, kind. Only settings Switchyard acts on.
const SETTINGS = [
  ['/debug', ['debug'], 'bool'],
  ['/request-log', ['request-log'], 'bool'],
  ['/logging-to-file', ['logging-to-file'], 'bool'],
  ['/usage-statistics-enabled', ['usage-statistics-enabled'], 'bool'],
  ['/force-model-prefix', ['force-model-prefix'], 'bool'],
  ['/routing/strategy', ['routing', 'strategy'], ['round-robin', 'fill-first', 'weighted-round-robin']],
  ['/request-retry', ['request-retry'], 'int'],
  ['/max-retry-credentials', ['max-retry-credentials'], 'int'],
  ['/max-retry-interval', ['max-retry-interval'], 'int'],
  ['/logs-max-total-size-mb', ['logs-max-total-size-mb'], 'int'],
  ['/proxy-url', ['proxy-url'], 'text'],
];

export async function render(root) {
  const settings = h('div.form#settings');
  const editor = h('textarea.code', { id: 'config-yaml', spellcheck: 'false', 'aria-label': 'config.yaml' });
  const status = h('div', { id: 'config-status' });
  const save = h('button.primary', { type: 'button', id: 'config-save' }, t('config.saveYaml'));
  const reload = h('button', { type: 'button', id: 'config-reload' }, t('common.reload'));
  root.append(h('h1', t('config.title')),
    h('h2', t('config.common')), h('p.small.muted', t('config.commonHint')), settings,
    h('h2', t('config.raw')), h('p.small.muted', t('config.rawHint')),
    h('div.row', save, reload), status, editor);

  async function loadSettings() {
    clear(settings, h('div.progress', spinner()));
    let config;
    try {
      config = await get('/config');
    } catch (error) {
      clear(settings, errorBox(error));
      return;
    }
    clear(settings, SETTINGS.map(([route, path, kind]) => setting(route, path.reduce((node, key) => node?.[key], config), kind)));
  }

  function setting(route, value, kind) {
    const label = t(`config.key.${route.slice(1).replace(/\//g, '.')}`);
    const message = h('div.msg');
    let input;
    const send = async (next) => {
      clear(message, h('span.progress', spinner(), t('common.saving')));
      try {
        await put(route, { value: next });
        clear(message, t('common.saved'));
        await loadYaml();
        return true;
      } catch (error) {
        clear(message, errorBox(error));
        return false;
      }
    };
    if (kind === 'bool') {
      input = h('input', { type: 'checkbox', checked: Boolean(value), dataset: { route } });
      input.addEventListener('change', async () => {
        input.disabled = true;
        if (!(await send(input.checked))) input.checked = !input.checked;
        input.disabled = false;
      });
      return h('div', h('label.check', input, h('span', label)), message);
    }
    if (Array.isArray(kind)) {
      input = h('select', { dataset: { route } }, kind.map((v) => h('option', { value: v, selected: v === value }, v)));
      input.addEventListener('change', () => send(input.value));
    } else {
      input = h('input', { type: kind === 'int' ? 'number' : 'text', step: kind === 'int' ? 1 : undefined, value: value ?? '', dataset: { route } });
      input.addEventListener('change', () => {
        const raw = input.value.trim();
        if (kind === 'int' && !/^-?\d+$/.test(raw)) {
          clear(message, errorBox(t('config.notInteger')));
          return;
        }
        send(kind === 'int' ? Number(raw) : raw);
      });
    }
    return h('label.field', h('span', label), input, message);
  }

  async function loadYaml() {
    try {
      const response = await api('GET', '/config.yaml', { raw: true, headers: { Accept: 'application/yaml' } });
      editor.value = await response.text();
    } catch (error) {
      clear(status, errorBox(error));
    }
  }

  // Puts the cursor on the line the server named.
  function selectLine(line) {
    const lines = editor.value.split('\n');
    if (!line || line > lines.length) return;
    const start = lines.slice(0, line - 1).reduce((n, l) => n + l.length + 1, 0);
    editor.focus();
    editor.setSelectionRange(start, start + lines[line - 1].length);
  }

  save.addEventListener('click', () => busy(save, async () => {
    clear(status, h('div.progress', spinner(), t('common.saving')));
    try {
      const answer = await api('PUT', '/config.yaml', { body: editor.value, headers: { 'Content-Type': 'application/yaml' } });
      const warnings = answer?.warnings || [];
      clear(status, h('div.ok-box', t('config.savedYaml')), warnings.length ? h('ul.msg', warnings.map((w) => h('li', w))) : null);
      toast(t('config.savedYaml'), 'ok');
      await loadSettings();
    } catch (error) {
      const line = error.body?.line;
      clear(status, h('div.error-box.config-error', { role: 'alert' },
        line ? h('strong', t('config.errorAt', { line }), ' ') : null, error.message,
        h('div.small', t('config.unchanged'))));
      selectLine(line);
    }
  }));
  reload.addEventListener('click', () => busy(reload, async () => {
    clear(status);
    await Promise.all([loadYaml(), loadSettings()]);
  }));

  await Promise.all([loadSettings(), loadYaml()]);
}
