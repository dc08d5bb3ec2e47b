import type { Context, Next } from 'koa';
import type Provider from 'oidc-provider';
import { isDatabaseUnavailable } from '../base/database-unavailable.ts';
import type { Logger } from '../base/logger.ts';
import { sha256Hex } from '../crypto/secrets.ts';
import { type OrgTokens, statusRefusal, statusRefusalText } from '../orgs/org-tokens.ts';
import type { TenantMfaMode } from '../tenants/settings.ts';
import { verifiedAccessToken } from './adapter.ts';
import { type ClientService, NO_ORGANIZATIONS_TEXT } from './client.service.ts';
import { HeldSavesNotStored, withHeldSaves } from './held-saves.ts';
import type { AccessTokenVerifier } from './jwt-verifier.ts';
import { orgRequest, requestedOrganization } from './org-request.ts';
import type { SpendRefunds } from './spend-refunds.ts';

const ENDPOINTS = new Map<string, 'token' | 'introspection' | 'revocation' | 'userinfo'>([
  ['/token', 'token'],
  ['/token/introspection', 'introspection'],
  ['/token/revocation', 'revocation'],
  ['/me', 'userinfo'],
]);

/**
 * Runs in front of oidc-provider's token, introspection, revocation and userinfo endpoints
 * (registered with provider.use). It does two things the provider can't be configured to do:
 *
 * 1. Client secrets are stored as SHA-256 hashes. oidc-provider compares the presented secret with
 *    the stored one in constant time, so the presented secret is hashed here, before it does.
 * 2. Access tokens are JWTs, which oidc-provider neither stores nor accepts at these endpoints.
 *    A JWT presented here is verified against the tenant's keys and then handed to the provider
 *    as its jti, which the adapter resolves to the stored payload — only within this request.
 * 3. `organization=<id>` and `team=<id or slug>` at the token endpoint (switching with a refresh
 *    token, or a machine client acting for an organization) are checked here, before the provider
 *    spends the refresh token, and handed to the token-claims hook (org-request.ts).
 */
