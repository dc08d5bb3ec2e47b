import test from 'ava';
import { sql } from 'kysely';
import { adminApi, createTenant, startTestApp, type TestApp, type TestTenant, webClient } from '../helpers/app.ts';
import { Browser, enterCredentials } from '../helpers/browser.ts';
import { authorizationUrl, discover, type RegisteredClient, signIn } from '../helpers/oidc.ts';

let t: TestApp;
let tenant: TestTenant;
let client: RegisteredClient;

// Locks far longer than the test runs, so a slow machine can't see one run out early; the test
// moves time on by expiring the lock in the database instead of waiting.
const LOCK_SECONDS = 120;

test.before(async () => {
  t = await startTestApp({ env: { TRUST_PROXY: 'true' } });
  tenant = await createTenant(t);
  client = (await adminApi(t, tenant, 'POST', '/clients', webClient())).body;
  // Keycloak-like rules with short waits, so the test can watch a lock expire.
  const s = await adminApi(t, tenant, 'PATCH', '/settings', {
    // Two failures count as "quick" however slowly a loaded machine sends them.
    brute_force: {
      min_quick_login_wait_seconds: LOCK_SECONDS,
      wait_increment_seconds: LOCK_SECONDS,
      max_wait_seconds: LOCK_SECONDS,
      ip_max_failures: 95,
      quick_login_check_ms: 60_000,
    },
  });
  if (s.status !== 200) throw new Error(s.text);
});
test.after.always(async () => t?.stop());

/** One sign-in attempt from `ip`; resolves to the HTTP status of the answer (303 = signed in). */
async function attempt(email: string, password: string, ip: string) {
  const browser = new Browser(t.url);
  const headers = { 'x-forwarded-for': ip };
  const page = await browser.follow(await authorizationUrl(await discover(tenant, client), client), { headers });
  const { res } = await enterCredentials(browser, await page.res.text(), page.url, email, password, headers);
  const body = await res.text();
  return { status: res.status, body };
}

test('100 wrong passwords lock the account without a 500; the lock does not outlive the attacker', async (tt) => {
  await adminApi(t, tenant, 'POST', '/users', { email: 'victim@x.test', password: 'the real password', email_verified: true });
  const attacker = '203.0.113.7';
  const statuses = new Map<number, number>();
  for (let i = 0; i < 100; i++) {
    const r = await attempt('victim@x.test', `guess number ${i}`, attacker);
    statuses.set(r.status, (statuses.get(r.status) ?? 0) + 1);
    tt.regex(r.body, /Invalid email or password/);
  }
  tt.deepEqual([...statuses.keys()], [401], 'every attempt answered 401, never a 500');

  // Locked: even the right password is refused, with the same message — from any address.
  const locked = await attempt('victim@x.test', 'the real password', '198.51.100.1');
  tt.is(locked.status, 401);
  tt.regex(locked.body, /Invalid email or password/);

  // Time passes: the lock runs out (done in the database rather than by waiting two minutes).
  await sql`update auth_throttle set locked_until = now() - interval '1 second' where tenant_id = ${tenant.id} and key = 'account:victim@x.test'`.execute(
    t.app.connection.db,
  );
  // The attacker's address is blocked, so its attempts no longer count against the account…
  for (let i = 0; i < 5; i++) tt.is((await attempt('victim@x.test', `late guess ${i}`, attacker)).status, 401);
  // …and once the lock has run out, the owner signs in from elsewhere.
  const owner = await attempt('victim@x.test', 'the real password', '198.51.100.2');
  tt.is(owner.status, 303);
  // The blocked address stays blocked, even with the right password.
  tt.is((await attempt('victim@x.test', 'the real password', attacker)).status, 401);
});

test('an admin can lift a lock at once', async (tt) => {
  const user = (await adminApi(t, tenant, 'POST', '/users', { email: 'locked@x.test', password: 'another real one', email_verified: true })).body;
  const ip = '192.0.2.44';
  // Two failures under a second apart: the quick-login rule locks the account.
  await attempt('locked@x.test', 'wrong 1', ip);
  await attempt('locked@x.test', 'wrong 2', ip);
  tt.is((await attempt('locked@x.test', 'another real one', ip)).status, 401);
  tt.is((await adminApi(t, tenant, 'POST', `/users/${user.id}/unlock`)).status, 204);
  tt.is((await attempt('locked@x.test', 'another real one', ip)).status, 303);
  tt.is((await adminApi(t, tenant, 'POST', '/users/not-a-uuid/unlock')).status, 404);
});

test('unknown emails are counted like known ones (no difference to observe)', async (tt) => {
  const ip = '192.0.2.99';
  const a = await attempt('ghost@x.test', 'x-1-wrong', ip);
  const b = await attempt('ghost@x.test', 'x-2-wrong', ip);
  tt.is(a.status, 401);
  tt.is(b.status, 401);
  tt.is(a.body.replace(/interaction\/[\w-]+/g, ''), b.body.replace(/interaction\/[\w-]+/g, ''));
});

test('the lock applies to the OIDC flow end to end: signIn fails while locked', async (tt) => {
  await adminApi(t, tenant, 'POST', '/users', { email: 'flow@x.test', password: 'flow password ok', email_verified: true });
  await attempt('flow@x.test', 'bad 1', '192.0.2.10');
  await attempt('flow@x.test', 'bad 2', '192.0.2.10');
  await tt.throwsAsync(signIn(t, tenant, client, { email: 'flow@x.test', password: 'flow password ok' }), { message: /did not reach/ });
});

test("a successful sign-in forgets the account's failures (and has none to forget without them)", async (tt) => {
  await adminApi(t, tenant, 'POST', '/users', { email: 'forget@x.test', password: 'forget password ok', email_verified: true });
  const failures = async () =>
    (
      await sql<{ failures: number }>`select failures from auth_throttle where tenant_id = ${tenant.id}::uuid and key = 'account:forget@x.test'`.execute(
        t.app.connection.db,
      )
    ).rows[0]?.failures;
  tt.is((await attempt('forget@x.test', 'wrong once', '192.0.2.30')).status, 401);
  tt.is(await failures(), 1);
  tt.is((await attempt('forget@x.test', 'forget password ok', '192.0.2.30')).status, 303);
  tt.is(await failures(), undefined);
  // Nothing on record: the success is still a success, and nothing appears.
  tt.is((await attempt('forget@x.test', 'forget password ok', '192.0.2.30')).status, 303);
  tt.is(await failures(), undefined);
});

test('guesses sent at once take turns: a burst is judged one by one, so the lock stops it early', async (tt) => {
  const email = 'burst@x.test';
  await adminApi(t, tenant, 'POST', '/users', { email, password: 'the burst password', email_verified: true });
  // Each from its own address, so only the account's own lock can stop them.
  const results = await Promise.all(Array.from({ length: 12 }, (_, i) => attempt(email, `burst guess ${i}`, `198.51.100.${100 + i}`)));
  tt.true(results.every((r) => r.status === 401));
  tt.is((await attempt(email, 'the burst password', '198.51.100.99')).status, 401, 'locked: the right password is refused');
  const counted = await sql<{ failures: number }>`select failures from auth_throttle where tenant_id = ${tenant.id} and key = ${`account:${email}`}`.execute(
    t.app.connection.db,
  );
  // Judged one after another, the guesses stop counting once the account is locked (two quick
  // failures here); judged all at once, every one of them would have been tried and counted.
  tt.true((counted.rows[0]?.failures ?? 0) <= 3, `failures counted: ${counted.rows[0]?.failures}`);
});
