import { adminApi, createTenant, type TestApp, type TestTenant } from './app.ts';

/** Where a person of the world stands: a role in one of its two organizations. */
export type Placement = { org: 'acme' | 'globex'; role: string };

export interface PortalWorld {
  tenant: TestTenant;
  /** Another tenant, with an organization of its own: what no one of `tenant` may reach. */
  other: TestTenant;
  ids: Record<string, string>;
  acme: string;
  globex: string;
  otherTenantOrg: string;
}

/**
 * The world the portal's access tests share: a tenant with two organizations, each person of
 * `emails` a user there placed as `placements` says, and another tenant with one organization.
 */
export async function portalWorld(
  t: TestApp,
  emails: Record<string, string>,
  placements: Record<string, Placement>,
  password: string,
  names = { acme: 'Acme', globex: 'Globex' },
): Promise<PortalWorld> {
  const tenant = await createTenant(t);
  const other = await createTenant(t);
  const ids: Record<string, string> = {};
  for (const [k, email] of Object.entries(emails)) {
    ids[k] = (await adminApi(t, tenant, 'POST', '/users', { email, password, email_verified: true })).body.id;
  }
  const orgs = {
    acme: (await adminApi(t, tenant, 'POST', '/organizations', { name: names.acme })).body.id as string,
    globex: (await adminApi(t, tenant, 'POST', '/organizations', { name: names.globex })).body.id as string,
  };
  const otherTenantOrg = (await adminApi(t, other, 'POST', '/organizations', { name: 'Elsewhere' })).body.id as string;
  for (const [k, { org, role }] of Object.entries(placements)) {
    const added = await adminApi(t, tenant, 'POST', `/organizations/${orgs[org]}/members`, { user_id: ids[k], role });
    if (added.status !== 201) throw new Error(`placing ${k}: ${added.text}`);
  }
  return { tenant, other, ids, ...orgs, otherTenantOrg };
}
