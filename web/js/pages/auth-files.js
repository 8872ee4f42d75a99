// Auth Files: every credential in a table with filters, batch actions (enable, disable,
// download, delete, delete all invalid), upload (drag and drop, many files, per-file results)
// and a detail drawer (auth-detail.js).

import { api, del, download, get, patch } from '../api.js';
import { accountState, isInvalid, stateClass, stateLabel } from '../accounts.js';
import { append, busy, clear, confirmDialog, errorBox, formatTime, h, relativeTime, spinner, toast } from '../dom.js';
import { t } from '../i18n.js';
import { openDetail } from './auth-detail.js';

const STATES = ['connected', 'relogin', 'refreshing', 'quota', 'cooling', 'disabled', 'error', 'invalid'];

export async function render(root, { params }) {
  let files = [];
  const selected = new Set();
  const providerFilter = h('select', { id: 'filter-provider', 'aria-label': t('files.provider') });
  const stateFilter = h('select', { id: 'filter-state', 'aria-label': t('files.status') },
    h('option', { value: '' }, t('files.allStates')), STATES.map((s) => h('option', { value: s }, t(`state.${s}`))));
  const textFilter = h('input', { type: 'search', id: 'filter-text', placeholder: t('files.search'), 'aria-label': t('files.search') });
  const selectAll = h('input', { type: 'checkbox', id: 'select-all', 'aria-label': t('files.selectAll') });
  const tbody = h('tbody');
  const counter = h('span.muted.small', { id: 'selection-count' });
  const uploadResults = h('div.upload-results');
  const fileInput = h('input', { type: 'file', id: 'upload-input', multiple: true, accept: '.json,application/json', class: 'hidden' });
  const drop = h('div.drop', { id: 'upload-drop' }, t('files.dropHint'), ' ',
    h('button', { type: 'button', onclick: () => fileInput.click() }, t('files.choose')));

  const batch = (label, id, action, kind = '') => h(kind ? `button.${kind}` : 'button', { type: 'button', id, onclick: (e) => busy(e.currentTarget, action) }, label);
  const toolbar = h('div.toolbar',
    batch(t('files.enable'), 'batch-enable', () => setDisabled(false)),
    batch(t('files.disable'), 'batch-disable', () => setDisabled(true)),
    batch(t('files.download'), 'batch-download', downloadSelected),
    batch(t('files.delete'), 'batch-delete', deleteSelected, 'danger'),
    batch(t('files.deleteInvalid'), 'delete-invalid', deleteInvalid, 'danger'),
    counter);

  root.append(
    h('div.row', h('h1.grow', t('files.title')), h('button', { type: 'button', id: 'files-reload', onclick: (e) => busy(e.currentTarget, load) }, t('common.reload'))),
    h('div.toolbar', providerFilter, stateFilter, textFilter),
    toolbar,
    h('div.table-wrap', h('table.grid#auth-files-table',
      h('thead', h('tr', h('th', selectAll), h('th', t('files.name')), h('th', t('files.provider')), h('th.hide-narrow', t('files.account')),
        h('th', t('files.status')), h('th.hide-narrow', t('files.lastRefresh')), h('th.hide-narrow', t('files.nextRefresh')), h('th', t('files.enabled')))),
      tbody)),
    h('h2', t('files.upload')), drop, fileInput, uploadResults);

  const visible = () => {
    const provider = providerFilter.value;
    const state = stateFilter.value;
    const text = textFilter.value.trim().toLowerCase();
    return files.filter((f) => (!provider || f.provider === provider)
      && (!state || accountState(f).kind === state)
      && (!text || [f.name, f.email, f.account, f.provider, f.label, f.note].some((v) => String(v || '').toLowerCase().includes(text))));
  };

  function renderRows() {
    const rows = visible();
    for (const name of [...selected]) if (!files.some((f) => f.name === name)) selected.delete(name);
    clear(tbody, rows.length ? rows.map(row) : h('tr', h('td', { colspan: 8, class: 'muted' }, t('files.none'))));
    selectAll.checked = rows.length > 0 && rows.every((f) => selected.has(f.name));
    counter.textContent = t('files.selected', { n: selected.size });
  }

  function row(file) {
    const state = accountState(file);
    const check = h('input', { type: 'checkbox', class: 'select', 'aria-label': file.name, checked: selected.has(file.name) });
    check.addEventListener('change', () => {
      if (check.checked) selected.add(file.name);
      else selected.delete(file.name);
      renderRows();
    });
    const toggle = h('input', { type: 'checkbox', class: 'enabled', 'aria-label': t('files.enabled'), checked: !file.disabled, disabled: state.kind === 'invalid' });
    toggle.addEventListener('change', async () => {
      toggle.disabled = true;
      try {
        await patch('/auth-files/status', { name: file.name, auth_index: file.auth_index, disabled: !toggle.checked });
        await load();
      } catch (error) {
        toggle.checked = !toggle.checked;
        toggle.disabled = false;
        toast(error.message, 'bad');
      }
    });
    const nameCell = file.runtime_only
      ? h('span', file.name, ' ', h('span.badge', t('files.runtime')))
      : h('button.link', { type: 'button', class: 'open-detail', onclick: () => openDetail(file, load) }, file.name);
    return h('tr', { dataset: { file: file.name } },
      h('td', check),
      h('td', nameCell),
      h('td', file.provider),
      h('td.hide-narrow', file.email || file.account || ''),
      h('td', h('span.badge.account-state', { class: stateClass(state) }, stateLabel(state)), state.detail ? h('div.msg', state.detail) : null),
      h('td.hide-narrow', file.last_refresh ? relativeTime(file.last_refresh) : '—'),
      h('td.hide-narrow', nextRefresh(file)),
      h('td', toggle));
  }

  async function load() {
    const answer = await get('/auth-files');
    files = answer.files || [];
    const providers = [...new Set(files.map((f) => f.provider))].sort();
    const keep = providerFilter.value;
    clear(providerFilter, h('option', { value: '' }, t('files.allProviders')), providers.map((p) => h('option', { value: p, selected: p === keep }, p)));
    renderRows();
  }

  const chosen = () => files.filter((f) => selected.has(f.name));

  async function setDisabled(disabled) {
    const targets = chosen();
    if (!targets.length) return toast(t('files.selectFirst'));
    const failures = [];
    for (const file of targets) {
      try {
        await patch('/auth-files/status', { name: file.name, auth_index: file.auth_index, disabled });
      } catch (error) {
        failures.push(`${file.name}: ${error.message}`);
      }
    }
    // A finished batch starts the next selection afresh, so no file rides along unseen.
    selected.clear();
    await load();
    if (failures.length) toast(failures.join('\n'), 'bad', 12000);
    else toast(t(disabled ? 'files.disabledN' : 'files.enabledN', { n: targets.length }), 'ok');
  }

  async function downloadSelected() {
    const targets = chosen().filter((f) => !f.runtime_only);
    if (!targets.length) return toast(t('files.selectFirst'));
    for (const file of targets) await download(`/auth-files/download?name=${encodeURIComponent(file.name)}`, file.name);
  }

  async function deleteNames(names) {
    const answer = await del('/auth-files', { json: { names } });
    const failed = answer?.failed || [];
    selected.clear();
    await load();
    if (failed.length) toast(failed.map((f) => `${f.name}: ${f.error}`).join('\n'), 'bad', 12000);
    else toast(t('files.deletedN', { n: names.length }), 'ok');
  }

  async function deleteSelected() {
    const names = chosen().filter((f) => !f.runtime_only).map((f) => f.name);
    if (!names.length) return toast(t('files.selectFirst'));
    if (await confirmDialog(t('files.confirmDelete', { n: names.length }), { danger: true, confirm: t('files.delete'), details: names })) {
      await deleteNames(names);
    }
  }

  async function deleteInvalid() {
    const names = files.filter(isInvalid).map((f) => f.name);
    if (!names.length) return toast(t('files.noInvalid'));
    if (await confirmDialog(t('files.confirmDeleteInvalid', { n: names.length }), { danger: true, confirm: t('files.delete'), details: names })) {
      await deleteNames(names);
    }
  }

  async function upload(list) {
    const items = [...list];
    if (!items.length) return;
    const form = new FormData();
    for (const file of items) form.append('file', file, file.name);
    clear(uploadResults, h('div.progress', spinner(), t('files.uploading', { n: items.length })));
    let failed = [];
    let topError = null;
    try {
      const answer = await api('POST', '/auth-files', { body: form });
      failed = answer?.failed || [];
    } catch (error) {
      failed = error.body?.failed || [];
      // One file, or a refusal of the whole upload: the server's message is that file's.
      if (!failed.length) {
        if (items.length === 1) failed = [{ name: items[0].name, error: error.message }];
        else topError = error;
      }
    }
    const byName = new Map(failed.map((f) => [f.name, f.error || f.message]));
    clear(uploadResults, topError ? errorBox(topError) : null, h('ul.upload-list', items.map((file) => (byName.has(file.name)
      ? h('li.bad', { dataset: { file: file.name } }, h('span.badge.bad', t('files.uploadFailed')), ' ', h('strong', file.name), ': ', byName.get(file.name))
      : h('li.ok', { dataset: { file: file.name } }, h('span.badge.ok', t('files.uploadOk')), ' ', h('strong', file.name))))));
    await load();
  }

  providerFilter.addEventListener('change', renderRows);
  stateFilter.addEventListener('change', renderRows);
  textFilter.addEventListener('input', renderRows);
  selectAll.addEventListener('change', () => {
    for (const file of visible()) {
      if (selectAll.checked) selected.add(file.name);
      else selected.delete(file.name);
    }
    renderRows();
  });
  fileInput.addEventListener('change', () => {
    upload(fileInput.files);
    fileInput.value = '';
  });
  drop.addEventListener('dragover', (event) => {
    event.preventDefault();
    drop.classList.add('over');
  });
  drop.addEventListener('dragleave', () => drop.classList.remove('over'));
  drop.addEventListener('drop', (event) => {
    event.preventDefault();
    drop.classList.remove('over');
    upload(event.dataTransfer.files);
  });

  try {
    await load();
  } catch (error) {
    append(root, [errorBox(error)]);
    return undefined;
  }
  const wanted = params.get('file');
  const target = wanted && files.find((f) => f.name === wanted);
  if (target) {
    tbody.querySelector(`tr[data-file="${CSS.escape(wanted)}"]`)?.scrollIntoView({ block: 'center' });
    if (!target.runtime_only) openDetail(target, load);
  }
  return undefined;
}

// The refresher renews a token ahead of its expiry; a failed refresh retries at next_retry_after.
function nextRefresh(file) {
  if (file.next_retry_after && new Date(file.next_retry_after).getTime() > Date.now()) {
    return h('span', { title: formatTime(file.next_retry_after) }, t('files.retry', { when: relativeTime(file.next_retry_after) }));
  }
  if (file.expired) return h('span', { title: t('files.expiresAt', { when: formatTime(file.expired) }) }, t('files.before', { when: relativeTime(file.expired) }));
  return '—';
}
