import { sql } from 'kysely';
import { type Missing, type PolicyVerdict, type SessionFacts, SIGN_IN_METHODS, sessionMeets, strictest } from '../auth-policy/policy.ts';
import { isUuid } from '../base/ids.ts';
import { forget, readOnce } from '../base/request-reads.ts';
import type { Database, TenantTx } from '../db/database.ts';
import { scopedStatement } from '../db/one-shot.ts';
import { inTenant } from '../db/tenant-scope.ts';
import { revokeClientCredentialsOfOrg, revokeGrant } from '../oidc-store/oidc-payload.repo.ts';
import type { TenantMfaMode } from '../tenants/settings.ts';
import { memberRoleNames } from './org.repo.ts';
import { isWorking, WORKING_STATUSES } from './org.table.ts';
import { mfaRequiredSince, orgAuthPolicy } from './org-auth-policy.ts';

/** The request-reads key of a grant's working organization (see base/request-reads.ts). */
export const grantOrgKey = (tenantId: string, grantId: string) => `grantOrg:${tenantId}:${grantId}`;

export interface MembershipClaim {
  id: string;
  slug: string;
  name: string;
  roles: string[];
}

/** The claims of an org-scoped token. */
export interface OrgClaims {
  org_id: string;
  org_slug: string;
  org_roles: string[];
  org_permissions: string[];
}

/** A team of the token's organization the person is in, as `org_teams` lists it. */
export interface TeamMembershipClaim {
  id: string;
  slug: string;
  name: string;
  roles: string[];
}

/**
 * What an org-scoped token says about teams: every team of its organization the person is in
 * and, for a team-scoped token, which team it works in with the roles and permissions there.
 */
export interface TeamClaims {
  org_teams: TeamMembershipClaim[];
  team_id?: string;
  team_slug?: string;
  team_roles?: string[];
  team_permissions?: string[];
}

/**
 * How the session asking to work in an organization signed in, for its authentication policy.
 * `viaSsoOrg`: the organization whose SSO the sign-in came through, null for a sign-in that did
 * not use SSO. Left out, it is read from what the sign-in recorded (`recordSsoSignIn`) for
 * `grantId` and the facts' `authTime`; without those it is not known (see SessionFacts.viaOrgSso).
 */
export interface PolicyCheck {
  facts: Omit<SessionFacts, 'viaOrgSso'>;
  tenantMfa: TenantMfaMode;
  viaSsoOrg?: string | null | undefined;
  /** The grant (sign-in) the facts belong to. */
  grantId?: string | undefined;
}

/**
 * Why a user can't work in an organization (one message per reason, for OAuth errors): not a
 * member (or no such organization), or the organization is not working — suspended, waiting for
 * approval (`pending`) or `rejected` (org.table.ts `isWorking`).
 */
export type OrgRefusal = 'not_found_or_not_member' | 'suspended' | 'pending' | 'rejected';
export type StatusRefusal = Exclude<OrgRefusal, 'not_found_or_not_member'>;

/** The refusal an organization's status makes, or undefined when it works. */
export function statusRefusal(status: string): StatusRefusal | undefined {
  if (isWorking(status)) return undefined;
  return status === 'pending' || status === 'rejected' ? status : 'suspended';
}

/** What every path that refuses a token for an organization's status says (`org`: how the request named it, if it did). */
export function statusRefusalText(refused: StatusRefusal, org?: string): string {
  const subject = org ? `The organization ${org}` : 'That organization';
  if (refused === 'pending') return `${subject} is waiting for approval by an administrator; it works once approved.`;
  if (refused === 'rejected') return `${subject} was not approved.`;
  return `${subject} is suspended.`;
}

/** The organization an org-scoped machine (client-credentials) token works in, from its stored payload. */
export function machineTokenOrg(payload: Record<string, unknown>): string | undefined {
  const extra = payload.extra as { org_id?: unknown } | undefined;
  return typeof extra?.org_id === 'string' ? extra.org_id : undefined;
}

