import { LRUCache } from 'lru-cache';
import type { AdapterPayload } from 'oidc-provider';
import type { Actor } from '../base/actor.ts';
import { NotFound, ValidationFailed } from '../base/errors.ts';
import { decodeCursor, page } from '../base/pagination.ts';
import { randomSecret, sha256Hex } from '../crypto/secrets.ts';
import type { Database, TenantTx } from '../db/database.ts';
import { inTenant } from '../db/tenant-scope.ts';
import { revokeEverythingOfClient } from '../oidc-store/oidc-payload.repo.ts';
import { revokeMachineOrgScoped } from '../orgs/org-tokens.ts';
import { insertTenantAudit } from '../tenants/tenant-audit.repo.ts';
import type { ClaimsFormat } from './claims-format.ts';
import type { ClientRow } from './client.repo.ts';
import * as repo from './client.repo.ts';

export const API_TOKENS_CLIENT = 'tessera:api-tokens';
/** The built-in client the portal and account pages sign in with (see portal/portal-session.ts). */
export const PORTAL_CLIENT = 'tessera:portal';

/** What every path says when a client whose `organization_usage` is `deny` asks for an organization or team. */
export const NO_ORGANIZATIONS_TEXT = 'this client does not use organizations; leave out the organization and team parameters';

/** The portal's redirect URI at a tenant's issuer. */
export const portalRedirectUri = (issuer: string) => `${issuer}/portal/callback`;

/**
 * The portal is a public client of its own tenant: authorization code with PKCE (S256), its code
 * redeemed in-process by the portal (portal-session.ts), never at the token endpoint (no grant
 * type but the code, no secret). First-party: no consent page.
 */
function portalClientMetadata(issuer: string): AdapterPayload {
  return {
    client_id: PORTAL_CLIENT,
    client_name: 'Tessera portal',
    grant_types: ['authorization_code'],
    response_types: ['code'],
    redirect_uris: [portalRedirectUri(issuer)],
    post_logout_redirect_uris: [`${issuer}/portal/signed-out`],
    token_endpoint_auth_method: 'none',
    scope: 'openid email profile',
  } as AdapterPayload;
}

export type GrantType = 'authorization_code' | 'refresh_token' | 'client_credentials';
export type AuthMethod = 'client_secret_basic' | 'client_secret_post' | 'none';

export interface ClientInput {
  name: string;
  redirect_uris: string[];
  post_logout_redirect_uris: string[];
  grant_types: GrantType[];
  token_endpoint_auth_method: AuthMethod;
  application_type: 'web' | 'native';
  scopes: string[];
  require_consent: boolean;
  organization_usage: 'deny' | 'allow' | 'require';
  organization_ids: string[];
  claims_format: ClaimsFormat;
}

/** Checks metadata the way the tenant's oidc-provider will (throws its InvalidClientMetadata). */
export type MetadataValidator = (tenantId: string, metadata: Record<string, unknown>) => Promise<void>;

function toMetadata(clientId: string, c: ClientInput): Record<string, unknown> {
  return {
    client_id: clientId,
    client_name: c.name,
    application_type: c.application_type,
    redirect_uris: c.redirect_uris,
    post_logout_redirect_uris: c.post_logout_redirect_uris,
    grant_types: c.grant_types,
    response_types: c.grant_types.includes('authorization_code') ? ['code'] : [],
    token_endpoint_auth_method: c.token_endpoint_auth_method,
    scope: c.scopes.join(' '),
  };
}

/** The metadata toMetadata stored, read as fromRow reads it: a missing list or application type takes its default. */
type StoredMetadata = Partial<Pick<ClientInput, 'redirect_uris' | 'post_logout_redirect_uris' | 'grant_types' | 'application_type'>> &
  Pick<ClientInput, 'token_endpoint_auth_method'> & { scope?: unknown };

function fromRow(row: ClientRow): ClientInput {
  const m = row.metadata as StoredMetadata;
  return {
    name: row.name,
    redirect_uris: m.redirect_uris ?? [],
    post_logout_redirect_uris: m.post_logout_redirect_uris ?? [],
    grant_types: m.grant_types ?? [],
    token_endpoint_auth_method: m.token_endpoint_auth_method,
    application_type: m.application_type ?? 'web',
    scopes: typeof m.scope === 'string' && m.scope ? m.scope.split(' ') : [],
    require_consent: row.require_consent,
    organization_usage: row.organization_usage,
    organization_ids: row.organization_ids,
    claims_format: row.claims_format,
  };
}

