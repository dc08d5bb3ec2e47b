import { randomBytes } from 'node:crypto';
import { parseArgs } from 'node:util';
import Koa, { type Context } from 'koa';
import * as oidc from 'openid-client';

/**
 * A minimal relying party for the quickstart: sign in with code + PKCE, show who signed in and
 * the claims of the ID token and the access token, refresh the tokens, sign out (RP-initiated
 * logout). Sessions live in memory. Not for production use.
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
  const app = sampleApp(config, base);
  app.listen(Number(values.port), () => console.log(`Sample app on ${base} — open it and sign in.`));
}

interface Session {
  /** A sign-in under way: its PKCE verifier and state. */
  pending?: { verifier: string; state: string };
  tokens?: oidc.TokenEndpointResponse & oidc.TokenEndpointResponseHelpers;
  /** When the refresh token expires, as the issuer's introspection says (when it says). */
  refreshExpiresAt?: number;
  refreshedAt?: Date;
  /** The state sent with a sign-out, to recognise the way back from the issuer. */
  signingOut?: string;
}

const COOKIE = 'sample_sid';

export function sampleApp(config: oidc.Configuration, base: string): Koa {
  // Keyed by a random cookie. The cookie is SameSite=Lax, so another site's form posting to
  // /refresh or /logout arrives without it and finds no session.
  const sessions = new Map<string, Session>();
  const sessionOf = (ctx: Context, create = false): Session | undefined => {
    let sid = ctx.cookies.get(COOKIE);
    if (sid && sessions.has(sid)) return sessions.get(sid);
    if (!create) return undefined;
    sid = randomBytes(16).toString('hex');
    const session: Session = {};
    sessions.set(sid, session);
    ctx.cookies.set(COOKIE, sid, { httpOnly: true, sameSite: 'lax' });
    return session;
  };
  const issuerName = config.serverMetadata().issuer;

  const app = new Koa();
  app.use(async (ctx) => {
    try {
      await route(ctx);
    } catch (err) {
      // A refusal in the redirect back (access_denied, a wrong state) is the request's; anything else the issuer's.
      ctx.status = err instanceof oidc.AuthorizationResponseError ? 400 : 502;
      ctx.type = 'html';
      ctx.body = page('Something went wrong', html`<h1>Something went wrong</h1><p role="alert">${describeError(err)}</p><p><a href="/">Back</a></p>`);
    }
  });

  async function route(ctx: Context) {
    const session = sessionOf(ctx);
    if (ctx.method === 'GET' && ctx.path === '/') {
      ctx.type = 'html';
      if (session?.tokens) {
        ctx.body = page('Signed in', signedIn(session, issuerName));
        return;
      }
      const back = session?.signingOut !== undefined && ctx.query.state === session.signingOut;
      if (session) session.signingOut = undefined;
      ctx.body = page(
        'Sample app',
        html`<h1>Sample app</h1>
${back ? html`<p role="status">You are signed out, of this app and of ${issuerName}.</p>` : ''}
<p>Not signed in.</p>
<p><a class="button" href="/login">Sign in with Tessera</a></p>`,
      );
    } else if (ctx.method === 'GET' && ctx.path === '/login') {
      const verifier = oidc.randomPKCECodeVerifier();
      const state = oidc.randomState();
      sessionOf(ctx, true)!.pending = { verifier, state };
      ctx.redirect(
        oidc.buildAuthorizationUrl(config, {
          redirect_uri: `${base}/callback`,
          // No offline_access: OpenID Connect grants it only with prompt=consent, and Tessera
          // issues a refresh token without it, one that ends with the sign-in session.
          scope: 'openid profile email organizations',
          code_challenge: await oidc.calculatePKCECodeChallenge(verifier),
          code_challenge_method: 'S256',
          state,
        }).href,
      );
    } else if (ctx.method === 'GET' && ctx.path === '/callback') {
      if (!session?.pending) {
        ctx.status = 400;
        ctx.type = 'html';
        ctx.body = page('No sign-in in progress', html`<h1>No sign-in in progress</h1><p><a href="/login">Sign in</a></p>`);
        return;
      }
      const { verifier, state } = session.pending;
      session.pending = undefined;
      session.tokens = await oidc.authorizationCodeGrant(config, new URL(ctx.href), { pkceCodeVerifier: verifier, expectedState: state });
      session.refreshExpiresAt = await refreshTokenExpiry(config, session.tokens.refresh_token);
      ctx.redirect('/');
    } else if (ctx.method === 'POST' && ctx.path === '/refresh') {
      if (!session?.tokens?.refresh_token) return ctx.redirect('/');
      // The ID token of the sign-in stays: a refresh's new one may leave out claims it had.
      const previous = session.tokens;
      session.tokens = await oidc.refreshTokenGrant(config, previous.refresh_token!);
      if (!session.tokens.id_token) session.tokens = Object.assign(session.tokens, { id_token: previous.id_token, claims: () => previous.claims() });
      session.refreshExpiresAt = await refreshTokenExpiry(config, session.tokens.refresh_token);
      session.refreshedAt = new Date();
      ctx.redirect('/');
    } else if (ctx.method === 'POST' && ctx.path === '/logout') {
      const idToken = session?.tokens?.id_token;
      if (!session || !idToken) return ctx.redirect('/');
      session.tokens = undefined;
      session.signingOut = oidc.randomState();
      ctx.redirect(oidc.buildEndSessionUrl(config, { id_token_hint: idToken, post_logout_redirect_uri: `${base}/`, state: session.signingOut }).href);
    } else {
      ctx.status = 404;
      ctx.type = 'html';
      ctx.body = page('Not found', html`<h1>Not found</h1><p><a href="/">Home</a></p>`);
    }
  }
  return app;
}