/**
 * Whether an org-scoped machine token still works in its organization: the organization still
 * exists and works (active or trialing) and the client is still granted it (`organization_ids`)
 * — the conditions it was issued under, judged again wherever the token is checked
 * (introspection, Tessera's own APIs). Such tokens are revoked when those conditions end
 * (revokeOrgScoped, revokeMachineOrgScoped); this check stays for what revocation can't see: a
 * token issued while the change was committing, or by an instance whose client cache still had
 * the organization granted. It costs nothing extra at introspection (read in the token's own
 * statement, token-prefetch.ts). `machineOrg`: what the token's lookup read now; null when the
 * organization is gone.
 */
export function machineOrgStillWorks(machineOrg: { status: string; granted: boolean } | null | undefined): boolean {
  return !!machineOrg && machineOrg.granted && isWorking(machineOrg.status);
}

/**
 * What tokens say about organizations, and the rules behind it, in one place: which
 * organization a sign-in works in, whether the user may (a member of an organization that is
 * not suspended), and what the claims are. Used by the provider (claims, extra token claims,
 * the organization prompt), the switch endpoints and the API tokens.
 */
export class OrgTokens {
  constructor(private readonly db: Database) {}

  /**
   * Every organization the user is in and that works (active or trialing), with their roles;
   * with `includeNotWorking`, those that don't too (suspended, pending, rejected), for listing.
   */
  async memberships(
    tenantId: string,
    userId: string,
    opts: { includeNotWorking?: boolean } = {},
  ): Promise<Array<MembershipClaim & { status: string; status_reason: string | null }>> {
    return inTenant(this.db, tenantId, async (tx) => {
      let qb = tx
        .selectFrom('org_members as m')
        .innerJoin('organizations as o', (j) => j.onRef('o.tenant_id', '=', 'm.tenant_id').onRef('o.id', '=', 'm.org_id'))
        .select([
          'o.id',
          'o.slug',
          'o.name',
          'o.status',
          'o.status_reason',
          memberRoleNames(sql.ref('m.tenant_id'), sql.ref('m.org_id'), sql.ref('m.user_id')).as('roles'),
        ])
        .where('m.tenant_id', '=', tenantId)
        .where('m.user_id', '=', userId);
      if (!opts.includeNotWorking) qb = qb.where('o.status', 'in', [...WORKING_STATUSES]);
      return qb.orderBy('o.name').orderBy('o.id').execute();
    });
  }

  /** An organization of the tenant by id or slug (with what its sign-in page shows of it). */
  async findOrg(tenantId: string, idOrSlug: string) {
    if (!idOrSlug || idOrSlug.length > 100) return undefined;
    return inTenant(this.db, tenantId, (tx) =>
      tx
        .selectFrom('organizations')
        .select(['id', 'slug', 'name', 'status', 'logo_url', 'sso_required', 'auth_policy'])
        .where('tenant_id', '=', tenantId)
        .where(isUuid(idOrSlug) ? 'id' : 'slug', '=', idOrSlug)
        .executeTakeFirst(),
    );
  }

  /** The org claims for `userId` in `orgIdOrSlug`, or why not — one statement. */
  async claimsFor(
    tenantId: string,
    userId: string,
    orgIdOrSlug: string,
    signIn?: PolicyCheck,
  ): Promise<{ claims: OrgClaims } | { refused: OrgRefusal } | { refused: 'policy'; missing: Missing; detail: string }> {
    if (!orgIdOrSlug || orgIdOrSlug.length > 100) return { refused: 'not_found_or_not_member' };
    const [row] = await this.orgsForSignIn(tenantId, userId, { idOrSlug: orgIdOrSlug }, signIn);
    if (!row?.member) return { refused: 'not_found_or_not_member' };
    const refused = statusRefusal(row.status);
    if (refused) return { refused };
    const verdict = signIn && judge(row, signIn);
    if (verdict && !verdict.ok) return { refused: 'policy', missing: verdict.missing, detail: verdict.detail };
    return { claims: { org_id: row.id, org_slug: row.slug, org_roles: row.roles, org_permissions: row.permissions } };
  }

