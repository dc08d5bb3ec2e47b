import type { TenantTx } from '../db/database.ts';
import { auditLink } from './link-audit.ts';

/**
 * Removes the account's SSO links that were proven by its password (`linked_by = 'password'`),
 * with or without a code, in the caller's transaction: a password change or an administrator's
 * factor reset takes them from whoever knew the old password (or held the old device). The
 * person proves the link again at their next sign-in through the organization. Links the
 * organization made, and those proven by the account's mailbox, stay. Each removal is written to
 * the organization's audit log like any other link change.
 */
export async function removePasswordProvenLinks(tx: TenantTx, tenantId: string, userId: string, why: string): Promise<number> {
  const removed = await tx
    .deleteFrom('sso_identities')
    .where('tenant_id', '=', tenantId)
    .where('user_id', '=', userId)
    .where('linked_by', '=', 'password')
    .returning(['connection_id', 'subject'])
    .execute();
  for (const { connection_id, subject } of removed) {
    const conn = await tx
      .selectFrom('sso_connections')
      .select(['tenant_id', 'id', 'org_id', 'name'])
      .where('tenant_id', '=', tenantId)
      .where('id', '=', connection_id)
      .executeTakeFirstOrThrow();
    await auditLink(tx, conn, 'sso.link_removed', { subject, user_id: userId, reason: why });
  }
  return removed.length;
}
