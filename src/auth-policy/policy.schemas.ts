import { z } from 'zod';
import { SIGN_IN_METHODS } from './policy.ts';

// An organization's authentication policy as the Admin API takes it: PUT gives every field
// (those left out return to their defaults), PATCH some.

const policyFields = {
  mfa_required: z.boolean(),
  mfa_grace_days: z.number().int('must be a whole number of days').min(0).max(365, 'must be at most 365 days'),
  allowed_methods: z
    .array(z.enum(SIGN_IN_METHODS))
    .min(1, 'allow at least one sign-in method')
    .refine((a) => new Set(a).size === a.length, 'must not repeat a method'),
  sso_required: z.boolean(),
  max_session_age_seconds: z
    .number()
    .int('must be a whole number of seconds')
    .min(60, 'must be at least 60 seconds')
    .max(400 * 86_400, 'must be at most 400 days')
    .nullable(),
  upstream_mfa_satisfies: z.boolean(),
};

export const PutOrgAuthPolicy = z.strictObject(policyFields).partial();
export const PatchOrgAuthPolicy = z
  .strictObject(policyFields)
  .partial()
  .refine((v) => Object.keys(v).length > 0, 'send at least one field to change');
export type OrgAuthPolicyInput = z.infer<typeof PutOrgAuthPolicy>;