  /**
   * Whether a sign-in meets the policies of `orgIds` — the tokens' rule (claimsFor), for the
   * portal's pages of an organization, where a tenant admin acts in organizations they are not a
   * member of and suspended organizations are still shown. Organizations that do not exist, or
   * (unless `evenIfNotMember`) of which the user is not a member, are left out of the answer.
   */
  async judgeSignIn(
    tenantId: string,
    userId: string,
    orgIds: readonly string[],
    signIn: PolicyCheck,
    opts: { evenIfNotMember?: boolean } = {},
  ): Promise<Map<string, PolicyVerdict>> {
    const ids = orgIds.filter(isUuid);
    const verdicts = new Map<string, PolicyVerdict>();
    if (ids.length === 0) return verdicts;
    for (const row of await this.orgsForSignIn(tenantId, userId, { ids }, signIn)) {
      if (row.member || opts.evenIfNotMember) verdicts.set(row.id, judge(row, signIn));
    }
    return verdicts;
  }

  /**
   * The organizations (one by id or slug, or several by id) with what the user is there and what
   * their policy needs to judge `signIn` — one statement. `member` is null for a non-member.
   */
  private async orgsForSignIn(tenantId: string, userId: string, which: { idOrSlug: string } | { ids: readonly string[] }, signIn?: PolicyCheck) {
    // Which organization's SSO the sign-in came through, read in the same statement when the
    // caller did not say and the sign-in is known by its grant and time.
    const authTime = signIn?.facts.authTime;
    const lookUpSso = signIn?.viaSsoOrg === undefined && signIn?.grantId !== undefined && authTime !== undefined && Number.isSafeInteger(authTime);
    // One statement, one round trip (db/one-shot.ts): every org-scoped token is judged here.
    const rows = await scopedStatement(this.db, tenantId, (tx) => {
      let qb = tx
        .selectFrom('organizations as o')
        .leftJoin('org_members as m', (j) => j.onRef('m.tenant_id', '=', 'o.tenant_id').onRef('m.org_id', '=', 'o.id').on('m.user_id', '=', userId))
        .select([
          'o.id',
          'o.slug',
          'o.status',
          'o.sso_required',
          'o.auth_policy',
          'm.user_id as member',
          memberRoleNames(sql.ref('o.tenant_id'), sql.ref('o.id'), sql`${userId}::uuid`).as('roles'),
          sql<string[]>`coalesce((
            select array_agg(distinct p order by p) from org_member_roles mr
            join org_roles r on r.tenant_id = mr.tenant_id and r.org_id = mr.org_id and r.id = mr.role_id -- see memberRoleNames
            cross join lateral unnest(r.permissions) p
            where mr.tenant_id = o.tenant_id and mr.org_id = o.id and mr.user_id = ${userId}), '{}')`.as('permissions'),
          // Whether the member's email is of a domain the organization verified: the people its
          // sso_required covers (sign-in routes exactly them to its IdP).
          sql<boolean>`exists (select 1 from users u
            join org_domains d on d.tenant_id = u.tenant_id and d.org_id = o.id and d.verified
              and d.domain = substring(u.email_key from '@([^@]+)$')
            where u.tenant_id = o.tenant_id and u.id = ${userId}::uuid)`.as('domain_member'),
          (lookUpSso
            ? sql<string | null>`(select s.org_id from sso_sign_ins s
                where s.tenant_id = o.tenant_id and s.grant_id = ${signIn!.grantId} and s.auth_time = ${authTime})`
            : sql<string | null>`null::uuid`
          ).as('sso_org'),
        ])
        .where('o.tenant_id', '=', tenantId);
      qb = 'ids' in which ? qb.where('o.id', 'in', [...which.ids]) : qb.where(isUuid(which.idOrSlug) ? 'o.id' : 'o.slug', '=', which.idOrSlug);
      return qb.execute();
    });
    return rows.map((row) => ({ ...row, viaSsoOrg: lookUpSso ? row.sso_org : signIn?.viaSsoOrg }));
  }

