import test from 'ava';
import { isIdShaped, slug, slugify, uniqueSlug } from '../../src/orgs/slug.ts';

const ID = '6f1c2d7e-1b2a-4e0f-8c3d-2a9b7e5d4c02';

test('an id-shaped slug is refused in any case; near misses are slugs', (t) => {
  for (const s of [ID, ID.toUpperCase(), '00000000-0000-0000-0000-000000000000', ID.replace(/-/g, ''), '6f1c2d7e1b2a-4e0f8c3d-2a9b7e5d4c02'])
    t.true(isIdShaped(s), s);
  t.false(slug.safeParse(ID).success);
  t.regex(slug.safeParse(ID).error!.issues[0]!.message, /must not look like an id/);
  for (const s of [`${ID}-2`, ID.slice(0, 35), `${ID.replace(/-/g, '')}0`, 'acme-cafe-inc']) {
    t.false(isIdShaped(s), s);
    t.true(slug.safeParse(s).success, s);
  }
});

test('a slug generated from an id-shaped name is not id-shaped, nor any suffixed one', async (t) => {
  const made = slugify(ID);
  t.false(isIdShaped(made));
  t.is(made, `org-${ID}`);
  t.is(await uniqueSlug(ID, async () => false), `${ID}-2`, 'an id-shaped base is never used as it is');
  t.is(await uniqueSlug('acme', async (s) => s === 'acme'), 'acme-2');
});