/** The introspection's `exp` of a refresh token; undefined when there is none or the issuer won't say. */
async function refreshTokenExpiry(config: oidc.Configuration, refreshToken: string | undefined): Promise<number | undefined> {
  if (!refreshToken || !config.serverMetadata().introspection_endpoint) return undefined;
  try {
    const answer = await oidc.tokenIntrospection(config, refreshToken, { token_type_hint: 'refresh_token' });
    return answer.active && typeof answer.exp === 'number' ? answer.exp : undefined;
  } catch {
    return undefined;
  }
}

function signedIn(session: Session, issuer: string): Html {
  const tokens = session.tokens!;
  const id: Record<string, unknown> = tokens.claims() ?? {};
  const access = jwtPayload(tokens.access_token);
  const who = [id.name, id.email].filter((v) => typeof v === 'string' && v);
  const orgs = Array.isArray(access.organizations) ? (access.organizations as Array<Record<string, unknown>>) : undefined;
  return html`<header><h1>Signed in</h1>
<form method="post" action="/logout"><button type="submit">Sign out</button></form></header>
<p>You are <strong>${who.length ? who.join(' · ') : String(id.sub)}</strong> (subject <code>${String(id.sub)}</code>) at <code>${issuer}</code>.</p>

<h2>Tokens</h2>
<table>
<tr><th scope="row">Access token</th><td>expires ${when(access.exp)}</td></tr>
<tr><th scope="row">ID token</th><td>expires ${when(id.exp)}</td></tr>
<tr><th scope="row">Refresh token</th><td>${
    tokens.refresh_token
      ? html`${session.refreshExpiresAt ? html`expires ${when(session.refreshExpiresAt)}, or` : 'ends'} when your sign-in session at Tessera ends. It was issued without <code>offline_access</code>, which OpenID Connect grants only when the authorization request says <code>prompt=consent</code>.`
      : html`none came back: Tessera issues one only to a client allowed the <code>refresh_token</code> grant, and this client is not.`
  }</td></tr>
</table>
${
  tokens.refresh_token
    ? html`<form method="post" action="/refresh"><button type="submit">Refresh tokens</button></form>
${session.refreshedAt ? html`<p role="status">Refreshed at ${session.refreshedAt.toISOString()}: a new access token (expires ${when(access.exp)}) and a new refresh token, which replaced the old one.</p>` : ''}`
    : ''
}

<h2>Organizations</h2>
${
  orgs?.length
    ? html`<table><thead><tr><th scope="col">name</th><th scope="col">slug</th><th scope="col">your roles</th><th scope="col">id</th></tr></thead><tbody>
${orgs.map((o) => html`<tr><td>${String(o.name)}</td><td>${String(o.slug)}</td><td>${Array.isArray(o.roles) ? o.roles.join(', ') : ''}</td><td><code>${String(o.id)}</code></td></tr>`)}
</tbody></table>`
    : html`<p>You are in no organization. Create one in the portal: <a href="${issuer}/portal/organizations">${issuer}/portal/organizations</a>, then sign in again.</p>`
}
${access.org_id ? html`<p>This token is scoped to organization <code>${String(access.org_slug ?? access.org_id)}</code>, roles: ${Array.isArray(access.org_roles) ? access.org_roles.join(', ') : ''}.</p>` : ''}

<h2>ID token claims</h2>
${claimsTable(id, 'ID token claims')}
<h2>Access token claims</h2>
${claimsTable(access, 'Access token claims')}`;
}

