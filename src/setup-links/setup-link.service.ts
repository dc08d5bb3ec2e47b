import { randomUUID } from 'node:crypto';
import type { Actor } from '../base/actor.ts';
import { NotFound } from '../base/errors.ts';
import { constantTimeEqual, randomSecret, sha256Hex } from '../crypto/secrets.ts';
import type { Database, TenantTx } from '../db/database.ts';
import { inTenant } from '../db/tenant-scope.ts';
import { findMember, findOrg, insertAudit } from '../orgs/org.repo.ts';
import type { SetupFeature, SetupLinkRow, SetupTest } from './setup-link.table.ts';

/** How long a link lasts unless its maker says otherwise, and at most. */
export const SETUP_LINK_DEFAULT_TTL_S = 7 * 86_400;
export const SETUP_LINK_MIN_TTL_S = 5 * 60;
export const SETUP_LINK_MAX_TTL_S = 30 * 86_400;

/** The secret of a link: `stl_` and 43 characters of base64url (256 bits), recognisable in a leak scan. */
const SECRET_PREFIX = 'stl_';
export const looksLikeSetupSecret = (s: string) => /^stl_[A-Za-z0-9_-]{43}$/.test(s);

export type SetupLinkStatus = 'active' | 'opened' | 'expired' | 'revoked';

/** Revoked wins over expired, expired over opened: what the link does now, in one word. */
export function statusOf(row: Pick<SetupLinkRow, 'revoked_at' | 'expires_at' | 'opened_at'>, now = Date.now()): SetupLinkStatus {
  if (row.revoked_at) return 'revoked';
  if (row.expires_at.getTime() <= now) return 'expired';
  return row.opened_at ? 'opened' : 'active';
}

export const setupLinkActor = (id: string): Actor => ({ type: 'setup_link', id });

/**
 * What a browser's request with a link's secret may do. `ok`: the link is live, for its
 * organization only, in the browser it is bound to (`bound`: a new binding's cookie value, the
 * first time). Anything else changes nothing.
 */
export type SetupEntry =
  | { kind: 'ok'; link: SetupLinkRow; orgName: string; bound?: string }
  | { kind: 'unknown' }
  | { kind: 'expired' | 'revoked'; orgName: string }
  /** Made by a person who is no longer an owner of the organization (nor a tenant administrator). */
  | { kind: 'maker_lost_rights'; orgName: string }
  | { kind: 'other_browser'; orgName: string };

/**
 * Setup links: an owner (or the tenant) hands the customer's IT admin a link that sets up the
 * organization's domains, SSO connection or directory sync — what its features say, for its
 * organization only, without a tenant account. The secret is shown once and stored as SHA-256;
 * the first browser to open the link is bound to it; every change made through it is audited
 * with the link as the actor, and that actor never grants `owner` (org-rules.ts).
 */
export class SetupLinkService {
  constructor(
    private readonly db: Database,
    private readonly publicUrl: string,
  ) {}

  present(row: SetupLinkRow) {
    return {
      id: row.id,
      org_id: row.org_id,
      features: row.features,
      status: statusOf(row),
      expires_at: row.expires_at.toISOString(),
      created_by: row.created_by,
      created_at: row.created_at.toISOString(),
      opened_at: row.opened_at?.toISOString() ?? null,
      last_used_at: row.last_used_at?.toISOString() ?? null,
      revoked_at: row.revoked_at?.toISOString() ?? null,
    };
  }

  /** The page a link opens: `/t/<slug>/setup/<secret>`. */
  pageUrl(tenantSlug: string, secret: string) {
    return `${this.publicUrl}/t/${tenantSlug}/setup/${secret}`;
  }

  private async orgExists(tx: TenantTx, tenantId: string, orgId: string) {
    const org = await findOrg(tx, tenantId, orgId);
    if (!org) throw NotFound(`No organization ${orgId} in this tenant.`);
    return org;
  }

  private async row(tx: TenantTx, tenantId: string, orgId: string, id: string) {
    const row = await tx
      .selectFrom('setup_links')
      .selectAll()
      .where('tenant_id', '=', tenantId)
      .where('org_id', '=', orgId)
      .where('id', '=', id)
      .executeTakeFirst();
    if (!row) throw NotFound('No such setup link in this organization.');
    return row;
  }

