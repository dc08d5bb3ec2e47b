import { z } from 'zod';

/**
 * An id's shape: a UUID's 32 hex digits, with hyphens or without, in any case — every spelling
 * PostgreSQL's uuid type and common UUID parsers read as an id (8-4-4-4-12, the compact 32 digits,
 * hyphens after other groups of four). `organization=` and `team=` take an id or a slug, and the
 * flat and keycloak claim formats carry slugs, so a slug of this shape could be read as another
 * organization's or team's id: no organization or team slug may have it.
 */
const ID_DIGITS = /^[0-9a-f]{32}$/i;

/** Whether `s` has an id's shape, and so can never be a slug. */
export const isIdShaped = (s: string) => ID_DIGITS.test(s.replaceAll('-', ''));

/** A slug's characters and length (a URL's `/o/<slug or id>` is looked up when it has them). */
export const slugFormat = (s: z.ZodString) =>
  s
    .min(2, 'must be 2–64 characters')
    .max(64, 'must be 2–64 characters')
    .regex(/^[a-z0-9](?:[a-z0-9-]*[a-z0-9])?$/, 'use lowercase letters, digits and hyphens, not at the start or end');

/**
 * The one rule for an organization's or a team's slug, for every path that takes one (Admin API
 * create, PUT and PATCH, the portal's forms); `s` carries its own type error message.
 */
export const slugRules = (s: z.ZodString) =>
  slugFormat(s).refine(
    (v) => !isIdShaped(v),
    'must not look like an id (32 hex digits, with or without hyphens): ids and slugs are accepted in the same places',
  );
export const slug = slugRules(z.string());

/** A URL-safe slug from a display name: "Acme Café, Inc." → "acme-cafe-inc". Never id-shaped. */
export function slugify(name: string, max = 64): string {
  const base = name
    .normalize('NFKD')
    .replace(/[\u0300-\u036f]/g, '')
    .toLowerCase()
    .replace(/[^a-z0-9]+/g, '-')
    .replace(/^-+|-+$/g, '')
    .slice(0, max)
    .replace(/-+$/, '');
  return base.length >= 2 && !isIdShaped(base) ? base : `org-${base || 'x'}`.slice(0, max);
}

/** `base`, or `base-2`, `base-3`, … — the first one `taken` says is free (and is not id-shaped). */
export async function uniqueSlug(base: string, taken: (slug: string) => Promise<boolean>, max = 64): Promise<string> {
  if (!isIdShaped(base) && !(await taken(base))) return base;
  for (let n = 2; n < 1000; n++) {
    const suffix = `-${n}`;
    const candidate = base.slice(0, max - suffix.length).replace(/-+$/, '') + suffix;
    if (!isIdShaped(candidate) && !(await taken(candidate))) return candidate;
  }
  throw new Error(`no free slug near ${base}`);
}
