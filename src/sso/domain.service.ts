import { promises as dns } from 'node:dns';
import type { Actor } from '../base/actor.ts';
import { Conflict, isUniqueViolation, NotFound } from '../base/errors.ts';
import { randomSecret } from '../crypto/secrets.ts';
import type { Database, TenantTx } from '../db/database.ts';
import { scopedStatement } from '../db/one-shot.ts';
import { inTenant } from '../db/tenant-scope.ts';
import { insertAudit } from '../orgs/org.repo.ts';
import { parseEmail } from '../users/email-address.ts';

/** Looks up TXT records; injectable so tests run offline. */
export type TxtResolver = (name: string) => Promise<string[][]>;
export const systemTxtResolver: TxtResolver = (name) => dns.resolveTxt(name);

const RECORD_PREFIX = '_tessera-verification';
const VALUE_PREFIX = 'tessera-verification=';

export function txtRecordFor(domain: string, token: string) {
  return { type: 'TXT', name: `${RECORD_PREFIX}.${domain}`, value: `${VALUE_PREFIX}${token}` };
}

function present(row: { domain: string; verified: boolean; verification_token: string; verified_at: Date | null; created_at: Date }) {
  return {
    domain: row.domain,
    verified: row.verified,
    txt_record: txtRecordFor(row.domain, row.verification_token),
    verified_at: row.verified_at?.toISOString() ?? null,
    created_at: row.created_at.toISOString(),
  };
}

/**
 * An organization's domains. A domain counts (routes sign-ins to the organization's connection,
 * allows just-in-time accounts) only once verified: by a TXT record the organization publishes,
 * or by a tenant admin's override, which the audit log records. A verified domain belongs to one
 * organization of the tenant.
 */
export class DomainService {
  constructor(
    private readonly db: Database,
    private readonly resolveTxt: TxtResolver,
  ) {}

  private async orgExists(tx: TenantTx, tenantId: string, orgId: string) {
    const org = await tx.selectFrom('organizations').select('id').where('tenant_id', '=', tenantId).where('id', '=', orgId).executeTakeFirst();
    if (!org) throw NotFound(`No organization ${orgId} in this tenant.`);
  }

  private async row(tx: TenantTx, tenantId: string, orgId: string, domain: string) {
    const row = await tx
      .selectFrom('org_domains')
      .selectAll()
      .where('tenant_id', '=', tenantId)
      .where('org_id', '=', orgId)
      .where('domain', '=', domain)
      .executeTakeFirst();
    if (!row) throw NotFound(`The organization has no domain ${domain}.`);
    return row;
  }

  async list(tenantId: string, orgId: string) {
    return inTenant(this.db, tenantId, async (tx) => {
      await this.orgExists(tx, tenantId, orgId);
      const rows = await tx.selectFrom('org_domains').selectAll().where('tenant_id', '=', tenantId).where('org_id', '=', orgId).orderBy('created_at').execute();
      return rows.map(present);
    });
  }

  async add(tenantId: string, actor: Actor, orgId: string, domain: string) {
    try {
      return await inTenant(this.db, tenantId, async (tx) => {
        await this.orgExists(tx, tenantId, orgId);
        const row = await tx
          .insertInto('org_domains')
          .values({ tenant_id: tenantId, org_id: orgId, domain, verification_token: randomSecret(24), verified_at: null })
          .returningAll()
          .executeTakeFirstOrThrow();
        await insertAudit(tx, {
          tenant_id: tenantId,
          org_id: orgId,
          actor,
          action: 'domain.added',
          target_type: 'domain',
          target_id: domain,
          before: null,
          after: present(row),
        });
        return present(row);
      });
    } catch (err) {
      if (isUniqueViolation(err)) throw Conflict('The organization already has this domain.', [{ field: 'domain', message: 'already added' }]);
      throw err;
    }
  }

  /** Checks DNS for the TXT record; verified when found. */
  async verify(tenantId: string, actor: Actor, orgId: string, domain: string) {
    const row = await inTenant(this.db, tenantId, (tx) => this.row(tx, tenantId, orgId, domain));
    if (row.verified) return present(row);
    const expected = txtRecordFor(domain, row.verification_token);
    let records: string[][] = [];
    try {
      records = await this.resolveTxt(expected.name);
    } catch {
      records = [];
    }
    if (!records.some((chunks) => chunks.join('') === expected.value)) {
      throw Conflict(`No TXT record ${expected.name} with the value ${expected.value} was found. Publish it, wait for DNS to update, then try again.`);
    }
    return this.setVerified(tenantId, actor, orgId, domain, true, 'domain.verified');
  }

  /** The tenant admin's override (audited), in either direction. */
  async setVerified(tenantId: string, actor: Actor, orgId: string, domain: string, verified: boolean, action = 'domain.verification_overridden') {
    try {
      return await inTenant(this.db, tenantId, async (tx) => {
        const before = await this.row(tx, tenantId, orgId, domain);
        const after = await tx
          .updateTable('org_domains')
          .set({ verified, verified_at: verified ? new Date() : null })
          .where('tenant_id', '=', tenantId)
          .where('org_id', '=', orgId)
          .where('domain', '=', domain)
          .returningAll()
          .executeTakeFirstOrThrow();
        await insertAudit(tx, {
          tenant_id: tenantId,
          org_id: orgId,
          actor,
          action,
          target_type: 'domain',
          target_id: domain,
          before: present(before),
          after: present(after),
        });
        return present(after);
      });
    } catch (err) {
      if (isUniqueViolation(err))
        throw Conflict('Another organization of this tenant has already verified this domain.', [{ field: 'domain', message: 'verified elsewhere' }]);
      throw err;
    }
  }

  async remove(tenantId: string, actor: Actor, orgId: string, domain: string) {
    await inTenant(this.db, tenantId, async (tx) => {
      const before = await this.row(tx, tenantId, orgId, domain);
      await tx.deleteFrom('org_domains').where('tenant_id', '=', tenantId).where('org_id', '=', orgId).where('domain', '=', domain).execute();
      await insertAudit(tx, {
        tenant_id: tenantId,
        org_id: orgId,
        actor,
        action: 'domain.removed',
        target_type: 'domain',
        target_id: domain,
        before: present(before),
        after: null,
      });
    });
  }

  /**
   * The organization that verified the domain of `email`, if any, and whether it requires SSO.
   * Matched by the email's canonical domain (IDNA ASCII, lower case), as domains are stored, so
   * every spelling of a domain routes alike; an address the email rule refuses routes nowhere
   * (and signs in nowhere either).
   */
  async orgForEmail(tenantId: string, email: string): Promise<{ orgId: string; ssoRequired: boolean } | undefined> {
    const parsed = parseEmail(email);
    if (!parsed.ok) return undefined;
    const { domain } = parsed.email;
    // One statement, one round trip: sign-in asks this at the email step and again at the password.
    const row = await scopedStatement(this.db, tenantId, (tx) =>
      tx
        .selectFrom('org_domains as d')
        .innerJoin('organizations as o', (j) => j.onRef('o.tenant_id', '=', 'd.tenant_id').onRef('o.id', '=', 'd.org_id'))
        .select(['d.org_id', 'o.sso_required'])
        .where('d.tenant_id', '=', tenantId)
        .where('d.domain', '=', domain)
        .where('d.verified', '=', true)
        .executeTakeFirst(),
    );
    return row ? { orgId: row.org_id, ssoRequired: row.sso_required } : undefined;
  }

  async isVerifiedFor(tenantId: string, orgId: string, email: string): Promise<boolean> {
    return (await this.orgForEmail(tenantId, email))?.orgId === orgId;
  }
}
