import test from 'ava';
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
