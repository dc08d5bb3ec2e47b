import test from 'ava';
import { CreateClient, CreateOrg, CreateUser, PatchOrg, PutOrg } from '../../src/admin-api/schemas.ts';
import { decodeCursor, encodeCursor, page } from '../../src/base/pagination.ts';
import { fieldErrors } from '../../src/base/validate.ts';
import { slugSchema } from '../../src/tenants/tenant.service.ts';

test('slug rules', (t) => {
  for (const ok of ['acme', 'a1', 'acme-corp', '0day', 'x'.repeat(40)]) t.true(slugSchema.safeParse(ok).success, ok);
  for (const bad of ['a', 'Acme', '-acme', 'acme-', 'ac me', 'acme_corp', 'x'.repeat(41), 'é', '']) t.false(slugSchema.safeParse(bad).success, bad);
});

test('unknown fields are named in the errors', (t) => {
  const r = CreateUser.safeParse({ email: 'a@b.test', admin: true, role: 'x' });
  t.false(r.success);
  const errors = fieldErrors(r.error!);
  t.true(errors.some((e) => e.field === 'admin,role'));
});

test('client schema applies defaults and cross-field rules', (t) => {
  const ok = CreateClient.parse({ name: 'A', redirect_uris: ['https://a.test/cb'] });
  t.deepEqual(ok.grant_types, ['authorization_code', 'refresh_token']);
  t.is(ok.token_endpoint_auth_method, 'client_secret_basic');
  t.false(CreateClient.safeParse({ name: 'A' }).success);
  t.true(CreateClient.safeParse({ name: 'M', grant_types: ['client_credentials'] }).success);
});

test('cursors round-trip and garbage is a 400', (t) => {
  const k = { createdAt: new Date('2026-01-02T03:04:05.678Z'), id: '0b6c9f5e-2d1a-4c3b-9e8f-7a6b5c4d3e2f' };
  t.deepEqual(decodeCursor(encodeCursor(k)), k);
  t.is(decodeCursor(undefined), undefined);
  const err = t.throws(() => decodeCursor('!!!'));
  t.is((err as { status?: number }).status, 400);
  const rows = [1, 2, 3].map((i) => ({ created_at: new Date(i), id: `00000000-0000-4000-8000-00000000000${i}` }));
  const p = page(rows, 2, (r) => ({ createdAt: r.created_at, id: r.id }));
  t.is(p.data.length, 2);
  t.deepEqual(decodeCursor(p.next_cursor!), { createdAt: new Date(2), id: '00000000-0000-4000-8000-000000000002' });
  // A cursor we did not issue (its id is not a UUID) is a 400, not a failed SQL cast.
  t.is((t.throws(() => decodeCursor(encodeCursor({ createdAt: new Date(2), id: "2'; --" }))) as { status?: number }).status, 400);
  t.is(page(rows, 3, (r) => ({ createdAt: r.created_at, id: r.id })).next_cursor, null);
});

test('a cursor holding a date outside years 1–9999 (PostgreSQL cannot store some) is a 400 naming cursor', (t) => {
  const id = '0b6c9f5e-2d1a-4c3b-9e8f-7a6b5c4d3e2f';
  for (const at of ['-100000-01-01T00:00:00.000Z', '+275760-09-13T00:00:00.000Z', '0000-12-31T23:59:59.999Z', '+010000-01-01T00:00:00.000Z']) {
    const err = t.throws(() => decodeCursor(Buffer.from(JSON.stringify([at, id])).toString('base64url'))) as { status?: number; errors?: unknown };
    t.is(err.status, 400, at);
    t.deepEqual(err.errors, [{ field: 'cursor', message: 'is not a cursor this API returned' }]);
  }
  t.deepEqual(decodeCursor(encodeCursor({ createdAt: new Date('0001-01-01T00:00:00.000Z'), id })), { createdAt: new Date('0001-01-01T00:00:00.000Z'), id });
});

test('organization metadata nests at most 32 levels; PATCH refuses a null slug', (t) => {
  const nest = (depth: number) => {
    let v: unknown = 1;
    for (let i = 0; i < depth; i++) v = { a: v };
    return v as Record<string, unknown>;
  };
  t.true(CreateOrg.safeParse({ name: 'A', metadata: nest(32) }).success);
  const deep = CreateOrg.safeParse({ name: 'A', metadata: nest(33) });
  t.deepEqual(fieldErrors(deep.error!), [{ field: 'metadata', message: 'must nest at most 32 levels deep' }]);
  t.deepEqual(fieldErrors(PatchOrg.safeParse({ slug: null }).error!), [
    { field: 'slug', message: 'every organization has a slug: it can be changed but not removed' },
  ]);
  t.is(PatchOrg.safeParse({ slug: 'BAD' }).error!.issues[0]!.message, 'use lowercase letters, digits and hyphens, not at the start or end');
  t.true(PutOrg.safeParse({ name: 'A', slug: null }).success);
});
