/** A URL-safe slug from a display name: "Acme Café, Inc." → "acme-cafe-inc". */
export function slugify(name: string, max = 64): string {
  const base = name
    .normalize('NFKD')
    .replace(/[\u0300-\u036f]/g, '')
    .toLowerCase()
    .replace(/[^a-z0-9]+/g, '-')
    .replace(/^-+|-+$/g, '')
    .slice(0, max)
    .replace(/-+$/, '');
  return base.length >= 2 ? base : `org-${base || 'x'}`.slice(0, max);
}

/** `base`, or `base-2`, `base-3`, … — the first one `taken` says is free. */
export async function uniqueSlug(base: string, taken: (slug: string) => Promise<boolean>, max = 64): Promise<string> {
  if (!(await taken(base))) return base;
  for (let n = 2; n < 1000; n++) {
    const suffix = `-${n}`;
    const candidate = base.slice(0, max - suffix.length).replace(/-+$/, '') + suffix;
    if (!(await taken(candidate))) return candidate;
  }
  throw new Error(`no free slug near ${base}`);
}
