// OAuth Login: one card per login method of every provider the server offers (`/providers`:
// built-in and config-declared OAuth providers), grouped by provider.

import { h } from '../dom.js';
import { t } from '../i18n.js';
import { loginCard, remoteBrowser, setRemoteBrowser, stopFlows } from '../login-flow.js';

export async function render(root, { providers, params }) {
  const list = await providers();
  const remote = h('input', { type: 'checkbox', id: 'remote-browser', checked: remoteBrowser() });
  remote.addEventListener('change', () => setRemoteBrowser(remote.checked));
  const focus = params.get('login');
  const sections = list.filter((p) => p.logins.length).map((provider) => h('section.provider-logins', { dataset: { provider: provider.id } },
    h('h2', provider.label, provider.custom ? h('span.badge.info', ' ', t('oauth.custom')) : null,
      provider.serves ? null : h('span.badge.warn', t('providers.notServed'))),
    h('div.cards', provider.logins.map((method) => loginCard(method, provider, { heading: true })))));
  root.append(
    h('h1', t('oauth.title')),
    h('p.muted', t('oauth.intro')),
    h('label.check.card', remote, h('span', t('oauth.remoteBrowser'))),
    h('p.small.muted', t('oauth.remoteHint')),
    ...sections);
  if (focus) {
    const card = root.querySelector(`.login-card[data-login="${CSS.escape(focus)}"]`);
    card?.scrollIntoView({ block: 'center' });
  }
  return stopFlows;
}
