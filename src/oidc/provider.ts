import type { JSONWebKeySet } from 'jose';
import Provider, { type Configuration, errors, interactionPolicy, type KoaContextWithOIDC } from 'oidc-provider';
import { ACR_VALUES_SUPPORTED } from '../auth-policy/policy.ts';
import type { Logger } from '../base/logger.ts';
import { unstorableTextProblem } from '../base/storable-text.ts';
import { treatRequestsAsHttps } from '../base/transport-security.ts';
import type { Render } from '../base/views.ts';
import { deriveKey } from '../crypto/secrets.ts';
import type { Database } from '../db/database.ts';
import type { OrgTokens } from '../orgs/org-tokens.ts';
import { issuerOf } from '../tenants/issuer.ts';
import { effectiveSettings, type StoredSettings } from '../tenants/settings.ts';
import type { PrivateSigningKey, SigningAlg } from '../tenants/signing-keys.ts';
import type { UserService } from '../users/user.service.ts';
import { adapterFor } from './adapter.ts';
import {
  type ClaimsFormat,
  distributedMembershipClaims,
  MEMBERSHIP_CLAIMS,
  membershipClaims,
  ORG_SCOPED_EXTRA_CLAIMS,
  orgScopedExtras,
} from './claims-format.ts';
import { type ClientService, NO_ORGANIZATIONS_TEXT, PORTAL_CLIENT } from './client.service.ts';
import { missingConsent, recordConsent } from './consent.ts';
import type { AccessTokenVerifier } from './jwt-verifier.ts';
import { oauthInput } from './oauth-input.ts';
import { carriedSignIn, orgRequest, requestedOrganization, requestedTeam } from './org-request.ts';
import { OrgSignOut } from './org-sign-out.ts';
import { databaseOutage } from './outage.ts';
import { basePromptsWithRequestedAcr } from './requested-acr.ts';
import type { SpendRefunds } from './spend-refunds.ts';
import { SyncSigningKey } from './sync-signing-key.ts';
import { tokenGateway } from './token-gateway.ts';

/** Every scope a tenant's clients may be allowed. `admin` reaches the Admin API (tenant admins and machine clients only). */
export const TENANT_SCOPES = ['openid', 'offline_access', 'profile', 'email', 'organizations', 'admin'] as const;

/** Token lifetimes in seconds, in one place (see tenants/signing-keys.ts for how long retired keys stay published). */
export const TTL = {
  AccessToken: 15 * 60,
  ClientCredentials: 15 * 60,
  AuthorizationCode: 60,
  IdToken: 60 * 60,
  RefreshToken: 14 * 24 * 3600,
  Grant: 14 * 24 * 3600,
  Session: 14 * 24 * 3600,
  Interaction: 60 * 60,
} as const;

export interface TenantIdentity {
  id: string;
  slug: string;
  name: string;
  settings: StoredSettings;
}

/** Claims of an org-scoped token; under `openid` so they appear whenever the token has an organization. */
export const ORG_CLAIMS = ['org_id', 'org_slug', 'org_roles', 'org_permissions'] as const;
/** Claims of an org-scoped token about teams (`org_teams`), and of a team-scoped one (the others). */
export const TEAM_CLAIMS = ['org_teams', 'team_id', 'team_slug', 'team_roles', 'team_permissions'] as const;

export interface ProviderDeps {
  db: Database;
  publicUrl: string;
  encryptionKey: Buffer;
  users: UserService;
  clients: ClientService;
  orgTokens: OrgTokens;
  render: Render;
  log: Logger;
  /** Codes and refresh tokens spent by requests that handed out no tokens, given back (one per instance). */
  refunds: SpendRefunds;
}

/** The audience of every access token Tessera issues: the tenant's own APIs (userinfo, /api/v1/...). */
export function apiAudienceOf(issuer: string) {
  return `${issuer}/api`;
}

/**
 * One tenant's OpenID Provider. Everything tenant-specific — issuer, keys, cookie keys, storage —
 * comes in here; everything else is the same for all tenants.
 */