  /** A new link; its `url` holds the secret and is shown only in this answer. */
  async create(tenantId: string, tenantSlug: string, actor: Actor, orgId: string, input: { features: SetupFeature[]; expires_in?: number | undefined }) {
    const secret = `${SECRET_PREFIX}${randomSecret(32)}`;
    const features = [...new Set(input.features)];
    const ttl = input.expires_in ?? SETUP_LINK_DEFAULT_TTL_S;
    return inTenant(this.db, tenantId, async (tx) => {
      await this.orgExists(tx, tenantId, orgId);
      const row = await tx
        .insertInto('setup_links')
        .values({
          tenant_id: tenantId,
          org_id: orgId,
          token_hash: sha256Hex(secret),
          features,
          expires_at: new Date(Date.now() + ttl * 1000),
          created_by: JSON.stringify(actor),
          revoked_at: null,
          browser_hash: null,
          opened_at: null,
          last_used_at: null,
          connection_id: null,
          last_test: null,
        })
        .returningAll()
        .executeTakeFirstOrThrow();
      const shown = this.present(row);
      await this.audit(tx, actor, row, 'setup_link.created', null, shown);
      return { ...shown, url: this.pageUrl(tenantSlug, secret) };
    });
  }

  async list(tenantId: string, orgId: string) {
    return inTenant(this.db, tenantId, async (tx) => {
      await this.orgExists(tx, tenantId, orgId);
      const rows = await tx
        .selectFrom('setup_links')
        .selectAll()
        .where('tenant_id', '=', tenantId)
        .where('org_id', '=', orgId)
        .orderBy('created_at', 'desc')
        .orderBy('id')
        .execute();
      return rows.map((r) => this.present(r));
    });
  }

  async get(tenantId: string, orgId: string, id: string) {
    return this.present(await inTenant(this.db, tenantId, (tx) => this.row(tx, tenantId, orgId, id)));
  }

  /** The link stops working at once, in the browser it is bound to too. Revoking it again changes nothing. */
  async revoke(tenantId: string, actor: Actor, orgId: string, id: string) {
    return inTenant(this.db, tenantId, async (tx) => {
      const before = await this.row(tx, tenantId, orgId, id);
      if (before.revoked_at) return this.present(before);
      const after = await tx
        .updateTable('setup_links')
        .set({ revoked_at: new Date() })
        .where('tenant_id', '=', tenantId)
        .where('id', '=', id)
        .returningAll()
        .executeTakeFirstOrThrow();
      await this.audit(tx, actor, after, 'setup_link.revoked', this.present(before), this.present(after));
      return this.present(after);
    });
  }

  /**
   * The link of `secret` as this browser may use it. The first browser that opens it (`bind`:
   * a page view, not a form post) is bound to it: the cookie value returned in `bound` is kept
   * only as its SHA-256. Two browsers opening it at once: one binding wins, in the database.
   */
  async enter(tenantId: string, secret: string, browserValue: string | undefined, opts: { bind: boolean }): Promise<SetupEntry> {
    if (!looksLikeSetupSecret(secret)) return { kind: 'unknown' };
    return inTenant(this.db, tenantId, async (tx): Promise<SetupEntry> => {
      const link = await tx
        .selectFrom('setup_links')
        .selectAll()
        .where('tenant_id', '=', tenantId)
        .where('token_hash', '=', sha256Hex(secret))
        .executeTakeFirst();
      if (!link) return { kind: 'unknown' };
      const org = await findOrg(tx, tenantId, link.org_id);
      const orgName = org?.name ?? 'the organization';
      const status = statusOf(link);
      if (status === 'revoked' || status === 'expired') return { kind: status, orgName };
      if (!(await makerMayStillSetUp(tx, tenantId, link))) return { kind: 'maker_lost_rights', orgName };
      if (link.browser_hash) {
        // Compared even without a cookie, so the time taken says nothing about the binding.
        const same = constantTimeEqual(sha256Hex(browserValue ?? ''), link.browser_hash);
        return same && browserValue ? { kind: 'ok', link, orgName } : { kind: 'other_browser', orgName };
      }
      if (!opts.bind) return { kind: 'other_browser', orgName };
      const value = randomSecret(32);
      const bound = await tx
        .updateTable('setup_links')
        .set({ browser_hash: sha256Hex(value), opened_at: new Date(), last_used_at: new Date() })
        .where('tenant_id', '=', tenantId)
        .where('id', '=', link.id)
        .where('browser_hash', 'is', null)
        .returningAll()
        .executeTakeFirst();
      if (!bound) return { kind: 'other_browser', orgName };
      await this.audit(tx, setupLinkActor(link.id), bound, 'setup_link.opened', null, this.present(bound));
      return { kind: 'ok', link: bound, orgName, bound: value };
    });
  }

