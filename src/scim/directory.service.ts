import { type Actor, offUntilAnOwnerTurnsItOn } from '../base/actor.ts';
import { NotFound } from '../base/errors.ts';
import { constantTimeEqual, randomSecret, sha256Hex } from '../crypto/secrets.ts';
import type { Database, TenantTx } from '../db/database.ts';
import { scopedStatement } from '../db/one-shot.ts';
import { inTenant } from '../db/tenant-scope.ts';
import { insertAudit } from '../orgs/org.repo.ts';
import { assertGrantable } from '../orgs/org-rules.ts';
import type { DirectoryProvider, DirectoryRow, LastScimRequest, SsoMatch } from './scim.table.ts';
import { recomputeDirectoryRoles } from './scim-provisioning.ts';

export interface DirectoryInput {
  name: string;
  provider?: DirectoryProvider | undefined;
  enabled?: boolean | undefined;
  default_role?: string | undefined;
  group_roles?: Record<string, string> | undefined;
  sso_match?: SsoMatch | undefined;
}

export type DirectoryPatch = Partial<DirectoryInput>;

/** How often, at most, a directory's last request is written (noteRequest). */
const LAST_REQUEST_EVERY_MS = 1000;

/** A bearer token is `scim_` and 43 characters of base64url (256 bits): recognisable in a leak scan. */
const TOKEN_PREFIX = 'scim_';

function newToken() {
  const token = `${TOKEN_PREFIX}${randomSecret(32)}`;
  return { token, token_hash: sha256Hex(token), token_hint: token.slice(-4), token_created_at: new Date() };
}

/** The SCIM base URL a directory is configured with. */
export const scimBaseUrl = (publicUrl: string, tenantSlug: string, directoryId: string) => `${publicUrl}/t/${tenantSlug}/scim/v2/${directoryId}`;

/**
 * An organization's SCIM directories: their settings and bearer tokens. Who may call this is the
 * caller's business (the Admin API is the tenant's; the portal and setup links check owners);
 * what a directory may grant is checked here (never `owner`, nothing beyond the actor's reach).
 * Tokens are shown once, stored as SHA-256, compared in constant time.
 */
export class DirectoryService {
  constructor(
    private readonly db: Database,
    private readonly publicUrl: string,
  ) {}

  present(tenantSlug: string, d: DirectoryRow, counts?: { users: number; groups: number }) {
    return {
      id: d.id,
      org_id: d.org_id,
      name: d.name,
      provider: d.provider,
      enabled: d.enabled,
      default_role: d.default_role,
      group_roles: d.group_roles,
      sso_match: d.sso_match,
      scim_base_url: scimBaseUrl(this.publicUrl, tenantSlug, d.id),
      token: d.token_hash ? { hint: d.token_hint, created_at: d.token_created_at?.toISOString() ?? null } : null,
      last_request: d.last_request,
      ...(counts ? { counts } : {}),
      created_at: d.created_at.toISOString(),
      updated_at: d.updated_at.toISOString(),
    };
  }

  private async row(tx: TenantTx, tenantId: string, orgId: string, directoryId: string) {
    const row = await tx
      .selectFrom('scim_directories')
      .selectAll()
      .where('tenant_id', '=', tenantId)
      .where('org_id', '=', orgId)
      .where('id', '=', directoryId)
      .executeTakeFirst();
    if (!row) throw NotFound(`The organization has no directory ${directoryId}.`);
    return row;
  }

  private async assertOrg(tx: TenantTx, tenantId: string, orgId: string) {
    const org = await tx.selectFrom('organizations').select('id').where('tenant_id', '=', tenantId).where('id', '=', orgId).executeTakeFirst();
    if (!org) throw NotFound(`No organization ${orgId} in this tenant.`);
  }

  private assertGrants(tx: TenantTx, tenantId: string, orgId: string, actor: Actor, input: DirectoryPatch) {
    return assertGrantable(tx, tenantId, orgId, actor, [
      ...(input.default_role !== undefined ? [{ field: 'default_role', role: input.default_role }] : []),
      ...Object.entries(input.group_roles ?? {}).map(([group, role]) => ({ field: `group_roles.${group}`, role })),
    ]);
  }

