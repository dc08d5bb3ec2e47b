import type { Database, TenantTx } from '../db/database.ts';
import { inTenant } from '../db/tenant-scope.ts';
import { confirmedKinds } from '../factors/factor.repo.ts';
import type { InvitationService } from '../orgs/invitation.service.ts';
import * as membership from '../orgs/membership.ts';
import { findInvitation, findMember, findOrg, rolesByName } from '../orgs/org.repo.ts';
import { invitationStatus } from '../orgs/org.service.ts';
import { emailKey } from '../users/email-address.ts';
import { findUserByEmail, findUserById, insertUser, type UserRow, updateUser } from '../users/user.repo.ts';
import { mappedRoles } from './group-roles.ts';
import { auditLink } from './link-audit.ts';
import type { ConnectionRow } from './sso.table.ts';
import { SsoRefused, type UpstreamProfile } from './upstream.ts';

/** Why a (connection, subject) → account link exists; stored with the link and in the audit log. */
export type LinkReason = 'new_account' | 'verified_domain' | 'invitation' | 'password' | 'email_link' | 'directory';

/** What an SSO sign-in may become, decided by `provision`. */
export type Provisioned =
  /** Signed in as `userId` (linked now or before); membership is in place. */
  | { kind: 'signed_in'; userId: string; created: boolean }
  /** The email names an existing account the person must prove is theirs; nothing was linked. */
  | { kind: 'proof_required'; userId: string; reason: string }
  /** No session, no token, no link. */
  | { kind: 'refused'; reason: string; userId?: string | undefined };

export interface ProvisionContext {
  /** The email's domain is a verified domain of the connection's organization. */
  emailDomainVerified: boolean;
  /** The invitation whose link started this sign-in in this browser (proves the invited mailbox). */
  invitationId?: string | null | undefined;
}

/** Links the person proved with the account's password or mailbox (not made by the organization). */
const PROVEN_BY_PERSON: readonly LinkReason[] = ['password', 'email_link'];

/** The same mailbox by the one email rule (users/email-address.ts); a refused address matches nothing. */
function sameEmail(a: string, b: string) {
  const key = emailKey(a);
  return key !== undefined && key === emailKey(b);
}

/**
 * Whether an SSO sign-in may become `user`, an account that already exists, without more proof.
 * The one rule for existing accounts: the organization's IdP is trusted for the mailboxes of the
 * organization's own verified domains, and for nothing else; an account whose email was never
 * verified could have been registered by anyone; and a tenant administrator never signs in
 * through an organization's connection (the organization's owners must not hold the tenant).
 */
export function existingAccountVerdict(user: UserRow, emailDomainVerified: boolean): { ok: true } | { ok: false; refuse: boolean; reason: string } {
  if (user.tenant_admin)
    return { ok: false, refuse: true, reason: 'the account is a tenant administrator, which never signs in through an organization connection' };
  if (user.disabled) return { ok: false, refuse: true, reason: 'the account is disabled' };
  if (!emailDomainVerified) return { ok: false, refuse: false, reason: "the email's domain is not a verified domain of the organization" };
  if (!user.email_verified) return { ok: false, refuse: false, reason: "the account's email address was never verified" };
  return { ok: true };
}

/**
 * Just-in-time provisioning. Accounts are keyed by (connection, subject). The first sign-in
 * through a connection links or creates an account only under the rules below; a later sign-in
 * finds the account by its link, refreshes the profile and, when groups are mapped, the roles.
 *
 * - An existing account is linked only per `existingAccountVerdict`; otherwise the person proves
 *   it is theirs first (`proof_required`: its password, or a link mailed to its stored address).
 * - A new account is created only for an email on a verified domain of the organization (with
 *   automatic provisioning on), or when the sign-in started from the invitation link of exactly
 *   that email. A pending invitation alone proves nothing: the organization's admins make those.
 *
 * Refusals and deferrals return without writing; the caller records them (audit, last_error).
 */
export async function provision(
  db: Database,
  invitations: InvitationService,
  conn: ConnectionRow,
  profile: UpstreamProfile,
  opts: ProvisionContext,
): Promise<Provisioned> {
  return inTenant(db, conn.tenant_id, (tx) => decide(tx, invitations, conn, profile, opts));
}

