import { LRUCache } from 'lru-cache';
import * as client from 'openid-client';
import type { Outbound } from '../base/outbound-fetch.ts';
import { randomSecret } from '../crypto/secrets.ts';
import type { Database } from '../db/database.ts';
import { parseEmail } from '../users/email-address.ts';
import { type ConnectionService, DEFAULT_ATTRIBUTES, LOOPBACK_HOSTS } from './connection.service.ts';
import type { ConnectionRow } from './sso.table.ts';
import { checkedFor, rememberRequest, type SsoBinding, takeRequest } from './sso-request.ts';
import { SsoRefused, type UpstreamProfile, upstreamReportedMfa } from './upstream.ts';

/**
 * Tessera as the relying party of an organization's own OpenID Provider: authorization code with
 * PKCE, state and nonce bound to a single-use request row, and the email trusted only when the
 * upstream says it is verified. openid-client checks the ID token (signature, issuer, audience,
 * expiry, nonce).
 */
export class OidcSso {
  private readonly configs = new LRUCache<string, Promise<client.Configuration>>({ max: 500, ttl: 60 * 60 * 1000 });

  constructor(
    private readonly db: Database,
    private readonly connections: ConnectionService,
    private readonly allowLoopback: boolean,
    private readonly outbound: Outbound,
  ) {}

  private config(conn: ConnectionRow): Promise<client.Configuration> {
    const cfg = conn.config as { issuer_url: string; client_id: string };
    const key = `${conn.tenant_id}:${conn.id}:${conn.updated_at.getTime()}`;
    let found = this.configs.get(key);
    if (!found) {
      const issuer = new URL(cfg.issuer_url);
      // Plain http only for an IdP on this machine, and only while Tessera runs on one too.
      const insecure = issuer.protocol === 'http:' && LOOPBACK_HOSTS.has(issuer.hostname) && this.allowLoopback;
      // Discovery, and every later call of this configuration (token, userinfo, JWKS), through the outbound checks.
      found = client
        .discovery(issuer, cfg.client_id, this.connections.clientSecret(conn), undefined, {
          [client.customFetch]: this.outbound.fetch,
          ...(insecure ? { execute: [client.allowInsecureRequests] } : {}),
        })
        // openid-client says "something went wrong" and keeps the reason (a refused address …) in the cause.
        .catch((err: unknown) => Promise.reject(new Error(`discovery failed: ${describe(err)}`, { cause: err })));
      this.configs.set(key, found);
      found.catch(() => this.configs.delete(key));
    }
    return found;
  }

  /** "Test connection": the issuer's discovery document loads and names what a sign-in needs. */
  async check(conn: ConnectionRow): Promise<string> {
    const meta = (await this.config(conn)).serverMetadata();
    if (!meta.authorization_endpoint || !meta.token_endpoint) throw new Error('the discovery document has no authorization or token endpoint');
    return `Discovery loaded from ${meta.issuer}: sign-ins go to ${meta.authorization_endpoint}.`;
  }

  /** Where to send the browser: the upstream authorization URL for this sign-in. */
  async start(conn: ConnectionRow, tenantSlug: string, binding: SsoBinding, loginHint?: string): Promise<string> {
    const config = await this.config(conn);
    const state = randomSecret(24);
    const nonce = randomSecret(24);
    const verifier = client.randomPKCECodeVerifier();
    await rememberRequest(this.db, conn, state, binding, { nonce, codeVerifier: verifier });
    const scopes = (conn.config as { scopes?: string[] }).scopes ?? ['openid', 'email', 'profile'];
    return client.buildAuthorizationUrl(config, {
      redirect_uri: this.connections.redirectUri(tenantSlug, conn.id),
      scope: scopes.join(' '),
      state,
      nonce,
      code_challenge: await client.calculatePKCECodeChallenge(verifier),
      code_challenge_method: 'S256',
      ...(loginHint ? { login_hint: loginHint } : {}),
    }).href;
  }

  /**
   * Completes the upstream sign-in at our callback. The state names a request we issued for this
   * connection, used once; everything else is openid-client's checks plus email_verified.
   */
  async finish(conn: ConnectionRow, tenantSlug: string, callbackUrl: URL): Promise<{ profile: UpstreamProfile; binding: SsoBinding }> {
    const state = callbackUrl.searchParams.get('state') ?? '';
    const request = await takeRequest(this.db, conn, state, 'the state');
    return checkedFor(request.binding, async () => {
      const config = await this.config(conn);
      // The registered redirect URI (what the upstream knows), with the response parameters.
      const url = new URL(this.connections.redirectUri(tenantSlug, conn.id));
      url.search = callbackUrl.search;
      let tokens: client.TokenEndpointResponse & client.TokenEndpointResponseHelpers;
      try {
        tokens = await client.authorizationCodeGrant(config, url, {
          pkceCodeVerifier: request.code_verifier!,
          expectedState: state,
          expectedNonce: request.nonce!,
          idTokenExpected: true,
        });
      } catch (err) {
        throw new SsoRefused(`upstream sign-in failed: ${describe(err)}`);
      }
      const claims = tokens.claims() as Record<string, unknown>;
      let all: Record<string, unknown> = { ...claims };
      if (tokens.access_token && config.serverMetadata().userinfo_endpoint) {
        try {
          all = { ...(await client.fetchUserInfo(config, tokens.access_token, String(claims.sub))), ...claims };
        } catch {
          // userinfo is optional; the ID token's claims stand
        }
      }
      const map = { ...DEFAULT_ATTRIBUTES, ...(conn.attribute_mapping as object) } as typeof DEFAULT_ATTRIBUTES;
      const claimed = typeof all[map.email] === 'string' ? (all[map.email] as string).trim() : '';
      if (!claimed) throw new SsoRefused('the identity provider sent no email address');
      // The same rule as every other way in: an address it refuses makes no account here either.
      const parsed = parseEmail(claimed);
      if (!parsed.ok) throw new SsoRefused(`the identity provider sent ${JSON.stringify(claimed)}, which is not a usable email address: it ${parsed.problem}`);
      const email = parsed.email.address;
      if (all.email_verified !== true) throw new SsoRefused(`the identity provider does not vouch for ${email} (email_verified is not true)`);
      const str = (k: string) => (typeof all[k] === 'string' ? (all[k] as string).slice(0, 200) : undefined);
      const groups = Array.isArray(all[map.groups]) ? (all[map.groups] as unknown[]).filter((g): g is string => typeof g === 'string') : undefined;
      return {
        binding: request.binding,
        profile: {
          subject: String(claims.sub),
          email,
          name: str(map.name),
          given_name: str(map.given_name),
          family_name: str(map.family_name),
          groups,
          // From the ID token only: userinfo describes the person, not this sign-in.
          mfa: upstreamReportedMfa(claims.amr),
        },
      };
    });
  }
}

/** An openid-client error with its causes ("unexpected JWT claim value" ← 'unexpected ID Token "nonce" claim value'). */
function describe(err: unknown): string {
  const parts: string[] = [];
  let e = err as { error?: string; error_description?: string; message?: string; code?: string; cause?: unknown } | undefined;
  for (let depth = 0; e && depth < 4; depth++) {
    const text = [e.error ?? e.code, e.error_description ?? e.message].filter(Boolean).join(' ');
    if (text) parts.push(text);
    e = typeof e.cause === 'object' && e.cause !== null && 'message' in (e.cause as object) ? (e.cause as typeof e) : undefined;
  }
  return parts.join(' ← ');
}