/** A machine client may only be granted organizations of its own tenant. */
async function assertOrganizationsExist(tx: TenantTx, tenantId: string, ids: string[]) {
  if (ids.length === 0) return;
  const found = await tx.selectFrom('organizations').select('id').where('tenant_id', '=', tenantId).where('id', 'in', ids).execute();
  const missing = ids.filter((id) => !found.some((f) => f.id === id));
  if (missing.length)
    throw ValidationFailed(`No organization ${missing.join(', ')} in this tenant.`, [
      { field: 'organization_ids', message: `unknown organization: ${missing.join(', ')}` },
    ]);
}

export function presentClient(row: ClientRow) {
  const { name, ...rest } = fromRow(row);
  return {
    client_id: row.client_id,
    name,
    ...rest,
    created_at: row.created_at.toISOString(),
    updated_at: row.updated_at.toISOString(),
  };
}

/**
 * The built-in client API tokens are issued to (see tokens/api-token.service.ts). Its "secret"
 * is a random value nobody holds (and the gateway hashes whatever is presented), so it can't be
 * used at the token endpoint; its id can't collide with a generated one (those have no colon).
 */
const API_TOKENS_CLIENT_METADATA = {
  client_id: API_TOKENS_CLIENT,
  client_name: 'API tokens',
  client_secret: randomSecret(32),
  grant_types: ['client_credentials'],
  response_types: [],
  redirect_uris: [],
  token_endpoint_auth_method: 'client_secret_basic',
} as AdapterPayload;

export class ClientService {
  /**
   * oidc-provider looks the client up on every token and authorization request; a short-lived
   * cache in front keeps that off the database. Changes made here invalidate it at once; other
   * instances see them within `ttlMs`.
   */
  private readonly cache: LRUCache<string, { row: ClientRow | null }>;

  constructor(
    private readonly db: Database,
    ttlMs: number,
  ) {
    this.cache = new LRUCache({ max: 10_000, ttl: Math.max(ttlMs, 1) });
  }

  async create(tenantId: string, input: ClientInput, validate: MetadataValidator) {
    const clientId = randomSecret(16);
    const confidential = input.token_endpoint_auth_method !== 'none';
    const secret = confidential ? randomSecret(32) : undefined;
    const metadata = toMetadata(clientId, input);
    await validate(tenantId, { ...metadata, ...(secret ? { client_secret: sha256Hex(secret) } : {}) });
    const row = await inTenant(this.db, tenantId, async (tx) => {
      await assertOrganizationsExist(tx, tenantId, input.organization_ids);
      return repo.insertClient(tx, {
        tenant_id: tenantId,
        client_id: clientId,
        client_secret_hash: secret ? sha256Hex(secret) : null,
        name: input.name,
        metadata,
        require_consent: input.require_consent,
        organization_usage: input.organization_usage,
        organization_ids: input.organization_ids,
        claims_format: input.claims_format,
      });
    });
    return { row, secret };
  }

  async get(tenantId: string, clientId: string): Promise<ClientRow> {
    const row = await inTenant(this.db, tenantId, (tx) => repo.findClient(tx, tenantId, clientId));
    if (!row) throw NotFound(`No client ${clientId} in this tenant.`);
    return row;
  }

  async list(tenantId: string, q: { limit: number; cursor?: string | undefined }) {
    const rows = await inTenant(this.db, tenantId, (tx) => repo.listClients(tx, tenantId, { limit: q.limit, after: decodeCursor(q.cursor) }));
    const p = page(rows, q.limit, (c) => ({ createdAt: c.created_at, id: c.client_id }));
    return { data: p.data.map(presentClient), next_cursor: p.next_cursor };
  }

  /**
   * PATCH semantics: fields left out keep their value. `rotate_secret` issues a new secret (shown
   * once). A change of `claims_format` changes what the client's app reads from every token, so
   * it is written to the tenant's audit log with who made it.
   */
  async update(
    tenantId: string,
    clientId: string,
    patch: Partial<ClientInput> & { rotate_secret?: boolean | undefined },
    validate: MetadataValidator,
    actor?: Actor,
  ) {
    const { rotate_secret, ...changes } = patch;
    const result = await inTenant(this.db, tenantId, async (tx) => {
      const current = await repo.findClient(tx, tenantId, clientId);
      if (!current) throw NotFound(`No client ${clientId} in this tenant.`);
      const next: ClientInput = { ...fromRow(current), ...changes };
      const confidential = next.token_endpoint_auth_method !== 'none';
      const secret = confidential && (rotate_secret || !current.client_secret_hash) ? randomSecret(32) : undefined;
      const secretHash = confidential ? (secret ? sha256Hex(secret) : current.client_secret_hash) : null;
      const metadata = toMetadata(clientId, next);
      await validate(tenantId, { ...metadata, ...(secretHash ? { client_secret: secretHash } : {}) });
      await assertOrganizationsExist(tx, tenantId, next.organization_ids);
      const row = await repo.updateClient(tx, tenantId, clientId, {
        name: next.name,
        metadata,
        require_consent: next.require_consent,
        client_secret_hash: secretHash,
        organization_usage: next.organization_usage,
        organization_ids: next.organization_ids,
        claims_format: next.claims_format,
      });
      // Organizations taken out of organization_ids: the client's machine tokens scoped to them
      // are revoked with the change, so putting one back does not revive them.
      const removed = current.organization_ids.filter((id) => !next.organization_ids.includes(id));
      if (removed.length) await revokeMachineOrgScoped(tx, tenantId, clientId, removed);
      if (actor && current.claims_format !== next.claims_format) {
        await insertTenantAudit(tx, {
          tenant_id: tenantId,
          actor,
          action: 'client.claims_format.updated',
          target_type: 'client',
          target_id: clientId,
          before: { claims_format: current.claims_format },
          after: { claims_format: next.claims_format },
        });
      }
      return { row: row!, secret };
    });
    this.cache.delete(`${tenantId}:${clientId}`);
    return result;
  }