export function buildProvider(
  deps: ProviderDeps,
  tenant: TenantIdentity,
  keys: PrivateSigningKey[],
  alg: SigningAlg,
  verifyAccessToken: AccessTokenVerifier,
): Provider {
  const issuer = issuerOf(deps.publicUrl, tenant.slug);
  const apiAudience = apiAudienceOf(issuer);
  const basePath = `/t/${tenant.slug}`;
  const orgSignOut = new OrgSignOut(deps.orgTokens, tenant);
  const claimCap = effectiveSettings(tenant.settings).organizations_claim_cap;
  const userinfoEndpoint = `${issuer}/me`;

  /**
   * Within one request the ID token and the access token ask for the same organization data;
   * it is read once per request (keyed on the provider's request context).
   */
  const perRequest = new WeakMap<object, Map<string, Promise<unknown>>>();
  function once<T>(ctx: unknown, key: string, load: () => Promise<T>): Promise<T> {
    if (!ctx || typeof ctx !== 'object') return load();
    let memo = perRequest.get(ctx);
    if (!memo) {
      memo = new Map();
      perRequest.set(ctx, memo);
    }
    if (!memo.has(key)) memo.set(key, load());
    return memo.get(key) as Promise<T>;
  }

  /** The membership list in the client's format (claims-format.ts), or, past the cap, a distributed-claims pointer to userinfo. */
  async function membershipsClaim(ctx: unknown, userId: string, capped: boolean, format: ClaimsFormat) {
    const all = (await once(ctx, `memberships:${userId}`, () => deps.orgTokens.memberships(tenant.id, userId))).map(({ id, slug, name, roles }) => ({
      id,
      slug,
      name,
      roles,
    }));
    if (capped && all.length > claimCap) return distributedMembershipClaims(format, userinfoEndpoint);
    return membershipClaims(format, all);
  }

  /** The client's claims format, and what it adds to org-scoped claims (auth0's org_name). */
  const formatOf = (clientId: string | undefined) => (clientId ? deps.clients.claimsFormat(tenant.id, clientId) : Promise.resolve('tessera' as const));
  const withFormatExtras = (format: ClaimsFormat, orgClaims: Record<string, unknown>) => ({
    ...orgClaims,
    ...orgScopedExtras(format, orgClaims),
  });

  /** The org claims of a grant's sign-in, when it works in an organization the user may still use. */
  function grantOrgClaims(ctx: unknown, grantId: string | undefined, userId: string, clientId: string | undefined) {
    if (!grantId) return Promise.resolve({});
    return once(ctx, `grant-org:${grantId}:${userId}`, async () => {
      // A client that does not use organizations never works in one, even when its sign-in did
      // before its organization_usage became deny (a cached read of the client's row).
      if (clientId && !(await deps.clients.usesOrganizations(tenant.id, clientId))) return {};
      const orgId = await deps.orgTokens.grantOrg(tenant.id, grantId);
      if (!orgId) return {};
      // A refresh or code exchange is judged by the organization's policy as it stands now: a
      // sign-in that no longer meets it loses the organization, as a removed member does.
      const facts = signInFacts(ctx as KoaContextWithOIDC | undefined);
      // Both reads at once: one-shot reads in flight together share a round trip (db/one-shot.ts).
      // The team claims are dropped when the organization is refused.
      const [r, teams] = await Promise.all([
        deps.orgTokens.claimsFor(tenant.id, userId, orgId, facts && { facts, tenantMfa: effectiveSettings(tenant.settings).mfa, grantId }),
        grantTeamClaims(grantId, userId, orgId),
      ]);
      return 'claims' in r ? { ...r.claims, ...teams } : {};
    });
  }

  /**
   * `org_teams` of an org-scoped token, and the team claims when the sign-in works in a team the
   * person is still in (one who left it is dropped to the organization; leaving also revoked
   * the sign-in: org-tokens.ts revokeTeamScoped).
   */
  async function grantTeamClaims(grantId: string, userId: string, orgId: string) {
    const r = await deps.orgTokens.teamClaimsFor(tenant.id, userId, orgId, { grantId });
    return 'claims' in r ? r.claims : {};
  }

  /** The grant this authorization request continues (see loadExistingGrant below). */
  async function grantOfRequest(ctx: KoaContextWithOIDC) {
    const clientId = ctx.oidc.client!.clientId;
    const grantId = ctx.oidc.result?.consent?.grantId || ctx.oidc.session!.grantIdFor(clientId);
    const existing = grantId ? await ctx.oidc.provider.Grant.find(grantId) : undefined;
    if (await deps.clients.requiresConsent(tenant.id, clientId)) return existing;
    const accountId = ctx.oidc.account!.accountId;
    // Someone else's grant is never added to; the provider refuses it itself (accountId mismatch).
    if (existing && (existing.accountId !== accountId || existing.clientId !== clientId)) return existing;
    const grant = existing ?? new ctx.oidc.provider.Grant({ accountId, clientId });
    const missing = missingConsent(ctx, grant);
    if (!missing) return existing;
    recordConsent(grant, missing, await deps.users.find(tenant.id, accountId));
    await grant.save();
    return grant;
  }

  /**
   * A sign-in that just came through an organization's SSO connection (the interaction result
   * says which) is recorded against its grant and auth_time, so that its refreshes, switches and
   * later authorization requests know it (OrgTokens.recordSsoSignIn). Consent merges the result,
   * so a client asking for consent records it when the grant exists.
   */
  async function recordSsoSignIn(ctx: KoaContextWithOIDC, grantId: string | undefined) {
    const sso = (ctx.oidc.result as { sso?: { org_id?: unknown; connection_id?: unknown } } | undefined)?.sso;
    const authTime = ctx.oidc.session?.authTime();
    if (!grantId || !sso || typeof sso.org_id !== 'string' || typeof sso.connection_id !== 'string' || typeof authTime !== 'number') return;
    await deps.orgTokens.recordSsoSignIn(tenant.id, grantId, authTime, sso.org_id, sso.connection_id);
  }

  const configuration: Configuration = {
    adapter: adapterFor(deps.db, tenant.id, issuer, deps.clients, deps.refunds),
    clients: [],
    // Signed with crypto.sign rather than WebCrypto's thread pool (sync-signing-key.ts says why).
    jwks: { keys: keys.map((k) => new SyncSigningKey(k)) as unknown as NonNullable<Configuration['jwks']>['keys'] },
    /**
     * A first-party client (require_consent off) skips the consent page, so its grant is decided
     * here, when the sign-in resumes after login, under the same rule as the page (recordConsent).
     * Without this the provider would start a consent interaction only for Tessera to finish it
     * at once: two redirects and ~10 statements per sign-in (oidc-provider's documented way of
     * skipping consent). Clients that ask for consent keep the default: the grant the session
     * already holds for the client, if any.
     */
    async loadExistingGrant(ctx) {
      const grant = await grantOfRequest(ctx);
      await recordSsoSignIn(ctx, grant?.jti);
      return grant;
    },
    async findAccount(ctx, sub) {
      const user = await deps.users.find(tenant.id, sub);
      if (!user || user.disabled) return undefined;
      return {
        accountId: user.id,
        async claims(use, scope) {
          const scopes = new Set(String(scope ?? '').split(' '));
          const format = await formatOf(ctx?.oidc?.client?.clientId);
          return {
            ...withFormatExtras(format, await grantOrgClaims(ctx, ctx?.oidc?.entities?.Grant?.jti, user.id, ctx?.oidc?.client?.clientId)),
            ...(scopes.has('organizations') ? await membershipsClaim(ctx, user.id, use !== 'userinfo', format) : {}),
            sub: user.id,
            email: user.email,
            email_verified: user.email_verified,
            name: user.name ?? undefined,
            given_name: user.given_name ?? undefined,
            family_name: user.family_name ?? undefined,
            updated_at: Math.floor(user.updated_at.getTime() / 1000),
          };
        },
      };
    },
    // How the person signed in (RFC 8176 `amr`; Tessera's `acr` values), from the login result.
    acrValues: ACR_VALUES_SUPPORTED,
    claims: {
      // `acr` and `amr`: how the person signed in (Tessera's acr values; RFC 8176 methods), from
      // the sign-in's login result. Under `openid` so that every ID token carries them.
      openid: ['sub', 'acr', 'amr', ...ORG_CLAIMS, ...ORG_SCOPED_EXTRA_CLAIMS, ...TEAM_CLAIMS],
      organizations: [...MEMBERSHIP_CLAIMS],
      email: ['email', 'email_verified'],
      profile: ['name', 'given_name', 'family_name', 'updated_at'],
    },
    scopes: [...TENANT_SCOPES],
    // ID tokens carry the profile claims too, as Keycloak's and Auth0's do; apps should not need
    // a userinfo round trip to learn who signed in.
    conformIdTokenClaims: false,
    responseTypes: ['code'],
    extraParams: {
      // Extra parameters are validated once the client and redirect_uri are checked, so an error
      // here reaches the app. This validator, registered with `organization`, checks every
      // parameter of the request, before its interaction stores them.
      organization: refuseUnstorableParams,
      // `team=<id or slug>`: a team-scoped token (the organization prompt below checks it).
      team: null,
    },
    async extraTokenClaims(ctx, token) {
      if (token.kind === 'ClientCredentials') {
        // A machine client acting for an organization it was granted (checked by the gateway).
        const asked = orgRequest.getStore();
        if (!asked || asked.clientId !== token.clientId) return undefined;
        const orgClaims = await deps.orgTokens.orgClaimsForClient(tenant.id, asked.orgId);
        return orgClaims && withFormatExtras(await formatOf(token.clientId), { ...orgClaims });
      }
      const accountId = (token as { accountId?: string }).accountId;
      if (!accountId) return undefined;
      const grantId = (token as { grantId?: string }).grantId;
      const switchTo = orgRequest.getStore();
      if (switchTo && grantId) await deps.orgTokens.selectForGrant(tenant.id, grantId, accountId, switchTo.orgId, switchTo.teamId ?? null);
      // A switch changes the grant's organization: don't reuse what this request read before it.
      const memoCtx = switchTo ? undefined : ctx;
      const format = await formatOf(token.clientId);
      return {
        ...signInClaims(ctx),
        ...withFormatExtras(format, await grantOrgClaims(memoCtx, grantId, accountId, token.clientId)),
        ...(token.scopes.has('organizations') ? await membershipsClaim(memoCtx, accountId, true, format) : {}),
      };
    },
    interactions: {
      url: (_ctx, interaction) => `${basePath}/interaction/${interaction.uid}`,
      policy: [...basePromptsWithRequestedAcr(), organizationPrompt(deps, tenant)],
    },
    pkce: { required: () => true },
    clientAuthMethods: ['client_secret_basic', 'client_secret_post', 'none'],
    clientDefaults: {
      grant_types: ['authorization_code', 'refresh_token'],
      id_token_signed_response_alg: alg,
      response_types: ['code'],
      token_endpoint_auth_method: 'client_secret_basic',
    },
    enabledJWA: {
      idTokenSigningAlgValues: ['ES256', 'RS256'],
      userinfoSigningAlgValues: ['ES256', 'RS256'],
      introspectionSigningAlgValues: ['ES256', 'RS256'],
      requestObjectSigningAlgValues: ['ES256', 'RS256'],
      clientAuthSigningAlgValues: ['ES256', 'RS256'],
    },
    cookies: {
      // Cookie keys derived per tenant: one tenant's cookie is garbage at another's endpoints.
      keys: [deriveKey(deps.encryptionKey, `cookies:${tenant.id}`).toString('base64url')],
      long: { signed: true, httpOnly: true, sameSite: 'lax', path: `${basePath}/` },
      short: { signed: true, httpOnly: true, sameSite: 'lax' },
    },
    features: {
      devInteractions: { enabled: false },
      // The signing keys above are ExternalSigningKeys; the acknowledgement pins the feature's version.
      externalSigningSupport: { enabled: true, ack: 'experimental-01' },
      clientCredentials: { enabled: true },
      introspection: {
        enabled: true,
        // Confidential clients of the tenant (apps and their APIs) may introspect any of its
        // tokens; a public client only its own.
        allowedPolicy: async (ctx, client, token) => client.clientAuthMethod !== 'none' || token.clientId === ctx.oidc.client?.clientId,
      },
      revocation: {
        enabled: true,
        // A client revokes only what was issued to it.
        allowedPolicy: async (_ctx, client, token) => token.clientId === client.clientId,
      },
      userinfo: { enabled: true },
      rpInitiatedLogout: {
        enabled: true,
        async logoutSource(ctx, form) {
          await orgSignOut.remember(ctx);
          ctx.type = 'html';
          ctx.body = deps.render('logout.njk', { title: 'Sign out', tenantName: tenant.name, form });
        },
        async postLogoutSuccessSource(ctx) {
          // A sign-in made for an organization ends on that organization's own sign-in page.
          const orgPage = await orgSignOut.destination(ctx);
          if (orgPage) {
            ctx.status = 303;
            return ctx.redirect(orgPage);
          }
          ctx.type = 'html';
          ctx.body = deps.render('logged-out.njk', {
            title: 'Signed out',
            tenantName: tenant.name,
            clientName: ctx.oidc.client?.clientName,
          });
        },
      },
      resourceIndicators: {
        enabled: true,
        // Every access token is a JWT for the tenant's own APIs, so apps can verify it offline.
        defaultResource: () => apiAudience,
        useGrantedResource: () => true,
        getResourceServerInfo(_ctx, resource) {
          if (resource !== apiAudience) throw new errors.InvalidTarget(`unknown resource; this issuer serves ${apiAudience}`);
          return apiResourceServerInfo(apiAudience, alg);
        },
      },
    },
    formats: {
      customizers: {
        // Store each JWT access token's payload by jti: see token-gateway.ts for why.
        async jwt(_ctx, token, jwt) {
          const model = token.constructor as unknown as { IN_PAYLOAD: string[] };
          const stored: Record<string, unknown> = {};
          for (const field of model.IN_PAYLOAD) {
            const value = (token as unknown as Record<string, unknown>)[field];
            if (value !== undefined) stored[field] = value;
          }
          stored.iat = jwt.payload.iat;
          stored.exp = jwt.payload.exp;
          // userinfo refuses tokens with an audience; ours includes userinfo, so the row omits it.
          if (stored.aud === apiAudience) delete stored.aud;
          const ttl = Math.max(1, Number(jwt.payload.exp) - Math.floor(Date.now() / 1000));
          await (token as unknown as { adapter: { upsert(id: string, p: unknown, ttl: number): Promise<void> } }).adapter.upsert(token.jti, stored, ttl);
        },
      },
    },
    // As in Keycloak: every client allowed the refresh_token grant gets a refresh token. Without
    // offline_access (which OIDC grants only with prompt=consent) it lives and dies with the
    // sign-in session; with it, it outlives the session.
    issueRefreshToken: async (_ctx, client) => client.grantTypeAllowed('refresh_token'),
    rotateRefreshToken: true,
    ttl: { ...TTL },
    renderError: async (ctx, out, error) => {
      const requestId = ctx.get('x-request-id') || undefined;
      deps.log.info({ tenant: tenant.slug, error: out.error, description: out.error_description, requestId }, 'oidc error page');
      ctx.type = 'html';
      ctx.body = deps.render('error.njk', {
        title: 'Sign-in could not continue',
        tenantName: tenant.name,
        detail: out.error_description ?? out.error,
        requestId,
      });
      void error;
    },
  };

  const provider = new Provider(issuer, configuration);
  treatRequestsAsHttps(provider, deps.publicUrl);
  const outage = databaseOutage({
    log: deps.log,
    page: (ctx) =>
      deps.render('error.njk', {
        title: 'Temporarily unavailable',
        tenantName: tenant.name,
        detail: 'This service is briefly unavailable. Try again in a few seconds.',
        requestId: ctx.get('x-request-id') || undefined,
      }),
  });
  // First, so it sees every answer: an unreachable database is a 503, not server_error (outage.ts).
  provider.use(outage.middleware);
  provider.use(oauthInput);
  provider.use(
    tokenGateway({
      verifyAccessToken,
      tenantId: tenant.id,
      orgTokens: deps.orgTokens,
      clients: deps.clients,
      provider: () => provider,
      refunds: deps.refunds,
      log: deps.log,
      tenantMfa: effectiveSettings(tenant.settings).mfa,
    }),
  );
  provider.on('server_error', (ctx: KoaContextWithOIDC, err: Error) => {
    if (outage.serverError(ctx, err)) return;
    deps.log.error({ err, tenant: tenant.slug, route: ctx.oidc?.route }, 'oidc-provider server error');
  });
  return provider;
}

