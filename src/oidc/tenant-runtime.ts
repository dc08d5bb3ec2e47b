import type { IncomingMessage, ServerResponse } from 'node:http';
import { LRUCache } from 'lru-cache';
import type Provider from 'oidc-provider';
import { isDatabaseUnavailable } from '../base/database-unavailable.ts';
import { slugScopedStatement } from '../db/one-shot.ts';
import { isInlineSafeSlug } from '../db/tenant-scope.ts';
import type { Metrics } from '../metrics/metrics.ts';
import { issuerOf } from '../tenants/issuer.ts';
import { openSigningKeys, type SealedSigningKey, type SigningAlg } from '../tenants/signing-keys.ts';
import { findTenantWithKeys, type TenantRow } from '../tenants/tenant.repo.ts';
import { type AccessTokenVerifier, accessTokenVerifier } from './jwt-verifier.ts';
import { apiAudienceOf, buildProvider, type ProviderDeps, publicJwksOf } from './provider.ts';
import { SpendRefunds } from './spend-refunds.ts';

interface CachedTenant {
  /** null: no such tenant. */
  found: { row: TenantRow; keys: SealedSigningKey[] } | null;
}

export interface TenantRuntime {
  tenant: TenantRow;
  provider: Provider;
  issuer: string;
  /** The `aud` of every access token this tenant issues. */
  apiAudience: string;
  /** Verifies an access token's JWT (signature, issuer, type, expiry); not whether it was revoked. */
  verifyAccessToken: AccessTokenVerifier;
  /** The algorithm tokens are signed with. */
  alg: SigningAlg;
  /** oidc-provider's request handler (a Koa app of its own). */
  handle: (req: IncomingMessage, res: ServerResponse) => Promise<void>;
}

/**
 * Resolves `/t/<slug>` to its tenant row and built oidc-provider. Tenant rows (with their sealed
 * signing keys) are cached for `ttlMs` (the bound on how stale another instance's change can be);
 * providers are cached by (tenant, config_version), so a key rotation or settings change on any
 * instance is picked up by all of them within that bound. A provider is cheap to build and to keep
 * (bench/diag/provider-build.ts measures it); `providerCacheSize` (TENANT_PROVIDER_CACHE_SIZE)
 * bounds how many stay built — a tenant outside it is rebuilt on its next request, and V8 collects
 * the evicted one (docs/performance.md, "A cold tenant").
 *
 * Stale if error: when the re-read of a tenant's row fails because the database is unreachable,
 * the row last read keeps serving (and so does its built provider), so discovery and the JWKS —
 * which read nothing else — answer through an outage; everything that needs the database still
 * fails, with 503. A tenant first seen during an outage can't be served.
 */
export class TenantRuntimes {
  private readonly tenants: LRUCache<string, CachedTenant>;
  private readonly providers: LRUCache<string, Promise<TenantRuntime>>;
  /** Re-reads in flight, by slug: concurrent requests share one. */
  private readonly reading = new Map<string, Promise<CachedTenant>>();
  private readonly deps: ProviderDeps;

  constructor(
    deps: Omit<ProviderDeps, 'refunds'>,
    ttlMs: number,
    providerCacheSize: number,
    private readonly metrics: Metrics,
  ) {
    this.deps = { ...deps, refunds: new SpendRefunds(deps.db, deps.log) };
    // An expired row stays in the cache (noDeleteOnStaleGet) until it is read again: it is what
    // an outage is served from.
    this.tenants = new LRUCache({ max: 10_000, ttl: Math.max(ttlMs, 1), noDeleteOnStaleGet: true });
    this.providers = new LRUCache({ max: providerCacheSize });
  }

  /** Built providers held now. */
  get size() {
    return this.providers.size;
  }

  /** Codes and refresh tokens spent by requests that delivered no tokens, being given back. */
  get refunds(): SpendRefunds {
    return this.deps.refunds;
  }

  async forSlug(slug: string): Promise<TenantRuntime | undefined> {
    if (!isInlineSafeSlug(slug)) return undefined; // no tenant has such a slug (tenants/tenant.service.ts)
    const found = await this.tenantBySlug(slug);
    if (!found) return undefined;
    const key = `${found.row.id}:${found.row.config_version}`;
    let runtime = this.providers.get(key);
    this.metrics.providerCache(runtime !== undefined);
    if (!runtime) {
      runtime = this.build(found.row, found.keys);
      this.providers.set(key, runtime);
      runtime.catch(() => this.providers.delete(key));
    }
    return runtime;
  }