  /**
   * What an organization's policy asks of a password-only sign-in by one of its members, for the
   * step after the password: `enroll` (MFA required and no grace left), `grace` (required from
   * `graceUntil`), or `none`. The same rule as the tokens' (`sessionMeets`); undefined when the
   * person is not a member or the organization is unknown or suspended (the organization step
   * refuses those).
   */
  async mfaAtSignIn(
    tenantId: string,
    userId: string,
    orgIdOrSlug: string,
    tenantMfa: TenantMfaMode,
    now: Date = new Date(),
  ): Promise<{ orgName: string; mfa: 'enroll' | 'grace' | 'none'; graceUntil: Date | null } | undefined> {
    if (!orgIdOrSlug || orgIdOrSlug.length > 100) return undefined;
    const row = await inTenant(this.db, tenantId, (tx) =>
      tx
        .selectFrom('organizations as o')
        .innerJoin('org_members as m', (j) => j.onRef('m.tenant_id', '=', 'o.tenant_id').onRef('m.org_id', '=', 'o.id').on('m.user_id', '=', userId))
        .select(['o.name', 'o.status', 'o.sso_required', 'o.auth_policy'])
        .where('o.tenant_id', '=', tenantId)
        .where(isUuid(orgIdOrSlug) ? 'o.id' : 'o.slug', '=', orgIdOrSlug)
        .executeTakeFirst(),
    );
    if (!row || !isWorking(row.status)) return undefined;
    const policy = strictest({ mfa: tenantMfa }, orgAuthPolicy(row), mfaRequiredSince(row));
    // Only the MFA part is this step's business: the methods and SSO rules are the organization step's.
    const verdict = sessionMeets(
      { ...policy, sso_required: false, allowed_methods: [...SIGN_IN_METHODS], max_session_age_seconds: null },
      { amr: ['pwd'] },
      now,
    );
    const mfa = verdict.ok ? (verdict.reminder === 'mfa_grace' ? 'grace' : 'none') : 'enroll';
    return { orgName: row.name, mfa, graceUntil: policy.mfa_grace_until };
  }

  /**
   * A sign-in (grant, at `authTime`) came through `orgId`'s SSO connection: refresh, switch and
   * later authorization requests of that sign-in judge `sso_required` by it. A later sign-in in
   * the same grant has another auth_time, so a password sign-in never inherits it.
   */
  async recordSsoSignIn(tenantId: string, grantId: string, authTime: number, orgId: string, connectionId: string): Promise<void> {
    await inTenant(this.db, tenantId, (tx) =>
      tx
        .insertInto('sso_sign_ins')
        .values({ tenant_id: tenantId, grant_id: grantId, auth_time: authTime, org_id: orgId, connection_id: connectionId })
        .onConflict((oc) => oc.columns(['tenant_id', 'grant_id', 'auth_time']).doNothing())
        .execute(),
    );
  }

  /** The organization a grant (sign-in) works in, if any (read once per request; token lookups bring it along). */
  async grantOrg(tenantId: string, grantId: string): Promise<string | undefined> {
    return readOnce(grantOrgKey(tenantId, grantId), async () => {
      const row = await inTenant(this.db, tenantId, (tx) =>
        tx.selectFrom('grant_organizations').select('org_id').where('tenant_id', '=', tenantId).where('grant_id', '=', grantId).executeTakeFirst(),
      );
      return row?.org_id;
    });
  }

  /**
   * The sign-in (grant) now works in `orgId` (and in its team `teamId`, or in no team); the user's active organization — preselected the
   * next time an app asks them to choose — becomes it too.
   */
  async selectForGrant(tenantId: string, grantId: string, userId: string, orgId: string, teamId: string | null = null): Promise<void> {
    forget(grantOrgKey(tenantId, grantId));
    await inTenant(this.db, tenantId, async (tx) => {
      await tx
        .insertInto('grant_organizations')
        .values({ tenant_id: tenantId, grant_id: grantId, user_id: userId, org_id: orgId, team_id: teamId })
        .onConflict((oc) => oc.columns(['tenant_id', 'grant_id']).doUpdateSet({ org_id: orgId, user_id: userId, team_id: teamId, selected_at: new Date() }))
        .execute();
      await tx.updateTable('users').set({ active_org_id: orgId }).where('tenant_id', '=', tenantId).where('id', '=', userId).execute();
    });
  }

