import test from 'ava';
import { sql } from 'kysely';
import { adminApi, createTenant, startTestApp, type TestApp, type TestTenant, webClient } from '../helpers/app.ts';
import { Browser } from '../helpers/browser.ts';
import { type RegisteredClient, signIn } from '../helpers/oidc.ts';
import { linkIn, SmtpSink } from '../helpers/smtp.ts';

let smtp: SmtpSink;
let t: TestApp;
let tenant: TestTenant;
let client: RegisteredClient;

test.before(async () => {
  smtp = await SmtpSink.start();
  t = await startTestApp({ env: { SMTP_URL: smtp.url, MAIL_POLL_MS: '100' } });
  tenant = await createTenant(t);
  client = (await adminApi(t, tenant, 'POST', '/clients', webClient())).body;
});
test.after.always(async () => {
  await t?.stop();
  await smtp?.stop();
});

const api = (method: string, path: string, body?: unknown) => adminApi(t, tenant, method, path, body);
let n = 0;
async function org() {
  return (await api('POST', '/organizations', { name: `Invite Org ${++n}` })).body as { id: string; name: string };
}
async function invite(orgId: string, email: string, role = 'member') {
  const r = await api('POST', `/organizations/${orgId}/invitations`, { email, role });
  if (r.status !== 201) throw new Error(r.text);
  return r.body as { id: string; status: string };
}
/** The invitation form's action and hidden mode. */
function form(html: string) {
  const action = /<form method="post" action="([^"]+)"/.exec(html)![1]!;
  const mode = /name="mode" value="(\w+)"/.exec(html)![1]!;
  return { action, mode };
}
async function members(orgId: string) {
  return (await api('GET', `/organizations/${orgId}/members`)).body.data as Array<{ email: string; roles: string[] }>;
}

test('a new person follows the mailed link, registers with the invited email, joins, and can sign in', async (tt) => {
  const o = await org();
  const inv = await invite(o.id, 'newbie@x.test', 'admin');
  tt.is(inv.status, 'pending');
  const mail = await smtp.waitFor('newbie@x.test', /invited to join/);
  tt.regex(mail.text!, new RegExp(o.name));
  const link = linkIn(mail, '/invitations/');

  const browser = new Browser(t.url);
  const page = await browser.follow(link);
  const html = await page.res.text();
  tt.regex(html, /Create your account to accept/);
  tt.regex(html, /newbie@x\.test/);
  const f = form(html);
  tt.is(f.mode, 'register');
  const weak = await browser.submit(f.action, { mode: 'register', name: 'New Bie', password: 'password' });
  tt.is(weak.res.status, 400);
  // The email can't be changed: an extra field is ignored, the invited address is used.
  const done = await browser.submit(f.action, { mode: 'register', name: 'New Bie', password: 'fresh start 2026', email: 'someone-else@x.test' });
  tt.is(done.res.status, 200);
  tt.regex(await done.res.text(), new RegExp(`Welcome to ${o.name}`));

  const m = (await members(o.id)).find((x) => x.email === 'newbie@x.test');
  tt.deepEqual(m?.roles, ['admin']);
  tt.is((await api('GET', '/users?email=someone-else@x.test')).body.data.length, 0);
  const { tokens } = await signIn(t, tenant, client, { email: 'newbie@x.test', password: 'fresh start 2026' });
  tt.true(tokens.claims()!.email_verified, 'the invitation link proved the mailbox');

  const again = await browser.follow(link);
  tt.is(again.res.status, 410);
  tt.regex(await again.res.text(), /already accepted/);
  const listed = await api('GET', `/organizations/${o.id}/invitations`);
  tt.is(listed.body.data[0].status, 'accepted');
});

test('an existing user signs in on the invitation page and joins; a wrong password does not', async (tt) => {
  const o = await org();
  await api('POST', '/users', { email: 'existing@x.test', password: 'i was here first', email_verified: true });
  await invite(o.id, 'existing@x.test');
  const link = linkIn(await smtp.waitFor('existing@x.test', /invited to join/), '/invitations/');
  const browser = new Browser(t.url);
  const html = await (await browser.follow(link)).res.text();
  const f = form(html);
  tt.is(f.mode, 'signin');
  const wrong = await browser.submit(f.action, { mode: 'signin', password: 'not it' });
  tt.is(wrong.res.status, 401);
  tt.regex(await wrong.res.text(), /Invalid email or password/);
  const ok = await browser.submit(f.action, { mode: 'signin', password: 'i was here first' });
  tt.is(ok.res.status, 200);
  tt.true((await members(o.id)).some((m) => m.email === 'existing@x.test'));
});