  /** Forget what this instance knows of a tenant (after a change made here). */
  invalidate(slug: string) {
    this.tenants.delete(slug);
    // A read already under way may predate the change: the next request reads afresh.
    this.reading.delete(slug);
  }

  /**
   * The tenant's row with its sealed signing keys, read in one statement and one round trip
   * (db/one-shot.ts): a cold tenant's request reads nothing else before its provider is built.
   * The keys are the same snapshot as the row's config_version, and a warm tenant's re-read
   * (every `ttlMs`) costs a few hundred bytes more than the row alone.
   */
  private async tenantBySlug(slug: string) {
    const hit = this.tenants.get(slug);
    if (hit) return hit.found ?? undefined;
    const inFlight = this.reading.get(slug);
    if (inFlight) {
      // Someone is re-reading it: the row a moment older than that read serves meanwhile.
      const stale = this.tenants.get(slug, { allowStale: true });
      return (stale ?? (await inFlight)).found ?? undefined;
    }
    const read = this.read(slug);
    this.reading.set(slug, read);
    try {
      const cached = await read;
      // Not cached if the tenant was invalidated while it was read (the row may predate the change).
      if (this.reading.get(slug) === read) this.tenants.set(slug, cached);
      return cached.found ?? undefined;
    } finally {
      if (this.reading.get(slug) === read) this.reading.delete(slug);
    }
  }

  /** Read from the database; if it is unreachable, the row last read (stale if error). */
  private async read(slug: string): Promise<CachedTenant> {
    try {
      const found = await slugScopedStatement(this.deps.db, slug, (tx) => findTenantWithKeys(tx, slug));
      return { found: found ?? null };
    } catch (err) {
      const stale = isDatabaseUnavailable(err) ? this.tenants.get(slug, { allowStale: true }) : undefined;
      if (!stale) throw err;
      // Cached again for another TTL before the next attempt: while the database is away, one
      // request per tenant and TTL tries it, not every request.
      this.deps.log.warn({ tenant: slug, reason: (err as Error).message }, 'database unavailable: serving the tenant as last read');
      return stale;
    }
  }

  private async build(tenant: TenantRow, sealedKeys: SealedSigningKey[]): Promise<TenantRuntime> {
    const keys = openSigningKeys(tenant.id, sealedKeys, this.deps.encryptionKey);
    if (keys.length === 0) throw new Error(`tenant ${tenant.slug} has no signing key`);
    const alg = tenant.settings.signing_alg ?? keys[0]!.alg;
    const issuer = issuerOf(this.deps.publicUrl, tenant.slug);
    const verifyAccessToken = accessTokenVerifier(issuer, publicJwksOf(keys));
    const provider = buildProvider(this.deps, tenant, keys, alg, verifyAccessToken);
    countIssuedTokens(provider, tenant.slug, this.metrics);
    const callback = provider.callback();
    return {
      tenant,
      provider,
      issuer,
      apiAudience: apiAudienceOf(issuer),
      verifyAccessToken,
      alg,
      handle: (req, res) => callback(req, res) as unknown as Promise<void>,
    };
  }
}

/**
 * Counts every token the tenant issues: each successful grant at the token endpoint
 * (oidc-provider's `grant.success`, labelled with its grant type — one the provider has a handler
 * for, so a bounded set), and each access token Tessera mints itself through the provider's model
 * (organization switch, API tokens: their `gty` is Tessera's own `urn:tessera:…`, and a minted
 * token is never one the token endpoint counted).
 */
function countIssuedTokens(provider: Provider, slug: string, metrics: Metrics) {
  provider.on('grant.success', (ctx: { oidc: { params?: { grant_type?: unknown } } }) => {
    const grantType = ctx.oidc.params?.grant_type;
    if (typeof grantType === 'string') metrics.tokenIssued(grantType, slug);
  });
  const minted = (token: { gty?: unknown }) => {
    // A refresh appends " refresh_token" to the gty it carries on: that token the endpoint counted.
    if (typeof token.gty === 'string' && token.gty.startsWith(MINTED_GTY_PREFIX) && !token.gty.includes(' ')) metrics.tokenIssued(token.gty, slug);
  };
  provider.on('access_token.saved', minted);
  provider.on('access_token.issued', minted);
}

/** The `gty` of access tokens Tessera mints outside the token endpoint (provider.ts, mintAccessToken). */
const MINTED_GTY_PREFIX = 'urn:tessera:';