/**
 * An authorization request's parameters are stored with its interaction (jsonb): text PostgreSQL
 * can't store (base/storable-text.ts) is an invalid_request for the app, not a failed save.
 */
async function refuseUnstorableParams(ctx: KoaContextWithOIDC) {
  for (const [name, value] of Object.entries(ctx.oidc.params ?? {})) {
    const problem = typeof value === 'string' ? unstorableTextProblem(value) : undefined;
    if (problem) throw new errors.InvalidRequest(`${name} ${problem}`);
  }
}

/** The one resource server of a tenant: its own APIs. Every access token is a JWT for it. */
export function apiResourceServerInfo(apiAudience: string, alg: SigningAlg) {
  return {
    scope: TENANT_SCOPES.join(' '),
    audience: apiAudience,
    accessTokenTTL: TTL.AccessToken,
    accessTokenFormat: 'jwt' as const,
    jwt: { sign: { alg } },
  };
}

/**
 * Issues an access token outside a token-endpoint request (organization switch, API tokens),
 * through the provider's own model: same format, signing key, stored payload and claims hook.
 */
export async function mintAccessToken(
  runtime: { provider: Provider; apiAudience: string; alg: SigningAlg },
  opts: { accountId: string; clientId: string; grantId: string; scope: string; gty: string; expiresIn?: number | undefined },
): Promise<{ value: string; jti: string; expiresIn: number }> {
  const { provider } = runtime;
  const client = await provider.Client.find(opts.clientId);
  if (!client) throw new Error(`client ${opts.clientId} not found`);
  const token = new provider.AccessToken({
    accountId: opts.accountId,
    client,
    grantId: opts.grantId,
    scope: opts.scope,
    gty: opts.gty,
    ...(opts.expiresIn ? { expiresIn: opts.expiresIn } : {}),
    resourceServer: new provider.ResourceServer(runtime.apiAudience, apiResourceServerInfo(runtime.apiAudience, runtime.alg)),
  } as never);
  const value = await token.save();
  return { value, jti: token.jti, expiresIn: token.expiration };
}

