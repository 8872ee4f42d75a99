// The panel shell: the gate (login with the management key, or why management is not
// reachable), the left navigation built from the page registry, hash routing, theme and
// language.

import { ApiError, api, checkKey, probe, session, setUnauthorizedHandler } from './api.js';
import { append, clear, errorBox, h, isLoopbackHost, spinner } from './dom.js';
import { LANGUAGES, getLanguage, setLanguage, t } from './i18n.js';

// The page registry. A page shows in the navigation when its module exists and, if it names
// `requires` (a GET of the management API it is built on), when the server answers that call
// with anything but 404 — checked once after login. The Dashboard comes first (the page a
// sign-in opens); a Quota page registers here with its `requires` once `/quota` exists.
export const PAGES = [
  // `/requests?limit=1`: the cheapest call of the records API (an aggregate reads every row).
  { id: 'dashboard', label: 'nav.dashboard', requires: '/requests?limit=1', load: () => import('./pages/dashboard.js') },
  { id: 'monitoring', label: 'nav.monitoring', requires: '/requests?limit=1', load: () => import('./pages/monitoring.js') },
  { id: 'quota', label: 'nav.quota', requires: '/quota', load: () => import('./pages/quota.js') },
  { id: 'inspection', label: 'nav.inspection', requires: '/inspection', load: () => import('./pages/inspection.js') },
  { id: 'providers', label: 'nav.providers', load: () => import('./pages/providers.js') },
  { id: 'oauth', label: 'nav.oauth', load: () => import('./pages/oauth.js') },
  { id: 'auth-files', label: 'nav.authFiles', load: () => import('./pages/auth-files.js') },
  { id: 'ai-providers', label: 'nav.aiProviders', load: () => import('./pages/ai-providers.js') },
  { id: 'model-rules', label: 'nav.modelRules', load: () => import('./pages/model-rules.js') },
  { id: 'config', label: 'nav.config', load: () => import('./pages/config.js') },
  { id: 'clients', label: 'nav.clients', load: () => import('./pages/clients.js') },
];

const THEME_SLOT = 'switchyard.theme';
const root = document.getElementById('app');
let pages = [];
let leavePage = null;
let providersCache = null;
let navigation = null;

function applyTheme(theme) {
  if (theme === 'light' || theme === 'dark') document.documentElement.dataset.theme = theme;
  else delete document.documentElement.dataset.theme;
}

function themeButton() {
  const themes = ['auto', 'light', 'dark'];
  const current = () => localStorage.getItem(THEME_SLOT) || 'auto';
  const button = h('button', { type: 'button', id: 'theme-toggle' });
  const label = () => { button.textContent = `${t('theme.label')}: ${t(`theme.${current()}`)}`; };
  button.addEventListener('click', () => {
    const next = themes[(themes.indexOf(current()) + 1) % themes.length];
    localStorage.setItem(THEME_SLOT, next);
    applyTheme(next);
    label();
  });
  label();
  return button;
}

function languageSelect() {
  const select = h('select', { id: 'language', 'aria-label': t('lang.label') },
    LANGUAGES.map(([code, name]) => h('option', { value: code, selected: code === getLanguage() }, name)));
  select.addEventListener('change', () => {
    setLanguage(select.value);
    start();
  });
  return select;
}

// ---- gate screens -------------------------------------------------------------------------

function gate(...children) {
  root.className = 'gate';
  document.title = t('app.title');
  clear(root, h('div.gate-box.card.stack', h('h1', h('span', '⇄'), t('app.title')), ...children,
    h('div.row', languageSelect(), themeButton())));
}

function showDisabled(message) {
  gate(h('h2', { id: 'gate-disabled' }, t('gate.disabledTitle')), h('p', t('gate.disabledBody')),
    h('pre', 'remote-management:\n  secret-key: "<a long random key>"'), message ? h('p.msg', message) : null);
}

function showRemoteRefused(message) {
  gate(h('h2', { id: 'gate-remote' }, t('gate.remoteTitle')), h('p', t('gate.remoteBody')),
    h('pre', 'remote-management:\n  allow-remote: true'), message ? h('p.msg', message) : null,
    h('button', { type: 'button', onclick: () => showLogin() }, t('gate.tryAgain')));
}

function showLogin(error) {
  const input = h('input', { type: 'password', id: 'management-key', autocomplete: 'current-password', required: true, 'aria-label': t('gate.key') });
  const status = h('div');
  if (error) append(status, [errorBox(error)]);
  const submit = h('button.primary', { type: 'submit', id: 'login-submit' }, t('gate.signIn'));
  const form = h('form.stack', { id: 'login-form' },
    h('label.field', h('span', t('gate.key')), input),
    h('p.muted.small', t('gate.keyHint')),
    h('div.row', submit),
    status);
  form.addEventListener('submit', async (event) => {
    event.preventDefault();
    const key = input.value.trim();
    if (!key) return;
    submit.disabled = true;
    clear(status, h('div.progress', spinner(), t('gate.checking')));
    const answer = await checkKey(key);
    submit.disabled = false;
    if (answer.state === 'ok') {
      session.set(key);
      enter();
      return;
    }
    if (answer.state === 'disabled') return showDisabled(answer.message);
    if (answer.state === 'remote') return showRemoteRefused(answer.message);
    clear(status, errorBox(answer.message || t('gate.wrongKey')));
    input.select();
  });
  gate(h('p.muted', t('gate.intro')), form);
  input.focus();
}

