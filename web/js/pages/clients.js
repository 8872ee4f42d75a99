// Clients: copy-paste setup for Claude Code, Codex CLI, Gemini CLI and OpenCode, with this
// server's base URL and the models `/v1/models` lists; the same files `switchyard setup
// <client>` writes (it merges into existing files and backs up what it replaces).

import { api, get } from '../api.js';
import { clear, copyButton, errorBox, h } from '../dom.js';
import { t } from '../i18n.js';

export const KEY_PLACEHOLDER = '<your-switchyard-api-key>';

// What each client's file holds; kept identical to crates/switchyard/src/setup.rs.
export function snippets({ base, key, model }) {
  const claudeEnv = { ANTHROPIC_BASE_URL: base, ANTHROPIC_AUTH_TOKEN: key };
  if (model) claudeEnv.ANTHROPIC_MODEL = model;
  const codex = [
    'model_provider = "switchyard"',
    ...(model ? [`model = ${JSON.stringify(model)}`] : []),
    '',
    '[model_providers.switchyard]',
    'name = "Switchyard"',
    `base_url = ${JSON.stringify(`${base}/v1`)}`,
    'wire_api = "responses"',
    `http_headers = { "Authorization" = ${JSON.stringify(`Bearer ${key}`)} }`,
  ].join('\n');
  const geminiEnv = [`GOOGLE_GEMINI_BASE_URL=${base}`, `GEMINI_API_KEY=${key}`, ...(model ? [`GEMINI_MODEL=${model}`] : [])].join('\n');
  const opencode = {
    $schema: 'https://opencode.ai/config.json',
    provider: {
      switchyard: {
        npm: '@ai-sdk/openai-compatible',
        name: 'Switchyard',
        options: { baseURL: `${base}/v1`, apiKey: key },
        models: model ? { [model]: { name: model } } : {},
      },
    },
    ...(model ? { model: `switchyard/${model}` } : {}),
  };
  return [
    { id: 'claude', label: 'Claude Code', files: [['~/.claude/settings.json', JSON.stringify({ env: claudeEnv }, null, 2)]] },
    { id: 'codex', label: 'Codex CLI', files: [['~/.codex/config.toml', codex]] },
    {
      id: 'gemini', label: 'Gemini CLI', files: [['~/.gemini/.env', geminiEnv],
        ['~/.gemini/settings.json', JSON.stringify({ security: { auth: { selectedType: 'gemini-api-key' } } }, null, 2)]],
    },
    { id: 'opencode', label: 'OpenCode', files: [['~/.config/opencode/opencode.json', JSON.stringify(opencode, null, 2)]] },
  ];
}

export async function render(root) {
  const base = location.origin;
  let models = [];
  let modelsError = null;
  let clientKeys = [];
  try {
    clientKeys = (await get('/config'))['api-keys'] || [];
    // Any key works when none is configured; the panel's own requests use a marker.
    const key = clientKeys[0] || 'switchyard-panel';
    const answer = await api('GET', '/v1/models', { key, auth: true });
    models = (answer.data || []).map((m) => m.id).sort();
  } catch (error) {
    modelsError = error;
  }
  const modelSelect = h('select', { id: 'client-model', 'aria-label': t('clients.model') },
    h('option', { value: '' }, t('clients.noModel')), models.map((m) => h('option', { value: m }, m)));
  const out = h('div.stack');
  const draw = () => {
    const model = modelSelect.value;
    clear(out, snippets({ base, key: KEY_PLACEHOLDER, model }).map((client) => h('article.card.client', { dataset: { client: client.id } },
      h('header', h('h3', client.label)),
      client.files.map(([path, text]) => h('div', h('div.row', h('code', path), h('span.grow'), copyButton(text)), h('pre', text))),
      h('div', h('div.muted.small', t('clients.cli')),
        h('div.row', h('pre.grow', cliCommand(client.id, base, model)), copyButton(cliCommand(client.id, base, model)))))));
  };
  modelSelect.addEventListener('change', draw);
  root.append(h('h1', t('clients.title')), h('p.muted', t('clients.intro')),
    h('div.kv', h('span.k', t('clients.baseUrl')), h('span.v.mono', base),
      h('span.k', t('clients.key')), h('span.v', clientKeys.length ? t('clients.keyFromConfig', { n: clientKeys.length }) : t('clients.anyKey'))),
    h('label.field', h('span', t('clients.model')), modelSelect),
    modelsError ? errorBox(modelsError) : models.length ? null : h('p.small.muted', t('clients.noModels')),
    out);
  draw();
}

function cliCommand(client, base, model) {
  return `switchyard setup ${client} --base-url ${base} --key ${KEY_PLACEHOLDER}${model ? ` --model ${model}` : ''}`;
}