/**
 * `amr`, `acr` and `auth_time` of the sign-in an access token belongs to, so APIs can judge it as
 * the ID token is judged: from the code or refresh token being exchanged, or carried by a switch.
 */
function signInClaims(ctx: KoaContextWithOIDC | undefined): Record<string, unknown> {
  const from = signInSource(ctx);
  if (!from) return {};
  return {
    ...(Array.isArray(from.amr) && from.amr.length ? { amr: from.amr } : {}),
    ...(typeof from.acr === 'string' ? { acr: from.acr } : {}),
    ...(typeof from.authTime === 'number' ? { auth_time: from.authTime } : {}),
  };
}
function signInSource(ctx: KoaContextWithOIDC | undefined): SignInFacts | undefined {
  const entities = ctx?.oidc?.entities as { AuthorizationCode?: SignInFacts; RefreshToken?: SignInFacts } | undefined;
  return entities?.AuthorizationCode ?? entities?.RefreshToken ?? carriedSignIn.getStore();
}

/** The sign-in facts a policy judges, where this request knows them (not at userinfo). */
function signInFacts(ctx: KoaContextWithOIDC | undefined) {
  const from = signInSource(ctx);
  return from && { amr: from.amr ?? [], acr: from.acr, authTime: from.authTime };
}

interface SignInFacts {
  amr?: string[] | undefined;
  acr?: string | undefined;
  authTime?: number | undefined;
}