test('signed in as the invited user: one click; signed in as someone else: told so', async (tt) => {
  const o = await org();
  await api('POST', '/users', { email: 'clicker@x.test', password: 'one click wonder', email_verified: true });
  await invite(o.id, 'clicker@x.test');
  const link = linkIn(await smtp.waitFor('clicker@x.test', /invited to join/), '/invitations/');

  // Someone else signed in at this tenant in this browser.
  const other = await signIn(t, tenant, client); // the tenant admin
  const wrongUser = await other.browser.follow(link);
  tt.is(wrongUser.res.status, 409);
  const text = await wrongUser.res.text();
  tt.regex(text, /for someone else/);
  tt.regex(text, new RegExp(tenant.adminEmail.replace('.', '\\.')));

  const mine = await signIn(t, tenant, client, { email: 'clicker@x.test', password: 'one click wonder' });
  const html = await (await mine.browser.follow(link)).res.text();
  const f = form(html);
  tt.is(f.mode, 'accept');
  const done = await mine.browser.submit(f.action, { mode: 'accept' });
  tt.is(done.res.status, 200);
  tt.true((await members(o.id)).some((m) => m.email === 'clicker@x.test'));
});

test('resend rotates the link (the old one stops working); revoke and expiry show clear pages', async (tt) => {
  const o = await org();
  const inv = await invite(o.id, 'rotate@x.test');
  const first = linkIn(await smtp.waitFor('rotate@x.test', /invited to join/), '/invitations/');
  const resent = await api('POST', `/organizations/${o.id}/invitations/${inv.id}/resend`);
  tt.is(resent.status, 200);
  const deadline = Date.now() + 10_000;
  while (smtp.messages.filter((m) => m.subject?.includes(o.name)).length < 2 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 100));
  const second = linkIn(smtp.messages.filter((m) => m.subject?.includes(o.name))[1]!, '/invitations/');
  tt.not(first, second);
  tt.is((await fetch(first)).status, 404, 'the old link no longer works');
  tt.is((await fetch(second)).status, 200);

  tt.is((await api('DELETE', `/organizations/${o.id}/invitations/${inv.id}`)).status, 204);
  const revoked = await fetch(second);
  tt.is(revoked.status, 410);
  tt.regex(await revoked.text(), /revoked/);
  tt.is((await api('POST', `/organizations/${o.id}/invitations/${inv.id}/resend`)).status, 409);

  const late = await invite(o.id, 'late@x.test');
  const lateLink = linkIn(await smtp.waitFor('late@x.test', /invited to join/), '/invitations/');
  await sql`update org_invitations set expires_at = now() - interval '1 second' where id = ${late.id}`.execute(t.app.connection.db);
  const expired = await fetch(lateLink);
  tt.is(expired.status, 410);
  tt.regex(await expired.text(), /expired/);
  const statuses = (await api('GET', `/organizations/${o.id}/invitations`)).body.data.map((i: { email: string; status: string }) => `${i.email}:${i.status}`);
  tt.deepEqual(statuses.sort(), ['late@x.test:expired', 'rotate@x.test:revoked']);
  tt.is((await fetch(`${t.url}/t/${tenant.slug}/invitations/not-a-real-token`)).status, 404);
});

test('invitation rules: one pending per email, unknown role, expiry bounds; tokens hashed at rest', async (tt) => {
  const o = await org();
  const inv = await invite(o.id, 'once@x.test');
  const dup = await api('POST', `/organizations/${o.id}/invitations`, { email: 'ONCE@x.test' });
  tt.is(dup.status, 409);
  tt.is(dup.body.errors[0].field, 'email');
  const badRole = await api('POST', `/organizations/${o.id}/invitations`, { email: 'r@x.test', role: 'emperor' });
  tt.is(badRole.status, 422);
  tt.is(badRole.body.errors[0].field, 'role');
  tt.is((await api('POST', `/organizations/${o.id}/invitations`, { email: 'r@x.test', expires_in: 10 })).status, 422);
  tt.is((await api('POST', `/organizations/${o.id}/invitations`, { email: 'r@x.test', expires_in: 31 * 86400 })).status, 422);
  const raw = linkIn(await smtp.waitFor('once@x.test', /invited to join/), '/invitations/')
    .split('/')
    .pop()!;
  const rows = await sql<{ token_hash: string }>`select token_hash from org_invitations where id = ${inv.id}`.execute(t.app.connection.db);
  tt.not(rows.rows[0]!.token_hash, raw);
  tt.regex(rows.rows[0]!.token_hash, /^[0-9a-f]{64}$/);
});

test('accepting into a full organization says so plainly', async (tt) => {
  const o = (await api('POST', '/organizations', { name: 'Tiny', max_members: 1 })).body;
  const u = (await api('POST', '/users', { email: 'first@x.test' })).body;
  await api('POST', `/organizations/${o.id}/members`, { user_id: u.id });
  await invite(o.id, 'second@x.test');
  const link = linkIn(await smtp.waitFor('second@x.test', /invited to join/), '/invitations/');
  const browser = new Browser(t.url);
  const f = form(await (await browser.follow(link)).res.text());
  const res = await browser.submit(f.action, { mode: 'register', name: 'Second', password: 'second to none' });
  tt.is(res.res.status, 409);
  tt.regex(await res.res.text(), /limit of 1 members/);
  tt.is((await api('GET', '/users?email=second@x.test')).body.data.length, 0, 'registration rolled back with the failed join');
});
