import test from 'ava';
import { sql } from 'kysely';
import { deleteOldInvitationSends } from '../../src/maintenance.ts';
import { adminApi, createTenant, startTestApp, type TestApp, type TestTenant } from '../helpers/app.ts';
import { Browser, enterCredentials } from '../helpers/browser.ts';
import { serverUrl } from '../helpers/database.ts';

/**
 * Invitation mails are limited: 5 per invitation per 24 hours (the first included) and 100 per
 * organization per hour (new invitations and resends), counted in the database, answered with
 * 429 problem+json, Retry-After and a sentence saying when.
 */

const ENCRYPTION_KEY = 'ab'.repeat(32);
let t: TestApp;
let tenant: TestTenant;

test.before(async () => {
  t = await startTestApp({ encryptionKey: ENCRYPTION_KEY });
  tenant = await createTenant(t);
});
test.after.always(async () => t?.stop());

const api = (method: string, path: string, body?: unknown) => adminApi(t, tenant, method, path, body);
let n = 0;
async function org() {
  return (await api('POST', '/organizations', { name: `Limited Org ${++n}` })).body as { id: string; name: string };
}
async function invite(orgId: string, email: string) {
  const r = await api('POST', `/organizations/${orgId}/invitations`, { email });
  if (r.status !== 201) throw new Error(r.text);
  return r.body as { id: string };
}
const resend = (orgId: string, id: string) => api('POST', `/organizations/${orgId}/invitations/${id}/resend`);
async function mailsTo(email: string) {
  const rows = await sql<{ n: number }>`select count(*)::int as n from mail_outbox where recipient = ${email}`.execute(t.app.connection.db);
  return rows.rows[0]!.n;
}
const db = () => t.app.connection.db;

test('an invitation is mailed at most 5 times in 24 hours; the 6th is a 429 saying when, and changes nothing', async (tt) => {
  const o = await org();
  const inv = await invite(o.id, 'often@limits.test');
  for (let i = 0; i < 4; i++) tt.is((await resend(o.id, inv.id)).status, 200);
  const before = (await sql<{ token_hash: string; expires_at: Date }>`select token_hash, expires_at from org_invitations where id = ${inv.id}`.execute(db()))
    .rows[0]!;

  const refused = await resend(o.id, inv.id);
  tt.is(refused.status, 429);
  tt.regex(refused.type, /application\/problem\+json/);
  tt.is(refused.body.status, 429);
  tt.regex(
    refused.body.detail,
    /^This invitation has been sent 5 times in the last 24 hours: it can be sent again after \d{4}-\d\d-\d\d \d\d:\d\d UTC \(in about 24 hours\)\.$/,
  );
  const retryAfter = Number(refused.headers.get('retry-after'));
  tt.true(retryAfter > 86_000 && retryAfter <= 86_400, String(retryAfter));

  tt.is(await mailsTo('often@limits.test'), 5);
  const after = (await sql<{ token_hash: string; expires_at: Date }>`select token_hash, expires_at from org_invitations where id = ${inv.id}`.execute(db()))
    .rows[0]!;
  tt.deepEqual(after, before, 'the refused resend rotated no link');

  // Once the oldest send is 23 hours old, the wait is the hour until it leaves the window.
  await sql`update invitation_sends set sent_at = now() - interval '23 hours' where sent_at = (select min(sent_at) from invitation_sends where invitation_id = ${inv.id}) and invitation_id = ${inv.id}`.execute(
    db(),
  );
  const later = await resend(o.id, inv.id);
  tt.is(later.status, 429);
  const wait = Number(later.headers.get('retry-after'));
  tt.true(wait > 3500 && wait <= 3600, String(wait));
  tt.regex(later.body.detail, /\(in about 1 hour\)\.$/);

  // When it has left the window, one more send fits.
  await sql`update invitation_sends set sent_at = now() - interval '25 hours' where sent_at < now() - interval '22 hours' and invitation_id = ${inv.id}`.execute(
    db(),
  );
  tt.is((await resend(o.id, inv.id)).status, 200);
  tt.is(await mailsTo('often@limits.test'), 6);
  tt.is((await resend(o.id, inv.id)).status, 429);
});

test('concurrent resends are counted one by one', async (tt) => {
  const o = await org();
  const inv = await invite(o.id, 'burst@limits.test');
  const statuses = (await Promise.all(Array.from({ length: 10 }, () => resend(o.id, inv.id)))).map((r) => r.status).sort();
  tt.deepEqual(statuses, [200, 200, 200, 200, 429, 429, 429, 429, 429, 429]);
  tt.is(await mailsTo('burst@limits.test'), 5);
});