/** The JWKS as published: public members only. */
export function publicJwksOf(keys: PrivateSigningKey[]): JSONWebKeySet {
  return {
    keys: keys.map(({ d, p, q, dp, dq, qi, ...pub }) => {
      void [d, p, q, dp, dq, qi];
      return pub;
    }),
  };
}

/**
 * The `organization` prompt, after login and consent: needed when the request names an
 * organization the sign-in is not already working in (or may no longer use), or when the client
 * requires an organization and none is chosen. The interaction validates and records the choice,
 * or shows the picker (see interactions.routes.ts).
 */
function organizationPrompt(deps: ProviderDeps, tenant: TenantIdentity) {
  const { Prompt, Check } = interactionPolicy;
  return new Prompt(
    { name: 'organization', requestable: false },
    new Check('organization_requested', 'an organization must be chosen', 'interaction_required', async (ctx) => {
      const { oidc } = ctx;
      // Signing in through an organization's SSO connection makes the sign-in work in it.
      const ssoOrg = (oidc.result as { sso?: { org_id?: string } } | undefined)?.sso?.org_id;
      const asked = requestedOrganization(oidc.params as Record<string, unknown>);
      const team = requestedTeam(oidc.params as Record<string, unknown>);
      // The portal works in an organization only when its sign-in asks for one — started from the
      // organization's own sign-in page (/o/<slug>/login), which checks membership like any app's.
      const usage =
        oidc.client!.clientId === PORTAL_CLIENT ? (asked ? 'allow' : 'deny') : await deps.clients.organizationUsage(tenant.id, oidc.client!.clientId);
      if (usage === 'deny' && (asked || team)) throw new errors.InvalidRequest(NO_ORGANIZATIONS_TEXT);
      // A client without organizations (the portal among them) signs in people of an SSO
      // organization like anyone else: the sign-in is recorded as through SSO, and works in none.
      if (usage === 'deny') return Check.NO_NEED_TO_PROMPT;
      const requested = asked ?? ssoOrg;
      if (!requested && !team && usage !== 'require') return Check.NO_NEED_TO_PROMPT;
      const grantId = oidc.grant?.jti;
      const accountId = oidc.session?.accountId;
      if (!grantId || !accountId) return Check.REQUEST_PROMPT;
      const current = await deps.orgTokens.grantOrg(tenant.id, grantId);
      if (!current) return Check.REQUEST_PROMPT;
      if (requested) {
        const org = await deps.orgTokens.findOrg(tenant.id, requested);
        if (org?.id !== current) return Check.REQUEST_PROMPT;
      }
      // A team asked for: the sign-in must already work in exactly that team of its organization.
      if (team) {
        const [t, currentTeam] = await Promise.all([
          deps.orgTokens.teamClaimsFor(tenant.id, accountId, current, { team }),
          deps.orgTokens.grantTeam(tenant.id, grantId),
        ]);
        if (!('claims' in t) || t.claims.team_id !== currentTeam) return Check.REQUEST_PROMPT;
      }
      const still = await deps.orgTokens.claimsFor(tenant.id, accountId, current, {
        facts: { amr: oidc.session?.amr ?? [], acr: oidc.session?.acr, authTime: oidc.session?.authTime() },
        tenantMfa: effectiveSettings(tenant.settings).mfa,
        // Just signed in through an organization's SSO: the result says which; otherwise what the
        // sign-in recorded for this grant (recordSsoSignIn) decides sso_required.
        ...(ssoOrg ? { viaSsoOrg: ssoOrg } : { grantId }),
      });
      // The app may step up: send the person back with prompt=login or acr_values.
      if ('refused' in still && still.refused === 'policy') throw new errors.AccessDenied(`${still.detail} (missing: ${still.missing})`);
      return 'claims' in still ? Check.NO_NEED_TO_PROMPT : Check.REQUEST_PROMPT;
    }),
  );
}