  /** How many users and groups each directory holds. */
  private async counts(tx: TenantTx, tenantId: string, ids: string[]) {
    const out = new Map<string, { users: number; groups: number }>(ids.map((id) => [id, { users: 0, groups: 0 }]));
    if (!ids.length) return out;
    const users = await tx
      .selectFrom('scim_users')
      .select(['directory_id', (eb) => eb.fn.countAll<string>().as('n')])
      .where('tenant_id', '=', tenantId)
      .where('directory_id', 'in', ids)
      .where('active', '=', true)
      .groupBy('directory_id')
      .execute();
    const groups = await tx
      .selectFrom('scim_groups')
      .select(['directory_id', (eb) => eb.fn.countAll<string>().as('n')])
      .where('tenant_id', '=', tenantId)
      .where('directory_id', 'in', ids)
      .groupBy('directory_id')
      .execute();
    for (const u of users) out.get(u.directory_id)!.users = Number(u.n);
    for (const g of groups) out.get(g.directory_id)!.groups = Number(g.n);
    return out;
  }

  async list(tenantId: string, tenantSlug: string, orgId: string) {
    return inTenant(this.db, tenantId, async (tx) => {
      await this.assertOrg(tx, tenantId, orgId);
      const rows = await tx
        .selectFrom('scim_directories')
        .selectAll()
        .where('tenant_id', '=', tenantId)
        .where('org_id', '=', orgId)
        .orderBy('created_at')
        .orderBy('id')
        .execute();
      const counts = await this.counts(
        tx,
        tenantId,
        rows.map((r) => r.id),
      );
      return rows.map((r) => this.present(tenantSlug, r, counts.get(r.id)));
    });
  }

  async get(tenantId: string, tenantSlug: string, orgId: string, directoryId: string) {
    return inTenant(this.db, tenantId, async (tx) => {
      const row = await this.row(tx, tenantId, orgId, directoryId);
      return this.present(tenantSlug, row, (await this.counts(tx, tenantId, [row.id])).get(row.id));
    });
  }

  /** A new directory and its first bearer token (the only time it is shown). */
  async create(tenantId: string, tenantSlug: string, actor: Actor, orgId: string, input: DirectoryInput) {
    return inTenant(this.db, tenantId, async (tx) => {
      await this.assertOrg(tx, tenantId, orgId);
      await this.assertGrants(tx, tenantId, orgId, actor, input);
      const { token, ...stored } = newToken();
      const row = await tx
        .insertInto('scim_directories')
        .values({
          tenant_id: tenantId,
          org_id: orgId,
          name: input.name,
          ...(input.provider ? { provider: input.provider } : {}),
          ...(offUntilAnOwnerTurnsItOn(actor) ? { enabled: false } : input.enabled !== undefined ? { enabled: input.enabled } : {}),
          ...(input.default_role ? { default_role: input.default_role } : {}),
          group_roles: JSON.stringify(input.group_roles ?? {}),
          ...(input.sso_match ? { sso_match: input.sso_match } : {}),
          ...stored,
          last_request: null,
        })
        .returningAll()
        .executeTakeFirstOrThrow();
      const shown = this.present(tenantSlug, row, { users: 0, groups: 0 });
      await this.audit(tx, actor, row, 'directory.created', null, shown);
      return { ...shown, bearer_token: token };
    });
  }

