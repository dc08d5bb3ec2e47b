import type { JSONWebKeySet } from 'jose';
import Provider, { errors, type Configuration, type KoaContextWithOIDC } from 'oidc-provider';
import { deriveKey } from '../crypto/secrets.ts';
import type { Logger } from '../logger.ts';
import type { UserService } from '../users/user.service.ts';
import type { Render } from '../views.ts';
import type { Database } from '../db/database.ts';
import { adapterFor } from './adapter.ts';
import type { ClientService } from './client.service.ts';
import type { PrivateSigningKey, SigningAlg } from './signing-keys.ts';
import { tokenGateway } from './token-gateway.ts';

/** Every scope a tenant's clients may be allowed. `admin` reaches the Admin API (tenant admins and machine clients only). */
export const TENANT_SCOPES = ['openid', 'offline_access', 'profile', 'email', 'admin'] as const;

/** Token lifetimes in seconds, in one place (see signing-keys.ts for how long retired keys stay published). */
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
}

export interface ProviderDeps {
  db: Database;
  publicUrl: string;
  encryptionKey: Buffer;
  users: UserService;
  clients: ClientService;
  render: Render;
  log: Logger;
}

export function issuerOf(publicUrl: string, slug: string) {
  return `${publicUrl}/t/${slug}`;
}

/** The audience of every access token Tessera issues: the tenant's own APIs (userinfo, /api/v1/...). */
export function apiAudienceOf(issuer: string) {
  return `${issuer}/api`;
}

/**
 * One tenant's OpenID Provider. Everything tenant-specific — issuer, keys, cookie keys, storage —
 * comes in here; everything else is the same for all tenants.
 */
export function buildProvider(deps: ProviderDeps, tenant: TenantIdentity, keys: PrivateSigningKey[], alg: SigningAlg): Provider {
  const issuer = issuerOf(deps.publicUrl, tenant.slug);
  const apiAudience = apiAudienceOf(issuer);
  const basePath = `/t/${tenant.slug}`;

  const configuration: Configuration = {
    adapter: adapterFor(deps.db, tenant.id, deps.clients),
    clients: [],
    jwks: { keys },
    async findAccount(_ctx, sub) {
      const user = await deps.users.find(tenant.id, sub);
      if (!user || user.disabled) return undefined;
      return {
        accountId: user.id,
        async claims() {
          return {
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
    claims: {
      openid: ['sub'],
      email: ['email', 'email_verified'],
      profile: ['name', 'given_name', 'family_name', 'updated_at'],
    },
    scopes: [...TENANT_SCOPES],
    // ID tokens carry the profile claims too, as Keycloak's and Auth0's do; apps should not need
    // a userinfo round trip to learn who signed in.
    conformIdTokenClaims: false,
    responseTypes: ['code'],
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
    interactions: {
      url: (_ctx, interaction) => `${basePath}/interaction/${interaction.uid}`,
    },
    features: {
      devInteractions: { enabled: false },
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
          ctx.type = 'html';
          ctx.body = deps.render('logout.njk', { title: 'Sign out', tenantName: tenant.name, form });
        },
        async postLogoutSuccessSource(ctx) {
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
          return {
            scope: TENANT_SCOPES.join(' '),
            audience: apiAudience,
            accessTokenTTL: TTL.AccessToken,
            accessTokenFormat: 'jwt',
            jwt: { sign: { alg } },
          };
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
          await (token as unknown as { adapter: { upsert(id: string, p: unknown, ttl: number): Promise<void> } }).adapter.upsert(
            token.jti,
            stored,
            ttl,
          );
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
  provider.use(tokenGateway({ issuer, publicJwks: publicJwksOf(keys) }));
  provider.on('server_error', (ctx: KoaContextWithOIDC, err: Error) => {
    deps.log.error({ err, tenant: tenant.slug, route: ctx.oidc?.route }, 'oidc-provider server error');
  });
  return provider;
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