  async delete(tenantId: string, clientId: string): Promise<void> {
    await inTenant(this.db, tenantId, async (tx) => {
      if (!(await repo.deleteClient(tx, tenantId, clientId))) throw NotFound(`No client ${clientId} in this tenant.`);
      await revokeEverythingOfClient(tx, tenantId, clientId);
    });
    this.cache.delete(`${tenantId}:${clientId}`);
  }

  /** The client's row, through the short-lived cache (one read serves every question below). */
  private async cachedRow(tenantId: string, clientId: string): Promise<ClientRow | undefined> {
    const key = `${tenantId}:${clientId}`;
    const hit = this.cache.get(key);
    if (hit) return hit.row ?? undefined;
    const row = await inTenant(this.db, tenantId, (tx) => repo.findClient(tx, tenantId, clientId));
    this.cache.set(key, { row: row ?? null });
    return row;
  }

  /** What the tenant's oidc-provider sees: the metadata with the secret's hash as `client_secret` (see token-gateway.ts). */
  async providerMetadata(tenantId: string, clientId: string, issuer: string): Promise<AdapterPayload | undefined> {
    if (clientId === API_TOKENS_CLIENT) return API_TOKENS_CLIENT_METADATA;
    if (clientId === PORTAL_CLIENT) return portalClientMetadata(issuer);
    const row = await this.cachedRow(tenantId, clientId);
    if (!row) return undefined;
    return { ...(row.metadata as AdapterPayload), ...(row.client_secret_hash ? { client_secret: row.client_secret_hash } : {}) } as AdapterPayload;
  }

  /** deny, allow or require: may (must) the client's sign-ins work in an organization. */
  async organizationUsage(tenantId: string, clientId: string): Promise<'deny' | 'allow' | 'require'> {
    return (await this.cachedRow(tenantId, clientId))?.organization_usage ?? 'deny';
  }

  /**
   * Whether the client's sign-ins may work in an organization at all — the one rule behind
   * `organization_usage: "deny"`, asked by every path that puts an organization in a user's token
   * (the authorization request, the refresh_token grant with organization= or team=, the switch
   * API, and the org claims of every later token of a sign-in). The built-in clients do: the
   * portal when its sign-in asks for an organization, API tokens when made with one. Machine
   * clients are granted organizations one by one instead (`organization_ids`, mayActFor).
   */
  async usesOrganizations(tenantId: string, clientId: string): Promise<boolean> {
    if (clientId === PORTAL_CLIENT || clientId === API_TOKENS_CLIENT) return true;
    return (await this.organizationUsage(tenantId, clientId)) !== 'deny';
  }

  /** Whether a machine client was granted `orgId` (client credentials with organization=<id>). */
  async mayActFor(tenantId: string, clientId: string, orgId: string): Promise<boolean> {
    return (await this.cachedRow(tenantId, clientId))?.organization_ids.includes(orgId) ?? false;
  }

  /**
   * The shape of the membership list claim in the client's tokens, read through the same cache as
   * the metadata: a change made here applies to the client's next token (other instances: within
   * the cache's ttl). The built-in clients keep Tessera's own shape.
   */
  async claimsFormat(tenantId: string, clientId: string): Promise<ClaimsFormat> {
    if (clientId === API_TOKENS_CLIENT || clientId === PORTAL_CLIENT) return 'tessera';
    return (await this.cachedRow(tenantId, clientId))?.claims_format ?? 'tessera';
  }

  /** Whether sign-in to this client shows a consent page (first-party apps usually skip it). */
  async requiresConsent(tenantId: string, clientId: string): Promise<boolean> {
    if (clientId === PORTAL_CLIENT) return false;
    return (await this.cachedRow(tenantId, clientId))?.require_consent ?? true;
  }
}