  async update(tenantId: string, tenantSlug: string, actor: Actor, orgId: string, directoryId: string, patch: DirectoryPatch) {
    return inTenant(this.db, tenantId, async (tx) => {
      const before = await this.row(tx, tenantId, orgId, directoryId);
      await this.assertGrants(tx, tenantId, orgId, actor, patch);
      const after = await tx
        .updateTable('scim_directories')
        .set({
          ...(patch.name !== undefined ? { name: patch.name } : {}),
          ...(patch.provider !== undefined ? { provider: patch.provider } : {}),
          ...(offUntilAnOwnerTurnsItOn(actor) ? { enabled: false } : patch.enabled !== undefined ? { enabled: patch.enabled } : {}),
          ...(patch.default_role !== undefined ? { default_role: patch.default_role } : {}),
          ...(patch.group_roles !== undefined ? { group_roles: JSON.stringify(patch.group_roles) } : {}),
          ...(patch.sso_match !== undefined ? { sso_match: patch.sso_match } : {}),
          updated_at: new Date(),
        })
        .where('tenant_id', '=', tenantId)
        .where('id', '=', directoryId)
        .returningAll()
        .executeTakeFirstOrThrow();
      await this.audit(tx, actor, after, 'directory.updated', this.present(tenantSlug, before), this.present(tenantSlug, after));
      // The roles of the directory's people follow its mapping at once, not at their next change.
      if (patch.group_roles !== undefined || patch.default_role !== undefined) await recomputeDirectoryRoles(tx, after);
      return this.present(tenantSlug, after, (await this.counts(tx, tenantId, [after.id])).get(after.id));
    });
  }

  /**
   * Ends a directory: its token stops working at once and its users and groups are forgotten. The
   * accounts and memberships it made stay: removing people is a decision of its own.
   */
  async delete(tenantId: string, tenantSlug: string, actor: Actor, orgId: string, directoryId: string) {
    await inTenant(this.db, tenantId, async (tx) => {
      const before = await this.row(tx, tenantId, orgId, directoryId);
      await tx.deleteFrom('scim_directories').where('tenant_id', '=', tenantId).where('id', '=', directoryId).execute();
      await this.audit(tx, actor, before, 'directory.deleted', this.present(tenantSlug, before), null);
    });
  }

  /** A new bearer token; the previous one stops working at once. */
  async rotateToken(tenantId: string, tenantSlug: string, actor: Actor, orgId: string, directoryId: string) {
    return inTenant(this.db, tenantId, async (tx) => {
      const before = await this.row(tx, tenantId, orgId, directoryId);
      const { token, ...stored } = newToken();
      // A new token through a setup link puts the directory in the link holder's hands: off until
      // an owner turns it on, like a directory the link made.
      const after = await tx
        .updateTable('scim_directories')
        .set({ ...stored, ...(offUntilAnOwnerTurnsItOn(actor) ? { enabled: false } : {}), updated_at: new Date() })
        .where('tenant_id', '=', tenantId)
        .where('id', '=', directoryId)
        .returningAll()
        .executeTakeFirstOrThrow();
      await this.audit(tx, actor, after, 'directory.token_rotated', this.present(tenantSlug, before), this.present(tenantSlug, after));
      return { ...this.present(tenantSlug, after), bearer_token: token };
    });
  }

  /** No token works until the next rotation. */
  async revokeToken(tenantId: string, tenantSlug: string, actor: Actor, orgId: string, directoryId: string) {
    return inTenant(this.db, tenantId, async (tx) => {
      const before = await this.row(tx, tenantId, orgId, directoryId);
      const after = await tx
        .updateTable('scim_directories')
        .set({ token_hash: null, token_hint: null, token_created_at: null, updated_at: new Date() })
        .where('tenant_id', '=', tenantId)
        .where('id', '=', directoryId)
        .returningAll()
        .executeTakeFirstOrThrow();
      await this.audit(tx, actor, after, 'directory.token_revoked', this.present(tenantSlug, before), this.present(tenantSlug, after));
      return this.present(tenantSlug, after);
    });
  }

