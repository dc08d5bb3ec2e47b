import { createRemoteJWKSet } from 'jose';
import * as oidc from 'openid-client';
import type { TestApp, TestTenant } from './app.ts';
import { Browser, enterCredentials, formAction } from './browser.ts';

export interface RegisteredClient {
  client_id: string;
  client_secret?: string;
  redirect_uris: string[];
}

export async function discover(tenant: TestTenant, client: RegisteredClient, auth?: oidc.ClientAuth) {
  return oidc.discovery(new URL(tenant.issuer), client.client_id, client.client_secret, auth, { execute: [oidc.allowInsecureRequests] });
}

export interface SignInResult {
  tokens: oidc.TokenEndpointResponse & oidc.TokenEndpointResponseHelpers;
  config: oidc.Configuration;
  browser: Browser;
}

/**
 * The relying party's whole code + PKCE sign-in: openid-client builds the request and redeems
 * the code; the Browser plays the user on the sign-in page.
 */
export async function signIn(
  t: TestApp,
  tenant: TestTenant,
  client: RegisteredClient,
  opts: {
    email?: string;
    password?: string;
    scope?: string;
    config?: oidc.Configuration;
    browser?: Browser;
    /** Extra authorization request parameters (organization, prompt, …). */
    params?: Record<string, string>;
    /** The organization to pick if the organization picker shows. */
    pick?: string;
  } = {},
): Promise<SignInResult> {
  const browser = opts.browser ?? new Browser(t.url);
  const {
    config,
    verifier,
    state,
    url: authUrl,
  } = await startAuthorization(
    tenant,
    client,
    {
      scope: opts.scope ?? 'openid profile email offline_access',
      ...opts.params,
    },
    opts.config,
  );
  let hop = await browser.follow(authUrl);
  if (!hop.url.startsWith(client.redirect_uris[0]!)) {
    const html = await hop.res.text();
    if (/name="email"/.test(html) && /Sign in to/.test(html)) {
      hop = await enterCredentials(browser, html, hop.url, opts.email ?? tenant.adminEmail, opts.password ?? tenant.adminPassword);
    } else {
      hop = { res: new Response(html, { status: hop.res.status }), url: hop.url };
    }
  }
  if (!hop.url.startsWith(client.redirect_uris[0]!) && opts.pick) {
    const html = await hop.res.text();
    if (!/Choose an organization/.test(html)) throw new Error(`expected the organization picker, got:\n${html.slice(0, 400)}`);
    hop = await browser.submit(formAction(html), { org_id: opts.pick });
  }
  if (!hop.url.startsWith(client.redirect_uris[0]!)) {
    throw new Error(`sign-in did not reach the redirect URI: ${hop.res.status} ${hop.url}\n${(await hop.res.text()).slice(0, 400)}`);
  }
  const tokens = await oidc.authorizationCodeGrant(config, new URL(hop.url), { pkceCodeVerifier: verifier, expectedState: state });
  return { tokens, config, browser };
}

/**
 * An authorization request the test will redeem: the URL, and the PKCE verifier and state to
 * redeem its code with. `params` may override scope and add any parameter.
 */
export async function startAuthorization(tenant: TestTenant, client: RegisteredClient, params: Record<string, string> = {}, config?: oidc.Configuration) {
  const cfg = config ?? (await discover(tenant, client));
  const verifier = oidc.randomPKCECodeVerifier();
  const state = params.state ?? oidc.randomState();
  const url = oidc.buildAuthorizationUrl(cfg, {
    redirect_uri: client.redirect_uris[0]!,
    scope: 'openid profile email',
    code_challenge: await oidc.calculatePKCECodeChallenge(verifier),
    code_challenge_method: 'S256',
    ...params,
    state,
  }).href;
  return { config: cfg, verifier, state, url };
}

/** An authorization URL with a throwaway PKCE challenge, for tests that never redeem the code. */
export async function authorizationUrl(config: oidc.Configuration, client: RegisteredClient, extra: Record<string, string> = {}) {
  return oidc.buildAuthorizationUrl(config, {
    redirect_uri: client.redirect_uris[0]!,
    scope: 'openid',
    code_challenge: await oidc.calculatePKCECodeChallenge(oidc.randomPKCECodeVerifier()),
    code_challenge_method: 'S256',
    ...extra,
  }).href;
}

/**
 * A tenant's JWKS as a resource server reads it. The fetch may wait up to 30 s: jose's 5 s default
 * is tight for a test machine whose two cores also run PostgreSQL and other test files.
 */
export function remoteJwks(url: string | URL) {
  return createRemoteJWKSet(new URL(url), { timeoutDuration: 30_000 });
}

/** `Authorization: Basic` for a client at the token endpoint (RFC 6749 §2.3.1: each part form-encoded). */
export function clientBasic(client: { client_id: string; client_secret?: string }): string {
  return `Basic ${Buffer.from(`${encodeURIComponent(client.client_id)}:${encodeURIComponent(client.client_secret ?? '')}`).toString('base64')}`;
}