// ---- the app ------------------------------------------------------------------------------

export async function providers(force = false) {
  if (!providersCache || force) providersCache = (await api('GET', '/providers')).providers || [];
  return providersCache;
}

function currentRoute() {
  const hash = location.hash.replace(/^#\/?/, '');
  const [id, query = ''] = hash.split('?');
  return { id: id || pages[0]?.id, params: new URLSearchParams(query) };
}

export function navigate(id, params = {}) {
  const query = new URLSearchParams(params).toString();
  location.hash = `#/${id}${query ? `?${query}` : ''}`;
}

async function showPage() {
  const { id, params } = currentRoute();
  const page = pages.find((p) => p.id === id) || pages[0];
  for (const link of navigation.querySelectorAll('a.nav')) link.classList.toggle('active', link.dataset.page === page.id);
  navigation.classList.remove('open');
  if (leavePage) leavePage();
  leavePage = null;
  const content = document.getElementById('content');
  clear(content, h('div.progress', spinner(), t('common.loading')));
  document.title = `${t(page.label)} · ${t('app.title')}`;
  try {
    const module = await page.load();
    const view = h('section', { id: `page-${page.id}` });
    clear(content, view);
    const context = { params, navigate, providers, rerender: showPage };
    const leave = await module.render(view, context);
    if (typeof leave === 'function') leavePage = leave;
  } catch (error) {
    if (error instanceof ApiError && error.status === 401) return;
    clear(content, errorBox(error));
  }
}

async function enter() {
  root.className = '';
  clear(root, h('div.progress', spinner(), t('common.loading')));
  try {
    await providers(true);
  } catch (error) {
    if (error.status === 401) return;
    clear(root, errorBox(error));
    return;
  }
  const available = await Promise.all(PAGES.map(async (page) => (!page.requires || await probe(page.requires) ? page : null)));
  pages = available.filter(Boolean);
  navigation = h('nav.side', { id: 'nav', 'aria-label': t('nav.label') },
    h('div.brand', '⇄ Switchyard'),
    pages.map((page) => h('a.nav', { href: `#/${page.id}`, dataset: { page: page.id } }, t(page.label))),
    h('div.foot', languageSelect(), themeButton(),
      h('button', { type: 'button', id: 'logout', onclick: () => { session.clear(); showLogin(); } }, t('gate.signOut'))));
  // On a narrow screen the menu closes on any choice, the current page's too.
  navigation.addEventListener('click', (event) => {
    if (event.target.closest('a.nav')) navigation.classList.remove('open');
  });
  const menu = h('button.menu-toggle', { type: 'button', id: 'menu-toggle', 'aria-label': t('nav.menu'), onclick: () => navigation.classList.toggle('open') }, '☰');
  clear(root,
    h('div.topbar', menu, h('strong', '⇄ Switchyard')),
    navigation,
    h('main.content', { id: 'content' }));
  // The top bar sits above the nav on narrow screens; keep DOM order nav-first for wide ones.
  root.prepend(root.querySelector('.topbar'));
  await showPage();
}

async function start() {
  document.documentElement.lang = getLanguage() === 'zh' ? 'zh-CN' : 'en';
  applyTheme(localStorage.getItem(THEME_SLOT) || 'auto');
  // From another machine, ask first whether remote management is allowed at all: that
  // refusal (403) comes before any key check, so it costs no login attempt. (On this machine
  // the sign-in answer itself tells "management disabled" (404) from a wrong key (401), and a
  // page that loads without a failed request keeps the console clean.)
  if (!isLoopbackHost() && !session.key) {
    const answer = await checkKey('');
    if (answer.state === 'remote') return showRemoteRefused(answer.message);
    if (answer.state === 'disabled') return showDisabled(answer.message);
    if (answer.state === 'banned') return showLogin(answer.message);
  }
  if (session.key) {
    const answer = await checkKey(session.key);
    if (answer.state === 'ok') return enter();
    session.clear();
    if (answer.state === 'remote') return showRemoteRefused(answer.message);
    if (answer.state === 'disabled') return showDisabled(answer.message);
    return showLogin(answer.message);
  }
  showLogin();
}

setUnauthorizedHandler((error) => {
  session.clear();
  showLogin(error.message);
});
window.addEventListener('hashchange', () => {
  if (navigation && document.body.contains(navigation)) showPage();
});
start();