  /**
   * The directory a SCIM request's bearer token opens, or undefined — the same answer for an
   * unknown directory and a wrong, revoked or missing token, so the answer tells a caller without
   * the token nothing. A directory that is turned off is returned: only its token's holder learns
   * that it is off (the SCIM routes refuse it, saying who turns it on).
   */
  async authenticate(tenantId: string, directoryId: string, bearer: string | undefined): Promise<DirectoryRow | undefined> {
    const presented = sha256Hex(bearer ?? '');
    // One statement, one round trip (db/one-shot.ts): every SCIM request starts here.
    const row = await scopedStatement(this.db, tenantId, (tx) =>
      tx.selectFrom('scim_directories').selectAll().where('tenant_id', '=', tenantId).where('id', '=', directoryId).executeTakeFirst(),
    );
    // Compared even when there is nothing to compare with, so the time taken says nothing either.
    const ok = constantTimeEqual(presented, row?.token_hash ?? sha256Hex('no token'));
    return ok && bearer && row?.token_hash ? row : undefined;
  }

  /**
   * Notes a request as the directory's last, for the portal. Written after the answer, not before
   * it, so a directory's request never waits for a second commit; and at most once a second per
   * directory (the first at once, then the latest of each second), so a burst — a first sync
   * pushes thousands — costs the directory's row a write a second, not one per request.
   */
  noteRequest(tenantId: string, directoryId: string, request: LastScimRequest, onError: (err: unknown) => void): void {
    this.unwritten.set(directoryId, { tenantId, request });
    if (!this.writing.has(directoryId)) void this.writeLastRequests(directoryId, onError);
  }

  private readonly unwritten = new Map<string, { tenantId: string; request: LastScimRequest }>();
  private readonly writing = new Set<string>();

  private async writeLastRequests(directoryId: string, onError: (err: unknown) => void) {
    this.writing.add(directoryId);
    try {
      for (let next = this.unwritten.get(directoryId); next; next = this.unwritten.get(directoryId)) {
        this.unwritten.delete(directoryId);
        await this.recordRequest(next.tenantId, directoryId, next.request).catch(onError);
        await new Promise((resolve) => setTimeout(resolve, LAST_REQUEST_EVERY_MS).unref());
      }
    } finally {
      this.writing.delete(directoryId);
    }
  }

  /** What the portal shows as the directory's last request. */
  async recordRequest(tenantId: string, directoryId: string, request: LastScimRequest) {
    await scopedStatement(this.db, tenantId, (tx) =>
      tx
        .updateTable('scim_directories')
        .set({ last_request: JSON.stringify(request) })
        .where('tenant_id', '=', tenantId)
        .where('id', '=', directoryId)
        .execute(),
    );
  }

  private audit(tx: TenantTx, actor: Actor, row: DirectoryRow, action: string, before: unknown, after: unknown) {
    return insertAudit(tx, {
      tenant_id: row.tenant_id,
      org_id: row.org_id,
      actor,
      action,
      target_type: 'directory',
      target_id: row.id,
      before,
      after,
    });
  }

  /** The groups a directory has pushed, by name, with how many of its users each holds (the portal's group mapping). */
  async groups(tenantId: string, orgId: string, directoryId: string) {
    return inTenant(this.db, tenantId, async (tx) => {
      await this.row(tx, tenantId, orgId, directoryId);
      const rows = await tx
        .selectFrom('scim_groups as g')
        .leftJoin('scim_group_members as m', (j) => j.onRef('m.tenant_id', '=', 'g.tenant_id').onRef('m.group_id', '=', 'g.id'))
        .select(['g.id', 'g.display_name', (eb) => eb.fn.count<string>('m.scim_user_id').as('members')])
        .where('g.tenant_id', '=', tenantId)
        .where('g.directory_id', '=', directoryId)
        .groupBy(['g.id', 'g.display_name'])
        .orderBy('g.display_name')
        .orderBy('g.id')
        .limit(GROUPS_SHOWN)
        .execute();
      return rows.map((g) => ({ id: g.id, display_name: g.display_name, members: Number(g.members) }));
    });
  }
}

/**
 * The mapping page lists at most this many pushed groups (a mapping holds at most 100; the rest are
 * mapped by name), so its form stays within the portal's 16 kB form body.
 */
export const GROUPS_SHOWN = 200;
