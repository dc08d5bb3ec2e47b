import type { Database } from '../db/database.ts';
import type { InvitationService } from '../orgs/invitation.service.ts';
import type { DomainService } from '../sso/domain.service.ts';
import { rehearseProvision } from '../sso/jit.ts';
import type { ConnectionRow } from '../sso/sso.table.ts';
import type { UpstreamProfile } from '../sso/upstream.ts';

/**
 * What a real sign-in with this IdP answer would do, in words, for a setup link's test sign-in.
 * jit.ts rehearses the sign-in and rolls it back, so the answer is the real rules' and nothing is
 * kept. The person testing controls the IdP and so the email it asserts: whether an account
 * exists is said only for the organization's verified domains, whose mailboxes its IdP is
 * trusted for anyway; for any other address the answer is the same whether or not one exists.
 */
export async function previewSignIn(
  db: Database,
  domains: DomainService,
  invitations: InvitationService,
  conn: ConnectionRow,
  profile: UpstreamProfile,
): Promise<string> {
  const emailDomainVerified = await domains.isVerifiedFor(conn.tenant_id, conn.org_id, profile.email);
  if (!emailDomainVerified)
    return `${profile.email.split('@')[1]} is not a verified domain of the organization: a real sign-in creates no account for this address, and an account that already has it is linked only after its owner proves it is theirs (verify the domain, or invite the person).`;
  const rehearsed = await rehearseProvision(db, invitations, conn, profile, { emailDomainVerified, invitationId: null });
  const roles = `with the role${rehearsed.roles.length > 1 ? 's' : ''} ${rehearsed.roles.join(', ')}`;
  switch (rehearsed.kind) {
    case 'signed_in':
      if (rehearsed.created) return `A real sign-in creates an account for ${profile.email} and makes it a member ${roles}.`;
      if (rehearsed.linkedBy === 'directory')
        return `The organization's directory holds this person: a real sign-in opens the account the directory made or linked, as a member ${roles}.`;
      if (rehearsed.linkedBy === 'verified_domain')
        return `An account with this email exists on a verified domain: a real sign-in links it to this connection and opens it, as a member ${roles}.`;
      return `This person already signed in through this connection: a real sign-in opens their account, as a member ${roles}.`;
    case 'proof_required':
      return `An account with this email exists (${rehearsed.reason}): at a real sign-in the person first proves it is theirs (its password or a link mailed to it), then it is linked.`;
    case 'refused':
      return `A real sign-in would be refused: ${rehearsed.reason}.`;
  }
}
