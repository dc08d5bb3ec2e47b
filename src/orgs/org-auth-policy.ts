import type { OrgAuthPolicyInput } from '../auth-policy/policy.schemas.ts';
import { DEFAULT_ORG_POLICY, type OrgAuthPolicy } from '../auth-policy/policy.ts';

/**
 * What `organizations.auth_policy` holds: the policy's fields that differ from the defaults, and
 * when MFA started being required (the start of the grace period). `sso_required` is not here:
 * it is the organization's own column, which the policy reads and writes.
 */
export interface StoredOrgAuthPolicy extends Partial<Omit<OrgAuthPolicy, 'sso_required'>> {
  mfa_required_since?: string;
}

/** The policy of an organization row, defaults filled in. */
export function orgAuthPolicy(org: { sso_required: boolean; auth_policy: StoredOrgAuthPolicy }): OrgAuthPolicy {
  const { mfa_required_since, ...stored } = org.auth_policy;
  void mfa_required_since;
  return { ...DEFAULT_ORG_POLICY, ...stored, sso_required: org.sso_required };
}

export function mfaRequiredSince(org: { auth_policy: StoredOrgAuthPolicy }): Date | null {
  return org.auth_policy.mfa_required_since ? new Date(org.auth_policy.mfa_required_since) : null;
}

/** As the Admin API shows it: the policy, and until when members without MFA still get in. */
export function presentAuthPolicy(org: { sso_required: boolean; auth_policy: StoredOrgAuthPolicy }) {
  const policy = orgAuthPolicy(org);
  const since = mfaRequiredSince(org);
  const graceEndsAt = policy.mfa_required && policy.mfa_grace_days > 0 && since ? new Date(since.getTime() + policy.mfa_grace_days * 86_400_000) : null;
  return { ...policy, mfa_grace_ends_at: graceEndsAt?.toISOString() ?? null };
}

/**
 * The next stored policy and sso_required column. PUT: fields left out return to defaults; PATCH:
 * only those given change. Turning MFA on starts the grace period now; keeping it on keeps it.
 */
export function nextAuthPolicy(
  current: { sso_required: boolean; auth_policy: StoredOrgAuthPolicy },
  input: OrgAuthPolicyInput,
  mode: 'put' | 'patch',
  now: Date,
): { auth_policy: StoredOrgAuthPolicy; sso_required: boolean } {
  const before = orgAuthPolicy(current);
  const merged: OrgAuthPolicy = mode === 'put' ? { ...DEFAULT_ORG_POLICY, ...stripUndefined(input) } : { ...before, ...stripUndefined(input) };
  const { sso_required, ...rest } = merged;
  const stored: StoredOrgAuthPolicy = {};
  for (const key of Object.keys(rest) as Array<keyof typeof rest>) {
    if (JSON.stringify(rest[key]) !== JSON.stringify(DEFAULT_ORG_POLICY[key])) (stored as Record<string, unknown>)[key] = rest[key];
  }
  if (merged.mfa_required) {
    stored.mfa_required_since = before.mfa_required && current.auth_policy.mfa_required_since ? current.auth_policy.mfa_required_since : now.toISOString();
  }
  return { auth_policy: stored, sso_required };
}

function stripUndefined<T extends object>(o: T): Partial<T> {
  return Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined)) as Partial<T>;
}