export function tokenGateway(opts: {
  verifyAccessToken: AccessTokenVerifier;
  tenantId: string;
  orgTokens: OrgTokens;
  clients: ClientService;
  provider: () => Provider;
  refunds: SpendRefunds;
  log: Logger;
  /** The tenant's MFA rule, part of every organization's policy. */
  tenantMfa: TenantMfaMode;
}) {
  function verifiedJti(token: string): { jti: string; payload: Record<string, unknown> } | null {
    // Not a JWT (three dot-separated parts): an opaque refresh token, or garbage; the provider decides.
    if (token.split('.').length !== 3) return null;
    const payload = opts.verifyAccessToken(token);
    // Forged, expired or foreign: found nowhere.
    if (!payload || typeof payload.jti !== 'string') return { jti: '', payload: {} };
    return { jti: payload.jti, payload: payload as Record<string, unknown> };
  }

  /**
   * `next` with its saves held until it returns; if they cannot be stored, the tokens in the body
   * were never valid: it is replaced — by the 503 of an outage (outage.ts) when the database is
   * unreachable. A code or refresh token spent by a request that hands out no tokens is given back.
   */
  function holdingSaves(ctx: Context, next: Next): Next {
    return async () => {
      try {
        await withHeldSaves(next, {
          succeeded: () => ctx.status === 200,
          undelivered: (refunds) => {
            for (const refund of refunds) opts.refunds.add(opts.tenantId, refund);
          },
        });
      } catch (err) {
        if (!(err instanceof HeldSavesNotStored)) throw err;
        // The body's tokens are replaced either way: by outage.ts's 503, or the server_error below.
        if (isDatabaseUnavailable(err.cause)) throw err.cause;
        opts.log.error({ err, requestId: ctx.get('x-request-id') }, 'token request: storing its tokens failed');
        ctx.status = 500;
        ctx.set('Cache-Control', 'no-store');
        ctx.body = { error: 'server_error', error_description: 'the tokens could not be stored; try again' };
      }
    };
  }

  return async function gateway(ctx: Context, next: Next) {
    const route = ENDPOINTS.get(ctx.path);
    if (!route || (ctx.method !== 'POST' && route !== 'userinfo')) return next();

    // A form body, read and parsed by oauth-input.ts (oidc-provider reads it from req.body).
    const body = (ctx.req as unknown as { body?: Record<string, unknown> }).body;
    if (body && typeof body.client_secret === 'string') body.client_secret = sha256Hex(body.client_secret);
    const clientIdFromBasic = hashBasicSecret(ctx);
    // A code exchange or a refresh saves a refresh token and an access token: they wait for the
    // response and go together (held-saves.ts). Holding a lone save (client credentials) gained
    // nothing and measured 9 % fewer tokens per CPU second (bench:ab), so it is not held.
    if (route === 'token' && (body?.grant_type === 'refresh_token' || body?.grant_type === 'authorization_code')) next = holdingSaves(ctx, next);

    // The scope `organization:<slug>` asks for an organization as the parameter does (org-request.ts):
    // a machine client that sends it gets the org-scoped token or a refusal, never a tenant-wide one.
    if (route === 'token' && body?.grant_type === 'client_credentials' && body.organization === undefined) {
      const fromScope = requestedOrganization({ scope: body.scope });
      if (fromScope !== undefined) body.organization = fromScope;
    }
    if (route === 'token' && body && (body.organization !== undefined || body.team !== undefined)) {
      const asked = body.organization;
      const team = body.team;
      delete body.organization;
      delete body.team;
      const refusal = (description: string) => {
        ctx.status = 400;
        ctx.set('Cache-Control', 'no-store');
        ctx.body = { error: 'invalid_target', error_description: description };
      };
      if (asked !== undefined && (typeof asked !== 'string' || !asked)) return refusal('organization must be one organization id or slug');
      if (team !== undefined && (typeof team !== 'string' || !team)) return refusal('team must be one team id or slug');
      if (body.grant_type === 'refresh_token' && typeof body.refresh_token === 'string') {
        const rt = await opts.provider().RefreshToken.find(body.refresh_token);
        if (!rt?.accountId) return next(); // the provider answers invalid_grant
        // As at the authorization endpoint: a client that does not use organizations gets none.
        // (The provider checks afterwards that the refresh token is the authenticated client's.)
        if (rt.clientId && !(await opts.clients.usesOrganizations(opts.tenantId, rt.clientId))) {
          ctx.status = 400;
          ctx.set('Cache-Control', 'no-store');
          ctx.body = { error: 'invalid_request', error_description: NO_ORGANIZATIONS_TEXT };
          return;
        }
        // `team=` alone works in a team of the organization the sign-in already works in.
        const org = (asked as string | undefined) ?? (rt.grantId ? await opts.orgTokens.grantOrg(opts.tenantId, rt.grantId) : undefined);
        if (!org) return refusal('team needs an organization: send organization=<id or slug> too, or refresh a sign-in that works in one');
        const r = await opts.orgTokens.claimsFor(opts.tenantId, rt.accountId, org, {
          facts: { amr: rt.amr ?? [], acr: rt.acr, authTime: rt.authTime },
          tenantMfa: opts.tenantMfa,
          grantId: rt.grantId,
        });
        if ('refused' in r) {
          if (r.refused === 'policy') return refusal(`${r.detail} (missing: ${r.missing}); sign in again as it requires`);
          return refusal(
            r.refused === 'not_found_or_not_member' ? `not a member of organization ${org}, or it does not exist` : statusRefusalText(r.refused, org),
          );
        }
        if (typeof team !== 'string') return orgRequest.run({ orgId: r.claims.org_id }, next);
        const t = await opts.orgTokens.teamClaimsFor(opts.tenantId, rt.accountId, r.claims.org_id, { team });
        if (!('claims' in t) || !t.claims.team_id) return refusal(`not a member of team ${team} of organization ${org}, or it does not exist`);
        return orgRequest.run({ orgId: r.claims.org_id, teamId: t.claims.team_id }, next);
      }
      if (team !== undefined) {
        ctx.status = 400;
        ctx.set('Cache-Control', 'no-store');
        ctx.body = {
          error: 'invalid_request',
          error_description: 'team is accepted with the refresh_token grant; at sign-in, put it on the authorization request',
        };
        return;
      }
      const org = asked as string;
      if (body.grant_type === 'client_credentials') {
        const clientId = typeof body.client_id === 'string' ? body.client_id : clientIdFromBasic;
        const found = clientId ? await opts.orgTokens.findOrg(opts.tenantId, org) : undefined;
        if (!found || !clientId || !(await opts.clients.mayActFor(opts.tenantId, clientId, found.id))) {
          return refusal(`this client is not granted organization ${org}, or it does not exist`);
        }
        const refused = statusRefusal(found.status);
        if (refused) return refusal(statusRefusalText(refused, org));
        return orgRequest.run({ orgId: found.id, clientId }, next);
      }
      ctx.status = 400;
      ctx.body = {
        error: 'invalid_request',
        error_description: 'organization is accepted with the refresh_token and client_credentials grants; at sign-in, put it on the authorization request',
      };
      return;
    }

    let verified: { jti: string; payload: Record<string, unknown> } | null = null;
    if ((route === 'introspection' || route === 'revocation') && body && typeof body.token === 'string') {
      verified = verifiedJti(body.token);
      if (verified) body.token = verified.jti || 'invalid';
    } else if (route === 'userinfo') {
      const header = ctx.get('authorization');
      if (/^bearer /i.test(header)) {
        verified = verifiedJti(header.slice(7).trim());
        if (verified) ctx.req.headers.authorization = `Bearer ${verified.jti || 'invalid'}`;
      } else if (body && typeof body.access_token === 'string') {
        verified = verifiedJti(body.access_token);
        if (verified) body.access_token = verified.jti || 'invalid';
      }
    }

    if (!verified?.jti) return next();
    const { jti, payload } = verified;
    await verifiedAccessToken.run({ jti, payload }, next);
    // Introspection answers from the stored payload; put back what only the JWT carries.
    const answer = ctx.body as Record<string, unknown> | undefined;
    if (route === 'introspection' && answer?.active === true) {
      answer.jti = jti;
      answer.aud = payload.aud;
    }
  };
}

/** Hashes the secret of a Basic Authorization header in place; returns the (decoded) client id. */
function hashBasicSecret(ctx: Context): string | undefined {
  const header = ctx.get('authorization');
  if (!/^basic /i.test(header)) return undefined;
  const decoded = Buffer.from(header.slice(6).trim(), 'base64').toString('utf8');
  const colon = decoded.indexOf(':');
  if (colon < 0) return undefined; // malformed: let the provider reject it
  let secret: string;
  let clientId: string;
  try {
    secret = decodeURIComponent(decoded.slice(colon + 1).replace(/\+/g, '%20'));
    clientId = decodeURIComponent(decoded.slice(0, colon).replace(/\+/g, '%20'));
  } catch {
    return undefined;
  }
  const rewritten = `${decoded.slice(0, colon)}:${sha256Hex(secret)}`;
  ctx.req.headers.authorization = `Basic ${Buffer.from(rewritten, 'utf8').toString('base64')}`;
  return clientId;
}
