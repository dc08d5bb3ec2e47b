import type { TenantTx } from '../db/database.ts';
import { audit } from '../orgs/org-rules.ts';
import type { ConnectionRow } from './sso.table.ts';

/** Links in the organization's audit log: which connection, which subject, which account, why. */
export function auditLink(
  tx: TenantTx,
  conn: Pick<ConnectionRow, 'tenant_id' | 'id' | 'org_id' | 'name'>,
  action: 'sso.link_created' | 'sso.link_confirmed' | 'sso.link_refused' | 'sso.link_deferred' | 'sso.link_removed',
  detail: { subject: string; user_id?: string | undefined; reason: string; proven_with_factor?: boolean },
) {
  const target = { type: 'sso_link', id: detail.user_id ?? null };
  return audit(tx, conn.tenant_id, conn.org_id, { type: 'sso_connection', id: conn.id }, action, target, null, {
    connection_id: conn.id,
    connection_name: conn.name,
    ...detail,
  });
}