  /** When the link was last used to change something (the owner's list shows it). */
  async touch(tenantId: string, id: string) {
    await inTenant(this.db, tenantId, (tx) =>
      tx.updateTable('setup_links').set({ last_used_at: new Date() }).where('tenant_id', '=', tenantId).where('id', '=', id).execute(),
    );
  }

  /**
   * The id of the connection the link sets up: the one it chose before, else the organization's
   * first connection, else a new id kept on the link (the connection is created with it later,
   * so the IdP can be given its URLs first).
   */
  async connectionIdFor(tenantId: string, link: SetupLinkRow): Promise<{ id: string; exists: boolean }> {
    return inTenant(this.db, tenantId, async (tx) => {
      const existing = async (id: string) =>
        tx
          .selectFrom('sso_connections')
          .select('id')
          .where('tenant_id', '=', tenantId)
          .where('org_id', '=', link.org_id)
          .where('id', '=', id)
          .executeTakeFirst();
      if (link.connection_id) return { id: link.connection_id, exists: Boolean(await existing(link.connection_id)) };
      const first = await tx
        .selectFrom('sso_connections')
        .select('id')
        .where('tenant_id', '=', tenantId)
        .where('org_id', '=', link.org_id)
        .orderBy('created_at')
        .orderBy('id')
        .executeTakeFirst();
      const id = first?.id ?? randomUUID();
      const kept = await tx
        .updateTable('setup_links')
        .set({ connection_id: id })
        .where('tenant_id', '=', tenantId)
        .where('id', '=', link.id)
        .where('connection_id', 'is', null)
        .returning('connection_id')
        .executeTakeFirst();
      // Another request of the same browser chose first: use its choice.
      const chosen =
        kept?.connection_id ??
        (await tx.selectFrom('setup_links').select('connection_id').where('tenant_id', '=', tenantId).where('id', '=', link.id).executeTakeFirstOrThrow())
          .connection_id!;
      return { id: chosen, exists: Boolean(await existing(chosen)) };
    });
  }

  /** A test sign-in begins (the answer replaces whatever the previous test found). */
  async testStarted(tenantId: string, linkId: string, connectionId: string) {
    await this.setTest(tenantId, linkId, { started_at: new Date().toISOString(), connection_id: connectionId });
  }

  /** The IdP's answer to the link's test sign-in, checked; or why it was refused. */
  async testFinished(tenantId: string, linkId: string, result: Omit<SetupTest, 'started_at' | 'connection_id' | 'finished_at'>) {
    await inTenant(this.db, tenantId, async (tx) => {
      const link = await tx.selectFrom('setup_links').select('last_test').where('tenant_id', '=', tenantId).where('id', '=', linkId).executeTakeFirst();
      if (!link?.last_test) return;
      const next: SetupTest = { ...link.last_test, ...result, finished_at: new Date().toISOString() };
      await tx
        .updateTable('setup_links')
        .set({ last_test: JSON.stringify(next) })
        .where('tenant_id', '=', tenantId)
        .where('id', '=', linkId)
        .execute();
    });
  }

  private async setTest(tenantId: string, linkId: string, test: SetupTest) {
    await inTenant(this.db, tenantId, (tx) =>
      tx
        .updateTable('setup_links')
        .set({ last_test: JSON.stringify(test), last_used_at: new Date() })
        .where('tenant_id', '=', tenantId)
        .where('id', '=', linkId)
        .execute(),
    );
  }

  private audit(tx: TenantTx, actor: Actor, row: SetupLinkRow, action: string, before: unknown, after: unknown) {
    return insertAudit(tx, { tenant_id: row.tenant_id, org_id: row.org_id, actor, action, target_type: 'setup_link', target_id: row.id, before, after });
  }
}

/**
 * A link carries its maker's power to set the organization up: made by a person, it works only
 * while they still hold that power — an owner of the organization, or a tenant administrator. (A
 * link made with the Admin API's key or a machine client is the tenant's own.)
 */
async function makerMayStillSetUp(tx: TenantTx, tenantId: string, link: SetupLinkRow): Promise<boolean> {
  const maker = link.created_by as { type?: string; id?: string };
  if (maker.type !== 'user' || typeof maker.id !== 'string') return true;
  const user = await tx.selectFrom('users').select('tenant_admin').where('tenant_id', '=', tenantId).where('id', '=', maker.id).executeTakeFirst();
  if (!user) return false;
  if (user.tenant_admin) return true;
  return (await findMember(tx, tenantId, link.org_id, maker.id))?.roles.includes('owner') ?? false;
}