/**
 * What a rehearsal found: the verdict, the roles the person would hold when signed in, and why the
 * (connection, subject) link the sign-in would use exists (a LinkReason, or one made before).
 */
export type Rehearsed = Provisioned & { roles: string[]; linkedBy?: string | undefined };

class RolledBack extends Error {
  constructor(readonly result: Rehearsed) {
    super('rehearsal rolled back');
  }
}

/**
 * What `provision` would do with this answer, found by doing it and rolling it back — the same
 * rules by construction, not a copy of them to keep in step. Nothing it wrote remains: no
 * account, link, membership or audit row. (A setup link's test sign-in shows it.)
 */
export async function rehearseProvision(
  db: Database,
  invitations: InvitationService,
  conn: ConnectionRow,
  profile: UpstreamProfile,
  opts: ProvisionContext,
): Promise<Rehearsed> {
  try {
    await inTenant(db, conn.tenant_id, async (tx) => {
      let result: Provisioned;
      try {
        result = await decide(tx, invitations, conn, profile, opts);
      } catch (err) {
        if (!(err instanceof SsoRefused)) throw err;
        result = { kind: 'refused', reason: err.message };
      }
      const member = result.kind === 'signed_in' ? await findMember(tx, conn.tenant_id, conn.org_id, result.userId) : undefined;
      const link = await tx
        .selectFrom('sso_identities')
        .select('linked_by')
        .where('tenant_id', '=', conn.tenant_id)
        .where('connection_id', '=', conn.id)
        .where('subject', '=', profile.subject)
        .executeTakeFirst();
      throw new RolledBack({ ...result, roles: member?.roles ?? [], linkedBy: link?.linked_by });
    });
  } catch (err) {
    if (err instanceof RolledBack) return err.result;
    throw err;
  }
  throw new Error('unreachable: a rehearsal always rolls back');
}

