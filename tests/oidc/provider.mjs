// The identity provider of the SSO tests: node-oidc-provider with one client and the people of
// USERS_FILE (re-read at every sign-in, so a test can change someone's groups between two).
// Its own development sign-in page takes any login (the person's id in USERS_FILE) and password.
import fs from 'node:fs';

import Provider from 'oidc-provider';

const { PORT, USERS_FILE, CLIENT_ID, CLIENT_SECRET, REDIRECT_URIS } = process.env;
const SCOPES = 'openid email profile groups';

function people() {
  return JSON.parse(fs.readFileSync(USERS_FILE, 'utf8'));
}

const provider = new Provider(`http://127.0.0.1:${PORT}`, {
  clients: [{
    client_id: CLIENT_ID,
    client_secret: CLIENT_SECRET,
    redirect_uris: REDIRECT_URIS.split(','),
    grant_types: ['authorization_code'],
    response_types: ['code'],
  }],
  claims: {
    openid: ['sub'],
    email: ['email', 'email_verified'],
    profile: ['name', 'preferred_username'],
    groups: ['groups'],
  },
  scopes: SCOPES.split(' '),
  // Authorization code with PKCE (S256) for every client.
  pkce: { required: () => true },
  async findAccount(ctx, id) {
    const person = people()[id];
    if (!person) return undefined;
    return { accountId: id, async claims() { return { sub: id, ...person }; } };
  },
  // The test client is first-party: no consent page (the provider's documented recipe).
  async loadExistingGrant(ctx) {
    const grantId = ctx.oidc.result?.consent?.grantId || ctx.oidc.session.grantIdFor(ctx.oidc.client.clientId);
    if (grantId) return ctx.oidc.provider.Grant.find(grantId);
    const grant = new ctx.oidc.provider.Grant({ clientId: ctx.oidc.client.clientId, accountId: ctx.oidc.session.accountId });
    grant.addOIDCScope(SCOPES);
    await grant.save();
    return grant;
  },
  cookies: { keys: ['chatsite-test-provider-only'] },
  features: { devInteractions: { enabled: true } },
});

provider.listen(Number(PORT), '127.0.0.1', () => {
  console.log(`oidc-provider ready on http://127.0.0.1:${PORT}`);
});