  /**
   * The team claims of `userId` in `orgId` — one statement. The team is `team` (an id or a slug of
   * that organization) when given: refused, as for an organization, when the person is not in it
   * or it is not a team of `orgId`. Otherwise the team the sign-in `grantId` works in, left out
   * when the person is no longer in it.
   */
  async teamClaimsFor(
    tenantId: string,
    userId: string,
    orgId: string,
    which: { team?: string | undefined; grantId?: string | undefined },
  ): Promise<{ claims: TeamClaims } | { refused: 'not_found_or_not_member' }> {
    if (!isUuid(orgId) || (which.team !== undefined && (!which.team || which.team.length > 100))) return { refused: 'not_found_or_not_member' };
    const team = which.team;
    const grantId = which.grantId;
    const rows = await scopedStatement(this.db, tenantId, (tx) =>
      tx
        .selectFrom('team_members as tm')
        .innerJoin('teams as t', (j) => j.onRef('t.tenant_id', '=', 'tm.tenant_id').onRef('t.id', '=', 'tm.team_id'))
        .select([
          't.id',
          't.slug',
          't.name',
          'tm.roles',
          sql<string[]>`coalesce((
            select array_agg(distinct p order by p) from team_roles r cross join lateral unnest(r.permissions) p
            where r.tenant_id = tm.tenant_id and r.org_id = tm.org_id and r.name = any(tm.roles)), '{}')`.as('permissions'),
          (team !== undefined
            ? isUuid(team)
              ? sql<boolean>`t.id = ${team}::uuid`
              : sql<boolean>`t.slug = ${team}`
            : grantId
              ? sql<boolean>`coalesce(t.id = (select go.team_id from grant_organizations go
                  where go.tenant_id = tm.tenant_id and go.grant_id = ${grantId} and go.org_id = tm.org_id), false)`
              : sql<boolean>`false`
          ).as('selected'),
        ])
        .where('tm.tenant_id', '=', tenantId)
        .where('tm.org_id', '=', orgId)
        .where('tm.user_id', '=', userId)
        .orderBy('t.name')
        .orderBy('t.id')
        .execute(),
    );
    const selected = rows.find((r) => r.selected);
    if (team !== undefined && !selected) return { refused: 'not_found_or_not_member' };
    const claims: TeamClaims = { org_teams: rows.map(({ id, slug, name, roles }) => ({ id, slug, name, roles })) };
    if (selected) {
      claims.team_id = selected.id;
      claims.team_slug = selected.slug;
      claims.team_roles = selected.roles;
      claims.team_permissions = selected.permissions;
    }
    return { claims };
  }

  /**
   * The organization of the team `teamId`, when `userId` is in that team. A team the person can't
   * use — another organization's, one they are not in, or none at all — gives nothing, so it is
   * answered the same whatever the reason and never names an organization the person is not in.
   */
  async teamOrg(tenantId: string, userId: string, teamId: string): Promise<string | undefined> {
    if (!isUuid(teamId) || !isUuid(userId)) return undefined;
    const row = await scopedStatement(this.db, tenantId, (tx) =>
      tx
        .selectFrom('team_members')
        .select('org_id')
        .where('tenant_id', '=', tenantId)
        .where('team_id', '=', teamId)
        .where('user_id', '=', userId)
        .executeTakeFirst(),
    );
    return row?.org_id;
  }

  /** The team a grant (sign-in) works in, if any. */
  async grantTeam(tenantId: string, grantId: string): Promise<string | undefined> {
    const row = await scopedStatement(this.db, tenantId, (tx) =>
      tx.selectFrom('grant_organizations').select('team_id').where('tenant_id', '=', tenantId).where('grant_id', '=', grantId).executeTakeFirst(),
    );
    return row?.team_id ?? undefined;
  }

  async orgClaimsForClient(tenantId: string, orgId: string): Promise<OrgClaims | undefined> {
    const org = await this.findOrg(tenantId, orgId);
    if (!org || !isWorking(org.status)) return undefined;
    return { org_id: org.id, org_slug: org.slug, org_roles: [], org_permissions: [] };
  }
}

/**
 * The one rule a sign-in is held to in an organization: the strictest of the tenant's and the
 * organization's policies, judged by `sessionMeets`.
 */
