import type { FactorKind } from './factor.table.ts';

/**
 * Which of a person's second factors count, under the tenant's settings `mfa` and `mfa_factors`.
 * One rule for sign-in, the security page and invitations: with `mfa: off` none counts (they are
 * kept, and count again when MFA is turned back on); a kind the tenant does not allow does not
 * count, is not offered for enrollment and is not accepted at the code step.
 */
export interface TenantFactorRules {
  mfa: 'off' | 'optional' | 'required';
  mfa_factors: readonly FactorKind[];
}

export function factorsTurnedOff(rules: TenantFactorRules): boolean {
  return rules.mfa === 'off';
}

/** Whether people of the tenant may enroll and use this kind of factor. */
export function kindAllowed(rules: TenantFactorRules, kind: FactorKind): boolean {
  return !factorsTurnedOff(rules) && rules.mfa_factors.includes(kind);
}

/** The person's confirmed factor kinds that count in this tenant now. */
export function usableKinds(rules: TenantFactorRules, confirmed: Iterable<FactorKind>): Set<FactorKind> {
  return new Set([...confirmed].filter((k) => kindAllowed(rules, k)));
}

/** How a factor is named in mail and on pages: its kind, never its secret or its own label. */
export function describeKind(kind: FactorKind): string {
  return kind === 'passkey' ? 'a passkey' : 'an authenticator app';
}
