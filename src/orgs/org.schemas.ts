import { z } from 'zod';
import { fields, httpsUrl, httpUrl } from '../base/validate.ts';
import { parseDomain } from '../users/email-address.ts';
import { ORG_STATUSES } from './org.table.ts';
import { slug, slugFormat, slugRules } from './slug.ts';

// What creating and changing an organization takes: the Admin API and the portal validate with
// these, and the service's input type is derived from them.

const orgSlug = slug;
/**
 * Whether `s` can name an organization in a URL (checked before it is looked up): a slug, or an
 * organization's id, which lookups take as an id.
 */
export const isOrgSlug = (s: string) => slugFormat(z.string()).safeParse(s).success;
/** Stored (and matched against emails' domains) in IDNA ASCII form: `bücher.de` is `xn--bcher-kva.de`. */
export const domain = z
  .string()
  .max(253, 'must be at most 253 characters')
  .transform((s, ctx) => {
    const parsed = parseDomain(s);
    if (parsed.ok) return parsed.ascii;
    ctx.addIssue({ code: 'custom', message: `must be a domain name such as example.com: it ${parsed.problem}` });
    return z.NEVER;
  });
const METADATA_MAX_BYTES = 4096;
const METADATA_MAX_DEPTH = 32;
const metadata = z
  .record(z.string().max(100), z.unknown())
  // First, and ending the checks when it fails: the size check serializes the value.
  .refine((m) => nestingDepth(m, METADATA_MAX_DEPTH) <= METADATA_MAX_DEPTH, { message: `must nest at most ${METADATA_MAX_DEPTH} levels deep`, abort: true })
  .refine((m) => Object.keys(m).length <= 50, 'at most 50 keys')
  .refine((m) => Buffer.byteLength(JSON.stringify(m)) <= METADATA_MAX_BYTES, `must be at most ${METADATA_MAX_BYTES} bytes as JSON`);

/** How many levels of objects and arrays `value` has (itself included), counted up to `limit + 1`. */
function nestingDepth(value: unknown, limit: number): number {
  let deepest = 0;
  const pending: Array<[unknown, number]> = [[value, 1]];
  for (let next = pending.pop(); next; next = pending.pop()) {
    const [v, depth] = next;
    if (v === null || typeof v !== 'object') continue;
    deepest = Math.max(deepest, depth);
    if (deepest > limit) break;
    for (const child of Object.values(v)) pending.push([child, depth + 1]);
  }
  return deepest;
}

export const text = (max: number) => z.string().trim().max(max, `must be at most ${max} characters`);

/**
 * When a trial ends: an ISO 8601 date-time with its offset (2027-01-31T00:00:00Z), in the future
 * when it is set — a trial that has already ended is a suspension (the trial job's work).
 */
export const trialEndsAt = z
  .string()
  .max(40, 'must be an ISO 8601 date-time such as 2027-01-31T00:00:00Z')
  .refine((s) => z.iso.datetime({ offset: true }).safeParse(s).success, 'must be an ISO 8601 date-time such as 2027-01-31T00:00:00Z')
  .transform((s, ctx) => {
    const at = new Date(s);
    if (at.getTime() > Date.now()) return at;
    ctx.addIssue({ code: 'custom', message: 'is in the past: a trial must end in the future (set status to suspended to end it now)' });
    return z.NEVER;
  });
/** Why a status was set: kept on the organization and in its audit log. */
export const statusReason = z.string().trim().min(1, 'must not be empty').max(500, 'must be at most 500 characters');

const orgFields = {
  name: fields.name,
  slug: orgSlug.nullable().optional(),
  domain: domain.nullable().optional(),
  description: text(2000).nullable().optional(),
  website: httpUrl.nullable().optional(),
  industry: text(100).nullable().optional(),
  logo_url: httpsUrl.nullable().optional(),
  status: z.enum(ORG_STATUSES).optional(),
  metadata: metadata.optional(),
  max_members: z.number().int().min(1).max(1_000_000).optional(),
  max_teams: z.number().int().min(0).max(10_000).optional(),
  sso_required: z.boolean().optional(),
  trial_ends_at: trialEndsAt.nullable().optional(),
  status_reason: statusReason.nullable().optional(),
};

export const CreateOrg = z.strictObject(orgFields);
export const PutOrg = CreateOrg;
export const PatchOrg = z
  .strictObject({
    ...orgFields,
    name: fields.name.optional(),
    // PUT's `slug: null` means "generate it again"; a patch can only change it.
    slug: slugRules(
      z.string({ error: (iss) => (iss.input === null ? 'every organization has a slug: it can be changed but not removed' : undefined) }),
    ).optional(),
  })
  .refine((v) => Object.keys(v).length > 0, 'send at least one field to change');

/** Approving: `active`, or `trialing` until `trial_ends_at`; the reason defaults to `approved`. */
export const ApproveOrg = z.strictObject({ trial_ends_at: trialEndsAt.optional(), status_reason: statusReason.optional() });
/** Rejecting takes the reason its owners are told. */
export const RejectOrg = z.strictObject({ reason: statusReason });

/** An organization to create or replace; the portal's "create" also names its first owner. */
export type OrgInput = z.output<typeof CreateOrg> & { owner?: string | undefined };