async function decide(
  tx: TenantTx,
  invitations: InvitationService,
  conn: ConnectionRow,
  profile: UpstreamProfile,
  opts: ProvisionContext,
): Promise<Provisioned> {
  const tenantId = conn.tenant_id;
  const identity = await tx
    .selectFrom('sso_identities')
    .select(['user_id', 'linked_by', 'proven_with_factor'])
    .where('tenant_id', '=', tenantId)
    .where('connection_id', '=', conn.id)
    .where('subject', '=', profile.subject)
    .executeTakeFirst();

  if (identity) {
    const user = await findUserById(tx, tenantId, identity.user_id);
    if (!user) return { kind: 'refused', reason: 'the linked account no longer exists' };
    if (user.tenant_admin)
      return {
        kind: 'refused',
        reason: 'the linked account is a tenant administrator, which never signs in through an organization connection',
        userId: user.id,
      };
    if (user.disabled) return { kind: 'refused', reason: 'the linked account is disabled', userId: user.id };
    // A link from before these rules is used only if it would be made today; else: proof first.
    if (identity.linked_by === 'legacy') {
      const verdict = existingAccountVerdict(user, opts.emailDomainVerified && sameEmail(user.email, profile.email));
      if (!verdict.ok) return { kind: 'proof_required', userId: user.id, reason: `an older link is re-checked: ${verdict.reason}` };
      await setLinkReason(tx, conn, profile.subject, 'verified_domain', false);
    }
    // A link is as strong as its proof. One proven without a second factor (the account had none,
    // or it predates the code step) is used only while the account still has no usable factor:
    // a link made today would ask for its code. Else the person proves it again, code included,
    // and the link is upgraded. Links the organization made are not affected: through its verified
    // domain it vouches for its own domain's mailboxes, and a new account or an invitation's link
    // to one took over no account that existed before.
    // Any factor counts here, even of a kind the tenant does not accept now: the proof page then
    // refuses, as it refuses a new link — a factor the tenant turned off must not reopen a link
    // that its addition had closed.
    if (PROVEN_BY_PERSON.includes(identity.linked_by as LinkReason) && !identity.proven_with_factor) {
      if ((await confirmedKinds(tx, tenantId, user.id)).length > 0)
        return { kind: 'proof_required', userId: user.id, reason: 'the link was proven without a second factor, and the account has one now' };
    }
    await tx
      .updateTable('sso_identities')
      .set({ last_login_at: new Date() })
      .where('tenant_id', '=', tenantId)
      .where('connection_id', '=', conn.id)
      .where('subject', '=', profile.subject)
      .execute();
    await updateUser(tx, tenantId, user.id, {
      ...(profile.name ? { name: profile.name } : {}),
      ...(profile.given_name ? { given_name: profile.given_name } : {}),
      ...(profile.family_name ? { family_name: profile.family_name } : {}),
    });
    await ensureMembership(tx, conn, user.id, profile);
    return { kind: 'signed_in', userId: user.id, created: false };
  }

  // The organization's own directory already says who this is: the account it created or linked.
  const provisioned = await directoryAccount(tx, conn, profile);
  if (provisioned) {
    const user = (await findUserById(tx, tenantId, provisioned))!;
    if (user.tenant_admin || user.disabled) {
      const verdict = existingAccountVerdict(user, true);
      return { kind: 'refused', reason: `${profile.email}: ${verdict.ok ? 'the account may not sign in' : verdict.reason}`, userId: user.id };
    }
    await link(tx, conn, profile.subject, user.id, 'directory');
    await ensureMembership(tx, conn, user.id, profile);
    return { kind: 'signed_in', userId: user.id, created: false };
  }

  const existing = await findUserByEmail(tx, tenantId, profile.email);
  if (existing) {
    const verdict = existingAccountVerdict(existing, opts.emailDomainVerified);
    if (!verdict.ok) {
      return verdict.refuse
        ? { kind: 'refused', reason: `${profile.email}: ${verdict.reason}`, userId: existing.id }
        : { kind: 'proof_required', userId: existing.id, reason: verdict.reason };
    }
    await link(tx, conn, profile.subject, existing.id, 'verified_domain');
    await ensureMembership(tx, conn, existing.id, profile);
    return { kind: 'signed_in', userId: existing.id, created: false };
  }

  // A new account: through the invitation link of this very email, or on a verified domain.
  const invitation = opts.invitationId ? await findInvitation(tx, tenantId, conn.org_id, opts.invitationId, { lock: true }) : undefined;
  const byInvitation = invitation && invitationStatus(invitation) === 'pending' && sameEmail(invitation.email, profile.email);
  if (opts.invitationId && !byInvitation) {
    return { kind: 'refused', reason: `the invitation that started this sign-in is not a pending invitation of ${profile.email} to this organization` };
  }
  if (!byInvitation) {
    if (!opts.emailDomainVerified)
      return {
        kind: 'refused',
        reason: `the domain of ${profile.email} is not a verified domain of the organization; accounts are created only for verified domains or through an invitation link`,
      };
    if (!conn.auto_provision) return { kind: 'refused', reason: `${profile.email} has no account and automatic provisioning is off` };
  }
  const user = await insertUser(tx, tenantId, {
    email: profile.email,
    name: profile.name ?? null,
    given_name: profile.given_name ?? null,
    family_name: profile.family_name ?? null,
    email_verified: true,
    password_hash: null,
  });
  await link(tx, conn, profile.subject, user.id, byInvitation ? 'invitation' : 'new_account');
  if (byInvitation) await invitations.acceptForSso(tx, tenantId, conn.org_id, invitation.id, user.id);
  await ensureMembership(tx, conn, user.id, profile);
  return { kind: 'signed_in', userId: user.id, created: true };
}

/**
 * Makes the link the person proved (their password, or the link mailed to the account), then
 * membership as for any sign-in; an invitation that started the sign-in is used too. The account
 * is checked again: a tenant administrator or a disabled account is never linked. `linked` runs
 * in the same transaction once the link is made (the account holder's mail: both or neither).
 */
