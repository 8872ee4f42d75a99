// Inspection: start a run (`POST /inspection`, optionally one provider), follow it until it
// finishes (the server keeps one run; it has no partial results, so progress is the time it has
// been running), then every account's probe, health and recommendation with its reason, and
// apply one or the selected recommendations (`POST /inspection/apply`); deleting a file always
// asks first.

import { get, post } from '../api.js';
import { append, busy, clear, confirmDialog, errorBox, formatTime, h, relativeTime, spinner, toast } from '../dom.js';
import { t } from '../i18n.js';
import { actionBadge, formatMs, healthBadge } from '../monitor.js';

const POLL_MS = 1000;

export async function render(root, { providers, navigate }) {
  const offered = await providers();
  const provider = h('select', { id: 'inspection-provider', 'aria-label': t('files.provider') },
    h('option', { value: '' }, t('insp.allProviders')), offered.map((p) => h('option', { value: p.id }, p.label || p.id)));
  const runButton = h('button.primary', { type: 'button', id: 'inspection-run', onclick: (e) => busy(e.currentTarget, start) }, t('insp.run'));
  const applySelected = h('button', { type: 'button', id: 'inspection-apply-selected', onclick: (e) => busy(e.currentTarget, () => apply(chosen())) }, t('insp.applySelected'));
  const selectAll = h('input', { type: 'checkbox', id: 'inspection-select-all', 'aria-label': t('files.selectAll') });
  const status = h('div', { id: 'inspection-status' });
  const counts = h('div.row.small', { id: 'inspection-counts' });
  const selectedCount = h('span.muted.small', { id: 'inspection-selected' });
  const tbody = h('tbody');
  const selected = new Set();
  let run = null;
  let files = new Set();
  let timer = null;
  let left = false;

  root.append(
    h('div.row', h('h1.grow', t('insp.title')), provider, runButton),
    h('p.muted', t('insp.intro')),
    status, counts,
    h('div.toolbar', applySelected, selectedCount),
    h('div.table-wrap', h('table.grid#inspection-table',
      h('thead', h('tr', h('th', selectAll), h('th', t('dash.account')), h('th.hide-narrow', t('files.provider')), h('th', t('insp.probe')),
        h('th', t('dash.health')), h('th', t('insp.recommendation')), h('th', t('dash.reason')), h('th', ''))),
      tbody)));

  async function load() {
    const [answer, listing] = await Promise.all([get('/inspection'), get('/auth-files')]);
    files = new Set((listing.files || []).filter((f) => !f.runtime_only).map((f) => f.name));
    run = answer;
    renderRun();
    if (run.state === 'running') schedulePoll();
  }

  function schedulePoll() {
    clearTimeout(timer);
    if (left) return;
    timer = setTimeout(async () => {
      try {
        run = await get('/inspection');
        renderRun();
        if (run.state === 'running') schedulePoll();
        else if (run.counts) toast(t('insp.finished', { n: run.counts.total }), 'ok');
      } catch (error) {
        clear(status, errorBox(error));
      }
    }, POLL_MS);
  }

  async function start() {
    const query = provider.value ? `?provider=${encodeURIComponent(provider.value)}` : '';
    try {
      await post(`/inspection${query}`, {});
    } catch (error) {
      // Another run (a scheduled one, another tab) is on: follow that one.
      if (error.status !== 409) throw error;
      toast(error.message);
    }
    selected.clear();
    run = await get('/inspection');
    renderRun();
    schedulePoll();
  }

  function renderRun() {
    const running = run?.state === 'running';
    runButton.disabled = running;
    if (!run || run.state === 'none') {
      clear(status, h('p.muted', t('insp.never')));
    } else if (running) {
      const seconds = Math.max(0, Math.round((Date.now() - new Date(run.started_at).getTime()) / 1000));
      clear(status, h('div.progress', { id: 'inspection-progress' }, spinner(), t('insp.running', { s: seconds })));
    } else {
      clear(status, h('p.small', { id: 'inspection-done' }, t('insp.lastRun', {
        id: run.id, trigger: t(run.trigger === 'schedule' ? 'insp.scheduled' : 'insp.manual'),
        when: relativeTime(run.finished_at), took: formatMs(new Date(run.finished_at) - new Date(run.started_at)),
      }), run.filter?.provider ? ` · ${run.filter.provider}` : ''));
    }
    const c = running ? null : run?.counts;
    clear(counts, c ? ['reauth', 'delete', 'disable', 'enable', 'keep'].map((action) => h('span.row', { dataset: { count: action } }, actionBadge(action), String(c[action] || 0))) : null);
    renderRows();
  }

  const results = () => (run?.state === 'completed' ? run.results || [] : []);
  const actionable = (r) => r.action !== 'keep' && r.applied?.status !== 'executed';
  const chosen = () => results().filter((r) => selected.has(r.auth_index));

  function renderRows() {
    const rows = results();
    for (const index of [...selected]) if (!rows.some((r) => r.auth_index === index && actionable(r))) selected.delete(index);
    clear(tbody, rows.length ? rows.map(row) : h('tr', h('td', { colspan: 8, class: 'muted' }, t(run?.state === 'running' ? 'insp.waiting' : 'insp.noResults'))));
    const open = rows.filter(actionable);
    selectAll.checked = open.length > 0 && open.every((r) => selected.has(r.auth_index));
    selectAll.disabled = !open.length;
    applySelected.disabled = !selected.size;
    selectedCount.textContent = t('files.selected', { n: selected.size });
  }

  function row(result) {
    const check = h('input', { type: 'checkbox', class: 'select', 'aria-label': result.name, checked: selected.has(result.auth_index), disabled: !actionable(result) });
    check.addEventListener('change', () => {
      if (check.checked) selected.add(result.auth_index);
      else selected.delete(result.auth_index);
      renderRows();
    });
    const probe = result.probe || {};
    const probeText = probe.kind === 'none' ? t('insp.notProbed')
      : [t(probe.kind === 'quota' ? 'insp.probeQuota' : 'insp.probeRequest'), probe.status ? String(probe.status) : null,
        probe.latency_ms !== null && probe.latency_ms !== undefined ? formatMs(probe.latency_ms) : null].filter(Boolean).join(' · ');
    const applied = result.applied;
    return h('tr', { dataset: { authIndex: result.auth_index, name: result.name, action: result.action } },
      h('td', check),
      h('td', files.has(result.name)
        ? h('button.link', { type: 'button', class: 'open-file', onclick: () => navigate('auth-files', { file: result.name }) }, result.name)
        : result.name),
      h('td.hide-narrow', result.provider),
      h('td.probe', probeText, probe.error ? h('div.msg', probe.error) : null),
      h('td', healthBadge(result.health), result.health_reason ? h('div.msg', result.health_reason) : null),
      h('td', actionBadge(result.action), h('div.small.muted', t(`insp.priority.${['critical', 'high', 'medium', 'low'].includes(result.priority) ? result.priority : 'low'}`))),
      h('td.msg.reason', result.reason),
      h('td',
        applied
          ? h('div.applied', { class: applied.status === 'executed' ? 'ok' : applied.status === 'failed' ? 'bad' : '', dataset: { status: applied.status } },
            t(`insp.applied.${['executed', 'skipped', 'failed'].includes(applied.status) ? applied.status : 'skipped'}`),
            h('div.msg', { title: formatTime(applied.at) }, applied.message))
          : null,
        actionable(result)
          ? h('button', { type: 'button', class: result.action === 'delete' ? 'apply danger' : 'apply', onclick: (e) => busy(e.currentTarget, () => apply([result])) }, t('insp.apply'))
          : null));
  }

  async function apply(items) {
    const todo = items.filter(actionable);
    if (!todo.length) return toast(t('files.selectFirst'));
    const deletes = todo.filter((r) => r.action === 'delete');
    if (deletes.length && !(await confirmDialog(t('insp.confirmDelete', { n: deletes.length }), { danger: true, confirm: t('files.delete'), details: deletes.map((r) => r.name) }))) return;
    const answer = await post('/inspection/apply', { items: todo.map((r) => ({ auth_index: r.auth_index, action: r.action })) });
    const outcomes = answer.results || [];
    const failed = outcomes.filter((o) => o.status === 'failed');
    selected.clear();
    await load();
    if (failed.length) toast(failed.map((o) => `${o.name || o.auth_index}: ${o.message}`).join('\n'), 'bad', 12000);
    else toast(t('insp.appliedN', { n: outcomes.length }), 'ok');
  }

  selectAll.addEventListener('change', () => {
    for (const result of results().filter(actionable)) {
      if (selectAll.checked) selected.add(result.auth_index);
      else selected.delete(result.auth_index);
    }
    renderRows();
  });

  try {
    await load();
  } catch (error) {
    append(root, [errorBox(error)]);
  }
  return () => {
    left = true;
    clearTimeout(timer);
  };
}
