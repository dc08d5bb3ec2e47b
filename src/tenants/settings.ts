import { z } from 'zod';
import { httpsUrl } from '../base/validate.ts';

/**
 * Tenant settings: what an admin may change (PATCH /settings), with every default in one place.
 * Brute-force defaults follow Keycloak's: 30 failures before a lock, locks that grow by a minute
 * per 30 failures up to 15 minutes, a one-minute lock for failures under a second apart, counts
 * forgotten after 12 quiet hours. The per-IP limit stops one address from keeping an account
 * locked: once an address is blocked its attempts no longer count against accounts.
 */
export const BruteForceSettings = z.strictObject({
  enabled: z.boolean(),
  max_login_failures: z.number().int().min(1).max(1000),
  wait_increment_seconds: z.number().int().min(1).max(86_400),
  max_wait_seconds: z.number().int().min(1).max(86_400),
  failure_reset_seconds: z
    .number()
    .int()
    .min(1)
    .max(7 * 86_400),
  quick_login_check_ms: z.number().int().min(0).max(60_000),
  min_quick_login_wait_seconds: z.number().int().min(0).max(86_400),
  ip_max_failures: z.number().int().min(1).max(100_000),
  ip_window_seconds: z.number().int().min(1).max(86_400),
});
export type BruteForceSettings = z.infer<typeof BruteForceSettings>;

export const BRUTE_FORCE_DEFAULTS: BruteForceSettings = {
  enabled: true,
  max_login_failures: 30,
  wait_increment_seconds: 60,
  max_wait_seconds: 900,
  failure_reset_seconds: 43_200,
  quick_login_check_ms: 1000,
  min_quick_login_wait_seconds: 60,
  ip_max_failures: 100,
  ip_window_seconds: 900,
};

/** Tenant MFA: `off` (no second factor asked), `optional` (asked of those who have one), `required` (everyone). */
export const TENANT_MFA_MODES = ['off', 'optional', 'required'] as const;
export type TenantMfaMode = (typeof TENANT_MFA_MODES)[number];
/** Second factors a tenant may allow. */
export const MFA_FACTORS = ['totp', 'passkey'] as const;
export type MfaFactor = (typeof MFA_FACTORS)[number];

/** Whether organizations users create wait for a tenant administrator's approval (orgs/org-lifecycle.ts). */
export const ORGANIZATION_APPROVAL_MODES = ['off', 'required'] as const;
export type OrganizationApprovalMode = (typeof ORGANIZATION_APPROVAL_MODES)[number];

export interface EffectiveSettings {
  registration_enabled: boolean;
  /**
   * Past this many organizations, tokens leave the `organizations` claim out and point to
   * userinfo instead (OIDC distributed claims); userinfo always lists them all.
   */
  organizations_claim_cap: number;
  email_verification_required: boolean;
  /** Display name in the From header of the tenant's mail. */
  mail_from_name: string | null;
  /** Shown beside the tenant's name on the sign-in, portal and account pages. */
  logo_url: string | null;
  /** Whether any signed-in user may create an organization in the portal (and becomes its owner); tenant admins always may. */
  users_can_create_organizations: boolean;
  /** `required`: an organization a user (not a tenant admin) creates starts `pending` until a tenant admin approves it. */
  organization_approval: OrganizationApprovalMode;
  /**
   * How many organizations one user may create (those whose `created_by` they are, whatever
   * their status, deleted ones not counted); null: no limit. Tenant admins are not limited.
   */
  max_organizations_per_user: number | null;
  /** The tenant's MFA rule; organizations may only be stricter (auth-policy/policy.ts `strictest`). */
  mfa: TenantMfaMode;
  /** The second factors people of this tenant may enroll and use. */
  mfa_factors: MfaFactor[];
  brute_force: BruteForceSettings;
}

export const SETTINGS_DEFAULTS: Omit<EffectiveSettings, 'brute_force'> = {
  registration_enabled: false,
  organizations_claim_cap: 100,
  email_verification_required: true,
  mail_from_name: null,
  logo_url: null,
  users_can_create_organizations: false,
  organization_approval: 'off',
  max_organizations_per_user: null,
  mfa: 'optional',
  mfa_factors: [...MFA_FACTORS],
};

/** What is stored (tenants.settings): only what differs from the defaults needs to be there. */
export interface StoredSettings extends Partial<Omit<EffectiveSettings, 'brute_force'>> {
  signing_alg?: 'ES256' | 'RS256';
  brute_force?: Partial<BruteForceSettings>;
}

export function effectiveSettings(stored: StoredSettings): EffectiveSettings {
  return {
    registration_enabled: stored.registration_enabled ?? SETTINGS_DEFAULTS.registration_enabled,
    organizations_claim_cap: stored.organizations_claim_cap ?? SETTINGS_DEFAULTS.organizations_claim_cap,
    email_verification_required: stored.email_verification_required ?? SETTINGS_DEFAULTS.email_verification_required,
    mail_from_name: stored.mail_from_name ?? SETTINGS_DEFAULTS.mail_from_name,
    logo_url: stored.logo_url ?? SETTINGS_DEFAULTS.logo_url,
    users_can_create_organizations: stored.users_can_create_organizations ?? SETTINGS_DEFAULTS.users_can_create_organizations,
    organization_approval: stored.organization_approval ?? SETTINGS_DEFAULTS.organization_approval,
    max_organizations_per_user: stored.max_organizations_per_user ?? SETTINGS_DEFAULTS.max_organizations_per_user,
    mfa: stored.mfa ?? SETTINGS_DEFAULTS.mfa,
    mfa_factors: stored.mfa_factors ?? SETTINGS_DEFAULTS.mfa_factors,
    brute_force: { ...BRUTE_FORCE_DEFAULTS, ...stored.brute_force },
  };
}

export const UpdateSettings = z
  .strictObject({
    name: z.string().trim().min(1, 'must not be empty').max(200, 'must be at most 200 characters'),
    registration_enabled: z.boolean(),
    organizations_claim_cap: z.number().int().min(0).max(1000),
    email_verification_required: z.boolean(),
    mail_from_name: z
      .string()
      .trim()
      .min(1)
      .max(100)
      .regex(/^[^<>"\r\n]+$/, 'must not contain <, >, " or line breaks')
      .nullable(),
    // https only: the logo is loaded by every sign-in page, which must not mix in plain http.
    logo_url: httpsUrl.nullable(),
    users_can_create_organizations: z.boolean(),
    organization_approval: z.enum(ORGANIZATION_APPROVAL_MODES),
    // null: no limit. 1 is "one organization per sign-up".
    max_organizations_per_user: z.number().int('must be a whole number').min(1, 'must be at least 1 (null: no limit)').max(10_000).nullable(),
    mfa: z.enum(TENANT_MFA_MODES),
    mfa_factors: z
      .array(z.enum(MFA_FACTORS))
      .min(1, 'allow at least one factor')
      .refine((a) => new Set(a).size === a.length, 'must not repeat a factor'),
    brute_force: BruteForceSettings.partial(),
  })
  .partial()
  .refine((v) => Object.keys(v).length > 0, 'send at least one setting to change');
export type UpdateSettings = z.infer<typeof UpdateSettings>;
