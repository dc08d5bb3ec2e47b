import type { FactorService } from '../factors/factor.service.ts';
import { kindAllowed, type TenantFactorRules, usableKinds } from '../factors/tenant-factors.ts';

/**
 * What linking an existing account to an organization's sign-in asks beyond the account's
 * password or mailed link. A link lets the organization's IdP open the account with no password
 * and no factor from then on, so it is made only with everything a sign-in to the account would
 * ask: with a second factor, its code too.
 *
 * - `none`: the account has no confirmed factor (or the tenant has MFA off): the proof suffices.
 * - `code`: a TOTP code or a recovery code as well. Passkey ceremonies are not part of the link
 *   page, so a person whose only usable factor is a passkey gives a recovery code.
 * - `refused`: the account has factors, but none the tenant allows now (a kind taken off the
 *   list, or MFA turned off). Its code cannot be asked for, and a link would outlive the
 *   setting, so it is never linked by a password or a mailed link alone: an administrator helps.
 */
export type LinkFactorStep = { kind: 'none' } | { kind: 'code'; passkeyOnly: boolean; accept: { totp: boolean; recovery: boolean } } | { kind: 'refused' };

export async function linkFactorStep(factors: FactorService, rules: TenantFactorRules, tenantId: string, userId: string): Promise<LinkFactorStep> {
  const confirmed = await factors.confirmedKinds(tenantId, userId);
  const usable = usableKinds(rules, confirmed);
  if (usable.size > 0) return { kind: 'code', passkeyOnly: !usable.has('totp'), accept: { totp: kindAllowed(rules, 'totp'), recovery: true } };
  // Also with MFA turned off: the person chose a factor, and a link outlives the setting.
  if (confirmed.length > 0) return { kind: 'refused' };
  return { kind: 'none' };
}