test('an organization sends at most 100 invitation mails an hour, new invitations and resends alike; other organizations are not held back', async (tt) => {
  const o = await org();
  for (let i = 0; i < 99; i++) await invite(o.id, `bulk${i}@limits.test`);
  const last = await invite(o.id, 'bulk99@limits.test');

  const create = await api('POST', `/organizations/${o.id}/invitations`, { email: 'one-too-many@limits.test' });
  tt.is(create.status, 429);
  tt.regex(
    create.body.detail,
    /^This organization has sent 100 invitation emails in the last hour: more can be sent after \d{4}-\d\d-\d\d \d\d:\d\d UTC \(in (\d+ minutes?|about 1 hour)\)\.$/,
  );
  const retryAfter = Number(create.headers.get('retry-after'));
  tt.true(retryAfter > 3000 && retryAfter <= 3600, String(retryAfter));
  tt.is(await mailsTo('one-too-many@limits.test'), 0);
  const listed = await sql<{ n: number }>`select count(*)::int as n from org_invitations where org_id = ${o.id}`.execute(db());
  tt.is(listed.rows[0]!.n, 100, 'the refused invitation was not created');

  const again = await resend(o.id, last.id);
  tt.is(again.status, 429);
  tt.regex(again.body.detail, /^This organization has sent 100/);

  const elsewhere = await org();
  tt.is((await api('POST', `/organizations/${elsewhere.id}/invitations`, { email: 'elsewhere@limits.test' })).status, 201);

  // The window slides: sends older than an hour no longer count.
  await sql`update invitation_sends set sent_at = now() - interval '61 minutes' where org_id = ${o.id}`.execute(db());
  tt.is((await api('POST', `/organizations/${o.id}/invitations`, { email: 'one-too-many@limits.test' })).status, 201);
});

/** Two instances on one database: needs a PostgreSQL server (CI always has one). */
const onPostgres = serverUrl() ? test : test.skip;

onPostgres('another instance on the same database sees the same count', async (tt) => {
  const second = await startTestApp({ databaseUrl: t.databaseUrl!, encryptionKey: ENCRYPTION_KEY });
  tt.teardown(() => second.stop());
  const o = await org();
  const inv = await invite(o.id, 'two-instances@limits.test');
  for (let i = 0; i < 4; i++) tt.is((await resend(o.id, inv.id)).status, 200);
  const there = await adminApi(second, tenant, 'POST', `/organizations/${o.id}/invitations/${inv.id}/resend`);
  tt.is(there.status, 429);
});

test('the portal shows the limit on the invitations page, with 429 and Retry-After', async (tt) => {
  const o = await org();
  const inv = await invite(o.id, 'portal@limits.test');
  for (let i = 0; i < 4; i++) await resend(o.id, inv.id);

  const browser = new Browser(t.url);
  const start = await browser.follow(`${t.url}/t/${tenant.slug}/portal/organizations/${o.id}/invitations`);
  const page = await enterCredentials(browser, await start.res.text(), start.url, tenant.adminEmail, tenant.adminPassword);
  const csrf = /name="_csrf" value="([^"]+)"/.exec(await page.res.text())?.[1];
  tt.truthy(csrf, browser.visited.join('\n'));

  const res = await browser.request(`${t.url}/t/${tenant.slug}/portal/organizations/${o.id}/invitations/${inv.id}/resend`, {
    method: 'POST',
    headers: { 'content-type': 'application/x-www-form-urlencoded', origin: t.url },
    body: new URLSearchParams({ _csrf: csrf! }).toString(),
  });
  tt.is(res.status, 429);
  const wait = Number(res.headers.get('retry-after'));
  tt.true(wait > 86_000 && wait <= 86_400, String(wait));
  const html = await res.text();
  tt.regex(html, /This invitation has been sent 5 times in the last 24 hours: it can be sent again after \d{4}-\d\d-\d\d \d\d:\d\d UTC/);
  tt.regex(html, /portal@limits\.test/, 'the invitations page itself, with the pending invitation');
  tt.is(await mailsTo('portal@limits.test'), 5);
});

test('the maintenance job forgets sends older than the longest window, and only those', async (tt) => {
  const o = await org();
  const old = await invite(o.id, 'old-send@limits.test');
  const fresh = await invite(o.id, 'fresh-send@limits.test');
  await sql`update invitation_sends set sent_at = now() - interval '25 hours' where invitation_id = ${old.id}`.execute(db());
  tt.true((await deleteOldInvitationSends(db())) >= 1);
  const left = await sql<{ invitation_id: string }>`select invitation_id from invitation_sends where org_id = ${o.id}`.execute(db());
  tt.deepEqual(
    left.rows.map((r) => r.invitation_id),
    [fresh.id],
  );
});
