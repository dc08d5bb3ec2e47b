import { createHash, randomBytes } from 'node:crypto';
import { basic, CookieJar, expectStatus, form, type Reply, send } from './http.ts';

export interface WebClient {
  client_id: string;
  client_secret: string;
  redirect_uri: string;
}

export interface Tokens {
  access_token: string;
  refresh_token?: string;
  id_token?: string;
}

const b64url = (b: Buffer) => b.toString('base64url');

function formActions(html: string): string[] {
  return [...html.matchAll(/<form method="post" action="([^"]+)"/g)].map((m) => m[1]!.replace(/&amp;/g, '&'));
}

/** Follows redirects on `origin` until one leaves it (the app's redirect URI) or a page answers. */
async function follow(jar: CookieJar, origin: string, r: Reply, from: string): Promise<{ reply: Reply; url: string }> {
  let url = from;
  for (let hop = 0; hop < 10 && r.status >= 300 && r.status < 400; hop++) {
    url = new URL(r.headers.location!, url).href;
    if (!url.startsWith(origin)) return { reply: r, url };
    r = jar.take(await send(url, { headers: jar.header() }));
  }
  return { reply: r, url };
}

/** The authorization request with PKCE, followed to the sign-in page: the browser, its email form, and what the code exchange needs. */
async function authorize(origin: string, issuer: string, client: WebClient, extra: Record<string, string> = {}) {
  const jar = new CookieJar();
  const verifier = b64url(randomBytes(32));
  const state = b64url(randomBytes(16));
  const auth = `${issuer}/auth?${form({
    client_id: client.client_id,
    response_type: 'code',
    redirect_uri: client.redirect_uri,
    scope: 'openid email profile',
    state,
    code_challenge: b64url(createHash('sha256').update(verifier).digest()),
    code_challenge_method: 'S256',
    ...extra,
  })}`;
  const at = await follow(jar, origin, jar.take(await send(auth, { headers: jar.header() })), auth);
  expectStatus(at.reply, 200);
  const identify = formActions(at.reply.body).find((a) => a.endsWith('/identify'));
  if (!identify) throw new Error('no email form on the sign-in page');
  return { jar, verifier, state, identifyUrl: new URL(identify, origin).href };
}

/**
 * One browser sign-in, as keycloak-benchmark's AuthorizationCode does it: the authorization
 * request, the sign-in page, email, password, the redirects back with a code, and the code
 * exchange with PKCE. Returns the tokens and the browser's cookies (for a logout).
 */
export async function signIn(
  origin: string,
  issuer: string,
  client: WebClient,
  user: { email: string; password: string; totpCode?: () => string },
  extra: Record<string, string> = {},
) {
  const { jar, verifier, state, identifyUrl: idUrl } = await authorize(origin, issuer, client, extra);
  const pw = jar.take(expectStatus(await send(idUrl, { body: form({ email: user.email }), headers: jar.header() }), 200));
  const login = formActions(pw.body).find((a) => a.endsWith('/login'));
  if (!login) throw new Error('no password form');
  const loginUrl = new URL(login, origin).href;
  let at = await follow(
    jar,
    origin,
    jar.take(await send(loginUrl, { body: form({ email: user.email, password: user.password }), headers: jar.header() })),
    loginUrl,
  );
  // A person with an authenticator app lands on the code step: the code, then on as before.
  if (user.totpCode && at.reply.status === 200) {
    const step = formActions(at.reply.body).find((a) => a.endsWith('/mfa'));
    if (!step) throw new Error(`no code step after the password: HTTP ${at.reply.status} ${at.reply.body.slice(0, 200)}`);
    const stepUrl = new URL(step, origin).href;
    at = await follow(jar, origin, jar.take(await send(stepUrl, { body: form({ method: 'totp', code: user.totpCode() }), headers: jar.header() })), stepUrl);
  }
  if (!at.url.startsWith(client.redirect_uri)) throw new Error(`sign-in did not return to the app: HTTP ${at.reply.status} ${at.reply.body.slice(0, 200)}`);
  const back = new URL(at.url);
  if (back.searchParams.get('state') !== state) throw new Error('state mismatch');
  const code = back.searchParams.get('code');
  if (!code) throw new Error(`no code: ${at.url}`);
  const token = expectStatus(
    await send(`${issuer}/token`, {
      body: form({ grant_type: 'authorization_code', code, redirect_uri: client.redirect_uri, code_verifier: verifier }),
      headers: { authorization: basic(client.client_id, client.client_secret) },
    }),
    200,
  );
  return { tokens: JSON.parse(token.body) as Tokens, jar };
}

/** RP-initiated logout: the confirmation page, then its form. */
export async function logout(origin: string, issuer: string, client: WebClient, idToken: string, jar: CookieJar, postLogout: string) {
  const page = jar.take(
    expectStatus(
      await send(`${issuer}/session/end?${form({ id_token_hint: idToken, post_logout_redirect_uri: postLogout, client_id: client.client_id })}`, {
        headers: jar.header(),
      }),
      200,
    ),
  );
  const action = /<form[^>]*action="([^"]+)"/.exec(page.body)?.[1];
  const xsrf = /name="xsrf" value="([^"]+)"/.exec(page.body)?.[1];
  if (!action || !xsrf) throw new Error('no logout form');
  const done = await send(new URL(action.replace(/&amp;/g, '&'), origin).href, { body: form({ xsrf, logout: 'yes' }), headers: jar.header() });
  expectStatus(done, 303, 302);
}

export async function refresh(issuer: string, client: WebClient, refreshToken: string, extra: Record<string, string> = {}): Promise<Tokens> {
  const r = expectStatus(
    await send(`${issuer}/token`, {
      body: form({ grant_type: 'refresh_token', refresh_token: refreshToken, ...extra }),
      headers: { authorization: basic(client.client_id, client.client_secret) },
    }),
    200,
  );
  return JSON.parse(r.body) as Tokens;
}

/** Signs in to the portal (the built-in `tessera:portal` client): returns the browser's cookies. */
export async function portalSignIn(origin: string, slug: string, user: { email: string; password: string }): Promise<CookieJar> {
  const jar = new CookieJar();
  const start = `${origin}/t/${slug}/portal/login`;
  let at = await follow(jar, origin, jar.take(await send(start, { headers: jar.header() })), start);
  expectStatus(at.reply, 200);
  const identify = formActions(at.reply.body).find((a) => a.endsWith('/identify'));
  if (!identify) throw new Error('no email form on the sign-in page');
  const pw = jar.take(expectStatus(await send(new URL(identify, origin).href, { body: form({ email: user.email }), headers: jar.header() }), 200));
  const login = new URL(formActions(pw.body).find((a) => a.endsWith('/login'))!, origin).href;
  at = await follow(jar, origin, jar.take(await send(login, { body: form({ email: user.email, password: user.password }), headers: jar.header() })), login);
  if (at.reply.status !== 200 || !at.url.includes('/portal/organizations')) throw new Error(`portal sign-in ended at ${at.url} (HTTP ${at.reply.status})`);
  return jar;
}

/**
 * The start of a sign-in up to the email step: returns where Tessera sends the browser next
 * (an organization's IdP for a verified SSO domain; otherwise the password page's own URL).
 */
export async function startSignIn(origin: string, issuer: string, client: WebClient, email: string): Promise<string> {
  const { jar, identifyUrl } = await authorize(origin, issuer, client);
  const r = jar.take(await send(identifyUrl, { body: form({ email }), headers: jar.header() }));
  return r.status >= 300 && r.status < 400 ? new URL(r.headers.location!, identifyUrl).href : identifyUrl;
}
