import type { Server } from 'node:http';
import Provider from 'oidc-provider';
import { freePort } from './app.ts';

export interface UpstreamUser {
  email: string;
  email_verified: boolean;
  name?: string;
  groups?: string[];
  /** The methods its sign-in reports in the ID token's `amr` (RFC 8176), as Okta or Entra do after MFA. */
  amr?: string[];
}

/**
 * A real upstream OpenID Provider (a separate oidc-provider on its own port) standing in for an
 * organization's Okta or Entra ID. Its dev sign-in form accepts any login; the login names the
 * account in `users`.
 */
export async function startUpstreamIdp(opts: {
  clientId: string;
  clientSecret: string;
  redirectUri: string;
  users: Record<string, UpstreamUser>;
  port?: number;
}) {
  const port = opts.port ?? (await freePort());
  const issuer = `http://localhost:${port}`;
  const provider = new Provider(issuer, {
    clients: [
      {
        client_id: opts.clientId,
        client_secret: opts.clientSecret,
        redirect_uris: [opts.redirectUri],
        grant_types: ['authorization_code'],
        response_types: ['code'],
      },
    ],
    claims: { openid: ['sub', 'amr'], email: ['email', 'email_verified'], profile: ['name', 'groups'] },
    features: { devInteractions: { enabled: true } },
    pkce: { required: () => true },
    async findAccount(_ctx, sub) {
      const user = opts.users[sub];
      if (!user) return undefined;
      return { accountId: sub, claims: async () => ({ sub, ...user }) };
    },
  });
  // The dev sign-in form reports no methods; a user's `amr` goes into its login result, where a
  // real IdP's own sign-in would put it.
  const finish = provider.interactionResult.bind(provider);
  provider.interactionResult = (req, res, result, options) => {
    const login = result.login as { accountId: string; amr?: string[] } | undefined;
    const amr = login && opts.users[login.accountId]?.amr;
    return finish(req, res, amr ? { ...result, login: { ...login, amr } } : result, options);
  };
  const server: Server = provider.listen(port);
  await new Promise<void>((r) => server.once('listening', () => r()));
  return { issuer, provider, close: () => new Promise<void>((r) => server.close(() => r())) };
}
