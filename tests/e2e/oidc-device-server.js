// A real, certified OpenID Provider (npm `oidc-provider` by panva) on 127.0.0.1 with the device
// authorization grant (RFC 8628), for the device-login end-to-end tests: one public client (no
// secret, `token_endpoint_auth_method: none`) allowed the device-code and refresh-token grants,
// refresh tokens only when `offline_access` was consented to (the package's own rule), refresh
// tokens rotated on every use (its default for public clients), and the package's development
// code-confirmation, login and consent pages.
//
// Usage: node oidc-device-server.js
// Environment:
//   OIDC_CLIENT_ID        client id (required; the xAI test uses the Grok CLI's public client id)
//   OIDC_SCOPES           space-separated scopes the provider knows (default: openid email offline_access)
//   OIDC_ACCESS_TOKEN_TTL access token lifetime in seconds (default 3600)
//   OIDC_PORT             port to listen on (default 0 = any free port)
// The first line on stdout is the issuer URL (`http://127.0.0.1:<port>`).

import * as http from 'node:http';
import { randomBytes } from 'node:crypto';

import Provider from 'oidc-provider';

const clientId = process.env.OIDC_CLIENT_ID;
const scopes = (process.env.OIDC_SCOPES || 'openid email offline_access').split(' ').filter(Boolean);
const accessTokenTtl = Number.parseInt(process.env.OIDC_ACCESS_TOKEN_TTL || '3600', 10);
const port = Number.parseInt(process.env.OIDC_PORT || '0', 10);

if (!clientId) {
  console.error('oidc-device-server: set OIDC_CLIENT_ID');
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
      application_type: 'native',
      token_endpoint_auth_method: 'none',
      grant_types: ['urn:ietf:params:oauth:grant-type:device_code', 'refresh_token'],
      response_types: [],
      redirect_uris: [],
    },
  ],
  scopes,
  claims: { openid: ['sub'], email: ['email', 'email_verified'], profile: ['name'] },
  // By default (OIDC Core §5.4) the scope claims go to the userinfo endpoint only when an access
  // token is issued too; xAI's id_token carries `email`, so this one does as well.
  conformIdTokenClaims: false,
  ttl: {
    AccessToken: accessTokenTtl,
    DeviceCode: 600,
    IdToken: 3600,
    Interaction: 600,
    Session: 3600,
    Grant: 86400,
    RefreshToken: 86400,
  },
  features: {
    deviceFlow: { enabled: true },
    devInteractions: { enabled: true },
    revocation: { enabled: true },
  },
  cookies: { keys: [randomBytes(32).toString('base64url')] },
  async findAccount(ctx, accountId) {
    return {
      accountId,
      async claims() {
        return { sub: accountId, email: emailFor(accountId), email_verified: true, name: accountId };
      },
    };
  },
});

// Errors the provider answers clients with go to stderr, for the test's failure output.
// `authorization_pending` is the normal answer while the user has not confirmed yet.
for (const event of ['grant.error', 'device_authorization.error', 'userinfo.error', 'server_error']) {
  provider.on(event, (ctx, error) => {
    if (error?.error === 'authorization_pending') return;
    const detail = [error?.error_description || error?.message || String(error), error?.error_detail]
      .filter(Boolean)
      .join(': ');
    console.error(`oidc-device-server: ${event}: ${error?.error || ''} ${detail}`);
  });
}
provider.on('grant.success', (ctx) => {
  console.error(`oidc-device-server: grant.success ${ctx.oidc.params.grant_type}`);
});

server.on('request', provider.callback());

console.log(issuer);

const stop = () => server.close(() => process.exit(0));
process.on('SIGTERM', stop);
process.on('SIGINT', stop);
