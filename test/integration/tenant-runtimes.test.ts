import test from 'ava';
import { sql } from 'kysely';
import { slugScopedStatement } from '../../src/db/one-shot.ts';
import { RETIRED_KEY_GRACE_SECONDS } from '../../src/tenants/signing-keys.ts';
import { findTenantWithKeys } from '../../src/tenants/tenant.repo.ts';
import { createTenant, startTestApp } from '../helpers/app.ts';

test('TENANT_PROVIDER_CACHE_SIZE bounds the built providers an instance keeps; the least recently used is rebuilt', async (t) => {
  const app = await startTestApp({ env: { TENANT_PROVIDER_CACHE_SIZE: '2' } });
  t.teardown(() => app.stop());
  const [a, b, c] = [await createTenant(app), await createTenant(app), await createTenant(app)];
  const runtimes = app.app.services.runtimes;
  const first = await runtimes.forSlug(a.slug);
  t.truthy(first);
  t.is(await runtimes.forSlug(a.slug), first, 'kept while it fits');
  await runtimes.forSlug(b.slug);
  t.is(await runtimes.forSlug(a.slug), first, 'two fit');
  await runtimes.forSlug(c.slug); // evicts b, the least recently used
  t.is(await runtimes.forSlug(a.slug), first);
  const rebuiltB = await runtimes.forSlug(b.slug); // evicts c … and b is built afresh
  t.truthy(rebuiltB);
  t.is(rebuiltB!.tenant.id, b.id);
  await runtimes.forSlug(c.slug); // evicts a
  const rebuiltA = await runtimes.forSlug(a.slug);
  t.not(rebuiltA, first, 'evicted, then built again');
  t.is(rebuiltA!.issuer, first!.issuer);
});

test("a tenant's row comes with its published keys, the active one first; a key retired past its grace is left out", async (t) => {
  const app = await startTestApp();
  t.teardown(() => app.stop());
  const tenant = await createTenant(app);
  const { db } = app.app.connection;
  const row = await app.app.services.tenants.findBySlug(tenant.slug);
  const first = (await slugScopedStatement(db, tenant.slug, (tx) => findTenantWithKeys(tx, tenant.slug)))!;
  t.is(first.row.id, tenant.id);
  t.is(first.keys.length, 1);
  const rotated = await app.app.services.tenants.rotateKeys(row!, 'RS256');
  const second = (await slugScopedStatement(db, tenant.slug, (tx) => findTenantWithKeys(tx, tenant.slug)))!;
  t.deepEqual(
    second.keys.map((k) => k.kid),
    [rotated, first.keys[0]!.kid],
    'the new key signs; the old one is still published',
  );
  t.is(second.row.config_version, first.row.config_version + 1);
  t.true(
    second.keys.every((k) => !k.sealed.includes('"d"')),
    'sealed, not plain JWKs',
  );

  await sql`update signing_keys set retired_at = now() - make_interval(secs => ${RETIRED_KEY_GRACE_SECONDS + 60}) where kid = ${first.keys[0]!.kid}`.execute(
    db,
  );
  const third = (await slugScopedStatement(db, tenant.slug, (tx) => findTenantWithKeys(tx, tenant.slug)))!;
  t.deepEqual(
    third.keys.map((k) => k.kid),
    [rotated],
  );
  t.is(await slugScopedStatement(db, 'no-such-tenant', (tx) => findTenantWithKeys(tx, 'no-such-tenant')), undefined);
});

test('a path under /t/ whose slug no tenant could have is a 404 problem, never a database error', async (t) => {
  const app = await startTestApp();
  t.teardown(() => app.stop());
  for (const slug of ["it's", 'UPPER', 'a'.repeat(70), 'no-such-tenant', '%27%3B']) {
    const res = await fetch(`${app.url}/t/${slug}/.well-known/openid-configuration`);
    t.is(res.status, 404, slug);
    t.regex(res.headers.get('content-type') ?? '', /problem\+json/, slug);
  }
});