export async function linkProven(
  db: Database,
  invitations: InvitationService,
  conn: ConnectionRow,
  profile: UpstreamProfile,
  userId: string,
  reason: 'password' | 'email_link',
  withFactor: boolean,
  invitationId: string | null | undefined,
  linked: (tx: TenantTx, user: UserRow) => Promise<unknown>,
): Promise<Provisioned> {
  const tenantId = conn.tenant_id;
  return inTenant(db, tenantId, async (tx): Promise<Provisioned> => {
    const user = await findUserById(tx, tenantId, userId);
    if (!user) return { kind: 'refused', reason: 'the account no longer exists' };
    const verdict = existingAccountVerdict(user, true);
    if (!verdict.ok && verdict.refuse) return { kind: 'refused', reason: verdict.reason, userId };
    const current = await tx
      .selectFrom('sso_identities')
      .select('user_id')
      .where('tenant_id', '=', tenantId)
      .where('connection_id', '=', conn.id)
      .where('subject', '=', profile.subject)
      .executeTakeFirst();
    if (current && current.user_id !== userId) {
      await tx
        .deleteFrom('sso_identities')
        .where('tenant_id', '=', tenantId)
        .where('connection_id', '=', conn.id)
        .where('subject', '=', profile.subject)
        .execute();
      await auditLink(tx, conn, 'sso.link_removed', {
        subject: profile.subject,
        user_id: current.user_id,
        reason: `replaced by a link to an account proven by ${reason}`,
      });
    }
    if (current?.user_id === userId) await setLinkReason(tx, conn, profile.subject, reason, withFactor);
    else await link(tx, conn, profile.subject, userId, reason, withFactor);
    if (invitationId) {
      const invitation = await findInvitation(tx, tenantId, conn.org_id, invitationId, { lock: true });
      if (invitation && invitationStatus(invitation) === 'pending' && sameEmail(invitation.email, user.email))
        await invitations.acceptForSso(tx, tenantId, conn.org_id, invitation.id, userId);
    }
    await ensureMembership(tx, conn, userId, profile);
    await linked(tx, user);
    return { kind: 'signed_in', userId, created: false };
  });
}

/**
 * The account an active user of one of the organization's SCIM directories holds, matched as the
 * directory's `sso_match` says: `user_name` — the subject or the email is the userName (without
 * regard to case); `external_id` — the subject is the externalId; `email` — the account's email.
 * None when nothing matches, or when the directories name more than one account (ambiguity
 * links nothing: the usual rules for existing accounts decide then).
 */
export async function directoryAccount(tx: TenantTx, conn: ConnectionRow, profile: UpstreamProfile): Promise<string | undefined> {
  const key = emailKey(profile.email);
  const subject = profile.subject.normalize('NFC').toLowerCase();
  const email = profile.email.normalize('NFC').toLowerCase();
  const rows = await tx
    .selectFrom('scim_users as su')
    .innerJoin('scim_directories as d', (j) => j.onRef('d.tenant_id', '=', 'su.tenant_id').onRef('d.id', '=', 'su.directory_id'))
    .innerJoin('users as u', (j) => j.onRef('u.tenant_id', '=', 'su.tenant_id').onRef('u.id', '=', 'su.user_id'))
    .select('su.user_id')
    .distinct()
    .where('su.tenant_id', '=', conn.tenant_id)
    .where('d.org_id', '=', conn.org_id)
    .where('d.enabled', '=', true)
    .where('su.active', '=', true)
    .where((eb) =>
      eb.or([
        eb.and([eb('d.sso_match', '=', 'user_name'), eb.or([eb('su.user_name_key', '=', subject), eb('su.user_name_key', '=', email)])]),
        eb.and([eb('d.sso_match', '=', 'external_id'), eb('su.external_id', '=', profile.subject)]),
        ...(key ? [eb.and([eb('d.sso_match', '=', 'email'), eb('u.email_key', '=', key)])] : []),
      ]),
    )
    .limit(2)
    .execute();
  return rows.length === 1 ? rows[0]!.user_id : undefined;
}

/**
 * Whether one of the organization's directories holds the account as a deactivated user, or
 * deleted it (and none holds it as an active one): then a sign-in through the organization's IdP
 * does not bring the person back into the organization — the directory removed them, and only it
 * reactivates them (or pushes them again).
 */