function judge(
  row: {
    id: string;
    sso_required: boolean;
    auth_policy: Parameters<typeof orgAuthPolicy>[0]['auth_policy'];
    domain_member: boolean;
    viaSsoOrg: string | null | undefined;
  },
  signIn: PolicyCheck,
): PolicyVerdict {
  const stored = orgAuthPolicy(row);
  // SSO required has one meaning on every path: people of the organization's verified domains
  // work in it only through its SSO; members from elsewhere (guests) are not asked for it.
  const policy = strictest({ mfa: signIn.tenantMfa }, { ...stored, sso_required: stored.sso_required && row.domain_member }, mfaRequiredSince(row));
  return sessionMeets(policy, { ...signIn.facts, viaOrgSso: row.viaSsoOrg === undefined ? undefined : row.viaSsoOrg === row.id });
}

/**
 * Revokes the sign-ins (grants, with their refresh and access tokens) working in team `teamId` —
 * of all its members, or only `userIds` — in the caller's transaction: a person who leaves a team
 * (or whose team goes) loses the team-scoped sign-in, as one who leaves the organization loses the
 * org-scoped one. The next refresh of such a token is `invalid_grant`; the app signs in again.
 */
export async function revokeTeamScoped(tx: TenantTx, tenantId: string, teamId: string, userIds?: string[]): Promise<number> {
  if (userIds && userIds.length === 0) return 0;
  let qb = tx.selectFrom('grant_organizations').select('grant_id').where('tenant_id', '=', tenantId).where('team_id', '=', teamId);
  if (userIds) qb = qb.where('user_id', 'in', userIds);
  const grants = await qb.execute();
  for (const g of grants) await revokeGrant(tx, tenantId, g.grant_id);
  if (grants.length) {
    await tx
      .deleteFrom('grant_organizations')
      .where('tenant_id', '=', tenantId)
      .where(
        'grant_id',
        'in',
        grants.map((g) => g.grant_id),
      )
      .execute();
  }
  return grants.length;
}

/**
 * Revokes the machine (client-credentials) tokens of `clientId` scoped to each of `orgIds`, in the
 * caller's transaction: the client is no longer granted those organizations. Granting one again
 * brings none of them back; the client asks for new ones.
 */
export async function revokeMachineOrgScoped(tx: TenantTx, tenantId: string, clientId: string, orgIds: readonly string[]): Promise<number> {
  let n = 0;
  for (const orgId of orgIds) n += await revokeClientCredentialsOfOrg(tx, tenantId, orgId, clientId);
  return n;
}

/**
 * Revokes every sign-in (grant, with its refresh and access tokens) and API token working in
 * `orgId` — for all its users, or only `userIds`. Runs in the caller's transaction, so the
 * membership change and the revocation happen together. For the whole organization (the
 * organization stops working or is deleted) the machine tokens of every client scoped to it go
 * too: reactivating it brings none of them back.
 */
export async function revokeOrgScoped(tx: TenantTx, tenantId: string, orgId: string, userIds?: string[]): Promise<number> {
  if (userIds && userIds.length === 0) return 0;
  let qb = tx.selectFrom('grant_organizations').select('grant_id').where('tenant_id', '=', tenantId).where('org_id', '=', orgId);
  if (userIds) qb = qb.where('user_id', 'in', userIds);
  const grants = await qb.execute();
  for (const g of grants) await revokeGrant(tx, tenantId, g.grant_id);
  let del = tx.deleteFrom('grant_organizations').where('tenant_id', '=', tenantId).where('org_id', '=', orgId);
  if (userIds) del = del.where('user_id', 'in', userIds);
  await del.execute();
  let api = tx
    .updateTable('api_tokens')
    .set({ revoked_at: new Date() })
    .where('tenant_id', '=', tenantId)
    .where('org_id', '=', orgId)
    .where('revoked_at', 'is', null);
  if (userIds) api = api.where('user_id', 'in', userIds);
  await api.execute();
  if (!userIds) await revokeClientCredentialsOfOrg(tx, tenantId, orgId);
  return grants.length;
}
