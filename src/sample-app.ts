import { randomBytes } from 'node:crypto';
import { parseArgs } from 'node:util';
import Koa from 'koa';
import * as oidc from 'openid-client';

const escapeHtml = (s: string) => s.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);

/**
 * A minimal relying party for the quickstart: sign in with code + PKCE, then show the ID token
 * claims and the access token's claims. Not for production use.
 */
export async function runSampleApp(args: string[]) {
  const { values } = parseArgs({
    args,
    options: {
      issuer: { type: 'string' },
      'client-id': { type: 'string' },
      'client-secret': { type: 'string' },
      port: { type: 'string', default: '3001' },
    },
  });
  if (!values.issuer || !values['client-id']) throw new Error('sample-app needs --issuer and --client-id (and --client-secret for a confidential client)');
  const issuer = new URL(values.issuer);
  const config = await oidc.discovery(
    issuer,
    values['client-id'],
    values['client-secret'],
    undefined,
    issuer.protocol === 'http:' ? { execute: [oidc.allowInsecureRequests] } : undefined,
  );
  const base = `http://localhost:${values.port}`;
  const pending = new Map<string, { verifier: string; state: string }>();
  const app = new Koa();

  app.use(async (ctx) => {
    if (ctx.path === '/') {
      ctx.body = `<h1>Sample app</h1><p><a href="/login">Sign in with Tessera</a></p>`;
      ctx.type = 'html';
    } else if (ctx.path === '/login') {
      const verifier = oidc.randomPKCECodeVerifier();
      const state = oidc.randomState();
      const sid = randomBytes(16).toString('hex');
      pending.set(sid, { verifier, state });
      ctx.cookies.set('sample_sid', sid, { httpOnly: true, sameSite: 'lax' });
      ctx.redirect(
        oidc.buildAuthorizationUrl(config, {
          redirect_uri: `${base}/callback`,
          scope: 'openid profile email offline_access organizations',
          code_challenge: await oidc.calculatePKCECodeChallenge(verifier),
          code_challenge_method: 'S256',
          state,
        }).href,
      );
    } else if (ctx.path === '/callback') {
      const flow = pending.get(ctx.cookies.get('sample_sid') ?? '');
      if (!flow) {
        ctx.status = 400;
        ctx.body = 'No sign-in in progress; start at /login';
        return;
      }
      const tokens = await oidc.authorizationCodeGrant(config, new URL(ctx.href), { pkceCodeVerifier: flow.verifier, expectedState: flow.state });
      const [, payload] = tokens.access_token.split('.');
      const accessClaims = JSON.parse(Buffer.from(payload ?? '', 'base64url').toString('utf8'));
      ctx.type = 'html';
      ctx.body = `<h1>Signed in</h1>
<h2>ID token claims</h2><pre>${escapeHtml(JSON.stringify(tokens.claims(), null, 2))}</pre>
<h2>Access token claims</h2><pre>${escapeHtml(JSON.stringify(accessClaims, null, 2))}</pre>`;
    } else {
      ctx.status = 404;
    }
  });
  app.listen(Number(values.port), () => console.log(`Sample app on ${base} — open it and sign in.`));
}
