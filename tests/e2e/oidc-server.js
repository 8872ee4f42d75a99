// A real, certified OpenID Provider (npm `oidc-provider` by panva) on 127.0.0.1 for the
// end-to-end tests: one confidential client, PKCE (S256) required, refresh tokens for
// `offline_access`, and the package's own development login and consent pages.
//
// Usage: node oidc-server.js
// Environment:
//   OIDC_CLIENT_ID        client id (default switchyard-e2e)
//   OIDC_CLIENT_SECRET    client secret (default switchyard-e2e-secret)
//   OIDC_REDIRECT_URIS    comma-separated redirect URIs registered for the client (required)
//   OIDC_ACCESS_TOKEN_TTL access token lifetime in seconds (default 120)
//   OIDC_APPLICATION_TYPE `web` (default: redirect URIs match exactly) or `native` (RFC 8252 §7.3:
//                         a loopback redirect URI matches whatever port the request names)
//   OIDC_PORT             port to listen on (default 0 = any free port)
//   OIDC_REFRESH_RULE     `client` (default): a refresh token for every code exchange of a client
//                         allowed the refresh_token grant; `offline-access`: oidc-provider's own
//                         rule, only when the `offline_access` scope was granted (see below)
// The first line on stdout is the issuer URL (`http://127.0.0.1:<port>`); the listening port is
// chosen before the provider is built, so the issuer always names the real port.

import * as http from 'node:http';
import { randomBytes } from 'node:crypto';

import Provider from 'oidc-provider';

const clientId = process.env.OIDC_CLIENT_ID || 'switchyard-e2e';
const clientSecret = process.env.OIDC_CLIENT_SECRET || 'switchyard-e2e-secret';
const redirectUris = (process.env.OIDC_REDIRECT_URIS || '')
  .split(',')
  .map((uri) => uri.trim())
  .filter(Boolean);
const accessTokenTtl = Number.parseInt(process.env.OIDC_ACCESS_TOKEN_TTL || '120', 10);
const port = Number.parseInt(process.env.OIDC_PORT || '0', 10);
const refreshRule = process.env.OIDC_REFRESH_RULE || 'client';
const applicationType = process.env.OIDC_APPLICATION_TYPE || 'web';

if (!['client', 'offline-access'].includes(refreshRule)) {
  console.error(`oidc-server: OIDC_REFRESH_RULE must be client or offline-access, not ${refreshRule}`);
  process.exit(2);
}
if (!redirectUris.length) {
  console.error('oidc-server: set OIDC_REDIRECT_URIS to the redirect URI(s) of the client');
  process.exit(2);
}

// The dev login form accepts any login and any password; the login becomes the account id.
// A login without `@` gets an address under example.test, so `user` is `user@example.test`.
function emailFor(accountId) {
  return accountId.includes('@') ? accountId : `${accountId}@example.test`;
}

const server = http.createServer();
await new Promise((resolve, reject) => {
  server.once('error', reject);
  server.listen(port, '127.0.0.1', resolve);
});
const issuer = `http://127.0.0.1:${server.address().port}`;

const provider = new Provider(issuer, {
  clients: [
    {
      client_id: clientId,
      application_type: applicationType,
      client_secret: clientSecret,
      redirect_uris: redirectUris,
      response_types: ['code'],
      grant_types: ['authorization_code', 'refresh_token'],
      token_endpoint_auth_method: 'client_secret_basic',
    },
  ],
  // Only S256 exists in oidc-provider 9; require it for this confidential client too (by default
  // only public clients must use PKCE).
  pkce: { required: () => true },
  scopes: ['openid', 'email', 'offline_access'],
  claims: { openid: ['sub'], email: ['email', 'email_verified'] },
  // oidc-provider follows OpenID Connect Core §11: it drops `offline_access` from an
  // authorization request whose `prompt` lacks `consent` (lib/actions/authorization/scopes.js),
  // and by default issues refresh tokens only when `offline_access` was granted. Switchyard's
  // authorization URL carries no `prompt`, so under that rule it never gets a refresh token.
  // `client` (the default here) issues one to any client registered for the refresh_token grant
  // instead; `offline-access` keeps the provider's own rule, for the tests that show the gap.
  issueRefreshToken: async (ctx, client, code) => client.grantTypeAllowed('refresh_token')
    && (refreshRule === 'client' || code.scopes.has('offline_access')),
  // Every refresh returns a new refresh token and consumes the old one, so a client that fails
  // to store the rotated token is caught by the next refresh.
  rotateRefreshToken: true,
  ttl: {
    AccessToken: accessTokenTtl,
    AuthorizationCode: 120,
    IdToken: 3600,
    Interaction: 600,
    Session: 3600,
    Grant: 86400,
    RefreshToken: 86400,
  },
  features: {
    devInteractions: { enabled: true },
    revocation: { enabled: true },
  },
  cookies: { keys: [randomBytes(32).toString('base64url')] },
  async findAccount(ctx, accountId) {
    return {
      accountId,
      async claims() {
        return { sub: accountId, email: emailFor(accountId), email_verified: true };
      },
    };
  },
});

// Errors the provider answers clients with go to stderr, for the test's failure output.
for (const event of ['grant.error', 'authorization.error', 'userinfo.error', 'server_error']) {
  provider.on(event, (ctx, error) => {
    const detail = [error?.error_description || error?.message || String(error), error?.error_detail]
      .filter(Boolean)
      .join(': ');
    console.error(`oidc-server: ${event}: ${error?.error || ''} ${detail}`);
  });
}
provider.on('grant.success', (ctx) => {
  console.error(`oidc-server: grant.success ${ctx.oidc.params.grant_type}`);
});

server.on('request', provider.callback());

console.log(issuer);

const stop = () => server.close(() => process.exit(0));
process.on('SIGTERM', stop);
process.on('SIGINT', stop);