const TIME_CLAIMS = new Set(['exp', 'iat', 'nbf', 'auth_time', 'updated_at']);

function claimsTable(claims: Record<string, unknown>, label: string): Html {
  return html`<table aria-label="${label}"><thead><tr><th scope="col">claim</th><th scope="col">value</th></tr></thead><tbody>
${Object.entries(claims).map(([name, value]) => html`<tr><th scope="row"><code>${name}</code></th><td>${TIME_CLAIMS.has(name) && typeof value === 'number' ? html`${value} <small>(${new Date(value * 1000).toISOString()})</small>` : typeof value === 'string' ? value : html`<code>${JSON.stringify(value)}</code>`}</td></tr>`)}
</tbody></table>`;
}

function when(exp: unknown): Html {
  if (typeof exp !== 'number') return html`<em>unknown</em>`;
  const minutes = Math.round((exp * 1000 - Date.now()) / 60_000);
  const left = minutes >= 2 * 24 * 60 ? `${Math.round(minutes / (24 * 60))} days` : minutes >= 120 ? `${Math.round(minutes / 60)} hours` : `${minutes} minutes`;
  return html`<time datetime="${new Date(exp * 1000).toISOString()}">${new Date(exp * 1000).toISOString()}</time> (in ${left})`;
}

/** The payload of a JWT, unverified: for display only (an API verifies it against the JWKS). */
function jwtPayload(jwt: string): Record<string, unknown> {
  try {
    return JSON.parse(Buffer.from(jwt.split('.')[1] ?? '', 'base64url').toString('utf8'));
  } catch {
    return {};
  }
}

function describeError(err: unknown): string {
  if (err instanceof oidc.ResponseBodyError || err instanceof oidc.AuthorizationResponseError) {
    return `${err.error}${err.error_description ? `: ${err.error_description}` : ''}`;
  }
  return err instanceof Error ? err.message : String(err);
}

function page(title: string, body: Html): string {
  return html`<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>${title} · Sample app</title><link rel="icon" href="data:,">
<style>
body { font-family: system-ui, sans-serif; max-width: 60rem; margin: 2rem auto; padding: 0 1rem; color: #1b1f24; line-height: 1.45; }
header { display: flex; justify-content: space-between; align-items: center; gap: 1rem; }
table { border-collapse: collapse; width: 100%; margin: .5rem 0 1rem; }
th, td { text-align: left; vertical-align: top; padding: .35rem .6rem; border-bottom: 1px solid #dde1e7; overflow-wrap: anywhere; }
thead th { font-size: .85rem; color: #5b6470; }
th[scope=row] { white-space: nowrap; width: 1%; }
code { font-size: .85rem; }
button, .button { display: inline-block; padding: .5rem 1rem; border: 0; border-radius: 6px; background: #3451b2; color: #fff; font: inherit; font-weight: 600; cursor: pointer; text-decoration: none; }
[role=status] { background: #e8f5ec; padding: .5rem .75rem; border-radius: 6px; }
[role=alert] { background: #fdecec; padding: .5rem .75rem; border-radius: 6px; }
</style></head>
<body>${body}</body></html>`.toString();
}

/** HTML that is already escaped. */
class Html {
  constructor(private readonly text: string) {}
  toString() {
    return this.text;
  }
}

const escapeHtml = (s: string) => s.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);

function fragment(value: unknown): string {
  if (value instanceof Html) return value.toString();
  if (Array.isArray(value)) return value.map(fragment).join('');
  return escapeHtml(String(value ?? ''));
}

/** A template whose every interpolated value is escaped, unless it is itself `html`. */
function html(strings: TemplateStringsArray, ...values: unknown[]): Html {
  return new Html(strings.reduce((out, s, i) => out + s + (i < values.length ? fragment(values[i]) : ''), ''));
}
