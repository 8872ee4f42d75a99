// Small DOM helpers: an element builder, toasts, dialogs, a drawer, progress on buttons, time
// formatting. No innerHTML with data anywhere: text always goes in as text.

import { t } from './i18n.js';

// h('button.primary', {onclick, title, ...}, child, ...): tag with optional .classes and #id;
// attributes: `class`, `text`, `on<event>` handlers, `dataset`, booleans, anything else as an
// attribute. Children: nodes, strings, numbers, arrays, null/false (skipped).
export function h(spec, attrs = {}, ...children) {
  if (attrs === null || typeof attrs !== 'object' || attrs instanceof Node || Array.isArray(attrs)) {
    children.unshift(attrs);
    attrs = {};
  }
  const tag = spec.match(/^[a-z0-9-]*/i)[0] || 'div';
  const id = (spec.match(/#([\w-]+)/) || [])[1];
  const classes = [...spec.matchAll(/\.([\w-]+)/g)].map((m) => m[1]);
  const element = document.createElement(tag);
  if (id) element.id = id;
  if (classes.length) element.className = classes.join(' ');
  for (const [name, value] of Object.entries(attrs)) {
    if (value === undefined || value === null || value === false) continue;
    if (name === 'class') element.className = [element.className, value].filter(Boolean).join(' ');
    else if (name === 'text') element.textContent = value;
    else if (name === 'dataset') Object.assign(element.dataset, value);
    else if (name.startsWith('on') && typeof value === 'function') element.addEventListener(name.slice(2), value);
    else if (name === 'value' && 'value' in element) element.value = value;
    else if (name === 'checked' || name === 'disabled' || name === 'selected' || name === 'multiple') element[name] = Boolean(value);
    else element.setAttribute(name, value === true ? '' : String(value));
  }
  append(element, children);
  return element;
}

export function append(parent, children) {
  for (const child of children.flat(Infinity)) {
    if (child === null || child === undefined || child === false) continue;
    parent.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return parent;
}

export function clear(element, ...children) {
  element.replaceChildren();
  return append(element, children);
}

export function spinner() {
  return h('span.spinner', { role: 'progressbar', 'aria-label': t('common.working') });
}

export function toast(message, kind = 'info', ms = 6000) {
  const box = document.getElementById('toasts');
  if (!box) return;
  const item = h('div.toast', { class: kind, role: kind === 'bad' ? 'alert' : 'status' }, message);
  box.append(item);
  setTimeout(() => item.remove(), ms);
}

export function errorBox(error) {
  return h('div.error-box', { role: 'alert' }, error instanceof Error ? error.message : String(error));
}

// Runs `work` with `button` disabled and a spinner in it; errors go to a toast (or `onError`)
// with the server's message. Answers what `work` answered, or undefined on error.
export async function busy(button, work, { onError } = {}) {
  const spin = spinner();
  if (button) {
    button.disabled = true;
    button.prepend(spin);
  }
  try {
    return await work();
  } catch (error) {
    if (onError) onError(error);
    else toast(error.message, 'bad');
    return undefined;
  } finally {
    spin.remove();
    if (button) button.disabled = false;
  }
}

// A modal <dialog>; `render(close)` builds its content. Answers the dialog element.
export function modal(title, render, { onClose } = {}) {
  const dialog = h('dialog', { 'aria-label': title });
  const close = (value) => {
    dialog.close();
    dialog.remove();
    onClose?.(value);
  };
  dialog.addEventListener('cancel', (event) => {
    event.preventDefault();
    close(undefined);
  });
  append(dialog, [
    h('header.row', h('h3.grow', title), h('button', { type: 'button', 'aria-label': t('common.close'), onclick: () => close(undefined) }, '×')),
    render(close),
  ]);
  document.body.append(dialog);
  dialog.showModal();
  return dialog;
}

// Resolves true when the user confirms.
export function confirmDialog(message, { confirm = t('common.confirm'), danger = false, details = [] } = {}) {
  return new Promise((resolve) => {
    modal(t('common.areYouSure'), (close) => h('div.stack',
      h('p', message),
      details.length ? h('pre', details.join('\n')) : null,
      h('div.row',
        h('span.grow'),
        h('button', { type: 'button', onclick: () => close(false) }, t('common.cancel')),
        h(danger ? 'button.danger' : 'button.primary', { type: 'button', 'data-confirm': '', onclick: () => close(true) }, confirm)),
    ), { onClose: (value) => resolve(Boolean(value)) });
  });
}

// A drawer from the right; answers a function that closes it.
export function drawer(title, content) {
  const back = h('div.drawer-back');
  const panel = h('aside.drawer', { role: 'dialog', 'aria-label': title });
  const close = () => {
    back.remove();
    panel.remove();
    document.removeEventListener('keydown', onKey);
  };
  const onKey = (event) => {
    if (event.key === 'Escape') close();
  };
  back.addEventListener('click', close);
  document.addEventListener('keydown', onKey);
  append(panel, [h('header.row', h('h2.grow', title), h('button', { type: 'button', 'aria-label': t('common.close'), onclick: close }, '×')), content]);
  document.body.append(back, panel);
  return close;
}

export async function copyText(text, button) {
  try {
    await navigator.clipboard.writeText(text);
  } catch {
    // Clipboard API refused (not a secure context): select-and-copy fallback.
    const area = h('textarea', { value: text });
    document.body.append(area);
    area.select();
    document.execCommand('copy');
    area.remove();
  }
  if (button) {
    const before = button.textContent;
    button.textContent = t('common.copied');
    setTimeout(() => { button.textContent = before; }, 1500);
  }
}

export function copyButton(getText) {
  const button = h('button', { type: 'button', class: 'copy' }, t('common.copy'));
  button.addEventListener('click', () => copyText(typeof getText === 'function' ? getText() : getText, button));
  return button;
}

export function formatTime(iso) {
  if (!iso) return '—';
  const date = new Date(iso);
  if (Number.isNaN(date.getTime())) return String(iso);
  return date.toLocaleString();
}

// "in 5 min" / "3 h ago", through the i18n table.
export function relativeTime(iso, now = Date.now()) {
  if (!iso) return '—';
  const at = new Date(iso).getTime();
  if (Number.isNaN(at)) return String(iso);
  const seconds = Math.round((at - now) / 1000);
  const abs = Math.abs(seconds);
  const [value, unit] = abs < 90 ? [abs, 's'] : abs < 5400 ? [Math.round(abs / 60), 'min'] : abs < 172800 ? [Math.round(abs / 3600), 'h'] : [Math.round(abs / 86400), 'd'];
  // Just now (0 s, or -0 from rounding) reads "0 s ago", not "in 0 s".
  return t(seconds > 0 ? 'time.in' : 'time.ago', { n: value, unit: t(`time.${unit}`) });
}

export function duration(seconds) {
  const s = Math.max(0, Math.floor(seconds));
  const m = Math.floor(s / 60);
  return `${String(m).padStart(2, '0')}:${String(s % 60).padStart(2, '0')}`;
}

// Masks a secret for display: its length and last 4 characters.
export function mask(value) {
  const text = String(value ?? '');
  if (!text) return '';
  return text.length <= 8 ? '••••' : `••••${text.slice(-4)} (${text.length})`;
}

export function isLoopbackHost(hostname = location.hostname) {
  return hostname === 'localhost' || hostname === '[::1]' || hostname === '::1' || /^127\./.test(hostname);
}

// A headers map as the `Name: value` lines of a textarea, and back; a line without a name
// before its colon is refused with the line in the message.
export function headersText(headers) {
  return Object.entries(headers || {}).map(([name, value]) => `${name}: ${value}`).join('\n');
}

export function parseHeaders(text) {
  const out = {};
  for (const line of text.split('\n').map((l) => l.trim()).filter(Boolean)) {
    const at = line.indexOf(':');
    if (at <= 0) throw new Error(t('detail.badHeader', { line }));
    out[line.slice(0, at).trim()] = line.slice(at + 1).trim();
  }
  return out;
}