async function deactivatedByDirectory(tx: TenantTx, conn: ConnectionRow, userId: string): Promise<boolean> {
  const rows = await tx
    .selectFrom('scim_users as su')
    .innerJoin('scim_directories as d', (j) => j.onRef('d.tenant_id', '=', 'su.tenant_id').onRef('d.id', '=', 'su.directory_id'))
    .select('su.active')
    .where('su.tenant_id', '=', conn.tenant_id)
    .where('d.org_id', '=', conn.org_id)
    .where('su.user_id', '=', userId)
    .execute();
  if (rows.some((r) => r.active)) return false;
  if (rows.length > 0) return true;
  // Deleted by a directory (SCIM DELETE) counts as deactivated: the directory forgot the user, the
  // organization did not.
  const departed = await tx
    .selectFrom('scim_departures as sd')
    .innerJoin('scim_directories as d', (j) => j.onRef('d.tenant_id', '=', 'sd.tenant_id').onRef('d.id', '=', 'sd.directory_id'))
    .select('sd.user_id')
    .where('sd.tenant_id', '=', conn.tenant_id)
    .where('d.org_id', '=', conn.org_id)
    .where('sd.user_id', '=', userId)
    .executeTakeFirst();
  return departed !== undefined;
}

/** `withFactor`: a link the person proved was proven with the account's second factor too. */
async function link(tx: TenantTx, conn: ConnectionRow, subject: string, userId: string, reason: LinkReason, withFactor = false) {
  await tx
    .insertInto('sso_identities')
    .values({
      tenant_id: conn.tenant_id,
      connection_id: conn.id,
      subject,
      user_id: userId,
      linked_by: reason,
      proven_with_factor: withFactor,
      last_login_at: new Date(),
    })
    .execute();
  await auditLink(tx, conn, 'sso.link_created', {
    subject,
    user_id: userId,
    reason,
    ...(PROVEN_BY_PERSON.includes(reason) ? { proven_with_factor: withFactor } : {}),
  });
}

async function setLinkReason(tx: TenantTx, conn: ConnectionRow, subject: string, reason: LinkReason, withFactor: boolean) {
  await tx
    .updateTable('sso_identities')
    .set({ linked_by: reason, proven_with_factor: withFactor })
    .where('tenant_id', '=', conn.tenant_id)
    .where('connection_id', '=', conn.id)
    .where('subject', '=', subject)
    .execute();
  await auditLink(tx, conn, 'sso.link_confirmed', { subject, reason, ...(PROVEN_BY_PERSON.includes(reason) ? { proven_with_factor: withFactor } : {}) });
}

/**
 * Membership after an SSO sign-in: a newcomer joins with the roles the groups map to (else the
 * connection's default role); a member's roles follow the mapped groups. Neither ever grants or
 * takes away `owner` (mappedRoles drops it; configuration refuses it too).
 */
async function ensureMembership(tx: TenantTx, conn: ConnectionRow, userId: string, profile: UpstreamProfile) {
  const tenantId = conn.tenant_id;
  const change = { tx, tenantId, orgId: conn.org_id, actor: { type: 'sso_connection' as const, id: conn.id } };
  const mapped = mappedRoles(conn.group_roles, profile.groups);
  const member = await findMember(tx, tenantId, conn.org_id, userId);
  if (!member) {
    if (await deactivatedByDirectory(tx, conn, userId))
      throw new SsoRefused("the organization's directory deactivated this person: it decides who is in the organization");
    const org = (await findOrg(tx, tenantId, conn.org_id, { lock: true }))!;
    const wanted = mapped.length ? mapped : [conn.default_role].filter((r) => r !== 'owner');
    const roles = await rolesByName(tx, tenantId, conn.org_id, wanted.length ? wanted : ['member']);
    try {
      await membership.addMember(change, org, userId, roles);
    } catch (err) {
      throw new SsoRefused((err as Error).message);
    }
  } else if (mapped.length) {
    await findOrg(tx, tenantId, conn.org_id, { lock: true });
    const keep = member.roles.filter((r) => r === 'owner');
    await membership.setRoles(change, member, await rolesByName(tx, tenantId, conn.org_id, [...new Set([...mapped, ...keep])]));
  }
}
